/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef HARP_CTL_SERVE_H
#define HARP_CTL_SERVE_H

#include <stdbool.h>

#include "env.h"

/* Runs the control plane until SIGTERM/SIGINT; returns the exit status. The settings are
 * read through <lookup>(name, <lookup_arg>) (the command line's flags, then the settings file
 * *<file>, then the environment); at SIGHUP the file is read again into *<file> and the
 * settings reloaded (reload.h). <allow_empty> starts with an empty database where one was
 * lost (--allow-empty). */
int serve_main(env_lookup_cb lookup, void *lookup_arg, struct env_file **file, bool allow_empty);
/* What serve refuses to start with, in one place for serve and 'config check': the
 * control address not an IP address, a certificate or state directory it cannot write or
 * create, a state directory it cannot lock. Serve passes <lockfd>: the state directory is
 * created and locked; 'config check' passes NULL: nothing is created, a running serve's lock is
 * no error. -1 with <err> naming the variable. */
int serve_check(const struct hp_config *cfg, int *lockfd, struct hp_err *err);
/* Logs the configuration warnings and the effective settings (secrets masked). */
void serve_log_config(const struct hp_config *cfg);

#endif
