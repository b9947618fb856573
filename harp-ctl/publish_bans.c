/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Failures and bans (publish.c design note 6): failure events from every data plane count
 * against the client IP together; HP_BLACKLIST_COUNT of them within HP_BLACKLIST_WINDOW ban
 * the IP in the store, and the whole list of bans in force goes to every data plane. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "hash.h"
#include "log.h"
#include "msg.h"
#include "publish_int.h"
#include "xmalloc.h"

void
bans_send(struct publish *pub, struct link *l)
{
    json_t *m = msg_new(MSG_BANS);

    json_object_set(m, "bans", pub->bans);
    pub_send(l, m);
}

void
bans_push(struct publish *pub)
{
    json_t *list = store_ban_list(pub->ctl->store, (int64_t)pub_now_wall()), *b, *v;
    struct link *l;
    size_t i;

    json_decref(pub->bans);
    pub->bans = json_array();
    json_array_foreach(list, i, v)
    {
        b = json_pack("{s:O,s:O}", "ip", json_object_get(v, "ip"), "expires_at",
                      json_object_get(v, "expires_at"));
        json_array_append_new(pub->bans, b);
    }
    json_decref(list);
    for (l = pub->links; l != NULL; l = l->next) {
        if (l->hello) {
            bans_send(pub, l);
        }
    }
}

void
publish_bans_changed(struct publish *pub, const char *forget_ip)
{
    struct forget *f;

    if (pub == NULL) {
        return;
    }
    pthread_mutex_lock(&pub->mtx);
    pub->bans_changed = true;
    if (forget_ip != NULL) {
        f = xcalloc(1, sizeof(*f));
        snprintf(f->ip, sizeof(f->ip), "%s", forget_ip);
        f->next = pub->forget;
        pub->forget = f;
    }
    pthread_mutex_unlock(&pub->mtx);
    pub_wake(pub);
}

static struct failures **
fail_slot(struct publish *pub, const char *ip)
{
    struct failures **fp;

    for (fp = &pub->fails[hash_fnv1a(ip, strlen(ip)) % FAIL_BUCKETS]; *fp != NULL;
         fp = &(*fp)->next) {
        if (strcmp((*fp)->ip, ip) == 0) {
            break;
        }
    }
    return fp;
}

static void
fail_drop(struct publish *pub, struct failures **fp)
{
    struct failures *f = *fp;

    *fp = f->next;
    free(f->ts);
    free(f);
    pub->nfails--;
}

/* Drops the failures older than the window (all of them with <all>). */
static void
fails_prune(struct publish *pub, double now, bool all)
{
    double window = pub->ctl->cfg.blacklist_window;
    struct failures **fp;
    size_t b;

    for (b = 0; b < FAIL_BUCKETS; b++) {
        for (fp = &pub->fails[b]; *fp != NULL;) {
            if (all || (*fp)->ts[(*fp)->n - 1] <= now - window) {
                fail_drop(pub, fp);
            } else {
                fp = &(*fp)->next;
            }
        }
    }
}

static bool
banned(struct publish *pub, const char *ip)
{
    json_t *b;
    size_t i;

    json_array_foreach(pub->bans, i, b)
    {
        if (strcmp(json_string_value(json_object_get(b, "ip")), ip) == 0) {
            return true;
        }
    }
    return false;
}

/* A failure of <raw_ip> seen by a data plane (spec 2.7): HP_BLACKLIST_COUNT of them within
 * HP_BLACKLIST_WINDOW seconds ban the IP until the oldest of them leaves the window. */
void
bans_on_failure(struct publish *pub, const char *raw_ip)
{
    const struct hp_config *cfg = &pub->ctl->cfg;
    double now = pub_now_wall(), window = cfg->blacklist_window;
    struct failures **fp, *f;
    struct ipaddr addr;
    struct hp_err err;
    char ip[IP_STR_MAX];
    size_t i, keep;
    int64_t until;

    if (cfg->blacklist_count == 0 || raw_ip == NULL || !ip_parse(raw_ip, strlen(raw_ip), &addr)) {
        return;
    }
    ip_format(&addr, ip);
    if (banned(pub, ip)) {
        return;
    }
    fp = fail_slot(pub, ip);
    if ((f = *fp) == NULL) {
        if (pub->nfails >= FAIL_MAX_IPS) {
            fails_prune(pub, now, false);
            if (pub->nfails >= FAIL_MAX_IPS) {
                fails_prune(pub, now, true);
            }
            fp = fail_slot(pub, ip);
        }
        f = xcalloc(1, sizeof(*f));
        snprintf(f->ip, sizeof(f->ip), "%s", ip);
        f->ts = xcalloc(cfg->blacklist_count, sizeof(double));
        f->next = NULL;
        *fp = f;
        pub->nfails++;
    }
    for (i = 0, keep = 0; i < f->n; i++) {
        if (f->ts[i] > now - window) {
            f->ts[keep++] = f->ts[i];
        }
    }
    f->n = keep;
    if (f->n == cfg->blacklist_count) {
        memmove(f->ts, f->ts + 1, (f->n - 1) * sizeof(double));
        f->n--;
    }
    f->ts[f->n++] = now;
    if (f->n < cfg->blacklist_count) {
        return;
    }
    until = (int64_t)(f->ts[0] + window + 0.999);
    if (store_ban_put(pub->ctl->store, ip, (int)f->n, "failures", until, &err) == 0) {
        log_notice("bans: %s banned until %lld after %zu failures in %u s", ip, (long long)until,
                   f->n, cfg->blacklist_window);
    }
    fail_drop(pub, fp);
    bans_push(pub);
}

void
bans_forget(struct publish *pub, struct forget *list)
{
    struct failures **fp;
    struct forget *f;

    while ((f = list) != NULL) {
        fp = fail_slot(pub, f->ip);
        if (*fp != NULL) {
            fail_drop(pub, fp);
        }
        list = f->next;
        free(f);
    }
}

void
bans_prune_failures(struct publish *pub, double now)
{
    fails_prune(pub, now, false);
}

void
bans_clear(struct publish *pub)
{
    fails_prune(pub, 0, true);
    bans_forget(pub, pub->forget);
    pub->forget = NULL;
}
