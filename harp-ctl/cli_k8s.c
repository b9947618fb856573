/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl k8s status */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_k8s[] =
    "usage: harp-ctl k8s status [--json]\n"
    "\n"
    "The Kubernetes backend as the control plane sees it: the API server, whether it answers\n"
    "and its version, whether the namespace exists, and for each verb harp uses whether its\n"
    "service account may (a SelfSubjectAccessReview each). Exit 1 when something is missing.\n";

static const char *
yes_no(const json_t *v)
{
    return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "unknown";
}

static int
print_status(const json_t *j)
{
    const json_t *p, *perms = json_object_get(j, "permissions");
    bool ok = json_is_true(json_object_get(j, "reachable")) &&
              json_is_true(json_object_get(j, "namespace_present"));
    size_t i;

    printf("enabled:     %s\n", yes_no(json_object_get(j, "enabled")));
    printf("api server:  %s\n", json_string_value(json_object_get(j, "api_server")));
    if (json_object_get(j, "error") != NULL) {
        printf("error:       %s\n", json_string_value(json_object_get(j, "error")));
        return CLI_REFUSED;
    }
    printf("reachable:   %s\n", yes_no(json_object_get(j, "reachable")));
    printf("version:     %s\n", json_is_string(json_object_get(j, "version"))
                                    ? json_string_value(json_object_get(j, "version"))
                                    : "unknown");
    printf("namespace:   %s (%s)\n", json_string_value(json_object_get(j, "namespace")),
           json_is_true(json_object_get(j, "namespace_present"))    ? "present"
           : json_is_false(json_object_get(j, "namespace_present")) ? "absent"
                                                                    : "unknown");
    printf("  %-8s  %-30s  %s\n", "VERB", "RESOURCE", "ALLOWED");
    json_array_foreach(perms, i, p)
    {
        const char *g = json_string_value(json_object_get(p, "group"));

        printf(
            "  %-8s  %s%s%-*s  %s\n", json_string_value(json_object_get(p, "verb")),
            json_string_value(json_object_get(p, "resource")), g[0] ? "." : "",
            (int)(30 - strlen(json_string_value(json_object_get(p, "resource"))) - (g[0] ? 1 : 0)),
            g, yes_no(json_object_get(p, "allowed")));
        ok = ok && json_is_true(json_object_get(p, "allowed"));
    }
    return ok ? CLI_OK : CLI_REFUSED;
}

int
cli_k8s(struct cli_opts *opts)
{
    json_t *j;
    char *text;
    long st;
    int rc;

    if (opts->help || opts->nargs != 2 || strcmp(opts->args[1], "status") != 0) {
        fputs(usage_k8s, opts->help ? stdout : stderr);
        return opts->help ? CLI_OK : CLI_USAGE;
    }
    st = cli_call(opts, "GET", "/api/v1/k8s/status", NULL, &j, &text);
    if (st < 0) {
        return cli_failed(st);
    }
    if (st != 200 || j == NULL) {
        rc = cli_refused(st, text, "k8s status");
    } else if (opts->json) {
        cli_print_json(j);
        rc = CLI_OK;
    } else {
        rc = print_status(j);
    }
    json_decref(j);
    free(text);
    return rc;
}
