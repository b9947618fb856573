/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * A counting semaphore in front of every outbound HTTP call (docker.c, nextcloud.c, k8s.c):
 * the API's connection threads, the engine prober and the publisher's look-up workers all
 * take a slot for each transfer, so at most HP_OUTBOUND_MAX transfers (and the sockets and
 * resolver threads curl uses for them) exist at once whatever the load. A caller that finds
 * no slot waits on a monotonic clock up to its bound and is then refused: the API answers
 * 503 with a message, background work logs it.
 */
#include "config.h"

#include <pthread.h>
#include <time.h>

#include "log.h"
#include "outbound.h"

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned max_calls = OUTBOUND_DEFAULT_MAX, running, waiting;
static uint64_t done, refused;
static struct log_rate refused_log;

static void
cond_init(void)
{
    pthread_condattr_t a;

    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&freed, &a);
    pthread_condattr_destroy(&a);
}

void
outbound_init(unsigned max)
{
    pthread_once(&once, cond_init);
    pthread_mutex_lock(&mtx);
    max_calls = max > 0 ? max : 1;
    pthread_cond_broadcast(&freed);
    pthread_mutex_unlock(&mtx);
}

bool
outbound_acquire(long wait_ms, const char *what)
{
    struct timespec until;
    unsigned long held = 0;
    bool ok = true;
    int rc = 0;

    pthread_once(&once, cond_init);
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (wait_ms > 0) {
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&mtx);
    waiting++;
    while (running >= max_calls && rc == 0 && wait_ms > 0) {
        rc = pthread_cond_timedwait(&freed, &mtx, &until);
    }
    waiting--;
    if (running >= max_calls) {
        ok = false;
        refused++;
        if (log_rate_ok(&refused_log, 1, &held)) {
            log_warnx("outbound: %s refused: all %u outbound calls (HP_OUTBOUND_MAX) still busy "
                      "after %ld ms (%lu more refused before)",
                      what, max_calls, wait_ms, held);
        }
    } else {
        running++;
    }
    pthread_mutex_unlock(&mtx);
    return ok;
}

void
outbound_release(void)
{
    pthread_mutex_lock(&mtx);
    running--;
    done++;
    pthread_cond_signal(&freed);
    pthread_mutex_unlock(&mtx);
}

int
outbound_perform(CURL *c, long wait_ms, const char *what, CURLcode *cc)
{
    if (!outbound_acquire(wait_ms, what)) {
        return -1;
    }
    *cc = curl_easy_perform(c);
    outbound_release();
    return 0;
}

unsigned
outbound_max(void)
{
    unsigned m;

    pthread_mutex_lock(&mtx);
    m = max_calls;
    pthread_mutex_unlock(&mtx);
    return m;
}

void
outbound_stats(struct outbound_stats *out)
{
    pthread_mutex_lock(&mtx);
    *out = (struct outbound_stats){
        .max = max_calls, .running = running, .waiting = waiting, .done = done, .refused = refused};
    pthread_mutex_unlock(&mtx);
}
