/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * HaRP's /k8s/exapp/... endpoints (spec 4.8-4.9) but expose (api_k8s_expose.c): the ExApp as
 * a Deployment of 0 replicas with a PVC, scaled to start and stop, watched through its first
 * pod. Each request runs on its own connection thread and holds an outbound slot only during
 * a call, so a wait_for_start of an hour holds nothing else.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_k8s.h"
#include "log.h"
#include "now.h"
#include "xmalloc.h"

/* wait_for_start: the cap while the image is pulled, the budget once another reason shows. */
#define WAIT_PULL_S 3600
#define WAIT_ERROR_S 90

json_t *
api_k8s_begin(struct api_req *req, struct api_resp *resp, struct k8s_names *kn, bool need_k8s)
{
    const char *why;
    char raw[300];
    json_t *body;
    size_t i;

    memset(kn, 0, sizeof(*kn));
    if ((body = api_docker_req_begin(req, resp, NULL, &kn->n)) == NULL) {
        return NULL;
    }
    if (need_k8s && (why = k8s_unconfigured(&req->ctl->cfg)) != NULL) {
        api_text(resp, 503, why);
        json_decref(body);
        return NULL;
    }
    k8s_sanitize(kn->n.container, kn->deploy);
    k8s_sanitize(kn->n.volume, kn->pvc);
    snprintf(raw, sizeof(raw), "nc_app_%s%s%s", kn->n.instance_id, kn->n.instance_id[0] ? "_" : "",
             kn->n.name);
    k8s_sanitize(raw, kn->base);
    for (i = 0; kn->n.name[i] != '\0' && i + 1 < sizeof(kn->app_id); i++) {
        kn->app_id[i] = (char)(kn->n.name[i] >= 'A' && kn->n.name[i] <= 'Z' ? kn->n.name[i] + 32
                                                                            : kn->n.name[i]);
    }
    return body;
}

void
api_k8s_failed(struct api_resp *resp, enum k8s_rc rc)
{
    if (rc == K8S_TIMEOUT) {
        api_error(resp, 500, NULL);
    } else {
        api_text(resp, 503, "Error communicating with Kubernetes API");
    }
}

void
api_k8s_status(struct api_resp *resp, const char *what, const char *name, long status)
{
    char *t = xasprintf("%s '%s': Status %ld", what, name, status);

    api_text(resp, 503, t);
    free(t);
}

static char *
deploy_path(const struct hp_config *cfg, const char *name)
{
    return xasprintf("/apis/apps/v1/namespaces/%s/deployments%s%s", cfg->k8s_namespace,
                     name != NULL ? "/" : "", name != NULL ? name : "");
}

/* --- exists ------------------------------------------------------------------------------- */

static void
on_exists(struct api_req *req, struct api_resp *resp)
{
    struct k8s_names kn;
    enum k8s_rc rc;
    json_t *body;
    char *path;
    long status;

    if ((body = api_k8s_begin(req, resp, &kn, true)) == NULL) {
        return;
    }
    json_decref(body);
    path = deploy_path(&req->ctl->cfg, kn.deploy);
    if ((rc = k8s_call(&req->ctl->cfg, "GET", path, NULL, &status, NULL)) != K8S_OK) {
        api_k8s_failed(resp, rc);
    } else if (status == 200 || status == 404) {
        api_json(resp, 200, json_pack("{s:b}", "exists", status == 200));
    } else {
        api_k8s_status(resp, "Error checking deployment", kn.deploy, status);
    }
    free(path);
}

/* --- create ------------------------------------------------------------------------------- */

