/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The counters behind the metrics. Each data plane's entry keeps its latest totals and one
 * record per app it ever reported (apps are sent only when they change), indexed by app id. */
#include "config.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "now.h"
#include "xmalloc.h"

struct dp_entry {
    char dp_id[MSG_DP_ID_MAX + 1];
    long long pid;
    bool up;
    double gone_at;       /* monotonic, when !up */
    struct msg_metrics m; /* m.apps: every app reported, m.napps of them */
    size_t cap;
    json_t *index; /* app id -> position in m.apps */
};

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static struct dp_entry *dps[COUNTERS_MAX_DPS];
static size_t ndps;
static uint64_t nc_out[NC_NCALLS][NC_NOUTCOMES], nc_buckets[NC_NCALLS][METRICS_NBUCKETS];
static double nc_sum[NC_NCALLS];
static uint64_t failures, bans;

static void
entry_reset(struct dp_entry *e)
{
    free(e->m.apps);
    json_decref(e->index);
    memset(&e->m, 0, sizeof(e->m));
    e->cap = 0;
    e->index = json_object();
}

static void
entry_free(struct dp_entry *e)
{
    free(e->m.apps);
    json_decref(e->index);
    free(e);
}

/* The entry of <dp_id>, made when <make> (dropping the one gone longest when full). */
static struct dp_entry *
find(const char *dp_id, bool make)
{
    size_t i, victim = COUNTERS_MAX_DPS;
    struct dp_entry *e;

    for (i = 0; i < ndps; i++) {
        if (strcmp(dps[i]->dp_id, dp_id) == 0) {
            return dps[i];
        }
    }
    if (!make) {
        return NULL;
    }
    if (ndps == COUNTERS_MAX_DPS) {
        for (i = 0; i < ndps; i++) {
            if (!dps[i]->up &&
                (victim == COUNTERS_MAX_DPS || dps[i]->gone_at < dps[victim]->gone_at)) {
                victim = i;
            }
        }
        if (victim == COUNTERS_MAX_DPS) {
            return NULL; /* every one is connected: the link server's own bound comes first */
        }
        entry_free(dps[victim]);
        dps[victim] = dps[--ndps];
    }
    e = xcalloc(1, sizeof(*e));
    snprintf(e->dp_id, sizeof(e->dp_id), "%s", dp_id);
    e->index = json_object();
    dps[ndps++] = e;
    return e;
}

void
counters_dp_hello(const char *dp_id, long long pid)
{
    struct dp_entry *e;

    pthread_mutex_lock(&mtx);
    if ((e = find(dp_id, true)) != NULL) {
        if (e->pid != pid) {
            entry_reset(e);
        }
        e->pid = pid;
        e->up = true;
    }
    pthread_mutex_unlock(&mtx);
}

void
counters_dp_gone(const char *dp_id)
{
    struct dp_entry *e;

    pthread_mutex_lock(&mtx);
    if ((e = find(dp_id, false)) != NULL) {
        e->up = false;
        e->gone_at = now_mono();
        e->m.client_conns = e->m.upstream_conns = e->m.websocket_conns = 0;
    }
    pthread_mutex_unlock(&mtx);
}

void
counters_dp_update(const char *dp_id, struct msg_metrics *m)
{
    struct dp_entry *e;
    struct msg_metrics_app *apps = m->apps;
    size_t napps = m->napps, i, k;
    json_t *at;

    pthread_mutex_lock(&mtx);
    if ((e = find(dp_id, false)) != NULL) {
        struct msg_metrics_app *keep = e->m.apps;
        size_t nkeep = e->m.napps;

        e->m = *m;
        e->m.apps = keep;
        e->m.napps = nkeep;
        for (i = 0; i < napps; i++) {
            if ((at = json_object_get(e->index, apps[i].app_id)) != NULL) {
                k = (size_t)json_integer_value(at);
            } else {
                if (e->m.napps == e->cap) {
                    e->cap = e->cap == 0 ? 16 : e->cap * 2;
                    e->m.apps = xrealloc(e->m.apps, e->cap * sizeof(*e->m.apps));
                }
                k = e->m.napps++;
                json_object_set_new(e->index, apps[i].app_id, json_integer((json_int_t)k));
            }
            e->m.apps[k] = apps[i];
        }
    }
    pthread_mutex_unlock(&mtx);
    free(apps);
    m->apps = NULL;
    m->napps = 0;
}

void
counters_nc_call(enum nc_call call, enum nc_outcome outcome, double seconds)
{
    size_t b;

    for (b = 0; b < METRICS_NBUCKETS - 1 && seconds > metrics_bucket_le[b]; b++) {
    }
    pthread_mutex_lock(&mtx);
    nc_out[call][outcome]++;
    nc_buckets[call][b]++;
    nc_sum[call] += seconds > 0 ? seconds : 0;
    pthread_mutex_unlock(&mtx);
}

void
counters_failure(void)
{
    pthread_mutex_lock(&mtx);
    failures++;
    pthread_mutex_unlock(&mtx);
}

void
counters_ban(void)
{
    pthread_mutex_lock(&mtx);
    bans++;
    pthread_mutex_unlock(&mtx);
}

void
counters_visit(struct counters_visit *v)
{
    size_t i;
    int c;

    pthread_mutex_lock(&mtx);
    v->failures = failures;
    v->bans = bans;
    for (i = 0; i < ndps; i++) {
        v->dp(v->ctx, dps[i]->dp_id, dps[i]->up, &dps[i]->m);
    }
    for (c = 0; c < NC_NCALLS; c++) {
        v->nc(v->ctx, (enum nc_call)c, nc_out[c], nc_buckets[c], nc_sum[c]);
    }
    pthread_mutex_unlock(&mtx);
}

void
counters_clear(void)
{
    size_t i;

    pthread_mutex_lock(&mtx);
    for (i = 0; i < ndps; i++) {
        entry_free(dps[i]);
    }
    ndps = 0;
    pthread_mutex_unlock(&mtx);
}
