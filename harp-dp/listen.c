/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Listening sockets we create ourselves (SO_REUSEPORT, so several harp-dp share a port),
 * adopted into lws as plain descriptors; each accepted socket is adopted as a raw socket.
 * Beyond HP_MAX_CONNECTIONS a connection is answered 503 (TLS: closed) at once. Out of
 * descriptors, a reserve descriptor is given up to take the next connection off the queue and
 * close it (or, without one, accepting pauses for a moment), instead of a listener that stays
 * readable and an accept that fails on every turn. Both are logged once a second at most.
 * The HTTPS certificate is reloaded when its file changes. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "dp.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "refusal.h"

#define PAUSE_US (100 * 1000)

/* What an accepting socket hands its connections to. */
struct listener {
    struct lws_vhost *vh;
    bool tls;
    struct accept_pause pause;
};

static int reserve_fd = -1;
static struct lws *registered[LISTEN_NROLES]; /* listen_register */
static bool paused_all;                       /* until listen_resume() */
static struct log_rate cap_log, fd_log;
static char *tls_cert;            /* the HTTPS certificate and key file (listen_tls_watch) */
static struct timespec tls_mtime; /* as last loaded */

/* Closes a connection over HP_MAX_CONNECTIONS: a 503 first on plain HTTP. What the client
 * already sent is read so that the close does not reset the answer away. */
static void
refuse(int fd, bool tls)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 52\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "503 Service Unavailable (HaRP): too many connections";
    char buf[4096];
    unsigned long n;

    if (!tls && send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
        shutdown(fd, SHUT_WR);
    }
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
    close(fd);
    dp_counters.refusals[REFUSAL_OVER_CAPACITY]++;
    if (log_rate_ok(&cap_log, 1, &n)) {
        log_warnx("listen: %lu connection(s) refused: %u open, the limit (HP_MAX_CONNECTIONS) "
                  "reason=%s",
                  n + 1, conn_count(), refusal_name(REFUSAL_OVER_CAPACITY));
    }
}

static void
resume(lws_sorted_usec_list_t *sul)
{
    struct accept_pause *p = lws_container_of(sul, struct accept_pause, sul);

    if (!paused_all) {
        lws_rx_flow_control(p->wsi, 1);
    }
}

void
listen_register(enum listen_role role, struct lws *w)
{
    registered[role] = w;
}

void
listen_forget(struct lws *w)
{
    int i;

    for (i = 0; i < LISTEN_NROLES; i++) {
        if (registered[i] == w) {
            registered[i] = NULL;
        }
    }
}

void
listen_fds(int fds[LISTEN_NROLES])
{
    int i;

    for (i = 0; i < LISTEN_NROLES; i++) {
        fds[i] = registered[i] != NULL ? lws_get_socket_fd(registered[i]) : -1;
    }
}

void
listen_resume(void)
{
    int i;

    paused_all = false;
    for (i = 0; i < LISTEN_NROLES; i++) {
        if (registered[i] != NULL) {
            lws_rx_flow_control(registered[i], 1);
        }
    }
}

void
listen_stop(void)
{
    int i;

    for (i = 0; i < LISTEN_NROLES; i++) {
        if (registered[i] != NULL) {
            /* at once: an asynchronous kill waits for lws's next timeout check (a second) */
            lws_set_timeout(registered[i], PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_SYNC);
            registered[i] = NULL;
        }
    }
}