/* HP_K8S_HOST_ALIASES "host:ip,host2:ip2" as hostAliases grouped by IP; NULL when empty. */
static json_t *
host_aliases(const char *spec)
{
    json_t *out = json_array(), *e = NULL;
    char *copy = xstrdup(spec), *tok, *save = NULL, *colon;
    size_t i;

    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') {
            tok++;
        }
        if ((colon = strrchr(tok, ':')) == NULL || colon == tok || colon[1] == '\0') {
            continue;
        }
        *colon = '\0';
        json_array_foreach(out, i, e)
        {
            if (strcmp(json_string_value(json_object_get(e, "ip")), colon + 1) == 0) {
                break;
            }
        }
        if (i == json_array_size(out)) {
            e = json_pack("{s:s,s:[]}", "ip", colon + 1, "hostnames");
            json_array_append_new(out, e);
        }
        json_array_append_new(json_object_get(e, "hostnames"), json_string(tok));
    }
    free(copy);
    if (json_array_size(out) == 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* resource_limits as limits (= requests): memory bytes → ceil Mi, nanoCPUs → ceil m (min 1),
 * strings as given; GPUs by compute device. NULL when empty. */
static json_t *
resources(json_t *limits, const char *device)
{
    json_t *l = json_object(), *v;
    double n;
    char q[40];

    v = json_object_get(limits, "memory");
    if (json_is_integer(v) || json_is_real(v)) {
        n = ceil(json_number_value(v) / (1024.0 * 1024.0));
        snprintf(q, sizeof(q), "%.0fMi", n);
        json_object_set_new(l, "memory", json_string(q));
    } else if (json_is_string(v)) {
        json_object_set(l, "memory", v);
    }
    v = json_object_get(limits, "nanoCPUs");
    if (json_is_integer(v) || json_is_real(v)) {
        n = ceil(json_number_value(v) / 1e6);
        snprintf(q, sizeof(q), "%.0fm", n < 1 ? 1.0 : n);
        json_object_set_new(l, "cpu", json_string(q));
    } else if (json_is_string(json_object_get(limits, "cpu"))) {
        json_object_set(l, "cpu", json_object_get(limits, "cpu"));
    }
    if (strcmp(device, "cuda") == 0) {
        json_object_set_new(l, "nvidia.com/gpu", json_string("1"));
    } else if (strcmp(device, "rocm") == 0) {
        json_object_set_new(l, "amd.com/gpu", json_string("1"));
    }
    if (json_object_size(l) == 0) {
        json_decref(l);
        return NULL;
    }
    return json_pack("{s:o,s:O}", "limits", l, "requests", l);
}

static json_t *
labels(const struct k8s_names *kn)
{
    json_t *l =
        json_pack("{s:s,s:s,s:s,s:s}", "app", kn->deploy, "app.kubernetes.io/name", kn->deploy,
                  "app.kubernetes.io/part-of", kn->base, "app.kubernetes.io/component", "exapp");
    char role[64];

    if (kn->n.instance_id[0] != '\0') {
        json_object_set_new(l, "app.kubernetes.io/instance", json_string(kn->n.instance_id));
    }
    if (kn->n.role_suffix[0] != '\0') {
        k8s_sanitize(kn->n.role_suffix, role);
        json_object_set_new(l, "app.kubernetes.io/role", json_string(role));
    }
    return l;
}

static json_t *
deployment(const struct hp_config *cfg, const struct k8s_names *kn, const char *image,
           json_t *env_list, json_t *limits, const char *device)
{
    json_t *env = json_array(), *v, *c, *spec, *res, *ha;
    char *mount = xasprintf("/%s", kn->n.volume);
    const char *s, *eq;
    size_t i;

    json_array_foreach(env_list, i, v)
    {
        if ((s = json_string_value(v)) == NULL || s[0] == '\0') {
            continue;
        }
        eq = strchr(s, '=');
        json_array_append_new(env, json_pack("{s:s%,s:s}", "name", s,
                                             eq != NULL ? (size_t)(eq - s) : strlen(s), "value",
                                             eq != NULL ? eq + 1 : ""));
    }
    c = json_pack("{s:s,s:s,s:s,s:o,s:[{s:s,s:s}]}", "name", "app", "image", image,
                  "imagePullPolicy", "IfNotPresent", "env", env, "volumeMounts", "name", "data",
                  "mountPath", mount);
    free(mount);
    if ((res = resources(limits, device)) != NULL) {
        json_object_set_new(c, "resources", res);
    }
    spec = json_pack("{s:[o],s:[{s:s,s:{s:s}}]}", "containers", c, "volumes", "name", "data",
                     "persistentVolumeClaim", "claimName", kn->pvc);
    if ((ha = host_aliases(cfg->k8s_host_aliases ? cfg->k8s_host_aliases : "")) != NULL) {
        json_object_set_new(spec, "hostAliases", ha);
    }
    return json_pack("{s:s,s:s,s:{s:s,s:o},s:{s:i,s:{s:{s:s}},s:{s:{s:o},s:o}}}", "apiVersion",
                     "apps/v1", "kind", "Deployment", "metadata", "name", kn->deploy, "labels",
                     labels(kn), "spec", "replicas", 0, "selector", "matchLabels", "app",
                     kn->deploy, "template", "metadata", "labels", labels(kn), "spec", spec);
}

static json_t *
pvc(const struct hp_config *cfg, const struct k8s_names *kn)
{
    json_t *o = json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s,s:s}},s:{s:[s],s:{s:{s:s}}}}", "apiVersion",
                          "v1", "kind", "PersistentVolumeClaim", "metadata", "name", kn->pvc,
                          "labels", "app.kubernetes.io/name", kn->base, "app.kubernetes.io/part-of",
                          kn->base, "app.kubernetes.io/component", "exapp-data", "spec",
                          "accessModes", "ReadWriteOnce", "resources", "requests", "storage",
                          cfg->k8s_storage_size ? cfg->k8s_storage_size : "10Gi");

    if (cfg->k8s_storage_class != NULL && cfg->k8s_storage_class[0] != '\0') {
        json_object_set_new(json_object_get(o, "spec"), "storageClassName",
                            json_string(cfg->k8s_storage_class));
    }
    return o;
}

