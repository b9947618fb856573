/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Docker Engine API client. A new libcurl handle per call (no pooled connections, as HaRP);
 * an engine is a Unix socket or a TCP address. Every call takes one of the HP_OUTBOUND_MAX
 * slots of outbound.c (DOCKER_BUSY when none frees in time). Each endpoint's calls share one
 * deadline. Our own calls carry the engine's own API version (from /version, cached 60 s): an
 * engine accepts it whatever version AppAPI was written for.
 */
#include "config.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "docker.h"
#include "env.h"
#include "log.h"
#include "outbound.h"
#include "xmalloc.h"

#define VERSION_TTL_MS 60000
#define VERSION_CACHE 128

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
docker_address_parse(const char *addr, struct docker_engine *e, struct hp_err *err)
{
    char host[256];
    unsigned port;

    e->unix_path[0] = '\0';
    e->host[0] = '\0';
    e->tcp_port = 0;
    if (strncmp(addr, "unix://", 7) == 0) {
        if (addr[7] != '/' || strlen(addr + 7) >= sizeof(e->unix_path)) {
            err_set(err, "address %s: a Unix socket needs an absolute path under %zu bytes", addr,
                    sizeof(e->unix_path));
            return -1;
        }
        snprintf(e->unix_path, sizeof(e->unix_path), "%s", addr + 7);
        return 0;
    }
    if (strncmp(addr, "tcp://", 6) == 0) {
        if (env_parse_hostport(addr + 6, host, sizeof(host), &port, err) == -1) {
            return -1;
        }
        if (host[0] == '\0') {
            err_set(err, "address %s: no host", addr);
            return -1;
        }
        snprintf(e->host, sizeof(e->host), "%s", host);
        e->tcp_port = port;
        return 0;
    }
    err_set(err, "address %s: expected unix:///path or tcp://host:port", addr);
    return -1;
}

void
docker_engine_resolve(struct ctl *ctl, unsigned port, struct docker_engine *e)
{
    struct engine_rec rec;
    struct hp_err err;
    struct stat sb;

    memset(e, 0, sizeof(*e));
    e->port = port;
    if (store_engine_get(ctl->store, NULL, port, &rec) == 1) {
        snprintf(e->name, sizeof(e->name), "%s", rec.name);
        if (rec.address[0] != '\0' && docker_address_parse(rec.address, e, &err) == 0) {
            return;
        }
    } else if (port == DOCKER_LOCAL_PORT && ctl->cfg.docker_socket != NULL &&
               stat(ctl->cfg.docker_socket, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
        snprintf(e->name, sizeof(e->name), "local");
        snprintf(e->unix_path, sizeof(e->unix_path), "%s", ctl->cfg.docker_socket);
        return;
    }
    snprintf(e->host, sizeof(e->host), "127.0.0.1");
    e->tcp_port = port;
}

void
docker_engine_describe(const struct docker_engine *e, char *buf, size_t len)
{
    if (e->unix_path[0] != '\0') {
        snprintf(buf, len, "unix://%s", e->unix_path);
    } else if (strchr(e->host, ':') != NULL) {
        snprintf(buf, len, "tcp://[%s]:%u", e->host, e->tcp_port);
    } else {
        snprintf(buf, len, "tcp://%s:%u", e->host, e->tcp_port);
    }
}

int64_t
docker_remaining_ms(const struct docker_session *s)
{
    int64_t left = s->deadline_ms - now_ms();

    return left > 0 ? left : 0;
}

/* One request to <e>; <path> as sent. */
static enum docker_rc
perform(const struct docker_engine *e, const char *method, const char *path, const char *ctype,
        const void *body, size_t len, size_t max, long timeout_ms, struct docker_reply *reply,
        char *why, size_t why_len)
{
    struct curl_slist *hdrs = NULL;
    char url[1024], hdr[128];
    enum docker_rc rc = DOCKER_OK;
    int64_t started;
    CURLcode cc;
    CURL *c;

    memset(reply, 0, sizeof(*reply));
    reply->body.max = max;
    if (timeout_ms <= 0) {
        snprintf(why, why_len, "deadline passed before %s %s", method, path);
        return DOCKER_TIMEOUT;
    }
    /* One of the HP_OUTBOUND_MAX slots, waited for within the call's own deadline. */
    started = now_ms();
    snprintf(url, sizeof(url), "Docker engine on port %u: %s %s", e->port, method, path);
    if (!outbound_acquire(timeout_ms < OUTBOUND_WAIT_MS ? timeout_ms : OUTBOUND_WAIT_MS, url)) {
        snprintf(why, why_len, "%s %s: all %u outbound calls busy", method, path, outbound_max());
        return DOCKER_BUSY;
    }
    timeout_ms -= (long)(now_ms() - started);
    if (timeout_ms <= 0) {
        outbound_release();
        snprintf(why, why_len, "deadline passed before %s %s", method, path);
        return DOCKER_TIMEOUT;
    }
    if ((c = curl_easy_init()) == NULL) {
        outbound_release();
        snprintf(why, why_len, "cannot create an HTTP client");
        return DOCKER_FAILED;
    }
    if (e->unix_path[0] != '\0') {
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, e->unix_path);
        snprintf(url, sizeof(url), "http://localhost%s", path);
    } else if (strchr(e->host, ':') != NULL) {
        snprintf(url, sizeof(url), "http://[%s]:%u%s", e->host, e->tcp_port, path);
    } else {
        snprintf(url, sizeof(url), "http://%s:%u%s", e->host, e->tcp_port, path);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    }
    if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype != NULL ? ctype : "application/json");
        hdrs = curl_slist_append(hdrs, hdr);
        hdrs = curl_slist_append(hdrs, "Expect:");
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply->body);
    cc = curl_easy_perform(c);
    outbound_release();
    switch (cc) {
    case CURLE_OK:
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply->status);
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        rc = DOCKER_CONNECT;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        rc = DOCKER_TIMEOUT;
        break;
    default:
        rc = DOCKER_FAILED;
        break;
    }
    if (rc != DOCKER_OK) {
        snprintf(why, why_len, "%s %s: %s", method, path, curl_easy_strerror(cc));
        http_body_free(&reply->body);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}

