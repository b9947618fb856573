/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Base64 (RFC 4648 §4, with padding): how proto carries bytes that need not be UTF-8. Pure. */
#ifndef HARP_PROTO_B64_H
#define HARP_PROTO_B64_H

#include <stddef.h>

/* Characters b64_encode() writes for <n> bytes, without the terminating NUL. */
#define B64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/* Writes the encoding of <n> bytes of <src> and a NUL to <dst> (B64_ENCODED_LEN(n) + 1
 * bytes); returns its length. */
size_t b64_encode(const void *src, size_t n, char *dst);
/* Decodes <n> characters of <src> into <dst> (room for n / 4 * 3 bytes); the number of
 * bytes, or -1 when <src> is not canonical padded base64 (bad length, character, padding or
 * non-zero trailing bits). */
long b64_decode(const char *src, size_t n, unsigned char *dst);

#endif
