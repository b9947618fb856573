/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The Docker engines an operator sees and data planes proxy to: the registered ones and the
 * local socket on port 24000, probed for reachability and API versions. */
#ifndef HARP_CTL_ENGINES_H
#define HARP_CTL_ENGINES_H

#include <jansson.h>

#include "ctl.h"

struct engines;

/* Starts the prober: from the first engines_changed() on, every 30 s and at once after each
 * engines_changed(), the list is probed and published to the data planes (ctl->pub). */
struct engines *engines_start(struct ctl *ctl);
void engines_stop(struct engines *en);
/* The registry changed: probe and publish now. Any thread; <en> may be NULL. */
void engines_changed(struct engines *en);

/* Each engine with a live probe: [{name, port, address, kind, reachable, version, api_version,
 * min_api_version, error?}]. With <only> set, just that name or port ("24001"); NULL when it
 * matches none. */
json_t *engines_report(struct ctl *ctl, const char *only);
/* True when <name> is an engine name an operator may use. */
bool engines_name_ok(const char *name);

#endif
