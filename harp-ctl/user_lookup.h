/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* User look-ups (publish.c design note 5): Nextcloud's user-info for the requests data planes
 * cannot decide alone, one call per session cookie, answers cached per cookie. */
#ifndef HARP_CTL_USER_LOOKUP_H
#define HARP_CTL_USER_LOOKUP_H

#include "env.h"
#include "err.h"
#include "link_server.h"
#include "msg.h"
#include "pool.h"

struct user_lookup;

/* Starts the pool of HP_USER_LOOKUP_WORKERS threads; NULL with <err>. Answers go to the
 * links of <ls>, and finished calls wake its thread. */
struct user_lookup *user_lookup_start(const struct hp_config *cfg, struct link_server *ls,
                                      struct hp_err *err);
/* An `auth` message of <l>: answered from the cache, joined to a call in flight, or a new
 * call, which takes the headers out of <m>; a full pool is answered request_error. */
void user_lookup_on_request(struct user_lookup *ul, struct link *l, struct msg *m);
/* Answers the requests of the calls that finished since the last time. The link thread. */
void user_lookup_finish(struct user_lookup *ul);
void user_lookup_stats(struct user_lookup *ul, struct pool_stats *st);
/* After the link thread ended: frees what finished; calls still running free themselves,
 * the last one frees <ul>. */
void user_lookup_stop(struct user_lookup *ul);

#endif
