/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The routing table of a data plane and HaRP's request decision procedure (spec 2.3). */
#ifndef HARP_DP_ROUTE_H
#define HARP_DP_ROUTE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdint.h>

#include "exapp.h"
#include "http1.h"
#include "refusal.h"

struct route {
    pcre2_code *re; /* NULL: the pattern did not compile; the route is skipped */
    int access_level;
    int *bruteforce;
    size_t nbruteforce;
};

struct table_app {
    struct exapp meta; /* id, token, version, host, port, routes' text */
    struct route *routes;
};

/* Immutable once built; shared by the requests that started with it (refcounted, one thread).
 * Created by table_build(), released with table_unref(). */
struct table {
    int refs;
    int64_t version;
    struct table_app *apps; /* sorted by app id */
    size_t napps;
};

/* Builds a table of the <n> ExApps of <apps>, moved in (each entry is left zeroed). NULL with
 * <err> when an app id is there twice: the caller keeps its old table. */
struct table *table_build_apps(struct exapp *apps, size_t n, int64_t version, struct hp_err *err);
/* The same from <source> (app_id -> exapp_storage object; stolen), for tests: NULL with <err>
 * when an entry is invalid. */
struct table *table_build(json_t *source, int64_t version, struct hp_err *err);
struct table *table_ref(struct table *t);
void table_unref(struct table *t);
const struct table_app *table_find(const struct table *t, const char *app_id_lc);

enum verdict {
    VERDICT_DROP,         /* silent: close without a response */
    VERDICT_BAD_REQUEST,  /* 400 */
    VERDICT_UNAUTHORIZED, /* 401 */
    VERDICT_FORBIDDEN,    /* 403 */
    VERDICT_DENIED,       /* 403 from the proxy itself (HAProxy's page): Docker allow-list */
    VERDICT_NOT_FOUND,    /* 404 */
    VERDICT_UNAVAILABLE,  /* 503 */
    VERDICT_LOOKUP,       /* the app is not in the table: ask the control plane, decide again */
    VERDICT_AUTH,         /* credentials to resolve into a user: ask, decide again */
    VERDICT_TO_EXAPP,
    VERDICT_TO_CONTROL,
    VERDICT_TO_DOCKER,
};

/* Who the request's credentials belong to, as Nextcloud's user-info said (spec 2.5). */
enum user_state {
    USER_UNRESOLVED,  /* not asked (yet) */
    USER_NONE,        /* no user object: no credentials, or Nextcloud answered 4xx */
    USER_KNOWN,       /* a user object: user_id (may be "") and access level */
    USER_ERROR,       /* Nextcloud could not be asked: 401 */
    USER_UNAVAILABLE, /* the control plane could not take the look-up: 503 */
};

struct user {
    enum user_state state;
    char id[256];
    int level;
};

/* One request's PCRE2 work, in match-limit units, shared by every route it tries. */
#define ROUTE_MATCH_BUDGET 200000u
#define ROUTE_MATCH_FIRST 16u /* the first try's limit; doubled after each limit hit */

struct match_budget {
    uint32_t left;
    unsigned limit_hits; /* calls that stopped at their match limit */
};

struct decision {
    enum verdict verdict;
    bool failure;               /* counts towards a ban of the client */
    enum refusal_reason reason; /* of a refusing verdict; REFUSAL_NONE otherwise */
    const char *why;            /* for the log */
    struct span path;           /* the normalised path the decision was made on */
    struct span app_id;         /* as written in the normalised path */
    char app_id_lc[EXAPP_ID_MAX + 1];
    struct span target;          /* the path without /exapps/<app_id>; "/" when empty */
    const struct table_app *app; /* TO_EXAPP from the table, or NULL for a signed request */
    const struct route *route;   /* the route that matched (NULL for signed requests) */
    /* Where to forward and what to inject (TO_EXAPP). */
    char host[256];
    unsigned port;
    struct span version;
    char auth[1024]; /* AUTHORIZATION-APP-API value */
    unsigned docker_port;
    struct match_budget budget; /* what route matching spent */
};

/* Decides what to do with request <h> (spec 2.3, without users and bans yet). <looked_up>:
 * the control plane was already asked for this app id. The path is normalised first
 * (http1_path_normalise) into <npath>, the caller's buffer of at least h->path.n bytes: the app
 * id, the internal-endpoint guard and the routes all see that one path, and d->path,
 * d->app_id and d->target point into <npath>. Never allocates. */
void route_decide(const struct table *t, const struct http1_head *h, char *npath, const char *key,
                  bool looked_up, const struct user *user, struct decision *d);
/* True when the request carries the valid harp-shared-key (constant-time comparison). */
bool route_has_key(const struct http1_head *h, const char *key);
/* The value of the last oc_sessionPassphrase cookie (name case-sensitive), or an empty span. */
struct span route_session_cookie(const struct http1_head *h);

/* Pure helpers, exported for tests. */
bool route_has_traversal(struct span path);
bool route_app_id(struct span path, struct span *app_id, struct span *target);
/* 1: <r> matches <target>; 0: it does not; -1: <b> ran out first (or PCRE2 failed), so the
 * answer is unknown. Charges <b> with the limits of its tries, an upper bound of the work. */
int route_match(const struct route *r, struct span target, struct match_budget *b);
/* The Docker engine proxy allow-list of spec 2.8. */
bool route_docker_allowed(struct span method, struct span target);

#endif
