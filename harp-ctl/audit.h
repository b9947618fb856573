/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The audit chain's writer side (docs/audit.md): the entry every change appends inside its
 * own transaction, the actor of the calling thread, and harp-ctl's Ed25519 key.
 */
#ifndef HARP_CTL_AUDIT_H
#define HARP_CTL_AUDIT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "canon.h"
#include "err.h"

/* Who the changes made by this thread are attributed to: "appapi", "operator", "dataplane";
 * NULL (the default) is "harp-ctl" itself (expiries, renewals, fetches). */
void audit_set_actor(const char *actor);
const char *audit_actor(void);

/* The object an entry's hash covers: its canonical JSON is hashed. <effect> is not stolen. */
json_t *audit_entry_json(int64_t seq, int64_t at, const char *actor, const char *op,
                         const char *subject, int64_t version, const json_t *effect,
                         const char *prev);
/* The last entry's seq and hash (those of the checkpoint when the log is empty, 0 and 64
 * zeros when there is neither). 0, or -1. */
int audit_head(sqlite3 *db, int64_t *seq, char hash[CANON_HASH_HEX]);
/* Appends an entry for <op> on <subject> with <effect> (stolen) by audit_actor(), with the
 * routing table version as table_state holds it now. The caller holds the store's mutex and
 * an open transaction, and rolls back when this fails (-1). */
int audit_append(sqlite3 *db, const char *op, const char *subject, json_t *effect);

/* The object harp-ctl signs for a published table version, and a checkpoint's (a data
 * plane's acknowledgement: canon_ack_json()). */
json_t *audit_version_json(int64_t version, int64_t seq, const char *table_hash,
                           const char *chain_head);
json_t *audit_checkpoint_json(int64_t seq, const char *hash, int64_t version, const json_t *tbl,
                              int64_t at);

/* <state_dir>/audit_key.pem: loaded, or made (0600) when missing and <create>. NULL with
 * <err>. */
struct evp_pkey_st *audit_key_load(const char *state_dir, bool create, struct hp_err *err);

#endif
