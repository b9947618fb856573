/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The FRP frontend: what frps does for HaRP's configuration, for unmodified frpc 0.61 clients
 * (frp-protocol.md). One TCP connection per client carries (after an optional TLS layer, done
 * here with OpenSSL memory BIOs so the first byte can be sniffed and the client certificate
 * required) a yamux session; its first stream is the control (Login, then AES-CFB), the others
 * work connections that carry user bytes for the client's tcp proxy on 127.0.0.1:<port>.
 *
 * Design notes:
 * 1. Flow control. Each stream grants the client 256 KiB (the ACK carries delta 0) and grants
 *    more only as bytes leave towards the user socket, so a slow user pins at most 256 KiB per
 *    stream. Towards the client we never send past its window; user sockets stop being read
 *    while their stream has FRP_TX_HIGH bytes waiting.
 * 2. Priority. Everything for a session goes through one output queue; DATA is added to it
 *    only while it holds less than FRP_OUT_HIGH bytes, so a ping reply or window update waits
 *    behind at most that much.
 * 3. Login: banned client IP -> "banned"; metas.token other than HP_SHARED_KEY (constant time)
 *    -> HaRP's plugin-failure text and a failure event; privilege key checked with frps's
 *    (empty) auth token. A login reusing a run_id first closes the old control and releases
 *    its ports.
 * 4. Work connections that get no byte from frpc within HP_TIMEOUT_CONNECT after StartWorkConn
 *    (frpc leaves them open when the ExApp's socket is missing) are closed with the user's.
 * 5. Limits on what a client may make us hold (yamux_input, frp_session_callback): each frame
 *    header is judged (ymx_check) before its body, which goes to its stream as it arrives, so
 *    a session buffers at most a partial header and each stream its window; a protocol error
 *    ends the session with GO_AWAY. FRP_MAX_STREAMS streams (FRP_MAX_STREAMS_ANON before
 *    login), HP_FRP_MAX_PENDING sessions without a login, each closed after
 *    HP_FRP_LOGIN_TIMEOUT; input stops while the answers it caused wait to go out.
 *
 *   session: SNIFF -> [TLS] -> YAMUX -> closed
 *   stream:  NEW --Login--> CONTROL    NEW --NewWorkConn--> PARKED --user--> PIPE -> closed
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_link.h"
#include "frp.h"
#include "frp_msg.h"
#include "listen.h"
#include "log.h"
#include "secret.h"
#include "world.h"
#include "xmalloc.h"
#include "yamux.h"

#define FRP_WINDOW YMX_INITIAL_WINDOW
#define FRP_UPDATE_AT (64u * 1024)
#define FRP_OUT_HIGH (256u * 1024)
#define FRP_TX_HIGH (256u * 1024)
#define FRP_FRAME_MAX 16384
/* Streams of a session: frpc opens the control, then one work stream per user connection
 * and its pool. A session that has not logged in needs one (Login). Beyond: RST. */
#define FRP_MAX_STREAMS 1024
#define FRP_MAX_STREAMS_ANON 4
/* Input stops while this much waits to go out to the client (before login: less). */
#define FRP_OUT_PAUSE (FRP_OUT_HIGH + 256u * 1024)
#define FRP_OUT_PAUSE_ANON (64u * 1024)
#define FRP_PING_US (30 * LWS_US_PER_SEC)
#define FRP_PING_WAIT_S 10
#define FRP_POOL_MAX 5
#define FRP_WAIT_WORK_S 10
#define PORTS_LO 23000
#define PORTS_HI 24099

struct buf {
    uint8_t *p;
    size_t len, cap;
};

enum sess_stage { SS_SNIFF, SS_TLS, SS_YAMUX, SS_DEAD };
enum stream_kind { SK_NEW, SK_CONTROL, SK_PARKED, SK_PIPE, SK_DEAD };

struct session;
struct control;
struct tuser;

struct stream {
    uint32_t id;
    struct session *s;
    enum stream_kind kind;
    struct buf rx;        /* from the client, not yet used */
    struct buf tx;        /* to the client, waiting for window */
    uint32_t send_window; /* what the client lets us send */
    uint32_t consumed;    /* used since our last window update */
    uint32_t recv_window; /* what the client may still send us */
    bool fin_rx;
    struct frp_cfb enc, dec;
    struct buf plain; /* control: decrypted, not yet decoded */
    struct control *ctl;
    struct tuser *user;
    struct stream *next;      /* in the session */
    struct stream *pool_next; /* in the control's pool */
};

struct session {
    struct lws *wsi;
    enum sess_stage stage;
    SSL *ssl;
    struct buf in;  /* plaintext from the client */
    struct buf out; /* plaintext to the client */
    struct buf net; /* TLS records to the socket */
    struct stream *streams;
    unsigned nstreams;
    struct ymx_hdr body; /* the DATA frame whose body is arriving */
    uint32_t body_left;  /* bytes of it still to come */
    bool logged_in;      /* a Login succeeded on the session */
    bool rx_paused;      /* input stopped until the output drains */
    bool flushing;       /* closed; its last frames (GO_AWAY) still going out */
    char ip[64];
    unsigned port;
    uint32_t ping_id;
    lws_usec_t ping_sent; /* 0: none outstanding */
    lws_usec_t ping_last;
    lws_usec_t accepted;
    lws_sorted_usec_list_t sul;
    struct control *controls;
};

struct proxy {
    char name[128];
    unsigned port;
    char peer[64];
    time_t since;
    struct lws *listener;
    struct control *ctl;
};

struct control {
    char run_id[17];
    struct session *s;
    struct stream *st;
    struct proxy *proxy;
    unsigned pool_count;
    struct stream *pool;
    size_t npool;
    struct tuser *waiting;
    struct control *next; /* in the session */
};

struct tuser {
    struct lws *wsi;
    struct proxy *px;
    struct stream *st;
    bool closing;
    bool got_byte;
    char src[64], dst[64];
    unsigned src_port, dst_port;
    struct tuser *next_waiting;
};

/* A listening socket: the frontend, or one proxy's port. */
struct flistener {
    bool frontend;
    struct proxy *px; /* a proxy's port; NULL once the proxy is gone */
    struct accept_pause pause;
};

static SSL_CTX *tls_ctx;
static bool tls_required;
static struct timespec tls_mtime;
static struct proxy *ports[PORTS_HI - PORTS_LO + 1];
static uint8_t stream_key[16];
static unsigned npending; /* sessions that have not logged in */

static void session_close(struct session *s, const char *why);
static void stream_close(struct stream *st, bool rst);
static void kick(struct session *s);
static void user_close(struct tuser *u);
static void pump_streams(struct session *s);
static void schedule_ping(struct session *s);
static void maybe_reload(void);

/* --- buffers ---------------------------------------------------------------------------- */

static void
buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 256;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void
buf_drop(struct buf *b, size_t n)
{
    if (n == 0) {
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    if (b->len == 0 && b->cap > 64 * 1024) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}

static void
buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* --- frames ------------------------------------------------------------------------------ */

static void
frame(struct session *s, uint8_t type, uint16_t flags, uint32_t stream, uint32_t length,
      const void *data, size_t dlen)
{
    struct ymx_hdr h = {type, flags, stream, length};
    uint8_t b[YMX_HEAD];

    ymx_write(b, &h);
    buf_add(&s->out, b, YMX_HEAD);
    if (dlen > 0) {
        buf_add(&s->out, data, dlen);
    }
    kick(s);
}

/* Queues bytes for the client on <st>; sent as the window allows. */
static void
stream_send(struct stream *st, const void *p, size_t n)
{
    buf_add(&st->tx, p, n);
    pump_streams(st->s);
}

static void
stream_msg(struct stream *st, int type, json_t *body, bool encrypted)
{
    size_t len, n;
    uint8_t *m = frp_msg_encode(type, body, &len), *c;

    json_decref(body);
    if (m == NULL) {
        return;
    }
    if (encrypted) {
        c = xmalloc(len + 16);
        n = frp_cfb_encrypt(&st->enc, NULL, m, len, c);
        stream_send(st, c, n);
        free(c);
    } else {
        stream_send(st, m, len);
    }
    free(m);
}

/* Grants the client what was used of <st>'s window. */
static void
stream_consumed(struct stream *st, size_t n)
{
    st->consumed += (uint32_t)n;
    if (st->consumed >= FRP_UPDATE_AT && st->kind != SK_DEAD) {
        frame(st->s, YMX_WINDOW_UPDATE, 0, st->id, st->consumed, NULL, 0);
        st->recv_window += st->consumed;
        st->consumed = 0;
    }
}

static void
pump_streams(struct session *s)
{
    struct stream *st;
    size_t n;
    bool more = true;

    while (more && s->out.len < FRP_OUT_HIGH) {
        more = false;
        for (st = s->streams; st != NULL && s->out.len < FRP_OUT_HIGH; st = st->next) {
            n = st->tx.len < st->send_window ? st->tx.len : st->send_window;
            if (n > FRP_FRAME_MAX) {
                n = FRP_FRAME_MAX;
            }
            if (n > 0) {
                frame(s, YMX_DATA, 0, st->id, (uint32_t)n, st->tx.p, n);
                buf_drop(&st->tx, n);
                st->send_window -= (uint32_t)n;
                more = true;
                if (st->user != NULL && st->tx.len < FRP_TX_HIGH / 2) {
                    lws_rx_flow_control(st->user->wsi, 1);
                }
            }
        }
    }
}

/* --- controls and proxies ---------------------------------------------------------------- */

/* Every live session, to find controls by run_id. */
#define MAX_SESSIONS 4096
static struct session *sessions[MAX_SESSIONS];

static struct control *
find_control(const char *run_id)
{
    struct control *c;
    size_t i;

    for (i = 0; i < MAX_SESSIONS; i++) {
        for (c = sessions[i] != NULL ? sessions[i]->controls : NULL; c != NULL; c = c->next) {
            if (strcmp(c->run_id, run_id) == 0) {
                return c;
            }
        }
    }
    return NULL;
}

static struct proxy *
find_proxy_name(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        if (ports[i] != NULL && strcmp(ports[i]->name, name) == 0) {
            return ports[i];
        }
    }
    return NULL;
}

static void
proxy_close(struct proxy *px)
{
    ports[px->port - PORTS_LO] = NULL;
    if (px->ctl != NULL) {
        struct tuser *u;

        while ((u = px->ctl->waiting) != NULL) {
            px->ctl->waiting = u->next_waiting;
            u->px = NULL;
            user_close(u);
        }
    }
    if (px->listener != NULL) {
        /* The listener outlives the proxy until lws closes it: it forgets the proxy. */
        struct flistener *fl = lws_get_opaque_user_data(px->listener);

        if (fl != NULL) {
            fl->px = NULL;
        }
        if (!dp->stopping) {
            lws_set_timeout(px->listener, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
        }
    }
    log_info("frp: tunnel %s on 127.0.0.1:%u down", px->name, px->port);
    if (px->ctl != NULL) {
        px->ctl->proxy = NULL;
    }
    free(px);
    if (!dp->stopping) {
        ctl_link_tunnels(dp->link);
    }
}

static void
control_close(struct control *c)
{
    struct control **pp;
    struct tuser *u;

    for (pp = &c->s->controls; *pp != NULL && *pp != c; pp = &(*pp)->next) {
    }
    if (*pp != NULL) {
        *pp = c->next;
    }
    if (c->proxy != NULL) {
        proxy_close(c->proxy);
    }
    while (c->pool != NULL) {
        struct stream *st = c->pool;

        c->pool = st->pool_next;
        st->ctl = NULL;
        stream_close(st, false);
    }
    while ((u = c->waiting) != NULL) {
        c->waiting = u->next_waiting;
        u->px = NULL;
        user_close(u);
    }
    if (c->st != NULL) {
        c->st->ctl = NULL;
    }
    log_info("frp: control %s of %s closed", c->run_id, c->s->ip);
    free(c);
}

/* Binds 127.0.0.1:<port> for <px>: NULL with <why>. */
static struct lws *
proxy_listen(struct proxy *px, const char **why)
{
    lws_sock_file_fd_type d;
    struct flistener *fl;
    struct hp_err err;
    struct lws *w;
    char addr[32];
    int fd;

    snprintf(addr, sizeof(addr), "127.0.0.1:%u", px->port);
    if ((fd = listen_fd(addr, false, &err)) == -1) {
        *why = "port unavailable";
        return NULL;
    }
    d.filefd = fd;
    w = lws_adopt_descriptor_vhost(dp->vh, LWS_ADOPT_RAW_FILE_DESC, d, "harp-frp-accept", NULL);
    if (w == NULL) {
        *why = "port unavailable";
        return NULL;
    }
    fl = xcalloc(1, sizeof(*fl));
    fl->px = px;
    fl->pause.wsi = w;
    lws_set_opaque_user_data(w, fl);
    return w;
}

static json_t *
proxy_resp(const char *name, const char *error, unsigned port)
{
    json_t *o = json_pack("{s:s}", "proxy_name", name);

    if (error != NULL) {
        json_object_set_new(o, "error", json_string(error));
    } else {
        json_object_set_new(o, "remote_addr", json_sprintf(":%u", port));
    }
    return o;
}

static bool
port_allowed(json_int_t p)
{
    return p >= PORTS_LO && p <= PORTS_HI;
}

static void
on_new_proxy(struct control *c, json_t *m)
{
    const char *name = json_string_value(json_object_get(m, "proxy_name"));
    const char *type = json_string_value(json_object_get(m, "proxy_type"));
    json_int_t port = json_integer_value(json_object_get(m, "remote_port"));
    const char *err = NULL;
    struct proxy *px;
    char buf[200];
    json_int_t p;

    if (name == NULL || name[0] == '\0' || strlen(name) >= sizeof(px->name)) {
        name = "";
        err = "invalid proxy name";
    } else if (type != NULL && strcmp(type, "tcp") != 0) {
        snprintf(buf, sizeof(buf), "unknown proxy type: %.60s", type);
        err = buf;
    } else if (json_is_true(json_object_get(m, "use_encryption")) ||
               json_is_true(json_object_get(m, "use_compression"))) {
        err = "use_encryption and use_compression are not supported";
    } else if (c->proxy != NULL) {
        err = "exceed the max_ports_per_client";
    } else if (find_proxy_name(name) != NULL) {
        snprintf(buf, sizeof(buf), "proxy [%.100s] already exists", name);
        err = buf;
    } else if (port != 0 && (!port_allowed(port) || world_engine_refused((unsigned)port))) {
        err = "port not allowed";
    } else if (port != 0 && ports[port - PORTS_LO] != NULL) {
        err = "port already used";
    }
    if (err == NULL && port == 0) {
        for (p = PORTS_LO;
             p <= PORTS_HI && (ports[p - PORTS_LO] != NULL || world_engine_refused((unsigned)p));
             p++) {
        }
        port = p;
        if (p > PORTS_HI) {
            err = "no available port";
        }
    }
    if (err == NULL) {
        px = xcalloc(1, sizeof(*px));
        snprintf(px->name, sizeof(px->name), "%s", name);
        px->port = (unsigned)port;
        px->ctl = c;
        snprintf(px->peer, sizeof(px->peer), "%s", c->s->ip);
        px->since = time(NULL);
        if ((px->listener = proxy_listen(px, &err)) == NULL) {
            free(px);
        } else {
            ports[port - PORTS_LO] = px;
            c->proxy = px;
            log_notice("frp: tunnel %s up on 127.0.0.1:%u for %s", name, px->port, c->s->ip);
            ctl_link_tunnels(dp->link);
        }
    }
    if (err != NULL) {
        log_info("frp: proxy %s of %s refused: %s", name, c->s->ip, err);
    }
    stream_msg(c->st, FRP_NEW_PROXY_RESP, proxy_resp(name, err, (unsigned)port), true);
}

static void
on_control_msg(struct control *c, int type, json_t *m)
{
    const char *name;

    switch (type) {
    case FRP_NEW_PROXY:
        on_new_proxy(c, m);
        break;
    case FRP_CLOSE_PROXY:
        name = json_string_value(json_object_get(m, "proxy_name"));
        if (c->proxy != NULL && name != NULL && strcmp(c->proxy->name, name) == 0) {
            proxy_close(c->proxy);
        }
        break;
    case FRP_PING:
        stream_msg(c->st, FRP_PONG, json_object(), true);
        break;
    default:
        break;
    }
}

/* --- work connections and users ---------------------------------------------------------- */

static void
req_work_conn(struct control *c)
{
    if (c->st != NULL) {
        stream_msg(c->st, FRP_REQ_WORK_CONN, json_object(), true);
    }
}

/* Pairs <u> with work stream <st>: StartWorkConn, then bytes both ways. */
static void
user_start(struct tuser *u, struct stream *st)
{
    json_t *m = json_pack("{s:s,s:s,s:s,s:i,s:i}", "proxy_name", u->px->name, "src_addr", u->src,
                          "dst_addr", u->dst, "src_port", u->src_port, "dst_port", u->dst_port);

    u->st = st;
    st->user = u;
    st->kind = SK_PIPE;
    stream_msg(st, FRP_START_WORK_CONN, m, false);
    u->px = NULL; /* piping now: the proxy may go, this connection stays */
    /* frpc leaves the stream silent when its local socket is down: give up after the
     * server timeout without a first byte. */
    lws_set_timer_usecs(u->wsi, (lws_usec_t)dp->timeout_server_s * LWS_US_PER_SEC);
    lws_rx_flow_control(u->wsi, 1);
    if (st->rx.len > 0) {
        u->got_byte = true;
        lws_set_timer_usecs(u->wsi, LWS_SET_TIMER_USEC_CANCEL);
        lws_callback_on_writable(u->wsi);
    }
}

static void
on_new_work_conn(struct stream *st, json_t *m)
{
    const char *run_id = json_string_value(json_object_get(m, "run_id"));
    struct control *c = run_id != NULL ? find_control(run_id) : NULL;
    struct tuser *u;

    if (c == NULL) {
        stream_close(st, true);
        return;
    }
    st->ctl = c;
    if ((u = c->waiting) != NULL) {
        c->waiting = u->next_waiting;
        user_start(u, st);
        req_work_conn(c);
        return;
    }
    if (c->npool >= c->pool_count + 10) {
        stream_close(st, false);
        return;
    }
    st->kind = SK_PARKED;
    st->pool_next = c->pool;
    c->pool = st;
    c->npool++;
}

static void
user_close(struct tuser *u)
{
    if (u->closing) {
        return;
    }
    u->closing = true;
    if (u->st != NULL) {
        u->st->user = NULL;
        stream_close(u->st, false);
        u->st = NULL;
    }
    if (u->px != NULL && u->px->ctl != NULL) {
        struct tuser **pp;

        for (pp = &u->px->ctl->waiting; *pp != NULL && *pp != u; pp = &(*pp)->next_waiting) {
        }
        if (*pp != NULL) {
            *pp = u->next_waiting;
        }
    }
    if (u->wsi != NULL && !dp->stopping) {
        lws_set_timeout(u->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    }
}

static void
addr_of(int fd, bool peer, char *ip, size_t len, unsigned *port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    ip[0] = '\0';
    *port = 0;
    if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
              : getsockname(fd, (struct sockaddr *)&ss, &sl)) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, (socklen_t)len);
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, (socklen_t)len);
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
}

