/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl certs show | export DIR | rotate */
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
    "       harp-ctl certs rotate\n"
    "\n"
    "The FRP certificate authority: the CA, server and client certificates frpc clients use\n"
    "($HP_CERTS_DIR/frp). export writes what a remote engine's frpc needs (ca.crt,\n"
    "client.crt, client.key) into DIR; rotate replaces every certificate (remote frpc\n"
    "clients and ExApps then need the new files).\n";

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

int
cli_certs(struct cli_opts *opts)
{
    const char *sub = opts->nargs > 1 ? opts->args[1] : "";
    bool show = strcmp(sub, "show") == 0 && opts->nargs == 2;
    bool export = strcmp(sub, "export") == 0 && opts->nargs == 3;
    bool rotate = strcmp(sub, "rotate") == 0 && opts->nargs == 2;
    const json_t *c;
    json_t *j = NULL;
    char *text = NULL;
    size_t i;
    long st;
    int rc = CLI_OK;

    if (opts->help || !(show || export || rotate)) {
        fputs(usage_certs, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    st = cli_call(opts, rotate ? "POST" : "GET",
                  export   ? "/api/v1/certs/export"
                  : rotate ? "/api/v1/certs/rotate"
                           : "/api/v1/certs",
                  NULL, &j, &text);
    if (st < 0) {
        return cli_failed(st);
    }
    if (st != 200 || j == NULL) {
        rc = cli_refused(st, text, export ? "certs export" : rotate ? "certs rotate" : "certs");
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
    } else {
        if (rotate) {
            printf("rotated: frpc clients and ExApps need the new files from %s\n",
                   json_string_value(json_object_get(j, "dir")));
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
