/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Client connections and their upstream connections: sockets, byte queues, backpressure,
 * timeouts and the deferred processing of input. What the bytes mean is the request layer's
 * (request.c), which conn.c calls only through the handlers handed to conn_init(). */
#ifndef HARP_DP_CONN_H
#define HARP_DP_CONN_H

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <stdbool.h>

#include "cidr.h"
#include "access_log.h"
#include "clientip.h"
#include "headers.h"
#include "queue.h"
#include "route.h"
#include "wheel.h"

enum cstate { ST_HEAD, ST_LOOKUP, ST_AUTH, ST_RESOLVE, ST_BODY, ST_WAIT, ST_TUNNEL, ST_CLOSING };
enum rstate { RS_IDLE, RS_HEAD, RS_BODY };

struct world;

/* Most of a connection's size, needed only while it has a request in progress: allocated
 * when its input is first processed, let go when it is idle again (conn.c design note 8). */
struct conn_work {
    struct http1_head req, resp;
    struct decision dec; /* kept while the ExApp's host name is resolved */
    int64_t retry_after; /* of a 429 to a banned client, in seconds */
    /* the current request, for metrics and the access log (request.c: request_end) */
    bool open;                   /* its head was read and it is not counted yet */
    int level;                   /* the access level of the route that decided it; -1: none */
    lws_usec_t start;            /* when its head was read */
    uint64_t out0;               /* to_cli.pushed then */
    char app[EXAPP_ID_MAX + 1];  /* the ExApp it is counted under; "": none */
    char id[REQUEST_ID_MAX + 1]; /* its X-Request-ID (with the access log on); "": none */
};

/* One client connection; created by conn.c when lws adopts the socket, freed by conn.c from
 * the client socket's close callback only. */
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
    enum headers_dest dest;
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
    bool cli_eof;        /* the client shut its sending side (conn.c design note 9) */
    bool up_shut;        /* ... and the tunnel's upstream was told so */
    bool lingering;      /* answered, shut for writing: reading the client's rest, then closing */
    struct world *world; /* the snapshot the current request is decided with (world.h) */
    char *npath;         /* the normalised path of the current request (route_decide) */
    size_t npath_cap;
    char up_name[256];        /* the ExApp's host as registered, for re-resolving after failures */
    struct wheel_entry timer; /* when its timeouts are next looked at (design note 7) */
    unsigned to_s[EXAPP_NTIMEOUTS]; /* the current request's timeouts, seconds (timeouts.h) */
    lws_usec_t last_cli, last_up;
    bool closing_seen; /* the timer already found it closing */
    bool ws_counted;   /* counted as an open WebSocket (upgraded) */
    /* an unfinished request head: on the heads list, oldest first (design note 8) */
    struct conn *head_prev, *head_next;
    bool in_heads;
    size_t head_bytes; /* what it counts towards HP_MAX_HEAD_MEMORY */
    lws_usec_t head_since;
    struct conn *all_prev, *all_next; /* every client connection (conn_close_idle) */
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

/* How conn.c hands events up to the request layer. Each is called on the loop thread with a
 * live connection; none may free it (only conn.c does, from the close callback). */
struct conn_handlers {
    void (*on_client_input)(struct conn *c);   /* new bytes in c->in */
    void (*on_upstream_input)(struct conn *c); /* new bytes in c->uin */
    /* The upstream connection could not be made (c->up is already NULL). */
    void (*on_upstream_failed)(struct conn *c);
    /* The connected upstream closed (c->up is already NULL). */
    void (*on_upstream_closed)(struct conn *c);
    /* A timeout of the request in progress expired (connect, body, response or tunnel). */
    void (*on_timeout)(struct conn *c);
    /* An unfinished head is refused (HP_TIMEOUT_HEAD, or HP_MAX_HEAD_MEMORY: <memory>). */
    void (*on_head_refused)(struct conn *c, bool memory);
    /* <c> is about to be freed: let go of what the request layer holds for it. */
    void (*on_free)(struct conn *c);
};

/* Starts the connection timer (one for all connections); <h> must outlive the loop. */
void conn_init(const struct conn_handlers *h);
/* dp->timeout_*_s changed (a reload): the timer's horizon follows. */
void conn_defaults_changed(void);
/* Client connections open now. */
unsigned conn_count(void);
/* Closes the connections between requests that have been silent both ways for <idle_us>
 * (a data plane draining, upgrade.c): the number closed. */
unsigned conn_close_idle(lws_usec_t idle_us);
/* Processes the input read during the last service turn. */
void conn_run_ready(void);
int conn_client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len);
int conn_upstream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len);

/* Drops the first <n> of the <len> bytes in <buf>. */
void conn_consume(char *buf, size_t *len, size_t n);
/* Sends what is queued for the client / the upstream, then updates the flow (conn_flow). */
void conn_kick_cli(struct conn *c);
void conn_kick_up(struct conn *c);
/* Pauses or resumes reading on each side according to the queue it feeds. */
void conn_flow(struct conn *c);
/* Connects to c->up_host:c->up_port; -1 when it cannot even start (c->up stays NULL). */
int conn_connect_up(struct conn *c);
/* Lets the upstream connection go (closed asynchronously) with what was queued for it. */
void conn_close_up(struct conn *c);
/* Closes the client connection (asynchronously) and its upstream. */
void conn_close(struct conn *c);
/* The request's timeouts (c->to_s) were set: looks at <c> again by the shortest of them. */
void conn_timeouts_changed(struct conn *c);
/* Processes <c>'s client input after this service turn (design note 6). */
void conn_mark_ready(struct conn *c);

#endif
