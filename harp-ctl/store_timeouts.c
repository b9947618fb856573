/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The exapp_timeouts table (schema 0009): operators' timeouts of apps and routes, read into
 * ExApps (store_exapp.c sets them). */
#include "config.h"

#include <string.h>

#include "log.h"
#include "store.h"

static void
timeout_row(sqlite3_stmt *s, struct exapp *app)
{
    const char *route = (const char *)sqlite3_column_text(s, 1);
    int kind = exapp_timeout_kind((const char *)sqlite3_column_text(s, 2));
    uint32_t ms = (uint32_t)sqlite3_column_int64(s, 3);
    size_t r;

    if (kind < 0) {
        return;
    }
    if (route[0] == '\0') {
        app->timeouts[kind] = ms;
        return;
    }
    /* a route AppAPI no longer registers keeps its row but applies to nothing */
    for (r = 0; r < app->nroutes; r++) {
        if (strcmp(app->routes[r].url, route) == 0) {
            app->routes[r].timeouts[kind] = ms;
        }
    }
}

int
store_timeouts_load(struct store *st, struct exapp *apps, size_t n, const char *only)
{
    return store_app_rows(st,
                          "SELECT app_id, route, kind, ms FROM exapp_timeouts "
                          "WHERE ?1 IS NULL OR app_id = ?1 ORDER BY app_id",
                          apps, n, only, timeout_row);
}
