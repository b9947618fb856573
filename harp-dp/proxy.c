/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Client connections, from the first byte to the last.
 *
 * Design notes:
 * 1. One struct conn per client connection. It owns at most one upstream connection at a time
 *    (to an ExApp or the control API), kept alive across requests to the same destination.
 * 2. Bytes move through two queues, to_up and to_cli. A queue above QUEUE_HIGH pauses the
 *    socket that fills it; below QUEUE_LOW it resumes. lws holds at most one write (64 KiB) per
 *    socket besides. So memory per connection is bounded whatever the body size.
 * 3. Request heads are parsed from c->in; the head stays there, unchanged, until its decision
 *    is made (a look-up may pause it), then a rewritten head goes to to_up and the body follows
 *    through the framing tracker. Bytes after the body (pipelining) wait in c->in.
 * 4. Response heads are parsed from c->uin and passed on as they are; the body is tracked by
 *    its framing to know where the response ends. A 101 turns both sides into a byte tunnel.
 * 5. A connection is freed only from the client socket's close callback; the upstream socket's
 *    close only detaches it.
 * 6. Input is read in the socket callbacks but processed after the service turn that read it
 *    (proxy_run_ready), oldest waiter first: a connection's key is when we last sent to the
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
 *    list is in joining order. From its front, heads older than HP_TIMEOUT_HEAD get 408, and
 *    while the memory of all unfinished heads (input buffer and conn_work) exceeds
 *    HP_MAX_HEAD_MEMORY the oldest get 408 too. Idle connections hold no input buffers and no
 * conn_work: an idle connection costs about 2 KiB here.
 *
 *   HEAD --decide--> (LOOKUP --reply--> HEAD) --forward--> BODY --end--> WAIT --response end-->
 * HEAD
 *                                                            \--101--> TUNNEL
 *   local answers: respond() -> HEAD (keep-alive) or CLOSING
 */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "bans.h"
#include "clientip.h"
#include "ctl_link.h"
#include "engine_map.h"
#include "log.h"
#include "msg.h"
#include "proxy.h"
#include "resolve.h"
#include "sessions.h"
#include "wheel.h"
#include "xmalloc.h"

#define QUEUE_HIGH (256u * 1024)
#define QUEUE_LOW (64u * 1024)
#define IO_CHUNK (64u * 1024)

enum cstate { ST_HEAD, ST_LOOKUP, ST_AUTH, ST_RESOLVE, ST_BODY, ST_WAIT, ST_TUNNEL, ST_CLOSING };
enum rstate { RS_IDLE, RS_HEAD, RS_BODY };
enum dest { DEST_EXAPP, DEST_CONTROL, DEST_DOCKER };

struct seg {
    struct seg *next;
    size_t len, off;
    char data[];
};

struct queue {
    struct seg *head, *tail;
    size_t bytes;
};

/* Most of a connection's size, needed only while it has a request in progress: allocated
 * when its input is first processed, let go when it is idle again (design note 8). The
 * macros after struct conn keep the names c->work->req, c->work->resp and c->work->dec. */
struct conn_work {
    struct http1_head req, resp;
    struct decision dec; /* kept while the ExApp's host name is resolved */
};

struct conn {
    struct lws *cli, *up;
    struct conn_work *work; /* NULL while idle */
    enum cstate state;
    enum rstate rstate;
    /* client input: the current head, its body bytes not yet queued, pipelined requests */
    char *in;
    size_t in_len, in_cap;
    enum http1_framing req_framing;
    uint64_t req_left;
    struct http1_chunked req_chunk;
    bool req_head_method, req_keep_alive, req_upgrade, req_body_done;
    bool looked_up;
    struct user user; /* of the current request */
    /* upstream */
    enum dest dest;
    char up_host[256];
    unsigned up_port;
    bool up_connected;
    char *uin;
    size_t uin_len, uin_cap;
    enum http1_framing resp_framing;
    uint64_t resp_left;
    struct http1_chunked resp_chunk;
    bool resp_keep_alive;
    bool resp_started; /* a response head went to the client for this request */
    struct queue to_up, to_cli;
    bool cli_paused, up_paused;
    bool close_after_flush;
    struct table *table; /* the table the current request was decided with */
    char *npath;         /* the normalised path of the current request (route_decide) */
    size_t npath_cap;
    char up_name[256];        /* the ExApp's host as registered, for re-resolving after failures */
    struct wheel_entry timer; /* when its timeouts are next looked at (design note 7) */
    lws_usec_t last_cli, last_up;
    bool closing_seen; /* the timer already found it closing */
    /* an unfinished request head: on the heads list, oldest first (design note 8) */
    struct conn *head_prev, *head_next;
    bool in_heads;
    size_t head_bytes; /* what it counts towards HP_MAX_HEAD_MEMORY */
    lws_usec_t head_since;
    /* deferred input (design note 6) */
    struct conn *ready_next;
    bool ready, cli_rx, up_rx;
    lws_usec_t sent_cli, sent_up; /* when bytes last went to each side */
    char peer[INET6_ADDRSTRLEN];
    struct ipaddr peer_ip;
    char client[IP_STR_MAX];   /* the current request's client IP (clientip.c) */
    bool has_key;              /* the current request carries the valid shared key */
    const struct route *route; /* the route that let the request through, for its statuses */
    char log_method[24], log_path[208]; /* copies: the head leaves c->in once forwarded */
};

