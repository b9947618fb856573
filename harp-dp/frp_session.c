/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Sessions of the FRP frontend (frp_int.h, design note 3): what arrives on a stream (Login,
 * NewWorkConn, the control's messages), controls and their run_ids, heartbeats. Bytes in
 * through session_input, out through s->out and s->io: no sockets here. */
#include "config.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "frp_int.h"
#include "log.h"
#include "secret.h"
#include "xmalloc.h"

/* Every live session, to find controls by run_id. */
static struct session *sessions[FRP_MAX_SESSIONS];

static void stream_input(struct stream *st);
static void stream_closing(struct stream *st);

static const struct frp_stream_ops stream_ops = {stream_input, stream_closing, tunnel_pipe_drained};

/* --- controls ---------------------------------------------------------------------------- */

static struct control *
find_control(const char *run_id)
{
    struct control *c;
    size_t i;

    for (i = 0; i < FRP_MAX_SESSIONS; i++) {
        for (c = sessions[i] != NULL ? sessions[i]->controls : NULL; c != NULL; c = c->next) {
            if (strcmp(c->run_id, run_id) == 0) {
                return c;
            }
        }
    }
    return NULL;
}

static void
control_close(struct control *c)
{
    struct control **pp;

    for (pp = &c->s->controls; *pp != NULL && *pp != c; pp = &(*pp)->next) {
    }
    if (*pp != NULL) {
        *pp = c->next;
    }
    if (c->proxy != NULL) {
        tunnel_close_proxy(c->proxy);
    }
    while (c->pool != NULL) {
        struct stream *st = c->pool;

        c->pool = st->pool_next;
        st->ctl = NULL;
        stream_close(st, false);
    }
    tunnel_drop_waiting(c);
    if (c->st != NULL) {
        c->st->ctl = NULL;
    }
    log_info("frp: control %s of %s closed", c->run_id, c->s->ip);
    free(c);
}

static void
on_control_msg(struct control *c, int type, json_t *m)
{
    const char *name;

    switch (type) {
    case FRP_NEW_PROXY:
        tunnel_new_proxy(c, m);
        break;
    case FRP_CLOSE_PROXY:
        name = json_string_value(json_object_get(m, "proxy_name"));
        if (c->proxy != NULL && name != NULL && strcmp(c->proxy->name, name) == 0) {
            tunnel_close_proxy(c->proxy);
        }
        break;
    case FRP_PING:
        stream_msg(c->st, FRP_PONG, json_object(), true);
        break;
    default:
        break;
    }
}

/* --- login ------------------------------------------------------------------------------- */

static void
login_fail(struct stream *st, const char *error)
{
    stream_msg(st, FRP_LOGIN_RESP, json_pack("{s:s,s:s}", "version", FRP_VERSION, "error", error),
               false);
    stream_close(st, false);
}

static void
on_login(struct stream *st, json_t *m)
{
    struct session *s = st->s;
    const char *token = json_string_value(json_object_get(json_object_get(m, "metas"), "token"));
    const char *pk = json_string_value(json_object_get(m, "privilege_key"));
    const char *run_id = json_string_value(json_object_get(m, "run_id"));
    json_int_t pool = json_integer_value(json_object_get(m, "pool_count"));
    struct control *c, *old;
    char want[33];
    int64_t until;
    unsigned char rnd[8];
    uint8_t iv[16];
    unsigned i;

    if (frp_conf.hooks.banned != NULL &&
        frp_conf.hooks.banned(frp_conf.hooks.ctx, s->ip, (int64_t)time(NULL), &until)) {
        log_info("frp: login from banned %s refused", s->ip);
        login_fail(st, "banned");
        return;
    }
    if (token == NULL || !secret_equal(token, strlen(token), frp_conf.shared_key)) {
        log_info("frp: login from %s with a wrong token", s->ip);
        if (frp_conf.hooks.login_failed != NULL) {
            frp_conf.hooks.login_failed(frp_conf.hooks.ctx, s->ip);
        }
        login_fail(st, "send Login request to plugin error");
        return;
    }
    if (!frp_privilege_key("", (long long)json_integer_value(json_object_get(m, "timestamp")),
                           want)) {
        log_warnx("frp: no MD5 from OpenSSL; login from %s refused", s->ip);
        login_fail(st, "internal error");
        return;
    }
    if (pk == NULL || strlen(pk) != 32 || !secret_equal(pk, 32, want)) {
        login_fail(st, "token in login doesn't match token from configuration");
        return;
    }
    /* The control's ciphers, and the IV that goes out first after the LoginResp. */
    if (!frp_cfb_init(&st->enc, frp_conf.stream_key, true) ||
        !frp_cfb_init(&st->dec, frp_conf.stream_key, false) ||
        frp_cfb_encrypt(&st->enc, NULL, NULL, 0, iv) != sizeof(iv)) {
        log_warnx("frp: no cipher or random IV from OpenSSL; login from %s refused", s->ip);
        login_fail(st, "internal error");
        return;
    }
    c = xcalloc(1, sizeof(*c));
    if (run_id != NULL && strlen(run_id) > 0 && strlen(run_id) < sizeof(c->run_id)) {
        snprintf(c->run_id, sizeof(c->run_id), "%s", run_id);
    } else if (RAND_bytes(rnd, sizeof(rnd)) == 1) {
        for (i = 0; i < 8; i++) {
            snprintf(c->run_id + 2 * i, 3, "%02x", rnd[i]);
        }
    } else {
        log_warnx("frp: no random bytes for a run_id; login from %s refused", s->ip);
        free(c);
        login_fail(st, "internal error");
        return;
    }
    if ((old = find_control(c->run_id)) != NULL) {
        /* Replaced: its ports are released before this login is answered. */
        log_info("frp: control %s replaced by a new login from %s", c->run_id, s->ip);
        if (old->st != NULL) {
            struct stream *ost = old->st;

            old->st = NULL;
            ost->ctl = NULL;
            stream_close(ost, false);
        }
        control_close(old);
    }
    c->s = s;
    c->st = st;
    c->pool_count = pool < 1 ? 1 : pool > FRP_POOL_MAX ? FRP_POOL_MAX : (unsigned)pool;
    c->next = s->controls;
    s->controls = c;
    st->ctl = c;
    stream_msg(st, FRP_LOGIN_RESP,
               json_pack("{s:s,s:s}", "version", FRP_VERSION, "run_id", c->run_id), false);
    stream_send(st, iv, sizeof(iv));
    st->kind = SK_CONTROL;
    for (i = 0; i < c->pool_count; i++) {
        tunnel_req_work_conn(c);
    }
    if (!s->logged_in) {
        s->logged_in = true;
        s->io->logged_in(s);
    }
    log_notice("frp: %s logged in (run_id %s)", s->ip, c->run_id);
}

/* --- streams' input ---------------------------------------------------------------------- */

static void
on_new_work_conn(struct stream *st, json_t *m)
{
    const char *run_id = json_string_value(json_object_get(m, "run_id"));
    struct control *c = run_id != NULL ? find_control(run_id) : NULL;

    if (c == NULL) {
        stream_close(st, true);
        return;
    }
    tunnel_work_conn(c, st);
}

/* The first message of a stream: Login or NewWorkConn. */
static void
stream_first(struct stream *st)
{
    json_t *m = NULL;
    size_t used;
    int type;
    enum frp_decode r;

    r = frp_msg_decode(st->rx.p, st->rx.len, &type, &m, &used);
    if (r == FRP_MORE) {
        if (st->fin_rx) {
            stream_close(st, false);
        }
        return;
    }
    if (r == FRP_BAD) {
        stream_close(st, true);
        return;
    }
    fbuf_drop(&st->rx, used);
    stream_consumed(st, used);
    if (type == FRP_LOGIN) {
        on_login(st, m);
    } else if (type == FRP_NEW_WORK_CONN) {
        on_new_work_conn(st, m);
    } else if (type == FRP_NEW_VISITOR_CONN) {
        stream_msg(st, FRP_NEW_VISITOR_CONN_RESP,
                   json_pack("{s:s}", "error", "visitors are not supported"), false);
        stream_close(st, false);
    } else {
        stream_close(st, true);
    }
    json_decref(m);
}

/* The control's encrypted messages. */
static void
control_input(struct stream *st)
{
    json_t *m = NULL;
    size_t used, n;
    int type;
    enum frp_decode r;

    if (st->rx.len > 0) {
        size_t had = st->plain.len;

        if (st->plain.cap < had + st->rx.len) {
            st->plain.cap = had + st->rx.len + 256;
            st->plain.p = xrealloc(st->plain.p, st->plain.cap);
        }
        n = frp_cfb_decrypt(&st->dec, st->rx.p, st->rx.len, st->plain.p + had);
        if (n == FRP_CFB_ERROR) {
            log_warnx("frp: no cipher from OpenSSL for the control of %s", st->s->ip);
            stream_close(st, true);
            return;
        }
        st->plain.len = had + n;
        stream_consumed(st, st->rx.len);
        fbuf_drop(&st->rx, st->rx.len);
    }
    for (;;) {
        r = frp_msg_decode(st->plain.p, st->plain.len, &type, &m, &used);
        if (r == FRP_BAD) {
            log_info("frp: bad message on the control of %s", st->s->ip);
            stream_close(st, true);
            return;
        }
        if (r == FRP_MORE) {
            break;
        }
        fbuf_drop(&st->plain, used);
        if (st->ctl != NULL) {
            on_control_msg(st->ctl, type, m);
        }
        json_decref(m);
    }
    if (st->fin_rx) {
        stream_close(st, false);
    }
}

/* Uses what arrived on <st>. */
static void
stream_input(struct stream *st)
{
    if (st->kind == SK_NEW) {
        stream_first(st);
    } else if (st->kind == SK_CONTROL) {
        control_input(st);
    } else if (st->kind == SK_PIPE && st->user != NULL) {
        tunnel_pipe_input(st);
    } else if (st->fin_rx) {
        stream_close(st, false);
    }
}

static void
stream_closing(struct stream *st)
{
    tunnel_pipe_closed(st);
    if (st->ctl != NULL && st->kind == SK_CONTROL) {
        control_close(st->ctl);
    } else if (st->ctl != NULL && st->kind == SK_PARKED) {
        tunnel_unpark(st);
    }
}

/* --- sessions ---------------------------------------------------------------------------- */

struct session *
session_new(const struct frp_io *io, const char *ip, unsigned port, int64_t now)
{
    struct session *s;
    size_t i;

    for (i = 0; i < FRP_MAX_SESSIONS && sessions[i] != NULL; i++) {
    }
    if (i == FRP_MAX_SESSIONS) {
        return NULL;
    }
    s = xcalloc(1, sizeof(*s));
    s->io = io;
    s->ops = &stream_ops;
    snprintf(s->ip, sizeof(s->ip), "%s", ip);
    s->port = port;
    s->ping_last = s->accepted = now;
    sessions[i] = s;
    return s;
}

int
session_input(struct session *s, const uint8_t *p, size_t len)
{
    fbuf_add(&s->in, p, len);
    return stream_yamux_input(s);
}

/* A ping unanswered for FRP_PING_WAIT_S ends the session; FRP_PING_US after the last, a new
 * one. */
void
session_tick(struct session *s, int64_t now)
{
    if (s->stage == SS_DEAD) {
        return;
    }
    if (s->ping_sent != 0 && now - s->ping_sent >= FRP_PING_WAIT_S * LWS_US_PER_SEC) {
        session_close(s, "keepalive timeout");
        return;
    }
    if (s->ping_sent == 0 && now - s->ping_last >= FRP_PING_US) {
        s->ping_id++;
        s->ping_sent = s->ping_last = now;
        frame_out(s, YMX_PING, YMX_SYN, 0, s->ping_id, NULL, 0);
    }
}

void
session_close(struct session *s, const char *why)
{
    if (s->stage == SS_DEAD) {
        return;
    }
    log_info("frp: session of %s:%u closed: %s", s->ip, s->port, why);
    s->stage = SS_DEAD;
    while (s->streams != NULL) {
        stream_close(s->streams, false);
    }
    while (s->controls != NULL) {
        control_close(s->controls);
    }
    s->io->closed(s);
}

void
session_free(struct session *s)
{
    size_t i;

    session_close(s, "freed");
    for (i = 0; i < FRP_MAX_SESSIONS; i++) {
        if (sessions[i] == s) {
            sessions[i] = NULL;
        }
    }
    if (s->ssl != NULL) {
        SSL_free(s->ssl);
    }
    fbuf_free(&s->in);
    fbuf_free(&s->out);
    fbuf_free(&s->net);
    free(s);
}

void
session_foreach(void (*fn)(struct session *s, void *arg), void *arg)
{
    size_t i;

    for (i = 0; i < FRP_MAX_SESSIONS; i++) {
        if (sessions[i] != NULL) {
            fn(sessions[i], arg);
        }
    }
}

void
frp_enforce_refusals(void)
{
    struct proxy *px;

    while ((px = tunnel_refused()) != NULL) {
        log_notice("frp: tunnel %s on port %u closed: its engine was removed", px->name, px->port);
        if (px->ctl != NULL && px->ctl->s != NULL) {
            /* frpc believes its proxy up until its session ends (design note 6). */
            session_close(px->ctl->s, "a tunnel's engine was removed");
        } else {
            tunnel_close_proxy(px);
        }
    }
}
