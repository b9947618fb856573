/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The FRP frontend on HP_FRP_ADDRESS (frps for unmodified frpc 0.61 clients). */
#ifndef HARP_DP_FRP_H
#define HARP_DP_FRP_H

#include "dp.h"
#include "msg.h"

/* Listens on HP_FRP_ADDRESS; TLS with client certificates from $HP_CERTS_DIR/frp unless
 * HP_FRP_DISABLE_TLS=true. -1 with <err>. */
int frp_start(struct hp_err *err);
void frp_stop(void);
/* The tunnels up, in a new array of as many: the number. */
size_t frp_tunnels(struct msg_tunnel **out);
/* Closes tunnels on engine ports an operator removed. */
void frp_enforce_refusals(void);

/* lws protocols: the listeners, client sessions, and users of the tunnels' ports. */
int frp_accept_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);
int frp_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len);
int frp_user_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#endif
