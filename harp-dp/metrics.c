/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The data plane's counters: a hash table of ExApps (bounded: METRICS_MAX_APPS, the rest
 * count as "-"), each with its requests by access level and status class, its duration
 * histogram and its connect errors; a list of those changed since the last metrics message. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "xmalloc.h"

#define NSLOTS 1024 /* hash chains; apps beyond this share them */

struct app_counters {
    struct msg_metrics_app m;
    struct app_counters *next;  /* in its hash chain */
    struct app_counters *dnext; /* on the changed list */
    bool changed;
};

struct dp_counters dp_counters;

static struct app_counters *slots[NSLOTS];
static struct app_counters *changed;
static struct app_counters none = {.m.app_id = METRICS_APP_NONE};
static size_t napps;

static unsigned
hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h % NSLOTS;
}

static struct app_counters *
find(const char *app_id)
{
    struct app_counters *a;
    unsigned h;

    if (app_id == NULL || app_id[0] == '\0' || strlen(app_id) > EXAPP_ID_MAX) {
        return &none;
    }
    h = hash(app_id);
    for (a = slots[h]; a != NULL; a = a->next) {
        if (strcmp(a->m.app_id, app_id) == 0) {
            return a;
        }
    }
    if (napps >= METRICS_MAX_APPS) {
        return &none;
    }
    a = xcalloc(1, sizeof(*a));
    strcpy(a->m.app_id, app_id);
    a->next = slots[h];
    slots[h] = a;
    napps++;
    return a;
}

static void
mark(struct app_counters *a)
{
    if (!a->changed) {
        a->changed = true;
        a->dnext = changed;
        changed = a;
    }
}

void
metrics_request(const char *app_id, int level, unsigned status, double seconds)
{
    struct app_counters *a = find(app_id);
    unsigned cls = status >= 100 && status < 600 ? status / 100 - 1 : METRICS_NCLASSES - 1;
    size_t b;

    if (level < 0 || level >= METRICS_NLEVELS - 1) {
        level = METRICS_NLEVELS - 1;
    }
    a->m.requests[level][cls]++;
    for (b = 0; b < METRICS_NBUCKETS - 1 && seconds > metrics_bucket_le[b]; b++) {
    }
    a->m.buckets[b]++;
    a->m.duration_sum += seconds > 0 ? seconds : 0;
    mark(a);
}

void
metrics_connect_error(const char *app_id)
{
    struct app_counters *a = find(app_id);

    a->m.connect_errors++;
    mark(a);
}

void
metrics_resend_all(void)
{
    struct app_counters *a;
    size_t i;

    for (i = 0; i < NSLOTS; i++) {
        for (a = slots[i]; a != NULL; a = a->next) {
            mark(a);
        }
    }
    mark(&none);
}

void
metrics_fill(struct msg *m)
{
    struct msg_metrics *mm = &m->metrics;
    struct app_counters *a;

    memset(m, 0, sizeof(*m));
    m->type = MSG_METRICS;
    mm->client_conns = dp_counters.client_conns;
    mm->upstream_conns = dp_counters.upstream_conns;
    mm->websocket_conns = dp_counters.websocket_conns;
    mm->bytes_in = (int64_t)dp_counters.bytes_in;
    mm->bytes_out = (int64_t)dp_counters.bytes_out;
    mm->session_hits = dp_counters.session_hits;
    mm->session_misses = dp_counters.session_misses;
    memcpy(mm->refusals, dp_counters.refusals, sizeof(mm->refusals));
    mm->apps = xcalloc(MSG_METRICS_MAX_APPS, sizeof(*mm->apps));
    while (changed != NULL && mm->napps < MSG_METRICS_MAX_APPS) {
        a = changed;
        changed = a->dnext;
        a->changed = false;
        mm->apps[mm->napps++] = a->m;
    }
}
