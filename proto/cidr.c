/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Addresses and networks, parsed as Python's ipaddress module does for HaRP. Pure. */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

bool
ip_parse(const char *s, size_t len, struct ipaddr *out)
{
    char buf[64];

    if (len == 0 || len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->b) == 1) {
        out->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out->b) == 1) {
        out->family = AF_INET6;
        return true;
    }
    return false;
}

void
ip_format(const struct ipaddr *ip, char out[IP_STR_MAX])
{
    if (inet_ntop(ip->family, ip->b, out, IP_STR_MAX) == NULL) {
        snprintf(out, IP_STR_MAX, "?");
    }
}

static int
bits(const struct ipaddr *ip)
{
    return ip->family == AF_INET ? 32 : 128;
}

/* The prefix length of a contiguous netmask (or, with <host>, hostmask), or -1. */
static int
mask_prefix(const struct ipaddr *m, bool host)
{
    int n = bits(m), i, p = 0;
    bool ones = true;

    for (i = 0; i < n; i++) {
        bool bit = (m->b[i / 8] >> (7 - i % 8)) & 1;

        if (host) {
            bit = !bit;
        }
        if (bit && !ones) {
            return -1;
        }
        if (bit) {
            p++;
        } else {
            ones = false;
        }
    }
    return p;
}

int
cidr_parse(const char *s, size_t len, struct cidr *out, bool *masked)
{
    const char *slash = memchr(s, '/', len);
    struct ipaddr m;
    size_t alen = slash ? (size_t)(slash - s) : len, i;
    char *end, num[8];
    long p;
    int b;

    *masked = false;
    if (!ip_parse(s, alen, &out->net)) {
        return -1;
    }
    b = bits(&out->net);
    if (slash == NULL) {
        out->prefix = b;
        return 0;
    }
    slash++;
    len -= alen + 1;
    if (len > 0 && len < sizeof(num) && strspn(slash, "0123456789") >= len) {
        memcpy(num, slash, len);
        num[len] = '\0';
        p = strtol(num, &end, 10);
        if (*end != '\0' || p < 0 || p > b) {
            return -1;
        }
        out->prefix = (int)p;
    } else if (out->net.family == AF_INET && ip_parse(slash, len, &m) && m.family == AF_INET) {
        out->prefix = mask_prefix(&m, false);
        if (out->prefix < 0) {
            out->prefix = mask_prefix(&m, true);
        }
        if (out->prefix < 0) {
            return -1;
        }
    } else {
        return -1;
    }
    for (i = (size_t)out->prefix; i < (size_t)b; i++) {
        if (out->net.b[i / 8] & (1u << (7 - i % 8))) {
            *masked = true;
            out->net.b[i / 8] &= (uint8_t) ~(1u << (7 - i % 8));
        }
    }
    return 0;
}

bool
cidr_contains(const struct cidr *c, const struct ipaddr *ip)
{
    int full = c->prefix / 8, rest = c->prefix % 8;

    if (c->net.family != ip->family) {
        return false;
    }
    if (memcmp(c->net.b, ip->b, (size_t)full) != 0) {
        return false;
    }
    return rest == 0 || ((c->net.b[full] ^ ip->b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool
cidr_list_contains(const struct cidr_list *l, const struct ipaddr *ip)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (cidr_contains(&l->nets[i], ip)) {
            return true;
        }
    }
    return false;
}

/* Length of a quote character (ASCII ' " or UTF-8 “ ” ‘ ’) at the start of <p>, or with
 * <at_end> at its end; 0 when there is none. */
static size_t
quote_len(const char *p, size_t n, bool at_end)
{
    static const char *const q[] = {
        "'", "\"", "\xe2\x80\x9c", "\xe2\x80\x9d", "\xe2\x80\x98", "\xe2\x80\x99"};
    size_t i, l;

    for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        l = strlen(q[i]);
        if (n >= l && memcmp(at_end ? p + n - l : p, q[i], l) == 0) {
            return l;
        }
    }
    return 0;
}

static void
trim(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t')) {
        (*p)++, (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t')) {
        (*n)--;
    }
}

static void
note(char *buf, size_t len, size_t *count, const char *p, size_t n)
{
    size_t used = strlen(buf);

    if (*count < 5) {
        snprintf(buf + used, len - used, "%s%.*s", used ? ", " : "", (int)(n > 64 ? 64 : n), p);
    }
    (*count)++;
}

void
cidr_list_parse(const char *s, struct cidr_list *out)
{
    const char *p = s, *e, *start;
    size_t n, q, orig;
    bool masked, changed;

    memset(out, 0, sizeof(*out));
    while (p != NULL && *p != '\0') {
        e = strchr(p, ',');
        start = p;
        n = e ? (size_t)(e - p) : strlen(p);
        p = e ? e + 1 : NULL;
        trim(&start, &n);
        orig = n;
        changed = false;
        while (n > 0 && ((q = quote_len(start, n, false)) > 0)) {
            start += q, n -= q, changed = true;
        }
        while (n > 0 && ((q = quote_len(start, n, true)) > 0)) {
            n -= q, changed = true;
        }
        trim(&start, &n);
        if (n == 0) {
            continue;
        }
        if (changed || n != orig) {
            note(out->dequoted, sizeof(out->dequoted), &out->ndequoted, start, n);
        }
        if (out->n == CIDR_MAX_NETS || cidr_parse(start, n, &out->nets[out->n], &masked) == -1) {
            note(out->invalid, sizeof(out->invalid), &out->ninvalid, start, n);
            continue;
        }
        if (masked) {
            note(out->masked, sizeof(out->masked), &out->nmasked, start, n);
        }
        out->n++;
    }
}
