/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Worker threads for blocking calls (Nextcloud look-ups): a FIFO bounded by max_jobs
 * (waiting + running). Threads are detached; the pool is freed by the last one to end, so
 * pool_stop() never waits for a call in progress (up to the 25 s Nextcloud timeout). */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "pool.h"
#include "xmalloc.h"

struct job {
    pool_fn *fn;
    void *arg;
    struct job *next;
};

struct pool {
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    struct job *head, *tail;
    size_t queued, running, max_jobs, workers, alive;
    uint64_t done, refused;
    bool stop;
};

static void
pool_free(struct pool *p)
{
    pthread_mutex_destroy(&p->mtx);
    pthread_cond_destroy(&p->cond);
    free(p);
}

static void *
worker(void *arg)
{
    struct pool *p = arg;
    struct job *j;
    bool cancelled, last;

    pthread_mutex_lock(&p->mtx);
    for (;;) {
        while (p->head == NULL && !p->stop) {
            pthread_cond_wait(&p->cond, &p->mtx);
        }
        if ((j = p->head) == NULL) {
            break;
        }
        p->head = j->next;
        if (p->head == NULL) {
            p->tail = NULL;
        }
        p->queued--;
        p->running++;
        cancelled = p->stop;
        pthread_mutex_unlock(&p->mtx);
        j->fn(j->arg, cancelled);
        free(j);
        pthread_mutex_lock(&p->mtx);
        p->running--;
        p->done++;
    }
    last = --p->alive == 0;
    pthread_mutex_unlock(&p->mtx);
    if (last) {
        pool_free(p);
    }
    return NULL;
}

struct pool *
pool_start(const char *name, size_t workers, size_t max_jobs)
{
    struct pool *p = xcalloc(1, sizeof(*p));
    pthread_t t;
    size_t i;

    pthread_mutex_init(&p->mtx, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->max_jobs = max_jobs;
    pthread_mutex_lock(&p->mtx);
    for (i = 0; i < workers; i++) {
        if (pthread_create(&t, NULL, worker, p) != 0) {
            log_warnx("%s: started %zu of %zu worker threads", name, i, workers);
            break;
        }
        pthread_detach(t);
        p->alive++;
    }
    p->workers = p->alive;
    pthread_mutex_unlock(&p->mtx);
    if (p->workers == 0) {
        pool_free(p);
        return NULL;
    }
    return p;
}

int
pool_submit(struct pool *p, pool_fn *fn, void *arg)
{
    struct job *j;

    pthread_mutex_lock(&p->mtx);
    if (p->stop || p->queued + p->running >= p->max_jobs) {
        p->refused++;
        pthread_mutex_unlock(&p->mtx);
        return -1;
    }
    j = xcalloc(1, sizeof(*j));
    j->fn = fn;
    j->arg = arg;
    if (p->tail != NULL) {
        p->tail->next = j;
    } else {
        p->head = j;
    }
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mtx);
    return 0;
}

void
pool_stats(struct pool *p, struct pool_stats *out)
{
    pthread_mutex_lock(&p->mtx);
    *out = (struct pool_stats){.workers = p->workers,
                               .running = p->running,
                               .queued = p->queued,
                               .max_jobs = p->max_jobs,
                               .done = p->done,
                               .refused = p->refused};
    pthread_mutex_unlock(&p->mtx);
}

void
pool_stop(struct pool *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->mtx);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mtx);
}
