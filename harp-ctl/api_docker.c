/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * AppAPI's Docker endpoints (/docker/exapp/...): the Docker Engine calls of HaRP's agent in its
 * order, with its timeouts, statuses and bodies (spec 4.6-4.7). Each call runs in its own
 * connection thread, so a 105 s wait_for_start blocks nothing else.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_docker_certs.h"
#include "api_docker_req.h"
#include "log.h"
#include "xmalloc.h"

/* --- exists ------------------------------------------------------------------------------- */

static void
on_exists(struct api_req *req, struct api_resp *resp)
{
    struct docker_session s;
    struct exapp_name n;
    unsigned port;
    json_t *body, *info = NULL, *o;
    const char *image = NULL;
    char path[320];
    enum docker_rc rc;
    long status;

    if ((body = api_docker_req_begin(req, resp, &port, &n)) == NULL) {
        return;
    }
    json_decref(body);
    docker_session_open(&s, req->ctl, port, 15);
    snprintf(path, sizeof(path), "/containers/%s/json", n.container);
    if ((rc = docker_call_json(&s, "GET", path, NULL, &status, &info)) != DOCKER_OK) {
        api_docker_req_failed(resp, rc, port);
        return;
    }
    if (status == 200) {
        image = json_string_value(json_object_get(json_object_get(info, "Config"), "Image"));
        if (image == NULL || image[0] == '\0') {
            image = json_string_value(json_object_get(info, "Image"));
        }
        o = json_pack("{s:b,s:s}", "exists", 1, "image_ref", image != NULL ? image : "");
        api_json(resp, 200, o);
    } else if (status == 404) {
        api_json(resp, 200, json_pack("{s:b}", "exists", 0));
    } else {
        api_text(resp, 500, "An unexpected error occurred while checking container status.");
    }
    json_decref(info);
}

/* --- create ------------------------------------------------------------------------------- */

