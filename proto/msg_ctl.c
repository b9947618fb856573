/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The messages harp-ctl sends: welcome, snapshot, delta, lookup_reply, auth_reply, bans,
 * engines, request_error, settings (and error, which both sides send). Decoder and encoder of each
 * side by side. Pure. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"
#include "xmalloc.h"

int
msg_welcome_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    return msg_get_int(o, "welcome", "proto", true, INT64_MIN, INT64_MAX, &m->welcome.proto, err);
}

void
msg_welcome_encode(const struct msg *m, json_t *o)
{
    json_object_set_new(o, "proto", json_integer(m->welcome.proto));
}

int
msg_snapshot_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_snapshot *s = &m->snapshot;

    if (msg_get_int(o, "snapshot", "version", true, 0, INT64_MAX, &s->version, err) == -1) {
        return -1;
    }
    return msg_get_exapps(o, "snapshot", "exapps", &s->exapps, &s->nexapps, err) == -1 ||
                   msg_audit_decode(o, "snapshot", &s->audit, err) == -1
               ? -1
               : 0;
}

void
msg_snapshot_encode(const struct msg *m, json_t *o)
{
    json_object_set_new(o, "version", json_integer(m->snapshot.version));
    json_object_set_new(o, "exapps", msg_exapps_encode(m->snapshot.exapps, m->snapshot.nexapps));
    msg_audit_encode(&m->snapshot.audit, o);
}

int
msg_delta_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_delta *d = &m->delta;
    const json_t *a, *v;
    struct hp_err e;
    size_t i;

    if (msg_get_int(o, "delta", "from", true, -1, INT64_MAX, &d->from, err) == -1 ||
        msg_get_int(o, "delta", "version", true, 0, INT64_MAX, &d->version, err) == -1 ||
        msg_get_exapps(o, "delta", "upserts", &d->upserts, &d->nupserts, err) == -1 ||
        (a = msg_get_array(o, "delta", "deletes", EXAPP_MAX_APPS, err)) == NULL) {
        return -1;
    }
    d->deletes = xcalloc(json_array_size(a) + 1, sizeof(*d->deletes));
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            err_set(err, "delta: deletes[%zu] must be a string", i);
            return -1;
        }
        if (exapp_id_normalise(json_string_value(v), d->deletes[i], &e) == -1) {
            err_set(err, "delta: deletes[%zu]: %s", i, e.msg);
            return -1;
        }
        d->ndeletes = i + 1;
    }
    return msg_audit_decode(o, "delta", &d->audit, err);
}

void
msg_delta_encode(const struct msg *m, json_t *o)
{
    const struct msg_delta *d = &m->delta;
    json_t *a = json_array();
    size_t i;

    json_object_set_new(o, "from", json_integer(d->from));
    json_object_set_new(o, "version", json_integer(d->version));
    json_object_set_new(o, "upserts", msg_exapps_encode(d->upserts, d->nupserts));
    for (i = 0; i < d->ndeletes; i++) {
        json_array_append_new(a, json_string(d->deletes[i]));
    }
    json_object_set_new(o, "deletes", a);
    msg_audit_encode(&d->audit, o);
}

/* The request id every reply carries. */
static int
need_id(const json_t *o, const struct msg *m, const char *what, struct hp_err *err)
{
    int64_t id;

    return m->has_id ? 0 : msg_get_int(o, what, "id", true, 0, INT64_MAX, &id, err);
}

int
msg_lookup_reply_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_lookup_reply *r = &m->lookup_reply;
    const json_t *app = json_object_get(o, "exapp");
    struct hp_err e;

    if (need_id(o, m, "lookup_reply", err) == -1 ||
        msg_get_str(o, "lookup_reply", "app_id", true, EXAPP_ID_MAX, r->app_id, err) == -1 ||
        msg_get_bool(o, "lookup_reply", "found", true, &r->found, err) == -1 ||
        msg_get_strdup(o, "lookup_reply", "error", false, MSG_TEXT_MAX, &r->error, err) == -1) {
        return -1;
    }
    if (app != NULL) {
        r->exapp = xcalloc(1, sizeof(*r->exapp));
        if (msg_exapp_decode(app, r->exapp, &e) == -1) {
            err_set(err, "lookup_reply: exapp: %s", e.msg);
            return -1;
        }
    }
    return 0;
}

