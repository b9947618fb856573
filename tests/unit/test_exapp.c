/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Validation of POST /exapp_storage bodies (spec 3.2, 4.3): pydantic "lax" rules as HaRP
 * applies them, and an error naming the field for everything else. */
#include "config.h"

#include <stdlib.h>

#include "exapp.h"
#include "tap.h"

static int
parse(const char *text, struct exapp *app, struct hp_err *err)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    int rc;

    if (j == NULL) {
        err_set(err, "bad test JSON");
        return -2;
    }
    rc = exapp_from_json(j, app, err);
    json_decref(j);
    return rc;
}

static void
bad(const char *text, const char *field)
{
    struct exapp app;
    struct hp_err err = {""};
    int rc = parse(text, &app, &err);

    OK(rc == -1 && strncmp(err.msg, field, strlen(field)) == 0, "rejected naming %s", field);
    if (rc == 0) {
        exapp_free(&app);
    } else if (strncmp(err.msg, field, strlen(field)) != 0) {
        printf("#   message: %s\n", err.msg);
    }
}

#define GOOD_HEAD "\"exapp_token\": \"t\", \"exapp_version\": \"1.0.0\", \"host\": \"127.0.0.1\""

static void
test_capture(void)
{
    /* The body AppAPI 33 sent in capture 08-manual-register-json-info. */
    const char *body =
        "{\"exapp_token\": \"manual_probe_secret_0123456789\", "
        "\"exapp_version\": \"1.0.0\", \"host\": \"127.0.0.1\", \"port\": 23001, "
        "\"routes\": [{\"url\": \"^api\\\\/public\\\\/.*\", \"access_level\": 0, "
        "\"bruteforce_protection\": [401, 500]}, {\"url\": \".*\", "
        "\"access_level\": 1, \"bruteforce_protection\": []}, {\"url\": "
        "\"^admin\\\\/.*\", \"access_level\": 2, \"bruteforce_protection\": [401]}]}";
    struct exapp app;
    struct hp_err err;
    json_t *out;

    IS_INT(parse(body, &app, &err), 0, "AppAPI's registration body is accepted");
    IS_STR(app.token, "manual_probe_secret_0123456789", "token");
    IS_STR(app.version, "1.0.0", "version");
    IS_STR(app.host, "127.0.0.1", "host");
    IS_INT(app.port, 23001, "port");
    IS_INT(app.nroutes, 3, "three routes in order");
    IS_STR(app.routes[0].url, "^api\\/public\\/.*", "route 0 url kept byte for byte");
    IS_INT(app.routes[0].nbruteforce, 2, "route 0 bruteforce list");
    IS_INT(app.routes[0].bruteforce[1], 500, "route 0 second status");
    IS_INT(app.routes[1].access_level, 1, "route 1 USER");
    IS_INT(app.routes[2].access_level, 2, "route 2 ADMIN");
    out = exapp_to_json(&app, false);
    OK(json_object_get(out, "exapp_token") == NULL, "token left out of the operator view");
    json_decref(out);
    out = exapp_to_json(&app, true);
    IS_STR(json_string_value(json_object_get(out, "exapp_token")), "manual_probe_secret_0123456789",
           "token present when asked for");
    json_decref(out);
    exapp_free(&app);
}

static void
test_lax(void)
{
    struct exapp app;
    struct hp_err err;

    IS_INT(parse("{" GOOD_HEAD ", \"port\": \"23001\", \"extra\": 1, \"routes\": "
                 "[{\"url\": \"^/$\", \"access_level\": \"2\", "
                 "\"bruteforce_protection\": [\"401\", 403.0]}]}",
                 &app, &err),
           0, "numeric strings, integral floats and unknown keys are accepted");
    IS_INT(app.port, 23001, "port from a string");
    IS_INT(app.routes[0].access_level, 2, "access level from a string");
    IS_INT(app.routes[0].bruteforce[0], 401, "status from a string");
    IS_INT(app.routes[0].bruteforce[1], 403, "status from 403.0");
    exapp_free(&app);
    IS_INT(parse("{" GOOD_HEAD ", \"port\": 1}", &app, &err), 0, "routes are optional");
    IS_INT(app.nroutes, 0, "no routes");
    IS_STR(app.resolved_host, "", "resolved_host absent");
    exapp_free(&app);
    IS_INT(parse("{" GOOD_HEAD ", \"port\": 1, \"routes\": [{\"url\": \"x\", \"access_level\": "
                 "0}], \"resolved_host\": \"10.1.2.3\"}",
                 &app, &err),
           0, "bruteforce_protection is optional");
    IS_INT(app.routes[0].nbruteforce, 0, "empty bruteforce list");
    IS_STR(app.resolved_host, "10.1.2.3", "resolved_host kept");
    exapp_free(&app);
    IS_INT(parse("{\"exapp_token\": \"\", \"exapp_version\": \"\", \"host\": \"h\", \"port\": 1}",
                 &app, &err),
           0, "empty token and version are accepted as HaRP does");
    exapp_free(&app);
}

