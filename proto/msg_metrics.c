/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The metrics message a data plane sends every second: decoder and encoder. Pure. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"
#include "xmalloc.h"

const double metrics_bucket_le[METRICS_NBUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60};
const char *const metrics_level_names[METRICS_NLEVELS] = {"public", "user", "admin", "none"};
const char *const metrics_class_names[METRICS_NCLASSES] = {"1xx", "2xx", "3xx",
                                                           "4xx", "5xx", "dropped"};

/* A counter never goes past this (2^53: exact in every JSON reader). */
#define COUNT_MAX ((int64_t)1 << 53)

/* Exactly <n> counters of the array <key> into <out>. */
static int
get_counts(const json_t *o, const char *what, const char *key, size_t n, int64_t *out,
           struct hp_err *err)
{
    const json_t *a = json_object_get(o, key), *v;
    size_t i;

    if (!json_is_array(a) || json_array_size(a) != n) {
        err_set(err, "%s: field \"%s\" must be a list of %zu counters", what, key, n);
        return -1;
    }
    json_array_foreach(a, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > COUNT_MAX) {
            err_set(err, "%s: %s[%zu] is not a counter", what, key, i);
            return -1;
        }
        out[i] = json_integer_value(v);
    }
    return 0;
}

static int
app_decode(const json_t *v, const char *what, struct msg_metrics_app *a, struct hp_err *err)
{
    const json_t *sum = json_object_get(v, "duration_sum");
    char id[EXAPP_ID_MAX + 1];
    struct hp_err e2;

    if (!json_is_object(v)) {
        err_set(err, "%s is not an object", what);
        return -1;
    }
    if (msg_get_str(v, what, "app_id", true, EXAPP_ID_MAX, a->app_id, err) == -1) {
        return -1;
    }
    if (strcmp(a->app_id, METRICS_APP_NONE) != 0 &&
        (exapp_id_normalise(a->app_id, id, &e2) == -1 || strcmp(id, a->app_id) != 0)) {
        err_set(err, "%s: \"app_id\" is not an app id", what);
        return -1;
    }
    if (get_counts(v, what, "requests", METRICS_NLEVELS * METRICS_NCLASSES, &a->requests[0][0],
                   err) == -1 ||
        get_counts(v, what, "duration_buckets", METRICS_NBUCKETS, a->buckets, err) == -1 ||
        msg_get_int(v, what, "connect_errors", true, 0, COUNT_MAX, &a->connect_errors, err) == -1) {
        return -1;
    }
    if (!json_is_number(sum) || json_number_value(sum) < 0 || json_number_value(sum) > 1e15) {
        err_set(err, "%s: \"duration_sum\" must be a number of seconds", what);
        return -1;
    }
    a->duration_sum = json_number_value(sum);
    return 0;
}

int
msg_metrics_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_metrics *mm = &m->metrics;
    const json_t *refusals = json_object_get(o, "refusals"), *apps, *v;
    const char *name;
    char what[48];
    size_t i;
    int r;

    if (msg_get_int(o, "metrics", "client_conns", true, 0, COUNT_MAX, &mm->client_conns, err) ==
            -1 ||
        msg_get_int(o, "metrics", "upstream_conns", true, 0, COUNT_MAX, &mm->upstream_conns, err) ==
            -1 ||
        msg_get_int(o, "metrics", "websocket_conns", true, 0, COUNT_MAX, &mm->websocket_conns,
                    err) == -1 ||
        msg_get_int(o, "metrics", "bytes_in", true, 0, COUNT_MAX, &mm->bytes_in, err) == -1 ||
        msg_get_int(o, "metrics", "bytes_out", true, 0, COUNT_MAX, &mm->bytes_out, err) == -1 ||
        msg_get_int(o, "metrics", "session_hits", true, 0, COUNT_MAX, &mm->session_hits, err) ==
            -1 ||
        msg_get_int(o, "metrics", "session_misses", true, 0, COUNT_MAX, &mm->session_misses, err) ==
            -1) {
        return -1;
    }
    json_object_foreach((json_t *)refusals, name, v)
    {
        for (r = REFUSAL_NONE + 1; r < REFUSAL_MAX; r++) {
            if (strcmp(name, refusal_name((enum refusal_reason)r)) == 0) {
                break;
            }
        }
        if (r == REFUSAL_MAX) {
            err_set(err, "metrics: refusals: not a refusal reason");
            return -1;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > COUNT_MAX) {
            err_set(err, "metrics: refusals: \"%s\" is not a counter", name);
            return -1;
        }
        mm->refusals[r] = json_integer_value(v);
    }
    if ((apps = msg_get_array(o, "metrics", "apps", MSG_METRICS_MAX_APPS, err)) == NULL) {
        return -1;
    }
    mm->apps = xcalloc(json_array_size(apps) + 1, sizeof(*mm->apps));
    json_array_foreach(apps, i, v)
    {
        snprintf(what, sizeof(what), "metrics: apps[%zu]", i);
        if (app_decode(v, what, &mm->apps[i], err) == -1) {
            return -1;
        }
        mm->napps++;
    }
    return 0;
}

static json_t *
counts(const int64_t *v, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < n; i++) {
        json_array_append_new(a, json_integer(v[i]));
    }
    return a;
}

void
msg_metrics_encode(const struct msg *m, json_t *o)
{
    const struct msg_metrics *mm = &m->metrics;
    json_t *refusals = json_object(), *apps = json_array();
    size_t i;
    int r;

    json_object_set_new(o, "client_conns", json_integer(mm->client_conns));
    json_object_set_new(o, "upstream_conns", json_integer(mm->upstream_conns));
    json_object_set_new(o, "websocket_conns", json_integer(mm->websocket_conns));
    json_object_set_new(o, "bytes_in", json_integer(mm->bytes_in));
    json_object_set_new(o, "bytes_out", json_integer(mm->bytes_out));
    json_object_set_new(o, "session_hits", json_integer(mm->session_hits));
    json_object_set_new(o, "session_misses", json_integer(mm->session_misses));
    for (r = REFUSAL_NONE + 1; r < REFUSAL_MAX; r++) {
        if (mm->refusals[r] != 0) {
            json_object_set_new(refusals, refusal_name((enum refusal_reason)r),
                                json_integer(mm->refusals[r]));
        }
    }
    json_object_set_new(o, "refusals", refusals);
    for (i = 0; i < mm->napps; i++) {
        const struct msg_metrics_app *a = &mm->apps[i];

        json_array_append_new(
            apps, json_pack("{s:s,s:o,s:I,s:o,s:f}", "app_id", a->app_id, "requests",
                            counts(&a->requests[0][0], METRICS_NLEVELS * METRICS_NCLASSES),
                            "connect_errors", (json_int_t)a->connect_errors, "duration_buckets",
                            counts(a->buckets, METRICS_NBUCKETS), "duration_sum", a->duration_sum));
    }
    json_object_set_new(o, "apps", apps);
}
