/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Verifying the audit chain of a database: the hashes, the signed table versions, and the
 * replay of every operation up to the ExApps table as it is (docs/audit.md). */
#ifndef HARP_CTL_AUDIT_VERIFY_H
#define HARP_CTL_AUDIT_VERIFY_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "canon.h"
#include "exapp.h"

struct audit_report {
    int64_t first, last; /* the seq range of the entries checked */
    int64_t versions;    /* signed table versions checked */
    int64_t checkpoint;  /* the seq of the checkpoint the log starts after, 0 without */
    char head[CANON_HASH_HEX];
    char error[512]; /* the first fault, naming the entry or the table version */
};

/* Verifies the log in <db> against harp-ctl's public key <pub> (hex) and the ExApps table
 * <apps> (<n>) at <table_version> as the database holds it. 0 when it holds, -1 with
 * r->error. */
int audit_verify(sqlite3 *db, const char *pub, const struct exapp *apps, size_t n,
                 int64_t table_version, struct audit_report *r);

/* The routing table replayed from the log up to and including entry <seq> (the canonical
 * table object, new) after checking the chain up to there against <pub>, or NULL with
 * r->error. *<version> is the table version there. */
json_t *audit_replay(sqlite3 *db, const char *pub, int64_t seq, int64_t *version,
                     struct audit_report *r);

/* Applies entry <op> with <effect> to <table> (a canonical table object). */
void audit_apply(json_t *table, const char *op, const json_t *effect);

#endif
