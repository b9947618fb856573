/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* This data plane's copy of the control plane's session answers, for what is left of their
 * HP_SESSION_LIFETIME: a warm session needs no round trip. */
#ifndef HARP_DP_SESSIONS_H
#define HARP_DP_SESSIONS_H

#include <libwebsockets.h>

#include "http1.h"
#include "route.h"

/* Fills <u> and returns true when <cookie> has a live entry. */
bool sessions_get(struct span cookie, struct user *u);
void sessions_put(struct span cookie, const struct user *u, lws_usec_t ttl_us);
void sessions_clear(void);

#endif
