/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The engines list: registered engines (store) plus the local Docker socket on port 24000
 * when it exists and no registered engine takes that port. A prober thread resolves each one,
 * reads its API versions, and publishes [{port, address, tcp_port, api_min, api_max}] so data
 * planes reach the engine where it is and rewrite API versions into its range.
 */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "docker.h"
#include "engines.h"
#include "log.h"
#include "xmalloc.h"

#define PROBE_INTERVAL_S 30
#define PROBE_TIMEOUT_MS 3000

struct engines {
    struct ctl *ctl;
    pthread_t thr;
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    bool stop, kick;
};

bool
engines_name_ok(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > 63 || !isalnum((unsigned char)name[0])) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!isalnum((unsigned char)name[i]) && strchr("_.-", name[i]) == NULL) {
            return false;
        }
    }
    return true;
}

/* The engines to list: registered ones, and the implicit local one first when it applies. */
static size_t
collect(struct ctl *ctl, struct docker_engine **out)
{
    struct engine_rec *recs = NULL;
    struct docker_engine local;
    struct hp_err err;
    size_t n = 0, i, k = 0;

    if (store_engine_list(ctl->store, &recs, &n, &err) == -1) {
        log_warnx("engines: %s", err.msg);
        n = 0;
    }
    *out = xcalloc(n + 1, sizeof(**out));
    docker_engine_resolve(ctl, DOCKER_LOCAL_PORT, &local);
    if (strcmp(local.name, "local") == 0) {
        (*out)[k++] = local;
    }
    for (i = 0; i < n; i++) {
        docker_engine_resolve(ctl, recs[i].port, &(*out)[k++]);
    }
    free(recs);
    return k;
}

static void
publish_list(struct ctl *ctl)
{
    struct docker_engine *engs;
    struct docker_version v;
    struct msg_engine *list, *e;
    json_t *refused, *o;
    char why[256];
    size_t n, i, k = 0;

    n = collect(ctl, &engs);
    refused = store_engine_refusals(ctl->store);
    list = xcalloc(n + json_array_size(refused) + 1, sizeof(*list));
    for (i = 0; i < n; i++) {
        e = &list[k++];
        e->port = engs[i].port;
        if (engs[i].unix_path[0] != '\0') {
            snprintf(e->address, sizeof(e->address), "+%s", engs[i].unix_path);
        } else {
            snprintf(e->address, sizeof(e->address), "%s", engs[i].host);
            e->tcp_port = engs[i].tcp_port;
        }
        if (docker_probe(&engs[i], PROBE_TIMEOUT_MS, &v, why, sizeof(why)) == DOCKER_OK) {
            snprintf(e->api_min, sizeof(e->api_min), "%s", v.min_api);
            snprintf(e->api_max, sizeof(e->api_max), "%s", v.api);
        }
    }
    free(engs);
    json_array_foreach(refused, i, o)
    {
        list[k].port = (unsigned)json_integer_value(o);
        list[k++].refused = true;
    }
    json_decref(refused);
    publish_engines(ctl->pub, list, k);
}

static void *
prober(void *arg)
{
    struct engines *en = arg;
    struct timespec ts;

    pthread_mutex_lock(&en->mtx);
    /* The first probe waits for the first engines_changed(): the publisher exists by then. */
    while (!en->stop && !en->kick) {
        pthread_cond_wait(&en->cond, &en->mtx);
    }
    while (!en->stop) {
        en->kick = false;
        pthread_mutex_unlock(&en->mtx);
        publish_list(en->ctl);
        pthread_mutex_lock(&en->mtx);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += PROBE_INTERVAL_S;
        while (!en->stop && !en->kick) {
            if (pthread_cond_timedwait(&en->cond, &en->mtx, &ts) != 0) {
                break;
            }
        }
    }
    pthread_mutex_unlock(&en->mtx);
    return NULL;
}

struct engines *
engines_start(struct ctl *ctl)
{
    struct engines *en = xcalloc(1, sizeof(*en));

    en->ctl = ctl;
    pthread_mutex_init(&en->mtx, NULL);
    pthread_cond_init(&en->cond, NULL);
    if (pthread_create(&en->thr, NULL, prober, en) != 0) {
        log_warnx("engines: cannot start the prober thread");
        free(en);
        return NULL;
    }
    return en;
}

void
engines_changed(struct engines *en)
{
    if (en == NULL) {
        return;
    }
    pthread_mutex_lock(&en->mtx);
    en->kick = true;
    pthread_cond_signal(&en->cond);
    pthread_mutex_unlock(&en->mtx);
}

void
engines_stop(struct engines *en)
{
    if (en == NULL) {
        return;
    }
    pthread_mutex_lock(&en->mtx);
    en->stop = true;
    pthread_cond_signal(&en->cond);
    pthread_mutex_unlock(&en->mtx);
    pthread_join(en->thr, NULL);
    pthread_mutex_destroy(&en->mtx);
    pthread_cond_destroy(&en->cond);
    free(en);
}

json_t *
engines_report(struct ctl *ctl, const char *only)
{
    struct docker_engine *engs;
    struct docker_version v;
    json_t *list = json_array(), *o;
    char addr[400], why[256], port[16];
    size_t n, i;

    n = collect(ctl, &engs);
    for (i = 0; i < n; i++) {
        snprintf(port, sizeof(port), "%u", engs[i].port);
        if (only != NULL && strcmp(only, engs[i].name) != 0 && strcmp(only, port) != 0) {
            continue;
        }
        docker_engine_describe(&engs[i], addr, sizeof(addr));
        o = json_pack("{s:s,s:i,s:s,s:s}", "name", engs[i].name, "port", engs[i].port, "address",
                      addr, "kind",
                      engs[i].unix_path[0] != '\0' ? "socket"
                      : strcmp(engs[i].host, "127.0.0.1") == 0 && engs[i].tcp_port == engs[i].port
                          ? "tunnel"
                          : "tcp");
        if (docker_probe(&engs[i], PROBE_TIMEOUT_MS, &v, why, sizeof(why)) == DOCKER_OK) {
            json_object_set_new(o, "reachable", json_true());
            json_object_set_new(o, "version", json_string(v.version));
            json_object_set_new(o, "api_version", json_string(v.api));
            json_object_set_new(o, "min_api_version", json_string(v.min_api));
        } else {
            json_object_set_new(o, "reachable", json_false());
            json_object_set_new(o, "error", json_string(why));
        }
        json_array_append_new(list, o);
    }
    free(engs);
    if (only != NULL && json_array_size(list) == 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}
