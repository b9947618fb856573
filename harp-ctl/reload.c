/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Reloads (reload.h). The settings are loaded anew exactly as at start (env_load through the
 * same lookup: command-line options, then HP_ENV_FILE read again, then the environment) into a
 * separate hp_config; an invalid file or value refuses the whole reload. The two effective
 * summaries (env_summary, secrets masked) are compared line by line: a setting of <live>
 * changes now, any other is reported as needing a restart. Secrets are compared apart, in
 * constant time, and never logged.
 *
 * Other threads read the live settings without a lock: scalars are stored atomically
 * (ENV_LIVE reads them), a replaced string stays allocated until exit (ctl->retired), so a
 * reader holding the old pointer is never left with freed memory.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reload.h"
#include "secret.h"
#include "xmalloc.h"

/* What a reload changes without a restart. */
static const char *const live[] = {
    "NC_INSTANCE_URL",     "HP_TRUSTED_PROXY_IPS", "HP_LOG_LEVEL",      "HP_TIMEOUT_CONNECT",
    "HP_TIMEOUT_CLIENT",   "HP_TIMEOUT_SERVER",    "HP_TIMEOUT_TUNNEL", "HP_TIMEOUT_HEAD",
    "HP_BLACKLIST_WINDOW", "HP_BLACKLIST_COUNT",   "HP_BAN_REPLY_429",  "HP_AUDIT_RETENTION_DAYS",
};

