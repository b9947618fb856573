/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* ExApp host names resolved off the event loop, with a short cache. */
#ifndef HARP_DP_RESOLVE_H
#define HARP_DP_RESOLVE_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#define RESOLVE_TTL_S 30
#define RESOLVE_NEGATIVE_TTL_S 5

enum resolve_result { RESOLVE_DONE, RESOLVE_FAILED, RESOLVE_PENDING };

/* An answer for <waiter>: <addr> is numeric, or NULL when the name does not resolve. */
typedef void (*resolve_cb)(void *ctx, void *waiter, const char *addr);

/* Numeric address for <host> in <out>: at once for an IP literal or a cached name
 * (RESOLVE_DONE / RESOLVE_FAILED), or later through the callback for <waiter>
 * (RESOLVE_PENDING; cancelled by resolve_forget(<waiter>)). The first IPv4 address, else the
 * first IPv6 one. */
enum resolve_result resolve_host(const char *host, char *out, size_t outlen, void *waiter);
/* Drops the cached address of <host> (after a connection to it failed). */
void resolve_invalidate(const char *host);
void resolve_forget(void *waiter);
/* Runs on the loop thread when it is woken: delivers finished look-ups. */
void resolve_deliver(void);
/* Starts the resolver thread, which wakes <ctx> when answers are ready; <cb> gets them. */
int resolve_start(struct lws_context *ctx, resolve_cb cb, void *cb_ctx);
/* Stops and joins the thread (at most one getaddrinfo() away) and drops the cache: before
 * <ctx> is destroyed. */
void resolve_stop(void);

#endif
