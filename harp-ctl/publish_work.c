/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The publisher's look-up workers (pools of threads, bounded) and its answers to requests it
 * cannot serve: request_error for a malformed message or a full pool. Nothing here closes a
 * link. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "publish_int.h"

#define BAD_LOG_PER_S 5

int
pub_worker_start(struct publish *pub, struct pool *pool, pool_fn *fn, void *arg)
{
    pthread_mutex_lock(&pub->mtx);
    pub->refs++;
    pthread_mutex_unlock(&pub->mtx);
    if (pool == NULL || pool_submit(pool, fn, arg) == -1) {
        pthread_mutex_lock(&pub->mtx);
        pub->refs--;
        pthread_mutex_unlock(&pub->mtx);
        return -1;
    }
    return 0;
}

static json_t *
pool_json(struct pool *p)
{
    struct pool_stats st;

    pool_stats(p, &st);
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "workers", (json_int_t)st.workers, "running",
                     (json_int_t)st.running, "queued", (json_int_t)st.queued, "max",
                     (json_int_t)st.max_jobs, "done", (json_int_t)st.done, "refused",
                     (json_int_t)st.refused);
}

void
publish_stats(struct publish *pub, json_t *o)
{
    uint64_t bad;

    if (pub == NULL) {
        return;
    }
    json_object_set_new(o, "user_lookups", pool_json(pub->user_pool));
    json_object_set_new(o, "app_lookups", pool_json(pub->app_pool));
    pthread_mutex_lock(&pub->mtx);
    bad = pub->bad_messages;
    pthread_mutex_unlock(&pub->mtx);
    json_object_set_new(o, "dataplane_bad_messages", json_integer((json_int_t)bad));
}

void
pub_request_error(struct publish *pub, uint64_t serial, json_int_t id, const char *why)
{
    struct link *l = pub_link(pub, serial);
    json_t *m;

    if (l == NULL) {
        return;
    }
    m = msg_new(MSG_REQUEST_ERROR);
    json_object_set_new(m, "id", json_integer(id));
    json_object_set_new(m, "message", json_string(why));
    pub_send(l, m);
}

void
pub_bad_message(struct publish *pub, struct link *l, const json_t *msg, const char *why)
{
    const json_t *id = json_object_get(msg, "id");
    char more[64] = "";
    unsigned long held;

    pthread_mutex_lock(&pub->mtx);
    pub->bad_messages++;
    pthread_mutex_unlock(&pub->mtx);
    if (json_is_integer(id)) {
        pub_request_error(pub, l->serial, json_integer_value(id), why);
    }
    if (log_rate_ok(&pub->bad_log, BAD_LOG_PER_S, &held)) {
        if (held > 0) {
            snprintf(more, sizeof(more), " (%lu more not logged)", held);
        }
        log_warnx("publish: data plane %s sent a bad message (%.40s): %s; %s%s", l->dp_id,
                  json_string_value(json_object_get(msg, "type")) ?: "no type", why,
                  json_is_integer(id) ? "its request failed" : "ignored", more);
    }
}
