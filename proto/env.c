/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * HP_* configuration. Each variable has one row in <vars>: its default, its parser and where
 * the value goes. Values written by compose files often keep quotes or spaces; those are
 * removed with a warning (HaRP strips quotes from a few variables; harp does it for all).
 * Every invalid value is an error that names the variable and what it accepts.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env.h"
#include "secret.h"
#include "xmalloc.h"

enum var_kind {
    V_STR,             /* any string */
    V_URL,             /* http:// or https:// */
    V_ADDR,            /* host:port */
    V_BOOL_EXACT_TRUE, /* only "true" is true (HaRP's HP_FRP_DISABLE_TLS) */
    V_BOOL,            /* 1/true/yes or 0/false/no, any case */
    V_UINT,            /* decimal in [min, max] */
    V_FLOAT,           /* decimal in [min, max] */
    V_LOGLEVEL,
    V_TIME, /* HAProxy time syntax, in ms */
};

struct var {
    const char *name;
    const char *def; /* NULL: no default */
    enum var_kind kind;
    size_t off;
    double min, max;
    unsigned scopes; /* 1 << enum env_scope where the variable is read */
    bool secret;
};

#define S_SERVE (1u << ENV_SERVE)
#define S_ALL ((1u << ENV_SERVE) | (1u << ENV_CLIENT))
#define OFF(f) offsetof(struct hp_config, f)

