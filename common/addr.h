/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_ADDR_H
#define WIREGUI_ADDR_H

/* IPv4/IPv6 addresses and CIDRs: parse, format, compare, contain. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ip_addr {
	sa_family_t family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16];  /* network byte order; IPv4 uses the first 4 */
};

struct ip_cidr {
	struct ip_addr addr;
	uint8_t prefix; /* 0..32 or 0..128 */
};

/* Room for any formatted address / CIDR, NUL included. */
#define IP_ADDR_STRLEN 46
#define IP_CIDR_STRLEN 50

/* Flags for ip_cidr_parse(). */
enum {
	/* A bare address is accepted as a host route (/32 or /128). */
	IP_CIDR_ALLOW_BARE = 1 << 0,
	/* Bits beyond the prefix may be set ("10.3.2.1/24", an interface
	 * address); without it they must be zero. */
	IP_CIDR_ALLOW_HOST_BITS = 1 << 1,
};

size_t ip_family_len(sa_family_t family);    /* 4, 16 or 0 */
unsigned ip_family_bits(sa_family_t family); /* 32, 128 or 0 */

/* Strict: no surrounding spaces, no zone ids, IPv4 dotted quad only. 0 or -EINVAL. */
int ip_addr_parse(const char *s, struct ip_addr *ret_addr);
/* 0, or -EINVAL (syntax, prefix out of range for the family, host bits). */
int ip_cidr_parse(const char *s, unsigned flags, struct ip_cidr *ret_cidr);
/* From raw bytes (4 or 16) and a prefix, as carried in agent messages. */
int ip_cidr_from_bytes(const uint8_t *bytes, size_t len, unsigned prefix, unsigned flags,
		       struct ip_cidr *ret_cidr);
int ip_addr_from_bytes(const uint8_t *bytes, size_t len, struct ip_addr *ret_addr);

/* Canonical text (inet_ntop forms). Returns 0 or -ENOSPC. */
int ip_addr_format(const struct ip_addr *addr, char *buf, size_t len);
int ip_cidr_format(const struct ip_cidr *cidr, char *buf, size_t len);

bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b);
/* Clears the bits beyond the prefix. */
void ip_cidr_mask(struct ip_cidr *cidr);
/* Same family and addr inside net. */
bool ip_cidr_contains(const struct ip_cidr *net, const struct ip_addr *addr);
/* Same family, inner->prefix >= outer->prefix, inner's network inside outer. */
bool ip_cidr_contains_cidr(const struct ip_cidr *outer, const struct ip_cidr *inner);

#endif
