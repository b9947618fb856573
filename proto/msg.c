/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The proto message table (name, direction, codec of each type), msg_decode() and
 * msg_encode(), the field readers of the decoders, and the old JSON helpers. Pure. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "frame.h"
#include "msg_int.h"
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
    struct field fields[5]; /* NULL-terminated: what msg_check() requires */
    int (*decode)(const json_t *o, struct msg *m, struct hp_err *err);
    void (*encode)(const struct msg *m, json_t *o);
} types[MSG_NTYPES] = {
    [MSG_HELLO] = {"hello",
                   MSG_FROM_DP,
                   {{"proto", F_INT}, {"dp_id", F_STR}, {"version", F_INT}, {NULL, 0}},
                   msg_hello_decode,
                   msg_hello_encode},
    [MSG_ACK] =
        {"ack", MSG_FROM_DP, {{"version", F_INT}, {NULL, 0}}, msg_ack_decode, msg_ack_encode},
    [MSG_TABLE_ACK] = {"table_ack",
                       MSG_FROM_DP,
                       {{"version", F_INT}, {"table_hash", F_STR}, {"sig", F_STR}, {NULL, 0}},
                       msg_table_ack_decode,
                       msg_table_ack_encode},
    [MSG_LOOKUP] = {"lookup",
                    MSG_FROM_DP,
                    {{"id", F_INT}, {"app_id", F_STR}, {NULL, 0}},
                    msg_lookup_decode,
                    msg_lookup_encode},
    [MSG_EVENT] =
        {"event", MSG_FROM_DP, {{"event", F_STR}, {NULL, 0}}, msg_event_decode, msg_event_encode},
    [MSG_METRICS] = {"metrics",
                     MSG_FROM_DP,
                     {{"refusals", F_OBJECT}, {"apps", F_ARRAY}, {NULL, 0}},
                     msg_metrics_decode,
                     msg_metrics_encode},
    [MSG_AUTH] = {"auth",
                  MSG_FROM_DP,
                  {{"id", F_INT}, {"app_id", F_STR}, {"cookie_b64", F_STR}, {"headers", F_ARRAY}},
                  msg_auth_decode,
                  msg_auth_encode},
    [MSG_WELCOME] = {"welcome",
                     MSG_FROM_CTL,
                     {{"proto", F_INT}, {NULL, 0}},
                     msg_welcome_decode,
                     msg_welcome_encode},
    [MSG_SNAPSHOT] = {"snapshot",
                      MSG_FROM_CTL,
                      {{"version", F_INT}, {"exapps", F_ARRAY}, {NULL, 0}},
                      msg_snapshot_decode,
                      msg_snapshot_encode},
    [MSG_DELTA] =
        {"delta",
         MSG_FROM_CTL,
         {{"from", F_INT}, {"version", F_INT}, {"upserts", F_ARRAY}, {"deletes", F_ARRAY}},
         msg_delta_decode,
         msg_delta_encode},
    [MSG_LOOKUP_REPLY] = {"lookup_reply",
                          MSG_FROM_CTL,
                          {{"id", F_INT}, {"app_id", F_STR}, {"found", F_BOOL}, {NULL, 0}},
                          msg_lookup_reply_decode,
                          msg_lookup_reply_encode},
    [MSG_AUTH_REPLY] = {"auth_reply",
                        MSG_FROM_CTL,
                        {{"id", F_INT}, {"result", F_STR}, {NULL, 0}},
                        msg_auth_reply_decode,
                        msg_auth_reply_encode},
    [MSG_BANS] =
        {"bans", MSG_FROM_CTL, {{"bans", F_ARRAY}, {NULL, 0}}, msg_bans_decode, msg_bans_encode},
    [MSG_ENGINES] = {"engines",
                     MSG_FROM_CTL,
                     {{"engines", F_ARRAY}, {NULL, 0}},
                     msg_engines_decode,
                     msg_engines_encode},
    [MSG_REQUEST_ERROR] = {"request_error",
                           MSG_FROM_CTL,
                           {{"id", F_INT}, {"message", F_STR}, {NULL, 0}},
                           msg_text_decode,
                           msg_text_encode},
    [MSG_SETTINGS] = {"settings",
                      MSG_FROM_CTL,
                      {{"log_level", F_STR}, {"timeout_server_ms", F_INT}, {NULL, 0}},
                      msg_settings_decode,
                      msg_settings_encode},
    [MSG_ERROR] =
        {"error", MSG_BOTH, {{"message", F_STR}, {NULL, 0}}, msg_text_decode, msg_text_encode},
    [MSG_PING] = {"ping", MSG_BOTH, {{NULL, 0}}, NULL, NULL},
    [MSG_PONG] = {"pong", MSG_BOTH, {{NULL, 0}}, NULL, NULL},
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
    return (unsigned)t < MSG_NTYPES ? types[t].name : "?";
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

/* --- typed messages ---------------------------------------------------------------------- */

int
msg_decode(const json_t *json, enum msg_dir from, struct msg *m, struct hp_err *err)
{
    const char *name = json_string_value(json_object_get(json, "type"));
    const json_t *id = json_object_get(json, "id");
    int t;

    memset(m, 0, sizeof(*m));
    m->type = MSG_NTYPES;
    if (!json_is_object(json)) {
        err_set(err, "message is not an object");
        return -1;
    }
    if (json_is_integer(id) && json_integer_value(id) >= 0) {
        m->has_id = true;
        m->id = json_integer_value(id);
    }
    if (name == NULL) {
        err_set(err, "message without a type");
        return -1;
    }
    for (t = 0; t < MSG_NTYPES && strcmp(types[t].name, name) != 0; t++) {
    }
    if (t == MSG_NTYPES) {
        err_set(err, "unknown message type \"%.40s\"", name);
        return -1;
    }
    m->type = (enum msg_type)t;
    if (!(types[t].dir & from)) {
        err_set(err, "message \"%s\" may not be sent by this side", name);
        return -1;
    }
    return types[t].decode != NULL ? types[t].decode(json, m, err) : 0;
}

json_t *
msg_encode(const struct msg *m)
{
    json_t *o = msg_new(m->type);

    if (m->has_id) {
        json_object_set_new(o, "id", json_integer(m->id));
    }
    if (types[m->type].encode != NULL) {
        types[m->type].encode(m, o);
    }
    return o;
}

char *
msg_frame(const struct msg *m, size_t *len)
{
    json_t *o = msg_encode(m);
    char *f = frame_encode(o, len);

    json_decref(o);
    return f;
}

void
msg_free(struct msg *m)
{
    if (m->type < MSG_WELCOME) {
        msg_dp_free(m);
    } else if (m->type < MSG_NTYPES) {
        msg_ctl_free(m);
    }
    memset(m, 0, sizeof(*m));
}

/* --- field readers --------------------------------------------------------------------------- */

int
msg_get_int(const json_t *o, const char *what, const char *key, bool required, int64_t min,
            int64_t max, int64_t *out, struct hp_err *err)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL && !required) {
        return 0;
    }
    if (v == NULL) {
        err_set(err, "%s: field \"%s\" missing", what, key);
        return -1;
    }
    if (!json_is_integer(v)) {
        err_set(err, "%s: field \"%s\" must be an integer", what, key);
        return -1;
    }
    if (json_integer_value(v) < min || json_integer_value(v) > max) {
        err_set(err, "%s: field \"%s\" out of range (%lld to %lld)", what, key, (long long)min,
                (long long)max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* The string <key> of <o>: NULL when absent (with <err> if <required>) or invalid. */
static const char *
get_str(const json_t *o, const char *what, const char *key, bool required, size_t max, bool *absent,
        struct hp_err *err)
{
    const json_t *v = json_object_get(o, key);

    *absent = v == NULL;
    if (v == NULL) {
        if (required) {
            err_set(err, "%s: field \"%s\" missing", what, key);
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        err_set(err, "%s: field \"%s\" must be a string", what, key);
        return NULL;
    }
    if (json_string_length(v) > max) {
        err_set(err, "%s: field \"%s\" longer than %zu bytes", what, key, max);
        return NULL;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        err_set(err, "%s: field \"%s\" holds a NUL character", what, key);
        return NULL;
    }
    *absent = false;
    return json_string_value(v);
}

int
msg_get_str(const json_t *o, const char *what, const char *key, bool required, size_t max,
            char *out, struct hp_err *err)
{
    bool absent;
    const char *s = get_str(o, what, key, required, max, &absent, err);

    if (s == NULL) {
        return absent && !required ? 0 : -1;
    }
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

int
msg_get_hex(const json_t *o, const char *what, const char *key, bool required, size_t len,
            char *out, struct hp_err *err)
{
    size_t i;

    out[0] = '\0';
    if (msg_get_str(o, what, key, required, len, out, err) == -1) {
        return -1;
    }
    if (out[0] == '\0' && json_object_get(o, key) == NULL) {
        return 0;
    }
    for (i = 0; out[i] != '\0'; i++) {
        if (!((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'))) {
            break;
        }
    }
    if (i != len || out[i] != '\0') {
        err_set(err, "%s: field \"%s\" must be %zu lower-case hex digits", what, key, len);
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int
msg_audit_decode(const json_t *o, const char *what, struct msg_table_audit *a, struct hp_err *err)
{
    const json_t *v = json_object_get(o, "audit");

    if (v == NULL) {
        return 0;
    }
    if (!json_is_object(v)) {
        err_set(err, "%s: field \"audit\" must be an object", what);
        return -1;
    }
    return msg_get_int(v, what, "seq", true, 0, INT64_MAX, &a->seq, err) == -1 ||
                   msg_get_hex(v, what, "table_hash", true, MSG_HASH_HEX, a->table_hash, err) ==
                       -1 ||
                   msg_get_hex(v, what, "chain_head", true, MSG_HASH_HEX, a->chain_head, err) ==
                       -1 ||
                   msg_get_hex(v, what, "sig", true, MSG_SIG_HEX, a->sig, err) == -1
               ? -1
               : 0;
}

void
msg_audit_encode(const struct msg_table_audit *a, json_t *o)
{
    if (a->table_hash[0] != '\0') {
        json_object_set_new(o, "audit",
                            json_pack("{s:I,s:s,s:s,s:s}", "seq", (json_int_t)a->seq, "table_hash",
                                      a->table_hash, "chain_head", a->chain_head, "sig", a->sig));
    }
}

int
msg_get_strdup(const json_t *o, const char *what, const char *key, bool required, size_t max,
               char **out, struct hp_err *err)
{
    bool absent;
    const char *s = get_str(o, what, key, required, max, &absent, err);

    if (s == NULL) {
        return absent && !required ? 0 : -1;
    }
    *out = xstrdup(s);
    return 0;
}

int
msg_get_bool(const json_t *o, const char *what, const char *key, bool required, bool *out,
             struct hp_err *err)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL && !required) {
        return 0;
    }
    if (!json_is_boolean(v)) {
        err_set(err, "%s: field \"%s\" %s", what, key,
                v == NULL ? "missing" : "must be true or false");
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

const json_t *
msg_get_array(const json_t *o, const char *what, const char *key, size_t max, struct hp_err *err)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_array(v)) {
        err_set(err, "%s: field \"%s\" %s", what, key, v == NULL ? "missing" : "must be a list");
        return NULL;
    }
    if (json_array_size(v) > max) {
        err_set(err, "%s: field \"%s\" has more than %zu elements", what, key, max);
        return NULL;
    }
    return v;
}

/* --- ExApp records ------------------------------------------------------------------------ */

json_t *
msg_exapp_encode(const struct exapp *app)
{
    return exapp_to_json(app, true);
}

int
msg_exapp_decode(const json_t *v, struct exapp *app, struct hp_err *err)
{
    const json_t *id = json_object_get(v, "app_id");
    struct hp_err e;
    int64_t t;

    if (exapp_from_json(v, app, &e) == -1) {
        err_set(err, "%s", e.msg);
        return -1;
    }
    if (exapp_timeouts_read(v, app, &e) == -1) {
        err_set(err, "%s", e.msg);
        goto fail;
    }
    if (!json_is_string(id) || strlen(json_string_value(id)) != json_string_length(id)) {
        err_set(err, "app_id: must be a string");
        goto fail;
    }
    if (exapp_id_normalise(json_string_value(id), app->app_id, &e) == -1) {
        err_set(err, "%s", e.msg);
        goto fail;
    }
    t = 0;
    if (msg_get_int(v, "exapp", "created_at", false, INT64_MIN, INT64_MAX, &t, err) == -1) {
        goto fail;
    }
    app->created_at = t;
    t = 0;
    if (msg_get_int(v, "exapp", "updated_at", false, INT64_MIN, INT64_MAX, &t, err) == -1) {
        goto fail;
    }
    app->updated_at = t;
    return 0;
fail:
    exapp_free(app);
    return -1;
}

static int
cmp_app_ptr(const void *a, const void *b)
{
    return strcmp((*(const struct exapp *const *)a)->app_id,
                  (*(const struct exapp *const *)b)->app_id);
}

int
msg_get_exapps(const json_t *o, const char *what, const char *key, struct exapp **apps, size_t *n,
               struct hp_err *err)
{
    const json_t *a = msg_get_array(o, what, key, EXAPP_MAX_APPS, err), *v;
    struct exapp **sorted;
    struct hp_err e;
    size_t i;

    *apps = NULL;
    *n = 0;
    if (a == NULL) {
        return -1;
    }
    *apps = xcalloc(json_array_size(a) + 1, sizeof(**apps));
    json_array_foreach(a, i, v)
    {
        if (msg_exapp_decode(v, &(*apps)[i], &e) == -1) {
            err_set(err, "%s: %s[%zu]: %s", what, key, i, e.msg);
            return -1;
        }
        *n = i + 1;
    }
    sorted = xcalloc(*n + 1, sizeof(*sorted));
    for (i = 0; i < *n; i++) {
        sorted[i] = &(*apps)[i];
    }
    qsort(sorted, *n, sizeof(*sorted), cmp_app_ptr);
    for (i = 1; i < *n; i++) {
        if (strcmp(sorted[i - 1]->app_id, sorted[i]->app_id) == 0) {
            err_set(err, "%s: %s: app id %s twice", what, key, sorted[i]->app_id);
            free(sorted);
            return -1;
        }
    }
    free(sorted);
    return 0;
}

json_t *
msg_exapps_encode(const struct exapp *apps, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < n; i++) {
        json_array_append_new(a, msg_exapp_encode(&apps[i]));
    }
    return a;
}

void
msg_exapps_free(struct exapp *apps, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        exapp_free(&apps[i]);
    }
    free(apps);
}
