/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The link server thread: owns the proto socket and every data plane link.
 *
 * Design notes:
 * 1. Nothing but `hello` is accepted before `hello`; a proto version mismatch gets an `error`
 *    and the link is closed. After hello a bad message never closes the link: it fails its
 *    request (request_error) or is ignored; only a frame the stream cannot be followed past
 *    (a length over FRAME_MAX) does.
 * 2. A link whose unsent output exceeds OUT_HIGH_MARK is dropped; the data plane reconnects
 *    and gets a snapshot. A link silent for LINK_IDLE_MAX is dropped; pings go out every
 *    PING_INTERVAL.
 * 3. Everything else is the owner's (struct link_server_handlers): the link server never
 *    knows what a table, a look-up or a ban is.
 *
 *   accept -> [link] --hello--> on_hello --(messages)--> on_message ... --(eof/error)--> closed
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "link_server.h"
#include "log.h"
#include "msg.h"
#include "now.h"
#include "xmalloc.h"

#define OUT_HIGH_MARK (64u * 1024 * 1024)
#define MAX_LINKS 256
#define PING_INTERVAL 5.0
#define LINK_IDLE_MAX 30.0
#define BAD_LOG_PER_S 5

/* Created by link_server_open(), freed by link_server_free(). */
struct link_server {
    struct link_server_handlers h;
    void *ctx;
    pthread_t thr;
    bool running;
    int listen_fd, wake_fd;
    char *path;
    /* Owned by the thread. */
    struct link *links;
    size_t nlinks;
    uint64_t serials;
    double last_ping;
    struct log_rate bad_log;
    /* Shared, under mtx. */
    pthread_mutex_t mtx;
    bool stop;
    uint64_t bad_messages;
};

void
link_server_wake(struct link_server *ls)
{
    uint64_t one = 1;

    if (write(ls->wake_fd, &one, sizeof(one)) == -1) {
        /* the counter is saturated: the thread is awake anyway */
    }
}

struct link *
link_server_links(struct link_server *ls)
{
    return ls->links;
}

int
link_server_send(struct link *l, const struct msg *m)
{
    size_t n;
    char *f = msg_frame(m, &n);

    if (f == NULL) {
        log_errorx("publish: a %s message for %s exceeds the %u-byte frame limit; not sent",
                   msg_type_name(m->type), l->dp_id, FRAME_MAX);
        return -1;
    }
    if (l->out_off > 0 && l->out_off == l->out_len) {
        l->out_off = l->out_len = 0;
    }
    l->out = xrealloc(l->out, l->out_len + n);
    memcpy(l->out + l->out_len, f, n);
    l->out_len += n;
    free(f);
    return 0;
}

struct link *
link_server_find(struct link_server *ls, uint64_t serial)
{
    struct link *l;

    for (l = ls->links; l != NULL && l->serial != serial; l = l->next) {
    }
    return l;
}

void
link_server_reply(struct link_server *ls, uint64_t serial, const struct msg *m)
{
    struct link *l = link_server_find(ls, serial);

    if (l != NULL) {
        link_server_send(l, m);
    }
}

void
link_server_waiter_add(struct link_waiter **v, size_t *n, uint64_t serial, int64_t id)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = (struct link_waiter){serial, id};
}

void
link_server_request_error(struct link_server *ls, uint64_t serial, int64_t id, const char *why)
{
    struct msg m = {.type = MSG_REQUEST_ERROR, .has_id = true, .id = id};

    m.request_error.message = (char *)why;
    link_server_reply(ls, serial, &m);
}

void
link_server_bad_message(struct link_server *ls, struct link *l, const struct msg *m,
                        const char *why)
{
    bool has_id = m != NULL && m->has_id;
    char more[64] = "";
    unsigned long held;

    pthread_mutex_lock(&ls->mtx);
    ls->bad_messages++;
    pthread_mutex_unlock(&ls->mtx);
    if (has_id) {
        link_server_request_error(ls, l->serial, m->id, why);
    }
    if (log_rate_ok(&ls->bad_log, BAD_LOG_PER_S, &held)) {
        if (held > 0) {
            snprintf(more, sizeof(more), " (%lu more not logged)", held);
        }
        log_warnx("publish: data plane %s sent a bad message (%s): %s; %s%s", l->dp_id,
                  m != NULL && m->type < MSG_NTYPES ? msg_type_name(m->type) : "no known type", why,
                  has_id ? "its request failed" : "ignored", more);
    }
}

