/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* yamux streams and windows of an FRP session (frp_int.h, design notes 1, 2 and 5): frames in
 * from s->in, frames out to s->out. No sockets: the session layer hears of its streams through
 * s->ops, the transport through s->io. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "frp_int.h"
#include "log.h"
#include "xmalloc.h"

struct frp_conf frp_conf;

/* --- buffers ---------------------------------------------------------------------------- */

void
fbuf_add(struct buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 256;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void
fbuf_drop(struct buf *b, size_t n)
{
    if (n == 0) {
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    if (b->len == 0 && b->cap > 64 * 1024) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}

void
fbuf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* --- frames ------------------------------------------------------------------------------ */

void
frame_out(struct session *s, uint8_t type, uint16_t flags, uint32_t stream, uint32_t length,
          const void *data, size_t dlen)
{
    struct ymx_hdr h = {type, flags, stream, length};
    uint8_t b[YMX_HEAD];

    ymx_write(b, &h);
    fbuf_add(&s->out, b, YMX_HEAD);
    fbuf_add(&s->out, data, dlen);
    s->io->kick(s);
}

void
stream_send(struct stream *st, const void *p, size_t n)
{
    fbuf_add(&st->tx, p, n);
    stream_pump(st->s);
}

void
stream_msg(struct stream *st, int type, json_t *body, bool encrypted)
{
    size_t len, n;
    uint8_t *m = frp_msg_encode(type, body, &len), *c;

    json_decref(body);
    if (m == NULL) {
        return;
    }
    if (encrypted) {
        c = xmalloc(len + 16);
        n = frp_cfb_encrypt(&st->enc, NULL, m, len, c);
        if (n == FRP_CFB_ERROR) {
            log_warnx("frp: no cipher from OpenSSL: message to %s dropped", st->s->ip);
        } else {
            stream_send(st, c, n);
        }
        free(c);
    } else {
        stream_send(st, m, len);
    }
    free(m);
}

void
stream_consumed(struct stream *st, size_t n)
{
    st->consumed += (uint32_t)n;
    if (st->consumed >= FRP_UPDATE_AT && st->kind != SK_DEAD) {
        frame_out(st->s, YMX_WINDOW_UPDATE, 0, st->id, st->consumed, NULL, 0);
        st->recv_window += st->consumed;
        st->consumed = 0;
    }
}

void
stream_pump(struct session *s)
{
    struct stream *st;
    size_t n;
    bool more = true;

    while (more && s->out.len < FRP_OUT_HIGH) {
        more = false;
        for (st = s->streams; st != NULL && s->out.len < FRP_OUT_HIGH; st = st->next) {
            n = st->tx.len < st->send_window ? st->tx.len : st->send_window;
            if (n > FRP_FRAME_MAX) {
                n = FRP_FRAME_MAX;
            }
            if (n > 0) {
                frame_out(s, YMX_DATA, 0, st->id, (uint32_t)n, st->tx.p, n);
                fbuf_drop(&st->tx, n);
                st->send_window -= (uint32_t)n;
                more = true;
                if (st->tx.len < FRP_TX_HIGH / 2) {
                    s->ops->tx_low(st);
                }
            }
        }
    }
}

/* --- streams ----------------------------------------------------------------------------- */

void
stream_close(struct stream *st, bool rst)
{
    struct session *s = st->s;
    struct stream **pp;

    if (st->kind == SK_DEAD) {
        return;
    }
    if (s->stage == SS_YAMUX) {
        stream_pump(s);
        frame_out(s, YMX_WINDOW_UPDATE, rst ? YMX_RST : YMX_FIN, st->id, 0, NULL, 0);
    }
    s->ops->closing(st);
    st->kind = SK_DEAD;
    for (pp = &s->streams; *pp != NULL && *pp != st; pp = &(*pp)->next) {
    }
    if (*pp != NULL) {
        *pp = st->next;
        s->nstreams--;
    }
    fbuf_free(&st->rx);
    fbuf_free(&st->tx);
    fbuf_free(&st->plain);
    frp_cfb_free(&st->enc);
    frp_cfb_free(&st->dec);
    free(st);
}

static struct stream *
stream_get(struct session *s, uint32_t id)
{
    struct stream *st;

    for (st = s->streams; st != NULL && st->id != id; st = st->next) {
    }
    return st;
}

/* A protocol error: GO_AWAY(protocol error), then the session closes. Returns -1. */
static int
protocol_error(struct session *s, const char *why)
{
    log_info("frp: protocol error from %s:%u: %s; session closed", s->ip, s->port, why);
    frame_out(s, YMX_GO_AWAY, 0, 0, YMX_GOAWAY_PROTOCOL, NULL, 0);
    return -1;
}

static void
stream_open(struct session *s, uint32_t id)
{
    struct stream *st = xcalloc(1, sizeof(*st));

    st->id = id;
    st->s = s;
    st->send_window = FRP_WINDOW;
    st->recv_window = FRP_WINDOW;
    st->next = s->streams;
    s->streams = st;
    s->nstreams++;
    frame_out(s, YMX_WINDOW_UPDATE, YMX_ACK, st->id, 0, NULL, 0);
}

/* The flags of a frame whose body has all arrived, then what its stream got. */
static void
frame_done(struct session *s, uint32_t id, uint16_t flags)
{
    struct stream *st = stream_get(s, id);

    if (st == NULL) {
        return;
    }
    if (flags & YMX_RST) {
        stream_close(st, false);
        return;
    }
    if (flags & YMX_FIN) {
        st->fin_rx = true;
    }
    s->ops->input(st);
}

/* Every header is judged (ymx_check) before any byte of its body is taken, and bodies go to
 * their stream as they arrive: the session keeps at most a partial header, and a stream at
 * most its receive window. */
int
stream_yamux_input(struct session *s)
{
    struct ymx_stream_state view;
    struct ymx_hdr h;
    struct stream *st;
    const char *why;
    size_t off = 0, n;

    while (off < s->in.len && s->stage == SS_YAMUX) {
        if (s->body_left > 0) {
            n = s->in.len - off < s->body_left ? s->in.len - off : s->body_left;
            if ((st = stream_get(s, s->body.stream)) != NULL) {
                fbuf_add(&st->rx, s->in.p + off, n); /* within the window reserved at the header */
            }
            off += n;
            s->body_left -= (uint32_t)n;
            if (s->body_left == 0) {
                frame_done(s, s->body.stream, s->body.flags);
            } else if (st != NULL) {
                s->ops->input(st);
            }
            continue;
        }
        if (s->in.len - off < YMX_HEAD) {
            break;
        }
        if (!ymx_parse(s->in.p + off, &h)) {
            return protocol_error(s, "bad frame header");
        }
        off += YMX_HEAD;
        st = h.type == YMX_DATA || h.type == YMX_WINDOW_UPDATE ? stream_get(s, h.stream) : NULL;
        view.open = st != NULL;
        view.recv_window = st != NULL ? st->recv_window : 0;
        view.send_window = st != NULL ? st->send_window : 0;
        switch (ymx_check(&h, &view, s->nstreams,
                          s->logged_in ? FRP_MAX_STREAMS : FRP_MAX_STREAMS_ANON, &why)) {
        case YMX_BAD:
            return protocol_error(s, why);
        case YMX_END:
            return -1;
        case YMX_REFUSE:
            log_info("frp: %s:%u over %u streams; stream %u refused", s->ip, s->port, s->nstreams,
                     h.stream);
            frame_out(s, YMX_WINDOW_UPDATE, YMX_RST, h.stream, 0, NULL, 0);
            h.flags &= (uint16_t)~YMX_SYN; /* its data, if any, is drained */
            break;
        case YMX_OK:
            break;
        }
        if (h.type == YMX_PING) {
            if (h.flags & YMX_SYN) {
                frame_out(s, YMX_PING, YMX_ACK, 0, h.length, NULL, 0);
            } else if ((h.flags & YMX_ACK) && h.length == s->ping_id) {
                s->ping_sent = 0;
            }
            continue;
        }
        if (h.type == YMX_GO_AWAY) {
            continue;
        }
        if (h.flags & YMX_SYN) {
            stream_open(s, h.stream);
            st = s->streams;
        }
        if (h.type == YMX_WINDOW_UPDATE && st != NULL) {
            st->send_window += h.length;
        }
        if (h.type == YMX_DATA && h.length > 0) {
            if (st != NULL) {
                st->recv_window -= h.length;
            }
            s->body = h;
            s->body_left = h.length;
            continue;
        }
        frame_done(s, h.stream, h.flags);
    }
    fbuf_drop(&s->in, off);
    stream_pump(s);
    return 0;
}
