/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* App look-ups (publish.c design note 4): app ids a data plane does not know, asked of
 * Nextcloud's exapp-meta once however many data planes ask; a found app is stored. */
#ifndef HARP_CTL_APP_LOOKUP_H
#define HARP_CTL_APP_LOOKUP_H

#include "env.h"
#include "err.h"
#include "exapp.h"
#include "link_server.h"
#include "msg.h"
#include "pool.h"
#include "store.h"

/* The owner's answers, on the link thread. */
struct app_lookup_hooks {
    /* The published ExApp <app_id>, borrowed, or NULL. */
    const struct exapp *(*published)(void *ctx, const char *app_id);
    /* Apps were stored: publish them now (the replies that follow name them). */
    void (*stored)(void *ctx);
    /* A found app's host and port replaced by its Kubernetes upstream: 1 or 0, -1 when the
     * upstream could not be learnt (the app is not stored). On a look-up thread. */
    int (*upstream)(void *ctx, struct exapp *app);
    void *ctx;
};

struct app_lookup;

/* Starts the pool of look-up threads; NULL with <err>. Answers go to the links of <ls>, and
 * finished look-ups wake its thread. */
struct app_lookup *app_lookup_start(const struct hp_config *cfg, struct store *store,
                                    struct link_server *ls, const struct app_lookup_hooks *hooks,
                                    struct hp_err *err);
/* A `lookup` message of <l>: answered from the table, the negative cache, or by a look-up
 * (joined when one for the app is in flight); a full pool is answered request_error. */
void app_lookup_on_request(struct app_lookup *al, struct link *l, const struct msg *m);
/* Answers the requests of the look-ups that finished since the last time. The link thread. */
void app_lookup_finish(struct app_lookup *al);
/* <app_id> was registered: forget that Nextcloud did not know it. Any thread. */
void app_lookup_forget_missing(struct app_lookup *al, const char *app_id);
void app_lookup_stats(struct app_lookup *al, struct pool_stats *st);
/* After the link thread ended: frees what finished; look-ups still running free themselves,
 * the last one frees <al>. */
void app_lookup_stop(struct app_lookup *al);

#endif
