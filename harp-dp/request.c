/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The life of one request on a client connection, read top-down: head -> ban check ->
 * decision (look-up, user look-up, resolution) -> forward -> body -> response -> next request.
 *
 * Design notes:
 * 1. conn.c moves the bytes and calls in through struct conn_handlers; this file decides what
 *    they mean. The notes of conn.c say how connections, queues and timeouts work.
 * 2. Every refusal leaves through request_fail(c, status, reason, why): the one place that
 *    answers (or drops) a request harp-dp refuses, logs it with reason=<name> (refusal.h) and
 *    picks its page. A new refusal is a new enum refusal_reason, never a new answer path.
 * 3. A request takes a reference to the live snapshot (world.h) when its head is read and
 *    decides with it to the end; only the answer to a look-up (the control plane pushes the
 *    app first) moves it to the snapshot live then.
 * 4. Request heads are parsed from c->in; the head stays there, unchanged, until its decision
 *    is made (a look-up may pause it), then a rewritten head goes to to_up and the body follows
 *    through the framing tracker. Bytes after the body (pipelining) wait in c->in.
 * 5. Response heads are parsed from c->uin and passed on as they are; the body is tracked by
 *    its framing to know where the response ends. A 101 turns both sides into a byte tunnel.
 *
 *   HEAD --decide--> (LOOKUP --request_lookup_done--> HEAD) --forward--> BODY --pump_body-->
 *   WAIT --response_done--> HEAD;   WAIT --101--> TUNNEL
 *   (AUTH --request_auth_done--> HEAD) (RESOLVE --request_resolved--> HEAD)
 *   refusals: request_fail() -> HEAD (keep-alive) or CLOSING
 */
#include "config.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "ctl_link.h"
#include "dp.h"
#include "headers.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "resolve.h"
#include "sessions.h"
#include "timeouts.h"
#include "world.h"
#include "xmalloc.h"

/* <reason>: of a refusal, else REFUSAL_NONE (no reason= in the line). */
static void
request_log(struct conn *c, unsigned status, const char *why, enum refusal_reason reason)
{
    const char *client = c->client[0] ? c->client : c->peer;
    const char *rs = reason != REFUSAL_NONE ? " reason=" : "";
    const char *rn = reason != REFUSAL_NONE ? refusal_name(reason) : "";

    if (status != 0) {
        log_info("request: %s %s -> %u (%s) client=%s%s%s", c->log_method, c->log_path, status, why,
                 client, rs, rn);
    } else {
        log_info("request: %s %s -> %s client=%s%s%s", c->log_method, c->log_path, why, client, rs,
                 rn);
    }
}

/* The current request ended with <status> (0: none, the connection closes) and <reason>: it
 * is counted (metrics.h) and written to the access log, once. A refusal before its head was
 * read (head timeout, over capacity) counts as a request of no app. */
static void
request_end(struct conn *c, unsigned status, enum refusal_reason reason)
{
    struct conn_work *w = c->work;
    lws_usec_t now = lws_now_usecs(), start = now;
    const char *app = "";
    int level = -1;
    double secs;

    if (reason != REFUSAL_NONE) {
        dp_counters.refusals[reason]++;
    }
    if (w != NULL && w->open) {
        w->open = false;
        start = w->start;
        app = w->app;
        level = w->level;
    } else if (reason == REFUSAL_NONE) {
        return;
    }
    secs = (double)(now - start) / LWS_US_PER_SEC;
    metrics_request(app, level, status, secs);
    if (access_log_on()) {
        char up[300] = "";
        struct access_entry e = {
            .client = c->client[0] ? c->client : c->peer,
            .app = app,
            .method = c->log_method,
            .path = c->log_path,
            .upstream = up,
            .request_id = w != NULL ? w->id : "",
            .status = status,
            .reason = reason,
            .bytes = w != NULL ? c->to_cli.pushed - w->out0 : 0,
            .seconds = secs,
        };

        if (c->up_host[0] != '\0' && c->up_port != 0 &&
            (reason == REFUSAL_NONE || reason == REFUSAL_UPSTREAM_UNREACHABLE ||
             reason == REFUSAL_BAD_GATEWAY || reason == REFUSAL_UPSTREAM_TIMEOUT)) {
            snprintf(up, sizeof(up), "%s:%u", c->up_host, c->up_port);
        }
        access_log_write(&e);
    }
}

