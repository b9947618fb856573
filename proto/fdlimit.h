/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The descriptor limit: raised at start so that connections, not the default 1024, are what
 * bounds a process. */
#ifndef HARP_PROTO_FDLIMIT_H
#define HARP_PROTO_FDLIMIT_H

/* Beyond this libwebsockets sizes its tables for nothing; the kernel's default nr_open. */
#define FDLIMIT_CEILING (1ul << 20)

/* Raises the soft RLIMIT_NOFILE to the hard limit (at most FDLIMIT_CEILING) and returns the
 * soft limit in force afterwards. */
unsigned long fdlimit_raise(void);

#endif
