/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Operators' timeouts of ExApps and their routes (api_timeouts.c). */
#ifndef HARP_CTL_API_TIMEOUTS_H
#define HARP_CTL_API_TIMEOUTS_H

#include "api.h"
#include "exapp.h"

/* PUT /api/v1/timeouts/{id}: {"timeouts": {"idle": "30m", ...}[, "route": URL]}. */
void api_timeouts_put(struct api_req *req, struct api_resp *resp);
/* {"app": {kind: {ms, source}}, "routes": [{url, kind: {ms, source}}]}: the value each request
 * gets and where it comes from ("default", "app", "route"). */
json_t *api_timeouts_effective(const struct ctl *ctl, const struct exapp *app);

#endif
