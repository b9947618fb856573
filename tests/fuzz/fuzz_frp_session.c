/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* FRP sessions of harp-dp (frp_session.c, frp_stream.c, frp_tunnel.c) driven without sockets:
 * two sessions on a fake transport, fed by a client whose moves the input picks: raw bytes,
 * Login (right or wrong token, run_ids from a small set), the control's encrypted messages
 * (NewProxy, CloseProxy, Ping, anything), NewWorkConn, DATA, WINDOW_UPDATE, PING, GO_AWAY,
 * FIN and RST on any stream, heartbeat ticks, output drained or not, engines removed and
 * refusals enforced. Every session ends closed and freed (ASan/LSan see leaks and
 * use-after-free); invariants: a session's input keeps less than a frame header outside a
 * body, and no stream holds more than its window. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frp_int.h"
#include "log.h"

const char fuzz_target_name[] = "frp_session";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSESS 2

struct client {
    struct session *s;
    bool dead;
    uint32_t next_id;   /* next odd stream id */
    uint32_t control;   /* the stream its Login went on; 0: none */
    struct frp_cfb enc; /* the control, client to server */
    bool enc_ready;
};

static struct client clients[NSESS];
static int64_t now;
static bool stopping;
static int listener_token;
static unsigned changes, failures;

static void
io_kick(struct session *s)
{
    (void)s;
}

static void
io_closed(struct session *s)
{
    size_t i;

    for (i = 0; i < NSESS; i++) {
        if (clients[i].s == s) {
            clients[i].dead = true;
        }
    }
}

static void
io_logged_in(struct session *s)
{
    (void)s;
}

static const struct frp_io fake_io = {io_kick, io_closed, io_logged_in};

static void *
port_open(struct proxy *px, const char **why)
{
    if (px->port % 7 == 0) {
        *why = "port unavailable";
        return NULL;
    }
    return &listener_token;
}

static void
port_close(void *listener)
{
    assert(listener == &listener_token);
}

static void
on_change(void *ctx)
{
    (void)ctx;
    changes++;
}

static void
on_failure(void *ctx, const char *ip)
{
    (void)ctx;
    (void)ip;
    failures++;
}

/* Engine ports an operator removed, as the owner would report them: 23000 + 0..127. */
static bool refused[128];

static bool
on_engine_refused(void *ctx, unsigned port)
{
    (void)ctx;
    return port >= 23000 && port < 23128 && refused[port - 23000];
}

/* Every client IP's third login attempt finds it banned. */
static unsigned logins;

static bool
on_banned(void *ctx, const char *ip, int64_t at, int64_t *until)
{
    (void)ctx;
    (void)ip;
    *until = at + 60;
    return ++logins % 3 == 0;
}

struct input {
    const uint8_t *p;
    size_t len;
};

static uint8_t
take(struct input *in)
{
    uint8_t b = 0;

    if (in->len > 0) {
        b = *in->p++;
        in->len--;
    }
    return b;
}

static void
feed(struct client *c, const uint8_t *p, size_t n)
{
    const struct session *s = c->s;
    struct stream *st;

    if (c->dead || n == 0) {
        return;
    }
    if (session_input(c->s, p, n) == -1) {
        session_close(c->s, "protocol error");
        return;
    }
    /* Outside a body, less than a header waits; a stream never holds more than its window. */
    assert(s->body_left > 0 || s->in.len < YMX_HEAD || s->stage != SS_YAMUX);
    for (st = s->streams; st != NULL; st = st->next) {
        assert(st->rx.len <= FRP_WINDOW);
    }
}

static void
frame_to(struct client *c, uint8_t type, uint16_t flags, uint32_t id, uint32_t length,
         const uint8_t *body, size_t blen)
{
    struct ymx_hdr h = {type, flags, id, length};
    uint8_t b[YMX_HEAD + 512];

    ymx_write(b, &h);
    if (blen > sizeof(b) - YMX_HEAD) {
        blen = sizeof(b) - YMX_HEAD;
    }
    memcpy(b + YMX_HEAD, body, blen);
    feed(c, b, YMX_HEAD + blen);
}

