/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The control REST API on libmicrohttpd. Every request is: authenticate (all but the public
 * routes need harp-shared-key, compared in constant time), read the body up to API_MAX_BODY
 * (413 beyond), find the route by exact path (404) and method (405 with Allow), run the handler.
 * The route tables of the api_* files are read here only; handlers answer through api.c.
 */
#include "config.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api.h"
#include "api_server.h"
#include "audit.h"
#include "log.h"
#include "secret.h"
#include "xmalloc.h"

struct api {
    struct MHD_Daemon *mhd;
    struct MHD_Daemon *metrics; /* HP_METRICS_ADDRESS, or NULL */
    struct ctl *ctl;
};

/* One per request, from the first call of on_request to on_completed. */
struct conn_state {
    char *body;
    size_t len;
    bool too_large;
};

static const struct api_route *const route_tables[] = {
    api_harp_routes,   api_docker_routes, api_ops_routes,        api_engines_routes,
    api_certs_routes,  api_k8s_routes,    api_k8s_status_routes, api_k8s_expose_routes,
    api_doctor_routes, api_metrics_routes};

/* The route for <path>; *<allow> collects the methods of routes with that path. */
static const struct api_route *
find_route(const char *method, const char *path, const char **param, char *allow, size_t alen)
{
    const struct api_route *r;
    size_t i, plen;

    allow[0] = '\0';
    for (i = 0; i < sizeof(route_tables) / sizeof(route_tables[0]); i++) {
        for (r = route_tables[i]; r->path != NULL; r++) {
            plen = strlen(r->path);
            if (r->param) {
                if (strncmp(path, r->path, plen) != 0 || path[plen] == '\0' ||
                    strchr(path + plen, '/') != NULL) {
                    continue;
                }
            } else if (strcmp(path, r->path) != 0) {
                continue;
            }
            if (strcmp(method, r->method) == 0 ||
                (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
                *param = r->param ? path + plen : NULL;
                return r;
            }
            if (strstr(allow, r->method) == NULL) {
                snprintf(allow + strlen(allow), alen - strlen(allow), "%s%s", allow[0] ? ", " : "",
                         r->method);
            }
        }
    }
    return NULL;
}

static bool
is_public(const char *method, const char *path)
{
    const struct api_route *r;
    size_t i;

    for (i = 0; i < sizeof(route_tables) / sizeof(route_tables[0]); i++) {
        for (r = route_tables[i]; r->path != NULL; r++) {
            if (r->public && !r->param && strcmp(path, r->path) == 0) {
                return true;
            }
        }
    }
    return false;
}

static enum MHD_Result
reply(struct MHD_Connection *conn, struct api_resp *resp, const char *allow)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    size_t len = resp->body != NULL ? strlen(resp->body) : 0;

    r = MHD_create_response_from_buffer(len, resp->body, MHD_RESPMEM_MUST_FREE);
    resp->body = NULL;
    if (r == NULL) {
        return MHD_NO;
    }
    if (resp->content_type != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    }
    if (allow != NULL && allow[0] != '\0') {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    }
    ret = MHD_queue_response(conn, resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static bool
key_ok(struct api *api, struct MHD_Connection *conn)
{
    const char *v = NULL;
    size_t vlen = 0;

    if (MHD_lookup_connection_value_n(conn, MHD_HEADER_KIND, "harp-shared-key", 15, &v, &vlen) !=
        MHD_YES) {
        return false;
    }
    return secret_equal(v, vlen, api->ctl->cfg.shared_key);
}

/* True for a request a data plane forwarded from its public frontend: it marks every one
 * with API_VIA_DATAPLANE, whatever the client sent. */
static bool
via_dataplane(struct MHD_Connection *conn)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, API_VIA_DATAPLANE) != NULL;
}

/* The operator API (/api/v1/...) is served to direct clients of the control address only.
 * Decided on the route the request resolves to, so no spelling of its path gets past. */
