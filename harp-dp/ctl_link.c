/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The proto client of a data plane.
 *
 * Design notes:
 * 1. The link connects to HP_CTL_SOCKET, says hello with the version of the table it holds,
 *    and applies what comes: a snapshot replaces the table; a delta applies only on top of the
 *    version it names, else the link is dropped and re-established, which brings a snapshot.
 * 2. A new table is built beside the live one and swapped whole once every entry is valid;
 *    requests keep the table they started with (refcount). An invalid table is refused and the
 *    old one keeps serving. Each applied version is acked.
 * 3. The link answers its owner only through the handlers handed to ctl_link_start(): it
 *    never calls the request layer, the FRP frontend or the snapshot by name.
 * 4. When the control plane is away the last table keeps serving; look-ups fail at once (the
 *    caller answers 503) and the link retries every RECONNECT_MS.
 * 5. Every message is decoded and validated by msg_decode() before it is acted on. The first
 *    must be `welcome` with this PROTO_VERSION: a control plane of another version is refused
 *    (logged once until one is accepted) and the link closes and retries as in note 4. A
 *    malformed message is logged and skipped; a malformed reply fails its request (503).
 *
 * 6. The link holds an Ed25519 key made at start; its public half goes in hello. When a
 *    table version announces its hash (audit), the table applied is hashed the same way
 *    (proto/canon.h) and, when they agree, a signed table_ack follows the ack.
 *
 *   DOWN --connect--> CONNECTING --connected: hello--> HELLO --welcome--> UP
 *        <-----------------------close/error/another version-------------------+ (+retry)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canon.h"
#include "ctl_link.h"
#include "dp.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "secret.h"
#include "xmalloc.h"

#define RECONNECT_MS 200
#define PING_S 5
#define SILENCE_MAX_S 20
/* Metrics wait while this much is still to be sent on the link. */
#define METRICS_BACKLOG_MAX (1024 * 1024)

struct pending {
    int64_t id;
    bool auth;    /* an auth request, else a look-up */
    void *waiter; /* handed back to on_lookup_reply / on_auth_reply */
    struct pending *next;
};

struct ctl_link {
    const struct ctl_link_handlers *h;
    struct lws *wsi;
    bool up;       /* connected */
    bool welcomed; /* and the control plane speaks our version: the link is usable */
    bool refused_logged;
    struct frame_reader rd;
    char *out;
    size_t out_len, out_off;
    int64_t next_id;
    struct pending *pending;
    lws_sorted_usec_list_t sul_retry, sul_ping, sul_metrics;
    lws_usec_t last_rx;
    bool logged_down;
    struct log_rate bad_log;
    struct evp_pkey_st *key; /* signs table_acks */
    char key_hex[CANON_KEY_HEX];
};

static void connect_link(lws_sorted_usec_list_t *sul);

bool
ctl_link_up(const struct ctl_link *l)
{
    return l != NULL && l->up && l->welcomed;
}

static void
send_msg(struct ctl_link *l, const struct msg *m)
{
    size_t n;
    char *f = msg_frame(m, &n);

    if (f == NULL || l->wsi == NULL) {
        free(f);
        return;
    }
    if (l->out_off == l->out_len) {
        l->out_off = l->out_len = 0;
    }
    l->out = xrealloc(l->out, l->out_len + n);
    memcpy(l->out + l->out_len, f, n);
    l->out_len += n;
    free(f);
    lws_callback_on_writable(l->wsi);
}

static struct pending *
add_pending(struct ctl_link *l, void *waiter, bool auth)
{
    struct pending *p = xcalloc(1, sizeof(*p));

    p->id = ++l->next_id;
    p->waiter = waiter;
    p->auth = auth;
    p->next = l->pending;
    l->pending = p;
    return p;
}