static unsigned char wbuf[LWS_PRE + IO_CHUNK];
static struct conn *ready_list;
static struct wheel wheel;
static lws_sorted_usec_list_t tick_sul;
static lws_usec_t horizon_us; /* the shortest timeout: how far ahead a connection is put */
static unsigned nconns;
static struct {
    struct conn *first, *last;
    size_t bytes;
} heads;

/* --- queues ------------------------------------------------------------------------------ */

static void
q_push(struct queue *q, const void *p, size_t n)
{
    struct seg *s;

    if (n == 0) {
        return;
    }
    s = xmalloc(sizeof(*s) + n);
    s->next = NULL;
    s->len = n;
    s->off = 0;
    memcpy(s->data, p, n);
    if (q->tail != NULL) {
        q->tail->next = s;
    } else {
        q->head = s;
    }
    q->tail = s;
    q->bytes += n;
}

static void
q_clear(struct queue *q)
{
    struct seg *s;

    while ((s = q->head) != NULL) {
        q->head = s->next;
        free(s);
    }
    q->tail = NULL;
    q->bytes = 0;
}

/* Hands up to IO_CHUNK bytes of <q> to lws for <wsi>. -1 when the socket failed. */
static int
q_write(struct queue *q, struct lws *wsi)
{
    size_t n = 0, take;
    struct seg *s;

    while ((s = q->head) != NULL && n < IO_CHUNK) {
        take = s->len - s->off;
        if (take > IO_CHUNK - n) {
            take = IO_CHUNK - n;
        }
        memcpy(wbuf + LWS_PRE + n, s->data + s->off, take);
        n += take;
        s->off += take;
        if (s->off == s->len) {
            q->head = s->next;
            if (q->head == NULL) {
                q->tail = NULL;
            }
            free(s);
        }
    }
    q->bytes -= n;
    if (n > 0 && lws_write(wsi, wbuf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n) {
        return -1;
    }
    return 0;
}

/* Writes <q> straight to a plain socket's descriptor until it is empty or the socket is full,
 * bypassing lws: 0 when all went out, 1 when the rest must wait for POLLOUT, -1 on error. */
static int
q_send(struct queue *q, struct lws *wsi)
{
    struct iovec iov[16];
    struct msghdr mh;
    struct seg *s;
    ssize_t n;
    size_t k;
    int fd = lws_get_socket_fd(wsi);

    while (q->head != NULL) {
        memset(&mh, 0, sizeof(mh));
        for (k = 0, s = q->head; s != NULL && k < 16; s = s->next, k++) {
            iov[k].iov_base = s->data + s->off;
            iov[k].iov_len = s->len - s->off;
        }
        mh.msg_iov = iov;
        mh.msg_iovlen = k;
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
        }
        q->bytes -= (size_t)n;
        while ((s = q->head) != NULL && (size_t)n >= s->len - s->off) {
            n -= (ssize_t)(s->len - s->off);
            q->head = s->next;
            free(s);
        }
        if (q->head == NULL) {
            q->tail = NULL;
        } else {
            q->head->off += (size_t)n;
        }
    }
    return 0;
}

/* Flushes <q> to <wsi> from its writable callback: TLS through lws, plain sockets directly.
 * -1 when the socket failed; otherwise asks for the next POLLOUT while bytes remain. */
