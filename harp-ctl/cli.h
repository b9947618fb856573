/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The operators' command line: options, talking to the daemon, output, exit codes. */
#ifndef HARP_CTL_CLI_H
#define HARP_CTL_CLI_H

#include <jansson.h>
#include <stdbool.h>

/* Exit codes of every command. */
enum cli_exit {
    CLI_OK = 0,
    CLI_REFUSED = 1,     /* the daemon answered with an error (not found, rejected key, ...) */
    CLI_USAGE = 2,       /* bad command line or configuration */
    CLI_UNREACHABLE = 3, /* no answer from the control plane */
};

#define CLI_MAX_ARGS 8

struct cli_opts {
    /* Flags that override environment variables, by variable name. */
    const char *state_dir;       /* HP_STATE_DIR */
    const char *control;         /* HP_CONTROL_ADDRESS */
    const char *log_level;       /* HP_LOG_LEVEL */
    const char *nc_url;          /* NC_INSTANCE_URL */
    const char *shared_key_file; /* HP_SHARED_KEY_FILE (and HP_SHARED_KEY ignored) */
    const char *for_seconds;     /* ban add --for */
    const char *port;            /* engine add --port */
    const char *address;         /* engine add --address */
    const char *frpc_dir;        /* engine add --frpc-dir */
    const char *server;          /* engine add/frpc --server */
    const char *public_url;      /* doctor --public-url */
    const char *read_timeout;    /* doctor --read-timeout */
    long timeout_s;              /* cli_call's timeout; 0: 30 s */
    const char *route;           /* exapp set --route */
    const char *timeouts[5];     /* exapp set --<kind>-timeout, in enum exapp_timeout order */
    const char *since;           /* audit log --since */
    const char *app;             /* audit log --app */
    const char *version;         /* audit proof --version */
    const char *out;             /* audit proof --out */
    const char *key;             /* audit check-proof --key */
    const char *before;          /* audit prune --before */
    bool json;
    bool help;
    bool allow_empty; /* serve --allow-empty */
    bool now;         /* certs rotate --now */
    const char *args[CLI_MAX_ARGS];
    int nargs;
    struct env_file *file; /* HP_ENV_FILE: between the flags and the environment */
};

struct hp_config;
/* The client configuration; the key falls back to $HP_STATE_DIR/shared_key. -1 after printing
 * why. */
int cli_config(struct cli_opts *opts, struct hp_config *cfg);

/* An env_lookup_cb: flags in <arg> (struct cli_opts) first, then the settings file, then the
 * environment. */
const char *cli_lookup(const char *name, void *arg);

/* Calls the daemon. Returns the HTTP status with *<out> the parsed JSON body (or NULL); -1
 * after printing why the daemon could not be reached, -2 after printing what is wrong with the
 * client's configuration. <body> may be NULL. */
long cli_call(struct cli_opts *opts, const char *method, const char *path, const char *body,
              json_t **out, char **text);
/* The exit code for cli_call's failures (-1, -2). */
int cli_failed(long status);
/* "/api/v1/<collection>", or "/api/v1/<collection>/<item>" with <item> escaped; free() it. */
char *cli_path(const char *collection, const char *item);
/* Prints the daemon's error answer and returns CLI_REFUSED. */
int cli_refused(long status, const char *text, const char *what);
void cli_print_json(const json_t *j);
/* Writes <content> to <dir>/<name> with <mode>; -1 after printing why. */
int cli_write_file(const char *dir, const char *name, const char *content, unsigned mode);
const char *cli_time(long long t, char *buf, size_t len);

int cli_main(int argc, char **argv);
int cli_exapp(struct cli_opts *opts);
int cli_dp(struct cli_opts *opts);
int cli_ban(struct cli_opts *opts);
int cli_engine(struct cli_opts *opts);
int cli_certs(struct cli_opts *opts);
int cli_tunnel(struct cli_opts *opts);
int cli_doctor(struct cli_opts *opts);
int cli_k8s(struct cli_opts *opts);
int cli_audit(struct cli_opts *opts);

#endif