static const struct var vars[] = {
    {"NC_INSTANCE_URL", NULL, V_URL, OFF(nc_instance_url), 0, 0, S_SERVE, false},
    {"HP_EXAPPS_ADDRESS", "0.0.0.0:8780", V_ADDR, OFF(exapps_address), 0, 0, S_SERVE, false},
    {"HP_EXAPPS_HTTPS_ADDRESS", "0.0.0.0:8781", V_ADDR, OFF(exapps_https_address), 0, 0, S_SERVE,
     false},
    {"HP_FRP_ADDRESS", "0.0.0.0:8782", V_ADDR, OFF(frp_address), 0, 0, S_SERVE, false},
    {"HP_FRP_DISABLE_TLS", "false", V_BOOL_EXACT_TRUE, OFF(frp_disable_tls), 0, 0, S_SERVE, false},
    {"HP_FRP_CERT_VALIDITY_DAYS", "5000", V_UINT, OFF(frp_cert_validity_days), 1, 36500, S_SERVE,
     false},
    /* A rotated CA's overlap: its clients still trusted and able to verify the server */
    {"HP_CERT_OVERLAP_DAYS", "7", V_FLOAT, OFF(cert_overlap_days), 0, 3650, S_SERVE, false},
    /* Test-only: certificates valid this many seconds instead of HP_FRP_CERT_VALIDITY_DAYS */
    {"HP_CERT_LIFETIME_SECONDS", "0", V_UINT, OFF(cert_lifetime_seconds), 0, 3153600000.0, S_SERVE,
     false},
    {"HP_AUDIT_RETENTION_DAYS", "0", V_UINT, OFF(audit_retention_days), 0, 36500, S_SERVE, false},
    {"HP_FRP_LOGIN_TIMEOUT", "10s", V_TIME, OFF(frp_login_timeout_ms), 0, 0, S_SERVE, false},
    {"HP_FRP_MAX_PENDING", "256", V_UINT, OFF(frp_max_pending), 1, 100000, S_SERVE, false},
    {"HP_TRUSTED_PROXY_IPS", "", V_STR, OFF(trusted_proxy_ips), 0, 0, S_SERVE, false},
    {"HP_LOG_LEVEL", "warning", V_LOGLEVEL, OFF(log_level), 0, 0, S_ALL, false},
    /* off, text or json: checked after the table */
    {"HP_ACCESS_LOG", "off", V_STR, OFF(access_log), 0, 0, S_SERVE, false},
    /* host:port of a second /metrics listener without the key; "": none. After the table. */
    {"HP_METRICS_ADDRESS", "", V_STR, OFF(metrics_address), 0, 0, S_SERVE, false},
    {"HP_TIMEOUT_CONNECT", "30s", V_TIME, OFF(timeout_connect_ms), 0, 0, S_SERVE, false},
    {"HP_TIMEOUT_CLIENT", "30s", V_TIME, OFF(timeout_client_ms), 0, 0, S_SERVE, false},
    {"HP_TIMEOUT_SERVER", "1800s", V_TIME, OFF(timeout_server_ms), 0, 0, S_SERVE, false},
    /* HP_TIMEOUT_TUNNEL defaults to HP_TIMEOUT_SERVER: handled after the table. */
    {"HP_TIMEOUT_TUNNEL", NULL, V_TIME, OFF(timeout_tunnel_ms), 0, 0, S_SERVE, false},
    /* A request head must be complete this long after its first byte (408 otherwise). */
    {"HP_TIMEOUT_HEAD", "10s", V_TIME, OFF(timeout_head_ms), 0, 0, S_SERVE, false},
    /* How long a harp-dp that handed its sockets to a new one waits for its WebSockets and FRP
     * tunnels to close before it exits anyway. */
    {"HP_DRAIN_TIMEOUT", "5m", V_TIME, OFF(drain_timeout_ms), 0, 0, S_SERVE, false},
    /* 0: derived from RLIMIT_NOFILE (harp-dp) */
    {"HP_MAX_CONNECTIONS", "0", V_UINT, OFF(max_connections), 0, 10000000, S_SERVE, false},
    /* MiB held by unfinished request heads, all connections together */
    {"HP_MAX_HEAD_MEMORY", "32", V_UINT, OFF(max_head_memory_mb), 1, 1048576, S_SERVE, false},
    {"HP_SESSION_LIFETIME", "3", V_FLOAT, OFF(session_lifetime), 0, 10, S_SERVE, false},
    {"HP_BLACKLIST_WINDOW", "300", V_UINT, OFF(blacklist_window), 1, 31536000, S_SERVE, false},
    {"HP_BLACKLIST_COUNT", "10", V_UINT, OFF(blacklist_count), 0, 1000000, S_SERVE, false},
    {"HP_USER_LOOKUP_WORKERS", "8", V_UINT, OFF(user_lookup_workers), 1, 64, S_SERVE, false},
    {"HP_USER_LOOKUP_MAX", "256", V_UINT, OFF(user_lookup_max), 1, 100000, S_SERVE, false},
    /* harp-ctl's outbound HTTP calls (Nextcloud, Docker, Kubernetes) at once (outbound.c) */
    {"HP_OUTBOUND_MAX", "64", V_UINT, OFF(outbound_max), 1, 4096, S_SERVE, false},
    {"HP_BAN_REPLY_429", "false", V_BOOL, OFF(ban_reply_429), 0, 0, S_SERVE, false},
    {"HP_K8S_ENABLED", "false", V_BOOL, OFF(k8s_enabled), 0, 0, S_SERVE, false},
    {"HP_K8S_API_SERVER", NULL, V_URL, OFF(k8s_api_server), 0, 0, S_SERVE, false},
    {"HP_K8S_NAMESPACE", "nextcloud-exapps", V_STR, OFF(k8s_namespace), 0, 0, S_SERVE, false},
    {"HP_K8S_CA_FILE", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", V_STR,
     OFF(k8s_ca_file), 0, 0, S_SERVE, false},
    {"HP_K8S_BEARER_TOKEN", NULL, V_STR, OFF(k8s_bearer_token), 0, 0, S_SERVE, true},
    {"HP_K8S_BEARER_TOKEN_FILE", "/var/run/secrets/kubernetes.io/serviceaccount/token", V_STR,
     OFF(k8s_bearer_token_file), 0, 0, S_SERVE, false},
    {"HP_K8S_VERIFY_SSL", "true", V_BOOL, OFF(k8s_verify_ssl), 0, 0, S_SERVE, false},
    {"HP_K8S_STORAGE_CLASS", "", V_STR, OFF(k8s_storage_class), 0, 0, S_SERVE, false},
    {"HP_K8S_DEFAULT_STORAGE_SIZE", "10Gi", V_STR, OFF(k8s_storage_size), 0, 0, S_SERVE, false},
    {"HP_K8S_HOST_ALIASES", "", V_STR, OFF(k8s_host_aliases), 0, 0, S_SERVE, false},
    {"HP_STATE_DIR", "/var/lib/harp", V_STR, OFF(state_dir), 0, 0, S_ALL, false},
    {"HP_CONTROL_ADDRESS", "127.0.0.1:8200", V_ADDR, OFF(control_address), 0, 0, S_ALL, false},
    /* HP_CTL_SOCKET defaults to $HP_STATE_DIR/ctl.sock: handled after the table. */
    {"HP_CTL_SOCKET", NULL, V_STR, OFF(ctl_socket), 0, 0, S_ALL, false},
    {"HP_CERTS_DIR", "/certs", V_STR, OFF(certs_dir), 0, 0, S_SERVE, false},
    {"HP_DOCKER_SOCKET", "/var/run/docker.sock", V_STR, OFF(docker_socket), 0, 0, S_SERVE, false},
};

