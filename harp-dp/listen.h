/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef HARP_DP_LISTEN_H
#define HARP_DP_LISTEN_H

#include <sys/socket.h>

#include "dp.h"

/* The socket address of <addr> ("host:port", IP literals): 0, or -1 with <err>. */
int listen_addr(const char *addr, struct sockaddr_storage *out, socklen_t *outlen,
                struct hp_err *err);
/* A non-blocking listening socket on <addr> ("host:port", IP literals), with SO_REUSEPORT
 * when <reuseport>; -1 with <err>. */
int listen_fd(const char *addr, bool reuseport, struct hp_err *err);
/* The listening sockets a data plane hands over to its successor (upgrade.c). */
enum listen_role { LISTEN_HTTP, LISTEN_HTTPS, LISTEN_FRP, LISTEN_NROLES };
/* Adopts listening socket <fd> into the loop or, when <fd> is -1, opens a SO_REUSEPORT one on
 * <addr> ("host:port"); accepted connections go to the "harp-client" protocol (TLS for
 * LISTEN_HTTPS). <paused>: it accepts nothing until listen_resume(). 0, or -1 with <err>
 * (<fd> is closed). */
int listen_start(enum listen_role role, const char *addr, struct lws_vhost *vh, int fd, bool paused,
                 struct hp_err *err);
/* Remembers <w> (adopted listening socket) as the listener of <role>; forgotten when it
 * closes (listen_forget from its close callback). */
void listen_register(enum listen_role role, struct lws *w);
void listen_forget(struct lws *w);
/* The descriptor of each role's listener, -1 for none. */
void listen_fds(int fds[LISTEN_NROLES]);
/* Paused listeners accept again. */
void listen_resume(void);
/* Closes this process's listeners at once, so not from their own callbacks (another
 * process may hold the same sockets: they stay open there, with their queues). */
void listen_stop(void);
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
