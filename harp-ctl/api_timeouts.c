/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Operators' timeouts of ExApps and their routes: PUT /api/v1/timeouts/{id}, and the
 * effective values GET /api/v1/exapps/{id} shows. Stored apart from AppAPI's registration
 * (store_timeouts.c), so a re-registration keeps them. */
#include "config.h"

#include <string.h>

#include "api_timeouts.h"
#include "log.h"

/* The data plane's defaults as this process's settings say (HP_TIMEOUT_*). */
static void
defaults_ms(const struct ctl *ctl, uint64_t d[EXAPP_NTIMEOUTS])
{
    d[EXAPP_TO_CONNECT] = ENV_LIVE(ctl->cfg.timeout_connect_ms);
    d[EXAPP_TO_REQUEST] = ENV_LIVE(ctl->cfg.timeout_client_ms);
    d[EXAPP_TO_FIRST_BYTE] = ENV_LIVE(ctl->cfg.timeout_server_ms);
    d[EXAPP_TO_IDLE] = ENV_LIVE(ctl->cfg.timeout_server_ms);
    d[EXAPP_TO_WS_IDLE] = ENV_LIVE(ctl->cfg.timeout_tunnel_ms);
}

static json_t *
effective(const uint64_t d[EXAPP_NTIMEOUTS], const uint32_t *app, const uint32_t *route)
{
    json_t *o = json_object();
    const char *src;
    uint64_t ms;
    int k;

    for (k = 0; k < EXAPP_NTIMEOUTS; k++) {
        if (route != NULL && route[k] != 0) {
            ms = route[k], src = "route";
        } else if (app[k] != 0) {
            ms = app[k], src = "app";
        } else {
            ms = d[k], src = "default";
        }
        json_object_set_new(o, exapp_timeout_name(k),
                            json_pack("{s:I,s:s}", "ms", (json_int_t)ms, "source", src));
    }
    return o;
}

json_t *
api_timeouts_effective(const struct ctl *ctl, const struct exapp *app)
{
    json_t *routes = json_array();
    uint64_t d[EXAPP_NTIMEOUTS];
    size_t i;

    defaults_ms(ctl, d);
    for (i = 0; i < app->nroutes; i++) {
        json_t *r = effective(d, app->timeouts, app->routes[i].timeouts);

        json_object_set_new(r, "url", json_string(app->routes[i].url));
        json_array_append_new(routes, r);
    }
    return json_pack("{s:o,s:o}", "app", effective(d, app->timeouts, NULL), "routes", routes);
}

/* One value of the body: a duration ("30m", "2h", digits alone are ms) or milliseconds, null
 * or "default" for the default. 0, or -1 with <err>. */
static int
parse_value(const char *kind, const json_t *v, uint32_t *ms, struct hp_err *err)
{
    uint64_t t;

    if (json_is_null(v) || (json_is_string(v) && strcmp(json_string_value(v), "default") == 0)) {
        *ms = 0;
        return 0;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        t = (uint64_t)json_integer_value(v);
    } else if (!json_is_string(v) || env_parse_time_ms(json_string_value(v), &t) == -1) {
        err_set(err,
                "timeouts.%s: not a duration (digits with us, ms, s, m, h or d, e.g. 30m; "
                "\"default\" for the default)",
                kind);
        return -1;
    }
    if (t < EXAPP_TIMEOUT_MIN_MS || t > EXAPP_TIMEOUT_MAX_MS) {
        err_set(err, "timeouts.%s: must be from 1s to 24d", kind);
        return -1;
    }
    *ms = (uint32_t)t;
    return 0;
}

/* Checks the whole body before anything is stored: a refused body changes nothing. */
static int
parse_body(const json_t *body, const struct exapp *app, const char **route,
           uint32_t ms[EXAPP_NTIMEOUTS], bool change[EXAPP_NTIMEOUTS], unsigned *status,
           struct hp_err *err)
{
    const json_t *to = json_object_get(body, "timeouts"), *r = json_object_get(body, "route"), *v;
    const char *k;
    size_t i;
    int kind;

    *status = 400;
    if (!json_is_object(body) || !json_is_object(to) || json_object_size(to) == 0) {
        err_set(err, "body: must be {\"timeouts\": {\"idle\": \"30m\", ...}[, \"route\": URL]}");
        return -1;
    }
    *route = "";
    if (r != NULL && !json_is_null(r)) {
        if (!json_is_string(r)) {
            err_set(err, "route: must be a route's url pattern");
            return -1;
        }
        *route = json_string_value(r);
        for (i = 0; i < app->nroutes && strcmp(app->routes[i].url, *route) != 0; i++) {
        }
        if (i == app->nroutes) {
            *status = 404;
            err_set(err, "route: %s has no route '%.200s'", app->app_id, *route);
            return -1;
        }
    }
    json_object_foreach((json_t *)to, k, v)
    {
        if ((kind = exapp_timeout_kind(k)) == -1) {
            err_set(err,
                    "timeouts: unknown timeout '%.32s' (connect, request, first_byte, idle, "
                    "ws_idle)",
                    k);
            return -1;
        }
        if (parse_value(k, v, &ms[kind], err) == -1) {
            return -1;
        }
        change[kind] = true;
    }
    return 0;
}

void
api_timeouts_put(struct api_req *req, struct api_resp *resp)
{
    uint32_t ms[EXAPP_NTIMEOUTS] = {0};
    bool change[EXAPP_NTIMEOUTS] = {false};
    char id[EXAPP_ID_MAX + 1];
    const char *route;
    struct hp_err err;
    struct exapp app;
    unsigned status;
    json_t *body, *o;
    int rc;

    if (exapp_id_normalise(req->param, id, &err) == -1) {
        api_error(resp, 400, err.msg);
        return;
    }
    if ((body = api_body_json(req, resp)) == NULL) {
        return;
    }
    rc = store_exapp_get(req->ctl->store, id, &app, &err);
    if (rc != 1) {
        api_error(resp, rc == 0 ? 404 : 500,
                  rc == 0 ? "no such ExApp" : "the ExApp could not be read");
        json_decref(body);
        return;
    }
    if (parse_body(body, &app, &route, ms, change, &status, &err) == -1) {
        api_error(resp, status, err.msg);
    } else if (store_timeouts_set(req->ctl->store, id, route, ms, change, &err) == -1) {
        api_error(resp, 500, "the timeouts could not be stored");
    } else {
        log_notice("exapps: %s: timeouts%s%s changed by an operator", id,
                   route[0] ? " of route " : "", route);
        status = 200;
    }
    json_decref(body);
    exapp_free(&app);
    if (status != 200) {
        return;
    }
    publish_notify(req->ctl->pub);
    if (store_exapp_get(req->ctl->store, id, &app, &err) != 1) {
        api_error(resp, 500, "the ExApp could not be read");
        return;
    }
    o = exapp_to_json(&app, false);
    json_object_set_new(o, "effective_timeouts", api_timeouts_effective(req->ctl, &app));
    exapp_free(&app);
    api_json(resp, 200, o);
}
