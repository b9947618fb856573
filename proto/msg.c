/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The proto message table: name, direction and required fields of each type. Pure. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "msg.h"
#include "secret.h"
#include "xmalloc.h"

enum field_kind { F_INT, F_STR, F_BOOL, F_ARRAY, F_OBJECT };

struct field {
    const char *name;
    enum field_kind kind;
};

static const struct {
    const char *name;
    enum msg_dir dir;
    struct field fields[5]; /* NULL-terminated */
} types[MSG_NTYPES] = {
    [MSG_HELLO] = {"hello", MSG_FROM_DP,
                   {{"proto", F_INT}, {"dp_id", F_STR}, {"version", F_INT}, {NULL, 0}}},
    [MSG_ACK] = {"ack", MSG_FROM_DP, {{"version", F_INT}, {NULL, 0}}},
    [MSG_LOOKUP] = {"lookup", MSG_FROM_DP, {{"id", F_INT}, {"app_id", F_STR}, {NULL, 0}}},
    [MSG_EVENT] = {"event", MSG_FROM_DP, {{"event", F_STR}, {NULL, 0}}},
    [MSG_AUTH] = {"auth", MSG_FROM_DP,
                  {{"id", F_INT}, {"app_id", F_STR}, {"cookie_b64", F_STR}, {"headers", F_ARRAY}}},
    [MSG_SNAPSHOT] = {"snapshot", MSG_FROM_CTL,
                      {{"version", F_INT}, {"exapps", F_ARRAY}, {"settings", F_OBJECT}, {NULL, 0}}},
    [MSG_DELTA] = {"delta", MSG_FROM_CTL,
                   {{"from", F_INT}, {"version", F_INT}, {"upserts", F_ARRAY}, {"deletes", F_ARRAY}}},
    [MSG_LOOKUP_REPLY] = {"lookup_reply", MSG_FROM_CTL,
                          {{"id", F_INT}, {"app_id", F_STR}, {"found", F_BOOL}, {NULL, 0}}},
    [MSG_AUTH_REPLY] = {"auth_reply", MSG_FROM_CTL, {{"id", F_INT}, {"result", F_STR}, {NULL, 0}}},
    [MSG_BANS] = {"bans", MSG_FROM_CTL, {{"bans", F_ARRAY}, {NULL, 0}}},
    [MSG_ENGINES] = {"engines", MSG_FROM_CTL, {{"engines", F_ARRAY}, {NULL, 0}}},
    [MSG_REQUEST_ERROR] = {"request_error", MSG_FROM_CTL,
                           {{"id", F_INT}, {"message", F_STR}, {NULL, 0}}},
    [MSG_ERROR] = {"error", MSG_BOTH, {{"message", F_STR}, {NULL, 0}}},
    [MSG_PING] = {"ping", MSG_BOTH, {{NULL, 0}}},
    [MSG_PONG] = {"pong", MSG_BOTH, {{NULL, 0}}},
};

static bool
kind_ok(const json_t *v, enum field_kind k)
{
    switch (k) {
    case F_INT:
        return json_is_integer(v);
    case F_STR:
        return json_is_string(v);
    case F_BOOL:
        return json_is_boolean(v);
    case F_ARRAY:
        return json_is_array(v);
    case F_OBJECT:
        return json_is_object(v);
    }
    return false;
}

int
msg_check(const json_t *msg, enum msg_dir from, struct hp_err *err)
{
    const char *name = json_string_value(json_object_get(msg, "type"));
    const struct field *f;
    int t;

    if (name == NULL) {
        err_set(err, "message without a type");
        return -1;
    }
    for (t = 0; t < MSG_NTYPES; t++) {
        if (strcmp(types[t].name, name) == 0) {
            break;
        }
    }
    if (t == MSG_NTYPES) {
        err_set(err, "unknown message type \"%.40s\"", name);
        return -1;
    }
    if (!(types[t].dir & from)) {
        err_set(err, "message \"%s\" may not be sent by this side", name);
        return -1;
    }
    for (f = types[t].fields; f->name != NULL; f++) {
        if (!kind_ok(json_object_get(msg, f->name), f->kind)) {
            err_set(err, "message \"%s\": field \"%s\" missing or of the wrong type", name,
                    f->name);
            return -1;
        }
    }
    return t;
}

