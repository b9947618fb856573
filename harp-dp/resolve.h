/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* ExApp host names resolved off the event loop, with a short cache. */
#ifndef HARP_DP_RESOLVE_H
#define HARP_DP_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct conn;

#define RESOLVE_TTL_S 30
#define RESOLVE_NEGATIVE_TTL_S 5

enum resolve_result { RESOLVE_DONE, RESOLVE_FAILED, RESOLVE_PENDING };

/* Numeric address for <host> in <out>: at once for an IP literal or a cached name
 * (RESOLVE_DONE / RESOLVE_FAILED), or later through proxy_resolved(<c>, ...) (RESOLVE_PENDING;
 * cancelled by resolve_forget(<c>)). The first IPv4 address, else the first IPv6 one. */
enum resolve_result resolve_host(const char *host, char *out, size_t outlen, struct conn *c);
/* Drops the cached address of <host> (after a connection to it failed). */
void resolve_invalidate(const char *host);
void resolve_forget(struct conn *c);
/* Runs on the loop thread when it is woken: delivers finished look-ups. */
void resolve_deliver(void);
int resolve_start(void);
void resolve_stop(void);

#endif
