/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The publisher thread: owns the proto socket and every data plane link.
 *
 * Design notes:
 * 1. The published table is the store's: at each change the thread reads all ExApps and the
 *    table version in one locked read, diffs them against what it published last, and sends
 *    `delta {from, version, upserts, deletes}` to each link whose last sent version is `from`,
 *    a `snapshot` to any other. Changes that arrive together fold into one delta.
 * 2. Versions are the store's table version: monotonic, persisted, bumped in the same
 *    transaction as the change.
 * 3. Nothing but `hello` is accepted before `hello`; a proto version mismatch gets an `error`
 *    and the link is closed. A link whose unsent output exceeds OUT_HIGH_MARK is dropped; the
 *    data plane reconnects and gets a snapshot.
 * 4. Look-ups of unknown app ids run in worker threads, one per app id however many data
 *    planes ask (singleflight). A found app is stored (so published) before the replies go
 *    out; "not found" is remembered for NEGATIVE_TTL; removed apps are never fetched.
 * 5. User look-ups (user-info) also run in workers, one per session cookie however many
 *    requests carry it; their answers are cached per cookie for HP_SESSION_LIFETIME and every
 *    data plane gets the remaining lifetime with the answer, so it can serve the session alone
 *    until then. Requests with only an Authorization header are looked up every time.
 *
 * 6. Failure events from every data plane count against the client IP together; at
 *    HP_BLACKLIST_COUNT within HP_BLACKLIST_WINDOW the IP is banned in the store and the whole
 *    list of bans in force goes to every data plane (also after each snapshot and whenever an
 *    operator changes it or a ban expires).
 *
 *   accept -> [link] --hello--> snapshot --(change)--> delta ... --(eof/error)--> closed
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cidr.h"
#include "ctl.h"
#include "engines.h"
#include "frame.h"
#include "hash.h"
#include "log.h"
#include "msg.h"
#include "nextcloud.h"
#include "publish.h"
#include "secret.h"
#include "xmalloc.h"

#define OUT_HIGH_MARK (64u * 1024 * 1024)
#define MAX_LINKS 256
#define NEGATIVE_TTL 15.0
#define PING_INTERVAL 5.0
#define LINK_IDLE_MAX 30.0

struct link {
    int fd;
    uint64_t serial;
    struct frame_reader rd;
    char *out;
    size_t out_len, out_off;
    bool hello;
    char dp_id[64];
    long long pid;
    int64_t sent_version, acked_version;
    double connected, last_seen;
    json_t *tunnels; /* [{name, port, peer, since}] as the data plane last reported */
    struct link *next;
};

struct waiter {
    uint64_t link_serial;
    json_int_t req_id;
};

/* One Nextcloud look-up in flight, shared by every data plane that asked. */
struct lookup {
    char app_id[EXAPP_ID_MAX + 1];
    struct waiter *waiters;
    size_t nwaiters;
    int result; /* set by the worker: 1 found, 0 not found, -1 error */
    char error[sizeof(((struct hp_err *)0)->msg)];
    struct publish *pub;
    struct lookup *next;      /* in pub->inflight */
    struct lookup *done_next; /* in pub->done */
};

/* One user-info call in flight, shared by the requests that carry the same session cookie
 * (an empty cookie, Authorization only, is never shared or cached). */
struct authreq {
    char *cookie;
    char app_id[EXAPP_ID_MAX + 1];
    json_t *headers;
    struct waiter *waiters;
    size_t nwaiters;
    int result; /* enum nc_user_result */
    char user_id[256];
    int level;
    char error[sizeof(((struct hp_err *)0)->msg)];
    struct publish *pub;
    struct authreq *next;      /* in pub->auth_inflight */
    struct authreq *done_next; /* in pub->auth_done */
};

/* The session cache: cookie -> the user Nextcloud named, for HP_SESSION_LIFETIME. */
#define SESSION_BUCKETS 4096
#define SESSION_MAX 100000

struct session {
    char *cookie;
    char user_id[256];
    int level;
    double fetched;
    struct session *next;
};

/* Failures of one client IP within the window, over every data plane (newest last). */
#define FAIL_BUCKETS 4096
#define FAIL_MAX_IPS 100000

struct failures {
    char ip[IP_STR_MAX];
    double *ts;
    size_t n;
    struct failures *next;
};

struct forget {
    char ip[IP_STR_MAX];
    struct forget *next;
};

struct missing {
    char app_id[EXAPP_ID_MAX + 1];
    double until;
    struct missing *next;
};

struct publish {
    struct ctl *ctl;
    pthread_t thr;
    int listen_fd, wake_fd;
    char *path;
    /* Owned by the thread. */
    struct link *links;
    size_t nlinks;
    uint64_t serials;
    json_t *table; /* app_id -> published exapp object */
    int64_t version;
    double last_ping;
    struct lookup *inflight;
    struct authreq *auth_inflight;
    struct session *sessions[SESSION_BUCKETS];
    size_t nsessions;
    struct failures *fails[FAIL_BUCKETS];
    size_t nfails;
    json_t *bans; /* [{ip, expires_at}] as last pushed */
    /* Shared, under mtx. */
    pthread_mutex_t mtx;
    int refs; /* the publisher itself and each running look-up worker */
    bool changed, stop;
    bool stopped; /* the thread has ended: workers clean up after themselves */
    struct lookup *done;
    struct authreq *auth_done;
    struct missing *missing;
    bool bans_changed;
    struct forget *forget;
    json_t *dp_info;
    json_t *engines;      /* [{port, address, tcp_port, api_min, api_max}], as last given */
    bool engines_changed;
};

static double
now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
wake(struct publish *pub)
{
    uint64_t one = 1;

    if (write(pub->wake_fd, &one, sizeof(one)) == -1) {
        /* the counter is saturated: the thread is awake anyway */
    }
}

