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

#include "ctl.h"
#include "hash.h"
#include "log.h"
#include "msg.h"
#include "nextcloud.h"
#include "publish_int.h"
#include "secret.h"
#include "xmalloc.h"

static unsigned
session_hash(const char *cookie)
{
    return hash_fnv1a(cookie, strlen(cookie)) % SESSION_BUCKETS;
}

static void
session_free(struct session *se)
{
    secret_free(se->cookie);
    free(se);
}

/* The fresh entry for <cookie>, or NULL; a stale one found on the way is dropped. */
static struct session *
session_get(struct publish *pub, const char *cookie, double now)
{
    struct session **sp, *se;
    double lifetime = pub->ctl->cfg.session_lifetime;

    for (sp = &pub->sessions[session_hash(cookie)]; (se = *sp) != NULL; sp = &se->next) {
        if (strcmp(se->cookie, cookie) != 0) {
            continue;
        }
        if (now - se->fetched <= lifetime) {
            return se;
        }
        *sp = se->next;
        session_free(se);
        pub->nsessions--;
        return NULL;
    }
    return NULL;
}

/* Drops expired sessions; all of them if the cache is still over its bound. */
static void
sessions_prune(struct publish *pub, double now, bool all)
{
    struct session **sp, *se;
    size_t b;

    for (b = 0; b < SESSION_BUCKETS; b++) {
        for (sp = &pub->sessions[b]; (se = *sp) != NULL;) {
            if (all || now - se->fetched > pub->ctl->cfg.session_lifetime) {
                *sp = se->next;
                session_free(se);
                pub->nsessions--;
            } else {
                sp = &se->next;
            }
        }
    }
}

static void
session_put(struct publish *pub, const char *cookie, const char *user_id, int level, double now)
{
    struct session *se;
    unsigned b = session_hash(cookie);

    if (pub->nsessions >= SESSION_MAX) {
        sessions_prune(pub, now, false);
        if (pub->nsessions >= SESSION_MAX) {
            sessions_prune(pub, now, true);
        }
    }
    se = xcalloc(1, sizeof(*se));
    se->cookie = xstrdup(cookie);
    snprintf(se->user_id, sizeof(se->user_id), "%s", user_id);
    se->level = level;
    se->fetched = now;
    se->next = pub->sessions[b];
    pub->sessions[b] = se;
    pub->nsessions++;
}

static void
reply_auth(struct publish *pub, uint64_t serial, json_int_t id, int result, const char *user_id,
           int level, double ttl, const char *why)
{
    struct link *l;
    json_t *m;

    if ((l = pub_link(pub, serial)) == NULL) {
        return;
    }
    m = msg_new(MSG_AUTH_REPLY);
    json_object_set_new(m, "id", json_integer(id));
    json_object_set_new(m, "result",
                        json_string(result == NC_USER        ? "user"
                                    : result == NC_ANONYMOUS ? "anonymous"
                                                             : "error"));
    if (result == NC_USER) {
        json_object_set_new(m, "user_id", json_string(user_id));
        json_object_set_new(m, "access_level", json_integer(level));
        json_object_set_new(m, "ttl_ms", json_integer((json_int_t)(ttl * 1000)));
    }
    if (why != NULL) {
        json_object_set_new(m, "error", json_string(why));
    }
    pub_send(l, m);
}

static void
authreq_free(struct authreq *ar)
{
    secret_free(ar->key);
    secret_free(ar->cookie);
    msg_auth_free(&ar->req);
    free(ar->waiters);
    free(ar);
}

/* Takes a finished look-up off the in-flight list. */
static void
authreq_unlink(struct publish *pub, struct authreq *ar)
{
    struct authreq **ap;

    for (ap = &pub->auth_inflight; *ap != NULL; ap = &(*ap)->next) {
        if (*ap == ar) {
            *ap = ar->next;
            return;
        }
    }
}

