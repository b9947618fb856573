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
 *    and the link is closed. After hello a bad message never closes the link: it fails its
 *    request (request_error) or is ignored; only a frame the stream cannot be followed past
 *    (a length over FRAME_MAX) does. A link whose unsent output exceeds OUT_HIGH_MARK is
 *    dropped; the data plane reconnects and gets a snapshot.
 * 4. Look-ups of unknown app ids run on a pool of APP_LOOKUP_WORKERS threads, one per app id
 *    however many data planes ask (singleflight), at most APP_LOOKUP_MAX waiting or running.
 *    A found app is stored (so published) before the replies go out; "not found" is
 *    remembered for NEGATIVE_TTL; removed apps are never fetched.
 * 5. User look-ups (user-info) run on a pool of HP_USER_LOOKUP_WORKERS threads, one per
 *    session cookie (or, without one, per Authorization value) however many requests carry
 *    it, at most HP_USER_LOOKUP_MAX waiting or running. Answers are cached per cookie for
 *    HP_SESSION_LIFETIME and every data plane gets the remaining lifetime with the answer, so
 *    it can serve the session alone until then; Authorization-only answers are not cached.
 *    A full pool, like a malformed request, is answered request_error: the client gets 503.
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

#include "ctl.h"
#include "engines.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "publish_int.h"
#include "xmalloc.h"

#define OUT_HIGH_MARK (64u * 1024 * 1024)
#define MAX_LINKS 256
#define PING_INTERVAL 5.0
#define LINK_IDLE_MAX 30.0
/* Look-ups of unknown app ids: workers and jobs waiting or running (beyond: 503). */
#define APP_LOOKUP_WORKERS 4
#define APP_LOOKUP_MAX 256

double
pub_now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
pub_wake(struct publish *pub)
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
    pub_wake(pub);
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
    double now = pub_now_mono();

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

int
pub_send(struct link *l, json_t *msg)
{
    size_t n;
    char *f = frame_encode(msg, &n);

    if (f == NULL) {
        log_errorx("publish: a %s message for %s exceeds the %u-byte frame limit; not sent",
                   json_string_value(json_object_get(msg, "type")), l->dp_id, FRAME_MAX);
        json_decref(msg);
        return -1;
    }
    json_decref(msg);
    if (l->out_off > 0 && l->out_off == l->out_len) {
        l->out_off = l->out_len = 0;
    }
    l->out = xrealloc(l->out, l->out_len + n);
    memcpy(l->out + l->out_len, f, n);
    l->out_len += n;
    free(f);
    return 0;
}

