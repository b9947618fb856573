/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The proto message table: name, direction and required fields of each type. Pure. */
#include "config.h"

#include <string.h>

#include "msg.h"

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
                  {{"id", F_INT}, {"app_id", F_STR}, {"cookie", F_STR}, {"headers", F_ARRAY}}},
    [MSG_SNAPSHOT] = {"snapshot", MSG_FROM_CTL,
                      {{"version", F_INT}, {"exapps", F_ARRAY}, {"settings", F_OBJECT}, {NULL, 0}}},
    [MSG_DELTA] = {"delta", MSG_FROM_CTL,
                   {{"from", F_INT}, {"version", F_INT}, {"upserts", F_ARRAY}, {"deletes", F_ARRAY}}},
    [MSG_LOOKUP_REPLY] = {"lookup_reply", MSG_FROM_CTL,
                          {{"id", F_INT}, {"app_id", F_STR}, {"found", F_BOOL}, {NULL, 0}}},
    [MSG_AUTH_REPLY] = {"auth_reply", MSG_FROM_CTL, {{"id", F_INT}, {"result", F_STR}, {NULL, 0}}},
    [MSG_BANS] = {"bans", MSG_FROM_CTL, {{"bans", F_ARRAY}, {NULL, 0}}},
    [MSG_ENGINES] = {"engines", MSG_FROM_CTL, {{"engines", F_ARRAY}, {NULL, 0}}},
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
