/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The session cache of user look-ups (publish.c design note 5): a hash of session cookies. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "secret.h"
#include "sessions.h"
#include "xmalloc.h"

#define SESSION_BUCKETS 4096

/* Created by the user look-ups, freed by sessions_free(). */
struct sessions {
    double lifetime;
    struct session *buckets[SESSION_BUCKETS];
    size_t n;
};

struct sessions *
sessions_new(double lifetime)
{
    struct sessions *s = xcalloc(1, sizeof(*s));

    s->lifetime = lifetime;
    return s;
}

static unsigned
bucket(const char *cookie)
{
    return hash_fnv1a(cookie, strlen(cookie)) % SESSION_BUCKETS;
}

static void
session_free(struct session *se)
{
    secret_free(se->cookie);
    free(se);
}

const struct session *
sessions_get(struct sessions *s, const char *cookie, double now)
{
    struct session **sp, *se;

    for (sp = &s->buckets[bucket(cookie)]; (se = *sp) != NULL; sp = &se->next) {
        if (strcmp(se->cookie, cookie) != 0) {
            continue;
        }
        if (now - se->fetched <= s->lifetime) {
            return se;
        }
        *sp = se->next;
        session_free(se);
        s->n--;
        return NULL;
    }
    return NULL;
}

/* Drops expired sessions; all of them with <all>. */
static void
prune(struct sessions *s, double now, bool all)
{
    struct session **sp, *se;
    size_t b;

    for (b = 0; b < SESSION_BUCKETS; b++) {
        for (sp = &s->buckets[b]; (se = *sp) != NULL;) {
            if (all || now - se->fetched > s->lifetime) {
                *sp = se->next;
                session_free(se);
                s->n--;
            } else {
                sp = &se->next;
            }
        }
    }
}

void
sessions_put(struct sessions *s, const char *cookie, const char *user_id, int level, double now)
{
    struct session *se;
    unsigned b = bucket(cookie);

    if (s->n >= SESSION_MAX) {
        prune(s, now, false);
        if (s->n >= SESSION_MAX) {
            prune(s, now, true);
        }
    }
    se = xcalloc(1, sizeof(*se));
    se->cookie = xstrdup(cookie);
    snprintf(se->user_id, sizeof(se->user_id), "%s", user_id);
    se->level = level;
    se->fetched = now;
    se->next = s->buckets[b];
    s->buckets[b] = se;
    s->n++;
}

size_t
sessions_count(const struct sessions *s)
{
    return s->n;
}

void
sessions_free(struct sessions *s)
{
    if (s == NULL) {
        return;
    }
    prune(s, 0, true);
    free(s);
}
