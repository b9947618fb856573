/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* What the /docker/exapp/... endpoints share: the engine port header, payload rules (pydantic's
 * lax mode, as HaRP validates), the derived names, the answers to failed Docker calls. */
#ifndef HARP_CTL_API_DOCKER_REQ_H
#define HARP_CTL_API_DOCKER_REQ_H

#include <jansson.h>
#include <stdbool.h>

#include "api.h"
#include "docker.h"

/* HaRP's ExAppName and the names derived from it (spec 4.0). */
struct exapp_name {
    char name[128];
    char instance_id[64];
    char role_suffix[64];
    char container[272]; /* nc_app_[<instance>_]<name>[_<role>] */
    char volume[272];    /* nc_app_[<instance>_]<name>_data */
};

/* The engine port header, then the JSON body, then the name object: on success the body (the
 * caller's to free) and *<port>, *<n>; else NULL once an error is answered. A NULL <port>
 * skips the header (the /k8s/ endpoints). */
json_t *api_docker_req_begin(struct api_req *req, struct api_resp *resp, unsigned *port,
                             struct exapp_name *n);
/* 400 "Payload validation error: <field>: <why>". */
void api_docker_req_invalid(struct api_resp *resp, const char *field, const char *why);
/* Answers a failed call: 503 cannot connect or all outbound calls busy, 504 timeout, 500
 * otherwise. */
void api_docker_req_failed(struct api_resp *resp, enum docker_rc rc, unsigned port);
/* A pydantic lax int at <key> (int, or a string Python's int() takes). */
bool api_docker_req_int(json_t *v, long *out);
/* A pydantic lax bool at <key> (absent: <def>); -1 when the value is not one. */
int api_docker_req_bool(json_t *body, const char *key, bool def, bool *out);
/* A string at <key>: absent gives <def> (NULL: required); -1 with 400 answered otherwise. */
int api_docker_req_str(struct api_resp *resp, json_t *body, const char *key, const char *def,
                       const char **out);

#endif
