/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "secret.h"
#include "xmalloc.h"

size_t
http_body_write(char *p, size_t size, size_t n, void *arg)
{
    struct http_body *b = arg;
    size_t len = size * n;

    if (b->len + len > b->max) {
        return 0;
    }
    b->data = xrealloc(b->data, b->len + len + 1);
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

void
http_body_free(struct http_body *b)
{
    if (b->data != NULL) {
        secret_wipe(b->data, b->len);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
}