/* Counts a failure against the request's client, unless it carries the valid key. */
static void
failure(struct conn *c)
{
    if (!c->has_key && c->client[0] != '\0') {
        ctl_link_failure(dp->link, c->client);
    }
}

/* Ends the current request on the client side: drops its head (and a body that never went
 * anywhere) from c->in and goes back to reading heads, or closes. */
static void
finish_request(struct conn *c, bool keep)
{
    world_unref(c->world);
    c->world = NULL;
    c->looked_up = false;
    c->user.state = USER_UNRESOLVED;
    c->route = NULL;
    if (!keep) {
        c->close_after_flush = true;
        c->state = ST_CLOSING;
        c->in_len = 0;
        conn_flow(c);
        conn_kick_cli(c);
        if (c->to_cli.bytes == 0 && c->cli != NULL) {
            conn_close(c);
        }
        return;
    }
    c->state = ST_HEAD;
}

/* A local answer to the current request, with <extra> header lines. A request whose body was
 * not read closes the connection after the answer. */
static void
answer(struct conn *c, unsigned status, const char *ctype, const char *body, const char *extra,
       const char *why, enum refusal_reason reason)
{
    char head[512];
    bool keep = c->state == ST_HEAD && c->req_keep_alive && c->req_framing == HTTP1_BODY_NONE &&
                !c->req_upgrade && !dp->draining;

    snprintf(head, sizeof(head),
             "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s%s\r\n", status,
             http1_reason_phrase(status), ctype, strlen(body),
             ctype[5] == 'h' ? "Cache-Control: no-cache\r\n" : "", extra,
             keep ? "" : "Connection: close\r\n");
    request_log(c, status, why, reason);
    conn_queue_puts(&c->to_cli, head);
    if (!c->req_head_method) {
        conn_queue_puts(&c->to_cli, body);
    }
    request_end(c, status, reason);
    if (keep && c->work->req.head_len > 0) {
        conn_consume(c->in, &c->in_len, c->work->req.head_len);
    }
    c->work->req.head_len = 0;
    finish_request(c, keep);
    conn_kick_cli(c);
}

void
request_fail(struct conn *c, unsigned status, enum refusal_reason reason, const char *why)
{
    char body[256], extra[64] = "";
    const char *msg;

    if (status == 0) {
        request_log(c, 0, why, reason);
        request_end(c, 0, reason);
        conn_close(c);
        return;
    }
    switch (reason) {
    case REFUSAL_DOCKER_DENIED:
    case REFUSAL_UPSTREAM_UNREACHABLE:
    case REFUSAL_BAD_GATEWAY:
    case REFUSAL_UPSTREAM_TIMEOUT:
        /* HAProxy's own error pages, as HaRP's clients see them for these. */
        msg = status == 403   ? "Request forbidden by administrative rules."
              : status == 503 ? "No server is available to handle this request."
              : status == 504 ? "The server didn't respond in time."
                              : "The server returned an invalid or incomplete response.";
        snprintf(body, sizeof(body), "<html><body><h1>%u %s</h1>\n%s\n</body></html>\n", status,
                 http1_reason_phrase(status), msg);
        answer(c, status, "text/html", body, "", why, reason);
        return;
    case REFUSAL_BAD_ENGINE_PORT:
    case REFUSAL_CTL_REFUSED:
        answer(c, status, "text/plain", "503 Service Unavailable (HaRP)", "", why, reason);
        return;
    case REFUSAL_CTL_UNAVAILABLE:
        answer(c, status, "text/plain",
               "503 Service Unavailable (HaRP): the control plane is unreachable", "", why, reason);
        return;
    case REFUSAL_BANNED:
        /* always closes, and the body goes even to HEAD */
        snprintf(extra, sizeof(extra), "Retry-After: %lld\r\n", (long long)c->work->retry_after);
        c->req_keep_alive = false;
        c->req_head_method = false;
        break;
    default:
        break;
    }
    snprintf(body, sizeof(body), "%u %s", status, http1_reason_phrase(status));
    answer(c, status, "text/plain", body, extra, why, reason);
}

