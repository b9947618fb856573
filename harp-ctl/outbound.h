/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The one bound on harp-ctl's outbound HTTP calls (Nextcloud, Docker engines, Kubernetes):
 * at most HP_OUTBOUND_MAX run at once, process-wide; a call that finds them all taken waits a
 * bounded time for one, then is refused without being made. */
#ifndef HARP_CTL_OUTBOUND_H
#define HARP_CTL_OUTBOUND_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

/* The longest a call waits for a free slot (less when its own deadline is nearer). */
#define OUTBOUND_WAIT_MS 10000
/* The bound before outbound_init() (the CLI, tests). */
#define OUTBOUND_DEFAULT_MAX 64

struct outbound_stats {
    unsigned max, running, waiting;
    uint64_t done, refused;
};

/* Sets the bound (HP_OUTBOUND_MAX); at start, before any call. */
void outbound_init(unsigned max);
/* Takes a slot, waiting up to <wait_ms> for one: true when taken (give it back with
 * outbound_release()), false when none freed in time (counted as refused, and logged with
 * <what> at most once a second). For a blocking call that is not a curl transfer, e.g. a
 * worker pool's job calling Nextcloud through its own client. Any thread. */
bool outbound_acquire(long wait_ms, const char *what);
void outbound_release(void);
/* curl_easy_perform(<c>) in a slot: 0 with *<cc> its result; -1 when no slot freed within
 * <wait_ms> (the transfer was not made). */
int outbound_perform(CURL *c, long wait_ms, const char *what, CURLcode *cc);
/* The bound (HP_OUTBOUND_MAX), e.g. to size a pool whose every job makes one call. */
unsigned outbound_max(void);
void outbound_stats(struct outbound_stats *out);

#endif