void
publish_notify(struct publish *pub)
{
    if (pub == NULL) {
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    pub->changed = true;
    pthread_mutex_unlock(&pub->mtx);
    wake(pub);
}

void
publish_forget_missing(struct publish *pub, const char *app_id)
{
    struct missing **mp, *m;

    if (pub == NULL) {
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    for (mp = &pub->missing; (m = *mp) != NULL;) {
        if (strcmp(m->app_id, app_id) == 0) {
            *mp = m->next;
            free(m);
        } else {
            mp = &m->next;
        }
    }
    pthread_mutex_unlock(&pub->mtx);
}

json_t *
publish_dataplanes(struct publish *pub)
{
    json_t *a;

    pthread_mutex_lock(&pub->mtx);
    a = json_deep_copy(pub->dp_info);
    pthread_mutex_unlock(&pub->mtx);
    return a;
}

/* Rebuilds the copy of link states the API reads. */
static void
update_dp_info(struct publish *pub)
{
    json_t *a = json_array();
    struct link *l;
    double now = now_mono();

    for (l = pub->links; l != NULL; l = l->next) {
        if (!l->hello) {
            continue;
        }
        json_array_append_new(
            a, json_pack("{s:s,s:I,s:I,s:I,s:f,s:f,s:o}", "dp_id", l->dp_id, "pid",
                         (json_int_t)l->pid, "applied_version", (json_int_t)l->acked_version,
                         "table_version", (json_int_t)pub->version, "connected_seconds",
                         now - l->connected, "seen_seconds_ago", now - l->last_seen, "tunnels",
                         l->tunnels != NULL ? json_deep_copy(l->tunnels) : json_array()));
    }
    pthread_mutex_lock(&pub->mtx);
    json_decref(pub->dp_info);
    pub->dp_info = a;
    pthread_mutex_unlock(&pub->mtx);
}

static void
send_msg(struct link *l, json_t *msg)
{
    size_t n;
    char *f = frame_encode(msg, &n);

    json_decref(msg);
    if (f == NULL) {
        log_warnx("publish: message for %s exceeds the frame limit; dropped", l->dp_id);
        return;
    }
    if (l->out_off > 0 && l->out_off == l->out_len) {
        l->out_off = l->out_len = 0;
    }
    l->out = xrealloc(l->out, l->out_len + n);
    memcpy(l->out + l->out_len, f, n);
    l->out_len += n;
    free(f);
}

static void
close_link(struct publish *pub, struct link *l, const char *why)
{
    struct link **lp;

    for (lp = &pub->links; *lp != NULL; lp = &(*lp)->next) {
        if (*lp == l) {
            *lp = l->next;
            break;
        }
    }
    if (l->hello) {
        log_info("publish: data plane %s (pid %lld) disconnected: %s", l->dp_id, l->pid, why);
    }
    close(l->fd);
    frame_reader_free(&l->rd);
    free(l->out);
    json_decref(l->tunnels);
    free(l);
    pub->nlinks--;
    update_dp_info(pub);
}

static json_t *
table_array(json_t *table)
{
    json_t *a = json_array(), *v;
    const char *k;

    json_object_foreach(table, k, v)
    {
        json_array_append(a, v);
    }
    return a;
}

static void
send_snapshot(struct publish *pub, struct link *l)
{
    json_t *m = msg_new(MSG_SNAPSHOT);

    json_object_set_new(m, "version", json_integer(pub->version));
    json_object_set_new(m, "exapps", table_array(pub->table));
    json_object_set_new(m, "settings", json_object());
    send_msg(l, m);
    l->sent_version = pub->version;
}

/* Reads the store and pushes what changed. */
static void
publish_changes(struct publish *pub)
{
    struct exapp *apps;
    struct hp_err err;
    json_t *table, *upserts, *deletes, *v, *old, *m;
    const char *k;
    struct link *l;
    int64_t version;
    size_t i, n;

    if (store_exapp_snapshot(pub->ctl->store, &apps, &n, &version, &err) == -1) {
        log_warnx("publish: %s", err.msg);
        return;
    }
    table = json_object();
    for (i = 0; i < n; i++) {
        json_object_set_new(table, apps[i].app_id, exapp_to_json(&apps[i], true));
    }
    store_exapp_list_free(apps, n);
    if (pub->table != NULL && version == pub->version) {
        json_decref(table);
        return;
    }
    upserts = json_array();
    deletes = json_array();
    json_object_foreach(table, k, v)
    {
        old = pub->table != NULL ? json_object_get(pub->table, k) : NULL;
        if (old == NULL || !json_equal(old, v)) {
            json_array_append(upserts, v);
        }
    }
    if (pub->table != NULL) {
        json_object_foreach(pub->table, k, v)
        {
            if (json_object_get(table, k) == NULL) {
                json_array_append_new(deletes, json_string(k));
            }
        }
    }
    for (l = pub->links; l != NULL; l = l->next) {
        if (!l->hello) {
            continue;
        }
        if (l->sent_version == pub->version) {
            m = msg_new(MSG_DELTA);
            json_object_set_new(m, "from", json_integer(pub->version));
            json_object_set_new(m, "version", json_integer(version));
            json_object_set(m, "upserts", upserts);
            json_object_set(m, "deletes", deletes);
            send_msg(l, m);
            l->sent_version = version;
        }
    }
    log_info("publish: table version %lld (%zu upserts, %zu deletes)", (long long)version,
             json_array_size(upserts), json_array_size(deletes));
    json_decref(upserts);
    json_decref(deletes);
    json_decref(pub->table);
    pub->table = table;
    pub->version = version;
    for (l = pub->links; l != NULL; l = l->next) {
        if (l->hello && l->sent_version != version) {
            send_snapshot(pub, l);
        }
    }
    update_dp_info(pub);
}

static void publish_free(struct publish *pub);

/* Runs the Nextcloud call. The store write happens under pub->mtx so that it never follows
 * publish_stop() (after which the store is closed); a worker that finishes after the thread
 * has ended frees its look-up and drops its reference instead. */
static void *
lookup_worker(void *arg)
{
    struct lookup *lk = arg;
    struct publish *pub = lk->pub;
    struct exapp app;
    struct hp_err err = {""};
    bool last;
    int result;

    result = nextcloud_exapp_meta(&pub->ctl->cfg, lk->app_id, &app, &err);
    pthread_mutex_lock(&pub->mtx);
    if (pub->stopped) {
        if (result == 1) {
            exapp_free(&app);
        }
        free(lk->waiters);
        free(lk);
        last = --pub->refs == 0;
        pthread_mutex_unlock(&pub->mtx);
        if (last) {
            publish_free(pub);
        }
        return NULL;
    }
    if (result == 1 && pub->stop) {
        exapp_free(&app);
        result = -1;
        err_set(&err, "stopping");
    } else if (result == 1) {
        if (store_exapp_removed(pub->ctl->store, lk->app_id)) {
            result = 0; /* removed while we asked */
        } else if (store_exapp_put(pub->ctl->store, &app, &err) == -1) {
            result = -1;
        } else {
            pub->changed = true;
        }
        exapp_free(&app);
    }
    lk->result = result;
    if (result == -1) {
        snprintf(lk->error, sizeof(lk->error), "%s", err.msg);
    }
    lk->done_next = pub->done;
    pub->done = lk;
    pub->refs--;
    pthread_mutex_unlock(&pub->mtx);
    if (result == 1) {
        log_info("lookup: %s fetched from Nextcloud", lk->app_id);
    } else if (result == -1) {
        log_warnx("lookup: %s: %s", lk->app_id, err.msg);
    }
    wake(pub);
    return NULL;
}

static void
reply_lookup(struct publish *pub, uint64_t serial, json_int_t id, const char *app_id, bool found,
             const char *why)
{
    struct link *l;
    json_t *m, *app;

    for (l = pub->links; l != NULL && l->serial != serial; l = l->next) {
    }
    if (l == NULL) {
        return;
    }
    m = msg_new(MSG_LOOKUP_REPLY);
    json_object_set_new(m, "id", json_integer(id));
    json_object_set_new(m, "app_id", json_string(app_id));
    app = found ? json_object_get(pub->table, app_id) : NULL;
    json_object_set_new(m, "found", json_boolean(app != NULL));
    if (app != NULL) {
        json_object_set(m, "exapp", app);
    }
    if (why != NULL) {
        json_object_set_new(m, "error", json_string(why));
    }
    send_msg(l, m);
}

static bool
known_missing(struct publish *pub, const char *app_id)
{
    struct missing **mp, *m;
    double now = now_mono();
    bool found = false;

    pthread_mutex_lock(&pub->mtx);
    for (mp = &pub->missing; (m = *mp) != NULL;) {
        if (m->until <= now) {
            *mp = m->next;
            free(m);
            continue;
        }
        found |= strcmp(m->app_id, app_id) == 0;
        mp = &m->next;
    }
    pthread_mutex_unlock(&pub->mtx);
    return found;
}

static void
on_lookup(struct publish *pub, struct link *l, json_t *msg)
{
    const char *raw = json_string_value(json_object_get(msg, "app_id"));
    json_int_t id = json_integer_value(json_object_get(msg, "id"));
    char app_id[EXAPP_ID_MAX + 1];
    struct lookup *lk;
    struct hp_err err;
    pthread_t t;

    if (exapp_id_normalise(raw, app_id, &err) == -1) {
        reply_lookup(pub, l->serial, id, raw, false, err.msg);
        return;
    }
    if (json_object_get(pub->table, app_id) != NULL) {
        reply_lookup(pub, l->serial, id, app_id, true, NULL);
        return;
    }
    if (store_exapp_removed(pub->ctl->store, app_id) || known_missing(pub, app_id)) {
        reply_lookup(pub, l->serial, id, app_id, false, NULL);
        return;
    }
    for (lk = pub->inflight; lk != NULL && strcmp(lk->app_id, app_id) != 0; lk = lk->next) {
    }
    if (lk == NULL) {
        lk = xcalloc(1, sizeof(*lk));
        snprintf(lk->app_id, sizeof(lk->app_id), "%s", app_id);
        lk->pub = pub;
        pthread_mutex_lock(&pub->mtx);
        pub->refs++;
        pthread_mutex_unlock(&pub->mtx);
        if (pthread_create(&t, NULL, lookup_worker, lk) != 0) {
            pthread_mutex_lock(&pub->mtx);
            pub->refs--;
            pthread_mutex_unlock(&pub->mtx);
            free(lk);
            reply_lookup(pub, l->serial, id, app_id, false, "cannot start a look-up");
            return;
        }
        pthread_detach(t);
        lk->next = pub->inflight;
        pub->inflight = lk;
    }
    lk->waiters = xrealloc(lk->waiters, (lk->nwaiters + 1) * sizeof(*lk->waiters));
    lk->waiters[lk->nwaiters++] = (struct waiter){l->serial, id};
}

/* Replies to the waiters of finished look-ups; runs after the table was published. */
static void
finish_lookups(struct publish *pub, struct lookup *done)
{
    struct lookup *lk, **lp, *next;
    struct missing *m;
    size_t i;

    for (lk = done; lk != NULL; lk = next) {
        next = lk->done_next;
        for (lp = &pub->inflight; *lp != NULL; lp = &(*lp)->next) {
            if (*lp == lk) {
                *lp = lk->next;
                break;
            }
        }
        if (lk->result == 0) {
            m = xcalloc(1, sizeof(*m));
            snprintf(m->app_id, sizeof(m->app_id), "%s", lk->app_id);
            m->until = now_mono() + NEGATIVE_TTL;
            pthread_mutex_lock(&pub->mtx);
            m->next = pub->missing;
            pub->missing = m;
            pthread_mutex_unlock(&pub->mtx);
        }
        for (i = 0; i < lk->nwaiters; i++) {
            reply_lookup(pub, lk->waiters[i].link_serial, lk->waiters[i].req_id, lk->app_id,
                         lk->result == 1, lk->result == -1 ? lk->error : NULL);
        }
        free(lk->waiters);
        free(lk);
    }
}

static unsigned
session_hash(const char *cookie)
{
    return hash_fnv1a(cookie, strlen(cookie)) % SESSION_BUCKETS;
}

static void
session_free(struct session *se)
{
    secret_free(se->cookie);
    free(se);
}

/* The fresh entry for <cookie>, or NULL; a stale one found on the way is dropped. */
static struct session *
session_get(struct publish *pub, const char *cookie, double now)
{
    struct session **sp, *se;
    double lifetime = pub->ctl->cfg.session_lifetime;

    for (sp = &pub->sessions[session_hash(cookie)]; (se = *sp) != NULL; sp = &se->next) {
        if (strcmp(se->cookie, cookie) != 0) {
            continue;
        }
        if (now - se->fetched <= lifetime) {
            return se;
        }
        *sp = se->next;
        session_free(se);
        pub->nsessions--;
        return NULL;
    }
    return NULL;
}

/* Drops expired sessions; all of them if the cache is still over its bound. */
static void
sessions_prune(struct publish *pub, double now, bool all)
{
    struct session **sp, *se;
    size_t b;

    for (b = 0; b < SESSION_BUCKETS; b++) {
        for (sp = &pub->sessions[b]; (se = *sp) != NULL;) {
            if (all || now - se->fetched > pub->ctl->cfg.session_lifetime) {
                *sp = se->next;
                session_free(se);
                pub->nsessions--;
            } else {
                sp = &se->next;
            }
        }
    }
}

static void
session_put(struct publish *pub, const char *cookie, const char *user_id, int level, double now)
{
    struct session *se;
    unsigned b = session_hash(cookie);

    if (pub->nsessions >= SESSION_MAX) {
        sessions_prune(pub, now, false);
        if (pub->nsessions >= SESSION_MAX) {
            sessions_prune(pub, now, true);
        }
    }
    se = xcalloc(1, sizeof(*se));
    se->cookie = xstrdup(cookie);
    snprintf(se->user_id, sizeof(se->user_id), "%s", user_id);
    se->level = level;
    se->fetched = now;
    se->next = pub->sessions[b];
    pub->sessions[b] = se;
    pub->nsessions++;
}

static void
reply_auth(struct publish *pub, uint64_t serial, json_int_t id, int result, const char *user_id,
           int level, double ttl, const char *why)
{
    struct link *l;
    json_t *m;

    for (l = pub->links; l != NULL && l->serial != serial; l = l->next) {
    }
    if (l == NULL) {
        return;
    }
    m = msg_new(MSG_AUTH_REPLY);
    json_object_set_new(m, "id", json_integer(id));
    json_object_set_new(m, "result", json_string(result == NC_USER        ? "user"
                                                 : result == NC_ANONYMOUS ? "anonymous"
                                                                          : "error"));
    if (result == NC_USER) {
        json_object_set_new(m, "user_id", json_string(user_id));
        json_object_set_new(m, "access_level", json_integer(level));
        json_object_set_new(m, "ttl_ms", json_integer((json_int_t)(ttl * 1000)));
    }
    if (why != NULL) {
        json_object_set_new(m, "error", json_string(why));
    }
    send_msg(l, m);
}

static void
authreq_free(struct authreq *ar)
{
    secret_free(ar->cookie);
    json_decref(ar->headers);
    free(ar->waiters);
    free(ar);
}

static void *
auth_worker(void *arg)
{
    struct authreq *ar = arg;
    struct publish *pub = ar->pub;
    struct hp_err err = {""};
    bool last;

    ar->result = nextcloud_user_info(&pub->ctl->cfg, ar->app_id, ar->headers, ar->user_id,
                                     sizeof(ar->user_id), &ar->level, &err);
    if (ar->result == NC_USER_ERROR) {
        snprintf(ar->error, sizeof(ar->error), "%s", err.msg);
        log_warnx("auth: user-info for %s: %s", ar->app_id, err.msg);
    }
    pthread_mutex_lock(&pub->mtx);
    if (pub->stopped) {
        authreq_free(ar);
        last = --pub->refs == 0;
        pthread_mutex_unlock(&pub->mtx);
        if (last) {
            publish_free(pub);
        }
        return NULL;
    }
    ar->done_next = pub->auth_done;
    pub->auth_done = ar;
    pub->refs--;
    pthread_mutex_unlock(&pub->mtx);
    wake(pub);
    return NULL;
}

static void
on_auth(struct publish *pub, struct link *l, json_t *msg)
{
    const char *cookie = json_string_value(json_object_get(msg, "cookie"));
    const char *raw = json_string_value(json_object_get(msg, "app_id"));
    json_int_t id = json_integer_value(json_object_get(msg, "id"));
    double now = now_mono(), lifetime = pub->ctl->cfg.session_lifetime;
    char app_id[EXAPP_ID_MAX + 1];
    struct authreq *ar = NULL;
    struct session *se;
    struct hp_err err;
    pthread_t t;

    if (exapp_id_normalise(raw, app_id, &err) == -1) {
        reply_auth(pub, l->serial, id, NC_USER_ERROR, NULL, 0, 0, err.msg);
        return;
    }
    if (cookie[0] != '\0' && lifetime > 0 && (se = session_get(pub, cookie, now)) != NULL) {
        reply_auth(pub, l->serial, id, NC_USER, se->user_id, se->level,
                   lifetime - (now - se->fetched), NULL);
        return;
    }
    if (cookie[0] != '\0') {
        for (ar = pub->auth_inflight; ar != NULL; ar = ar->next) {
            if (ar->cookie[0] != '\0' && strcmp(ar->cookie, cookie) == 0) {
                break;
            }
        }
    }
    if (ar == NULL) {
        ar = xcalloc(1, sizeof(*ar));
        ar->cookie = xstrdup(cookie);
        snprintf(ar->app_id, sizeof(ar->app_id), "%s", app_id);
        ar->headers = json_incref(json_object_get(msg, "headers"));
        ar->pub = pub;
        pthread_mutex_lock(&pub->mtx);
        pub->refs++;
        pthread_mutex_unlock(&pub->mtx);
        if (pthread_create(&t, NULL, auth_worker, ar) != 0) {
            pthread_mutex_lock(&pub->mtx);
            pub->refs--;
            pthread_mutex_unlock(&pub->mtx);
            authreq_free(ar);
            reply_auth(pub, l->serial, id, NC_USER_ERROR, NULL, 0, 0, "cannot start a look-up");
            return;
        }
        pthread_detach(t);
        ar->next = pub->auth_inflight;
        pub->auth_inflight = ar;
    }
    ar->waiters = xrealloc(ar->waiters, (ar->nwaiters + 1) * sizeof(*ar->waiters));
    ar->waiters[ar->nwaiters++] = (struct waiter){l->serial, id};
}

static void
finish_auths(struct publish *pub, struct authreq *done)
{
    double now = now_mono(), lifetime = pub->ctl->cfg.session_lifetime;
    struct authreq *ar, **ap, *next;
    size_t i;

    for (ar = done; ar != NULL; ar = next) {
        next = ar->done_next;
        for (ap = &pub->auth_inflight; *ap != NULL; ap = &(*ap)->next) {
            if (*ap == ar) {
                *ap = ar->next;
                break;
            }
        }
        /* HaRP caches user objects (200, anonymous ones too), never 4xx or errors. */
        if (ar->result == NC_USER && ar->cookie[0] != '\0' && lifetime > 0) {
            session_put(pub, ar->cookie, ar->user_id, ar->level, now);
        }
        for (i = 0; i < ar->nwaiters; i++) {
            reply_auth(pub, ar->waiters[i].link_serial, ar->waiters[i].req_id, ar->result,
                       ar->user_id, ar->level,
                       ar->cookie[0] != '\0' && lifetime > 0 ? lifetime : 0,
                       ar->result == NC_USER_ERROR ? ar->error : NULL);
        }
        authreq_free(ar);
    }
}

static double
now_wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
send_bans(struct publish *pub, struct link *l)
{
    json_t *m = msg_new(MSG_BANS);

    json_object_set(m, "bans", pub->bans);
    send_msg(l, m);
}

/* Reads the bans in force from the store and pushes them to every data plane. */
static void
push_bans(struct publish *pub)
{
    json_t *list = store_ban_list(pub->ctl->store, (int64_t)now_wall()), *b, *v;
    struct link *l;
    size_t i;

    json_decref(pub->bans);
    pub->bans = json_array();
    json_array_foreach(list, i, v)
    {
        b = json_pack("{s:O,s:O}", "ip", json_object_get(v, "ip"), "expires_at",
                      json_object_get(v, "expires_at"));
        json_array_append_new(pub->bans, b);
    }
    json_decref(list);
    for (l = pub->links; l != NULL; l = l->next) {
        if (l->hello) {
            send_bans(pub, l);
        }
    }
}

static void
send_engines(struct publish *pub, struct link *l)
{
    json_t *m = msg_new(MSG_ENGINES);

    pthread_mutex_lock(&pub->mtx);
    json_object_set_new(m, "engines", pub->engines != NULL ? json_deep_copy(pub->engines)
                                                           : json_array());
    pthread_mutex_unlock(&pub->mtx);
    send_msg(l, m);
}

void
publish_engines(struct publish *pub, json_t *engines)
{
    if (pub == NULL) {
        json_decref(engines);
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    if (pub->engines != NULL && json_equal(pub->engines, engines)) {
        json_decref(engines);
        pthread_mutex_unlock(&pub->mtx);
        return;
    }
    json_decref(pub->engines);
    pub->engines = engines;
    pub->engines_changed = true;
    pthread_mutex_unlock(&pub->mtx);
    wake(pub);
}

void
publish_bans_changed(struct publish *pub, const char *forget_ip)
{
    struct forget *f;

    if (pub == NULL) {
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    pub->bans_changed = true;
    if (forget_ip != NULL) {
        f = xcalloc(1, sizeof(*f));
        snprintf(f->ip, sizeof(f->ip), "%s", forget_ip);
        f->next = pub->forget;
        pub->forget = f;
    }
    pthread_mutex_unlock(&pub->mtx);
    wake(pub);
}

static struct failures **
fail_slot(struct publish *pub, const char *ip)
{
    struct failures **fp;

    for (fp = &pub->fails[session_hash(ip) % FAIL_BUCKETS]; *fp != NULL; fp = &(*fp)->next) {
        if (strcmp((*fp)->ip, ip) == 0) {
            break;
        }
    }
    return fp;
}

static void
fail_drop(struct publish *pub, struct failures **fp)
{
    struct failures *f = *fp;

    *fp = f->next;
    free(f->ts);
    free(f);
    pub->nfails--;
}

/* Drops the failures older than the window (all of them with <all>). */
static void
fails_prune(struct publish *pub, double now, bool all)
{
    double window = pub->ctl->cfg.blacklist_window;
    struct failures **fp;
    size_t b;

    for (b = 0; b < FAIL_BUCKETS; b++) {
        for (fp = &pub->fails[b]; *fp != NULL;) {
            if (all || (*fp)->ts[(*fp)->n - 1] <= now - window) {
                fail_drop(pub, fp);
            } else {
                fp = &(*fp)->next;
            }
        }
    }
}

static bool
banned(struct publish *pub, const char *ip)
{
    json_t *b;
    size_t i;

    json_array_foreach(pub->bans, i, b)
    {
        if (strcmp(json_string_value(json_object_get(b, "ip")), ip) == 0) {
            return true;
        }
    }
    return false;
}

/* A failure of <raw_ip> seen by a data plane (spec 2.7): HP_BLACKLIST_COUNT of them within
 * HP_BLACKLIST_WINDOW seconds ban the IP until the oldest of them leaves the window. */
static void
on_failure(struct publish *pub, const char *raw_ip)
{
    const struct hp_config *cfg = &pub->ctl->cfg;
    double now = now_wall(), window = cfg->blacklist_window;
    struct failures **fp, *f;
    struct ipaddr addr;
    struct hp_err err;
    char ip[IP_STR_MAX];
    size_t i, keep;
    int64_t until;

    if (cfg->blacklist_count == 0 || raw_ip == NULL || !ip_parse(raw_ip, strlen(raw_ip), &addr)) {
        return;
    }
    ip_format(&addr, ip);
    if (banned(pub, ip)) {
        return;
    }
    fp = fail_slot(pub, ip);
    if ((f = *fp) == NULL) {
        if (pub->nfails >= FAIL_MAX_IPS) {
            fails_prune(pub, now, false);
            if (pub->nfails >= FAIL_MAX_IPS) {
                fails_prune(pub, now, true);
            }
            fp = fail_slot(pub, ip);
        }
        f = xcalloc(1, sizeof(*f));
        snprintf(f->ip, sizeof(f->ip), "%s", ip);
        f->ts = xcalloc(cfg->blacklist_count, sizeof(double));
        f->next = NULL;
        *fp = f;
        pub->nfails++;
    }
    for (i = 0, keep = 0; i < f->n; i++) {
        if (f->ts[i] > now - window) {
            f->ts[keep++] = f->ts[i];
        }
    }
    f->n = keep;
    if (f->n == cfg->blacklist_count) {
        memmove(f->ts, f->ts + 1, (f->n - 1) * sizeof(double));
        f->n--;
    }
    f->ts[f->n++] = now;
    if (f->n < cfg->blacklist_count) {
        return;
    }
    until = (int64_t)(f->ts[0] + window + 0.999);
    if (store_ban_put(pub->ctl->store, ip, (int)f->n, "failures", until, &err) == 0) {
        log_notice("bans: %s banned until %lld after %zu failures in %u s", ip, (long long)until,
                   f->n, cfg->blacklist_window);
    }
    fail_drop(pub, fp);
    push_bans(pub);
}

static void
on_event(struct publish *pub, struct link *l, json_t *msg)
{
    const char *ev = json_string_value(json_object_get(msg, "event"));
    json_t *t = json_object_get(msg, "tunnels");

    if (strcmp(ev, "failure") == 0) {
        on_failure(pub, json_string_value(json_object_get(msg, "ip")));
    } else if (strcmp(ev, "tunnels") == 0 && json_is_array(t)) {
        json_decref(l->tunnels);
        l->tunnels = json_incref(t);
        log_info("publish: data plane %s reports %zu tunnels", l->dp_id, json_array_size(t));
        update_dp_info(pub);
        /* An engine behind a tunnel that came up: probe its API versions now. */
        engines_changed(pub->ctl->engines);
    }
}

static void
on_hello(struct publish *pub, struct link *l, json_t *msg)
{
    json_int_t proto = json_integer_value(json_object_get(msg, "proto"));
    json_t *pid = json_object_get(msg, "pid");
    json_t *m;

    if (proto != PROTO_VERSION) {
        log_warnx("publish: data plane speaks proto %lld, this harp-ctl %d: refused",
                  (long long)proto, PROTO_VERSION);
        m = msg_new(MSG_ERROR);
        json_object_set_new(m, "message",
                            json_sprintf("proto version %d required", PROTO_VERSION));
        send_msg(l, m);
        l->hello = false;
        return;
    }
    snprintf(l->dp_id, sizeof(l->dp_id), "%s", json_string_value(json_object_get(msg, "dp_id")));
    l->pid = json_is_integer(pid) ? json_integer_value(pid) : 0;
    l->acked_version = json_integer_value(json_object_get(msg, "version"));
    l->hello = true;
    log_info("publish: data plane %s (pid %lld) connected at version %lld", l->dp_id, l->pid,
             (long long)l->acked_version);
    send_snapshot(pub, l);
    send_bans(pub, l);
    send_engines(pub, l);
    update_dp_info(pub);
}

/* 0, or -1 when the link must close (the reason in <err>). */
static int
on_frame(struct publish *pub, struct link *l, json_t *msg, struct hp_err *err)
{
    int t = msg_check(msg, MSG_FROM_DP, err);

    if (t == -1) {
        return -1;
    }
    if (!l->hello && t != MSG_HELLO) {
        err_set(err, "\"%s\" before hello", msg_type_name(t));
        return -1;
    }
    switch (t) {
    case MSG_HELLO:
        on_hello(pub, l, msg);
        return l->hello ? 0 : -1;
    case MSG_ACK:
        l->acked_version = json_integer_value(json_object_get(msg, "version"));
        update_dp_info(pub);
        return 0;
    case MSG_LOOKUP:
        on_lookup(pub, l, msg);
        return 0;
    case MSG_AUTH:
        on_auth(pub, l, msg);
        return 0;
    case MSG_EVENT:
        on_event(pub, l, msg);
        return 0;
    case MSG_PING:
        send_msg(l, msg_new(MSG_PONG));
        return 0;
    case MSG_ERROR:
        err_set(err, "data plane error: %s",
                json_string_value(json_object_get(msg, "message")));
        return -1;
    default:
        return 0; /* events and pongs: nothing to do yet */
    }
}

static void
read_link(struct publish *pub, struct link *l)
{
    char buf[65536];
    struct hp_err err;
    json_t *msg;
    ssize_t n;
    int rc;

    n = read(l->fd, buf, sizeof(buf));
    if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
        close_link(pub, l, n == 0 ? "closed" : strerror(errno));
        return;
    }
    if (n < 0) {
        return;
    }
    l->last_seen = now_mono();
    frame_feed(&l->rd, buf, (size_t)n);
    while ((rc = frame_next(&l->rd, &msg, &err)) == 1) {
        rc = on_frame(pub, l, msg, &err);
        json_decref(msg);
        if (rc == -1) {
            log_warnx("publish: link %s: %s; closing", l->hello ? l->dp_id : "(no hello)",
                      err.msg);
            /* best effort: the error message queued by on_hello, if any */
            if (l->out_len > l->out_off &&
                write(l->fd, l->out + l->out_off, l->out_len - l->out_off) < 0) {
            }
            close_link(pub, l, err.msg);
            return;
        }
    }
    if (rc == -1) {
        log_warnx("publish: link %s: %s; closing", l->hello ? l->dp_id : "(no hello)", err.msg);
        close_link(pub, l, err.msg);
    }
}

static void
write_link(struct publish *pub, struct link *l)
{
    ssize_t n = write(l->fd, l->out + l->out_off, l->out_len - l->out_off);

    if (n == -1 && errno != EAGAIN && errno != EINTR) {
        close_link(pub, l, strerror(errno));
        return;
    }
    if (n > 0) {
        l->out_off += (size_t)n;
    }
}

static void
accept_links(struct publish *pub)
{
    struct link *l;
    int fd;

    while ((fd = accept4(pub->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
        if (pub->nlinks >= MAX_LINKS) {
            log_warnx("publish: %d data planes connected already; refusing another", MAX_LINKS);
            close(fd);
            continue;
        }
        l = xcalloc(1, sizeof(*l));
        l->fd = fd;
        l->serial = ++pub->serials;
        l->connected = l->last_seen = now_mono();
        l->sent_version = -1;
        l->next = pub->links;
        pub->links = l;
        pub->nlinks++;
    }
}

static void
housekeeping(struct publish *pub)
{
    struct link *l, *next;
    double now = now_mono();
    bool ping = now - pub->last_ping >= PING_INTERVAL;

    for (l = pub->links; l != NULL; l = next) {
        next = l->next;
        if (now - l->last_seen > LINK_IDLE_MAX) {
            close_link(pub, l, "silent for 30 s");
        } else if (l->out_len - l->out_off > OUT_HIGH_MARK) {
            close_link(pub, l, "too slow: output above the high mark");
        } else if (ping && l->hello) {
            send_msg(l, msg_new(MSG_PING));
        }
    }
    if (ping) {
        pub->last_ping = now;
        update_dp_info(pub);
        fails_prune(pub, now_wall(), false);
    }
    if (store_ban_prune(pub->ctl->store, (int64_t)now_wall()) > 0) {
        push_bans(pub);
    }
}

static void *
publish_loop(void *arg)
{
    struct publish *pub = arg;
    struct pollfd *pfd = NULL;
    struct link **pl = NULL, *l;
    struct lookup *done;
    struct authreq *auth_done;
    struct forget *forget, *f;
    bool bans_changed, engines_changed;
    size_t cap = 0, n, i;
    uint64_t cnt;
    bool changed, stop;

    publish_changes(pub);
    push_bans(pub);
    for (;;) {
        if (cap < pub->nlinks + 2) {
            cap = pub->nlinks + 16;
            pfd = xrealloc(pfd, cap * sizeof(*pfd));
            pl = xrealloc(pl, cap * sizeof(*pl));
        }
        pfd[0] = (struct pollfd){.fd = pub->wake_fd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = pub->listen_fd, .events = POLLIN};
        n = 2;
        for (l = pub->links; l != NULL; l = l->next) {
            pfd[n] = (struct pollfd){.fd = l->fd, .events = POLLIN};
            if (l->out_len > l->out_off) {
                pfd[n].events |= POLLOUT;
            }
            pl[n++] = l;
        }
        if (poll(pfd, n, 1000) == -1 && errno != EINTR) {
            log_warn("publish: poll");
        }
        if (pfd[0].revents & POLLIN) {
            if (read(pub->wake_fd, &cnt, sizeof(cnt)) < 0) {
            }
        }
        pthread_mutex_lock(&pub->mtx);
        changed = pub->changed;
        stop = pub->stop;
        done = pub->done;
        auth_done = pub->auth_done;
        bans_changed = pub->bans_changed;
        forget = pub->forget;
        engines_changed = pub->engines_changed;
        pub->engines_changed = false;
        pub->bans_changed = false;
        pub->forget = NULL;
        pub->changed = false;
        pub->done = NULL;
        pub->auth_done = NULL;
        pthread_mutex_unlock(&pub->mtx);
        if (stop) {
            break;
        }
        /* Links may close below; handle writes and reads by walking the live list. */
        for (i = 2; i < n; i++) {
            for (l = pub->links; l != NULL && l != pl[i]; l = l->next) {
            }
            if (l == NULL) {
                continue;
            }
            if (pfd[i].revents & POLLOUT) {
                write_link(pub, l);
                for (l = pub->links; l != NULL && l != pl[i]; l = l->next) {
                }
                if (l == NULL) {
                    continue;
                }
            }
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                read_link(pub, l);
            }
        }
        if (pfd[1].revents & POLLIN) {
            accept_links(pub);
        }
        if (changed) {
            publish_changes(pub);
        }
        while ((f = forget) != NULL) {
            struct failures **fp = fail_slot(pub, f->ip);

            if (*fp != NULL) {
                fail_drop(pub, fp);
            }
            forget = f->next;
            free(f);
        }
        if (bans_changed) {
            push_bans(pub);
        }
        if (engines_changed) {
            for (l = pub->links; l != NULL; l = l->next) {
                if (l->hello) {
                    send_engines(pub, l);
                }
            }
        }
        finish_lookups(pub, done);
        finish_auths(pub, auth_done);
        housekeeping(pub);
        /* Try to flush what was queued without waiting for the next poll. */
        for (l = pub->links; l != NULL; l = l->next) {
            if (l->out_len > l->out_off) {
                ssize_t w = write(l->fd, l->out + l->out_off, l->out_len - l->out_off);

                if (w > 0) {
                    l->out_off += (size_t)w;
                }
            }
        }
    }
    free(pfd);
    free(pl);
    return NULL;
}

/* Binds the proto socket 0600, refusing when another harp-ctl answers on it. */
static int
listen_socket(const char *path, struct hp_err *err)
{
    struct sockaddr_un sun;
    mode_t old;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        err_set(err, "HP_CTL_SOCKET: %s is longer than %zu bytes", path, sizeof(sun.sun_path) - 1);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        err_set(err, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        close(fd);
        err_set(err, "HP_CTL_SOCKET: another harp-ctl answers on %s", path);
        return -1;
    }
    close(fd);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    old = umask(0177);
    if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        umask(old);
        err_set(err, "HP_CTL_SOCKET: cannot bind %s: %s", path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }
    umask(old);
    if (chmod(path, 0600) == -1 || listen(fd, 64) == -1) {
        int e = errno;

        err_set(err, "HP_CTL_SOCKET: cannot listen on the socket: %s", strerror(e));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

struct publish *
publish_start(struct ctl *ctl, struct hp_err *err)
{
    struct publish *pub = xcalloc(1, sizeof(*pub));

    pub->ctl = ctl;
    pub->refs = 1;
    pub->path = xstrdup(ctl->cfg.ctl_socket);
    pub->dp_info = json_array();
    pthread_mutex_init(&pub->mtx, NULL);
    pub->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pub->listen_fd = listen_socket(pub->path, err);
    if (pub->wake_fd == -1 || pub->listen_fd == -1) {
        goto fail;
    }
    if (pthread_create(&pub->thr, NULL, publish_loop, pub) != 0) {
        err_set(err, "cannot start the publisher thread");
        unlink(pub->path);
        goto fail;
    }
    return pub;
fail:
    if (pub->listen_fd != -1) {
        close(pub->listen_fd);
    }
    if (pub->wake_fd != -1) {
        close(pub->wake_fd);
    }
    json_decref(pub->dp_info);
    free(pub->path);
    free(pub);
    return NULL;
}

static void
publish_free(struct publish *pub)
{
    close(pub->wake_fd);
    pthread_mutex_destroy(&pub->mtx);
    free(pub);
}

void
publish_stop(struct publish *pub)
{
    struct lookup *lk, **lp;
    struct authreq *ar, **ap;
    struct missing *m;
    bool last;

    if (pub == NULL) {
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    pub->stop = true;
    pthread_mutex_unlock(&pub->mtx);
    wake(pub);
    pthread_join(pub->thr, NULL);
    while (pub->links != NULL) {
        close_link(pub, pub->links, "stopping");
    }
    pthread_mutex_lock(&pub->mtx);
    pub->stopped = true;
    /* Finished look-ups are ours to free; running ones free themselves (they see stopped). */
    while ((lk = pub->done) != NULL) {
        pub->done = lk->done_next;
        for (lp = &pub->inflight; *lp != NULL; lp = &(*lp)->next) {
            if (*lp == lk) {
                *lp = lk->next;
                break;
            }
        }
        free(lk->waiters);
        free(lk);
    }
    while ((m = pub->missing) != NULL) {
        pub->missing = m->next;
        free(m);
    }
    while ((ar = pub->auth_done) != NULL) {
        pub->auth_done = ar->done_next;
        for (ap = &pub->auth_inflight; *ap != NULL; ap = &(*ap)->next) {
            if (*ap == ar) {
                *ap = ar->next;
                break;
            }
        }
        authreq_free(ar);
    }
    sessions_prune(pub, 0, true);
    fails_prune(pub, 0, true);
    while (pub->forget != NULL) {
        struct forget *f = pub->forget;

        pub->forget = f->next;
        free(f);
    }
    last = --pub->refs == 0;
    pthread_mutex_unlock(&pub->mtx);
    close(pub->listen_fd);
    unlink(pub->path);
    json_decref(pub->table);
    json_decref(pub->dp_info);
    json_decref(pub->bans);
    json_decref(pub->engines);
    free(pub->path);
    pub->table = pub->dp_info = pub->bans = pub->engines = NULL;
    if (last) {
        publish_free(pub);
    }
}
