/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Tunnels of the FRP frontend (frp_int.h): a client's tcp proxy on 127.0.0.1:<port>, the work
 * connections frpc opens for it (a small pool, then one per user), and the users of the port,
 * each piped to one work stream. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "frp_int.h"
#include "log.h"
#include "xmalloc.h"

static struct proxy *ports[PORTS_HI - PORTS_LO + 1];

static void user_close(struct tuser *u);

static bool
stopping(void)
{
    return frp_conf.stopping != NULL && *frp_conf.stopping;
}

static void
tunnels_changed(void)
{
    if (!stopping() && frp_conf.hooks.tunnels_changed != NULL) {
        frp_conf.hooks.tunnels_changed(frp_conf.hooks.ctx);
    }
}

/* Whether the owner says engine port <port> was removed by an operator. */
static bool
engine_refused(unsigned port)
{
    return frp_conf.hooks.engine_refused != NULL &&
           frp_conf.hooks.engine_refused(frp_conf.hooks.ctx, port);
}

/* --- proxies ----------------------------------------------------------------------------- */

static struct proxy *
find_proxy_name(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        if (ports[i] != NULL && strcmp(ports[i]->name, name) == 0) {
            return ports[i];
        }
    }
    return NULL;
}

void
tunnel_close_proxy(struct proxy *px)
{
    ports[px->port - PORTS_LO] = NULL;
    if (px->ctl != NULL) {
        tunnel_drop_waiting(px->ctl);
    }
    if (px->listener != NULL) {
        frp_conf.port_close(px->listener);
    }
    log_info("frp: tunnel %s on 127.0.0.1:%u down", px->name, px->port);
    if (px->ctl != NULL) {
        px->ctl->proxy = NULL;
    }
    free(px);
    tunnels_changed();
}

static json_t *
proxy_resp(const char *name, const char *error, unsigned port)
{
    json_t *o = json_pack("{s:s}", "proxy_name", name);

    if (error != NULL) {
        json_object_set_new(o, "error", json_string(error));
    } else {
        json_object_set_new(o, "remote_addr", json_sprintf(":%u", port));
    }
    return o;
}

static bool
port_allowed(json_int_t p)
{
    return p >= PORTS_LO && p <= PORTS_HI;
}

void
tunnel_new_proxy(struct control *c, json_t *m)
{
    const char *name = json_string_value(json_object_get(m, "proxy_name"));
    const char *type = json_string_value(json_object_get(m, "proxy_type"));
    json_int_t port = json_integer_value(json_object_get(m, "remote_port"));
    const char *err = NULL;
    struct proxy *px;
    char buf[200];
    json_int_t p;

    if (name == NULL || name[0] == '\0' || strlen(name) >= sizeof(px->name)) {
        name = "";
        err = "invalid proxy name";
    } else if (type != NULL && strcmp(type, "tcp") != 0) {
        snprintf(buf, sizeof(buf), "unknown proxy type: %.60s", type);
        err = buf;
    } else if (json_is_true(json_object_get(m, "use_encryption")) ||
               json_is_true(json_object_get(m, "use_compression"))) {
        err = "use_encryption and use_compression are not supported";
    } else if (c->proxy != NULL) {
        err = "exceed the max_ports_per_client";
    } else if (find_proxy_name(name) != NULL) {
        snprintf(buf, sizeof(buf), "proxy [%.100s] already exists", name);
        err = buf;
    } else if (port != 0 && (!port_allowed(port) || engine_refused((unsigned)port))) {
        err = "port not allowed";
    } else if (port != 0 && ports[port - PORTS_LO] != NULL) {
        err = "port already used";
    }
    if (err == NULL && port == 0) {
        for (p = PORTS_LO;
             p <= PORTS_HI && (ports[p - PORTS_LO] != NULL || engine_refused((unsigned)p)); p++) {
        }
        port = p;
        if (p > PORTS_HI) {
            err = "no available port";
        }
    }
    if (err == NULL) {
        px = xcalloc(1, sizeof(*px));
        snprintf(px->name, sizeof(px->name), "%s", name);
        px->port = (unsigned)port;
        px->ctl = c;
        snprintf(px->peer, sizeof(px->peer), "%s", c->s->ip);
        px->since = time(NULL);
        if ((px->listener = frp_conf.port_open(px, &err)) == NULL) {
            free(px);
        } else {
            ports[port - PORTS_LO] = px;
            c->proxy = px;
            log_notice("frp: tunnel %s up on 127.0.0.1:%u for %s", name, px->port, c->s->ip);
            tunnels_changed();
        }
    }
    if (err != NULL) {
        log_info("frp: proxy %s of %s refused: %s", name, c->s->ip, err);
    }
    stream_msg(c->st, FRP_NEW_PROXY_RESP, proxy_resp(name, err, (unsigned)port), true);
}