/* A pool job: the user-info call, skipped when the pool stopped before it began. */
static void
auth_worker(void *arg, bool cancelled)
{
    struct authreq *ar = arg;
    struct publish *pub = ar->pub;
    struct hp_err err = {"stopping"};

    ar->result = NC_USER_ERROR;
    if (!cancelled) {
        ar->result =
            nextcloud_user_info(&pub->ctl->cfg, ar->app_id, ar->req.headers, ar->req.nheaders,
                                ar->user_id, sizeof(ar->user_id), &ar->level, &err);
    }
    if (ar->result == NC_USER_ERROR) {
        snprintf(ar->error, sizeof(ar->error), "%s", err.msg);
        if (!cancelled) {
            log_warnx("auth: user-info for %s: %s", ar->app_id, err.msg);
        }
    }
    pthread_mutex_lock(&pub->mtx);
    if (pub->stopped) {
        authreq_free(ar);
        pub_worker_release(pub);
        return;
    }
    ar->done_next = pub->auth_done;
    pub->auth_done = ar;
    pub->refs--;
    pthread_mutex_unlock(&pub->mtx);
    pub_wake(pub);
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

void
auth_on_request(struct publish *pub, struct link *l, json_t *msg)
{
    double now = pub_now_mono(), lifetime = pub->ctl->cfg.session_lifetime;
    char app_id[EXAPP_ID_MAX + 1];
    struct authreq *ar = NULL;
    struct msg_auth req;
    struct session *se;
    struct hp_err err;
    char *key;

    if (msg_auth_decode(msg, &req, &err) == -1) {
        pub_bad_message(pub, l, msg, err.msg);
        msg_auth_free(&req);
        return;
    }
    if (exapp_id_normalise(req.app_id, app_id, &err) == -1) {
        reply_auth(pub, l->serial, req.id, NC_USER_ERROR, NULL, 0, 0, err.msg);
        msg_auth_free(&req);
        return;
    }
    if (req.cookie_len > 0 && lifetime > 0 && (se = session_get(pub, req.cookie, now)) != NULL) {
        reply_auth(pub, l->serial, req.id, NC_USER, se->user_id, se->level,
                   lifetime - (now - se->fetched), NULL);
        msg_auth_free(&req);
        return;
    }
    key = share_key(&req);
    for (ar = key != NULL ? pub->auth_inflight : NULL; ar != NULL; ar = ar->next) {
        if (ar->key != NULL && strcmp(ar->key, key) == 0) {
            break;
        }
    }
    if (ar != NULL) {
        secret_free(key);
        pub_waiter_add(&ar->waiters, &ar->nwaiters, l->serial, req.id);
        msg_auth_free(&req);
        return;
    }
    ar = xcalloc(1, sizeof(*ar));
    ar->key = key;
    ar->cookie = xstrdup(req.cookie);
    snprintf(ar->app_id, sizeof(ar->app_id), "%s", app_id);
    ar->req = req;
    ar->req.app_id = NULL; /* borrowed from <msg> */
    ar->pub = pub;
    pub_waiter_add(&ar->waiters, &ar->nwaiters, l->serial, req.id);
    if (pub_worker_start(pub, pub->user_pool, auth_worker, ar) == -1) {
        authreq_free(ar);
        pub_request_error(pub, l->serial, req.id, "too many user look-ups waiting");
        return;
    }
    ar->next = pub->auth_inflight;
    pub->auth_inflight = ar;
}

void
auth_finish(struct publish *pub, struct authreq *done)
{
    double now = pub_now_mono(), lifetime = pub->ctl->cfg.session_lifetime;
    struct authreq *ar, *next;
    size_t i;

    for (ar = done; ar != NULL; ar = next) {
        next = ar->done_next;
        authreq_unlink(pub, ar);
        /* HaRP caches user objects (200, anonymous ones too), never 4xx or errors. */
        if (ar->result == NC_USER && ar->cookie[0] != '\0' && lifetime > 0) {
            session_put(pub, ar->cookie, ar->user_id, ar->level, now);
        }
        for (i = 0; i < ar->nwaiters; i++) {
            reply_auth(pub, ar->waiters[i].link_serial, ar->waiters[i].req_id, ar->result,
                       ar->user_id, ar->level, ar->cookie[0] != '\0' && lifetime > 0 ? lifetime : 0,
                       ar->result == NC_USER_ERROR ? ar->error : NULL);
        }
        authreq_free(ar);
    }
}

void
auth_clear(struct publish *pub)
{
    struct authreq *ar;

    while ((ar = pub->auth_done) != NULL) {
        pub->auth_done = ar->done_next;
        authreq_unlink(pub, ar);
        authreq_free(ar);
    }
    sessions_prune(pub, 0, true);
}