#define NVARS (sizeof(vars) / sizeof(vars[0]))

const char *
env_getenv(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

static void
warn(struct hp_config *cfg, const char *fmt, ...)
{
    va_list ap;

    if (cfg->nwarnings >= ENV_MAX_WARNINGS) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(cfg->warnings[cfg->nwarnings++], sizeof(cfg->warnings[0]), fmt, ap);
    va_end(ap);
}

void
env_strip_quotes(char *s)
{
    size_t n;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        char q = pass == 0 ? '"' : '\'';

        if (s[0] == q) {
            memmove(s, s + 1, strlen(s));
        }
        n = strlen(s);
        if (n > 0 && s[n - 1] == q) {
            s[n - 1] = '\0';
        }
    }
}

static void
trim(char *s)
{
    size_t n = strlen(s), start = 0;

    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    while (isspace((unsigned char)s[start])) {
        start++;
    }
    if (start > 0) {
        memmove(s, s + start, n - start + 1);
    }
}

/* Removes surrounding whitespace and quotes; warns when that changed the value. */
static char *
normalise(struct hp_config *cfg, const char *name, const char *raw)
{
    char *v = xstrdup(raw);

    trim(v);
    env_strip_quotes(v);
    trim(v);
    if (strcmp(v, raw) != 0) {
        warn(cfg, "%s: surrounding quotes or whitespace removed from the value", name);
    }
    return v;
}

int
env_parse_time_ms(const char *s, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t num, den; /* ms = value * num / den, rounded up */
    } units[] = {{"us", 1, 1000}, {"ms", 1, 1},      {"s", 1000, 1},
                 {"m", 60000, 1}, {"h", 3600000, 1}, {"d", 86400000, 1}};
    const char *p = s;
    uint64_t v = 0;
    size_t i;

    if (!isdigit((unsigned char)*p)) {
        return -1;
    }
    while (isdigit((unsigned char)*p)) {
        if (v > UINT64_MAX / 10 / 86400000) {
            return -1;
        }
        v = v * 10 + (uint64_t)(*p++ - '0');
    }
    if (*p == '\0') {
        *ms = v;
        return 0;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            *ms = (v * units[i].num + units[i].den - 1) / units[i].den;
            return 0;
        }
    }
    return -1;
}

int
env_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port, struct hp_err *err)
{
    const char *colon, *hstart = s, *hend;
    char *end;
    unsigned long p;

    if (s[0] == '[') {
        hend = strchr(s, ']');
        if (hend == NULL || hend[1] != ':') {
            err_set(err, "expected [ipv6-address]:port");
            return -1;
        }
        hstart = s + 1;
        colon = hend + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            err_set(err, "expected host:port");
            return -1;
        }
        hend = colon;
    }
    if ((size_t)(hend - hstart) >= hostlen) {
        err_set(err, "host part too long");
        return -1;
    }
    errno = 0;
    p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 1 || p > 65535 ||
        !isdigit((unsigned char)colon[1])) {
        err_set(err, "port must be a number from 1 to 65535");
        return -1;
    }
    if (hend == hstart) {
        snprintf(host, hostlen, "0.0.0.0");
    } else {
        memcpy(host, hstart, (size_t)(hend - hstart));
        host[hend - hstart] = '\0';
    }
    *port = (unsigned)p;
    return 0;
}

