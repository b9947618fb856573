/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-dp: a data plane. Serves the ExApps frontends from the table the control plane pushes;
 * several can share the same ports. */
#include "config.h"

#include <ev.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access_log.h"
#include "conn.h"
#include "ctl_link.h"
#include "dp.h"
#include "fdlimit.h"
#include "frp.h"
#include "listen.h"
#include "log.h"
#include "request.h"
#include "resolve.h"
#include "sessions.h"
#include "upgrade.h"
#include "world.h"
#include "xmalloc.h"

static const char usage[] =
    "usage: harp-dp [--id NAME] [--log-level LEVEL] [--frp] [--takeover PATH]\n"
    "\n"
    "A harp data plane: routes /exapps/<appid>/... on HP_EXAPPS_ADDRESS (and\n"
    "HP_EXAPPS_HTTPS_ADDRESS when $HP_CERTS_DIR/cert.pem exists) with the table that\n"
    "'harp-ctl serve' pushes over HP_CTL_SOCKET, and forwards /exapps/app_api/... to the\n"
    "control API at HP_CONTROL_ADDRESS. Reads the same HP_* variables as harp-ctl.\n"
    "Several harp-dp may run on the same ports. Stops on SIGTERM.\n"
    "--frp: also serve the FRP frontend on HP_FRP_ADDRESS (one data plane per host), TLS\n"
    "with the certificates in $HP_CERTS_DIR/frp unless HP_FRP_DISABLE_TLS=true.\n"
    "--takeover PATH: take the listening sockets over from the harp-dp whose handover\n"
    "socket is PATH ($HP_STATE_DIR/harp-dp-NAME.sock); once this one has its table, that\n"
    "one drains and exits. SIGUSR2 makes a harp-dp start its executable that way.\n";

/* The loop was woken by another thread (the resolver): deliver what it finished. */
static int
wake_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        resolve_deliver();
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"harp-client", conn_client_callback, 0, 0, 0, NULL, 0},
    {"harp-wake", wake_callback, 0, 0, 0, NULL, 0},
    {"harp-accept", listen_callback, 0, 0, 0, NULL, 0},
    {"harp-upstream", conn_upstream_callback, 0, 0, 0, NULL, 0},
    {"harp-ctl", ctl_link_callback, 0, 0, 0, NULL, 0},
    {"harp-frp-accept", frp_accept_callback, 0, 0, 0, NULL, 0},
    {"harp-frp", frp_session_callback, 0, 0, 0, NULL, 0},
    {"harp-frp-user", frp_user_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* The command line's options (they win over the environment and over harp-ctl's settings),
 * and the settings file HP_ENV_FILE (it wins over the environment). */
struct opts {
    const char *log_level;
    struct env_file *file;
};

/* What the control plane pushes becomes a new snapshot (world.c). */
static const struct table *
current_table(void *ctx)
{
    return world_live()->table;
}

static int
on_table(void *ctx, struct exapp *apps, size_t n, int64_t version, struct hp_err *err)
{
    struct table *t = table_build_apps(apps, n, version, err);

    if (t == NULL) {
        return -1;
    }
    world_set_table(t);
    if (upgrade_taking()) {
        upgrade_taken();
    }
    return 0;
}

static void
on_bans(void *ctx, const struct msg_ban *bans, size_t n)
{
    world_set_bans(bans_build(bans, n));
    log_info("bans: %zu in force", n);
}

static void
on_engines(void *ctx, const struct msg_engine *engines, size_t n)
{
    struct engine_map *m = engine_map_build(engines, n);

    log_info("engines: %zu known", engine_map_count(m));
    world_set_engines(m);
    frp_enforce_refusals();
}

static unsigned secs(uint64_t ms);

/* Logs one setting a reload changed, as harp-ctl does. */
static void
changed(const char *name, const char *from, const char *to)
{
    if (strcmp(from, to) != 0) {
        log_notice("settings: %s %s -> %s (from harp-ctl)", name, from, to);
    }
}

static void
changed_secs(const char *name, unsigned *field, int64_t ms)
{
    char a[32], b[32];
    unsigned s = secs((uint64_t)ms);

    snprintf(a, sizeof(a), "%us", *field);
    snprintf(b, sizeof(b), "%us", s);
    changed(name, a, b);
    *field = s;
}

/* harp-ctl's settings after a reload replace this process's own, but for its command-line
 * options (--log-level). */
