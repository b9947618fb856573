/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl engine list | add NAME [--port P] [--address A] | rm NAME | ping NAME|PORT */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "secret.h"
#include "xmalloc.h"

static const char usage_engine[] =
    "usage: harp-ctl engine list [--json]\n"
    "       harp-ctl engine add NAME [--port PORT] [--address ADDRESS]\n"
    "                               [--frpc-dir DIR [--server HOST:PORT]]\n"
    "       harp-ctl engine frpc NAME DIR [--server HOST:PORT]\n"
    "       harp-ctl engine rm NAME\n"
    "       harp-ctl engine ping NAME|PORT [--json]\n"
    "\n"
    "Docker engines, by the port AppAPI names in its docker-engine-port header\n"
    "(24000-24099). Port 24000 is the local engine (HP_DOCKER_SOCKET) when that socket\n"
    "exists. Without --address an engine is reached through its FRP tunnel on\n"
    "127.0.0.1:PORT; --port defaults to the first free port from 24001.\n"
    "ADDRESS: unix:///path/to/docker.sock or tcp://IP:PORT.\n"
    "--frpc-dir (and engine frpc) writes what the engine's host needs into DIR: frpc.toml and\n"
    "the certificate files; copy DIR there and run 'frpc -c frpc.toml' in it. --server is\n"
    "the address that host dials (default HP_FRP_ADDRESS).\n";

static void
print_row(const json_t *e)
{
    const char *ver = json_string_value(json_object_get(e, "version"));
    const char *api = json_string_value(json_object_get(e, "api_version"));
    const char *min = json_string_value(json_object_get(e, "min_api_version"));
    char apis[48];

    snprintf(apis, sizeof(apis), "%s-%s", min != NULL ? min : "", api != NULL ? api : "");
    printf("%-20s  %5lld  %-7s  %-40s  %-3s  %-20s  %s\n",
           json_string_value(json_object_get(e, "name")),
           (long long)json_integer_value(json_object_get(e, "port")),
           json_string_value(json_object_get(e, "kind")),
           json_string_value(json_object_get(e, "address")),
           json_is_true(json_object_get(e, "reachable")) ? "yes" : "no", ver != NULL ? ver : "-",
           api != NULL ? apis : "-");
}

/* Fetches the frpc bundle of engine <name> and writes it into <dir>. */
static int
write_frpc(struct cli_opts *opts, const char *name, const char *dir)
{
    static const char *const files[] = {"frpc.toml", "ca.crt", "client.crt", "client.key"};
    char *path = cli_path("frpc", name), *text = NULL;
    json_t *j = NULL;
    const char *v;
    long st;
    size_t i;
    int rc = CLI_OK;

    if (opts->server != NULL) {
        char *s = curl_easy_escape(NULL, opts->server, 0), *full;

        full = xasprintf("%s?server=%s", path, s);
        curl_free(s);
        free(path);
        path = full;
    }
    st = cli_call(opts, "GET", path, NULL, &j, &text);
    free(path);
    if (st < 0) {
        return cli_failed(st);
    }
    if (st != 200 || j == NULL) {
        rc = cli_refused(st, text, "engine frpc");
    } else if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        fprintf(stderr, "harp-ctl: cannot create %s: %s\n", dir, strerror(errno));
        rc = CLI_USAGE;
    } else {
        for (i = 0; i < sizeof(files) / sizeof(files[0]) && rc == CLI_OK; i++) {
            if ((v = json_string_value(json_object_get(j, files[i]))) != NULL &&
                cli_write_file(dir, files[i], v, i == 1 || i == 2 ? 0644 : 0600) == -1) {
                rc = CLI_USAGE;
            }
        }
        if (rc == CLI_OK) {
            printf("wrote %s/frpc.toml%s: copy %s to the engine's host and run frpc -c "
                   "frpc.toml there\n",
                   dir, json_object_get(j, "ca.crt") != NULL ? " and the certificates" : "", dir);
        }
    }
    json_decref(j);
    if (text != NULL) {
        secret_wipe(text, strlen(text));
    }
    free(text);
    return rc;
}

static void
print_header(void)
{
    printf("%-20s  %5s  %-7s  %-40s  %-3s  %-20s  %s\n", "NAME", "PORT", "KIND", "ADDRESS", "UP",
           "DOCKER", "API");
}

