/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Header rules of the proxy (pure): which request headers are hop-by-hop, which spellings of
 * the headers harp injects are stripped, what is injected, and what user-info gets. */
#ifndef HARP_DP_HEADERS_H
#define HARP_DP_HEADERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "http1.h"

/* Where a request goes: what is stripped from it and what is injected differs. */
enum headers_dest { HEADERS_TO_EXAPP, HEADERS_TO_CONTROL, HEADERS_TO_DOCKER };

/* What harp adds to a forwarded request head. */
struct headers_inject {
    enum headers_dest dest;
    struct span target; /* the request target as forwarded (without the query) */
    const char *host;   /* the upstream, for a request without Host; "+..." is a Unix socket */
    unsigned port;
    bool upgrade;       /* the request asks to upgrade: Upgrade and Connection: Upgrade stay */
    struct span app_id; /* HEADERS_TO_EXAPP: EX-APP-ID, EX-APP-VERSION, AUTHORIZATION-APP-API */
    struct span version;
    const char *auth;
    const char *client; /* HEADERS_TO_CONTROL: the client's address as harp decided it */
    /* X-Request-ID to send instead of every client spelling of it; NULL: the client's pass */
    const char *request_id;
};

/* The rewritten head adds less than this to the client's head. */
#define HEADERS_ADDED_MAX 4096

/* True for a hop-by-hop header: the fixed ones and those named in <connection> (may be
 * NULL), except Content-Length and Transfer-Encoding. */
bool headers_hop_by_hop(struct span name, const struct span *connection);
/* True for any client spelling (case, '_' or '.' for '-') of a header harp injects or of the
 * shared key: such a header never reaches an ExApp. */
bool headers_injected(struct span name);
/* True when the client's header <name> is not forwarded to <dest>. */
bool headers_dropped(enum headers_dest dest, struct span name, const struct span *connection,
                     bool upgrade);
/* Writes the head to forward for request <h> into <out> (<cap> bytes) and returns its length;
 * a length over <cap> means <out> was too small (its content is then cut). */
size_t headers_request(const struct http1_head *h, const struct headers_inject *in, char *out,
                       size_t cap);
/* What user-info gets (spec 3.3): the client's headers but Host, Content-Length, hop-by-hop
 * ones and the shared key; names lower-case; of repeated lines the last. A new array of
 * *<nout> headers (values are bytes, not always UTF-8, copied). */
struct msg_header *headers_for_auth(const struct http1_head *h, size_t *nout);

#endif