/* The container create body of spec 4.7.2; NULL after answering 400. */
static json_t *
create_config(struct api_resp *resp, json_t *body, const struct exapp_name *n)
{
    const char *image, *net, *restart, *device;
    json_t *env, *mounts, *limits, *v, *m, *cfg, *host, *arr;
    char field[64];
    size_t i;

    if (json_object_get(body, "image_id") == NULL && json_object_get(body, "image") != NULL) {
        if (api_docker_req_str(resp, body, "image", NULL, &image) == -1) {
            return NULL;
        }
    } else if (api_docker_req_str(resp, body, "image_id", NULL, &image) == -1) {
        return NULL;
    }
    if (image[0] == '\0') {
        api_docker_req_invalid(resp, "image_id", "must not be empty");
        return NULL;
    }
    if (api_docker_req_str(resp, body, "network_mode", "bridge", &net) == -1 ||
        api_docker_req_str(resp, body, "restart_policy", "unless-stopped", &restart) == -1 ||
        api_docker_req_str(resp, body, "compute_device", "cpu", &device) == -1) {
        return NULL;
    }
    if (net[0] == '\0') {
        api_docker_req_invalid(resp, "network_mode", "must not be empty");
        return NULL;
    }
    if (strcmp(device, "cpu") != 0 && strcmp(device, "rocm") != 0 && strcmp(device, "cuda") != 0) {
        api_docker_req_invalid(resp, "compute_device", "Input should be 'cpu', 'rocm' or 'cuda'");
        return NULL;
    }
    env = json_object_get(body, "environment_variables");
    if (env != NULL && !json_is_array(env)) {
        api_docker_req_invalid(resp, "environment_variables", "Input should be a valid list");
        return NULL;
    }
    json_array_foreach(env, i, v)
    {
        if (!json_is_string(v)) {
            snprintf(field, sizeof(field), "environment_variables.%zu", i);
            api_docker_req_invalid(resp, field, "Input should be a valid string");
            return NULL;
        }
    }
    mounts = json_object_get(body, "mount_points");
    if (mounts != NULL && !json_is_array(mounts)) {
        api_docker_req_invalid(resp, "mount_points", "Input should be a valid list");
        return NULL;
    }
    arr = json_array();
    json_array_append_new(arr, json_pack("{s:s,s:s,s:s+,s:b}", "Type", "volume", "Source",
                                         n->volume, "Target", "/", n->volume, "ReadOnly", 0));
    json_array_foreach(mounts, i, m)
    {
        const char *src = json_string_value(json_object_get(m, "source"));
        const char *dst = json_string_value(json_object_get(m, "target"));
        json_t *mode = json_object_get(m, "mode");

        snprintf(field, sizeof(field), "mount_points.%zu", i);
        if (!json_is_object(m) || src == NULL || dst == NULL ||
            (mode != NULL && !json_is_string(mode))) {
            json_decref(arr);
            api_docker_req_invalid(resp, field,
                                   "needs string fields source and target, and optional mode");
            return NULL;
        }
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:s,s:b}", "Source", src, "Target", dst, "Type", "bind",
                           "Readonly", mode != NULL && strcmp(json_string_value(mode), "ro") == 0));
    }
    host = json_pack("{s:s,s:{s:s},s:o}", "NetworkMode", net, "RestartPolicy", "Name", restart,
                     "Mounts", arr);
    if (strcmp(device, "cuda") == 0) {
        json_object_set_new(host, "DeviceRequests",
                            json_pack("[{s:s,s:i,s:[[s,s]]}]", "Driver", "nvidia", "Count", -1,
                                      "Capabilities", "compute", "utility"));
    } else if (strcmp(device, "rocm") == 0) {
        json_object_set_new(host, "Devices",
                            json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:s}]", "PathOnHost", "/dev/kfd",
                                      "PathInContainer", "/dev/kfd", "CgroupPermissions", "rwm",
                                      "PathOnHost", "/dev/dri", "PathInContainer", "/dev/dri",
                                      "CgroupPermissions", "rwm"));
    }
    limits = json_object_get(body, "resource_limits");
    if (limits != NULL && !json_is_object(limits) && !json_is_null(limits)) {
        json_decref(host);
        api_docker_req_invalid(resp, "resource_limits", "Input should be a valid dictionary");
        return NULL;
    }
    if ((v = json_object_get(limits, "memory")) != NULL) {
        if (!json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) >= 0)) {
            json_decref(host);
            api_docker_req_invalid(resp, "resource_limits.memory", "bytes: a non-negative integer");
            return NULL;
        }
        json_object_set(host, "Memory", v);
    }
    if ((v = json_object_get(limits, "nanoCPUs")) != NULL) {
        if (!json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) >= 0)) {
            json_decref(host);
            api_docker_req_invalid(resp, "resource_limits.nanoCPUs", "a non-negative integer");
            return NULL;
        }
        json_object_set(host, "NanoCPUs", v);
    }
    cfg = json_pack("{s:s,s:s,s:o,s:o}", "Image", image, "Hostname", n->name, "Env",
                    env != NULL ? json_incref(env) : json_array(), "HostConfig", host);
    if (strcmp(net, "host") != 0 && strcmp(net, "bridge") != 0) {
        json_object_set_new(
            cfg, "NetworkingConfig",
            json_pack("{s:{s:{s:[s]}}}", "EndpointsConfig", net, "Aliases", n->name));
    }
    return cfg;
}

