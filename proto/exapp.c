/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* ExApp records: validation of AppAPI's payloads and JSON output. Pure: no I/O, no globals. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exapp.h"
#include "secret.h"
#include "xmalloc.h"

#define MAX_TOKEN 1024
#define MAX_VERSION 256
#define MAX_HOST 253
#define MAX_URL 4096

static const char *const access_level_names[ACCESS_NLEVELS] = {
    [ACCESS_PUBLIC] = "PUBLIC",
    [ACCESS_USER] = "USER",
    [ACCESS_ADMIN] = "ADMIN",
};

const char *
access_level_name(long long level)
{
    return access_level_valid(level) ? access_level_names[level] : "?";
}

int
exapp_id_normalise(const char *raw, char out[EXAPP_ID_MAX + 1], struct hp_err *err)
{
    size_t i, n = strlen(raw);

    if (n == 0 || n > EXAPP_ID_MAX) {
        err_set(err, "app id: must have 1 to %d characters", EXAPP_ID_MAX);
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];

        if (!isalnum(c) && c != '_' && c != '-' && c != '.') {
            err_set(err, "app id: only letters, digits, '_', '-' and '.' are allowed");
            return -1;
        }
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    if (strcmp(out, "app_api") == 0) {
        err_set(err, "app id: app_api is reserved for the control API");
        return -1;
    }
    return 0;
}

/* pydantic lax int: a JSON integer, a float with no fraction, or a string of digits. */
static int
lax_int(const json_t *v, long long *out)
{
    const char *s;
    char *end;
    double d;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        d = json_real_value(v);
        if (!isfinite(d) || d != floor(d) || fabs(d) > 9e15) {
            return -1;
        }
        *out = (long long)d;
        return 0;
    }
    if (json_is_string(v)) {
        s = json_string_value(v);
        while (isspace((unsigned char)*s)) {
            s++;
        }
        if (*s == '\0') {
            return -1;
        }
        errno = 0;
        *out = strtoll(s, &end, 10);
        while (isspace((unsigned char)*end)) {
            end++;
        }
        return (*end != '\0' || errno != 0 || end == s) ? -1 : 0;
    }
    return -1;
}

/* The first control character (C0 or DEL) of <s>, or NULL. */
static const char *
find_ctl(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return s;
        }
    }
    return NULL;
}

static int
get_string(const json_t *obj, const char *key, const char *field, size_t max, bool required,
           bool nonempty, char **out, struct hp_err *err)
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL || (json_is_null(v) && !required)) {
        if (required) {
            err_set(err, "%s: field required", field);
            return -1;
        }
        *out = xstrdup("");
        return 0;
    }
    if (!json_is_string(v)) {
        err_set(err, "%s: must be a string", field);
        return -1;
    }
    if (json_string_length(v) > max) {
        err_set(err, "%s: longer than %zu bytes", field, max);
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        err_set(err, "%s: must not contain NUL characters", field);
        return -1;
    }
    if (nonempty && json_string_length(v) == 0) {
        err_set(err, "%s: must not be empty", field);
        return -1;
    }
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int
parse_route(const json_t *r, size_t i, struct exapp_route *route, struct hp_err *err)
{
    const json_t *al, *bf, *s;
    char field[64];
    long long n;
    size_t j;

    if (!json_is_object(r)) {
        err_set(err, "routes[%zu]: must be an object", i);
        return -1;
    }
    snprintf(field, sizeof(field), "routes[%zu].url", i);
    if (get_string(r, "url", field, MAX_URL, true, false, &route->url, err) == -1) {
        return -1;
    }
    al = json_object_get(r, "access_level");
    if (al == NULL) {
        err_set(err, "routes[%zu].access_level: field required", i);
        return -1;
    }
    if (json_is_boolean(al) || lax_int(al, &n) == -1 || !access_level_valid(n)) {
        err_set(err, "routes[%zu].access_level: must be 0 (PUBLIC), 1 (USER) or 2 (ADMIN)", i);
        return -1;
    }
    route->access_level = (int)n;
    bf = json_object_get(r, "bruteforce_protection");
    if (bf == NULL) {
        return 0;
    }
    if (!json_is_array(bf)) {
        err_set(err, "routes[%zu].bruteforce_protection: must be a list of status codes", i);
        return -1;
    }
    if (json_array_size(bf) > EXAPP_MAX_BF) {
        err_set(err, "routes[%zu].bruteforce_protection: more than %d entries", i, EXAPP_MAX_BF);
        return -1;
    }
    route->bruteforce = xcalloc(json_array_size(bf), sizeof(int));
    json_array_foreach(bf, j, s)
    {
        if (json_is_boolean(s) || lax_int(s, &n) == -1 || n < INT_MIN || n > INT_MAX) {
            err_set(err, "routes[%zu].bruteforce_protection[%zu]: must be an integer", i, j);
            return -1;
        }
        route->bruteforce[route->nbruteforce++] = (int)n;
    }
    return 0;
}

