/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The FRP frontend's listeners and connections (frp_int.h): the frontend port and the tunnels'
 * ports, TLS with client certificates (reloaded when server.crt changes), and the lws
 * side of sessions: their bytes, heartbeat timer, login deadline and output. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "canon.h"
#include "frp_int.h"
#include "listen.h"
#include "log.h"
#include "xmalloc.h"

/* A listening socket: the frontend, or one proxy's port. */
struct flistener {
    bool frontend;
    struct proxy *px; /* a proxy's port; NULL once the proxy is gone */
    struct accept_pause pause;
};

static struct frp_setup setup;
static SSL_CTX *tls_ctx;
static X509 *tls_ca;      /* the current CA (the first in ca.crt) */
static X509 *tls_revoked; /* revoked.crt: its sessions are closed at a reload */
static bool tls_required;
static struct timespec tls_mtime;
static unsigned npending; /* sessions that have not logged in */

static bool
stopping(void)
{
    return *setup.stopping;
}

/* --- the transport of sessions ----------------------------------------------------------- */

static void
io_kick(struct session *s)
{
    if (s->wsi != NULL && !stopping()) {
        lws_callback_on_writable(s->wsi);
    }
}

static void
io_closed(struct session *s)
{
    lws_sul_cancel(&s->sul);
    if (s->wsi != NULL && !stopping()) {
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    }
}

static void
io_logged_in(struct session *s)
{
    npending--;
    if (s->wsi != NULL) {
        lws_set_timeout(s->wsi, NO_PENDING_TIMEOUT, 0);
    }
}

static const struct frp_io lws_io = {io_kick, io_closed, io_logged_in};

static void
on_ping_timer(lws_sorted_usec_list_t *sul)
{
    struct session *s = lws_container_of(sul, struct session, sul);

    session_tick(s, lws_now_usecs());
    if (s->stage != SS_DEAD) {
        lws_sul_schedule(setup.ctx, 0, &s->sul, on_ping_timer, FRP_PING_WAIT_S * LWS_US_PER_SEC);
    }
}

/* --- proxies' ports ---------------------------------------------------------------------- */

/* Binds 127.0.0.1:<port> for <px>: NULL with <why>. */
static void *
port_open(struct proxy *px, const char **why)
{
    lws_sock_file_fd_type d;
    struct flistener *fl;
    struct hp_err err;
    struct lws *w;
    char addr[32];
    int fd;

    snprintf(addr, sizeof(addr), "127.0.0.1:%u", px->port);
    if ((fd = listen_fd(addr, false, &err)) == -1) {
        *why = "port unavailable";
        return NULL;
    }
    d.filefd = fd;
    w = lws_adopt_descriptor_vhost(setup.vh, LWS_ADOPT_RAW_FILE_DESC, d, "harp-frp-accept", NULL);
    if (w == NULL) {
        *why = "port unavailable";
        return NULL;
    }
    fl = xcalloc(1, sizeof(*fl));
    fl->px = px;
    fl->pause.wsi = w;
    lws_set_opaque_user_data(w, fl);
    return w;
}

/* Closed at once (never from its own callback), so the port is free for the next NewProxy:
 * a client that logs in again with its run_id gets it back. */
static void
port_close(void *listener)
{
    struct flistener *fl = lws_get_opaque_user_data(listener);

    if (fl != NULL) {
        fl->px = NULL;
    }
    if (!stopping()) {
        lws_set_timeout(listener, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_SYNC);
    }
}

/* --- TLS --------------------------------------------------------------------------------- */

/* Moves what TLS produced for the network into the socket queue. */
static void
tls_pull(struct session *s, struct buf *net)
{
    uint8_t b[16384];
    int n;

    while ((n = BIO_read(SSL_get_wbio(s->ssl), b, sizeof(b))) > 0) {
        fbuf_add(net, b, (size_t)n);
    }
}

static const char *
tls_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_get_error());

    ERR_clear_error();
    return r != NULL ? r : "no reason given";
}

/* Whether <s>'s client certificate is signed by <ca>'s key. */
static bool
issued_by(const struct session *s, X509 *ca)
{
    X509 *peer = s->ssl != NULL ? SSL_get_peer_certificate(s->ssl) : NULL;
    EVP_PKEY *k = ca != NULL ? X509_get0_pubkey(ca) : NULL;
    bool yes = peer != NULL && k != NULL && X509_verify(peer, k) == 1;

    X509_free(peer);
    ERR_clear_error();
    return yes;
}

