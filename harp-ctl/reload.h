/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Reloading the settings (SIGHUP, POST /api/v1/reload): the settings file and the environment
 * read again; what can change live does, the data planes are told, the rest is reported as
 * needing a restart. */
#ifndef HARP_CTL_RELOAD_H
#define HARP_CTL_RELOAD_H

#include <jansson.h>

#include "ctl.h"

/* Reloads: a new object {"live": [{name, from, to}], "restart": [name]} (each change also
 * logged), or NULL with <err> when the settings file or a value is invalid: then nothing
 * changed. Any thread; reloads run one at a time. */
json_t *reload_run(struct ctl *ctl, struct hp_err *err);
/* The live settings as the data planes take them. */
void reload_settings(struct ctl *ctl, struct msg_settings *s);
/* Frees what reloads replaced; at exit, once no other thread runs. */
void reload_free(struct ctl *ctl);

#endif