int
exapp_from_json(const json_t *body, struct exapp *app, struct hp_err *err)
{
    const json_t *port, *routes, *r;
    const char *c;
    long long n;
    size_t i;

    memset(app, 0, sizeof(*app));
    if (!json_is_object(body)) {
        err_set(err, "body: must be a JSON object");
        return -1;
    }
    if (get_string(body, "exapp_token", "exapp_token", MAX_TOKEN, true, false, &app->token, err) ==
            -1 ||
        get_string(body, "exapp_version", "exapp_version", MAX_VERSION, true, false, &app->version,
                   err) == -1 ||
        get_string(body, "host", "host", MAX_HOST, true, true, &app->host, err) == -1 ||
        get_string(body, "resolved_host", "resolved_host", MAX_HOST, false, false,
                   &app->resolved_host, err) == -1) {
        goto fail;
    }
    /* written into request heads and logs: no CR, LF or other control characters */
    for (i = 0; i < 3; i++) {
        const char *const names[] = {"exapp_version", "host", "resolved_host"};
        const char *const vals[] = {app->version, app->host, app->resolved_host};

        if ((c = find_ctl(vals[i])) != NULL) {
            err_set(err, "%s: must not contain control characters (0x%02x at byte %zu)", names[i],
                    (unsigned char)*c, (size_t)(c - vals[i]));
            goto fail;
        }
    }
    port = json_object_get(body, "port");
    if (port == NULL) {
        err_set(err, "port: field required");
        goto fail;
    }
    if (json_is_boolean(port) || lax_int(port, &n) == -1 || n < 1 || n > 65535) {
        err_set(err, "port: must be an integer from 1 to 65535");
        goto fail;
    }
    app->port = (unsigned)n;
    routes = json_object_get(body, "routes");
    if (routes == NULL) {
        return 0;
    }
    if (!json_is_array(routes)) {
        err_set(err, "routes: must be a list");
        goto fail;
    }
    if (json_array_size(routes) > EXAPP_MAX_ROUTES) {
        err_set(err, "routes: %zu routes, more than the %d allowed", json_array_size(routes),
                EXAPP_MAX_ROUTES);
        goto fail;
    }
    app->routes = xcalloc(json_array_size(routes), sizeof(*app->routes));
    json_array_foreach(routes, i, r)
    {
        app->nroutes = i + 1;
        if (parse_route(r, i, &app->routes[i], err) == -1) {
            goto fail;
        }
    }
    return 0;
fail:
    exapp_free(app);
    return -1;
}

static const char *const timeout_names[EXAPP_NTIMEOUTS] = {"connect", "request", "first_byte",
                                                           "idle", "ws_idle"};

const char *
exapp_timeout_name(enum exapp_timeout t)
{
    return t < EXAPP_NTIMEOUTS ? timeout_names[t] : "?";
}