int
ctl_link_lookup(struct ctl_link *l, const char *app_id, void *waiter)
{
    struct msg m = {.type = MSG_LOOKUP, .has_id = true};

    if (!ctl_link_up(l)) {
        return -1;
    }
    m.id = add_pending(l, waiter, false)->id;
    snprintf(m.lookup.app_id, sizeof(m.lookup.app_id), "%s", app_id);
    send_msg(l, &m);
    return 0;
}

/* Wipes and frees header values handed in by ctl_link_auth()'s caller. */
static void
free_headers(struct msg_header *h, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        secret_wipe(h[i].value, h[i].value_len);
        free(h[i].value);
    }
    free(h);
}

int
ctl_link_auth(struct ctl_link *l, const char *app_id, struct span cookie,
              struct msg_header *headers, size_t nheaders, void *waiter)
{
    struct msg m = {.type = MSG_AUTH, .has_id = true};

    if (!ctl_link_up(l)) {
        free_headers(headers, nheaders);
        return -1;
    }
    m.id = m.auth.id = add_pending(l, waiter, true)->id;
    snprintf(m.auth.app_id, sizeof(m.auth.app_id), "%s", app_id);
    m.auth.cookie = xmalloc(cookie.n + 1);
    memcpy(m.auth.cookie, cookie.p, cookie.n);
    m.auth.cookie[cookie.n] = '\0';
    m.auth.cookie_len = cookie.n;
    m.auth.headers = headers;
    m.auth.nheaders = nheaders;
    send_msg(l, &m);
    secret_wipe(m.auth.cookie, m.auth.cookie_len);
    free(m.auth.cookie);
    free_headers(headers, nheaders);
    return 0;
}

void
ctl_link_forget(struct ctl_link *l, void *waiter)
{
    struct pending **pp, *p;

    if (l == NULL) {
        return;
    }
    for (pp = &l->pending; (p = *pp) != NULL;) {
        if (p->waiter == waiter) {
            *pp = p->next;
            free(p);
        } else {
            pp = &p->next;
        }
    }
}

/* Fails every pending look-up (the link went down). */
static void
fail_pending(struct ctl_link *l)
{
    struct pending *p;

    while ((p = l->pending) != NULL) {
        l->pending = p->next;
        if (p->auth) {
            struct user u = {.state = USER_ERROR};

            l->h->on_auth_reply(l->h->ctx, p->waiter, &u, 0);
        } else {
            l->h->on_lookup_reply(l->h->ctx, p->waiter, true);
        }
        free(p);
    }
}

/* The version of the table serving now; -1 before the first. */
static int64_t
current_version(const struct ctl_link *l)
{
    const struct table *t = l->h->current(l->h->ctx);

    return t != NULL ? t->version : -1;
}

/* The signed acknowledgement of table <version> applied, whose hash is <hash>, when
 * harp-ctl announced its hash in <audit> and they agree. */
static void
send_table_ack(struct ctl_link *l, const char *hash, int64_t version,
               const struct msg_table_audit *audit)
{
    struct msg m = {.type = MSG_TABLE_ACK};
    json_t *j;
    int rc;

    if (audit->table_hash[0] == '\0' || l->key == NULL) {
        return;
    }
    if (strcmp(hash, audit->table_hash) != 0) {
        log_warnx("ctl: table version %lld does not hash to the announced %s (%s): not "
                  "acknowledged for the audit chain",
                  (long long)version, audit->table_hash, hash);
        return;
    }
    j = canon_ack_json(version, dp->dp_id, hash);
    rc = canon_sign(l->key, j, m.table_ack.sig);
    json_decref(j);
    if (rc == 0) {
        m.table_ack.version = version;
        memcpy(m.table_ack.table_hash, hash, sizeof(m.table_ack.table_hash));
        send_msg(l, &m);
    }
}

