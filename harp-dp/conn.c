/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Client connections, from the first byte to the last: sockets, queues, backpressure,
 * timeouts. What the bytes mean is request.c's, reached through struct conn_handlers.
 *
 * Design notes:
 * 1. One struct conn per client connection. It owns at most one upstream connection at a time
 *    (to an ExApp or the control API), kept alive across requests to the same destination.
 * 2. Bytes move through two queues, to_up and to_cli. A queue above QUEUE_HIGH pauses the
 *    socket that fills it; below QUEUE_LOW it resumes. lws holds at most one write (64 KiB) per
 *    socket besides. So memory per connection is bounded whatever the body size.
 * 3. (request.c) Request heads are parsed from c->in and stay there until decided.
 * 4. (request.c) Response heads are parsed from c->uin and passed on as they are.
 * 5. A connection is freed only from the client socket's close callback (conn_free from
 *    LWS_CALLBACK_RAW_CLOSE); every other path asks lws to close the socket (a -1 return or
 *    LWS_TO_KILL_ASYNC). The upstream socket's close only detaches it.
 * 6. Input is read in the socket callbacks but processed after the service turn that read it
 *    (conn_run_ready), oldest waiter first: a connection's key is when we last sent to the
 *    side that is now answering. lws walks ready sockets in descriptor-table order, so
 *    processing inside the callbacks would serve the same connections first on every turn;
 *    under load that skewed per-connection throughput by almost 2x and widened the latency
 *    tail. Plain sockets are written directly (q_kick) rather than on the next POLLOUT turn.
 * 7. Timeouts: one lws timer ticks every second and advances a wheel of whole seconds
 *    (wheel.c). Each connection sits on it once, at the second its current timeout could
 *    expire, never further than the shortest timeout (a state change may bring the deadline
 *    closer). Traffic only updates last_cli/last_up; the timer recomputes the deadline when it
 *    comes and re-adds the connection. A tick costs the connections due, not all of them
 *    (a sorted lws timer per connection made each second O(n^2)).
 * 8. An unfinished request head joins the heads list when its first bytes were processed; the
 *    list is in joining order. From its front, heads older than HP_TIMEOUT_HEAD are refused
 *    (on_head_refused: 408), and while the memory of all unfinished heads (input buffer and
 *    conn_work) exceeds HP_MAX_HEAD_MEMORY the oldest are refused too. Idle connections hold
 *    no input buffers and no conn_work: an idle connection costs about 2 KiB here.
 * 9. Half-close (RFC 9112 9.6): plain client sockets are adopted as lws RAW_FILE, so conn.c
 *    reads them itself and sees the end of the client's input (lws's raw sockets take it
 *    for a close). After it no more is read; the request in progress (and those pipelined
 *    before the end) is answered whole, then the connection closes. In a tunnel the end is
 *    passed on: the upstream socket is shut for writing once what was queued for it went.
 *    TLS client sockets stay lws raw sockets: for them the end of input is a close.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "conn.h"
#include "dp.h"
#include "metrics.h"
#include "xmalloc.h"

#define QUEUE_HIGH (256u * 1024)
#define QUEUE_LOW (64u * 1024)

static const struct conn_handlers *up_h; /* the request layer */
static struct conn *ready_list;
static struct wheel wheel;
static lws_sorted_usec_list_t tick_sul;
static lws_usec_t horizon_us; /* the shortest timeout: how far ahead a connection is put */
static char rbuf[64 * 1024];  /* what one read of a plain client socket takes */
static unsigned nconns;
static struct conn *all_conns; /* every client connection, newest first */
static struct {
    struct conn *first, *last;
    size_t bytes;
} heads;

/* --- helpers ----------------------------------------------------------------------------- */