static int
parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off", ""};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
    }
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Parses <v> (already normalised; owned by the caller unless stored) into the field. */
static int
parse_var(struct hp_config *cfg, const struct var *var, char *v, struct hp_err *err)
{
    void *field = (char *)cfg + var->off;
    char host[256], *end;
    unsigned port;
    struct hp_err sub;
    double d;

    switch (var->kind) {
    case V_URL:
        if (strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0) {
            err_set(err, "%s: must be an http:// or https:// URL", var->name);
            return -1;
        }
        if (strpbrk(v, " \t\r\n") != NULL) {
            err_set(err, "%s: must not contain whitespace", var->name);
            return -1;
        }
        *(char **)field = xstrdup(v);
        return 0;
    case V_STR:
        *(char **)field = xstrdup(v);
        return 0;
    case V_ADDR:
        if (env_parse_hostport(v, host, sizeof(host), &port, &sub) == -1) {
            err_set(err, "%s: %s (got \"%s\")", var->name, sub.msg, v);
            return -1;
        }
        *(char **)field = xstrdup(v);
        return 0;
    case V_BOOL_EXACT_TRUE:
        *(bool *)field = strcmp(v, "true") == 0;
        if (!*(bool *)field && strcmp(v, "false") != 0 && v[0] != '\0') {
            warn(cfg, "%s: only the exact value \"true\" enables this; \"%s\" counts as false",
                 var->name, v);
        }
        return 0;
    case V_BOOL:
        if (parse_bool(v, (bool *)field) == -1) {
            err_set(err, "%s: must be true or false (also 1/0, yes/no), got \"%s\"", var->name, v);
            return -1;
        }
        return 0;
    case V_UINT:
        errno = 0;
        d = (double)strtoul(v, &end, 10);
        if (v[0] == '\0' || !isdigit((unsigned char)v[0]) || *end != '\0' || errno != 0 ||
            d < var->min || d > var->max) {
            err_set(err, "%s: must be a whole number from %.0f to %.0f, got \"%s\"", var->name,
                    var->min, var->max, v);
            return -1;
        }
        *(unsigned *)field = (unsigned)d;
        return 0;
    case V_FLOAT:
        errno = 0;
        d = strtod(v, &end);
        if (v[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(d) || d < var->min ||
            d > var->max) {
            err_set(err, "%s: must be a number from %g to %g, got \"%s\"", var->name, var->min,
                    var->max, v);
            return -1;
        }
        *(double *)field = d;
        return 0;
    case V_LOGLEVEL:
        if (log_level_parse(v, (enum log_level *)field) == -1) {
            err_set(err, "%s: must be one of debug, info, warning, error; got \"%s\"", var->name,
                    v);
            return -1;
        }
        return 0;
    case V_TIME:
        if (env_parse_time_ms(v, (uint64_t *)field) == -1) {
            err_set(err,
                    "%s: must be a number with an optional unit us, ms, s, m, h or d "
                    "(a bare number is milliseconds), got \"%s\"",
                    var->name, v);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* Reads the key file: a regular file (a FIFO or device is refused without blocking on it),
 * at most ENV_KEY_FILE_MAX bytes, no NUL byte (which would cut the key short); trailing
 * newlines dropped. Warns when other users may read or write it. */
static int
read_key_file(struct hp_config *cfg, const char *path, char **out, struct hp_err *err)
{
    char buf[ENV_KEY_FILE_MAX + 1];
    const char *nul;
    struct stat st;
    ssize_t n;
    size_t len = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        err_set(err, "HP_SHARED_KEY_FILE: cannot read %s: %s", path,
                fd == -1 ? strerror(errno) : "not a regular file");
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }
    if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
        warn(cfg,
             "HP_SHARED_KEY_FILE: %s has mode %04o: other users may read or change the "
             "key (chmod 600 it)",
             path, (unsigned)(st.st_mode & 07777));
    }
    while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0) {
        len += (size_t)n;
    }
    close(fd);
    if (len > ENV_KEY_FILE_MAX) {
        secret_wipe(buf, sizeof(buf));
        err_set(err, "HP_SHARED_KEY_FILE: %s is larger than %d bytes", path, ENV_KEY_FILE_MAX);
        return -1;
    }
    if ((nul = memchr(buf, '\0', len)) != NULL) {
        secret_wipe(buf, sizeof(buf));
        err_set(err, "HP_SHARED_KEY_FILE: %s has a NUL byte at offset %zu: the key must be text",
                path, (size_t)(nul - buf));
        return -1;
    }
    /* As the shell's command substitution does: all trailing newlines go, nothing else. */
    while (len > 0 && buf[len - 1] == '\n') {
        len--;
    }
    if (len == 0) {
        err_set(err, "HP_SHARED_KEY_FILE: %s is empty", path);
        return -1;
    }
    *out = xstrndup(buf, len);
    secret_wipe(buf, sizeof(buf));
    return 0;
}

/* HaRP's start.sh rules, in order (spec 1.3), plus removal of surrounding spaces. */
static int
load_shared_key(struct hp_config *cfg, enum env_scope scope, env_lookup_cb lookup, void *arg,
                struct hp_err *err)
{
    const char *key = lookup("HP_SHARED_KEY", arg);
    const char *file = lookup("HP_SHARED_KEY_FILE", arg);
    const char *name = "HP_SHARED_KEY";
    char *k = NULL;
    size_t i, n;

    if (key != NULL && key[0] == '\0') {
        key = NULL;
    }
    if (file != NULL && file[0] == '\0') {
        file = NULL;
    }
    if (key != NULL && file != NULL) {
        err_set(err, "HP_SHARED_KEY and HP_SHARED_KEY_FILE are both set: set exactly one");
        return -1;
    }
    if (file != NULL) {
        name = "HP_SHARED_KEY_FILE";
        if (read_key_file(cfg, file, &k, err) == -1) {
            return -1;
        }
        cfg->shared_key_file = xstrdup(file);
    } else if (key != NULL) {
        k = xstrdup(key);
    } else {
        if (scope == ENV_CLIENT) {
            return 0;
        }
        err_set(err, "Either HP_SHARED_KEY or HP_SHARED_KEY_FILE must be set");
        return -1;
    }
    for (i = 0; k[i] != '\0'; i++) {
        if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] > 0x7e) {
            secret_free(k);
            err_set(err, "%s: the key must be printable ASCII (0x20-0x7E); byte %zu is not", name,
                    i);
            return -1;
        }
    }
    n = strlen(k);
    env_strip_quotes(k);
    trim(k);
    if (strlen(k) != n) {
        warn(cfg, "%s: surrounding quotes or spaces removed from the key", name);
    }
    if (k[0] == '\0') {
        secret_free(k);
        err_set(err, "%s: the key is empty once quotes are removed", name);
        return -1;
    }
    if (strpbrk(k, "\"\\") != NULL) {
        secret_free(k);
        err_set(err, "%s: the key must not contain '\"' or '\\'", name);
        return -1;
    }
    cfg->shared_key = k;
    return 0;
}

