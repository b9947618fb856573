/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl audit: key, log, verify, proof, check-proof. These read the state directory's
 * database and key themselves: the daemon is not asked, and need not run. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "audit_proof.h"
#include "audit_verify.h"
#include "cli.h"
#include "store.h"
#include "xmalloc.h"

static const char usage_audit[] =
    "usage: harp-ctl audit key\n"
    "       harp-ctl audit log [--since TIME] [--app ID] [--json]\n"
    "       harp-ctl audit verify [--json]\n"
    "       harp-ctl audit proof [--version V] --out FILE\n"
    "       harp-ctl audit check-proof FILE --key PUBKEY\n"
    "       harp-ctl audit prune --before TIME\n"
    "\n"
    "The audit chain of every change (docs/audit.md), read from HP_STATE_DIR (harp.db and\n"
    "audit_key.pem) without the daemon.\n"
    "  key          print harp-ctl's Ed25519 public key (hex)\n"
    "  log          the entries: seq, time, actor, operation, subject; --since a Unix time\n"
    "               or YYYY-MM-DD[THH:MM:SS] (UTC); --app only one ExApp's; --json in full\n"
    "  verify       recompute the hash chain, check every signed table version against the\n"
    "               table replayed from the log, and the ExApps table against the end of the\n"
    "               log; names the first broken entry or version. Exit 0 intact, 1 broken\n"
    "  proof        write the entries, signatures and data planes' acknowledgements proving\n"
    "               table version V (default: the last signed) to FILE\n"
    "  check-proof  verify such a file offline against harp-ctl's public key PUBKEY (hex);\n"
    "               prints how many data planes co-signed. Exit 0 valid, 1 invalid\n"
    "  prune        drop the entries made before TIME behind a checkpoint signed with\n"
    "               audit_key.pem (the chain up to there must verify); serve does the same\n"
    "               hourly with HP_AUDIT_RETENTION_DAYS\n";

static const char *
state_dir(struct cli_opts *opts)
{
    const char *d = cli_lookup("HP_STATE_DIR", opts);

    return d != NULL && d[0] != '\0' ? d : "/var/lib/harp";
}

/* The state directory's database, which must exist; NULL after printing why. */
static struct store *
open_db(struct cli_opts *opts)
{
    char *path = xasprintf("%s/harp.db", state_dir(opts));
    struct store *st = NULL;
    struct hp_err err;

    if (access(path, R_OK) != 0) {
        fprintf(stderr, "harp-ctl: no database at %s (see --state-dir / HP_STATE_DIR)\n", path);
    } else if ((st = store_open(path, &err)) == NULL) {
        fprintf(stderr, "harp-ctl: %s\n", err.msg);
    }
    free(path);
    return st;
}

/* harp-ctl's public key from the state directory, in hex; -1 after printing why. */
static int
public_key(struct cli_opts *opts, char pub[CANON_KEY_HEX])
{
    struct hp_err err;
    struct evp_pkey_st *k = audit_key_load(state_dir(opts), false, &err);
    int rc;

    if (k == NULL) {
        fprintf(stderr, "harp-ctl: %s\n", err.msg);
        return -1;
    }
    rc = canon_key_pub(k, pub);
    canon_key_free(k);
    return rc;
}

/* --since: a Unix time or YYYY-MM-DD[THH:MM:SS] in UTC; -1 when it is neither. */
static long long
parse_since(const char *s)
{
    struct tm tm;
    char *end;
    long long v;

    if (s == NULL) {
        return 0;
    }
    v = strtoll(s, &end, 10);
    if (end != s && *end == '\0' && v >= 0) {
        return v;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end != NULL && *end == 'T') {
        end = strptime(end + 1, "%H:%M:%S", &tm);
    }
    if (end == NULL || *end != '\0') {
        return -1;
    }
    return (long long)timegm(&tm);
}

static int
cmd_log(struct cli_opts *opts, struct store *st)
{
    long long since = parse_since(opts->since);
    sqlite3_stmt *s;
    json_t *a = json_array(), *e;
    char tbuf[32];

    if (since < 0) {
        fprintf(stderr, "harp-ctl: --since: a Unix time or YYYY-MM-DD[THH:MM:SS] expected\n");
        json_decref(a);
        return CLI_USAGE;
    }
    if (sqlite3_prepare_v2(st->db,
                           "SELECT seq, at, actor, op, subject, version, effect, prev_hash, hash "
                           "FROM audit_log WHERE at >= ?1 AND (?2 IS NULL OR ((op LIKE 'exapp.%' "
                           "OR op LIKE 'k8s.%') AND subject = lower(?2))) ORDER BY seq",
                           -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "harp-ctl: database: %s\n", sqlite3_errmsg(st->db));
        json_decref(a);
        return CLI_REFUSED;
    }
    sqlite3_bind_int64(s, 1, since);
    if (opts->app != NULL) {
        sqlite3_bind_text(s, 2, opts->app, -1, SQLITE_STATIC);
    }
    if (!opts->json) {
        printf("%-7s %-20s %-9s %-14s %-8s %s\n", "SEQ", "TIME", "ACTOR", "OPERATION", "VERSION",
               "SUBJECT");
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (!opts->json) {
            printf("%-7lld %-20s %-9s %-14s %-8lld %s\n", (long long)sqlite3_column_int64(s, 0),
                   cli_time(sqlite3_column_int64(s, 1), tbuf, sizeof(tbuf)),
                   sqlite3_column_text(s, 2), sqlite3_column_text(s, 3),
                   (long long)sqlite3_column_int64(s, 5), sqlite3_column_text(s, 4));
            continue;
        }
        e = json_pack("{s:I,s:I,s:s,s:s,s:s,s:I,s:o,s:s,s:s}", "seq",
                      (json_int_t)sqlite3_column_int64(s, 0), "at",
                      (json_int_t)sqlite3_column_int64(s, 1), "actor", sqlite3_column_text(s, 2),
                      "op", sqlite3_column_text(s, 3), "subject", sqlite3_column_text(s, 4),
                      "version", (json_int_t)sqlite3_column_int64(s, 5), "effect",
                      json_loads((const char *)sqlite3_column_text(s, 6), 0, NULL), "prev_hash",
                      sqlite3_column_text(s, 7), "hash", sqlite3_column_text(s, 8));
        if (e != NULL) {
            json_array_append_new(a, e);
        }
    }
    sqlite3_finalize(s);
    if (opts->json) {
        cli_print_json(a);
    }
    json_decref(a);
    return CLI_OK;
}

