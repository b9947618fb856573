/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The data plane's timer wheel: entries fire at their second and not before, far deadlines
 * come back at the horizon, removal is exact, and the work of a turn is the entries due. */
#include "config.h"

#include <stdlib.h>

#include "tap.h"
#include "wheel.h"

struct item {
    struct wheel_entry e;
    int id;
    int64_t fired_at; /* 0: not yet */
    int readd;        /* seconds to add again after firing, 0: no */
};

static int64_t now_s;
static struct wheel *cur;

static void
fire(struct wheel_entry *e, void *arg)
{
    struct item *it = (struct item *)e;

    (void)arg;
    it->fired_at = now_s;
    if (it->readd > 0) {
        wheel_add(cur, e, now_s + it->readd);
    }
}

/* Removes another entry while firing: the one in <arg>. */
static void
fire_del(struct wheel_entry *e, void *arg)
{
    struct item *it = (struct item *)e;

    it->fired_at = now_s;
    wheel_del(cur, arg);
}

int
main(void)
{
    struct wheel w;
    struct item a = {.id = 1}, b = {.id = 2}, c = {.id = 3}, d = {.id = 4};
    struct item many[1000];
    size_t n, i, fired;

    cur = &w;
    wheel_init(&w, 1000);
    OK(!wheel_linked(&a.e), "a zeroed entry is not on the wheel");
    wheel_add(&w, &a.e, 1003);
    wheel_add(&w, &b.e, 1001);
    wheel_add(&w, &c.e, 900); /* already past: next second */
    IS_INT(w.count, 3, "three entries");
    now_s = 1001;
    n = wheel_advance(&w, now_s, fire, NULL);
    IS_INT(n, 2, "the one due at 1001 and the one already past fire at 1001");
    IS_INT(b.fired_at, 1001, "b at its second");
    IS_INT(c.fired_at, 1001, "a past deadline fires at the next turn");
    IS_INT(a.fired_at, 0, "a is not due yet");
    now_s = 1002;
    IS_INT(wheel_advance(&w, now_s, fire, NULL), 0, "nothing at 1002");
    now_s = 1005;
    IS_INT(wheel_advance(&w, now_s, fire, NULL), 1, "a late turn fires what it skipped");
    IS_INT(a.fired_at, 1005, "a fired");
    OK(!wheel_linked(&a.e), "a fired entry is off the wheel");
    IS_INT(w.count, 0, "empty");

    /* Removal, twice is harmless. */
    wheel_add(&w, &a.e, 1007);
    wheel_del(&w, &a.e);
    wheel_del(&w, &a.e);
    a.fired_at = 0;
    now_s = 1010;
    IS_INT(wheel_advance(&w, now_s, fire, NULL), 0, "a removed entry does not fire");
    IS_INT(w.count, 0, "count follows removals");

    /* A deadline past the horizon fires at the horizon; the owner re-adds it. */
    wheel_add(&w, &d.e, 1010 + 500);
    IS_INT(d.e.at, 1010 + WHEEL_SLOTS, "clamped to the horizon");
    now_s = 1010 + WHEEL_SLOTS - 1;
    IS_INT(wheel_advance(&w, now_s, fire, NULL), 0, "not before the horizon");
    now_s++;
    IS_INT(wheel_advance(&w, now_s, fire, NULL), 1, "at the horizon");

    /* Re-adding from the callback: never fires twice in one second. */
    a.readd = 1;
    a.fired_at = 0;
    wheel_add(&w, &a.e, now_s + 1);
    now_s += 1;
    IS_INT(wheel_advance(&w, now_s, fire, NULL), 1, "fires once");
    OK(wheel_linked(&a.e) && a.e.at == now_s + 1, "re-added for the next second");
    now_s += 3;
    IS_INT(wheel_advance(&w, now_s, fire, NULL), 1, "a late turn fires it once");
    OK(wheel_linked(&a.e) && a.e.at == now_s + 1, "re-added after the turn's present");
    a.readd = 0;
    wheel_del(&w, &a.e);

    /* The callback removes an entry of the same batch. */
    a.fired_at = b.fired_at = 0;
    wheel_add(&w, &a.e, now_s + 2);
    wheel_add(&w, &b.e, now_s + 2);
    now_s += 2;
    IS_INT(wheel_advance(&w, now_s, fire_del, &b.e), 1, "the removed one does not fire");
    OK(a.fired_at == now_s && b.fired_at == 0 && !wheel_linked(&b.e), "b removed by a's callback");

    /* A pause longer than the wheel: everything due fires once. */
    for (i = 0; i < 1000; i++) {
        many[i] = (struct item){.id = (int)i};
        wheel_add(&w, &many[i].e, now_s + 1 + (int64_t)(i % 200));
    }
    IS_INT(w.count, 1000, "a thousand entries");
    now_s += 10;
    n = wheel_advance(&w, now_s, fire, NULL);
    for (i = 0, fired = 0; i < 1000; i++) {
        fired += many[i].fired_at != 0;
        if (many[i].fired_at != 0 && (int64_t)(i % 200) + 1 > 10) {
            break;
        }
    }
    IS_INT(n, fired, "the turn's work is the entries due");
    OK(i == 1000, "none fired early");
    now_s += 100000;
    n += wheel_advance(&w, now_s, fire, NULL);
    IS_INT(n, 1000, "after a long pause all have fired once");
    IS_INT(w.count, 0, "and the wheel is empty");
    return tap_done();
}
