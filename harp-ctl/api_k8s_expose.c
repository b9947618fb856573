/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * POST /k8s/exapp/expose (spec 4.9.7): a Service for the ExApp's Deployment (or a manual
 * upstream), its address, then the ExApp's meta from Nextcloud stored with that upstream.
 * Unlike HaRP, the options are kept in SQLite (k8s_expose), so the ExApp resolves the same
 * after a restart (k8s_upstream.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_k8s.h"
#include "k8s_upstream.h"
#include "log.h"
#include "nextcloud.h"
#include "now.h"
#include "xmalloc.h"

struct expose_req {
    struct k8s_expose o; /* kind, upstream host and port, node name, selector, address type */
    long port, service_port, node_port;
    const char *etp, *lb_ip;
    json_t *annotations, *labels;
    double wait_timeout, wait_interval;
};

static int
int_field(struct api_resp *resp, json_t *body, const char *key, long min, long max, long *out)
{
    json_t *v = json_object_get(body, key);
    char why[80];

    if (v == NULL || json_is_null(v)) {
        if (strcmp(key, "port") == 0) {
            api_docker_req_invalid(resp, key, "Field required");
            return -1;
        }
        *out = 0;
        return 0;
    }
    if (!api_docker_req_int(v, out)) {
        api_docker_req_invalid(resp, key, "Input should be a valid integer");
        return -1;
    }
    if (*out < min || *out > max) {
        snprintf(why, sizeof(why), "Input should be between %ld and %ld", min, max);
        api_docker_req_invalid(resp, key, why);
        return -1;
    }
    return 0;
}

static int
float_field(struct api_resp *resp, json_t *body, const char *key, double min, double max,
            double def, double *out)
{
    json_t *v = json_object_get(body, key);
    char why[80], *end;

    *out = def;
    if (v == NULL) {
        return 0;
    }
    if (json_is_number(v)) {
        *out = json_number_value(v);
    } else if (!json_is_string(v) || (*out = strtod(json_string_value(v), &end), *end != '\0') ||
               json_string_value(v)[0] == '\0') {
        api_docker_req_invalid(resp, key, "Input should be a valid number");
        return -1;
    }
    if (!(*out >= min && *out <= max)) {
        snprintf(why, sizeof(why), "Input should be between %g and %g", min, max);
        api_docker_req_invalid(resp, key, why);
        return -1;
    }
    return 0;
}

/* A string or null at <key> into <out> (NULL when absent or null); -1 when not a string, or
 * <len> or longer, or not one of <choices> (NULL: any). */
static int
str_field(struct api_resp *resp, json_t *body, const char *key, size_t len,
          const char *const *choices, const char **out)
{
    json_t *v = json_object_get(body, key);
    char why[120];
    size_t i;

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v)) {
        api_docker_req_invalid(resp, key, "Input should be a valid string");
        return -1;
    }
    if (strlen(json_string_value(v)) >= len) {
        snprintf(why, sizeof(why), "String should have at most %zu characters", len - 1);
        api_docker_req_invalid(resp, key, why);
        return -1;
    }
    for (i = 0; choices != NULL && choices[i] != NULL; i++) {
        if (strcmp(json_string_value(v), choices[i]) == 0) {
            break;
        }
    }
    if (choices != NULL && choices[i] == NULL) {
        snprintf(why, sizeof(why), "Input should be '%s'", choices[0]);
        for (i = 1; choices[i] != NULL; i++) {
            snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s'%s'",
                     choices[i + 1] != NULL ? ", " : " or ", choices[i]);
        }
        api_docker_req_invalid(resp, key, why);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int
map_field(struct api_resp *resp, json_t *body, const char *key, json_t **out)
{
    json_t *v = json_object_get(body, key), *e;
    const char *k;

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_object(v)) {
        api_docker_req_invalid(resp, key, "Input should be a valid dictionary");
        return -1;
    }
    json_object_foreach(v, k, e)
    {
        if (!json_is_string(e)) {
            api_docker_req_invalid(resp, key, "Input should be a valid string");
            return -1;
        }
    }
    *out = v;
    return 0;
}