static char *
req_url(const char *url)
{
    char *u = xstrdup(url);
    size_t n = strlen(u);

    if (n > 0 && u[n - 1] == '/') {
        u[--n] = '\0';
    }
    if (n >= 10 && strcmp(u + n - 10, "/index.php") == 0) {
        u[n - 10] = '\0';
    }
    return u;
}

int
env_load(struct hp_config *cfg, enum env_scope scope, env_lookup_cb lookup, void *arg,
         struct hp_err *err)
{
    const char *raw;
    char *v;
    size_t i;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    cfg->scope = scope;
    if (load_shared_key(cfg, scope, lookup, arg, err) == -1) {
        goto fail;
    }
    for (i = 0; i < NVARS; i++) {
        const struct var *var = &vars[i];

        if (!(var->scopes & (1u << scope))) {
            continue;
        }
        raw = lookup(var->name, arg);
        if (raw == NULL || raw[0] == '\0') {
            raw = var->def;
        }
        if (raw == NULL) {
            continue;
        }
        v = normalise(cfg, var->name, raw);
        if (v[0] == '\0' && var->def != NULL && raw != var->def) {
            free(v);
            v = xstrdup(var->def);
        }
        rc = parse_var(cfg, var, v, err);
        free(v);
        if (rc == -1) {
            goto fail;
        }
    }

