/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The session cache: session cookie -> the user Nextcloud named, for HP_SESSION_LIFETIME,
 * at most SESSION_MAX entries. Cookies are credentials: wiped when dropped. Used by one
 * thread. */
#ifndef HARP_CTL_SESSIONS_H
#define HARP_CTL_SESSIONS_H

#include <stddef.h>

#define SESSION_MAX 100000

/* What the cache holds for one cookie. */
struct session {
    char *cookie;
    char user_id[256];
    int level;
    double fetched; /* monotonic */
    struct session *next;
};

struct sessions;

/* A cache whose entries live <lifetime> seconds. */
struct sessions *sessions_new(double lifetime);
/* The fresh entry for <cookie> at <now>, or NULL; a stale one found on the way is dropped. */
const struct session *sessions_get(struct sessions *s, const char *cookie, double now);
/* Adds <cookie> (copied); over SESSION_MAX, expired entries go first, then all of them. */
void sessions_put(struct sessions *s, const char *cookie, const char *user_id, int level,
                  double now);
size_t sessions_count(const struct sessions *s);
void sessions_free(struct sessions *s);

#endif
