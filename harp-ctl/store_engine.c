/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The engines table. Every function takes the store's mutex. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "store.h"
#include "xmalloc.h"

int
store_engine_add(struct store *st, const struct engine_rec *e, bool *conflict, struct hp_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = -1, step;

    *conflict = false;
    pthread_mutex_lock(&st->mtx);
    sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO engines (port, name, address, created_at) "
                           "VALUES (?1, ?2, ?3, unixepoch())",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int(s, 1, (int)e->port);
        sqlite3_bind_text(s, 2, e->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, e->address, -1, SQLITE_STATIC);
        step = sqlite3_step(s);
        if (step == SQLITE_DONE) {
            sqlite3_exec(st->db,
                         "DELETE FROM engine_refusals WHERE port IN (SELECT port FROM engines)",
                         NULL, NULL, NULL);
            rc = audit_append(st->db, "engine.add", e->name,
                              json_pack("{s:s,s:i,s:s}", "name", e->name, "port", (int)e->port,
                                        "address", e->address));
        } else if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
            *conflict = true;
            err_set(err, "port %u is already taken by another engine", e->port);
        } else if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_UNIQUE) {
            *conflict = true;
            err_set(err, "an engine named \"%s\" already exists", e->name);
        }
    }
    sqlite3_exec(st->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (rc == -1 && !*conflict) {
        err_set(err, "database: write engine: %s", sqlite3_errmsg(st->db));
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

static void
row(sqlite3_stmt *s, struct engine_rec *e)
{
    memset(e, 0, sizeof(*e));
    e->port = (unsigned)sqlite3_column_int(s, 0);
    snprintf(e->name, sizeof(e->name), "%s", (const char *)sqlite3_column_text(s, 1));
    snprintf(e->address, sizeof(e->address), "%s", (const char *)sqlite3_column_text(s, 2));
    e->created_at = sqlite3_column_int64(s, 3);
}

int
store_engine_get(struct store *st, const char *name, unsigned port, struct engine_rec *e)
{
    sqlite3_stmt *s;
    int found = 0;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db,
                           name != NULL ? "SELECT port, name, address, created_at FROM engines "
                                          "WHERE name = ?1"
                                        : "SELECT port, name, address, created_at FROM engines "
                                          "WHERE port = ?2",
                           -1, &s, NULL) == SQLITE_OK) {
        if (name != NULL) {
            sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_int(s, 2, (int)port);
        }
        if (sqlite3_step(s) == SQLITE_ROW) {
            row(s, e);
            found = 1;
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mtx);
    return found;
}

int
store_engine_delete(struct store *st, const char *name, struct hp_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    pthread_mutex_lock(&st->mtx);
    /* The engine goes and its port is refused to tunnels, in one statement each inside one
     * transaction. */
    sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO engine_refusals (port, since) "
                           "SELECT port, unixepoch() FROM engines WHERE name = ?1",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_DONE) {
            rc = 0;
        }
        sqlite3_finalize(s);
        s = NULL;
    }
    if (rc == 0 && sqlite3_prepare_v2(st->db, "DELETE FROM engines WHERE name = ?1", -1, &s,
                                      NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? (sqlite3_changes(st->db) > 0 ? 1 : 0) : -1;
        if (rc == 1 &&
            audit_append(st->db, "engine.delete", name, json_pack("{s:s}", "name", name)) == -1) {
            rc = -1;
        }
    } else {
        rc = -1;
    }
    sqlite3_exec(st->db, rc == -1 ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    if (rc == -1) {
        err_set(err, "database: delete engine: %s", sqlite3_errmsg(st->db));
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

int
store_engine_list(struct store *st, struct engine_rec **list, size_t *n, struct hp_err *err)
{
    sqlite3_stmt *s;
    size_t cap = 0;
    int rc = -1;

    *list = NULL;
    *n = 0;
    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT port, name, address, created_at FROM engines ORDER BY port", -1,
                           &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 8;
                *list = xrealloc(*list, cap * sizeof(**list));
            }
            row(s, &(*list)[(*n)++]);
        }
        sqlite3_finalize(s);
        rc = 0;
    } else {
        err_set(err, "database: list engines: %s", sqlite3_errmsg(st->db));
    }
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

json_t *
store_engine_refusals(struct store *st)
{
    json_t *a = json_array();
    sqlite3_stmt *s;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db, "SELECT port FROM engine_refusals ORDER BY port", -1, &s,
                           NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            json_array_append_new(a, json_integer(sqlite3_column_int(s, 0)));
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mtx);
    return a;
}
