/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* A fixed set of worker threads for blocking calls, with a bound on the jobs waiting or
 * running: beyond it a job is refused at once (and counted), never queued without limit. */
#ifndef HARP_CTL_POOL_H
#define HARP_CTL_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool;

/* Runs a job; <cancelled> when the pool stopped before the job began (it must then only
 * clean up). */
typedef void pool_fn(void *arg, bool cancelled);

struct pool_stats {
    size_t workers, running, queued, max_jobs;
    uint64_t done, refused;
};

/* Starts <workers> threads; NULL if none could start. */
struct pool *pool_start(const char *name, size_t workers, size_t max_jobs);
/* Queues <fn>(<arg>); -1 (counted as refused) when max_jobs are waiting or running. Any
 * thread. */
int pool_submit(struct pool *p, pool_fn *fn, void *arg);
void pool_stats(struct pool *p, struct pool_stats *out);
/* Lets the threads end: jobs still queued run with <cancelled>, running ones finish; the
 * last thread frees the pool. Returns at once; <p> is not to be used after. */
void pool_stop(struct pool *p);

#endif
