/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl certs show | export DIR | rotate [--now] | status | finish */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "xmalloc.h"

static const char usage_certs[] =
    "usage: harp-ctl certs show [--json]\n"
    "       harp-ctl certs export DIR\n"
    "       harp-ctl certs rotate [--now]\n"
    "       harp-ctl certs status [--json]\n"
    "       harp-ctl certs finish\n"
    "\n"
    "The FRP certificate authority: the CA, server and client certificates frpc clients use\n"
    "($HP_CERTS_DIR/frp). export writes what a remote engine's frpc needs (ca.crt,\n"
    "client.crt, client.key) into DIR. Certificates renew by themselves at two thirds of\n"
    "their life. rotate makes a new CA: the old one stays trusted, and clients holding the\n"
    "old ca.crt still verify the server, until every known client moved or\n"
    "HP_CERT_OVERLAP_DAYS ends; ExApp containers get the new client files by themselves,\n"
    "remote engines with `harp-ctl engine frpc NAME DIR`. --now: no overlap, sessions of the\n"
    "old certificates are closed (a leaked key). finish ends the overlap now. status shows\n"
    "days left per certificate, the schedule, the last renewal, the overlap, the tunnels\n"
    "still on the old chain and the containers waiting for the new files.\n";

static void
print_cert(const json_t *c)
{
    char nb[32], na[32];
    const json_t *v;
    size_t i;

    printf("%s:\n  subject     %s\n  issuer      %s\n",
           json_string_value(json_object_get(c, "name")),
           json_string_value(json_object_get(c, "subject")),
           json_string_value(json_object_get(c, "issuer")));
    printf("  san        ");
    json_array_foreach(json_object_get(c, "san"), i, v)
    {
        printf(" %s", json_string_value(v));
    }
    printf("%s\n", json_array_size(json_object_get(c, "san")) == 0 ? " -" : "");
    printf("  valid       %s to %s\n  sha256      %s\n  key         RSA %lld bits\n",
           cli_time(json_integer_value(json_object_get(c, "not_before")), nb, sizeof(nb)),
           cli_time(json_integer_value(json_object_get(c, "not_after")), na, sizeof(na)),
           json_string_value(json_object_get(c, "sha256")),
           (long long)json_integer_value(json_object_get(c, "key_bits")));
}

static void
print_status(const json_t *j)
{
    const json_t *c, *ov = json_object_get(j, "overlap"), *v;
    json_int_t now = json_integer_value(json_object_get(j, "now"));
    char t[32], t2[32];
    size_t i;

    json_array_foreach(json_object_get(j, "certificates"), i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_int_t na = json_integer_value(json_object_get(c, "not_after"));

        printf(
            "%-7s %8.1f days left (until %s), renewal at %s\n", name, (double)(na - now) / 86400,
            cli_time(na, t, sizeof(t)),
            cli_time(json_integer_value(json_object_get(json_object_get(j, "next_renewal"), name)),
                     t2, sizeof(t2)));
    }
    printf("renewal: %s\n", json_is_true(json_object_get(j, "automatic"))
                                ? "automatic at two thirds of each certificate's life"
                                : "manual (the CA key is not stored)");
    if (json_integer_value(json_object_get(j, "last_renewal")) > 0) {
        printf("last renewal: %s (%s)\n",
               cli_time(json_integer_value(json_object_get(j, "last_renewal")), t, sizeof(t)),
               json_string_value(json_object_get(j, "last_renewal_kind")));
    } else {
        printf("last renewal: none\n");
    }
    if (json_is_object(ov)) {
        printf("overlap: the previous CA is trusted until %s; clients not yet moved (port):",
               cli_time(json_integer_value(json_object_get(ov, "until")), t, sizeof(t)));
        json_array_foreach(json_object_get(ov, "pending_clients"), i, v)
        {
            printf(" %lld", (long long)json_integer_value(v));
        }
        printf("%s\n", json_array_size(json_object_get(ov, "pending_clients")) == 0 ? " none" : "");
    } else {
        printf("overlap: none\n");
    }
    printf("tunnels on the old chain (port):");
    json_array_foreach(json_object_get(j, "old_chain_tunnels"), i, v)
    {
        printf(" %lld", (long long)json_integer_value(v));
    }
    printf("%s\n", json_array_size(json_object_get(j, "old_chain_tunnels")) == 0 ? " none" : "");
    json_array_foreach(json_object_get(j, "deliveries"), i, v)
    {
        printf("container %s (engine port %lld): %s\n",
               json_string_value(json_object_get(v, "container")),
               (long long)json_integer_value(json_object_get(v, "port")),
               json_string_value(json_object_get(v, "delivered")));
    }
}

