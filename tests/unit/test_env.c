/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Configuration parsing: HaRP's variable rules (spec 1.2, 1.3) and harp's stricter validation:
 * every invalid value is an error naming the variable, quotes from compose files are removed
 * with a warning, secrets never reach the summary. */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env.h"
#include "tap.h"

struct kv {
    const char *k, *v;
};

static const char *
lookup(const char *name, void *arg)
{
    const struct kv *e;

    for (e = arg; e->k != NULL; e++) {
        if (strcmp(e->k, name) == 0) {
            return e->v;
        }
    }
    return NULL;
}

#define BASE                                                                                       \
    {"HP_SHARED_KEY", "secret"},                                                                   \
    {                                                                                              \
        "NC_INSTANCE_URL", "http://nc.local"                                                       \
    }

static int
load(struct hp_config *cfg, struct kv *env, struct hp_err *err)
{
    return env_load(cfg, ENV_SERVE, lookup, env, err);
}

/* Loads <env>, expects failure with <var> named in the message. */
static void
expect_error(struct kv *env, const char *var, const char *what)
{
    struct hp_config cfg;
    struct hp_err err = {""};
    int rc = load(&cfg, env, &err);

    OK(rc == -1 && strstr(err.msg, var) != NULL, "%s is rejected naming %s", what, var);
    if (rc == 0) {
        env_free(&cfg);
    } else if (strstr(err.msg, var) == NULL) {
        printf("#   message: %s\n", err.msg);
    }
}

static void
test_defaults(void)
{
    struct kv env[] = {BASE, {NULL, NULL}};
    struct hp_config cfg;
    struct hp_err err;

    IS_INT(load(&cfg, env, &err), 0, "minimal environment loads");
    IS_STR(cfg.shared_key, "secret", "key from HP_SHARED_KEY");
    IS_STR(cfg.exapps_address, "0.0.0.0:8780", "HP_EXAPPS_ADDRESS default");
    IS_STR(cfg.exapps_https_address, "0.0.0.0:8781", "HP_EXAPPS_HTTPS_ADDRESS default");
    IS_STR(cfg.frp_address, "0.0.0.0:8782", "HP_FRP_ADDRESS default");
    IS_STR(cfg.control_address, "127.0.0.1:8200", "HP_CONTROL_ADDRESS default");
    IS_STR(cfg.state_dir, "/var/lib/harp", "HP_STATE_DIR default");
    IS_STR(cfg.ctl_socket, "/var/lib/harp/ctl.sock", "HP_CTL_SOCKET follows the state dir");
    IS_STR(cfg.certs_dir, "/certs", "HP_CERTS_DIR default");
    IS_INT(cfg.timeout_connect_ms, 30000, "HP_TIMEOUT_CONNECT default 30s");
    IS_INT(cfg.timeout_server_ms, 1800000, "HP_TIMEOUT_SERVER default 1800s");
    IS_INT(cfg.timeout_tunnel_ms, 1800000, "HP_TIMEOUT_TUNNEL defaults to the server timeout");
    IS_INT(cfg.blacklist_count, 10, "HP_BLACKLIST_COUNT default");
    IS_INT(cfg.timeout_head_ms, 10000, "HP_TIMEOUT_HEAD default 10s");
    IS_INT(cfg.drain_timeout_ms, 300000, "HP_DRAIN_TIMEOUT default 5m");
    IS_INT(cfg.max_connections, 0, "HP_MAX_CONNECTIONS default 0 (from the fd limit)");
    IS_INT(cfg.max_head_memory_mb, 32, "HP_MAX_HEAD_MEMORY default 32 MiB");
    IS_INT(cfg.blacklist_window, 300, "HP_BLACKLIST_WINDOW default");
    OK(cfg.session_lifetime == 3.0, "HP_SESSION_LIFETIME default 3");
    IS_INT(cfg.frp_cert_validity_days, 5000, "HP_FRP_CERT_VALIDITY_DAYS default");
    OK(!cfg.frp_disable_tls, "FRP TLS on by default");
    IS_INT(cfg.log_level, LOG_LVL_WARNING, "HP_LOG_LEVEL default warning");
    OK(!cfg.k8s_enabled, "K8s off by default");
    IS_INT(cfg.nwarnings, 0, "no warnings for clean values");
    env_free(&cfg);
}

