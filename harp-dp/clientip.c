/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "clientip.h"

/* The entries of every X-Forwarded-For line, left to right; returns how many (at most max). */
static size_t
xff_entries(const struct http1_head *h, struct span *e, size_t max)
{
    size_t i, j, n = 0, start, end;

    for (i = 0; i < h->nheaders; i++) {
        struct span v = h->headers[i].value;

        if (!span_ieq(h->headers[i].name, "x-forwarded-for")) {
            continue;
        }
        for (j = 0; j <= v.n; j++) {
            if (j < v.n && v.p[j] != ',') {
                continue;
            }
            start = j;
            while (start > 0 && v.p[start - 1] != ',') {
                start--;
            }
            end = j;
            while (start < end && (v.p[start] == ' ' || v.p[start] == '\t')) {
                start++;
            }
            while (end > start && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t')) {
                end--;
            }
            if (n < max) {
                e[n++] = (struct span){v.p + start, end - start};
            }
        }
    }
    return n;
}

void
clientip_get(const struct cidr_list *trusted, const struct ipaddr *peer,
             const struct http1_head *h, struct ipaddr *out)
{
    struct span e[64];
    struct ipaddr ip, last_trusted;
    const struct span *real;
    size_t n, i;
    bool any = false;

    *out = *peer;
    if (trusted->n == 0 || !cidr_list_contains(trusted, peer)) {
        return;
    }
    n = xff_entries(h, e, sizeof(e) / sizeof(e[0]));
    for (i = n; i-- > 0;) {
        if (!ip_parse(e[i].p, e[i].n, &ip)) {
            break; /* what lies left of garbage cannot be trusted */
        }
        if (!cidr_list_contains(trusted, &ip)) {
            *out = ip;
            return;
        }
        last_trusted = ip;
        any = true;
    }
    if (any && i == (size_t)-1) {
        *out = last_trusted; /* the whole chain is trusted: the left-most sent it */
        return;
    }
    real = http1_header_get(h, "x-real-ip");
    if (real != NULL && ip_parse(real->p, real->n, &ip)) {
        *out = ip;
    }
}
