/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Proofs of a table version.
 *
 * Design notes:
 * 1. A proof is one canonical JSON document (proto/canon.h) and a newline:
 *    {format, key, checkpoint|null, entries: [entry...], version: {version, seq, table_hash,
 *    chain_head, sig}, acks: [{dp_id, dp_key, table_hash, sig}]}; an entry is
 *    audit_entry_json() with its "hash".
 * 2. The checker accepts only the canonical bytes, so that no byte of the file is outside
 *    what the hashes and signatures cover: any other spelling of the same values is refused.
 * 3. Every acknowledgement must verify; a bad one fails the proof rather than being skipped.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "audit_proof.h"
#include "audit_verify.h"
#include "xmalloc.h"

#define PROOF_FORMAT "harp-audit-proof-1"
/* The largest proof written or read: entries since the last checkpoint (`audit prune` makes
 * one) and a table, far above what 10,000 ExApps and a year of changes take. */
#define PROOF_MAX (256u * 1024 * 1024)

static const char *
col(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    return t != NULL ? (const char *)t : "";
}

/* The rows of <sql> (one int64 parameter) as a JSON array via <row>. */
static json_t *
rows(sqlite3 *db, const char *sql, int64_t p, json_t *(*row)(sqlite3_stmt *s))
{
    sqlite3_stmt *s;
    json_t *a = json_array();

    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        json_decref(a);
        return NULL;
    }
    sqlite3_bind_int64(s, 1, p);
    while (sqlite3_step(s) == SQLITE_ROW) {
        json_array_append_new(a, row(s));
    }
    sqlite3_finalize(s);
    return a;
}

static json_t *
entry_row(sqlite3_stmt *s)
{
    json_t *effect = json_loads(col(s, 6), 0, NULL);
    json_t *e = audit_entry_json(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), col(s, 2),
                                 col(s, 3), col(s, 4), sqlite3_column_int64(s, 5),
                                 effect != NULL ? effect : json_null(), col(s, 7));

    json_decref(effect);
    json_object_set_new(e, "hash", json_string(col(s, 8)));
    return e;
}

static json_t *
ack_row(sqlite3_stmt *s)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "dp_id", col(s, 0), "dp_key", col(s, 1), "table_hash",
                     col(s, 2), "sig", col(s, 3));
}

static json_t *
version_row(sqlite3_stmt *s)
{
    return json_pack("{s:I,s:I,s:s,s:s,s:s}", "version", (json_int_t)sqlite3_column_int64(s, 0),
                     "seq", (json_int_t)sqlite3_column_int64(s, 1), "table_hash", col(s, 2),
                     "chain_head", col(s, 3), "sig", col(s, 4));
}

static json_t *
checkpoint_row(sqlite3_stmt *s)
{
    json_t *tbl = json_loads(col(s, 3), 0, NULL);

    return json_pack("{s:I,s:s,s:I,s:o,s:I,s:s}", "seq", (json_int_t)sqlite3_column_int64(s, 0),
                     "hash", col(s, 1), "version", (json_int_t)sqlite3_column_int64(s, 2), "table",
                     tbl != NULL ? tbl : json_object(), "at",
                     (json_int_t)sqlite3_column_int64(s, 4), "sig", col(s, 5));
}

