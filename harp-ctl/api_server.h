/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The control REST API's daemon: listens, authenticates, routes to the api_* tables. */
#ifndef HARP_CTL_API_SERVER_H
#define HARP_CTL_API_SERVER_H

#include "ctl.h"
#include "err.h"

struct api;

/* Starts the daemon on cfg->control_address. NULL with <err> on failure. */
struct api *api_server_start(struct ctl *ctl, struct hp_err *err);
void api_server_stop(struct api *api);

#endif
