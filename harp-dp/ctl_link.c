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
 *
 *   DOWN --connect--> CONNECTING --connected: hello--> UP --close/error--> DOWN (+retry timer)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_link.h"
#include "dp.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "xmalloc.h"

#define RECONNECT_MS 200
#define PING_S 5
#define SILENCE_MAX_S 20

struct pending {
    json_int_t id;
    bool auth;    /* an auth request, else a look-up */
    void *waiter; /* handed back to on_lookup_reply / on_auth_reply */
    struct pending *next;
};

struct ctl_link {
    const struct ctl_link_handlers *h;
    int64_t version; /* of the table applied last; -1: none */
    json_t *source;  /* its apps as the control plane sent them: the base of the next delta */
    struct lws *wsi;
    bool up;
    struct frame_reader rd;
    char *out;
    size_t out_len, out_off;
    json_int_t next_id;
    struct pending *pending;
    lws_sorted_usec_list_t sul_retry, sul_ping;
    lws_usec_t last_rx;
    bool logged_down;
    struct log_rate bad_log;
};

static void connect_link(lws_sorted_usec_list_t *sul);

bool
ctl_link_up(const struct ctl_link *l)
{
    return l != NULL && l->up;
}

static void
send_msg(struct ctl_link *l, json_t *m)
{
    size_t n;
    char *f = frame_encode(m, &n);

    json_decref(m);
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
    struct pending *p;
    json_t *m;

    if (!ctl_link_up(l)) {
        return -1;
    }
    p = add_pending(l, waiter, false);
    m = msg_new(MSG_LOOKUP);
    json_object_set_new(m, "id", json_integer(p->id));
    json_object_set_new(m, "app_id", json_string(app_id));
    send_msg(l, m);
    return 0;
}

