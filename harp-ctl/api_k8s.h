/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* What the /k8s/exapp/... endpoints share (spec 4.8): the name object and the object names
 * derived from it, the configuration check, the answers to failed calls. */
#ifndef HARP_CTL_API_K8S_H
#define HARP_CTL_API_K8S_H

#include "api.h"
#include "api_docker_req.h"
#include "k8s.h"

struct k8s_names {
    struct exapp_name n;
    char deploy[64];  /* sanitize(container name): Deployment and Service */
    char pvc[64];     /* sanitize(volume name) */
    char base[64];    /* sanitize(nc_app_[<instance>_]<name>): label part-of */
    char app_id[128]; /* lower-case name: the ExApp's id */
};

/* The JSON body and the name object, then (when <need_k8s>) the configuration: the body (the
 * caller's) with *<kn> filled, or NULL once an error is answered. */
json_t *api_k8s_begin(struct api_req *req, struct api_resp *resp, struct k8s_names *kn,
                      bool need_k8s);
/* A call that got no HTTP answer: 503 "Error communicating with Kubernetes API" (also when
 * every outbound slot stayed busy), a timeout the generic 500. */
void api_k8s_failed(struct api_resp *resp, enum k8s_rc rc);
/* 503 "<what> '<name>': Status <status>". */
void api_k8s_status(struct api_resp *resp, const char *what, const char *name, long status);

#endif
