/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The data plane's counters (Prometheus metrics, rendered by harp-ctl): totals since start,
 * per ExApp and for the whole data plane, sent to the control plane every second as a metrics
 * message (ctl_link.c). Loop thread only. */
#ifndef HARP_DP_METRICS_H
#define HARP_DP_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "refusal.h"

/* The counters kept outside the per-app table; conn.c and request.c add to them. */
struct dp_counters {
    int64_t client_conns, upstream_conns, websocket_conns; /* open now */
    uint64_t bytes_in, bytes_out;                          /* from and to clients */
    int64_t session_hits, session_misses;
    int64_t refusals[REFUSAL_MAX];
};
extern struct dp_counters dp_counters;

/* A request ended: of <app_id> (NULL or "": no known ExApp; lower-case), whose route has
 * <level> (-1: none), with <status> (0: no answer, the connection closed) after <seconds>. */
void metrics_request(const char *app_id, int level, unsigned status, double seconds);
/* A connection to <app_id>'s upstream could not be made. */
void metrics_connect_error(const char *app_id);
/* Every app is sent again with the next message (a new link). */
void metrics_resend_all(void);
/* Fills <m> (type metrics) with the counters and up to MSG_METRICS_MAX_APPS of the apps
 * changed since the last call; free m->metrics.apps. */
void metrics_fill(struct msg *m);

/* Apps with their own counters at most; requests of others count as METRICS_APP_NONE. */
#define METRICS_MAX_APPS 4096

#endif