    if (scope == ENV_SERVE) {
        if (cfg->nc_instance_url == NULL || cfg->nc_instance_url[0] == '\0') {
            err_set(err, "NC_INSTANCE_URL must be set (the URL the gateway uses to reach "
                         "Nextcloud, e.g. https://cloud.example.com)");
            goto fail;
        }
        cfg->nc_req_url = req_url(cfg->nc_instance_url);
        if (strcasecmp(cfg->access_log, "off") != 0 && strcasecmp(cfg->access_log, "text") != 0 &&
            strcasecmp(cfg->access_log, "json") != 0) {
            err_set(err, "HP_ACCESS_LOG: must be one of off, text, json; got \"%s\"",
                    cfg->access_log);
            goto fail;
        }
        if (cfg->metrics_address[0] != '\0') {
            char host[256];
            unsigned port;
            struct hp_err sub;

            if (env_parse_hostport(cfg->metrics_address, host, sizeof(host), &port, &sub) == -1) {
                err_set(err, "HP_METRICS_ADDRESS: %s (got \"%s\")", sub.msg, cfg->metrics_address);
                goto fail;
            }
        }
        raw = lookup("HP_TIMEOUT_TUNNEL", arg);
        if (raw == NULL || raw[0] == '\0') {
            cfg->timeout_tunnel_ms = cfg->timeout_server_ms;
        } else if (cfg->timeout_tunnel_ms == 0) {
            cfg->timeout_tunnel_ms = 24ull * 86400000; /* 0 means unlimited: HAProxy's 24d */
        }
        if (cfg->k8s_api_server == NULL && (raw = lookup("KUBERNETES_SERVICE_HOST", arg)) &&
            raw[0] != '\0') {
            const char *port = lookup("KUBERNETES_SERVICE_PORT", arg);

            cfg->k8s_api_server =
                xasprintf("https://%s:%s", raw, port != NULL && port[0] ? port : "443");
        }
        if (cfg->k8s_bearer_token != NULL) {
            trim(cfg->k8s_bearer_token);
        }
        cfg->trusted = xcalloc(1, sizeof(*cfg->trusted));
        cidr_list_parse(cfg->trusted_proxy_ips, cfg->trusted);
        if (cfg->trusted->ndequoted > 0) {
            warn(cfg, "HP_TRUSTED_PROXY_IPS: quotes removed from %s%s", cfg->trusted->dequoted,
                 cfg->trusted->ndequoted > 5 ? " and more" : "");
        }
        if (cfg->trusted->nmasked > 0) {
            warn(cfg, "HP_TRUSTED_PROXY_IPS: host bits masked in %s%s", cfg->trusted->masked,
                 cfg->trusted->nmasked > 5 ? " and more" : "");
        }
        if (cfg->trusted->ninvalid > 0) {
            warn(cfg, "HP_TRUSTED_PROXY_IPS: %zu invalid entries ignored: %s%s",
                 cfg->trusted->ninvalid, cfg->trusted->invalid,
                 cfg->trusted->ninvalid > 5 ? " and more" : "");
        }
        if (cfg->trusted->n == 0 && cfg->trusted_proxy_ips[0] != '\0') {
            warn(cfg, "HP_TRUSTED_PROXY_IPS: no valid entry; client IPs come from the TCP peer "
                      "only");
        }
    }
    if (cfg->ctl_socket == NULL) {
        cfg->ctl_socket = xasprintf("%s/ctl.sock", cfg->state_dir);
    }
    return 0;
fail:
    env_free(cfg);
    return -1;
}

