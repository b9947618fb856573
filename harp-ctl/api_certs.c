/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Operators' certificate endpoints: GET /api/v1/certs, GET /api/v1/certs/export,
 * POST /api/v1/certs/rotate (body {"now": true}: no overlap), POST /api/v1/certs/finish (the
 * overlap ends now), GET /api/v1/certs/status (the lifecycle). */
#include "config.h"

#include <stdlib.h>
#include <time.h>

#include "api.h"
#include "ca.h"
#include "ca_renew.h"
#include "log.h"

static void
on_show(struct api_req *req, struct api_resp *resp)
{
    struct cert_rec recs[3];
    char *dir = ca_dir(req->ctl);
    json_t *o = json_pack("{s:b,s:s}", "tls", !req->ctl->cfg.frp_disable_tls, "dir", dir);

    free(dir);
    if (store_cert_get_all(req->ctl->store, recs) == 1) {
        json_object_set_new(o, "certificates", ca_describe(recs));
        store_cert_free(recs);
    } else {
        json_object_set_new(o, "certificates", json_array());
    }
    api_json(resp, 200, o);
}

/* What a remote frpc needs: the CA certificate and the client certificate and key. */
static void
on_export(struct api_req *req, struct api_resp *resp)
{
    struct cert_rec recs[3];

    if (store_cert_get_all(req->ctl->store, recs) != 1) {
        api_error(resp, 404,
                  req->ctl->cfg.frp_disable_tls
                      ? "FRP TLS is disabled (HP_FRP_DISABLE_TLS=true): no certificates"
                      : "no certificates stored");
        return;
    }
    api_json(resp, 200,
             json_pack("{s:s,s:s,s:s}", "ca.crt", recs[0].cert_pem, "client.crt", recs[2].cert_pem,
                       "client.key", recs[2].key_pem));
    store_cert_free(recs);
    log_notice("ca: client certificate and key exported");
}

static void
on_rotate(struct api_req *req, struct api_resp *resp)
{
    json_t *body = req->body_len > 0 ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    const json_t *now = json_object_get(body, "now");
    struct hp_err err;

    if (req->body_len > 0 && (!json_is_object(body) || (now != NULL && !json_is_boolean(now)))) {
        json_decref(body);
        api_error(resp, 400, "the body must be {\"now\": true|false}");
        return;
    }
    if (ca_rotate(req->ctl, json_is_true(now), &err) == -1) {
        json_decref(body);
        api_error(resp, req->ctl->cfg.frp_disable_tls ? 409 : 500, err.msg);
        return;
    }
    json_decref(body);
    ca_renew_kick(req->ctl->renew);
    on_show(req, resp);
}

static void
on_finish(struct api_req *req, struct api_resp *resp)
{
    struct hp_err err;

    if (ca_finish(req->ctl, "ended by an operator", &err) == -1) {
        api_error(resp, 409, err.msg);
        return;
    }
    on_show(req, resp);
}

static void
on_status(struct api_req *req, struct api_resp *resp)
{
    struct cert_rec recs[3];
    json_t *o = ca_lifecycle(req->ctl);

    json_object_set_new(o, "tls", json_boolean(!req->ctl->cfg.frp_disable_tls));
    if (store_cert_get_all(req->ctl->store, recs) == 1) {
        json_object_set_new(o, "certificates", ca_describe(recs));
        store_cert_free(recs);
    } else {
        json_object_set_new(o, "certificates", json_array());
    }
    json_object_set_new(o, "now", json_integer((json_int_t)time(NULL)));
    api_json(resp, 200, o);
}

const struct api_route api_certs_routes[] = {
    {"GET", "/api/v1/certs", false, false, on_show},
    {"GET", "/api/v1/certs/export", false, false, on_export},
    {"POST", "/api/v1/certs/rotate", false, false, on_rotate},
    {"POST", "/api/v1/certs/finish", false, false, on_finish},
    {"GET", "/api/v1/certs/status", false, false, on_status},
    {NULL, NULL, false, false, NULL},
};