static void on_upstream_failed(struct conn *c);
static void process_client(struct conn *c);
static void send_request(struct conn *c, const struct decision *d, const char *host, unsigned port);

/* Queues the rewritten request head for the upstream. The input head is at most
 * HTTP1_MAX_HEAD bytes and headers_request() adds less than HEADERS_ADDED_MAX. */
static void
queue_head(struct conn *c, const struct decision *d)
{
    static char head[HTTP1_MAX_HEAD + HEADERS_ADDED_MAX];
    static char vtarget[HTTP1_MAX_HEAD];
    struct headers_inject in;
    size_t n, vlen;

    memset(&in, 0, sizeof(in));
    in.dest = c->dest;
    in.target = d->target;
    if (c->dest == HEADERS_TO_DOCKER &&
        (vlen = engine_map_rewrite(c->world->engines, d->docker_port, d->target, vtarget,
                                   sizeof(vtarget))) > 0) {
        in.target = (struct span){vtarget, vlen};
    }
    in.host = c->up_host;
    in.port = c->up_port;
    in.upgrade = c->req_upgrade;
    in.app_id = d->app_id;
    in.version = d->version;
    in.auth = d->auth;
    in.client = c->client;
    in.request_id = c->work->id[0] != '\0' ? c->work->id : NULL;
    n = headers_request(&c->work->req, &in, head, sizeof(head));
    assert(n <= sizeof(head));
    conn_queue_push(&c->to_up, head, n);
}

/* Sends the current request to its destination, once its address is known. */
static void
forward(struct conn *c, const struct decision *d)
{
    char host[256];
    unsigned port;

    switch (d->verdict) {
    case VERDICT_TO_CONTROL:
        c->dest = HEADERS_TO_CONTROL;
        snprintf(host, sizeof(host), "%s", dp->ctl_host);
        c->up_name[0] = '\0';
        port = dp->ctl_port;
        break;
    case VERDICT_TO_DOCKER:
        c->dest = HEADERS_TO_DOCKER;
        engine_map_upstream(c->world->engines, d->docker_port, host, sizeof(host), &port);
        c->up_name[0] = '\0';
        break;
    default:
        c->dest = HEADERS_TO_EXAPP;
        snprintf(c->up_name, sizeof(c->up_name), "%s", d->host);
        switch (resolve_host(d->host, host, sizeof(host), c)) {
        case RESOLVE_FAILED:
            request_fail(c, 404, REFUSAL_HOST_UNRESOLVED, "ExApp host does not resolve");
            return;
        case RESOLVE_PENDING:
            c->work->dec = *d;
            c->state = ST_RESOLVE;
            conn_flow(c);
            return;
        case RESOLVE_DONE:
            break;
        }
        port = d->port;
        break;
    }
    send_request(c, d, host, port);
}

void
request_resolved(void *ctx, void *waiter, const char *addr)
{
    struct conn *c = waiter;

    if (c->state != ST_RESOLVE) {
        return;
    }
    c->state = ST_HEAD;
    if (addr == NULL) {
        request_fail(c, 404, REFUSAL_HOST_UNRESOLVED, "ExApp host does not resolve");
    } else {
        send_request(c, &c->work->dec, addr, c->work->dec.port);
    }
    if (c->state == ST_HEAD || c->state == ST_BODY) {
        process_client(c);
    }
    conn_flow(c);
}

