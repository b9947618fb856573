/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * HTTP/1.1 head parsing and chunked framing for the proxy (RFC 9112). Strict where laxness
 * enables request smuggling: CRLF only, no obs-fold, one plain Content-Length, Transfer-Encoding
 * exactly "chunked" and never with Content-Length. Pure: views into the caller's buffer.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "http1.h"

/* clang-format off */
static const char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};
/* clang-format on */

bool
span_eq(struct span s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

bool
span_ieq(struct span s, const char *lit)
{
    return s.n == strlen(lit) && strncasecmp(s.p, lit, s.n) == 0;
}

void
span_copy(char *dst, size_t cap, struct span s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;

    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

const struct span *
http1_header_get(const struct http1_head *h, const char *name)
{
    size_t i;

    for (i = h->nheaders; i-- > 0;) {
        if (span_ieq(h->headers[i].name, name)) {
            return &h->headers[i].value;
        }
    }
    return NULL;
}

bool
http1_list_has(struct span list, const char *token)
{
    size_t i = 0, start, end, tl = strlen(token);

    while (i < list.n) {
        while (i < list.n && (list.p[i] == ' ' || list.p[i] == '\t' || list.p[i] == ',')) {
            i++;
        }
        start = i;
        while (i < list.n && list.p[i] != ',') {
            i++;
        }
        end = i;
        while (end > start && (list.p[end - 1] == ' ' || list.p[end - 1] == '\t')) {
            end--;
        }
        if (end - start == tl && strncasecmp(list.p + start, token, tl) == 0) {
            return true;
        }
    }
    return false;
}

/* Finds the end of the head ("\r\n\r\n"); refuses a bare LF or CR anywhere before it. */
static enum http1_status
find_head(const char *buf, size_t len, size_t *head_len)
{
    size_t i, lim = len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD;

    for (i = 0; i < lim; i++) {
        if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n') {
            return HTTP1_BAD; /* a bare CR is no line end */
        }
        if (buf[i] != '\n') {
            continue;
        }
        if (i == 0 || buf[i - 1] != '\r') {
            return HTTP1_BAD;
        }
        if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            *head_len = i + 1;
            return HTTP1_OK;
        }
    }
    return len >= HTTP1_MAX_HEAD ? HTTP1_TOO_LARGE : HTTP1_INCOMPLETE;
}

bool
http1_parse_uint(struct span s, size_t max_digits, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (s.n == 0 || s.n > max_digits) {
        return false;
    }
    for (i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    *out = v;
    return true;
}

/* Header lines from <p> to the blank line; also the framing headers. */
static enum http1_status
parse_headers(const char *p, const char *end, struct http1_head *h)
{
    const char *eol, *colon, *v, *ve;
    const struct span *te, *conn;
    int ncl = 0, nte = 0;

    while (p < end - 2) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL) {
            return HTTP1_BAD;
        }
        if (*p == ' ' || *p == '\t') {
            return HTTP1_BAD; /* obsolete line folding */
        }
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p) {
            return HTTP1_BAD;
        }
        for (v = p; v < colon; v++) {
            if (!tchar[(unsigned char)*v]) {
                return HTTP1_BAD;
            }
        }
        v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t')) {
            v++;
        }
        ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
            ve--;
        }
        for (const char *c = v; c < ve; c++) {
            if ((unsigned char)*c < 0x20 && *c != '\t') {
                return HTTP1_BAD;
            }
        }
        if (h->nheaders == HTTP1_MAX_HEADERS) {
            return HTTP1_TOO_LARGE;
        }
        h->headers[h->nheaders].name = (struct span){p, (size_t)(colon - p)};
        h->headers[h->nheaders].value = (struct span){v, (size_t)(ve - v)};
        if (span_ieq(h->headers[h->nheaders].name, "content-length")) {
            ncl++;
            if (!http1_parse_uint(h->headers[h->nheaders].value, 19, &h->content_length)) {
                return HTTP1_BAD;
            }
        } else if (span_ieq(h->headers[h->nheaders].name, "transfer-encoding")) {
            nte++;
        }
        h->nheaders++;
        p = eol + 2;
    }
    if (ncl > 1 || nte > 1 || (ncl && nte)) {
        return HTTP1_BAD;
    }
    te = http1_header_get(h, "transfer-encoding");
    if (te != NULL) {
        if (!span_ieq(*te, "chunked")) {
            return HTTP1_BAD;
        }
        h->framing = HTTP1_BODY_CHUNKED;
    } else if (ncl) {
        h->framing = HTTP1_BODY_LENGTH;
    }
    conn = http1_header_get(h, "connection");
    h->keep_alive = h->minor >= 1;
    if (conn != NULL) {
        if (http1_list_has(*conn, "close")) {
            h->keep_alive = false;
        } else if (http1_list_has(*conn, "keep-alive")) {
            h->keep_alive = true;
        }
        h->upgrade = http1_list_has(*conn, "upgrade") && http1_header_get(h, "upgrade") != NULL;
    }
    return HTTP1_OK;
}

