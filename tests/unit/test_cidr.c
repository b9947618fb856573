/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* HP_TRUSTED_PROXY_IPS parsing as HaRP's (spec 1.4: quotes, host bits, netmasks, IPv6,
 * invalid entries) and the client IP: right-most untrusted X-Forwarded-For entry from a trusted
 * peer, never from an untrusted one. */
#include "config.h"

#include <stdlib.h>

#include "cidr.h"
#include "clientip.h"
#include "tap.h"

static struct ipaddr
ip(const char *s)
{
    struct ipaddr a;

    if (!ip_parse(s, strlen(s), &a)) {
        abort();
    }
    return a;
}

static bool
in(const struct cidr_list *l, const char *s)
{
    struct ipaddr a = ip(s);

    return cidr_list_contains(l, &a);
}

static void
test_list(void)
{
    struct cidr_list l;

    cidr_list_parse(" '10.0.0.0/8', \"192.168.100.20/24\" ,\xe2\x80\x9c"
                    "172.16.0.1\xe2\x80\x9d,"
                    "fd00::/8, 10.0.0.0/255.255.0.0x, 300.1.1.1, ,::1, 127.0.0.0/255.0.0.0,"
                    "100.64.0.0/0.0.255.255",
                    &l);
    IS_INT(l.n, 7, "seven valid entries");
    IS_INT(l.ninvalid, 2, "two invalid ones");
    OK(strstr(l.invalid, "300.1.1.1") != NULL, "the invalid ones are listed");
    IS_INT(l.nmasked, 1, "one had host bits");
    OK(strstr(l.masked, "192.168.100.20/24") != NULL, "and is reported");
    IS_INT(l.ndequoted, 3, "three were quoted");
    OK(in(&l, "10.200.1.1"), "in 10/8");
    OK(in(&l, "192.168.100.77") && !in(&l, "192.168.101.1"), "host bits masked: /24");
    OK(in(&l, "172.16.0.1") && !in(&l, "172.16.0.2"), "typographic quotes stripped, /32");
    OK(in(&l, "fd12::1") && !in(&l, "fe80::1"), "IPv6 network");
    OK(in(&l, "::1"), "IPv6 address");
    OK(in(&l, "127.5.5.5"), "netmask notation");
    OK(in(&l, "100.64.9.9") && !in(&l, "100.65.0.1"), "hostmask notation");
    OK(!in(&l, "::ffff:10.0.0.1"), "IPv4 networks never match IPv6 addresses");
    cidr_list_parse("", &l);
    IS_INT(l.n + l.ninvalid, 0, "empty: nothing");
}

static void
check(const struct cidr_list *l, const char *peer, const char *headers, const char *want,
      const char *what)
{
    char buf[8192], got[IP_STR_MAX];
    struct http1_head h;
    struct ipaddr p = ip(peer), out;

    snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n%s\r\n", headers);
    http1_parse_request(buf, strlen(buf), &h);
    clientip_get(l, &p, &h, &out);
    ip_format(&out, got);
    IS_STR(got, want, "%s", what);
}

static void
test_clientip(void)
{
    struct cidr_list l;

    cidr_list_parse("10.0.0.0/8, 192.168.1.1", &l);
    check(&l, "203.0.113.5", "X-Forwarded-For: 1.1.1.1\r\n", "203.0.113.5",
          "untrusted peer: headers ignored");
    check(&l, "10.0.0.2", "X-Forwarded-For: 6.6.6.6, 198.51.100.7\r\n", "198.51.100.7",
          "the right-most untrusted entry, not the forged left-most");
    check(&l, "10.0.0.2", "X-Forwarded-For: 6.6.6.6, 198.51.100.7, 192.168.1.1\r\n", "198.51.100.7",
          "trusted hops skipped");
    check(&l, "10.0.0.2", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.8\r\n",
          "198.51.100.8", "several lines are one list");
    check(&l, "10.0.0.2", "X-Forwarded-For: 10.1.1.1, 192.168.1.1\r\n", "10.1.1.1",
          "all trusted: the left-most");
    check(&l, "10.0.0.2", "X-Forwarded-For: 6.6.6.6, garbage\r\nX-Real-IP: 198.51.100.9\r\n",
          "198.51.100.9", "garbage: X-Real-IP");
    check(&l, "10.0.0.2", "X-Forwarded-For: unknown\r\n", "10.0.0.2", "nothing usable: the peer");
    check(&l, "10.0.0.2", "X-Forwarded-For: 2001:db8::1\r\n", "2001:db8::1", "IPv6 client");
    cidr_list_parse("", &l);
    check(&l, "10.0.0.2", "X-Forwarded-For: 1.1.1.1\r\n", "10.0.0.2", "no trusted proxies");
}

/* However many entries a client forges, the right-most ones decide (issue 12.5). */
static void
test_clientip_many(void)
{
    struct cidr_list l;
    char hdr[4096];
    size_t n = 0;
    int i;

    cidr_list_parse("10.0.0.0/8", &l);
    n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "X-Forwarded-For: ");
    for (i = 0; i < 100; i++) {
        n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "6.6.%d.%d, ", i / 250, i % 250 + 1);
    }
    snprintf(hdr + n, sizeof(hdr) - n, "198.51.100.7\r\n");
    check(&l, "10.0.0.2", hdr, "198.51.100.7", "101 entries: the right-most, not the 64th");

    n = 0;
    for (i = 0; i < 80; i++) {
        n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "X-Forwarded-For: 6.6.6.%d\r\n", i + 1);
    }
    snprintf(hdr + n, sizeof(hdr) - n, "X-Forwarded-For: 198.51.100.8, 10.9.9.9\r\n");
    check(&l, "10.0.0.2", hdr, "198.51.100.8", "81 lines: the last line decides");

    n = 0;
    n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "X-Forwarded-For: 198.51.100.9");
    for (i = 0; i < 100; i++) {
        n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, ", 10.0.%d.%d", i / 250, i % 250 + 1);
    }
    snprintf(hdr + n, sizeof(hdr) - n, "\r\n");
    check(&l, "10.0.0.2", hdr, "198.51.100.9", "100 trusted hops walked past");
    check(&l, "10.0.0.2", "X-Forwarded-For: 6.6.6.6,\r\nX-Real-IP: 198.51.100.9\r\n",
          "198.51.100.9", "an empty right-most entry is garbage");
    check(&l, "10.0.0.2", "X-Forwarded-For:\r\nX-Forwarded-For: 198.51.100.4\r\n", "198.51.100.4",
          "an empty line after is still walked from the right");
}

int
main(void)
{
    test_list();
    test_clientip();
    test_clientip_many();
    return tap_done();
}
