/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* proto framing: reassembly of length-prefixed JSON frames, and encoding. Pure. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "xmalloc.h"

void
frame_feed(struct frame_reader *r, const void *data, size_t n)
{
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2;
        r->buf = xrealloc(r->buf, r->cap);
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
}

int
frame_next(struct frame_reader *r, json_t **out, struct hp_err *err)
{
    const unsigned char *p = (const unsigned char *)r->buf;
    json_error_t jerr;
    uint32_t n;
    json_t *j;

    if (r->len < 4) {
        return 0;
    }
    n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (n > FRAME_MAX) {
        err_set(err, "frame of %u bytes exceeds the %u-byte limit", n, FRAME_MAX);
        return -1;
    }
    if (r->len - 4 < n) {
        return 0;
    }
    j = json_loadb(r->buf + 4, n, JSON_REJECT_DUPLICATES, &jerr);
    memmove(r->buf, r->buf + 4 + n, r->len - 4 - n);
    r->len -= 4 + n;
    if (j == NULL) {
        /* jansson's text may quote the input (credentials, maybe): only the position */
        err_set(err, "frame of %u bytes is not JSON (error at byte %d)", n, jerr.position);
        return FRAME_BAD;
    }
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "type"))) {
        json_decref(j);
        err_set(err, "frame is not an object with a string \"type\"");
        return FRAME_BAD;
    }
    *out = j;
    return 1;
}

void
frame_reader_free(struct frame_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

char *
frame_encode(const json_t *msg, size_t *len)
{
    size_t n = json_dumpb(msg, NULL, 0, JSON_COMPACT);
    char *buf;

    if (n == 0 || n > FRAME_MAX) {
        return NULL;
    }
    buf = xmalloc(n + 4);
    json_dumpb(msg, buf + 4, n, JSON_COMPACT);
    buf[0] = (char)(n >> 24);
    buf[1] = (char)(n >> 16);
    buf[2] = (char)(n >> 8);
    buf[3] = (char)n;
    *len = n + 4;
    return buf;
}