int
ctl_link_auth(struct ctl_link *l, const char *app_id, struct span cookie, json_t *headers,
              void *waiter)
{
    struct pending *p;
    json_t *m;

    if (!ctl_link_up(l)) {
        json_decref(headers);
        return -1;
    }
    p = add_pending(l, waiter, true);
    m = msg_new(MSG_AUTH);
    json_object_set_new(m, "id", json_integer(p->id));
    json_object_set_new(m, "app_id", json_string(app_id));
    json_object_set_new(m, "cookie_b64", msg_bytes(cookie.p, cookie.n));
    json_object_set_new(m, "headers", headers);
    send_msg(l, m);
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

/* Hands the app set <source> (stolen) of <version> to the owner; acks it once applied. */
static void
swap_table(struct ctl_link *l, json_t *source, int64_t version)
{
    struct hp_err err;
    json_t *ack;

    if (l->h->on_table(l->h->ctx, json_incref(source), version, &err) == -1) {
        log_warnx("ctl: table version %lld refused (%s); keeping version %lld", (long long)version,
                  err.msg, (long long)l->version);
        json_decref(source);
        return;
    }
    json_decref(l->source);
    l->source = source;
    l->version = version;
    log_info("ctl: table version %lld applied (%zu ExApps)", (long long)version,
             json_object_size(source));
    ack = msg_new(MSG_ACK);
    json_object_set_new(ack, "version", json_integer(version));
    send_msg(l, ack);
}

static int
on_snapshot(struct ctl_link *l, json_t *m)
{
    json_t *src = json_object(), *a;
    size_t i;

    json_array_foreach(json_object_get(m, "exapps"), i, a)
    {
        const char *id = json_string_value(json_object_get(a, "app_id"));

        if (id == NULL) {
            json_decref(src);
            return -1;
        }
        json_object_set(src, id, a);
    }
    swap_table(l, src, json_integer_value(json_object_get(m, "version")));
    return 0;
}

static int
on_delta(struct ctl_link *l, json_t *m)
{
    int64_t from = json_integer_value(json_object_get(m, "from"));
    json_t *src, *a;
    size_t i;

    if (l->source == NULL || l->version != from) {
        log_warnx("ctl: delta from version %lld but the table is at %lld; resynchronising",
                  (long long)from, (long long)l->version);
        return -1;
    }
    src = json_copy(l->source);
    json_array_foreach(json_object_get(m, "upserts"), i, a)
    {
        const char *id = json_string_value(json_object_get(a, "app_id"));

        if (id == NULL) {
            json_decref(src);
            return -1;
        }
        json_object_set(src, id, a);
    }
    json_array_foreach(json_object_get(m, "deletes"), i, a)
    {
        if (json_is_string(a)) {
            json_object_del(src, json_string_value(a));
        }
    }
    swap_table(l, src, json_integer_value(json_object_get(m, "version")));
    return 0;
}

static void
on_auth_reply(struct ctl_link *l, json_t *m)
{
    json_int_t id = json_integer_value(json_object_get(m, "id"));
    const char *result = json_string_value(json_object_get(m, "result"));
    struct pending **pp, *p;
    struct user u;
    json_int_t ttl;

    memset(&u, 0, sizeof(u));
    if (strcmp(result, "user") == 0) {
        u.state = USER_KNOWN;
        snprintf(u.id, sizeof(u.id), "%s", json_string_value(json_object_get(m, "user_id")) ?: "");
        u.level = (int)json_integer_value(json_object_get(m, "access_level"));
    } else if (strcmp(result, "anonymous") == 0) {
        u.state = USER_NONE;
    } else {
        u.state = USER_ERROR;
    }
    ttl = json_integer_value(json_object_get(m, "ttl_ms"));
    for (pp = &l->pending; (p = *pp) != NULL; pp = &p->next) {
        if (p->id == id && p->auth) {
            *pp = p->next;
            l->h->on_auth_reply(l->h->ctx, p->waiter, &u, (lws_usec_t)ttl * 1000);
            free(p);
            return;
        }
    }
}

void
ctl_link_failure(struct ctl_link *l, const char *ip)
{
    json_t *m;

    if (!ctl_link_up(l)) {
        return;
    }
    m = msg_new(MSG_EVENT);
    json_object_set_new(m, "event", json_string("failure"));
    json_object_set_new(m, "ip", json_string(ip));
    send_msg(l, m);
}

void
ctl_link_tunnels(struct ctl_link *l)
{
    json_t *m;

    if (!ctl_link_up(l)) {
        return;
    }
    m = msg_new(MSG_EVENT);
    json_object_set_new(m, "event", json_string("tunnels"));
    json_object_set_new(m, "tunnels",
                        l->h->tunnels != NULL ? l->h->tunnels(l->h->ctx) : json_array());
    send_msg(l, m);
}

/* request_error: the control plane cannot answer request <id>; it fails with 503. */
static void
on_request_error(struct ctl_link *l, json_t *m)
{
    json_int_t id = json_integer_value(json_object_get(m, "id"));
    struct pending **pp, *p;

    for (pp = &l->pending; (p = *pp) != NULL; pp = &p->next) {
        if (p->id == id) {
            *pp = p->next;
            log_info("ctl: request %lld refused by the control plane: %s", (long long)id,
                     json_string_value(json_object_get(m, "message")));
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
on_lookup_reply(struct ctl_link *l, json_t *m)
{
    json_int_t id = json_integer_value(json_object_get(m, "id"));
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

/* 0, or -1 when the link must be dropped. */
static int
on_frame(struct ctl_link *l, json_t *m)
{
    struct hp_err err;
    int t = msg_check(m, MSG_FROM_CTL, &err);

    switch (t) {
    case MSG_SNAPSHOT:
        return on_snapshot(l, m);
    case MSG_DELTA:
        return on_delta(l, m);
    case MSG_LOOKUP_REPLY:
        on_lookup_reply(l, m);
        return 0;
    case MSG_AUTH_REPLY:
        on_auth_reply(l, m);
        return 0;
    case MSG_REQUEST_ERROR:
        on_request_error(l, m);
        return 0;
    case MSG_BANS:
        l->h->on_bans(l->h->ctx, json_object_get(m, "bans"));
        return 0;
    case MSG_ENGINES:
        l->h->on_engines(l->h->ctx, json_object_get(m, "engines"));
        return 0;
    case MSG_PING:
        send_msg(l, msg_new(MSG_PONG));
        return 0;
    case MSG_PONG:
        return 0;
    case MSG_ERROR:
        log_errorx("ctl: the control plane refused this data plane: %s",
                   json_string_value(json_object_get(m, "message")));
        return -1;
    default:
        bad_frame(l, t == -1 ? err.msg : "unexpected message");
        return 0;
    }
}

static void
link_down(struct ctl_link *l)
{
    if (l->up || !l->logged_down) {
        log_warnx("ctl: control plane link down; serving table version %lld, retrying",
                  (long long)l->version);
        l->logged_down = true;
    }
    l->up = false;
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
            send_msg(l, msg_new(MSG_PING));
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
    json_t *m, *hello;
    struct hp_err err;
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
        if (l->logged_down) {
            log_notice("ctl: connected to the control plane at %s", dp->cfg.ctl_socket);
        }
        l->logged_down = false;
        hello = msg_new(MSG_HELLO);
        json_object_set_new(hello, "proto", json_integer(PROTO_VERSION));
        json_object_set_new(hello, "dp_id", json_string(dp->dp_id));
        json_object_set_new(hello, "pid", json_integer(getpid()));
        json_object_set_new(hello, "version", json_integer(l->version));
        send_msg(l, hello);
        ctl_link_tunnels(l);
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
    l->version = -1;
    l->logged_down = true;
    connect_link(&l->sul_retry);
    lws_sul_schedule(dp->ctx, 0, &l->sul_ping, on_ping_timer, PING_S * LWS_US_PER_SEC);
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
    if (l->wsi != NULL) {
        lws_set_opaque_user_data(l->wsi, NULL); /* its close comes with the context's end */
    }
    frame_reader_free(&l->rd);
    free(l->out);
    json_decref(l->source);
    while (l->pending != NULL) {
        struct pending *p = l->pending;

        l->pending = p->next;
        free(p);
    }
    free(l);
}