static void
in_append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*len + n > *cap) {
        *cap = (*len + n) * 2 < 16384 ? 16384 : (*len + n) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

void
conn_consume(char *buf, size_t *len, size_t n)
{
    memmove(buf, buf + n, *len - n);
    *len -= n;
}

void
conn_kick_cli(struct conn *c)
{
    if (c->cli != NULL && c->close_after_flush) {
        lws_callback_on_writable(c->cli); /* the writable callback closes once all is out */
    } else if (c->cli != NULL && c->to_cli.bytes > 0) {
        c->sent_cli = lws_now_usecs();
        queue_kick(&c->to_cli, c->cli);
    }
    conn_flow(c);
}

/* The client's end of input, passed on to a tunnel's upstream once its queue is empty. */
static void
up_shut_maybe(struct conn *c)
{
    if (c->cli_eof && c->state == ST_TUNNEL && !c->up_shut && c->up != NULL && c->up_connected &&
        c->to_up.bytes == 0) {
        c->up_shut = true;
        shutdown(lws_get_socket_fd(c->up), SHUT_WR);
    }
}

void
conn_kick_up(struct conn *c)
{
    if (c->up != NULL && c->up_connected && c->to_up.bytes > 0) {
        c->sent_up = lws_now_usecs();
        queue_kick(&c->to_up, c->up);
    }
    up_shut_maybe(c);
    conn_flow(c);
}

/* After the client's end of input: nothing more comes, so a connection back to reading heads
 * is done (design note 9). */
static void
eof_check(struct conn *c)
{
    if (!c->cli_eof || c->state != ST_HEAD || c->cli == NULL) {
        up_shut_maybe(c);
        return;
    }
    c->close_after_flush = true;
    c->state = ST_CLOSING;
    c->in_len = 0;
    conn_kick_cli(c);
    if (c->to_cli.bytes == 0) {
        conn_close(c);
    }
}

void
conn_flow(struct conn *c)
{
    bool pause_cli = c->to_up.bytes > QUEUE_HIGH || c->state == ST_LOOKUP || c->state == ST_AUTH ||
                     c->state == ST_RESOLVE || c->state == ST_CLOSING ||
                     ((c->state == ST_WAIT || c->state == ST_HEAD) && c->in_len > HTTP1_MAX_HEAD) ||
                     c->cli_eof;
    bool pause_up = c->to_cli.bytes > QUEUE_HIGH;

    pause_cli = pause_cli && !c->lingering;
    if (c->cli != NULL && pause_cli != c->cli_paused &&
        (pause_cli || c->to_up.bytes < QUEUE_LOW || c->state != ST_BODY)) {
        c->cli_paused = pause_cli;
        lws_rx_flow_control(c->cli, pause_cli ? 0 : 1);
    }
    if (c->up != NULL && c->up_connected && pause_up != c->up_paused &&
        (pause_up || c->to_cli.bytes < QUEUE_LOW)) {
        c->up_paused = pause_up;
        lws_rx_flow_control(c->up, pause_up ? 0 : 1);
    }
}

void
conn_close_up(struct conn *c)
{
    struct lws *up = c->up;

    if (up == NULL) {
        return;
    }
    c->up = NULL;
    dp_counters.upstream_conns -= c->up_connected;
    c->up_connected = false;
    c->up_paused = false;
    lws_set_opaque_user_data(up, NULL);
    lws_set_timeout(up, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    conn_queue_clear(&c->to_up);
    c->uin_len = 0;
    c->rstate = RS_IDLE;
}

void
conn_close(struct conn *c)
{
    c->state = ST_CLOSING;
    if (c->cli != NULL) {
        lws_set_timeout(c->cli, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    conn_close_up(c);
}

int
conn_connect_up(struct conn *c)
{
    struct lws_client_connect_info ci;

    memset(&ci, 0, sizeof(ci));
    ci.context = dp->ctx;
    ci.vhost = dp->vh;
    ci.address = c->up_host; /* "+/path": a Unix socket */
    ci.port = (int)c->up_port;
    ci.host = c->up_host[0] == '+' ? "localhost" : c->up_host;
    ci.origin = ci.host;
    ci.method = "RAW";
    ci.local_protocol_name = "harp-upstream";
    ci.opaque_user_data = c;
    ci.pwsi = &c->up;
    c->up_connected = false;
    c->last_up = lws_now_usecs();
    if (lws_client_connect_via_info(&ci) == NULL) {
        c->up = NULL;
        return -1;
    }
    if (c->up != NULL && !c->up_connected) {
        /* the request's connect timeout, not the context's (lws enforces it while connecting) */
        lws_set_timeout(c->up, PENDING_TIMEOUT_AWAITING_CONNECT_RESPONSE,
                        (int)c->to_s[EXAPP_TO_CONNECT] + 1);
    }
    return 0;
}

/* --- timeouts ---------------------------------------------------------------------------- */

static lws_usec_t
secs_us(unsigned s)
{
    return (lws_usec_t)s * LWS_US_PER_SEC;
}

/* Puts <c> on the wheel for <deadline>, at most horizon_us from <now>. */
static void
conn_arm(struct conn *c, lws_usec_t now, lws_usec_t deadline)
{
    if (deadline > now + horizon_us) {
        deadline = now + horizon_us;
    }
    wheel_del(&wheel, &c->timer);
    /* rounded up: never before the deadline */
    wheel_add(&wheel, &c->timer, (int64_t)((deadline + LWS_US_PER_SEC - 1) / LWS_US_PER_SEC));
}

/* The timer came for <c>: closes an idle connection or hands an expired timeout of its
 * request up, otherwise puts it back for the deadline of its current state. */
static void
conn_check(struct conn *c, lws_usec_t now)
{
    lws_usec_t last, limit;

    if (c->state == ST_CLOSING) {
        /* a client that does not read the end of what it was sent: not forever */
        if (c->closing_seen && c->cli != NULL) {
            lws_set_timeout(c->cli, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            return;
        }
        c->closing_seen = true;
        conn_arm(c, now, now + secs_us(dp->timeout_client_s));
        return;
    }
    if (c->state == ST_RESOLVE) {
        conn_arm(c, now, now + secs_us(dp->timeout_client_s)); /* the resolver answers */
        return;
    }
    if (c->state == ST_TUNNEL) {
        limit = secs_us(c->to_s[EXAPP_TO_WS_IDLE]);
        last = c->last_cli > c->last_up ? c->last_cli : c->last_up;
    } else if ((c->state == ST_WAIT || c->state == ST_BODY) && c->up != NULL && !c->up_connected) {
        limit = secs_us(c->to_s[EXAPP_TO_CONNECT]); /* last_up: when the connect began */
        last = c->last_up;
    } else if (c->state == ST_WAIT && c->rstate != RS_IDLE) {
        /* until the response begins, then between its bytes */
        limit = secs_us(c->resp_started ? c->to_s[EXAPP_TO_IDLE] : c->to_s[EXAPP_TO_FIRST_BYTE]);
        last = c->last_up;
    } else if (c->state == ST_BODY) {
        limit = secs_us(c->to_s[EXAPP_TO_REQUEST]);
        last = c->last_cli > c->last_up ? c->last_cli : c->last_up;
    } else {
        limit = secs_us(dp->timeout_client_s);
        last = c->last_cli;
        if (now - last >= limit) {
            conn_close(c);
            return;
        }
    }
    if (now - last >= limit) {
        up_h->on_timeout(c);
        return;
    }
    conn_arm(c, now, last + limit);
}

void
conn_timeouts_changed(struct conn *c)
{
    lws_usec_t now = lws_now_usecs();
    unsigned s = c->to_s[0];
    int k;

    for (k = 1; k < EXAPP_NTIMEOUTS; k++) {
        s = c->to_s[k] < s ? c->to_s[k] : s;
    }
    conn_arm(c, now, now + secs_us(s < 1 ? 1 : s));
}

static void
heads_unlink(struct conn *c)
{
    if (!c->in_heads) {
        return;
    }
    if (c->head_prev != NULL) {
        c->head_prev->head_next = c->head_next;
    } else {
        heads.first = c->head_next;
    }
    if (c->head_next != NULL) {
        c->head_next->head_prev = c->head_prev;
    } else {
        heads.last = c->head_prev;
    }
    c->head_prev = c->head_next = NULL;
    heads.bytes -= c->head_bytes;
    c->head_bytes = 0;
    c->in_heads = false;
}

static bool
head_unfinished(const struct conn *c)
{
    return c->state == ST_HEAD && c->in_len > 0;
}

/* After <c>'s input was processed: keeps the heads list and its byte count true, and lets an
 * idle connection's input buffers go. */
static void
head_account(struct conn *c, lws_usec_t now)
{
    if (!head_unfinished(c)) {
        heads_unlink(c);
        if (c->state == ST_HEAD && c->in != NULL) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
        if (c->rstate == RS_IDLE && c->uin_len == 0 && c->uin != NULL) {
            free(c->uin);
            c->uin = NULL;
            c->uin_cap = 0;
        }
        if (c->state == ST_HEAD && c->in_len == 0 && c->rstate == RS_IDLE) {
            free(c->work);
            c->work = NULL;
        }
        return;
    }
    if (!c->in_heads) {
        c->in_heads = true;
        c->head_since = now;
        c->head_prev = heads.last;
        c->head_next = NULL;
        if (heads.last != NULL) {
            heads.last->head_next = c;
        } else {
            heads.first = c;
        }
        heads.last = c;
    }
    heads.bytes = heads.bytes - c->head_bytes + c->in_cap + sizeof(struct conn_work);
    c->head_bytes = c->in_cap + sizeof(struct conn_work);
}

/* HP_TIMEOUT_HEAD and HP_MAX_HEAD_MEMORY, from the oldest unfinished head (design note 8).
 * A refused head is no longer unfinished: the request layer answered it. */
static void
heads_check(lws_usec_t now)
{
    struct conn *c;

    while ((c = heads.first) != NULL) {
        if (!head_unfinished(c)) {
            heads_unlink(c);
        } else if (now - c->head_since >= secs_us(dp->timeout_head_s)) {
            heads_unlink(c);
            up_h->on_head_refused(c, false);
        } else if (heads.bytes > dp->max_head_bytes) {
            heads_unlink(c);
            up_h->on_head_refused(c, true);
        } else {
            return;
        }
    }
}

static void
timer_fire(struct wheel_entry *e, void *arg)
{
    conn_check(lws_container_of(e, struct conn, timer), *(const lws_usec_t *)arg);
}

static void
on_tick(lws_sorted_usec_list_t *sul)
{
    lws_usec_t now = lws_now_usecs();

    lws_sul_schedule(dp->ctx, 0, &tick_sul, on_tick, LWS_US_PER_SEC);
    wheel_advance(&wheel, (int64_t)(now / LWS_US_PER_SEC), timer_fire, &now);
    heads_check(now);
}

void
conn_defaults_changed(void)
{
    unsigned s = dp->timeout_client_s;

    s = dp->timeout_server_s < s ? dp->timeout_server_s : s;
    s = dp->timeout_tunnel_s < s ? dp->timeout_tunnel_s : s;
    s = dp->timeout_head_s < s ? dp->timeout_head_s : s;
    s = s < 1 ? 1 : s >= WHEEL_SLOTS ? WHEEL_SLOTS - 1 : s;
    horizon_us = secs_us(s);
}

void
conn_init(const struct conn_handlers *h)
{
    up_h = h;
    conn_defaults_changed();
    wheel_init(&wheel, (int64_t)(lws_now_usecs() / LWS_US_PER_SEC));
    lws_sul_schedule(dp->ctx, 0, &tick_sul, on_tick, LWS_US_PER_SEC);
}

unsigned
conn_count(void)
{
    return nconns;
}

unsigned
conn_close_idle(lws_usec_t idle_us)
{
    lws_usec_t now = lws_now_usecs();
    struct conn *c;
    unsigned n = 0;

    for (c = all_conns; c != NULL; c = c->all_next) {
        if (c->cli != NULL && c->state == ST_HEAD && c->rstate == RS_IDLE && c->in_len == 0 &&
            !c->ready && c->to_cli.bytes == 0 && now - c->last_cli >= idle_us &&
            now - c->sent_cli >= idle_us) {
            conn_close(c);
            n++;
        }
    }
    return n;
}

/* --- callbacks --------------------------------------------------------------------------- */

static void
conn_free(struct conn *c)
{
    wheel_del(&wheel, &c->timer);
    heads_unlink(c);
    nconns--;
    dp_counters.client_conns--;
    if (c->all_prev != NULL) {
        c->all_prev->all_next = c->all_next;
    } else {
        all_conns = c->all_next;
    }
    if (c->all_next != NULL) {
        c->all_next->all_prev = c->all_prev;
    }
    if (c->ready) {
        struct conn **pp;

        for (pp = &ready_list; *pp != c; pp = &(*pp)->ready_next) {
        }
        *pp = c->ready_next;
    }
    up_h->on_free(c);
    conn_close_up(c);
    conn_queue_clear(&c->to_cli);
    conn_queue_clear(&c->to_up);
    free(c->npath);
    free(c->in);
    free(c->uin);
    free(c->work);
    free(c);
}

static lws_usec_t
ready_key(const struct conn *c)
{
    if (c->up_rx) {
        return c->sent_up;
    }
    return c->sent_cli;
}

/* Input read during a service turn is processed after the turn, oldest waiter first. */
void
conn_mark_ready(struct conn *c)
{
    struct conn **pp;

    if (c->ready) {
        return;
    }
    c->ready = true;
    for (pp = &ready_list; *pp != NULL && ready_key(*pp) <= ready_key(c); pp = &(*pp)->ready_next) {
    }
    c->ready_next = *pp;
    *pp = c;
}

void
conn_run_ready(void)
{
    struct conn *c;
    lws_usec_t now;

    if (ready_list == NULL) {
        return;
    }
    now = lws_now_usecs();
    while ((c = ready_list) != NULL) {
        ready_list = c->ready_next;
        c->ready = false;
        if (c->work == NULL) {
            c->work = xcalloc(1, sizeof(*c->work));
        }
        if (c->up_rx) {
            c->up_rx = false;
            up_h->on_upstream_input(c);
            conn_flow(c);
        }
        if (c->cli_rx) {
            c->cli_rx = false;
            if (c->state != ST_CLOSING) {
                up_h->on_client_input(c);
                conn_flow(c);
            }
        }
        if (c->cli_eof && c->state == ST_BODY) {
            up_h->on_timeout(c); /* a body that can no longer end: as one that stalled */
        }
        eof_check(c);
        head_account(c, now);
    }
    heads_check(now);
}

int
conn_client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    struct conn *c = lws_get_opaque_user_data(wsi);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    ssize_t n;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
    case LWS_CALLBACK_RAW_ADOPT_FILE:
        c = xcalloc(1, sizeof(*c));
        c->to_cli.total = &dp_counters.bytes_out;
        c->cli = wsi;
        c->last_cli = c->last_up = lws_now_usecs();
        c->sent_cli = c->last_cli;
        if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET) {
                c->peer_ip.family = AF_INET;
                memcpy(c->peer_ip.b, &((struct sockaddr_in *)&ss)->sin_addr, 4);
            } else if (ss.ss_family == AF_INET6) {
                const uint8_t *a6 = (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr;

                /* An IPv4 client on a dual-stack socket counts as its IPv4 address. */
                if (memcmp(a6, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
                    c->peer_ip.family = AF_INET;
                    memcpy(c->peer_ip.b, a6 + 12, 4);
                } else {
                    c->peer_ip.family = AF_INET6;
                    memcpy(c->peer_ip.b, a6, 16);
                }
            }
            ip_format(&c->peer_ip, c->peer);
        }
        lws_set_opaque_user_data(wsi, c);
        nconns++;
        dp_counters.client_conns++;
        c->all_next = all_conns;
        if (all_conns != NULL) {
            all_conns->all_prev = c;
        }
        all_conns = c;
        conn_arm(c, c->last_cli, c->last_cli + secs_us(dp->timeout_client_s));
        return 0;
    case LWS_CALLBACK_RAW_RX:
        if (c == NULL || c->state == ST_CLOSING) {
            return 0;
        }
        c->last_cli = lws_now_usecs();
        dp_counters.bytes_in += len;
        in_append(&c->in, &c->in_len, &c->in_cap, in, len);
        c->cli_rx = true;
        conn_mark_ready(c);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE: /* a plain socket: read here (design note 9) */
        if (c != NULL && c->lingering) {
            n = recv(lws_get_socket_fd(wsi), rbuf, sizeof(rbuf), MSG_DONTWAIT);
            return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ? -1 : 0;
        }
        if (c == NULL || c->state == ST_CLOSING || c->cli_eof) {
            return 0;
        }
        n = recv(lws_get_socket_fd(wsi), rbuf, sizeof(rbuf), MSG_DONTWAIT);
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        }
        c->last_cli = lws_now_usecs();
        if (n == 0) {
            c->cli_eof = true;
            conn_flow(c);
        } else {
            dp_counters.bytes_in += (size_t)n;
            in_append(&c->in, &c->in_len, &c->in_cap, rbuf, (size_t)n);
        }
        c->cli_rx = true;
        conn_mark_ready(c);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (c == NULL) {
            return 0;
        }
        if (queue_flush(&c->to_cli, wsi) == -1) {
            return -1;
        }
        if (c->to_cli.bytes == 0 && c->close_after_flush) {
            if (reason == LWS_CALLBACK_RAW_WRITEABLE || c->lingering) {
                return -1; /* all sent: the close callback frees <c> (design note 5) */
            }
            /* a plain socket: a close with unread input would reset the connection and could
             * destroy the answer before the client read it; end our side and read to its end
             * (the ST_CLOSING timeout bounds the wait) */
            c->lingering = true;
            shutdown(lws_get_socket_fd(wsi), SHUT_WR);
        }
        conn_flow(c);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE:
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (c != NULL) {
            lws_set_opaque_user_data(wsi, NULL);
            c->cli = NULL;
            conn_free(c);
        }
        return 0;
    default:
        return 0;
    }
}

int
conn_upstream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct conn *c = lws_get_opaque_user_data(wsi);

    if (c != NULL && c->up != wsi && reason != LWS_CALLBACK_CLIENT_CONNECTION_ERROR) {
        c = NULL; /* a connection the client side already let go of */
    }
    switch (reason) {
    case LWS_CALLBACK_RAW_CONNECTED:
        if (c == NULL) {
            return -1;
        }
        c->up_connected = true;
        dp_counters.upstream_conns++;
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        c->last_up = lws_now_usecs();
        conn_kick_up(c);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c != NULL && (c->up == wsi || c->up == NULL)) {
            lws_set_opaque_user_data(wsi, NULL);
            c->up = NULL;
            c->up_connected = false;
            up_h->on_upstream_failed(c);
        }
        return 0;
    case LWS_CALLBACK_RAW_RX:
        if (c == NULL) {
            return -1;
        }
        c->last_up = lws_now_usecs();
        if (c->state == ST_TUNNEL) {
            conn_queue_push(&c->to_cli, in, len);
            conn_kick_cli(c);
            return 0;
        }
        in_append(&c->uin, &c->uin_len, &c->uin_cap, in, len);
        c->up_rx = true;
        conn_mark_ready(c);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (c == NULL) {
            return 0;
        }
        c->last_up = lws_now_usecs();
        if (queue_flush(&c->to_up, wsi) == -1) {
            return -1;
        }
        up_shut_maybe(c);
        conn_flow(c);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (c == NULL) {
            return 0;
        }
        lws_set_opaque_user_data(wsi, NULL);
        c->up = NULL;
        dp_counters.upstream_conns -= c->up_connected;
        c->up_connected = false;
        up_h->on_upstream_closed(c);
        eof_check(c);
        return 0;
    default:
        return 0;
    }
}
