/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* What HaRP's and the operators' ExApp endpoints share: the app id in the path, DELETE. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_exapp.h"
#include "log.h"

/* Validates <param> as an app id; answers 400 and returns -1 when it is not one. */
int
api_exapp_id(struct api_req *req, struct api_resp *resp, char id[EXAPP_ID_MAX + 1])
{
    struct hp_err err;

    if (exapp_id_normalise(req->param, id, &err) == -1) {
        api_error(resp, 400, err.msg);
        return -1;
    }
    return 0;
}

void
api_exapp_delete(struct api_req *req, struct api_resp *resp)
{
    struct hp_err err;
    char id[EXAPP_ID_MAX + 1];
    int rc;

    if (api_exapp_id(req, resp, id) == -1) {
        return;
    }
    rc = store_exapp_delete(req->ctl->store, id, &err);
    if (rc == -1) {
        api_error(resp, 500, "the ExApp could not be removed");
    } else if (rc == 0) {
        api_error(resp, 404, NULL);
    } else {
        log_info("exapp: removed %s", id);
        publish_notify(req->ctl->pub);
        api_empty(resp, 204);
    }
}