int
cli_engine(struct cli_opts *opts)
{
    const char *sub = opts->nargs > 1 ? opts->args[1] : "";
    bool list = strcmp(sub, "list") == 0 && opts->nargs == 2;
    bool add = strcmp(sub, "add") == 0 && opts->nargs == 3;
    bool rm = strcmp(sub, "rm") == 0 && opts->nargs == 3;
    bool ping = strcmp(sub, "ping") == 0 && opts->nargs == 3;
    bool frpc = strcmp(sub, "frpc") == 0 && opts->nargs == 4;
    const json_t *e;
    const char *why;
    json_t *j = NULL, *body;
    char *text = NULL, *path, *req = NULL, *end;
    size_t i;
    long st, port;
    int rc = CLI_OK;

    if (opts->help || !(list || add || rm || ping || frpc) ||
        ((opts->port != NULL || opts->address != NULL || opts->frpc_dir != NULL) && !add) ||
        (opts->server != NULL && !frpc && opts->frpc_dir == NULL) ||
        (opts->frpc_dir != NULL && opts->address != NULL)) {
        fputs(usage_engine, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    if (frpc) {
        return write_frpc(opts, opts->args[2], opts->args[3]);
    }
    if (add) {
        body = json_pack("{s:s}", "name", opts->args[2]);
        if (opts->port != NULL) {
            port = strtol(opts->port, &end, 10);
            if (*end != '\0' || opts->port[0] == '\0' || port < 24000 || port > 24099) {
                fprintf(stderr, "harp-ctl: --port takes a port from 24000 to 24099\n");
                json_decref(body);
                return CLI_USAGE;
            }
            json_object_set_new(body, "port", json_integer(port));
        }
        if (opts->address != NULL) {
            json_object_set_new(body, "address", json_string(opts->address));
        }
        if (opts->frpc_dir != NULL) { /* refused unless there is an address to write */
            json_object_set_new(body, "frpc", json_true());
            if (opts->server != NULL) {
                json_object_set_new(body, "server", json_string(opts->server));
            }
        }
        req = json_dumps(body, JSON_COMPACT);
        json_decref(body);
    }
    path = cli_path("engines", rm || ping ? opts->args[2] : NULL);
    st = cli_call(opts, add ? "POST" : rm ? "DELETE" : "GET", path, req, &j, &text);
    free(path);
    free(req);
    if (st < 0) {
        return cli_failed(st);
    }
    if (add && st == 201) {
        const char *addr = json_string_value(json_object_get(j, "address"));

        printf(
            "engine %s on port %lld, reached %s%s\n", json_string_value(json_object_get(j, "name")),
            (long long)json_integer_value(json_object_get(j, "port")),
            addr != NULL && addr[0] ? "at " : "through its FRP tunnel", addr != NULL ? addr : "");
        if (opts->frpc_dir != NULL) {
            rc = write_frpc(opts, opts->args[2], opts->frpc_dir);
        }
    } else if (rm && st == 204) {
        printf("removed engine %s\n", opts->args[2]);
    } else if ((rm || ping) && st == 404) {
        fprintf(stderr, "harp-ctl: no engine %s\n", opts->args[2]);
        rc = CLI_REFUSED;
    } else if (add && opts->frpc_dir != NULL && st == 400) {
        cli_refused(st, text, "engine add");
        rc = CLI_USAGE; /* nothing registered: the command line lacks --server */
    } else if (add || rm || st != 200 || j == NULL) {
        rc = cli_refused(st, text, add ? "engine add" : rm ? "engine rm" : "engine");
    } else if (opts->json) {
        cli_print_json(j);
        if (ping && !json_is_true(json_object_get(j, "reachable"))) {
            rc = CLI_REFUSED;
        }
    } else if (ping) {
        print_header();
        print_row(j);
        if (!json_is_true(json_object_get(j, "reachable"))) {
            fprintf(stderr, "harp-ctl: engine %s unreachable: %s\n", opts->args[2],
                    json_string_value(json_object_get(j, "error")));
            rc = CLI_REFUSED;
        }
    } else {
        print_header();
        json_array_foreach(json_object_get(j, "engines"), i, e)
        {
            print_row(e);
        }
        why = json_string_value(json_object_get(j, "local_engine_error"));
        if (json_array_size(json_object_get(j, "engines")) == 0) {
            printf("(no engines%s%s)\n", why != NULL ? ": no local engine, " : "",
                   why != NULL ? why : "");
        } else if (why != NULL) {
            printf("(no local engine: %s)\n", why);
        }
    }
    json_decref(j);
    free(text);
    return rc;
}
