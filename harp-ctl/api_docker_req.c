/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * What the /docker/exapp/... handlers share: the docker-engine-port header (Python int()), the
 * JSON body and the ExApp name checked as HaRP's pydantic models do (lax mode), and the
 * answers to invalid payloads and failed Docker calls.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_docker_req.h"
#include "outbound.h"
#include "xmalloc.h"

/* Python int() on a header value: surrounding whitespace, a sign, '_' between digits. */
static bool
py_int(const char *s, long *out)
{
    char digits[32];
    size_t n = 0;
    bool neg = false, prev_digit = false;
    char *end;

    while (isspace((unsigned char)*s)) {
        s++;
    }
    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    for (; *s != '\0' && !isspace((unsigned char)*s); s++) {
        if (*s == '_' && prev_digit && isdigit((unsigned char)s[1])) {
            prev_digit = false;
            continue;
        }
        if (!isdigit((unsigned char)*s) || n + 1 >= sizeof(digits)) {
            return false;
        }
        digits[n++] = *s;
        prev_digit = true;
    }
    while (isspace((unsigned char)*s)) {
        s++;
    }
    if (n == 0 || *s != '\0') {
        return false;
    }
    digits[n] = '\0';
    errno = 0;
    *out = strtol(digits, &end, 10);
    if (errno != 0) {
        return false;
    }
    if (neg) {
        *out = -*out;
    }
    return true;
}

void
api_docker_req_invalid(struct api_resp *resp, const char *field, const char *why)
{
    char *t = xasprintf("Payload validation error: %s: %s", field, why);

    api_text(resp, 400, t);
    free(t);
}

void
api_docker_req_failed(struct api_resp *resp, enum docker_rc rc, unsigned port)
{
    char t[200];

    switch (rc) {
    case DOCKER_CONNECT:
        snprintf(t, sizeof(t), "Could not connect to Docker Engine on port %u", port);
        api_text(resp, 503, t);
        break;
    case DOCKER_TIMEOUT:
        snprintf(t, sizeof(t), "Timeout communicating with Docker Engine on port %u", port);
        api_text(resp, 504, t);
        break;
    case DOCKER_BUSY:
        snprintf(t, sizeof(t),
                 "Too many concurrent outbound calls (HP_OUTBOUND_MAX=%u): Docker Engine on "
                 "port %u not called, try again later",
                 outbound_max(), port);
        api_text(resp, 503, t);
        break;
    default:
        snprintf(t, sizeof(t), "Unexpected error communicating with Docker Engine on port %u",
                 port);
        api_text(resp, 500, t);
        break;
    }
}

int
api_docker_req_str(struct api_resp *resp, json_t *body, const char *key, const char *def,
                   const char **out)
{
    json_t *v = json_object_get(body, key);

    if (v == NULL && def != NULL) {
        *out = def;
        return 0;
    }
    if (v == NULL) {
        api_docker_req_invalid(resp, key, "Field required");
        return -1;
    }
    if (!json_is_string(v)) {
        api_docker_req_invalid(resp, key, "Input should be a valid string");
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int
api_docker_req_bool(json_t *body, const char *key, bool def, bool *out)
{
    static const char *const yes[] = {"1", "on", "t", "true", "y", "yes"};
    static const char *const no[] = {"0", "off", "f", "false", "n", "no"};
    json_t *v = json_object_get(body, key);
    const char *s;
    size_t i;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = json_integer_value(v) == 1;
        return 0;
    }
    if ((s = json_string_value(v)) != NULL) {
        for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
            if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
                *out = strcasecmp(s, yes[i]) == 0;
                return 0;
            }
        }
    }
    return -1;
}

/* Docker's name rule, so names go into URLs without escaping: [A-Za-z0-9][A-Za-z0-9_.-]*. */
static bool
name_ok(const char *s, bool may_be_empty)
{
    size_t i;

    if (s[0] == '\0') {
        return may_be_empty;
    }
    if (!isalnum((unsigned char)s[0])) {
        return false;
    }
    for (i = 1; s[i] != '\0'; i++) {
        if (!isalnum((unsigned char)s[i]) && strchr("_.-", s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

static int
name_field(struct api_resp *resp, json_t *body, const char *key, bool required, char *out,
           size_t len)
{
    const char *v;
    char why[96];

    if (api_docker_req_str(resp, body, key, required ? NULL : "", &v) == -1) {
        return -1;
    }
    if (strlen(v) >= len || !name_ok(v, !required)) {
        snprintf(why, sizeof(why),
                 "%s1-%zu characters of A-Z a-z 0-9 _ . - starting with a "
                 "letter or digit",
                 required ? "" : "empty or ", len - 1);
        api_docker_req_invalid(resp, key, why);
        return -1;
    }
    snprintf(out, len, "%s", v);
    return 0;
}

json_t *
api_docker_req_begin(struct api_req *req, struct api_resp *resp, unsigned *port,
                     struct exapp_name *n)
{
    const char *hv = api_header(req, "docker-engine-port");
    char *t, prefix[80];
    json_error_t jerr;
    json_t *body;
    long v;

    if (port != NULL && hv == NULL) {
        api_text(resp, 400, "Missing 'docker-engine-port' header.");
        return NULL;
    }
    if (port != NULL && (!py_int(hv, &v) || v < 1 || v > 65535)) {
        t = xasprintf("Invalid 'docker-engine-port' header value: %.100s", hv);
        api_text(resp, 400, t);
        free(t);
        return NULL;
    }
    if (port != NULL) {
        *port = (unsigned)v;
    }
    body = json_loadb(req->body != NULL ? req->body : "", req->body_len, JSON_DECODE_ANY, &jerr);
    if (body == NULL) {
        api_text(resp, 400, "Invalid JSON body");
        return NULL;
    }
    if (!json_is_object(body)) {
        api_docker_req_invalid(resp, "body", "Input should be a valid dictionary");
        json_decref(body);
        return NULL;
    }
    if (n == NULL) {
        return body;
    }
    memset(n, 0, sizeof(*n));
    if (name_field(resp, body, "name", true, n->name, sizeof(n->name)) == -1 ||
        name_field(resp, body, "instance_id", false, n->instance_id, sizeof(n->instance_id)) ==
            -1 ||
        name_field(resp, body, "role_suffix", false, n->role_suffix, sizeof(n->role_suffix)) ==
            -1) {
        json_decref(body);
        return NULL;
    }
    snprintf(prefix, sizeof(prefix), "nc_app_%s%s", n->instance_id, n->instance_id[0] ? "_" : "");
    snprintf(n->container, sizeof(n->container), "%s%s%s%s", prefix, n->name,
             n->role_suffix[0] ? "_" : "", n->role_suffix);
    snprintf(n->volume, sizeof(n->volume), "%s%s_data", prefix, n->name);
    return body;
}

bool
api_docker_req_int(json_t *v, long *out)
{
    if (json_is_integer(v)) {
        *out = (long)json_integer_value(v);
        return true;
    }
    return json_is_string(v) && py_int(json_string_value(v), out);
}
