/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* A bounded hash of session cookie -> user with an expiry; one thread, no locks. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "secret.h"
#include "sessions.h"
#include "xmalloc.h"

#define BUCKETS 4096
#define MAX_ENTRIES 100000

struct entry {
    char *cookie;
    size_t len;
    struct user user;
    lws_usec_t expires;
    struct entry *next;
};

static struct entry *buckets[BUCKETS];
static size_t nentries;

static unsigned
hash(struct span s)
{
    return hash_fnv1a(s.p, s.n) % BUCKETS;
}

static void
entry_free(struct entry *e)
{
    secret_wipe(e->cookie, e->len);
    free(e->cookie);
    free(e);
    nentries--;
}

static void
prune(lws_usec_t now, bool all)
{
    struct entry **ep, *e;
    size_t b;

    for (b = 0; b < BUCKETS; b++) {
        for (ep = &buckets[b]; (e = *ep) != NULL;) {
            if (all || e->expires <= now) {
                *ep = e->next;
                entry_free(e);
            } else {
                ep = &e->next;
            }
        }
    }
}

bool
sessions_get(struct span cookie, struct user *u)
{
    struct entry **ep, *e;
    lws_usec_t now = lws_now_usecs();

    for (ep = &buckets[hash(cookie)]; (e = *ep) != NULL; ep = &e->next) {
        if (e->len != cookie.n || memcmp(e->cookie, cookie.p, cookie.n) != 0) {
            continue;
        }
        if (e->expires > now) {
            *u = e->user;
            return true;
        }
        *ep = e->next;
        entry_free(e);
        return false;
    }
    return false;
}

void
sessions_put(struct span cookie, const struct user *u, lws_usec_t ttl_us)
{
    struct entry *e;
    lws_usec_t now = lws_now_usecs();
    unsigned b = hash(cookie);

    if (ttl_us <= 0 || cookie.n == 0) {
        return;
    }
    if (nentries >= MAX_ENTRIES) {
        prune(now, false);
        if (nentries >= MAX_ENTRIES) {
            prune(now, true);
        }
    }
    e = xcalloc(1, sizeof(*e));
    e->cookie = xstrndup(cookie.p, cookie.n);
    e->len = cookie.n;
    e->user = *u;
    e->expires = now + ttl_us;
    e->next = buckets[b];
    buckets[b] = e;
    nentries++;
}

void
sessions_clear(void)
{
    prune(0, true);
}