static void
on_create(struct api_req *req, struct api_resp *resp)
{
    struct docker_session s;
    struct exapp_name n;
    unsigned port;
    json_t *body, *cfg, *out = NULL;
    const char *id;
    char path[320], t[400];
    enum docker_rc rc;
    long status;

    if ((body = api_docker_req_begin(req, resp, &port, &n)) == NULL) {
        return;
    }
    cfg = create_config(resp, body, &n);
    json_decref(body);
    if (cfg == NULL) {
        return;
    }
    docker_session_open(&s, req->ctl, port, 60);
    snprintf(path, sizeof(path), "/volumes/%s", n.volume);
    if ((rc = docker_call_json(&s, "GET", path, NULL, &status, NULL)) != DOCKER_OK) {
        goto failed;
    }
    if (status == 404) {
        json_t *vb = json_pack("{s:s}", "Name", n.volume);

        rc = docker_call_json(&s, "POST", "/volumes/create", vb, &status, NULL);
        json_decref(vb);
        if (rc != DOCKER_OK) {
            goto failed;
        }
        if (status != 201) {
            snprintf(t, sizeof(t), "Failed to create volume '%s': Status %ld", n.volume, status);
            api_text(resp, 503, t);
            goto out;
        }
    } else if (status != 200) {
        snprintf(t, sizeof(t), "Error inspecting volume '%s': Status %ld", n.volume, status);
        api_text(resp, 503, t);
        goto out;
    }
    snprintf(path, sizeof(path), "/containers/create?name=%s", n.container);
    if ((rc = docker_call_json(&s, "POST", path, cfg, &status, &out)) != DOCKER_OK) {
        goto failed;
    }
    if (status == 201) {
        id = json_string_value(json_object_get(out, "Id"));
        api_json(resp, 201,
                 json_pack("{s:s,s:s}", "id", id != NULL ? id : "", "name", n.container));
        log_info("docker: created %s on port %u", n.container, port);
        store_k8s_docker(req->ctl->store, n.name);
    } else if (status == 409) {
        snprintf(t, sizeof(t), "Container with name '%s' already exists.", n.container);
        api_text(resp, 409, t);
    } else {
        const char *m = json_string_value(json_object_get(out, "message"));

        log_warnx("docker: create %s on port %u: status %ld: %.200s", n.container, port, status,
                  m != NULL ? m : "");
        snprintf(t, sizeof(t), "Error creating container '%s': Status %ld", n.container, status);
        api_text(resp, 503, t);
    }
    goto out;
failed:
    api_docker_req_failed(resp, rc, port);
out:
    json_decref(out);
    json_decref(cfg);
}

/* --- start, stop -------------------------------------------------------------------------- */

static void
start_stop(struct api_req *req, struct api_resp *resp, bool start)
{
    struct docker_session s;
    struct exapp_name n;
    unsigned port;
    json_t *body;
    char path[320], t[400];
    enum docker_rc rc;
    long status;

    if ((body = api_docker_req_begin(req, resp, &port, &n)) == NULL) {
        return;
    }
    json_decref(body);
    docker_session_open(&s, req->ctl, port, 30);
    snprintf(path, sizeof(path), "/containers/%s/%s", n.container, start ? "start" : "stop");
    if ((rc = docker_call_json(&s, "POST", path, NULL, &status, NULL)) != DOCKER_OK) {
        api_docker_req_failed(resp, rc, port);
        return;
    }
    if (status == 204) {
        api_empty(resp, 204);
    } else if (status == 304) {
        api_text(resp, 200, start ? "Container already started" : "Container already stopped");
    } else if (status == 404) {
        snprintf(t, sizeof(t), "Container '%s' not found.", n.container);
        api_text(resp, 404, t);
    } else {
        snprintf(t, sizeof(t), "Error %s container '%s' via Docker Engine: Status %ld",
                 start ? "starting" : "stopping", n.container, status);
        api_text(resp, 503, t);
    }
}

static void
on_start(struct api_req *req, struct api_resp *resp)
{
    start_stop(req, resp, true);
}

static void
on_stop(struct api_req *req, struct api_resp *resp)
{
    start_stop(req, resp, false);
}

/* --- wait_for_start ----------------------------------------------------------------------- */

#define WAIT_TRIES 180
#define WAIT_INTERVAL_MS 500
#define WAIT_TIMEOUT_S 105

static json_t *
wait_answer(bool started, const char *status, json_t *health, const char *reason)
{
    json_t *o = json_pack("{s:b,s:s,s:O}", "started", started, "status", status, "health",
                          health != NULL ? health : json_null());

    if (reason != NULL) {
        json_object_set_new(o, "reason", json_string(reason));
    }
    return o;
}

