/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The control REST API: what handlers read and answer (api.c), the route tables they export
 * to the daemon (api_server.c), the body limits. */
#ifndef HARP_CTL_API_H
#define HARP_CTL_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ctl.h"
#include "err.h"

/* Bodies above this are answered with 413 (the largest AppAPI sends is a CA bundle). */
#define API_MAX_BODY (4u * 1024 * 1024)
/* An oversized body is read and dropped up to this much before the connection is cut. */
#define API_MAX_DRAIN (64u * 1024 * 1024)

struct api_req {
    struct ctl *ctl;
    const char *method;
    const char *path;
    const char *param; /* the part of the path after a route's prefix, or NULL */
    const char *body;
    size_t body_len;
    void *conn; /* the MHD connection, for api_header() */
};

/* What a handler answers: set with api_json(), api_error() or api_empty(). */
struct api_resp {
    unsigned status;
    char *body;
    const char *content_type;
};

typedef void (*api_handler_cb)(struct api_req *req, struct api_resp *resp);

/* The header a data plane adds to every request it forwards to the control API. */
#define API_VIA_DATAPLANE "harp-via-dataplane"

struct api_route {
    const char *method;
    const char *path; /* exact, or a prefix when it ends with '/' and <param> is true */
    bool param;
    bool public; /* no shared key needed */
    api_handler_cb handler;
};

/* <obj> is stolen. Python json.dumps formatting ({"a": 1}), as HaRP's agent answers. */
void api_json(struct api_resp *resp, unsigned status, json_t *obj);
/* text/plain; "<status>: <Reason>" when <msg> is NULL, else "<status>: <Reason>: <msg>". */
void api_error(struct api_resp *resp, unsigned status, const char *msg);
void api_empty(struct api_resp *resp, unsigned status);
/* text/plain with <text> as the whole body (HaRP's Docker endpoints answer so). */
void api_text(struct api_resp *resp, unsigned status, const char *text);
/* The value of request header <name> (case-insensitive), or NULL. */
const char *api_header(struct api_req *req, const char *name);
/* The value of query argument <name>, or NULL. */
const char *api_query(struct api_req *req, const char *name);
/* Parses the request body as JSON (whatever its Content-Type); on failure answers 400. */
json_t *api_body_json(struct api_req *req, struct api_resp *resp);

/* The route tables of the api_* files, read by api_server.c only. */
extern const struct api_route api_harp_routes[];
extern const struct api_route api_ops_routes[];
extern const struct api_route api_docker_routes[];
extern const struct api_route api_engines_routes[];
extern const struct api_route api_certs_routes[];
extern const struct api_route api_doctor_routes[];
extern const struct api_route api_k8s_routes[];
extern const struct api_route api_k8s_status_routes[];
extern const struct api_route api_k8s_expose_routes[];
extern const struct api_route api_metrics_routes[];

/* The Prometheus text of GET /metrics (api_metrics.c); the caller frees it. */
char *api_metrics_render(struct ctl *ctl);

#endif
