/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl's command line: parsing, dispatch, the daemon client, status and config check. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "env.h"
#include "http_client.h"
#include "log.h"
#include "secret.h"
#include "serve.h"
#include "xmalloc.h"

#define MAX_ANSWER (16u * 1024 * 1024)

static const char usage_main[] =
    "usage: harp-ctl [options] <command> [args]\n"
    "\n"
    "The control plane of harp, the gateway between Nextcloud's AppAPI and External Apps.\n"
    "\n"
    "commands:\n"
    "  serve                 run the control plane (REST API, store)\n"
    "  status                show the control plane's state\n"
    "  exapp list            list registered ExApps\n"
    "  exapp show ID         show one ExApp and its routes (never its token)\n"
    "  exapp rm ID           remove an ExApp\n"
    "  exapp set ID --idle-timeout 30m ...\n"
    "                        set an ExApp's (or --route URL's) timeouts\n"
    "  dp list               list connected data planes and their table versions\n"
    "  ban list              client IPs banned, with failures and expiry\n"
    "  ban add IP [--for S]  ban an IP (default: HP_BLACKLIST_WINDOW seconds)\n"
    "  ban rm IP             lift a ban\n"
    "  engine list           Docker engines: port, address, reachability, Docker version\n"
    "  engine add NAME       register an engine (--port P, --address unix:///p|tcp://IP:P,\n"
    "                        or --frpc-dir DIR [--server HOST:PORT] for an FRP tunnel)\n"
    "  engine frpc NAME DIR  write frpc.toml and certificates for an engine's host\n"
    "  engine rm NAME        remove an engine\n"
    "  engine ping NAME|PORT probe one engine\n"
    "  tunnel list           FRP tunnels up: name, port, client address, since when\n"
    "  certs show            the FRP CA, server and client certificates\n"
    "  certs export DIR      write ca.crt, client.crt, client.key for a remote frpc\n"
    "  certs rotate [--now]  a new FRP CA, the old one trusted until the overlap ends\n"
    "  certs status          days left, renewal schedule, overlap, deliveries\n"
    "  certs finish          end a rotation's overlap now\n"
    "  k8s status            Kubernetes: API server, namespace, the service account's rights\n"
    "  audit key             harp-ctl's audit public key (Ed25519, hex)\n"
    "  audit log             the audit chain's entries ([--since T] [--app ID])\n"
    "  audit verify          check the chain, the signed versions and the ExApps table\n"
    "  audit proof           export a table version's proof (--out FILE [--version V])\n"
    "  audit check-proof F   check a proof offline (--key PUBKEY)\n"
    "  audit prune           drop old entries behind a signed checkpoint (--before T)\n"
    "  config check          validate the configuration and print the effective settings\n"
    "  reload                re-read the settings (HP_ENV_FILE) in the running control plane\n"
    "  doctor                check the whole chain and name the fix for each failure\n"
    "                        ([--public-url URL] [--read-timeout S]: through the front proxy)\n"
    "  help [COMMAND]        this help, or the help of a command (also COMMAND --help)\n"
    "\n"
    "options (each overrides its environment variable):\n"
    "  --state-dir DIR       HP_STATE_DIR (default /var/lib/harp)\n"
    "  --control HOST:PORT   HP_CONTROL_ADDRESS (default 127.0.0.1:8200)\n"
    "  --log-level LEVEL     HP_LOG_LEVEL: debug, info, warning, error\n"
    "  --nc-url URL          NC_INSTANCE_URL\n"
    "  --shared-key-file F   HP_SHARED_KEY_FILE\n"
    "  --json                machine-readable output\n"
    "  -h, --help            help for the command\n"
    "  --version             print the version\n"
    "\n"
    "The CLI reads the shared key from HP_SHARED_KEY, HP_SHARED_KEY_FILE or\n"
    "$HP_STATE_DIR/shared_key. HP_ENV_FILE names a file of NAME=value lines whose\n"
    "values override the environment (the options still win).\n"
    "exit codes: 0 ok, 1 the control plane refused, 2 usage or configuration error,\n"
    "3 the control plane cannot be reached.\n";