/* The key that signed the client's certificate, as the verified chain has it: the control
 * plane compares it with the current CA's to tell clients that moved to a rotated CA from
 * those still on the old one, whatever files this data plane has loaded yet. */
static void
note_issuer(struct session *s)
{
    STACK_OF(X509) *chain = SSL_get0_verified_chain(s->ssl);

    s->issuer_key[0] = '\0';
    if (chain != NULL && sk_X509_num(chain) >= 2) {
        canon_pubkey_sha256(X509_get0_pubkey(sk_X509_value(chain, 1)), s->issuer_key);
    }
}

/* The first bytes decide: TLS, or plain yamux. -1 with *<why> when the session must close. */
static int
session_rx(struct session *s, const uint8_t *p, size_t len, const char **why)
{
    uint8_t b[16384];
    int n, e;
    BIO *rb, *wb;

    *why = "protocol error";
    if (s->stage == SS_SNIFF) {
        if (p[0] == 0x16 || p[0] == 0x17) {
            if (tls_ctx == NULL) {
                log_info("frp: TLS from %s but %s; closed", s->ip,
                         tls_required ? "the certificates are not there yet" : "TLS is disabled");
                return -1;
            }
            if (p[0] == 0x17) {
                p++;
                len--;
            }
            rb = BIO_new(BIO_s_mem());
            wb = BIO_new(BIO_s_mem());
            if ((s->ssl = SSL_new(tls_ctx)) == NULL || rb == NULL || wb == NULL) {
                log_warnx("frp: no TLS session from OpenSSL for %s: %s", s->ip, tls_reason());
                BIO_free(rb);
                BIO_free(wb);
                *why = "out of memory";
                return -1;
            }
            SSL_set_bio(s->ssl, rb, wb);
            SSL_set_accept_state(s->ssl);
            s->stage = SS_TLS;
        } else if (tls_required) {
            log_info("frp: non-TLS connection from %s on a TLS-only frontend; closed", s->ip);
            return -1;
        } else {
            s->stage = SS_YAMUX;
        }
    }
    if (s->ssl == NULL) {
        return session_input(s, p, len);
    }
    if (len > 0) {
        BIO_write(SSL_get_rbio(s->ssl), p, (int)len);
    }
    if (s->stage == SS_TLS) {
        n = SSL_do_handshake(s->ssl);
        io_kick(s);
        if (n != 1) {
            e = SSL_get_error(s->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                return 0;
            }
            log_info("frp: TLS handshake with %s failed: %s", s->ip, tls_reason());
            return -1;
        }
        s->stage = SS_YAMUX;
        s->old_chain = !issued_by(s, tls_ca);
        note_issuer(s);
    }
    while ((n = SSL_read(s->ssl, b, sizeof(b))) > 0) {
        fbuf_add(&s->in, b, (size_t)n);
    }
    e = SSL_get_error(s->ssl, n);
    if (e == SSL_ERROR_ZERO_RETURN) {
        /* close_notify: the client ended TLS as it should. */
        ERR_clear_error();
        *why = "closed by the client";
        return -1;
    }
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        log_info("frp: TLS with %s: error %d (%s)", s->ip, e, tls_reason());
        return -1;
    }
    log_debug("frp: TLS rx %zu bytes from %s, %zu plaintext pending", len, s->ip, s->in.len);
    io_kick(s);
    return stream_yamux_input(s);
}

