/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The HTTP/1.1 parsers on arbitrary bytes. Invariants: an accepted head lies inside the input,
 * its views point into it, framing is consistent; the chunk tracker never claims more bytes
 * than it was given and agrees with itself when fed byte by byte; a normalised path is no longer
 * than the input, starts with '/', holds no "//", dot segment or lower-case escape, and
 * normalising it again changes nothing. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "http1.h"

const char fuzz_target_name[] = "http1";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The whole input as a path (with and without the first byte forced to '/'). */
static void
check_path(const char *buf, size_t size)
{
    static char out[1 << 16], again[1 << 16];
    size_t n, n2, i;
    unsigned flags = size > 0 && (buf[0] & 2) ? HTTP1_PATH_KEEP_SLASH : 0;

    if (size > sizeof(out) ||
        http1_path_normalise((struct span){buf, size}, flags, out, &n) != HTTP1_PATH_OK) {
        return;
    }
    assert(n >= 1 && n <= size && out[0] == '/');
    for (i = 0; i < n; i++) {
        assert(out[i] != '\\');
        if (out[i] == '/' && i + 1 < n) {
            assert(out[i + 1] != '/');
            assert(!(out[i + 1] == '.' && (i + 2 == n || out[i + 2] == '/')));
            assert(!(out[i + 1] == '.' && i + 2 < n && out[i + 2] == '.' &&
                     (i + 3 == n || out[i + 3] == '/')));
        }
        if (out[i] == '%') {
            assert(i + 2 < n && !(out[i + 1] >= 'a' && out[i + 1] <= 'f') &&
                   !(out[i + 2] >= 'a' && out[i + 2] <= 'f'));
        }
    }
    assert(http1_path_normalise((struct span){out, n}, flags, again, &n2) == HTTP1_PATH_OK);
    assert(n2 == n && memcmp(out, again, n) == 0);
}

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
        check_path(h.path.p, h.path.n);
    }
    check_path(buf, size);
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
