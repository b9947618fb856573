/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Client connections: request heads, decisions, forwarding, streaming, tunnels. */
#ifndef HARP_DP_PROXY_H
#define HARP_DP_PROXY_H

#include "dp.h"

struct conn;

int proxy_client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len);
int proxy_upstream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                            void *in, size_t len);
/* Starts the connection timer (one for all connections). */
void proxy_init(void);
/* Client connections open now. */
unsigned proxy_conn_count(void);
/* The control plane answered a look-up for <conn> (found or not, or the link went down:
 * <unavailable>). Called by ctl_link. */
/* Processes the input read during the last service turn. */
void proxy_run_ready(void);
void proxy_lookup_done(struct conn *c, bool unavailable);
/* The control plane said who the request's credentials belong to; <ttl_us> is how long this
 * answer may serve the same session cookie here (0: not at all). */
void proxy_auth_done(struct conn *c, const struct user *u, lws_usec_t ttl_us);
/* The resolver answered for <c>: <addr> is numeric, or NULL when the name does not resolve. */
void proxy_resolved(struct conn *c, const char *addr);

#endif
