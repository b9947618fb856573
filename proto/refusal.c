/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The names of the refusal reasons (refusal.h). */
#include "config.h"

#include <stddef.h>

#include "refusal.h"

static const char *const names[REFUSAL_MAX] = {
    [REFUSAL_NONE] = "none",
    [REFUSAL_NO_ROUTE] = "no_route",
    [REFUSAL_UNKNOWN_APP] = "unknown_app",
    [REFUSAL_ACCESS_DENIED] = "access_denied",
    [REFUSAL_DOCKER_DENIED] = "docker_denied",
    [REFUSAL_BAD_KEY] = "bad_key",
    [REFUSAL_NO_USER] = "no_user",
    [REFUSAL_BANNED] = "banned",
    [REFUSAL_BAD_REQUEST] = "bad_request",
    [REFUSAL_BAD_VERSION] = "bad_version",
    [REFUSAL_TOO_LARGE] = "too_large",
    [REFUSAL_TRAVERSAL] = "traversal",
    [REFUSAL_INTERNAL_GUARD] = "internal_guard",
    [REFUSAL_MATCH_BUDGET] = "match_budget",
    [REFUSAL_BAD_ENGINE_PORT] = "bad_engine_port",
    [REFUSAL_HOST_UNRESOLVED] = "host_unresolved",
    [REFUSAL_UPSTREAM_UNREACHABLE] = "upstream_unreachable",
    [REFUSAL_BAD_GATEWAY] = "bad_gateway",
    [REFUSAL_UPSTREAM_TIMEOUT] = "upstream_timeout",
    [REFUSAL_CTL_UNAVAILABLE] = "ctl_unavailable",
    [REFUSAL_CTL_REFUSED] = "ctl_refused",
    [REFUSAL_HEAD_TIMEOUT] = "head_timeout",
    [REFUSAL_BODY_TIMEOUT] = "body_timeout",
    [REFUSAL_OVER_CAPACITY] = "over_capacity",
};

const char *
refusal_name(enum refusal_reason r)
{
    return (unsigned)r < REFUSAL_MAX && names[r] != NULL ? names[r] : "unknown";
}
