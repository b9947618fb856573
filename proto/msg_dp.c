/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The messages a data plane sends: hello, ack, lookup, auth, event. Decoder and encoder of
 * each side by side. Pure. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"
#include "secret.h"
#include "xmalloc.h"

int
msg_hello_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_hello *h = &m->hello;

    if (msg_get_int(o, "hello", "proto", true, INT64_MIN, INT64_MAX, &h->proto, err) == -1) {
        return -1;
    }
    if (h->proto != PROTO_VERSION) {
        return 0; /* the rest is another version's: the receiver refuses it */
    }
    return msg_get_str(o, "hello", "dp_id", true, MSG_DP_ID_MAX, h->dp_id, err) == -1 ||
                   msg_get_int(o, "hello", "pid", false, 0, INT64_MAX, &h->pid, err) == -1 ||
                   msg_get_int(o, "hello", "version", true, -1, INT64_MAX, &h->version, err) ==
                       -1 ||
                   msg_get_hex(o, "hello", "dp_key", false, MSG_HASH_HEX, h->dp_key, err) == -1
               ? -1
               : 0;
}

void
msg_hello_encode(const struct msg *m, json_t *o)
{
    const struct msg_hello *h = &m->hello;

    json_object_set_new(o, "proto", json_integer(h->proto));
    if (h->proto != PROTO_VERSION) {
        return;
    }
    json_object_set_new(o, "dp_id", json_string(h->dp_id));
    json_object_set_new(o, "pid", json_integer(h->pid));
    json_object_set_new(o, "version", json_integer(h->version));
    if (h->dp_key[0] != '\0') {
        json_object_set_new(o, "dp_key", json_string(h->dp_key));
    }
}

int
msg_ack_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    return msg_get_int(o, "ack", "version", true, -1, INT64_MAX, &m->ack.version, err);
}

void
msg_ack_encode(const struct msg *m, json_t *o)
{
    json_object_set_new(o, "version", json_integer(m->ack.version));
}

int
msg_table_ack_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_table_ack *a = &m->table_ack;

    return msg_get_int(o, "table_ack", "version", true, 0, INT64_MAX, &a->version, err) == -1 ||
                   msg_get_hex(o, "table_ack", "table_hash", true, MSG_HASH_HEX, a->table_hash,
                               err) == -1 ||
                   msg_get_hex(o, "table_ack", "sig", true, MSG_SIG_HEX, a->sig, err) == -1
               ? -1
               : 0;
}

void
msg_table_ack_encode(const struct msg *m, json_t *o)
{
    json_object_set_new(o, "version", json_integer(m->table_ack.version));
    json_object_set_new(o, "table_hash", json_string(m->table_ack.table_hash));
    json_object_set_new(o, "sig", json_string(m->table_ack.sig));
}

/* The request id every request and reply carries. */
static int
need_id(const json_t *o, const struct msg *m, const char *what, struct hp_err *err)
{
    int64_t id;

    if (!m->has_id) {
        return msg_get_int(o, what, "id", true, 0, INT64_MAX, &id, err);
    }
    return 0;
}

int
msg_lookup_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    return need_id(o, m, "lookup", err) == -1 ||
                   msg_get_str(o, "lookup", "app_id", true, EXAPP_ID_MAX, m->lookup.app_id, err) ==
                       -1
               ? -1
               : 0;
}

void
msg_lookup_encode(const struct msg *m, json_t *o)
{
    json_object_set_new(o, "app_id", json_string(m->lookup.app_id));
}

/* --- auth ---------------------------------------------------------------------------------- */

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

