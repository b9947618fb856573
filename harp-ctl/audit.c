/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The audit chain's writer side.
 *
 * Design notes:
 * 1. An entry is appended by the store function making the change, after the change and
 *    before its COMMIT: the change and its entry are durable together or not at all.
 * 2. Entry seq n + 1 names entry n's hash as prev; hash = SHA-256 of the canonical JSON of
 *    audit_entry_json() (proto/canon.h), so an edit, a deletion or a swap breaks the chain
 *    at the first entry touched. Signed table versions pin the chain head (audit_versions).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "xmalloc.h"

static __thread const char *thread_actor;

void
audit_set_actor(const char *actor)
{
    thread_actor = actor;
}

const char *
audit_actor(void)
{
    return thread_actor != NULL ? thread_actor : "harp-ctl";
}

json_t *
audit_entry_json(int64_t seq, int64_t at, const char *actor, const char *op, const char *subject,
                 int64_t version, const json_t *effect, const char *prev)
{
    return json_pack("{s:I,s:I,s:s,s:s,s:s,s:I,s:O,s:s}", "seq", (json_int_t)seq, "at",
                     (json_int_t)at, "actor", actor, "op", op, "subject", subject, "version",
                     (json_int_t)version, "effect", effect, "prev", prev);
}

int
audit_head(sqlite3 *db, int64_t *seq, char hash[CANON_HASH_HEX])
{
    static const char *const sql[] = {
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        "SELECT seq, hash FROM audit_checkpoint WHERE id = 1",
    };
    sqlite3_stmt *s;
    size_t i;
    int step;

    for (i = 0; i < 2; i++) {
        if (sqlite3_prepare_v2(db, sql[i], -1, &s, NULL) != SQLITE_OK) {
            return -1;
        }
        step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            *seq = sqlite3_column_int64(s, 0);
            snprintf(hash, CANON_HASH_HEX, "%s", (const char *)sqlite3_column_text(s, 1));
        }
        sqlite3_finalize(s);
        if (step == SQLITE_ROW) {
            return 0;
        }
        if (step != SQLITE_DONE) {
            return -1;
        }
    }
    *seq = 0;
    memset(hash, '0', CANON_HASH_HEX - 1);
    hash[CANON_HASH_HEX - 1] = '\0';
    return 0;
}

static int64_t
table_version(sqlite3 *db)
{
    sqlite3_stmt *s;
    int64_t v = -1;

    if (sqlite3_prepare_v2(db, "SELECT version FROM table_state WHERE id = 1", -1, &s, NULL) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return v;
}

int
audit_append(sqlite3 *db, const char *op, const char *subject, json_t *effect)
{
    char prev[CANON_HASH_HEX], hash[CANON_HASH_HEX], *text;
    int64_t seq, version = table_version(db), at = (int64_t)time(NULL);
    const char *actor = audit_actor();
    sqlite3_stmt *s;
    json_t *e;
    int rc = -1;

#ifdef HARP_BENCH_NO_AUDIT
    /* bench/audit.sh's baseline build only: the same work without the log */
    json_decref(effect);
    return 0;
#endif
    if (effect == NULL || version < 0 || audit_head(db, &seq, prev) == -1) {
        json_decref(effect);
        return -1;
    }
    seq++;
    e = audit_entry_json(seq, at, actor, op, subject, version, effect, prev);
    canon_hash_json(e, hash);
    json_decref(e);
    text = canon_dump(effect);
    json_decref(effect);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO audit_log (seq, at, actor, op, subject, version, effect, "
                           "prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, seq);
        sqlite3_bind_int64(s, 2, at);
        sqlite3_bind_text(s, 3, actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, op, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, subject, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 6, version);
        sqlite3_bind_text(s, 7, text, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 8, prev, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 9, hash, -1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(s);
    free(text);
    return rc;
}

json_t *
audit_version_json(int64_t version, int64_t seq, const char *table_hash, const char *chain_head)
{
    return json_pack("{s:s,s:I,s:I,s:s,s:s}", "type", "harp.table_version", "version",
                     (json_int_t)version, "seq", (json_int_t)seq, "table_hash", table_hash,
                     "chain_head", chain_head);
}

json_t *
audit_checkpoint_json(int64_t seq, const char *hash, int64_t version, const json_t *tbl, int64_t at)
{
    return json_pack("{s:s,s:I,s:s,s:I,s:O,s:I}", "type", "harp.checkpoint", "seq", (json_int_t)seq,
                     "hash", hash, "version", (json_int_t)version, "table", tbl, "at",
                     (json_int_t)at);
}

static struct evp_pkey_st *
key_read(const char *path, struct hp_err *err)
{
    FILE *f = fopen(path, "re");
    EVP_PKEY *k;

    if (f == NULL) {
        err_set(err, "audit key %s: %s", path, strerror(errno));
        return NULL;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        err_set(err, "audit key %s: not an Ed25519 private key in PEM", path);
        return NULL;
    }
    return k;
}

static struct evp_pkey_st *
key_make(const char *path, struct hp_err *err)
{
    char *tmp = xasprintf("%s.tmp", path);
    EVP_PKEY *k = canon_key_new();
    FILE *f = NULL;
    int fd, ok = 0;

    fd = k != NULL ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (fd != -1 && fchmod(fd, 0600) == 0 && (f = fdopen(fd, "w")) != NULL) {
        fd = -1;
        ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1 && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    }
    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    if (fd != -1) {
        close(fd);
    }
    if (!ok || rename(tmp, path) != 0) {
        err_set(err, "audit key %s: cannot write: %s", path,
                k == NULL ? "no Ed25519 in OpenSSL" : strerror(errno));
        unlink(tmp);
        EVP_PKEY_free(k);
        k = NULL;
    }
    free(tmp);
    return k;
}

struct evp_pkey_st *
audit_key_load(const char *state_dir, bool create, struct hp_err *err)
{
    char *path = xasprintf("%s/audit_key.pem", state_dir);
    EVP_PKEY *k;

    if (access(path, F_OK) != 0 && errno == ENOENT && create) {
        k = key_make(path, err);
    } else {
        k = key_read(path, err);
    }
    free(path);
    return k;
}