static int
q_flush(struct queue *q, struct lws *wsi)
{
    if (lws_is_ssl(wsi)) {
        if (q_write(q, wsi) == -1) {
            return -1;
        }
    } else if (q_send(q, wsi) == -1) {
        return -1;
    }
    if (q->bytes > 0) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

/* New bytes in <q>: a plain socket takes them at once when it can (no loop turn, no POLLOUT);
 * the rest, and everything for TLS, waits for the writable callback. */
static void
q_kick(struct queue *q, struct lws *wsi)
{
    if (q->bytes == 0) {
        return;
    }
    if (!lws_is_ssl(wsi) && q_send(q, wsi) == 0) {
        return;
    }
    lws_callback_on_writable(wsi); /* full, TLS, or failed: the callback finds out */
}

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

static void
in_consume(char *buf, size_t *len, size_t n)
{
    memmove(buf, buf + n, *len - n);
    *len -= n;
}

static void
qputs(struct queue *q, const char *s)
{
    q_push(q, s, strlen(s));
}

static void flow(struct conn *c);

static void
kick_cli(struct conn *c)
{
    if (c->cli != NULL && c->close_after_flush) {
        lws_callback_on_writable(c->cli); /* the writable callback closes once all is out */
    } else if (c->cli != NULL && c->to_cli.bytes > 0) {
        c->sent_cli = lws_now_usecs();
        q_kick(&c->to_cli, c->cli);
    }
    flow(c);
}

static void
kick_up(struct conn *c)
{
    if (c->up != NULL && c->up_connected && c->to_up.bytes > 0) {
        c->sent_up = lws_now_usecs();
        q_kick(&c->to_up, c->up);
    }
    flow(c);
}

/* Pauses or resumes reading on each side according to the queue it feeds. */
static void
flow(struct conn *c)
{
    bool pause_cli = c->to_up.bytes > QUEUE_HIGH || c->state == ST_LOOKUP || c->state == ST_AUTH ||
                     c->state == ST_RESOLVE || c->state == ST_CLOSING ||
                     ((c->state == ST_WAIT || c->state == ST_HEAD) && c->in_len > HTTP1_MAX_HEAD);
    bool pause_up = c->to_cli.bytes > QUEUE_HIGH;

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

static void
close_up(struct conn *c)
{
    struct lws *up = c->up;

    if (up == NULL) {
        return;
    }
    c->up = NULL;
    c->up_connected = false;
    c->up_paused = false;
    lws_set_opaque_user_data(up, NULL);
    lws_set_timeout(up, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    q_clear(&c->to_up);
    c->uin_len = 0;
    c->rstate = RS_IDLE;
}

static void
close_conn(struct conn *c)
{
    c->state = ST_CLOSING;
    if (c->cli != NULL) {
        lws_set_timeout(c->cli, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    close_up(c);
}

static void
request_log(struct conn *c, unsigned status, const char *why)
{
    const char *client = c->client[0] ? c->client : c->peer;

    if (status != 0) {
        log_info("request: %s %s -> %u (%s) client=%s", c->log_method, c->log_path, status, why,
                 client);
    } else {
        log_info("request: %s %s -> %s client=%s", c->log_method, c->log_path, why, client);
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
    table_unref(c->table);
    c->table = NULL;
    c->looked_up = false;
    c->user.state = USER_UNRESOLVED;
    c->route = NULL;
    if (!keep) {
        c->close_after_flush = true;
        c->state = ST_CLOSING;
        c->in_len = 0;
        flow(c);
        kick_cli(c);
        if (c->to_cli.bytes == 0 && c->cli != NULL) {
            close_conn(c);
        }
        return;
    }
    c->state = ST_HEAD;
}

static const char *
reason_phrase(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* A local answer to the current request. A request whose body was not read closes the
 * connection after the answer. */
static void
respond(struct conn *c, unsigned status, const char *ctype, const char *body, const char *why)
{
    char head[512];
    bool keep = c->state == ST_HEAD && c->req_keep_alive && c->req_framing == HTTP1_BODY_NONE &&
                !c->req_upgrade;

    snprintf(
        head, sizeof(head), "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
        status, reason_phrase(status), ctype, strlen(body),
        ctype[5] == 'h' ? "Cache-Control: no-cache\r\n" : "", keep ? "" : "Connection: close\r\n");
    request_log(c, status, why);
    qputs(&c->to_cli, head);
    if (!c->req_head_method) {
        qputs(&c->to_cli, body);
    }
    if (keep && c->work->req.head_len > 0) {
        in_consume(c->in, &c->in_len, c->work->req.head_len);
    }
    c->work->req.head_len = 0;
    finish_request(c, keep);
    kick_cli(c);
}

static void
respond_plain(struct conn *c, unsigned status, const char *why)
{
    char body[64];

    snprintf(body, sizeof(body), "%u %s", status, reason_phrase(status));
    respond(c, status, "text/plain", body, why);
}

/* HAProxy's own error pages, as HaRP's clients see them for upstream failures. */
static void
respond_haproxy(struct conn *c, unsigned status, const char *why)
{
    const char *msg = status == 403   ? "Request forbidden by administrative rules."
                      : status == 503 ? "No server is available to handle this request."
                      : status == 504 ? "The server didn't respond in time."
                                      : "The server returned an invalid or incomplete response.";
    char body[256];

    snprintf(body, sizeof(body), "<html><body><h1>%u %s</h1>\n%s\n</body></html>\n", status,
             reason_phrase(status), msg);
    respond(c, status, "text/html", body, why);
}

/* --- forwarding -------------------------------------------------------------------------- */

static bool
hop_by_hop(struct span name, const struct span *connection)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "te",         "trailer",    "upgrade"};
    char tok[64];
    size_t i;

    for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        if (span_ieq(name, hop[i])) {
            return true;
        }
    }
    if (connection != NULL && name.n < sizeof(tok)) {
        memcpy(tok, name.p, name.n);
        tok[name.n] = '\0';
        return http1_list_has(*connection, tok) && !span_ieq(name, "content-length") &&
               !span_ieq(name, "transfer-encoding");
    }
    return false;
}

/* <name> is <lit> (lower case, '-' separated) in any case and with '_' or '.' for '-':
 * CGI-style servers (wsgiref, PHP) read these spellings as the same variable (PHP turns '.'
 * into '_' in every $_SERVER name). */
static bool
spelled_as(struct span name, const char *lit)
{
    size_t i;

    for (i = 0; i < name.n && lit[i] != '\0'; i++) {
        char c = name.p[i] >= 'A' && name.p[i] <= 'Z' ? (char)(name.p[i] + 32) : name.p[i];

        if (c != lit[i] && !((c == '_' || c == '.') && lit[i] == '-')) {
            return false;
        }
    }
    return i == name.n && lit[i] == '\0';
}

/* The headers harp sets for the ExApp, and the shared key: no client spelling passes. */
static bool
injected(struct span name)
{
    return spelled_as(name, "ex-app-id") || spelled_as(name, "ex-app-version") ||
           spelled_as(name, "authorization-app-api") || spelled_as(name, "aa-version") ||
           spelled_as(name, "harp-shared-key");
}

/* The rewritten head is built here, then queued in one piece. */
static char head_buf[HTTP1_MAX_HEAD + 4096];
static size_t head_len;

static void
hput(const void *p, size_t n)
{
    if (head_len + n <= sizeof(head_buf)) {
        memcpy(head_buf + head_len, p, n);
    }
    head_len += n;
}

static void
hputs(const char *s)
{
    hput(s, strlen(s));
}

static void
hspan(struct span s)
{
    hput(s.p, s.n);
}

/* Queues the rewritten request head for the upstream. The input head is at most
 * HTTP1_MAX_HEAD bytes and we add less than 4 KiB, so head_buf always suffices. */
static void
queue_head(struct conn *c, const struct decision *d)
{
    const struct http1_head *h = &c->work->req;
    const struct span *conn_hdr = http1_header_get(h, "connection");
    static char vtarget[HTTP1_MAX_HEAD];
    char line[1200];
    size_t i, vlen;

    head_len = 0;
    hspan(h->method);
    hputs(" ");
    if (c->dest == DEST_DOCKER &&
        (vlen = engines_rewrite(d->docker_port, d->target, vtarget, sizeof(vtarget))) > 0) {
        hput(vtarget, vlen);
    } else {
        hspan(d->target);
    }
    if (h->query.p != NULL) {
        hputs("?");
        hspan(h->query);
    }
    hputs(" HTTP/1.1\r\n");
    for (i = 0; i < h->nheaders; i++) {
        const struct http1_header *hd = &h->headers[i];

        if (hop_by_hop(hd->name, conn_hdr) && !(c->req_upgrade && span_ieq(hd->name, "upgrade"))) {
            continue;
        }
        /* The control API checks the key itself; nothing else ever gets it. */
        if (c->dest == DEST_EXAPP
                ? injected(hd->name)
                : (c->dest == DEST_DOCKER && spelled_as(hd->name, "harp-shared-key"))) {
            continue;
        }
        hspan(hd->name);
        hputs(": ");
        hspan(hd->value);
        hputs("\r\n");
    }
    if (http1_header_get(h, "host") == NULL && c->up_host[0] == '+') {
        hputs("Host: localhost\r\n");
    } else if (http1_header_get(h, "host") == NULL) {
        snprintf(line, sizeof(line), "Host: %s:%u\r\n", c->up_host, c->up_port);
        hputs(line);
    }
    if (c->req_upgrade) {
        hputs("Connection: Upgrade\r\n");
    }
    if (c->dest == DEST_EXAPP) {
        hputs("EX-APP-ID: ");
        hspan(d->app_id);
        hputs("\r\nEX-APP-VERSION: ");
        hspan(d->version);
        hputs("\r\nAUTHORIZATION-APP-API: ");
        hputs(d->auth);
        hputs("\r\nAA-VERSION: 32\r\n");
    } else if (c->dest == DEST_CONTROL) {
        hputs("harp-via-dataplane: 1\r\n"); /* harp-ctl serves it no operator API */
    }
    hputs("\r\n");
    assert(head_len <= sizeof(head_buf));
    q_push(&c->to_up, head_buf, head_len);
}

static int
connect_up(struct conn *c)
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
    return 0;
}

static void on_upstream_failed(struct conn *c);
static void process_client(struct conn *c);
static void send_request(struct conn *c, const struct decision *d, const char *host, unsigned port);

/* Sends the current request to its destination, once its address is known. */
static void
forward(struct conn *c, const struct decision *d)
{
    char host[256];
    unsigned port;

    switch (d->verdict) {
    case VERDICT_TO_CONTROL:
        c->dest = DEST_CONTROL;
        snprintf(host, sizeof(host), "%s", dp->ctl_host);
        c->up_name[0] = '\0';
        port = dp->ctl_port;
        break;
    case VERDICT_TO_DOCKER:
        c->dest = DEST_DOCKER;
        engines_upstream(d->docker_port, host, sizeof(host), &port);
        c->up_name[0] = '\0';
        break;
    default:
        c->dest = DEST_EXAPP;
        snprintf(c->up_name, sizeof(c->up_name), "%s", d->host);
        switch (resolve_host(d->host, host, sizeof(host), c)) {
        case RESOLVE_FAILED:
            respond_plain(c, 404, "ExApp host does not resolve");
            return;
        case RESOLVE_PENDING:
            c->work->dec = *d;
            c->state = ST_RESOLVE;
            flow(c);
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
proxy_resolved(struct conn *c, const char *addr)
{
    if (c->state != ST_RESOLVE) {
        return;
    }
    c->state = ST_HEAD;
    if (addr == NULL) {
        respond_plain(c, 404, "ExApp host does not resolve");
    } else {
        send_request(c, &c->work->dec, addr, c->work->dec.port);
    }
    if (c->state == ST_HEAD || c->state == ST_BODY) {
        process_client(c);
    }
    flow(c);
}

/* Queues the request for <host>:<port> (numeric) and connects when needed. */
static void
send_request(struct conn *c, const struct decision *d, const char *host, unsigned port)
{
    const char *what = d->why;

    if (c->up != NULL && (strcmp(host, c->up_host) != 0 || port != c->up_port)) {
        close_up(c);
    }
    snprintf(c->up_host, sizeof(c->up_host), "%s", host);
    c->up_port = port;
    queue_head(c, d);
    c->req_left = c->work->req.content_length;
    memset(&c->req_chunk, 0, sizeof(c->req_chunk));
    in_consume(c->in, &c->in_len, c->work->req.head_len);
    c->work->req.head_len = 0;
    c->req_body_done = c->req_framing == HTTP1_BODY_NONE;
    c->state = c->req_body_done ? ST_WAIT : ST_BODY;
    c->rstate = RS_HEAD;
    c->resp_started = false;
    request_log(c, 0, what);
    if (c->up == NULL && connect_up(c) == -1) {
        on_upstream_failed(c);
        return;
    }
    kick_up(c);
}

/* --- client input ------------------------------------------------------------------------ */

/* What user-info gets (spec 3.3): the client's headers but Host, Content-Length, hop-by-hop
 * ones and the shared key; names lower-case; of repeated lines the last. A new array of *<nout>
 * headers (values are bytes, not always UTF-8, copied). */
static struct msg_header *
auth_headers(const struct http1_head *h, size_t *nout)
{
    const struct span *conn_hdr = http1_header_get(h, "connection");
    struct msg_header *a = xcalloc(h->nheaders + 1, sizeof(*a)), *out;
    size_t i, j, k;

    *nout = 0;
    for (i = 0; i < h->nheaders; i++) {
        struct span n = h->headers[i].name, v = h->headers[i].value;
        bool later = false;

        if (n.n >= sizeof(a->name) || span_ieq(n, "host") || span_ieq(n, "content-length") ||
            span_ieq(n, "transfer-encoding") || span_ieq(n, "harp-shared-key") ||
            hop_by_hop(n, conn_hdr)) {
            continue;
        }
        for (j = i + 1; j < h->nheaders && !later; j++) {
            later = h->headers[j].name.n == n.n && strncasecmp(h->headers[j].name.p, n.p, n.n) == 0;
        }
        if (later) {
            continue;
        }
        out = &a[(*nout)++];
        for (k = 0; k < n.n; k++) {
            out->name[k] = (char)(n.p[k] >= 'A' && n.p[k] <= 'Z' ? n.p[k] + 32 : n.p[k]);
        }
        out->value = xmalloc(v.n + 1);
        memcpy(out->value, v.p, v.n);
        out->value[v.n] = '\0';
        out->value_len = v.n;
    }
    return a;
}

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
    route_decide(dp->table, &c->work->req, c->npath, dp->cfg.shared_key, c->looked_up, &c->user,
                 &d);
    if (d.failure) {
        failure(c);
    }
    c->route = d.route;
    switch (d.verdict) {
    case VERDICT_AUTH:
        cookie = route_session_cookie(&c->work->req);
        if (cookie.n > 0 && sessions_get(cookie, &c->user)) {
            goto again;
        }
        hdrs = auth_headers(&c->work->req, &nhdrs);
        if (ctl_link_auth(dp->link, d.app_id_lc, cookie, hdrs, nhdrs, c) == -1) {
            c->user.state = USER_ERROR;
            goto again;
        }
        c->state = ST_AUTH;
        flow(c);
        return;
    case VERDICT_DROP:
        request_log(c, 0, d.why);
        close_conn(c);
        return;
    case VERDICT_BAD_REQUEST:
        respond_plain(c, 400, d.why);
        return;
    case VERDICT_UNAUTHORIZED:
        respond_plain(c, 401, d.why);
        return;
    case VERDICT_FORBIDDEN:
        respond_plain(c, 403, d.why);
        return;
    case VERDICT_DENIED:
        respond_haproxy(c, 403, d.why);
        return;
    case VERDICT_NOT_FOUND:
        respond_plain(c, 404, d.why);
        return;
    case VERDICT_UNAVAILABLE:
        respond(c, 503, "text/plain", "503 Service Unavailable (HaRP)", d.why);
        return;
    case VERDICT_LOOKUP:
        if (ctl_link_lookup(dp->link, d.app_id_lc, c) == -1) {
            respond(c, 503, "text/plain",
                    "503 Service Unavailable (HaRP): the control plane is unreachable",
                    "look-up impossible: control plane down");
            return;
        }
        c->state = ST_LOOKUP;
        flow(c);
        return;
    default:
        c->table = dp->table != NULL ? table_ref(dp->table) : NULL;
        forward(c, &d);
        return;
    }
}

void
proxy_auth_done(struct conn *c, const struct user *u, lws_usec_t ttl_us)
{
    struct span cookie;

    if (c->state != ST_AUTH) {
        return;
    }
    c->state = ST_HEAD;
    if (u->state == USER_UNAVAILABLE) {
        respond(c, 503, "text/plain", "503 Service Unavailable (HaRP)",
                "user look-up refused by the control plane");
        if (c->state == ST_HEAD || c->state == ST_BODY) {
            process_client(c);
        }
        flow(c);
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
    flow(c);
}

void
proxy_lookup_done(struct conn *c, bool unavailable)
{
    if (c->state != ST_LOOKUP) {
        return;
    }
    c->state = ST_HEAD;
    if (unavailable) {
        respond(c, 503, "text/plain",
                "503 Service Unavailable (HaRP): the control plane is unreachable",
                "look-up failed: control plane down");
    } else {
        c->looked_up = true;
        decide(c);
    }
    if (c->state == ST_HEAD || c->state == ST_BODY) {
        process_client(c);
    }
    flow(c);
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
            close_up(c);
            if (c->resp_started) {
                request_log(c, 0, "malformed chunked request body");
                close_conn(c);
                return;
            }
            c->state = ST_HEAD;
            c->req_keep_alive = false;
            respond_plain(c, 400, "malformed chunked request body");
            return;
        }
        c->req_body_done = r == CHUNK_DONE;
    }
    q_push(&c->to_up, c->in, n);
    in_consume(c->in, &c->in_len, n);
    if (c->req_body_done) {
        c->state = ST_WAIT;
    }
    kick_up(c);
}

/* The client IP of the request just parsed, and HaRP's ban check (spec 2.3 step 2): a banned
 * client is dropped silently, or answered 429 with HP_BAN_REPLY_429, unless it carries the
 * valid shared key. True when the request was ended here. */
static bool
check_ban(struct conn *c)
{
    struct ipaddr ip;
    int64_t now = (int64_t)time(NULL), until;
    char body[96], head[256];

    clientip_get(dp->cfg.trusted, &c->peer_ip, &c->work->req, &ip);
    ip_format(&ip, c->client);
    c->has_key = route_has_key(&c->work->req, dp->cfg.shared_key);
    if (c->has_key || !bans_check(c->client, now, &until)) {
        return false;
    }
    if (!dp->cfg.ban_reply_429) {
        request_log(c, 0, "banned client: dropped");
        close_conn(c);
        return true;
    }
    snprintf(body, sizeof(body), "429 Too Many Requests");
    snprintf(head, sizeof(head),
             "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\n"
             "Content-Length: %zu\r\nRetry-After: %lld\r\nConnection: close\r\n\r\n",
             strlen(body), (long long)(until - now));
    request_log(c, 429, "banned client");
    qputs(&c->to_cli, head);
    qputs(&c->to_cli, body);
    c->work->req.head_len = 0;
    finish_request(c, false);
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
                respond_plain(c,
                              st == HTTP1_TOO_LARGE     ? 431
                              : st == HTTP1_BAD_VERSION ? 505
                                                        : 400,
                              "malformed request");
                return;
            }
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
            q_push(&c->to_up, c->in, c->in_len);
            c->in_len = 0;
            kick_up(c);
            return;
        default:
            return;
        }
    }
}

/* --- upstream input ---------------------------------------------------------------------- */

static void mark_ready(struct conn *c);

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
    respond_haproxy(c, 502, why);
    if (c->state == ST_HEAD && c->in_len > 0) {
        c->cli_rx = true;
        mark_ready(c);
    }
}