/* A message on a new stream (SYN) or an open one. */
static void
msg_to(struct client *c, uint32_t id, bool syn, int type, json_t *body, struct frp_cfb *enc)
{
    size_t len, n;
    uint8_t *m = frp_msg_encode(type, body, &len), out[512 + 16];
    static const uint8_t iv[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

    json_decref(body);
    if (m == NULL || len > 512) {
        free(m);
        return;
    }
    if (enc != NULL) {
        n = frp_cfb_encrypt(enc, iv, m, len, out);
        assert(n != FRP_CFB_ERROR);
    } else {
        memcpy(out, m, len);
        n = len;
    }
    free(m);
    frame_to(c, YMX_DATA, syn ? YMX_SYN : 0, id, (uint32_t)n, out, n);
}

static const char *const run_ids[] = {"", "0123456789abcdef", "fedcba9876543210", "x"};
static const char *const names[] = {"app", "remote1", "", "other"};

static void
do_login(struct client *c, struct input *in)
{
    uint8_t b = take(in);
    char pk[33];
    long long ts = 1700000000 + (b & 3);
    uint32_t id = c->next_id;
    json_t *m;

    c->next_id += 2;
    frp_privilege_key("", (b & 4) ? ts + 1 : ts, pk);
    m = json_pack("{s:s,s:s,s:I,s:s,s:{s:s},s:i}", "version", "0.61.1", "privilege_key", pk,
                  "timestamp", (json_int_t)ts, "run_id", run_ids[(b >> 3) & 3], "metas", "token",
                  (b & 32) ? "wrong" : "sekrit", "pool_count", (int)(take(in) % 8));
    msg_to(c, id, true, FRP_LOGIN, m, NULL);
    if (!(b & 36)) {
        c->control = id;
        frp_cfb_free(&c->enc);
        frp_cfb_init(&c->enc, frp_conf.stream_key, true);
    }
}

static void
do_control(struct client *c, struct input *in)
{
    uint8_t b = take(in), p = take(in);
    static const json_int_t ports[] = {0, 23000, 24001, 24099, 22999, 99999, -1, 23007};
    json_t *m;
    int type;

    if (c->control == 0) {
        return;
    }
    switch (b % 5) {
    case 0:
        type = FRP_NEW_PROXY;
        m = json_pack("{s:s,s:s,s:I,s:b}", "proxy_name", names[(b >> 3) & 3], "proxy_type",
                      (b & 32) ? "udp" : "tcp", "remote_port",
                      ports[p & 7] + (ports[p & 7] > 0 && ports[p & 7] < 24000 ? (p >> 3) : 0),
                      "use_encryption", (b & 64) != 0);
        break;
    case 1:
        type = FRP_CLOSE_PROXY;
        m = json_pack("{s:s}", "proxy_name", names[(b >> 3) & 3]);
        break;
    case 2:
        type = FRP_PING;
        m = json_object();
        break;
    case 3:
        type = FRP_NEW_WORK_CONN; /* on the control: ignored */
        m = json_pack("{s:s}", "run_id", run_ids[p & 3]);
        break;
    default:
        type = "o1p2cwrsh4v3uinm56"[p % 18];
        m = json_object();
        break;
    }
    msg_to(c, c->control, false, type, m, &c->enc);
}

static void
do_work_conn(struct client *c, struct input *in)
{
    uint8_t b = take(in);
    uint32_t id = c->next_id;

    c->next_id += 2;
    if (b & 128) {
        msg_to(c, id, true, FRP_NEW_VISITOR_CONN, json_object(), NULL);
    } else {
        msg_to(c, id, true, FRP_NEW_WORK_CONN, json_pack("{s:s}", "run_id", run_ids[b & 3]), NULL);
    }
}

/* A stream id the session may know: the control, a recent one, or any. */
static uint32_t
some_stream(struct client *c, uint8_t b)
{
    if (b < 64 && c->control != 0) {
        return c->control;
    }
    if (b < 192 && c->next_id > 1) {
        return c->next_id - 2 * (1 + (b % 4));
    }
    return b;
}

static void
step(struct input *in)
{
    uint8_t op = take(in), b, n;
    struct client *c = &clients[(op >> 7) & 1];
    uint8_t buf[256];
    uint32_t delta;

    if (c->dead) {
        return;
    }
    switch (op % 14) {
    case 0: /* raw bytes */
        n = take(in);
        n = n < in->len ? n : (uint8_t)in->len;
        feed(c, in->p, n);
        in->p += n;
        in->len -= n;
        break;
    case 1:
        do_login(c, in);
        break;
    case 2:
    case 3:
        do_control(c, in);
        break;
    case 4:
        do_work_conn(c, in);
        break;
    case 5: /* DATA on a stream */
        b = take(in);
        n = take(in);
        memset(buf, take(in), n);
        frame_to(c, YMX_DATA, (uint16_t)(take(in) & 15), some_stream(c, b), n, buf, n);
        break;
    case 6: /* WINDOW_UPDATE */
        b = take(in);
        n = take(in);
        delta = (uint32_t)take(in) << (take(in) % 25);
        frame_to(c, YMX_WINDOW_UPDATE, (uint16_t)(n & 15), some_stream(c, b), delta, NULL, 0);
        break;
    case 7: /* PING: a request, or the answer to ours */
        b = take(in);
        frame_to(c, YMX_PING, (b & 1) ? YMX_ACK : YMX_SYN, 0, (b & 1) ? c->s->ping_id : take(in),
                 NULL, 0);
        break;
    case 8:
        frame_to(c, YMX_GO_AWAY, 0, 0, take(in) % 4, NULL, 0);
        break;
    case 9: /* FIN or RST */
        b = take(in);
        frame_to(c, YMX_WINDOW_UPDATE, (b & 1) ? YMX_RST : YMX_FIN, some_stream(c, take(in)), 0,
                 NULL, 0);
        break;
    case 10: /* time passes */
        now += (int64_t)take(in) * LWS_US_PER_SEC;
        session_tick(c->s, now);
        break;
    case 11: /* the transport writes what waits */
        fbuf_drop(&c->s->out, c->s->out.len);
        stream_pump(c->s);
        break;
    case 12: /* an engine removed, or back */
        b = take(in);
        refused[b & 127] = (b & 128) == 0;
        frp_enforce_refusals();
        break;
    default: /* the client's connection closes */
        session_close(c->s, "connection closed");
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    struct input in = {data, size};
    size_t i;

    if (!init) {
        log_init("fuzz", LOG_LVL_ERROR);
        frp_conf.shared_key = "sekrit"; /* kat.txt's flights */
        frp_conf.stopping = &stopping;
        frp_conf.timeout_server_s = 60;
        frp_conf.hooks = (struct frp_hooks){.tunnels_changed = on_change,
                                            .login_failed = on_failure,
                                            .banned = on_banned,
                                            .engine_refused = on_engine_refused};
        frp_conf.port_open = port_open;
        frp_conf.port_close = port_close;
        if (!frp_stream_key("", frp_conf.stream_key)) {
            abort();
        }
        init = true;
    }
    now = 1000000;
    for (i = 0; i < NSESS; i++) {
        memset(&clients[i], 0, sizeof(clients[i]));
        clients[i].next_id = 1;
        clients[i].s = session_new(&fake_io, i == 0 ? "192.0.2.1" : "192.0.2.2", 40000, now);
        clients[i].s->stage = SS_YAMUX;
    }
    while (in.len > 0) {
        step(&in);
    }
    for (i = 0; i < NSESS; i++) {
        session_close(clients[i].s, "end");
        session_free(clients[i].s);
        frp_cfb_free(&clients[i].enc);
    }
    memset(refused, 0, sizeof(refused));
    logins = 0;
    return 0;
}
