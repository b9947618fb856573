/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* What the metrics count in harp-ctl: the counters each data plane sends (the latest
 * message of each, merged by app), and harp-ctl's own (Nextcloud calls, failures, bans).
 * Process-wide, any thread (one mutex); api_metrics.c renders them. */
#ifndef HARP_CTL_COUNTERS_H
#define HARP_CTL_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"

/* Data planes remembered at most (connected or not); beyond, the one gone longest is dropped. */
#define COUNTERS_MAX_DPS 256

enum nc_call { NC_CALL_USER_INFO, NC_CALL_EXAPP_META, NC_NCALLS };
enum nc_outcome { NC_OUT_OK, NC_OUT_ANONYMOUS, NC_OUT_NOT_FOUND, NC_OUT_ERROR, NC_NOUTCOMES };

/* Data plane <dp_id> (process <pid>) said hello: a new process starts its counters afresh. */
void counters_dp_hello(const char *dp_id, long long pid);
/* Its link closed: it stays listed as down. */
void counters_dp_gone(const char *dp_id);
/* Its metrics message (the apps are taken out of <m>). */
void counters_dp_update(const char *dp_id, struct msg_metrics *m);
/* A call to Nextcloud ended with <outcome> after <seconds>. */
void counters_nc_call(enum nc_call call, enum nc_outcome outcome, double seconds);
/* A failure a data plane reported (towards a ban); a ban that it caused. */
void counters_failure(void);
void counters_ban(void);

/* Visits everything under the lock: <dp> once per data plane (its latest message, the apps
 * merged), then the Nextcloud histograms and the counters of harp-ctl. */
struct counters_visit {
    void *ctx;
    void (*dp)(void *ctx, const char *dp_id, bool up, const struct msg_metrics *m);
    void (*nc)(void *ctx, enum nc_call call, const uint64_t outcomes[NC_NOUTCOMES],
               const uint64_t buckets[METRICS_NBUCKETS], double sum);
    uint64_t failures, bans; /* set before the callbacks run */
};
void counters_visit(struct counters_visit *v);
/* Forgets everything (at stop). */
void counters_clear(void);

#endif