static void
on_wait_for_start(struct api_req *req, struct api_resp *resp)
{
    struct docker_session s;
    struct exapp_name n;
    unsigned port;
    json_t *body, *info, *state, *health = NULL, *h;
    char path[320], t[400], status[64] = "unknown", reason[96];
    enum docker_rc rc;
    long code;
    int i;

    if ((body = api_docker_req_begin(req, resp, &port, &n)) == NULL) {
        return;
    }
    json_decref(body);
    docker_session_open(&s, req->ctl, port, WAIT_TIMEOUT_S);
    snprintf(path, sizeof(path), "/containers/%s/json", n.container);
    for (i = 0; i < WAIT_TRIES; i++) {
        if (i > 0) {
            struct timespec ts = {0, WAIT_INTERVAL_MS * 1000000L};

            if (docker_remaining_ms(&s) <= WAIT_INTERVAL_MS) {
                break;
            }
            nanosleep(&ts, NULL);
        }
        info = NULL;
        rc = docker_call_json(&s, "GET", path, NULL, &code, &info);
        if (rc == DOCKER_TIMEOUT) {
            break;
        }
        if (rc != DOCKER_OK) {
            api_docker_req_failed(resp, rc, port);
            json_decref(health);
            return;
        }
        if (code == 404) {
            json_decref(info);
            json_decref(health);
            api_json(resp, 200,
                     json_pack("{s:b,s:s,s:s}", "started", 0, "status", "not_found", "reason",
                               "container not found"));
            return;
        }
        if (code != 200) {
            json_decref(info);
            json_decref(health);
            snprintf(t, sizeof(t), "Error inspecting container '%s': Status %ld", n.container,
                     code);
            api_text(resp, 503, t);
            return;
        }
        state = json_object_get(info, "State");
        snprintf(status, sizeof(status), "%s",
                 json_string_value(json_object_get(state, "Status")) != NULL
                     ? json_string_value(json_object_get(state, "Status"))
                     : "unknown");
        h = json_object_get(json_object_get(state, "Health"), "Status");
        json_decref(health);
        health = json_is_string(h) ? json_incref(h) : NULL;
        json_decref(info);
        if (strcmp(status, "running") == 0) {
            const char *hs = json_string_value(health);

            if (hs == NULL || strcmp(hs, "healthy") == 0) {
                api_json(resp, 200, wait_answer(true, status, health, NULL));
                json_decref(health);
                return;
            }
            if (strcmp(hs, "unhealthy") == 0) {
                api_json(resp, 200, wait_answer(true, status, health, "unhealthy"));
                json_decref(health);
                return;
            }
        } else if (strcmp(status, "paused") == 0 || strcmp(status, "exited") == 0 ||
                   strcmp(status, "dead") == 0) {
            snprintf(reason, sizeof(reason), "non-recoverable state: %s", status);
            api_json(resp, 200, wait_answer(false, status, health, reason));
            json_decref(health);
            return;
        }
    }
    api_json(resp, 200,
             wait_answer(false, status, health,
                         i < WAIT_TRIES ? "overall timeout" : "timeout after max tries"));
    json_decref(health);
}

/* --- remove, image_remove ----------------------------------------------------------------- */

static void
on_remove(struct api_req *req, struct api_resp *resp)
{
    struct docker_session s;
    struct exapp_name n;
    unsigned port;
    json_t *body;
    bool remove_data;
    char path[320], t[400];
    enum docker_rc rc;
    long status;

    if ((body = api_docker_req_begin(req, resp, &port, &n)) == NULL) {
        return;
    }
    if (api_docker_req_bool(body, "remove_data", false, &remove_data) == -1) {
        json_decref(body);
        api_docker_req_invalid(resp, "remove_data", "Input should be a valid boolean");
        return;
    }
    json_decref(body);
    docker_session_open(&s, req->ctl, port, 30);
    snprintf(path, sizeof(path), "/containers/%s?force=true", n.container);
    if ((rc = docker_call_json(&s, "DELETE", path, NULL, &status, NULL)) != DOCKER_OK) {
        api_docker_req_failed(resp, rc, port);
        return;
    }
    if (status != 204 && status != 404 && status != 409) {
        snprintf(t, sizeof(t), "Error removing container '%s' via Docker Engine: Status %ld",
                 n.container, status);
        api_text(resp, 503, t);
        return;
    }
    if (remove_data) {
        snprintf(path, sizeof(path), "/volumes/%s", n.volume);
        if ((rc = docker_call_json(&s, "DELETE", path, NULL, &status, NULL)) != DOCKER_OK) {
            api_docker_req_failed(resp, rc, port);
            return;
        }
        if (status == 409) {
            snprintf(t, sizeof(t), "Volume '%s' is in use and could not be removed.", n.volume);
            api_text(resp, 409, t);
            return;
        }
        if (status != 204 && status != 404) {
            snprintf(t, sizeof(t), "Error removing volume '%s' via Docker Engine: Status %ld",
                     n.volume, status);
            api_text(resp, 503, t);
            return;
        }
    }
    log_info("docker: removed %s on port %u%s", n.container, port,
             remove_data ? " with its volume" : "");
    api_empty(resp, 204);
}

