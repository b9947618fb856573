/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* `harp-ctl doctor`'s verdicts: each finding gives the right check, pass or fail, and a fix
 * for every failure; Docker API versions compare numerically. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "doctor_rules.h"
#include "tap.h"

static int
ok_of(json_t *c)
{
    return json_is_true(json_object_get(c, "ok"));
}

static const char *
s_of(json_t *c, const char *k)
{
    return json_string_value(json_object_get(c, k));
}

/* <c> failed, names a fix, and its detail holds <text>; <c> is freed. */
static void
fails(json_t *c, const char *text, const char *what)
{
    OK(!ok_of(c) && s_of(c, "fix") != NULL && strstr(s_of(c, "detail"), text) != NULL, "%s: %s",
       what, s_of(c, "detail"));
    json_decref(c);
}

static void
passes(json_t *c, const char *what)
{
    OK(ok_of(c) && json_object_get(c, "fix") == NULL, "%s: %s", what, s_of(c, "detail"));
    json_decref(c);
}

static json_t *
engine(const char *kind, bool reachable, const char *api)
{
    json_t *e = json_pack("{s:s,s:s,s:s,s:b}", "name", "e1", "address", "tcp://10.0.0.1:2375",
                          "kind", kind, "reachable", reachable);

    if (api != NULL) {
        json_object_set_new(e, "api_version", json_string(api));
        json_object_set_new(e, "version", json_string("20.10.24"));
    } else if (!reachable) {
        json_object_set_new(e, "error", json_string("Connection refused"));
    }
    return e;
}

static void
test_engines(void)
{
    const struct {
        const char *kind, *api;
        bool reachable, ok;
        const char *text;
    } cases[] = {
        {"tcp", "1.41", true, true, "API 1.41"},       {"tcp", "1.45", true, true, "API 1.45"},
        {"tcp", "1.40", true, false, "API 1.40"},      {"tcp", "1.9", true, false, "API 1.9"},
        {"tcp", "2.0", true, true, "API 2.0"},         {"tcp", NULL, true, false, "(unknown)"},
        {"socket", NULL, false, false, "unreachable"}, {"tunnel", NULL, false, false, "refused"},
    };
    size_t i;
    json_t *e, *c;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e = engine(cases[i].kind, cases[i].reachable, cases[i].api);
        c = doctor_engine(e);
        IS_STR(s_of(c, "check"), "engine e1", "engine check named");
        if (cases[i].ok) {
            passes(c, cases[i].text);
        } else {
            fails(c, cases[i].text, cases[i].text);
        }
        json_decref(e);
    }
    e = engine("socket", false, NULL);
    c = doctor_engine(e);
    OK(strstr(s_of(c, "fix"), "docker.sock") != NULL, "a missing socket's fix names the mount");
    json_decref(c);
    json_decref(e);
    e = engine("tunnel", false, NULL);
    c = doctor_engine(e);
    OK(strstr(s_of(c, "fix"), "frpc") != NULL, "a tunnel's fix names frpc");
    json_decref(c);
    json_decref(e);
    IS_INT(doctor_api_cmp("1.41", "1.41"), 0, "equal versions");
    OK(doctor_api_cmp("1.9", "1.41") < 0 && doctor_api_cmp("1.100", "1.41") > 0,
       "minor versions compare as numbers");
}

static void
test_nextcloud(void)
{
    struct nc_probe p;

    memset(&p, 0, sizeof(p));
    snprintf(p.neterr, sizeof(p.neterr), "Couldn't connect to server");
    fails(doctor_nextcloud("http://nc", "app", true, &p), "no answer", "no answer");

    memset(&p, 0, sizeof(p));
    p.status = 200;
    p.json = p.meta = true;
    passes(doctor_nextcloud("http://nc", "app", true, &p), "meta with the key");
    p.meta = false;
    fails(doctor_nextcloud("http://nc", "app", true, &p), "not Nextcloud's AppAPI",
          "200 JSON that is no ExApp's metadata");

    p.status = 401;
    snprintf(p.message, sizeof(p.message), "Harp shared key is not valid");
    fails(doctor_nextcloud("http://nc", "app", true, &p), "not HP_SHARED_KEY",
          "401 for an app harp holds");
    passes(doctor_nextcloud("http://nc", "app", false, &p), "401 with no app to ask about");
    snprintf(p.message, sizeof(p.message), "Unauthorized");
    fails(doctor_nextcloud("http://nc", "app", false, &p), "not Nextcloud's AppAPI",
          "401 from something else");

    memset(&p, 0, sizeof(p));
    p.status = 503;
    fails(doctor_nextcloud("http://nc", "app", true, &p), "maintenance", "503");
    p.status = 404;
    snprintf(p.content_type, sizeof(p.content_type), "text/html");
    fails(doctor_nextcloud("http://nc", "app", true, &p), "404 text/html", "404");
}

static void
test_dataplanes(void)
{
    json_t *a =
        json_pack("[{s:s,s:i,s:i},{s:s,s:i,s:i}]", "dp_id", "dp0", "table_version", 7,
                  "applied_version", 7, "dp_id", "dp1", "table_version", 7, "applied_version", 6);
    json_t *b = json_deep_copy(a), *empty = json_array();

    fails(doctor_dataplanes(a, b), "dp1 applies version 6, current 7", "one behind");
    json_integer_set(json_object_get(json_array_get(b, 1), "applied_version"), 7);
    passes(doctor_dataplanes(a, b), "caught up between the samples");
    fails(doctor_dataplanes(empty, empty), "no data plane", "none connected");
    json_array_remove(b, 1);
    json_integer_set(json_object_get(json_array_get(a, 1), "applied_version"), 3);
    passes(doctor_dataplanes(a, b), "the stale one went away in between");
    json_decref(a);
    json_decref(b);
    json_decref(empty);
}

static void
test_certs_and_state(void)
{
    int64_t now = 1800000000, day = 86400;

    passes(doctor_cert("x", now + 31 * day, now), "31 days");
    fails(doctor_cert("x", now + 10 * day, now), "expires in 10 days", "10 days");
    fails(doctor_cert("x", now - 2 * day, now), "expired 2 days", "expired");
    passes(doctor_state_dir("/s", 040700, 0100600), "0700 and 0600");
    passes(doctor_state_dir("/s", 040750, 0100600), "group may read the directory");
    fails(doctor_state_dir("/s", 040777, 0100600), "others can change", "world-writable");
    fails(doctor_state_dir("/s", 040700, 0100644), "others can read", "readable database");
}

int
main(void)
{
    test_engines();
    test_nextcloud();
    test_dataplanes();
    test_certs_and_state();
    return tap_done();
}