/* Queues the request for <host>:<port> (numeric) and connects when needed. */
static void
send_request(struct conn *c, const struct decision *d, const char *host, unsigned port)
{
    const char *what = d->why;
    const unsigned defaults[EXAPP_NTIMEOUTS] = {dp->timeout_connect_s, dp->timeout_client_s,
                                                dp->timeout_server_s, dp->timeout_server_s,
                                                dp->timeout_tunnel_s};

    timeouts_pick(d->verdict == VERDICT_TO_EXAPP ? d->app : NULL, d->route, defaults, c->to_s);
    conn_timeouts_changed(c);
    if (c->up != NULL && (strcmp(host, c->up_host) != 0 || port != c->up_port)) {
        conn_close_up(c);
    }
    snprintf(c->up_host, sizeof(c->up_host), "%s", host);
    c->up_port = port;
    queue_head(c, d);
    c->req_left = c->work->req.content_length;
    memset(&c->req_chunk, 0, sizeof(c->req_chunk));
    conn_consume(c->in, &c->in_len, c->work->req.head_len);
    c->work->req.head_len = 0;
    c->req_body_done = c->req_framing == HTTP1_BODY_NONE;
    c->state = c->req_body_done ? ST_WAIT : ST_BODY;
    c->rstate = RS_HEAD;
    c->resp_started = false;
    request_log(c, 0, what, REFUSAL_NONE);
    if (c->up == NULL && conn_connect_up(c) == -1) {
        on_upstream_failed(c);
        return;
    }
    conn_kick_up(c);
}

/* --- client input ------------------------------------------------------------------------ */

/* The status of each refusing verdict (0: dropped without an answer). */
static const int verdict_status[] = {
    [VERDICT_DROP] = 0,          [VERDICT_BAD_REQUEST] = 400, [VERDICT_UNAUTHORIZED] = 401,
    [VERDICT_FORBIDDEN] = 403,   [VERDICT_DENIED] = 403,      [VERDICT_NOT_FOUND] = 404,
    [VERDICT_UNAVAILABLE] = 503,
};

static void
decide(struct conn *c)
{
    struct msg_header *hdrs;
    struct decision d;
    struct span cookie;
    size_t nhdrs;

    if (c->npath_cap < c->work->req.path.n) {
        c->npath_cap = c->work->req.path.n;
        c->npath = xrealloc(c->npath, c->npath_cap);
    }
again:
    route_decide(c->world->table, &c->work->req, c->npath, dp->cfg.shared_key, c->looked_up,
                 &c->user, &d);
    if (d.failure) {
        failure(c);
    }
    c->route = d.route;
    c->work->level = d.route != NULL ? d.route->access_level : -1;
    if (d.app != NULL) {
        snprintf(c->work->app, sizeof(c->work->app), "%s", d.app_id_lc);
    } else if (d.verdict == VERDICT_TO_CONTROL || d.verdict == VERDICT_TO_DOCKER) {
        snprintf(c->work->app, sizeof(c->work->app), "app_api");
    } else {
        c->work->app[0] = '\0';
    }
    switch (d.verdict) {
    case VERDICT_AUTH:
        cookie = route_session_cookie(&c->work->req);
        if (cookie.n > 0 && sessions_get(cookie, &c->user)) {
            dp_counters.session_hits++;
            goto again;
        }
        dp_counters.session_misses++;
        hdrs = headers_for_auth(&c->work->req, &nhdrs);
        if (ctl_link_auth(dp->link, d.app_id_lc, cookie, hdrs, nhdrs, c) == -1) {
            c->user.state = USER_ERROR;
            goto again;
        }
        c->state = ST_AUTH;
        conn_flow(c);
        return;
    case VERDICT_LOOKUP:
        if (ctl_link_lookup(dp->link, d.app_id_lc, c) == -1) {
            request_fail(c, 503, REFUSAL_CTL_UNAVAILABLE, "look-up impossible: control plane down");
            return;
        }
        c->state = ST_LOOKUP;
        conn_flow(c);
        return;
    case VERDICT_TO_EXAPP:
    case VERDICT_TO_CONTROL:
    case VERDICT_TO_DOCKER:
        forward(c, &d);
        return;
    default:
        request_fail(c, verdict_status[d.verdict], d.reason, d.why);
        return;
    }
}

void
request_auth_done(void *ctx, void *waiter, const struct user *u, lws_usec_t ttl_us)
{
    struct conn *c = waiter;
    struct span cookie;

    if (c->state != ST_AUTH) {
        return;
    }
    c->state = ST_HEAD;
    if (u->state == USER_UNAVAILABLE) {
        request_fail(c, 503, REFUSAL_CTL_REFUSED, "user look-up refused by the control plane");
        if (c->state == ST_HEAD || c->state == ST_BODY) {
            process_client(c);
        }
        conn_flow(c);
        return;
    }
    c->user = *u;
    cookie = route_session_cookie(&c->work->req);
    if (u->state == USER_KNOWN && cookie.n > 0) {
        sessions_put(cookie, u, ttl_us);
    }
    decide(c);
    if (c->state == ST_HEAD || c->state == ST_BODY) {
        process_client(c);
    }
    conn_flow(c);
}

