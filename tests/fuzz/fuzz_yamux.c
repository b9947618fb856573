/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* A yamux server session on arbitrary client bytes, read the way harp-dp's FRP frontend
 * reads them (frp_stream.c, stream_yamux_input): every header parsed (ymx_parse) and judged
 * (ymx_check) before any byte of its body, bodies streamed to their stream, windows reserved at the
 * header and granted back as the application consumes. The first input byte picks the size of
 * the reads and the stream cap. Invariants: the session never holds more than a partial header
 * outside a body; a stream's buffered bytes, ungranted bytes and window always sum to the
 * initial window; open streams never exceed the cap; send windows never wrap; and reading
 * the bytes in pieces gives the same frames, verdicts and end state as reading them whole. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yamux.h"

const char fuzz_target_name[] = "yamux";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NST 64
#define UPDATE_AT (64u * 1024)

struct mstream {
    uint32_t id;
    bool open;
    uint32_t recv, send, buffered, ungranted;
};

struct msession {
    struct mstream st[NST];
    unsigned nstreams, cap;
    uint8_t head[YMX_HEAD];
    size_t have;         /* bytes of a partial header */
    struct ymx_hdr body; /* the DATA frame whose body is arriving */
    uint32_t body_left;
    bool ended; /* BAD or END */
    unsigned frames, refused, bad;
    uint64_t digest; /* of every verdict and frame, in order */
};

static struct mstream *
find(struct msession *s, uint32_t id)
{
    unsigned i;

    for (i = 0; i < NST; i++) {
        if (s->st[i].open && s->st[i].id == id) {
            return &s->st[i];
        }
    }
    return NULL;
}

static void
mix(struct msession *s, uint64_t v)
{
    s->digest = (s->digest ^ v) * 0x100000001b3ull;
}

static void
check_stream(const struct mstream *m)
{
    assert((uint64_t)m->recv + m->buffered + m->ungranted == YMX_INITIAL_WINDOW);
}

/* The application reads everything a stream holds, and grants it back from 64 KiB on (as
 * stream_consumed does). */
static void
consume(struct mstream *m)
{
    m->ungranted += m->buffered;
    m->buffered = 0;
    if (m->ungranted >= UPDATE_AT) {
        m->recv += m->ungranted;
        m->ungranted = 0;
    }
    check_stream(m);
}

static void
frame_done(struct msession *s, uint32_t id, uint16_t flags)
{
    struct mstream *m = find(s, id);

    if (m == NULL) {
        return;
    }
    if (flags & YMX_RST) {
        m->open = false;
        s->nstreams--;
        return;
    }
    consume(m);
}

static void
header(struct msession *s, const uint8_t b[YMX_HEAD])
{
    struct ymx_stream_state view = {false, 0, 0};
    struct ymx_hdr h;
    struct mstream *m = NULL;
    const char *why = NULL;
    enum ymx_verdict v;
    unsigned i;

    s->frames++;
    if (!ymx_parse(b, &h)) {
        s->bad++;
        s->ended = true;
        mix(s, 0xbad);
        return;
    }
    if (h.type == YMX_DATA || h.type == YMX_WINDOW_UPDATE) {
        m = find(s, h.stream);
    }
    if (m != NULL) {
        view.open = true;
        view.recv_window = m->recv;
        view.send_window = m->send;
    }
    v = ymx_check(&h, &view, s->nstreams, s->cap, &why);
    mix(s, (uint64_t)v << 48 | (uint64_t)h.type << 40 | h.stream);
    assert((v == YMX_BAD) == (why != NULL));
    if (v == YMX_BAD || v == YMX_END) {
        s->bad += v == YMX_BAD;
        s->ended = true;
        return;
    }
    if (h.type == YMX_PING || h.type == YMX_GO_AWAY) {
        return;
    }
    if (v == YMX_REFUSE) {
        assert((h.flags & YMX_SYN) && m == NULL && s->nstreams >= s->cap);
        s->refused++;
        h.flags &= (uint16_t)~YMX_SYN;
    }
    if (h.flags & YMX_SYN) {
        assert(m == NULL && (h.stream & 1) == 1 && s->nstreams < s->cap);
        for (i = 0; i < NST && s->st[i].open; i++) {
        }
        assert(i < NST);
        m = &s->st[i];
        memset(m, 0, sizeof(*m));
        m->id = h.stream;
        m->open = true;
        m->recv = m->send = YMX_INITIAL_WINDOW;
        s->nstreams++;
    }
    assert(s->nstreams <= s->cap);
    if (h.type == YMX_WINDOW_UPDATE && m != NULL) {
        assert((uint64_t)m->send + h.length <= UINT32_MAX);
        m->send += h.length;
    }
    if (h.type == YMX_DATA && h.length > 0) {
        assert(h.length <= YMX_MAX_FRAME);
        if (m != NULL) {
            assert(h.length <= m->recv);
            m->recv -= h.length; /* reserved; the body fills it */
        }
        s->body = h;
        s->body_left = h.length;
        return;
    }
    frame_done(s, h.stream, h.flags);
}

/* Takes <len> more client bytes. */
static void
feed(struct msession *s, const uint8_t *p, size_t len)
{
    struct mstream *m;
    size_t n;

    while (len > 0 && !s->ended) {
        if (s->body_left > 0) {
            n = len < s->body_left ? len : s->body_left;
            if ((m = find(s, s->body.stream)) != NULL) {
                m->buffered += (uint32_t)n;
                /* The reservation made at the header covers it. */
                assert((uint64_t)m->recv + m->buffered + m->ungranted <= YMX_INITIAL_WINDOW);
            }
            p += n;
            len -= n;
            s->body_left -= (uint32_t)n;
            if (s->body_left == 0) {
                if (m != NULL) {
                    check_stream(m);
                }
                frame_done(s, s->body.stream, s->body.flags);
            }
            continue;
        }
        n = YMX_HEAD - s->have < len ? YMX_HEAD - s->have : len;
        memcpy(s->head + s->have, p, n);
        s->have += n;
        p += n;
        len -= n;
        assert(s->have <= YMX_HEAD);
        if (s->have == YMX_HEAD) {
            s->have = 0;
            header(s, s->head);
        }
    }
}

static void
run(struct msession *s, unsigned cap, const uint8_t *data, size_t size, size_t piece)
{
    size_t off, n;

    memset(s, 0, sizeof(*s));
    s->cap = cap;
    for (off = 0; off < size; off += n) {
        n = size - off < piece ? size - off : piece;
        feed(s, data + off, n);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct msession whole, pieces;
    unsigned cap;
    size_t piece;

    if (size < 1) {
        return 0;
    }
    cap = 1 + (data[0] & 7);                /* up to 8 streams open */
    piece = 1 + (size_t)(data[0] >> 3) * 7; /* reads of 1 to 218 bytes */
    run(&whole, cap, data + 1, size - 1, size);
    run(&pieces, cap, data + 1, size - 1, piece);
    assert(whole.frames == pieces.frames && whole.refused == pieces.refused &&
           whole.bad == pieces.bad && whole.ended == pieces.ended &&
           whole.nstreams == pieces.nstreams && whole.digest == pieces.digest &&
           whole.body_left == pieces.body_left && whole.have == pieces.have);
    return 0;
}
