/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The routing table and the decision procedure of spec 2.3, in its order:
 * traversal -> path normalisation -> app id -> app_api -> AppAPI-signed -> table -> internal
 * paths -> routes.
 * Route patterns are Python `re` patterns applied with re.match: PCRE2, anchored at the start,
 * case-sensitive, byte mode, JIT-compiled once per table.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "route.h"
#include "secret.h"
#include "xmalloc.h"

static pcre2_match_data *match_data;
/* Bounds backtracking: a request's routes share one match budget (route_match); the depth
 * limit applies to each call. */
static pcre2_match_context *match_ctx;
#define MATCH_LIMIT 100000 /* the Docker allow-list's fixed patterns */
#define MATCH_DEPTH_LIMIT 10000

static void
match_init(void)
{
    if (match_data == NULL) {
        match_data = pcre2_match_data_create(4, NULL);
        match_ctx = pcre2_match_context_create(NULL);
        pcre2_set_match_limit(match_ctx, MATCH_LIMIT);
        pcre2_set_depth_limit(match_ctx, MATCH_DEPTH_LIMIT);
    }
}

static int
cmp_app(const void *a, const void *b)
{
    return strcmp(((const struct table_app *)a)->meta.app_id,
                  ((const struct table_app *)b)->meta.app_id);
}

static void
free_app(struct table_app *a)
{
    size_t i;

    for (i = 0; a->routes != NULL && i < a->meta.nroutes; i++) {
        pcre2_code_free(a->routes[i].re);
    }
    free(a->routes);
    exapp_free(&a->meta);
}

static void
compile_routes(struct table_app *a)
{
    size_t i, off;
    int errcode;
    PCRE2_UCHAR msg[128];

    a->routes = xcalloc(a->meta.nroutes, sizeof(*a->routes));
    for (i = 0; i < a->meta.nroutes; i++) {
        struct route *r = &a->routes[i];
        const struct exapp_route *src = &a->meta.routes[i];

        r->access_level = src->access_level;
        r->bruteforce = src->bruteforce;
        r->nbruteforce = src->nbruteforce;
        r->re = pcre2_compile((PCRE2_SPTR)src->url, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED, &errcode,
                              &off, NULL);
        if (r->re == NULL) {
            pcre2_get_error_message(errcode, msg, sizeof(msg));
            log_warnx("table: %s: route %zu does not compile (%s at offset %zu); skipped",
                      a->meta.app_id, i, (const char *)msg, off);
            continue;
        }
        pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
    }
}

struct table *
table_build_apps(struct exapp *apps, size_t n, int64_t version, struct hp_err *err)
{
    struct table *t = xcalloc(1, sizeof(*t));
    size_t i;

    match_init();
    t->refs = 1;
    t->version = version;
    t->apps = xcalloc(n + 1, sizeof(*t->apps));
    for (i = 0; i < n; i++) {
        t->apps[i].meta = apps[i];
        memset(&apps[i], 0, sizeof(apps[i]));
        compile_routes(&t->apps[i]);
    }
    t->napps = n;
    qsort(t->apps, t->napps, sizeof(*t->apps), cmp_app);
    for (i = 1; i < n; i++) {
        if (cmp_app(&t->apps[i - 1], &t->apps[i]) == 0) {
            err_set(err, "exapp %s twice", t->apps[i].meta.app_id);
            table_unref(t);
            return NULL;
        }
    }
    return t;
}

struct table *
table_build(json_t *source, int64_t version, struct hp_err *err)
{
    struct exapp *apps = xcalloc(json_object_size(source) + 1, sizeof(*apps));
    struct table *t = NULL;
    const char *k;
    json_t *v;
    size_t i = 0, n = 0;

    json_object_foreach(source, k, v)
    {
        struct hp_err e;

        if (exapp_from_json(v, &apps[n], &e) == -1 ||
            exapp_id_normalise(k, apps[n].app_id, &e) == -1) {
            err_set(err, "exapp %.64s: %s", k, e.msg);
            exapp_free(&apps[n]);
            goto done;
        }
        n++;
    }
    t = table_build_apps(apps, n, version, err);
done:
    for (i = 0; i < n; i++) {
        exapp_free(&apps[i]);
    }
    free(apps);
    json_decref(source);
    return t;
}