struct proxy *
tunnel_refused(void)
{
    size_t i;

    for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        if (ports[i] != NULL && engine_refused(ports[i]->port)) {
            return ports[i];
        }
    }
    return NULL;
}

size_t
frp_tunnels(struct msg_tunnel **out)
{
    size_t i, n = 0;

    *out = xcalloc(sizeof(ports) / sizeof(ports[0]), sizeof(**out));
    for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        if (ports[i] != NULL) {
            struct msg_tunnel *t = &(*out)[n++];

            snprintf(t->name, sizeof(t->name), "%s", ports[i]->name);
            t->port = ports[i]->port;
            snprintf(t->peer, sizeof(t->peer), "%s", ports[i]->peer);
            t->since = (int64_t)ports[i]->since;
            if (ports[i]->ctl != NULL && ports[i]->ctl->s != NULL) {
                t->old_chain = ports[i]->ctl->s->old_chain;
                snprintf(t->issuer_key, sizeof(t->issuer_key), "%s", ports[i]->ctl->s->issuer_key);
            }
        }
    }
    return n;
}

/* --- work connections and users ---------------------------------------------------------- */

void
tunnel_req_work_conn(struct control *c)
{
    if (c->st != NULL) {
        stream_msg(c->st, FRP_REQ_WORK_CONN, json_object(), true);
    }
}

/* Pairs <u> with work stream <st>: StartWorkConn, then bytes both ways. */
static void
user_start(struct tuser *u, struct stream *st)
{
    json_t *m = json_pack("{s:s,s:s,s:s,s:i,s:i}", "proxy_name", u->px->name, "src_addr", u->src,
                          "dst_addr", u->dst, "src_port", u->src_port, "dst_port", u->dst_port);

    u->st = st;
    st->user = u;
    st->kind = SK_PIPE;
    stream_msg(st, FRP_START_WORK_CONN, m, false);
    u->px = NULL; /* piping now: the proxy may go, this connection stays */
    /* frpc leaves the stream silent when its local socket is down: give up after the
     * server timeout without a first byte. */
    lws_set_timer_usecs(u->wsi, (lws_usec_t)frp_conf.timeout_server_s * LWS_US_PER_SEC);
    lws_rx_flow_control(u->wsi, 1);
    if (st->rx.len > 0) {
        u->got_byte = true;
        lws_set_timer_usecs(u->wsi, LWS_SET_TIMER_USEC_CANCEL);
        lws_callback_on_writable(u->wsi);
    }
}

void
tunnel_work_conn(struct control *c, struct stream *st)
{
    struct tuser *u;

    st->ctl = c;
    if ((u = c->waiting) != NULL) {
        c->waiting = u->next_waiting;
        user_start(u, st);
        tunnel_req_work_conn(c);
        return;
    }
    if (c->npool >= c->pool_count + 10) {
        stream_close(st, false);
        return;
    }
    st->kind = SK_PARKED;
    st->pool_next = c->pool;
    c->pool = st;
    c->npool++;
}

void
tunnel_unpark(struct stream *st)
{
    struct stream **q;

    for (q = &st->ctl->pool; *q != NULL && *q != st; q = &(*q)->pool_next) {
    }
    if (*q != NULL) {
        *q = st->pool_next;
        st->ctl->npool--;
    }
}

void
tunnel_drop_waiting(struct control *c)
{
    struct tuser *u;

    while ((u = c->waiting) != NULL) {
        c->waiting = u->next_waiting;
        u->px = NULL;
        user_close(u);
    }
}