/* Hands the <n> <apps> (moved) of <version> to the owner; acks them once applied. */
static void
swap_table(struct ctl_link *l, struct exapp *apps, size_t n, int64_t version,
           const struct msg_table_audit *audit)
{
    struct msg ack = {.type = MSG_ACK};
    struct hp_err err;
    int64_t old = current_version(l);
    char hash[CANON_HASH_HEX] = "";

    /* hashed before the owner takes <apps> */
    if (audit->table_hash[0] != '\0') {
        canon_table_hash(apps, n, hash);
    }

    if (l->h->on_table(l->h->ctx, apps, n, version, &err) == -1) {
        log_warnx("ctl: table version %lld refused (%s); keeping version %lld", (long long)version,
                  err.msg, (long long)old);
        return;
    }
    log_info("ctl: table version %lld applied (%zu ExApps)", (long long)version, n);
    ack.ack.version = version;
    send_msg(l, &ack);
    send_table_ack(l, hash, version, audit);
}

static void
on_snapshot(struct ctl_link *l, struct msg_snapshot *s)
{
    swap_table(l, s->exapps, s->nexapps, s->version, &s->audit);
}

static int
on_delta(struct ctl_link *l, struct msg_delta *d)
{
    const struct table *old = l->h->current(l->h->ctx);
    const struct table_app *a;
    struct exapp *apps;
    bool *drop;
    size_t i, n = 0;

    if (old == NULL || old->version != d->from) {
        log_warnx("ctl: delta from version %lld but the table is at %lld; resynchronising",
                  (long long)d->from, old ? (long long)old->version : -1LL);
        return -1;
    }
    drop = xcalloc(old->napps + 1, sizeof(*drop));
    for (i = 0; i < d->ndeletes + d->nupserts; i++) {
        a = table_find(old, i < d->ndeletes ? d->deletes[i] : d->upserts[i - d->ndeletes].app_id);
        if (a != NULL) {
            drop[a - old->apps] = true;
        }
    }
    apps = xcalloc(old->napps + d->nupserts + 1, sizeof(*apps));
    for (i = 0; i < old->napps; i++) {
        if (!drop[i]) {
            exapp_copy(&apps[n++], &old->apps[i].meta);
        }
    }
    for (i = 0; i < d->nupserts; i++) {
        apps[n++] = d->upserts[i];
        memset(&d->upserts[i], 0, sizeof(d->upserts[i]));
    }
    swap_table(l, apps, n, d->version, &d->audit);
    free(apps);
    free(drop);
    return 0;
}

static void
on_auth_reply(struct ctl_link *l, int64_t id, const struct msg_auth_reply *r)
{
    struct pending **pp, *p;
    struct user u;

    memset(&u, 0, sizeof(u));
    switch (r->result) {
    case MSG_AUTH_USER:
        u.state = USER_KNOWN;
        snprintf(u.id, sizeof(u.id), "%s", r->user_id);
        u.level = (int)r->access_level;
        break;
    case MSG_AUTH_ANONYMOUS:
        u.state = USER_NONE;
        break;
    case MSG_AUTH_ERROR:
        u.state = USER_ERROR;
        break;
    }
    for (pp = &l->pending; (p = *pp) != NULL; pp = &p->next) {
        if (p->id == id && p->auth) {
            *pp = p->next;
            l->h->on_auth_reply(l->h->ctx, p->waiter, &u, (lws_usec_t)r->ttl_ms * 1000);
            free(p);
            return;
        }
    }
}

void
ctl_link_failure(struct ctl_link *l, const char *ip)
{
    struct msg m = {.type = MSG_EVENT, .event.event = MSG_EVENT_FAILURE};

    if (!ctl_link_up(l)) {
        return;
    }
    snprintf(m.event.ip, sizeof(m.event.ip), "%s", ip);
    send_msg(l, &m);
}

void
ctl_link_tunnels(struct ctl_link *l)
{
    struct msg m = {.type = MSG_EVENT, .event.event = MSG_EVENT_TUNNELS};

    if (!ctl_link_up(l)) {
        return;
    }
    if (l->h->tunnels != NULL) {
        m.event.ntunnels = l->h->tunnels(l->h->ctx, &m.event.tunnels);
    }
    send_msg(l, &m);
    free(m.event.tunnels);
}

