/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Operator endpoints under /api/v1: status and ExApps (never their tokens). */
#include "config.h"

#include <stdlib.h>
#include <time.h>

#include <string.h>

#include "api.h"
#include "api_exapp.h"
#include "api_timeouts.h"
#include "cidr.h"
#include "log.h"
#include "outbound.h"
#include "reload.h"

static void
on_status(struct api_req *req, struct api_resp *resp)
{
    struct ctl *ctl = req->ctl;
    struct outbound_stats ob;
    json_t *o = json_object();

    json_object_set_new(o, "version", json_string(PACKAGE_VERSION));
    json_object_set_new(o, "uptime_seconds", json_integer((json_int_t)(time(NULL) - ctl->started)));
    json_object_set_new(o, "state_dir", json_string(ctl->cfg.state_dir));
    json_object_set_new(o, "database", json_string(ctl->store->path));
    json_object_set_new(o, "schema_version", json_integer(store_schema_version(ctl->store)));
    json_object_set_new(o, "table_version", json_integer(store_table_version(ctl->store)));
    json_object_set_new(o, "exapps", json_integer((json_int_t)store_exapp_count(ctl->store)));
    publish_stats(ctl->pub, o);
    outbound_stats(&ob);
    json_object_set_new(o, "outbound",
                        json_pack("{s:i,s:i,s:i,s:I,s:I}", "max", (int)ob.max, "running",
                                  (int)ob.running, "waiting", (int)ob.waiting, "done",
                                  (json_int_t)ob.done, "refused", (json_int_t)ob.refused));
    api_json(resp, 200, o);
}

static void
on_exapp_list(struct api_req *req, struct api_resp *resp)
{
    struct exapp *apps;
    struct hp_err err;
    json_t *o, *a;
    size_t i, n;

    if (store_exapp_list(req->ctl->store, &apps, &n, &err) == -1) {
        api_error(resp, 500, "the ExApps could not be read");
        return;
    }
    a = json_array();
    for (i = 0; i < n; i++) {
        json_array_append_new(a, exapp_to_json(&apps[i], false));
    }
    store_exapp_list_free(apps, n);
    o = json_object();
    json_object_set_new(o, "exapps", a);
    api_json(resp, 200, o);
}

/* The ExApp's JSON, with its Kubernetes exposure when it has one (store_k8s). */
static json_t *
exapp_k8s_json(struct ctl *ctl, const struct exapp *app)
{
    json_t *o = exapp_to_json(app, false);
    struct k8s_expose e;

    if (store_k8s_get(ctl->store, app->app_id, &e) == 1 && strcmp(e.kind, "docker") != 0) {
        json_object_set_new(o, "kubernetes",
                            json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "expose_type", e.kind, "service",
                                      e.service, "namespace", ctl->cfg.k8s_namespace, "upstream",
                                      app->host, "node_name", e.node_name, "node_address_type",
                                      e.address_type));
    }
    return o;
}

static void
on_exapp_show(struct api_req *req, struct api_resp *resp)
{
    struct exapp app;
    struct hp_err err;
    char id[EXAPP_ID_MAX + 1];
    int rc;

    if (exapp_id_normalise(req->param, id, &err) == -1) {
        api_error(resp, 400, err.msg);
        return;
    }
    rc = store_exapp_get(req->ctl->store, id, &app, &err);
    if (rc == -1) {
        api_error(resp, 500, "the ExApp could not be read");
    } else if (rc == 0) {
        api_error(resp, 404, "no such ExApp");
    } else {
        json_t *o = exapp_k8s_json(req->ctl, &app);

        json_object_set_new(o, "effective_timeouts", api_timeouts_effective(req->ctl, &app));
        api_json(resp, 200, o);
        exapp_free(&app);
    }
}

static void
on_dataplanes(struct api_req *req, struct api_resp *resp)
{
    json_t *o = json_object();

    json_object_set_new(o, "dataplanes", publish_dataplanes(req->ctl->pub));
    api_json(resp, 200, o);
}

/* Every data plane's FRP tunnels, with the data plane that serves each. */
static void
on_tunnels(struct api_req *req, struct api_resp *resp)
{
    json_t *dps = publish_dataplanes(req->ctl->pub), *d, *t, *list = json_array();
    size_t i, k;

    json_array_foreach(dps, i, d)
    {
        json_array_foreach(json_object_get(d, "tunnels"), k, t)
        {
            json_t *c = json_deep_copy(t);

            json_object_set(c, "dp_id", json_object_get(d, "dp_id"));
            json_array_append_new(list, c);
        }
    }
    json_decref(dps);
    api_json(resp, 200, json_pack("{s:o}", "tunnels", list));
}

