/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The Docker engines the control plane last pushed: where each docker-engine-port leads and
 * which API versions the engine accepts. Built whole, immutable, refcounted. */
#ifndef HARP_DP_ENGINE_MAP_H
#define HARP_DP_ENGINE_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include "http1.h"
#include "msg.h"

struct engine_map;

/* A map built from the <n> <engines> (as msg_decode() gives them), with one reference for the
 * caller. */
struct engine_map *engine_map_build(const struct msg_engine *engines, size_t n);
struct engine_map *engine_map_ref(struct engine_map *m);
void engine_map_unref(struct engine_map *m);
size_t engine_map_count(const struct engine_map *m);
/* The upstream for engine port <port>: a listed engine's address ("+/path" for a Unix socket,
 * port 0), else 127.0.0.1:<port>. <m> may be NULL (no engines). */
void engine_map_upstream(const struct engine_map *m, unsigned port, char *host, size_t hostlen,
                         unsigned *up_port);
/* When <target> starts with an API version (/v1.44/...) outside the range engine <port>
 * accepts, writes the target with the nearest accepted version into <buf> and returns its
 * length; 0 when it stays as it is. */
size_t engine_map_rewrite(const struct engine_map *m, unsigned port, struct span target, char *buf,
                          size_t len);
/* True when engine port <port> was removed by an operator: FRP tunnels on it are refused. */
bool engine_map_refused(const struct engine_map *m, unsigned port);

#endif
