/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The life of one request on a client connection: decisions, forwarding, refusals. */
#ifndef HARP_DP_REQUEST_H
#define HARP_DP_REQUEST_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "refusal.h"
#include "route.h"

struct conn;

/* Hands conn.c the request layer's handlers and starts its timer. */
void request_init(void);
/* The one exit of a refused request: answers <status> with the page of <reason> (keeping the
 * connection when the request was read whole and may be kept), or drops the connection
 * without an answer when <status> is 0, and logs the refusal once with <why> and
 * reason=<name>. */
void request_fail(struct conn *c, unsigned status, enum refusal_reason reason, const char *why);

/* Answers to the look-ups of a paused request <waiter> (a struct conn), handed to ctl_link
 * and resolve by main. <ctx> is unused. The control plane answered a look-up (found or not,
 * or the link went down: <unavailable>). */
void request_lookup_done(void *ctx, void *waiter, bool unavailable);
/* The control plane said who the request's credentials belong to; <ttl_us> is how long this
 * answer may serve the same session cookie here (0: not at all). */
void request_auth_done(void *ctx, void *waiter, const struct user *u, lws_usec_t ttl_us);
/* The resolver answered: <addr> is numeric, or NULL when the name does not resolve. */
void request_resolved(void *ctx, void *waiter, const char *addr);

#endif
