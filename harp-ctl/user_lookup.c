/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* User look-ups (publish.c design note 5): one user-info call per session cookie however many
 * requests carry it, answers cached per cookie for HP_SESSION_LIFETIME; each data plane gets
 * the remaining lifetime with the answer. Requests with only an Authorization header share a
 * call with those carrying the same value (never cached, as in HaRP). The calls run on a fixed
 * pool of HP_USER_LOOKUP_WORKERS threads; beyond HP_USER_LOOKUP_MAX look-ups waiting or
 * running a request is answered request_error at once (the client gets 503). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "exapp.h"
#include "log.h"
#include "msg.h"
#include "nextcloud.h"
#include "now.h"
#include "secret.h"
#include "sessions.h"
#include "user_lookup.h"
#include "xmalloc.h"

/* One user-info call in flight, shared by the requests that carry the same session cookie,
 * or, without one, the same Authorization header (those answers are never cached). */
struct authreq {
    char *key;    /* "c" + cookie, "a" + Authorization; NULL: shared with nothing */
    char *cookie; /* the cache key when non-empty */
    char app_id[EXAPP_ID_MAX + 1];
    struct msg msg; /* the first request (an auth message): its headers */
    struct link_waiter *waiters;
    size_t nwaiters;
    int result; /* enum nc_user_result */
    char user_id[256];
    int level;
    char error[sizeof(((struct hp_err *)0)->msg)];
    struct user_lookup *ul;
    struct authreq *next;      /* in ul->inflight */
    struct authreq *done_next; /* in ul->done */
};

/* Created by user_lookup_start(); freed by the last of its owner and its running calls. */
struct user_lookup {
    const struct hp_config *cfg;
    struct link_server *ls;
    struct pool *pool;
    /* Owned by the link thread. */
    struct authreq *inflight;
    struct sessions *sessions;
    /* Shared, under mtx. */
    pthread_mutex_t mtx;
    int refs;     /* the owner and each running call */
    bool stopped; /* user_lookup_stop() ran: calls clean up after themselves */
    struct authreq *done;
};

struct user_lookup *
user_lookup_start(const struct hp_config *cfg, struct link_server *ls, struct hp_err *err)
{
    struct user_lookup *ul = xcalloc(1, sizeof(*ul));

    ul->cfg = cfg;
    ul->ls = ls;
    ul->refs = 1;
    ul->pool = pool_start("user look-ups", cfg->user_lookup_workers, cfg->user_lookup_max);
    if (ul->pool == NULL) {
        err_set(err, "cannot start the look-up threads");
        free(ul);
        return NULL;
    }
    ul->sessions = sessions_new(cfg->session_lifetime);
    pthread_mutex_init(&ul->mtx, NULL);
    return ul;
}

static void
reply_auth(struct user_lookup *ul, uint64_t serial, int64_t id, int result, const char *user_id,
           int level, double ttl, const char *why)
{
    struct msg m = {.type = MSG_AUTH_REPLY, .has_id = true, .id = id};
    struct msg_auth_reply *r = &m.auth_reply;

    r->result = result == NC_USER        ? MSG_AUTH_USER
                : result == NC_ANONYMOUS ? MSG_AUTH_ANONYMOUS
                                         : MSG_AUTH_ERROR;
    if (result == NC_USER) {
        snprintf(r->user_id, sizeof(r->user_id), "%s", user_id);
        r->access_level = (enum access_level)level;
        r->ttl_ms = (int64_t)(ttl * 1000);
    }
    r->error = (char *)why;
    link_server_reply(ul->ls, serial, &m);
}

static void
authreq_free(struct authreq *ar)
{
    secret_free(ar->key);
    secret_free(ar->cookie);
    msg_free(&ar->msg);
    free(ar->waiters);
    free(ar);
}

/* Takes a finished look-up off the in-flight list. */
static void
authreq_unlink(struct user_lookup *ul, struct authreq *ar)
{
    struct authreq **ap;

    for (ap = &ul->inflight; *ap != NULL; ap = &(*ap)->next) {
        if (*ap == ar) {
            *ap = ar->next;
            return;
        }
    }
}

static void
user_lookup_free(struct user_lookup *ul)
{
    pthread_mutex_destroy(&ul->mtx);
    free(ul);
}

/* Drops a reference; the last one frees <ul>. Called with ul->mtx held; returns with it
 * released. */
static void
release(struct user_lookup *ul)
{
    bool last = --ul->refs == 0;

    pthread_mutex_unlock(&ul->mtx);
    if (last) {
        user_lookup_free(ul);
    }
}

/* A pool job: the user-info call, skipped when the pool stopped before it began. */
static void
auth_worker(void *arg, bool cancelled)
{
    struct authreq *ar = arg;
    struct user_lookup *ul = ar->ul;
    struct hp_err err = {"stopping"};

    ar->result = NC_USER_ERROR;
    if (!cancelled) {
        double t0 = now_mono();

        ar->result =
            nextcloud_user_info(ul->cfg, ar->app_id, ar->msg.auth.headers, ar->msg.auth.nheaders,
                                ar->user_id, sizeof(ar->user_id), &ar->level, &err);
        counters_nc_call(NC_CALL_USER_INFO,
                         ar->result == NC_USER        ? NC_OUT_OK
                         : ar->result == NC_ANONYMOUS ? NC_OUT_ANONYMOUS
                                                      : NC_OUT_ERROR,
                         now_mono() - t0);
    }
    if (ar->result == NC_USER_ERROR) {
        snprintf(ar->error, sizeof(ar->error), "%s", err.msg);
        if (!cancelled) {
            log_warnx("auth: user-info for %s: %s", ar->app_id, err.msg);
        }
    }
    pthread_mutex_lock(&ul->mtx);
    if (ul->stopped) {
        authreq_free(ar);
    } else {
        ar->done_next = ul->done;
        ul->done = ar;
        link_server_wake(ul->ls); /* valid until user_lookup_stop() */
    }
    release(ul);
}