static void
test_nc_url(void)
{
    struct kv env1[] = {
        {"HP_SHARED_KEY", "k"}, {"NC_INSTANCE_URL", "https://a.b/index.php/"}, {NULL, NULL}};
    struct kv env2[] = {
        {"HP_SHARED_KEY", "k"}, {"NC_INSTANCE_URL", "\"https://a.b/\""}, {NULL, NULL}};
    struct kv missing[] = {{"HP_SHARED_KEY", "k"}, {NULL, NULL}};
    struct kv empty[] = {{"HP_SHARED_KEY", "k"}, {"NC_INSTANCE_URL", ""}, {NULL, NULL}};
    struct kv scheme[] = {{"HP_SHARED_KEY", "k"}, {"NC_INSTANCE_URL", "nc.local"}, {NULL, NULL}};
    struct hp_config cfg;
    struct hp_err err;

    IS_INT(load(&cfg, env1, &err), 0, "URL with /index.php/ loads");
    IS_STR(cfg.nc_req_url, "https://a.b", "one '/' then '/index.php' removed");
    env_free(&cfg);
    IS_INT(load(&cfg, env2, &err), 0, "quoted URL loads");
    IS_STR(cfg.nc_instance_url, "https://a.b/", "quotes stripped from NC_INSTANCE_URL");
    IS_INT(cfg.nwarnings, 1, "stripping quotes is a warning");
    OK(strstr(cfg.warnings[0], "NC_INSTANCE_URL") != NULL, "the warning names the variable");
    env_free(&cfg);
    expect_error(missing, "NC_INSTANCE_URL", "missing NC_INSTANCE_URL");
    expect_error(empty, "NC_INSTANCE_URL", "empty NC_INSTANCE_URL");
    expect_error(scheme, "NC_INSTANCE_URL", "URL without scheme");
}

