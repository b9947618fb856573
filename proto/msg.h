/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* proto messages between harp-ctl and harp-dp: the type table, who may send what, and the
 * checks every message passes before it is acted on. */
#ifndef HARP_PROTO_MSG_H
#define HARP_PROTO_MSG_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

/* Bump when any message changes; both sides refuse a peer with another version. */
#define PROTO_VERSION 2

enum msg_type {
    /* dp -> ctl */
    MSG_HELLO,  /* {proto, dp_id, pid, version}: version = last applied table version */
    MSG_ACK,    /* {version} */
    MSG_LOOKUP, /* {id, app_id}: an app id missing from the table */
    MSG_AUTH,   /* {id, app_id, cookie, headers: [[name, value], ...]}: who is the user */
    MSG_EVENT,  /* {event, ...}: "failure" {ip}, tunnel up/down, stats */
    /* ctl -> dp */
    MSG_SNAPSHOT, /* {version, exapps: [...], settings: {...}} */
    MSG_DELTA,    /* {from, version, upserts: [...], deletes: [app_id, ...]} */
    MSG_LOOKUP_REPLY, /* {id, app_id, found, exapp?} */
    MSG_AUTH_REPLY,   /* {id, result: "user"|"anonymous"|"error", user_id, access_level, ttl_ms} */
    MSG_BANS,         /* {bans: [{ip, expires_at}]}: the whole list, replacing the last one */
    MSG_ENGINES,      /* {engines: [{port, address, tcp_port, api_min, api_max}]}: the whole
                       * list; address "+/path" is a Unix socket */
    MSG_ERROR,        /* {message}: the sender closes the link after it */
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

#endif
