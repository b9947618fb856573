/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* POST /docker/exapp/install_certificates (spec 4.7.7). */
#ifndef HARP_CTL_API_DOCKER_CERTS_H
#define HARP_CTL_API_DOCKER_CERTS_H

#include "api.h"

void api_docker_certs_install(struct api_req *req, struct api_resp *resp);

#endif
