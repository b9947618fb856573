/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* HTTP/1.1 heads and body framing, parsed byte-exact for a proxy. Pure: no I/O, no globals. */
#ifndef HARP_DP_HTTP1_H
#define HARP_DP_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEAD (64u * 1024)
#define HTTP1_MAX_HEADERS 128

/* A view into the buffer that holds the head; nothing is copied. */
struct span {
    const char *p;
    size_t n;
};

struct http1_header {
    struct span name, value;
};

enum http1_framing {
    HTTP1_BODY_NONE,
    HTTP1_BODY_LENGTH, /* content_length bytes */
    HTTP1_BODY_CHUNKED,
    HTTP1_BODY_UNTIL_CLOSE, /* responses only */
};

struct http1_head {
    /* request */
    struct span method, target, path, query; /* query without '?', may be empty */
    /* response */
    int status;
    struct span reason;
    int minor; /* HTTP/1.<minor> */
    struct http1_header headers[HTTP1_MAX_HEADERS];
    size_t nheaders;
    size_t head_len; /* bytes of the head including the blank line */
    enum http1_framing framing;
    uint64_t content_length;
    bool keep_alive;
    bool upgrade;         /* Connection: upgrade with an Upgrade header */
    bool expect_continue; /* Expect: 100-continue */
};

enum http1_status {
    HTTP1_OK = 0,
    HTTP1_INCOMPLETE = 1,   /* need more bytes */
    HTTP1_BAD = -1,         /* malformed or ambiguous: answer 400 */
    HTTP1_TOO_LARGE = -2,   /* head or header count over the limits: answer 431 */
    HTTP1_BAD_VERSION = -3, /* not HTTP/1.x: answer 505 */
};

/* Parses a request head at the start of <buf>. On HTTP1_OK <h> is filled with views into
 * <buf>. Refused (HTTP1_BAD): bare LF or CR, obsolete line folding, invalid header names,
 * Content-Length repeated or not a plain number, Transfer-Encoding other than "chunked" or
 * together with Content-Length, a target not starting with '/' (or "*" for OPTIONS). */
enum http1_status http1_parse_request(const char *buf, size_t len, struct http1_head *h);
/* Same for a response head; <head_request> says the request was HEAD (no body follows). */
enum http1_status http1_parse_response(const char *buf, size_t len, bool head_request,
                                       struct http1_head *h);
/* The last value of header <name> (case-insensitive), or NULL; HaRP's header map keeps the
 * last of repeated lines. */
const struct span *http1_header_get(const struct http1_head *h, const char *name);
bool span_eq(struct span s, const char *lit);  /* case-sensitive */
bool span_ieq(struct span s, const char *lit); /* ASCII case-insensitive */
/* Copies <s> into <dst> of <cap> bytes (cap > 0), cut to fit, NUL-terminated. */
void span_copy(char *dst, size_t cap, struct span s);
/* Plain decimal digits, at most <max_digits> of them (no sign, no spaces). */
bool http1_parse_uint(struct span s, size_t max_digits, uint64_t *out);
/* True when the comma-separated <list> holds <token> (case-insensitive). */
bool http1_list_has(struct span list, const char *token);

enum http1_path_status {
    HTTP1_PATH_OK = 0,
    HTTP1_PATH_BAD_ESCAPE = -1,   /* '%' without two hex digits */
    HTTP1_PATH_NUL = -2,          /* %00 */
    HTTP1_PATH_SLASH = -3,        /* %2F: a separator the router and the ExApp may read apart */
    HTTP1_PATH_BACKSLASH = -4,    /* '\\' or %5C: a separator to some servers */
    HTTP1_PATH_ABOVE_ROOT = -5,   /* a ".." segment climbing above "/" */
    HTTP1_PATH_NOT_ABSOLUTE = -6, /* empty or not starting with '/' */
};
#define HTTP1_PATH_KEEP_SLASH 1u /* keep %2F (as "%2F") instead of refusing it */

/* Normalises the request path <path> (no query) as RFC 3986 6.2.2 says: unreserved characters
 * (ALPHA DIGIT - . _ ~) percent-decoded, the escapes that stay in upper-case hex, dot segments
 * removed (5.2.4), repeated '/' collapsed. Writes at most <path>.n bytes to <out> and their
 * count to *<outlen>; on any other status <out> holds garbage. Pure. */
enum http1_path_status http1_path_normalise(struct span path, unsigned flags, char *out,
                                            size_t *outlen);
/* A short text for the log. */
const char *http1_path_error(enum http1_path_status st);

/* Tracks a chunked body passing through unchanged. */
struct http1_chunked {
    int state;
    uint64_t remaining;
    unsigned digits;
    size_t line_len;
};

enum http1_chunk_result { CHUNK_MORE = 0, CHUNK_DONE = 1, CHUNK_BAD = -1 };

/* Consumes up to <len> bytes; *<used> is how many belong to the body (fewer than <len> only
 * when the body ends inside <buf>). */
enum http1_chunk_result http1_chunked_feed(struct http1_chunked *c, const char *buf, size_t len,
                                           size_t *used);

/* The reason phrase of <status> as harp-dp sends it ("Error" for one it never sends). */
const char *http1_reason_phrase(unsigned status);

#endif
