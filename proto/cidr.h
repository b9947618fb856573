/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* IPv4/IPv6 addresses and networks: HP_TRUSTED_PROXY_IPS, client IPs, bans. Pure. */
#ifndef HARP_PROTO_CIDR_H
#define HARP_PROTO_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CIDR_MAX_NETS 256
#define IP_STR_MAX 46

struct ipaddr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t b[16];
};

struct cidr {
    struct ipaddr net;
    int prefix;
};

/* A list parsed from HP_TRUSTED_PROXY_IPS, with what a person should be told about it. */
struct cidr_list {
    struct cidr nets[CIDR_MAX_NETS];
    size_t n;
    char dequoted[512], masked[512], invalid[512]; /* up to 5 entries each, then a count */
    size_t ndequoted, nmasked, ninvalid;
};

/* A bare IPv4 or IPv6 address (no port, no brackets, no scope). */
bool ip_parse(const char *s, size_t len, struct ipaddr *out);
void ip_format(const struct ipaddr *ip, char out[IP_STR_MAX]);
/* "addr", "addr/prefix", "addr/netmask" or "addr/hostmask" (IPv4). Host bits are masked and
 * reported in *<masked>. -1 when it is none of these. */
int cidr_parse(const char *s, size_t len, struct cidr *out, bool *masked);
bool cidr_contains(const struct cidr *c, const struct ipaddr *ip);
/* HaRP's lenient list parsing (spec 1.4): comma-separated, whitespace and the quotes
 * ' " “ ” ‘ ’ stripped around each entry, host bits masked, invalid entries skipped. */
void cidr_list_parse(const char *s, struct cidr_list *out);
bool cidr_list_contains(const struct cidr_list *l, const struct ipaddr *ip);

#endif
