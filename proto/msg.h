/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* proto messages between harp-ctl and harp-dp: one C struct per message, decoded and validated
 * once (sizes, types, required fields, enums) and encoded by the same module (msg.c, msg_dp.c,
 * msg_ctl.c). After msg_decode() a receiver never looks at JSON again. The wire form of each
 * message is given beside its type; tests/fixtures/proto/ holds an example of each. */
#ifndef HARP_PROTO_MSG_H
#define HARP_PROTO_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "err.h"
#include "exapp.h"
#include "refusal.h"
#include "log.h"

/* Bump when any message changes; both sides refuse a peer with another version at hello
 * (harp-ctl answers `error`, the data plane closes the link on a `welcome` of another). */
#define PROTO_VERSION 6

enum msg_type {
    /* dp -> ctl */
    MSG_HELLO,     /* {proto, dp_id, pid, version, dp_key?}: version = last applied table version,
                    * -1; dp_key the data plane's Ed25519 public key (hex) its table_acks verify
                    * with */
    MSG_ACK,       /* {version} */
    MSG_LOOKUP,    /* {id, app_id}: an app id missing from the table */
    MSG_AUTH,      /* {id, app_id, cookie_b64, headers: [[name, value_b64], ...]}: who is the
                    * user; header values and the cookie are bytes, carried in base64 */
    MSG_EVENT,     /* {event: "failure", ip} | {event: "tunnels", tunnels: [...]} */
    MSG_METRICS,   /* {client_conns, upstream_conns, websocket_conns, bytes_in, bytes_out,
                    * session_hits, session_misses, refusals: {reason: n}, apps: [...]}: the
                    * data plane's counters since it started, every second (msg_metrics) */
    MSG_TABLE_ACK, /* {version, table_hash, sig}: the table applied hashes to table_hash; sig
                    * by dp_key over the canonical {type: "harp.table_ack", version, dp_id,
                    * table_hash} (docs/audit.md) */
    /* ctl -> dp */
    MSG_WELCOME,       /* {proto}: the answer to a good hello, before anything else */
    MSG_SNAPSHOT,      /* {version, exapps: [...], audit?} */
    MSG_DELTA,         /* {from, version, upserts: [...], deletes: [app_id, ...], audit?}; audit
                        * is {seq, table_hash, chain_head, sig}: the table version as harp-ctl
                        * signed it (docs/audit.md) */
    MSG_LOOKUP_REPLY,  /* {id, app_id, found, exapp?, error?} */
    MSG_AUTH_REPLY,    /* {id, result: "user"|"anonymous"|"error", user_id, access_level, ttl_ms,
                        * error?}: the last three with "user" only */
    MSG_BANS,          /* {bans: [{ip, expires_at}]}: the whole list, replacing the last one */
    MSG_ENGINES,       /* {engines: [{port, address, tcp_port, api_min?, api_max?} |
                        * {port, refused: true}]}: the whole list; address "+/path" is a Unix
                        * socket */
    MSG_REQUEST_ERROR, /* {id, message}: request <id> (a look-up or auth) cannot be answered
                        * (malformed, or too many look-ups waiting): the data plane fails it
                        * with 503 */
    MSG_SETTINGS,      /* {log_level, timeout_connect_ms, timeout_client_ms, timeout_server_ms,
                        * timeout_tunnel_ms, timeout_head_ms, trusted_proxy_ips, ban_reply_429}:
                        * the settings harp-ctl changed at a reload (HP_*), replacing the data
                        * plane's own but for its command-line options */
    /* both ways */
    MSG_ERROR, /* {message}: the sender closes the link after it */
    MSG_PING,
    MSG_PONG,
    MSG_NTYPES
};

enum msg_dir { MSG_FROM_DP = 1, MSG_FROM_CTL = 2, MSG_BOTH = 3 };

const char *msg_type_name(enum msg_type t);

/* Limits checked at decode (beyond EXAPP_* and MSG_AUTH_MAX_HEADERS). */
#define MSG_DP_ID_MAX 63
#define MSG_TEXT_MAX 1024 /* error, request_error and look-up error texts */
#define MSG_USER_ID_MAX 255
#define MSG_AUTH_MAX_HEADERS 256
#define MSG_MAX_BANS (1u << 20)
#define MSG_MAX_ENGINES 1024
#define MSG_ENGINE_ADDRESS_MAX 255
#define MSG_API_VERSION_MAX 15
#define MSG_MAX_TUNNELS 4096
#define MSG_TUNNEL_NAME_MAX 127
#define MSG_TUNNEL_PEER_MAX 63
#define MSG_HASH_HEX 64               /* a SHA-256 or an Ed25519 public key, lower-case hex */
#define MSG_SIG_HEX 128               /* an Ed25519 signature, lower-case hex */
#define MSG_TRUSTED_PROXIES_MAX 65535 /* settings: HP_TRUSTED_PROXY_IPS, bytes */
#define MSG_TIMEOUT_MS_MAX INT64_C(3153600000000) /* settings: 100 years */