void
listen_reserve(void)
{
    if (reserve_fd == -1) {
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
}

/* Design in the comment at the top. */
bool
listen_shed(struct accept_pause *p, int err)
{
    unsigned long n;
    int fd = -1, lfd = lws_get_socket_fd(p->wsi);

    if (err != EMFILE && err != ENFILE) {
        if (err != EAGAIN && err != EINTR && err != ECONNABORTED) {
            log_warnx("listen: accept: %s", strerror(err));
        }
        return err == EINTR || err == ECONNABORTED;
    }
    if (log_rate_ok(&fd_log, 1, &n)) {
        log_warnx("listen: out of file descriptors (%s): %lu connection(s) closed unserved",
                  strerror(err), n + 1);
    }
    if (reserve_fd != -1) {
        close(reserve_fd);
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd != -1) {
            close(fd);
        }
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (fd != -1 && reserve_fd != -1) {
        return true;
    }
    lws_rx_flow_control(p->wsi, 0);
    lws_sul_schedule(dp->ctx, 0, &p->sul, resume, PAUSE_US);
    return false;
}

int
listen_addr(const char *addr, struct sockaddr_storage *out, socklen_t *outlen, struct hp_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char host[256];
    unsigned port;

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
    *out = ss;
    *outlen = sl;
    return 0;
}

int
listen_fd(const char *addr, bool reuseport, struct hp_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1;

    if (listen_addr(addr, &ss, &sl, err) == -1) {
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
listen_start(enum listen_role role, const char *addr, struct lws_vhost *vh, int fd, bool paused,
             struct hp_err *err)
{
    struct listener *li;
    struct lws *w;
    lws_sock_file_fd_type d;
    bool tls = role == LISTEN_HTTPS;

    if (fd == -1 && (fd = listen_fd(addr, true, err)) == -1) {
        return -1;
    }
    d.filefd = fd;
    w = lws_adopt_descriptor_vhost(dp->vh, LWS_ADOPT_RAW_FILE_DESC, d, "harp-accept", NULL);
    if (w == NULL) {
        err_set(err, "cannot add the listener on %s to the event loop", addr);
        close(fd);
        return -1;
    }
    listen_reserve();
    li = calloc(1, sizeof(*li));
    li->vh = vh;
    li->tls = tls;
    li->pause.wsi = w;
    lws_set_opaque_user_data(w, li);
    listen_register(role, w);
    if (paused) {
        paused_all = true;
        lws_rx_flow_control(w, 0);
    }
    log_info("listen: %s%s%s", addr, tls ? " (TLS)" : "", paused ? " (taken over, paused)" : "");
    return 0;
}

void
listen_tls_watch(const char *cert)
{
    struct stat sb;

    free(tls_cert);
    tls_cert = strdup(cert);
    if (stat(cert, &sb) == 0) {
        tls_mtime = sb.st_mtim;
    }
}

/* Before the TLS listener accepts: when the certificate file changed and holds a certificate
 * and its key, the vhost's TLS context takes them. New connections get the new certificate;
 * those open keep theirs. */
static void
tls_maybe_reload(struct lws *wsi)
{
    struct stat sb;
    SSL_CTX *check;
    bool ok;

    if (tls_cert == NULL || stat(tls_cert, &sb) != 0 ||
        (sb.st_mtim.tv_sec == tls_mtime.tv_sec && sb.st_mtim.tv_nsec == tls_mtime.tv_nsec)) {
        return;
    }
    tls_mtime = sb.st_mtim;
    check = SSL_CTX_new(TLS_server_method());
    ok = check != NULL && SSL_CTX_use_certificate_chain_file(check, tls_cert) == 1 &&
         SSL_CTX_use_PrivateKey_file(check, tls_cert, SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_check_private_key(check) == 1;
    SSL_CTX_free(check);
    ERR_clear_error();
    if (!ok) {
        log_warnx("listen: %s changed but does not hold a certificate and its key; the "
                  "previous one is kept",
                  tls_cert);
        return;
    }
    lws_tls_cert_updated(lws_get_context(wsi), tls_cert, tls_cert, NULL, 0, NULL, 0);
    ERR_clear_error();
    log_notice("listen: HTTPS certificate %s reloaded", tls_cert);
}

int
listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct listener *li = lws_get_opaque_user_data(wsi);
    lws_sock_file_fd_type d;
    int lfd, cfd, n, one = 1;

    switch (reason) {
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        listen_forget(wsi);
        if (li != NULL) {
            lws_sul_cancel(&li->pause.sul);
        }
        free(li);
        lws_set_opaque_user_data(wsi, NULL);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (li == NULL) {
            return 0;
        }
        if (li->tls) {
            tls_maybe_reload(wsi);
        }
        lfd = lws_get_socket_fd(wsi);
        for (n = 0; n < 64; n++) {
            cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (cfd == -1) {
                if (listen_shed(&li->pause, errno)) {
                    continue;
                }
                break;
            }
            if (conn_count() >= dp->max_conns) {
                refuse(cfd, li->tls);
                continue;
            }
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            d.sockfd = cfd;
            /* plain: RAW_FILE, so conn.c sees a half-close (conn.c design note 9) */
            if (lws_adopt_descriptor_vhost(li->vh,
                                           li->tls ? LWS_ADOPT_SOCKET | LWS_ADOPT_ALLOW_SSL
                                                   : LWS_ADOPT_RAW_FILE_DESC,
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