static void
on_create(struct api_req *req, struct api_resp *resp)
{
    const struct hp_config *cfg = &req->ctl->cfg;
    struct k8s_expose row;
    struct k8s_names kn;
    const char *image, *device, *why;
    json_t *body, *obj, *env, *limits;
    bool bad;
    enum k8s_rc rc;
    char *path, *t;
    long status;

    if ((body = api_k8s_begin(req, resp, &kn, false)) == NULL) {
        return;
    }
    if (api_docker_req_str(resp, body,
                           json_object_get(body, "image_id") || !json_object_get(body, "image")
                               ? "image_id"
                               : "image",
                           NULL, &image) == -1 ||
        api_docker_req_str(resp, body, "compute_device", "cpu", &device) == -1) {
        json_decref(body);
        return;
    }
    env = json_object_get(body, "environment_variables");
    limits = json_object_get(body, "resource_limits");
    bad = true;
    if (strcmp(device, "cpu") != 0 && strcmp(device, "cuda") != 0 && strcmp(device, "rocm") != 0) {
        api_docker_req_invalid(resp, "compute_device", "Input should be 'cpu', 'rocm' or 'cuda'");
    } else if (env != NULL && !json_is_array(env)) {
        api_docker_req_invalid(resp, "environment_variables", "Input should be a valid list");
    } else if (limits != NULL && !json_is_object(limits)) {
        api_docker_req_invalid(resp, "resource_limits", "Input should be a valid dictionary");
    } else if ((why = k8s_unconfigured(cfg)) != NULL) {
        api_text(resp, 503, why);
    } else {
        bad = false;
    }
    if (bad) {
        json_decref(body);
        return;
    }
    if (json_array_size(json_object_get(body, "mount_points")) > 0) {
        log_warnx("k8s: %s: mount_points are ignored on Kubernetes", kn.deploy);
    }
    path = xasprintf("/api/v1/namespaces/%s/persistentvolumeclaims", cfg->k8s_namespace);
    obj = pvc(cfg, &kn);
    rc = k8s_call(cfg, "POST", path, obj, &status, NULL);
    json_decref(obj);
    free(path);
    if (rc != K8S_OK) {
        api_k8s_failed(resp, rc);
        json_decref(body);
        return;
    }
    if (status != 200 && status != 201 && status != 409) {
        api_k8s_status(resp, "Failed to create PVC", kn.pvc, status);
        json_decref(body);
        return;
    }
    obj = deployment(cfg, &kn, image, env, limits, device);
    json_decref(body);
    path = deploy_path(cfg, NULL);
    rc = k8s_call(cfg, "POST", path, obj, &status, NULL);
    json_decref(obj);
    free(path);
    if (rc != K8S_OK) {
        api_k8s_failed(resp, rc);
    } else if (status == 200 || status == 201) {
        if (store_k8s_get(req->ctl->store, kn.app_id, &row) != 1 ||
            strcmp(row.kind, "docker") == 0) {
            memset(&row, 0, sizeof(row));
            snprintf(row.kind, sizeof(row.kind), "k8s");
            store_k8s_put(req->ctl->store, kn.app_id, &row);
        }
        api_json(resp, 201, json_pack("{s:s}", "name", kn.deploy));
    } else if (status == 409) {
        t = xasprintf("Deployment '%s' already exists.", kn.deploy);
        api_text(resp, 409, t);
        free(t);
    } else {
        api_k8s_status(resp, "Failed to create deployment", kn.deploy, status);
    }
}

