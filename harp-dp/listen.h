/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef HARP_DP_LISTEN_H
#define HARP_DP_LISTEN_H

#include "dp.h"

/* A non-blocking listening socket on <addr> ("host:port", IP literals), with SO_REUSEPORT
 * when <reuseport>; -1 with <err>. */
int listen_fd(const char *addr, bool reuseport, struct hp_err *err);
/* Opens a SO_REUSEPORT listener on <addr> ("host:port") and adopts it into the loop; accepted
 * connections go to the "harp-client" protocol. 0, or -1 with <err>. */
int listen_start(const char *addr, struct lws_vhost *vh, bool tls, struct hp_err *err);
/* The TLS listeners' certificate and key file: loaded again when it changes (looked at before
 * each accept). */
void listen_tls_watch(const char *cert);

/* What a listening socket needs to back off when descriptors run out. */
struct accept_pause {
    struct lws *wsi; /* the adopted listener */
    lws_sorted_usec_list_t sul;
};
/* accept() on <p>'s listener failed with <err>. For EMFILE/ENFILE, closes one waiting
 * connection through the reserve descriptor or, without one, pauses the listener for a
 * moment; logs once a second at most. True when the caller may accept again. */
bool listen_shed(struct accept_pause *p, int err);
/* Opens the reserve descriptor if it is not open yet. */
void listen_reserve(void);
int listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len);

#endif
