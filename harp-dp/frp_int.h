/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The FRP frontend's parts, internal to frp_*.c: what frps does for HaRP's configuration, for
 * unmodified frpc 0.61 clients (frp-protocol.md). One TCP connection per client carries (after
 * an optional TLS layer, done with OpenSSL memory BIOs so the first byte can be sniffed and the
 * client certificate required) a yamux session; its first stream is the control (Login, then
 * AES-CFB), the others work connections that carry user bytes for the client's tcp proxy on
 * 127.0.0.1:<port>.
 *
 * Layers, each calling only the ones below it (upcalls go through the tables here):
 *   frp_listen.c   listeners, TLS, the lws callbacks of sessions, the public API (frp.h)
 *   frp_session.c  sessions: login, control messages, heartbeats
 *   frp_tunnel.c   tunnels: proxies' ports, work connections, their users
 *   frp_stream.c   yamux streams and windows, frames in and out
 * The session and stream layers take bytes in (session_input) and put bytes out (s->out, then
 * s->io->kick): they run without sockets (tests/fuzz/fuzz_frp_session.c).
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
 * 4. Work connections that get no byte from frpc within HP_TIMEOUT_SERVER after StartWorkConn
 *    (frpc leaves them open when the ExApp's socket is missing) are closed with the user's; a
 *    user that gets no work connection within FRP_WAIT_WORK_S is closed.
 * 5. Limits on what a client may make us hold (stream_yamux_input, frp_session_callback): each
 *    frame header is judged (ymx_check) before its body, which goes to its stream as it
 *    arrives, so a session buffers at most a partial header and each stream its window; a
 *    protocol error ends the session with GO_AWAY. FRP_MAX_STREAMS streams
 *    (FRP_MAX_STREAMS_ANON before login), HP_FRP_MAX_PENDING sessions without a login, each
 *    closed after HP_FRP_LOGIN_TIMEOUT; input stops while the answers it caused wait to go out.
 * 6. A tunnel closed for policy (its engine removed) closes its client's session: frp 0.61 has
 *    no message telling frpc a proxy is gone (CloseProxy is client to server), and frpc that
 *    reconnects registers its proxies again (refused ones every 30 s).
 *
 *   session: SNIFF -> [TLS] -> YAMUX -> closed
 *   stream:  NEW --Login--> CONTROL    NEW --NewWorkConn--> PARKED --user--> PIPE -> closed
 */
#ifndef HARP_DP_FRP_INT_H
#define HARP_DP_FRP_INT_H

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "canon.h"
#include "frp.h"
#include "frp_msg.h"
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
#define FRP_MAX_SESSIONS 4096
#define PORTS_LO 23000
#define PORTS_HI 24099

struct buf {
    uint8_t *p;
    size_t len, cap;
};

enum sess_stage { SS_SNIFF, SS_TLS, SS_YAMUX, SS_DEAD };
enum stream_kind { SK_NEW, SK_CONTROL, SK_PARKED, SK_PIPE, SK_DEAD };

struct session;
struct stream;
struct control;
struct tuser;

/* What a session's streams tell the session layer (frp_session.c). */
struct frp_stream_ops {
    void (*input)(struct stream *st);   /* bytes or a FIN arrived */
    void (*closing)(struct stream *st); /* about to be freed: detach its users */
    void (*tx_low)(struct stream *st);  /* its queue to the client went below FRP_TX_HIGH/2 */
};

/* The transport of a session (frp_listen.c, or a test's). */
struct frp_io {
    void (*kick)(struct session *s);      /* s->out holds bytes for the client */
    void (*closed)(struct session *s);    /* the session ended: close its connection */
    void (*logged_in)(struct session *s); /* its first Login succeeded */
};

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
    const struct frp_io *io;
    const struct frp_stream_ops *ops;
    struct lws *wsi; /* frp_listen.c's */
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
    bool old_chain;      /* its client certificate is not of the current CA (a rotation) */
    char issuer_key[CANON_HASH_HEX]; /* canon_pubkey_sha256 of its signer; "" without TLS */
    char ip[64];
    unsigned port;
    uint32_t ping_id;
    int64_t ping_sent; /* us; 0: none outstanding */
    int64_t ping_last;
    int64_t accepted;
    lws_sorted_usec_list_t sul; /* frp_listen.c's heartbeat timer */
    struct control *controls;
};