void
request_lookup_done(void *ctx, void *waiter, bool unavailable)
{
    struct conn *c = waiter;

    if (c->state != ST_LOOKUP) {
        return;
    }
    c->state = ST_HEAD;
    if (unavailable) {
        request_fail(c, 503, REFUSAL_CTL_UNAVAILABLE, "look-up failed: control plane down");
    } else {
        /* the control plane pushed the app before it answered: decide with that snapshot */
        world_unref(c->world);
        c->world = world_ref(world_live());
        c->looked_up = true;
        decide(c);
    }
    if (c->state == ST_HEAD || c->state == ST_BODY) {
        process_client(c);
    }
    conn_flow(c);
}

/* Moves request body bytes from c->in to the upstream queue. */
static void
pump_body(struct conn *c)
{
    size_t n = 0;

    if (c->req_framing == HTTP1_BODY_LENGTH) {
        n = c->in_len < c->req_left ? c->in_len : (size_t)c->req_left;
        c->req_left -= n;
        c->req_body_done = c->req_left == 0;
    } else if (c->req_framing == HTTP1_BODY_CHUNKED) {
        enum http1_chunk_result r = http1_chunked_feed(&c->req_chunk, c->in, c->in_len, &n);

        if (r == CHUNK_BAD) {
            /* The upstream has half a request: it goes. The client gets its 400 unless a
             * response already began, which only a close can end now. */
            conn_close_up(c);
            if (c->resp_started) {
                request_fail(c, 0, REFUSAL_BAD_REQUEST, "malformed chunked request body");
                return;
            }
            c->state = ST_HEAD;
            c->req_keep_alive = false;
            request_fail(c, 400, REFUSAL_BAD_REQUEST, "malformed chunked request body");
            return;
        }
        c->req_body_done = r == CHUNK_DONE;
    }
    conn_queue_push(&c->to_up, c->in, n);
    conn_consume(c->in, &c->in_len, n);
    if (c->req_body_done) {
        c->state = ST_WAIT;
    }
    conn_kick_up(c);
}

/* The client IP of the request just parsed, and HaRP's ban check (spec 2.3 step 2): a banned
 * client is dropped silently, or answered 429 with HP_BAN_REPLY_429, unless it carries the
 * valid shared key. True when the request was ended here. */
static bool
check_ban(struct conn *c)
{
    struct ipaddr ip;
    int64_t now = (int64_t)time(NULL), until;

    clientip_get(dp->cfg.trusted, &c->peer_ip, &c->work->req, &ip);
    ip_format(&ip, c->client);
    c->has_key = route_has_key(&c->work->req, dp->cfg.shared_key);
    if (c->has_key || !bans_check(c->world->bans, c->client, now, &until)) {
        return false;
    }
    if (!dp->cfg.ban_reply_429) {
        request_fail(c, 0, REFUSAL_BANNED, "banned client: dropped");
        return true;
    }
    c->work->retry_after = until - now;
    request_fail(c, 429, REFUSAL_BANNED, "banned client");
    return true;
}

