/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The bans table. Every function takes the store's mutex. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "store.h"

int
store_ban_put(struct store *st, const char *ip, int failures, const char *reason,
              int64_t expires_at, struct hp_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    pthread_mutex_lock(&st->mtx);
    sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO bans (ip, failures, reason, created_at, expires_at) "
                           "VALUES (?1, ?2, ?3, unixepoch(), ?4) ON CONFLICT (ip) DO UPDATE SET "
                           "failures = excluded.failures, reason = excluded.reason, "
                           "created_at = excluded.created_at, expires_at = excluded.expires_at",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, ip, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, failures);
        sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, expires_at);
        if (sqlite3_step(s) == SQLITE_DONE &&
            audit_append(st->db, "ban.put", ip,
                         json_pack("{s:s,s:i,s:s,s:I}", "ip", ip, "failures", failures, "reason",
                                   reason, "expires_at", (json_int_t)expires_at)) == 0) {
            rc = 0;
        }
    }
    sqlite3_exec(st->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (rc == -1) {
        err_set(err, "database: write ban: %s", sqlite3_errmsg(st->db));
        log_warnx("store: write ban: %s", sqlite3_errmsg(st->db));
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

int
store_ban_delete(struct store *st, const char *ip, struct hp_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    pthread_mutex_lock(&st->mtx);
    sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(st->db, "DELETE FROM bans WHERE ip = ?1", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, ip, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_DONE) {
            rc = sqlite3_changes(st->db) > 0 ? 1 : 0;
        }
    }
    if (rc == 1 && audit_append(st->db, "ban.delete", ip, json_pack("{s:s}", "ip", ip)) == -1) {
        rc = -1;
    }
    sqlite3_exec(st->db, rc == -1 ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    if (rc == -1) {
        err_set(err, "database: delete ban: %s", sqlite3_errmsg(st->db));
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

json_t *
store_ban_list(struct store *st, int64_t now)
{
    json_t *a = json_array();
    sqlite3_stmt *s;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT ip, failures, reason, created_at, expires_at FROM bans "
                           "WHERE expires_at > ?1 ORDER BY ip",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, now);
        while (sqlite3_step(s) == SQLITE_ROW) {
            json_array_append_new(
                a, json_pack("{s:s,s:i,s:s,s:I,s:I}", "ip", sqlite3_column_text(s, 0), "failures",
                             sqlite3_column_int(s, 1), "reason", sqlite3_column_text(s, 2),
                             "created_at", (json_int_t)sqlite3_column_int64(s, 3), "expires_at",
                             (json_int_t)sqlite3_column_int64(s, 4)));
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mtx);
    return a;
}

int
store_ban_prune(struct store *st, int64_t now)
{
    sqlite3_stmt *s;
    int n = 0;

    pthread_mutex_lock(&st->mtx);
    sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(st->db, "DELETE FROM bans WHERE expires_at <= ?1", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(s, 1, now);
        if (sqlite3_step(s) == SQLITE_DONE) {
            n = sqlite3_changes(st->db);
        }
        sqlite3_finalize(s);
    }
    if (n > 0 &&
        audit_append(st->db, "ban.expire", "",
                     json_pack("{s:I,s:i}", "before", (json_int_t)now, "count", n)) == -1) {
        n = -1;
    }
    sqlite3_exec(st->db, n >= 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    n = n < 0 ? 0 : n;
    pthread_mutex_unlock(&st->mtx);
    return n;
}
