/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* What HaRP's (/exapp_storage/) and the operators' (/api/v1/exapps/) ExApp endpoints share. */
#ifndef HARP_CTL_API_EXAPP_H
#define HARP_CTL_API_EXAPP_H

#include "api.h"
#include "exapp.h"

/* Validates req->param as an app id into <id>; answers 400 and returns -1 when it is not one. */
int api_exapp_id(struct api_req *req, struct api_resp *resp, char id[EXAPP_ID_MAX + 1]);
/* DELETE of an ExApp: /exapp_storage/{id} and the operators' /api/v1/exapps/{id}. */
void api_exapp_delete(struct api_req *req, struct api_resp *resp);

#endif
