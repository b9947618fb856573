/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The decision procedure (spec 2.3, 2.9): HaRP's traversal and app-id regexes reproduced by
 * hand, the order of the checks, and the values to inject. */
#include "config.h"

#include <stdlib.h>
#include <time.h>

#include "route.h"
#include "tap.h"

#define KEY "k3y"

static struct table *
make_table(void)
{
    json_t *src = json_pack("{s:{s:s,s:s,s:s,s:s,s:i,s:[{s:s,s:i},{s:s,s:i},{s:s,s:i},{s:s,s:i}]}}",
                            "myapp", "app_id", "myapp", "exapp_token", "tok", "exapp_version",
                            "1.0", "host", "127.0.0.1", "port", 23001, "routes", "url", "^/public",
                            "access_level", 0, "url", "^/user", "access_level", 1, "url", "[",
                            "access_level", 0, "url", "^/$", "access_level", 0);
    struct hp_err err;
    struct table *t = table_build(src, 5, &err);

    return t;
}

static void
decide_as(const struct table *t, const char *raw, const struct user *u, struct decision *d)
{
    static char buf[4096], npath[4096];
    struct http1_head h;

    snprintf(buf, sizeof(buf), "%s", raw);
    if (http1_parse_request(buf, strlen(buf), &h) != HTTP1_OK) {
        printf("# bad test request\n");
        abort();
    }
    route_decide(t, &h, npath, KEY, false, u, d);
}

static void
decide(const struct table *t, const char *raw, struct decision *d)
{
    struct user none = {.state = USER_UNRESOLVED};

    decide_as(t, raw, &none, d);
}

static void
test_helpers(void)
{
    struct span id, target;
    static const struct {
        const char *path;
        bool traversal;
    } tr[] = {
        {"/exapps/a/../b", true},
        {"/exapps/a/%2e%2E/b", true},
        {"/exapps/a%2F..%2Fb", true},
        {"/exapps/a/..", true},
        {"..", true},
        {"/exapps/a/.%2e/", true},
        {"/exapps/a/...", false},
        {"/exapps/a/..b", false},
        {"/exapps/a/b..", false},
        {"/exapps/a/%2e", false},
        {"/x/.hidden/..x", false},
    };
    size_t i;

    for (i = 0; i < sizeof(tr) / sizeof(tr[0]); i++) {
        struct span p = {tr[i].path, strlen(tr[i].path)};

        IS_INT(route_has_traversal(p), tr[i].traversal, "traversal %s", tr[i].path);
    }
    OK(route_app_id((struct span){"/exapps/MyApp/x/y", 17}, &id, &target), "app id found");
    OK(span_eq(id, "MyApp") && span_eq(target, "/x/y"), "id and target");
    OK(route_app_id((struct span){"/exapps/a", 9}, &id, &target) && span_eq(target, "/"),
       "empty target becomes /");
    OK(route_app_id((struct span){"/x/exapps/a/b", 13}, &id, &target) && span_eq(id, "a") &&
           span_eq(target, "/x/exapps/a/b"),
       "prefix not at the start: whole path kept (as-is)");
    OK(route_app_id((struct span){"//exapps/a/b", 12}, &id, &target) &&
           span_eq(target, "//exapps/a/b"),
       "double slash: whole path kept (as-is)");
    OK(!route_app_id((struct span){"/exapps/", 8}, &id, &target), "no id");
    OK(!route_app_id((struct span){"/myexapps/a", 11}, &id, &target), "not a segment");
}