/* What identical requests share one look-up by: "c" + the session cookie, or without one
 * "a" + the exact Authorization value; NULL when neither (never shared). */
static char *
share_key(const struct msg_auth *req)
{
    const struct msg_header *h;
    char *key;

    if (req->cookie_len > 0) {
        key = xmalloc(req->cookie_len + 2);
        key[0] = 'c';
        memcpy(key + 1, req->cookie, req->cookie_len + 1);
        return key;
    }
    h = msg_auth_header(req, "authorization");
    if (h == NULL || memchr(h->value, '\0', h->value_len) != NULL) {
        return NULL;
    }
    key = xmalloc(h->value_len + 2);
    key[0] = 'a';
    memcpy(key + 1, h->value, h->value_len + 1);
    return key;
}

/* Queues the call of <ar> on the pool, holding a reference to <ul> until it is done; -1 when
 * the pool is full. */
static int
start_call(struct user_lookup *ul, struct authreq *ar)
{
    pthread_mutex_lock(&ul->mtx);
    ul->refs++;
    pthread_mutex_unlock(&ul->mtx);
    if (pool_submit(ul->pool, auth_worker, ar) == -1) {
        pthread_mutex_lock(&ul->mtx);
        ul->refs--;
        pthread_mutex_unlock(&ul->mtx);
        return -1;
    }
    return 0;
}

void
user_lookup_on_request(struct user_lookup *ul, struct link *l, struct msg *m)
{
    double now = now_mono(), lifetime = ul->cfg->session_lifetime;
    const struct msg_auth *req = &m->auth;
    char app_id[EXAPP_ID_MAX + 1];
    const struct session *se;
    struct authreq *ar = NULL;
    struct hp_err err;
    char *key;

    if (exapp_id_normalise(req->app_id, app_id, &err) == -1) {
        reply_auth(ul, l->serial, m->id, NC_USER_ERROR, NULL, 0, 0, err.msg);
        return;
    }
    if (req->cookie_len > 0 && lifetime > 0 &&
        (se = sessions_get(ul->sessions, req->cookie, now)) != NULL) {
        reply_auth(ul, l->serial, m->id, NC_USER, se->user_id, se->level,
                   lifetime - (now - se->fetched), NULL);
        return;
    }
    key = share_key(req);
    for (ar = key != NULL ? ul->inflight : NULL; ar != NULL; ar = ar->next) {
        if (ar->key != NULL && strcmp(ar->key, key) == 0) {
            break;
        }
    }
    if (ar != NULL) {
        secret_free(key);
        link_server_waiter_add(&ar->waiters, &ar->nwaiters, l->serial, m->id);
        return;
    }
    ar = xcalloc(1, sizeof(*ar));
    ar->key = key;
    ar->cookie = xstrdup(req->cookie);
    snprintf(ar->app_id, sizeof(ar->app_id), "%s", app_id);
    ar->ul = ul;
    link_server_waiter_add(&ar->waiters, &ar->nwaiters, l->serial, m->id);
    ar->msg = *m; /* the headers go to the call: taken out of <m> */
    memset(m, 0, sizeof(*m));
    if (start_call(ul, ar) == -1) {
        link_server_request_error(ul->ls, l->serial, ar->msg.id, "too many user look-ups waiting");
        authreq_free(ar);
        return;
    }
    ar->next = ul->inflight;
    ul->inflight = ar;
}

void
user_lookup_finish(struct user_lookup *ul)
{
    double now = now_mono(), lifetime = ul->cfg->session_lifetime;
    struct authreq *ar, *next, *done;
    size_t i;

    pthread_mutex_lock(&ul->mtx);
    done = ul->done;
    ul->done = NULL;
    pthread_mutex_unlock(&ul->mtx);
    for (ar = done; ar != NULL; ar = next) {
        next = ar->done_next;
        authreq_unlink(ul, ar);
        /* HaRP caches user objects (200, anonymous ones too), never 4xx or errors. */
        if (ar->result == NC_USER && ar->cookie[0] != '\0' && lifetime > 0) {
            sessions_put(ul->sessions, ar->cookie, ar->user_id, ar->level, now);
        }
        for (i = 0; i < ar->nwaiters; i++) {
            reply_auth(ul, ar->waiters[i].serial, ar->waiters[i].id, ar->result, ar->user_id,
                       ar->level, ar->cookie[0] != '\0' && lifetime > 0 ? lifetime : 0,
                       ar->result == NC_USER_ERROR ? ar->error : NULL);
        }
        authreq_free(ar);
    }
}

void
user_lookup_stats(struct user_lookup *ul, struct pool_stats *st)
{
    pool_stats(ul->pool, st);
}

void
user_lookup_stop(struct user_lookup *ul)
{
    struct authreq *ar;

    if (ul == NULL) {
        return;
    }
    pthread_mutex_lock(&ul->mtx);
    ul->stopped = true;
    /* Finished look-ups are ours to free; running ones free themselves (they see stopped). */
    while ((ar = ul->done) != NULL) {
        ul->done = ar->done_next;
        authreq_unlink(ul, ar);
        authreq_free(ar);
    }
    pthread_mutex_unlock(&ul->mtx);
    sessions_free(ul->sessions);
    ul->sessions = NULL;
    /* Jobs still queued run cancelled and free themselves; the pool ends on its own. */
    pool_stop(ul->pool);
    pthread_mutex_lock(&ul->mtx);
    release(ul);
}
