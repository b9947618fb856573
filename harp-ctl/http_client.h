/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* What the libcurl clients (CLI, Nextcloud) share: collecting an answer up to a limit. */
#ifndef HARP_CTL_HTTP_CLIENT_H
#define HARP_CTL_HTTP_CLIENT_H

#include <stddef.h>

/* An answer body, NUL-terminated, refused past <max> bytes (the transfer then fails).
 * Set up as {.max = N}; freed with http_body_free(). */
struct http_body {
    char *data;
    size_t len, max;
};

/* A CURLOPT_WRITEFUNCTION for a struct http_body given as CURLOPT_WRITEDATA. */
size_t http_body_write(char *p, size_t size, size_t n, void *arg);
/* Frees the body, wiping it first (answers may carry tokens). */
void http_body_free(struct http_body *b);

#endif