void
env_free(struct hp_config *cfg)
{
    size_t i;

    secret_free(cfg->shared_key);
    secret_free(cfg->k8s_bearer_token);
    cfg->shared_key = cfg->k8s_bearer_token = NULL;
    free(cfg->shared_key_file);
    free(cfg->nc_req_url);
    free(cfg->trusted);
    cfg->trusted = NULL;
    cfg->shared_key_file = cfg->nc_req_url = NULL;
    for (i = 0; i < NVARS; i++) {
        if (vars[i].kind == V_STR || vars[i].kind == V_URL || vars[i].kind == V_ADDR) {
            char **f = (char **)((char *)cfg + vars[i].off);

            free(*f);
            *f = NULL;
        }
    }
}

/* --- the settings file ------------------------------------------------------------------- */

struct env_file_var {
    char name[ENV_FILE_NAME_MAX + 1];
    char *value;
};

struct env_file {
    char *path;
    struct env_file_var *vars;
    size_t n;
};

void
env_file_free(struct env_file *f)
{
    size_t i;

    if (f == NULL) {
        return;
    }
    for (i = 0; i < f->n; i++) {
        secret_free(f->vars[i].value); /* HP_SHARED_KEY may be one of them */
    }
    free(f->vars);
    free(f->path);
    free(f);
}

const char *
env_file_get(const struct env_file *f, const char *name)
{
    size_t i;

    for (i = f != NULL ? f->n : 0; i > 0; i--) {
        if (strcmp(f->vars[i - 1].name, name) == 0) {
            return f->vars[i - 1].value;
        }
    }
    return NULL;
}

const char *
env_file_path(const struct env_file *f)
{
    return f->path;
}

/* One line (NUL-terminated, no newline) of <f>; <lineno> for errors. */
static int
file_line(struct env_file *f, char *line, size_t lineno, struct hp_err *err)
{
    char *p = line, *eq;
    size_t n, i;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p == '\0' || *p == '#' || (p[0] == '\r' && p[1] == '\0')) {
        return 0;
    }
    eq = strchr(p, '=');
    if (eq == NULL) {
        err_set(err, "%s:%zu: expected NAME=value", f->path, lineno);
        return -1;
    }
    n = (size_t)(eq - p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
        n--;
    }
    for (i = 0; i < n; i++) {
        if (!(isalpha((unsigned char)p[i]) || p[i] == '_' ||
              (i > 0 && isdigit((unsigned char)p[i])))) {
            break;
        }
    }
    if (n == 0 || i < n) {
        err_set(err, "%s:%zu: a name is letters, digits and '_', not starting with a digit",
                f->path, lineno);
        return -1;
    }
    if (n > ENV_FILE_NAME_MAX) {
        err_set(err, "%s:%zu: name longer than %d bytes", f->path, lineno, ENV_FILE_NAME_MAX);
        return -1;
    }
    i = strlen(eq + 1);
    if (i > 0 && eq[i] == '\r') {
        eq[i] = '\0'; /* a file written on Windows */
    }
    f->vars = xrealloc(f->vars, (f->n + 1) * sizeof(*f->vars));
    memcpy(f->vars[f->n].name, p, n);
    f->vars[f->n].name[n] = '\0';
    f->vars[f->n].value = xstrdup(eq + 1);
    f->n++;
    return 0;
}