int
exapp_timeout_kind(const char *name)
{
    int i;

    for (i = 0; i < EXAPP_NTIMEOUTS; i++) {
        if (strcmp(name, timeout_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

json_t *
exapp_timeouts_json(const uint32_t to[EXAPP_NTIMEOUTS])
{
    json_t *o = NULL;
    int i;

    for (i = 0; i < EXAPP_NTIMEOUTS; i++) {
        if (to[i] != 0) {
            if (o == NULL) {
                o = json_object();
            }
            json_object_set_new(o, timeout_names[i], json_integer(to[i]));
        }
    }
    return o;
}

int
exapp_timeouts_from_json(const json_t *v, const char *field, uint32_t to[EXAPP_NTIMEOUTS],
                         struct hp_err *err)
{
    const char *k;
    json_t *n;
    int kind;

    if (v == NULL) {
        return 0;
    }
    if (!json_is_object(v)) {
        err_set(err, "%s: must be an object of timeouts in milliseconds", field);
        return -1;
    }
    json_object_foreach((json_t *)v, k, n)
    {
        if ((kind = exapp_timeout_kind(k)) == -1) {
            err_set(err,
                    "%s: unknown timeout '%.32s' (connect, request, first_byte, idle, ws_idle)",
                    field, k);
            return -1;
        }
        if (!json_is_integer(n) || json_integer_value(n) < EXAPP_TIMEOUT_MIN_MS ||
            json_integer_value(n) > EXAPP_TIMEOUT_MAX_MS) {
            err_set(err, "%s.%s: must be milliseconds from %u to %u", field, k,
                    EXAPP_TIMEOUT_MIN_MS, EXAPP_TIMEOUT_MAX_MS);
            return -1;
        }
        to[kind] = (uint32_t)json_integer_value(n);
    }
    return 0;
}

int
exapp_timeouts_read(const json_t *body, struct exapp *app, struct hp_err *err)
{
    const json_t *routes = json_object_get(body, "routes");
    char field[64];
    size_t i;

    if (exapp_timeouts_from_json(json_object_get(body, "timeouts"), "timeouts", app->timeouts,
                                 err) == -1) {
        return -1;
    }
    for (i = 0; i < app->nroutes && i < json_array_size(routes); i++) {
        snprintf(field, sizeof(field), "routes[%zu].timeouts", i);
        if (exapp_timeouts_from_json(json_object_get(json_array_get(routes, i), "timeouts"), field,
                                     app->routes[i].timeouts, err) == -1) {
            return -1;
        }
    }
    return 0;
}

json_t *
exapp_bruteforce_json(const struct exapp_route *route)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < route->nbruteforce; i++) {
        json_array_append_new(a, json_integer(route->bruteforce[i]));
    }
    return a;
}

size_t
exapp_record_size(const struct exapp *app)
{
    json_t *o = exapp_to_json(app, true);
    size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);

    json_decref(o);
    return n;
}

json_t *
exapp_to_json(const struct exapp *app, bool with_token)
{
    json_t *o = json_object(), *routes = json_array(), *to;
    size_t i;

    json_object_set_new(o, "app_id", json_string(app->app_id));
    if (with_token) {
        json_object_set_new(o, "exapp_token", json_string(app->token));
    }
    json_object_set_new(o, "exapp_version", json_string(app->version));
    json_object_set_new(o, "host", json_string(app->host));
    json_object_set_new(o, "port", json_integer(app->port));
    if (app->resolved_host != NULL && app->resolved_host[0] != '\0') {
        json_object_set_new(o, "resolved_host", json_string(app->resolved_host));
    }
    for (i = 0; i < app->nroutes; i++) {
        json_t *r = json_object();

        json_object_set_new(r, "url", json_string(app->routes[i].url));
        json_object_set_new(r, "access_level", json_integer(app->routes[i].access_level));
        json_object_set_new(r, "bruteforce_protection", exapp_bruteforce_json(&app->routes[i]));
        if ((to = exapp_timeouts_json(app->routes[i].timeouts)) != NULL) {
            json_object_set_new(r, "timeouts", to);
        }
        json_array_append_new(routes, r);
    }
    json_object_set_new(o, "routes", routes);
    if ((to = exapp_timeouts_json(app->timeouts)) != NULL) {
        json_object_set_new(o, "timeouts", to);
    }
    json_object_set_new(o, "created_at", json_integer(app->created_at));
    json_object_set_new(o, "updated_at", json_integer(app->updated_at));
    return o;
}

void
exapp_copy(struct exapp *dst, const struct exapp *src)
{
    size_t i;

    *dst = *src;
    dst->token = xstrdup(src->token);
    dst->version = xstrdup(src->version);
    dst->host = xstrdup(src->host);
    dst->resolved_host = xstrdup(src->resolved_host != NULL ? src->resolved_host : "");
    dst->routes = xcalloc(src->nroutes + 1, sizeof(*dst->routes));
    for (i = 0; i < src->nroutes; i++) {
        dst->routes[i] = src->routes[i];
        dst->routes[i].url = xstrdup(src->routes[i].url);
        dst->routes[i].bruteforce = xcalloc(src->routes[i].nbruteforce + 1, sizeof(int));
        memcpy(dst->routes[i].bruteforce, src->routes[i].bruteforce,
               src->routes[i].nbruteforce * sizeof(int));
    }
}

void
exapp_free(struct exapp *app)
{
    size_t i;

    secret_free(app->token);
    free(app->version);
    free(app->host);
    free(app->resolved_host);
    for (i = 0; i < app->nroutes; i++) {
        free(app->routes[i].url);
        free(app->routes[i].bruteforce);
    }
    free(app->routes);
    memset(app, 0, sizeof(*app));
}