struct msg_hello {
    int64_t proto; /* when not PROTO_VERSION, the other fields were not decoded (zero) */
    char dp_id[MSG_DP_ID_MAX + 1];
    int64_t pid; /* 0 when absent */
    int64_t version;
    char dp_key[MSG_HASH_HEX + 1]; /* "" when absent */
};

struct msg_welcome {
    int64_t proto; /* any value: the receiver compares it with PROTO_VERSION */
};

struct msg_ack {
    int64_t version;
};

struct msg_table_ack {
    int64_t version;
    char table_hash[MSG_HASH_HEX + 1];
    char sig[MSG_SIG_HEX + 1];
};

/* What a published table version carries for the audit chain; table_hash "" when absent. */
struct msg_table_audit {
    int64_t seq;
    char table_hash[MSG_HASH_HEX + 1];
    char chain_head[MSG_HASH_HEX + 1];
    char sig[MSG_SIG_HEX + 1];
};

/* The counters of a data plane (metrics): totals since it started, so a message lost with a
 * link loses nothing; apps lists only those that changed since the last message (all of them
 * after a reconnection), at most MSG_METRICS_MAX_APPS a message. */
#define MSG_METRICS_MAX_APPS 512
/* public, user, admin, none (not decided by an ExApp route) */
#define METRICS_NLEVELS 4
/* 1xx, 2xx, 3xx, 4xx, 5xx, dropped (no status: the connection closed) */
#define METRICS_NCLASSES 6
/* request duration buckets, the last +Inf */
#define METRICS_NBUCKETS 14
#define METRICS_APP_NONE "-" /* requests of no known ExApp */

/* The upper bounds (seconds) of the duration buckets but the last (+Inf). */
extern const double metrics_bucket_le[METRICS_NBUCKETS - 1];
/* "public", "user", "admin", "none"; "1xx" ... "5xx", "dropped". */
extern const char *const metrics_level_names[METRICS_NLEVELS];
extern const char *const metrics_class_names[METRICS_NCLASSES];

struct msg_metrics_app {
    char app_id[EXAPP_ID_MAX + 1]; /* an app id, or METRICS_APP_NONE */
    int64_t requests[METRICS_NLEVELS][METRICS_NCLASSES];
    int64_t connect_errors;            /* connections to the ExApp that failed */
    int64_t buckets[METRICS_NBUCKETS]; /* requests by duration, each in its own bucket only */
    double duration_sum;               /* seconds */
};

struct msg_metrics {
    int64_t client_conns, upstream_conns, websocket_conns; /* open now */
    int64_t bytes_in, bytes_out;                           /* from and to clients */
    int64_t session_hits, session_misses; /* user sessions answered from the cache, or asked */
    int64_t refusals[REFUSAL_MAX];        /* [REFUSAL_NONE] unused */
    struct msg_metrics_app *apps;
    size_t napps;
};

struct msg_lookup {
    char app_id[EXAPP_ID_MAX + 1]; /* as the data plane saw it: checked by the receiver */
};

struct msg_header {
    char name[256]; /* an HTTP token, lower-case as the data plane sent it */
    char *value;    /* bytes, NUL-terminated (a NUL inside is possible: check value_len) */
    size_t value_len;
};

struct msg_auth {
    int64_t id;                    /* the same as msg.id */
    char app_id[EXAPP_ID_MAX + 1]; /* as the data plane saw it: checked by the receiver */
    char *cookie;                  /* the oc_sessionPassphrase value: bytes, never a NUL inside */
    size_t cookie_len;
    struct msg_header *headers;
    size_t nheaders;
};

enum msg_event_kind { MSG_EVENT_FAILURE, MSG_EVENT_TUNNELS };

struct msg_tunnel {
    char name[MSG_TUNNEL_NAME_MAX + 1];
    unsigned port;
    char peer[MSG_TUNNEL_PEER_MAX + 1];
    int64_t since;  /* unix time */
    bool old_chain; /* its client certificate is of a rotated CA (sent only when true) */
    /* SHA-256 of the public key that signed its client certificate (canon_pubkey_sha256),
     * hex; "" without TLS (sent only when set) */
    char issuer_key[MSG_HASH_HEX + 1];
};

struct msg_event {
    enum msg_event_kind event;
    char ip[IP_STR_MAX];        /* failure: the client IP, canonical */
    struct msg_tunnel *tunnels; /* tunnels: the whole list this data plane serves */
    size_t ntunnels;
};

/* ExApp records (exapp_to_json(app, true) with app_id, created_at, updated_at), validated by
 * exapp_from_json(); app ids are lower-case and distinct within a message. */
struct msg_snapshot {
    int64_t version;
    struct exapp *exapps;
    size_t nexapps;
    struct msg_table_audit audit;
};

