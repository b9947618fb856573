/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The decision procedure on arbitrary request heads against a fixed table. Invariants: every
 * verdict is a known one; a forwarded request never contains a parent-directory segment; the
 * app id and target are views into the request's path; only app_api goes to the control API
 * and only with the key; a Docker call's version rewrite keeps everything after the version. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine_map.h"
#include "http1.h"
#include "route.h"

const char fuzz_target_name[] = "route";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct table *
table(void)
{
    static struct table *t;
    struct hp_err err;

    if (t == NULL) {
        t = table_build(json_pack("{s:{s:s,s:s,s:s,s:i,s:[{s:s,s:i},{s:s,s:i},{s:s,s:i}]}}", "app",
                                  "exapp_token", "t", "exapp_version", "1", "host", "127.0.0.1",
                                  "port", 23000, "routes", "url", "^/p(ub)?", "access_level", 0,
                                  "url", "^/u", "access_level", 1, "url", "(a+)+$", "access_level",
                                  0),
                        1, &err);
        assert(t != NULL);
    }
    return t;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_head h;
    struct decision d;
    struct user u = {.id = "u"};

    if (size < 16) {
        return 0;
    }
    if (http1_parse_request(buf, size, &h) != HTTP1_OK) {
        return 0;
    }
    u.state = (enum user_state)(size % 4);
    u.level = (int)(size % 3);
    static char npath[HTTP1_MAX_HEAD];

    route_decide(table(), &h, npath, "key", size & 1, &u, &d);
    assert(d.verdict >= VERDICT_DROP && d.verdict <= VERDICT_TO_DOCKER);
    assert(d.verdict != VERDICT_AUTH || u.state == USER_UNRESOLVED);
    if (d.verdict == VERDICT_TO_EXAPP || d.verdict == VERDICT_TO_CONTROL ||
        d.verdict == VERDICT_TO_DOCKER) {
        assert(!route_has_traversal(h.path));
        assert(d.path.n <= h.path.n);
        assert(d.app_id.p >= d.path.p && d.app_id.p + d.app_id.n <= d.path.p + d.path.n);
        assert(d.target.n > 0);
        if (d.path.p == npath) {
            /* forwarded paths are normalised: no escape of an unreserved character, no "//",
             * no dot segment, no lower-case hex */
            size_t i;

            for (i = 0; i < d.path.n; i++) {
                assert(d.path.p[i] != '\\');
                if (d.path.p[i] == '%') {
                    assert(i + 2 < d.path.n);
                    assert(!(d.path.p[i + 1] >= 'a' && d.path.p[i + 1] <= 'f'));
                    assert(!(d.path.p[i + 2] >= 'a' && d.path.p[i + 2] <= 'f'));
                }
                if (d.path.p[i] == '/' && i + 1 < d.path.n) {
                    assert(d.path.p[i + 1] != '/');
                    assert(
                        !(d.path.p[i + 1] == '.' && (i + 2 == d.path.n || d.path.p[i + 2] == '/')));
                }
            }
            assert(d.budget.left <= ROUTE_MATCH_BUDGET);
        }
    }
    if (d.verdict == VERDICT_TO_DOCKER) {
        static struct engine_map *engines;
        static char out[HTTP1_MAX_HEAD];
        size_t n;

        if (engines == NULL) {
            struct msg_engine e = {.port = 24000,
                                   .address = "+/run/docker.sock",
                                   .api_min = "1.12",
                                   .api_max = "1.41"};

            engines = engine_map_build(&e, 1);
        }
        n = engine_map_rewrite(engines, d.docker_port, d.target, out, sizeof(out));
        if (n > 0) {
            const char *rest = memchr(d.target.p + 1, '/', d.target.n - 1);
            size_t rlen = rest != NULL ? (size_t)(d.target.p + d.target.n - rest) : 0;

            assert(d.docker_port == 24000);
            assert(n >= 5 && (memcmp(out, "/v1.12", 6) == 0 || memcmp(out, "/v1.41", 6) == 0));
            assert(n - 6 == rlen && (rlen == 0 || memcmp(out + 6, rest, rlen) == 0));
        }
    }
    if (d.verdict == VERDICT_TO_CONTROL) {
        assert(span_eq(d.app_id, "app_api"));
        assert(http1_header_get(&h, "harp-shared-key") != NULL);
    }
    return 0;
}