static void
response_done(struct conn *c)
{
    bool keep = c->req_keep_alive && c->resp_keep_alive && c->req_body_done;

    c->rstate = RS_IDLE;
    if (!c->resp_keep_alive || !c->req_body_done || c->uin_len > 0) {
        close_up(c);
    }
    kick_cli(c);
    finish_request(c, keep);
    if (keep) {
        process_client(c);
    }
    flow(c);
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
                close_up(c);
                if (!c->resp_started) {
                    respond_haproxy(c, 502, "invalid response from the upstream");
                } else {
                    close_conn(c);
                }
                return;
            }
            if (c->work->resp.status == 101 && !c->req_upgrade) {
                close_up(c);
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
            q_push(&c->to_cli, c->uin, c->work->resp.head_len);
            c->resp_started = true;
            c->resp_framing = c->work->resp.framing;
            c->resp_left = c->work->resp.content_length;
            c->resp_keep_alive = c->work->resp.keep_alive;
            memset(&c->resp_chunk, 0, sizeof(c->resp_chunk));
            in_consume(c->uin, &c->uin_len, c->work->resp.head_len);
            if (c->work->resp.status == 101) {
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
                    close_conn(c);
                    return;
                }
                if (r == CHUNK_DONE) {
                    c->resp_left = 0;
                } else {
                    c->resp_left = 1;
                }
            }
            q_push(&c->to_cli, c->uin, n);
            in_consume(c->uin, &c->uin_len, n);
            kick_cli(c);
            if (c->resp_framing != HTTP1_BODY_UNTIL_CLOSE && c->resp_left == 0) {
                response_done(c);
                return;
            }
            continue;
        case RS_IDLE:
            /* bytes without a request: the upstream is not speaking HTTP to us */
            close_up(c);
            return;
        }
    }
    kick_cli(c);
}