static bool
operator_only(const char *method, const char *url)
{
    const struct api_route *route;
    const char *param;
    char allow[64];

    route = find_route(method, url, &param, allow, sizeof(allow));
    return strncmp(url, "/api/", 5) == 0 ||
           (route != NULL && strncmp(route->path, "/api/", 5) == 0);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct api *api = cls;
    struct conn_state *cs = *con_cls;
    struct api_resp resp = {0};
    struct api_req req;
    const struct api_route *route;
    const char *cl, *param = NULL;
    char allow[64];
    enum MHD_Result ret;

    if (cs == NULL) {
        cs = xcalloc(1, sizeof(*cs));
        *con_cls = cs;
        /* Refuse a declared oversized body before reading it, and an unauthenticated one. */
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!is_public(method, url) && !key_ok(api, conn)) {
            api_error(&resp, 401, NULL);
            log_info("api: %s %s 401 (missing or wrong harp-shared-key)", method, url);
            return reply(conn, &resp, NULL);
        }
        if (via_dataplane(conn) && operator_only(method, url)) {
            api_error(&resp, 403,
                      "the operator API is served on the control address only, "
                      "not through a data plane");
            log_warnx("api: %s %s 403 (operator API asked through a data plane)", method, url);
            return reply(conn, &resp, NULL);
        }
        if (cl != NULL && strtoull(cl, NULL, 10) > API_MAX_BODY) {
            api_error(&resp, 413, "the body is larger than the 4 MiB limit");
            log_info("api: %s %s 413", method, url);
            return reply(conn, &resp, NULL);
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        /* Past the limit the body is read and dropped, so the client, still sending, gets the
         * 413 instead of a reset; past API_MAX_DRAIN the connection is cut short. */
        if (!cs->too_large && cs->len + *upload_size > API_MAX_BODY) {
            cs->too_large = true;
            free(cs->body);
            cs->body = NULL;
        }
        cs->len += *upload_size;
        if (cs->too_large) {
            *upload_size = 0;
            if (cs->len > API_MAX_DRAIN) {
                api_error(&resp, 413, "the body is larger than the 4 MiB limit");
                log_info("api: %s %s 413", method, url);
                return reply(conn, &resp, NULL);
            }
            return MHD_YES;
        }
        cs->body = xrealloc(cs->body, cs->len + 1);
        memcpy(cs->body + cs->len - *upload_size, upload, *upload_size);
        cs->body[cs->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    if (cs->too_large) {
        api_error(&resp, 413, "the body is larger than the 4 MiB limit");
        log_info("api: %s %s 413", method, url);
        return reply(conn, &resp, NULL);
    }

    route = find_route(method, url, &param, allow, sizeof(allow));
    if (route == NULL) {
        if (allow[0] != '\0') {
            api_error(&resp, 405, NULL);
        } else {
            api_error(&resp, 404, NULL);
        }
    } else {
        req = (struct api_req){.ctl = api->ctl,
                               .method = method,
                               .path = url,
                               .param = param,
                               .body = cs->body,
                               .body_len = cs->len,
                               .conn = conn};
        /* the operators' API is /api/v1/...; the rest is AppAPI's */
        audit_set_actor(strncmp(route->path, "/api/", 5) == 0 ? "operator" : "appapi");
        route->handler(&req, &resp);
        audit_set_actor(NULL);
    }
    if (resp.status >= 500) {
        log_warnx("api: %s %s %u", method, url, resp.status);
    } else {
        log_info("api: %s %s %u", method, url, resp.status);
    }
    ret = reply(conn, &resp, route == NULL ? allow : NULL);
    free(resp.body);
    return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct conn_state *cs = *con_cls;

    if (cs != NULL) {
        free(cs->body);
        free(cs);
        *con_cls = NULL;
    }
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;

    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    }
    log_warnx("api: %s", buf);
}

/* HP_METRICS_ADDRESS: GET /metrics alone, without the key (on an address the operator
 * chose for it). */
static enum MHD_Result
on_metrics_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                   const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct api *api = cls;
    struct api_resp resp = {0};
    enum MHD_Result ret;

    (void)version;
    (void)upload;
    if (*con_cls == NULL) {
        *con_cls = api; /* the head: answer once the body (ignored) is read */
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/metrics") != 0) {
        api_error(&resp, 404, NULL);
        return reply(conn, &resp, NULL);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        api_error(&resp, 405, NULL);
        return reply(conn, &resp, "GET");
    }
    resp.status = 200;
    resp.body = api_metrics_render(api->ctl);
    resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    ret = reply(conn, &resp, NULL);
    return ret;
}

/* <addr> (host:port, IP literal) of variable <var> into <ss>; adds MHD_USE_IPv6 to <flags> for
 * an IPv6 one. */
static int
parse_listen(const char *var, const char *addr, struct sockaddr_storage *ss, unsigned *flags,
             unsigned *portp, struct hp_err *err)
{
    char host[256];
    unsigned port;
    struct hp_err sub;

    memset(ss, 0, sizeof(*ss));
    if (env_parse_hostport(addr, host, sizeof(host), &port, &sub) == -1) {
        err_set(err, "%s: %s", var, sub.msg);
        return -1;
    }
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        *flags |= MHD_USE_IPv6;
    } else {
        err_set(err, "%s: %s is not an IP address", var, host);
        return -1;
    }
    *portp = port;
    return 0;
}

struct api *
api_server_start(struct ctl *ctl, struct hp_err *err)
{
    struct api *api = xcalloc(1, sizeof(*api));
    struct sockaddr_storage ss;
    unsigned port;
    /* A thread per connection: Docker calls (wait_for_start: up to 105 s) block only their own
     * connection. */
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    unsigned mflags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

    api->ctl = ctl;
    if (parse_listen("HP_CONTROL_ADDRESS", ctl->cfg.control_address, &ss, &flags, &port, err) ==
        -1) {
        goto fail;
    }
    api->mhd = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 512u,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(64 * 1024), MHD_OPTION_NOTIFY_COMPLETED, on_completed, api, MHD_OPTION_END);
    if (api->mhd == NULL) {
        err_set(err,
                "HP_CONTROL_ADDRESS: cannot listen on %s (in use, or not an address of "
                "this host)",
                ctl->cfg.control_address);
        goto fail;
    }
    if (ctl->cfg.metrics_address[0] != '\0') {
        if (parse_listen("HP_METRICS_ADDRESS", ctl->cfg.metrics_address, &ss, &mflags, &port,
                         err) == -1) {
            goto fail;
        }
        /* One thread polls them all; a scrape takes milliseconds. */
        api->metrics = MHD_start_daemon(
            mflags, (uint16_t)port, NULL, NULL, on_metrics_request, api, MHD_OPTION_EXTERNAL_LOGGER,
            on_mhd_log, api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_END);
        if (api->metrics == NULL) {
            err_set(err,
                    "HP_METRICS_ADDRESS: cannot listen on %s (in use, or not an address of "
                    "this host)",
                    ctl->cfg.metrics_address);
            goto fail;
        }
    }
    return api;
fail:
    if (api->mhd != NULL) {
        MHD_stop_daemon(api->mhd);
    }
    free(api);
    return NULL;
}

void
api_server_stop(struct api *api)
{
    if (api != NULL) {
        if (api->metrics != NULL) {
            MHD_stop_daemon(api->metrics);
        }
        MHD_stop_daemon(api->mhd);
        free(api);
    }
}