uint64_t
link_server_bad_messages(struct link_server *ls)
{
    uint64_t n;

    pthread_mutex_lock(&ls->mtx);
    n = ls->bad_messages;
    pthread_mutex_unlock(&ls->mtx);
    return n;
}

static void
close_link(struct link_server *ls, struct link *l, const char *why)
{
    struct link **lp;

    for (lp = &ls->links; *lp != NULL; lp = &(*lp)->next) {
        if (*lp == l) {
            *lp = l->next;
            break;
        }
    }
    ls->nlinks--;
    if (l->hello) {
        log_info("publish: data plane %s (pid %lld) disconnected: %s", l->dp_id, l->pid, why);
        ls->h.on_close(ls->ctx, l);
    }
    close(l->fd);
    frame_reader_free(&l->rd);
    free(l->out);
    free(l);
}

/* Both sides check the version at hello: 0 when <h> is this version's (the data plane is
 * welcomed), or -1 with <err> when it is refused (it was sent an error message). */
static int
on_hello(struct link_server *ls, struct link *l, const struct msg_hello *h, struct hp_err *err)
{
    char why[64];
    struct msg m = {.type = MSG_ERROR};

    if (h->proto != PROTO_VERSION) {
        err_set(err, "data plane speaks proto %lld, this harp-ctl %d: refused", (long long)h->proto,
                PROTO_VERSION);
        snprintf(why, sizeof(why), "proto version %d required", PROTO_VERSION);
        m.error.message = why;
        link_server_send(l, &m);
        return -1;
    }
    snprintf(l->dp_id, sizeof(l->dp_id), "%s", h->dp_id);
    l->pid = h->pid;
    l->hello = true;
    m = (struct msg){.type = MSG_WELCOME, .welcome = {.proto = PROTO_VERSION}};
    link_server_send(l, &m);
    ls->h.on_hello(ls->ctx, l, h);
    return 0;
}

/* <m> as msg_decode() left it (<decoded> -1 when it failed, with <err>): 0, or -1 when the
 * link must close (the reason in <err>): a link is closed for what it sends before a valid
 * hello, or for an error message; any other bad message of a data plane that said hello
 * fails that request alone (link_server_bad_message). */
static int
on_frame(struct link_server *ls, struct link *l, struct msg *m, int decoded, struct hp_err *err)
{
    struct msg pong = {.type = MSG_PONG};

    if (!l->hello) {
        if (m->type < MSG_NTYPES && m->type != MSG_HELLO) {
            err_set(err, "\"%s\" before hello", msg_type_name(m->type));
            return -1;
        }
        return decoded == -1 ? -1 : on_hello(ls, l, &m->hello, err);
    }
    if (decoded == -1) {
        link_server_bad_message(ls, l, m, err->msg);
        return 0;
    }
    switch (m->type) {
    case MSG_HELLO:
        link_server_bad_message(ls, l, m, "a second hello");
        return 0;
    case MSG_PING:
        link_server_send(l, &pong);
        return 0;
    case MSG_PONG:
        return 0;
    case MSG_ERROR:
        err_set(err, "data plane error: %s", m->error.message);
        return -1;
    default:
        ls->h.on_message(ls->ctx, l, m);
        return 0;
    }
}

