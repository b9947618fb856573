/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl exapp list | show ID | rm ID | set ID --<kind>-timeout D ... */
#include "config.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "exapp.h"
#include "xmalloc.h"

static const char usage_exapp[] =
    "usage: harp-ctl exapp list [--json]\n"
    "       harp-ctl exapp show ID [--json]\n"
    "       harp-ctl exapp rm ID\n"
    "       harp-ctl exapp set ID [--route URL] [--connect-timeout D] [--request-timeout D]\n"
    "                [--first-byte-timeout D] [--idle-timeout D] [--ws-idle-timeout D]\n"
    "\n"
    "ExApps registered by AppAPI (POST /exapp_storage). 'show' prints the routes with their\n"
    "access levels and the timeouts each gets, with where each comes from (default, app,\n"
    "route); tokens are never shown. 'rm' removes the ExApp as AppAPI's DELETE does.\n"
    "'set' sets timeouts of the ExApp, or of its route whose url pattern is URL; they survive\n"
    "AppAPI registering the app again. D is a duration from 1s to 24d (30s, 30m, 2h; digits\n"
    "alone are ms) or 'default'. connect: to the ExApp; request: client silence while it sends\n"
    "the body; first-byte: until the response begins; idle: silence between bytes of a\n"
    "(streaming) response; ws-idle: silence of a WebSocket or other upgraded connection.\n";

static const char *const kinds[] = {"connect", "request", "first_byte", "idle", "ws_idle"};

static void
print_timeouts(const char *indent, const json_t *eff)
{
    const json_t *t;
    char buf[32];
    size_t i;
    long long ms;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        t = json_object_get(eff, kinds[i]);
        ms = (long long)json_integer_value(json_object_get(t, "ms"));
        if (ms % 1000 != 0) {
            snprintf(buf, sizeof(buf), "%lldms", ms);
        } else if (ms % 3600000 == 0) {
            snprintf(buf, sizeof(buf), "%lldh", ms / 3600000);
        } else if (ms % 60000 == 0) {
            snprintf(buf, sizeof(buf), "%lldm", ms / 60000);
        } else {
            snprintf(buf, sizeof(buf), "%llds", ms / 1000);
        }
        printf("%s%-11s %-8s (%s)\n", indent, kinds[i], buf,
               json_string_value(json_object_get(t, "source")));
    }
}

static char *
bruteforce_text(const json_t *a)
{
    char *s = xstrdup(""), *n;
    const json_t *v;
    size_t i;

    json_array_foreach(a, i, v)
    {
        n = xasprintf("%s%s%lld", s, i ? "," : "", (long long)json_integer_value(v));
        free(s);
        s = n;
    }
    return s;
}

static int
print_list(const json_t *j)
{
    const json_t *apps = json_object_get(j, "exapps"), *a;
    int w_id = 6, w_ver = 7, w_host = 4;
    char tbuf[32];
    size_t i;

    json_array_foreach(apps, i, a)
    {
        int l;

        if ((l = (int)strlen(json_string_value(json_object_get(a, "app_id")))) > w_id) {
            w_id = l;
        }
        if ((l = (int)strlen(json_string_value(json_object_get(a, "exapp_version")))) > w_ver) {
            w_ver = l;
        }
        if ((l = (int)strlen(json_string_value(json_object_get(a, "host")))) > w_host) {
            w_host = l;
        }
    }
    printf("%-*s  %-*s  %-*s  %5s  %6s  %s\n", w_id, "APP ID", w_ver, "VERSION", w_host, "HOST",
           "PORT", "ROUTES", "UPDATED");
    json_array_foreach(apps, i, a)
    {
        printf("%-*s  %-*s  %-*s  %5lld  %6zu  %s\n", w_id,
               json_string_value(json_object_get(a, "app_id")), w_ver,
               json_string_value(json_object_get(a, "exapp_version")), w_host,
               json_string_value(json_object_get(a, "host")),
               (long long)json_integer_value(json_object_get(a, "port")),
               json_array_size(json_object_get(a, "routes")),
               cli_time(json_integer_value(json_object_get(a, "updated_at")), tbuf, sizeof(tbuf)));
    }
    if (json_array_size(apps) == 0) {
        printf("(no ExApps registered)\n");
    }
    return CLI_OK;
}