/* --- start, stop -------------------------------------------------------------------------- */

static void
scale(struct api_req *req, struct api_resp *resp, int replicas)
{
    struct k8s_names kn;
    json_t *body, *patch;
    enum k8s_rc rc;
    char *path, *t;
    long status;

    if ((body = api_k8s_begin(req, resp, &kn, true)) == NULL) {
        return;
    }
    json_decref(body);
    path = deploy_path(&req->ctl->cfg, kn.deploy);
    patch = json_pack("{s:{s:i}}", "spec", "replicas", replicas);
    rc = k8s_call(&req->ctl->cfg, "PATCH", path, patch, &status, NULL);
    json_decref(patch);
    free(path);
    if (rc != K8S_OK) {
        api_k8s_failed(resp, rc);
    } else if (status == 200 || status == 201) {
        api_empty(resp, 204);
    } else if (status == 404) {
        t = xasprintf("Deployment '%s' not found.", kn.deploy);
        api_text(resp, 404, t);
        free(t);
    } else {
        api_k8s_status(resp, replicas ? "Failed to start deployment" : "Failed to stop deployment",
                       kn.deploy, status);
    }
}

static void
on_start(struct api_req *req, struct api_resp *resp)
{
    scale(req, resp, 1);
}

static void
on_stop(struct api_req *req, struct api_resp *resp)
{
    scale(req, resp, 0);
}

/* --- wait_for_start ----------------------------------------------------------------------- */

static json_t *
wait_answer(bool started, const char *status, const char *health, json_t *reason, json_t *msg)
{
    return json_pack("{s:b,s:s,s:s,s:O,s:O}", "started", started, "status", status, "health",
                     health, "reason", reason ? reason : json_null(), "message",
                     msg ? msg : json_null());
}

static bool
pod_ready(json_t *st)
{
    json_t *c;
    size_t i;

    json_array_foreach(json_object_get(st, "conditions"), i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *v = json_string_value(json_object_get(c, "status"));

        if (type != NULL && strcmp(type, "Ready") == 0) {
            return v != NULL && strcmp(v, "True") == 0;
        }
    }
    return false;
}

/* The answer <pod> gives now, or NULL to keep waiting; *<pulling> false once its first
 * container waits for another reason than the image. */