struct proxy {
    char name[128];
    unsigned port;
    char peer[64];
    time_t since;
    void *listener; /* frp_conf.port_open's */
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

/* The frontend's settings and its owner's hooks, set by frp_start (or a test). */
struct frp_conf {
    const char *shared_key;
    const bool *stopping; /* the process is stopping: lws closes everything itself */
    unsigned timeout_server_s;
    uint8_t stream_key[16]; /* frp_stream_key("") */
    struct frp_hooks hooks;
    /* Opens 127.0.0.1:<px->port> for <px>: a handle, or NULL with <why>. */
    void *(*port_open)(struct proxy *px, const char **why);
    /* Closes a handle of port_open; it forgets its proxy at once. */
    void (*port_close)(void *listener);
};
extern struct frp_conf frp_conf;

/* frp_stream.c: buffers, frames and streams of a session. */
void fbuf_add(struct buf *b, const void *p, size_t n);
void fbuf_drop(struct buf *b, size_t n);
void fbuf_free(struct buf *b);
/* Queues a frame for the client, before any DATA still waiting for window. */
void frame_out(struct session *s, uint8_t type, uint16_t flags, uint32_t stream, uint32_t length,
               const void *data, size_t dlen);
/* Queues bytes for the client on <st>; sent as the window allows. */
void stream_send(struct stream *st, const void *p, size_t n);
/* Sends message <type> with <body> (taken) on <st>, encrypted with st->enc or not. */
void stream_msg(struct stream *st, int type, json_t *body, bool encrypted);
/* Grants the client what was used of <st>'s window. */
void stream_consumed(struct stream *st, size_t n);
void stream_pump(struct session *s);
/* FIN (or RST) to the client, ops->closing, then freed. */
void stream_close(struct stream *st, bool rst);
/* Reads frames from s->in: 0, or -1 when the session must close. */
int stream_yamux_input(struct session *s);

/* frp_tunnel.c: proxies on ports, work connections, users. */
/* NewProxy on control <c>: the tunnel up, or refused; answers NewProxyResp. */
void tunnel_new_proxy(struct control *c, json_t *m);
void tunnel_close_proxy(struct proxy *px);
/* Asks frpc for one more work connection. */
void tunnel_req_work_conn(struct control *c);
/* Work stream <st> of <c>: given to a waiting user, or parked in the pool. */
void tunnel_work_conn(struct control *c, struct stream *st);
/* Unparks <st> from its control's pool. */
void tunnel_unpark(struct stream *st);
/* Closes the users waiting on <c>. */
void tunnel_drop_waiting(struct control *c);
/* <st> piping to a user: bytes arrived, or its queue to the client drained. */
void tunnel_pipe_input(struct stream *st);
void tunnel_pipe_drained(struct stream *st);
/* <st> closes: its user goes too. */
void tunnel_pipe_closed(struct stream *st);
/* A tunnel on a port its engine no longer allows, or NULL. */
struct proxy *tunnel_refused(void);
void addr_of(int fd, bool peer, char *ip, size_t len, unsigned *port);

/* frp_session.c: sessions, logins, controls, heartbeats. */
/* A new session from <ip>:<port> over <io> at <now> (us): NULL when there are too many. */
struct session *session_new(const struct frp_io *io, const char *ip, unsigned port, int64_t now);
/* Bytes from the client (plaintext): 0, or -1 when the session must close. */
int session_input(struct session *s, const uint8_t *p, size_t len);
/* Heartbeats, every FRP_PING_WAIT_S. */
void session_tick(struct session *s, int64_t now);
void session_close(struct session *s, const char *why);
/* After session_close: forgets and frees <s>. */
void session_free(struct session *s);
/* Closes every session over TLS (the certificates changed). */
/* Calls <fn> for every session. */
void session_foreach(void (*fn)(struct session *s, void *arg), void *arg);

#endif
