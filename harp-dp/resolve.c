/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Host names of ExApps (direct mode: Docker network aliases, OVERRIDE_APP_HOST) resolved by
 * one resolver thread, so the event loop never waits for DNS. The loop thread owns the cache
 * and the waiters; the resolver thread only takes names from <todo> and puts answers on
 * <done>, then wakes the loop with lws_cancel_service(). Entries live RESOLVE_TTL_S seconds
 * (failures RESOLVE_NEGATIVE_TTL_S) and are dropped early after a failed connection. Answers go
 * to the callback handed to resolve_start(). resolve_stop() joins the thread, so it must come
 * before the lws context it wakes is destroyed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "resolve.h"
#include "xmalloc.h"

struct entry {
    char host[256];
    char addr[64]; /* "" while pending or after a failure */
    bool pending, failed;
    time_t expires;
    struct entry *next;
};

struct waiter {
    void *c;
    char host[256];
    struct waiter *next;
};

struct job {
    char host[256];
    char addr[64];
    bool ok;
    struct job *next;
};

static struct entry *cache;
static struct waiter *waiters;
static pthread_t thr;
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct job *todo, *done;
static bool stopping, started;
static struct lws_context *wake_ctx; /* woken by the thread: valid until resolve_stop() */
static resolve_cb answer_cb;
static void *answer_ctx;

static struct entry *
find(const char *host)
{
    struct entry *e;

    for (e = cache; e != NULL; e = e->next) {
        if (strcmp(e->host, host) == 0) {
            return e;
        }
    }
    return NULL;
}

enum resolve_result
resolve_host(const char *host, char *out, size_t outlen, void *c)
{
    struct in6_addr a6;
    struct in_addr a4;
    struct entry *e;
    struct waiter *w;
    struct job *j;

    if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
        snprintf(out, outlen, "%s", host);
        return RESOLVE_DONE;
    }
    e = find(host);
    if (e != NULL && !e->pending && e->expires > time(NULL)) {
        snprintf(out, outlen, "%s", e->addr);
        return e->failed ? RESOLVE_FAILED : RESOLVE_DONE;
    }
    w = xcalloc(1, sizeof(*w));
    w->c = c;
    snprintf(w->host, sizeof(w->host), "%s", host);
    w->next = waiters;
    waiters = w;
    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        snprintf(e->host, sizeof(e->host), "%s", host);
        e->next = cache;
        cache = e;
    }
    if (!e->pending) {
        e->pending = true;
        j = xcalloc(1, sizeof(*j));
        snprintf(j->host, sizeof(j->host), "%s", host);
        pthread_mutex_lock(&mtx);
        j->next = todo;
        todo = j;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&mtx);
    }
    return RESOLVE_PENDING;
}

void
resolve_invalidate(const char *host)
{
    struct entry *e = find(host);

    if (e != NULL && !e->pending) {
        e->expires = 0;
    }
}

void
resolve_forget(void *c)
{
    struct waiter **wp, *w;

    for (wp = &waiters; (w = *wp) != NULL;) {
        if (w->c == c) {
            *wp = w->next;
            free(w);
        } else {
            wp = &w->next;
        }
    }
}

void
resolve_deliver(void)
{
    struct job *list, *j;
    struct waiter **wp, *w, *ready = NULL;
    struct entry *e;

    pthread_mutex_lock(&mtx);
    list = done;
    done = NULL;
    pthread_mutex_unlock(&mtx);
    while ((j = list) != NULL) {
        list = j->next;
        e = find(j->host);
        if (e != NULL) {
            e->pending = false;
            e->failed = !j->ok;
            snprintf(e->addr, sizeof(e->addr), "%s", j->ok ? j->addr : "");
            e->expires = time(NULL) + (j->ok ? RESOLVE_TTL_S : RESOLVE_NEGATIVE_TTL_S);
            if (!j->ok) {
                log_warnx("resolve: %s does not resolve", j->host);
            }
        }
        /* Take this host's waiters off the list before calling back: a callback may add. */
        for (wp = &waiters; (w = *wp) != NULL;) {
            if (strcmp(w->host, j->host) == 0) {
                *wp = w->next;
                w->next = ready;
                ready = w;
            } else {
                wp = &w->next;
            }
        }
        while ((w = ready) != NULL) {
            ready = w->next;
            answer_cb(answer_ctx, w->c, j->ok ? j->addr : NULL);
            free(w);
        }
        free(j);
    }
}

static void *
resolver(void *arg)
{
    struct addrinfo hints, *res, *ai, *pick;
    struct job *j;

    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mtx);
        while (todo == NULL && !stopping) {
            pthread_cond_wait(&cond, &mtx);
        }
        if (stopping) {
            pthread_mutex_unlock(&mtx);
            return NULL;
        }
        j = todo;
        todo = j->next;
        pthread_mutex_unlock(&mtx);

        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        j->ok = false;
        if (getaddrinfo(j->host, NULL, &hints, &res) == 0) {
            pick = NULL;
            for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next) {
                pick = ai->ai_family == AF_INET ? ai : NULL;
            }
            for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next) {
                pick = ai->ai_family == AF_INET6 ? ai : NULL;
            }
            j->ok = pick != NULL && getnameinfo(pick->ai_addr, pick->ai_addrlen, j->addr,
                                                sizeof(j->addr), NULL, 0, NI_NUMERICHOST) == 0;
            freeaddrinfo(res);
        }
        pthread_mutex_lock(&mtx);
        j->next = done;
        done = j;
        pthread_mutex_unlock(&mtx);
        lws_cancel_service(wake_ctx);
    }
}

int
resolve_start(struct lws_context *ctx, resolve_cb cb, void *cb_ctx)
{
    wake_ctx = ctx;
    answer_cb = cb;
    answer_ctx = cb_ctx;
    if (pthread_create(&thr, NULL, resolver, NULL) != 0) {
        return -1;
    }
    started = true;
    return 0;
}

void
resolve_stop(void)
{
    struct entry *e;
    struct waiter *w;
    struct job *j;

    if (started) {
        pthread_mutex_lock(&mtx);
        stopping = true;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&mtx);
        /* A getaddrinfo() in progress finishes before the thread sees the flag. */
        pthread_join(thr, NULL);
    }
    while ((e = cache) != NULL) {
        cache = e->next;
        free(e);
    }
    while ((w = waiters) != NULL) {
        waiters = w->next;
        free(w);
    }
    while ((j = todo) != NULL) {
        todo = j->next;
        free(j);
    }
    while ((j = done) != NULL) {
        done = j->next;
        free(j);
    }
    started = false;
    wake_ctx = NULL;
}