void
tunnel_pipe_input(struct stream *st)
{
    if (st->user == NULL) {
        return;
    }
    if (st->rx.len > 0 && !st->user->got_byte) {
        st->user->got_byte = true;
        lws_set_timer_usecs(st->user->wsi, LWS_SET_TIMER_USEC_CANCEL);
    }
    lws_callback_on_writable(st->user->wsi);
}

void
tunnel_pipe_drained(struct stream *st)
{
    if (st->user != NULL) {
        lws_rx_flow_control(st->user->wsi, 1);
    }
}

void
tunnel_pipe_closed(struct stream *st)
{
    struct tuser *u = st->user;

    if (u != NULL) {
        st->user = NULL;
        u->st = NULL;
        user_close(u);
    }
}

static void
user_close(struct tuser *u)
{
    if (u->closing) {
        return;
    }
    u->closing = true;
    if (u->st != NULL) {
        u->st->user = NULL;
        stream_close(u->st, false);
        u->st = NULL;
    }
    if (u->px != NULL && u->px->ctl != NULL) {
        struct tuser **pp;

        for (pp = &u->px->ctl->waiting; *pp != NULL && *pp != u; pp = &(*pp)->next_waiting) {
        }
        if (*pp != NULL) {
            *pp = u->next_waiting;
        }
    }
    if (u->wsi != NULL && !stopping()) {
        lws_set_timeout(u->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    }
}

void
addr_of(int fd, bool peer, char *ip, size_t len, unsigned *port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    ip[0] = '\0';
    *port = 0;
    if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
              : getsockname(fd, (struct sockaddr *)&ss, &sl)) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, (socklen_t)len);
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, (socklen_t)len);
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
}

int
frp_user_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct tuser *u = lws_get_opaque_user_data(wsi);
    struct proxy *px;
    struct stream *st;
    uint8_t wbuf[LWS_PRE + 65536];
    size_t n;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        px = u != NULL ? (struct proxy *)u : NULL;
        u = xcalloc(1, sizeof(*u));
        u->wsi = wsi;
        u->px = px;
        lws_set_opaque_user_data(wsi, u);
        if (px == NULL || px->ctl == NULL) {
            return -1;
        }
        addr_of(lws_get_socket_fd(wsi), true, u->src, sizeof(u->src), &u->src_port);
        addr_of(lws_get_socket_fd(wsi), false, u->dst, sizeof(u->dst), &u->dst_port);
        lws_rx_flow_control(wsi, 0);
        lws_set_timer_usecs(wsi, (lws_usec_t)FRP_WAIT_WORK_S * LWS_US_PER_SEC);
        if ((st = px->ctl->pool) != NULL) {
            px->ctl->pool = st->pool_next;
            px->ctl->npool--;
            user_start(u, st);
        } else {
            u->next_waiting = px->ctl->waiting;
            px->ctl->waiting = u;
        }
        tunnel_req_work_conn(px->ctl);
        return 0;
    case LWS_CALLBACK_RAW_RX:
        if (u == NULL || u->st == NULL) {
            return 0;
        }
        stream_send(u->st, in, len);
        if (u->st->tx.len >= FRP_TX_HIGH) {
            lws_rx_flow_control(wsi, 0);
        }
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (u == NULL || (st = u->st) == NULL) {
            return u != NULL && u->closing ? -1 : 0;
        }
        n = st->rx.len < 65536 ? st->rx.len : 65536;
        if (n > 0) {
            memcpy(wbuf + LWS_PRE, st->rx.p, n);
            if (lws_write(wsi, wbuf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n) {
                return -1;
            }
            fbuf_drop(&st->rx, n);
            stream_consumed(st, n);
        }
        if (st->rx.len > 0) {
            lws_callback_on_writable(wsi);
        } else if (st->fin_rx) {
            return -1;
        }
        return 0;
    case LWS_CALLBACK_TIMER:
        /* No work connection came, or frpc never answered on it (its local socket is down). */
        if (u != NULL && (u->st == NULL || !u->got_byte)) {
            log_info("frp: %s on port %u: no answer through the tunnel; closed", u->src,
                     u->dst_port);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (u != NULL) {
            u->wsi = NULL;
            user_close(u);
            free(u);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    default:
        return 0;
    }
}
