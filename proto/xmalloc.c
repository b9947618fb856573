/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Allocation that aborts with a log line instead of returning NULL. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

void *
xmalloc(size_t size)
{
    void *p = malloc(size == 0 ? 1 : size);

    if (p == NULL) {
        fatalx("out of memory allocating %zu bytes", size);
    }
    return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size);

    if (p == NULL) {
        fatalx("out of memory allocating %zu x %zu bytes", nmemb, size);
    }
    return p;
}

void *
xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size == 0 ? 1 : size);

    if (p == NULL) {
        fatalx("out of memory reallocating %zu bytes", size);
    }
    return p;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fatalx("out of memory formatting a string");
    }
    return p;
}
