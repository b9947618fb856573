/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The bans in force, as the control plane last pushed them. */
#ifndef HARP_DP_BANS_H
#define HARP_DP_BANS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Replaces the list with <bans> ([{ip, expires_at}], canonical IPs). */
void bans_replace(const json_t *bans);
/* True when <ip> (canonical text) is banned at unix time <now>; *<expires> says until when. */
bool bans_check(const char *ip, int64_t now, int64_t *expires);
void bans_clear(void);

#endif
