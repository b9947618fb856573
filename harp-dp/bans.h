/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The bans in force, as the control plane last pushed them. */
#ifndef HARP_DP_BANS_H
#define HARP_DP_BANS_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"

/* Replaces the list with the <n> <bans> (canonical IPs, as msg_decode() gives them). */
void bans_replace(const struct msg_ban *bans, size_t n);
/* True when <ip> (canonical text) is banned at unix time <now>; *<expires> says until when. */
bool bans_check(const char *ip, int64_t now, int64_t *expires);
void bans_clear(void);

#endif