struct msg_delta {
    int64_t from, version;
    struct exapp *upserts;
    size_t nupserts;
    char (*deletes)[EXAPP_ID_MAX + 1]; /* lower-case app ids */
    size_t ndeletes;
    struct msg_table_audit audit;
};

struct msg_lookup_reply {
    char app_id[EXAPP_ID_MAX + 1]; /* echoed as the look-up sent it */
    bool found;
    struct exapp *exapp; /* NULL when absent */
    char *error;         /* NULL when absent */
};

enum msg_auth_result { MSG_AUTH_USER, MSG_AUTH_ANONYMOUS, MSG_AUTH_ERROR };

struct msg_auth_reply {
    enum msg_auth_result result;
    char user_id[MSG_USER_ID_MAX + 1]; /* user only */
    enum access_level access_level;    /* user only */
    int64_t ttl_ms;                    /* user only: how long the answer may be reused */
    char *error;                       /* NULL when absent */
};

struct msg_ban {
    char ip[IP_STR_MAX]; /* canonical */
    int64_t expires_at;  /* unix time */
};

struct msg_bans {
    struct msg_ban *bans;
    size_t nbans;
};

struct msg_engine {
    unsigned port;
    bool refused; /* removed by an operator: only <port> is meaningful */
    char address[MSG_ENGINE_ADDRESS_MAX + 1];
    unsigned tcp_port;
    char api_min[MSG_API_VERSION_MAX + 1], api_max[MSG_API_VERSION_MAX + 1]; /* "" unknown */
};

struct msg_engines {
    struct msg_engine *engines;
    size_t nengines;
};

/* The live settings; the timeouts in milliseconds as HP_TIMEOUT_* give them. */
struct msg_settings {
    enum log_level log_level;
    int64_t timeout_connect_ms, timeout_client_ms, timeout_server_ms, timeout_tunnel_ms,
        timeout_head_ms;
    char *trusted_proxy_ips; /* as HP_TRUSTED_PROXY_IPS is written (cidr_list_parse) */
    bool ban_reply_429;
};

struct msg_text {
    char *message; /* request_error and error */
};

/* One message. Built by msg_decode(), or by a sender that fills it and calls msg_encode();
 * the pointers are owned by the message only when msg_decode() made it (msg_free()). */
struct msg {
    enum msg_type type;
    /* The request id of lookup, auth, lookup_reply, auth_reply and request_error. msg_decode()
     * sets it whenever "id" is an integer, also when it fails otherwise, so that a receiver
     * can fail that request alone. */
    bool has_id;
    int64_t id;
    union {
        struct msg_hello hello;
        struct msg_welcome welcome;
        struct msg_ack ack;
        struct msg_table_ack table_ack;
        struct msg_lookup lookup;
        struct msg_auth auth;
        struct msg_event event;
        struct msg_metrics metrics;
        struct msg_snapshot snapshot;
        struct msg_delta delta;
        struct msg_lookup_reply lookup_reply;
        struct msg_auth_reply auth_reply;
        struct msg_bans bans;
        struct msg_engines engines;
        struct msg_text request_error;
        struct msg_settings settings;
        struct msg_text error;
    };
};

/* Decodes <json> (an object as frame_next() gives it) sent by <from>: 0 with <m> filled, or
 * -1 with <err> (never quoting a value; m->type is MSG_NTYPES when the type was not known).
 * <m> is to be freed with msg_free() either way. */
int msg_decode(const json_t *json, enum msg_dir from, struct msg *m, struct hp_err *err);
/* A new JSON object for <m> (not stolen). */
json_t *msg_encode(const struct msg *m);
/* The frame of <m> in a new buffer of *<len> bytes; NULL if it would exceed FRAME_MAX. */
char *msg_frame(const struct msg *m, size_t *len);
/* Frees what msg_decode() allocated (credentials are wiped) and zeroes <m>. */
void msg_free(struct msg *m);
/* The value of the last header named <name> (lower-case) in <a>, or NULL. */
const struct msg_header *msg_auth_header(const struct msg_auth *a, const char *name);

/* The JSON form of one published ExApp record, and its decoder (into <app>, app_id included;
 * -1 with <err> naming the field). */
json_t *msg_exapp_encode(const struct exapp *app);
int msg_exapp_decode(const json_t *v, struct exapp *app, struct hp_err *err);

/* --- To be removed when harp-dp is converted to msg_decode()/msg_encode() ----------------- */

/* The type of <msg> if it is known and <from> may send it; -1 with <err> otherwise. */
int msg_check(const json_t *msg, enum msg_dir from, struct hp_err *err);
/* A new message object of type <t>; add fields with json_object_set_new(). */
json_t *msg_new(enum msg_type t);
/* Bytes as a proto string (base64): header values and cookies need not be UTF-8. */
json_t *msg_bytes(const void *p, size_t n);

#endif
