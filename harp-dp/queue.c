/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Byte queues of a connection and how they go out to a socket (queue.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "queue.h"
#include "xmalloc.h"

#define IO_CHUNK (64u * 1024)

static unsigned char wbuf[LWS_PRE + IO_CHUNK];

void
conn_queue_push(struct queue *q, const void *p, size_t n)
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
    q->pushed += n;
    if (q->total != NULL) {
        *q->total += n;
    }
}

void
conn_queue_clear(struct queue *q)
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
queue_write(struct queue *q, struct lws *wsi)
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
queue_send(struct queue *q, struct lws *wsi)
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
int
queue_flush(struct queue *q, struct lws *wsi)
{
    if (lws_is_ssl(wsi)) {
        if (queue_write(q, wsi) == -1) {
            return -1;
        }
    } else if (queue_send(q, wsi) == -1) {
        return -1;
    }
    if (q->bytes > 0) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

/* New bytes in <q>: a plain socket takes them at once when it can (no loop turn, no POLLOUT);
 * the rest, and everything for TLS, waits for the writable callback. */
void
queue_kick(struct queue *q, struct lws *wsi)
{
    if (q->bytes == 0) {
        return;
    }
    if (!lws_is_ssl(wsi) && queue_send(q, wsi) == 0) {
        return;
    }
    lws_callback_on_writable(wsi); /* full, TLS, or failed: the callback finds out */
}

void
conn_queue_puts(struct queue *q, const char *s)
{
    conn_queue_push(q, s, strlen(s));
}
