/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Allocation that aborts with a log line instead of returning NULL. */
#ifndef HARP_PROTO_XMALLOC_H
#define HARP_PROTO_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
