/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

#include <stddef.h>

#include "yamux.h"

static uint32_t
be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool
ymx_parse(const uint8_t b[YMX_HEAD], struct ymx_hdr *h)
{
    if (b[0] != 0 || b[1] > YMX_GO_AWAY) {
        return false;
    }
    h->type = b[1];
    h->flags = (uint16_t)(b[2] << 8 | b[3]);
    h->stream = be32(b + 4);
    h->length = be32(b + 8);
    if ((h->type == YMX_PING || h->type == YMX_GO_AWAY) != (h->stream == 0)) {
        return false;
    }
    return true;
}

void
ymx_write(uint8_t b[YMX_HEAD], const struct ymx_hdr *h)
{
    b[0] = 0;
    b[1] = h->type;
    b[2] = (uint8_t)(h->flags >> 8);
    b[3] = (uint8_t)h->flags;
    b[4] = (uint8_t)(h->stream >> 24);
    b[5] = (uint8_t)(h->stream >> 16);
    b[6] = (uint8_t)(h->stream >> 8);
    b[7] = (uint8_t)h->stream;
    b[8] = (uint8_t)(h->length >> 24);
    b[9] = (uint8_t)(h->length >> 16);
    b[10] = (uint8_t)(h->length >> 8);
    b[11] = (uint8_t)h->length;
}

enum ymx_verdict
ymx_check(const struct ymx_hdr *h, const struct ymx_stream_state *st, unsigned nstreams,
          unsigned max_streams, const char **why)
{
    bool syn = (h->flags & YMX_SYN) != 0;
    uint32_t window;

    *why = NULL;
    if (h->type == YMX_PING) {
        return YMX_OK;
    }
    if (h->type == YMX_GO_AWAY) {
        return h->length == YMX_GOAWAY_NORMAL ? YMX_OK : YMX_END;
    }
    if (h->type == YMX_DATA && h->length > YMX_MAX_FRAME) {
        *why = "DATA frame over the maximum";
        return YMX_BAD;
    }
    if (syn && (h->stream & 1) == 0) {
        *why = "SYN on an even stream id";
        return YMX_BAD;
    }
    if (syn && st->open) {
        *why = "SYN on an open stream";
        return YMX_BAD;
    }
    if (syn && nstreams >= max_streams) {
        return YMX_REFUSE;
    }
    if (h->type == YMX_DATA && (syn || st->open)) {
        window = syn ? YMX_INITIAL_WINDOW : st->recv_window;
        if (h->length > window) {
            *why = "DATA past the receive window";
            return YMX_BAD;
        }
    }
    window = syn ? YMX_INITIAL_WINDOW : st->send_window;
    if (h->type == YMX_WINDOW_UPDATE && (syn || st->open) && h->length > UINT32_MAX - window) {
        *why = "window update past 2^32-1";
        return YMX_BAD;
    }
    return YMX_OK;
}
