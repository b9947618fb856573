/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The data plane's link to the control plane: tables in, look-ups out, reconnection. */
#ifndef HARP_DP_CTL_LINK_H
#define HARP_DP_CTL_LINK_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "env.h"
#include "http1.h"
#include "msg.h"
#include "route.h"

struct ctl_link;

/* What the link hands its owner; each called on the loop thread with <ctx>. Everything it
 * hands over was decoded and validated by msg_decode(). */
struct ctl_link_handlers {
    void *ctx;
    /* The table serving now (NULL: none yet): the base a delta applies to. */
    const struct table *(*current)(void *ctx);
    /* A snapshot or delta gave the <n> <apps> (their contents move to the callee) for table
     * <version>: 0 when applied (the link acks it), -1 with <err> when refused (the old table
     * keeps serving). */
    int (*on_table)(void *ctx, struct exapp *apps, size_t n, int64_t version, struct hp_err *err);
    /* The bans and engines lists as pushed, borrowed. */
    void (*on_bans)(void *ctx, const struct msg_ban *bans, size_t n);
    void (*on_engines)(void *ctx, const struct msg_engine *engines, size_t n);
    /* The settings harp-ctl changed at a reload, borrowed. */
    void (*on_settings)(void *ctx, const struct msg_settings *s);
    /* The answer to ctl_link_lookup() / ctl_link_auth() for <waiter>. */
    void (*on_lookup_reply)(void *ctx, void *waiter, bool unavailable);
    void (*on_auth_reply)(void *ctx, void *waiter, const struct user *u, lws_usec_t ttl_us);
    /* The FRP tunnels to report, in a new array *<out> for the link to free; NULL: none. */
    size_t (*tunnels)(void *ctx, struct msg_tunnel **out);
};

/* Connects (and reconnects) to HP_CTL_SOCKET; <h> must outlive the link. */
struct ctl_link *ctl_link_start(const struct ctl_link_handlers *h);
/* Frees the link, dropping pending look-ups without answers; before the lws context is
 * destroyed (its timers live there). */
void ctl_link_stop(struct ctl_link *l);
bool ctl_link_up(const struct ctl_link *l);
/* Asks the control plane about <app_id> for <waiter>; on_lookup_reply(waiter, ...) follows
 * exactly once unless ctl_link_forget(waiter) comes first. -1 (and no callback) when the link
 * is down. */
int ctl_link_lookup(struct ctl_link *l, const char *app_id, void *waiter);
void ctl_link_forget(struct ctl_link *l, void *waiter);
/* Asks the control plane who the credentials of a request are: <cookie>, and the <n> <headers>
 * (stolen: the array and each value, from malloc); on_auth_reply(waiter, ...) follows as for
 * look-ups. */
int ctl_link_auth(struct ctl_link *l, const char *app_id, struct span cookie,
                  struct msg_header *headers, size_t n, void *waiter);
/* Reports a failure of client <ip> (counted towards a ban). Dropped when the link is down. */
void ctl_link_failure(struct ctl_link *l, const char *ip);
/* Reports the FRP tunnels this data plane serves (the whole list, from the tunnels handler). */
void ctl_link_tunnels(struct ctl_link *l);
int ctl_link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#endif