static int
session_writeable(struct session *s)
{
    static uint8_t wbuf[LWS_PRE + 65536];
    size_t n;

    if (s->ssl != NULL) {
        if ((s->stage == SS_YAMUX || s->flushing) && s->out.len > 0) {
            n = s->out.len < 32768 ? s->out.len : 32768;
            if (SSL_write(s->ssl, s->out.p, (int)n) > 0) {
                fbuf_drop(&s->out, n);
            }
        }
        tls_pull(s, &s->net);
        n = s->net.len < 65536 ? s->net.len : 65536;
        if (n > 0) {
            memcpy(wbuf + LWS_PRE, s->net.p, n);
            fbuf_drop(&s->net, n);
            if (lws_write(s->wsi, wbuf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n) {
                return -1;
            }
        }
        if (s->net.len > 0 || ((s->stage == SS_YAMUX || s->flushing) && s->out.len > 0)) {
            io_kick(s);
        }
    } else {
        n = s->out.len < 65536 ? s->out.len : 65536;
        if (n > 0) {
            memcpy(wbuf + LWS_PRE, s->out.p, n);
            fbuf_drop(&s->out, n);
            if (lws_write(s->wsi, wbuf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n) {
                return -1;
            }
        }
        if (s->out.len > 0) {
            io_kick(s);
        }
    }
    stream_pump(s);
    return 0;
}

/* Bytes queued for the client, plaintext and TLS. */
static size_t
pending_out(const struct session *s)
{
    return s->out.len + s->net.len;
}

static size_t
out_pause(const struct session *s)
{
    return s->logged_in ? FRP_OUT_PAUSE : FRP_OUT_PAUSE_ANON;
}

static int
login_timeout_s(void)
{
    uint64_t s = (setup.cfg->frp_login_timeout_ms + 999) / 1000;

    return s < 1 ? 1 : s > 3600 ? 3600 : (int)s;
}

/* At most one line a second about refused connections. */
static void
refused_log(const char *what, unsigned cap)
{
    static struct log_rate rate;
    unsigned long held;

    if (log_rate_ok(&rate, 1, &held)) {
        log_warnx("frp: connection refused: %u %s open (%lu refused)", cap, what, held + 1);
    }
}

static int
session_adopt(struct lws *wsi)
{
    struct session *s = NULL;
    char ip[64];
    unsigned port;

    addr_of(lws_get_socket_fd(wsi), true, ip, sizeof(ip), &port);
    if (npending >= setup.cfg->frp_max_pending) {
        refused_log("sessions not logged in (HP_FRP_MAX_PENDING)", setup.cfg->frp_max_pending);
        return -1;
    }
    if ((s = session_new(&lws_io, ip, port, lws_now_usecs())) == NULL) {
        refused_log("sessions", FRP_MAX_SESSIONS);
        return -1;
    }
    s->wsi = wsi;
    lws_set_opaque_user_data(wsi, s);
    npending++;
    lws_sul_schedule(setup.ctx, 0, &s->sul, on_ping_timer, FRP_PING_WAIT_S * LWS_US_PER_SEC);
    /* The login deadline, from the connection on; cleared by a successful Login. */
    lws_set_timeout(wsi, PENDING_TIMEOUT_ESTABLISH_WITH_SERVER, login_timeout_s());
    return 0;
}

int
frp_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    struct session *s = lws_get_opaque_user_data(wsi);
    const char *why;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        return session_adopt(wsi);
    case LWS_CALLBACK_RAW_RX:
        if (s == NULL || s->stage == SS_DEAD || len == 0) {
            return 0;
        }
        if (session_rx(s, in, len, &why) == -1) {
            session_close(s, why);
            if (s->stage == SS_DEAD && s->out.len > 0 && !stopping() &&
                (s->ssl == NULL || SSL_is_init_finished(s->ssl))) {
                /* The GO_AWAY goes out before the socket closes, for at most 2 s. */
                s->flushing = true;
                lws_rx_flow_control(wsi, 0);
                lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, 2);
                lws_callback_on_writable(wsi);
                return 0;
            }
            return -1;
        }
        if (!s->rx_paused && pending_out(s) >= out_pause(s)) {
            /* The client does not read what its input makes us write: stop reading it. */
            s->rx_paused = true;
            lws_rx_flow_control(wsi, 0);
        }
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (s != NULL && s->flushing) {
            return session_writeable(s) == -1 || pending_out(s) == 0 ? -1 : 0;
        }
        if (s == NULL || s->stage == SS_DEAD) {
            return s == NULL ? 0 : -1;
        }
        if (session_writeable(s) == -1) {
            return -1;
        }
        if (s->rx_paused && pending_out(s) < out_pause(s) / 2) {
            s->rx_paused = false;
            lws_rx_flow_control(wsi, 1);
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (s != NULL) {
            s->wsi = NULL;
            if (!s->logged_in) {
                npending--;
            }
            if (s->logged_in) {
                session_close(s, "connection closed");
            } else if (lws_now_usecs() - s->accepted >=
                       (lws_usec_t)login_timeout_s() * LWS_US_PER_SEC) {
                session_close(s, "no login in time (HP_FRP_LOGIN_TIMEOUT)");
            } else {
                session_close(s, "connection closed before login");
            }
            session_free(s);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    default:
        return 0;
    }
}

/* --- listeners --------------------------------------------------------------------------- */

static void maybe_reload(void);

int
frp_accept_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct flistener *fl = lws_get_opaque_user_data(wsi);
    lws_adopt_desc_t ad;
    int cfd, n, one = 1;

    switch (reason) {
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        listen_forget(wsi);
        if (fl != NULL) {
            lws_sul_cancel(&fl->pause.sul);
            if (fl->px != NULL) {
                fl->px->listener = NULL;
            }
        }
        free(fl);
        lws_set_opaque_user_data(wsi, NULL);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (fl == NULL) {
            return 0;
        }
        if (fl->frontend) {
            maybe_reload();
        } else if (fl->px == NULL) {
            return 0; /* the proxy is gone; the listener closes soon */
        }
        for (n = 0; n < 64; n++) {
            cfd = accept4(lws_get_socket_fd(wsi), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (cfd == -1) {
                if (listen_shed(&fl->pause, errno)) {
                    continue;
                }
                break;
            }
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            memset(&ad, 0, sizeof(ad));
            ad.vh = setup.vh;
            ad.type = LWS_ADOPT_SOCKET;
            ad.fd.sockfd = cfd;
            ad.vh_prot_name = fl->frontend ? "harp-frp" : "harp-frp-user";
            ad.opaque = fl->px;
            lws_adopt_descriptor_vhost_via_info(&ad);
        }
        return 0;
    default:
        return 0;
    }
}

/* The first certificate in <path>, or NULL. */
static X509 *
first_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f != NULL) {
        fclose(f);
    }
    return x;
}