int
frp_user_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct tuser *u = lws_get_opaque_user_data(wsi);
    struct proxy *px;
    struct stream *st;
    uint8_t wbuf[LWS_PRE + 65536];
    size_t n;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        px = u != NULL ? (struct proxy *)u : NULL;
        u = xcalloc(1, sizeof(*u));
        u->wsi = wsi;
        u->px = px;
        lws_set_opaque_user_data(wsi, u);
        if (px == NULL || px->ctl == NULL) {
            return -1;
        }
        addr_of(lws_get_socket_fd(wsi), true, u->src, sizeof(u->src), &u->src_port);
        addr_of(lws_get_socket_fd(wsi), false, u->dst, sizeof(u->dst), &u->dst_port);
        lws_rx_flow_control(wsi, 0);
        lws_set_timer_usecs(wsi, (lws_usec_t)FRP_WAIT_WORK_S * LWS_US_PER_SEC);
        if ((st = px->ctl->pool) != NULL) {
            px->ctl->pool = st->pool_next;
            px->ctl->npool--;
            user_start(u, st);
        } else {
            u->next_waiting = px->ctl->waiting;
            px->ctl->waiting = u;
        }
        req_work_conn(px->ctl);
        return 0;
    case LWS_CALLBACK_RAW_RX:
        if (u == NULL || u->st == NULL) {
            return 0;
        }
        stream_send(u->st, in, len);
        if (u->st->tx.len >= FRP_TX_HIGH) {
            lws_rx_flow_control(wsi, 0);
        }
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (u == NULL || (st = u->st) == NULL) {
            return u != NULL && u->closing ? -1 : 0;
        }
        n = st->rx.len < 65536 ? st->rx.len : 65536;
        if (n > 0) {
            memcpy(wbuf + LWS_PRE, st->rx.p, n);
            if (lws_write(wsi, wbuf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n) {
                return -1;
            }
            buf_drop(&st->rx, n);
            stream_consumed(st, n);
        }
        if (st->rx.len > 0) {
            lws_callback_on_writable(wsi);
        } else if (st->fin_rx) {
            return -1;
        }
        return 0;
    case LWS_CALLBACK_TIMER:
        /* No work connection came, or frpc never answered on it (its local socket is down). */
        if (u != NULL && (u->st == NULL || !u->got_byte)) {
            log_info("frp: %s on port %u: no answer through the tunnel; closed", u->src,
                     u->dst_port);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (u != NULL) {
            u->wsi = NULL;
            user_close(u);
            free(u);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    default:
        return 0;
    }
}

/* --- streams ----------------------------------------------------------------------------- */

static void
stream_close(struct stream *st, bool rst)
{
    struct session *s = st->s;
    struct stream **pp;

    if (st->kind == SK_DEAD) {
        return;
    }
    if (s->stage == SS_YAMUX) {
        pump_streams(s);
        frame(s, YMX_WINDOW_UPDATE, rst ? YMX_RST : YMX_FIN, st->id, 0, NULL, 0);
    }
    if (st->user != NULL) {
        struct tuser *u = st->user;

        st->user = NULL;
        u->st = NULL;
        user_close(u);
    }
    if (st->ctl != NULL && st->kind == SK_CONTROL) {
        control_close(st->ctl);
    } else if (st->ctl != NULL && st->kind == SK_PARKED) {
        struct stream **q;

        for (q = &st->ctl->pool; *q != NULL && *q != st; q = &(*q)->pool_next) {
        }
        if (*q != NULL) {
            *q = st->pool_next;
            st->ctl->npool--;
        }
    }
    st->kind = SK_DEAD;
    for (pp = &s->streams; *pp != NULL && *pp != st; pp = &(*pp)->next) {
    }
    if (*pp != NULL) {
        *pp = st->next;
        s->nstreams--;
    }
    buf_free(&st->rx);
    buf_free(&st->tx);
    buf_free(&st->plain);
    frp_cfb_free(&st->enc);
    frp_cfb_free(&st->dec);
    free(st);
}

static void
login_fail(struct stream *st, const char *error)
{
    stream_msg(st, FRP_LOGIN_RESP, json_pack("{s:s,s:s}", "version", FRP_VERSION, "error", error),
               false);
    stream_close(st, false);
}

static void
on_login(struct stream *st, json_t *m)
{
    struct session *s = st->s;
    const char *token = json_string_value(json_object_get(json_object_get(m, "metas"), "token"));
    const char *pk = json_string_value(json_object_get(m, "privilege_key"));
    const char *run_id = json_string_value(json_object_get(m, "run_id"));
    json_int_t pool = json_integer_value(json_object_get(m, "pool_count"));
    struct control *c, *old;
    char want[33];
    int64_t until;
    unsigned char rnd[8];
    unsigned i;

    if (world_banned(s->ip, (int64_t)time(NULL), &until)) {
        log_info("frp: login from banned %s refused", s->ip);
        login_fail(st, "banned");
        return;
    }
    if (token == NULL || !secret_equal(token, strlen(token), dp->cfg.shared_key)) {
        log_info("frp: login from %s with a wrong token", s->ip);
        ctl_link_failure(dp->link, s->ip);
        login_fail(st, "send Login request to plugin error");
        return;
    }
    frp_privilege_key("", (long long)json_integer_value(json_object_get(m, "timestamp")), want);
    if (pk == NULL || strlen(pk) != 32 || !secret_equal(pk, 32, want)) {
        login_fail(st, "token in login doesn't match token from configuration");
        return;
    }
    c = xcalloc(1, sizeof(*c));
    if (run_id != NULL && strlen(run_id) > 0 && strlen(run_id) < sizeof(c->run_id)) {
        snprintf(c->run_id, sizeof(c->run_id), "%s", run_id);
    } else {
        RAND_bytes(rnd, sizeof(rnd));
        for (i = 0; i < 8; i++) {
            snprintf(c->run_id + 2 * i, 3, "%02x", rnd[i]);
        }
    }
    if ((old = find_control(c->run_id)) != NULL) {
        /* Replaced: its ports are released before this login is answered. */
        log_info("frp: control %s replaced by a new login from %s", c->run_id, s->ip);
        if (old->st != NULL) {
            struct stream *ost = old->st;

            old->st = NULL;
            ost->ctl = NULL;
            stream_close(ost, false);
        }
        control_close(old);
    }
    c->s = s;
    c->st = st;
    c->pool_count = pool < 1 ? 1 : pool > FRP_POOL_MAX ? FRP_POOL_MAX : (unsigned)pool;
    c->next = s->controls;
    s->controls = c;
    st->ctl = c;
    stream_msg(st, FRP_LOGIN_RESP,
               json_pack("{s:s,s:s}", "version", FRP_VERSION, "run_id", c->run_id), false);
    st->kind = SK_CONTROL;
    frp_cfb_init(&st->enc, stream_key, true);
    frp_cfb_init(&st->dec, stream_key, false);
    for (i = 0; i < c->pool_count; i++) {
        req_work_conn(c);
    }
    if (!s->logged_in) {
        s->logged_in = true;
        npending--;
        if (s->wsi != NULL) {
            lws_set_timeout(s->wsi, NO_PENDING_TIMEOUT, 0);
        }
    }
    log_notice("frp: %s logged in (run_id %s)", s->ip, c->run_id);
}

/* Uses what arrived on <st>. */
static void
stream_input(struct stream *st)
{
    json_t *m = NULL;
    size_t used, n;
    int type;
    enum frp_decode r;

    if (st->kind == SK_NEW) {
        r = frp_msg_decode(st->rx.p, st->rx.len, &type, &m, &used);
        if (r == FRP_MORE) {
            if (st->fin_rx) {
                stream_close(st, false);
            }
            return;
        }
        if (r == FRP_BAD) {
            stream_close(st, true);
            return;
        }
        buf_drop(&st->rx, used);
        stream_consumed(st, used);
        if (type == FRP_LOGIN) {
            on_login(st, m);
        } else if (type == FRP_NEW_WORK_CONN) {
            on_new_work_conn(st, m);
        } else if (type == FRP_NEW_VISITOR_CONN) {
            stream_msg(st, FRP_NEW_VISITOR_CONN_RESP,
                       json_pack("{s:s}", "error", "visitors are not supported"), false);
            stream_close(st, false);
        } else {
            stream_close(st, true);
        }
        json_decref(m);
        return;
    }
    if (st->kind == SK_CONTROL) {
        if (st->rx.len > 0) {
            size_t had = st->plain.len;

            if (st->plain.cap < had + st->rx.len) {
                st->plain.cap = had + st->rx.len + 256;
                st->plain.p = xrealloc(st->plain.p, st->plain.cap);
            }
            n = frp_cfb_decrypt(&st->dec, st->rx.p, st->rx.len, st->plain.p + had);
            st->plain.len = had + n;
            stream_consumed(st, st->rx.len);
            buf_drop(&st->rx, st->rx.len);
        }
        for (;;) {
            r = frp_msg_decode(st->plain.p, st->plain.len, &type, &m, &used);
            if (r == FRP_BAD) {
                log_info("frp: bad message on the control of %s", st->s->ip);
                stream_close(st, true);
                return;
            }
            if (r == FRP_MORE) {
                break;
            }
            buf_drop(&st->plain, used);
            if (st->ctl != NULL) {
                on_control_msg(st->ctl, type, m);
            }
            json_decref(m);
        }
        if (st->fin_rx) {
            stream_close(st, false);
        }
        return;
    }
    if (st->kind == SK_PIPE && st->user != NULL) {
        if (st->rx.len > 0 && !st->user->got_byte) {
            st->user->got_byte = true;
            lws_set_timer_usecs(st->user->wsi, LWS_SET_TIMER_USEC_CANCEL);
        }
        lws_callback_on_writable(st->user->wsi);
        return;
    }
    if (st->fin_rx) {
        stream_close(st, false);
    }
}

/* --- yamux ------------------------------------------------------------------------------- */

static struct stream *
stream_get(struct session *s, uint32_t id)
{
    struct stream *st;

    for (st = s->streams; st != NULL && st->id != id; st = st->next) {
    }
    return st;
}

/* A protocol error: GO_AWAY(protocol error), then the session closes. Returns -1. */
static int
protocol_error(struct session *s, const char *why)
{
    log_info("frp: protocol error from %s:%u: %s; session closed", s->ip, s->port, why);
    frame(s, YMX_GO_AWAY, 0, 0, YMX_GOAWAY_PROTOCOL, NULL, 0);
    return -1;
}

static void
stream_open(struct session *s, uint32_t id)
{
    struct stream *st = xcalloc(1, sizeof(*st));

    st->id = id;
    st->s = s;
    st->send_window = FRP_WINDOW;
    st->recv_window = FRP_WINDOW;
    st->next = s->streams;
    s->streams = st;
    s->nstreams++;
    frame(s, YMX_WINDOW_UPDATE, YMX_ACK, st->id, 0, NULL, 0);
}

/* The flags of a frame whose body has all arrived, then what its stream got. */
static void
frame_done(struct session *s, uint32_t id, uint16_t flags)
{
    struct stream *st = stream_get(s, id);

    if (st == NULL) {
        return;
    }
    if (flags & YMX_RST) {
        stream_close(st, false);
        return;
    }
    if (flags & YMX_FIN) {
        st->fin_rx = true;
    }
    stream_input(st);
}

/* Reads frames from s->in. Every header is judged (ymx_check) before any byte of its body is
 * taken, and bodies go to their stream as they arrive: the session keeps at most a partial
 * header, and a stream at most its receive window. 0, or -1 when the session must close. */
static int
yamux_input(struct session *s)
{
    struct ymx_stream_state view;
    struct ymx_hdr h;
    struct stream *st;
    const char *why;
    size_t off = 0, n;

    while (off < s->in.len && s->stage == SS_YAMUX) {
        if (s->body_left > 0) {
            n = s->in.len - off < s->body_left ? s->in.len - off : s->body_left;
            if ((st = stream_get(s, s->body.stream)) != NULL) {
                buf_add(&st->rx, s->in.p + off, n); /* within the window reserved at the header */
            }
            off += n;
            s->body_left -= (uint32_t)n;
            if (s->body_left == 0) {
                frame_done(s, s->body.stream, s->body.flags);
            } else if (st != NULL) {
                stream_input(st);
            }
            continue;
        }
        if (s->in.len - off < YMX_HEAD) {
            break;
        }
        if (!ymx_parse(s->in.p + off, &h)) {
            return protocol_error(s, "bad frame header");
        }
        off += YMX_HEAD;
        st = h.type == YMX_DATA || h.type == YMX_WINDOW_UPDATE ? stream_get(s, h.stream) : NULL;
        view.open = st != NULL;
        view.recv_window = st != NULL ? st->recv_window : 0;
        view.send_window = st != NULL ? st->send_window : 0;
        switch (ymx_check(&h, &view, s->nstreams,
                          s->logged_in ? FRP_MAX_STREAMS : FRP_MAX_STREAMS_ANON, &why)) {
        case YMX_BAD:
            return protocol_error(s, why);
        case YMX_END:
            return -1;
        case YMX_REFUSE:
            log_info("frp: %s:%u over %u streams; stream %u refused", s->ip, s->port, s->nstreams,
                     h.stream);
            frame(s, YMX_WINDOW_UPDATE, YMX_RST, h.stream, 0, NULL, 0);
            h.flags &= (uint16_t)~YMX_SYN; /* its data, if any, is drained */
            break;
        case YMX_OK:
            break;
        }
        if (h.type == YMX_PING) {
            if (h.flags & YMX_SYN) {
                frame(s, YMX_PING, YMX_ACK, 0, h.length, NULL, 0);
            } else if ((h.flags & YMX_ACK) && h.length == s->ping_id) {
                s->ping_sent = 0;
            }
            continue;
        }
        if (h.type == YMX_GO_AWAY) {
            continue;
        }
        if (h.flags & YMX_SYN) {
            stream_open(s, h.stream);
            st = s->streams;
        }
        if (h.type == YMX_WINDOW_UPDATE && st != NULL) {
            st->send_window += h.length;
        }
        if (h.type == YMX_DATA && h.length > 0) {
            if (st != NULL) {
                st->recv_window -= h.length;
            }
            s->body = h;
            s->body_left = h.length;
            continue;
        }
        frame_done(s, h.stream, h.flags);
    }
    buf_drop(&s->in, off);
    pump_streams(s);
    return 0;
}

/* --- sessions ---------------------------------------------------------------------------- */

static void
kick(struct session *s)
{
    if (s->wsi != NULL && !dp->stopping) {
        lws_callback_on_writable(s->wsi);
    }
}

/* Every 10 s: a ping unanswered for 10 s ends the session; 30 s after the last, a new one. */
static void
on_ping_timer(lws_sorted_usec_list_t *sul)
{
    struct session *s = lws_container_of(sul, struct session, sul);
    lws_usec_t now = lws_now_usecs();

    if (s->ping_sent != 0 && now - s->ping_sent >= FRP_PING_WAIT_S * LWS_US_PER_SEC) {
        session_close(s, "keepalive timeout");
        return;
    }
    if (s->ping_sent == 0 && now - s->ping_last >= FRP_PING_US) {
        s->ping_id++;
        s->ping_sent = s->ping_last = now;
        frame(s, YMX_PING, YMX_SYN, 0, s->ping_id, NULL, 0);
    }
    schedule_ping(s);
}

static void
schedule_ping(struct session *s)
{
    lws_sul_schedule(dp->ctx, 0, &s->sul, on_ping_timer, FRP_PING_WAIT_S * LWS_US_PER_SEC);
}

static void
session_close(struct session *s, const char *why)
{
    if (s->stage == SS_DEAD) {
        return;
    }
    log_info("frp: session of %s:%u closed: %s", s->ip, s->port, why);
    s->stage = SS_DEAD;
    lws_sul_cancel(&s->sul);
    while (s->streams != NULL) {
        stream_close(s->streams, false);
    }
    while (s->controls != NULL) {
        control_close(s->controls);
    }
    if (s->wsi != NULL && !dp->stopping) {
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    }
}

/* Moves what TLS produced for the network into the socket queue; -1 on a TLS error. */
static int
tls_pull(struct session *s, struct buf *net)
{
    uint8_t b[16384];
    int n;

    while ((n = BIO_read(SSL_get_wbio(s->ssl), b, sizeof(b))) > 0) {
        buf_add(net, b, (size_t)n);
    }
    return 0;
}

static int
session_rx(struct session *s, const uint8_t *p, size_t len)
{
    uint8_t b[16384];
    int n, e;

    if (s->stage == SS_SNIFF) {
        if (p[0] == 0x16 || p[0] == 0x17) {
            if (tls_ctx == NULL) {
                log_info("frp: TLS from %s but TLS is disabled; closed", s->ip);
                return -1;
            }
            if (p[0] == 0x17) {
                p++;
                len--;
            }
            s->ssl = SSL_new(tls_ctx);
            SSL_set_bio(s->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
            SSL_set_accept_state(s->ssl);
            s->stage = SS_TLS;
        } else if (tls_required) {
            log_info("frp: non-TLS connection from %s on a TLS-only frontend; closed", s->ip);
            return -1;
        } else {
            s->stage = SS_YAMUX;
        }
    }
    if (s->ssl == NULL) {
        buf_add(&s->in, p, len);
        return yamux_input(s);
    }
    if (len > 0) {
        BIO_write(SSL_get_rbio(s->ssl), p, (int)len);
    }
    if (s->stage == SS_TLS) {
        n = SSL_do_handshake(s->ssl);
        kick(s);
        if (n != 1) {
            e = SSL_get_error(s->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                return 0;
            }
            log_info("frp: TLS handshake with %s failed: %s", s->ip,
                     ERR_reason_error_string(ERR_get_error()));
            ERR_clear_error();
            return -1;
        }
        s->stage = SS_YAMUX;
    }
    while ((n = SSL_read(s->ssl, b, sizeof(b))) > 0) {
        buf_add(&s->in, b, (size_t)n);
    }
    e = SSL_get_error(s->ssl, n);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        log_info("frp: TLS with %s: error %d (%s)", s->ip, e,
                 ERR_reason_error_string(ERR_get_error()));
        ERR_clear_error();
        return -1;
    }
    log_debug("frp: TLS rx %zu bytes from %s, %zu plaintext pending", len, s->ip, s->in.len);
    kick(s);
    return yamux_input(s);
}

static int
session_writeable(struct session *s)
{
    static uint8_t wbuf[LWS_PRE + 65536];
    size_t n;

    if (s->ssl != NULL) {
        if ((s->stage == SS_YAMUX || s->flushing) && s->out.len > 0) {
            n = s->out.len < 32768 ? s->out.len : 32768;
            if (SSL_write(s->ssl, s->out.p, (int)n) > 0) {
                buf_drop(&s->out, n);
            }
        }
        tls_pull(s, &s->net);
        n = s->net.len < 65536 ? s->net.len : 65536;
        if (n > 0) {
            memcpy(wbuf + LWS_PRE, s->net.p, n);
            buf_drop(&s->net, n);
            if (lws_write(s->wsi, wbuf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n) {
                return -1;
            }
        }
        if (s->net.len > 0 || ((s->stage == SS_YAMUX || s->flushing) && s->out.len > 0)) {
            kick(s);
        }
    } else {
        n = s->out.len < 65536 ? s->out.len : 65536;
        if (n > 0) {
            memcpy(wbuf + LWS_PRE, s->out.p, n);
            buf_drop(&s->out, n);
            if (lws_write(s->wsi, wbuf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n) {
                return -1;
            }
        }
        if (s->out.len > 0) {
            kick(s);
        }
    }
    pump_streams(s);
    return 0;
}

/* Bytes queued for the client, plaintext and TLS. */
static size_t
pending_out(const struct session *s)
{
    return s->out.len + s->net.len;
}

static size_t
out_pause(const struct session *s)
{
    return s->logged_in ? FRP_OUT_PAUSE : FRP_OUT_PAUSE_ANON;
}

static int
login_timeout_s(void)
{
    uint64_t s = (dp->cfg.frp_login_timeout_ms + 999) / 1000;

    return s < 1 ? 1 : s > 3600 ? 3600 : (int)s;
}

/* At most one line a second about refused connections. */
static void
refused_log(const char *what, unsigned cap)
{
    static struct log_rate rate;
    unsigned long held;

    if (log_rate_ok(&rate, 1, &held)) {
        log_warnx("frp: connection refused: %u %s open (%lu refused)", cap, what, held + 1);
    }
}

int
frp_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    struct session *s = lws_get_opaque_user_data(wsi);
    size_t i;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        for (i = 0; i < MAX_SESSIONS && sessions[i] != NULL; i++) {
        }
        if (i == MAX_SESSIONS || npending >= dp->cfg.frp_max_pending) {
            refused_log(i == MAX_SESSIONS ? "sessions"
                                          : "sessions not logged in (HP_FRP_MAX_PENDING)",
                        i == MAX_SESSIONS ? MAX_SESSIONS : dp->cfg.frp_max_pending);
            return -1;
        }
        s = xcalloc(1, sizeof(*s));
        s->wsi = wsi;
        lws_set_opaque_user_data(wsi, s);
        addr_of(lws_get_socket_fd(wsi), true, s->ip, sizeof(s->ip), &s->port);
        sessions[i] = s;
        npending++;
        s->ping_last = s->accepted = lws_now_usecs();
        schedule_ping(s);
        /* The login deadline, from the connection on; cleared by a successful Login. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_ESTABLISH_WITH_SERVER, login_timeout_s());
        return 0;
    case LWS_CALLBACK_RAW_RX:
        if (s == NULL || s->stage == SS_DEAD || len == 0) {
            return 0;
        }
        if (session_rx(s, in, len) == -1) {
            session_close(s, "protocol error");
            if (s->stage == SS_DEAD && s->out.len > 0 && !dp->stopping &&
                (s->ssl == NULL || SSL_is_init_finished(s->ssl))) {
                /* The GO_AWAY goes out before the socket closes, for at most 2 s. */
                s->flushing = true;
                lws_rx_flow_control(wsi, 0);
                lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, 2);
                lws_callback_on_writable(wsi);
                return 0;
            }
            return -1;
        }
        if (!s->rx_paused && pending_out(s) >= out_pause(s)) {
            /* The client does not read what its input makes us write: stop reading it. */
            s->rx_paused = true;
            lws_rx_flow_control(wsi, 0);
        }
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (s != NULL && s->flushing) {
            return session_writeable(s) == -1 || pending_out(s) == 0 ? -1 : 0;
        }
        if (s == NULL || s->stage == SS_DEAD) {
            return s == NULL ? 0 : -1;
        }
        if (session_writeable(s) == -1) {
            return -1;
        }
        if (s->rx_paused && pending_out(s) < out_pause(s) / 2) {
            s->rx_paused = false;
            lws_rx_flow_control(wsi, 1);
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (s != NULL) {
            s->wsi = NULL;
            if (!s->logged_in) {
                npending--;
            }
            if (s->logged_in) {
                session_close(s, "connection closed");
            } else if (lws_now_usecs() - s->accepted >=
                       (lws_usec_t)login_timeout_s() * LWS_US_PER_SEC) {
                session_close(s, "no login in time (HP_FRP_LOGIN_TIMEOUT)");
            } else {
                session_close(s, "connection closed before login");
            }
            for (i = 0; i < MAX_SESSIONS; i++) {
                if (sessions[i] == s) {
                    sessions[i] = NULL;
                }
            }
            if (s->ssl != NULL) {
                SSL_free(s->ssl);
            }
            buf_free(&s->in);
            buf_free(&s->out);
            buf_free(&s->net);
            free(s);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    default:
        return 0;
    }
}

