/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl doctor: the control plane's checks (GET /api/v1/doctor), then, with --public-url,
 * canary requests through the operator's front proxy to /exapps/app_api/doctor/canary. */
#include "config.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "doctor_rules.h"
#include "env.h"
#include "http_client.h"
#include "secret.h"
#include "xmalloc.h"

static const char usage_doctor[] =
    "usage: harp-ctl doctor [--public-url URL] [--read-timeout SECONDS] [--json]\n"
    "\n"
    "Checks the whole chain and names the fix for each failure: the state directory,\n"
    "Nextcloud at NC_INSTANCE_URL and the shared key, every data plane and its table,\n"
    "each Docker engine and its API version, the FRP frontend, certificates' days left.\n"
    "--public-url https://cloud.example.com: canary requests through the front proxy to\n"
    "/exapps/app_api/ find a stripped /exapps/ prefix, a dropped harp-shared-key header and a\n"
    "dropped Upgrade header; --read-timeout S also holds one request S seconds (at most\n"
    "120) to find a shorter read timeout. Exit status 0 when every check passes, else 1.\n";

struct answer {
    long status; /* 0: no answer (<err>) */
    char err[CURL_ERROR_SIZE];
    json_t *json;
    double seconds;
};

/* GET <base><path> with the key, and the headers of a WebSocket handshake when <upgrade>. */
static void
get(const char *base, const char *path, const char *key, bool upgrade, long timeout_s,
    struct answer *an)
{
    struct http_body a = {.max = 1u << 20};
    struct curl_slist *h = NULL;
    char *url = xasprintf("%s%s", base, path), *kh = xasprintf("harp-shared-key: %s", key);
    CURLcode rc;
    CURL *c = curl_easy_init();

    memset(an, 0, sizeof(*an));
    h = curl_slist_append(h, kh);
    if (upgrade) {
        h = curl_slist_append(h, "Connection: Upgrade");
        h = curl_slist_append(h, "Upgrade: websocket");
        h = curl_slist_append(h, "Sec-WebSocket-Version: 13");
        h = curl_slist_append(h, "Sec-WebSocket-Key: aGFycC1kb2N0b3ItY2FuYXJ5");
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, an->err);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &an->seconds);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &an->status);
        an->json = a.data != NULL ? json_loadb(a.data, a.len, 0, NULL) : NULL;
    } else if (an->err[0] == '\0') {
        snprintf(an->err, sizeof(an->err), "%s", curl_easy_strerror(rc));
    }
    http_body_free(&a);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    secret_free(kh);
    free(url);
}

/* The canary answered as harp's, with <nonce>. */
static bool
is_canary(const struct answer *an, const char *nonce)
{
    const char *n = json_string_value(json_object_get(an->json, "harp_canary"));

    return an->status == 200 && n != NULL && strcmp(n, nonce) == 0;
}

/* Whether X-Forwarded-For names the client the data plane took: when it holds the address the
 * request came from, HP_TRUSTED_PROXY_IPS lacks the front proxy (bans and logs see the proxy). */