/* Percent-encodes all but unreserved characters (Python quote(s, safe="")). */
static char *
quote_all(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* The characters of Docker references, no empty or dot-dot path components. */
static bool
image_ref_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 512 || s[0] == '/' || s[n - 1] == '/' || strstr(s, "//") != NULL ||
        strstr(s, "..") != NULL) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && strchr("._-:/@+", s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

static json_t *
not_found_deleted(void)
{
    return json_pack("{s:b,s:i,s:s}", "deleted", 1, "bytes_freed", 0, "reason", "not_found");
}

static void
on_image_remove(struct api_req *req, struct api_resp *resp)
{
    struct docker_session s;
    unsigned port;
    json_t *body, *info = NULL, *out = NULL, *v;
    const char *ref;
    char *enc = NULL, *path = NULL, *t;
    json_int_t size = 0;
    bool deleted = false;
    enum docker_rc rc;
    long status;
    size_t i;

    if ((body = api_docker_req_begin(req, resp, &port, NULL)) == NULL) {
        return;
    }
    if (api_docker_req_str(resp, body, "image_ref", NULL, &ref) == -1) {
        json_decref(body);
        return;
    }
    if (!image_ref_ok(ref)) {
        json_decref(body);
        api_docker_req_invalid(resp, "image_ref",
                               "not an image reference ([registry/]name[:tag]"
                               "[@digest])");
        return;
    }
    enc = quote_all(ref);
    docker_session_open(&s, req->ctl, port, 30);
    path = xasprintf("/images/%s/json", enc);
    rc = docker_call_json(&s, "GET", path, NULL, &status, &info);
    if (rc == DOCKER_CONNECT || rc == DOCKER_TIMEOUT || rc == DOCKER_BUSY) {
        api_docker_req_failed(resp, rc, port);
        goto out;
    }
    if (rc == DOCKER_OK && status == 404) {
        api_json(resp, 200, not_found_deleted());
        goto out;
    }
    if (rc == DOCKER_OK && status == 200 && json_is_integer(json_object_get(info, "Size"))) {
        size = json_integer_value(json_object_get(info, "Size"));
    }
    free(path);
    path = xasprintf("/images/%s", enc);
    if ((rc = docker_call_json(&s, "DELETE", path, NULL, &status, &out)) != DOCKER_OK) {
        api_docker_req_failed(resp, rc, port);
        goto out;
    }
    if (status == 200) {
        json_array_foreach(out, i, v)
        {
            if (json_object_get(v, "Deleted") != NULL) {
                deleted = true;
            }
        }
        api_json(
            resp, 200,
            json_pack("{s:b,s:I}", "deleted", 1, "bytes_freed", deleted ? size : (json_int_t)0));
        log_info("docker: image %s removed on port %u", ref, port);
    } else if (status == 404) {
        api_json(resp, 200, not_found_deleted());
    } else if (status == 409) {
        api_json(resp, 200, json_pack("{s:b,s:s}", "deleted", 0, "reason", "in_use"));
    } else {
        t = xasprintf("Error removing image '%s' via Docker Engine: Status %ld", ref, status);
        api_text(resp, 503, t);
        free(t);
    }
out:
    json_decref(body);
    json_decref(info);
    json_decref(out);
    free(enc);
    free(path);
}

const struct api_route api_docker_routes[] = {
    {"POST", "/docker/exapp/exists", false, false, on_exists},
    {"POST", "/docker/exapp/create", false, false, on_create},
    {"POST", "/docker/exapp/start", false, false, on_start},
    {"POST", "/docker/exapp/stop", false, false, on_stop},
    {"POST", "/docker/exapp/wait_for_start", false, false, on_wait_for_start},
    {"POST", "/docker/exapp/remove", false, false, on_remove},
    {"POST", "/docker/exapp/image_remove", false, false, on_image_remove},
    {"POST", "/docker/exapp/install_certificates", false, false, api_docker_certs_install},
    {NULL, NULL, false, false, NULL},
};
