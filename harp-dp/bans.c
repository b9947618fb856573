/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* A hash of banned IPs with their expiry, built whole from each push and immutable after;
 * shared by the snapshots (world.c) that hold it. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bans.h"
#include "cidr.h"
#include "hash.h"
#include "xmalloc.h"

#define BUCKETS 1024

struct ban {
    char ip[IP_STR_MAX];
    int64_t expires;
    struct ban *next;
};

struct bans {
    int refs;
    size_t n;
    struct ban *buckets[BUCKETS];
};

static unsigned
hash(const char *s)
{
    return hash_fnv1a(s, strlen(s)) % BUCKETS;
}

struct bans *
bans_ref(struct bans *s)
{
    s->refs++;
    return s;
}

void
bans_unref(struct bans *s)
{
    struct ban *b;
    size_t i;

    if (s == NULL || --s->refs > 0) {
        return;
    }
    for (i = 0; i < BUCKETS; i++) {
        while ((b = s->buckets[i]) != NULL) {
            s->buckets[i] = b->next;
            free(b);
        }
    }
    free(s);
}

struct bans *
bans_build(const struct msg_ban *bans, size_t n)
{
    struct bans *s = xcalloc(1, sizeof(*s));
    struct ban *b;
    size_t i;
    unsigned h;

    s->refs = 1;
    for (i = 0; i < n; i++) {
        b = xcalloc(1, sizeof(*b));
        snprintf(b->ip, sizeof(b->ip), "%s", bans[i].ip);
        b->expires = bans[i].expires_at;
        h = hash(b->ip);
        b->next = s->buckets[h];
        s->buckets[h] = b;
        s->n++;
    }
    return s;
}

size_t
bans_count(const struct bans *s)
{
    return s != NULL ? s->n : 0;
}

bool
bans_check(const struct bans *s, const char *ip, int64_t now, int64_t *expires)
{
    const struct ban *b;

    if (s == NULL) {
        return false;
    }
    for (b = s->buckets[hash(ip)]; b != NULL; b = b->next) {
        if (strcmp(b->ip, ip) == 0 && b->expires > now) {
            *expires = b->expires;
            return true;
        }
    }
    return false;
}
