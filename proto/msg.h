/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* proto messages between harp-ctl and harp-dp: the type table, who may send what, and the
 * checks every message passes before it is acted on. */
#ifndef HARP_PROTO_MSG_H
#define HARP_PROTO_MSG_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

/* Bump when any message changes; both sides refuse a peer with another version. */
#define PROTO_VERSION 3

enum msg_type {
    /* dp -> ctl */
    MSG_HELLO,  /* {proto, dp_id, pid, version}: version = last applied table version */
    MSG_ACK,    /* {version} */
    MSG_LOOKUP, /* {id, app_id}: an app id missing from the table */
    MSG_AUTH,   /* {id, app_id, cookie_b64, headers: [[name, value_b64], ...]}: who is the
                 * user; header values and the cookie are bytes, carried in base64 */
    MSG_EVENT,  /* {event, ...}: "failure" {ip}, tunnel up/down, stats */
    /* ctl -> dp */
    MSG_SNAPSHOT,      /* {version, exapps: [...], settings: {...}} */
    MSG_DELTA,         /* {from, version, upserts: [...], deletes: [app_id, ...]} */
    MSG_LOOKUP_REPLY,  /* {id, app_id, found, exapp?} */
    MSG_AUTH_REPLY,    /* {id, result: "user"|"anonymous"|"error", user_id, access_level, ttl_ms} */
    MSG_BANS,          /* {bans: [{ip, expires_at}]}: the whole list, replacing the last one */
    MSG_ENGINES,       /* {engines: [{port, address, tcp_port, api_min, api_max}]}: the whole
                        * list; address "+/path" is a Unix socket */
    MSG_REQUEST_ERROR, /* {id, message}: request <id> (a look-up or auth) cannot be answered
                        * (malformed, or too many look-ups waiting): the data plane fails it
                        * with 503 */
    MSG_ERROR,         /* {message}: the sender closes the link after it */
    /* both ways */
    MSG_PING,
    MSG_PONG,
    MSG_NTYPES
};

enum msg_dir { MSG_FROM_DP = 1, MSG_FROM_CTL = 2, MSG_BOTH = 3 };

/* The type of <msg> if it is known and <from> may send it; -1 with <err> otherwise. */
int msg_check(const json_t *msg, enum msg_dir from, struct hp_err *err);
const char *msg_type_name(enum msg_type t);
/* A new message object of type <t>; add fields with json_object_set_new(). */
json_t *msg_new(enum msg_type t);

/* Bytes as a proto string (base64): header values and cookies need not be UTF-8. */
json_t *msg_bytes(const void *p, size_t n);
/* The bytes of a msg_bytes() string in a new NUL-terminated buffer of *<n> bytes (+1), or
 * NULL if <v> is not one. */
char *msg_bytes_get(const json_t *v, size_t *n);

#define MSG_AUTH_MAX_HEADERS 256

struct msg_header {
    char name[256]; /* an HTTP token, lower-case as the data plane sent it */
    char *value;    /* bytes, NUL-terminated (a NUL inside is possible: check value_len) */
    size_t value_len;
};

/* An `auth` request, decoded and validated. */
struct msg_auth {
    json_int_t id;
    const char *app_id; /* borrowed from the message */
    char *cookie;       /* the oc_sessionPassphrase value: bytes, never a NUL inside */
    size_t cookie_len;
    struct msg_header *headers;
    size_t nheaders;
};

/* Decodes an `auth` message that passed msg_check(); -1 with <err> (never quoting a value)
 * if a field is malformed. <a> is to be freed with msg_auth_free() either way. */
int msg_auth_decode(const json_t *msg, struct msg_auth *a, struct hp_err *err);
/* The value of the last header named <name> (lower-case) in <a>, or NULL. */
const struct msg_header *msg_auth_header(const struct msg_auth *a, const char *name);
/* Wipes (they are credentials) and frees the decoded values. */
void msg_auth_free(struct msg_auth *a);

#endif