void
msg_lookup_reply_encode(const struct msg *m, json_t *o)
{
    const struct msg_lookup_reply *r = &m->lookup_reply;

    json_object_set_new(o, "app_id", json_string(r->app_id));
    json_object_set_new(o, "found", json_boolean(r->found));
    if (r->exapp != NULL) {
        json_object_set_new(o, "exapp", msg_exapp_encode(r->exapp));
    }
    if (r->error != NULL) {
        json_object_set_new(o, "error", json_string(r->error));
    }
}

static const char *const auth_results[] = {
    [MSG_AUTH_USER] = "user", [MSG_AUTH_ANONYMOUS] = "anonymous", [MSG_AUTH_ERROR] = "error"};

int
msg_auth_reply_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_auth_reply *r = &m->auth_reply;
    int64_t level = 0;
    char result[16];
    size_t i;

    if (need_id(o, m, "auth_reply", err) == -1 ||
        msg_get_str(o, "auth_reply", "result", true, sizeof(result) - 1, result, err) == -1 ||
        msg_get_strdup(o, "auth_reply", "error", false, MSG_TEXT_MAX, &r->error, err) == -1) {
        return -1;
    }
    for (i = 0; i < sizeof(auth_results) / sizeof(auth_results[0]); i++) {
        if (strcmp(result, auth_results[i]) == 0) {
            break;
        }
    }
    if (i == sizeof(auth_results) / sizeof(auth_results[0])) {
        err_set(err, "auth_reply: field \"result\" must be user, anonymous or error");
        return -1;
    }
    r->result = (enum msg_auth_result)i;
    if (r->result != MSG_AUTH_USER) {
        return 0;
    }
    if (msg_get_str(o, "auth_reply", "user_id", true, MSG_USER_ID_MAX, r->user_id, err) == -1 ||
        msg_get_int(o, "auth_reply", "access_level", true, INT64_MIN, INT64_MAX, &level, err) ==
            -1 ||
        msg_get_int(o, "auth_reply", "ttl_ms", false, 0, INT64_MAX / 1000, &r->ttl_ms, err) == -1) {
        return -1;
    }
    if (!access_level_valid(level)) {
        err_set(err, "auth_reply: field \"access_level\" must be %d (%s), %d (%s) or %d (%s)",
                ACCESS_PUBLIC, access_level_name(ACCESS_PUBLIC), ACCESS_USER,
                access_level_name(ACCESS_USER), ACCESS_ADMIN, access_level_name(ACCESS_ADMIN));
        return -1;
    }
    r->access_level = (enum access_level)level;
    return 0;
}

void
msg_auth_reply_encode(const struct msg *m, json_t *o)
{
    const struct msg_auth_reply *r = &m->auth_reply;

    json_object_set_new(o, "result", json_string(auth_results[r->result]));
    if (r->result == MSG_AUTH_USER) {
        json_object_set_new(o, "user_id", json_string(r->user_id));
        json_object_set_new(o, "access_level", json_integer(r->access_level));
        json_object_set_new(o, "ttl_ms", json_integer(r->ttl_ms));
    }
    if (r->error != NULL) {
        json_object_set_new(o, "error", json_string(r->error));
    }
}

