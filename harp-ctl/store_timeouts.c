/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The exapp_timeouts table (schema 0009): operators' timeouts of apps and routes. */
#include "config.h"

#include <string.h>

#include "audit.h"
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

/* The audit entry of a change: what was set, and the app as published after it. */
static int
audit_timeouts(struct store *st, const char *app_id, const char *route,
               const uint32_t ms[EXAPP_NTIMEOUTS], const bool change[EXAPP_NTIMEOUTS])
{
    json_t *set = json_object(), *effect;
    struct exapp app;
    struct hp_err err;
    int k, found;

    for (k = 0; k < EXAPP_NTIMEOUTS; k++) {
        if (change[k]) {
            json_object_set_new(set, exapp_timeout_name(k), json_integer(ms[k]));
        }
    }
    effect = json_pack("{s:s,s:s,s:o}", "app_id", app_id, "route", route, "set", set);
    memset(&app, 0, sizeof(app));
    if ((found = store_exapp_get_locked(st, app_id, &app, &err)) == -1) {
        json_decref(effect);
        return -1;
    }
    if (found == 1) {
        json_object_set_new(effect, "app", canon_app(&app));
        exapp_free(&app);
    }
    return audit_append(st->db, "exapp.timeouts", app_id, effect);
}

int
store_timeouts_set(struct store *st, const char *app_id, const char *route,
                   const uint32_t ms[EXAPP_NTIMEOUTS], const bool change[EXAPP_NTIMEOUTS],
                   struct hp_err *err)
{
    sqlite3_stmt *del = NULL, *ins = NULL;
    int rc = -1, k;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db,
                           "DELETE FROM exapp_timeouts WHERE app_id = ?1 AND route = ?2 "
                           "AND kind = ?3",
                           -1, &del, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db,
                           "INSERT INTO exapp_timeouts (app_id, route, kind, ms) "
                           "VALUES (?1, ?2, ?3, ?4)",
                           -1, &ins, NULL) != SQLITE_OK) {
        goto fail;
    }
    for (k = 0; k < EXAPP_NTIMEOUTS; k++) {
        if (!change[k]) {
            continue;
        }
        sqlite3_reset(del);
        sqlite3_bind_text(del, 1, app_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(del, 2, route, -1, SQLITE_STATIC);
        sqlite3_bind_text(del, 3, exapp_timeout_name(k), -1, SQLITE_STATIC);
        if (sqlite3_step(del) != SQLITE_DONE) {
            goto fail;
        }
        if (ms[k] == 0) {
            continue; /* back to the default */
        }
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, app_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, route, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, exapp_timeout_name(k), -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, ms[k]);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            goto fail;
        }
    }
    /* the data planes get the change with the next table version */
    if (sqlite3_exec(st->db, "UPDATE table_state SET version = version + 1 WHERE id = 1", NULL,
                     NULL, NULL) != SQLITE_OK ||
        audit_timeouts(st, app_id, route, ms, change) == -1 ||
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        goto fail;
    }
    rc = 0;
    goto out;
fail:
    err_set(err, "database: timeouts: %s", sqlite3_errmsg(st->db));
    log_warnx("store: timeouts: %s", sqlite3_errmsg(st->db));
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}