static void
process_client(struct conn *c)
{
    enum http1_status st;

    for (;;) {
        switch (c->state) {
        case ST_HEAD:
            if (c->in_len == 0) {
                return;
            }
            st = http1_parse_request(c->in, c->in_len, &c->work->req);
            if (st == HTTP1_INCOMPLETE) {
                return;
            }
            c->req_head_method = st == HTTP1_OK && span_eq(c->work->req.method, "HEAD");
            c->req_keep_alive = st == HTTP1_OK && c->work->req.keep_alive;
            c->req_upgrade = st == HTTP1_OK && c->work->req.upgrade;
            c->req_framing = st == HTTP1_OK ? c->work->req.framing : HTTP1_BODY_NONE;
            c->work->open = true;
            c->work->start = lws_now_usecs();
            c->work->out0 = c->to_cli.pushed;
            c->work->level = -1;
            c->work->app[0] = '\0';
            c->work->id[0] = '\0';
            if (st == HTTP1_OK && access_log_on()) {
                request_id_pick(&c->work->req, c->work->id);
            }
            if (st == HTTP1_OK) {
                span_copy(c->log_method, sizeof(c->log_method), c->work->req.method);
                span_copy(c->log_path, sizeof(c->log_path), c->work->req.path);
            } else {
                snprintf(c->log_method, sizeof(c->log_method), "-");
                snprintf(c->log_path, sizeof(c->log_path), "-");
            }
            if (st != HTTP1_OK) {
                c->req_keep_alive = false;
                c->work->req.head_len = 0;
                if (st == HTTP1_TOO_LARGE) {
                    request_fail(c, 431, REFUSAL_TOO_LARGE, "malformed request");
                } else if (st == HTTP1_BAD_VERSION) {
                    request_fail(c, 505, REFUSAL_BAD_VERSION, "malformed request");
                } else {
                    request_fail(c, 400, REFUSAL_BAD_REQUEST, "malformed request");
                }
                return;
            }
            c->world = world_ref(world_live());
            if (check_ban(c)) {
                return;
            }
            decide(c);
            if (c->state == ST_HEAD || c->state == ST_BODY) {
                continue;
            }
            return;
        case ST_BODY:
            if (c->in_len == 0) {
                return;
            }
            pump_body(c);
            if (c->state == ST_BODY) {
                return;
            }
            continue;
        case ST_TUNNEL:
            conn_queue_push(&c->to_up, c->in, c->in_len);
            c->in_len = 0;
            conn_kick_up(c);
            return;
        default:
            return;
        }
    }
}

/* --- upstream input ---------------------------------------------------------------------- */

/* 502 for the current request, whose response has not started: the client connection stays
 * open when the request was read whole and may be kept; a pipelined request then goes on. */
static void
bad_gateway(struct conn *c, const char *why)
{
    c->uin_len = 0; /* an unfinished head of the upstream that is gone */
    c->rstate = RS_IDLE;
    c->state = ST_HEAD;
    c->req_keep_alive = c->req_keep_alive && c->req_body_done;
    if (!c->req_body_done) {
        c->req_framing = HTTP1_BODY_CHUNKED; /* forces Connection: close */
    }
    request_fail(c, 502, REFUSAL_BAD_GATEWAY, why);
    if (c->state == ST_HEAD && c->in_len > 0) {
        c->cli_rx = true;
        conn_mark_ready(c);
    }
}

static void
response_done(struct conn *c)
{
    bool keep = c->req_keep_alive && c->resp_keep_alive && c->req_body_done;

    request_end(c, c->work->resp.status, REFUSAL_NONE);
    c->rstate = RS_IDLE;
    if (!c->resp_keep_alive || !c->req_body_done || c->uin_len > 0) {
        conn_close_up(c);
    }
    conn_kick_cli(c);
    finish_request(c, keep);
    if (keep) {
        process_client(c);
    }
    conn_flow(c);
}

/* A data plane draining (upgrade.c) ends each connection after its response: the response
 * head goes out with its Connection and Keep-Alive lines replaced by "Connection: close", so
 * that the client sends nothing more on it. */
static void
push_head_closing(struct conn *c)
{
    const struct http1_head *h = &c->work->resp;
    const char *eol = memchr(c->uin, '\n', h->head_len);
    size_t i;

    c->req_keep_alive = false;
    conn_queue_push(&c->to_cli, c->uin, eol != NULL ? (size_t)(eol - c->uin) + 1 : 0);
    for (i = 0; i < h->nheaders; i++) {
        if (span_ieq(h->headers[i].name, "connection") ||
            span_ieq(h->headers[i].name, "keep-alive")) {
            continue;
        }
        conn_queue_push(&c->to_cli, h->headers[i].name.p, h->headers[i].name.n);
        conn_queue_puts(&c->to_cli, ": ");
        conn_queue_push(&c->to_cli, h->headers[i].value.p, h->headers[i].value.n);
        conn_queue_puts(&c->to_cli, "\r\n");
    }
    conn_queue_puts(&c->to_cli, "Connection: close\r\n\r\n");
}