static const char usage_serve[] =
    "usage: harp-ctl serve [--state-dir DIR] [--control HOST:PORT] [--log-level LEVEL]\n"
    "                      [--nc-url URL] [--shared-key-file FILE] [--allow-empty]\n"
    "\n"
    "Runs the control plane: the REST API AppAPI calls (through a data plane) on\n"
    "HP_CONTROL_ADDRESS and the SQLite store in HP_STATE_DIR (created when missing).\n"
    "Needs HP_SHARED_KEY or HP_SHARED_KEY_FILE, and NC_INSTANCE_URL. Stops on SIGTERM.\n"
    "Once it has run, a missing or empty HP_STATE_DIR/harp.db stops it at start unless\n"
    "--allow-empty is given (a new, empty database is then created).\n"
    "SIGHUP (or 'harp-ctl reload') reads HP_ENV_FILE and the environment again: log\n"
    "level, timeouts, trusted proxies, ban settings and NC_INSTANCE_URL change at once\n"
    "(the data planes are told); other changes are logged as needing a restart.\n";

static const char usage_reload[] =
    "usage: harp-ctl reload [--json]\n"
    "\n"
    "Asks the running control plane to read its settings again (HP_ENV_FILE, then its\n"
    "environment), as SIGHUP does. Prints each setting changed live and each changed\n"
    "setting that needs a restart. An invalid settings file changes nothing: exit 1 with\n"
    "the error naming the file and line.\n";

static const char usage_status[] =
    "usage: harp-ctl status [--json]\n"
    "\n"
    "Shows the control plane's version, uptime, database and number of ExApps.\n";

static const char usage_config[] =
    "usage: harp-ctl config check [options]\n"
    "\n"
    "Validates the HP_* environment (and flags) as 'serve' would, without starting\n"
    "anything: the values, the control address (an IP address), the state and\n"
    "certificates directories (writable, or creatable). Prints the effective settings\n"
    "with secrets masked. Exit 0 when valid, 2 with a message naming the variable\n"
    "otherwise (and no settings).\n";

const char *
cli_lookup(const char *name, void *arg)
{
    struct cli_opts *o = arg;
    const char *v = NULL;

    if (strcmp(name, "HP_STATE_DIR") == 0) {
        v = o->state_dir;
    } else if (strcmp(name, "HP_CONTROL_ADDRESS") == 0) {
        v = o->control;
    } else if (strcmp(name, "HP_LOG_LEVEL") == 0) {
        v = o->log_level;
    } else if (strcmp(name, "NC_INSTANCE_URL") == 0) {
        v = o->nc_url;
    } else if (strcmp(name, "HP_SHARED_KEY_FILE") == 0) {
        v = o->shared_key_file;
    } else if (strcmp(name, "HP_SHARED_KEY") == 0 && o->shared_key_file != NULL) {
        return NULL;
    }
    if (v == NULL) {
        v = env_file_get(o->file, name);
    }
    return v != NULL ? v : getenv(name);
}

int
cli_config(struct cli_opts *opts, struct hp_config *cfg)
{
    struct hp_err err;
    char *keyfile;

    if (env_load(cfg, ENV_CLIENT, cli_lookup, opts, &err) == -1) {
        fprintf(stderr, "harp-ctl: configuration error: %s\n", err.msg);
        return -1;
    }
    if (cfg->shared_key != NULL) {
        return 0;
    }
    keyfile = xasprintf("%s/shared_key", cfg->state_dir);
    if (access(keyfile, F_OK) == 0) {
        struct cli_opts o2 = *opts;

        o2.shared_key_file = keyfile;
        env_free(cfg);
        if (env_load(cfg, ENV_CLIENT, cli_lookup, &o2, &err) == -1) {
            fprintf(stderr, "harp-ctl: %s\n", err.msg);
            free(keyfile);
            return -1;
        }
    }
    free(keyfile);
    if (cfg->shared_key == NULL) {
        fprintf(stderr, "harp-ctl: no shared key: set HP_SHARED_KEY or HP_SHARED_KEY_FILE, or "
                        "point --state-dir at the daemon's state directory\n");
        env_free(cfg);
        return -1;
    }
    return 0;
}

