/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Shared-key handling: constant-time comparison, wiping, generation. */
#ifndef HARP_PROTO_SECRET_H
#define HARP_PROTO_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* True when <a> (length <alen>) equals the NUL-terminated <key>; time depends only on the
 * lengths, never on where the bytes differ. A NULL <a> never matches. */
bool secret_equal(const char *a, size_t alen, const char *key);
void secret_wipe(void *p, size_t n);
/* Frees a NUL-terminated secret after wiping it. */
void secret_free(char *s);
/* Fills <out> (at least 2*<nbytes>+1) with <nbytes> random bytes as hex. 0, or -1. */
int secret_generate_hex(char *out, size_t nbytes);

#endif
