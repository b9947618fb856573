/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Look-ups of app ids a data plane does not know (publish.c design note 4): one worker per
 * app id however many data planes ask; a found app is stored, so published, before the
 * replies go out; "not found" is remembered for NEGATIVE_TTL. An app removed by DELETE comes
 * back only when Nextcloud holds it enabled (nextcloud_exapp_enabled): exapp-meta answers for
 * disabled apps too, and AppAPI's push of an enable can be lost (docs/compat.md). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_lookup.h"
#include "counters.h"
#include "exapp.h"
#include "log.h"
#include "msg.h"
#include "nextcloud.h"
#include "now.h"
#include "xmalloc.h"

#define NEGATIVE_TTL 15.0
/* Workers and jobs waiting or running (beyond: 503). */
#define APP_LOOKUP_WORKERS 4
#define APP_LOOKUP_MAX 256

/* One Nextcloud look-up in flight, shared by every data plane that asked. */
struct lookup {
    char app_id[EXAPP_ID_MAX + 1];
    struct link_waiter *waiters;
    size_t nwaiters;
    int64_t removed_at; /* when DELETE removed it (store_exapp_removed_at), or 0 */
    int result;         /* set by the worker: 1 found, 0 not found, -1 error */
    char error[sizeof(((struct hp_err *)0)->msg)];
    struct app_lookup *al;
    struct lookup *next;      /* in al->inflight */
    struct lookup *done_next; /* in al->done */
};

/* An app id Nextcloud did not know, until <until> (monotonic). */
struct missing {
    char app_id[EXAPP_ID_MAX + 1];
    double until;
    struct missing *next;
};

/* Created by app_lookup_start(); freed by the last of its owner and its running look-ups. */
struct app_lookup {
    const struct hp_config *cfg;
    struct store *store;
    struct link_server *ls;
    struct app_lookup_hooks hooks;
    struct pool *pool;
    /* Owned by the link thread. */
    struct lookup *inflight;
    /* Shared, under mtx. */
    pthread_mutex_t mtx;
    int refs;     /* the owner and each running look-up */
    bool stopped; /* app_lookup_stop() ran: look-ups clean up after themselves */
    struct lookup *done;
    struct missing *missing;
};

struct app_lookup *
app_lookup_start(const struct hp_config *cfg, struct store *store, struct link_server *ls,
                 const struct app_lookup_hooks *hooks, struct hp_err *err)
{
    struct app_lookup *al = xcalloc(1, sizeof(*al));

    al->cfg = cfg;
    al->store = store;
    al->ls = ls;
    al->hooks = *hooks;
    al->refs = 1;
    al->pool = pool_start("app look-ups", APP_LOOKUP_WORKERS, APP_LOOKUP_MAX);
    if (al->pool == NULL) {
        err_set(err, "cannot start the look-up threads");
        free(al);
        return NULL;
    }
    pthread_mutex_init(&al->mtx, NULL);
    return al;
}

void
app_lookup_forget_missing(struct app_lookup *al, const char *app_id)
{
    struct missing **mp, *m;

    pthread_mutex_lock(&al->mtx);
    for (mp = &al->missing; (m = *mp) != NULL;) {
        if (strcmp(m->app_id, app_id) == 0) {
            *mp = m->next;
            free(m);
        } else {
            mp = &m->next;
        }
    }
    pthread_mutex_unlock(&al->mtx);
}

/* Takes a finished look-up off the in-flight list. */
static void
lookup_unlink(struct app_lookup *al, struct lookup *lk)
{
    struct lookup **lp;

    for (lp = &al->inflight; *lp != NULL; lp = &(*lp)->next) {
        if (*lp == lk) {
            *lp = lk->next;
            return;
        }
    }
}

static void
app_lookup_free(struct app_lookup *al)
{
    pthread_mutex_destroy(&al->mtx);
    free(al);
}

/* Drops a reference; the last one frees <al>. Called with al->mtx held; returns with it
 * released. */
static void
release(struct app_lookup *al)
{
    bool last = --al->refs == 0;

    pthread_mutex_unlock(&al->mtx);
    if (last) {
        app_lookup_free(al);
    }
}

