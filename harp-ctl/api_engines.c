/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Operators' engine endpoints: GET/POST /api/v1/engines, GET/DELETE /api/v1/engines/{name}. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "cidr.h"
#include "docker.h"
#include "engines.h"
#include "log.h"
#include "secret.h"
#include "xmalloc.h"

static void
on_list(struct api_req *req, struct api_resp *resp)
{
    const char *sock = req->ctl->cfg.docker_socket;
    json_t *list = engines_report(req->ctl, NULL), *o = json_pack("{s:o}", "engines", list), *e;
    struct stat sb;
    char *why = NULL;
    size_t i;
    bool local = false;

    json_array_foreach(list, i, e)
    {
        local = local || json_integer_value(json_object_get(e, "port")) == DOCKER_LOCAL_PORT;
    }
    /* Why port 24000 is missing: the local engine's socket is not there. */
    if (!local && sock != NULL && sock[0] != '\0') {
        why = stat(sock, &sb) == -1   ? xasprintf("HP_DOCKER_SOCKET: %s: %s", sock, strerror(errno))
              : !S_ISSOCK(sb.st_mode) ? xasprintf("HP_DOCKER_SOCKET: %s is not a socket", sock)
                                      : NULL;
    }
    if (why != NULL) {
        json_object_set_new(o, "local_engine_error", json_string(why));
        free(why);
    }
    api_json(resp, 200, o);
}

/* The FRP address a remote frpc dials: <server>, else HP_FRP_ADDRESS unless that is a
 * wildcard or loopback address another host cannot reach. -1 with <err>. */
static int
frpc_server(const struct hp_config *cfg, const char *server, char *host, size_t hostlen,
            unsigned *port, struct hp_err *err)
{
    if (env_parse_hostport(server != NULL ? server : cfg->frp_address, host, hostlen, port, NULL) ==
        -1) {
        err_set(err, "server: expected HOST:PORT");
        return -1;
    }
    if (server == NULL && (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
                           host[0] == '\0' || strncmp(host, "127.", 4) == 0 ||
                           strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0)) {
        err_set(err,
                "server: HP_FRP_ADDRESS is %s, a wildcard or loopback address a remote frpc "
                "cannot reach; pass --server HOST:PORT, the address the engine's host dials",
                cfg->frp_address);
        return -1;
    }
    return 0;
}

static void
on_show(struct api_req *req, struct api_resp *resp)
{
    json_t *r = engines_report(req->ctl, req->param);

    if (r == NULL) {
        api_error(resp, 404, "no such engine");
        return;
    }
    api_json(resp, 200, json_incref(json_array_get(r, 0)));
    json_decref(r);
}

/* The lowest port of 24001-24099 no engine takes; 0 when all are taken. */
static unsigned
free_port(struct ctl *ctl)
{
    struct engine_rec e;
    unsigned p;

    for (p = ENGINE_PORT_MIN + 1; p <= ENGINE_PORT_MAX; p++) {
        if (store_engine_get(ctl->store, NULL, p, &e) == 0) {
            return p;
        }
    }
    return 0;
}

static void
on_add(struct api_req *req, struct api_resp *resp)
{
    json_t *body = api_body_json(req, resp), *jport, *jaddr;
    struct engine_rec e;
    struct docker_engine de;
    struct hp_err err;
    struct ipaddr ipa;
    const char *name;
    char host[256];
    unsigned port;
    bool conflict;

    if (body == NULL) {
        return;
    }
    /* "frpc": true: the caller writes the engine's frpc.toml next; refuse before storing
     * anything when there is no address to write into it. */
    if (json_is_true(json_object_get(body, "frpc")) &&
        frpc_server(&req->ctl->cfg, json_string_value(json_object_get(body, "server")), host,
                    sizeof(host), &port, &err) == -1) {
        api_error(resp, 400, err.msg);
        json_decref(body);
        return;
    }
    memset(&e, 0, sizeof(e));
    name = json_string_value(json_object_get(body, "name"));
    jport = json_object_get(body, "port");
    jaddr = json_object_get(body, "address");
    if (!json_is_object(body)) {
        api_error(resp, 400, "body: must be a JSON object");
    } else if (name == NULL || !engines_name_ok(name)) {
        api_error(resp, 400,
                  "name: 1-63 characters of A-Z a-z 0-9 _ . - starting with a "
                  "letter or digit");
    } else if (jport != NULL && !json_is_null(jport) &&
               (!json_is_integer(jport) || json_integer_value(jport) < ENGINE_PORT_MIN ||
                json_integer_value(jport) > ENGINE_PORT_MAX)) {
        api_error(resp, 400, "port: must be a whole number from 24000 to 24099");
    } else if (jaddr != NULL && !json_is_null(jaddr) && !json_is_string(jaddr)) {
        api_error(resp, 400, "address: must be a string (unix:///path or tcp://IP:port)");
    } else if (strcmp(name, "local") == 0 && json_integer_value(jport) != DOCKER_LOCAL_PORT) {
        api_error(resp, 400, "name: \"local\" is the engine on port 24000");
    } else {
        snprintf(e.name, sizeof(e.name), "%s", name);
        e.port = json_is_integer(jport) ? (unsigned)json_integer_value(jport) : free_port(req->ctl);
        if (json_is_string(jaddr) && json_string_value(jaddr)[0] != '\0') {
            if (docker_address_parse(json_string_value(jaddr), &de, &err) == -1) {
                api_error(resp, 400, err.msg);
                json_decref(body);
                return;
            }
            if (de.unix_path[0] == '\0' && !ip_parse(de.host, strlen(de.host), &ipa)) {
                api_error(resp, 400, "address: a tcp:// address needs an IP, not a host name");
                json_decref(body);
                return;
            }
            snprintf(e.address, sizeof(e.address), "%s", json_string_value(jaddr));
        }
        if (e.port == 0) {
            api_error(resp, 409, "every port from 24001 to 24099 is taken");
        } else if (store_engine_add(req->ctl->store, &e, &conflict, &err) == -1) {
            api_error(resp, conflict ? 409 : 500,
                      conflict ? err.msg
                               : "the engine could not "
                                 "be stored");
        } else {
            log_notice("engines: %s added on port %u%s%s", e.name, e.port,
                       e.address[0] ? " at " : " (FRP tunnel)", e.address);
            engines_changed(req->ctl->engines);
            api_json(
                resp, 201,
                json_pack("{s:s,s:i,s:s}", "name", e.name, "port", e.port, "address", e.address));
        }
    }
    json_decref(body);
}

