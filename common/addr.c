/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Longest accepted text of one address ("ffff:...:255.255.255.255" is 45). */
#define IP_ADDR_MAXTEXT (IP_ADDR_STRLEN - 1)

size_t ip_family_len(sa_family_t family)
{
	switch (family) {
	case AF_INET:
		return 4;
	case AF_INET6:
		return 16;
	default:
		return 0;
	}
}

unsigned ip_family_bits(sa_family_t family)
{
	return (unsigned)ip_family_len(family) * 8;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ipv6_char(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
	       c == '.';
}

/*
 * Plain decimal at *sp: 1..max_digits digits, no sign, no leading zero
 * (except "0" itself), value <= max. Hand-written so that the locale and
 * strtoul's tolerance of spaces, signs and octal never matter.
 */
static int parse_decimal(const char **sp, unsigned max_digits, unsigned max, unsigned *ret)
{
	const char *s = *sp;
	unsigned v = 0, n = 0;

	while (is_digit(s[n])) {
		if (++n > max_digits)
			return -EINVAL;
		v = v * 10 + (unsigned)(s[n - 1] - '0');
	}
	if (n == 0 || (n > 1 && s[0] == '0') || v > max)
		return -EINVAL;
	*sp = s + n;
	*ret = v;
	return 0;
}

/* Dotted quad only: "1.2.3", "1.2.3.4.5", "01.2.3.4", "0x1.2.3.4" are all refused. */
static int parse_ipv4(const char *s, uint8_t out[4])
{
	for (unsigned i = 0; i < 4; i++) {
		unsigned octet;
		if (i > 0) {
			if (*s != '.')
				return -EINVAL;
			s++;
		}
		if (parse_decimal(&s, 3, 255, &octet) < 0)
			return -EINVAL;
		out[i] = (uint8_t)octet;
	}
	return *s == '\0' ? 0 : -EINVAL;
}

/* inet_pton() already refuses zone ids and spaces; the alphabet check makes it explicit. */
static int parse_ipv6(const char *s, uint8_t out[16])
{
	for (const char *p = s; *p != '\0'; p++)
		if (!is_ipv6_char(*p))
			return -EINVAL;
	return inet_pton(AF_INET6, s, out) == 1 ? 0 : -EINVAL;
}

/* The first len bytes of s are an address (IPv6 if it has a ':'). */
static int parse_addr(const char *s, size_t len, struct ip_addr *ret_addr)
{
	char text[IP_ADDR_MAXTEXT + 1];
	struct ip_addr a;
	int r;

	if (len == 0 || len > IP_ADDR_MAXTEXT)
		return -EINVAL;
	memcpy(text, s, len);
	text[len] = '\0';

	memset(&a, 0, sizeof(a));
	if (memchr(text, ':', len) != NULL) {
		a.family = AF_INET6;
		r = parse_ipv6(text, a.bytes);
	} else {
		a.family = AF_INET;
		r = parse_ipv4(text, a.bytes);
	}
	if (r < 0)
		return r;
	*ret_addr = a;
	return 0;
}

int ip_addr_parse(const char *s, struct ip_addr *ret_addr)
{
	return parse_addr(s, strnlen(s, IP_ADDR_MAXTEXT + 1), ret_addr);
}

/* Mask of the bits of byte index `byte` that lie inside the prefix. */
static uint8_t prefix_byte_mask(unsigned prefix, size_t byte)
{
	size_t start = byte * 8;

	if (prefix >= start + 8)
		return 0xff;
	if (prefix <= start)
		return 0;
	return (uint8_t)(0xffu << (8 - (prefix - start)));
}

static bool prefix_equal(const struct ip_addr *a, const struct ip_addr *b, unsigned prefix)
{
	size_t len = ip_family_len(a->family);

	for (size_t i = 0; i < len; i++)
		if (((a->bytes[i] ^ b->bytes[i]) & prefix_byte_mask(prefix, i)) != 0)
			return false;
	return true;
}

static bool has_host_bits(const struct ip_cidr *cidr)
{
	struct ip_cidr net = *cidr;

	ip_cidr_mask(&net);
	return !ip_addr_equal(&net.addr, &cidr->addr);
}

/* Shared tail of the constructors: range of the prefix, then host bits. */
static int cidr_finish(const struct ip_addr *addr, unsigned prefix, unsigned flags,
		       struct ip_cidr *ret_cidr)
{
	struct ip_cidr c;

	if (prefix > ip_family_bits(addr->family))
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	c.addr = *addr;
	c.prefix = (uint8_t)prefix;
	if (!(flags & IP_CIDR_ALLOW_HOST_BITS) && has_host_bits(&c))
		return -EINVAL;
	*ret_cidr = c;
	return 0;
}

int ip_cidr_parse(const char *s, unsigned flags, struct ip_cidr *ret_cidr)
{
	const char *slash = strchr(s, '/');
	size_t addrlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	struct ip_addr addr;
	unsigned prefix;

	if (parse_addr(s, addrlen, &addr) < 0)
		return -EINVAL;
	if (slash != NULL) {
		const char *p = slash + 1;
		if (parse_decimal(&p, 3, ip_family_bits(addr.family), &prefix) < 0 || *p != '\0')
			return -EINVAL;
	} else if (flags & IP_CIDR_ALLOW_BARE) {
		prefix = ip_family_bits(addr.family);
	} else {
		return -EINVAL;
	}
	return cidr_finish(&addr, prefix, flags, ret_cidr);
}

int ip_addr_from_bytes(const uint8_t *bytes, size_t len, struct ip_addr *ret_addr)
{
	struct ip_addr a;

	memset(&a, 0, sizeof(a));
	if (len == 4)
		a.family = AF_INET;
	else if (len == 16)
		a.family = AF_INET6;
	else
		return -EINVAL;
	memcpy(a.bytes, bytes, len);
	*ret_addr = a;
	return 0;
}

int ip_cidr_from_bytes(const uint8_t *bytes, size_t len, unsigned prefix, unsigned flags,
		       struct ip_cidr *ret_cidr)
{
	struct ip_addr addr;

	if (ip_addr_from_bytes(bytes, len, &addr) < 0)
		return -EINVAL;
	return cidr_finish(&addr, prefix, flags, ret_cidr);
}

int ip_addr_format(const struct ip_addr *addr, char *buf, size_t len)
{
	char text[IP_ADDR_STRLEN];
	size_t n;

	if (ip_family_len(addr->family) == 0)
		return -EINVAL;
	if (inet_ntop(addr->family, addr->bytes, text, sizeof(text)) == NULL)
		return -EINVAL;
	n = strlen(text);
	if (n >= len)
		return -ENOSPC;
	memcpy(buf, text, n + 1);
	return 0;
}

int ip_cidr_format(const struct ip_cidr *cidr, char *buf, size_t len)
{
	char text[IP_ADDR_STRLEN];
	int r = ip_addr_format(&cidr->addr, text, sizeof(text));
	int n;

	if (r < 0)
		return r;
	n = snprintf(buf, len, "%s/%u", text, (unsigned)cidr->prefix);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len)
		return -ENOSPC;
	return 0;
}

bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b)
{
	size_t len = ip_family_len(a->family);

	return len != 0 && a->family == b->family && memcmp(a->bytes, b->bytes, len) == 0;
}

void ip_cidr_mask(struct ip_cidr *cidr)
{
	size_t len = ip_family_len(cidr->addr.family);

	for (size_t i = 0; i < len; i++)
		cidr->addr.bytes[i] &= prefix_byte_mask(cidr->prefix, i);
}

static bool cidr_valid(const struct ip_cidr *cidr)
{
	unsigned bits = ip_family_bits(cidr->addr.family);

	return bits != 0 && cidr->prefix <= bits;
}

bool ip_cidr_contains(const struct ip_cidr *net, const struct ip_addr *addr)
{
	return cidr_valid(net) && net->addr.family == addr->family &&
	       prefix_equal(&net->addr, addr, net->prefix);
}

bool ip_cidr_contains_cidr(const struct ip_cidr *outer, const struct ip_cidr *inner)
{
	return cidr_valid(outer) && cidr_valid(inner) && outer->addr.family == inner->addr.family &&
	       inner->prefix >= outer->prefix &&
	       prefix_equal(&outer->addr, &inner->addr, outer->prefix);
}
