/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The FRP certificate authority (OpenSSL): a CA, a server and a client certificate with
 * HaRP's subjects (spec 6.5), kept in the store and written to $HP_CERTS_DIR/frp. */
#ifndef HARP_CTL_CA_H
#define HARP_CTL_CA_H

#include <jansson.h>

#include "ctl.h"
#include "store.h"

/* The files written to the certificates directory, in this order. */
#define CA_NFILES 5
extern const char *const ca_files[CA_NFILES]; /* ca.crt server.crt server.key client.crt ... */

/* New CA, server and client certificates valid <days> days. */
int ca_generate(unsigned days, struct cert_rec out[3], struct hp_err *err);
/* At start (nothing when HP_FRP_DISABLE_TLS=true): files already in the directory are used
 * (and adopted into the store), else the stored ones are written, else new ones generated.
 * -1 with <err> when the directory holds an incomplete or unreadable set. */
int ca_init(struct ctl *ctl, struct hp_err *err);
/* New certificates, stored and written over the old files. */
int ca_rotate(struct ctl *ctl, struct hp_err *err);
/* [{name, subject, issuer, san, serial, not_before, not_after, sha256, key_bits}]. */
json_t *ca_describe(const struct cert_rec recs[3]);
/* The directory the files live in ($HP_CERTS_DIR/frp); the caller frees it. */
char *ca_dir(const struct ctl *ctl);
/* Whether <certs_dir>/frp holds every certificate file (ca_init then writes nothing). */
bool ca_files_present(const char *certs_dir);

#endif
