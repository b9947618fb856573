/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef HARP_CTL_SERVE_H
#define HARP_CTL_SERVE_H

#include "cli.h"
#include "env.h"

/* Runs the control plane until SIGTERM/SIGINT; returns the exit status. */
int serve_main(struct cli_opts *opts);
/* Logs the configuration warnings and the effective settings (secrets masked). */
void serve_log_config(const struct hp_config *cfg);

#endif