static int
print_one(const json_t *a)
{
    const json_t *routes = json_object_get(a, "routes"), *r, *eff, *k;
    char tbuf[32];
    size_t i;

    printf("app id:    %s\n", json_string_value(json_object_get(a, "app_id")));
    printf("version:   %s\n", json_string_value(json_object_get(a, "exapp_version")));
    printf("host:      %s\n", json_string_value(json_object_get(a, "host")));
    printf("port:      %lld\n", (long long)json_integer_value(json_object_get(a, "port")));
    if (json_object_get(a, "resolved_host") != NULL) {
        printf("resolved:  %s\n", json_string_value(json_object_get(a, "resolved_host")));
    }
    if ((k = json_object_get(a, "kubernetes")) != NULL) {
        printf("k8s:       %s, Service %s in namespace %s%s%s\n",
               json_string_value(json_object_get(k, "expose_type")),
               json_string_value(json_object_get(k, "service")),
               json_string_value(json_object_get(k, "namespace")),
               json_string_value(json_object_get(k, "node_name"))[0] ? ", node " : "",
               json_string_value(json_object_get(k, "node_name")));
    }
    printf("created:   %s\n",
           cli_time(json_integer_value(json_object_get(a, "created_at")), tbuf, sizeof(tbuf)));
    printf("updated:   %s\n",
           cli_time(json_integer_value(json_object_get(a, "updated_at")), tbuf, sizeof(tbuf)));
    printf("routes:    %zu\n", json_array_size(routes));
    if (json_array_size(routes) > 0) {
        printf("  %3s  %-6s  %-12s  %s\n", "#", "ACCESS", "BRUTEFORCE", "URL");
    }
    json_array_foreach(routes, i, r)
    {
        char *bf = bruteforce_text(json_object_get(r, "bruteforce_protection"));

        printf("  %3zu  %-6s  %-12s  %s\n", i,
               access_level_name(json_integer_value(json_object_get(r, "access_level"))),
               bf[0] ? bf : "-", json_string_value(json_object_get(r, "url")));
        free(bf);
    }
    eff = json_object_get(a, "effective_timeouts");
    if (eff != NULL) {
        printf("timeouts:\n");
        print_timeouts("  ", json_object_get(eff, "app"));
        json_array_foreach(json_object_get(eff, "routes"), i, r)
        {
            size_t j;
            bool own = false;

            for (j = 0; j < sizeof(kinds) / sizeof(kinds[0]); j++) {
                own = own || strcmp(json_string_value(
                                        json_object_get(json_object_get(r, kinds[j]), "source")),
                                    "route") == 0;
            }
            if (own) {
                printf("  route %zu (%s):\n", i, json_string_value(json_object_get(r, "url")));
                print_timeouts("    ", r);
            }
        }
    }
    return CLI_OK;
}

/* exapp set ID --<kind>-timeout D ...: one PUT with every value given. */
static int
set_timeouts(struct cli_opts *opts)
{
    json_t *to = json_object(), *body, *j;
    char *path, *text, *enc;
    long st;
    size_t i;
    int rc;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (opts->timeouts[i] != NULL) {
            json_object_set_new(to, kinds[i], json_string(opts->timeouts[i]));
        }
    }
    if (json_object_size(to) == 0) {
        json_decref(to);
        fputs(usage_exapp, stderr);
        return CLI_USAGE;
    }
    body = json_pack("{s:o}", "timeouts", to);
    if (opts->route != NULL) {
        json_object_set_new(body, "route", json_string(opts->route));
    }
    enc = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    path = cli_path("timeouts", opts->args[2]);
    st = cli_call(opts, "PUT", path, enc, &j, &text);
    free(path);
    free(enc);
    if (st < 0) {
        return cli_failed(st);
    }
    if (st == 200 && j != NULL) {
        rc = opts->json ? (cli_print_json(j), CLI_OK) : print_one(j);
    } else {
        rc = cli_refused(st, text, "exapp set");
    }
    json_decref(j);
    free(text);
    return rc;
}

int
cli_exapp(struct cli_opts *opts)
{
    const char *sub = opts->nargs > 1 ? opts->args[1] : "";
    json_t *j;
    char *text, *path;
    long st;
    int rc;
    bool list = strcmp(sub, "list") == 0 && opts->nargs == 2;
    bool show = strcmp(sub, "show") == 0 && opts->nargs == 3;
    bool rm = strcmp(sub, "rm") == 0 && opts->nargs == 3;
    bool set = strcmp(sub, "set") == 0 && opts->nargs == 3;

    if (opts->help || !(list || show || rm || set)) {
        fputs(usage_exapp, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    if (set) {
        return set_timeouts(opts);
    }
    path = cli_path("exapps", list ? NULL : opts->args[2]);
    st = cli_call(opts, rm ? "DELETE" : "GET", path, NULL, &j, &text);
    free(path);
    if (st < 0) {
        return cli_failed(st);
    }
    if (rm && st == 204) {
        printf("removed %s\n", opts->args[2]);
        rc = CLI_OK;
    } else if (st == 404 && !list) {
        fprintf(stderr, "harp-ctl: no ExApp '%s'\n", opts->args[2]);
        rc = CLI_REFUSED;
    } else if (st != 200 || j == NULL || rm) {
        rc = cli_refused(st, text, list ? "exapp list" : rm ? "exapp rm" : "exapp show");
    } else if (opts->json) {
        cli_print_json(j);
        rc = CLI_OK;
    } else {
        rc = list ? print_list(j) : print_one(j);
    }
    json_decref(j);
    free(text);
    return rc;
}
