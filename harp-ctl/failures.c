/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Failures (publish.c design note 6): failure events from every data plane count against the
 * client IP together; HP_BLACKLIST_COUNT of them within HP_BLACKLIST_WINDOW ban the IP in the
 * store, and the owner is told so it pushes the bans. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cidr.h"
#include "failures.h"
#include "hash.h"
#include "log.h"
#include "xmalloc.h"

#define FAIL_BUCKETS 4096
#define FAIL_MAX_IPS 100000

/* Failures of one client IP within the window (newest last). */
struct fail_ip {
    char ip[IP_STR_MAX];
    double *ts;
    size_t n, cap; /* cap: HP_BLACKLIST_COUNT when allocated (a reload may change it) */
    struct fail_ip *next;
};

/* Created by the publisher, freed by failures_free(). */
struct failures {
    const struct hp_config *cfg;
    struct store *store;
    struct failures_hooks hooks;
    struct fail_ip *buckets[FAIL_BUCKETS];
    size_t n;
};

struct failures *
failures_new(const struct hp_config *cfg, struct store *store, const struct failures_hooks *hooks)
{
    struct failures *f = xcalloc(1, sizeof(*f));

    f->cfg = cfg;
    f->store = store;
    f->hooks = *hooks;
    return f;
}

static struct fail_ip **
slot(struct failures *f, const char *ip)
{
    struct fail_ip **fp;

    for (fp = &f->buckets[hash_fnv1a(ip, strlen(ip)) % FAIL_BUCKETS]; *fp != NULL;
         fp = &(*fp)->next) {
        if (strcmp((*fp)->ip, ip) == 0) {
            break;
        }
    }
    return fp;
}

static void
drop(struct failures *f, struct fail_ip **fp)
{
    struct fail_ip *fi = *fp;

    *fp = fi->next;
    free(fi->ts);
    free(fi);
    f->n--;
}

/* Drops the failures older than the window (all of them with <all>). */
static void
prune(struct failures *f, double now, bool all)
{
    double window = ENV_LIVE(f->cfg->blacklist_window);
    struct fail_ip **fp;
    size_t b;

    for (b = 0; b < FAIL_BUCKETS; b++) {
        for (fp = &f->buckets[b]; *fp != NULL;) {
            if (all || (*fp)->ts[(*fp)->n - 1] <= now - window) {
                drop(f, fp);
            } else {
                fp = &(*fp)->next;
            }
        }
    }
}

void
failures_add(struct failures *f, const char *raw_ip, double now)
{
    /* Read once: a reload may change them meanwhile. */
    unsigned count = ENV_LIVE(f->cfg->blacklist_count),
             window_s = ENV_LIVE(f->cfg->blacklist_window);
    double window = window_s;
    struct fail_ip **fp, *fi;
    struct ipaddr addr;
    struct hp_err err;
    char ip[IP_STR_MAX];
    size_t i, keep;
    int64_t until;
    int rc;

    if (count == 0 || raw_ip == NULL || !ip_parse(raw_ip, strlen(raw_ip), &addr)) {
        return;
    }
    ip_format(&addr, ip);
    if (f->hooks.banned(f->hooks.ctx, ip)) {
        return;
    }
    fp = slot(f, ip);
    if ((fi = *fp) == NULL) {
        if (f->n >= FAIL_MAX_IPS) {
            prune(f, now, false);
            if (f->n >= FAIL_MAX_IPS) {
                prune(f, now, true);
            }
            fp = slot(f, ip);
        }
        fi = xcalloc(1, sizeof(*fi));
        snprintf(fi->ip, sizeof(fi->ip), "%s", ip);
        fi->ts = xcalloc(count, sizeof(double));
        fi->cap = count;
        fi->next = NULL;
        *fp = fi;
        f->n++;
    }
    for (i = 0, keep = 0; i < fi->n; i++) {
        if (fi->ts[i] > now - window) {
            fi->ts[keep++] = fi->ts[i];
        }
    }
    fi->n = keep;
    if (fi->cap < count) {
        fi->ts = xrealloc(fi->ts, count * sizeof(double));
        fi->cap = count;
    }
    if (fi->n >= count) { /* the oldest go: count - 1 stay (count lowered by a reload) */
        keep = fi->n - (count - 1);
        memmove(fi->ts, fi->ts + keep, (fi->n - keep) * sizeof(double));
        fi->n -= keep;
    }
    fi->ts[fi->n++] = now;
    if (fi->n < count) {
        return;
    }
    until = (int64_t)(fi->ts[0] + window + 0.999);
    audit_set_actor("dataplane"); /* the data planes' failure reports */
    rc = store_ban_put(f->store, ip, (int)fi->n, "failures", until, &err);
    audit_set_actor(NULL);
    if (rc == 0) {
        log_notice("bans: %s banned until %lld after %zu failures in %u s", ip, (long long)until,
                   fi->n, window_s);
    }
    drop(f, fp);
    f->hooks.ban_added(f->hooks.ctx, ip);
}

void
failures_forget(struct failures *f, const char *ip)
{
    struct fail_ip **fp = slot(f, ip);

    if (*fp != NULL) {
        drop(f, fp);
    }
}

void
failures_prune(struct failures *f, double now)
{
    prune(f, now, false);
}

void
failures_free(struct failures *f)
{
    if (f == NULL) {
        return;
    }
    prune(f, 0, true);
    free(f);
}
