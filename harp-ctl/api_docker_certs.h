/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* POST /docker/exapp/install_certificates (spec 4.7.7). */
#ifndef HARP_CTL_API_DOCKER_CERTS_H
#define HARP_CTL_API_DOCKER_CERTS_H

#include "api.h"

void api_docker_certs_install(struct api_req *req, struct api_resp *resp);
/* Writes the current FRP client files into every container install_certificates wrote them
 * into that does not have them yet (a container Docker no longer knows is forgotten); the
 * number still to do. Blocking: the renewal thread calls it. */
size_t api_docker_certs_deliver(struct ctl *ctl);
/* The number of containers without the current files, without writing. */
size_t api_docker_certs_pending(struct ctl *ctl);

#endif
