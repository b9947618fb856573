/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Proofs of a table version (docs/audit.md): exported from the database, checked offline. */
#ifndef HARP_CTL_AUDIT_PROOF_H
#define HARP_CTL_AUDIT_PROOF_H

#include "canon.h"
#include "store.h"

/* Writes the proof of table version <version> (NULL: the last signed) to <out>: the
 * checkpoint if any, the entries up to the version's, harp-ctl's signature and the data
 * planes' acknowledgements. An exit code (0 written, 1 refused, 2 usage), after printing
 * what went wrong. */
int audit_proof_write(struct store *st, const char *pub, const char *version, const char *out);
/* Checks the proof in <file> against harp-ctl's public key <pub> (hex), with no database;
 * prints the result. A CLI exit code: 0 valid, 1 invalid, 2 usage. */
int audit_proof_check(const char *file, const char *pub);
/* audit_proof_check() of the <len> bytes at <text> (a NUL after them), printing nothing: the
 * verdict in <msg>. 0 valid, 1 invalid. */
int audit_proof_verify(const char *text, size_t len, const char *pub, char *msg, size_t msglen);

#endif