int
msg_bans_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_bans *b = &m->bans;
    const json_t *a, *v;
    struct ipaddr ip;
    char what[32];
    size_t i;

    if ((a = msg_get_array(o, "bans", "bans", MSG_MAX_BANS, err)) == NULL) {
        return -1;
    }
    b->bans = xcalloc(json_array_size(a) + 1, sizeof(*b->bans));
    json_array_foreach(a, i, v)
    {
        struct msg_ban *ban = &b->bans[i];

        snprintf(what, sizeof(what), "bans[%zu]", i);
        if (!json_is_object(v)) {
            err_set(err, "bans: %s must be an object", what);
            return -1;
        }
        if (msg_get_str(v, what, "ip", true, IP_STR_MAX - 1, ban->ip, err) == -1 ||
            msg_get_int(v, what, "expires_at", true, INT64_MIN, INT64_MAX, &ban->expires_at, err) ==
                -1) {
            return -1;
        }
        if (!ip_parse(ban->ip, strlen(ban->ip), &ip)) {
            err_set(err, "%s: field \"ip\" is not an IP address", what);
            return -1;
        }
        ip_format(&ip, ban->ip);
        b->nbans = i + 1;
    }
    return 0;
}

void
msg_bans_encode(const struct msg *m, json_t *o)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < m->bans.nbans; i++) {
        json_array_append_new(a, json_pack("{s:s,s:I}", "ip", m->bans.bans[i].ip, "expires_at",
                                           (json_int_t)m->bans.bans[i].expires_at));
    }
    json_object_set_new(o, "bans", a);
}

static int
decode_engine(const json_t *v, const char *what, struct msg_engine *e, struct hp_err *err)
{
    int64_t port = 0, tcp_port = 0;

    if (!json_is_object(v)) {
        err_set(err, "engines: %s must be an object", what);
        return -1;
    }
    if (msg_get_int(v, what, "port", true, 1, 65535, &port, err) == -1 ||
        msg_get_bool(v, what, "refused", false, &e->refused, err) == -1) {
        return -1;
    }
    e->port = (unsigned)port;
    if (e->refused) {
        return 0;
    }
    if (msg_get_str(v, what, "address", true, MSG_ENGINE_ADDRESS_MAX, e->address, err) == -1 ||
        msg_get_int(v, what, "tcp_port", true, 0, 65535, &tcp_port, err) == -1 ||
        msg_get_str(v, what, "api_min", false, MSG_API_VERSION_MAX, e->api_min, err) == -1 ||
        msg_get_str(v, what, "api_max", false, MSG_API_VERSION_MAX, e->api_max, err) == -1) {
        return -1;
    }
    if (e->address[0] == '\0') {
        err_set(err, "%s: field \"address\" is empty", what);
        return -1;
    }
    e->tcp_port = (unsigned)tcp_port;
    return 0;
}

int
msg_engines_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_engines *en = &m->engines;
    const json_t *a, *v;
    char what[32];
    size_t i;

    if ((a = msg_get_array(o, "engines", "engines", MSG_MAX_ENGINES, err)) == NULL) {
        return -1;
    }
    en->engines = xcalloc(json_array_size(a) + 1, sizeof(*en->engines));
    json_array_foreach(a, i, v)
    {
        snprintf(what, sizeof(what), "engines[%zu]", i);
        if (decode_engine(v, what, &en->engines[i], err) == -1) {
            return -1;
        }
        en->nengines = i + 1;
    }
    return 0;
}

void
msg_engines_encode(const struct msg *m, json_t *o)
{
    json_t *a = json_array(), *e;
    size_t i;

    for (i = 0; i < m->engines.nengines; i++) {
        const struct msg_engine *en = &m->engines.engines[i];

        if (en->refused) {
            json_array_append_new(a, json_pack("{s:i,s:b}", "port", (int)en->port, "refused", 1));
            continue;
        }
        e = json_pack("{s:i,s:s,s:i}", "port", (int)en->port, "address", en->address, "tcp_port",
                      (int)en->tcp_port);
        if (en->api_min[0] != '\0') {
            json_object_set_new(e, "api_min", json_string(en->api_min));
        }
        if (en->api_max[0] != '\0') {
            json_object_set_new(e, "api_max", json_string(en->api_max));
        }
        json_array_append_new(a, e);
    }
    json_object_set_new(o, "engines", a);
}

