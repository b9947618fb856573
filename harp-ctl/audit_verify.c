/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Verifying the audit chain.
 *
 * Design notes:
 * 1. One pass over the entries in seq order: each must follow the last (no gap), name its
 *    hash as prev, hash to its stored hash, and hold its effect in canonical JSON. The first
 *    fault ends the pass and is named.
 * 2. The table is replayed alongside (audit_apply()); after entry s, every table version
 *    signed at s must carry harp-ctl's signature, name entry s's hash as chain head, and hash
 *    to the replayed table. A chain rewritten with fresh hashes fails here.
 * 3. At the end the replayed table must be the ExApps table the database holds, at the
 *    version the last entry names: a route changed without an entry fails here.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_verify.h"

void
audit_apply(json_t *table, const char *op, const json_t *effect)
{
    const json_t *app;

    /* exapp.timeouts carries the app as published after the change, when it is registered */
    if ((strcmp(op, "exapp.put") == 0 || strcmp(op, "exapp.timeouts") == 0) &&
        json_is_object(app = json_object_get(effect, "app")) &&
        json_is_string(json_object_get(app, "app_id"))) {
        json_object_set(table, json_string_value(json_object_get(app, "app_id")), (json_t *)app);
    } else if (strcmp(op, "exapp.delete") == 0) {
        json_object_del(table, json_string_value(json_object_get(effect, "app_id")));
    } else if (strcmp(op, "audit.start") == 0 &&
               json_is_object(app = json_object_get(effect, "table"))) {
        json_object_clear(table);
        json_object_update(table, (json_t *)app);
    }
}

static const char *
col(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    return t != NULL ? (const char *)t : "";
}

/* The checkpoint, when there is one: the table it holds (new) and where the log goes on. */
static json_t *
checkpoint(sqlite3 *db, const char *pub, int64_t *seq, char *hash, int64_t *version,
           struct audit_report *r)
{
    sqlite3_stmt *s;
    json_t *tbl = NULL, *j;

    *seq = 0;
    memset(hash, '0', CANON_HASH_HEX - 1);
    hash[CANON_HASH_HEX - 1] = '\0';
    *version = 0;
    if (sqlite3_prepare_v2(db, "SELECT seq, hash, version, tbl, at, sig FROM audit_checkpoint", -1,
                           &s, NULL) != SQLITE_OK) {
        snprintf(r->error, sizeof(r->error), "database: %s", sqlite3_errmsg(db));
        return NULL;
    }
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_finalize(s);
        return json_object();
    }
    *seq = sqlite3_column_int64(s, 0);
    snprintf(hash, CANON_HASH_HEX, "%s", col(s, 1));
    *version = sqlite3_column_int64(s, 2);
    tbl = json_loads(col(s, 3), 0, NULL);
    j = json_is_object(tbl)
            ? audit_checkpoint_json(*seq, hash, *version, tbl, sqlite3_column_int64(s, 4))
            : NULL;
    if (j == NULL || (pub != NULL && !canon_verify(pub, j, col(s, 5)))) {
        snprintf(r->error, sizeof(r->error),
                 "the checkpoint at entry %lld is not signed by this harp-ctl's key",
                 (long long)*seq);
        json_decref(tbl);
        tbl = NULL;
    }
    json_decref(j);
    sqlite3_finalize(s);
    r->checkpoint = *seq;
    return tbl;
}

/* Checks the table versions signed at entry <seq> (hash <hash>) against <table>. */
static int
check_versions(sqlite3_stmt *vs, const char *pub, int64_t seq, int64_t version, const char *hash,
               const json_t *table, struct audit_report *r)
{
    char th[CANON_HASH_HEX];
    int64_t v;
    json_t *j;
    bool ok;

    canon_hash_json(table, th);
    sqlite3_reset(vs);
    sqlite3_bind_int64(vs, 1, seq);
    while (sqlite3_step(vs) == SQLITE_ROW) {
        v = sqlite3_column_int64(vs, 0);
        j = audit_version_json(v, seq, col(vs, 1), col(vs, 2));
        ok = pub == NULL || canon_verify(pub, j, col(vs, 3));
        json_decref(j);
        r->versions++;
        if (!ok) {
            snprintf(r->error, sizeof(r->error),
                     "table version %lld: the signature does not match (entry %lld)", (long long)v,
                     (long long)seq);
        } else if (strcmp(col(vs, 2), hash) != 0) {
            snprintf(r->error, sizeof(r->error),
                     "table version %lld: signed over a chain head that is not entry %lld's hash",
                     (long long)v, (long long)seq);
        } else if (strcmp(col(vs, 1), th) != 0 || v != version) {
            snprintf(r->error, sizeof(r->error),
                     "table version %lld: the table replayed up to entry %lld does not hash to "
                     "the published one",
                     (long long)v, (long long)seq);
        } else {
            continue;
        }
        return -1;
    }
    return 0;
}