static void
test_rejects(void)
{
    bad("[]", "body");
    bad("\"x\"", "body");
    bad("{\"exapp_version\": \"1\", \"host\": \"h\", \"port\": 1}", "exapp_token");
    bad("{\"exapp_token\": null, \"exapp_version\": \"1\", \"host\": \"h\", \"port\": 1}",
        "exapp_token");
    bad("{\"exapp_token\": 5, \"exapp_version\": \"1\", \"host\": \"h\", \"port\": 1}",
        "exapp_token");
    bad("{\"exapp_token\": \"t\", \"host\": \"h\", \"port\": 1}", "exapp_version");
    bad("{\"exapp_token\": \"t\", \"exapp_version\": 1.0, \"host\": \"h\", \"port\": 1}",
        "exapp_version");
    bad("{\"exapp_token\": \"t\", \"exapp_version\": \"1\", \"port\": 1}", "host");
    bad("{\"exapp_token\": \"t\", \"exapp_version\": \"1\", \"host\": \"\", \"port\": 1}", "host");
    bad("{" GOOD_HEAD "}", "port");
    bad("{" GOOD_HEAD ", \"port\": \"abc\"}", "port");
    bad("{" GOOD_HEAD ", \"port\": 0}", "port");
    bad("{" GOOD_HEAD ", \"port\": 65536}", "port");
    bad("{" GOOD_HEAD ", \"port\": 1.5}", "port");
    bad("{" GOOD_HEAD ", \"port\": true}", "port");
    bad("{" GOOD_HEAD ", \"port\": null}", "port");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": {}}", "routes");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": null}", "routes");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": [1]}", "routes[0]");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": [{\"access_level\": 0}]}", "routes[0].url");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": [{\"url\": \"a\", \"access_level\": 0}, "
        "{\"url\": 7, \"access_level\": 0}]}",
        "routes[1].url");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": [{\"url\": \"a\"}]}", "routes[0].access_level");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": [{\"url\": \"a\", \"access_level\": 3}]}",
        "routes[0].access_level");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": [{\"url\": \"a\", \"access_level\": -1}]}",
        "routes[0].access_level");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": [{\"url\": \"a\", \"access_level\": \"ADMIN\"}]}",
        "routes[0].access_level");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": [{\"url\": \"a\", \"access_level\": 0, "
        "\"bruteforce_protection\": \"[401]\"}]}",
        "routes[0].bruteforce_protection");
    bad("{" GOOD_HEAD ", \"port\": 1, \"routes\": [{\"url\": \"a\", \"access_level\": 0, "
        "\"bruteforce_protection\": [401, \"x\"]}]}",
        "routes[0].bruteforce_protection[1]");
    bad("{" GOOD_HEAD ", \"port\": 1, \"resolved_host\": 5}", "resolved_host");
}

