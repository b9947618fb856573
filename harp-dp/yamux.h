/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* yamux frame headers as frpc 0.61 speaks them (frp-protocol.md section 2): 12 bytes,
 * version 0, type, flags, stream id, length. Pure. */
#ifndef HARP_DP_YAMUX_H
#define HARP_DP_YAMUX_H

#include <stdbool.h>
#include <stdint.h>

#define YMX_HEAD 12
#define YMX_INITIAL_WINDOW (256u * 1024)
/* The largest DATA frame a session takes: the receive window this server grants never grows
 * past the initial one, so a longer frame exceeds every window (frpc sends 16 KiB frames). */
#define YMX_MAX_FRAME YMX_INITIAL_WINDOW

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

/* The stream a frame names, as the receiver knows it. */
struct ymx_stream_state {
    bool open;
    uint32_t recv_window; /* what the peer may still send */
    uint32_t send_window; /* what the peer lets us send */
};

enum ymx_verdict {
    YMX_OK,     /* process the frame */
    YMX_REFUSE, /* a new stream over the cap: answer RST, drain its data */
    YMX_END,    /* the peer ended the session (GO_AWAY with an error code) */
    YMX_BAD,    /* protocol error: answer GO_AWAY(protocol error) and close the session */
};

/* Judges a parsed frame from the client at its header, before any of its body is read, given
 * the state of the stream it names (<st>; ignored for PING and GO_AWAY), the streams open and
 * the cap on them. Protocol errors (*<why> says which): a DATA frame longer than YMX_MAX_FRAME
 * or than the stream's receive window (a new stream's is YMX_INITIAL_WINDOW); SYN on an even
 * id or on an open stream; a WINDOW_UPDATE taking the send window past 2^32-1. Pure. */
enum ymx_verdict ymx_check(const struct ymx_hdr *h, const struct ymx_stream_state *st,
                           unsigned nstreams, unsigned max_streams, const char **why);

#endif