static void
process_upstream(struct conn *c)
{
    enum http1_status st;
    size_t n;

    while (c->uin_len > 0) {
        switch (c->rstate) {
        case RS_HEAD:
            st = http1_parse_response(c->uin, c->uin_len, c->req_head_method, &c->work->resp);
            if (st == HTTP1_INCOMPLETE) {
                return;
            }
            if (st != HTTP1_OK) {
                conn_close_up(c);
                if (!c->resp_started) {
                    request_fail(c, 502, REFUSAL_BAD_GATEWAY, "invalid response from the upstream");
                } else {
                    conn_close(c);
                }
                return;
            }
            if (c->work->resp.status == 101 && !c->req_upgrade) {
                conn_close_up(c);
                bad_gateway(c, "101 to a request that did not ask to upgrade");
                return;
            }
            if (c->route != NULL && c->work->resp.status >= 200) {
                size_t k;

                for (k = 0; k < c->route->nbruteforce; k++) {
                    if (c->route->bruteforce[k] == c->work->resp.status) {
                        failure(c);
                        break;
                    }
                }
            }
            if (dp->draining && c->work->resp.status >= 200 && c->work->resp.status != 101) {
                push_head_closing(c);
            } else {
                conn_queue_push(&c->to_cli, c->uin, c->work->resp.head_len);
            }
            c->resp_started = true;
            c->resp_framing = c->work->resp.framing;
            c->resp_left = c->work->resp.content_length;
            c->resp_keep_alive = c->work->resp.keep_alive;
            memset(&c->resp_chunk, 0, sizeof(c->resp_chunk));
            conn_consume(c->uin, &c->uin_len, c->work->resp.head_len);
            if (c->work->resp.status == 101) {
                request_end(c, 101, REFUSAL_NONE);
                c->ws_counted = true;
                dp_counters.websocket_conns++;
                c->state = ST_TUNNEL;
                c->rstate = RS_BODY;
                c->resp_framing = HTTP1_BODY_UNTIL_CLOSE;
                process_client(c);
                continue;
            }
            if (c->work->resp.status < 200) {
                continue; /* 100 Continue, 103: the final response follows */
            }
            c->rstate = RS_BODY;
            if (c->resp_framing == HTTP1_BODY_NONE) {
                response_done(c);
                return;
            }
            continue;
        case RS_BODY:
            n = c->uin_len;
            if (c->resp_framing == HTTP1_BODY_LENGTH) {
                n = n < c->resp_left ? n : (size_t)c->resp_left;
                c->resp_left -= n;
            } else if (c->resp_framing == HTTP1_BODY_CHUNKED) {
                enum http1_chunk_result r = http1_chunked_feed(&c->resp_chunk, c->uin, n, &n);

                if (r == CHUNK_BAD) {
                    conn_close(c);
                    return;
                }
                if (r == CHUNK_DONE) {
                    c->resp_left = 0;
                } else {
                    c->resp_left = 1;
                }
            }
            conn_queue_push(&c->to_cli, c->uin, n);
            conn_consume(c->uin, &c->uin_len, n);
            conn_kick_cli(c);
            if (c->resp_framing != HTTP1_BODY_UNTIL_CLOSE && c->resp_left == 0) {
                response_done(c);
                return;
            }
            continue;
        case RS_IDLE:
            /* bytes without a request: the upstream is not speaking HTTP to us */
            conn_close_up(c);
            return;
        }
    }
    conn_kick_cli(c);
}

