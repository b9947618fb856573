/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Nextcloud client (libcurl): HaRP's client properties (spec 3.4): 25 s total, 5 s connect,
 * no cookie jar, TLS verified with the system CAs, redirects followed, JSON answers only. */
#include "config.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_client.h"
#include "log.h"
#include "nextcloud.h"
#include "secret.h"
#include "xmalloc.h"

#define MAX_ANSWER (1u * 1024 * 1024)

int
nextcloud_exapp_meta(const struct hp_config *cfg, const char *app_id, struct exapp *app,
                     struct hp_err *err)
{
    struct curl_slist *hdrs = NULL;
    struct http_body a = {.max = MAX_ANSWER};
    char *url, *key, *esc, *ctype = NULL;
    long status = 0;
    CURLcode rc;
    json_t *j;
    CURL *c;
    int ret = -1;

    c = curl_easy_init();
    if (c == NULL) {
        err_set(err, "cannot create an HTTP client");
        return -1;
    }
    esc = curl_easy_escape(c, app_id, 0);
    url = xasprintf("%s/index.php/apps/app_api/harp/exapp-meta?appId=%s", cfg->nc_req_url, esc);
    curl_free(esc);
    key = xasprintf("harp-shared-key: %s", cfg->shared_key);
    hdrs = curl_slist_append(hdrs, key);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 25L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        err_set(err, "Nextcloud unreachable: %s", curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
    if (status == 401 || status == 404) {
        ret = 0;
        goto out;
    }
    if (status != 200) {
        err_set(err, "Nextcloud answered %ld", status);
        goto out;
    }
    if (ctype == NULL || strncasecmp(ctype, "application/json", 16) != 0) {
        err_set(err, "Nextcloud answered 200 without JSON (a login page?)");
        goto out;
    }
    j = json_loadb(a.data ? a.data : "", a.len, 0, NULL);
    if (j == NULL || exapp_from_json(j, app, err) == -1) {
        if (j == NULL) {
            err_set(err, "Nextcloud answered invalid JSON");
        }
        json_decref(j);
        goto out;
    }
    json_decref(j);
    snprintf(app->app_id, sizeof(app->app_id), "%s", app_id);
    ret = 1;
out:
    http_body_free(&a);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    secret_free(key);
    free(url);
    return ret;
}