/* Trusts the client certificates of the CAs in <path>, and names them in the request. */
static bool
trust(SSL_CTX *ctx, STACK_OF(X509_NAME) * names, const char *path)
{
    return SSL_CTX_load_verify_locations(ctx, path, NULL) == 1 &&
           SSL_add_file_cert_subjects_to_stack(names, path) == 1;
}

/* (Re)loads the server certificate chain, key and CAs from $HP_CERTS_DIR/frp: during a
 * rotation's overlap ca-previous.crt is trusted beside ca.crt. */
static int
load_tls(struct hp_err *err)
{
    char *crt = xasprintf("%s/frp/server.crt", setup.cfg->certs_dir);
    char *key = xasprintf("%s/frp/server.key", setup.cfg->certs_dir);
    char *ca = xasprintf("%s/frp/ca.crt", setup.cfg->certs_dir);
    char *prev = xasprintf("%s/frp/ca-previous.crt", setup.cfg->certs_dir);
    char *revoked = xasprintf("%s/frp/revoked.crt", setup.cfg->certs_dir);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    X509 *cur = first_cert(ca);
    struct stat sb;
    int rc = -1;

    if (ctx == NULL || names == NULL) {
        err_set(err, "no TLS context from OpenSSL");
    } else if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
               SSL_CTX_use_certificate_chain_file(ctx, crt) == 1 &&
               SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
               SSL_CTX_check_private_key(ctx) == 1 && cur != NULL && trust(ctx, names, ca) &&
               (access(prev, R_OK) != 0 || trust(ctx, names, prev)) && stat(crt, &sb) == 0) {
        /* Mutual TLS as frps with trustedCaFile: the CA names itself in the request, which
         * is what Go's client needs to send its certificate. */
        SSL_CTX_set_client_CA_list(ctx, names);
        names = NULL;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_free(tls_ctx);
        tls_ctx = ctx;
        X509_free(tls_ca);
        tls_ca = cur;
        cur = NULL;
        X509_free(tls_revoked);
        tls_revoked = first_cert(revoked);
        tls_mtime = sb.st_mtim;
        rc = 0;
    } else {
        err_set(err, "cannot load %s, %s and %s (harp-ctl serve writes them)", crt, key, ca);
        SSL_CTX_free(ctx);
    }
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    X509_free(cur);
    ERR_clear_error();
    free(crt);
    free(key);
    free(ca);
    free(prev);
    free(revoked);
    return rc;
}

/* After a reload: sessions of a revoked CA's certificates close, the others learn whether
 * their certificate is of the current CA. */
static void
recheck(struct session *s, void *arg)
{
    unsigned *closed = arg;

    if (s->ssl == NULL || s->stage == SS_DEAD || !SSL_is_init_finished(s->ssl)) {
        return;
    }
    if (tls_revoked != NULL && issued_by(s, tls_revoked)) {
        session_close(s, "certificates rotated");
        (*closed)++;
        return;
    }
    s->old_chain = !issued_by(s, tls_ca);
}

/* After a renewal or rotation (server.crt changed): new connections get the new files;
 * sessions go on, except those of a CA revoked by `harp-ctl certs rotate --now`. Before the
 * first `harp-ctl serve` wrote them, each turn of the timer and each connection tries to
 * load them. */