static enum http1_status
parse_version(const char *p, const char *end, int *minor)
{
    if (end - p != 8 || memcmp(p, "HTTP/1.", 7) != 0) {
        return (end - p >= 5 && memcmp(p, "HTTP/", 5) == 0) ? HTTP1_BAD_VERSION : HTTP1_BAD;
    }
    if (p[7] != '0' && p[7] != '1') {
        return HTTP1_BAD_VERSION;
    }
    *minor = p[7] - '0';
    return HTTP1_OK;
}

enum http1_status
http1_parse_request(const char *buf, size_t len, struct http1_head *h)
{
    const char *p, *eol, *sp1, *sp2, *q;
    enum http1_status st;
    size_t head_len;

    st = find_head(buf, len, &head_len);
    if (st != HTTP1_OK) {
        return st;
    }
    memset(h, 0, sizeof(*h));
    h->head_len = head_len;
    eol = memchr(buf, '\r', head_len);
    sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    if (sp1 == NULL || sp1 == buf) {
        return HTTP1_BAD;
    }
    sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1) {
        return HTTP1_BAD;
    }
    for (p = buf; p < sp1; p++) {
        if (!tchar[(unsigned char)*p]) {
            return HTTP1_BAD;
        }
    }
    for (p = sp1 + 1; p < sp2; p++) {
        /* No fragment in a request-target (RFC 9112 3.2): ExApp servers cut the path at '#',
         * so the routes would see another path than the ExApp. */
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#') {
            return HTTP1_BAD;
        }
    }
    st = parse_version(sp2 + 1, eol, &h->minor);
    if (st != HTTP1_OK) {
        return st;
    }
    h->method = (struct span){buf, (size_t)(sp1 - buf)};
    h->target = (struct span){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
    if (h->target.p[0] != '/' && !(span_eq(h->method, "OPTIONS") && span_eq(h->target, "*"))) {
        return HTTP1_BAD;
    }
    q = memchr(h->target.p, '?', h->target.n);
    if (q != NULL) {
        h->path = (struct span){h->target.p, (size_t)(q - h->target.p)};
        h->query = (struct span){q + 1, h->target.n - h->path.n - 1};
    } else {
        h->path = h->target;
        h->query = (struct span){q, 0};
    }
    st = parse_headers(eol + 2, buf + head_len, h);
    if (st != HTTP1_OK) {
        return st;
    }
    if (h->minor == 1 && http1_header_get(h, "host") == NULL) {
        return HTTP1_BAD;
    }
    {
        const struct span *ex = http1_header_get(h, "expect");

        h->expect_continue = ex != NULL && span_ieq(*ex, "100-continue");
    }
    return HTTP1_OK;
}

