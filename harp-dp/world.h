/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* What the control plane pushed, as one immutable snapshot swapped whole: the apps with their
 * compiled routes, the bans and the Docker engines. */
#ifndef HARP_DP_WORLD_H
#define HARP_DP_WORLD_H

#include <stdbool.h>
#include <stdint.h>

#include "bans.h"
#include "engine_map.h"
#include "route.h"

/* Immutable once live. A request takes a reference to the snapshot it starts with
 * (world_ref) and lets it go when it ends; the snapshot is freed with its last reference. Its
 * parts are refcounted too, so a new snapshot shares the parts that did not change. */
struct world {
    int refs;
    struct table *table;        /* NULL before the first table */
    struct bans *bans;          /* NULL: no bans */
    struct engine_map *engines; /* NULL: no engines */
};

/* The live snapshot (never NULL; empty before the first push), borrowed: take a reference to
 * keep it past the current callback. */
struct world *world_live(void);
struct world *world_ref(struct world *w);
void world_unref(struct world *w);
/* Each builds a new snapshot beside the live one with one part replaced (<t>, <b>, <m>: the
 * caller's reference moves to it) and the others shared, then makes it live. */
void world_set_table(struct table *t);
void world_set_bans(struct bans *b);
void world_set_engines(struct engine_map *m);
/* Drops the live snapshot (at exit). */
void world_clear(void);

/* For long-lived sessions (FRP), which always check the live snapshot. */
bool world_banned(const char *ip, int64_t now, int64_t *expires);
bool world_engine_refused(unsigned port);

#endif
