/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The publisher: routing tables, bans and engines pushed to the data planes on
 * HP_CTL_SOCKET, and the answers to what they ask (look-ups of apps and users, failures). */
#ifndef HARP_CTL_PUBLISH_H
#define HARP_CTL_PUBLISH_H

#include <jansson.h>

#include "err.h"
#include "msg.h"

struct ctl;
struct publish;

/* Told on the publisher thread that a data plane reported its tunnels (an engine behind one
 * may have come up). */
typedef void publish_tunnels_cb(void *ctx);

/* Creates the socket (refusing when another harp-ctl answers on it) and starts the thread;
 * <on_tunnels> (may be NULL) is called with <ctx>. */
struct publish *publish_start(struct ctl *ctl, publish_tunnels_cb *on_tunnels, void *ctx,
                              struct hp_err *err);
/* Stops the thread, closes every link, removes the socket. */
void publish_stop(struct publish *pub);
/* The table changed in the store: push it to every data plane. Any thread. */
void publish_notify(struct publish *pub);
/* <app_id> was registered: forget that Nextcloud did not know it. Any thread. */
void publish_forget_missing(struct publish *pub, const char *app_id);
/* The bans changed in the store (an operator's add or remove): push them; forget the failures
 * counted for <forget_ip> (may be NULL). Any thread. */
void publish_bans_changed(struct publish *pub, const char *forget_ip);
/* The Docker engines data planes proxy to (<n> of <engines>, taken; zeroed before they are
 * filled, so that equal lists compare equal): pushed to every data plane when it differs from
 * the last. Any thread. */
void publish_engines(struct publish *pub, struct msg_engine *engines, size_t n);
/* A new array of the engines as last published: [{port, address, reachable, api_min,
 * api_max}], those refused by an operator left out. Any thread. */
json_t *publish_engines_info(struct publish *pub);
/* The live settings after a reload (copied): pushed to every data plane now, and to each
 * that connects later. Any thread. */
void publish_settings(struct publish *pub, const struct msg_settings *s);
/* A new array describing each connected data plane. Any thread. */
json_t *publish_dataplanes(struct publish *pub);
/* Adds the look-up pools' counters, the count of bad messages from data planes and the table
 * version last published ("published_version") to <o>.
 * Any thread. */
void publish_stats(struct publish *pub, json_t *o);

#endif