enum http1_status
http1_parse_response(const char *buf, size_t len, bool head_request, struct http1_head *h)
{
    const char *eol, *p;
    enum http1_status st;
    size_t head_len;

    st = find_head(buf, len, &head_len);
    if (st != HTTP1_OK) {
        return st;
    }
    memset(h, 0, sizeof(*h));
    h->head_len = head_len;
    eol = memchr(buf, '\r', head_len);
    if (eol - buf < 12 || buf[8] != ' ') {
        return HTTP1_BAD;
    }
    st = parse_version(buf, buf + 8, &h->minor);
    if (st != HTTP1_OK) {
        return st;
    }
    for (p = buf + 9; p < buf + 12; p++) {
        if (*p < '0' || *p > '9') {
            return HTTP1_BAD;
        }
        h->status = h->status * 10 + (*p - '0');
    }
    if (h->status < 100 || (eol > buf + 12 && buf[12] != ' ')) {
        return HTTP1_BAD;
    }
    h->reason =
        eol > buf + 13 ? (struct span){buf + 13, (size_t)(eol - buf - 13)} : (struct span){eol, 0};
    st = parse_headers(eol + 2, buf + head_len, h);
    if (st != HTTP1_OK) {
        return st;
    }
    if (head_request || h->status < 200 || h->status == 204 || h->status == 304) {
        h->framing = HTTP1_BODY_NONE;
    } else if (h->framing == HTTP1_BODY_NONE) {
        h->framing = HTTP1_BODY_UNTIL_CLOSE;
        h->keep_alive = false;
    }
    return HTTP1_OK;
}

enum {
    CS_SIZE,    /* hex digits */
    CS_SIZE_WS, /* spaces or tabs after the digits: only ';' or CR may follow */
    CS_EXT,     /* chunk extension up to CR */
    CS_SIZE_LF, /* LF after the size line */
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILER, /* start of a trailer line or the final CRLF */
    CS_TRAILER_LINE,
    CS_TRAILER_LF,
    CS_END_LF,
};

/* One byte of a line the tracker skips (a chunk extension or a trailer): CR moves to
 * <after_cr>; a bare LF or more than <limit> bytes is an error. */
static bool
skip_line(struct http1_chunked *c, unsigned char ch, int after_cr, size_t limit)
{
    if (ch == '\r') {
        c->state = after_cr;
        return true;
    }
    return ch != '\n' && ++c->line_len <= limit;
}

enum http1_chunk_result
http1_chunked_feed(struct http1_chunked *c, const char *buf, size_t len, size_t *used)
{
    size_t i = 0, take;
    unsigned char ch;
    int d;

    while (i < len) {
        ch = (unsigned char)buf[i];
        switch (c->state) {
        case CS_SIZE:
            d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
            if (d >= 0) {
                if (++c->digits > 15) {
                    return CHUNK_BAD;
                }
                c->remaining = c->remaining * 16 + (uint64_t)d;
            } else if (c->digits > 0 && ch == ';') {
                c->state = CS_EXT;
            } else if (c->digits > 0 && (ch == ' ' || ch == '\t')) {
                c->state = CS_SIZE_WS;
            } else if (c->digits > 0 && ch == '\r') {
                c->state = CS_SIZE_LF;
            } else {
                return CHUNK_BAD;
            }
            i++;
            break;
        case CS_SIZE_WS:
            if (ch == ';') {
                c->state = CS_EXT;
            } else if (ch == '\r') {
                c->state = CS_SIZE_LF;
            } else if (ch != ' ' && ch != '\t') {
                return CHUNK_BAD; /* "5 5": one size only */
            }
            i++;
            break;
        case CS_EXT:
            if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f ||
                !skip_line(c, ch, CS_SIZE_LF, 4096)) {
                return CHUNK_BAD;
            }
            i++;
            break;
        case CS_SIZE_LF:
            if (ch != '\n') {
                return CHUNK_BAD;
            }
            i++;
            c->line_len = 0;
            c->digits = 0;
            c->state = c->remaining == 0 ? CS_TRAILER : CS_DATA;
            break;
        case CS_DATA:
            take = len - i < c->remaining ? len - i : (size_t)c->remaining;
            i += take;
            c->remaining -= take;
            if (c->remaining == 0) {
                c->state = CS_DATA_CR;
            }
            break;
        case CS_DATA_CR:
            if (ch != '\r') {
                return CHUNK_BAD;
            }
            c->state = CS_DATA_LF;
            i++;
            break;
        case CS_DATA_LF:
            if (ch != '\n') {
                return CHUNK_BAD;
            }
            c->state = CS_SIZE;
            i++;
            break;
        case CS_TRAILER:
            if (ch == '\r') {
                c->state = CS_END_LF;
            } else {
                c->state = CS_TRAILER_LINE;
                c->line_len = 1;
            }
            i++;
            break;
        case CS_TRAILER_LINE:
            if (!skip_line(c, ch, CS_TRAILER_LF, 8192)) {
                return CHUNK_BAD;
            }
            i++;
            break;
        case CS_TRAILER_LF:
            if (ch != '\n') {
                return CHUNK_BAD;
            }
            c->state = CS_TRAILER;
            i++;
            break;
        case CS_END_LF:
            if (ch != '\n') {
                return CHUNK_BAD;
            }
            *used = i + 1;
            return CHUNK_DONE;
        }
    }
    *used = i;
    return CHUNK_MORE;
}