/* --- API versions ------------------------------------------------------------------------ */

static bool
api_version_ok(const char *v)
{
    size_t i, dots = 0;

    if (v == NULL || v[0] == '\0' || strlen(v) >= 16) {
        return false;
    }
    for (i = 0; v[i] != '\0'; i++) {
        if (v[i] == '.') {
            dots++;
        } else if (v[i] < '0' || v[i] > '9') {
            return false;
        }
    }
    return dots == 1 && v[0] != '.' && v[i - 1] != '.';
}

enum docker_rc
docker_probe(const struct docker_engine *e, long timeout_ms, struct docker_version *v, char *why,
             size_t why_len)
{
    struct docker_reply r;
    enum docker_rc rc;
    const char *s;
    json_t *j;

    memset(v, 0, sizeof(*v));
    rc = perform(e, "GET", "/version", NULL, NULL, 0, 256 * 1024, timeout_ms, &r, why, why_len);
    if (rc != DOCKER_OK) {
        return rc;
    }
    j = r.status == 200 ? json_loadb(r.body.data, r.body.len, 0, NULL) : NULL;
    if (j == NULL) {
        snprintf(why, why_len, "GET /version: status %ld, not a Docker engine's answer", r.status);
        http_body_free(&r.body);
        return DOCKER_FAILED;
    }
    if ((s = json_string_value(json_object_get(j, "Version"))) != NULL) {
        snprintf(v->version, sizeof(v->version), "%s", s);
    }
    s = json_string_value(json_object_get(j, "ApiVersion"));
    if (api_version_ok(s)) {
        snprintf(v->api, sizeof(v->api), "%s", s);
    }
    s = json_string_value(json_object_get(j, "MinAPIVersion"));
    if (api_version_ok(s)) {
        snprintf(v->min_api, sizeof(v->min_api), "%s", s);
    }
    json_decref(j);
    http_body_free(&r.body);
    if (v->api[0] == '\0') {
        snprintf(why, why_len, "GET /version: no ApiVersion");
        return DOCKER_FAILED;
    }
    if (v->min_api[0] == '\0') {
        snprintf(v->min_api, sizeof(v->min_api), "%s", v->api);
    }
    return DOCKER_OK;
}

