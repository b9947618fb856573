/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* ExApp upstreams on Kubernetes: from a Service by its type, from a node's addresses, and the
 * look-up of spec 4.10 (Service by name, by part-of label, manual annotations). */
#include "config.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s.h"
#include "k8s_upstream.h"
#include "log.h"
#include "xmalloc.h"

#define ANN_TYPE "appapi.nextcloud.com/expose-type"
#define ANN_HOST "appapi.nextcloud.com/upstream-host"
#define ANN_PORT "appapi.nextcloud.com/upstream-port"

static const char *
jstr(json_t *o, const char *path)
{
    char key[64];
    const char *dot;

    while ((dot = strchr(path, '.')) != NULL) {
        snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
        o = json_object_get(o, key);
        path = dot + 1;
    }
    return json_string_value(json_object_get(o, path));
}

static bool
node_ready(json_t *node)
{
    json_t *c;
    size_t i;

    json_array_foreach(json_object_get(json_object_get(node, "status"), "conditions"), i, c)
    {
        if (strcmp(jstr(c, "type") ? jstr(c, "type") : "", "Ready") == 0) {
            return strcmp(jstr(c, "status") ? jstr(c, "status") : "", "True") == 0;
        }
    }
    return false;
}

static const char *
node_address(json_t *node, const char *type)
{
    json_t *a;
    size_t i;

    json_array_foreach(json_object_get(json_object_get(node, "status"), "addresses"), i, a)
    {
        if (jstr(a, "type") != NULL && strcmp(jstr(a, "type"), type) == 0 && jstr(a, "address")) {
            return jstr(a, "address");
        }
    }
    return NULL;
}

/* A node's address: list the nodes (with the label selector), keep <node_name>'s, Ready ones
 * first; of the first, the address of <type>, else the other IP type, else its Hostname. */
static int
node_host(const struct hp_config *cfg, const struct k8s_expose *o, char *host, size_t len)
{
    const char *other = strcmp(o->address_type, "ExternalIP") == 0 ? "InternalIP" : "ExternalIP";
    const char *type = strcmp(o->address_type, "ExternalIP") == 0 ? "ExternalIP" : "InternalIP";
    json_t *list = NULL, *n, *pick = NULL;
    char path[400];
    const char *a;
    long status;
    size_t i;
    int pass;

    if (o->node_selector[0] != '\0') {
        char *esc = curl_easy_escape(NULL, o->node_selector, 0);

        snprintf(path, sizeof(path), "/api/v1/nodes?labelSelector=%s", esc ? esc : "");
        curl_free(esc);
    } else {
        snprintf(path, sizeof(path), "/api/v1/nodes");
    }
    if (k8s_call(cfg, "GET", path, NULL, &status, &list) != K8S_OK || status != 200) {
        json_decref(list);
        return -1;
    }
    for (pass = 0; pass < 2 && pick == NULL; pass++) {
        json_array_foreach(json_object_get(list, "items"), i, n)
        {
            if (o->node_name[0] != '\0' &&
                strcmp(jstr(n, "metadata.name") ? jstr(n, "metadata.name") : "", o->node_name)) {
                continue;
            }
            if (pass == 1 || node_ready(n)) {
                pick = n;
                break;
            }
        }
    }
    a = pick == NULL ? NULL : node_address(pick, type);
    a = a != NULL || pick == NULL ? a : node_address(pick, other);
    a = a != NULL || pick == NULL ? a : node_address(pick, "Hostname");
    if (a != NULL) {
        snprintf(host, len, "%s", a);
    }
    json_decref(list);
    return a != NULL ? 1 : 0;
}

int
k8s_upstream_from_service(const struct hp_config *cfg, json_t *svc, const struct k8s_expose *o,
                          struct k8s_upstream *up, const char **why)
{
    json_t *port0 = json_array_get(json_object_get(json_object_get(svc, "spec"), "ports"), 0);
    json_t *ing;
    const char *ip, *v;
    int rc;

    *why = "Service has no ports.";
    if (port0 == NULL) {
        return 0;
    }
    if (strcmp(o->kind, "nodeport") == 0) {
        if (!json_is_integer(json_object_get(port0, "nodePort"))) {
            *why = "Service has no nodePort assigned.";
            return 0;
        }
        up->port = (unsigned)json_integer_value(json_object_get(port0, "nodePort"));
        if (o->upstream_host[0] != '\0') {
            snprintf(up->host, sizeof(up->host), "%s", o->upstream_host);
            return 1;
        }
        if ((rc = node_host(cfg, o, up->host, sizeof(up->host))) != 1) {
            *why = "No node address found for the NodePort Service.";
        }
        return rc;
    }
    up->port = (unsigned)json_integer_value(json_object_get(port0, "port"));
    if (o->upstream_host[0] != '\0') {
        snprintf(up->host, sizeof(up->host), "%s", o->upstream_host);
        return 1;
    }
    if (strcmp(o->kind, "clusterip") == 0) {
        ip = jstr(svc, "spec.clusterIP");
        if (ip != NULL && ip[0] != '\0' && strcmp(ip, "None") != 0) {
            snprintf(up->host, sizeof(up->host), "%s", ip);
        } else {
            snprintf(up->host, sizeof(up->host), "%s.%s.svc",
                     jstr(svc, "metadata.name") ? jstr(svc, "metadata.name") : "",
                     cfg->k8s_namespace);
        }
        return 1;
    }
    ing = json_array_get(
        json_object_get(json_object_get(json_object_get(svc, "status"), "loadBalancer"), "ingress"),
        0);
    v = jstr(ing, "ip") != NULL && jstr(ing, "ip")[0] ? jstr(ing, "ip") : jstr(ing, "hostname");
    if (v == NULL || v[0] == '\0') {
        *why = "";
        return 0;
    }
    snprintf(up->host, sizeof(up->host), "%s", v);
    return 1;
}

