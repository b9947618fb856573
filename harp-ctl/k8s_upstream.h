/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Where an ExApp on Kubernetes is reached (spec 4.9.7 and 4.10): a Service's address by its
 * type, a node's address, the look-up on a cache miss. Calls the API through k8s.c. */
#ifndef HARP_CTL_K8S_UPSTREAM_H
#define HARP_CTL_K8S_UPSTREAM_H

#include <jansson.h>

#include "env.h"
#include "exapp.h"
#include "store.h"

struct k8s_upstream {
    char host[256];
    unsigned port;
};

/* The upstream of Service <svc> exposed as <o>->kind (nodeport, clusterip, loadbalancer) with
 * <o>'s upstream host, node name, node label selector and address type. 1 found; 0 none, with
 * *<why> HaRP's 503 text (a LoadBalancer without ingress: "" so the caller may wait); -1 when
 * the API failed. */
int k8s_upstream_from_service(const struct hp_config *cfg, json_t *svc, const struct k8s_expose *o,
                              struct k8s_upstream *up, const char **why);
/* Spec 4.10 for <app_id>, improved: <stored> (may be NULL) is what store_k8s_get() gave; a
 * "docker" app costs no call, a "manual" one answers from it, an exposed one is looked up
 * with its own options. 1 found, 0 none, -1 a Kubernetes API error. */
int k8s_upstream_resolve(const struct hp_config *cfg, const char *app_id,
                         const struct k8s_expose *stored, struct k8s_upstream *up);
/* Replaces <app>'s host and port (and clears its resolved address) with its Kubernetes
 * upstream when the backend is configured and there is one: 1 replaced, 0 none, -1 an API
 * error (the caller stores nothing). */
int k8s_upstream_apply(const struct hp_config *cfg, struct store *st, struct exapp *app);

#endif
