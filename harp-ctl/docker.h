/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Docker Engine API client (libcurl): where an engine port leads, its API versions, and calls
 * bounded by one deadline (HaRP's per-endpoint session timeouts). */
#ifndef HARP_CTL_DOCKER_H
#define HARP_CTL_DOCKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"
#include "http_client.h"

#define DOCKER_LOCAL_PORT 24000
#define ENGINE_PORT_MIN 24000
#define ENGINE_PORT_MAX 24099

/* Where an engine is reached. */
struct docker_engine {
    unsigned port;       /* the docker-engine-port it answers to */
    char unix_path[108]; /* non-empty: over this Unix socket */
    char host[256];      /* else http://host:tcp_port */
    unsigned tcp_port;
    char name[64]; /* registered name, "local", or "" */
};

/* An engine's API versions as its /version reports them ("1.41"). */
struct docker_version {
    char version[64];
    char api[16];
    char min_api[16];
};

/* DOCKER_BUSY: not made, all HP_OUTBOUND_MAX outbound calls stayed busy (outbound.h). */
enum docker_rc { DOCKER_OK = 0, DOCKER_CONNECT, DOCKER_TIMEOUT, DOCKER_FAILED, DOCKER_BUSY };

/* Parses an operator's engine address: unix:///abs/path or tcp://host:port. */
int docker_address_parse(const char *addr, struct docker_engine *e, struct hp_err *err);
/* Where port <port> leads: a registered engine; else the local socket for port 24000 when the
 * socket exists; else 127.0.0.1:<port> (an FRP tunnel, or whatever listens there). */
void docker_engine_resolve(struct ctl *ctl, unsigned port, struct docker_engine *e);
/* "unix:///var/run/docker.sock" or "tcp://127.0.0.1:24001". */
void docker_engine_describe(const struct docker_engine *e, char *buf, size_t len);

/* Calls to one engine sharing a deadline. api is the version prefix used ("/v1.41"), taken
 * from the engine's /version (cached) so the engine accepts it, or "" when unknown. */
struct docker_session {
    struct docker_engine eng;
    int64_t deadline_ms; /* CLOCK_MONOTONIC */
    char api[20];
    char error[256]; /* what went wrong, for logs */
};

struct docker_reply {
    long status;
    struct http_body body;
};

void docker_session_open(struct docker_session *s, struct ctl *ctl, unsigned port,
                         unsigned timeout_s);
/* One call; <path> is unversioned ("/containers/x/json"), the session's prefix is added.
 * <body> may be NULL; with <ctype> NULL a body is sent as application/json. The answer is read
 * up to <max> bytes. reply->body is freed with http_body_free(). */
enum docker_rc docker_call(struct docker_session *s, const char *method, const char *path,
                           const char *ctype, const void *body, size_t len, size_t max,
                           struct docker_reply *reply);
/* docker_call with a JSON body (not stolen; may be NULL) and the answer parsed as JSON into
 * *<out> (NULL when it is not JSON). */
enum docker_rc docker_call_json(struct docker_session *s, const char *method, const char *path,
                                json_t *body, long *status, json_t **out);
/* Milliseconds left before the session's deadline (0 when past). */
int64_t docker_remaining_ms(const struct docker_session *s);

/* GET /version and /_ping of <e>, with <timeout_ms>. */
enum docker_rc docker_probe(const struct docker_engine *e, long timeout_ms,
                            struct docker_version *v, char *why, size_t why_len);

#endif
