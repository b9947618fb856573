/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* A set of bans as the control plane pushed it: built whole, immutable, refcounted. */
#ifndef HARP_DP_BANS_H
#define HARP_DP_BANS_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"

struct bans;

/* A set built from the <n> <bans> (canonical IPs, as msg_decode() gives them), with one
 * reference for the caller. */
struct bans *bans_build(const struct msg_ban *bans, size_t n);
struct bans *bans_ref(struct bans *s);
void bans_unref(struct bans *s);
size_t bans_count(const struct bans *s);
/* True when <ip> (canonical text) is banned in <s> (NULL: none) at unix time <now>;
 * *<expires> says until when. */
bool bans_check(const struct bans *s, const char *ip, int64_t now, int64_t *expires);

#endif