/* --- listeners --------------------------------------------------------------------------- */

int
frp_accept_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct flistener *fl = lws_get_opaque_user_data(wsi);
    lws_adopt_desc_t ad;
    int cfd, n, one = 1;

    switch (reason) {
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (fl != NULL) {
            lws_sul_cancel(&fl->pause.sul);
            if (fl->px != NULL) {
                fl->px->listener = NULL;
            }
        }
        free(fl);
        lws_set_opaque_user_data(wsi, NULL);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (fl == NULL) {
            return 0;
        }
        if (fl->frontend) {
            maybe_reload();
        } else if (fl->px == NULL) {
            return 0; /* the proxy is gone; the listener closes soon */
        }
        for (n = 0; n < 64; n++) {
            cfd = accept4(lws_get_socket_fd(wsi), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (cfd == -1) {
                if (listen_shed(&fl->pause, errno)) {
                    continue;
                }
                break;
            }
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            memset(&ad, 0, sizeof(ad));
            ad.vh = dp->vh;
            ad.type = LWS_ADOPT_SOCKET;
            ad.fd.sockfd = cfd;
            ad.vh_prot_name = fl->frontend ? "harp-frp" : "harp-frp-user";
            ad.opaque = fl->px;
            lws_adopt_descriptor_vhost_via_info(&ad);
        }
        return 0;
    default:
        return 0;
    }
}