int
cli_write_file(const char *dir, const char *name, const char *content, unsigned mode)
{
    char *path = xasprintf("%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    size_t len = strlen(content);
    int rc = -1;

    if (fd != -1 && fchmod(fd, mode) == 0 && write(fd, content, len) == (ssize_t)len) {
        rc = 0;
    }
    if (rc == -1) {
        fprintf(stderr, "harp-ctl: cannot write %s: %s\n", path, strerror(errno));
    }
    if (fd != -1) {
        close(fd);
    }
    free(path);
    return rc;
}

long
cli_call(struct cli_opts *opts, const char *method, const char *path, const char *body,
         json_t **out, char **text)
{
    struct hp_config cfg;
    struct curl_slist *hdrs = NULL;
    struct http_body a = {.max = MAX_ANSWER};
    char errbuf[CURL_ERROR_SIZE] = "", host[256], *url, *key;
    unsigned port;
    long status = -1;
    CURLcode rc;
    CURL *c;

    *out = NULL;
    *text = NULL;
    if (cli_config(opts, &cfg) == -1) {
        return -2;
    }
    env_parse_hostport(cfg.control_address, host, sizeof(host), &port, NULL);
    url = strchr(host, ':') != NULL ? xasprintf("http://[%s]:%u%s", host, port, path)
                                    : xasprintf("http://%s:%u%s", host, port, path);
    key = xasprintf("harp-shared-key: %s", cfg.shared_key);
    hdrs = curl_slist_append(hdrs, key);
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, opts->timeout_s > 0 ? opts->timeout_s : 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        fprintf(stderr,
                "harp-ctl: cannot reach the control plane at %s: %s (is 'harp-ctl serve' "
                "running? see --control / HP_CONTROL_ADDRESS)\n",
                cfg.control_address, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        http_body_free(&a);
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (a.data != NULL) {
            *out = json_loadb(a.data, a.len, 0, NULL);
        }
        *text = a.data;
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    secret_free(key);
    free(url);
    env_free(&cfg);
    return status;
}

int
cli_failed(long status)
{
    return status == -2 ? CLI_USAGE : CLI_UNREACHABLE;
}

char *
cli_path(const char *collection, const char *item)
{
    char *esc, *path;

    if (item == NULL) {
        return xasprintf("/api/v1/%s", collection);
    }
    esc = curl_easy_escape(NULL, item, 0);
    path = xasprintf("/api/v1/%s/%s", collection, esc);
    curl_free(esc);
    return path;
}

int
cli_refused(long status, const char *text, const char *what)
{
    if (status == 401) {
        fprintf(stderr, "harp-ctl: the control plane rejected the shared key (401)\n");
    } else {
        fprintf(stderr, "harp-ctl: %s: %s\n", what, text != NULL && text[0] ? text : "error");
    }
    return CLI_REFUSED;
}

void
cli_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    printf("%s\n", s);
    free(s);
}

const char *
cli_time(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

static int
cmd_reload(struct cli_opts *opts)
{
    const json_t *v;
    json_t *j;
    char *text;
    size_t i;
    long st;
    int rc = CLI_OK;

    if (opts->help || opts->nargs != 1) {
        fputs(usage_reload, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    st = cli_call(opts, "POST", "/api/v1/reload", NULL, &j, &text);
    if (st < 0) {
        return cli_failed(st);
    }
    if (st != 200 || j == NULL) {
        rc = cli_refused(st, text, "reload");
    } else if (opts->json) {
        cli_print_json(j);
    } else {
        json_array_foreach(json_object_get(j, "live"), i, v)
        {
            printf("%s %s -> %s (live)\n", json_string_value(json_object_get(v, "name")),
                   json_string_value(json_object_get(v, "from")),
                   json_string_value(json_object_get(v, "to")));
        }
        json_array_foreach(json_object_get(j, "restart"), i, v)
        {
            printf("%s changed: needs a restart\n", json_string_value(v));
        }
        if (json_array_size(json_object_get(j, "live")) == 0 &&
            json_array_size(json_object_get(j, "restart")) == 0) {
            printf("no setting changed\n");
        }
    }
    json_decref(j);
    free(text);
    return rc;
}

static int
cmd_status(struct cli_opts *opts)
{
    json_t *j;
    char *text;
    long st;
    int rc = CLI_OK;

    if (opts->help || opts->nargs != 1) {
        fputs(usage_status, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    st = cli_call(opts, "GET", "/api/v1/status", NULL, &j, &text);
    if (st < 0) {
        return cli_failed(st);
    }
    if (st != 200 || j == NULL) {
        rc = cli_refused(st, text, "status");
    } else if (opts->json) {
        cli_print_json(j);
    } else {
        printf("control plane:  harp %s, up %llds\n",
               json_string_value(json_object_get(j, "version")),
               (long long)json_integer_value(json_object_get(j, "uptime_seconds")));
        printf("state dir:      %s\n", json_string_value(json_object_get(j, "state_dir")));
        printf("database:       %s (schema %lld, table version %lld)\n",
               json_string_value(json_object_get(j, "database")),
               (long long)json_integer_value(json_object_get(j, "schema_version")),
               (long long)json_integer_value(json_object_get(j, "table_version")));
        printf("exapps:         %lld\n",
               (long long)json_integer_value(json_object_get(j, "exapps")));
    }
    json_decref(j);
    free(text);
    return rc;
}

static int
cmd_config(struct cli_opts *opts)
{
    struct hp_config cfg;
    struct hp_err err;
    char *summary;
    int i;

    if (opts->help || opts->nargs != 2 || strcmp(opts->args[1], "check") != 0) {
        fputs(usage_config, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    if (env_load(&cfg, ENV_SERVE, cli_lookup, opts, &err) == -1) {
        fprintf(stderr, "harp-ctl: configuration error: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (serve_check(&cfg, NULL, &err) == -1) {
        fprintf(stderr, "harp-ctl: configuration error: %s\n", err.msg);
        env_free(&cfg);
        return CLI_USAGE;
    }
    for (i = 0; i < cfg.nwarnings; i++) {
        fprintf(stderr, "harp-ctl: warning: %s\n", cfg.warnings[i]);
    }
    summary = env_summary(&cfg);
    fputs(summary, stdout);
    free(summary);
    env_free(&cfg);
    printf("configuration OK\n");
    return CLI_OK;
}

/* Options may stand anywhere; the other words are the command and its arguments. */
static int
parse_args(int argc, char **argv, struct cli_opts *o)
{
    static const struct {
        const char *flag;
        size_t off;
    } valued[] = {
        {"--state-dir", offsetof(struct cli_opts, state_dir)},
        {"--control", offsetof(struct cli_opts, control)},
        {"--log-level", offsetof(struct cli_opts, log_level)},
        {"--nc-url", offsetof(struct cli_opts, nc_url)},
        {"--shared-key-file", offsetof(struct cli_opts, shared_key_file)},
        {"--for", offsetof(struct cli_opts, for_seconds)},
        {"--port", offsetof(struct cli_opts, port)},
        {"--address", offsetof(struct cli_opts, address)},
        {"--frpc-dir", offsetof(struct cli_opts, frpc_dir)},
        {"--server", offsetof(struct cli_opts, server)},
        {"--public-url", offsetof(struct cli_opts, public_url)},
        {"--read-timeout", offsetof(struct cli_opts, read_timeout)},
        {"--route", offsetof(struct cli_opts, route)},
        {"--connect-timeout", offsetof(struct cli_opts, timeouts[0])},
        {"--request-timeout", offsetof(struct cli_opts, timeouts[1])},
        {"--first-byte-timeout", offsetof(struct cli_opts, timeouts[2])},
        {"--idle-timeout", offsetof(struct cli_opts, timeouts[3])},
        {"--ws-idle-timeout", offsetof(struct cli_opts, timeouts[4])},
        {"--since", offsetof(struct cli_opts, since)},
        {"--app", offsetof(struct cli_opts, app)},
        {"--version", offsetof(struct cli_opts, version)},
        {"--out", offsetof(struct cli_opts, out)},
        {"--key", offsetof(struct cli_opts, key)},
        {"--before", offsetof(struct cli_opts, before)},
    };
    size_t j, flen;
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool matched = false;

        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--allow-empty") == 0) {
            o->allow_empty = true;
            continue;
        }
        if (strcmp(a, "--now") == 0) {
            o->now = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
            continue;
        }
        for (j = 0; j < sizeof(valued) / sizeof(valued[0]); j++) {
            flen = strlen(valued[j].flag);
            if (strncmp(a, valued[j].flag, flen) != 0) {
                continue;
            }
            if (a[flen] == '=') {
                *(const char **)((char *)o + valued[j].off) = a + flen + 1;
            } else if (a[flen] == '\0' && i + 1 < argc) {
                *(const char **)((char *)o + valued[j].off) = argv[++i];
            } else if (a[flen] == '\0') {
                fprintf(stderr, "harp-ctl: %s needs a value\n", valued[j].flag);
                return -1;
            } else {
                continue;
            }
            matched = true;
            break;
        }
        if (matched) {
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "harp-ctl: unknown option %s (see harp-ctl --help)\n", a);
            return -1;
        }
        if (o->nargs == CLI_MAX_ARGS) {
            fprintf(stderr, "harp-ctl: too many arguments\n");
            return -1;
        }
        o->args[o->nargs++] = a;
    }
    return 0;
}

static int cli_main_run(struct cli_opts *o);

int
cli_main(int argc, char **argv)
{
    struct cli_opts opts;
    const char *envfile;
    struct hp_err err;
    int rc;

    memset(&opts, 0, sizeof(opts));
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("harp-ctl %s\n", PACKAGE_VERSION);
        return CLI_OK;
    }
    if (parse_args(argc, argv, &opts) == -1) {
        return CLI_USAGE;
    }
    envfile = getenv("HP_ENV_FILE");
    if (envfile != NULL && envfile[0] != '\0' && !opts.help &&
        (opts.file = env_file_read(envfile, &err)) == NULL) {
        fprintf(stderr, "harp-ctl: configuration error: HP_ENV_FILE: %s\n", err.msg);
        return CLI_USAGE;
    }
    rc = cli_main_run(&opts);
    env_file_free(opts.file);
    return rc;
}

static int
cli_main_run(struct cli_opts *o)
{
    struct cli_opts opts = *o;
    const char *cmd;
    int rc;

    if (opts.nargs > 0 && strcmp(opts.args[0], "help") == 0) {
        memmove(opts.args, opts.args + 1, sizeof(opts.args[0]) * (size_t)--opts.nargs);
        opts.help = true;
    }
    if (opts.nargs == 0) {
        fputs(usage_main, opts.help ? stdout : stderr);
        return opts.help ? CLI_OK : CLI_USAGE;
    }
    cmd = opts.args[0];
    if (strcmp(cmd, "serve") == 0) {
        if (opts.help || opts.nargs != 1) {
            fputs(usage_serve, opts.help ? stdout : stderr);
            return opts.help ? CLI_OK : CLI_USAGE;
        }
        return serve_main(cli_lookup, o, &o->file, o->allow_empty);
    }
    if (strcmp(cmd, "config") == 0) {
        return cmd_config(&opts);
    }
    if (strcmp(cmd, "audit") == 0) {
        return cli_audit(&opts);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(cmd, "status") == 0) {
        rc = cmd_status(&opts);
    } else if (strcmp(cmd, "reload") == 0) {
        rc = cmd_reload(&opts);
    } else if (strcmp(cmd, "exapp") == 0) {
        rc = cli_exapp(&opts);
    } else if (strcmp(cmd, "dp") == 0) {
        rc = cli_dp(&opts);
    } else if (strcmp(cmd, "ban") == 0) {
        rc = cli_ban(&opts);
    } else if (strcmp(cmd, "engine") == 0) {
        rc = cli_engine(&opts);
    } else if (strcmp(cmd, "certs") == 0) {
        rc = cli_certs(&opts);
    } else if (strcmp(cmd, "tunnel") == 0) {
        rc = cli_tunnel(&opts);
    } else if (strcmp(cmd, "doctor") == 0) {
        rc = cli_doctor(&opts);
    } else if (strcmp(cmd, "k8s") == 0) {
        rc = cli_k8s(&opts);
    } else {
        fprintf(stderr, "harp-ctl: unknown command '%s' (see harp-ctl --help)\n", cmd);
        rc = CLI_USAGE;
    }
    curl_global_cleanup();
    return rc;
}
