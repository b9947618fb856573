/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "clientip.h"

/* Walks the entries of every X-Forwarded-For line from the right: the last line's last entry
 * first. Nothing is copied, so no count of entries limits which ones are seen. */
struct xff_walk {
    const struct http1_head *h;
    size_t line; /* headers[line - 1] is the line being walked; 0: done */
    size_t pos;  /* the entries of that line left of pos are still to come */
    bool in_line;
};

static bool
xff_prev(struct xff_walk *w, struct span *out)
{
    size_t start, end;
    const char *p;

    while (!w->in_line) {
        if (w->line == 0) {
            return false;
        }
        w->line--;
        if (span_ieq(w->h->headers[w->line].name, "x-forwarded-for")) {
            w->pos = w->h->headers[w->line].value.n;
            w->in_line = true;
        }
    }
    p = w->h->headers[w->line].value.p;
    end = w->pos;
    start = end;
    while (start > 0 && p[start - 1] != ',') {
        start--;
    }
    if (start == 0) {
        w->in_line = false; /* the line's left-most entry */
    } else {
        w->pos = start - 1;
    }
    while (start < end && (p[start] == ' ' || p[start] == '\t')) {
        start++;
    }
    while (end > start && (p[end - 1] == ' ' || p[end - 1] == '\t')) {
        end--;
    }
    *out = (struct span){p + start, end - start};
    return true;
}

void
clientip_get(const struct cidr_list *trusted, const struct ipaddr *peer, const struct http1_head *h,
             struct ipaddr *out)
{
    struct xff_walk w = {h, h->nheaders, 0, false};
    struct span e;
    struct ipaddr ip, last_trusted;
    const struct span *real;
    bool any = false, garbage = false;

    *out = *peer;
    if (trusted->n == 0 || !cidr_list_contains(trusted, peer)) {
        return;
    }
    while (xff_prev(&w, &e)) {
        if (!ip_parse(e.p, e.n, &ip)) {
            garbage = true; /* what lies left of garbage cannot be trusted */
            break;
        }
        if (!cidr_list_contains(trusted, &ip)) {
            *out = ip;
            return;
        }
        last_trusted = ip;
        any = true;
    }
    if (any && !garbage) {
        *out = last_trusted; /* the whole chain is trusted: the left-most sent it */
        return;
    }
    real = http1_header_get(h, "x-real-ip");
    if (real != NULL && ip_parse(real->p, real->n, &ip)) {
        *out = ip;
    }
}