/* (Re)loads the server certificate, key and CA from $HP_CERTS_DIR/frp. */
static int
load_tls(struct hp_err *err)
{
    char *crt = xasprintf("%s/frp/server.crt", dp->cfg.certs_dir);
    char *key = xasprintf("%s/frp/server.key", dp->cfg.certs_dir);
    char *ca = xasprintf("%s/frp/ca.crt", dp->cfg.certs_dir);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    struct stat sb;
    int rc = -1;

    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, crt) == 1 &&
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
        SSL_CTX_load_verify_locations(ctx, ca, NULL) == 1 && stat(crt, &sb) == 0) {
        /* Mutual TLS as frps with trustedCaFile: the CA names itself in the request, which
         * is what Go's client needs to send its certificate. */
        SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(ca));
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_free(tls_ctx);
        tls_ctx = ctx;
        tls_mtime = sb.st_mtim;
        rc = 0;
    } else {
        err_set(err, "cannot load %s, %s and %s (harp-ctl serve writes them)", crt, key, ca);
        SSL_CTX_free(ctx);
    }
    ERR_clear_error();
    free(crt);
    free(key);
    free(ca);
    return rc;
}

/* After `harp-ctl certs rotate`: new files are loaded and every TLS session is closed, so
 * clients reconnect and must present a certificate of the new CA. */
