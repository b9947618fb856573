/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* GET /api/v1/k8s/status for `harp-ctl k8s status`: the API server (reachable, version), the
 * namespace, and for every verb harp uses whether its service account may (a
 * SelfSubjectAccessReview each). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_k8s.h"
#include "xmalloc.h"

/* Every (group, resource, verb) harp calls; deploy/kubernetes/role.yaml grants these. */
static const struct {
    const char *group, *resource, *verb;
    bool cluster; /* not namespaced */
} uses[] = {
    {"apps", "deployments", "get", false},
    {"apps", "deployments", "list", false},
    {"apps", "deployments", "create", false},
    {"apps", "deployments", "patch", false},
    {"apps", "deployments", "delete", false},
    {"", "pods", "list", false},
    {"", "services", "get", false},
    {"", "services", "list", false},
    {"", "services", "create", false},
    {"", "services", "delete", false},
    {"", "persistentvolumeclaims", "create", false},
    {"", "persistentvolumeclaims", "delete", false},
    {"", "nodes", "list", true},
    {"", "namespaces", "get", true},
};

static json_t *
review(const struct hp_config *cfg, size_t i)
{
    json_t *ra = json_pack("{s:s,s:s,s:s}", "group", uses[i].group, "resource", uses[i].resource,
                           "verb", uses[i].verb);
    json_t *body, *out = NULL, *allowed;
    long status;

    if (!uses[i].cluster) {
        json_object_set_new(ra, "namespace", json_string(cfg->k8s_namespace));
    }
    if (strcmp(uses[i].resource, "namespaces") == 0) {
        json_object_set_new(ra, "name", json_string(cfg->k8s_namespace));
    }
    body = json_pack("{s:s,s:s,s:{s:o}}", "apiVersion", "authorization.k8s.io/v1", "kind",
                     "SelfSubjectAccessReview", "spec", "resourceAttributes", ra);
    if (k8s_call(cfg, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body,
                 &status, &out) == K8S_OK &&
        (status == 200 || status == 201)) {
        allowed = json_object_get(json_object_get(out, "status"), "allowed");
        allowed = json_is_boolean(allowed) ? json_incref(allowed) : json_null();
    } else {
        allowed = json_null();
    }
    json_decref(body);
    json_decref(out);
    return json_pack("{s:s,s:s,s:s,s:o}", "group", uses[i].group, "resource", uses[i].resource,
                     "verb", uses[i].verb, "allowed", allowed);
}

static void
on_status(struct api_req *req, struct api_resp *resp)
{
    const struct hp_config *cfg = &req->ctl->cfg;
    const char *why = k8s_unconfigured(cfg);
    json_t *o =
        json_pack("{s:b,s:s,s:s}", "enabled", cfg->k8s_enabled, "api_server",
                  cfg->k8s_api_server ? cfg->k8s_api_server : "", "namespace", cfg->k8s_namespace);
    json_t *v = NULL, *perms;
    char *path;
    long status = 0;
    size_t i;

    if (why != NULL) {
        json_object_set_new(o, "error", json_string(why));
        api_json(resp, 200, o);
        return;
    }
    json_object_set_new(o, "reachable", json_boolean(k8s_reachable(cfg)));
    if (k8s_call(cfg, "GET", "/version", NULL, &status, &v) == K8S_OK && status == 200 &&
        json_is_string(json_object_get(v, "gitVersion"))) {
        json_object_set(o, "version", json_object_get(v, "gitVersion"));
    } else {
        json_object_set_new(o, "version", json_null());
    }
    json_decref(v);
    path = xasprintf("/api/v1/namespaces/%s", cfg->k8s_namespace);
    if (k8s_call(cfg, "GET", path, NULL, &status, NULL) == K8S_OK &&
        (status == 200 || status == 404)) {
        json_object_set_new(o, "namespace_present", json_boolean(status == 200));
    } else {
        json_object_set_new(o, "namespace_present", json_null());
    }
    free(path);
    perms = json_array();
    for (i = 0; i < sizeof(uses) / sizeof(uses[0]); i++) {
        json_array_append_new(perms, review(cfg, i));
    }
    json_object_set_new(o, "permissions", perms);
    api_json(resp, 200, o);
}

const struct api_route api_k8s_status_routes[] = {
    {"GET", "/api/v1/k8s/status", false, false, on_status},
    {NULL, NULL, false, false, NULL},
};
