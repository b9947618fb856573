/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl serve: configuration, state directory, store, API, signals, stop. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "api_server.h"
#include "audit.h"
#include "ca.h"
#include "ca_renew.h"
#include "ctl.h"
#include "engines.h"
#include "fdlimit.h"
#include "log.h"
#include "outbound.h"
#include "reload.h"
#include "serve.h"
#include "xmalloc.h"

/* mkdir -p with mode 0700 for what it creates; -1 with errno. */
static int
mkdirs(const char *path)
{
    char *p = xstrdup(path), *s;
    int rc = 0, e = 0;

    for (s = p + 1; rc == 0; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;

            *s = '\0';
            if (mkdir(p, 0700) == -1 && errno != EEXIST) {
                rc = -1;
                e = errno;
            }
            *s = c;
            if (c == '\0') {
                break;
            }
        }
    }
    free(p);
    errno = e;
    return rc;
}

/* 0 when <path> is a directory this process can write, or could be created in one; -1 with
 * errno (the reason mkdir or open would give). */
static int
dir_writable(const char *path)
{
    char *p = xstrdup(path), *slash;
    struct stat sb;
    int rc;

    while (stat(p, &sb) == -1) {
        if (errno != ENOENT || (slash = strrchr(p, '/')) == NULL) {
            free(p);
            return -1;
        }
        slash[slash == p ? 1 : 0] = '\0';
    }
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        rc = -1;
    } else {
        rc = access(p, W_OK | X_OK);
    }
    free(p);
    return rc;
}

static void
refuse(struct hp_err *err, const char *var, const char *what, const char *path, int e)
{
    err_set(err, "%s: cannot %s %s: %s", var, what, path, strerror(e));
}

/* The state directory, created and locked (*<lockfd>): one daemon per state directory, a
 * second one would share the database and the socket. With <lockfd> NULL only checked. */
static int
check_state_dir(const char *dir, int *lockfd, struct hp_err *err)
{
    char *path = xasprintf("%s/harp.lock", dir);
    struct stat sb;
    int fd = -1, rc = -1;

    if (lockfd == NULL) {
        bool exists = stat(dir, &sb) == 0;

        if (exists && !S_ISDIR(sb.st_mode)) {
            refuse(err, "HP_STATE_DIR", "open", path, ENOTDIR);
        } else if (access(path, F_OK) == 0 ? access(path, R_OK | W_OK) == -1
                                           : dir_writable(dir) == -1) {
            refuse(err, "HP_STATE_DIR", exists ? "open" : "create", exists ? path : dir, errno);
        } else {
            rc = 0;
        }
    } else if (mkdirs(dir) == -1) {
        refuse(err, "HP_STATE_DIR", "create", dir, errno);
    } else if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
        refuse(err, "HP_STATE_DIR", "open", path, errno);
    } else if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        err_set(err, "HP_STATE_DIR: another harp-ctl serve is using %s", dir);
        close(fd);
    } else {
        *lockfd = fd; /* kept open: the lock lives as long as the process */
        rc = 0;
    }
    free(path);
    return rc;
}

int
serve_check(const struct hp_config *cfg, int *lockfd, struct hp_err *err)
{
    struct in6_addr a6;
    struct in_addr a4;
    char host[256], *frp;
    unsigned port;
    int rc = 0;

    if (env_parse_hostport(cfg->control_address, host, sizeof(host), &port, NULL) == -1 ||
        (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)) {
        err_set(err,
                "HP_CONTROL_ADDRESS: %s is not an IP address and port (serve listens on an IP "
                "address, e.g. 127.0.0.1:8200)",
                cfg->control_address);
        return -1;
    }
    if (!cfg->frp_disable_tls && !ca_files_present(cfg->certs_dir)) {
        frp = xasprintf("%s/frp", cfg->certs_dir);
        if (dir_writable(frp) == -1) {
            refuse(err, "HP_CERTS_DIR", "write", frp, errno);
            rc = -1;
        }
        free(frp);
    }
    if (rc == 0) {
        rc = check_state_dir(cfg->state_dir, lockfd, err);
    }
    return rc;
}

/* Written into the state directory after the first successful start. */
#define INIT_MARKER "initialised"

/* -1 when harp ran in <dir> before (INIT_MARKER) and its database is gone or empty: starting
 * would silently serve an empty table. --allow-empty starts anew. */
static int
check_database(const char *dir, bool allow_empty)
{
    char *db = xasprintf("%s/harp.db", dir), *mark = xasprintf("%s/%s", dir, INIT_MARKER);
    struct stat sb;
    bool lost;
    int rc = 0;

    lost = stat(db, &sb) == -1 ? errno == ENOENT : sb.st_size == 0;
    if (lost && access(mark, F_OK) == 0) {
        if (allow_empty) {
            log_warnx("serve: %s is missing or empty: starting with an empty database "
                      "(--allow-empty)",
                      db);
        } else {
            log_errorx(
                "serve: HP_STATE_DIR: %s is missing or empty, but harp-ctl ran with this state "
                "directory before (%s exists): refusing to start with an empty database. "
                "Restore harp.db (and harp.db-wal) from a backup, or start with "
                "--allow-empty to begin anew",
                db, mark);
            rc = -1;
        }
    }
    free(db);
    free(mark);
    return rc;
}

/* Marks <dir> as one harp-ctl has run with (check_database). */
static void
mark_initialised(const char *dir)
{
    static const char text[] = "harp-ctl ran with this state directory; see harp-ctl serve "
                               "--help\n";
    char *mark = xasprintf("%s/%s", dir, INIT_MARKER);
    int fd;

    if (access(mark, F_OK) == -1 &&
        (fd = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) != -1) {
        if (write(fd, text, sizeof(text) - 1) != (ssize_t)sizeof(text) - 1 || fsync(fd) == -1) {
            log_warn("serve: %s", mark);
        }
        close(fd);
    }
    free(mark);
}