static void
maybe_reload(void)
{
    char *crt = xasprintf("%s/frp/server.crt", dp->cfg.certs_dir);
    struct stat sb;
    struct hp_err err;
    size_t i;

    if (tls_ctx != NULL && stat(crt, &sb) == 0 &&
        (sb.st_mtim.tv_sec != tls_mtime.tv_sec || sb.st_mtim.tv_nsec != tls_mtime.tv_nsec)) {
        if (load_tls(&err) == 0) {
            log_notice("frp: new certificates in %s/frp loaded", dp->cfg.certs_dir);
            for (i = 0; i < MAX_SESSIONS; i++) {
                if (sessions[i] != NULL && sessions[i]->ssl != NULL) {
                    session_close(sessions[i], "certificates rotated");
                }
            }
        } else {
            log_warnx("frp: %s", err.msg);
        }
    }
    free(crt);
}

int
frp_start(struct hp_err *err)
{
    lws_sock_file_fd_type d;
    struct flistener *fl;
    struct lws *w;
    int fd;

    frp_stream_key("", stream_key);
    if (!dp->cfg.frp_disable_tls) {
        if (load_tls(err) == -1) {
            return -1;
        }
        tls_required = true;
    }
    if ((fd = listen_fd(dp->cfg.frp_address, false, err)) == -1) {
        return -1;
    }
    d.filefd = fd;
    w = lws_adopt_descriptor_vhost(dp->vh, LWS_ADOPT_RAW_FILE_DESC, d, "harp-frp-accept", NULL);
    if (w == NULL) {
        err_set(err, "cannot add the FRP listener to the event loop");
        return -1;
    }
    fl = xcalloc(1, sizeof(*fl));
    fl->frontend = true;
    fl->pause.wsi = w;
    lws_set_opaque_user_data(w, fl);
    listen_reserve();
    log_notice("frp: FRP frontend on %s (%s)", dp->cfg.frp_address,
               tls_required ? "TLS with client certificates" : "TLS disabled");
    return 0;
}

void
frp_enforce_refusals(void)
{
    size_t i;

    for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        if (ports[i] != NULL && world_engine_refused(ports[i]->port)) {
            log_notice("frp: tunnel %s on port %u closed: its engine was removed", ports[i]->name,
                       ports[i]->port);
            proxy_close(ports[i]);
        }
    }
}

size_t
frp_tunnels(struct msg_tunnel **out)
{
    size_t i, n = 0;

    *out = xcalloc(sizeof(ports) / sizeof(ports[0]), sizeof(**out));
    for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        if (ports[i] != NULL) {
            struct msg_tunnel *t = &(*out)[n++];

            snprintf(t->name, sizeof(t->name), "%s", ports[i]->name);
            t->port = ports[i]->port;
            snprintf(t->peer, sizeof(t->peer), "%s", ports[i]->peer);
            t->since = (int64_t)ports[i]->since;
        }
    }
    return n;
}

void
frp_stop(void)
{
    SSL_CTX_free(tls_ctx);
    tls_ctx = NULL;
}
