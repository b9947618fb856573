/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The HTTP/1.1 parsers on arbitrary bytes. Invariants: an accepted head lies inside the input,
 * its views point into it, framing is consistent; the chunk tracker never claims more bytes
 * than it was given and agrees with itself when fed byte by byte. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "http1.h"

const char fuzz_target_name[] = "http1";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_views(const struct http1_head *h, const char *buf)
{
    size_t i;

    assert(h->head_len >= 4 && h->nheaders <= HTTP1_MAX_HEADERS);
    for (i = 0; i < h->nheaders; i++) {
        assert(h->headers[i].name.p >= buf && h->headers[i].name.n > 0);
        assert(h->headers[i].value.p + h->headers[i].value.n <= buf + h->head_len);
    }
    assert(h->framing != HTTP1_BODY_LENGTH || http1_header_get(h, "content-length") != NULL);
    assert(h->framing != HTTP1_BODY_CHUNKED || http1_header_get(h, "content-length") == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_head h;
    struct http1_chunked c1, c2;
    size_t used, used2 = 0, i, n;
    enum http1_chunk_result r1, r2 = CHUNK_MORE;

    if (http1_parse_request(buf, size, &h) == HTTP1_OK) {
        assert(h.head_len <= size);
        check_views(&h, buf);
        assert(h.path.p == h.target.p && h.path.n <= h.target.n);
    }
    if (http1_parse_response(buf, size, size > 0 && (data[0] & 1), &h) == HTTP1_OK) {
        assert(h.head_len <= size && h.status >= 100 && h.status <= 999);
        check_views(&h, buf);
    }
    memset(&c1, 0, sizeof(c1));
    r1 = http1_chunked_feed(&c1, buf, size, &used);
    assert(r1 == CHUNK_BAD || used <= size);
    memset(&c2, 0, sizeof(c2));
    for (i = 0; i < size && r2 == CHUNK_MORE; i++) {
        r2 = http1_chunked_feed(&c2, buf + i, 1, &n);
        used2 += n;
    }
    if (r1 != CHUNK_BAD && r2 != CHUNK_BAD) {
        assert(r1 == r2);
        assert(r1 != CHUNK_DONE || used == used2);
    }
    return 0;
}
