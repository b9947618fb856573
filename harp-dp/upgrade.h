/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Upgrading a data plane without a gap: handing the listening sockets to a new harp-dp, and
 * draining (design notes in upgrade.c). */
#ifndef HARP_DP_UPGRADE_H
#define HARP_DP_UPGRADE_H

#include <ev.h>
#include <stdbool.h>

#include "err.h"
#include "listen.h"

/* Remembers the loop, the executable and the arguments (for SIGUSR2); before anything else. */
void upgrade_init(struct ev_loop *loop, int argc, char **argv);
/* The handover socket this process listens on (a new string). */
char *upgrade_default_path(void);

/* The running process's side. Listens on handover socket <path>; a failure is logged (the
 * process serves, but cannot be taken over). */
void upgrade_serve(const char *path);
/* SIGUSR2: starts this executable again with --takeover (logged when it cannot). */
void upgrade_spawn(void);
/* SIGCHLD: reaps the process upgrade_spawn() started. */
void upgrade_reap(void);
/* At exit: removes the handover socket's file if it is still this process's. */
void upgrade_close(void);

/* The new process's side. Connects to <path> and receives the listening sockets: fds[role]
 * for each role whose address want[role] names (NULL: not served here), -1 where the running
 * process has none. 0, or -1 with <err> (nothing received is kept). */
int upgrade_take(const char *path, const char *const want[LISTEN_NROLES], int fds[LISTEN_NROLES],
                 struct hp_err *err);
/* Whether a takeover waits for the first table. */
bool upgrade_taking(void);
/* The first table is applied: the listeners accept, the old process drains. */
void upgrade_taken(void);

/* Tells systemd (NOTIFY_SOCKET, if set) <state>, such as "READY=1". */
void upgrade_notify(const char *state);

#endif