static void
test_shared_key(void)
{
    struct kv both[] = {{"HP_SHARED_KEY", "a"},
                        {"HP_SHARED_KEY_FILE", "/tmp/x"},
                        {"NC_INSTANCE_URL", "http://n"},
                        {NULL, NULL}};
    struct kv none[] = {{"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv tab[] = {{"HP_SHARED_KEY", "a\tb"}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv utf[] = {
        {"HP_SHARED_KEY", "cl\xc3\xa9"}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv bs[] = {{"HP_SHARED_KEY", "a\\b"}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv dq[] = {{"HP_SHARED_KEY", "a\"b"}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv onlyq[] = {{"HP_SHARED_KEY", "\"\""}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv quoted[] = {
        {"HP_SHARED_KEY", "'\"abc\"'"}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv unpaired[] = {
        {"HP_SHARED_KEY", "\"abc"}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv apos[] = {{"HP_SHARED_KEY", "it's"}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv nofile[] = {
        {"HP_SHARED_KEY_FILE", "/nonexistent/key"}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    char path[] = "/tmp/harp-test-key-XXXXXX";
    struct kv file[] = {
        {"HP_SHARED_KEY_FILE", path}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct hp_config cfg;
    struct hp_err err;
    char *summary;
    int fd;

    expect_error(both, "HP_SHARED_KEY_FILE", "both key variables");
    expect_error(none, "HP_SHARED_KEY", "no key");
    expect_error(tab, "HP_SHARED_KEY", "a tab in the key");
    expect_error(utf, "HP_SHARED_KEY", "a non-ASCII key");
    expect_error(bs, "HP_SHARED_KEY", "a backslash in the key");
    expect_error(dq, "HP_SHARED_KEY", "a double quote inside the key");
    expect_error(onlyq, "HP_SHARED_KEY", "a key of quotes only");
    expect_error(nofile, "HP_SHARED_KEY_FILE", "a missing key file");

    /* HaRP strips '"' first (none at the ends), then '\'': "abc" is left, and '"' is
     * forbidden. */
    expect_error(quoted, "HP_SHARED_KEY", "'\"abc\"' (quotes left inside)");
    IS_INT(load(&cfg, unpaired, &err), 0, "unpaired quote loads");
    IS_STR(cfg.shared_key, "abc", "one leading quote removed on its own");
    env_free(&cfg);
    IS_INT(load(&cfg, apos, &err), 0, "apostrophe inside the key is allowed");
    IS_STR(cfg.shared_key, "it's", "apostrophe kept");
    summary = env_summary(&cfg);
    OK(strstr(summary, "it's") == NULL, "the summary never shows the key");
    OK(strstr(summary, "HP_SHARED_KEY=(set, masked)") != NULL, "the summary says it is set");
    free(summary);
    env_free(&cfg);

    fd = mkstemp(path);
    OK(write(fd, "filekey\n\n", 9) == 9, "key file written");
    close(fd);
    IS_INT(load(&cfg, file, &err), 0, "key from HP_SHARED_KEY_FILE");
    IS_STR(cfg.shared_key, "filekey", "all trailing newlines removed");
    env_free(&cfg);
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    expect_error(file, "HP_SHARED_KEY_FILE", "an empty key file");
    fd = open(path, O_WRONLY | O_TRUNC);
    OK(write(fd, "crlf\r\n", 6) == 6, "CRLF key file written");
    close(fd);
    expect_error(file, "HP_SHARED_KEY_FILE", "a key file ending in CRLF (CR fails ASCII)");
    unlink(path);
}

/* Key files that cut the key short, block the start, or are open to other users (issue
 * 12.15). */
static void
test_key_file_hazards(void)
{
    char dir[] = "/tmp/harp-test-keys-XXXXXX", path[64], fifo[64];
    struct kv file[] = {
        {"HP_SHARED_KEY_FILE", path}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct kv pipe[] = {
        {"HP_SHARED_KEY_FILE", fifo}, {"NC_INSTANCE_URL", "http://n"}, {NULL, NULL}};
    struct hp_config cfg;
    struct hp_err err;
    int fd, rc;

    OK(mkdtemp(dir) != NULL, "temp dir");
    snprintf(path, sizeof(path), "%s/key", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    OK(write(fd, "abc\0defghij\n", 12) == 12, "a key file with a NUL written");
    close(fd);
    IS_INT(load(&cfg, file, &err), -1, "a NUL byte is refused, not a key cut short");
    OK(strstr(err.msg, "HP_SHARED_KEY_FILE") && strstr(err.msg, "NUL byte at offset 3"),
       "saying where: %s", err.msg);

    OK(mkfifo(fifo, 0600) == 0, "a FIFO");
    alarm(20); /* a blocking open would otherwise hang here for good */
    rc = load(&cfg, pipe, &err);
    alarm(0);
    IS_INT(rc, -1, "a FIFO is refused without blocking");
    OK(strstr(err.msg, "not a regular file") != NULL, "saying why: %s", err.msg);

    fd = open(path, O_WRONLY | O_TRUNC);
    OK(write(fd, "filekey\n", 8) == 8, "a plain key file");
    close(fd);
    chmod(path, 0644);
    IS_INT(load(&cfg, file, &err), 0, "a world-readable key file loads");
    IS_INT(cfg.nwarnings, 1, "with a warning");
    OK(cfg.nwarnings == 1 && strstr(cfg.warnings[0], path) && strstr(cfg.warnings[0], "0644"),
       "naming the file and its mode");
    env_free(&cfg);
    chmod(path, 0620);
    IS_INT(load(&cfg, file, &err), 0, "a group-writable key file loads");
    IS_INT(cfg.nwarnings, 1, "with a warning");
    env_free(&cfg);
    chmod(path, 0640);
    IS_INT(load(&cfg, file, &err), 0, "a key file readable by its group loads");
    IS_INT(cfg.nwarnings, 0, "without a warning");
    env_free(&cfg);
    unlink(path);
    unlink(fifo);
    rmdir(dir);
}

static void
test_values(void)
{
    struct kv lvl[] = {BASE, {"HP_LOG_LEVEL", "verbose"}, {NULL, NULL}};
    struct kv lt[] = {BASE, {"HP_SESSION_LIFETIME", "11"}, {NULL, NULL}};
    struct kv ln[] = {BASE, {"HP_SESSION_LIFETIME", "abc"}, {NULL, NULL}};
    struct kv bw[] = {BASE, {"HP_BLACKLIST_WINDOW", "5m"}, {NULL, NULL}};
    struct kv bc[] = {BASE, {"HP_BLACKLIST_COUNT", "-1"}, {NULL, NULL}};
    struct kv cd[] = {BASE, {"HP_FRP_CERT_VALIDITY_DAYS", "0"}, {NULL, NULL}};
    struct kv to[] = {BASE, {"HP_TIMEOUT_CLIENT", "30 s"}, {NULL, NULL}};
    struct kv th[] = {BASE, {"HP_TIMEOUT_HEAD", "10x"}, {NULL, NULL}};
    struct kv mc[] = {BASE, {"HP_MAX_CONNECTIONS", "-5"}, {NULL, NULL}};
    struct kv mh[] = {BASE, {"HP_MAX_HEAD_MEMORY", "0"}, {NULL, NULL}};
    struct kv ad[] = {BASE, {"HP_EXAPPS_ADDRESS", "0.0.0.0"}, {NULL, NULL}};
    struct kv ap[] = {BASE, {"HP_FRP_ADDRESS", "0.0.0.0:70000"}, {NULL, NULL}};
    struct kv k8[] = {BASE, {"HP_K8S_ENABLED", "maybe"}, {NULL, NULL}};
    struct kv ok[] = {BASE,
                      {"HP_LOG_LEVEL", "DEBUG"},
                      {"HP_SESSION_LIFETIME", "0.5"},
                      {"HP_BLACKLIST_COUNT", "0"},
                      {"HP_TIMEOUT_CONNECT", "1500"},
                      {"HP_TIMEOUT_CLIENT", "2m"},
                      {"HP_TIMEOUT_SERVER", "10us"},
                      {"HP_TIMEOUT_TUNNEL", "0s"},
                      {"HP_TIMEOUT_HEAD", "2s"},
                      {"HP_DRAIN_TIMEOUT", "1h"},
                      {"HP_MAX_CONNECTIONS", "500"},
                      {"HP_MAX_HEAD_MEMORY", "4"},
                      {"HP_EXAPPS_ADDRESS", "[::]:8780"},
                      {"HP_FRP_DISABLE_TLS", "True"},
                      {"HP_K8S_ENABLED", "Yes"},
                      {"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
                      {"HP_BLACKLIST_WINDOW", " \"60\" "},
                      {NULL, NULL}};
    struct hp_config cfg;
    struct hp_err err;

    expect_error(lvl, "HP_LOG_LEVEL", "an unknown log level");
    expect_error(lt, "HP_SESSION_LIFETIME", "a session lifetime above 10");
    expect_error(ln, "HP_SESSION_LIFETIME", "a non-numeric session lifetime");
    expect_error(bw, "HP_BLACKLIST_WINDOW", "a window with a unit");
    expect_error(bc, "HP_BLACKLIST_COUNT", "a negative count");
    expect_error(cd, "HP_FRP_CERT_VALIDITY_DAYS", "zero validity days");
    expect_error(to, "HP_TIMEOUT_CLIENT", "a time with a space");
    expect_error(th, "HP_TIMEOUT_HEAD", "a head timeout with an unknown unit");
    expect_error(mc, "HP_MAX_CONNECTIONS", "a negative connection cap");
    expect_error(mh, "HP_MAX_HEAD_MEMORY", "no memory for heads at all");
    expect_error(ad, "HP_EXAPPS_ADDRESS", "an address without port");
    expect_error(ap, "HP_FRP_ADDRESS", "a port above 65535");
    expect_error(k8, "HP_K8S_ENABLED", "a non-boolean K8s switch");

    IS_INT(load(&cfg, ok, &err), 0, "valid values load");
    IS_INT(cfg.log_level, LOG_LVL_DEBUG, "log level is case-insensitive");
    OK(cfg.session_lifetime == 0.5, "fractional session lifetime");
    IS_INT(cfg.blacklist_count, 0, "count 0 accepted (bans disabled)");
    IS_INT(cfg.timeout_connect_ms, 1500, "bare number is milliseconds");
    IS_INT(cfg.timeout_client_ms, 120000, "2m");
    IS_INT(cfg.timeout_server_ms, 1, "10us rounds up to 1 ms");
    IS_INT(cfg.timeout_tunnel_ms, 24LL * 86400000, "tunnel 0s means 24d");
    IS_INT(cfg.timeout_head_ms, 2000, "HP_TIMEOUT_HEAD 2s");
    IS_INT(cfg.drain_timeout_ms, 3600000, "HP_DRAIN_TIMEOUT 1h");
    IS_INT(cfg.max_connections, 500, "HP_MAX_CONNECTIONS 500");
    IS_INT(cfg.max_head_memory_mb, 4, "HP_MAX_HEAD_MEMORY 4");
    IS_STR(cfg.exapps_address, "[::]:8780", "IPv6 bind address");
    OK(!cfg.frp_disable_tls, "only the exact 'true' disables FRP TLS");
    OK(cfg.k8s_enabled, "K8s switch accepts Yes");
    IS_STR(cfg.k8s_api_server, "https://10.0.0.1:443", "K8s API from KUBERNETES_SERVICE_HOST");
    IS_INT(cfg.blacklist_window, 60, "quotes and spaces removed from a number");
    IS_INT(cfg.nwarnings, 2, "two warnings: the TLS switch and the quoted window");
    env_free(&cfg);
}

static void
test_hostport(void)
{
    char host[64];
    unsigned port;
    struct hp_err err;
    uint64_t ms;

    IS_INT(env_parse_hostport("127.0.0.1:8200", host, sizeof(host), &port, &err), 0, "v4");
    IS_STR(host, "127.0.0.1", "v4 host");
    IS_INT(port, 8200, "v4 port");
    IS_INT(env_parse_hostport("[::1]:80", host, sizeof(host), &port, &err), 0, "v6");
    IS_STR(host, "::1", "v6 host without brackets");
    IS_INT(env_parse_hostport(":8780", host, sizeof(host), &port, &err), 0, "empty host");
    IS_STR(host, "0.0.0.0", "empty host means all addresses");
    IS_INT(env_parse_hostport("h:0", host, sizeof(host), &port, &err), -1, "port 0 refused");
    IS_INT(env_parse_hostport("h:8a", host, sizeof(host), &port, &err), -1, "port 8a refused");
    IS_INT(env_parse_hostport("[::1]80", host, sizeof(host), &port, &err), -1, "v6 w/o colon");
    IS_INT(env_parse_time_ms("", &ms), -1, "empty time refused");
    IS_INT(env_parse_time_ms("1d", &ms), 0, "1d");
    IS_INT(ms, 86400000, "1d in ms");
    IS_INT(env_parse_time_ms("99999999999999999999", &ms), -1, "overflow refused");
}

static void
test_client_scope(void)
{
    struct kv env[] = {{"HP_STATE_DIR", "/srv/h"}, {NULL, NULL}};
    struct hp_config cfg;
    struct hp_err err;

    IS_INT(env_load(&cfg, ENV_CLIENT, lookup, env, &err), 0, "client scope needs no key or URL");
    OK(cfg.shared_key == NULL, "no key loaded");
    IS_STR(cfg.ctl_socket, "/srv/h/ctl.sock", "socket under the state dir");
    env_free(&cfg);
}

static void
test_trusted_proxies(void)
{
    struct kv env[] = {
        BASE, {"HP_TRUSTED_PROXY_IPS", "'10.0.0.0/8', 192.168.1.7/24, bogus"}, {NULL, NULL}};
    struct hp_config cfg;
    struct hp_err err;
    int i;
    bool q = false, m = false, inv = false;

    IS_INT(load(&cfg, env, &err), 0, "lenient list loads");
    IS_INT(cfg.trusted->n, 2, "two networks");
    for (i = 0; i < cfg.nwarnings; i++) {
        q |= strstr(cfg.warnings[i], "quotes removed from 10.0.0.0/8") != NULL;
        m |= strstr(cfg.warnings[i], "host bits masked in 192.168.1.7/24") != NULL;
        inv |= strstr(cfg.warnings[i], "1 invalid entries ignored: bogus") != NULL;
    }
    OK(q && m && inv, "dequoted, masked and invalid entries reported");
    env_free(&cfg);
}

/* Writes <n> bytes of <text> to <path>. */
static void
put(const char *path, const char *text, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    OK(fd != -1 && write(fd, text, n) == (ssize_t)n, "%zu bytes written", n);
    close(fd);
}

static void
file_refused(const char *path, const char *text, size_t n, const char *want, const char *what)
{
    struct env_file *f;
    struct hp_err err;

    put(path, text, n);
    f = env_file_read(path, &err);
    OK(f == NULL, "refused: %s", what);
    OK(f == NULL && strstr(err.msg, path) != NULL && strstr(err.msg, want) != NULL,
       "the error names the file and says \"%s\": %s", want, f == NULL ? err.msg : "");
    env_file_free(f);
}

/* The settings file (HP_ENV_FILE): harp.env's syntax, its limits, errors with file and line. */
static void
test_env_file(void)
{
    char dir[] = "/tmp/harp-test-envfile-XXXXXX", path[64], *big;
    static const char good[] = "# harp settings\n"
                               "\n"
                               "   # indented comment\n"
                               "HP_LOG_LEVEL=debug\n"
                               "NC_INSTANCE_URL = \"http://nc.example\"\r\n"
                               "HP_TIMEOUT_SERVER=1s\n"
                               "HP_TIMEOUT_SERVER=2s\n"
                               "HP_TRUSTED_PROXY_IPS=\n"
                               "HP_SHARED_KEY=filekey";
    struct env_file *f;
    struct hp_config cfg;
    struct hp_err err;
    size_t n;

    OK(mkdtemp(dir) != NULL, "temp dir");
    snprintf(path, sizeof(path), "%s/harp.env", dir);
    put(path, good, sizeof(good) - 1);
    f = env_file_read(path, &err);
    OK(f != NULL, "a harp.env file reads");
    IS_STR(env_file_get(f, "HP_LOG_LEVEL"), "debug", "a value");
    IS_STR(env_file_get(f, "NC_INSTANCE_URL"), " \"http://nc.example\"",
           "spaces around '=' allowed, the value as written, without the CR");
    IS_STR(env_file_get(f, "HP_TIMEOUT_SERVER"), "2s", "a later line wins");
    IS_STR(env_file_get(f, "HP_TRUSTED_PROXY_IPS"), "", "an empty value");
    IS_STR(env_file_get(f, "HP_SHARED_KEY"), "filekey", "the last line without a newline");
    OK(env_file_get(f, "HP_STATE_DIR") == NULL, "an absent name");
    OK(env_file_get(NULL, "HP_STATE_DIR") == NULL, "no file");
    IS_STR(env_file_path(f), path, "its path");
    {
        struct kv env[] = {{"HP_SHARED_KEY", env_file_get(f, "HP_SHARED_KEY")},
                           {"NC_INSTANCE_URL", env_file_get(f, "NC_INSTANCE_URL")},
                           {NULL, NULL}};

        IS_INT(load(&cfg, env, &err), 0, "its values load as variables");
        IS_STR(cfg.nc_instance_url, "http://nc.example", "quotes and spaces removed as for any");
        env_free(&cfg);
    }
    env_file_free(f);

    file_refused(path, "HP_LOG_LEVEL=debug\nnot a setting\n", 32, ":2: expected NAME=value",
                 "a line without '='");
    file_refused(path, "1HP=x\n", 6, ":1: a name is letters", "a name starting with a digit");
    file_refused(path, "HP-X=x\n", 7, ":1: a name is letters", "a name with '-'");
    file_refused(path, "=x\n", 3, ":1: a name is letters", "no name");
    file_refused(path, "export HP_X=1\n", 14, ":1: a name is letters", "shell syntax");
    file_refused(path, "A=1\nB=2\0\n", 9, ":2: a NUL byte", "a NUL byte");
    big = malloc(ENV_FILE_MAX_BYTES + 2);
    memset(big, '#', ENV_FILE_MAX_BYTES + 1);
    for (n = 1000; n < ENV_FILE_MAX_BYTES; n += 1000) {
        big[n] = '\n';
    }
    file_refused(path, big, ENV_FILE_MAX_BYTES + 1, "larger than", "one byte past the size");
    put(path, big, ENV_FILE_MAX_BYTES);
    f = env_file_read(path, &err);
    OK(f != NULL, "a file of the largest size reads");
    env_file_free(f);
    memset(big, 'A', ENV_FILE_MAX_LINE + 3);
    big[0] = 'X', big[1] = '=', big[ENV_FILE_MAX_LINE + 1] = '\n';
    file_refused(path, big, ENV_FILE_MAX_LINE + 2, ":1: line longer than", "a line one past");
    big[ENV_FILE_MAX_LINE] = '\n';
    put(path, big, ENV_FILE_MAX_LINE + 1);
    f = env_file_read(path, &err);
    OK(f != NULL, "the longest line reads");
    env_file_free(f);
    memset(big, '\n', ENV_FILE_MAX_LINES + 1);
    file_refused(path, big, ENV_FILE_MAX_LINES + 1, "more than", "one line past the count");
    put(path, big, ENV_FILE_MAX_LINES);
    f = env_file_read(path, &err);
    OK(f != NULL, "the most lines read");
    env_file_free(f);
    memset(big, 'N', ENV_FILE_NAME_MAX + 3);
    big[ENV_FILE_NAME_MAX + 1] = '=';
    file_refused(path, big, ENV_FILE_NAME_MAX + 2, "name longer than", "a name one past");
    free(big);
    unlink(path);
    f = env_file_read(path, &err);
    OK(f == NULL && strstr(err.msg, "cannot read") != NULL, "a missing file: %s", err.msg);
    OK(mkfifo(path, 0600) == 0, "a FIFO");
    alarm(20);
    f = env_file_read(path, &err);
    alarm(0);
    OK(f == NULL && strstr(err.msg, "not a regular file") != NULL, "a FIFO is refused");
    unlink(path);
    rmdir(dir);
}

int
main(void)
{
    test_env_file();
    test_trusted_proxies();
    test_defaults();
    test_nc_url();
    test_shared_key();
    test_key_file_hazards();
    test_values();
    test_hostport();
    test_client_scope();
    return tap_done();
}