static void
maybe_reload(void)
{
    char *crt = xasprintf("%s/frp/server.crt", setup.cfg->certs_dir);
    struct stat sb;
    struct hp_err err;
    unsigned closed = 0;

    if (tls_required && tls_ctx == NULL) {
        if (load_tls(&err) == 0) {
            log_notice("frp: certificates in %s/frp loaded", setup.cfg->certs_dir);
        }
    } else if (tls_ctx != NULL && stat(crt, &sb) == 0 &&
               (sb.st_mtim.tv_sec != tls_mtime.tv_sec || sb.st_mtim.tv_nsec != tls_mtime.tv_nsec)) {
        if (load_tls(&err) == 0) {
            session_foreach(recheck, &closed);
            log_notice("frp: new certificates in %s/frp loaded (%u sessions of a revoked CA "
                       "closed)",
                       setup.cfg->certs_dir, closed);
            if (setup.hooks.tunnels_changed != NULL) {
                setup.hooks.tunnels_changed(setup.hooks.ctx);
            }
        } else {
            log_warnx("frp: %s", err.msg);
        }
    }
    free(crt);
}

/* Files are also looked at every few seconds, so that tunnels' old_chain is current. */
static lws_sorted_usec_list_t reload_sul;

static void
on_reload_timer(lws_sorted_usec_list_t *sul)
{
    if (!stopping()) {
        maybe_reload();
        lws_sul_schedule(setup.ctx, 0, sul, on_reload_timer, 5 * LWS_US_PER_SEC);
    }
}

int
frp_start(const struct frp_setup *su, struct hp_err *err)
{
    lws_sock_file_fd_type d;
    struct flistener *fl;
    struct lws *w;
    int fd;

    setup = *su;
    frp_conf.shared_key = su->cfg->shared_key;
    frp_conf.stopping = su->stopping;
    frp_conf.timeout_server_s = su->timeout_server_s;
    frp_conf.hooks = su->hooks;
    frp_conf.port_open = port_open;
    frp_conf.port_close = port_close;
    if (!frp_stream_key("", frp_conf.stream_key)) {
        err_set(err, "no PBKDF2 from OpenSSL");
        return -1;
    }
    if (!su->cfg->frp_disable_tls) {
        tls_required = true;
        if (load_tls(err) == -1) {
            /* A data plane started before the first `harp-ctl serve`: it serves, and loads
             * them when they appear. Files present but unusable stop the start. */
            char *crt = xasprintf("%s/frp/server.crt", su->cfg->certs_dir);
            bool absent = access(crt, F_OK) == -1 && errno == ENOENT;

            free(crt);
            if (!absent) {
                return -1;
            }
            log_warnx("frp: %s; TLS connections are closed until they are there", err->msg);
        }
        lws_sul_schedule(setup.ctx, 0, &reload_sul, on_reload_timer, 5 * LWS_US_PER_SEC);
    }
    fd = su->frontend_fd;
    if (fd == -1 && (fd = listen_fd(su->cfg->frp_address, false, err)) == -1) {
        return -1;
    }
    d.filefd = fd;
    w = lws_adopt_descriptor_vhost(setup.vh, LWS_ADOPT_RAW_FILE_DESC, d, "harp-frp-accept", NULL);
    if (w == NULL) {
        err_set(err, "cannot add the FRP listener to the event loop");
        close(fd);
        return -1;
    }
    fl = xcalloc(1, sizeof(*fl));
    fl->frontend = true;
    fl->pause.wsi = w;
    lws_set_opaque_user_data(w, fl);
    listen_register(LISTEN_FRP, w);
    if (su->paused) {
        lws_rx_flow_control(w, 0);
    }
    listen_reserve();
    log_notice("frp: FRP frontend on %s (%s)", su->cfg->frp_address,
               tls_required ? "TLS with client certificates" : "TLS disabled");
    return 0;
}

static void
count_one(struct session *s, void *arg)
{
    (*(unsigned *)arg)++;
}

unsigned
frp_session_count(void)
{
    unsigned n = 0;

    session_foreach(count_one, &n);
    return n;
}

void
frp_stop(void)
{
    lws_sul_cancel(&reload_sul);
    SSL_CTX_free(tls_ctx);
    tls_ctx = NULL;
    X509_free(tls_ca);
    X509_free(tls_revoked);
    tls_ca = tls_revoked = NULL;
}

void
frp_set_timeout_server(unsigned s)
{
    frp_conf.timeout_server_s = s;
}
