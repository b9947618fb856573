/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The data plane's link to the control plane: tables in, look-ups out, reconnection. */
#ifndef HARP_DP_CTL_LINK_H
#define HARP_DP_CTL_LINK_H

#include <stdbool.h>

#include "dp.h"
#include "msg.h"

struct conn;
struct ctl_link;

struct ctl_link *ctl_link_start(void);
void ctl_link_stop(struct ctl_link *l);
bool ctl_link_up(const struct ctl_link *l);
/* Asks the control plane about <app_id> for <c>; proxy_lookup_done(c, ...) follows exactly
 * once unless ctl_link_forget(c) comes first. -1 (and no callback) when the link is down. */
int ctl_link_lookup(struct ctl_link *l, const char *app_id, struct conn *c);
void ctl_link_forget(struct ctl_link *l, struct conn *c);
/* Asks the control plane who the credentials of a request are: <cookie>, and the <n> <headers>
 * (stolen: the array and each value, from malloc); proxy_auth_done(c, ...) follows as for
 * look-ups. */
int ctl_link_auth(struct ctl_link *l, const char *app_id, struct span cookie,
                  struct msg_header *headers, size_t n, struct conn *c);
/* Reports a failure of client <ip> (counted towards a ban). Dropped when the link is down. */
void ctl_link_failure(struct ctl_link *l, const char *ip);
/* Reports the FRP tunnels this data plane serves (the whole list). */
void ctl_link_tunnels(struct ctl_link *l);
int ctl_link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#endif
