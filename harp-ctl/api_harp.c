/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* HaRP's control endpoints as AppAPI calls them: /heartbeat, /info, /exapp_storage/{app_id}. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_exapp.h"
#include "k8s.h"
#include "k8s_upstream.h"
#include "log.h"

static void
on_heartbeat(struct api_req *req, struct api_resp *resp)
{
    json_t *o = json_object();

    json_object_set_new(o, "status", json_string("ok"));
    api_json(resp, 200, o);
}

static void
on_info(struct api_req *req, struct api_resp *resp)
{
    const struct hp_config *cfg = &req->ctl->cfg;
    json_t *o = json_object(), *k = json_object();

    json_object_set_new(o, "version", json_string(PACKAGE_VERSION));
    json_object_set_new(o, "docker", json_true());
    json_object_set_new(k, "enabled", json_boolean(cfg->k8s_enabled));
    if (cfg->k8s_enabled) {
        json_object_set_new(k, "api_server",
                            json_string(cfg->k8s_api_server ? cfg->k8s_api_server : ""));
        json_object_set_new(k, "reachable", json_boolean(k8s_reachable(cfg)));
    }
    json_object_set_new(o, "kubernetes", k);
    api_json(resp, 200, o);
}

static void
on_storage_post(struct api_req *req, struct api_resp *resp)
{
    struct exapp app;
    struct hp_err err;
    char id[EXAPP_ID_MAX + 1];
    json_t *body;
    int rc;

    if (api_exapp_id(req, resp, id) == -1 || (body = api_body_json(req, resp)) == NULL) {
        return;
    }
    if (exapp_from_json(body, &app, &err) == -1) {
        json_decref(body);
        api_error(resp, 400, err.msg);
        return;
    }
    json_decref(body);
    memcpy(app.app_id, id, sizeof(id));
    if (k8s_upstream_apply(&req->ctl->cfg, req->ctl->store, &app) == -1) {
        snprintf(err.msg, sizeof(err.msg), "K8s API error during Service lookup for '%s'", id);
        api_text(resp, 503, err.msg);
        exapp_free(&app);
        return;
    }
    rc = store_exapp_put(req->ctl->store, &app, &err);
    if (rc == -2) {
        log_warnx("exapp: %s refused: %s", app.app_id, err.msg);
        api_error(resp, 413, err.msg);
    } else if (rc == -1) {
        api_error(resp, 500, "the ExApp could not be stored");
    } else {
        log_info("exapp: stored %s version=%s host=%s port=%u routes=%zu", app.app_id, app.version,
                 app.host, app.port, app.nroutes);
        publish_forget_missing(req->ctl->pub, app.app_id);
        publish_notify(req->ctl->pub);
        api_empty(resp, 204);
    }
    exapp_free(&app);
}

const struct api_route api_harp_routes[] = {
    {"GET", "/heartbeat", false, true, on_heartbeat},
    {"GET", "/info", false, false, on_info},
    {"POST", "/exapp_storage/", true, false, on_storage_post},
    {"DELETE", "/exapp_storage/", true, false, api_exapp_delete},
    {NULL, NULL, false, false, NULL},
};
