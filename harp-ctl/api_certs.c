/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Operators' certificate endpoints: GET /api/v1/certs, GET /api/v1/certs/export,
 * POST /api/v1/certs/rotate. */
#include "config.h"

#include <stdlib.h>

#include "api.h"
#include "ca.h"
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
    struct hp_err err;

    if (ca_rotate(req->ctl, &err) == -1) {
        api_error(resp, req->ctl->cfg.frp_disable_tls ? 409 : 500, err.msg);
        return;
    }
    on_show(req, resp);
}

const struct api_route api_certs_routes[] = {
    {"GET", "/api/v1/certs", false, false, on_show},
    {"GET", "/api/v1/certs/export", false, false, on_export},
    {"POST", "/api/v1/certs/rotate", false, false, on_rotate},
    {NULL, NULL, false, false, NULL},
};
