/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The FRP certificates' lifecycle: rotation with an overlap, renewal at two thirds of their
 * life (a thread), the overlap's end, and what `certs status` shows. */
#ifndef HARP_CTL_CA_RENEW_H
#define HARP_CTL_CA_RENEW_H

#include <jansson.h>
#include <stdbool.h>

#include "ctl.h"

struct ca_renew;

/* A new CA and certificates. Unless <now>, the old CA stays trusted beside the new one until
 * the overlap ends; with <now>, sessions of the old CA's certificates are closed. */
int ca_rotate(struct ctl *ctl, bool now, struct hp_err *err);
/* Ends a rotation's overlap now (<why> is logged); -1 when none is in progress. */
int ca_finish(struct ctl *ctl, const char *why, struct hp_err *err);
/* Renews what is due, ends an overlap that is over. */
void ca_renew_check(struct ctl *ctl);
/* {lifetime_seconds, overlap_days, automatic, last_renewal, last_renewal_kind, next_renewal:
 * {ca, server, client}, overlap: null | {until, previous_ca_sha256, previous_ca_not_after,
 * pending_clients}, old_chain_tunnels: [port], deliveries: [...]}. */
json_t *ca_lifecycle(struct ctl *ctl);

/* The thread that runs ca_renew_check() and the deliveries to containers. */
struct ca_renew *ca_renew_start(struct ctl *ctl);
/* Check and deliver now (after an operator's rotation). */
void ca_renew_kick(struct ca_renew *r);
/* Stops the thread; kicks are still taken (and ignored) until ca_renew_free(). */
void ca_renew_stop(struct ca_renew *r);
void ca_renew_free(struct ca_renew *r);

#endif