static void
on_settings(void *ctx, const struct msg_settings *s)
{
    struct opts *o = ctx;
    struct cidr_list *trusted;

    if (o->log_level == NULL) {
        changed("HP_LOG_LEVEL", log_level_name(log_get_level()), log_level_name(s->log_level));
        log_set_level(s->log_level);
        dp->cfg.log_level = s->log_level;
    }
    changed_secs("HP_TIMEOUT_CONNECT", &dp->timeout_connect_s, s->timeout_connect_ms);
    changed_secs("HP_TIMEOUT_CLIENT", &dp->timeout_client_s, s->timeout_client_ms);
    changed_secs("HP_TIMEOUT_SERVER", &dp->timeout_server_s, s->timeout_server_ms);
    changed_secs("HP_TIMEOUT_TUNNEL", &dp->timeout_tunnel_s, s->timeout_tunnel_ms);
    changed_secs("HP_TIMEOUT_HEAD", &dp->timeout_head_s, s->timeout_head_ms);
    conn_defaults_changed();
    frp_set_timeout_server(dp->timeout_server_s);
    if (strcmp(dp->cfg.trusted_proxy_ips, s->trusted_proxy_ips) != 0) {
        changed("HP_TRUSTED_PROXY_IPS", dp->cfg.trusted_proxy_ips, s->trusted_proxy_ips);
        trusted = xcalloc(1, sizeof(*trusted));
        cidr_list_parse(s->trusted_proxy_ips, trusted);
        free(dp->cfg.trusted);
        free(dp->cfg.trusted_proxy_ips);
        dp->cfg.trusted = trusted;
        dp->cfg.trusted_proxy_ips = xstrdup(s->trusted_proxy_ips);
    }
    changed("HP_BAN_REPLY_429", dp->cfg.ban_reply_429 ? "true" : "false",
            s->ban_reply_429 ? "true" : "false");
    dp->cfg.ban_reply_429 = s->ban_reply_429;
}

static size_t
on_tunnels(void *ctx, struct msg_tunnel **out)
{
    return frp_tunnels(out);
}

static const struct ctl_link_handlers link_handlers = {
    .current = current_table,
    .on_table = on_table,
    .on_bans = on_bans,
    .on_engines = on_engines,
    .on_settings = on_settings,
    .on_lookup_reply = request_lookup_done,
    .on_auth_reply = request_auth_done,
    .tunnels = on_tunnels,
};

static volatile sig_atomic_t got_usr2, got_chld;

static void
on_signal(int sig)
{
    if (sig == SIGUSR2) {
        got_usr2 = 1;
    } else if (sig == SIGCHLD) {
        got_chld = 1;
    } else {
        dp->stopping = true;
    }
    if (dp->ctx != NULL) {
        lws_cancel_service(dp->ctx);
    }
}

/* The FRP frontend's news for the control plane. */
static void
frp_tunnels_changed(void *ctx)
{
    ctl_link_tunnels(((struct dp *)ctx)->link);
}

static void
frp_login_failed(void *ctx, const char *ip)
{
    ctl_link_failure(((struct dp *)ctx)->link, ip);
}

/* What the FRP frontend asks of the live snapshot. */
static bool
frp_banned(void *ctx, const char *ip, int64_t now, int64_t *until)
{
    return world_banned(ip, now, until);
}

static bool
frp_engine_refused(void *ctx, unsigned port)
{
    return world_engine_refused(port);
}

static const char *
lookup(const char *name, void *arg)
{
    struct opts *o = arg;
    const char *v;

    if (strcmp(name, "HP_LOG_LEVEL") == 0 && o->log_level != NULL) {
        return o->log_level;
    }
    v = env_file_get(o->file, name);
    return v != NULL ? v : getenv(name);
}

static void
on_lws_log(int level, const char *line)
{
    size_t n = strlen(line);

    while (n > 0 && line[n - 1] == '\n') {
        n--;
    }
    if (level & LLL_ERR) {
        log_warnx("lws: %.*s", (int)n, line);
    } else {
        log_debug("lws: %.*s", (int)n, line);
    }
}

/* Descriptors kept out of HP_MAX_CONNECTIONS' default: listeners, the control link, the
 * resolver, FRP, logs. */
#define FD_RESERVE 64

/* The loop is libev's (epoll): poll() over every open connection cost each turn O(connections)
 * in the kernel and in lws. Input read during a turn is processed before the loop blocks
 * again (conn.c design note 6). */
