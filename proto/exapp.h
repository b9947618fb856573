/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* An ExApp as AppAPI registers it: validation of the exapp_storage body and its JSON forms. */
#ifndef HARP_PROTO_EXAPP_H
#define HARP_PROTO_EXAPP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define EXAPP_ID_MAX 255
#define EXAPP_MAX_ROUTES 256
#define EXAPP_MAX_BF 100
/* What the published routing table may hold (docs/api.md, "Limits"): one app's record as it
 * is published (compact JSON with its token), the number of apps, and the records together.
 * A snapshot is the records plus < 1 KiB, so it stays well under the 16 MiB frame limit. */
#define EXAPP_MAX_RECORD (64u * 1024)
#define EXAPP_MAX_APPS 1000
#define EXAPP_MAX_TABLE (12u * 1024 * 1024)

/* Route access levels, as AppAPI numbers them (spec 3.2); user-info answers with the same. */
enum access_level { ACCESS_PUBLIC = 0, ACCESS_USER = 1, ACCESS_ADMIN = 2, ACCESS_NLEVELS };

/* "PUBLIC", "USER", "ADMIN", or "?" for a value outside the enum. */
const char *access_level_name(long long level);
/* Whether <level> is one of the enum's values. */
static inline bool
access_level_valid(long long level)
{
    return level >= ACCESS_PUBLIC && level < ACCESS_NLEVELS;
}

/* Timeouts an operator sets per app or per route (harp-ctl exapp set); 0 means not set: the
 * route's value wins over the app's, the app's over the data plane's HP_TIMEOUT_* default. */
enum exapp_timeout {
    EXAPP_TO_CONNECT,    /* connecting to the ExApp (HP_TIMEOUT_CONNECT) */
    EXAPP_TO_REQUEST,    /* client silence while it sends the request body (HP_TIMEOUT_CLIENT) */
    EXAPP_TO_FIRST_BYTE, /* the request sent, until the response begins (HP_TIMEOUT_SERVER) */
    EXAPP_TO_IDLE,       /* silence between bytes of a response (HP_TIMEOUT_SERVER) */
    EXAPP_TO_WS_IDLE,    /* silence both ways of a WebSocket or tunnel (HP_TIMEOUT_TUNNEL) */
    EXAPP_NTIMEOUTS
};
#define EXAPP_TIMEOUT_MIN_MS 1000u
#define EXAPP_TIMEOUT_MAX_MS 2073600000u /* 24 days, HAProxy's largest timeout */

/* "connect", "request", "first_byte", "idle", "ws_idle". */
const char *exapp_timeout_name(enum exapp_timeout t);
/* The kind named <name>, or -1. */
int exapp_timeout_kind(const char *name);
/* {"name": ms, ...} of the set values, or NULL when none is set. */
json_t *exapp_timeouts_json(const uint32_t to[EXAPP_NTIMEOUTS]);
/* Reads <v> ({"name": ms, ...}, a missing <v> sets nothing) into <to>; ms from
 * EXAPP_TIMEOUT_MIN_MS to EXAPP_TIMEOUT_MAX_MS. 0, or -1 with <err> naming <field>. */
int exapp_timeouts_from_json(const json_t *v, const char *field, uint32_t to[EXAPP_NTIMEOUTS],
                             struct hp_err *err);

struct exapp_route {
    char *url;
    int access_level;
    int *bruteforce; /* response statuses that count as failures */
    size_t nbruteforce;
    uint32_t timeouts[EXAPP_NTIMEOUTS]; /* ms, 0: the app's */
};

/* Created by exapp_from_json() or the store, freed with exapp_free(). */
struct exapp {
    char app_id[EXAPP_ID_MAX + 1]; /* lower-case */
    char *token;                   /* secret */
    char *version;
    char *host;
    char *resolved_host; /* "" when absent */
    unsigned port;
    struct exapp_route *routes;
    size_t nroutes;
    int64_t created_at, updated_at;
    uint32_t timeouts[EXAPP_NTIMEOUTS]; /* ms, 0: the default; never from AppAPI's body */
};

/* Checks <raw> as an app id and writes its lower-case form to <out>. 0, or -1 with <err>. */
int exapp_id_normalise(const char *raw, char out[EXAPP_ID_MAX + 1], struct hp_err *err);
/* Validates an exapp_storage body (pydantic "lax" rules of HaRP: unknown keys ignored, numeric
 * strings taken for integers), or an exapp-meta answer of Nextcloud. Stricter than HaRP: at
 * most EXAPP_MAX_ROUTES routes, and no control characters in exapp_version, host and
 * resolved_host (they are written into request heads). On success fills <app> (app_id left as is);
 * on failure <app> is left empty and <err> names the field. */
int exapp_from_json(const json_t *body, struct exapp *app, struct hp_err *err);
/* The bytes of <app>'s published record: exapp_to_json(app, true) in compact JSON. */
size_t exapp_record_size(const struct exapp *app);
/* A new JSON object; the token is included only when <with_token>. Operator timeouts, when
 * set, as "timeouts" of the app and of its routes (read back by exapp_timeouts_read()). */
json_t *exapp_to_json(const struct exapp *app, bool with_token);
/* The "timeouts" of <body> and of its routes into <app> (built from <body>). 0, or -1 with
 * <err>. */
int exapp_timeouts_read(const json_t *body, struct exapp *app, struct hp_err *err);
json_t *exapp_bruteforce_json(const struct exapp_route *route);
/* A deep copy of <src> into <dst>. */
void exapp_copy(struct exapp *dst, const struct exapp *src);
void exapp_free(struct exapp *app);

#endif
