/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The Kubernetes API client (libcurl): token, CA, TLS verification as HaRP configures them.
 * Each call takes one of the HP_OUTBOUND_MAX slots of outbound.c. */
#include "config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k8s.h"
#include "outbound.h"
#include "secret.h"
#include "xmalloc.h"

/* An answer larger than this is cut (a list of every pod of a big namespace stays below). */
#define K8S_MAX_ANSWER (16u * 1024 * 1024)

/* HP_K8S_BEARER_TOKEN, else the token file, re-read at every call (projected tokens rotate). */
static char *
bearer_token(const struct hp_config *cfg)
{
    char buf[8192];
    size_t n;
    FILE *f;

    if (cfg->k8s_bearer_token != NULL && cfg->k8s_bearer_token[0] != '\0') {
        return xstrdup(cfg->k8s_bearer_token);
    }
    if (cfg->k8s_bearer_token_file == NULL ||
        (f = fopen(cfg->k8s_bearer_token_file, "re")) == NULL) {
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && isspace((unsigned char)buf[n - 1])) {
        n--;
    }
    buf[n] = '\0';
    if (n == 0) {
        return NULL;
    }
    return xstrdup(buf);
}

const char *
k8s_unconfigured(const struct hp_config *cfg)
{
    char *token;

    if (!cfg->k8s_enabled) {
        return "Kubernetes backend is disabled in HaRP.";
    }
    if (cfg->k8s_api_server == NULL || cfg->k8s_api_server[0] == '\0') {
        return "Kubernetes API server is not configured.";
    }
    if ((token = bearer_token(cfg)) == NULL) {
        return "Kubernetes token is not configured.";
    }
    secret_free(token);
    return NULL;
}

struct answer {
    char *data;
    size_t len;
};

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;

    if (a->len + size * n > K8S_MAX_ANSWER) {
        return 0;
    }
    a->data = xrealloc(a->data, a->len + size * n + 1);
    memcpy(a->data + a->len, p, size * n);
    a->len += size * n;
    a->data[a->len] = '\0';
    return size * n;
}

enum k8s_rc
k8s_call(const struct hp_config *cfg, const char *method, const char *path, json_t *body,
         long *status, json_t **out)
{
    struct curl_slist *hdrs = NULL;
    struct answer a = {NULL, 0};
    char *token, *url, *auth, *data = NULL;
    enum k8s_rc rc = K8S_CONNECT;
    CURLcode cc;
    CURL *c;

    *status = 0;
    if (out != NULL) {
        *out = NULL;
    }
    if (cfg->k8s_api_server == NULL || (token = bearer_token(cfg)) == NULL) {
        return K8S_CONNECT;
    }
    if ((c = curl_easy_init()) == NULL) {
        secret_free(token);
        return K8S_CONNECT;
    }
    url = xasprintf("%s%s", cfg->k8s_api_server, path);
    auth = xasprintf("Authorization: Bearer %s", token);
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, strcmp(method, "PATCH") == 0
                                       ? "Content-Type: application/strategic-merge-patch+json"
                                       : "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        data = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)K8S_CALL_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!cfg->k8s_verify_ssl) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (cfg->k8s_ca_file != NULL && access(cfg->k8s_ca_file, R_OK) == 0) {
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->k8s_ca_file);
    }
    if (outbound_perform(c, OUTBOUND_WAIT_MS, "Kubernetes API call", &cc) == -1) {
        rc = K8S_BUSY;
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = K8S_TIMEOUT;
    } else if (cc == CURLE_OK && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status) == CURLE_OK) {
        rc = K8S_OK;
        if (out != NULL && a.data != NULL) {
            *out = json_loadb(a.data, a.len, 0, NULL);
        }
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    secret_free(auth);
    secret_free(token);
    free(data);
    free(a.data);
    free(url);
    return rc;
}

bool
k8s_reachable(const struct hp_config *cfg)
{
    long status;

    return k8s_unconfigured(cfg) == NULL &&
           k8s_call(cfg, "GET", "/api", NULL, &status, NULL) == K8S_OK && status == 200;
}

void
k8s_sanitize(const char *s, char out[64])
{
    size_t n = 0;

    for (; *s != '\0' && n < 63; s++) {
        char ch = (char)tolower((unsigned char)*s);

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) {
            ch = '-';
        }
        if (ch == '-' && (n == 0 || out[n - 1] == '-')) {
            continue;
        }
        out[n++] = ch;
    }
    while (n > 0 && out[n - 1] == '-') {
        n--;
    }
    out[n] = '\0';
    if (n == 0) {
        snprintf(out, 64, "exapp");
    }
}
