/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* FNV-1a: the hash of the in-memory tables (sessions, bans, failures). Not for secrets'
 * integrity: inputs are bounded and buckets are chained. */
#ifndef HARP_PROTO_HASH_H
#define HARP_PROTO_HASH_H

#include <stddef.h>

static inline unsigned
hash_fnv1a(const void *p, size_t n)
{
    const unsigned char *s = p;
    unsigned h = 2166136261u;
    size_t i;

    for (i = 0; i < n; i++) {
        h = (h ^ s[i]) * 16777619u;
    }
    return h;
}

#endif