static void
after_turn(struct ev_loop *loop, ev_prepare *w, int revents)
{
    conn_run_ready();
    if (got_usr2) {
        got_usr2 = 0;
        upgrade_spawn();
    }
    if (got_chld) {
        got_chld = 0;
        upgrade_reap();
    }
    if (dp->stopping) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static unsigned
secs(uint64_t ms)
{
    uint64_t s = (ms + 999) / 1000;

    return s == 0 ? 1 : s > 86400u * 24 ? 86400u * 24 : (unsigned)s;
}

int
main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_vhost *tls_vh;
    char *cert;
    struct hp_err err;
    struct opts o = {NULL, NULL};
    const char *envfile = getenv("HP_ENV_FILE");
    struct ctl_link_handlers handlers = link_handlers;
    const char *id = NULL, *takeover = NULL, *want[LISTEN_NROLES] = {NULL};
    int fds[LISTEN_NROLES] = {-1, -1, -1};
    bool frp = false;
    char host[64], *summary, *line, *save = NULL;
    unsigned long nofile;
    struct ev_loop *loop;
    ev_prepare turn;
    void *foreign[1];
    enum access_log_mode alog = ACCESS_LOG_OFF;
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("harp-dp %s\n", PACKAGE_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--frp") == 0) {
            frp = true;
        } else if (strcmp(argv[i], "--id") == 0 && i + 1 < argc) {
            id = argv[++i];
        } else if (strcmp(argv[i], "--takeover") == 0 && i + 1 < argc) {
            takeover = argv[++i];
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            o.log_level = argv[++i];
        } else {
            fprintf(stderr, "harp-dp: unknown argument %s\n%s", argv[i], usage);
            return 2;
        }
    }
    if (envfile != NULL && envfile[0] != '\0' && (o.file = env_file_read(envfile, &err)) == NULL) {
        fprintf(stderr, "harp-dp: configuration error: HP_ENV_FILE: %s\n", err.msg);
        return 2;
    }
    dp = xcalloc(1, sizeof(*dp));
    if (env_load(&dp->cfg, ENV_SERVE, lookup, &o, &err) == -1) {
        fprintf(stderr, "harp-dp: configuration error: %s\n", err.msg);
        return 2;
    }
    if (env_parse_hostport(dp->cfg.control_address, dp->ctl_host, sizeof(dp->ctl_host),
                           &dp->ctl_port, &err) == -1) {
        fprintf(stderr, "harp-dp: HP_CONTROL_ADDRESS: %s\n", err.msg);
        return 2;
    }
    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "dp");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(dp->dp_id, sizeof(dp->dp_id), "%s", id != NULL ? id : host);
    if (id == NULL) {
        snprintf(dp->dp_id + strlen(dp->dp_id), sizeof(dp->dp_id) - strlen(dp->dp_id), "-%d",
                 (int)getpid());
    }
    dp->timeout_client_s = secs(dp->cfg.timeout_client_ms);
    dp->timeout_server_s = secs(dp->cfg.timeout_server_ms);
    dp->timeout_tunnel_s = secs(dp->cfg.timeout_tunnel_ms);
    dp->timeout_head_s = secs(dp->cfg.timeout_head_ms);
    dp->timeout_connect_s = secs(dp->cfg.timeout_connect_ms);
    dp->max_head_bytes = (size_t)dp->cfg.max_head_memory_mb << 20;
    /* Before the event loop sizes its tables. A proxied connection may hold an upstream
     * descriptor too: half of what remains. */
    /* Request state and input buffers come and go with each request (conn.c design note 8):
     * with glibc's default, each free at the top of the heap gave the pages back and the next
     * request faulted them in again (a TLB flush per trim, half of harp-dp's CPU at 50
     * keep-alive clients). Freed memory stays for reuse; large buffers still use mmap. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    nofile = fdlimit_raise();
    dp->max_conns = dp->cfg.max_connections;
    if (dp->max_conns == 0) {
        dp->max_conns = nofile > 2 * FD_RESERVE ? (unsigned)((nofile - FD_RESERVE) / 2) : 1;
    }

    log_init("harp-dp", dp->cfg.log_level);
    log_notice("dp: harp-dp %s starting as %s", PACKAGE_VERSION, dp->dp_id);
    for (i = 0; i < dp->cfg.nwarnings; i++) {
        log_warnx("config: %s", dp->cfg.warnings[i]);
    }
    summary = env_summary(&dp->cfg);
    for (line = strtok_r(summary, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        log_notice("config: %s", line);
    }
    free(summary);
    log_notice("dp: descriptor limit %lu, at most %u client connections", nofile, dp->max_conns);

    lws_set_log_level(LLL_ERR | LLL_WARN, on_lws_log);
    memset(&info, 0, sizeof(info));
    loop = ev_loop_new(EVFLAG_AUTO);
    if (loop == NULL) {
        log_errorx("dp: cannot create the event loop");
        return 1;
    }
    foreign[0] = loop;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                   LWS_SERVER_OPTION_LIBEV;
    info.foreign_loops = foreign;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.timeout_secs = secs(dp->cfg.timeout_connect_ms);
    info.pt_serv_buf_size = 64 * 1024;
    dp->ctx = lws_create_context(&info);
    if (dp->ctx == NULL) {
        log_errorx("dp: cannot create the event loop");
        return 1;
    }
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.vhost_name = "harp";
    dp->vh = lws_create_vhost(dp->ctx, &info);
    if (dp->vh == NULL) {
        log_errorx("dp: cannot create the vhost");
        return 1;
    }
    request_init();
    access_log_parse(dp->cfg.access_log, &alog); /* env_load checked it */
    access_log_start(dp->ctx, alog, dp->dp_id);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGUSR2, on_signal);
    signal(SIGCHLD, on_signal);
    upgrade_init(loop, argc, argv);
    /* HTTPS as HaRP: only when the certificate file (chain and key in one PEM) exists. */
    cert = xasprintf("%s/cert.pem", dp->cfg.certs_dir);
    want[LISTEN_HTTP] = dp->cfg.exapps_address;
    want[LISTEN_HTTPS] = access(cert, R_OK) == 0 ? dp->cfg.exapps_https_address : NULL;
    want[LISTEN_FRP] = frp ? dp->cfg.frp_address : NULL;
    if (takeover != NULL && upgrade_take(takeover, want, fds, &err) == -1) {
        log_errorx("upgrade: %s", err.msg);
        return 1;
    }
    if (listen_start(LISTEN_HTTP, dp->cfg.exapps_address, dp->vh, fds[LISTEN_HTTP],
                     takeover != NULL, &err) == -1) {
        log_errorx("dp: HP_EXAPPS_ADDRESS: %s", err.msg);
        return 1;
    }
    if (want[LISTEN_HTTPS] != NULL) {
        info.vhost_name = "harp-tls";
        info.ssl_cert_filepath = cert;
        info.ssl_private_key_filepath = cert;
        info.alpn = "http/1.1";
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        tls_vh = lws_create_vhost(dp->ctx, &info);
        if (tls_vh == NULL) {
            log_errorx("dp: %s: cannot load the certificate and key", cert);
            return 1;
        }
        if (listen_start(LISTEN_HTTPS, dp->cfg.exapps_https_address, tls_vh, fds[LISTEN_HTTPS],
                         takeover != NULL, &err) == -1) {
            log_errorx("dp: HP_EXAPPS_HTTPS_ADDRESS: %s", err.msg);
            return 1;
        }
        listen_tls_watch(cert);
        log_notice("dp: serving HTTPS on %s with %s", dp->cfg.exapps_https_address, cert);
    }
    free(cert);
    if (frp) {
        struct frp_setup fs = {.ctx = dp->ctx,
                               .vh = dp->vh,
                               .cfg = &dp->cfg,
                               .stopping = &dp->stopping,
                               .timeout_server_s = dp->timeout_server_s,
                               .frontend_fd = fds[LISTEN_FRP],
                               .paused = takeover != NULL,
                               .hooks = {.ctx = dp,
                                         .tunnels_changed = frp_tunnels_changed,
                                         .login_failed = frp_login_failed,
                                         .banned = frp_banned,
                                         .engine_refused = frp_engine_refused}};

        if (frp_start(&fs, &err) == -1) {
            log_errorx("dp: HP_FRP_ADDRESS: %s", err.msg);
            return 1;
        }
    }
    if (resolve_start(dp->ctx, request_resolved, NULL) == -1) {
        log_errorx("dp: cannot start the resolver thread");
        return 1;
    }
    handlers.ctx = &o;
    dp->link = ctl_link_start(&handlers);
    log_notice("dp: serving HTTP on %s; control plane at %s", dp->cfg.exapps_address,
               dp->cfg.ctl_socket);
    if (takeover == NULL) {
        char *path = upgrade_default_path();

        upgrade_serve(path);
        free(path);
        upgrade_notify("READY=1");
    }
    ev_prepare_init(&turn, after_turn);
    ev_prepare_start(loop, &turn);
    if (!dp->stopping) {
        ev_run(loop, 0);
    }
    ev_prepare_stop(loop, &turn);
    log_notice("dp: stopping");
    upgrade_close();
    /* Whatever holds a timer in dp->ctx or wakes it goes before the context does. */
    resolve_stop();
    access_log_stop();
    ctl_link_stop(dp->link);
    dp->link = NULL;
    lws_context_destroy(dp->ctx);
    ev_loop_destroy(loop);
    frp_stop();
    sessions_clear();
    world_clear();
    env_free(&dp->cfg);
    env_file_free(o.file);
    i = dp->exit_status;
    free(dp);
    return i;
}