const char *
msg_type_name(enum msg_type t)
{
    return types[t].name;
}

json_t *
msg_new(enum msg_type t)
{
    json_t *m = json_object();

    json_object_set_new(m, "type", json_string(types[t].name));
    return m;
}

json_t *
msg_bytes(const void *p, size_t n)
{
    char *enc = xmalloc(B64_ENCODED_LEN(n) + 1);
    size_t len = b64_encode(p, n, enc);
    json_t *s = json_stringn(enc, len);

    secret_wipe(enc, len);
    free(enc);
    return s;
}

char *
msg_bytes_get(const json_t *v, size_t *n)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    char *out;
    long got;

    if (s == NULL) {
        return NULL;
    }
    out = xmalloc(len / 4 * 3 + 1);
    got = b64_decode(s, len, (unsigned char *)out);
    if (got < 0) {
        free(out);
        return NULL;
    }
    out[got] = '\0';
    *n = (size_t)got;
    return out;
}

/* An HTTP field name (RFC 9110 token) of at most <max> - 1 characters. */
static bool
token_ok(const char *s, size_t max)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c != '\0' && strchr(extra, c) != NULL))) {
            return false;
        }
    }
    return i > 0 && i < max;
}

int
msg_auth_decode(const json_t *msg, struct msg_auth *a, struct hp_err *err)
{
    const json_t *hdrs = json_object_get(msg, "headers"), *pair;
    size_t i;

    memset(a, 0, sizeof(*a));
    a->id = json_integer_value(json_object_get(msg, "id"));
    a->app_id = json_string_value(json_object_get(msg, "app_id"));
    a->cookie = msg_bytes_get(json_object_get(msg, "cookie_b64"), &a->cookie_len);
    if (a->app_id == NULL || a->cookie == NULL) {
        err_set(err, "auth: \"cookie_b64\" is not base64");
        return -1;
    }
    if (memchr(a->cookie, '\0', a->cookie_len) != NULL) {
        err_set(err, "auth: the cookie holds a NUL byte");
        return -1;
    }
    if (json_array_size(hdrs) > MSG_AUTH_MAX_HEADERS) {
        err_set(err, "auth: more than %d headers", MSG_AUTH_MAX_HEADERS);
        return -1;
    }
    a->headers = xcalloc(json_array_size(hdrs) + 1, sizeof(*a->headers));
    json_array_foreach(hdrs, i, pair)
    {
        struct msg_header *h = &a->headers[a->nheaders];
        const char *name = json_string_value(json_array_get(pair, 0));

        if (!json_is_array(pair) || json_array_size(pair) != 2 || name == NULL ||
            strlen(name) != json_string_length(json_array_get(pair, 0)) ||
            !token_ok(name, sizeof(h->name))) {
            err_set(err, "auth: header %zu is not [token, base64]", i);
            return -1;
        }
        h->value = msg_bytes_get(json_array_get(pair, 1), &h->value_len);
        if (h->value == NULL) {
            err_set(err, "auth: the value of header %zu is not base64", i);
            return -1;
        }
        snprintf(h->name, sizeof(h->name), "%s", name);
        a->nheaders++;
    }
    return 0;
}

const struct msg_header *
msg_auth_header(const struct msg_auth *a, const char *name)
{
    const struct msg_header *found = NULL;
    size_t i;

    for (i = 0; i < a->nheaders; i++) {
        if (strcmp(a->headers[i].name, name) == 0) {
            found = &a->headers[i];
        }
    }
    return found;
}

void
msg_auth_free(struct msg_auth *a)
{
    size_t i;

    if (a->cookie != NULL) {
        secret_wipe(a->cookie, a->cookie_len);
        free(a->cookie);
    }
    for (i = 0; i < a->nheaders; i++) {
        secret_wipe(a->headers[i].value, a->headers[i].value_len);
        free(a->headers[i].value);
    }
    free(a->headers);
    memset(a, 0, sizeof(*a));
}