/* Runs the Nextcloud call (a pool job). The store write happens under al->mtx so that it
 * never follows app_lookup_stop() (after which the store is closed); a worker that finishes
 * after the stop frees its look-up and drops its reference instead. */
static void
lookup_worker(void *arg, bool cancelled)
{
    struct lookup *lk = arg;
    struct app_lookup *al = lk->al;
    char app_id[EXAPP_ID_MAX + 1];
    struct exapp app;
    struct hp_err err = {""};
    int result = -1, enabled;
    bool removed;

    memset(&app, 0, sizeof(app));
    if (!cancelled) {
        double t0 = now_mono();

        result = nextcloud_exapp_meta(al->cfg, lk->app_id, &app, &err);
        counters_nc_call(NC_CALL_EXAPP_META,
                         result == 1   ? NC_OUT_OK
                         : result == 0 ? NC_OUT_NOT_FOUND
                                       : NC_OUT_ERROR,
                         now_mono() - t0);
    }
    /* exapp-meta answers for disabled apps too: a removed one comes back only if Nextcloud
     * holds it enabled (AppAPI's push of the enable was lost). */
    if (result == 1 && lk->removed_at != 0 &&
        (enabled = nextcloud_exapp_enabled(al->cfg, &app, &err)) != 1) {
        exapp_free(&app);
        result = enabled;
    }
    if (result == 1 && al->hooks.upstream != NULL && al->hooks.upstream(al->hooks.ctx, &app) < 0) {
        exapp_free(&app);
        result = -1;
    }
    snprintf(app_id, sizeof(app_id), "%s", lk->app_id); /* <lk> is the thread's once done */
    removed = lk->removed_at != 0;
    pthread_mutex_lock(&al->mtx);
    if (al->stopped) {
        if (result == 1) {
            exapp_free(&app);
        }
        free(lk->waiters);
        free(lk);
        release(al);
        return;
    }
    if (result == 1) {
        if (store_exapp_removed_at(al->store, lk->app_id) != lk->removed_at) {
            result = 0; /* removed while we asked */
        } else if (store_exapp_put(al->store, &app, &err) < 0) {
            result = -1;
        }
        exapp_free(&app);
    }
    lk->result = result;
    if (result == -1) {
        snprintf(lk->error, sizeof(lk->error), "%s", err.msg);
    }
    lk->done_next = al->done;
    al->done = lk;
    link_server_wake(al->ls); /* valid until app_lookup_stop() */
    release(al);
    if (result == 1) {
        log_info("lookup: %s fetched from Nextcloud%s", app_id,
                 removed ? ", enabled there again since its removal" : "");
    } else if (result == 0 && removed) {
        log_info("lookup: %s is still disabled in Nextcloud: it stays removed", app_id);
    } else if (result == -1) {
        log_warnx("lookup: %s: %s", app_id, err.msg);
    }
}

static void
reply_lookup(struct app_lookup *al, uint64_t serial, int64_t id, const char *app_id, bool found,
             const char *why)
{
    struct msg m = {.type = MSG_LOOKUP_REPLY, .has_id = true, .id = id};
    struct msg_lookup_reply *r = &m.lookup_reply;

    snprintf(r->app_id, sizeof(r->app_id), "%s", app_id);
    r->exapp = found ? (struct exapp *)al->hooks.published(al->hooks.ctx, app_id) : NULL;
    r->found = r->exapp != NULL;
    r->error = (char *)why;
    link_server_reply(al->ls, serial, &m);
}

static bool
known_missing(struct app_lookup *al, const char *app_id)
{
    struct missing **mp, *m;
    double now = now_mono();
    bool found = false;

    pthread_mutex_lock(&al->mtx);
    for (mp = &al->missing; (m = *mp) != NULL;) {
        if (m->until <= now) {
            *mp = m->next;
            free(m);
            continue;
        }
        found |= strcmp(m->app_id, app_id) == 0;
        mp = &m->next;
    }
    pthread_mutex_unlock(&al->mtx);
    return found;
}

/* Queues the look-up <lk> on the pool, holding a reference to <al> until it is done; -1 when
 * the pool is full. */
