/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Nextcloud client (libcurl): HaRP's client properties (spec 3.4): 25 s total, 5 s connect,
 * no cookie jar, TLS verified with the system CAs, redirects followed, JSON answers only.
 * Each call takes one of the HP_OUTBOUND_MAX slots of outbound.c, waiting OUTBOUND_WAIT_MS. */
#include "config.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64.h"
#include "http_client.h"
#include "log.h"
#include "nextcloud.h"
#include "outbound.h"
#include "secret.h"
#include "xmalloc.h"

#define MAX_ANSWER (1u * 1024 * 1024)

static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void
handle_free(void *c)
{
    curl_easy_cleanup(c);
}

static void
handle_key_init(void)
{
    pthread_key_create(&handle_key, handle_free);
}

/* The calling thread's handle, reset: each look-up worker keeps one, so its connection to
 * Nextcloud stays open between calls. Freed when the thread ends. */
static CURL *
thread_handle(void)
{
    CURL *c;

    pthread_once(&handle_once, handle_key_init);
    if ((c = pthread_getspecific(handle_key)) != NULL) {
        curl_easy_reset(c);
        return c;
    }
    if ((c = curl_easy_init()) != NULL && pthread_setspecific(handle_key, c) != 0) {
        curl_easy_cleanup(c);
        c = NULL;
    }
    return c;
}

