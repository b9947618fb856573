/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Byte queues of a connection (to the client, to the upstream) and their writing to a
 * socket: TLS through lws, plain sockets directly (conn.c design notes 2 and 6). */
#ifndef HARP_DP_QUEUE_H
#define HARP_DP_QUEUE_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

struct seg {
    struct seg *next;
    size_t len, off;
    char data[];
};

struct queue {
    struct seg *head, *tail;
    size_t bytes;
    uint64_t pushed; /* every byte ever pushed */
    uint64_t *total; /* when set, also counts them (metrics) */
};

void conn_queue_push(struct queue *q, const void *p, size_t n);
void conn_queue_puts(struct queue *q, const char *s);
void conn_queue_clear(struct queue *q);
/* Flushes <q> to <wsi> from its writable callback. -1 when the socket failed; otherwise asks
 * for the next POLLOUT while bytes remain. */
int queue_flush(struct queue *q, struct lws *wsi);
/* New bytes in <q>: a plain socket takes them at once when it can; the rest, and everything
 * for TLS, waits for the writable callback. */
void queue_kick(struct queue *q, struct lws *wsi);

#endif