static int
cmd_verify(struct cli_opts *opts, struct store *st)
{
    char pub[CANON_KEY_HEX];
    struct audit_report r;
    struct exapp *apps;
    struct hp_err err;
    size_t n;
    int rc;

    if (public_key(opts, pub) == -1) {
        return CLI_USAGE;
    }
    if (store_exapp_list(st, &apps, &n, &err) == -1) {
        fprintf(stderr, "harp-ctl: %s\n", err.msg);
        return CLI_REFUSED;
    }
    rc = audit_verify(st->db, pub, apps, n, store_table_version(st), &r);
    store_exapp_list_free(apps, n);
    if (opts->json) {
        json_t *j =
            json_pack("{s:b,s:I,s:I,s:I,s:I,s:s}", "ok", rc == 0, "first", (json_int_t)r.first,
                      "last", (json_int_t)r.last, "versions", (json_int_t)r.versions, "checkpoint",
                      (json_int_t)r.checkpoint, "head", r.head);

        if (rc != 0) {
            json_object_set_new(j, "error", json_string(r.error));
        }
        cli_print_json(j);
        json_decref(j);
    } else if (rc == 0) {
        printf("audit chain intact: entries %lld..%lld%s, %lld signed table versions, head %s\n",
               (long long)r.first, (long long)r.last,
               r.checkpoint > 0 ? " (after a signed checkpoint)" : "", (long long)r.versions,
               r.head);
    } else {
        printf("audit chain BROKEN: %s\n", r.error);
    }
    return rc == 0 ? CLI_OK : CLI_REFUSED;
}

static int
cmd_prune(struct cli_opts *opts, struct store *st)
{
    long long before = opts->before != NULL ? parse_since(opts->before) : -1;
    struct evp_pkey_st *k;
    struct hp_err err;
    int64_t n;

    if (before < 0) {
        fprintf(stderr, "harp-ctl: audit prune needs --before TIME (a Unix time or "
                        "YYYY-MM-DD[THH:MM:SS])\n");
        return CLI_USAGE;
    }
    if ((k = audit_key_load(state_dir(opts), false, &err)) == NULL) {
        fprintf(stderr, "harp-ctl: %s\n", err.msg);
        return CLI_USAGE;
    }
    n = store_audit_prune(st, k, before, &err);
    canon_key_free(k);
    if (n < 0) {
        fprintf(stderr, "harp-ctl: %s\n", err.msg);
        return CLI_REFUSED;
    }
    printf("%lld entries pruned\n", (long long)n);
    return CLI_OK;
}

int
cli_audit(struct cli_opts *opts)
{
    const char *sub = opts->nargs > 1 ? opts->args[1] : "";
    char pub[CANON_KEY_HEX];
    struct store *st;
    int rc;

    if (opts->help || opts->nargs < 2) {
        fputs(usage_audit, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    if (strcmp(sub, "key") == 0 && opts->nargs == 2) {
        if (public_key(opts, pub) == -1) {
            return CLI_USAGE;
        }
        printf("%s\n", pub);
        return CLI_OK;
    }
    if (strcmp(sub, "check-proof") == 0 && opts->nargs == 3) {
        return audit_proof_check(opts->args[2], opts->key);
    }
    if ((strcmp(sub, "log") != 0 && strcmp(sub, "verify") != 0 && strcmp(sub, "proof") != 0 &&
         strcmp(sub, "prune") != 0) ||
        opts->nargs != 2) {
        fputs(usage_audit, stderr);
        return CLI_USAGE;
    }
    if ((st = open_db(opts)) == NULL) {
        return CLI_USAGE;
    }
    if (strcmp(sub, "log") == 0) {
        rc = cmd_log(opts, st);
    } else if (strcmp(sub, "verify") == 0) {
        rc = cmd_verify(opts, st);
    } else if (strcmp(sub, "prune") == 0) {
        rc = cmd_prune(opts, st);
    } else {
        rc = public_key(opts, pub) == -1 ? CLI_USAGE
                                         : audit_proof_write(st, pub, opts->version, opts->out);
    }
    store_close(st);
    return rc;
}
