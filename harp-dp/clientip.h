/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The client IP a request is counted and banned under. Pure. */
#ifndef HARP_DP_CLIENTIP_H
#define HARP_DP_CLIENTIP_H

#include "cidr.h"
#include "http1.h"

/* The TCP <peer> unless it is a trusted proxy. From a trusted peer: X-Forwarded-For walked
 * from the right (every line, in order; every entry, however many), skipping trusted
 * addresses, to the first untrusted one; the left-most when all are trusted; X-Real-IP when
 * there is no usable X-Forwarded-For; else the peer. HaRP takes the left-most entry, which the
 * client itself writes. */
void clientip_get(const struct cidr_list *trusted, const struct ipaddr *peer,
                  const struct http1_head *h, struct ipaddr *out);

#endif
