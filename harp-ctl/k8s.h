/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The Kubernetes API client: HaRP's configuration (token re-read at every call, CA file,
 * verification switch), JSON in and out, one of the outbound.c slots per call. */
#ifndef HARP_CTL_K8S_H
#define HARP_CTL_K8S_H

#include <jansson.h>
#include <stdbool.h>

#include "env.h"

/* Each call's own limit (HaRP's session timeout). */
#define K8S_CALL_TIMEOUT_S 60

enum k8s_rc {
    K8S_OK,      /* an HTTP answer, whatever its status */
    K8S_CONNECT, /* no connection, TLS failure, no token */
    K8S_TIMEOUT,
    K8S_BUSY /* every outbound slot stayed taken: not called */
};

/* NULL when the backend is enabled with an API server and a token, else HaRP's 503 text. */
const char *k8s_unconfigured(const struct hp_config *cfg);
/* <method> <api server><path> with <body> (borrowed; PATCH sends it as a strategic-merge
 * patch). K8S_OK with *<status> and, when <out> is given and the answer is JSON, *<out> (the
 * caller's; else NULL). */
enum k8s_rc k8s_call(const struct hp_config *cfg, const char *method, const char *path,
                     json_t *body, long *status, json_t **out);
/* True when the API server and a bearer token are configured and GET <api>/api answers 200
 * (HaRP's "reachable" in /info); false too when all outbound calls stay busy. */
bool k8s_reachable(const struct hp_config *cfg);
/* <s> as a Kubernetes object name (HaRP's sanitize): lower-case, [a-z0-9-], no runs of '-',
 * none at the ends, "exapp" when empty, at most 63 characters. <out> holds 64. */
void k8s_sanitize(const char *s, char out[64]);

#endif