int
audit_proof_write(struct store *st, const char *pub, const char *version, const char *out)
{
    json_t *vs, *v, *cp, *proof;
    int64_t want = -1, seq;
    char *text, *end;
    FILE *f;
    int rc = 1;

    if (out == NULL) {
        fprintf(stderr, "harp-ctl: audit proof needs --out FILE\n");
        return 2;
    }
    if (version != NULL && ((want = strtoll(version, &end, 10)) < 0 || *end != '\0')) {
        fprintf(stderr, "harp-ctl: --version: a table version (an integer) expected\n");
        return 2;
    }
    vs = rows(st->db,
              "SELECT version, seq, table_hash, chain_head, sig FROM audit_versions "
              "WHERE ?1 < 0 OR version = ?1 ORDER BY version DESC LIMIT 1",
              want, version_row);
    if (vs == NULL || json_array_size(vs) == 0) {
        fprintf(stderr, "harp-ctl: no signed table version %s\n", version ? version : "yet");
        json_decref(vs);
        return 1;
    }
    v = json_incref(json_array_get(vs, 0));
    json_decref(vs);
    want = json_integer_value(json_object_get(v, "version"));
    seq = json_integer_value(json_object_get(v, "seq"));
    cp = rows(st->db, "SELECT seq, hash, version, tbl, at, sig FROM audit_checkpoint WHERE ?1", 1,
              checkpoint_row);
    proof = json_pack(
        "{s:s,s:s,s:O,s:o,s:o,s:o}", "format", PROOF_FORMAT, "key", pub, "checkpoint",
        cp != NULL && json_array_size(cp) > 0 ? json_array_get(cp, 0) : json_null(), "entries",
        rows(st->db,
             "SELECT seq, at, actor, op, subject, version, effect, prev_hash, hash FROM audit_log "
             "WHERE seq <= ?1 AND seq > coalesce((SELECT seq FROM audit_checkpoint), 0) "
             "ORDER BY seq",
             seq, entry_row),
        "version", v, "acks",
        rows(st->db,
             "SELECT dp_id, dp_key, table_hash, sig FROM audit_acks WHERE version = ?1 "
             "ORDER BY dp_key",
             want, ack_row));
    json_decref(cp);
    text = proof != NULL ? canon_dump(proof) : NULL;
    if (text != NULL && strlen(text) + 1 > PROOF_MAX) {
        fprintf(stderr,
                "harp-ctl: the proof would be %zu bytes, more than %u: `harp-ctl audit prune` "
                "makes a checkpoint it starts from\n",
                strlen(text) + 1, PROOF_MAX);
        free(text);
        json_decref(proof);
        return 1;
    }
    f = text != NULL ? fopen(out, "we") : NULL;
    if (f != NULL && fprintf(f, "%s\n", text) > 0 && fclose(f) == 0 && (f = NULL) == NULL) {
        printf("proof of table version %lld (%zu entries, %zu acknowledgements) written to %s\n",
               (long long)want, json_array_size(json_object_get(proof, "entries")),
               json_array_size(json_object_get(proof, "acks")), out);
        rc = 0;
    } else {
        fprintf(stderr, "harp-ctl: cannot write %s: %s\n", out, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
    }
    free(text);
    json_decref(proof);
    return rc;
}

/* The whole of <file> (at most PROOF_MAX bytes) in a new NUL-terminated buffer, or NULL after
 * printing why. */
static char *
slurp(const char *file, size_t *len)
{
    FILE *f = fopen(file, "re");
    struct stat sb;
    char *buf = NULL;
    size_t cap = 0, n;

    *len = 0;
    if (f == NULL) {
        fprintf(stderr, "harp-ctl: %s: %s\n", file, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > (off_t)PROOF_MAX) {
        n = PROOF_MAX + 1; /* not read at all */
    } else {
        do { /* up to one byte past the limit, to tell a file at it from one beyond */
            cap = cap == 0 ? 65536 : cap * 2 > PROOF_MAX + 1 ? PROOF_MAX + 1 : cap * 2;
            buf = xrealloc(buf, cap + 1);
            *len += fread(buf + *len, 1, cap - *len, f);
        } while (*len == cap && cap <= PROOF_MAX);
        n = *len;
    }
    if (ferror(f) || n > PROOF_MAX) {
        fprintf(stderr, "harp-ctl: %s: %s\n", file,
                ferror(f) ? strerror(errno) : "larger than a proof can be (256 MiB)");
        fclose(f);
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static const char *
str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s != NULL ? s : "";
}

static int64_t
num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* true when <o> holds exactly the fields of <want> (taken) with their values: a field
 * renamed, added or of another type never passes for a default. */
static bool
same(const json_t *o, json_t *want)
{
    bool eq = json_equal(o, want);

    json_decref(want);
    return eq;
}

/* The checkpoint's table (new) and where the chain goes on; NULL when it is not valid. */
static json_t *
proof_checkpoint(const json_t *cp, const char *pub, int64_t *seq, char prev[CANON_HASH_HEX])
{
    const json_t *tbl = json_object_get(cp, "table");
    json_t *j;
    bool ok;

    *seq = 0;
    memset(prev, '0', CANON_HASH_HEX - 1);
    prev[CANON_HASH_HEX - 1] = '\0';
    if (json_is_null(cp)) {
        return json_object();
    }
    if (!json_is_object(tbl) ||
        !same(cp, json_pack("{s:I,s:s,s:I,s:O,s:I,s:s}", "seq", (json_int_t)num(cp, "seq"), "hash",
                            str(cp, "hash"), "version", (json_int_t)num(cp, "version"), "table",
                            tbl, "at", (json_int_t)num(cp, "at"), "sig", str(cp, "sig")))) {
        return NULL;
    }
    j = audit_checkpoint_json(num(cp, "seq"), str(cp, "hash"), num(cp, "version"), tbl,
                              num(cp, "at"));
    ok = canon_verify(pub, j, str(cp, "sig"));
    json_decref(j);
    if (!ok) {
        return NULL;
    }
    *seq = num(cp, "seq");
    snprintf(prev, CANON_HASH_HEX, "%s", str(cp, "hash"));
    return json_deep_copy(tbl);
}

/* Replays the entries of the proof: the table (new), or NULL with <why>. */
static json_t *
proof_entries(const json_t *proof, const char *pub, int64_t *seq, char prev[CANON_HASH_HEX],
              char *why, size_t wlen)
{
    json_t *table = proof_checkpoint(json_object_get(proof, "checkpoint"), pub, seq, prev);
    const json_t *entries = json_object_get(proof, "entries"), *e, *effect;
    char hash[CANON_HASH_HEX];
    json_t *h;
    size_t i;

    if (table == NULL || !json_is_array(entries)) {
        snprintf(why, wlen, "the checkpoint is not signed by this key");
        json_decref(table);
        return NULL;
    }
    json_array_foreach(entries, i, e)
    {
        effect = json_object_get(e, "effect");
        h = audit_entry_json(num(e, "seq"), num(e, "at"), str(e, "actor"), str(e, "op"),
                             str(e, "subject"), num(e, "version"),
                             effect != NULL ? effect : json_null(), str(e, "prev"));
        canon_hash_json(h, hash);
        json_object_set_new(h, "hash", json_string(hash));
        /* same() takes <h>: called first, whatever the other checks say */
        if (!same(e, h) || num(e, "seq") != *seq + 1 || strcmp(str(e, "prev"), prev) != 0 ||
            effect == NULL) {
            snprintf(why, wlen, "entry %lld does not follow in the chain", (long long)(*seq + 1));
            json_decref(table);
            return NULL;
        }
        audit_apply(table, str(e, "op"), effect);
        *seq += 1;
        memcpy(prev, hash, CANON_HASH_HEX);
    }
    return table;
}

/* How many acknowledgements, all valid, co-sign <v>; -1 when one is not valid. */
static long
proof_acks(const json_t *acks, const json_t *v)
{
    const json_t *a;
    json_t *j;
    size_t i;
    bool ok;

    if (!json_is_array(acks)) {
        return -1;
    }
    json_array_foreach(acks, i, a)
    {
        j = canon_ack_json(num(v, "version"), str(a, "dp_id"), str(a, "table_hash"));
        ok = same(a, json_pack("{s:s,s:s,s:s,s:s}", "dp_id", str(a, "dp_id"), "dp_key",
                               str(a, "dp_key"), "table_hash", str(a, "table_hash"), "sig",
                               str(a, "sig"))) &&
             strcmp(str(a, "table_hash"), str(v, "table_hash")) == 0 &&
             canon_verify(str(a, "dp_key"), j, str(a, "sig")) &&
             (i == 0 || strcmp(str(json_array_get(acks, i - 1), "dp_key"), str(a, "dp_key")) < 0);
        json_decref(j);
        if (!ok) {
            return -1;
        }
    }
    return (long)json_array_size(acks);
}

int
audit_proof_check(const char *file, const char *pub)
{
    char *text, msg[512];
    size_t len;
    int rc;

    if (pub == NULL) {
        fprintf(stderr, "harp-ctl: audit check-proof needs --key PUBKEY (harp-ctl audit key)\n");
        return 2;
    }
    if ((text = slurp(file, &len)) == NULL) {
        return 2;
    }
    rc = audit_proof_verify(text, len, pub, msg, sizeof(msg));
    printf("%s\n", msg);
    free(text);
    return rc;
}

int
audit_proof_verify(const char *text, size_t len, const char *pub, char *msg, size_t msglen)
{
    char prev[CANON_HASH_HEX], th[CANON_HASH_HEX], why[256] = "", *canon;
    json_t *proof, *table = NULL, *v, *j;
    int64_t seq = 0;
    long acks = -1;
    bool ok;

    proof = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    canon = proof != NULL ? canon_dump(proof) : NULL;
    v = json_object_get(proof, "version");
    if (canon == NULL || strlen(canon) + 1 != len || memcmp(canon, text, len - 1) != 0 ||
        text[len - 1] != '\n' ||
        !same(proof, json_pack("{s:s,s:s,s:O,s:O,s:O,s:O}", "format", PROOF_FORMAT, "key", pub,
                               "checkpoint", json_object_get(proof, "checkpoint"), "entries",
                               json_object_get(proof, "entries"), "version", v, "acks",
                               json_object_get(proof, "acks"))) ||
        !same(v, json_pack("{s:I,s:I,s:s,s:s,s:s}", "version", (json_int_t)num(v, "version"), "seq",
                           (json_int_t)num(v, "seq"), "table_hash", str(v, "table_hash"),
                           "chain_head", str(v, "chain_head"), "sig", str(v, "sig")))) {
        snprintf(why, sizeof(why), "not a proof in canonical form for this key");
    } else if ((table = proof_entries(proof, pub, &seq, prev, why, sizeof(why))) != NULL) {
        canon_hash_json(table, th);
        j = audit_version_json(num(v, "version"), num(v, "seq"), str(v, "table_hash"),
                               str(v, "chain_head"));
        ok = canon_verify(pub, j, str(v, "sig"));
        json_decref(j);
        if (!ok) {
            snprintf(why, sizeof(why), "the table version is not signed by this key");
        } else if (num(v, "seq") != seq || strcmp(str(v, "chain_head"), prev) != 0) {
            snprintf(why, sizeof(why), "the signed chain head is not the last entry's hash");
        } else if (strcmp(str(v, "table_hash"), th) != 0) {
            snprintf(why, sizeof(why), "the replayed table does not hash to the signed one");
        } else if ((acks = proof_acks(json_object_get(proof, "acks"), v)) < 0) {
            snprintf(why, sizeof(why), "a data plane's acknowledgement does not verify");
        }
    }
    if (why[0] != '\0') {
        snprintf(msg, msglen, "proof INVALID: %s", why);
    } else {
        snprintf(msg, msglen,
                 "proof valid: table version %lld (table %s) follows from entries up to %lld, "
                 "signed by harp-ctl; co-signed by %ld data plane%s",
                 (long long)num(v, "version"), th, (long long)seq, acks, acks == 1 ? "" : "s");
    }
    json_decref(table);
    json_decref(proof);
    free(canon);
    return why[0] != '\0' ? 1 : 0;
}