struct table *
table_ref(struct table *t)
{
    t->refs++;
    return t;
}

void
table_unref(struct table *t)
{
    size_t i;

    if (t == NULL || --t->refs > 0) {
        return;
    }
    for (i = 0; i < t->napps; i++) {
        free_app(&t->apps[i]);
    }
    free(t->apps);
    free(t);
}

const struct table_app *
table_find(const struct table *t, const char *app_id_lc)
{
    struct table_app key;

    memset(&key, 0, sizeof(key));
    if (t == NULL || t->napps == 0) {
        return NULL;
    }
    snprintf(key.meta.app_id, sizeof(key.meta.app_id), "%s", app_id_lc);
    return bsearch(&key, t->apps, t->napps, sizeof(*t->apps), cmp_app);
}

/* PCRE2 cannot say how much of its match limit a call used. So a route is tried with a small
 * limit first, doubled after each hit, and every try is charged in full: the charges bound the
 * work done, and cost at most twice the work plus ROUTE_MATCH_FIRST per route. */
int
route_match(const struct route *r, struct span target, struct match_budget *b)
{
    uint32_t limit = ROUTE_MATCH_FIRST;
    int rc;

    if (r->re == NULL) {
        return 0;
    }
    match_init();
    for (;;) {
        if (limit > b->left) {
            limit = b->left;
        }
        if (limit == 0) {
            return -1;
        }
        pcre2_set_match_limit(match_ctx, limit);
        rc = pcre2_match(r->re, (PCRE2_SPTR)target.p, target.n, 0, 0, match_data, match_ctx);
        b->left -= limit;
        if (rc != PCRE2_ERROR_MATCHLIMIT) {
            break;
        }
        b->limit_hits++;
        limit = limit > UINT32_MAX / 2 ? UINT32_MAX : limit * 2;
    }
    if (rc >= 0) {
        return 1;
    }
    return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

/* Length of <c> ('.' or '/', both 0x2X) or its escape "%2x"/"%2X" at <p>, or 0. */
static size_t
char_at(const char *p, const char *end, char c)
{
    char lo = "0123456789abcdef"[c & 15], up = "0123456789ABCDEF"[c & 15];

    if (p < end && *p == c) {
        return 1;
    }
    if (end - p >= 3 && p[0] == '%' && p[1] == '2' && (p[2] == lo || p[2] == up)) {
        return 3;
    }
    return 0;
}

/* HaRP's (?:^|/|%2[fF])(?:\.|%2[eE]){2}(?:/|%2[fF]|$), searched anywhere. */
bool
route_has_traversal(struct span path)
{
    const char *p = path.p, *end = path.p + path.n, *q;
    size_t i, n;

    for (i = 0; i <= path.n; i++) {
        bool boundary =
            i == 0 || p[i - 1] == '/' ||
            (i >= 3 && p[i - 3] == '%' && p[i - 2] == '2' && (p[i - 1] == 'f' || p[i - 1] == 'F'));

        if (!boundary) {
            continue;
        }
        q = p + i;
        if ((n = char_at(q, end, '.')) == 0) {
            continue;
        }
        q += n;
        if ((n = char_at(q, end, '.')) == 0) {
            continue;
        }
        q += n;
        if (q == end || char_at(q, end, '/') > 0) {
            return true;
        }
    }
    return false;
}

/* HaRP's (?:^|/)exapps/([^/]+), first match anywhere; the target is the path without the
 * literal prefix /exapps/<app_id> when the path starts with it, else the whole path. */
bool
route_app_id(struct span path, struct span *app_id, struct span *target)
{
    const char *p = path.p, *end = path.p + path.n, *s, *e;
    size_t i;

    for (i = 0; i + 7 <= path.n; i++) {
        if ((i != 0 && p[i - 1] != '/') || memcmp(p + i, "exapps/", 7) != 0) {
            continue;
        }
        s = p + i + 7;
        for (e = s; e < end && *e != '/'; e++) {
        }
        if (e == s) {
            continue;
        }
        *app_id = (struct span){s, (size_t)(e - s)};
        if (i == 1 && p[0] == '/') {
            *target = (struct span){e, (size_t)(end - e)};
        } else {
            *target = path;
        }
        if (target->n == 0) {
            *target = (struct span){"/", 1};
        }
        return true;
    }
    return false;
}

/* HaRP's Docker proxy allow-list (spec 2.8): matched case-insensitively on the URL-decoded
 * path (%XX only), unanchored at the end; GET covers HEAD. */
static const struct {
    const char *method;
    const char *re;
} docker_allow[] = {
    {"GET", "^(/v[\\d\\.]+)?/_ping$"},
    {"GET", "^(/v[\\d\\.]+)?/images/.*/json"},
    {"GET", "^(/v[\\d\\.]+)?/containers/nc_app_[a-zA-Z0-9_.-]+/json"},
    {"GET", "^(/v[\\d\\.]+)?/containers/nc_app_[a-zA-Z0-9_.-]+/logs"},
    {"POST", "^(/v[\\d\\.]+)?/images/create"},
};
static pcre2_code *docker_re[sizeof(docker_allow) / sizeof(docker_allow[0])];

static int
hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

bool
route_docker_allowed(struct span method, struct span target)
{
    char path[4096];
    size_t i, n = 0;
    int hi, lo;

    if (target.n >= sizeof(path)) {
        return false;
    }
    for (i = 0; i < target.n; i++) {
        if (target.p[i] == '%' && i + 2 < target.n && (hi = hexval(target.p[i + 1])) >= 0 &&
            (lo = hexval(target.p[i + 2])) >= 0) {
            path[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            path[n++] = target.p[i];
        }
    }
    match_init();
    pcre2_set_match_limit(match_ctx, MATCH_LIMIT);
    for (i = 0; i < sizeof(docker_allow) / sizeof(docker_allow[0]); i++) {
        bool get = strcmp(docker_allow[i].method, "GET") == 0;

        if (!(span_eq(method, docker_allow[i].method) || (get && span_eq(method, "HEAD")))) {
            continue;
        }
        if (docker_re[i] == NULL) {
            int errcode;
            PCRE2_SIZE off;

            docker_re[i] = pcre2_compile((PCRE2_SPTR)docker_allow[i].re, PCRE2_ZERO_TERMINATED,
                                         PCRE2_CASELESS, &errcode, &off, NULL);
        }
        if (docker_re[i] != NULL &&
            pcre2_match(docker_re[i], (PCRE2_SPTR)path, n, 0, 0, match_data, match_ctx) >= 0) {
            return true;
        }
    }
    return false;
}

bool
route_has_key(const struct http1_head *h, const char *key)
{
    const struct span *v = http1_header_get(h, "harp-shared-key");

    return v != NULL && secret_equal(v->p, v->n, key);
}

static const char *const signed_headers[] = {"ex-app-version",        "ex-app-id",
                                             "ex-app-host",           "ex-app-port",
                                             "authorization-app-api", "harp-shared-key"};

static bool
is_signed(const struct http1_head *h)
{
    size_t i;

    for (i = 0; i < sizeof(signed_headers) / sizeof(signed_headers[0]); i++) {
        if (http1_header_get(h, signed_headers[i]) == NULL) {
            return false;
        }
    }
    return true;
}

static void
set(struct decision *d, enum verdict v, bool failure, enum refusal_reason reason, const char *why)
{
    d->verdict = v;
    d->reason = reason;
    d->failure = failure;
    d->why = why;
}

static bool
parse_port(struct span s, unsigned *port)
{
    uint64_t v;

    if (!http1_parse_uint(s, 5, &v) || v < 1 || v > 65535) {
        return false;
    }
    *port = (unsigned)v;
    return true;
}

struct span
route_session_cookie(const struct http1_head *h)
{
    static const char name[] = "oc_sessionPassphrase";
    struct span found = {"", 0};
    size_t i, j, start, end, nl = sizeof(name) - 1;

    for (i = 0; i < h->nheaders; i++) {
        struct span v = h->headers[i].value;

        if (!span_ieq(h->headers[i].name, "cookie")) {
            continue;
        }
        for (j = 0; j < v.n;) {
            while (j < v.n && (v.p[j] == ' ' || v.p[j] == ';')) {
                j++;
            }
            start = j;
            while (j < v.n && v.p[j] != ';') {
                j++;
            }
            end = j;
            while (end > start && v.p[end - 1] == ' ') {
                end--;
            }
            if (end - start > nl && memcmp(v.p + start, name, nl) == 0 && v.p[start + nl] == '=') {
                found = (struct span){v.p + start + nl + 1, end - start - nl - 1};
            }
        }
    }
    return found;
}

static void
base64_auth(char *out, size_t outlen, const char *user, const char *token)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char in[768];
    size_t n, i, o = 0;

    n = (size_t)snprintf(in, sizeof(in), "%s:%s", user, token);
    if (n >= sizeof(in)) {
        n = sizeof(in) - 1;
    }
    for (i = 0; i + 2 < n && o + 4 < outlen; i += 3) {
        unsigned v =
            (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    if (i < n && o + 4 < outlen) {
        unsigned v = (unsigned char)in[i] << 16 | (i + 1 < n ? (unsigned char)in[i + 1] << 8 : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    secret_wipe(in, sizeof(in));
}

/* The path the decision is made on (and forwarded): normalised, so that an escape, a "//" or
 * a "/./" cannot walk past a route, the internal-endpoint guard or the app id. An encoded '/'
 * stays possible for key holders (AppAPI), who pass every check anyway. "*" (OPTIONS) stays. */
static enum http1_path_status
normalise(const struct http1_head *h, bool has_key, char *npath, struct span *out)
{
    enum http1_path_status st;
    size_t n = 0;

    if (h->path.n == 0 || h->path.p[0] != '/') {
        *out = h->path;
        return HTTP1_PATH_OK;
    }
    st = http1_path_normalise(h->path, 0, npath, &n);
    if (st == HTTP1_PATH_SLASH && has_key) {
        st = http1_path_normalise(h->path, HTTP1_PATH_KEEP_SLASH, npath, &n);
    }
    *out = (struct span){npath, n};
    return st;
}

/* AppAPI's endpoints on the ExApp, with or without a trailing '/' (which many routers
 * ignore: Express, Starlette's redirect). */
static bool
internal_endpoint(struct span t)
{
    static const char *const names[] = {"/heartbeat", "/init", "/enabled"};
    size_t i, n;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        n = strlen(names[i]);
        if ((t.n == n || (t.n == n + 1 && t.p[n] == '/')) && memcmp(t.p, names[i], n) == 0) {
            return true;
        }
    }
    return false;
}

void
route_decide(const struct table *t, const struct http1_head *h, char *npath, const char *key,
             bool looked_up, const struct user *user, struct decision *d)
{
    const struct span *v, *port;
    enum http1_path_status st;
    size_t i, n;
    bool has_key;
    int m;

    memset(d, 0, sizeof(*d));
    d->budget.left = ROUTE_MATCH_BUDGET;
    has_key = route_has_key(h, key);
    if (route_has_traversal(h->path)) {
        set(d, VERDICT_DROP, !has_key, REFUSAL_TRAVERSAL, "parent directory in the path");
        return;
    }
    if ((st = normalise(h, has_key, npath, &d->path)) != HTTP1_PATH_OK) {
        set(d, VERDICT_BAD_REQUEST, !has_key, REFUSAL_BAD_REQUEST, http1_path_error(st));
        return;
    }
    if (!route_app_id(d->path, &d->app_id, &d->target)) {
        set(d, VERDICT_NOT_FOUND, !has_key, REFUSAL_UNKNOWN_APP, "no app id in the path");
        return;
    }
    n = d->app_id.n < EXAPP_ID_MAX ? d->app_id.n : EXAPP_ID_MAX;
    for (i = 0; i < n; i++) {
        char c = d->app_id.p[i];

        d->app_id_lc[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    d->app_id_lc[n] = '\0';

    if (span_eq(d->app_id, "app_api")) {
        if (!has_key) {
            set(d, VERDICT_UNAUTHORIZED, true, REFUSAL_BAD_KEY,
                "app_api without a valid harp-shared-key");
            return;
        }
        port = http1_header_get(h, "docker-engine-port");
        if (port != NULL && port->n > 0 &&
            !(d->target.n >= 8 && memcmp(d->target.p, "/docker/", 8) == 0)) {
            if (!parse_port(*port, &d->docker_port)) {
                set(d, VERDICT_UNAVAILABLE, false, REFUSAL_BAD_ENGINE_PORT,
                    "docker-engine-port is not a port number");
                return;
            }
            if (!route_docker_allowed(h->method, d->target)) {
                set(d, VERDICT_DENIED, false, REFUSAL_DOCKER_DENIED,
                    "Docker call outside the allow-list");
                return;
            }
            set(d, VERDICT_TO_DOCKER, false, REFUSAL_NONE, "docker engine proxy");
            return;
        }
        set(d, VERDICT_TO_CONTROL, false, REFUSAL_NONE, "control API");
        return;
    }

    if (is_signed(h)) {
        if (!has_key) {
            set(d, VERDICT_DROP, true, REFUSAL_BAD_KEY,
                "signed request with a wrong harp-shared-key");
            return;
        }
        v = http1_header_get(h, "authorization-app-api");
        snprintf(d->auth, sizeof(d->auth), "%.*s", (int)v->n, v->p);
        d->app = table_find(t, d->app_id_lc);
        if (d->app != NULL) {
            snprintf(d->host, sizeof(d->host), "%s",
                     d->app->meta.resolved_host[0] ? d->app->meta.resolved_host
                                                   : d->app->meta.host);
            d->port = d->app->meta.port;
            d->version = (struct span){d->app->meta.version, strlen(d->app->meta.version)};
        } else {
            v = http1_header_get(h, "ex-app-host");
            snprintf(d->host, sizeof(d->host), "%.*s", (int)v->n, v->p);
            if (!parse_port(*http1_header_get(h, "ex-app-port"), &d->port)) {
                set(d, VERDICT_BAD_REQUEST, false, REFUSAL_BAD_REQUEST,
                    "ex-app-port is not a port number");
                return;
            }
            d->version = *http1_header_get(h, "ex-app-version");
        }
        set(d, VERDICT_TO_EXAPP, false, REFUSAL_NONE, "signed by AppAPI");
        return;
    }

    d->app = table_find(t, d->app_id_lc);
    if (d->app == NULL) {
        if (!looked_up) {
            set(d, VERDICT_LOOKUP, false, REFUSAL_NONE, "app not in the table");
        } else {
            set(d, VERDICT_NOT_FOUND, !has_key, REFUSAL_UNKNOWN_APP, "ExApp not found");
        }
        return;
    }
    if (internal_endpoint(d->target)) {
        set(d, VERDICT_DROP, true, REFUSAL_INTERNAL_GUARD,
            "internal ExApp endpoint without AppAPI's signature");
        return;
    }
    /* HaRP resolves the user before it looks at the routes, whenever there are credentials. */
    if (user->state == USER_UNRESOLVED &&
        (route_session_cookie(h).n > 0 || http1_header_get(h, "authorization") != NULL)) {
        set(d, VERDICT_AUTH, false, REFUSAL_NONE, "credentials to resolve");
        return;
    }
    if (user->state == USER_ERROR) {
        set(d, VERDICT_UNAUTHORIZED, false, REFUSAL_NO_USER,
            "Nextcloud cannot say who the user is");
        return;
    }
    for (i = 0; i < d->app->meta.nroutes; i++) {
        const struct route *r = &d->app->routes[i];

        if ((m = route_match(r, d->target, &d->budget)) == 0) {
            continue;
        }
        if (m < 0) {
            /* Never fall through to a later, maybe more permissive, route. */
            set(d, VERDICT_BAD_REQUEST, true, REFUSAL_MATCH_BUDGET,
                "route matching budget exhausted");
            return;
        }
        d->route = r;
        if (r->access_level != ACCESS_PUBLIC &&
            !(user->state == USER_KNOWN && r->access_level <= user->level)) {
            set(d, VERDICT_FORBIDDEN, true, REFUSAL_ACCESS_DENIED,
                "access level too low for the route");
            return;
        }
        snprintf(d->host, sizeof(d->host), "%s",
                 d->app->meta.resolved_host[0] ? d->app->meta.resolved_host : d->app->meta.host);
        d->port = d->app->meta.port;
        d->version = (struct span){d->app->meta.version, strlen(d->app->meta.version)};
        base64_auth(d->auth, sizeof(d->auth), user->state == USER_KNOWN ? user->id : "",
                    d->app->meta.token);
        set(d, VERDICT_TO_EXAPP, false, REFUSAL_NONE,
            r->access_level == ACCESS_PUBLIC ? "public route" : "user route");
        return;
    }
    set(d, VERDICT_NOT_FOUND, true, REFUSAL_NO_ROUTE, "no route matches");
}