struct link *
pub_link(struct publish *pub, uint64_t serial)
{
    struct link *l;

    for (l = pub->links; l != NULL && l->serial != serial; l = l->next) {
    }
    return l;
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
    if (pub_send(l, m) == 0) {
        l->sent_version = pub->version; /* never for a snapshot that was not sent */
    }
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
            if (pub_send(l, m) == 0) {
                l->sent_version = version;
            }
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

double
pub_now_wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
send_engines(struct publish *pub, struct link *l)
{
    json_t *m = msg_new(MSG_ENGINES);

    pthread_mutex_lock(&pub->mtx);
    json_object_set_new(m, "engines",
                        pub->engines != NULL ? json_deep_copy(pub->engines) : json_array());
    pthread_mutex_unlock(&pub->mtx);
    pub_send(l, m);
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
    pub_wake(pub);
}

static void
on_event(struct publish *pub, struct link *l, json_t *msg)
{
    const char *ev = json_string_value(json_object_get(msg, "event"));
    json_t *t = json_object_get(msg, "tunnels");

    if (strcmp(ev, "failure") == 0) {
        bans_on_failure(pub, json_string_value(json_object_get(msg, "ip")));
    } else if (strcmp(ev, "tunnels") == 0 && json_is_array(t)) {
        json_decref(l->tunnels);
        l->tunnels = json_incref(t);
        log_info("publish: data plane %s reports %zu tunnels", l->dp_id, json_array_size(t));
        update_dp_info(pub);
        /* An engine behind a tunnel that came up: probe its API versions now. */
        engines_changed(pub->ctl->engines);
    }
}

/* 0, or -1 with <err> when the data plane is refused (it was sent an error message). */
static int
on_hello(struct publish *pub, struct link *l, json_t *msg, struct hp_err *err)
{
    json_int_t proto = json_integer_value(json_object_get(msg, "proto"));
    json_t *pid = json_object_get(msg, "pid");
    json_t *m;

    if (proto != PROTO_VERSION) {
        err_set(err, "data plane speaks proto %lld, this harp-ctl %d: refused", (long long)proto,
                PROTO_VERSION);
        m = msg_new(MSG_ERROR);
        json_object_set_new(m, "message", json_sprintf("proto version %d required", PROTO_VERSION));
        pub_send(l, m);
        return -1;
    }
    snprintf(l->dp_id, sizeof(l->dp_id), "%s", json_string_value(json_object_get(msg, "dp_id")));
    l->pid = json_is_integer(pid) ? json_integer_value(pid) : 0;
    l->acked_version = json_integer_value(json_object_get(msg, "version"));
    l->hello = true;
    log_info("publish: data plane %s (pid %lld) connected at version %lld", l->dp_id, l->pid,
             (long long)l->acked_version);
    pub_send(l, msg_encode(&(struct msg){.type = MSG_WELCOME, .welcome.proto = PROTO_VERSION}));
    send_snapshot(pub, l);
    bans_send(pub, l);
    send_engines(pub, l);
    update_dp_info(pub);
    return 0;
}

/* 0, or -1 when the link must close (the reason in <err>): a link is closed for what it
 * sends before a valid hello, or for an error message; any other bad message of a data plane
 * that said hello fails that request alone (pub_bad_message). */
static int
on_frame(struct publish *pub, struct link *l, json_t *msg, struct hp_err *err)
{
    int t = msg_check(msg, MSG_FROM_DP, err);

    if (!l->hello) {
        if (t == MSG_HELLO) {
            return on_hello(pub, l, msg, err);
        }
        if (t != -1) {
            err_set(err, "\"%s\" before hello", msg_type_name(t));
        }
        return -1;
    }
    if (t == -1) {
        pub_bad_message(pub, l, msg, err->msg);
        return 0;
    }
    switch (t) {
    case MSG_HELLO:
        pub_bad_message(pub, l, msg, "a second hello");
        return 0;
    case MSG_ACK:
        l->acked_version = json_integer_value(json_object_get(msg, "version"));
        update_dp_info(pub);
        return 0;
    case MSG_LOOKUP:
        lookup_on_request(pub, l, msg);
        return 0;
    case MSG_AUTH:
        auth_on_request(pub, l, msg);
        return 0;
    case MSG_EVENT:
        on_event(pub, l, msg);
        return 0;
    case MSG_PING:
        pub_send(l, msg_new(MSG_PONG));
        return 0;
    case MSG_ERROR:
        err_set(err, "data plane error: %s", json_string_value(json_object_get(msg, "message")));
        return -1;
    default:
        return 0; /* pongs: nothing to do */
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
    l->last_seen = pub_now_mono();
    frame_feed(&l->rd, buf, (size_t)n);
    while ((rc = frame_next(&l->rd, &msg, &err)) != 0) {
        if (rc == FRAME_BAD && l->hello) {
            pub_bad_message(pub, l, NULL, err.msg);
            continue;
        }
        if (rc == 1) {
            rc = on_frame(pub, l, msg, &err);
            json_decref(msg);
            if (rc == 0) {
                continue;
            }
        }
        log_warnx("publish: link %s: %s; closing", l->hello ? l->dp_id : "(no hello)", err.msg);
        /* best effort: the error message queued by on_hello, if any */
        if (l->out_len > l->out_off &&
            write(l->fd, l->out + l->out_off, l->out_len - l->out_off) < 0) {
        }
        close_link(pub, l, err.msg);
        return;
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
        l->connected = l->last_seen = pub_now_mono();
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
    double now = pub_now_mono();
    bool ping = now - pub->last_ping >= PING_INTERVAL;

    for (l = pub->links; l != NULL; l = next) {
        next = l->next;
        if (now - l->last_seen > LINK_IDLE_MAX) {
            close_link(pub, l, "silent for 30 s");
        } else if (l->out_len - l->out_off > OUT_HIGH_MARK) {
            close_link(pub, l, "too slow: output above the high mark");
        } else if (ping && l->hello) {
            pub_send(l, msg_new(MSG_PING));
        }
    }
    if (ping) {
        pub->last_ping = now;
        update_dp_info(pub);
        bans_prune_failures(pub, pub_now_wall());
    }
    if (store_ban_prune(pub->ctl->store, (int64_t)pub_now_wall()) > 0) {
        bans_push(pub);
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
    struct forget *forget;
    bool bans_changed, engines_changed;
    size_t cap = 0, n, i;
    uint64_t cnt;
    bool changed, stop;

    publish_changes(pub);
    bans_push(pub);
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
        bans_forget(pub, forget);
        if (bans_changed) {
            bans_push(pub);
        }
        if (engines_changed) {
            for (l = pub->links; l != NULL; l = l->next) {
                if (l->hello) {
                    send_engines(pub, l);
                }
            }
        }
        lookup_finish(pub, done);
        auth_finish(pub, auth_done);
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
    pub->user_pool =
        pool_start("user look-ups", ctl->cfg.user_lookup_workers, ctl->cfg.user_lookup_max);
    pub->app_pool = pool_start("app look-ups", APP_LOOKUP_WORKERS, APP_LOOKUP_MAX);
    if (pub->user_pool == NULL || pub->app_pool == NULL) {
        err_set(err, "cannot start the look-up threads");
        unlink(pub->path);
        goto fail;
    }
    if (pthread_create(&pub->thr, NULL, publish_loop, pub) != 0) {
        err_set(err, "cannot start the publisher thread");
        unlink(pub->path);
        goto fail;
    }
    return pub;
fail:
    pool_stop(pub->user_pool);
    pool_stop(pub->app_pool);
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
pub_waiter_add(struct waiter **v, size_t *n, uint64_t serial, json_int_t id)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = (struct waiter){serial, id};
}

void
pub_worker_release(struct publish *pub)
{
    bool last = --pub->refs == 0;

    pthread_mutex_unlock(&pub->mtx);
    if (last) {
        publish_free(pub);
    }
}

void
publish_stop(struct publish *pub)
{
    bool last;

    if (pub == NULL) {
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    pub->stop = true;
    pthread_mutex_unlock(&pub->mtx);
    pub_wake(pub);
    pthread_join(pub->thr, NULL);
    while (pub->links != NULL) {
        close_link(pub, pub->links, "stopping");
    }
    pthread_mutex_lock(&pub->mtx);
    pub->stopped = true;
    lookup_clear(pub);
    auth_clear(pub);
    bans_clear(pub);
    json_decref(pub->dp_info);
    json_decref(pub->engines);
    pub->dp_info = pub->engines = NULL;
    pthread_mutex_unlock(&pub->mtx);
    /* Jobs still queued run cancelled and free themselves; the pools end on their own. */
    pool_stop(pub->user_pool);
    pool_stop(pub->app_pool);
    close(pub->listen_fd);
    unlink(pub->path);
    json_decref(pub->table);
    json_decref(pub->bans);
    free(pub->path);
    pub->table = pub->bans = NULL;
    /* Our reference goes last: a worker ending now must not free <pub> under us. */
    pthread_mutex_lock(&pub->mtx);
    last = --pub->refs == 0;
    pthread_mutex_unlock(&pub->mtx);
    if (last) {
        publish_free(pub);
    }
}
