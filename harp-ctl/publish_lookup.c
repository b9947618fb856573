/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Look-ups of app ids a data plane does not know (publish.c design note 4): one worker per
 * app id however many data planes ask; a found app is stored, so published, before the
 * replies go out; "not found" is remembered for NEGATIVE_TTL; removed apps are never fetched. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"
#include "msg.h"
#include "nextcloud.h"
#include "publish_int.h"
#include "xmalloc.h"

#define NEGATIVE_TTL 15.0

void
publish_forget_missing(struct publish *pub, const char *app_id)
{
    struct missing **mp, *m;

    if (pub == NULL) {
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    for (mp = &pub->missing; (m = *mp) != NULL;) {
        if (strcmp(m->app_id, app_id) == 0) {
            *mp = m->next;
            free(m);
        } else {
            mp = &m->next;
        }
    }
    pthread_mutex_unlock(&pub->mtx);
}

/* Takes a finished look-up off the in-flight list. */
static void
lookup_unlink(struct publish *pub, struct lookup *lk)
{
    struct lookup **lp;

    for (lp = &pub->inflight; *lp != NULL; lp = &(*lp)->next) {
        if (*lp == lk) {
            *lp = lk->next;
            return;
        }
    }
}

/* Runs the Nextcloud call (a pool job). The store write happens under pub->mtx so that it
 * never follows publish_stop() (after which the store is closed); a worker that finishes after
 * the thread has ended frees its look-up and drops its reference instead. */
static void
lookup_worker(void *arg, bool cancelled)
{
    struct lookup *lk = arg;
    struct publish *pub = lk->pub;
    struct exapp app;
    struct hp_err err = {""};
    int result = -1;

    if (!cancelled) {
        result = nextcloud_exapp_meta(&pub->ctl->cfg, lk->app_id, &app, &err);
    }
    pthread_mutex_lock(&pub->mtx);
    if (pub->stopped) {
        if (result == 1) {
            exapp_free(&app);
        }
        free(lk->waiters);
        free(lk);
        pub_worker_release(pub);
        return;
    }
    if (result == 1 && pub->stop) {
        exapp_free(&app);
        result = -1;
        err_set(&err, "stopping");
    } else if (result == 1) {
        if (store_exapp_removed(pub->ctl->store, lk->app_id)) {
            result = 0; /* removed while we asked */
        } else if (store_exapp_put(pub->ctl->store, &app, &err) < 0) {
            result = -1;
        } else {
            pub->changed = true;
        }
        exapp_free(&app);
    }
    lk->result = result;
    if (result == -1) {
        snprintf(lk->error, sizeof(lk->error), "%s", err.msg);
    }
    lk->done_next = pub->done;
    pub->done = lk;
    pub->refs--;
    pthread_mutex_unlock(&pub->mtx);
    if (result == 1) {
        log_info("lookup: %s fetched from Nextcloud", lk->app_id);
    } else if (result == -1) {
        log_warnx("lookup: %s: %s", lk->app_id, err.msg);
    }
    pub_wake(pub);
}

static void
reply_lookup(struct publish *pub, uint64_t serial, json_int_t id, const char *app_id, bool found,
             const char *why)
{
    struct link *l;
    json_t *m, *app;

    if ((l = pub_link(pub, serial)) == NULL) {
        return;
    }
    m = msg_new(MSG_LOOKUP_REPLY);
    json_object_set_new(m, "id", json_integer(id));
    json_object_set_new(m, "app_id", json_string(app_id));
    app = found ? json_object_get(pub->table, app_id) : NULL;
    json_object_set_new(m, "found", json_boolean(app != NULL));
    if (app != NULL) {
        json_object_set(m, "exapp", app);
    }
    if (why != NULL) {
        json_object_set_new(m, "error", json_string(why));
    }
    pub_send(l, m);
}

static bool
known_missing(struct publish *pub, const char *app_id)
{
    struct missing **mp, *m;
    double now = pub_now_mono();
    bool found = false;

    pthread_mutex_lock(&pub->mtx);
    for (mp = &pub->missing; (m = *mp) != NULL;) {
        if (m->until <= now) {
            *mp = m->next;
            free(m);
            continue;
        }
        found |= strcmp(m->app_id, app_id) == 0;
        mp = &m->next;
    }
    pthread_mutex_unlock(&pub->mtx);
    return found;
}

void
lookup_on_request(struct publish *pub, struct link *l, json_t *msg)
{
    const char *raw = json_string_value(json_object_get(msg, "app_id"));
    json_int_t id = json_integer_value(json_object_get(msg, "id"));
    char app_id[EXAPP_ID_MAX + 1];
    struct lookup *lk;
    struct hp_err err;

    if (exapp_id_normalise(raw, app_id, &err) == -1) {
        reply_lookup(pub, l->serial, id, raw, false, err.msg);
        return;
    }
    if (json_object_get(pub->table, app_id) != NULL) {
        reply_lookup(pub, l->serial, id, app_id, true, NULL);
        return;
    }
    if (store_exapp_removed(pub->ctl->store, app_id) || known_missing(pub, app_id)) {
        reply_lookup(pub, l->serial, id, app_id, false, NULL);
        return;
    }
    for (lk = pub->inflight; lk != NULL && strcmp(lk->app_id, app_id) != 0; lk = lk->next) {
    }
    if (lk == NULL) {
        lk = xcalloc(1, sizeof(*lk));
        snprintf(lk->app_id, sizeof(lk->app_id), "%s", app_id);
        lk->pub = pub;
        if (pub_worker_start(pub, pub->app_pool, lookup_worker, lk) == -1) {
            free(lk);
            pub_request_error(pub, l->serial, id, "too many app look-ups waiting");
            return;
        }
        lk->next = pub->inflight;
        pub->inflight = lk;
    }
    pub_waiter_add(&lk->waiters, &lk->nwaiters, l->serial, id);
}

void
lookup_finish(struct publish *pub, struct lookup *done)
{
    struct lookup *lk, *next;
    struct missing *m;
    size_t i;

    for (lk = done; lk != NULL; lk = next) {
        next = lk->done_next;
        lookup_unlink(pub, lk);
        if (lk->result == 0) {
            m = xcalloc(1, sizeof(*m));
            snprintf(m->app_id, sizeof(m->app_id), "%s", lk->app_id);
            m->until = pub_now_mono() + NEGATIVE_TTL;
            pthread_mutex_lock(&pub->mtx);
            m->next = pub->missing;
            pub->missing = m;
            pthread_mutex_unlock(&pub->mtx);
        }
        for (i = 0; i < lk->nwaiters; i++) {
            reply_lookup(pub, lk->waiters[i].link_serial, lk->waiters[i].req_id, lk->app_id,
                         lk->result == 1, lk->result == -1 ? lk->error : NULL);
        }
        free(lk->waiters);
        free(lk);
    }
}

void
lookup_clear(struct publish *pub)
{
    struct lookup *lk;
    struct missing *m;

    /* Finished look-ups are ours to free; running ones free themselves (they see stopped). */
    while ((lk = pub->done) != NULL) {
        pub->done = lk->done_next;
        lookup_unlink(pub, lk);
        free(lk->waiters);
        free(lk);
    }
    while ((m = pub->missing) != NULL) {
        pub->missing = m->next;
        free(m);
    }
}