static void
read_link(struct link_server *ls, struct link *l)
{
    char buf[65536];
    struct hp_err err;
    struct msg m;
    json_t *msg;
    ssize_t n;
    int rc;

    n = read(l->fd, buf, sizeof(buf));
    if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
        close_link(ls, l, n == 0 ? "closed" : strerror(errno));
        return;
    }
    if (n < 0) {
        return;
    }
    l->last_seen = now_mono();
    frame_feed(&l->rd, buf, (size_t)n);
    while ((rc = frame_next(&l->rd, &msg, &err)) != 0) {
        if (rc == FRAME_BAD && l->hello) {
            link_server_bad_message(ls, l, NULL, err.msg);
            continue;
        }
        if (rc == 1) {
            rc = msg_decode(msg, MSG_FROM_DP, &m, &err);
            json_decref(msg);
            rc = on_frame(ls, l, &m, rc, &err);
            msg_free(&m);
            if (rc == 0) {
                continue;
            }
        }
        log_warnx("publish: link %s: %s; closing", l->hello ? l->dp_id : "(no hello)", err.msg);
        /* best effort: the error message queued by on_hello, if any */
        if (l->out_len > l->out_off &&
            write(l->fd, l->out + l->out_off, l->out_len - l->out_off) < 0) {
        }
        close_link(ls, l, err.msg);
        return;
    }
}

static void
write_link(struct link_server *ls, struct link *l)
{
    ssize_t n = write(l->fd, l->out + l->out_off, l->out_len - l->out_off);

    if (n == -1 && errno != EAGAIN && errno != EINTR) {
        close_link(ls, l, strerror(errno));
        return;
    }
    if (n > 0) {
        l->out_off += (size_t)n;
    }
}