static void
on_rm(struct api_req *req, struct api_resp *resp)
{
    struct hp_err err;
    int rc = store_engine_delete(req->ctl->store, req->param, &err);

    if (rc == -1) {
        api_error(resp, 500, "the engine could not be removed");
    } else if (rc == 0) {
        api_error(resp, 404, "no such engine");
    } else {
        log_notice("engines: %s removed", req->param);
        engines_changed(req->ctl->engines);
        api_empty(resp, 204);
    }
}

/* What a remote engine's host needs to dial in: a ready frpc.toml (run frpc in its
 * directory) and the certificate files. ?server=HOST:PORT is the address frpc dials. */
static void
on_frpc(struct api_req *req, struct api_resp *resp)
{
    const struct hp_config *cfg = &req->ctl->cfg;
    const char *server = api_query(req, "server");
    struct engine_rec e;
    struct cert_rec recs[3];
    struct hp_err err;
    char host[256], *toml;
    unsigned port;
    bool tls = !cfg->frp_disable_tls;
    json_t *o;

    if (store_engine_get(req->ctl->store, req->param, 0, &e) != 1) {
        api_error(resp, 404, "no such engine");
        return;
    }
    if (e.address[0] != '\0') {
        api_error(resp, 409, "this engine is reached at its address, not through FRP");
        return;
    }
    if (frpc_server(cfg, server, host, sizeof(host), &port, &err) == -1) {
        api_error(resp, 400, err.msg);
        return;
    }
    if (strpbrk(host, "\"\\\n") != NULL || strpbrk(e.name, "\"\\\n") != NULL) {
        api_error(resp, 400, "server: invalid characters");
        return;
    }
    toml = xasprintf("# frpc for the Docker engine \"%s\" (docker-engine-port %u).\n"
                     "# Run in this directory: frpc -c frpc.toml\n"
                     "serverAddr = \"%s\"\nserverPort = %u\nloginFailExit = false\n\n"
                     "metadatas.token = \"%s\"\n\n"
                     "%s"
                     "[[proxies]]\nname = \"%s\"\ntype = \"tcp\"\nremotePort = %u\n"
                     "[proxies.plugin]\ntype = \"unix_domain_socket\"\n"
                     "unixPath = \"/var/run/docker.sock\"\n",
                     e.name, e.port, host, port, cfg->shared_key,
                     tls ? "transport.tls.enable = true\ntransport.tls.certFile = \"client.crt\"\n"
                           "transport.tls.keyFile = \"client.key\"\n"
                           "transport.tls.trustedCaFile = \"ca.crt\"\n"
                           "transport.tls.serverName = \"harp.nc\"\n\n"
                         : "transport.tls.enable = false\n\n",
                     e.name, e.port);
    o = json_pack("{s:s}", "frpc.toml", toml);
    secret_wipe(toml, strlen(toml));
    free(toml);
    if (tls && store_cert_get_all(req->ctl->store, recs) == 1) {
        json_object_set_new(o, "ca.crt", json_string(recs[0].cert_pem));
        json_object_set_new(o, "client.crt", json_string(recs[2].cert_pem));
        json_object_set_new(o, "client.key", json_string(recs[2].key_pem));
        store_cert_free(recs);
    }
    log_notice("engines: frpc configuration for %s handed out", e.name);
    api_json(resp, 200, o);
}

const struct api_route api_engines_routes[] = {
    {"GET", "/api/v1/frpc/", true, false, on_frpc},
    {"GET", "/api/v1/engines", false, false, on_list},
    {"POST", "/api/v1/engines", false, false, on_add},
    {"GET", "/api/v1/engines/", true, false, on_show},
    {"DELETE", "/api/v1/engines/", true, false, on_rm},
    {NULL, NULL, false, false, NULL},
};
