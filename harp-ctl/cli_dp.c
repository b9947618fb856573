/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl dp list, harp-ctl tunnel list */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_dp[] =
    "usage: harp-ctl dp list [--json]\n"
    "\n"
    "Data planes connected to the control plane: id, pid, the table version each applied\n"
    "against the current one, how long connected and when last heard from.\n";

int
cli_dp(struct cli_opts *opts)
{
    const json_t *dps, *d;
    json_t *j;
    char *text;
    size_t i;
    long st;
    int rc = CLI_OK;

    if (opts->help || opts->nargs != 2 || strcmp(opts->args[1], "list") != 0) {
        fputs(usage_dp, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    st = cli_call(opts, "GET", "/api/v1/dataplanes", NULL, &j, &text);
    if (st < 0) {
        return cli_failed(st);
    }
    if (st != 200 || j == NULL) {
        rc = cli_refused(st, text, "dp list");
    } else if (opts->json) {
        cli_print_json(j);
    } else {
        dps = json_object_get(j, "dataplanes");
        printf("%-24s  %8s  %8s  %8s  %10s  %9s\n", "DATA PLANE", "PID", "APPLIED", "CURRENT",
               "CONNECTED", "SEEN");
        json_array_foreach(dps, i, d)
        {
            printf("%-24s  %8lld  %8lld  %8lld  %9.0fs  %7.1fs ago\n",
                   json_string_value(json_object_get(d, "dp_id")),
                   (long long)json_integer_value(json_object_get(d, "pid")),
                   (long long)json_integer_value(json_object_get(d, "applied_version")),
                   (long long)json_integer_value(json_object_get(d, "table_version")),
                   json_real_value(json_object_get(d, "connected_seconds")),
                   json_real_value(json_object_get(d, "seen_seconds_ago")));
        }
        if (json_array_size(dps) == 0) {
            printf("(no data plane connected)\n");
        }
    }
    json_decref(j);
    free(text);
    return rc;
}

static const char usage_tunnel[] =
    "usage: harp-ctl tunnel list [--json]\n"
    "\n"
    "FRP tunnels up: the proxy name frpc registered, its port on 127.0.0.1, the client's\n"
    "address, since when, and the data plane serving it.\n";

int
cli_tunnel(struct cli_opts *opts)
{
    const json_t *t;
    json_t *j;
    char *text, when[32];
    size_t i;
    long st;
    int rc = CLI_OK;

    if (opts->help || opts->nargs != 2 || strcmp(opts->args[1], "list") != 0) {
        fputs(usage_tunnel, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    st = cli_call(opts, "GET", "/api/v1/tunnels", NULL, &j, &text);
    if (st < 0) {
        return cli_failed(st);
    }
    if (st != 200 || j == NULL) {
        rc = cli_refused(st, text, "tunnel list");
    } else if (opts->json) {
        cli_print_json(j);
    } else {
        printf("%-24s  %5s  %-39s  %-20s  %s\n", "NAME", "PORT", "PEER", "SINCE", "DATA PLANE");
        json_array_foreach(json_object_get(j, "tunnels"), i, t)
        {
            printf("%-24s  %5lld  %-39s  %-20s  %s\n",
                   json_string_value(json_object_get(t, "name")),
                   (long long)json_integer_value(json_object_get(t, "port")),
                   json_string_value(json_object_get(t, "peer")),
                   cli_time(json_integer_value(json_object_get(t, "since")), when, sizeof(when)),
                   json_string_value(json_object_get(t, "dp_id")));
        }
        if (json_array_size(json_object_get(j, "tunnels")) == 0) {
            printf("(no tunnels)\n");
        }
    }
    json_decref(j);
    free(text);
    return rc;
}