static int
start_lookup(struct app_lookup *al, struct lookup *lk)
{
    pthread_mutex_lock(&al->mtx);
    al->refs++;
    pthread_mutex_unlock(&al->mtx);
    if (pool_submit(al->pool, lookup_worker, lk) == -1) {
        pthread_mutex_lock(&al->mtx);
        al->refs--;
        pthread_mutex_unlock(&al->mtx);
        return -1;
    }
    return 0;
}

void
app_lookup_on_request(struct app_lookup *al, struct link *l, const struct msg *m)
{
    const char *raw = m->lookup.app_id;
    char app_id[EXAPP_ID_MAX + 1];
    struct lookup *lk;
    struct hp_err err;

    if (exapp_id_normalise(raw, app_id, &err) == -1) {
        reply_lookup(al, l->serial, m->id, raw, false, err.msg);
        return;
    }
    if (al->hooks.published(al->hooks.ctx, app_id) != NULL) {
        reply_lookup(al, l->serial, m->id, app_id, true, NULL);
        return;
    }
    if (known_missing(al, app_id)) {
        reply_lookup(al, l->serial, m->id, app_id, false, NULL);
        return;
    }
    for (lk = al->inflight; lk != NULL && strcmp(lk->app_id, app_id) != 0; lk = lk->next) {
    }
    if (lk == NULL) {
        lk = xcalloc(1, sizeof(*lk));
        snprintf(lk->app_id, sizeof(lk->app_id), "%s", app_id);
        lk->al = al;
        lk->removed_at = store_exapp_removed_at(al->store, app_id);
        if (start_lookup(al, lk) == -1) {
            free(lk);
            link_server_request_error(al->ls, l->serial, m->id, "too many app look-ups waiting");
            return;
        }
        lk->next = al->inflight;
        al->inflight = lk;
    }
    link_server_waiter_add(&lk->waiters, &lk->nwaiters, l->serial, m->id);
}

void
app_lookup_finish(struct app_lookup *al)
{
    struct lookup *lk, *next, *done;
    struct missing *m;
    bool stored = false;
    size_t i;

    pthread_mutex_lock(&al->mtx);
    done = al->done;
    al->done = NULL;
    pthread_mutex_unlock(&al->mtx);
    for (lk = done; lk != NULL; lk = lk->done_next) {
        stored |= lk->result == 1;
    }
    if (stored) {
        al->hooks.stored(al->hooks.ctx);
    }
    for (lk = done; lk != NULL; lk = next) {
        next = lk->done_next;
        lookup_unlink(al, lk);
        if (lk->result == 0) {
            m = xcalloc(1, sizeof(*m));
            snprintf(m->app_id, sizeof(m->app_id), "%s", lk->app_id);
            m->until = now_mono() + NEGATIVE_TTL;
            pthread_mutex_lock(&al->mtx);
            m->next = al->missing;
            al->missing = m;
            pthread_mutex_unlock(&al->mtx);
        }
        for (i = 0; i < lk->nwaiters; i++) {
            reply_lookup(al, lk->waiters[i].serial, lk->waiters[i].id, lk->app_id, lk->result == 1,
                         lk->result == -1 ? lk->error : NULL);
        }
        free(lk->waiters);
        free(lk);
    }
}

void
app_lookup_stats(struct app_lookup *al, struct pool_stats *st)
{
    pool_stats(al->pool, st);
}

void
app_lookup_stop(struct app_lookup *al)
{
    struct lookup *lk;
    struct missing *m;

    if (al == NULL) {
        return;
    }
    pthread_mutex_lock(&al->mtx);
    al->stopped = true;
    /* Finished look-ups are ours to free; running ones free themselves (they see stopped). */
    while ((lk = al->done) != NULL) {
        al->done = lk->done_next;
        lookup_unlink(al, lk);
        free(lk->waiters);
        free(lk);
    }
    while ((m = al->missing) != NULL) {
        al->missing = m->next;
        free(m);
    }
    pthread_mutex_unlock(&al->mtx);
    /* Jobs still queued run cancelled and free themselves; the pool ends on its own. */
    pool_stop(al->pool);
    pthread_mutex_lock(&al->mtx);
    release(al);
}
