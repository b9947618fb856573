/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef HARP_CTL_SERVE_H
#define HARP_CTL_SERVE_H

#include <stdbool.h>

#include "env.h"

/* Runs the control plane until SIGTERM/SIGINT; returns the exit status. The settings are
 * read through <lookup>(name, <lookup_arg>) (the command line's flags, then the environment);
 * <allow_empty> starts with an empty database where one was lost (--allow-empty). */
int serve_main(env_lookup_cb lookup, void *lookup_arg, bool allow_empty);
/* Logs the configuration warnings and the effective settings (secrets masked). */
void serve_log_config(const struct hp_config *cfg);

#endif
