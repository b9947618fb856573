/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Listening sockets we create ourselves (SO_REUSEPORT, so several harp-dp share a port),
 * adopted into lws as plain descriptors; each accepted socket is adopted as a raw socket. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"

/* What an accepting socket hands its connections to. */
struct listener {
    struct lws_vhost *vh;
    bool tls;
};

int
listen_fd(const char *addr, bool reuseport, struct hp_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char host[256];
    unsigned port;
    int fd, one = 1;

    memset(&ss, 0, sizeof(ss));
    if (env_parse_hostport(addr, host, sizeof(host), &port, err) == -1) {
        return -1;
    }
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        sl = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        sl = sizeof(struct sockaddr_in6);
    } else {
        err_set(err, "%s: not an IP address", host);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) ||
        bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 1024) == -1) {
        err_set(err, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

int
listen_start(const char *addr, struct lws_vhost *vh, bool tls, struct hp_err *err)
{
    struct listener *li;
    struct lws *w;
    lws_sock_file_fd_type d;
    int fd;

    if ((fd = listen_fd(addr, true, err)) == -1) {
        return -1;
    }
    d.filefd = fd;
    w = lws_adopt_descriptor_vhost(dp->vh, LWS_ADOPT_RAW_FILE_DESC, d, "harp-accept", NULL);
    if (w == NULL) {
        err_set(err, "cannot add the listener on %s to the event loop", addr);
        close(fd);
        return -1;
    }
    li = calloc(1, sizeof(*li));
    li->vh = vh;
    li->tls = tls;
    lws_set_opaque_user_data(w, li);
    log_info("listen: %s%s", addr, tls ? " (TLS)" : "");
    return 0;
}

int
listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct listener *li = lws_get_opaque_user_data(wsi);
    lws_sock_file_fd_type d;
    int lfd, cfd, n, one = 1;

    switch (reason) {
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        free(li);
        lws_set_opaque_user_data(wsi, NULL);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (li == NULL) {
            return 0;
        }
        lfd = lws_get_socket_fd(wsi);
        for (n = 0; n < 64; n++) {
            cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (cfd == -1) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                    log_warn("listen: accept");
                }
                break;
            }
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            d.sockfd = cfd;
            if (lws_adopt_descriptor_vhost(li->vh,
                                           LWS_ADOPT_SOCKET | (li->tls ? LWS_ADOPT_ALLOW_SSL : 0),
                                           d, "harp-client", NULL) == NULL) {
                /* lws closed the descriptor */
                log_warnx("listen: cannot adopt a connection");
            }
        }
        return 0;
    default:
        return 0;
    }
}
