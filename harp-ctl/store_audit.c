/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The audit tables harp-ctl writes beside the log: its start entry, signed table versions,
 * data planes' acknowledgements. Every function takes the store's mutex. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "log.h"
#include "store.h"

int
store_audit_start(struct store *st, struct hp_err *err)
{
    struct exapp *apps;
    size_t n;
    int64_t seq;
    char head[CANON_HASH_HEX];
    int rc = -1;

    if (store_exapp_list(st, &apps, &n, err) == -1) {
        return -1;
    }
    pthread_mutex_lock(&st->mtx);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
        audit_head(st->db, &seq, head) == 0) {
        /* the table as it was when the log began (an older harp's database, or empty) */
        rc = seq > 0 ? 0
                     : audit_append(st->db, "audit.start", "",
                                    json_pack("{s:o}", "table", canon_table(apps, n)));
    }
    sqlite3_exec(st->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (rc == -1) {
        err_set(err, "database: audit log: %s", sqlite3_errmsg(st->db));
    }
    pthread_mutex_unlock(&st->mtx);
    store_exapp_list_free(apps, n);
    return rc;
}

int
store_audit_sign_version(struct store *st, struct evp_pkey_st *key, int64_t version,
                         const char *table_hash, int64_t *seq, char sig[CANON_SIG_HEX],
                         char head[CANON_HASH_HEX])
{
    sqlite3_stmt *s = NULL;
    json_t *j;
    int rc = -1;

    pthread_mutex_lock(&st->mtx);
    /* the last entry the table at <version> follows from */
    if (sqlite3_prepare_v2(st->db,
                           "SELECT seq, hash FROM audit_log WHERE version <= ?1 "
                           "ORDER BY seq DESC LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK) {
        goto out;
    }
    sqlite3_bind_int64(s, 1, version);
    if (sqlite3_step(s) != SQLITE_ROW) {
        goto out;
    }
    *seq = sqlite3_column_int64(s, 0);
    snprintf(head, CANON_HASH_HEX, "%s", (const char *)sqlite3_column_text(s, 1));
    sqlite3_finalize(s);
    s = NULL;
    j = audit_version_json(version, *seq, table_hash, head);
    rc = canon_sign(key, j, sig);
    json_decref(j);
    if (rc == -1 || sqlite3_prepare_v2(st->db,
                                       "INSERT OR IGNORE INTO audit_versions (version, seq, "
                                       "table_hash, chain_head, sig, at) "
                                       "VALUES (?1, ?2, ?3, ?4, ?5, unixepoch())",
                                       -1, &s, NULL) != SQLITE_OK) {
        rc = -1;
        goto out;
    }
    sqlite3_bind_int64(s, 1, version);
    sqlite3_bind_int64(s, 2, *seq);
    sqlite3_bind_text(s, 3, table_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, head, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, sig, -1, SQLITE_STATIC);
    rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
out:
    if (rc == -1) {
        log_warnx("store: cannot sign table version %lld: %s", (long long)version,
                  sqlite3_errmsg(st->db));
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

int
store_audit_ack(struct store *st, int64_t version, const char *dp_id, const char *dp_key,
                const char *table_hash, const char *sig)
{
    sqlite3_stmt *s;
    int rc = -1;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO audit_acks (version, dp_key, dp_id, table_hash, "
                           "sig, at) VALUES (?1, ?2, ?3, ?4, ?5, unixepoch())",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, version);
        sqlite3_bind_text(s, 2, dp_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, dp_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, table_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, sig, -1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}