static bool
is_live(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (strcmp(live[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* The value of <name> in an env_summary() text, in a new string; NULL when absent. */
static char *
summary_value(const char *summary, const char *name)
{
    size_t n = strlen(name);
    const char *p = summary, *end;

    while (*p != '\0') {
        end = strchr(p, '\n');
        if (end == NULL) {
            end = p + strlen(p);
        }
        if ((size_t)(end - p) > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            return xstrndup(p + n + 1, (size_t)(end - p - (ptrdiff_t)n - 1));
        }
        p = *end == '\n' ? end + 1 : end;
    }
    return NULL;
}

/* A value as logged: whole seconds for times ("1800000ms" -> "1800s"), a URL's user
 * information masked. Caller frees. */
static char *
shown(const char *v)
{
    unsigned long long ms;
    const char *scheme, *at, *slash;
    char unit[3];
    int used = 0;

    if (sscanf(v, "%llu%2[ms]%n", &ms, unit, &used) == 2 && v[used] == '\0' &&
        strcmp(unit, "ms") == 0 && ms % 1000 == 0) {
        return xasprintf("%llus", ms / 1000);
    }
    if ((scheme = strstr(v, "://")) != NULL && (at = strchr(scheme + 3, '@')) != NULL &&
        ((slash = strchr(scheme + 3, '/')) == NULL || at < slash)) {
        return xasprintf("%.*s(masked)%s", (int)(scheme + 3 - v), v, at);
    }
    return xstrdup(v);
}

static void
retire(struct ctl *ctl, void *p)
{
    ctl->retired = xrealloc(ctl->retired, (ctl->nretired + 1) * sizeof(*ctl->retired));
    ctl->retired[ctl->nretired++] = p;
}

/* Replaces the string <*cur> with <*next> (taken) when they differ. */
static void
swap_str(struct ctl *ctl, char **cur, char **next)
{
    char *old = *cur;

    if (old != NULL && *next != NULL && strcmp(old, *next) == 0) {
        return;
    }
    __atomic_store_n(cur, *next, __ATOMIC_RELEASE);
    *next = NULL;
    retire(ctl, old);
}

/* Makes the live settings of <nc> those of ctl->cfg (strings taken out of <nc>). */
static void
apply(struct ctl *ctl, struct hp_config *nc)
{
    struct hp_config *c = &ctl->cfg;
    struct cidr_list *old;

    __atomic_store_n(&c->log_level, nc->log_level, __ATOMIC_RELEASE);
    log_set_level(nc->log_level);
    __atomic_store_n(&c->timeout_connect_ms, nc->timeout_connect_ms, __ATOMIC_RELEASE);
    __atomic_store_n(&c->timeout_client_ms, nc->timeout_client_ms, __ATOMIC_RELEASE);
    __atomic_store_n(&c->timeout_server_ms, nc->timeout_server_ms, __ATOMIC_RELEASE);
    __atomic_store_n(&c->timeout_tunnel_ms, nc->timeout_tunnel_ms, __ATOMIC_RELEASE);
    __atomic_store_n(&c->timeout_head_ms, nc->timeout_head_ms, __ATOMIC_RELEASE);
    __atomic_store_n(&c->blacklist_window, nc->blacklist_window, __ATOMIC_RELEASE);
    __atomic_store_n(&c->blacklist_count, nc->blacklist_count, __ATOMIC_RELEASE);
    __atomic_store_n(&c->ban_reply_429, nc->ban_reply_429, __ATOMIC_RELEASE);
    __atomic_store_n(&c->audit_retention_days, nc->audit_retention_days, __ATOMIC_RELEASE);
    if (strcmp(c->nc_instance_url, nc->nc_instance_url) != 0) {
        swap_str(ctl, &c->nc_req_url, &nc->nc_req_url);
        swap_str(ctl, &c->nc_instance_url, &nc->nc_instance_url);
    }
    if (strcmp(c->trusted_proxy_ips, nc->trusted_proxy_ips) != 0) {
        swap_str(ctl, &c->trusted_proxy_ips, &nc->trusted_proxy_ips);
        old = c->trusted;
        __atomic_store_n(&c->trusted, nc->trusted, __ATOMIC_RELEASE);
        nc->trusted = NULL;
        retire(ctl, old);
    }
}

void
reload_settings(struct ctl *ctl, struct msg_settings *s)
{
    const struct hp_config *c = &ctl->cfg;
    uint64_t ms[] = {ENV_LIVE(c->timeout_connect_ms), ENV_LIVE(c->timeout_client_ms),
                     ENV_LIVE(c->timeout_server_ms), ENV_LIVE(c->timeout_tunnel_ms),
                     ENV_LIVE(c->timeout_head_ms)};
    size_t i;

    for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        ms[i] = ms[i] > (uint64_t)MSG_TIMEOUT_MS_MAX ? (uint64_t)MSG_TIMEOUT_MS_MAX : ms[i];
    }
    memset(s, 0, sizeof(*s));
    s->log_level = ENV_LIVE(c->log_level);
    s->timeout_connect_ms = (int64_t)ms[0];
    s->timeout_client_ms = (int64_t)ms[1];
    s->timeout_server_ms = (int64_t)ms[2];
    s->timeout_tunnel_ms = (int64_t)ms[3];
    s->timeout_head_ms = (int64_t)ms[4];
    s->trusted_proxy_ips = xstrdup(ENV_LIVE(c->trusted_proxy_ips));
    s->ban_reply_429 = ENV_LIVE(c->ban_reply_429);
}

static bool
secret_changed(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a != b;
    }
    return !secret_equal(a, strlen(a), b);
}

static void
need_restart(json_t *restart, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(restart, i, v)
    {
        if (strcmp(json_string_value(v), name) == 0) {
            return;
        }
    }
    log_notice("reload: %s changed: needs a restart", name);
    json_array_append_new(restart, json_string(name));
}

/* Compares the running settings with <nc>: the report, each change logged. */
static json_t *
diff(const struct hp_config *cur, const struct hp_config *nc)
{
    char *olds = env_summary(cur), *news = env_summary(nc), *line, *save = NULL, *name, *eq;
    char *from, *to, *a, *b;
    json_t *lives = json_array(), *restart = json_array();

    for (line = strtok_r(news, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if ((eq = strchr(line, '=')) == NULL) {
            continue;
        }
        name = xstrndup(line, (size_t)(eq - line));
        to = xstrdup(eq + 1);
        from = summary_value(olds, name);
        if (from == NULL || strcmp(from, to) != 0) {
            if (is_live(name)) {
                a = shown(from != NULL ? from : "");
                b = shown(to);
                log_notice("reload: %s %s -> %s (live)", name, a, b);
                json_array_append_new(lives,
                                      json_pack("{s:s,s:s,s:s}", "name", name, "from", a, "to", b));
                free(a);
                free(b);
            } else {
                need_restart(restart, name);
            }
        }
        free(name);
        free(from);
        free(to);
    }
    if (secret_changed(cur->shared_key, nc->shared_key)) {
        need_restart(restart, nc->shared_key_file != NULL ? "HP_SHARED_KEY_FILE" : "HP_SHARED_KEY");
    }
    if (secret_changed(cur->k8s_bearer_token, nc->k8s_bearer_token)) {
        need_restart(restart, "HP_K8S_BEARER_TOKEN");
    }
    free(olds);
    free(news);
    return json_pack("{s:o,s:o}", "live", lives, "restart", restart);
}

json_t *
reload_run(struct ctl *ctl, struct hp_err *err)
{
    char *path;
    struct env_file *file = NULL, *old;
    struct hp_config nc;
    struct msg_settings s;
    json_t *report;
    int i;

    pthread_mutex_lock(&ctl->reload_mtx);
    path = ctl->file != NULL && *ctl->file != NULL ? xstrdup(env_file_path(*ctl->file))
           : getenv("HP_ENV_FILE") != NULL         ? xstrdup(getenv("HP_ENV_FILE"))
                                                   : xstrdup("");
    if (path[0] != '\0' && (file = env_file_read(path, err)) == NULL) {
        log_errorx("reload: HP_ENV_FILE: %s: the running settings stay", err->msg);
        free(path);
        pthread_mutex_unlock(&ctl->reload_mtx);
        return NULL;
    }
    old = ctl->file != NULL ? *ctl->file : NULL;
    if (ctl->file != NULL) {
        *ctl->file = file;
    }
    if (env_load(&nc, ENV_SERVE, ctl->lookup, ctl->lookup_arg, err) == -1) {
        if (ctl->file != NULL) {
            *ctl->file = old;
        }
        env_file_free(file);
        free(path);
        log_errorx("reload: %s: the running settings stay", err->msg);
        pthread_mutex_unlock(&ctl->reload_mtx);
        return NULL;
    }
    env_file_free(ctl->file != NULL ? old : file);
    log_notice("reload: settings read again from %s", path[0] != '\0' ? path : "the environment");
    free(path);
    for (i = 0; i < nc.nwarnings; i++) {
        log_warnx("reload: config: %s", nc.warnings[i]);
    }
    report = diff(&ctl->cfg, &nc);
    apply(ctl, &nc);
    env_free(&nc);
    if (json_array_size(json_object_get(report, "live")) == 0 &&
        json_array_size(json_object_get(report, "restart")) == 0) {
        log_notice("reload: no setting changed");
    }
    reload_settings(ctl, &s);
    publish_settings(ctl->pub, &s);
    free(s.trusted_proxy_ips);
    pthread_mutex_unlock(&ctl->reload_mtx);
    return report;
}

void
reload_free(struct ctl *ctl)
{
    size_t i;

    for (i = 0; i < ctl->nretired; i++) {
        free(ctl->retired[i]);
    }
    free(ctl->retired);
    ctl->retired = NULL;
    ctl->nretired = 0;
}
