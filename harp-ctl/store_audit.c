/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The audit tables harp-ctl writes beside the log: its start entry, signed table versions,
 * data planes' acknowledgements, the checkpoint pruning leaves. Every function takes the store's
 * mutex. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit_verify.h"
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

/* The last entry made before <before>, 0 when none. */
static int64_t
prune_point(sqlite3 *db, int64_t before)
{
    sqlite3_stmt *s;
    int64_t seq = 0;

    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) FROM audit_log WHERE at < ?1", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, before);
        if (sqlite3_step(s) == SQLITE_ROW) {
            seq = sqlite3_column_int64(s, 0);
        }
        sqlite3_finalize(s);
    }
    return seq;
}

/* Writes the checkpoint at entry <seq> (<hash>) with <tbl> and drops what it covers. */
static int
write_checkpoint(sqlite3 *db, struct evp_pkey_st *key, int64_t seq, const char *hash,
                 int64_t version, const json_t *tbl)
{
    char sig[CANON_SIG_HEX], *text;
    int64_t at = (int64_t)time(NULL);
    json_t *j = audit_checkpoint_json(seq, hash, version, tbl, at);
    sqlite3_stmt *s;
    int rc = canon_sign(key, j, sig);

    json_decref(j);
    if (rc == -1 || sqlite3_prepare_v2(db,
                                       "INSERT OR REPLACE INTO audit_checkpoint (id, seq, hash, "
                                       "version, tbl, at, sig) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                                       -1, &s, NULL) != SQLITE_OK) {
        return -1;
    }
    text = canon_dump(tbl);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_text(s, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, version);
    sqlite3_bind_text(s, 4, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, at);
    sqlite3_bind_text(s, 6, sig, -1, SQLITE_STATIC);
    rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(s);
    free(text);
    if (rc == 0) {
        char *sql = sqlite3_mprintf(
            "DELETE FROM audit_log WHERE seq <= %lld; DELETE FROM audit_versions WHERE seq < %lld; "
            "DELETE FROM audit_acks WHERE version NOT IN (SELECT version FROM audit_versions);",
            (long long)seq, (long long)seq);

        rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
        sqlite3_free(sql);
    }
    return rc;
}

int64_t
store_audit_prune(struct store *st, struct evp_pkey_st *key, int64_t before, struct hp_err *err)
{
    char pub[CANON_KEY_HEX];
    struct audit_report r;
    int64_t seq, version, n = -1;
    json_t *tbl = NULL;

    if (canon_key_pub(key, pub) == -1) {
        err_set(err, "audit: no public key");
        return -1;
    }
    pthread_mutex_lock(&st->mtx);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        err_set(err, "database: %s", sqlite3_errmsg(st->db));
        goto out;
    }
    seq = prune_point(st->db, before);
    if (seq == 0) {
        n = 0;
        goto out;
    }
    tbl = audit_replay(st->db, pub, seq, &version, &r);
    if (tbl == NULL) {
        err_set(err, "audit: not pruned, the chain does not verify: %s", r.error);
        goto out;
    }
    if (write_checkpoint(st->db, key, seq, r.head, version, tbl) == -1) {
        err_set(err, "database: audit checkpoint: %s", sqlite3_errmsg(st->db));
        goto out;
    }
    n = r.last - r.first + 1;
out:
    sqlite3_exec(st->db, n >= 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->mtx);
    json_decref(tbl);
    return n;
}