static void
trusted_proxies(json_t *checks, const json_t *canary)
{
    const char *xff = json_string_value(json_object_get(canary, "x_forwarded_for"));
    const char *client = json_string_value(json_object_get(canary, "client"));
    char detail[600], fix[300], *list, *tok, *save = NULL;
    bool named = false;

    if (xff == NULL || client == NULL) {
        json_array_append_new(
            checks, doctor_check("trusted proxies", false,
                                 "the front proxy sends no X-Forwarded-For: harp takes the proxy "
                                 "for every client (one client's failures ban them all)",
                                 "nginx: proxy_set_header X-Forwarded-For "
                                 "$proxy_add_x_forwarded_for; then add the proxy's address to "
                                 "HP_TRUSTED_PROXY_IPS"));
        return;
    }
    list = xstrdup(xff);
    for (tok = strtok_r(list, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
        named = named || strcmp(tok, client) == 0;
    }
    free(list);
    if (!named) {
        snprintf(detail, sizeof(detail),
                 "requests arrive from %s, which is not in HP_TRUSTED_PROXY_IPS: harp takes the "
                 "front proxy for the client (X-Forwarded-For: %s)",
                 client, xff);
        snprintf(fix, sizeof(fix), "add %s to HP_TRUSTED_PROXY_IPS", client);
        json_array_append_new(checks, doctor_check("trusted proxies", false, detail, fix));
        return;
    }
    snprintf(detail, sizeof(detail), "harp sees the client as %s (X-Forwarded-For: %s)", client,
             xff);
    json_array_append_new(checks, doctor_check("trusted proxies", true, detail, NULL));
}

/* The probes through the front proxy at <base>; <direct> is the local data plane. */
static void
front_proxy(json_t *checks, const char *base, const char *direct, const char *key,
            long read_timeout)
{
    struct answer pub, alt, loc;
    char nonce[40], path[200], detail[900];
    const json_t *up;

    snprintf(nonce, sizeof(nonce), "%lx%lx", (unsigned long)time(NULL),
             (unsigned long)clock() ^ (unsigned long)rand());
    snprintf(path, sizeof(path), "/exapps/app_api/doctor/canary?nonce=%s", nonce);
    get(base, path, key, true, 60, &pub);
    if (is_canary(&pub, nonce)) {
        snprintf(detail, sizeof(detail), "%s/exapps/ reaches harp with the path and the key", base);
        json_array_append_new(checks, doctor_check("front proxy", true, detail, NULL));
        up = json_object_get(pub.json, "upgrade");
        if (json_is_string(up) && strcasecmp(json_string_value(up), "websocket") == 0) {
            json_array_append_new(
                checks, doctor_check("front proxy upgrade", true,
                                     "the Upgrade header reaches harp (WebSockets)", NULL));
        } else {
            json_array_append_new(
                checks,
                doctor_check("front proxy upgrade", false,
                             "the front proxy drops the Upgrade header: ExApps' WebSockets fail",
                             "pass Upgrade and Connection on (nginx: proxy_http_version 1.1; "
                             "proxy_set_header Upgrade $http_upgrade; proxy_set_header "
                             "Connection \"upgrade\";)"));
        }
        trusted_proxies(checks, pub.json);
    } else if (pub.status == 0) {
        snprintf(detail, sizeof(detail), "no answer from %s: %s", base, pub.err);
        json_array_append_new(checks,
                              doctor_check("front proxy", false, detail,
                                           "check --public-url, its DNS name and that the front "
                                           "proxy listens there"));
    } else {
        snprintf(path, sizeof(path), "/exapps/exapps/app_api/doctor/canary?nonce=%s", nonce);
        get(base, path, key, false, 60, &alt);
        snprintf(path, sizeof(path), "/exapps/app_api/doctor/canary?nonce=%s", nonce);
        get(direct, path, key, false, 60, &loc);
        if (is_canary(&alt, nonce)) {
            snprintf(detail, sizeof(detail),
                     "the front proxy strips /exapps/ from the path: harp got /app_api/... "
                     "for %s/exapps/app_api/...",
                     base);
            json_array_append_new(checks,
                                  doctor_check("front proxy", false, detail,
                                               "forward the whole path: nginx location /exapps/ { "
                                               "proxy_pass http://HARP:8780; } (nothing after the "
                                               "address), Caddy handle (not handle_path), Traefik "
                                               "without StripPrefix"));
        } else if (pub.status == 401 && is_canary(&loc, nonce)) {
            snprintf(detail, sizeof(detail),
                     "%s/exapps/app_api/ answers 401 while the data plane at %s accepts the "
                     "same key: the front proxy drops or changes the harp-shared-key header",
                     base, direct);
            json_array_append_new(checks, doctor_check("front proxy", false, detail,
                                                       "pass the harp-shared-key request header on "
                                                       "unchanged (remove header allow-lists or "
                                                       "rewrites for /exapps/)"));
        } else {
            snprintf(detail, sizeof(detail),
                     "%s/exapps/app_api/ answers %ld, not harp's canary: the front proxy does "
                     "not send /exapps/ to harp",
                     base, pub.status);
            json_array_append_new(checks,
                                  doctor_check("front proxy", false, detail,
                                               "send https://CLOUD/exapps/ to harp's "
                                               "HP_EXAPPS_ADDRESS (HaRP's README has nginx, "
                                               "Caddy, Traefik and Apache examples)"));
        }
        json_decref(alt.json);
        json_decref(loc.json);
    }
    if (read_timeout > 0 && is_canary(&pub, nonce)) {
        struct answer slow;

        snprintf(path, sizeof(path), "/exapps/app_api/doctor/canary?nonce=%s&delay=%ld", nonce,
                 read_timeout);
        get(base, path, key, false, read_timeout + 60, &slow);
        if (is_canary(&slow, nonce)) {
            snprintf(detail, sizeof(detail), "a request held %ld s came back", read_timeout);
            json_array_append_new(checks,
                                  doctor_check("front proxy read timeout", true, detail, NULL));
        } else {
            snprintf(detail, sizeof(detail),
                     "a request held %ld s was cut after %.0f s (%s%ld): the front proxy's "
                     "read timeout is shorter",
                     read_timeout, slow.seconds, slow.status == 0 ? "no answer, " : "status ",
                     slow.status);
            json_array_append_new(checks,
                                  doctor_check("front proxy read timeout", false, detail,
                                               "raise the proxy's read timeout for /exapps/ (nginx "
                                               "proxy_read_timeout, Apache ProxyTimeout) above the "
                                               "longest request an ExApp serves"));
        }
        json_decref(slow.json);
    }
    json_decref(pub.json);
}

static void
print_text(const json_t *checks)
{
    const json_t *c;
    size_t i;

    json_array_foreach(checks, i, c)
    {
        bool ok = json_is_true(json_object_get(c, "ok"));

        printf("%-4s  %s: %s\n", ok ? "ok" : "FAIL", json_string_value(json_object_get(c, "check")),
               json_string_value(json_object_get(c, "detail")));
        if (!ok && json_object_get(c, "fix") != NULL) {
            printf("      fix: %s\n", json_string_value(json_object_get(c, "fix")));
        }
    }
}

int
cli_doctor(struct cli_opts *opts)
{
    struct hp_config cfg;
    json_t *j = NULL, *checks, *c;
    char *text = NULL, *end = NULL, *direct, host[256];
    long st, read_timeout = 0;
    unsigned port;
    bool ok = true;
    size_t i;

    if (opts->help || opts->nargs != 1) {
        fputs(usage_doctor, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    if (opts->read_timeout != NULL) {
        read_timeout = strtol(opts->read_timeout, &end, 10);
        if (opts->read_timeout[0] == '\0' || *end != '\0' || read_timeout < 1 ||
            read_timeout > 120) {
            fprintf(stderr, "harp-ctl: --read-timeout: seconds, from 1 to 120\n");
            return CLI_USAGE;
        }
        if (opts->public_url == NULL) {
            fprintf(stderr, "harp-ctl: --read-timeout needs --public-url\n");
            return CLI_USAGE;
        }
    }
    if (opts->public_url != NULL && strncmp(opts->public_url, "http://", 7) != 0 &&
        strncmp(opts->public_url, "https://", 8) != 0) {
        fprintf(stderr, "harp-ctl: --public-url: an http:// or https:// URL\n");
        return CLI_USAGE;
    }
    if (cli_config(opts, &cfg) == -1) {
        return CLI_USAGE;
    }
    opts->timeout_s = 180; /* Nextcloud, every engine and the data planes are asked in turn */
    st = cli_call(opts, "GET", "/api/v1/doctor", NULL, &j, &text);
    if (st == 200 && json_is_array(json_object_get(j, "checks"))) {
        checks = json_incref(json_object_get(j, "checks"));
    } else {
        char detail[600];

        checks = json_array();
        snprintf(detail, sizeof(detail), "the control plane at %s %s", cfg.control_address,
                 st < 0 ? "does not answer" : "refused the doctor's call");
        json_array_append_new(checks, doctor_check("control plane", false, detail,
                                                   st < 0 ? "start harp-ctl serve, or point "
                                                            "--control at its address"
                                                          : "see the control plane's log"));
    }
    json_decref(j);
    free(text);
    if (opts->public_url != NULL) {
        size_t n = strlen(opts->public_url);
        char *base = xstrdup(opts->public_url);

        while (n > 0 && base[n - 1] == '/') {
            base[--n] = '\0';
        }
        const char *ex = cli_lookup("HP_EXAPPS_ADDRESS", opts);

        if (env_parse_hostport(ex != NULL ? ex : "127.0.0.1:8780", host, sizeof(host), &port,
                               NULL) == -1) {
            snprintf(host, sizeof(host), "127.0.0.1");
            port = 8780;
        }
        direct = xasprintf(strchr(host, ':') != NULL ? "http://[%s]:%u" : "http://%s:%u",
                           strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1"
                           : strcmp(host, "::") == 0    ? "::1"
                                                        : host,
                           port);
        front_proxy(checks, base, direct, cfg.shared_key, read_timeout);
        free(direct);
        free(base);
    }
    env_free(&cfg);
    json_array_foreach(checks, i, c)
    {
        ok = ok && json_is_true(json_object_get(c, "ok"));
    }
    if (opts->json) {
        j = json_pack("{s:b,s:O}", "ok", ok, "checks", checks);
        cli_print_json(j);
        json_decref(j);
    } else {
        print_text(checks);
        printf("%s\n", ok ? "all checks passed" : "some checks failed");
    }
    json_decref(checks);
    return ok ? CLI_OK : CLI_REFUSED;
}
