/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Header rules of the proxy: pure functions of a parsed head, no I/O, no globals. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "headers.h"
#include "msg.h"
#include "xmalloc.h"

bool
headers_hop_by_hop(struct span name, const struct span *connection)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "te",         "trailer",    "upgrade"};
    char tok[64];
    size_t i;

    for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        if (span_ieq(name, hop[i])) {
            return true;
        }
    }
    if (connection != NULL && name.n < sizeof(tok)) {
        memcpy(tok, name.p, name.n);
        tok[name.n] = '\0';
        return http1_list_has(*connection, tok) && !span_ieq(name, "content-length") &&
               !span_ieq(name, "transfer-encoding");
    }
    return false;
}

/* <name> is <lit> (lower case, '-' separated) in any case and with '_' or '.' for '-':
 * CGI-style servers (wsgiref, PHP) read these spellings as the same variable (PHP turns '.'
 * into '_' in every $_SERVER name). */
static bool
spelled_as(struct span name, const char *lit)
{
    size_t i;

    for (i = 0; i < name.n && lit[i] != '\0'; i++) {
        char c = name.p[i] >= 'A' && name.p[i] <= 'Z' ? (char)(name.p[i] + 32) : name.p[i];

        if (c != lit[i] && !((c == '_' || c == '.') && lit[i] == '-')) {
            return false;
        }
    }
    return i == name.n && lit[i] == '\0';
}

bool
headers_injected(struct span name)
{
    return spelled_as(name, "ex-app-id") || spelled_as(name, "ex-app-version") ||
           spelled_as(name, "authorization-app-api") || spelled_as(name, "aa-version") ||
           spelled_as(name, "harp-shared-key");
}

bool
headers_dropped(enum headers_dest dest, struct span name, const struct span *connection,
                bool upgrade)
{
    if (headers_hop_by_hop(name, connection) && !(upgrade && span_ieq(name, "upgrade"))) {
        return true;
    }
    /* The control API checks the key itself; nothing else ever gets it. It learns that a
     * request came through a data plane, and from whom, from harp-via-dataplane alone. */
    return dest == HEADERS_TO_EXAPP     ? headers_injected(name)
           : dest == HEADERS_TO_CONTROL ? spelled_as(name, "harp-via-dataplane")
                                        : spelled_as(name, "harp-shared-key");
}

struct out {
    char *p;
    size_t len, cap;
};

static void
put(struct out *o, const void *p, size_t n)
{
    if (o->len + n <= o->cap) {
        memcpy(o->p + o->len, p, n);
    }
    o->len += n;
}

static void
puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void
put_span(struct out *o, struct span s)
{
    put(o, s.p, s.n);
}

size_t
headers_request(const struct http1_head *h, const struct headers_inject *in, char *buf, size_t cap)
{
    const struct span *conn_hdr = http1_header_get(h, "connection");
    struct out o = {buf, 0, cap};
    char line[1200];
    size_t i;

    put_span(&o, h->method);
    puts_(&o, " ");
    put_span(&o, in->target);
    if (h->query.p != NULL) {
        puts_(&o, "?");
        put_span(&o, h->query);
    }
    puts_(&o, " HTTP/1.1\r\n");
    for (i = 0; i < h->nheaders; i++) {
        const struct http1_header *hd = &h->headers[i];

        if (headers_dropped(in->dest, hd->name, conn_hdr, in->upgrade) ||
            (in->request_id != NULL && spelled_as(hd->name, "x-request-id"))) {
            continue;
        }
        put_span(&o, hd->name);
        puts_(&o, ": ");
        put_span(&o, hd->value);
        puts_(&o, "\r\n");
    }
    if (http1_header_get(h, "host") == NULL && in->host[0] == '+') {
        puts_(&o, "Host: localhost\r\n");
    } else if (http1_header_get(h, "host") == NULL) {
        snprintf(line, sizeof(line), "Host: %s:%u\r\n", in->host, in->port);
        puts_(&o, line);
    }
    if (in->upgrade) {
        puts_(&o, "Connection: Upgrade\r\n");
    }
    if (in->request_id != NULL) {
        puts_(&o, "X-Request-ID: ");
        puts_(&o, in->request_id);
        puts_(&o, "\r\n");
    }
    if (in->dest == HEADERS_TO_EXAPP) {
        puts_(&o, "EX-APP-ID: ");
        put_span(&o, in->app_id);
        puts_(&o, "\r\nEX-APP-VERSION: ");
        put_span(&o, in->version);
        puts_(&o, "\r\nAUTHORIZATION-APP-API: ");
        puts_(&o, in->auth);
        puts_(&o, "\r\nAA-VERSION: 32\r\n");
    } else if (in->dest == HEADERS_TO_CONTROL) {
        /* harp-ctl serves it no operator API; the value is the client's address */
        puts_(&o, "harp-via-dataplane: ");
        puts_(&o, in->client != NULL && in->client[0] != '\0' ? in->client : "1");
        puts_(&o, "\r\n");
    }
    puts_(&o, "\r\n");
    return o.len;
}

struct msg_header *
headers_for_auth(const struct http1_head *h, size_t *nout)
{
    const struct span *conn_hdr = http1_header_get(h, "connection");
    struct msg_header *a = xcalloc(h->nheaders + 1, sizeof(*a)), *out;
    size_t i, j, k;

    *nout = 0;
    for (i = 0; i < h->nheaders; i++) {
        struct span n = h->headers[i].name, v = h->headers[i].value;
        bool later = false;

        if (n.n >= sizeof(a->name) || span_ieq(n, "host") || span_ieq(n, "content-length") ||
            span_ieq(n, "transfer-encoding") || span_ieq(n, "harp-shared-key") ||
            headers_hop_by_hop(n, conn_hdr)) {
            continue;
        }
        for (j = i + 1; j < h->nheaders && !later; j++) {
            later = h->headers[j].name.n == n.n && strncasecmp(h->headers[j].name.p, n.p, n.n) == 0;
        }
        if (later) {
            continue;
        }
        out = &a[(*nout)++];
        for (k = 0; k < n.n; k++) {
            out->name[k] = (char)(n.p[k] >= 'A' && n.p[k] <= 'Z' ? n.p[k] + 32 : n.p[k]);
        }
        out->value = xmalloc(v.n + 1);
        memcpy(out->value, v.p, v.n);
        out->value[v.n] = '\0';
        out->value_len = v.n;
    }
    return a;
}