/* The kind of exposure a Service's spec.type stands for. */
static void
kind_of(json_t *svc, struct k8s_expose *o)
{
    const char *t = jstr(svc, "spec.type");

    snprintf(o->kind, sizeof(o->kind), "%s",
             t != NULL && strcmp(t, "NodePort") == 0       ? "nodeport"
             : t != NULL && strcmp(t, "LoadBalancer") == 0 ? "loadbalancer"
                                                           : "clusterip");
}

static int
from_annotations(json_t *deploy, struct k8s_upstream *up)
{
    json_t *ann = json_object_get(json_object_get(deploy, "metadata"), "annotations");
    const char *type = json_string_value(json_object_get(ann, ANN_TYPE));
    const char *host = json_string_value(json_object_get(ann, ANN_HOST));
    const char *port = json_string_value(json_object_get(ann, ANN_PORT));
    long p;
    char *end;

    if (type == NULL || strcmp(type, "manual") != 0 || host == NULL || host[0] == '\0' ||
        port == NULL) {
        return 0;
    }
    p = strtol(port, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535) {
        return 0;
    }
    snprintf(up->host, sizeof(up->host), "%s", host);
    up->port = (unsigned)p;
    return 1;
}

/* Step 3 of 4.10: the manual annotations of the Deployment <name>, else of the first
 * Deployment with the part-of label that has them all. */
static int
manual_annotations(const struct hp_config *cfg, const char *name, struct k8s_upstream *up)
{
    json_t *obj = NULL, *d;
    char path[400];
    long status;
    size_t i;
    int rc = 0;

    snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/%s", cfg->k8s_namespace,
             name);
    if (k8s_call(cfg, "GET", path, NULL, &status, &obj) != K8S_OK ||
        (status != 200 && status != 404)) {
        json_decref(obj);
        return 0;
    }
    if (status == 200 && from_annotations(obj, up) == 1) {
        json_decref(obj);
        return 1;
    }
    json_decref(obj);
    obj = NULL;
    snprintf(
        path, sizeof(path),
        "/apis/apps/v1/namespaces/%s/deployments?labelSelector=app.kubernetes.io%%2Fpart-of%%3D%s",
        cfg->k8s_namespace, name);
    if (k8s_call(cfg, "GET", path, NULL, &status, &obj) == K8S_OK && status == 200) {
        json_array_foreach(json_object_get(obj, "items"), i, d)
        {
            if ((rc = from_annotations(d, up)) == 1) {
                break;
            }
        }
    }
    json_decref(obj);
    return rc;
}

int
k8s_upstream_resolve(const struct hp_config *cfg, const char *app_id,
                     const struct k8s_expose *stored, struct k8s_upstream *up)
{
    struct k8s_expose o;
    json_t *svc = NULL, *list = NULL;
    char base[64], raw[300], path[400];
    const char *why;
    bool api_error = false;
    long status;
    int rc;

    if (k8s_unconfigured(cfg) != NULL || (stored != NULL && strcmp(stored->kind, "docker") == 0)) {
        return 0;
    }
    if (stored != NULL && strcmp(stored->kind, "manual") == 0) {
        snprintf(up->host, sizeof(up->host), "%s", stored->upstream_host);
        up->port = stored->upstream_port;
        return 1;
    }
    snprintf(raw, sizeof(raw), "nc_app_%s", app_id);
    k8s_sanitize(raw, base);
    memset(&o, 0, sizeof(o));
    if (stored != NULL && stored->service[0] != '\0' && strcmp(stored->kind, "k8s") != 0) {
        o = *stored; /* the exposed Service, with the options it was exposed with */
    } else {
        snprintf(o.service, sizeof(o.service), "%s", base);
    }
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s", cfg->k8s_namespace,
             o.service);
    if (k8s_call(cfg, "GET", path, NULL, &status, &svc) != K8S_OK || status != 200) {
        api_error = status != 404;
        json_decref(svc);
        svc = NULL;
        snprintf(path, sizeof(path),
                 "/api/v1/namespaces/%s/services?labelSelector=app.kubernetes.io%%2Fpart-of%%3D%s",
                 cfg->k8s_namespace, base);
        if (k8s_call(cfg, "GET", path, NULL, &status, &list) != K8S_OK || status != 200) {
            api_error = true;
        } else if ((svc = json_array_get(json_object_get(list, "items"), 0)) != NULL) {
            json_incref(svc);
        }
        json_decref(list);
    }
    if (svc == NULL) {
        if (api_error) {
            log_warnx("k8s: Service look-up for %s failed", app_id);
            return -1;
        }
        return manual_annotations(cfg, base, up);
    }
    if (o.kind[0] == '\0') {
        kind_of(svc, &o);
    }
    rc = k8s_upstream_from_service(cfg, svc, &o, up, &why);
    json_decref(svc);
    return rc == 1 ? 1 : 0;
}

int
k8s_upstream_apply(const struct hp_config *cfg, struct store *st, struct exapp *app)
{
    struct k8s_upstream up;
    struct k8s_expose row;
    int got, rc;

    if (k8s_unconfigured(cfg) != NULL) {
        return 0;
    }
    got = store_k8s_get(st, app->app_id, &row);
    rc = k8s_upstream_resolve(cfg, app->app_id, got == 1 ? &row : NULL, &up);
    if (rc == 1) {
        free(app->host);
        app->host = xstrdup(up.host);
        free(app->resolved_host);
        app->resolved_host = xstrdup("");
        app->port = up.port;
        log_info("k8s: %s resolves to %s:%u", app->app_id, up.host, up.port);
    }
    return rc;
}