static int
parse(struct api_resp *resp, json_t *body, struct expose_req *x)
{
    static const char *const types[] = {"nodeport", "clusterip", "loadbalancer", "manual", NULL};
    static const char *const policies[] = {"Cluster", "Local", NULL};
    static const char *const addrs[] = {"InternalIP", "ExternalIP", NULL};
    const char *type, *host, *addr, *node, *sel;
    long up_port;

    memset(x, 0, sizeof(*x));
    if (int_field(resp, body, "port", 1, 65535, &x->port) == -1 ||
        str_field(resp, body, "expose_type", 16, types, &type) == -1 ||
        str_field(resp, body, "upstream_host", sizeof(x->o.upstream_host), NULL, &host) == -1 ||
        int_field(resp, body, "upstream_port", 1, 65535, &up_port) == -1 ||
        int_field(resp, body, "service_port", 1, 65535, &x->service_port) == -1 ||
        int_field(resp, body, "node_port", 30000, 32767, &x->node_port) == -1 ||
        str_field(resp, body, "external_traffic_policy", 16, policies, &x->etp) == -1 ||
        str_field(resp, body, "load_balancer_ip", 256, NULL, &x->lb_ip) == -1 ||
        map_field(resp, body, "service_annotations", &x->annotations) == -1 ||
        map_field(resp, body, "service_labels", &x->labels) == -1 ||
        float_field(resp, body, "wait_timeout_seconds", 0, 600, 60, &x->wait_timeout) == -1 ||
        float_field(resp, body, "wait_interval_seconds", 0.1, 10, 1, &x->wait_interval) == -1 ||
        str_field(resp, body, "node_address_type", 16, addrs, &addr) == -1 ||
        str_field(resp, body, "node_name", sizeof(x->o.node_name), NULL, &node) == -1 ||
        str_field(resp, body, "node_label_selector", sizeof(x->o.node_selector), NULL, &sel) ==
            -1) {
        return -1;
    }
    snprintf(x->o.kind, sizeof(x->o.kind), "%s", type != NULL ? type : "clusterip");
    if (strcmp(x->o.kind, "manual") == 0 && host == NULL) {
        api_docker_req_invalid(resp, "upstream_host", "required for expose_type 'manual'");
        return -1;
    }
    snprintf(x->o.upstream_host, sizeof(x->o.upstream_host), "%s", host ? host : "");
    x->o.upstream_port = (unsigned)(up_port ? up_port : x->port);
    snprintf(x->o.address_type, sizeof(x->o.address_type), "%s", addr ? addr : "InternalIP");
    snprintf(x->o.node_name, sizeof(x->o.node_name), "%s", node ? node : "");
    snprintf(x->o.node_selector, sizeof(x->o.node_selector), "%s", sel ? sel : "");
    return 0;
}

