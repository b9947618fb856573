/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The canonical forms the audit chain hashes and signs (docs/audit.md), shared by harp-ctl
 * and harp-dp: canonical JSON, SHA-256, the routing table's hash, Ed25519 signatures.
 *
 * Canonical JSON is jansson's encoding with JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY:
 * object keys sorted by byte value, no whitespace, strings in UTF-8 with only '"', '\' and
 * control characters escaped, integers only (no reals).
 */
#ifndef HARP_PROTO_CANON_H
#define HARP_PROTO_CANON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exapp.h"

#define CANON_HASH_HEX 65 /* 64 hex digits of a SHA-256 and the NUL */
#define CANON_KEY_HEX 65  /* an Ed25519 public key: 32 bytes in hex */
#define CANON_SIG_HEX 129 /* an Ed25519 signature: 64 bytes in hex */

/* The canonical text of <j> in a new string. */
char *canon_dump(const json_t *j);
/* SHA-256 of <n> bytes at <p> in lower-case hex. */
void canon_sha256(const void *p, size_t n, char out[CANON_HASH_HEX]);
/* SHA-256 of the canonical text of <j>. */
void canon_hash_json(const json_t *j, char out[CANON_HASH_HEX]);

/* An ExApp as the audit log and the table hash see it: its published record with the token
 * replaced by "token_sha256", and created_at, updated_at. */
json_t *canon_app(const struct exapp *app);
/* The routing table's canonical form is the object {app_id: canon_app(app), ...}; its hash
 * is canon_hash_json() of it. */
json_t *canon_table(const struct exapp *apps, size_t n);
void canon_table_hash(const struct exapp *apps, size_t n, char out[CANON_HASH_HEX]);

/* What a data plane signs to acknowledge table <version> hashing to <table_hash>. */
json_t *canon_ack_json(int64_t version, const char *dp_id, const char *table_hash);

/* Ed25519 (OpenSSL EVP). A key is an EVP_PKEY. */
struct evp_pkey_st;
/* A new key pair; NULL on failure. */
struct evp_pkey_st *canon_key_new(void);
void canon_key_free(struct evp_pkey_st *k);
/* The public key in hex. */
int canon_key_pub(struct evp_pkey_st *k, char out[CANON_KEY_HEX]);
/* SHA-256 of any public key's DER SubjectPublicKeyInfo: what names the key of a certificate
 * authority across its certificates (a self-signed one and a cross-signed one). 0, or -1. */
int canon_pubkey_sha256(const struct evp_pkey_st *k, char out[CANON_HASH_HEX]);
/* Signs the canonical text of <j>. 0, or -1. */
int canon_sign(struct evp_pkey_st *k, const json_t *j, char sig[CANON_SIG_HEX]);
/* true when <sig> (hex) is <pub>'s (hex) signature of the canonical text of <j>. */
bool canon_verify(const char *pub, const json_t *j, const char *sig);

#endif
