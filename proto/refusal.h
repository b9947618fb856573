/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Why a data plane refused a request: one enum and one name table (pure). The names appear in
 * harp-dp's request and access logs as reason=<name> and in harp_refusals_total{reason} of the
 * metrics (harp-ctl renders them, zero included). */
#ifndef HARP_PROTO_REFUSAL_H
#define HARP_PROTO_REFUSAL_H

enum refusal_reason {
    REFUSAL_NONE,                 /* not a refusal */
    REFUSAL_NO_ROUTE,             /* 404: no route of the app matches */
    REFUSAL_UNKNOWN_APP,          /* 404: no app id, or the control plane does not know it */
    REFUSAL_ACCESS_DENIED,        /* 403: the user's access level is too low for the route */
    REFUSAL_DOCKER_DENIED,        /* 403: a Docker call outside the allow-list */
    REFUSAL_BAD_KEY,              /* 401 or dropped: missing or wrong harp-shared-key */
    REFUSAL_NO_USER,              /* 401: Nextcloud could not say who the user is */
    REFUSAL_BANNED,               /* 429 or dropped: the client IP is banned */
    REFUSAL_BAD_REQUEST,          /* 400: malformed head, path or body framing */
    REFUSAL_BAD_VERSION,          /* 505: not HTTP/1.x */
    REFUSAL_TOO_LARGE,            /* 431: the request head is too large */
    REFUSAL_TRAVERSAL,            /* dropped: a parent directory in the path */
    REFUSAL_INTERNAL_GUARD,       /* dropped: an AppAPI-only ExApp endpoint, unsigned */
    REFUSAL_MATCH_BUDGET,         /* 400: route matching ran out of its budget */
    REFUSAL_BAD_ENGINE_PORT,      /* 503: docker-engine-port is not a port number */
    REFUSAL_HOST_UNRESOLVED,      /* 404: the ExApp's host name does not resolve */
    REFUSAL_UPSTREAM_UNREACHABLE, /* 503: no connection to the ExApp or the engine */
    REFUSAL_BAD_GATEWAY,          /* 502: the upstream did not answer with a valid head */
    REFUSAL_UPSTREAM_TIMEOUT,     /* 504: HP_TIMEOUT_SERVER */
    REFUSAL_CTL_UNAVAILABLE,      /* 503: the control plane (link or API) is unreachable */
    REFUSAL_CTL_REFUSED,          /* 503: the control plane could not take the user look-up */
    REFUSAL_HEAD_TIMEOUT,         /* 408: HP_TIMEOUT_HEAD */
    REFUSAL_BODY_TIMEOUT,         /* dropped: the request body stalled (HP_TIMEOUT_CLIENT) */
    REFUSAL_OVER_CAPACITY,        /* 408/503: HP_MAX_HEAD_MEMORY or HP_MAX_CONNECTIONS */
    REFUSAL_MAX
};

/* The reason's name ("no_route"); "unknown" outside the enum. */
const char *refusal_name(enum refusal_reason r);

#endif