/* Control characters in what is written into request heads (issue 12.11). */
static void
test_control_characters(void)
{
    struct exapp app;
    struct hp_err err;

    bad("{\"exapp_token\": \"t\", \"exapp_version\": \"1.0\\r\\nX-Evil: 1\", \"host\": \"h\", "
        "\"port\": 1}",
        "exapp_version: must not contain control characters (0x0d at byte 3)");
    bad("{\"exapp_token\": \"t\", \"exapp_version\": \"1\\u007f\", \"host\": \"h\", \"port\": 1}",
        "exapp_version");
    bad("{\"exapp_token\": \"t\", \"exapp_version\": \"1\", \"host\": \"h\\nX-Evil: 1\", "
        "\"port\": 1}",
        "host: must not contain control characters");
    bad("{" GOOD_HEAD ", \"port\": 1, \"resolved_host\": \"10.0.0.1\\t\"}", "resolved_host");
    IS_INT(parse("{\"exapp_token\": \"t\\r\\n\", \"exapp_version\": \"1.0-\u00e9 b\", "
                 "\"host\": \"h\", \"port\": 1, \"routes\": [{\"url\": \"\\n^/x\", "
                 "\"access_level\": 0}]}",
                 &app, &err),
           0, "spaces and UTF-8 in the version, controls in the token and a route are kept");
    exapp_free(&app);
}

/* Routes per app: EXAPP_MAX_ROUTES, one more is refused (issue 12.6). */
static void
test_route_limit(void)
{
    json_t *body = json_pack("{s:s,s:s,s:s,s:i}", "exapp_token", "t", "exapp_version", "1", "host",
                             "h", "port", 1);
    json_t *routes = json_array();
    struct exapp app;
    struct hp_err err;
    int i;

    for (i = 0; i < EXAPP_MAX_ROUTES; i++) {
        json_array_append_new(routes, json_pack("{s:s,s:i}", "url", "^/r", "access_level", 0));
    }
    json_object_set_new(body, "routes", routes);
    IS_INT(exapp_from_json(body, &app, &err), 0, "%d routes are accepted", EXAPP_MAX_ROUTES);
    OK(exapp_record_size(&app) < EXAPP_MAX_RECORD, "and fit a record");
    exapp_free(&app);
    json_array_append_new(routes, json_pack("{s:s,s:i}", "url", "^/r", "access_level", 0));
    IS_INT(exapp_from_json(body, &app, &err), -1, "one more is refused");
    IS_STR(err.msg, "routes: 257 routes, more than the 256 allowed", "naming the limit");
    json_decref(body);
}

static void
test_ids(void)
{
    char id[EXAPP_ID_MAX + 1];
    char longid[300];
    struct hp_err err;

    IS_INT(exapp_id_normalise("MyApp", id, &err), 0, "mixed-case id accepted");
    IS_STR(id, "myapp", "ids are lower-cased");
    IS_INT(exapp_id_normalise("app-skeleton_python.2", id, &err), 0, "'-', '_', '.' accepted");
    IS_INT(exapp_id_normalise("", id, &err), -1, "empty id refused");
    IS_INT(exapp_id_normalise("a/b", id, &err), -1, "'/' refused");
    IS_INT(exapp_id_normalise("a b", id, &err), -1, "space refused");
    IS_INT(exapp_id_normalise("App_Api", id, &err), -1, "app_api reserved, in any case");
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    IS_INT(exapp_id_normalise(longid, id, &err), -1, "299 characters refused");
}

/* A copy owns all of its memory: it outlives the original and serialises the same. */
static void
test_copy(void)
{
    json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:i,s:[{s:s,s:i,s:[i,i]},{s:s,s:i}]}", "exapp_token",
                             "tok", "exapp_version", "1.0", "host", "h", "resolved_host",
                             "10.0.0.1", "port", 23001, "routes", "url", "^/a", "access_level", 1,
                             "bruteforce_protection", 401, 403, "url", "^/b", "access_level", 2);
    struct exapp app, copy;
    struct hp_err err;
    json_t *a, *b;

    IS_INT(exapp_from_json(body, &app, &err), 0, "an app to copy");
    snprintf(app.app_id, sizeof(app.app_id), "copied");
    app.created_at = 5;
    exapp_copy(&copy, &app);
    a = exapp_to_json(&app, true);
    exapp_free(&app);
    b = exapp_to_json(&copy, true);
    OK(json_equal(a, b), "the copy serialises as the original did, once that is freed");
    OK(copy.nroutes == 2 && copy.routes[0].nbruteforce == 2 && copy.routes[0].bruteforce[1] == 403,
       "routes and their statuses are copied");
    exapp_free(&copy);
    json_decref(a);
    json_decref(b);
    json_decref(body);
}

int
main(void)
{
    test_capture();
    test_lax();
    test_rejects();
    test_control_characters();
    test_route_limit();
    test_ids();
    test_copy();
    return tap_done();
}