struct env_file *
env_file_read(const char *path, struct hp_err *err)
{
    struct env_file *f = xcalloc(1, sizeof(*f));
    char *buf = NULL, *line, *nl;
    struct stat st;
    size_t len = 0, lineno = 0;
    ssize_t r;
    int fd;

    f->path = xstrdup(path);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        err_set(err, "%s: cannot read: %s", path,
                fd == -1 ? strerror(errno) : "not a regular file");
        goto fail;
    }
    buf = xmalloc(ENV_FILE_MAX_BYTES + 1);
    while (len <= ENV_FILE_MAX_BYTES &&
           (r = read(fd, buf + len, ENV_FILE_MAX_BYTES + 1 - len)) > 0) {
        len += (size_t)r;
    }
    if (len > ENV_FILE_MAX_BYTES) {
        err_set(err, "%s: larger than %u bytes", path, ENV_FILE_MAX_BYTES);
        goto fail;
    }
    if ((nl = memchr(buf, '\0', len)) != NULL) {
        for (line = buf, lineno = 1; line < nl; line++) {
            lineno += *line == '\n';
        }
        err_set(err, "%s:%zu: a NUL byte: the file must be text", path, lineno);
        goto fail;
    }
    buf[len] = '\0';
    for (line = buf; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl == NULL) {
            nl = line + strlen(line) - 1; /* the last line, without a newline */
        } else {
            *nl = '\0';
        }
        if (++lineno > ENV_FILE_MAX_LINES) {
            err_set(err, "%s: more than %d lines", path, ENV_FILE_MAX_LINES);
            goto fail;
        }
        if (strlen(line) > ENV_FILE_MAX_LINE) {
            err_set(err, "%s:%zu: line longer than %d bytes", path, lineno, ENV_FILE_MAX_LINE);
            goto fail;
        }
        if (file_line(f, line, lineno, err) == -1) {
            goto fail;
        }
    }
    close(fd);
    secret_wipe(buf, len);
    free(buf);
    return f;
fail:
    if (fd != -1) {
        close(fd);
    }
    if (buf != NULL) {
        secret_wipe(buf, len);
    }
    free(buf);
    env_file_free(f);
    return NULL;
}

char *
env_summary(const struct hp_config *cfg)
{
    char *out = xstrdup(""), *line, *next;
    size_t i;

#define ADD(...)                                                                                   \
    do {                                                                                           \
        line = xasprintf(__VA_ARGS__);                                                             \
        next = xasprintf("%s%s\n", out, line);                                                     \
        free(line);                                                                                \
        free(out);                                                                                 \
        out = next;                                                                                \
    } while (0)

    if (cfg->shared_key_file != NULL) {
        ADD("HP_SHARED_KEY_FILE=%s (key set, %s)", cfg->shared_key_file, "masked");
    } else {
        ADD("HP_SHARED_KEY=%s", cfg->shared_key != NULL ? "(set, masked)" : "(not set)");
    }
    for (i = 0; i < NVARS; i++) {
        const struct var *var = &vars[i];
        const void *f = (const char *)cfg + var->off;

        if (!(var->scopes & (1u << cfg->scope))) {
            continue;
        }
        switch (var->kind) {
        case V_STR:
        case V_URL:
        case V_ADDR:
            if (var->secret) {
                ADD("%s=%s", var->name, *(char *const *)f ? "(set, masked)" : "(not set)");
            } else {
                ADD("%s=%s", var->name, *(char *const *)f ? *(char *const *)f : "(not set)");
            }
            break;
        case V_BOOL:
        case V_BOOL_EXACT_TRUE:
            ADD("%s=%s", var->name, *(const bool *)f ? "true" : "false");
            break;
        case V_UINT:
            ADD("%s=%u", var->name, *(const unsigned *)f);
            break;
        case V_FLOAT:
            ADD("%s=%g", var->name, *(const double *)f);
            break;
        case V_LOGLEVEL:
            ADD("%s=%s", var->name, log_level_name(*(const enum log_level *)f));
            break;
        case V_TIME:
            ADD("%s=%llums", var->name, (unsigned long long)*(const uint64_t *)f);
            break;
        }
    }
#undef ADD
    return out;
}