static void
on_upstream_failed(struct conn *c)
{
    if (c->dest == HEADERS_TO_EXAPP && c->work != NULL && c->work->open) {
        metrics_connect_error(c->work->app);
    }
    if (c->dest == HEADERS_TO_EXAPP && c->up_name[0] != '\0') {
        resolve_invalidate(c->up_name);
    }
    c->up = NULL;
    c->up_connected = false;
    conn_queue_clear(&c->to_up);
    if (c->state == ST_TUNNEL || c->resp_started) {
        conn_close(c);
        return;
    }
    if (c->state != ST_BODY && c->state != ST_WAIT) {
        return;
    }
    c->state = ST_HEAD; /* so request_fail() may keep the connection when nothing was read */
    c->req_keep_alive = c->req_keep_alive && c->req_body_done;
    if (!c->req_body_done) {
        c->req_framing = HTTP1_BODY_CHUNKED; /* forces Connection: close */
    }
    if (c->dest == HEADERS_TO_CONTROL) {
        request_fail(c, 503, REFUSAL_CTL_UNAVAILABLE, "control API unreachable");
    } else {
        request_fail(c, 503, REFUSAL_UPSTREAM_UNREACHABLE, "upstream unreachable");
    }
}

/* The connected upstream closed: the end of a tunnel or of a response framed by the close;
 * before a complete response head HAProxy's and nginx's 502. (A connection that never came up
 * is on_upstream_failed's 503.) */
static void
on_upstream_closed(struct conn *c)
{
    if (c->state == ST_TUNNEL) {
        c->close_after_flush = true;
        c->state = ST_CLOSING;
        conn_kick_cli(c);
        if (c->to_cli.bytes == 0) {
            conn_close(c);
        }
    } else if (c->rstate == RS_BODY && c->resp_framing == HTTP1_BODY_UNTIL_CLOSE) {
        c->resp_keep_alive = false;
        response_done(c);
    } else if (c->rstate == RS_HEAD && !c->resp_started) {
        conn_queue_clear(&c->to_up);
        if (c->state == ST_BODY || c->state == ST_WAIT) {
            bad_gateway(c, "upstream closed before a complete response head");
        }
    } else if (c->rstate != RS_IDLE) {
        conn_close(c);
    }
}

/* A timeout of the request in progress expired (conn.c design note 7). */
static void
on_timeout(struct conn *c)
{
    if ((c->state == ST_WAIT || c->state == ST_BODY) && c->up != NULL && !c->up_connected) {
        conn_close_up(c); /* the connect timeout: as a failed connect */
        on_upstream_failed(c);
    } else if (c->state == ST_TUNNEL) {
        request_log(c, 0, "tunnel idle timeout", REFUSAL_NONE);
        conn_close(c);
    } else if (c->state == ST_WAIT) {
        conn_close_up(c);
        if (!c->resp_started) {
            c->state = ST_HEAD;
            request_fail(c, 504, REFUSAL_UPSTREAM_TIMEOUT, "upstream timeout");
        } else {
            conn_close(c);
        }
    } else {
        request_fail(c, 0, REFUSAL_BODY_TIMEOUT, "request body timeout");
    }
}

/* An unfinished head is answered 408 and the connection closes (conn.c design note 8). */
static void
on_head_refused(struct conn *c, bool memory)
{
    c->req_keep_alive = false;
    c->req_head_method = false;
    c->req_upgrade = false;
    c->req_framing = HTTP1_BODY_NONE;
    c->work->req.head_len = 0;
    snprintf(c->log_method, sizeof(c->log_method), "-");
    snprintf(c->log_path, sizeof(c->log_path), "-");
    if (memory) {
        request_fail(c, 408, REFUSAL_OVER_CAPACITY,
                     "unfinished request heads over HP_MAX_HEAD_MEMORY");
    } else {
        request_fail(c, 408, REFUSAL_HEAD_TIMEOUT, "request head timeout");
    }
}

static void
on_free(struct conn *c)
{
    if (c->work != NULL && c->work->open) {
        request_end(c, 0, REFUSAL_NONE); /* the connection went before its answer */
    }
    if (c->ws_counted) {
        dp_counters.websocket_conns--;
    }
    ctl_link_forget(dp->link, c);
    resolve_forget(c);
    world_unref(c->world);
    c->world = NULL;
}

static const struct conn_handlers handlers = {
    .on_client_input = process_client,
    .on_upstream_input = process_upstream,
    .on_upstream_failed = on_upstream_failed,
    .on_upstream_closed = on_upstream_closed,
    .on_timeout = on_timeout,
    .on_head_refused = on_head_refused,
    .on_free = on_free,
};

void
request_init(void)
{
    conn_init(&handlers);
}