/* request_error: the control plane cannot answer request <id>; it fails with 503 (<why>). */
static void
on_request_error(struct ctl_link *l, int64_t id, const char *why)
{
    struct pending **pp, *p;

    for (pp = &l->pending; (p = *pp) != NULL; pp = &p->next) {
        if (p->id == id) {
            *pp = p->next;
            log_info("ctl: request %lld refused by the control plane: %s", (long long)id, why);
            if (p->auth) {
                struct user u = {.state = USER_UNAVAILABLE};

                l->h->on_auth_reply(l->h->ctx, p->waiter, &u, 0);
            } else {
                l->h->on_lookup_reply(l->h->ctx, p->waiter, true);
            }
            free(p);
            return;
        }
    }
}

static void
on_lookup_reply(struct ctl_link *l, int64_t id)
{
    struct pending **pp, *p;

    for (pp = &l->pending; (p = *pp) != NULL; pp = &p->next) {
        if (p->id == id && !p->auth) {
            *pp = p->next;
            l->h->on_lookup_reply(l->h->ctx, p->waiter, false);
            free(p);
            return;
        }
    }
}

/* A message that is not one: logged (rate-limited) and skipped; the link goes on. */
static void
bad_frame(struct ctl_link *l, const char *why)
{
    unsigned long held;

    if (log_rate_ok(&l->bad_log, 5, &held)) {
        log_warnx("ctl: bad message from the control plane: %s; ignored (%lu more not logged)", why,
                  held);
    }
}

/* The counters (metrics.h), unless the link is behind with what it has to send already. */
static void
send_metrics(struct ctl_link *l)
{
    struct msg m;

    if (!ctl_link_up(l) || l->out_len - l->out_off > METRICS_BACKLOG_MAX) {
        return;
    }
    metrics_fill(&m);
    send_msg(l, &m);
    free(m.metrics.apps);
}

static void
on_metrics_timer(lws_sorted_usec_list_t *sul)
{
    struct ctl_link *l = lws_container_of(sul, struct ctl_link, sul_metrics);

    send_metrics(l);
    lws_sul_schedule(dp->ctx, 0, &l->sul_metrics, on_metrics_timer, LWS_US_PER_SEC);
}

/* welcome: the first message; 0 when the control plane speaks this version. */
static int
on_welcome(struct ctl_link *l, const struct msg *m)
{
    if (m->type != MSG_WELCOME || m->welcome.proto != PROTO_VERSION) {
        if (!l->refused_logged) {
            if (m->type == MSG_WELCOME) {
                log_errorx("ctl: the control plane at %s speaks proto %lld, this harp-dp %d: "
                           "refused; serving table version %lld, retrying",
                           dp->cfg.ctl_socket, (long long)m->welcome.proto, PROTO_VERSION,
                           (long long)current_version(l));
            } else {
                log_errorx("ctl: the control plane at %s sent \"%s\" before welcome (proto %d "
                           "expected): refused; serving table version %lld, retrying",
                           dp->cfg.ctl_socket, msg_type_name(m->type), PROTO_VERSION,
                           (long long)current_version(l));
            }
            l->refused_logged = true;
        }
        return -1;
    }
    l->welcomed = true;
    l->refused_logged = false;
    if (l->logged_down) {
        log_notice("ctl: connected to the control plane at %s", dp->cfg.ctl_socket);
    }
    l->logged_down = false;
    ctl_link_tunnels(l);
    metrics_resend_all();
    send_metrics(l);
    return 0;
}

