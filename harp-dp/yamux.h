/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* yamux frame headers as frpc 0.61 speaks them (frp-protocol.md section 2): 12 bytes,
 * version 0, type, flags, stream id, length. Pure. */
#ifndef HARP_DP_YAMUX_H
#define HARP_DP_YAMUX_H

#include <stdbool.h>
#include <stdint.h>

#define YMX_HEAD 12
#define YMX_INITIAL_WINDOW (256u * 1024)

enum ymx_type { YMX_DATA = 0, YMX_WINDOW_UPDATE = 1, YMX_PING = 2, YMX_GO_AWAY = 3 };
enum ymx_flag { YMX_SYN = 1, YMX_ACK = 2, YMX_FIN = 4, YMX_RST = 8 };
enum ymx_goaway { YMX_GOAWAY_NORMAL = 0, YMX_GOAWAY_PROTOCOL = 1, YMX_GOAWAY_INTERNAL = 2 };

struct ymx_hdr {
    uint8_t type;
    uint16_t flags;
    uint32_t stream;
    uint32_t length;
};

/* Parses 12 bytes; false for a version other than 0 or an unknown type (fatal to a
 * session), or a PING/GO_AWAY on a stream or DATA/WINDOW_UPDATE on stream 0. */
bool ymx_parse(const uint8_t b[YMX_HEAD], struct ymx_hdr *h);
void ymx_write(uint8_t b[YMX_HEAD], const struct ymx_hdr *h);

#endif