/* --- path normalisation (RFC 3986 6.2.2) ------------------------------------------------- */

static int
hex_digit(unsigned char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Decodes the segment <s> of <n> bytes to <out> (room for n bytes); its length or a status
 * below zero. */
static long
decode_segment(const char *s, size_t n, unsigned flags, char *out)
{
    static const char up[] = "0123456789ABCDEF";
    size_t i, o = 0;
    int hi, lo;
    unsigned char v;

    for (i = 0; i < n; i++) {
        if (s[i] == '\\') {
            return HTTP1_PATH_BACKSLASH;
        }
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (n - i < 3 || (hi = hex_digit((unsigned char)s[i + 1])) < 0 ||
            (lo = hex_digit((unsigned char)s[i + 2])) < 0) {
            return HTTP1_PATH_BAD_ESCAPE;
        }
        v = (unsigned char)(hi << 4 | lo);
        i += 2;
        if (v == 0) {
            return HTTP1_PATH_NUL;
        }
        if (v == '\\') {
            return HTTP1_PATH_BACKSLASH;
        }
        if (v == '/' && !(flags & HTTP1_PATH_KEEP_SLASH)) {
            return HTTP1_PATH_SLASH;
        }
        if (unreserved(v)) {
            out[o++] = (char)v;
        } else {
            out[o++] = '%';
            out[o++] = up[v >> 4];
            out[o++] = up[v & 15];
        }
    }
    return (long)o;
}

enum http1_path_status
http1_path_normalise(struct span path, unsigned flags, char *out, size_t *outlen)
{
    const char *p = path.p, *end = path.p + path.n, *seg;
    size_t o = 0, segn;
    bool dir = false; /* the path ends with a separator */
    long dn;

    if (path.n == 0 || p[0] != '/') {
        return HTTP1_PATH_NOT_ABSOLUTE;
    }
    while (p < end) {
        p++; /* the '/' */
        seg = p;
        while (p < end && *p != '/') {
            p++;
        }
        segn = (size_t)(p - seg);
        /* "/" then the decoded segment: never longer than the input consumed so far. */
        out[o] = '/';
        dn = decode_segment(seg, segn, flags, out + o + 1);
        if (dn < 0) {
            return (enum http1_path_status)dn;
        }
        dir = true;
        if (dn == 0 || (dn == 1 && out[o + 1] == '.')) {
            continue; /* "//" and "/./" */
        }
        if (dn == 2 && out[o + 1] == '.' && out[o + 2] == '.') {
            if (o == 0) {
                return HTTP1_PATH_ABOVE_ROOT;
            }
            while (out[--o] != '/') {
            }
            continue;
        }
        o += 1 + (size_t)dn;
        dir = false;
    }
    if (dir || o == 0) {
        out[o++] = '/';
    }
    *outlen = o;
    return HTTP1_PATH_OK;
}

const char *
http1_path_error(enum http1_path_status st)
{
    switch (st) {
    case HTTP1_PATH_OK:
        return "ok";
    case HTTP1_PATH_BAD_ESCAPE:
        return "invalid percent-escape in the path";
    case HTTP1_PATH_NUL:
        return "encoded NUL in the path";
    case HTTP1_PATH_SLASH:
        return "encoded '/' in the path";
    case HTTP1_PATH_BACKSLASH:
        return "backslash in the path";
    case HTTP1_PATH_ABOVE_ROOT:
        return "dot segment above the root of the path";
    case HTTP1_PATH_NOT_ABSOLUTE:
        return "path does not start with '/'";
    }
    return "bad path";
}

const char *
http1_reason_phrase(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}
