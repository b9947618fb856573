/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* A coarse timer wheel: entries due at a whole second, O(1) to add or remove, and advancing
 * the wheel touches only the slots of the seconds that passed. Pure: no I/O, no clock. */
#ifndef HARP_DP_WHEEL_H
#define HARP_DP_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WHEEL_SLOTS 64

/* Embedded in what is timed; zero-initialised means "not on a wheel". */
struct wheel_entry {
    struct wheel_entry *prev, *next;
    int64_t at; /* the second it is due */
};

struct wheel {
    struct wheel_entry slot[WHEEL_SLOTS]; /* list heads */
    int64_t done;                         /* every second up to this one has fired */
    size_t count;
};

/* An empty wheel whose seconds up to <now> have passed. */
void wheel_init(struct wheel *w, int64_t now);
/* Puts <e> (not on the wheel) due at second <at>, moved into (done, done + WHEEL_SLOTS]: an
 * entry later than that fires early, at the wheel's horizon, and its owner re-adds it. */
void wheel_add(struct wheel *w, struct wheel_entry *e, int64_t at);
/* Takes <e> off the wheel; nothing when it is not on it. */
void wheel_del(struct wheel *w, struct wheel_entry *e);
bool wheel_linked(const struct wheel_entry *e);
/* Fires the entries due up to <now>, second by second: each is taken off the wheel
 * before <fire> sees it, so <fire> may add it again or remove any other entry. Returns how
 * many fired. */
size_t wheel_advance(struct wheel *w, int64_t now, void (*fire)(struct wheel_entry *, void *),
                     void *arg);

#endif