static void
on_ban_list(struct api_req *req, struct api_resp *resp)
{
    json_t *o = json_object();

    json_object_set_new(o, "bans", store_ban_list(req->ctl->store, (int64_t)time(NULL)));
    api_json(resp, 200, o);
}

/* The canonical text of an IP address, or an answered 400. */
static int
ban_ip(const char *raw, struct api_resp *resp, char ip[IP_STR_MAX])
{
    struct ipaddr a;

    if (raw == NULL || !ip_parse(raw, strlen(raw), &a)) {
        api_error(resp, 400, "ip: must be an IPv4 or IPv6 address");
        return -1;
    }
    ip_format(&a, ip);
    return 0;
}

static void
on_ban_add(struct api_req *req, struct api_resp *resp)
{
    json_t *body = api_body_json(req, resp), *secs;
    char ip[IP_STR_MAX];
    struct hp_err err;
    json_int_t n;

    if (body == NULL) {
        return;
    }
    if (!json_is_object(body) ||
        ban_ip(json_string_value(json_object_get(body, "ip")), resp, ip) == -1) {
        if (!json_is_object(body)) {
            api_error(resp, 400, "body: must be a JSON object");
        }
        json_decref(body);
        return;
    }
    secs = json_object_get(body, "seconds");
    n = secs == NULL ? (json_int_t)ENV_LIVE(req->ctl->cfg.blacklist_window)
                     : json_integer_value(secs);
    if (secs != NULL && (!json_is_integer(secs) || n < 1 || n > 31536000 * 10LL)) {
        api_error(resp, 400, "seconds: must be a whole number from 1 to 315360000");
        json_decref(body);
        return;
    }
    json_decref(body);
    if (store_ban_put(req->ctl->store, ip, 0, "operator", (int64_t)time(NULL) + n, &err) == -1) {
        api_error(resp, 500, "the ban could not be stored");
        return;
    }
    log_notice("bans: %s banned by an operator for %lld s", ip, (long long)n);
    publish_bans_changed(req->ctl->pub, NULL);
    api_json(resp, 201, json_pack("{s:s,s:I}", "ip", ip, "expires_at", (json_int_t)time(NULL) + n));
}

static void
on_ban_rm(struct api_req *req, struct api_resp *resp)
{
    char ip[IP_STR_MAX];
    struct hp_err err;
    int rc;

    if (ban_ip(req->param, resp, ip) == -1) {
        return;
    }
    rc = store_ban_delete(req->ctl->store, ip, &err);
    if (rc == -1) {
        api_error(resp, 500, "the ban could not be removed");
        return;
    }
    publish_bans_changed(req->ctl->pub, ip);
    if (rc == 0) {
        api_error(resp, 404, "no ban for that address");
        return;
    }
    log_notice("bans: %s unbanned by an operator", ip);
    api_empty(resp, 204);
}

/* POST /api/v1/reload: as SIGHUP (reload.h). */
static void
on_reload(struct api_req *req, struct api_resp *resp)
{
    struct hp_err err;
    json_t *report = reload_run(req->ctl, &err);

    if (report == NULL) {
        api_error(resp, 422, err.msg);
        return;
    }
    api_json(resp, 200, report);
}

const struct api_route api_ops_routes[] = {
    {"POST", "/api/v1/reload", false, false, on_reload},
    {"GET", "/api/v1/bans", false, false, on_ban_list},
    {"POST", "/api/v1/bans", false, false, on_ban_add},
    {"DELETE", "/api/v1/bans/", true, false, on_ban_rm},
    {"GET", "/api/v1/dataplanes", false, false, on_dataplanes},
    {"GET", "/api/v1/tunnels", false, false, on_tunnels},
    {"GET", "/api/v1/status", false, false, on_status},
    {"GET", "/api/v1/exapps", false, false, on_exapp_list},
    {"GET", "/api/v1/exapps/", true, false, on_exapp_show},
    {"DELETE", "/api/v1/exapps/", true, false, api_exapp_delete},
    {"PUT", "/api/v1/timeouts/", true, false, api_timeouts_put},
    {NULL, NULL, false, false, NULL},
};
