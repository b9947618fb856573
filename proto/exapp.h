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
#define EXAPP_MAX_ROUTES 1000
#define EXAPP_MAX_BF 100

enum access_level { ACCESS_PUBLIC = 0, ACCESS_USER = 1, ACCESS_ADMIN = 2 };

struct exapp_route {
    char *url;
    int access_level;
    int *bruteforce; /* response statuses that count as failures */
    size_t nbruteforce;
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
};

/* Checks <raw> as an app id and writes its lower-case form to <out>. 0, or -1 with <err>. */
int exapp_id_normalise(const char *raw, char out[EXAPP_ID_MAX + 1], struct hp_err *err);
/* Validates an exapp_storage body (pydantic "lax" rules of HaRP: unknown keys ignored, numeric
 * strings taken for integers). On success fills <app> (app_id left as is); on failure <app> is
 * left empty and <err> names the field. */
int exapp_from_json(const json_t *body, struct exapp *app, struct hp_err *err);
/* A new JSON object; the token is included only when <with_token>. */
json_t *exapp_to_json(const struct exapp *app, bool with_token);
json_t *exapp_bruteforce_json(const struct exapp_route *route);
void exapp_free(struct exapp *app);

#endif