static json_t *
service(const struct hp_config *cfg, const struct k8s_names *kn, const struct expose_req *x)
{
    static const char *const types[][2] = {
        {"nodeport", "NodePort"}, {"clusterip", "ClusterIP"}, {"loadbalancer", "LoadBalancer"}};
    json_t *labels =
        json_pack("{s:s,s:s,s:s,s:s,s:s}", "app", kn->deploy, "app.kubernetes.io/name", kn->deploy,
                  "app.kubernetes.io/part-of", kn->base, "app.kubernetes.io/component", "exapp",
                  "app.kubernetes.io/managed-by", "harp");
    json_t *port, *spec, *svc;
    const char *type = "ClusterIP";
    char role[64];
    size_t i;

    if (x->labels != NULL) {
        json_object_update(labels, x->labels);
    }
    if (kn->n.instance_id[0] != '\0' &&
        json_object_get(labels, "app.kubernetes.io/instance") == NULL) {
        json_object_set_new(labels, "app.kubernetes.io/instance", json_string(kn->n.instance_id));
    }
    if (kn->n.role_suffix[0] != '\0') {
        k8s_sanitize(kn->n.role_suffix, role);
        json_object_set_new(labels, "app.kubernetes.io/role", json_string(role));
    }
    for (i = 0; i < 3; i++) {
        if (strcmp(x->o.kind, types[i][0]) == 0) {
            type = types[i][1];
        }
    }
    port =
        json_pack("{s:s,s:i,s:i}", "name", "http", "port",
                  (int)(x->service_port ? x->service_port : x->port), "targetPort", (int)x->port);
    if (strcmp(type, "NodePort") == 0 && x->node_port != 0) {
        json_object_set_new(port, "nodePort", json_integer(x->node_port));
    }
    spec = json_pack("{s:s,s:{s:s},s:[o]}", "type", type, "selector", "app", kn->deploy, "ports",
                     port);
    if (x->etp != NULL && strcmp(type, "ClusterIP") != 0) {
        json_object_set_new(spec, "externalTrafficPolicy", json_string(x->etp));
    }
    if (x->lb_ip != NULL && strcmp(type, "LoadBalancer") == 0) {
        json_object_set_new(spec, "loadBalancerIP", json_string(x->lb_ip));
    }
    svc = json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:o}", "apiVersion", "v1", "kind", "Service",
                    "metadata", "name", kn->deploy, "namespace", cfg->k8s_namespace, "labels",
                    labels, "spec", spec);
    if (x->annotations != NULL && json_object_size(x->annotations) > 0) {
        json_object_set(json_object_get(svc, "metadata"), "annotations", x->annotations);
    }
    return svc;
}

/* The Service created (or found) and its upstream; 0, or -1 once an error is answered. */
static int
expose_service(struct api_req *req, struct api_resp *resp, const struct k8s_names *kn,
               const struct expose_req *x, struct k8s_upstream *up)
{
    const struct hp_config *cfg = &req->ctl->cfg;
    struct timespec pause;
    json_t *svc = service(cfg, kn, x), *got = NULL;
    double deadline = now_mono() + x->wait_timeout;
    const char *why;
    enum k8s_rc rc;
    char *path, *t;
    long status;
    int found;

    path = xasprintf("/api/v1/namespaces/%s/services", cfg->k8s_namespace);
    rc = k8s_call(cfg, "POST", path, svc, &status, NULL);
    json_decref(svc);
    free(path);
    if (rc != K8S_OK || (status != 200 && status != 201 && status != 409)) {
        rc != K8S_OK ? api_k8s_failed(resp, rc)
                     : api_k8s_status(resp, "Failed to create service", kn->deploy, status);
        return -1;
    }
    path = xasprintf("/api/v1/namespaces/%s/services/%s", cfg->k8s_namespace, kn->deploy);
    for (;;) {
        if ((rc = k8s_call(cfg, "GET", path, NULL, &status, &got)) != K8S_OK || status != 200) {
            rc != K8S_OK ? api_k8s_failed(resp, rc)
                         : api_k8s_status(resp, "Failed to read service", kn->deploy, status);
            break;
        }
        found = k8s_upstream_from_service(cfg, got, &x->o, up, &why);
        json_decref(got);
        got = NULL;
        if (found == 1) {
            free(path);
            return 0;
        }
        if (found == -1) {
            api_text(resp, 503, "Error communicating with Kubernetes API");
            break;
        }
        if (why[0] != '\0') {
            api_text(resp, 503, why);
            break;
        }
        if (now_mono() + x->wait_interval > deadline ||
            __atomic_load_n(&req->ctl->stopping, __ATOMIC_RELAXED)) {
            t = xasprintf("Timed out waiting for LoadBalancer address for Service '%s'",
                          kn->deploy);
            api_text(resp, 503, t);
            free(t);
            break;
        }
        pause.tv_sec = (time_t)x->wait_interval;
        pause.tv_nsec = (long)((x->wait_interval - (double)pause.tv_sec) * 1e9);
        nanosleep(&pause, NULL);
    }
    json_decref(got);
    free(path);
    return -1;
}

