/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The data plane's link to the control plane: tables in, look-ups out, reconnection. */
#ifndef HARP_DP_CTL_LINK_H
#define HARP_DP_CTL_LINK_H

#include <jansson.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "env.h"
#include "http1.h"
#include "route.h"

struct ctl_link;

/* What the link hands its owner; each called on the loop thread with <ctx>. */
struct ctl_link_handlers {
    void *ctx;
    /* A snapshot or delta gave the apps <source> (app_id -> exapp object; the reference moves
     * to the callee) for table <version>: 0 when applied (the link acks it), -1 with <err>
     * when refused (the old table keeps serving). */
    int (*on_table)(void *ctx, json_t *source, int64_t version, struct hp_err *err);
    /* The bans ([{ip, expires_at}]) and engines lists as pushed, borrowed. */
    void (*on_bans)(void *ctx, const json_t *bans);
    void (*on_engines)(void *ctx, const json_t *engines);
    /* The answer to ctl_link_lookup() / ctl_link_auth() for <waiter>. */
    void (*on_lookup_reply)(void *ctx, void *waiter, bool unavailable);
    void (*on_auth_reply)(void *ctx, void *waiter, const struct user *u, lws_usec_t ttl_us);
    /* The FRP tunnels to report, [{name, port, peer, since}] (a new reference); NULL: none. */
    json_t *(*tunnels)(void *ctx);
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
/* Asks the control plane who the credentials of a request are (<headers>, stolen, as
 * [[name, value], ...]); on_auth_reply(waiter, ...) follows as for look-ups. */
int ctl_link_auth(struct ctl_link *l, const char *app_id, struct span cookie, json_t *headers,
                  void *waiter);
/* Reports a failure of client <ip> (counted towards a ban). Dropped when the link is down. */
void ctl_link_failure(struct ctl_link *l, const char *ip);
/* Reports the FRP tunnels this data plane serves (the whole list, from the tunnels handler). */
void ctl_link_tunnels(struct ctl_link *l);
int ctl_link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#endif
