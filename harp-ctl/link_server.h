/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The link server: the proto socket (HP_CTL_SOCKET), one link per data plane, framing,
 * hello, pings, and the thread that runs them. What the data planes ask goes to the owner
 * through the handlers it hands in. */
#ifndef HARP_CTL_LINK_SERVER_H
#define HARP_CTL_LINK_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "frame.h"
#include "msg.h"

/* One data plane connection: created at accept, freed when it closes (after on_close). */
struct link {
    uint64_t serial; /* never reused: what a late answer finds its link by */
    bool hello;      /* a valid hello arrived: the only state in which messages are dispatched */
    char dp_id[64];
    long long pid;
    double connected, last_seen; /* monotonic */
    void *data;                  /* the owner's, from on_hello; freed by it in on_close */
    /* link_server.c's */
    int fd;
    struct frame_reader rd;
    char *out;
    size_t out_len, out_off;
    struct link *next;
};

/* What the owner does with the links; every handler runs on the link server's thread. */
struct link_server_handlers {
    /* <l> said a hello of this proto version (dp_id and pid are set) and was welcomed; the
     * owner sends it its state. */
    void (*on_hello)(void *ctx, struct link *l, const struct msg_hello *hello);
    /* A decoded message from <l> after hello, other than hello, ping, pong and error (the
     * link server's). The handler may take what it keeps out of <m> (zeroing it there); the
     * rest is freed after it returns. */
    void (*on_message)(void *ctx, struct link *l, struct msg *m);
    /* <l> closes; called for links that said hello only. */
    void (*on_close)(void *ctx, struct link *l);
    /* Once at start and once per turn of the loop, after the links were read: the owner's
     * own work (what other threads queued, answers of finished look-ups). */
    void (*on_turn)(void *ctx);
    /* Every ping interval (5 s), after the pings were sent. */
    void (*on_tick)(void *ctx);
};

/* Requests of data planes waiting for one answer. */
struct link_waiter {
    uint64_t serial;
    int64_t id;
};

struct link_server;

/* Binds <path> 0600, refusing when another harp-ctl answers on it; the thread starts with
 * link_server_run(). */
struct link_server *link_server_open(const char *path, const struct link_server_handlers *h,
                                     void *ctx, struct hp_err *err);
/* Starts the thread: 0, or -1 with <err>. */
int link_server_run(struct link_server *ls, struct hp_err *err);
/* Stops the thread (if it ran), closes every link and the socket, removes the socket file.
 * link_server_wake() stays usable until link_server_free(). */
void link_server_stop(struct link_server *ls);
void link_server_free(struct link_server *ls);

/* Wakes the thread for a turn (on_turn). Any thread. */
void link_server_wake(struct link_server *ls);
/* The links, newest first; the thread only. */
struct link *link_server_links(struct link_server *ls);
/* The live link with <serial>, or NULL once it closed. */
struct link *link_server_find(struct link_server *ls, uint64_t serial);
/* Queues the frame of <m> (not taken) on <l>: 0, or -1 (logged) when it exceeds the frame
 * limit. */
int link_server_send(struct link *l, const struct msg *m);
/* Sends <m> to the link <serial> if it is still open. */
void link_server_reply(struct link_server *ls, uint64_t serial, const struct msg *m);
/* Answers request <id> of the link <serial> with request_error (the data plane fails it with
 * 503). */
void link_server_request_error(struct link_server *ls, uint64_t serial, int64_t id,
                               const char *why);
/* A message the data plane of <l> should not have sent (<m> as far as it was decoded, or
 * NULL): answered with request_error when it carries a request id, counted, logged
 * (rate-limited) and otherwise ignored. */
void link_server_bad_message(struct link_server *ls, struct link *l, const struct msg *m,
                             const char *why);
/* The count of bad messages since start. Any thread. */
uint64_t link_server_bad_messages(struct link_server *ls);
/* Adds a request to <*v> (of <*n>). */
void link_server_waiter_add(struct link_waiter **v, size_t *n, uint64_t serial, int64_t id);

#endif