/* manual: the annotations on the Deployment, best effort. */
static void
annotate(const struct hp_config *cfg, const struct k8s_names *kn, const struct expose_req *x)
{
    char port[16], *path;
    json_t *patch;
    long status;

    snprintf(port, sizeof(port), "%u", x->o.upstream_port);
    patch = json_pack("{s:{s:{s:s,s:s,s:s}}}", "metadata", "annotations",
                      "appapi.nextcloud.com/expose-type", "manual",
                      "appapi.nextcloud.com/upstream-host", x->o.upstream_host,
                      "appapi.nextcloud.com/upstream-port", port);
    path = xasprintf("/apis/apps/v1/namespaces/%s/deployments/%s", cfg->k8s_namespace, kn->deploy);
    if (k8s_call(cfg, "PATCH", path, patch, &status, NULL) != K8S_OK ||
        (status != 200 && status != 201)) {
        log_warnx("k8s: expose %s: annotating the Deployment failed (%ld)", kn->deploy, status);
    }
    json_decref(patch);
    free(path);
}

static void
on_expose(struct api_req *req, struct api_resp *resp)
{
    const struct hp_config *cfg = &req->ctl->cfg;
    struct k8s_upstream up;
    struct expose_req x;
    struct k8s_names kn;
    struct exapp app;
    struct hp_err err;
    const char *why;
    json_t *body;
    char *t;
    int rc;

    if ((body = api_k8s_begin(req, resp, &kn, false)) == NULL) {
        return;
    }
    if (parse(resp, body, &x) == -1) {
        json_decref(body);
        return;
    }
    why = k8s_unconfigured(cfg);
    if (strcmp(x.o.kind, "manual") == 0) {
        snprintf(up.host, sizeof(up.host), "%s", x.o.upstream_host);
        up.port = x.o.upstream_port;
        if (why == NULL) {
            annotate(cfg, &kn, &x);
        }
    } else if (why != NULL) {
        api_text(resp, 503, why);
        json_decref(body);
        return;
    } else if (expose_service(req, resp, &kn, &x, &up) == -1) {
        json_decref(body);
        return;
    }
    json_decref(body);
    snprintf(x.o.service, sizeof(x.o.service), "%s", kn.deploy);
    rc = nextcloud_exapp_meta(cfg, kn.app_id, &app, &err);
    if (rc != 1) {
        t = xasprintf(rc == 0 ? "No ExApp metadata for '%s'" : "Failed to fetch metadata for '%s'",
                      kn.app_id);
        api_text(resp, rc == 0 ? 404 : 503, t);
        free(t);
        return;
    }
    snprintf(app.app_id, sizeof(app.app_id), "%s", kn.app_id);
    free(app.host);
    app.host = xstrdup(up.host);
    free(app.resolved_host);
    app.resolved_host = xstrdup("");
    app.port = up.port;
    store_k8s_put(req->ctl->store, kn.app_id, &x.o);
    if (store_exapp_put(req->ctl->store, &app, &err) < 0) {
        api_error(resp, 500, "the ExApp could not be stored");
        exapp_free(&app);
        return;
    }
    exapp_free(&app);
    publish_forget_missing(req->ctl->pub, kn.app_id);
    publish_notify(req->ctl->pub);
    log_info("k8s: exposed %s (%s) at %s:%u", kn.app_id, x.o.kind, up.host, up.port);
    api_json(resp, 200,
             json_pack("{s:s,s:s,s:i,s:s,s:s,s:s}", "appId", kn.app_id, "host", up.host, "port",
                       (int)up.port, "exposeType", x.o.kind, "serviceName", kn.deploy, "namespace",
                       cfg->k8s_namespace));
}

const struct api_route api_k8s_expose_routes[] = {
    {"POST", "/k8s/exapp/expose", false, false, on_expose},
    {NULL, NULL, false, false, NULL},
};