static struct {
    char where[400];
    struct docker_version v;
    int64_t at;
} vcache[VERSION_CACHE];
static pthread_mutex_t vcache_mtx = PTHREAD_MUTEX_INITIALIZER;

/* The versions of <e>, probed at most every VERSION_TTL_MS. */
static enum docker_rc
docker_versions(const struct docker_engine *e, struct docker_version *v)
{
    char where[400], why[256];
    enum docker_rc rc;
    size_t i, slot = 0;
    int64_t now = now_ms(), oldest = INT64_MAX;

    docker_engine_describe(e, where, sizeof(where));
    pthread_mutex_lock(&vcache_mtx);
    for (i = 0; i < VERSION_CACHE; i++) {
        if (strcmp(vcache[i].where, where) == 0 && now - vcache[i].at < VERSION_TTL_MS) {
            *v = vcache[i].v;
            pthread_mutex_unlock(&vcache_mtx);
            return DOCKER_OK;
        }
    }
    pthread_mutex_unlock(&vcache_mtx);
    rc = docker_probe(e, 5000, v, why, sizeof(why));
    if (rc != DOCKER_OK) {
        log_info("docker: engine on port %u (%s): %s", e->port, where, why);
        return rc;
    }
    pthread_mutex_lock(&vcache_mtx);
    for (i = 0; i < VERSION_CACHE; i++) {
        if (strcmp(vcache[i].where, where) == 0 || vcache[i].at < oldest) {
            slot = i;
            if (strcmp(vcache[i].where, where) == 0) {
                break;
            }
            oldest = vcache[i].at;
        }
    }
    snprintf(vcache[slot].where, sizeof(vcache[slot].where), "%s", where);
    vcache[slot].v = *v;
    vcache[slot].at = now;
    pthread_mutex_unlock(&vcache_mtx);
    return DOCKER_OK;
}

/* --- sessions ---------------------------------------------------------------------------- */

void
docker_session_open(struct docker_session *s, struct ctl *ctl, unsigned port, unsigned timeout_s)
{
    struct docker_version v;

    memset(s, 0, sizeof(*s));
    s->deadline_ms = now_ms() + (int64_t)timeout_s * 1000;
    docker_engine_resolve(ctl, port, &s->eng);
    /* Unknown versions (engine down) leave the path unversioned; the call then fails on its
     * own with the connection error the endpoint maps. */
    if (docker_versions(&s->eng, &v) == DOCKER_OK) {
        snprintf(s->api, sizeof(s->api), "/v%s", v.api);
    }
}

enum docker_rc
docker_call(struct docker_session *s, const char *method, const char *path, const char *ctype,
            const void *body, size_t len, size_t max, struct docker_reply *reply)
{
    char *full = xasprintf("%s%s", s->api, path);
    enum docker_rc rc;

    rc = perform(&s->eng, method, full, ctype, body, len, max, (long)docker_remaining_ms(s), reply,
                 s->error, sizeof(s->error));
    if (rc != DOCKER_OK) {
        log_info("docker: engine on port %u: %s", s->eng.port, s->error);
    }
    free(full);
    return rc;
}

enum docker_rc
docker_call_json(struct docker_session *s, const char *method, const char *path, json_t *body,
                 long *status, json_t **out)
{
    struct docker_reply r;
    enum docker_rc rc;
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

    *status = 0;
    if (out != NULL) {
        *out = NULL;
    }
    rc = docker_call(s, method, path, NULL, text, text != NULL ? strlen(text) : 0, 8u * 1024 * 1024,
                     &r);
    free(text);
    if (rc != DOCKER_OK) {
        return rc;
    }
    *status = r.status;
    if (out != NULL && r.body.len > 0) {
        *out = json_loadb(r.body.data, r.body.len, 0, NULL);
    }
    http_body_free(&r.body);
    return DOCKER_OK;
}