/* The cookie and headers of an auth message. */
static int
auth_fields(const json_t *msg, struct msg_auth *a, struct hp_err *err)
{
    const json_t *hdrs = json_object_get(msg, "headers"), *pair;
    size_t i;

    a->cookie = msg_bytes_get(json_object_get(msg, "cookie_b64"), &a->cookie_len);
    if (a->cookie == NULL) {
        err_set(err, "auth: \"cookie_b64\" is not base64");
        return -1;
    }
    if (memchr(a->cookie, '\0', a->cookie_len) != NULL) {
        err_set(err, "auth: the cookie holds a NUL byte");
        return -1;
    }
    if (!json_is_array(hdrs)) {
        err_set(err, "auth: field \"headers\" %s", hdrs == NULL ? "missing" : "must be a list");
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

int
msg_auth_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_auth *a = &m->auth;

    if (need_id(o, m, "auth", err) == -1 ||
        msg_get_str(o, "auth", "app_id", true, EXAPP_ID_MAX, a->app_id, err) == -1) {
        return -1;
    }
    a->id = m->id;
    return auth_fields(o, a, err);
}

void
msg_auth_encode(const struct msg *m, json_t *o)
{
    const struct msg_auth *a = &m->auth;
    json_t *hdrs = json_array();
    size_t i;

    json_object_set_new(o, "app_id", json_string(a->app_id));
    json_object_set_new(o, "cookie_b64", msg_bytes(a->cookie, a->cookie_len));
    for (i = 0; i < a->nheaders; i++) {
        json_array_append_new(hdrs,
                              json_pack("[s,o]", a->headers[i].name,
                                        msg_bytes(a->headers[i].value, a->headers[i].value_len)));
    }
    json_object_set_new(o, "headers", hdrs);
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

/* Wipes (they are credentials) and frees the decoded values. */
static void
auth_free(struct msg_auth *a)
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

/* --- event --------------------------------------------------------------------------------- */

static int
decode_tunnel(const json_t *v, size_t i, struct msg_tunnel *t, struct hp_err *err)
{
    char what[32];
    int64_t port = 0;
    const json_t *oc;

    snprintf(what, sizeof(what), "tunnels[%zu]", i);
    if (!json_is_object(v)) {
        err_set(err, "event: %s must be an object", what);
        return -1;
    }
    if (msg_get_str(v, what, "name", true, MSG_TUNNEL_NAME_MAX, t->name, err) == -1 ||
        msg_get_int(v, what, "port", true, 0, 65535, &port, err) == -1 ||
        msg_get_str(v, what, "peer", true, MSG_TUNNEL_PEER_MAX, t->peer, err) == -1 ||
        msg_get_int(v, what, "since", true, INT64_MIN, INT64_MAX, &t->since, err) == -1 ||
        msg_get_hex(v, what, "issuer_key", false, MSG_HASH_HEX, t->issuer_key, err) == -1) {
        return -1;
    }
    oc = json_object_get(v, "old_chain");
    if (oc != NULL && !json_is_boolean(oc)) {
        err_set(err, "event: %s: field \"old_chain\" must be a boolean", what);
        return -1;
    }
    t->old_chain = json_is_true(oc);
    t->port = (unsigned)port;
    return 0;
}

int
msg_event_decode(const json_t *o, struct msg *m, struct hp_err *err)
{
    struct msg_event *e = &m->event;
    const json_t *a, *v;
    char name[16];
    struct ipaddr ip;
    size_t i;

    if (msg_get_str(o, "event", "event", true, sizeof(name) - 1, name, err) == -1) {
        return -1;
    }
    if (strcmp(name, "failure") == 0) {
        e->event = MSG_EVENT_FAILURE;
        if (msg_get_str(o, "event", "ip", true, IP_STR_MAX - 1, e->ip, err) == -1) {
            return -1;
        }
        if (!ip_parse(e->ip, strlen(e->ip), &ip)) {
            err_set(err, "event: field \"ip\" is not an IP address");
            return -1;
        }
        ip_format(&ip, e->ip);
        return 0;
    }
    if (strcmp(name, "tunnels") != 0) {
        err_set(err, "event: unknown event");
        return -1;
    }
    e->event = MSG_EVENT_TUNNELS;
    if ((a = msg_get_array(o, "event", "tunnels", MSG_MAX_TUNNELS, err)) == NULL) {
        return -1;
    }
    e->tunnels = xcalloc(json_array_size(a) + 1, sizeof(*e->tunnels));
    json_array_foreach(a, i, v)
    {
        if (decode_tunnel(v, i, &e->tunnels[i], err) == -1) {
            return -1;
        }
        e->ntunnels = i + 1;
    }
    return 0;
}

void
msg_event_encode(const struct msg *m, json_t *o)
{
    const struct msg_event *e = &m->event;
    json_t *a;
    size_t i;

    if (e->event == MSG_EVENT_FAILURE) {
        json_object_set_new(o, "event", json_string("failure"));
        json_object_set_new(o, "ip", json_string(e->ip));
        return;
    }
    json_object_set_new(o, "event", json_string("tunnels"));
    a = json_array();
    for (i = 0; i < e->ntunnels; i++) {
        const struct msg_tunnel *t = &e->tunnels[i];

        json_t *o1 = json_pack("{s:s,s:i,s:s,s:I}", "name", t->name, "port", (int)t->port, "peer",
                               t->peer, "since", (json_int_t)t->since);

        if (t->old_chain) {
            json_object_set_new(o1, "old_chain", json_true());
        }
        if (t->issuer_key[0] != '\0') {
            json_object_set_new(o1, "issuer_key", json_string(t->issuer_key));
        }
        json_array_append_new(a, o1);
    }
    json_object_set_new(o, "tunnels", a);
}

void
msg_dp_free(struct msg *m)
{
    switch (m->type) {
    case MSG_AUTH:
        auth_free(&m->auth);
        break;
    case MSG_EVENT:
        free(m->event.tunnels);
        break;
    case MSG_METRICS:
        free(m->metrics.apps);
        break;
    default:
        break;
    }
}