static void
on_upstream_failed(struct conn *c)
{
    if (c->dest == DEST_EXAPP && c->up_name[0] != '\0') {
        resolve_invalidate(c->up_name);
    }
    c->up = NULL;
    c->up_connected = false;
    q_clear(&c->to_up);
    if (c->state == ST_TUNNEL || c->resp_started) {
        close_conn(c);
        return;
    }
    if (c->state != ST_BODY && c->state != ST_WAIT) {
        return;
    }
    c->state = ST_HEAD; /* so respond() may keep the connection when nothing was read */
    c->req_keep_alive = c->req_keep_alive && c->req_body_done;
    if (!c->req_body_done) {
        c->req_framing = HTTP1_BODY_CHUNKED; /* forces Connection: close */
    }
    if (c->dest == DEST_CONTROL) {
        respond(c, 503, "text/plain",
                "503 Service Unavailable (HaRP): the control plane is unreachable",
                "control API unreachable");
    } else {
        respond_haproxy(c, 503, "upstream unreachable");
    }
}

/* A connected upstream closed before a complete response head: HAProxy's and nginx's 502.
 * (A connection that never came up is on_upstream_failed's 503.) */
static void
on_upstream_closed(struct conn *c)
{
    c->up = NULL;
    c->up_connected = false;
    q_clear(&c->to_up);
    if (c->state == ST_BODY || c->state == ST_WAIT) {
        bad_gateway(c, "upstream closed before a complete response head");
    }
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

/* The timer came for <c>: closes it when a timeout expired, otherwise puts it back for the
 * deadline of its current state. */
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
        limit = secs_us(dp->timeout_tunnel_s);
        last = c->last_cli > c->last_up ? c->last_cli : c->last_up;
        if (now - last >= limit) {
            request_log(c, 0, "tunnel idle timeout");
            close_conn(c);
            return;
        }
    } else if (c->state == ST_WAIT && c->rstate != RS_IDLE) {
        limit = secs_us(dp->timeout_server_s);
        last = c->last_up;
        if (now - last >= limit) {
            close_up(c);
            if (!c->resp_started) {
                c->state = ST_HEAD;
                respond_haproxy(c, 504, "upstream timeout");
            } else {
                close_conn(c);
            }
            return;
        }
    } else if (c->state == ST_BODY) {
        limit = secs_us(dp->timeout_client_s);
        last = c->last_cli > c->last_up ? c->last_cli : c->last_up;
        if (now - last >= limit) {
            request_log(c, 0, "request body timeout");
            close_conn(c);
            return;
        }
    } else {
        limit = secs_us(dp->timeout_client_s);
        last = c->last_cli;
        if (now - last >= limit) {
            close_conn(c);
            return;
        }
    }
    conn_arm(c, now, last + limit);
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

