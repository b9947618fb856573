/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The timeouts of one request: an operator's per-route value, else per-app, else the data
 * plane's default (harp-ctl exapp set). Pure: no I/O, no globals. */
#ifndef HARP_DP_TIMEOUTS_H
#define HARP_DP_TIMEOUTS_H

#include "route.h"

/* Fills <out_s> with whole seconds (milliseconds rounded up) for a request decided on <app>
 * and <route> (either may be NULL: the defaults), from <defaults_s>. */
void timeouts_pick(const struct table_app *app, const struct route *route,
                   const unsigned defaults_s[EXAPP_NTIMEOUTS], unsigned out_s[EXAPP_NTIMEOUTS]);

#endif