/* The curl handle both endpoints use: HaRP's client properties (spec 3.4). */
static CURL *
nc_handle(const char *url, struct curl_slist *hdrs, struct http_body *body)
{
    CURL *c = thread_handle();

    if (c == NULL) {
        return NULL;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 25L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    return c;
}

/* Runs a GET; the thread's handle with *<status> and *<ctype>, or NULL with <err>. */
static CURL *
nc_perform(const char *url, struct curl_slist *hdrs, struct http_body *body, long *status,
           const char **ctype, struct hp_err *err)
{
    CURL *c = nc_handle(url, hdrs, body);
    char *ct = NULL;
    CURLcode rc;

    if (c == NULL) {
        err_set(err, "cannot create an HTTP client");
        return NULL;
    }
    if (outbound_perform(c, OUTBOUND_WAIT_MS, "Nextcloud call", &rc) == -1) {
        err_set(err, "not called: all %u outbound calls (HP_OUTBOUND_MAX) busy", outbound_max());
        return NULL;
    }
    if (rc != CURLE_OK) {
        err_set(err, "Nextcloud unreachable: %s", curl_easy_strerror(rc));
        return NULL;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    *ctype = ct;
    return c;
}

int
nextcloud_exapp_meta(const struct hp_config *cfg, const char *app_id, struct exapp *app,
                     struct hp_err *err)
{
    struct curl_slist *hdrs = NULL;
    struct http_body a = {.max = MAX_ANSWER};
    char *url, *key, *esc;
    const char *ctype = NULL;
    long status = 0;
    json_t *j;
    CURL *c;
    int ret = -1;

    esc = curl_easy_escape(NULL, app_id, 0);
    url = xasprintf("%s/index.php/apps/app_api/harp/exapp-meta?appId=%s", ENV_LIVE(cfg->nc_req_url),
                    esc);
    curl_free(esc);
    key = xasprintf("harp-shared-key: %s", cfg->shared_key);
    hdrs = curl_slist_append(hdrs, key);
    c = nc_perform(url, hdrs, &a, &status, &ctype, err);
    if (c == NULL) {
        goto out;
    }
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
    /* cppcheck's cross-file check takes <app>, the out-parameter exapp_from_json() has just
     * filled, for uninitialised here (it is the caller's uninitialised struct): a false
     * positive. */
    /* cppcheck-suppress ctuuninitvar */
    snprintf(app->app_id, sizeof(app->app_id), "%s", app_id);
    ret = 1;
out:
    http_body_free(&a);
    curl_slist_free_all(hdrs);
    secret_free(key);
    free(url);
    return ret;
}

void
nextcloud_probe(const struct hp_config *cfg, const char *app_id, struct nc_probe *p)
{
    struct curl_slist *hdrs = NULL;
    struct http_body a = {.max = MAX_ANSWER};
    char *url, *key, *esc;
    const char *ctype = NULL, *m;
    struct hp_err err;
    json_t *j;

    memset(p, 0, sizeof(*p));
    esc = curl_easy_escape(NULL, app_id, 0);
    url = xasprintf("%s/index.php/apps/app_api/harp/exapp-meta?appId=%s", ENV_LIVE(cfg->nc_req_url),
                    esc);
    curl_free(esc);
    key = xasprintf("harp-shared-key: %s", cfg->shared_key);
    hdrs = curl_slist_append(hdrs, key);
    if (nc_perform(url, hdrs, &a, &p->status, &ctype, &err) == NULL) {
        snprintf(p->neterr, sizeof(p->neterr), "%s", err.msg);
    } else {
        snprintf(p->content_type, sizeof(p->content_type), "%s", ctype != NULL ? ctype : "");
        p->json = ctype != NULL && strncasecmp(ctype, "application/json", 16) == 0;
        j = p->json ? json_loadb(a.data ? a.data : "", a.len, 0, NULL) : NULL;
        if ((m = json_string_value(json_object_get(j, "message"))) != NULL) {
            snprintf(p->message, sizeof(p->message), "%s", m);
        }
        if (j != NULL && p->status == 200) {
            struct exapp app;

            memset(&app, 0, sizeof(app));
            p->meta = exapp_from_json(j, &app, &err) == 0;
            if (p->meta) {
                exapp_free(&app);
            }
        }
        json_decref(j);
    }
    http_body_free(&a);
    curl_slist_free_all(hdrs);
    secret_free(key);
    free(url);
}

int
nextcloud_exapp_enabled(const struct hp_config *cfg, const struct exapp *app, struct hp_err *err)
{
    static const char body[] = "{\"configKeys\":[]}";
    struct curl_slist *hdrs = NULL;
    struct http_body a = {.max = MAX_ANSWER};
    char *url, *line, *cred, *sig;
    const char *ctype = NULL;
    long status = 0;
    CURLcode rc;
    size_t n;
    CURL *c;
    int ret = -1;

    url = xasprintf("%s/ocs/v2.php/apps/app_api/api/v1/ex-app/config/get-values",
                    ENV_LIVE(cfg->nc_req_url));
    /* AUTHORIZATION-APP-API: base64("<user>:<secret>"), no user: a call of the app itself */
    cred = xasprintf(":%s", app->token);
    n = strlen(cred);
    sig = xmalloc(B64_ENCODED_LEN(n) + 1);
    b64_encode(cred, n, sig);
    line = xasprintf("AUTHORIZATION-APP-API: %s", sig);
    hdrs = curl_slist_append(hdrs, line);
    secret_free(line);
    secret_free(sig);
    secret_free(cred);
    line = xasprintf("EX-APP-ID: %s", app->app_id);
    hdrs = curl_slist_append(hdrs, line);
    free(line);
    /* the version Nextcloud holds: another one would make AppAPI disable the app */
    line = xasprintf("EX-APP-VERSION: %s", app->version);
    hdrs = curl_slist_append(hdrs, line);
    free(line);
    hdrs = curl_slist_append(hdrs, "AA-VERSION: 32");
    hdrs = curl_slist_append(hdrs, "OCS-APIRequest: true");
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    c = nc_handle(url, hdrs, &a);
    if (c == NULL) {
        err_set(err, "cannot create an HTTP client");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(sizeof(body) - 1));
    if (outbound_perform(c, OUTBOUND_WAIT_MS, "Nextcloud call", &rc) == -1) {
        err_set(err, "not called: all %u outbound calls (HP_OUTBOUND_MAX) busy", outbound_max());
        goto out;
    }
    if (rc != CURLE_OK) {
        err_set(err, "Nextcloud unreachable: %s", curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
    if (status == 401 || status == 403) {
        ret = 0;
    } else if (status >= 200 && status < 300 && ctype != NULL &&
               strncasecmp(ctype, "application/json", 16) == 0) {
        ret = 1;
    } else {
        err_set(err, "Nextcloud answered %ld to the enabled check", status);
    }
out:
    http_body_free(&a);
    curl_slist_free_all(hdrs);
    free(url);
    return ret;
}

enum nc_user_result
nextcloud_user_info(const struct hp_config *cfg, const char *app_id,
                    const struct msg_header *headers, size_t n, char *user_id, size_t user_len,
                    int *level, struct hp_err *err)
{
    struct curl_slist *hdrs = NULL;
    struct http_body a = {.max = MAX_ANSWER};
    enum nc_user_result ret = NC_USER_ERROR;
    const json_t *uid, *lvl;
    char *url, *line, *esc;
    const char *ctype = NULL;
    long status = 0;
    json_t *j = NULL;
    size_t i;
    CURL *c = NULL;

    esc = curl_easy_escape(NULL, app_id, 0);
    url = xasprintf("%s/index.php/apps/app_api/harp/user-info?appId=%s", ENV_LIVE(cfg->nc_req_url),
                    esc);
    curl_free(esc);
    for (i = 0; i < n; i++) {
        const struct msg_header *h = &headers[i];
        size_t nl = strlen(h->name);

        if (strcasecmp(h->name, "harp-shared-key") == 0 ||
            memchr(h->value, '\0', h->value_len) != NULL ||
            memchr(h->value, '\r', h->value_len) != NULL ||
            memchr(h->value, '\n', h->value_len) != NULL) {
            continue;
        }
        /* the exact bytes: curl sends the line as given */
        line = xmalloc(nl + 2 + h->value_len + 1);
        memcpy(line, h->name, nl);
        memcpy(line + nl, ": ", 2);
        memcpy(line + nl + 2, h->value, h->value_len + 1);
        hdrs = curl_slist_append(hdrs, line);
        secret_free(line);
    }
    line = xasprintf("harp-shared-key: %s", cfg->shared_key);
    hdrs = curl_slist_append(hdrs, line);
    secret_free(line);
    /* curl would otherwise add its own, and send a client Expect along */
    hdrs = curl_slist_append(hdrs, "Expect:");
    c = nc_perform(url, hdrs, &a, &status, &ctype, err);
    if (c == NULL) {
        goto out;
    }
    if (status >= 400 && status < 500) {
        ret = NC_ANONYMOUS;
        goto out;
    }
    if (status != 200) {
        err_set(err, "Nextcloud answered %ld", status);
        goto out;
    }
    if (ctype == NULL || strncasecmp(ctype, "application/json", 16) != 0 ||
        (j = json_loadb(a.data ? a.data : "", a.len, 0, NULL)) == NULL) {
        err_set(err, "Nextcloud's user-info answer is not JSON");
        goto out;
    }
    uid = json_object_get(j, "user_id");
    lvl = json_object_get(j, "access_level");
    if ((uid != NULL && !json_is_string(uid)) || !json_is_integer(lvl) ||
        !access_level_valid(json_integer_value(lvl))) {
        err_set(err, "Nextcloud's user-info answer has an unexpected shape");
        goto out;
    }
    snprintf(user_id, user_len, "%s", uid != NULL ? json_string_value(uid) : "");
    *level = (int)json_integer_value(lvl);
    ret = NC_USER;
out:
    json_decref(j);
    http_body_free(&a);
    curl_slist_free_all(hdrs);
    free(url);
    return ret;
}