static json_t *
observe(json_t *pod, char *phase, size_t len, bool *pulling)
{
    json_t *st = json_object_get(pod, "status"), *w;
    const char *p = json_string_value(json_object_get(st, "phase")), *wr;

    snprintf(phase, len, "%s", p != NULL ? p : "unknown");
    if (p != NULL && strcmp(p, "Running") == 0 && pod_ready(st)) {
        return wait_answer(true, "running", "ready", json_object_get(st, "reason"),
                           json_object_get(st, "message"));
    }
    if (p != NULL && strcmp(p, "Succeeded") == 0) {
        return wait_answer(true, "succeeded", "ready", json_object_get(st, "reason"),
                           json_object_get(st, "message"));
    }
    if (p != NULL && (strcmp(p, "Failed") == 0 || strcmp(p, "Unknown") == 0)) {
        return wait_answer(false, p, "not_ready", json_object_get(st, "reason"),
                           json_object_get(st, "message"));
    }
    w = json_object_get(
        json_object_get(json_array_get(json_object_get(st, "containerStatuses"), 0), "state"),
        "waiting");
    wr = json_string_value(json_object_get(w, "reason"));
    if (wr != NULL && (strcmp(wr, "ErrImagePull") == 0 || strcmp(wr, "ImagePullBackOff") == 0 ||
                       strcmp(wr, "InvalidImageName") == 0)) {
        return wait_answer(false, wr, "image_error", json_object_get(w, "reason"),
                           json_object_get(w, "message"));
    }
    *pulling =
        wr == NULL || strcmp(wr, "ContainerCreating") == 0 || strcmp(wr, "PodInitializing") == 0;
    return NULL;
}

static void
on_wait_for_start(struct api_req *req, struct api_resp *resp)
{
    const struct hp_config *cfg = &req->ctl->cfg;
    struct timespec one = {1, 0};
    struct k8s_names kn;
    json_t *body, *list, *answer = NULL;
    char *path, phase[64] = "unknown";
    double start = now_mono(), error_deadline = 0;
    bool pulling;
    enum k8s_rc rc;
    long status;

    if ((body = api_k8s_begin(req, resp, &kn, true)) == NULL) {
        return;
    }
    json_decref(body);
    path = xasprintf("/api/v1/namespaces/%s/pods?labelSelector=app%%3D%s", cfg->k8s_namespace,
                     kn.deploy);
    for (;;) {
        if ((rc = k8s_call(cfg, "GET", path, NULL, &status, &list)) != K8S_OK) {
            api_k8s_failed(resp, rc);
            break;
        }
        if (status != 200) {
            json_decref(list);
            api_k8s_status(resp, "Error listing pods of deployment", kn.deploy, status);
            break;
        }
        pulling = true;
        if (json_array_size(json_object_get(list, "items")) == 0) {
            snprintf(phase, sizeof(phase), "Pending");
        } else {
            answer = observe(json_array_get(json_object_get(list, "items"), 0), phase,
                             sizeof(phase), &pulling);
        }
        json_decref(list);
        if (!pulling && error_deadline == 0) {
            error_deadline = now_mono() + WAIT_ERROR_S;
        }
        if (answer == NULL &&
            now_mono() >= (error_deadline > 0 ? error_deadline : start + WAIT_PULL_S)) {
            answer = wait_answer(false, phase, "timeout", NULL, NULL);
        }
        if (answer == NULL && __atomic_load_n(&req->ctl->stopping, __ATOMIC_RELAXED)) {
            api_text(resp, 503, "harp-ctl is stopping");
            break;
        }
        if (answer != NULL) {
            log_info("k8s: wait_for_start %s: %s", kn.deploy,
                     json_string_value(json_object_get(answer, "health")));
            api_json(resp, 200, answer);
            break;
        }
        nanosleep(&one, NULL);
    }
    free(path);
}

/* --- remove, install_certificates --------------------------------------------------------- */

