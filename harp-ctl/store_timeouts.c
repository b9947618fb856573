/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The exapp_timeouts table (schema 0009): operators' timeouts of apps and routes, read into
 * ExApps (store_exapp.c sets them). */
#include "config.h"

#include <string.h>

#include "log.h"
#include "store.h"

int
store_timeouts_load(struct store *st, struct exapp *apps, size_t n, const char *only)
{
    sqlite3_stmt *s;
    size_t i = 0, r;
    int rc, kind;

    if (sqlite3_prepare_v2(st->db,
                           "SELECT app_id, route, kind, ms FROM exapp_timeouts "
                           "WHERE ?1 IS NULL OR app_id = ?1 ORDER BY app_id",
                           -1, &s, NULL) != SQLITE_OK) {
        return -1;
    }
    if (only != NULL) {
        sqlite3_bind_text(s, 1, only, -1, SQLITE_STATIC);
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        const char *route = (const char *)sqlite3_column_text(s, 1);
        uint32_t ms = (uint32_t)sqlite3_column_int64(s, 3);

        while (i < n && strcmp(apps[i].app_id, id) < 0) {
            i++;
        }
        kind = exapp_timeout_kind((const char *)sqlite3_column_text(s, 2));
        if (i == n || strcmp(apps[i].app_id, id) != 0 || kind < 0) {
            continue;
        }
        if (route[0] == '\0') {
            apps[i].timeouts[kind] = ms;
            continue;
        }
        /* a route AppAPI no longer registers keeps its row but applies to nothing */
        for (r = 0; r < apps[i].nroutes; r++) {
            if (strcmp(apps[i].routes[r].url, route) == 0) {
                apps[i].routes[r].timeouts[kind] = ms;
            }
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}
