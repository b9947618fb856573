/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The live snapshot of what the control plane pushed, replaced whole on each change: a new
 * snapshot is built beside the live one and swapped by pointer, so a request never sees half
 * an update and keeps the snapshot it started with. One thread: plain refcounts. */
#include "config.h"

#include <stdlib.h>

#include "world.h"
#include "xmalloc.h"

static struct world *live;

struct world *
world_live(void)
{
    if (live == NULL) {
        live = xcalloc(1, sizeof(*live));
        live->refs = 1;
    }
    return live;
}

struct world *
world_ref(struct world *w)
{
    w->refs++;
    return w;
}

void
world_unref(struct world *w)
{
    if (w == NULL || --w->refs > 0) {
        return;
    }
    table_unref(w->table);
    bans_unref(w->bans);
    engine_map_unref(w->engines);
    free(w);
}

/* A copy of the live snapshot sharing all its parts, not live yet. */
static struct world *
next(void)
{
    struct world *old = world_live(), *w = xcalloc(1, sizeof(*w));

    w->refs = 1;
    w->table = old->table != NULL ? table_ref(old->table) : NULL;
    w->bans = old->bans != NULL ? bans_ref(old->bans) : NULL;
    w->engines = old->engines != NULL ? engine_map_ref(old->engines) : NULL;
    return w;
}

static void
swap(struct world *w)
{
    world_unref(live);
    live = w;
}

void
world_set_table(struct table *t)
{
    struct world *w = next();

    table_unref(w->table);
    w->table = t;
    swap(w);
}

void
world_set_bans(struct bans *b)
{
    struct world *w = next();

    bans_unref(w->bans);
    w->bans = b;
    swap(w);
}

void
world_set_engines(struct engine_map *m)
{
    struct world *w = next();

    engine_map_unref(w->engines);
    w->engines = m;
    swap(w);
}

void
world_clear(void)
{
    world_unref(live);
    live = NULL;
}

bool
world_banned(const char *ip, int64_t now, int64_t *expires)
{
    return bans_check(world_live()->bans, ip, now, expires);
}

bool
world_engine_refused(unsigned port)
{
    return engine_map_refused(world_live()->engines, port);
}