int
cli_certs(struct cli_opts *opts)
{
    const char *sub = opts->nargs > 1 ? opts->args[1] : "";
    bool show = strcmp(sub, "show") == 0 && opts->nargs == 2;
    bool export = strcmp(sub, "export") == 0 && opts->nargs == 3;
    bool rotate = strcmp(sub, "rotate") == 0 && opts->nargs == 2;
    bool status = strcmp(sub, "status") == 0 && opts->nargs == 2;
    bool finish = strcmp(sub, "finish") == 0 && opts->nargs == 2;
    const json_t *c;
    json_t *j = NULL;
    char *text = NULL;
    size_t i;
    long st;
    int rc = CLI_OK;

    if (opts->help || !(show || export || rotate || status || finish) || (opts->now && !rotate)) {
        fputs(usage_certs, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    st = cli_call(opts, rotate || finish ? "POST" : "GET",
                  export   ? "/api/v1/certs/export"
                  : rotate ? "/api/v1/certs/rotate"
                  : finish ? "/api/v1/certs/finish"
                  : status ? "/api/v1/certs/status"
                           : "/api/v1/certs",
                  rotate && opts->now ? "{\"now\": true}" : NULL, &j, &text);
    if (st < 0) {
        return cli_failed(st);
    }
    if (st != 200 || j == NULL) {
        rc = cli_refused(st, text,
                         export   ? "certs export"
                         : rotate ? "certs rotate"
                         : finish ? "certs finish"
                                  : "certs");
    } else if (export) {
        const char *dir = opts->args[2];

        if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
            fprintf(stderr, "harp-ctl: cannot create %s: %s\n", dir, strerror(errno));
            rc = CLI_USAGE;
        } else if (cli_write_file(dir, "ca.crt", json_string_value(json_object_get(j, "ca.crt")),
                                  0644) == -1 ||
                   cli_write_file(dir, "client.crt",
                                  json_string_value(json_object_get(j, "client.crt")),
                                  0644) == -1 ||
                   cli_write_file(dir, "client.key",
                                  json_string_value(json_object_get(j, "client.key")),
                                  0600) == -1) {
            rc = CLI_USAGE;
        } else {
            printf("wrote %s/ca.crt, %s/client.crt, %s/client.key (0600)\n", dir, dir, dir);
        }
    } else if (opts->json) {
        cli_print_json(j);
    } else if (status) {
        print_status(j);
    } else {
        if (rotate && opts->now) {
            printf("rotated with no overlap: frpc clients need the new files from %s\n",
                   json_string_value(json_object_get(j, "dir")));
        } else if (rotate) {
            printf("rotated: the previous CA stays trusted until the overlap ends (certs "
                   "status); remote engines need the new files (engine frpc NAME DIR)\n");
        } else if (finish) {
            printf("overlap ended: only the new CA is trusted\n");
        } else if (!json_is_true(json_object_get(j, "tls"))) {
            printf("FRP TLS disabled (HP_FRP_DISABLE_TLS=true)\n");
        } else {
            printf("directory: %s\n", json_string_value(json_object_get(j, "dir")));
        }
        json_array_foreach(json_object_get(j, "certificates"), i, c)
        {
            print_cert(c);
        }
    }
    json_decref(j);
    if (text != NULL) {
        memset(text, 0, strlen(text));
    }
    free(text);
    return rc;
}
