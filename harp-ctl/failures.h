/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Failure events of every data plane counted per client IP; HP_BLACKLIST_COUNT of them within
 * HP_BLACKLIST_WINDOW ban the IP in the store. Pushing the bans is the owner's. Used by one
 * thread. */
#ifndef HARP_CTL_FAILURES_H
#define HARP_CTL_FAILURES_H

#include <stdbool.h>

#include "env.h"
#include "store.h"

/* The owner's answers. */
struct failures_hooks {
    /* Whether <ip> (normalised) is banned already: its failures are not counted. */
    bool (*banned)(void *ctx, const char *ip);
    /* <ip> was just banned in the store. */
    void (*ban_added)(void *ctx, const char *ip);
    void *ctx;
};

struct failures;

struct failures *failures_new(const struct hp_config *cfg, struct store *store,
                              const struct failures_hooks *hooks);
/* A failure of <raw_ip> seen by a data plane (spec 2.7): HP_BLACKLIST_COUNT of them within
 * HP_BLACKLIST_WINDOW seconds ban the IP until the oldest of them leaves the window. */
void failures_add(struct failures *f, const char *raw_ip, double now);
/* Forgets what was counted for <ip> (an operator removed its ban). */
void failures_forget(struct failures *f, const char *ip);
/* Drops the failures older than the window. */
void failures_prune(struct failures *f, double now);
void failures_free(struct failures *f);

#endif
