/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The Docker engines the control plane last pushed: where each docker-engine-port leads and
 * which API versions the engine accepts. One thread. */
#ifndef HARP_DP_ENGINE_MAP_H
#define HARP_DP_ENGINE_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include "http1.h"
#include "msg.h"

/* Replaces the list with the <n> <engines> (as msg_decode() gives them). */
void engines_replace(const struct msg_engine *engines, size_t n);
/* The upstream for engine port <port>: a listed engine's address ("+/path" for a Unix socket,
 * port 0), else 127.0.0.1:<port>. */
void engines_upstream(unsigned port, char *host, size_t hostlen, unsigned *up_port);
/* When <target> starts with an API version (/v1.44/...) outside the range engine <port>
 * accepts, writes the target with the nearest accepted version into <buf> and returns its
 * length; 0 when it stays as it is. */
size_t engines_rewrite(unsigned port, struct span target, char *buf, size_t len);

/* True when engine port <port> was removed by an operator: FRP tunnels on it are refused. */
bool engines_refused(unsigned port);

#endif