/* Answers an unfinished head 408 and closes. */
static void
head_refuse(struct conn *c, const char *why)
{
    heads_unlink(c);
    c->req_keep_alive = false;
    c->req_head_method = false;
    c->req_upgrade = false;
    c->req_framing = HTTP1_BODY_NONE;
    c->work->req.head_len = 0;
    snprintf(c->log_method, sizeof(c->log_method), "-");
    snprintf(c->log_path, sizeof(c->log_path), "-");
    respond_plain(c, 408, why);
}

/* HP_TIMEOUT_HEAD and HP_MAX_HEAD_MEMORY, from the oldest unfinished head (design note 8). */
static void
heads_check(lws_usec_t now)
{
    struct conn *c;

    while ((c = heads.first) != NULL) {
        if (!head_unfinished(c)) {
            heads_unlink(c);
        } else if (now - c->head_since >= secs_us(dp->timeout_head_s)) {
            head_refuse(c, "request head timeout");
        } else if (heads.bytes > dp->max_head_bytes) {
            head_refuse(c, "unfinished request heads over HP_MAX_HEAD_MEMORY");
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
proxy_init(void)
{
    unsigned s = dp->timeout_client_s;

    s = dp->timeout_server_s < s ? dp->timeout_server_s : s;
    s = dp->timeout_tunnel_s < s ? dp->timeout_tunnel_s : s;
    s = dp->timeout_head_s < s ? dp->timeout_head_s : s;
    s = s < 1 ? 1 : s >= WHEEL_SLOTS ? WHEEL_SLOTS - 1 : s;
    horizon_us = secs_us(s);
    wheel_init(&wheel, (int64_t)(lws_now_usecs() / LWS_US_PER_SEC));
    lws_sul_schedule(dp->ctx, 0, &tick_sul, on_tick, LWS_US_PER_SEC);
}

unsigned
proxy_conn_count(void)
{
    return nconns;
}

/* --- callbacks --------------------------------------------------------------------------- */

static void
conn_free(struct conn *c)
{
    wheel_del(&wheel, &c->timer);
    heads_unlink(c);
    nconns--;
    if (c->ready) {
        struct conn **pp;

        for (pp = &ready_list; *pp != c; pp = &(*pp)->ready_next) {
        }
        *pp = c->ready_next;
    }
    ctl_link_forget(dp->link, c);
    resolve_forget(c);
    close_up(c);
    q_clear(&c->to_cli);
    q_clear(&c->to_up);
    table_unref(c->table);
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
static void
mark_ready(struct conn *c)
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
proxy_run_ready(void)
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
            process_upstream(c);
            flow(c);
        }
        if (c->cli_rx) {
            c->cli_rx = false;
            if (c->state != ST_CLOSING) {
                process_client(c);
                flow(c);
            }
        }
        head_account(c, now);
    }
    heads_check(now);
}

int
proxy_client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    struct conn *c = lws_get_opaque_user_data(wsi);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        c = xcalloc(1, sizeof(*c));
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
        conn_arm(c, c->last_cli, c->last_cli + secs_us(dp->timeout_client_s));
        return 0;
    case LWS_CALLBACK_RAW_RX:
        if (c == NULL || c->state == ST_CLOSING) {
            return 0;
        }
        c->last_cli = lws_now_usecs();
        in_append(&c->in, &c->in_len, &c->in_cap, in, len);
        c->cli_rx = true;
        mark_ready(c);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (c == NULL) {
            return 0;
        }
        if (q_flush(&c->to_cli, wsi) == -1) {
            return -1;
        }
        if (c->to_cli.bytes == 0 && c->close_after_flush) {
            c->cli = NULL;
            close_up(c);
            lws_set_opaque_user_data(wsi, NULL);
            conn_free(c);
            return -1;
        }
        flow(c);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE:
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
proxy_upstream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
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
        c->last_up = lws_now_usecs();
        kick_up(c);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c != NULL && (c->up == wsi || c->up == NULL)) {
            lws_set_opaque_user_data(wsi, NULL);
            on_upstream_failed(c);
        }
        return 0;
    case LWS_CALLBACK_RAW_RX:
        if (c == NULL) {
            return -1;
        }
        c->last_up = lws_now_usecs();
        if (c->state == ST_TUNNEL) {
            q_push(&c->to_cli, in, len);
            kick_cli(c);
            return 0;
        }
        in_append(&c->uin, &c->uin_len, &c->uin_cap, in, len);
        c->up_rx = true;
        mark_ready(c);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (c == NULL) {
            return 0;
        }
        c->last_up = lws_now_usecs();
        if (q_flush(&c->to_up, wsi) == -1) {
            return -1;
        }
        flow(c);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (c == NULL) {
            return 0;
        }
        lws_set_opaque_user_data(wsi, NULL);
        c->up = NULL;
        c->up_connected = false;
        if (c->state == ST_TUNNEL) {
            c->close_after_flush = true;
            c->state = ST_CLOSING;
            kick_cli(c);
            if (c->to_cli.bytes == 0) {
                close_conn(c);
            }
        } else if (c->rstate == RS_BODY && c->resp_framing == HTTP1_BODY_UNTIL_CLOSE) {
            c->resp_keep_alive = false;
            response_done(c);
        } else if (c->rstate == RS_HEAD && !c->resp_started) {
            on_upstream_closed(c);
        } else if (c->rstate != RS_IDLE) {
            close_conn(c);
        }
        return 0;
    default:
        return 0;
    }
}