void
serve_log_config(const struct hp_config *cfg)
{
    char *summary, *line, *save = NULL;
    int i;

    for (i = 0; i < cfg->nwarnings; i++) {
        log_warnx("config: %s", cfg->warnings[i]);
    }
    summary = env_summary(cfg);
    for (line = strtok_r(summary, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        log_notice("config: %s", line);
    }
    free(summary);
}

/* A data plane reported its tunnels: probe the engines behind them now, and see whether the
 * clients a rotation waits for moved. */
static void
on_tunnels(void *ctx)
{
    struct ctl *ctl = ctx;

    engines_changed(ctl->engines);
    ca_renew_kick(ctl->renew);
}

int
serve_main(env_lookup_cb lookup, void *lookup_arg, struct env_file **file, bool allow_empty)
{
    struct ctl ctl;
    struct api *api;
    struct hp_err err;
    sigset_t set;
    char *dbpath;
    int sig, lockfd;

    memset(&ctl, 0, sizeof(ctl));
    ctl.lookup = lookup;
    ctl.lookup_arg = lookup_arg;
    ctl.file = file;
    pthread_mutex_init(&ctl.reload_mtx, NULL);
    if (env_load(&ctl.cfg, ENV_SERVE, lookup, lookup_arg, &err) == -1) {
        fprintf(stderr, "harp-ctl: configuration error: %s\n", err.msg);
        return 2;
    }
    log_init("harp-ctl", ctl.cfg.log_level);
    umask(077);
    /* A start error comes first and alone, before the settings. */
    if (serve_check(&ctl.cfg, &lockfd, &err) == -1) {
        log_errorx("serve: %s", err.msg);
        env_free(&ctl.cfg);
        return 1;
    }
    log_notice("serve: harp-ctl %s starting (descriptor limit %lu)", PACKAGE_VERSION,
               fdlimit_raise());
    if (check_database(ctl.cfg.state_dir, allow_empty) == -1) {
        env_free(&ctl.cfg);
        close(lockfd);
        return 1;
    }
    dbpath = xasprintf("%s/harp.db", ctl.cfg.state_dir);
    ctl.store = store_open(dbpath, &err);
    free(dbpath);
    if (ctl.store == NULL) {
        log_errorx("serve: HP_STATE_DIR: %s", err.msg);
        env_free(&ctl.cfg);
        return 1;
    }
    ctl.audit_key = audit_key_load(ctl.cfg.state_dir, true, &err);
    if (ctl.audit_key == NULL || store_audit_start(ctl.store, &err) == -1) {
        log_errorx("serve: HP_STATE_DIR: %s", err.msg);
        canon_key_free(ctl.audit_key);
        store_close(ctl.store);
        env_free(&ctl.cfg);
        return 1;
    }
    ctl.started = time(NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    outbound_init(ctl.cfg.outbound_max);

    /* Signals are taken synchronously by this thread; the API threads inherit the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (ca_init(&ctl, &err) == -1) {
        log_errorx("serve: HP_CERTS_DIR: %s", err.msg);
        store_close(ctl.store);
        canon_key_free(ctl.audit_key);
        curl_global_cleanup();
        env_free(&ctl.cfg);
        return 1;
    }
    ctl.engines = engines_start(&ctl);
    ctl.renew = ctl.cfg.frp_disable_tls ? NULL : ca_renew_start(&ctl);
    ctl.pub = publish_start(&ctl, on_tunnels, &ctl, &err);
    if (ctl.pub == NULL) {
        log_errorx("serve: %s", err.msg);
        ca_renew_stop(ctl.renew);
        ca_renew_free(ctl.renew);
        engines_stop(ctl.engines);
        store_close(ctl.store);
        canon_key_free(ctl.audit_key);
        curl_global_cleanup();
        env_free(&ctl.cfg);
        return 1;
    }
    engines_changed(ctl.engines); /* the first probe, now that it has a publisher */
    ca_renew_kick(ctl.renew);     /* the first check, likewise */
    api = api_server_start(&ctl, &err);
    if (api == NULL) {
        log_errorx("serve: %s", err.msg);
        ca_renew_stop(ctl.renew);
        engines_stop(ctl.engines);
        publish_stop(ctl.pub);
        ca_renew_free(ctl.renew);
        store_close(ctl.store);
        canon_key_free(ctl.audit_key);
        curl_global_cleanup();
        env_free(&ctl.cfg);
        return 1;
    }
    serve_log_config(&ctl.cfg); /* once started: a start error is never lost among them */
    mark_initialised(ctl.cfg.state_dir);
    log_notice("serve: control API listening on %s, data planes on %s, state in %s "
               "(schema %d, %zu ExApps)",
               ctl.cfg.control_address, ctl.cfg.ctl_socket, ctl.cfg.state_dir,
               store_schema_version(ctl.store), store_exapp_count(ctl.store));
    for (;;) {
        if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            json_decref(reload_run(&ctl, &err));
            continue;
        }
        break;
    }
    log_notice("serve: %s received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    __atomic_store_n(&ctl.stopping, true, __ATOMIC_RELAXED);
    api_server_stop(api);
    ca_renew_stop(ctl.renew);
    engines_stop(ctl.engines);
    publish_stop(ctl.pub);
    ca_renew_free(ctl.renew);
    store_close(ctl.store);
    canon_key_free(ctl.audit_key);
    curl_global_cleanup();
    env_free(&ctl.cfg);
    reload_free(&ctl);
    close(lockfd);
    return 0;
}
