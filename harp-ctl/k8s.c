/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The Kubernetes API client (libcurl): token, CA, TLS verification as HaRP configures them.
 * Each call takes one of the HP_OUTBOUND_MAX slots of outbound.c. */
#include "config.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k8s.h"
#include "outbound.h"
#include "secret.h"
#include "xmalloc.h"

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
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        n--;
    }
    buf[n] = '\0';
    if (n == 0) {
        return NULL;
    }
    return xstrdup(buf);
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
    return size * n;
}

bool
k8s_reachable(const struct hp_config *cfg)
{
    struct curl_slist *hdrs = NULL;
    char *token, *url, *auth;
    long status = 0;
    CURLcode cc;
    CURL *c;
    bool ok = false;

    if (cfg->k8s_api_server == NULL || (token = bearer_token(cfg)) == NULL) {
        return false;
    }
    c = curl_easy_init();
    if (c == NULL) {
        secret_free(token);
        return false;
    }
    url = xasprintf("%s/api", cfg->k8s_api_server);
    auth = xasprintf("Authorization: Bearer %s", token);
    hdrs = curl_slist_append(hdrs, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!cfg->k8s_verify_ssl) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (cfg->k8s_ca_file != NULL && access(cfg->k8s_ca_file, R_OK) == 0) {
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->k8s_ca_file);
    }
    if (outbound_perform(c, OUTBOUND_WAIT_MS, "Kubernetes API call", &cc) == 0 && cc == CURLE_OK &&
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200) {
        ok = true;
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    secret_free(auth);
    secret_free(token);
    free(url);
    return ok;
}