/* 0, or -1 when the link must be dropped. */
static int
on_msg(struct ctl_link *l, struct msg *m)
{
    struct msg pong = {.type = MSG_PONG};

    if (m->type == MSG_ERROR) {
        if (l->welcomed || !l->refused_logged) {
            log_errorx("ctl: the control plane refused this data plane: %s", m->error.message);
            l->refused_logged = !l->welcomed;
        }
        return -1;
    }
    if (!l->welcomed) {
        return on_welcome(l, m);
    }
    switch (m->type) {
    case MSG_SNAPSHOT:
        on_snapshot(l, &m->snapshot);
        return 0;
    case MSG_DELTA:
        return on_delta(l, &m->delta);
    case MSG_LOOKUP_REPLY:
        on_lookup_reply(l, m->id);
        return 0;
    case MSG_AUTH_REPLY:
        on_auth_reply(l, m->id, &m->auth_reply);
        return 0;
    case MSG_REQUEST_ERROR:
        on_request_error(l, m->id, m->request_error.message);
        return 0;
    case MSG_BANS:
        l->h->on_bans(l->h->ctx, m->bans.bans, m->bans.nbans);
        return 0;
    case MSG_ENGINES:
        l->h->on_engines(l->h->ctx, m->engines.engines, m->engines.nengines);
        return 0;
    case MSG_SETTINGS:
        l->h->on_settings(l->h->ctx, &m->settings);
        return 0;
    case MSG_PING:
        send_msg(l, &pong);
        return 0;
    case MSG_PONG:
        return 0;
    default:
        bad_frame(l, "unexpected message");
        return 0;
    }
}

/* A frame from the control plane: decoded, then acted on. 0, or -1 to drop the link. */
static int
on_frame(struct ctl_link *l, json_t *j)
{
    struct hp_err err;
    struct msg m;
    int rc = 0;

    if (msg_decode(j, MSG_FROM_CTL, &m, &err) == -1) {
        bad_frame(l, err.msg);
        /* a reply that cannot be read fails its request rather than leaving it waiting */
        if (l->welcomed && m.has_id &&
            (m.type == MSG_LOOKUP_REPLY || m.type == MSG_AUTH_REPLY ||
             m.type == MSG_REQUEST_ERROR)) {
            on_request_error(l, m.id, "malformed reply");
        }
    } else {
        rc = on_msg(l, &m);
    }
    msg_free(&m);
    return rc;
}

static void
link_down(struct ctl_link *l)
{
    if (l->welcomed || !l->logged_down) {
        log_warnx("ctl: control plane link down; serving table version %lld, retrying",
                  (long long)current_version(l));
        l->logged_down = true;
    }
    l->up = l->welcomed = false;
    l->wsi = NULL;
    frame_reader_free(&l->rd);
    l->out_len = l->out_off = 0;
    fail_pending(l);
    if (!dp->stopping) {
        lws_sul_schedule(dp->ctx, 0, &l->sul_retry, connect_link, RECONNECT_MS * 1000);
    }
}

