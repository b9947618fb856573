/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* HTTP/1.1 heads and chunked framing: byte-exact views, the smuggling rules (RFC 9112 6.3,
 * 5.2 obs-fold), limits, and a chunk tracker that finds the end whatever the split. */
#include "config.h"

#include <stdlib.h>

#include "http1.h"
#include "tap.h"

static enum http1_status
req(const char *s, struct http1_head *h)
{
    return http1_parse_request(s, strlen(s), h);
}

static void
test_request(void)
{
    struct http1_head h;
    const char *r = "GET /exapps/a/x%2Fy//z?q=1&b HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n"
                    "x-a:  2 \r\nCookie: a=1\r\n\r\nBODY";

    IS_INT(req(r, &h), HTTP1_OK, "request parses");
    OK(span_eq(h.method, "GET"), "method");
    OK(span_eq(h.path, "/exapps/a/x%2Fy//z"), "path undecoded, unnormalised");
    OK(span_eq(h.query, "q=1&b"), "query without '?'");
    IS_INT(h.head_len, strlen(r) - 4, "head length excludes the body");
    OK(span_eq(*http1_header_get(&h, "X-A"), "2"), "repeated header: last wins, trimmed");
    IS_INT(h.framing, HTTP1_BODY_NONE, "no body");
    OK(h.keep_alive, "HTTP/1.1 keeps alive");
    IS_INT(req("GET / HTTP/1.1\r\nHost: h\r\n", &h), HTTP1_INCOMPLETE, "incomplete head");
    IS_INT(req("GET / HTTP/1.0\r\n\r\n", &h), HTTP1_OK, "HTTP/1.0 without Host");
    OK(!h.keep_alive, "HTTP/1.0 closes by default");
    IS_INT(req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", &h), HTTP1_OK, "CL");
    IS_INT(h.framing, HTTP1_BODY_LENGTH, "length framing");
    IS_INT(h.content_length, 10, "length value");
    IS_INT(req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", &h), HTTP1_OK,
           "chunked, any case");
    IS_INT(h.framing, HTTP1_BODY_CHUNKED, "chunked framing");
    IS_INT(req("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
               "Upgrade: websocket\r\n\r\n",
               &h),
           HTTP1_OK, "upgrade request");
    OK(h.upgrade, "upgrade seen in a Connection list");
    IS_INT(
        req("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", &h),
        HTTP1_OK, "expect");
    OK(h.expect_continue, "100-continue");
    IS_INT(req("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &h), HTTP1_OK, "OPTIONS *");
    IS_INT(req("PROPFIND /dav HTTP/1.1\r\nHost: h\r\n\r\n", &h), HTTP1_OK, "any method token");
}

static void
test_refusals(void)
{
    static const struct {
        const char *raw;
        enum http1_status want;
        const char *what;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", HTTP1_BAD,
         "repeated Content-Length"},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         HTTP1_BAD, "Content-Length with Transfer-Encoding"},
        {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
         HTTP1_BAD, "repeated Transfer-Encoding"},
        {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP1_BAD,
         "coding other than chunked"},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1,1\r\n\r\n", HTTP1_BAD, "CL list"},
        {"GET /x#y HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_BAD, "a fragment in the target"},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", HTTP1_BAD, "negative CL"},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", HTTP1_BAD,
         "CL overflow"},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", HTTP1_BAD, "obs-fold"},
        {"GET / HTTP/1.1\nHost: h\n\n", HTTP1_BAD, "bare LF"},
        {"GET / HTTP/1.1\r\nHost: h\nX: 1\r\n\r\n", HTTP1_BAD, "bare LF in a header"},
        {"GET / HTTP/1.1\r\nHost: h\rX-Foo: 1\r\n\r\n", HTTP1_BAD, "bare CR in a header"},
        {"GET / HTTP/1.1\rHost: h\r\n\r\n", HTTP1_BAD, "bare CR after the request line"},
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", HTTP1_BAD, "bare CR before the blank line"},
        {"GET / HTTP/1.1\r\nHo st: h\r\n\r\n", HTTP1_BAD, "space in a header name"},
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", HTTP1_BAD, "space before the colon"},
        {"GET / HTTP/1.1\r\n: h\r\n\r\n", HTTP1_BAD, "empty header name"},
        {"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n", HTTP1_BAD, "control character in a value"},
        {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_BAD, "double space"},
        {"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_BAD, "space in the target"},
        {"GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_BAD, "absolute-form target"},
        {"GET / HTTP/1.1\r\n\r\n", HTTP1_BAD, "HTTP/1.1 without Host"},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", HTTP1_BAD_VERSION, "HTTP/2.0"},
        {"GET / HTTP/1.2\r\nHost: h\r\n\r\n", HTTP1_BAD_VERSION, "HTTP/1.2"},
        {"GET / FOO/1.1\r\nHost: h\r\n\r\n", HTTP1_BAD, "not HTTP"},
        {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_BAD, "bad method token"},
    };
    struct http1_head h;
    size_t i;
    char *big;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        IS_INT(req(cases[i].raw, &h), cases[i].want, "refused: %s", cases[i].what);
    }
    big = malloc(HTTP1_MAX_HEAD + 100);
    memset(big, 'a', HTTP1_MAX_HEAD + 100);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    IS_INT(http1_parse_request(big, HTTP1_MAX_HEAD + 100, &h), HTTP1_TOO_LARGE, "64 KiB head");
    free(big);
}

static void
test_response(void)
{
    struct http1_head h;
    const char *r;

    r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    IS_INT(http1_parse_response(r, strlen(r), false, &h), HTTP1_OK, "200 parses");
    IS_INT(h.status, 200, "status");
    IS_INT(h.framing, HTTP1_BODY_LENGTH, "length framing");
    IS_INT(http1_parse_response(r, strlen(r), true, &h), HTTP1_OK, "reply to HEAD");
    IS_INT(h.framing, HTTP1_BODY_NONE, "no body after HEAD");
    r = "HTTP/1.1 204 No Content\r\n\r\n";
    http1_parse_response(r, strlen(r), false, &h);
    IS_INT(h.framing, HTTP1_BODY_NONE, "204 has no body");
    r = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";
    http1_parse_response(r, strlen(r), false, &h);
    IS_INT(h.framing, HTTP1_BODY_NONE, "304 has no body whatever its length says");
    r = "HTTP/1.1 200 OK\r\n\r\n";
    http1_parse_response(r, strlen(r), false, &h);
    IS_INT(h.framing, HTTP1_BODY_UNTIL_CLOSE, "no length: until close");
    OK(!h.keep_alive, "and not reusable");
    r = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    IS_INT(http1_parse_response(r, strlen(r), false, &h), HTTP1_OK, "101 parses");
    IS_INT(h.status, 101, "101");
    r = "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n";
    IS_INT(http1_parse_response(r, strlen(r), false, &h), HTTP1_OK, "empty reason");
    r = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
    http1_parse_response(r, strlen(r), false, &h);
    OK(h.keep_alive, "HTTP/1.0 keep-alive");
    r = "HTTP/1.1 2x0 OK\r\n\r\n";
    IS_INT(http1_parse_response(r, strlen(r), false, &h), HTTP1_BAD, "bad status");
}

static void
test_chunked(void)
{
    const char *body = "5;ext=\"v\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    size_t len = strlen(body), end = len - 4, cut, used, total;
    struct http1_chunked c;
    int ok = 1;

    for (cut = 0; cut <= end; cut++) {
        enum http1_chunk_result r;

        memset(&c, 0, sizeof(c));
        r = http1_chunked_feed(&c, body, cut, &used);
        total = used;
        ok &= r == (cut == end ? CHUNK_DONE : CHUNK_MORE) && used == cut;
        if (r == CHUNK_MORE) {
            r = http1_chunked_feed(&c, body + cut, len - cut, &used);
            total += used;
        }
        ok &= r == CHUNK_DONE && total == end;
    }
    OK(ok, "the body ends at the same byte whatever the split");
    memset(&c, 0, sizeof(c));
    IS_INT(http1_chunked_feed(&c, "0\r\n\r\n", 5, &used), CHUNK_DONE, "empty body");
    memset(&c, 0, sizeof(c));
    IS_INT(http1_chunked_feed(&c, "x\r\n", 3, &used), CHUNK_BAD, "non-hex size");
    memset(&c, 0, sizeof(c));
    IS_INT(http1_chunked_feed(&c, "3\r\nabcX", 7, &used), CHUNK_BAD, "missing CRLF after data");
    memset(&c, 0, sizeof(c));
    IS_INT(http1_chunked_feed(&c, "1000000000000000\r\n", 18, &used), CHUNK_BAD, "size overflow");
    memset(&c, 0, sizeof(c));
    IS_INT(http1_chunked_feed(&c, "3\nabc", 5, &used), CHUNK_BAD, "bare LF after size");
    {
        static const struct {
            const char *body;
            enum http1_chunk_result want;
            const char *what;
        } cs[] = {
            {"5 5\r\nhello\r\n0\r\n\r\n", CHUNK_BAD, "two numbers: '5 5'"},
            {"5 x\r\nhello\r\n0\r\n\r\n", CHUNK_BAD, "garbage after the size"},
            {"5\t5\r\nhello\r\n0\r\n\r\n", CHUNK_BAD, "tab between two numbers"},
            {"5x\r\nhello\r\n0\r\n\r\n", CHUNK_BAD, "letter after the size"},
            {"5\rhello\r\n0\r\n\r\n", CHUNK_BAD, "bare CR after the size"},
            {"5;a\x01\r\nhello\r\n0\r\n\r\n", CHUNK_BAD, "control byte in an extension"},
            {"5;a=b\rc\r\nhello\r\n0\r\n\r\n", CHUNK_BAD, "bare CR in an extension"},
            {"0\r\nX: 1\rY\r\n\r\n", CHUNK_BAD, "bare CR in a trailer"},
            {" 5\r\nhello\r\n0\r\n\r\n", CHUNK_BAD, "space before the size"},
            {"5 \r\nhello\r\n0\r\n\r\n", CHUNK_DONE, "spaces after the size (BWS)"},
            {"5 \t;a=b\r\nhello\r\n0\r\n\r\n", CHUNK_DONE, "BWS before an extension"},
            {"5;a=\"x y\"\r\nhello\r\n0\r\n\r\n", CHUNK_DONE, "quoted extension"},
        };
        size_t k;

        for (k = 0; k < sizeof(cs) / sizeof(cs[0]); k++) {
            memset(&c, 0, sizeof(c));
            IS_INT(http1_chunked_feed(&c, cs[k].body, strlen(cs[k].body), &used), cs[k].want,
                   "chunk: %s", cs[k].what);
        }
    }
}

/* RFC 3986 6.2.2 normalisation, and what it refuses. */
static void
test_path_normalise(void)
{
    static const struct {
        const char *in;
        unsigned flags;
        enum http1_path_status want;
        const char *out;
    } cases[] = {
        {"/", 0, HTTP1_PATH_OK, "/"},
        {"/a/b", 0, HTTP1_PATH_OK, "/a/b"},
        {"/a/b/", 0, HTTP1_PATH_OK, "/a/b/"},
        {"//", 0, HTTP1_PATH_OK, "/"},
        {"///a//b///", 0, HTTP1_PATH_OK, "/a/b/"},
        {"/%61dmin", 0, HTTP1_PATH_OK, "/admin"},
        {"/%41%5A%61%7A%30%39%2D%2E%5F%7E", 0, HTTP1_PATH_OK, "/AZaz09-._~"},
        {"/%2d%2e%5f%7e", 0, HTTP1_PATH_OK, "/-._~"},
        {"/a%3bb%3Fc%23d%25e", 0, HTTP1_PATH_OK, "/a%3Bb%3Fc%23d%25e"},
        {"/%c3%a9%C3%A9", 0, HTTP1_PATH_OK, "/%C3%A9%C3%A9"},
        {"/%2561", 0, HTTP1_PATH_OK, "/%2561"},
        {"/a%20b%2b", 0, HTTP1_PATH_OK, "/a%20b%2B"},
        {"/.", 0, HTTP1_PATH_OK, "/"},
        {"/./", 0, HTTP1_PATH_OK, "/"},
        {"/a/.", 0, HTTP1_PATH_OK, "/a/"},
        {"/a/./b", 0, HTTP1_PATH_OK, "/a/b"},
        {"/%2e/a/%2E", 0, HTTP1_PATH_OK, "/a/"},
        {"/a/b/..", 0, HTTP1_PATH_OK, "/a/"},
        {"/a/b/../c", 0, HTTP1_PATH_OK, "/a/c"},
        {"/a/%2e%2E/c", 0, HTTP1_PATH_OK, "/c"},
        {"/a/..", 0, HTTP1_PATH_OK, "/"},
        {"/a/.../b", 0, HTTP1_PATH_OK, "/a/.../b"},
        {"/a/..b/.c", 0, HTTP1_PATH_OK, "/a/..b/.c"},
        {"/a//../b", 0, HTTP1_PATH_OK, "/b"},
        {"/..", 0, HTTP1_PATH_ABOVE_ROOT, NULL},
        {"/a/../..", 0, HTTP1_PATH_ABOVE_ROOT, NULL},
        {"/%2e%2e/a", 0, HTTP1_PATH_ABOVE_ROOT, NULL},
        {"/a%2fb", 0, HTTP1_PATH_SLASH, NULL},
        {"/a%2Fb", 0, HTTP1_PATH_SLASH, NULL},
        {"/a%2fb", HTTP1_PATH_KEEP_SLASH, HTTP1_PATH_OK, "/a%2Fb"},
        {"/.%2f.", HTTP1_PATH_KEEP_SLASH, HTTP1_PATH_OK, "/.%2F."},
        {"/a%00", 0, HTTP1_PATH_NUL, NULL},
        {"/a%5cb", 0, HTTP1_PATH_BACKSLASH, NULL},
        {"/a%5Cb", HTTP1_PATH_KEEP_SLASH, HTTP1_PATH_BACKSLASH, NULL},
        {"/a\\b", 0, HTTP1_PATH_BACKSLASH, NULL},
        {"/a%zz", 0, HTTP1_PATH_BAD_ESCAPE, NULL},
        {"/a%4", 0, HTTP1_PATH_BAD_ESCAPE, NULL},
        {"/a%", 0, HTTP1_PATH_BAD_ESCAPE, NULL},
        {"/a%g1", 0, HTTP1_PATH_BAD_ESCAPE, NULL},
        {"/a%%41", 0, HTTP1_PATH_BAD_ESCAPE, NULL},
        {"", 0, HTTP1_PATH_NOT_ABSOLUTE, NULL},
        {"*", 0, HTTP1_PATH_NOT_ABSOLUTE, NULL},
        {"a/b", 0, HTTP1_PATH_NOT_ABSOLUTE, NULL},
    };
    char out[64], again[64];
    size_t i, n, n2;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct span in = {cases[i].in, strlen(cases[i].in)};
        enum http1_path_status st = http1_path_normalise(in, cases[i].flags, out, &n);

        if (cases[i].out == NULL) {
            IS_INT(st, cases[i].want, "%s refused: %s", cases[i].in, http1_path_error(st));
            continue;
        }
        out[st == HTTP1_PATH_OK ? n : 0] = '\0';
        OK(st == HTTP1_PATH_OK && strcmp(out, cases[i].out) == 0 && n <= in.n, "%s -> %s (got %s)",
           cases[i].in, cases[i].out, out);
        OK(http1_path_normalise((struct span){out, n}, cases[i].flags, again, &n2) ==
                   HTTP1_PATH_OK &&
               n2 == n && memcmp(out, again, n) == 0,
           "%s: normalising twice changes nothing", cases[i].out);
    }
}

static void
test_lists(void)
{
    struct span s = {"keep-alive , Upgrade,close", 26};

    OK(http1_list_has(s, "upgrade"), "token in a list, any case");
    OK(http1_list_has(s, "close"), "last token");
    OK(!http1_list_has(s, "keep"), "no prefix match");
}

static void
test_span_copy(void)
{
    struct span s = {"GET /x", 3};
    char small[3], big[16];

    span_copy(big, sizeof(big), s);
    IS_STR(big, "GET", "whole span, NUL-terminated");
    span_copy(small, sizeof(small), s);
    IS_STR(small, "GE", "cut to the buffer");
}

int
main(void)
{
    test_request();
    test_refusals();
    test_response();
    test_chunked();
    test_path_normalise();
    test_lists();
    test_span_copy();
    return tap_done();
}
