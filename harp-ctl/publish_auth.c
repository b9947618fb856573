/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* User look-ups (publish.c design note 5): one user-info call per session cookie however many
 * requests carry it, answers cached per cookie for HP_SESSION_LIFETIME; each data plane gets
 * the remaining lifetime with the answer. Authorization-only requests are never shared. */
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
    secret_free(ar->cookie);
    json_decref(ar->headers);
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

static void *
auth_worker(void *arg)
{
    struct authreq *ar = arg;
    struct publish *pub = ar->pub;
    struct hp_err err = {""};

    ar->result = nextcloud_user_info(&pub->ctl->cfg, ar->app_id, ar->headers, ar->user_id,
                                     sizeof(ar->user_id), &ar->level, &err);
    if (ar->result == NC_USER_ERROR) {
        snprintf(ar->error, sizeof(ar->error), "%s", err.msg);
        log_warnx("auth: user-info for %s: %s", ar->app_id, err.msg);
    }
    pthread_mutex_lock(&pub->mtx);
    if (pub->stopped) {
        authreq_free(ar);
        pub_worker_release(pub);
        return NULL;
    }
    ar->done_next = pub->auth_done;
    pub->auth_done = ar;
    pub->refs--;
    pthread_mutex_unlock(&pub->mtx);
    pub_wake(pub);
    return NULL;
}

void
auth_on_request(struct publish *pub, struct link *l, json_t *msg)
{
    const char *cookie = json_string_value(json_object_get(msg, "cookie"));
    const char *raw = json_string_value(json_object_get(msg, "app_id"));
    json_int_t id = json_integer_value(json_object_get(msg, "id"));
    double now = pub_now_mono(), lifetime = pub->ctl->cfg.session_lifetime;
    char app_id[EXAPP_ID_MAX + 1];
    struct authreq *ar = NULL;
    struct session *se;
    struct hp_err err;

    if (exapp_id_normalise(raw, app_id, &err) == -1) {
        reply_auth(pub, l->serial, id, NC_USER_ERROR, NULL, 0, 0, err.msg);
        return;
    }
    if (cookie[0] != '\0' && lifetime > 0 && (se = session_get(pub, cookie, now)) != NULL) {
        reply_auth(pub, l->serial, id, NC_USER, se->user_id, se->level,
                   lifetime - (now - se->fetched), NULL);
        return;
    }
    if (cookie[0] != '\0') {
        for (ar = pub->auth_inflight; ar != NULL; ar = ar->next) {
            if (ar->cookie[0] != '\0' && strcmp(ar->cookie, cookie) == 0) {
                break;
            }
        }
    }
    if (ar == NULL) {
        ar = xcalloc(1, sizeof(*ar));
        ar->cookie = xstrdup(cookie);
        snprintf(ar->app_id, sizeof(ar->app_id), "%s", app_id);
        ar->headers = json_incref(json_object_get(msg, "headers"));
        ar->pub = pub;
        if (pub_worker_start(pub, auth_worker, ar) == -1) {
            authreq_free(ar);
            reply_auth(pub, l->serial, id, NC_USER_ERROR, NULL, 0, 0, "cannot start a look-up");
            return;
        }
        ar->next = pub->auth_inflight;
        pub->auth_inflight = ar;
    }
    pub_waiter_add(&ar->waiters, &ar->nwaiters, l->serial, id);
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
