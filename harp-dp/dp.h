/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The process-wide state of a data plane. One thread: no locks. */
#ifndef HARP_DP_DP_H
#define HARP_DP_DP_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "env.h"

struct ctl_link;

/* Created and filled by main() before the loop starts; read-only afterwards but for stopping. */
struct dp {
    struct hp_config cfg;
    char dp_id[64];
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct ctl_link *link;
    char ctl_host[256];
    unsigned ctl_port;
    unsigned timeout_client_s, timeout_server_s, timeout_tunnel_s, timeout_head_s;
    unsigned timeout_connect_s;
    unsigned max_conns;    /* client connections, HP_MAX_CONNECTIONS or from the fd limit */
    size_t max_head_bytes; /* unfinished request heads together, HP_MAX_HEAD_MEMORY */
    bool stopping;
    bool draining; /* handed over to a new harp-dp (upgrade.c): no new connections, no keep-alive */
    int exit_status;
};

extern struct dp *dp;

#endif