int
msg_settings_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    static const char *const keys[] = {"timeout_connect_ms", "timeout_client_ms",
                                       "timeout_server_ms", "timeout_tunnel_ms", "timeout_head_ms"};
    struct msg_settings *s = &m->settings;
    int64_t *ms[] = {&s->timeout_connect_ms, &s->timeout_client_ms, &s->timeout_server_ms,
                     &s->timeout_tunnel_ms, &s->timeout_head_ms};
    char level[16];
    size_t i;

    if (msg_get_str(o, "settings", "log_level", true, sizeof(level) - 1, level, err) == -1) {
        return -1;
    }
    if (log_level_parse(level, &s->log_level) == -1) {
        err_set(err, "settings: field \"log_level\" must be debug, info, warning or error");
        return -1;
    }
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (msg_get_int(o, "settings", keys[i], true, 0, MSG_TIMEOUT_MS_MAX, ms[i], err) == -1) {
            return -1;
        }
    }
    return msg_get_strdup(o, "settings", "trusted_proxy_ips", true, MSG_TRUSTED_PROXIES_MAX,
                          &s->trusted_proxy_ips, err) == -1 ||
                   msg_get_bool(o, "settings", "ban_reply_429", true, &s->ban_reply_429, err) == -1
               ? -1
               : 0;
}

void
msg_settings_encode(const struct msg *m, json_t *o)
{
    const struct msg_settings *s = &m->settings;

    json_object_set_new(o, "log_level", json_string(log_level_name(s->log_level)));
    json_object_set_new(o, "timeout_connect_ms", json_integer(s->timeout_connect_ms));
    json_object_set_new(o, "timeout_client_ms", json_integer(s->timeout_client_ms));
    json_object_set_new(o, "timeout_server_ms", json_integer(s->timeout_server_ms));
    json_object_set_new(o, "timeout_tunnel_ms", json_integer(s->timeout_tunnel_ms));
    json_object_set_new(o, "timeout_head_ms", json_integer(s->timeout_head_ms));
    json_object_set_new(o, "trusted_proxy_ips",
                        json_string(s->trusted_proxy_ips != NULL ? s->trusted_proxy_ips : ""));
    json_object_set_new(o, "ban_reply_429", json_boolean(s->ban_reply_429));
}

/* request_error {id, message} and error {message}: the same text member. */
int
msg_text_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    const char *what = msg_type_name(m->type);

    if (m->type == MSG_REQUEST_ERROR && need_id(o, m, what, err) == -1) {
        return -1;
    }
    return msg_get_strdup(o, what, "message", true, MSG_TEXT_MAX, &m->error.message, err);
}

void
msg_text_encode(const struct msg *m, json_t *o)
{
    json_object_set_new(o, "message", json_string(m->error.message ? m->error.message : ""));
}

void
msg_ctl_free(struct msg *m)
{
    switch (m->type) {
    case MSG_SNAPSHOT:
        msg_exapps_free(m->snapshot.exapps, m->snapshot.nexapps);
        break;
    case MSG_DELTA:
        msg_exapps_free(m->delta.upserts, m->delta.nupserts);
        free(m->delta.deletes);
        break;
    case MSG_LOOKUP_REPLY:
        if (m->lookup_reply.exapp != NULL) {
            exapp_free(m->lookup_reply.exapp);
        }
        free(m->lookup_reply.exapp);
        free(m->lookup_reply.error);
        break;
    case MSG_AUTH_REPLY:
        free(m->auth_reply.error);
        break;
    case MSG_BANS:
        free(m->bans.bans);
        break;
    case MSG_ENGINES:
        free(m->engines.engines);
        break;
    case MSG_REQUEST_ERROR:
    case MSG_ERROR:
        free(m->error.message);
        break;
    case MSG_SETTINGS:
        free(m->settings.trusted_proxy_ips);
        break;
    default:
        break;
    }
}
