/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* A hash of banned IPs with their expiry; replaced whole at each push. One thread. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bans.h"
#include "cidr.h"
#include "hash.h"
#include "log.h"
#include "xmalloc.h"

#define BUCKETS 1024

struct ban {
    char ip[IP_STR_MAX];
    int64_t expires;
    struct ban *next;
};

static struct ban *buckets[BUCKETS];

static unsigned
hash(const char *s)
{
    return hash_fnv1a(s, strlen(s)) % BUCKETS;
}

void
bans_clear(void)
{
    struct ban *b;
    size_t i;

    for (i = 0; i < BUCKETS; i++) {
        while ((b = buckets[i]) != NULL) {
            buckets[i] = b->next;
            free(b);
        }
    }
}

void
bans_replace(const struct msg_ban *bans, size_t n)
{
    struct ban *b;
    size_t i;
    unsigned h;

    bans_clear();
    for (i = 0; i < n; i++) {
        b = xcalloc(1, sizeof(*b));
        snprintf(b->ip, sizeof(b->ip), "%s", bans[i].ip);
        b->expires = bans[i].expires_at;
        h = hash(b->ip);
        b->next = buckets[h];
        buckets[h] = b;
    }
    log_info("bans: %zu in force", n);
}

bool
bans_check(const char *ip, int64_t now, int64_t *expires)
{
    struct ban *b;

    for (b = buckets[hash(ip)]; b != NULL; b = b->next) {
        if (strcmp(b->ip, ip) == 0 && b->expires > now) {
            *expires = b->expires;
            return true;
        }
    }
    return false;
}
