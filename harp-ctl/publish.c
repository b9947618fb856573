/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The publisher: what every data plane is told (the routing table, bans, engines) and who
 * answers what they ask. It owns the parts and wires them on the link server's thread:
 * link_server.c (links, framing, hello), app_lookup.c, user_lookup.c, failures.c.
 *
 * Design notes:
 * 1. The published table is the store's: at each change the thread reads all ExApps and the
 *    table version in one locked read, diffs them against what it published last, and sends
 *    `delta {from, version, upserts, deletes}` to each link whose last sent version is `from`,
 *    a `snapshot` to any other. Changes that arrive together fold into one delta.
 * 2. Versions are the store's table version: monotonic, persisted, bumped in the same
 *    transaction as the change.
 * 3. Links, hello and bad messages: link_server.c design notes.
 * 4. Look-ups of unknown app ids run on a pool of APP_LOOKUP_WORKERS threads, one per app id
 *    however many data planes ask (singleflight), at most APP_LOOKUP_MAX waiting or running.
 *    A found app is stored (so published) before the replies go out; "not found" is
 *    remembered for NEGATIVE_TTL. An app removed by DELETE comes back only when Nextcloud
 *    holds it enabled (a lost push of AppAPI's enable): a disabled app stays unreachable.
 * 5. User look-ups (user-info) run on a pool of HP_USER_LOOKUP_WORKERS threads, one per
 *    session cookie (or, without one, per Authorization value) however many requests carry
 *    it, at most HP_USER_LOOKUP_MAX waiting or running. Answers are cached per cookie for
 *    HP_SESSION_LIFETIME and every data plane gets the remaining lifetime with the answer, so
 *    it can serve the session alone until then; Authorization-only answers are not cached.
 *    A full pool, like a malformed request, is answered request_error: the client gets 503.
 * 6. Failure events from every data plane count against the client IP together; at
 *    HP_BLACKLIST_COUNT within HP_BLACKLIST_WINDOW the IP is banned in the store and the whole
 *    list of bans in force goes to every data plane (also after each snapshot and whenever an
 *    operator changes it or a ban expires).
 *
 * 7. After a reload (reload.c) the live settings go to every data plane, and to each that
 *    connects later; before the first reload each data plane keeps its own.
 *
 *   hello -> snapshot, bans, engines, settings? --(change)--> delta / bans / engines /
 *   settings ... --(close)-->
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_lookup.h"
#include "canon.h"
#include "counters.h"
#include "ctl.h"
#include "failures.h"
#include "k8s_upstream.h"
#include "link_server.h"
#include "log.h"
#include "msg.h"
#include "now.h"
#include "publish.h"
#include "user_lookup.h"
#include "xmalloc.h"

/* What the publisher keeps of a data plane that said hello (link->data). */
struct dataplane {
    int64_t sent_version, acked_version;
    double propagation; /* seconds from the publication of a version to its ack; -1: none yet */
    char dp_key[MSG_HASH_HEX + 1]; /* from hello: verifies its table_acks */
    struct msg_tunnel *tunnels;    /* as the data plane last reported them */
    size_t ntunnels;
};

/* An IP whose counted failures an operator's ban removal clears. */
struct forget {
    char ip[IP_STR_MAX];
    struct forget *next;
};

/* Created by publish_start(), freed by publish_stop(). */
struct publish {
    struct ctl *ctl;
    publish_tunnels_cb *on_tunnels;
    void *tunnels_ctx;
    /* The parts; set at start, then read-only. */
    struct link_server *ls;
    struct app_lookup *al;
    struct user_lookup *ul;
    struct failures *fails;
    /* Owned by the link thread. */
    struct exapp *apps; /* the published table, ordered by app id */
    size_t napps;
    json_t *table; /* app_id -> the published form of each, to find what changed */
    int64_t version;
    double version_at;            /* monotonic, when <version> was published */
    struct msg_table_audit audit; /* of <version>, as signed for the audit chain */
    double audit_pruned;          /* wall time of the last HP_AUDIT_RETENTION_DAYS pruning */
    struct msg_ban *bans;         /* as last pushed */
    size_t nbans;
    /* Shared, under mtx. */
    pthread_mutex_t mtx;
    bool changed, bans_changed, engines_changed, settings_changed;
    struct forget *forget;
    json_t *dp_info;
    struct msg_engine *engines; /* as last given */
    size_t nengines;
    bool engines_known;
    int64_t shared_version;       /* a copy of <version> for other threads */
    struct msg_settings settings; /* as a reload last gave them */
    bool settings_known;          /* only after a reload: until then each its own */
};

void
publish_notify(struct publish *pub)
{
    if (pub == NULL) {
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    pub->changed = true;
    pthread_mutex_unlock(&pub->mtx);
    link_server_wake(pub->ls);
}

json_t *
publish_dataplanes(struct publish *pub)
{
    json_t *a;

    json_t *d;
    double now = now_mono();
    size_t i;

    pthread_mutex_lock(&pub->mtx);
    a = json_deep_copy(pub->dp_info);
    pthread_mutex_unlock(&pub->mtx);
    /* The copy holds when each link connected and was last heard from; ages are of now. */
    json_array_foreach(a, i, d)
    {
        json_object_set_new(d, "connected_seconds",
                            json_real(now - json_real_value(json_object_get(d, "connected_at"))));
        json_object_set_new(d, "seen_seconds_ago",
                            json_real(now - json_real_value(json_object_get(d, "seen_at"))));
        json_object_del(d, "connected_at");
        json_object_del(d, "seen_at");
    }
    return a;
}

/* Rebuilds the copy of link states the API reads. */
static void
update_dp_info(struct publish *pub)
{
    json_t *a = json_array(), *tunnels;
    struct dataplane *dp;
    struct link *l;
    size_t i;

    for (l = link_server_links(pub->ls); l != NULL; l = l->next) {
        if (!l->hello) {
            continue;
        }
        dp = l->data;
        tunnels = json_array();
        for (i = 0; i < dp->ntunnels; i++) {
            json_array_append_new(
                tunnels,
                json_pack("{s:s,s:i,s:s,s:I,s:b,s:s}", "name", dp->tunnels[i].name, "port",
                          (int)dp->tunnels[i].port, "peer", dp->tunnels[i].peer, "since",
                          (json_int_t)dp->tunnels[i].since, "old_chain", dp->tunnels[i].old_chain,
                          "issuer_key", dp->tunnels[i].issuer_key));
        }
        json_array_append_new(
            a, json_pack("{s:s,s:I,s:I,s:I,s:f,s:f,s:o,s:o}", "dp_id", l->dp_id, "pid",
                         (json_int_t)l->pid, "applied_version", (json_int_t)dp->acked_version,
                         "table_version", (json_int_t)pub->version, "connected_at", l->connected,
                         "seen_at", l->last_seen, "tunnels", tunnels, "propagation_seconds",
                         dp->propagation >= 0 ? json_real(dp->propagation) : json_null()));
    }
    pthread_mutex_lock(&pub->mtx);
    json_decref(pub->dp_info);
    pub->dp_info = a;
    pthread_mutex_unlock(&pub->mtx);
}

static void
send_snapshot(struct publish *pub, struct link *l)
{
    struct dataplane *dp = l->data;
    struct msg m = {.type = MSG_SNAPSHOT};

    m.snapshot.version = pub->version;
    m.snapshot.exapps = pub->apps;
    m.snapshot.nexapps = pub->napps;
    m.snapshot.audit = pub->audit;
    if (link_server_send(l, &m) == 0) {
        dp->sent_version = pub->version; /* never for a snapshot that was not sent */
    }
}

/* Prunes the audit log to HP_AUDIT_RETENTION_DAYS, at start and hourly. */
static void
audit_retention(struct publish *pub)
{
    int64_t days = ENV_LIVE(pub->ctl->cfg.audit_retention_days), n;
    double now = now_wall();
    struct hp_err err;

    if (days == 0 || pub->ctl->audit_key == NULL || now < pub->audit_pruned + 3600) {
        return;
    }
    pub->audit_pruned = now;
    n = store_audit_prune(pub->ctl->store, pub->ctl->audit_key, (int64_t)now - days * 86400, &err);
    if (n < 0) {
        log_warnx("publish: %s", err.msg);
    } else if (n > 0) {
        log_info("publish: %lld audit entries older than %lld days pruned behind a checkpoint",
                 (long long)n, (long long)days);
    }
}

/* Records table <version> of <apps>, signed, for the audit chain. */
static void
sign_version(struct publish *pub, const struct exapp *apps, size_t n, int64_t version)
{
    struct msg_table_audit *a = &pub->audit;
    char hash[CANON_HASH_HEX];

    memset(a, 0, sizeof(*a));
    if (pub->ctl->audit_key == NULL) {
        return;
    }
    canon_table_hash(apps, n, hash);
    if (store_audit_sign_version(pub->ctl->store, pub->ctl->audit_key, version, hash, &a->seq,
                                 a->sig, a->chain_head) == 0) {
        memcpy(a->table_hash, hash, sizeof(a->table_hash));
    }
}

/* A data plane's signed acknowledgement: kept when it verifies with its hello's key and
 * names the hash published for that version. */
static void
on_table_ack(struct publish *pub, struct link *l, const struct msg_table_ack *a)
{
    struct dataplane *dp = l->data;
    json_t *j = canon_ack_json(a->version, l->dp_id, a->table_hash);
    bool ok = dp->dp_key[0] != '\0' && canon_verify(dp->dp_key, j, a->sig);

    json_decref(j);
    if (!ok || a->version != pub->version || strcmp(a->table_hash, pub->audit.table_hash) != 0) {
        log_warnx("publish: data plane %s: table_ack of version %lld %s", l->dp_id,
                  (long long)a->version,
                  ok ? "names another table than the one published" : "does not verify");
        return;
    }
    store_audit_ack(pub->ctl->store, a->version, l->dp_id, dp->dp_key, a->table_hash, a->sig);
}

/* Reads the store and pushes what changed. */
static void
publish_changes(struct publish *pub)
{
    struct msg m = {.type = MSG_DELTA};
    struct msg_delta *d = &m.delta;
    struct exapp *apps;
    struct hp_err err;
    json_t *table, *v, *old;
    struct dataplane *dp;
    const char *k;
    struct link *l;
    int64_t version;
    size_t i, n;

    if (store_exapp_snapshot(pub->ctl->store, &apps, &n, &version, &err) == -1) {
        log_warnx("publish: %s", err.msg);
        return;
    }
    if (pub->table != NULL && version == pub->version) {
        store_exapp_list_free(apps, n);
        return;
    }
    sign_version(pub, apps, n, version);
    /* what changed, by each record's published form */
    table = json_object();
    d->upserts = xcalloc(n + 1, sizeof(*d->upserts));
    for (i = 0; i < n; i++) {
        v = exapp_to_json(&apps[i], true);
        old = pub->table != NULL ? json_object_get(pub->table, apps[i].app_id) : NULL;
        if (old == NULL || !json_equal(old, v)) {
            d->upserts[d->nupserts++] = apps[i]; /* borrowed from <apps> */
        }
        json_object_set_new(table, apps[i].app_id, v);
    }
    d->deletes =
        xcalloc(pub->table != NULL ? json_object_size(pub->table) + 1 : 1, sizeof(*d->deletes));
    if (pub->table != NULL) {
        json_object_foreach(pub->table, k, v)
        {
            if (json_object_get(table, k) == NULL) {
                snprintf(d->deletes[d->ndeletes++], sizeof(*d->deletes), "%s", k);
            }
        }
    }
    d->from = pub->version;
    d->version = version;
    d->audit = pub->audit;
    for (l = link_server_links(pub->ls); l != NULL; l = l->next) {
        if (l->hello && (dp = l->data)->sent_version == pub->version &&
            link_server_send(l, &m) == 0) {
            dp->sent_version = version;
        }
    }
    log_info("publish: table version %lld (%zu upserts, %zu deletes)", (long long)version,
             d->nupserts, d->ndeletes);
    free(d->upserts);
    free(d->deletes);
    json_decref(pub->table);
    store_exapp_list_free(pub->apps, pub->napps);
    pub->table = table;
    pub->apps = apps;
    pub->napps = n;
    pub->version = version;
    pub->version_at = now_mono();
    pthread_mutex_lock(&pub->mtx);
    pub->shared_version = version;
    pthread_mutex_unlock(&pub->mtx);
    for (l = link_server_links(pub->ls); l != NULL; l = l->next) {
        if (l->hello && ((struct dataplane *)l->data)->sent_version != version) {
            send_snapshot(pub, l);
        }
    }
    update_dp_info(pub);
}

static void
send_engines(struct publish *pub, struct link *l)
{
    struct msg m = {.type = MSG_ENGINES};

    pthread_mutex_lock(&pub->mtx);
    m.engines.engines = pub->engines;
    m.engines.nengines = pub->nengines;
    link_server_send(l, &m);
    pthread_mutex_unlock(&pub->mtx);
}

json_t *
publish_engines_info(struct publish *pub)
{
    json_t *a = json_array();
    size_t i;

    pthread_mutex_lock(&pub->mtx);
    for (i = 0; i < pub->nengines; i++) {
        const struct msg_engine *e = &pub->engines[i];

        if (!e->refused) {
            json_array_append_new(a, json_pack("{s:i,s:s,s:b,s:s,s:s}", "port", (int)e->port,
                                               "address", e->address, "reachable",
                                               e->api_max[0] != '\0', "api_min", e->api_min,
                                               "api_max", e->api_max));
        }
    }
    pthread_mutex_unlock(&pub->mtx);
    return a;
}

void
publish_engines(struct publish *pub, struct msg_engine *engines, size_t n)
{
    if (pub == NULL) {
        free(engines);
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    if (pub->engines_known && n == pub->nengines &&
        (n == 0 || memcmp(pub->engines, engines, n * sizeof(*engines)) == 0)) {
        free(engines);
        pthread_mutex_unlock(&pub->mtx);
        return;
    }
    free(pub->engines);
    pub->engines = engines;
    pub->nengines = n;
    pub->engines_known = true;
    pub->engines_changed = true;
    pthread_mutex_unlock(&pub->mtx);
    link_server_wake(pub->ls);
}

static void
send_settings(struct publish *pub, struct link *l)
{
    struct msg m = {.type = MSG_SETTINGS};

    pthread_mutex_lock(&pub->mtx);
    if (pub->settings_known) {
        m.settings = pub->settings;
        link_server_send(l, &m);
    }
    pthread_mutex_unlock(&pub->mtx);
}

void
publish_settings(struct publish *pub, const struct msg_settings *s)
{
    if (pub == NULL) {
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    free(pub->settings.trusted_proxy_ips);
    pub->settings = *s;
    pub->settings.trusted_proxy_ips = xstrdup(s->trusted_proxy_ips);
    pub->settings_known = pub->settings_changed = true;
    pthread_mutex_unlock(&pub->mtx);
    link_server_wake(pub->ls);
}

static void
send_bans(struct publish *pub, struct link *l)
{
    struct msg m = {.type = MSG_BANS};

    m.bans.bans = pub->bans;
    m.bans.nbans = pub->nbans;
    link_server_send(l, &m);
}

/* Reads the bans in force from the store and pushes them to every data plane. */
static void
push_bans(struct publish *pub)
{
    json_t *list = store_ban_list(pub->ctl->store, (int64_t)now_wall()), *v;
    struct link *l;
    size_t i;

    free(pub->bans);
    pub->bans = xcalloc(json_array_size(list) + 1, sizeof(*pub->bans));
    pub->nbans = 0;
    json_array_foreach(list, i, v)
    {
        snprintf(pub->bans[pub->nbans].ip, sizeof(pub->bans[pub->nbans].ip), "%s",
                 json_string_value(json_object_get(v, "ip")));
        pub->bans[pub->nbans++].expires_at = json_integer_value(json_object_get(v, "expires_at"));
    }
    json_decref(list);
    for (l = link_server_links(pub->ls); l != NULL; l = l->next) {
        if (l->hello) {
            send_bans(pub, l);
        }
    }
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
    link_server_wake(pub->ls);
}

void
publish_forget_missing(struct publish *pub, const char *app_id)
{
    if (pub != NULL) {
        app_lookup_forget_missing(pub->al, app_id);
    }
}

static json_t *
pool_json(const struct pool_stats *st)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "workers", (json_int_t)st->workers, "running",
                     (json_int_t)st->running, "queued", (json_int_t)st->queued, "max",
                     (json_int_t)st->max_jobs, "done", (json_int_t)st->done, "refused",
                     (json_int_t)st->refused);
}

void
publish_stats(struct publish *pub, json_t *o)
{
    struct pool_stats st;

    if (pub == NULL) {
        return;
    }
    user_lookup_stats(pub->ul, &st);
    json_object_set_new(o, "user_lookups", pool_json(&st));
    app_lookup_stats(pub->al, &st);
    json_object_set_new(o, "app_lookups", pool_json(&st));
    json_object_set_new(o, "dataplane_bad_messages",
                        json_integer((json_int_t)link_server_bad_messages(pub->ls)));
    pthread_mutex_lock(&pub->mtx);
    json_object_set_new(o, "published_version", json_integer(pub->shared_version));
    pthread_mutex_unlock(&pub->mtx);
}

/* failures.c asks whether <ip> is banned already. */
static bool
is_banned(void *ctx, const char *ip)
{
    struct publish *pub = ctx;
    size_t i;

    for (i = 0; i < pub->nbans; i++) {
        if (strcmp(pub->bans[i].ip, ip) == 0) {
            return true;
        }
    }
    return false;
}

static void
on_ban_added(void *ctx, const char *ip)
{
    (void)ip;
    counters_ban();
    push_bans(ctx);
}

static int
cmp_app_id(const void *key, const void *app)
{
    return strcmp(key, ((const struct exapp *)app)->app_id);
}

/* app_lookup.c asks for the published ExApp <app_id>. */
static const struct exapp *
published(void *ctx, const char *app_id)
{
    struct publish *pub = ctx;

    /* the store gives them ordered by app id */
    return pub->napps > 0 ? bsearch(app_id, pub->apps, pub->napps, sizeof(*pub->apps), cmp_app_id)
                          : NULL;
}

static void
on_stored(void *ctx)
{
    publish_changes(ctx);
}

static void
on_event(struct publish *pub, struct link *l, struct msg *m)
{
    struct dataplane *dp = l->data;

    if (m->event.event == MSG_EVENT_FAILURE) {
        counters_failure();
        failures_add(pub->fails, m->event.ip, now_wall());
        return;
    }
    free(dp->tunnels);
    dp->tunnels = m->event.tunnels; /* taken out of <m> */
    dp->ntunnels = m->event.ntunnels;
    m->event.tunnels = NULL;
    m->event.ntunnels = 0;
    log_info("publish: data plane %s reports %zu tunnels", l->dp_id, dp->ntunnels);
    update_dp_info(pub);
    if (pub->on_tunnels != NULL) {
        pub->on_tunnels(pub->tunnels_ctx);
    }
}

static void
on_hello(void *ctx, struct link *l, const struct msg_hello *hello)
{
    struct publish *pub = ctx;
    struct dataplane *dp = xcalloc(1, sizeof(*dp));

    dp->sent_version = -1;
    dp->acked_version = hello->version;
    dp->propagation = -1;
    counters_dp_hello(l->dp_id, l->pid);
    memcpy(dp->dp_key, hello->dp_key, sizeof(dp->dp_key));
    l->data = dp;
    log_info("publish: data plane %s (pid %lld) connected at version %lld", l->dp_id, l->pid,
             (long long)dp->acked_version);
    send_snapshot(pub, l);
    send_bans(pub, l);
    send_engines(pub, l);
    send_settings(pub, l);
    update_dp_info(pub);
}

static void
on_message(void *ctx, struct link *l, struct msg *m)
{
    struct publish *pub = ctx;
    struct dataplane *dp = l->data;

    switch (m->type) {
    case MSG_ACK:
        if (m->ack.version == pub->version && dp->acked_version != pub->version &&
            pub->version_at > 0) {
            dp->propagation = now_mono() - pub->version_at;
        }
        dp->acked_version = m->ack.version;
        update_dp_info(pub);
        break;
    case MSG_METRICS:
        counters_dp_update(l->dp_id, &m->metrics);
        break;
    case MSG_TABLE_ACK:
        on_table_ack(pub, l, &m->table_ack);
        break;
    case MSG_LOOKUP:
        app_lookup_on_request(pub->al, l, m);
        break;
    case MSG_AUTH:
        user_lookup_on_request(pub->ul, l, m);
        break;
    case MSG_EVENT:
        on_event(pub, l, m);
        break;
    default:
        break;
    }
}

static void
on_close(void *ctx, struct link *l)
{
    struct dataplane *dp = l->data;

    if (dp != NULL) {
        counters_dp_gone(l->dp_id);
        free(dp->tunnels);
        free(dp);
        l->data = NULL;
    }
    update_dp_info(ctx);
}

/* A turn of the link thread: what other threads queued, then finished look-ups. */
static void
on_turn(void *ctx)
{
    struct publish *pub = ctx;
    struct forget *forget, *f;
    bool changed, bans_changed, engines_changed, settings_changed;
    struct link *l;

    pthread_mutex_lock(&pub->mtx);
    changed = pub->changed;
    bans_changed = pub->bans_changed;
    engines_changed = pub->engines_changed;
    settings_changed = pub->settings_changed;
    forget = pub->forget;
    pub->changed = pub->bans_changed = pub->engines_changed = pub->settings_changed = false;
    pub->forget = NULL;
    pthread_mutex_unlock(&pub->mtx);
    if (changed) {
        publish_changes(pub);
    }
    while ((f = forget) != NULL) {
        failures_forget(pub->fails, f->ip);
        forget = f->next;
        free(f);
    }
    if (bans_changed) {
        push_bans(pub);
    }
    if (engines_changed) {
        for (l = link_server_links(pub->ls); l != NULL; l = l->next) {
            if (l->hello) {
                send_engines(pub, l);
            }
        }
    }
    if (settings_changed) {
        for (l = link_server_links(pub->ls); l != NULL; l = l->next) {
            if (l->hello) {
                send_settings(pub, l);
            }
        }
    }
    app_lookup_finish(pub->al);
    user_lookup_finish(pub->ul);
    if (store_ban_prune(pub->ctl->store, (int64_t)now_wall()) > 0) {
        push_bans(pub);
    }
}

static void
on_tick(void *ctx)
{
    struct publish *pub = ctx;

    update_dp_info(pub);
    failures_prune(pub->fails, now_wall());
    audit_retention(pub);
}

static const struct link_server_handlers handlers = {
    .on_hello = on_hello,
    .on_message = on_message,
    .on_close = on_close,
    .on_turn = on_turn,
    .on_tick = on_tick,
};

/* A found app's Kubernetes upstream (spec 4.10), on a look-up thread. */
static int
k8s_upstream(void *ctx, struct exapp *app)
{
    struct publish *pub = ctx;

    return k8s_upstream_apply(&pub->ctl->cfg, pub->ctl->store, app);
}

struct publish *
publish_start(struct ctl *ctl, publish_tunnels_cb *on_tunnels, void *ctx, struct hp_err *err)
{
    struct publish *pub = xcalloc(1, sizeof(*pub));
    struct app_lookup_hooks ah = {published, on_stored, k8s_upstream, pub};
    struct failures_hooks fh = {is_banned, on_ban_added, pub};

    pub->ctl = ctl;
    pub->on_tunnels = on_tunnels;
    pub->tunnels_ctx = ctx;
    pub->dp_info = json_array();
    pub->changed = pub->bans_changed = true; /* the first turn publishes */
    pthread_mutex_init(&pub->mtx, NULL);
    pub->ls = link_server_open(ctl->cfg.ctl_socket, &handlers, pub, err);
    if (pub->ls == NULL) {
        goto fail;
    }
    pub->fails = failures_new(&ctl->cfg, ctl->store, &fh);
    if ((pub->ul = user_lookup_start(&ctl->cfg, pub->ls, err)) == NULL ||
        (pub->al = app_lookup_start(&ctl->cfg, ctl->store, pub->ls, &ah, err)) == NULL ||
        link_server_run(pub->ls, err) == -1) {
        goto fail;
    }
    return pub;
fail:
    if (pub->ls != NULL) {
        link_server_stop(pub->ls);
    }
    app_lookup_stop(pub->al);
    user_lookup_stop(pub->ul);
    failures_free(pub->fails);
    link_server_free(pub->ls);
    json_decref(pub->dp_info);
    pthread_mutex_destroy(&pub->mtx);
    free(pub);
    return NULL;
}

void
publish_stop(struct publish *pub)
{
    struct forget *f;

    if (pub == NULL) {
        return;
    }
    link_server_stop(pub->ls);
    /* Look-ups still running free themselves; their wakes stop here. */
    app_lookup_stop(pub->al);
    user_lookup_stop(pub->ul);
    link_server_free(pub->ls);
    failures_free(pub->fails);
    while ((f = pub->forget) != NULL) {
        pub->forget = f->next;
        free(f);
    }
    json_decref(pub->dp_info);
    json_decref(pub->table);
    store_exapp_list_free(pub->apps, pub->napps);
    free(pub->engines);
    free(pub->bans);
    free(pub->settings.trusted_proxy_ips);
    pthread_mutex_destroy(&pub->mtx);
    free(pub);
}
