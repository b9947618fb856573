/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Per-request timeouts from the table (timeouts.h). */
#include "config.h"

#include "timeouts.h"

void
timeouts_pick(const struct table_app *app, const struct route *route,
              const unsigned defaults_s[EXAPP_NTIMEOUTS], unsigned out_s[EXAPP_NTIMEOUTS])
{
    const uint32_t *rt = NULL;
    uint32_t ms;
    int k;

    if (app != NULL && route != NULL && route >= app->routes &&
        route < app->routes + app->meta.nroutes) {
        rt = app->meta.routes[route - app->routes].timeouts;
    }
    for (k = 0; k < EXAPP_NTIMEOUTS; k++) {
        ms = rt != NULL && rt[k] != 0 ? rt[k] : app != NULL ? app->meta.timeouts[k] : 0;
        out_s[k] = ms != 0 ? (unsigned)((ms + 999u) / 1000u) : defaults_s[k];
    }
}
