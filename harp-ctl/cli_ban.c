/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl ban list | add IP [--for SECONDS] | rm IP */
#include "config.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "xmalloc.h"

static const char usage_ban[] =
    "usage: harp-ctl ban list [--json]\n"
    "       harp-ctl ban add IP [--for SECONDS]\n"
    "       harp-ctl ban rm IP\n"
    "\n"
    "Client IPs banned after HP_BLACKLIST_COUNT failures within HP_BLACKLIST_WINDOW seconds,\n"
    "counted over every data plane, or by an operator. Banned clients get no answer (or 429\n"
    "with HP_BAN_REPLY_429); callers with the valid shared key are never banned.\n";

int
cli_ban(struct cli_opts *opts)
{
    const char *sub = opts->nargs > 1 ? opts->args[1] : "";
    bool list = strcmp(sub, "list") == 0 && opts->nargs == 2;
    bool add = strcmp(sub, "add") == 0 && opts->nargs == 3;
    bool rm = strcmp(sub, "rm") == 0 && opts->nargs == 3;
    const json_t *b;
    json_t *j, *body;
    char *text, *path, *req = NULL, tbuf[32], *end;
    size_t i;
    long st;
    int rc = CLI_OK;

    if (opts->help || !(list || add || rm) || (opts->for_seconds != NULL && !add)) {
        fputs(usage_ban, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    if (add) {
        body = json_pack("{s:s}", "ip", opts->args[2]);
        if (opts->for_seconds != NULL) {
            long long n = strtoll(opts->for_seconds, &end, 10);

            if (*end != '\0' || n < 1) {
                fprintf(stderr, "harp-ctl: --for takes a number of seconds\n");
                json_decref(body);
                return CLI_USAGE;
            }
            json_object_set_new(body, "seconds", json_integer(n));
        }
        req = json_dumps(body, JSON_COMPACT);
        json_decref(body);
    }
    path = cli_path("bans", rm ? opts->args[2] : NULL);
    st = cli_call(opts, list ? "GET" : add ? "POST" : "DELETE", path, req, &j, &text);
    free(path);
    free(req);
    if (st < 0) {
        return cli_failed(st);
    }
    if (add && st == 201) {
        printf("banned %s until %s\n", json_string_value(json_object_get(j, "ip")),
               cli_time(json_integer_value(json_object_get(j, "expires_at")), tbuf, sizeof(tbuf)));
    } else if (rm && st == 204) {
        printf("unbanned %s\n", opts->args[2]);
    } else if (rm && st == 404) {
        fprintf(stderr, "harp-ctl: no ban for %s\n", opts->args[2]);
        rc = CLI_REFUSED;
    } else if (!list || st != 200 || j == NULL) {
        rc = cli_refused(st, text, add ? "ban add" : rm ? "ban rm" : "ban list");
    } else if (opts->json) {
        cli_print_json(j);
    } else {
        printf("%-39s  %8s  %-9s  %s\n", "IP", "FAILURES", "REASON", "EXPIRES");
        json_array_foreach(json_object_get(j, "bans"), i, b)
        {
            printf(
                "%-39s  %8lld  %-9s  %s\n", json_string_value(json_object_get(b, "ip")),
                (long long)json_integer_value(json_object_get(b, "failures")),
                json_string_value(json_object_get(b, "reason")),
                cli_time(json_integer_value(json_object_get(b, "expires_at")), tbuf, sizeof(tbuf)));
        }
        if (json_array_size(json_object_get(j, "bans")) == 0) {
            printf("(no bans)\n");
        }
    }
    json_decref(j);
    free(text);
    return rc;
}