static void
test_decisions(void)
{
    struct table *t = make_table();
    struct decision d;

    OK(t != NULL, "table builds (a bad regex is skipped, not fatal)");
    IS_INT(t->napps, 1, "one app");
    decide(t, "GET /exapps/MyApp/public/x?y HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    IS_INT(d.verdict, VERDICT_TO_EXAPP, "public route forwarded");
    OK(span_eq(d.app_id, "MyApp") && span_eq(d.target, "/public/x"), "id as written, target");
    IS_STR(d.auth, "OnRvaw==", "base64(':tok')");
    IS_STR(d.host, "127.0.0.1", "host");
    IS_INT(d.port, 23001, "port");
    decide(t, "GET /exapps/myapp/user HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_FORBIDDEN && d.failure, "USER route, no credentials: 403, failure");
    decide(t,
           "GET /exapps/myapp/user HTTP/1.1\r\nHost: h\r\nCookie: a=1; "
           "oc_sessionPassphrase=s1; b=2\r\n\r\n",
           &d);
    IS_INT(d.verdict, VERDICT_AUTH, "a session cookie: ask who it is");
    decide(t,
           "GET /exapps/myapp/public HTTP/1.1\r\nHost: h\r\nAuthorization: Basic eDp5\r\n"
           "\r\n",
           &d);
    IS_INT(d.verdict, VERDICT_AUTH, "Authorization: ask, even for a PUBLIC route (HaRP's order)");
    decide(t,
           "GET /exapps/myapp/user HTTP/1.1\r\nHost: h\r\nCookie: oc_sessionpassphrase=x; "
           "oc_sessionPassphrase=\r\n\r\n",
           &d);
    IS_INT(d.verdict, VERDICT_FORBIDDEN, "empty or other-case cookie: no credentials");
    {
        struct user alice = {.state = USER_KNOWN, .id = "alice", .level = 1};
        struct user admin = {.state = USER_KNOWN, .id = "admin", .level = 2};
        struct user anon = {.state = USER_KNOWN, .id = "", .level = 0};
        struct user none = {.state = USER_NONE};
        struct user error = {.state = USER_ERROR};
        const char *user_req = "GET /exapps/myapp/user HTTP/1.1\r\nHost: h\r\n"
                               "Cookie: oc_sessionPassphrase=s1\r\n\r\n";
        const char *pub_req = "GET /exapps/myapp/public HTTP/1.1\r\nHost: h\r\n"
                              "Cookie: oc_sessionPassphrase=s1\r\n\r\n";

        decide_as(t, user_req, &alice, &d);
        IS_INT(d.verdict, VERDICT_TO_EXAPP, "a user passes a USER route");
        IS_STR(d.auth, "YWxpY2U6dG9r", "base64('alice:tok')");
        decide_as(t, user_req, &admin, &d);
        IS_INT(d.verdict, VERDICT_TO_EXAPP, "an admin passes a USER route");
        decide_as(t, user_req, &anon, &d);
        OK(d.verdict == VERDICT_FORBIDDEN && d.failure, "level 0 on a USER route: 403");
        decide_as(t, user_req, &none, &d);
        IS_INT(d.verdict, VERDICT_FORBIDDEN, "no user object: 403");
        decide_as(t, user_req, &error, &d);
        OK(d.verdict == VERDICT_UNAUTHORIZED && !d.failure, "Nextcloud error: 401, no failure");
        decide_as(t, pub_req, &error, &d);
        IS_INT(d.verdict, VERDICT_UNAUTHORIZED, "even on a PUBLIC route (HaRP's order)");
        decide_as(t, pub_req, &alice, &d);
        IS_STR(d.auth, "YWxpY2U6dG9r", "a PUBLIC route still names the user");
    }
    {
        struct http1_head h;
        const char *r = "GET / HTTP/1.1\r\nHost: h\r\nCookie: oc_sessionPassphrase=first\r\n"
                        "Cookie: x=1;oc_sessionPassphrase=last ; y=2\r\n\r\n";

        http1_parse_request(r, strlen(r), &h);
        OK(span_eq(route_session_cookie(&h), "last"), "the last session cookie counts");
    }
    decide(t, "GET /exapps/myapp/nope HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_NOT_FOUND && d.failure, "no route: 404 and a failure");
    decide(t, "GET /exapps/myapp/heartbeat HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_DROP && d.failure, "internal path: drop and a failure");
    decide(t, "GET /exapps/myapp/heartbeat/ HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_DROP && d.failure,
       "/heartbeat/ is internal too (routers ignore the '/')");
    decide(t, "GET /exapps/myapp HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    IS_INT(d.verdict, VERDICT_TO_EXAPP, "empty target matches ^/$");
    decide(t, "GET /exapps/other/x HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    IS_INT(d.verdict, VERDICT_LOOKUP, "unknown app: ask the control plane");
    IS_STR(d.app_id_lc, "other", "lower-cased id");
    decide(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_NOT_FOUND && d.failure, "/: 404 and a failure");
    decide(t, "GET / HTTP/1.1\r\nHost: h\r\nharp-shared-key: k3y\r\n\r\n", &d);
    OK(d.verdict == VERDICT_NOT_FOUND && !d.failure, "with the key: no failure");
    decide(t, "GET /exapps/app_api/info HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_UNAUTHORIZED && d.failure, "app_api without key: 401, failure");
    decide(t, "GET /exapps/app_api/info HTTP/1.1\r\nHost: h\r\nharp-shared-key: k3y\r\n\r\n", &d);
    IS_INT(d.verdict, VERDICT_TO_CONTROL, "app_api with key: control");
    decide(t,
           "GET /exapps/app_api/v1.41/_ping HTTP/1.1\r\nHost: h\r\nharp-shared-key: k3y\r\n"
           "docker-engine-port: 24000\r\n\r\n",
           &d);
    OK(d.verdict == VERDICT_TO_DOCKER && d.docker_port == 24000, "docker proxy");
    {
        static const struct {
            const char *m, *p;
            bool ok;
        } dk[] = {
            {"GET", "/v1.44/_ping", true},
            {"HEAD", "/_ping", true},
            {"GET", "/v1.44/_ping/x", false},
            {"GET", "/v1.44/images/nextcloud%2Fapp:1/json", true},
            {"GET", "/V1.44/CONTAINERS/NC_APP_x/JSON", true},
            {"GET", "/v1.44/containers/nc_app_x/logs?tail=5", true},
            {"GET", "/v1.44/containers/other/json", false},
            {"POST", "/v1.44/images/create?fromImage=x", true},
            {"POST", "/v1.44/containers/create", false},
            {"DELETE", "/v1.44/containers/nc_app_x", false},
            {"GET", "/version", false},
            {"POST", "/v1.44/containers/nc_app_x/exec", false},
            {"GET", "/v1.44/containers/nc_app_x%2F..%2F..%2Fother/json", false},
        };
        size_t k;

        for (k = 0; k < sizeof(dk) / sizeof(dk[0]); k++) {
            IS_INT(route_docker_allowed((struct span){dk[k].m, strlen(dk[k].m)},
                                        (struct span){dk[k].p, strlen(dk[k].p)}),
                   dk[k].ok, "docker %s %s", dk[k].m, dk[k].p);
        }
    }
    decide(t,
           "GET /exapps/app_api/v1.44/containers/create HTTP/1.1\r\nHost: h\r\n"
           "harp-shared-key: k3y\r\ndocker-engine-port: 24000\r\n\r\n",
           &d);
    IS_INT(d.verdict, VERDICT_DENIED, "docker call outside the allow-list: 403");
    decide(t,
           "GET /exapps/app_api/docker/exapp/exists HTTP/1.1\r\nHost: h\r\n"
           "harp-shared-key: k3y\r\ndocker-engine-port: 24000\r\n\r\n",
           &d);
    IS_INT(d.verdict, VERDICT_TO_CONTROL, "/docker/ paths go to the control API");
    decide(t,
           "GET /exapps/app_api/info HTTP/1.1\r\nHost: h\r\nharp-shared-key: k3y\r\n"
           "docker-engine-port: 24x\r\n\r\n",
           &d);
    IS_INT(d.verdict, VERDICT_UNAVAILABLE, "non-numeric docker-engine-port: 503");
    decide(t, "GET /exapps/App_Api/info HTTP/1.1\r\nHost: h\r\nharp-shared-key: k3y\r\n\r\n", &d);
    IS_INT(d.verdict, VERDICT_LOOKUP, "App_Api is an ordinary app id");
    decide(t,
           "GET /exapps/myapp/heartbeat HTTP/1.1\r\nHost: h\r\nex-app-version: 9\r\n"
           "ex-app-id: x\r\nex-app-host: h\r\nex-app-port: 1\r\nauthorization-app-api: QQ==\r\n"
           "harp-shared-key: k3y\r\n\r\n",
           &d);
    IS_INT(d.verdict, VERDICT_TO_EXAPP, "signed request skips the routes");
    IS_STR(d.auth, "QQ==", "its own authorization");
    OK(span_eq(d.version, "1.0") && d.port == 23001, "the record wins over the headers");
    decide(t,
           "GET /exapps/myapp/heartbeat HTTP/1.1\r\nHost: h\r\nex-app-version: 9\r\n"
           "ex-app-id: x\r\nex-app-host: h\r\nex-app-port: 1\r\nauthorization-app-api: QQ==\r\n"
           "harp-shared-key: nope\r\n\r\n",
           &d);
    OK(d.verdict == VERDICT_DROP && d.failure, "signed with a wrong key: drop");
    decide(t, "GET /exapps/myapp/../x HTTP/1.1\r\nHost: h\r\nharp-shared-key: k3y\r\n\r\n", &d);
    OK(d.verdict == VERDICT_DROP && !d.failure, "traversal with the key: drop, no failure");
    table_unref(t);
}

/* A backtracking pattern (re.match("(a+)+$") is exponential on "aaa...b") is cut off by the
 * request's match budget: the answer is "unknown" (-1), quickly. */
static void
test_backtracking_is_bounded(void)
{
    struct match_budget b = {ROUTE_MATCH_BUDGET, 0};
    json_t *src =
        json_pack("{s:{s:s,s:s,s:s,s:i,s:[{s:s,s:i}]}}", "bt", "exapp_token", "t", "exapp_version",
                  "1", "host", "h", "port", 1, "routes", "url", "^/(a+)+$", "access_level", 0);
    struct hp_err err;
    struct table *t = table_build(src, 1, &err);
    const struct table_app *a = table_find(t, "bt");
    char path[64];

    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[sizeof(path) - 1] = 'b';
    IS_INT(route_match(&a->routes[0], (struct span){path, sizeof(path)}, &b), -1,
           "unknown past the budget");
    IS_INT(b.left, 0, "the whole budget is spent");
    b.left = ROUTE_MATCH_BUDGET;
    IS_INT(route_match(&a->routes[0], (struct span){"/aaaa", 5}, &b), 1, "the pattern still works");
    IS_INT(b.left, ROUTE_MATCH_BUDGET - ROUTE_MATCH_FIRST, "a cheap match costs the first try");
    table_unref(t);
}

/* One budget per request: many catastrophic routes cost one budget, and running out refuses
 * the request instead of falling through to the permissive route after them. */
static void
test_one_budget_per_request(void)
{
    json_t *routes = json_array(), *src;
    struct hp_err err;
    struct table *t;
    struct decision d;
    char raw[256];
    size_t i;

    for (i = 0; i < EXAPP_MAX_ROUTES - 1; i++) {
        json_array_append_new(routes, json_pack("{s:s,s:i}", "url", "^/(a+)+$", "access_level", 0));
    }
    json_array_append_new(routes, json_pack("{s:s,s:i}", "url", "^/.*", "access_level", 0));
    src = json_pack("{s:{s:s,s:s,s:s,s:i,s:o}}", "bt", "exapp_token", "t", "exapp_version", "1",
                    "host", "h", "port", 1, "routes", routes);
    t = table_build(src, 1, &err);
    OK(t != NULL, "a table of %d routes builds", EXAPP_MAX_ROUTES);
    snprintf(raw, sizeof(raw), "GET /exapps/bt/%s HTTP/1.1\r\nHost: h\r\n\r\n",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
    decide(t, raw, &d);
    OK(d.verdict == VERDICT_BAD_REQUEST && d.failure && d.route == NULL,
       "budget exhausted: 400 and a failure, no fall-through to ^/.*");
    OK(d.budget.limit_hits <= 16, "limit hits bounded by one budget (%u, not 999)",
       d.budget.limit_hits);
    IS_INT(d.budget.left, 0, "all of the budget, no more");
    decide(t, "GET /exapps/bt/public HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    IS_INT(d.verdict, VERDICT_TO_EXAPP, "999 cheap misses fit in the budget");
    IS_INT(d.budget.limit_hits, 0, "without a limit hit");
    decide(t, "GET /exapps/bt/aaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_TO_EXAPP && d.route == &t->apps[0].routes[0],
       "a moderately costly match still matches (%u limit hits)", d.budget.limit_hits);
    table_unref(t);
}

/* Routes, the internal-endpoint guard and the app id all see one normalised path. */
static void
test_normalised_path(void)
{
    json_t *src = json_pack("{s:{s:s,s:s,s:s,s:i,s:[{s:s,s:i},{s:s,s:i}]}}", "pa", "exapp_token",
                            "t", "exapp_version", "1", "host", "h", "port", 1, "routes", "url",
                            "^/admin", "access_level", 2, "url", "^/.*", "access_level", 0);
    struct hp_err err;
    struct table *t = table_build(src, 1, &err);
    struct decision d;
    static const char *const admin[] = {"/%61dmin",   "//admin",     "/./admin",
                                        "/%2e/admin", "/x/../admin", "///%2E//%61%64min/"};
    static const char *const internal[] = {"/%69nit", "/%65nabled", "//heartbeat", "/./init",
                                           "/%2E/enabled"};
    static const char *const bad[] = {"/a%2fb", "/a%2Fb", "/a%00", "/a%zz", "/a%4",
                                      "/a%",    "/a%5cb", "/a\\b", "/../x"};
    char raw[256];
    size_t i;

    for (i = 0; i < sizeof(admin) / sizeof(admin[0]); i++) {
        snprintf(raw, sizeof(raw), "GET /exapps/pa%s HTTP/1.1\r\nHost: h\r\n\r\n", admin[i]);
        decide(t, raw, &d);
        if (strstr(admin[i], "..") != NULL) {
            IS_INT(d.verdict, VERDICT_DROP, "%s: traversal, dropped first", admin[i]);
            continue;
        }
        OK(d.verdict == VERDICT_FORBIDDEN &&
               span_eq(d.target, admin[i][strlen(admin[i]) - 1] == '/' ? "/admin/" : "/admin"),
           "%s meets the admin route", admin[i]);
    }
    for (i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
        snprintf(raw, sizeof(raw), "POST /exapps/pa%s HTTP/1.1\r\nHost: h\r\n\r\n", internal[i]);
        decide(t, raw, &d);
        OK(d.verdict == VERDICT_DROP && d.failure, "%s is internal", internal[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(raw, sizeof(raw), "GET /exapps/pa%s HTTP/1.1\r\nHost: h\r\n\r\n", bad[i]);
        decide(t, raw, &d);
        if (strstr(bad[i], "..") != NULL) {
            IS_INT(d.verdict, VERDICT_DROP, "%s: traversal, dropped first", bad[i]);
            continue;
        }
        OK(d.verdict == VERDICT_BAD_REQUEST && d.failure, "%s refused: %s", bad[i], d.why);
    }
    decide(t, "GET /exapps/pa/a%2Fb HTTP/1.1\r\nHost: h\r\nharp-shared-key: k3y\r\n\r\n", &d);
    OK(d.verdict == VERDICT_TO_EXAPP && span_eq(d.target, "/a%2Fb"),
       "an encoded '/' stays for key holders");
    decide(t, "GET /exapps/%70a//x/./%7e%c3%a9%3b?q=%2f HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_TO_EXAPP && span_eq(d.app_id, "pa") &&
           span_eq(d.target, "/x/~%C3%A9%3B"),
       "app id and target from the normalised path");
    decide(t, "GET /exapps/%61pp_api/info HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_UNAUTHORIZED && d.failure, "%%61pp_api is app_api: the key is needed");
    decide(t, "GET /exapps//app_api/info HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    IS_INT(d.verdict, VERDICT_UNAUTHORIZED, "/exapps//app_api is app_api");
    decide(t, "GET //exapps/app%5Fapi/info HTTP/1.1\r\nHost: h\r\nharp-shared-key: k3y\r\n\r\n",
           &d);
    OK(d.verdict == VERDICT_TO_CONTROL && span_eq(d.target, "/info"), "with the key: control");
    decide(t, "GET /exapps/p%41/admin HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_FORBIDDEN && span_eq(d.app_id, "pA"), "p%%41 is app pA (pa)");
    decide(t, "GET /exapps/p%2541/x HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    OK(d.verdict == VERDICT_LOOKUP && span_eq(d.app_id, "p%2541"), "%%25 stays encoded");
    decide(t, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &d);
    IS_INT(d.verdict, VERDICT_NOT_FOUND, "OPTIONS *: no app id, as before");
    table_unref(t);
}

int
main(void)
{
    test_backtracking_is_bounded();
    test_one_budget_per_request();
    test_normalised_path();
    test_helpers();
    test_decisions();
    return tap_done();
}
