/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Nextcloud's harp endpoints (spec 3): exapp-meta now, user-info with the auth issue. */
#ifndef HARP_CTL_NEXTCLOUD_H
#define HARP_CTL_NEXTCLOUD_H

#include "env.h"
#include "err.h"
#include "exapp.h"

/* GET <NC_REQ_URL>/index.php/apps/app_api/harp/exapp-meta?appId=<app_id> with the shared key.
 * 1 with <app> filled (app_id set) when Nextcloud knows the app, 0 when it answers 401/404
 * (unknown app, or a key it does not accept), -1 with <err> on any other outcome. Blocks up
 * to 25 s. */
int nextcloud_exapp_meta(const struct hp_config *cfg, const char *app_id, struct exapp *app,
                         struct hp_err *err);

#endif
