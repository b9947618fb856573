/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Nextcloud's harp endpoints (spec 3): exapp-meta now, user-info with the auth issue. */
#ifndef HARP_CTL_NEXTCLOUD_H
#define HARP_CTL_NEXTCLOUD_H

#include <stdbool.h>

#include "env.h"
#include "err.h"
#include "exapp.h"
#include "msg.h"

/* GET <NC_REQ_URL>/index.php/apps/app_api/harp/exapp-meta?appId=<app_id> with the shared key.
 * 1 with <app> filled (app_id set) when Nextcloud knows the app, 0 when it answers 401/404
 * (unknown app, or a key it does not accept), -1 with <err> on any other outcome (also when
 * all outbound calls stay busy, outbound.h). Blocks up to 35 s. */
int nextcloud_exapp_meta(const struct hp_config *cfg, const char *app_id, struct exapp *app,
                         struct hp_err *err);

/* Whether Nextcloud holds <app> (as exapp-meta gave it) enabled: AppAPI refuses every call
 * signed with the secret of a disabled ExApp (AppAPIService::validateExAppRequestToNC), so
 * the app asks for none of its own configuration values, POST
 * <NC_REQ_URL>/ocs/v2.php/apps/app_api/api/v1/ex-app/config/get-values, signed as itself.
 * 1 when Nextcloud answers 2xx, 0 on 401 or 403 (disabled), -1 with <err> otherwise. Blocks
 * up to 25 s. */
int nextcloud_exapp_enabled(const struct hp_config *cfg, const struct exapp *app,
                            struct hp_err *err);

/* What one exapp-meta call for <app_id> got, for `harp-ctl doctor`: <status> (0 when no
 * answer came, then <neterr> says why), whether the answer was JSON, whether it was an ExApp's
 * metadata, and its "message". */
struct nc_probe {
    long status;
    bool json;
    bool meta;
    char content_type[64];
    char message[128];
    char neterr[512];
};
void nextcloud_probe(const struct hp_config *cfg, const char *app_id, struct nc_probe *p);

enum nc_user_result { NC_USER = 1, NC_ANONYMOUS = 0, NC_USER_ERROR = -1 };

/* GET <NC_REQ_URL>/index.php/apps/app_api/harp/user-info?appId=<app_id> with the client's
 * <n> <headers> (their exact bytes; the data plane already left out Host, Content-Length and
 * hop-by-hop headers; a value holding NUL, CR or LF is left out) and the shared key
 * (spec 3.3). NC_USER with <user_id> and <level> on
 * 200; NC_ANONYMOUS on any 4xx; NC_USER_ERROR (<err> says why) on 5xx, network errors,
 * timeouts, malformed answers and all outbound calls busy. Blocks up to 35 s. */
enum nc_user_result nextcloud_user_info(const struct hp_config *cfg, const char *app_id,
                                        const struct msg_header *headers, size_t n, char *user_id,
                                        size_t user_len, int *level, struct hp_err *err);

#endif
