/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* HP_* configuration: HaRP's variables with their defaults and validation, plus harp's own.
 * One table drives parsing, defaults, command-line overrides and the start-up summary. */
#ifndef HARP_PROTO_ENV_H
#define HARP_PROTO_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "err.h"
#include "log.h"

#define ENV_MAX_WARNINGS 16
#define ENV_KEY_FILE_MAX 4096

/* Returns the value of <name> or NULL when unset. */
typedef const char *(*env_lookup_cb)(const char *name, void *arg);

enum env_scope {
    ENV_SERVE,  /* a daemon: everything is validated and NC_INSTANCE_URL is required */
    ENV_CLIENT, /* the CLI: only what it needs to reach the daemon; a missing key is allowed */
};

struct hp_config {
    enum env_scope scope;

    /* Shared key: exactly one of HP_SHARED_KEY / HP_SHARED_KEY_FILE (HaRP's start.sh rules). */
    char *shared_key;
    char *shared_key_file; /* NULL when the key came from HP_SHARED_KEY */

    char *nc_instance_url;
    char *nc_req_url; /* NC_INSTANCE_URL minus one trailing '/', then minus '/index.php' */
    char *exapps_address;
    char *exapps_https_address;
    char *frp_address;
    bool frp_disable_tls;
    unsigned frp_cert_validity_days;
    double cert_overlap_days;       /* HP_CERT_OVERLAP_DAYS */
    unsigned cert_lifetime_seconds; /* test-only; 0: HP_FRP_CERT_VALIDITY_DAYS */
    uint64_t frp_login_timeout_ms;  /* a session without a Login by then is closed */
    unsigned frp_max_pending;       /* sessions that have not logged in */
    unsigned audit_retention_days;  /* 0: the audit log is kept whole */
    char *trusted_proxy_ips;
    struct cidr_list *trusted; /* parsed from trusted_proxy_ips (ENV_SERVE) */
    enum log_level log_level;
    char *access_log;      /* HP_ACCESS_LOG: off, text or json (any case) */
    char *metrics_address; /* HP_METRICS_ADDRESS: "" for none */
    uint64_t timeout_connect_ms;
    uint64_t timeout_client_ms;
    uint64_t timeout_server_ms;
    uint64_t timeout_tunnel_ms;
    uint64_t timeout_head_ms;
    uint64_t drain_timeout_ms;   /* HP_DRAIN_TIMEOUT: a harp-dp handing over (upgrade) */
    unsigned max_connections;    /* 0: derived from RLIMIT_NOFILE */
    unsigned max_head_memory_mb; /* unfinished request heads, all connections */
    double session_lifetime;
    unsigned blacklist_window;
    unsigned blacklist_count; /* 0 disables bans */
    bool ban_reply_429;
    unsigned user_lookup_workers; /* threads calling Nextcloud's user-info */
    unsigned user_lookup_max;     /* user look-ups waiting or running; beyond, 503 at once */
    unsigned outbound_max;        /* harp-ctl's outbound HTTP calls at once (outbound.c) */

    bool k8s_enabled;
    char *k8s_api_server;
    char *k8s_namespace;
    char *k8s_ca_file;
    char *k8s_bearer_token;
    char *k8s_bearer_token_file;
    bool k8s_verify_ssl;
    char *k8s_storage_class; /* "" omits storageClassName */
    char *k8s_storage_size;
    char *k8s_host_aliases; /* host:ip,host2:ip2 */

    char *state_dir;
    char *control_address;
    char *ctl_socket;
    char *certs_dir;
    char *docker_socket;

    /* Normalisations and ignored values, for the caller to log. */
    char warnings[ENV_MAX_WARNINGS][256];
    int nwarnings;
};

/* Fills <cfg> from <lookup>. On failure returns -1 with <err> naming the variable and the
 * accepted values; <cfg> is then freed. */
int env_load(struct hp_config *cfg, enum env_scope scope, env_lookup_cb lookup, void *arg,
             struct hp_err *err);
void env_free(struct hp_config *cfg);

/* The effective settings, one "NAME=value" per line, secrets masked. Caller frees. */
char *env_summary(const struct hp_config *cfg);

/* "host:port", "[v6]:port" or ":port" (all addresses). 0, or -1 with <err>. */
int env_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port,
                       struct hp_err *err);
/* HAProxy time syntax: digits with an optional unit us, ms, s, m, h, d; bare digits are ms. */
int env_parse_time_ms(const char *s, uint64_t *ms);
/* HaRP's quote stripping: one leading and one trailing '"', then one leading and one
 * trailing '\''; each removal independent. Works in place. */
void env_strip_quotes(char *s);

/* Looks names up in the process environment. */
const char *env_getenv(const char *name, void *arg);

/* A settings file (HP_ENV_FILE): NAME=value lines as in harp.env (systemd's EnvironmentFile),
 * read at start and at each reload; its values override the process environment. Blank lines
 * and lines whose first non-blank character is '#' are skipped; a value is the rest of the
 * line, quotes and surrounding whitespace removed as for any variable (env_load); a later
 * line for the same name wins. Anything else is an error naming the file and the line. */
#define ENV_FILE_MAX_BYTES (1u << 20)
#define ENV_FILE_MAX_LINE 8192 /* bytes, without the newline */
#define ENV_FILE_MAX_LINES 4096
#define ENV_FILE_NAME_MAX 64

struct env_file;

/* Reads <path>: a new env_file, or NULL with <err> ("<path>:<line>: ..."). */
struct env_file *env_file_read(const char *path, struct hp_err *err);
/* The value of <name> in <f> (NULL: not in the file, or <f> NULL). */
const char *env_file_get(const struct env_file *f, const char *name);
/* The file's path as given to env_file_read(). */
const char *env_file_path(const struct env_file *f);
void env_file_free(struct env_file *f);

/* Reads a setting that a reload may change while other threads run (harp-ctl serve):
 * scalars are stored atomically and replaced strings are kept until exit (serve.c). */
#define ENV_LIVE(field) __atomic_load_n(&(field), __ATOMIC_ACQUIRE)

#endif