static int
delete_ok(struct api_req *req, struct api_resp *resp, const char *path, const char *what,
          const char *name)
{
    enum k8s_rc rc;
    long status;

    if ((rc = k8s_call(&req->ctl->cfg, "DELETE", path, NULL, &status, NULL)) != K8S_OK) {
        api_k8s_failed(resp, rc);
        return -1;
    }
    if (status != 200 && status != 202 && status != 404) {
        api_k8s_status(resp, what, name, status);
        return -1;
    }
    return 0;
}

static void
on_remove(struct api_req *req, struct api_resp *resp)
{
    const struct hp_config *cfg = &req->ctl->cfg;
    struct k8s_names kn;
    json_t *body, *svc = NULL;
    const char *by;
    bool remove_data;
    char *path;
    long status;

    if ((body = api_k8s_begin(req, resp, &kn, false)) == NULL) {
        return;
    }
    if (api_docker_req_bool(body, "remove_data", false, &remove_data) == -1) {
        api_docker_req_invalid(resp, "remove_data", "Input should be a valid boolean");
        json_decref(body);
        return;
    }
    json_decref(body);
    if ((by = k8s_unconfigured(cfg)) != NULL) {
        api_text(resp, 503, by);
        return;
    }
    path = deploy_path(cfg, kn.deploy);
    if (delete_ok(req, resp, path, "Failed to delete deployment", kn.deploy) == -1) {
        free(path);
        return;
    }
    free(path);
    if (remove_data) {
        path = xasprintf("/api/v1/namespaces/%s/persistentvolumeclaims/%s", cfg->k8s_namespace,
                         kn.pvc);
        if (delete_ok(req, resp, path, "Failed to delete PVC", kn.pvc) == -1) {
            free(path);
            return;
        }
        free(path);
    }
    path = xasprintf("/api/v1/namespaces/%s/services/%s", cfg->k8s_namespace, kn.deploy);
    if (k8s_call(cfg, "GET", path, NULL, &status, &svc) == K8S_OK && status == 200) {
        by = json_string_value(
            json_object_get(json_object_get(json_object_get(svc, "metadata"), "labels"),
                            "app.kubernetes.io/managed-by"));
        if (by != NULL && strcmp(by, "harp") == 0 &&
            delete_ok(req, resp, path, "Failed to delete service", kn.deploy) == -1) {
            json_decref(svc);
            free(path);
            return;
        }
    } else if (status != 404) {
        log_warnx("k8s: remove %s: Service look-up answered %ld", kn.deploy, status);
    }
    json_decref(svc);
    free(path);
    store_k8s_delete(req->ctl->store, kn.app_id);
    api_empty(resp, 204);
}

static void
on_install_certificates(struct api_req *req, struct api_resp *resp)
{
    struct k8s_names kn;
    json_t *body, *bundle;
    bool frp;

    if ((body = api_k8s_begin(req, resp, &kn, false)) == NULL) {
        return;
    }
    bundle = json_object_get(body, "system_certs_bundle");
    if (bundle != NULL && !json_is_null(bundle) && !json_is_string(bundle)) {
        api_docker_req_invalid(resp, "system_certs_bundle", "Input should be a valid string");
    } else if (api_docker_req_bool(body, "install_frp_certs", true, &frp) == -1) {
        api_docker_req_invalid(resp, "install_frp_certs", "Input should be a valid boolean");
    } else {
        api_empty(resp, 204);
    }
    json_decref(body);
}

const struct api_route api_k8s_routes[] = {
    {"POST", "/k8s/exapp/exists", false, false, on_exists},
    {"POST", "/k8s/exapp/create", false, false, on_create},
    {"POST", "/k8s/exapp/start", false, false, on_start},
    {"POST", "/k8s/exapp/stop", false, false, on_stop},
    {"POST", "/k8s/exapp/wait_for_start", false, false, on_wait_for_start},
    {"POST", "/k8s/exapp/remove", false, false, on_remove},
    {"POST", "/k8s/exapp/install_certificates", false, false, on_install_certificates},
    {NULL, NULL, false, false, NULL},
};
