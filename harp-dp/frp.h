/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The FRP frontend on HP_FRP_ADDRESS (frps for unmodified frpc 0.61 clients); its parts and
 * design notes: frp_int.h. */
#ifndef HARP_DP_FRP_H
#define HARP_DP_FRP_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "env.h"
#include "err.h"
#include "msg.h"

/* How the frontend answers its owner. */
struct frp_hooks {
    void *ctx;
    /* A tunnel went up or down (frp_tunnels changed). */
    void (*tunnels_changed)(void *ctx);
    /* A login from <ip> with a wrong token (counts towards a ban). */
    void (*login_failed)(void *ctx, const char *ip);
    /* Whether <ip> is banned at unix time <now> (*<until>: till when); NULL: no bans. */
    bool (*banned)(void *ctx, const char *ip, int64_t now, int64_t *until);
    /* Whether an operator removed engine port <port>: no tunnel may take it; NULL: none. */
    bool (*engine_refused)(void *ctx, unsigned port);
};

struct frp_setup {
    struct lws_context *ctx;
    struct lws_vhost *vh; /* has the protocols below */
    const struct hp_config *cfg;
    const bool *stopping; /* true once the process stops */
    unsigned timeout_server_s;
    int frontend_fd; /* a listening socket taken over (upgrade.c), or -1: open one */
    bool paused;     /* the frontend accepts nothing until listen_resume() */
    struct frp_hooks hooks;
};

/* Listens on cfg->frp_address; TLS with client certificates from $HP_CERTS_DIR/frp unless
 * HP_FRP_DISABLE_TLS=true. -1 with <err>. */
int frp_start(const struct frp_setup *setup, struct hp_err *err);
void frp_stop(void);
/* Client sessions open (logged in or not). */
unsigned frp_session_count(void);
/* The tunnels up, in a new array of as many: the number. */
size_t frp_tunnels(struct msg_tunnel **out);
/* Closes tunnels on engine ports an operator removed, with their clients' sessions (the
 * clients reconnect and register again). */
void frp_enforce_refusals(void);
/* HP_TIMEOUT_SERVER changed (a reload): the idle limit of tunnels' users from now on. */
void frp_set_timeout_server(unsigned s);

/* lws protocols: the listeners, client sessions, and users of the tunnels' ports. */
int frp_accept_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);
int frp_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len);
int frp_user_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#endif