static void
on_ping_timer(lws_sorted_usec_list_t *sul)
{
    struct ctl_link *l = lws_container_of(sul, struct ctl_link, sul_ping);

    if (l->up && l->wsi != NULL) {
        if (lws_now_usecs() - l->last_rx > (lws_usec_t)SILENCE_MAX_S * LWS_US_PER_SEC) {
            log_warnx("ctl: control plane silent for %d s; reconnecting", SILENCE_MAX_S);
            lws_set_timeout(l->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        } else {
            struct msg ping = {.type = MSG_PING};

            send_msg(l, &ping);
        }
    }
    lws_sul_schedule(dp->ctx, 0, &l->sul_ping, on_ping_timer, PING_S * LWS_US_PER_SEC);
}

static void
connect_link(lws_sorted_usec_list_t *sul)
{
    struct ctl_link *l = lws_container_of(sul, struct ctl_link, sul_retry);
    struct lws_client_connect_info ci;
    char *addr = xasprintf("+%s", dp->cfg.ctl_socket);

    memset(&ci, 0, sizeof(ci));
    ci.context = dp->ctx;
    ci.vhost = dp->vh;
    ci.address = addr;
    ci.port = 0;
    ci.host = "localhost";
    ci.origin = "localhost";
    ci.method = "RAW";
    ci.local_protocol_name = "harp-ctl";
    ci.opaque_user_data = l;
    ci.pwsi = &l->wsi;
    if (lws_client_connect_via_info(&ci) == NULL) {
        l->wsi = NULL;
        lws_sul_schedule(dp->ctx, 0, &l->sul_retry, connect_link, RECONNECT_MS * 1000);
    }
    free(addr);
}

int
ctl_link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct ctl_link *l = lws_get_opaque_user_data(wsi);
    struct msg hello = {.type = MSG_HELLO};
    struct hp_err err;
    json_t *m;
    ssize_t n;
    int rc;

    if (l == NULL) {
        return 0;
    }
    switch (reason) {
    case LWS_CALLBACK_RAW_CONNECTED:
        l->wsi = wsi;
        l->up = true;
        l->last_rx = lws_now_usecs();
        hello.hello.proto = PROTO_VERSION;
        snprintf(hello.hello.dp_id, sizeof(hello.hello.dp_id), "%s", dp->dp_id);
        hello.hello.pid = getpid();
        hello.hello.version = current_version(l);
        snprintf(hello.hello.dp_key, sizeof(hello.hello.dp_key), "%s", l->key_hex);
        send_msg(l, &hello);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        link_down(l);
        return 0;
    case LWS_CALLBACK_RAW_RX:
        l->last_rx = lws_now_usecs();
        frame_feed(&l->rd, in, len);
        while ((rc = frame_next(&l->rd, &m, &err)) == 1 || rc == FRAME_BAD) {
            if (rc == FRAME_BAD) {
                bad_frame(l, err.msg);
                continue;
            }
            rc = on_frame(l, m);
            json_decref(m);
            if (rc == -1) {
                return -1;
            }
        }
        if (rc == -1) {
            log_warnx("ctl: %s; dropping the link", err.msg);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (l->out_len > l->out_off) {
            size_t chunk = l->out_len - l->out_off;
            unsigned char *buf;

            if (chunk > 65536) {
                chunk = 65536;
            }
            buf = xmalloc(LWS_PRE + chunk);
            memcpy(buf + LWS_PRE, l->out + l->out_off, chunk);
            n = lws_write(wsi, buf + LWS_PRE, chunk, LWS_WRITE_RAW);
            free(buf);
            if (n < (ssize_t)chunk) {
                return -1;
            }
            l->out_off += chunk;
            if (l->out_len > l->out_off) {
                lws_callback_on_writable(wsi);
            }
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE:
        link_down(l);
        return 0;
    default:
        return 0;
    }
}

struct ctl_link *
ctl_link_start(const struct ctl_link_handlers *h)
{
    struct ctl_link *l = xcalloc(1, sizeof(*l));

    l->h = h;
    l->logged_down = true;
    l->key = canon_key_new();
    if (l->key == NULL || canon_key_pub(l->key, l->key_hex) == -1) {
        log_warnx("ctl: no Ed25519 key: table versions are not acknowledged for the audit chain");
        l->key_hex[0] = '\0';
    }
    connect_link(&l->sul_retry);
    lws_sul_schedule(dp->ctx, 0, &l->sul_ping, on_ping_timer, PING_S * LWS_US_PER_SEC);
    lws_sul_schedule(dp->ctx, 0, &l->sul_metrics, on_metrics_timer, LWS_US_PER_SEC);
    return l;
}

void
ctl_link_stop(struct ctl_link *l)
{
    if (l == NULL) {
        return;
    }
    lws_sul_cancel(&l->sul_retry);
    lws_sul_cancel(&l->sul_ping);
    lws_sul_cancel(&l->sul_metrics);
    if (l->wsi != NULL) {
        lws_set_opaque_user_data(l->wsi, NULL); /* its close comes with the context's end */
    }
    frame_reader_free(&l->rd);
    canon_key_free(l->key);
    free(l->out);
    while (l->pending != NULL) {
        struct pending *p = l->pending;

        l->pending = p->next;
        free(p);
    }
    free(l);
}
