/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

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