static void
accept_links(struct link_server *ls)
{
    struct link *l;
    int fd;

    while ((fd = accept4(ls->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
        if (ls->nlinks >= MAX_LINKS) {
            log_warnx("publish: %d data planes connected already; refusing another", MAX_LINKS);
            close(fd);
            continue;
        }
        l = xcalloc(1, sizeof(*l));
        l->fd = fd;
        l->serial = ++ls->serials;
        l->connected = l->last_seen = now_mono();
        l->next = ls->links;
        ls->links = l;
        ls->nlinks++;
    }
}

static void
housekeeping(struct link_server *ls)
{
    struct link *l, *next;
    double now = now_mono();
    bool ping = now - ls->last_ping >= PING_INTERVAL;
    struct msg m = {.type = MSG_PING};

    for (l = ls->links; l != NULL; l = next) {
        next = l->next;
        if (now - l->last_seen > LINK_IDLE_MAX) {
            close_link(ls, l, "silent for 30 s");
        } else if (l->out_len - l->out_off > OUT_HIGH_MARK) {
            close_link(ls, l, "too slow: output above the high mark");
        } else if (ping && l->hello) {
            link_server_send(l, &m);
        }
    }
    if (ping) {
        ls->last_ping = now;
        ls->h.on_tick(ls->ctx);
    }
}

/* The link of slot <i> if it is still open (links may close while the slots are handled). */
static struct link *
live(struct link_server *ls, struct link *slot)
{
    struct link *l;

    for (l = ls->links; l != NULL && l != slot; l = l->next) {
    }
    return l;
}

static void *
loop(void *arg)
{
    struct link_server *ls = arg;
    struct pollfd *pfd = NULL;
    struct link **pl = NULL, *l;
    size_t cap = 0, n, i;
    uint64_t cnt;
    bool stop;

    ls->h.on_turn(ls->ctx);
    for (;;) {
        if (cap < ls->nlinks + 2) {
            cap = ls->nlinks + 16;
            pfd = xrealloc(pfd, cap * sizeof(*pfd));
            pl = xrealloc(pl, cap * sizeof(*pl));
        }
        pfd[0] = (struct pollfd){.fd = ls->wake_fd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = ls->listen_fd, .events = POLLIN};
        n = 2;
        for (l = ls->links; l != NULL; l = l->next) {
            pfd[n] = (struct pollfd){.fd = l->fd, .events = POLLIN};
            if (l->out_len > l->out_off) {
                pfd[n].events |= POLLOUT;
            }
            pl[n++] = l;
        }
        if (poll(pfd, n, 1000) == -1 && errno != EINTR) {
            log_warn("publish: poll");
        }
        if (pfd[0].revents & POLLIN) {
            if (read(ls->wake_fd, &cnt, sizeof(cnt)) < 0) {
            }
        }
        pthread_mutex_lock(&ls->mtx);
        stop = ls->stop;
        pthread_mutex_unlock(&ls->mtx);
        if (stop) {
            break;
        }
        for (i = 2; i < n; i++) {
            if ((l = live(ls, pl[i])) == NULL) {
                continue;
            }
            if (pfd[i].revents & POLLOUT) {
                write_link(ls, l);
                if ((l = live(ls, pl[i])) == NULL) {
                    continue;
                }
            }
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                read_link(ls, l);
            }
        }
        if (pfd[1].revents & POLLIN) {
            accept_links(ls);
        }
        ls->h.on_turn(ls->ctx);
        housekeeping(ls);
        /* Try to flush what was queued without waiting for the next poll. */
        for (l = ls->links; l != NULL; l = l->next) {
            if (l->out_len > l->out_off) {
                ssize_t w = write(l->fd, l->out + l->out_off, l->out_len - l->out_off);

                if (w > 0) {
                    l->out_off += (size_t)w;
                }
            }
        }
    }
    free(pfd);
    free(pl);
    return NULL;
}

/* Binds the proto socket 0600, refusing when another harp-ctl answers on it. */
static int
listen_socket(const char *path, struct hp_err *err)
{
    struct sockaddr_un sun;
    mode_t old;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        err_set(err, "HP_CTL_SOCKET: %s is longer than %zu bytes", path, sizeof(sun.sun_path) - 1);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        err_set(err, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        close(fd);
        err_set(err, "HP_CTL_SOCKET: another harp-ctl answers on %s", path);
        return -1;
    }
    close(fd);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    old = umask(0177);
    if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        umask(old);
        err_set(err, "HP_CTL_SOCKET: cannot bind %s: %s", path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }
    umask(old);
    if (chmod(path, 0600) == -1 || listen(fd, 64) == -1) {
        int e = errno;

        err_set(err, "HP_CTL_SOCKET: cannot listen on the socket: %s", strerror(e));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

struct link_server *
link_server_open(const char *path, const struct link_server_handlers *h, void *ctx,
                 struct hp_err *err)
{
    struct link_server *ls = xcalloc(1, sizeof(*ls));

    ls->h = *h;
    ls->ctx = ctx;
    ls->path = xstrdup(path);
    pthread_mutex_init(&ls->mtx, NULL);
    ls->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ls->wake_fd == -1) {
        err_set(err, "eventfd: %s", strerror(errno));
        ls->listen_fd = -1;
        goto fail;
    }
    if ((ls->listen_fd = listen_socket(path, err)) == -1) {
        goto fail;
    }
    return ls;
fail:
    link_server_free(ls);
    return NULL;
}

int
link_server_run(struct link_server *ls, struct hp_err *err)
{
    if (pthread_create(&ls->thr, NULL, loop, ls) != 0) {
        err_set(err, "cannot start the publisher thread");
        return -1;
    }
    ls->running = true;
    return 0;
}

void
link_server_stop(struct link_server *ls)
{
    if (ls->running) {
        pthread_mutex_lock(&ls->mtx);
        ls->stop = true;
        pthread_mutex_unlock(&ls->mtx);
        link_server_wake(ls);
        pthread_join(ls->thr, NULL);
        ls->running = false;
    }
    while (ls->links != NULL) {
        close_link(ls, ls->links, "stopping");
    }
    if (ls->listen_fd != -1) {
        close(ls->listen_fd);
        unlink(ls->path);
        ls->listen_fd = -1;
    }
}

void
link_server_free(struct link_server *ls)
{
    if (ls == NULL) {
        return;
    }
    if (ls->listen_fd != -1) {
        close(ls->listen_fd);
    }
    if (ls->wake_fd != -1) {
        close(ls->wake_fd);
    }
    pthread_mutex_destroy(&ls->mtx);
    free(ls->path);
    free(ls);
}