/* One entry: its place in the chain and its hash. */
static int
check_entry(sqlite3_stmt *s, int64_t seq, const char *prev, json_t **effect, struct audit_report *r)
{
    char hash[CANON_HASH_HEX], *canon;
    json_t *e;
    const char *text = col(s, 6);

    if (sqlite3_column_int64(s, 0) != seq + 1) {
        snprintf(r->error, sizeof(r->error),
                 "entry %lld is missing (the log goes from %lld to %lld)", (long long)(seq + 1),
                 (long long)seq, (long long)sqlite3_column_int64(s, 0));
        return -1;
    }
    seq++;
    *effect = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    canon = *effect != NULL ? canon_dump(*effect) : NULL;
    if (canon == NULL || strcmp(canon, text) != 0) {
        free(canon);
        snprintf(r->error, sizeof(r->error), "entry %lld: its effect is not canonical JSON",
                 (long long)seq);
        return -1;
    }
    free(canon);
    if (strcmp(col(s, 7), prev) != 0) {
        snprintf(r->error, sizeof(r->error),
                 "entry %lld: its previous hash is not entry %lld's hash (an entry was removed, "
                 "moved or edited)",
                 (long long)seq, (long long)(seq - 1));
        return -1;
    }
    e = audit_entry_json(seq, sqlite3_column_int64(s, 1), col(s, 2), col(s, 3), col(s, 4),
                         sqlite3_column_int64(s, 5), *effect, prev);
    canon_hash_json(e, hash);
    json_decref(e);
    if (strcmp(hash, col(s, 8)) != 0) {
        snprintf(r->error, sizeof(r->error),
                 "entry %lld: its hash does not match its contents (the entry was edited)",
                 (long long)seq);
        return -1;
    }
    return 0;
}

/* Walks the chain up to entry <upto>: the replayed table (new), or NULL with r->error. */
static json_t *
walk(sqlite3 *db, const char *pub, int64_t upto, int64_t *version, struct audit_report *r)
{
    sqlite3_stmt *s = NULL, *vs = NULL;
    char prev[CANON_HASH_HEX];
    int64_t seq, v;
    json_t *table, *effect = NULL;
    int step;

    table = checkpoint(db, pub, &seq, prev, version, r);
    if (table == NULL) {
        return NULL;
    }
    r->first = seq + 1;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, at, actor, op, subject, version, effect, prev_hash, hash "
                           "FROM audit_log WHERE seq <= ?1 ORDER BY seq",
                           -1, &s, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT version, table_hash, chain_head, sig FROM audit_versions "
                           "WHERE seq = ?1 ORDER BY version",
                           -1, &vs, NULL) != SQLITE_OK) {
        snprintf(r->error, sizeof(r->error), "database: %s", sqlite3_errmsg(db));
        goto fail;
    }
    sqlite3_bind_int64(s, 1, upto);
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_int64(s, 0) <= r->checkpoint) {
            continue; /* kept beside a checkpoint: covered by it */
        }
        if (check_entry(s, seq, prev, &effect, r) == -1) {
            goto fail;
        }
        seq++;
        v = sqlite3_column_int64(s, 5);
        if (v < *version) {
            snprintf(r->error, sizeof(r->error),
                     "entry %lld: the table version goes back from %lld to %lld", (long long)seq,
                     (long long)*version, (long long)v);
            goto fail;
        }
        *version = v;
        audit_apply(table, col(s, 3), effect);
        json_decref(effect);
        effect = NULL;
        snprintf(prev, sizeof(prev), "%s", col(s, 8));
        if (check_versions(vs, pub, seq, v, prev, table, r) == -1) {
            goto fail;
        }
    }
    if (step != SQLITE_DONE) {
        snprintf(r->error, sizeof(r->error), "database: %s", sqlite3_errmsg(db));
        goto fail;
    }
    r->last = seq;
    snprintf(r->head, sizeof(r->head), "%s", prev);
    sqlite3_finalize(s);
    sqlite3_finalize(vs);
    return table;
fail:
    json_decref(effect);
    json_decref(table);
    sqlite3_finalize(s);
    sqlite3_finalize(vs);
    return NULL;
}

json_t *
audit_replay(sqlite3 *db, const char *pub, int64_t seq, int64_t *version, struct audit_report *r)
{
    memset(r, 0, sizeof(*r));
    return walk(db, pub, seq, version, r);
}

/* A signed version naming an entry past the end of the log. */
static int
check_dangling(sqlite3 *db, struct audit_report *r)
{
    sqlite3_stmt *s;
    int rc = 0;

    if (sqlite3_prepare_v2(db, "SELECT version, seq FROM audit_versions WHERE seq > ?1 LIMIT 1", -1,
                           &s, NULL) != SQLITE_OK) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, r->last);
    if (sqlite3_step(s) == SQLITE_ROW) {
        snprintf(r->error, sizeof(r->error),
                 "table version %lld was signed at entry %lld, past the end of the log (%lld): "
                 "entries were removed",
                 (long long)sqlite3_column_int64(s, 0), (long long)sqlite3_column_int64(s, 1),
                 (long long)r->last);
        rc = -1;
    }
    sqlite3_finalize(s);
    return rc;
}

int
audit_verify(sqlite3 *db, const char *pub, const struct exapp *apps, size_t n,
             int64_t table_version, struct audit_report *r)
{
    json_t *table, *live, *v;
    int64_t version;
    const char *k;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    table = walk(db, pub, INT64_MAX, &version, r);
    if (table == NULL || check_dangling(db, r) == -1) {
        json_decref(table);
        return -1;
    }
    live = canon_table(apps, n);
    if (version != table_version) {
        snprintf(r->error, sizeof(r->error),
                 "table version %lld: the ExApps table is at version %lld but the log ends at "
                 "version %lld (a change without an entry)",
                 (long long)table_version, (long long)table_version, (long long)version);
    } else if (!json_equal(table, live)) {
        snprintf(r->error, sizeof(r->error), "table version %lld: ", (long long)version);
        json_object_foreach(live, k, v)
        {
            if (!json_equal(v, json_object_get(table, k))) {
                break;
            }
        }
        if (k == NULL) {
            json_object_foreach(table, k, v)
            {
                if (json_object_get(live, k) == NULL) {
                    break;
                }
            }
        }
        snprintf(r->error + strlen(r->error), sizeof(r->error) - strlen(r->error),
                 "ExApp %s in the ExApps table differs from the log's (a change without an "
                 "entry)",
                 k != NULL ? k : "?");
    } else {
        rc = 0;
    }
    json_decref(live);
    json_decref(table);
    return rc;
}
