/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

#include "wheel.h"

static void
list_init(struct wheel_entry *h)
{
    h->prev = h->next = h;
}

static void
unlink_entry(struct wheel_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static void
append(struct wheel_entry *h, struct wheel_entry *e)
{
    e->prev = h->prev;
    e->next = h;
    h->prev->next = e;
    h->prev = e;
}

void
wheel_init(struct wheel *w, int64_t now)
{
    size_t i;

    for (i = 0; i < WHEEL_SLOTS; i++) {
        list_init(&w->slot[i]);
    }
    w->done = now;
    w->count = 0;
}

bool
wheel_linked(const struct wheel_entry *e)
{
    return e->next != NULL;
}

void
wheel_add(struct wheel *w, struct wheel_entry *e, int64_t at)
{
    if (at <= w->done) {
        at = w->done + 1;
    } else if (at > w->done + WHEEL_SLOTS) {
        at = w->done + WHEEL_SLOTS;
    }
    e->at = at;
    append(&w->slot[(uint64_t)at % WHEEL_SLOTS], e);
    w->count++;
}

void
wheel_del(struct wheel *w, struct wheel_entry *e)
{
    if (e->next == NULL) {
        return;
    }
    unlink_entry(e);
    w->count--;
}

size_t
wheel_advance(struct wheel *w, int64_t now, void (*fire)(struct wheel_entry *, void *), void *arg)
{
    struct wheel_entry due, *h, *e;
    size_t n = 0;

    /* Every entry is within WHEEL_SLOTS seconds of <done>: after a longer pause one turn of
     * the wheel fires them all. */
    if (now - w->done > WHEEL_SLOTS) {
        w->done = now - WHEEL_SLOTS;
    }
    while (w->done < now) {
        w->done++;
        h = &w->slot[(uint64_t)w->done % WHEEL_SLOTS];
        if (h->next == h) {
            continue;
        }
        /* Detach the slot: what <fire> adds goes after <done>, never into this batch. */
        due.next = h->next;
        due.prev = h->prev;
        due.next->prev = &due;
        due.prev->next = &due;
        list_init(h);
        while ((e = due.next) != &due) {
            unlink_entry(e);
            w->count--;
            n++;
            fire(e, arg);
        }
    }
    return n;
}
