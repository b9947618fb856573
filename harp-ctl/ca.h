/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The FRP certificate authority (OpenSSL): a CA, a server and a client certificate with
 * HaRP's subjects (spec 6.5), kept in the store and written to $HP_CERTS_DIR/frp. */
#ifndef HARP_CTL_CA_H
#define HARP_CTL_CA_H

#include <jansson.h>

#include "canon.h"
#include "ctl.h"
#include "store.h"

/* The files written to the certificates directory, in this order. */
#define CA_NFILES 5
extern const char *const ca_files[CA_NFILES]; /* ca.crt server.crt server.key client.crt ... */

/* Beside them during a rotation's overlap: the previous CA (still trusted for client
 * certificates), and the CA whose sessions the data plane closes (`certs rotate --now`). */
#define CA_PREVIOUS "ca-previous.crt"
#define CA_REVOKED "revoked.crt"

/* New CA, server and client certificates valid <secs> seconds. */
int ca_generate(long secs, struct cert_rec out[3], struct hp_err *err);
/* <ca> (with its key) copied into out[0], new server and client certificates it signs. */
int ca_issue_leaves(long secs, const struct cert_rec *ca, struct cert_rec out[3],
                    struct hp_err *err);
/* A certificate for the new CA's name and key signed by <old_ca>, valid until <not_after>;
 * NULL when it cannot be made. */
char *ca_cross_sign(const struct cert_rec *old_ca, const char *new_ca_pem, int64_t not_after);
/* Writes every file from <recs> and the stored lifecycle state (server.crt last). */
int ca_write(struct ctl *ctl, const struct cert_rec recs[3], struct hp_err *err);
/* The certificates' lifetime: HP_CERT_LIFETIME_SECONDS, else HP_FRP_CERT_VALIDITY_DAYS. */
long ca_lifetime(const struct ctl *ctl);
/* A PEM certificate's validity (unix time, 0 when it does not parse) and sha256 (hex). */
int64_t ca_not_before(const char *pem);
int64_t ca_not_after(const char *pem);
char *ca_fingerprint(const char *pem);
/* canon_pubkey_sha256 of the certificate's key ("" and -1 when <pem> is not one). */
int ca_key_sha256(const char *pem, char out[CANON_HASH_HEX]);
/* At start (nothing when HP_FRP_DISABLE_TLS=true): files already in the directory are used
 * (and adopted into the store), else the stored ones are written, else new ones generated.
 * -1 with <err> when the directory holds an incomplete or unreadable set. */
int ca_init(struct ctl *ctl, struct hp_err *err);
/* [{name, subject, issuer, san, serial, not_before, not_after, sha256, key_bits}]. */
json_t *ca_describe(const struct cert_rec recs[3]);
/* The directory the files live in ($HP_CERTS_DIR/frp); the caller frees it. */
char *ca_dir(const struct ctl *ctl);
/* Whether <certs_dir>/frp holds every certificate file (ca_init then writes nothing). */
bool ca_files_present(const char *certs_dir);

#endif
