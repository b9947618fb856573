/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The data plane's engine table: where a docker-engine-port leads, and API version prefixes
 * moved into the engine's accepted range (and nothing else touched). */
#include "config.h"

#include <stdlib.h>

#include "engine_map.h"
#include "tap.h"

static struct engine_map *map;

static const char *
rewrite(unsigned port, const char *target)
{
    static char buf[256];
    struct span t = {target, strlen(target)};
    size_t n = engine_map_rewrite(map, port, t, buf, sizeof(buf));

    if (n == 0) {
        return "(unchanged)";
    }
    buf[n] = '\0';
    return buf;
}

int
main(void)
{
    json_t *list = json_pack(
        "{s:s,s:[{s:i,s:s,s:i,s:s,s:s},{s:i,s:s,s:i,s:s,s:s},{s:i,s:s,s:i},{s:i,s:s,s:i,s:s,s:s},"
        "{s:i,s:b}]}",
        "type", "engines", "engines", "port", 24000, "address", "+/var/run/docker.sock", "tcp_port",
        0, "api_min", "1.12", "api_max", "1.41", "port", 24010, "address", "10.0.0.5", "tcp_port",
        2375, "api_min", "1.24", "api_max", "1.51", "port", 24011, "address", "127.0.0.1",
        "tcp_port", 24011, "port", 24012, "address", "127.0.0.1", "tcp_port", 24012, "api_min", "x",
        "api_max", "1.4.1", "port", 24013, "refused", 1);
    struct hp_err err;
    struct msg m;
    char host[128];
    unsigned port;

    IS_INT(msg_decode(list, MSG_FROM_CTL, &m, &err), 0, "the engines message decodes");
    map = engine_map_build(m.engines.engines, m.engines.nengines);
    msg_free(&m);
    json_decref(list);
    IS_INT(engine_map_count(map), 5, "every entry, the refused one included");

    engine_map_upstream(map, 24000, host, sizeof(host), &port);
    IS_STR(host, "+/var/run/docker.sock", "the local engine is its socket");
    IS_INT(port, 0, "no TCP port for a socket");
    engine_map_upstream(map, 24010, host, sizeof(host), &port);
    IS_STR(host, "10.0.0.5", "an operator's TCP engine");
    IS_INT(port, 2375, "at its own port");
    engine_map_upstream(map, 24050, host, sizeof(host), &port);
    IS_STR(host, "127.0.0.1", "an unknown port: 127.0.0.1 (a tunnel), as HaRP");
    IS_INT(port, 24050, "on that port");

    IS_STR(rewrite(24000, "/v1.44/_ping"), "/v1.41/_ping", "above the range: the engine's max");
    IS_STR(rewrite(24000, "/v1.9/containers/nc_app_x/json"), "/v1.12/containers/nc_app_x/json",
           "below the range: the engine's min");
    IS_STR(rewrite(24000, "/v1.41/_ping"), "(unchanged)", "the max itself");
    IS_STR(rewrite(24000, "/v1.12/_ping"), "(unchanged)", "the min itself");
    IS_STR(rewrite(24000, "/v1.30/images/a%2Fb/json"), "(unchanged)", "inside the range");
    IS_STR(rewrite(24000, "/v2.0/_ping"), "/v1.41/_ping", "a higher major version");
    IS_STR(rewrite(24000, "/v1.44"), "/v1.41", "a bare version");
    IS_STR(rewrite(24000, "/_ping"), "(unchanged)", "unversioned");
    IS_STR(rewrite(24000, "/v1/_ping"), "(unchanged)", "not a version: no minor");
    IS_STR(rewrite(24000, "/v1.44x/_ping"), "(unchanged)", "not a version: trailing text");
    IS_STR(rewrite(24000, "/V1.44/_ping"), "(unchanged)", "Docker's router wants a lower v");
    IS_STR(rewrite(24000, "/v.44/_ping"), "(unchanged)", "no major");
    IS_STR(rewrite(24000, "/v1.99999/_ping"), "(unchanged)", "too many digits");
    IS_STR(rewrite(24010, "/v1.44/_ping"), "(unchanged)", "inside another engine's range");
    IS_STR(rewrite(24010, "/v1.52/_ping?x=/v1.52"), "/v1.51/_ping?x=/v1.52",
           "only the prefix changes");
    IS_STR(rewrite(24011, "/v1.44/_ping"), "(unchanged)", "versions unknown: as sent");
    IS_STR(rewrite(24012, "/v1.44/_ping"), "(unchanged)", "malformed versions ignored");
    IS_STR(rewrite(24099, "/v1.44/_ping"), "(unchanged)", "unknown engine: as sent");
    engine_map_upstream(map, 24013, host, sizeof(host), &port);
    IS_STR(host, "127.0.0.1", "a refused engine is not an upstream");
    OK(engine_map_refused(map, 24013) && !engine_map_refused(map, 24000),
       "it is refused to tunnels");

    engine_map_unref(map);
    map = engine_map_build(NULL, 0);
    engine_map_upstream(map, 24000, host, sizeof(host), &port);
    IS_STR(host, "127.0.0.1", "an empty push forgets the engines");
    engine_map_unref(map);
    engine_map_upstream(NULL, 24000, host, sizeof(host), &port);
    IS_STR(host, "127.0.0.1", "no map yet: 127.0.0.1");
    return tap_done();
}
