/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "check_run.h"

#define A_BAD 0 /* family 0 in a table row: must be rejected */

static const struct addr_case {
	const char *in;
	int family;
	const char *canon; /* ip_addr_format() of the result */
} addr_cases[] = {
	{"0.0.0.0", AF_INET, "0.0.0.0"},
	{"10.0.0.1", AF_INET, "10.0.0.1"},
	{"192.168.1.254", AF_INET, "192.168.1.254"},
	{"255.255.255.255", AF_INET, "255.255.255.255"},
	{"100.64.0.0", AF_INET, "100.64.0.0"},
	{"1.0.0.0", AF_INET, "1.0.0.0"},
	{"::", AF_INET6, "::"},
	{"::1", AF_INET6, "::1"},
	{"fd00::1", AF_INET6, "fd00::1"},
	{"FD00::ABCD", AF_INET6, "fd00::abcd"},
	{"fe80::1", AF_INET6, "fe80::1"},
	{"2001:db8::", AF_INET6, "2001:db8::"},
	{"2001:0db8:0000:0000:0000:0000:0000:0001", AF_INET6, "2001:db8::1"},
	{"1:2:3:4:5:6:7:8", AF_INET6, "1:2:3:4:5:6:7:8"},
	{"::ffff:1.2.3.4", AF_INET6, "::ffff:1.2.3.4"},
	{"::ffff:0.0.0.0", AF_INET6, "::ffff:0.0.0.0"},
	{"64:ff9b::192.0.2.33", AF_INET6, "64:ff9b::c000:221"},
	{"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", AF_INET6,
	 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	{"fd00:0:0:0:0:0:3:2", AF_INET6, "fd00::3:2"},

	{"", A_BAD, NULL},
	{"1.2.3", A_BAD, NULL},
	{"1.2", A_BAD, NULL},
	{"1", A_BAD, NULL},
	{"16909060", A_BAD, NULL},
	{"1.2.3.4.5", A_BAD, NULL},
	{"01.2.3.4", A_BAD, NULL},
	{"1.2.3.04", A_BAD, NULL},
	{"1.2.3.00", A_BAD, NULL},
	{"0000.1.2.3", A_BAD, NULL},
	{"256.1.1.1", A_BAD, NULL},
	{"1.2.3.256", A_BAD, NULL},
	{"999.1.1.1", A_BAD, NULL},
	{"1.2.3.1000", A_BAD, NULL},
	{" 1.2.3.4", A_BAD, NULL},
	{"1.2.3.4 ", A_BAD, NULL},
	{"1.2.3.4\n", A_BAD, NULL},
	{"\t1.2.3.4", A_BAD, NULL},
	{"1.2.3.-4", A_BAD, NULL},
	{"1.2.3.+4", A_BAD, NULL},
	{"1..3.4", A_BAD, NULL},
	{"1.2.3.", A_BAD, NULL},
	{".1.2.3", A_BAD, NULL},
	{"0x1.2.3.4", A_BAD, NULL},
	{"1.2.3.4a", A_BAD, NULL},
	{"1.2.3.4/24", A_BAD, NULL},
	{"1.2.3.4:80", A_BAD, NULL},
	{"\xef\xbc\x91.2.3.4", A_BAD, NULL}, /* fullwidth digit one */
	{"fe80::1%eth0", A_BAD, NULL},
	{"fe80::1%1", A_BAD, NULL},
	{"::1 ", A_BAD, NULL},
	{" ::1", A_BAD, NULL},
	{"[::1]", A_BAD, NULL},
	{":::", A_BAD, NULL},
	{":", A_BAD, NULL},
	{"1::2::3", A_BAD, NULL},
	{"1:2:3:4:5:6:7:8:9", A_BAD, NULL},
	{"1:2:3:4:5:6:7", A_BAD, NULL},
	{"12345::", A_BAD, NULL},
	{"g::1", A_BAD, NULL},
	{"::ffff:01.2.3.4", A_BAD, NULL},
	{"::ffff:1.2.3", A_BAD, NULL},
	{"::ffff:1.2.3.4.5", A_BAD, NULL},
	{"::/0", A_BAD, NULL},
	{"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555", A_BAD, NULL},
	{"0000:0000:0000:0000:0000:0000:0000:0000:0000", A_BAD, NULL},
};

START_TEST(test_addr_parse)
{
	const struct addr_case *c = &addr_cases[_i];
	struct ip_addr a, untouched;
	char buf[IP_ADDR_STRLEN];

	memset(&a, 0xa5, sizeof(a));
	untouched = a;
	int r = ip_addr_parse(c->in, &a);
	if (c->family == A_BAD) {
		ck_assert_msg(r == -EINVAL, "'%s' accepted", c->in);
		ck_assert_mem_eq(&a, &untouched, sizeof(a));
		return;
	}
	ck_assert_msg(r == 0, "'%s' rejected: %d", c->in, r);
	ck_assert_int_eq(a.family, c->family);
	/* Unused bytes are zero, so whole structs compare. */
	for (size_t i = ip_family_len(a.family); i < sizeof(a.bytes); i++)
		ck_assert_uint_eq(a.bytes[i], 0);
	ck_assert_int_eq(ip_addr_format(&a, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, c->canon);
}
END_TEST

static const struct cidr_case {
	const char *in;
	unsigned flags;
	const char *canon; /* NULL: must be rejected */
} cidr_cases[] = {
	{"10.0.0.0/8", 0, "10.0.0.0/8"},
	{"10.0.0.1/32", 0, "10.0.0.1/32"},
	{"0.0.0.0/0", 0, "0.0.0.0/0"},
	{"192.168.0.0/23", 0, "192.168.0.0/23"},
	{"10.0.0.128/25", 0, "10.0.0.128/25"},
	{"10.0.0.254/31", 0, "10.0.0.254/31"},
	{"fd00::3:2:0/120", 0, "fd00::3:2:0/120"},
	{"::/0", 0, "::/0"},
	{"::1/128", 0, "::1/128"},
	{"2001:db8::/32", 0, "2001:db8::/32"},
	{"fd00::/8", 0, "fd00::/8"},
	{"fc00::/7", 0, "fc00::/7"},
	{"FD00::/64", 0, "fd00::/64"},
	{"::ffff:10.0.0.0/104", 0, "::ffff:10.0.0.0/104"},
	{"10.3.2.1/24", IP_CIDR_ALLOW_HOST_BITS, "10.3.2.1/24"},
	{"fd00::3:2:1/120", IP_CIDR_ALLOW_HOST_BITS, "fd00::3:2:1/120"},
	{"255.255.255.255/0", IP_CIDR_ALLOW_HOST_BITS, "255.255.255.255/0"},
	{"10.0.0.1", IP_CIDR_ALLOW_BARE, "10.0.0.1/32"},
	{"::1", IP_CIDR_ALLOW_BARE, "::1/128"},
	{"10.0.0.0/8", IP_CIDR_ALLOW_BARE | IP_CIDR_ALLOW_HOST_BITS, "10.0.0.0/8"},
	{"10.9.8.7", IP_CIDR_ALLOW_BARE | IP_CIDR_ALLOW_HOST_BITS, "10.9.8.7/32"},

	{"1.2.3.4/33", 0, NULL},
	{"1.2.3.4/33", IP_CIDR_ALLOW_HOST_BITS, NULL},
	{"::/129", 0, NULL},
	{"::/255", 0, NULL},
	{"::/256", 0, NULL},
	{"1.2.3.4/24", 0, NULL},
	{"1.2.3.4/24", IP_CIDR_ALLOW_BARE, NULL},
	{"10.0.0.1/31", 0, NULL},
	{"fd00::3:2:1/120", 0, NULL},
	{"fd00::/7", 0, NULL},
	{"::1/127", 0, NULL},
	{"10.0.0.1", 0, NULL},
	{"::1", 0, NULL},
	{"10.0.0.1", IP_CIDR_ALLOW_HOST_BITS, NULL},
	{"/", 0, NULL},
	{"/", IP_CIDR_ALLOW_BARE, NULL},
	{"", 0, NULL},
	{"", IP_CIDR_ALLOW_BARE, NULL},
	{"1.2.3.4/", 0, NULL},
	{"1.2.3.4/", IP_CIDR_ALLOW_BARE, NULL},
	{"/24", 0, NULL},
	{"/0", 0, NULL},
	{"1.2.3.0/08", IP_CIDR_ALLOW_HOST_BITS, NULL},
	{"0.0.0.0/00", 0, NULL},
	{"::/000", 0, NULL},
	{"::/0128", 0, NULL},
	{"1.2.3.0/0024", 0, NULL},
	{"1.2.3.4/1000", 0, NULL},
	{"1.2.3.4/-1", 0, NULL},
	{"1.2.3.4/+8", IP_CIDR_ALLOW_HOST_BITS, NULL},
	{"1.2.3.4/ 8", IP_CIDR_ALLOW_HOST_BITS, NULL},
	{"1.2.3.4 /8", IP_CIDR_ALLOW_HOST_BITS, NULL},
	{"1.2.3.4/8 ", IP_CIDR_ALLOW_HOST_BITS, NULL},
	{" 10.0.0.0/8", 0, NULL},
	{"10.0.0.0/8a", 0, NULL},
	{"10.0.0.0/0x8", 0, NULL},
	{"10.0.0.0/8/8", 0, NULL},
	{"10.0.0.0//8", 0, NULL},
	{"1.2.3/24", 0, NULL},
	{"01.2.3.0/24", 0, NULL},
	{"10.0.0.0/8\n", 0, NULL},
	{"fe80::1%eth0/64", IP_CIDR_ALLOW_HOST_BITS, NULL},
	{"fe80::/64%eth0", 0, NULL},
	{"fe80::1%eth0", IP_CIDR_ALLOW_BARE, NULL},
	{"[fd00::]/8", 0, NULL},
};

START_TEST(test_cidr_parse)
{
	const struct cidr_case *c = &cidr_cases[_i];
	struct ip_cidr cidr, untouched, again;
	char buf[IP_CIDR_STRLEN];

	memset(&cidr, 0x5a, sizeof(cidr));
	untouched = cidr;
	int r = ip_cidr_parse(c->in, c->flags, &cidr);
	if (c->canon == NULL) {
		ck_assert_msg(r == -EINVAL, "'%s' (flags %u) accepted", c->in, c->flags);
		ck_assert_mem_eq(&cidr, &untouched, sizeof(cidr));
		return;
	}
	ck_assert_msg(r == 0, "'%s' (flags %u) rejected: %d", c->in, c->flags, r);
	ck_assert_int_eq(ip_cidr_format(&cidr, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, c->canon);
	/* Round trip: the canonical text parses back to the same CIDR. */
	ck_assert_int_eq(ip_cidr_parse(buf, c->flags, &again), 0);
	ck_assert(ip_addr_equal(&again.addr, &cidr.addr));
	ck_assert_uint_eq(again.prefix, cidr.prefix);
}
END_TEST

/* Every prefix length of each family: valid up to the family's width, never beyond. */
START_TEST(test_cidr_every_prefix)
{
	char text[64];
	struct ip_cidr c;

	for (unsigned p = 0; p <= 300; p++) {
		snprintf(text, sizeof(text), "0.0.0.0/%u", p);
		ck_assert_int_eq(ip_cidr_parse(text, 0, &c), p <= 32 ? 0 : -EINVAL);
		if (p <= 32)
			ck_assert_uint_eq(c.prefix, p);
		snprintf(text, sizeof(text), "::/%u", p);
		ck_assert_int_eq(ip_cidr_parse(text, 0, &c), p <= 128 ? 0 : -EINVAL);
		if (p <= 128)
			ck_assert_uint_eq(c.prefix, p);
	}
}
END_TEST

/* Very long input must be refused without reading or writing out of bounds. */
START_TEST(test_long_strings)
{
	static const char *const fills[] = {"1", "1.", ":", "f", "0"};
	struct ip_addr a;
	struct ip_cidr c;

	for (size_t f = 0; f < ARRAY_LEN(fills); f++) {
		for (size_t len = 40; len < 5000; len += 97) {
			char *s = malloc(len + 1);
			ck_assert_ptr_nonnull(s);
			for (size_t i = 0; i < len; i++)
				s[i] = fills[f][i % strlen(fills[f])];
			s[len] = '\0';
			ck_assert_int_eq(ip_addr_parse(s, &a), -EINVAL);
			ck_assert_int_eq(ip_cidr_parse(s, IP_CIDR_ALLOW_BARE, &c), -EINVAL);
			s[len / 2] = '/';
			ck_assert_int_eq(ip_cidr_parse(s, IP_CIDR_ALLOW_HOST_BITS, &c), -EINVAL);
			free(s);
		}
	}
	/* A valid address followed by a long prefix text. */
	char big[600] = "10.0.0.0/";
	memset(big + strlen(big), '8', sizeof(big) - strlen(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(ip_cidr_parse(big, 0, &c), -EINVAL);
}
END_TEST

static const struct bytes_case {
	size_t len;
	unsigned prefix;
	unsigned flags;
	int want;
	const char *canon;
} bytes_cases[] = {
	{4, 24, 0, 0, "10.1.2.0/24"},
	{4, 32, 0, 0, "10.1.2.0/32"},
	{4, 0, IP_CIDR_ALLOW_HOST_BITS, 0, "10.1.2.0/0"},
	{4, 23, 0, 0, "10.1.2.0/23"},
	{4, 22, 0, -EINVAL, NULL}, /* 2 is a host bit of /22 */
	{4, 22, IP_CIDR_ALLOW_HOST_BITS, 0, "10.1.2.0/22"},
	{4, 33, 0, -EINVAL, NULL},
	{4, 8, 0, -EINVAL, NULL}, /* host bits */
	{16, 128, 0, 0, "a01:200::/128"},
	{16, 24, 0, 0, "a01:200::/24"},
	{16, 0, IP_CIDR_ALLOW_HOST_BITS, 0, "a01:200::/0"},
	{16, 129, 0, -EINVAL, NULL},
	{16, 8, 0, -EINVAL, NULL},
	{16, 8, IP_CIDR_ALLOW_HOST_BITS, 0, "a01:200::/8"},
	{0, 0, 0, -EINVAL, NULL},
	{5, 0, 0, -EINVAL, NULL},
	{15, 0, 0, -EINVAL, NULL},
	{17, 0, 0, -EINVAL, NULL},
};

START_TEST(test_cidr_from_bytes)
{
	const struct bytes_case *c = &bytes_cases[_i];
	uint8_t raw[17] = {10, 1, 2, 0};
	struct ip_cidr cidr;
	char buf[IP_CIDR_STRLEN];

	int r = ip_cidr_from_bytes(raw, c->len, c->prefix, c->flags, &cidr);
	ck_assert_int_eq(r, c->want);
	if (r < 0)
		return;
	ck_assert_int_eq(ip_cidr_format(&cidr, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, c->canon);
}
END_TEST

START_TEST(test_addr_from_bytes)
{
	const uint8_t v4[4] = {192, 0, 2, 1};
	const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	struct ip_addr a, b;

	ck_assert_int_eq(ip_addr_from_bytes(v4, 4, &a), 0);
	ck_assert_int_eq(ip_addr_parse("192.0.2.1", &b), 0);
	ck_assert(ip_addr_equal(&a, &b));
	ck_assert_int_eq(ip_addr_from_bytes(v6, 16, &a), 0);
	ck_assert_int_eq(ip_addr_parse("2001:db8::1", &b), 0);
	ck_assert(ip_addr_equal(&a, &b));
	ck_assert_mem_eq(&a, &b, sizeof(a));
	memset(&b, 0x77, sizeof(b));
	ck_assert_int_eq(ip_addr_from_bytes(v6, 8, &b), -EINVAL);
	ck_assert_uint_eq(b.bytes[0], 0x77);
}
END_TEST

/* ip_addr_format/ip_cidr_format: exact fit works, one byte less is -ENOSPC. */
static const char *const format_cases[] = {
	"0.0.0.0/0",
	"255.255.255.255/32",
	"::/0",
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	"::ffff:255.255.255.255/128",
	"fd00::3:2:0/120",
};

START_TEST(test_format_space)
{
	const char *text = format_cases[_i];
	struct ip_cidr c;
	char buf[IP_CIDR_STRLEN + 8];
	size_t cidr_len = strlen(text);
	size_t addr_len = (size_t)(strchr(text, '/') - text);

	ck_assert_int_eq(ip_cidr_parse(text, 0, &c), 0);
	ck_assert_uint_lt(cidr_len, IP_CIDR_STRLEN);

	ck_assert_int_eq(ip_cidr_format(&c, buf, cidr_len + 1), 0);
	ck_assert_str_eq(buf, text);
	ck_assert_int_eq(ip_cidr_format(&c, buf, cidr_len), -ENOSPC);
	ck_assert_int_eq(ip_cidr_format(&c, buf, 0), -ENOSPC);

	ck_assert_int_eq(ip_addr_format(&c.addr, buf, addr_len + 1), 0);
	ck_assert_int_eq(strncmp(buf, text, addr_len), 0);
	ck_assert_uint_eq(strlen(buf), addr_len);
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(ip_addr_format(&c.addr, buf, addr_len), -ENOSPC);
	ck_assert_int_eq(buf[addr_len], 'x');
}
END_TEST

START_TEST(test_format_bad_family)
{
	struct ip_addr a = {.family = AF_UNIX};
	struct ip_cidr c = {.addr = a, .prefix = 0};
	char buf[IP_CIDR_STRLEN];

	ck_assert_int_eq(ip_addr_format(&a, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(ip_cidr_format(&c, buf, sizeof(buf)), -EINVAL);
}
END_TEST

START_TEST(test_family)
{
	ck_assert_uint_eq(ip_family_len(AF_INET), 4);
	ck_assert_uint_eq(ip_family_len(AF_INET6), 16);
	ck_assert_uint_eq(ip_family_len(AF_UNIX), 0);
	ck_assert_uint_eq(ip_family_len(AF_UNSPEC), 0);
	ck_assert_uint_eq(ip_family_bits(AF_INET), 32);
	ck_assert_uint_eq(ip_family_bits(AF_INET6), 128);
	ck_assert_uint_eq(ip_family_bits(AF_UNIX), 0);
}
END_TEST

static const struct equal_case {
	const char *a, *b;
	bool equal;
} equal_cases[] = {
	{"10.0.0.1", "10.0.0.1", true},
	{"10.0.0.1", "10.0.0.2", false},
	{"::1", "0:0:0:0:0:0:0:1", true},
	{"FD00::1", "fd00::1", true},
	{"::ffff:1.2.3.4", "1.2.3.4", false}, /* families differ */
	{"::", "0.0.0.0", false},
	{"::102:304", "1.2.3.4", false},
	{"::ffff:1.2.3.4", "::ffff:102:304", true},
};

START_TEST(test_addr_equal)
{
	const struct equal_case *c = &equal_cases[_i];
	struct ip_addr a, b;

	ck_assert_int_eq(ip_addr_parse(c->a, &a), 0);
	ck_assert_int_eq(ip_addr_parse(c->b, &b), 0);
	ck_assert_int_eq(ip_addr_equal(&a, &b), c->equal);
	ck_assert_int_eq(ip_addr_equal(&b, &a), c->equal);
}
END_TEST

static const struct mask_case {
	const char *in, *masked;
} mask_cases[] = {
	{"10.3.2.1/24", "10.3.2.0/24"},
	{"10.3.2.129/25", "10.3.2.128/25"},
	{"10.3.2.255/31", "10.3.2.254/31"},
	{"10.3.2.255/32", "10.3.2.255/32"},
	{"255.255.255.255/0", "0.0.0.0/0"},
	{"255.255.255.255/1", "128.0.0.0/1"},
	{"255.255.255.255/9", "255.128.0.0/9"},
	{"fd00::3:2:1/120", "fd00::3:2:0/120"},
	{"fd12:3456::1/7", "fc00::/7"},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/0", "::/0"},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/65", "ffff:ffff:ffff:ffff:8000::/65"},
};

START_TEST(test_cidr_mask)
{
	const struct mask_case *c = &mask_cases[_i];
	struct ip_cidr cidr, strict;
	char buf[IP_CIDR_STRLEN];

	ck_assert_int_eq(ip_cidr_parse(c->in, IP_CIDR_ALLOW_HOST_BITS, &cidr), 0);
	ip_cidr_mask(&cidr);
	ck_assert_int_eq(ip_cidr_format(&cidr, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, c->masked);
	/* The masked network has no host bits left. */
	ck_assert_int_eq(ip_cidr_parse(buf, 0, &strict), 0);
}
END_TEST

static const struct contains_case {
	const char *net, *addr;
	bool inside;
} contains_cases[] = {
	{"10.0.0.0/8", "10.255.255.255", true},
	{"10.0.0.0/8", "10.0.0.0", true},
	{"10.0.0.0/8", "11.0.0.0", false},
	{"10.0.0.0/8", "9.255.255.255", false},
	{"0.0.0.0/0", "1.2.3.4", true},
	{"0.0.0.0/0", "255.255.255.255", true},
	{"0.0.0.0/0", "::1", false},
	{"0.0.0.0/0", "::ffff:1.2.3.4", false},
	{"::/0", "1.2.3.4", false},
	{"::/0", "::1", true},
	{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
	{"10.0.0.1/32", "10.0.0.1", true},
	{"10.0.0.1/32", "10.0.0.2", false},
	{"10.0.0.1", "10.0.0.1", true}, /* bare: host route */
	{"::1/128", "::1", true},
	{"::1/128", "::2", false},
	{"::1/128", "1.0.0.0", false},
	{"fd00::3:2:0/120", "fd00::3:2:ff", true},
	{"fd00::3:2:0/120", "fd00::3:2:0", true},
	{"fd00::3:2:0/120", "fd00::3:3:0", false},
	{"fd00::3:2:0/120", "fd00::3:1:ff", false},
	{"::ffff:0.0.0.0/96", "1.2.3.4", false},
	{"::ffff:0.0.0.0/96", "::ffff:1.2.3.4", true},
	{"10.0.0.0/31", "10.0.0.1", true},
	{"10.0.0.0/31", "10.0.0.2", false},
	{"192.168.0.0/23", "192.168.1.255", true},
	{"192.168.0.0/23", "192.168.2.0", false},
	{"10.3.2.1/24", "10.3.2.200", true}, /* interface address: host bits ignored */
	{"10.3.2.1/24", "10.3.3.1", false},
	{"128.0.0.0/1", "127.255.255.255", false},
	{"128.0.0.0/1", "128.0.0.0", true},
	{"8000::/1", "7fff::", false},
	{"8000::/1", "8000::", true},
	{"fc00::/7", "fdff:ffff::1", true},
	{"fc00::/7", "fe00::", false},
};

#define FLAGS_ANY (IP_CIDR_ALLOW_BARE | IP_CIDR_ALLOW_HOST_BITS)

START_TEST(test_cidr_contains)
{
	const struct contains_case *c = &contains_cases[_i];
	struct ip_cidr net;
	struct ip_addr addr;

	ck_assert_int_eq(ip_cidr_parse(c->net, FLAGS_ANY, &net), 0);
	ck_assert_int_eq(ip_addr_parse(c->addr, &addr), 0);
	ck_assert_msg(ip_cidr_contains(&net, &addr) == c->inside, "%s in %s: expected %d", c->addr,
		      c->net, c->inside);
}
END_TEST

static const struct contains_cidr_case {
	const char *outer, *inner;
	bool inside;
} contains_cidr_cases[] = {
	{"10.0.0.0/8", "10.1.0.0/16", true},
	{"10.0.0.0/8", "10.0.0.0/8", true},
	{"10.0.0.0/8", "10.255.255.255/32", true},
	{"10.0.0.0/16", "10.0.0.0/8", false},
	{"10.0.0.0/8", "11.0.0.0/16", false},
	{"10.0.0.0/8", "0.0.0.0/0", false},
	{"0.0.0.0/0", "0.0.0.0/0", true},
	{"0.0.0.0/0", "255.255.255.255/32", true},
	{"0.0.0.0/0", "::/0", false},
	{"::/0", "0.0.0.0/0", false},
	{"::/0", "::/0", true},
	{"::/0", "fd00::/8", true},
	{"::/0", "::1/128", true},
	{"fd00::/8", "fc00::/7", false},
	{"fc00::/7", "fd00::/8", true},
	{"fd00::/8", "fe00::/8", false},
	{"10.0.0.0/32", "10.0.0.0/32", true},
	{"10.0.0.0/32", "10.0.0.1/32", false},
	{"::1/128", "::1/128", true},
	{"::1/128", "::/127", false},
	{"2001:db8::/32", "2001:db9::/48", false},
	{"2001:db8::/32", "2001:db8:ffff::/48", true},
	{"fd00::3:2:0/120", "fd00::3:2:80/121", true},
	{"fd00::3:2:0/120", "fd00::3:3:0/121", false},
	{"::ffff:0.0.0.0/96", "10.0.0.0/8", false},
	{"10.3.2.1/24", "10.3.2.128/25", true}, /* outer host bits ignored */
	{"10.3.2.0/24", "10.3.2.7/24", true},	/* inner host bits ignored */
};

START_TEST(test_cidr_contains_cidr)
{
	const struct contains_cidr_case *c = &contains_cidr_cases[_i];
	struct ip_cidr outer, inner;

	ck_assert_int_eq(ip_cidr_parse(c->outer, FLAGS_ANY, &outer), 0);
	ck_assert_int_eq(ip_cidr_parse(c->inner, FLAGS_ANY, &inner), 0);
	ck_assert_msg(ip_cidr_contains_cidr(&outer, &inner) == c->inside, "%s in %s: expected %d",
		      c->inner, c->outer, c->inside);
}
END_TEST

/* Hand-made structs with impossible prefixes or families never "contain" anything. */
START_TEST(test_contains_invalid)
{
	struct ip_cidr net = {.addr = {.family = AF_INET}, .prefix = 33};
	struct ip_cidr ok = {.addr = {.family = AF_INET}, .prefix = 0};
	struct ip_addr addr = {.family = AF_INET};
	struct ip_cidr unix_net = {.addr = {.family = AF_UNIX}, .prefix = 0};
	struct ip_addr unix_addr = {.family = AF_UNIX};

	ck_assert(!ip_cidr_contains(&net, &addr));
	ck_assert(!ip_cidr_contains_cidr(&net, &ok));
	ck_assert(!ip_cidr_contains_cidr(&ok, &net));
	ck_assert(ip_cidr_contains(&ok, &addr));
	ck_assert(!ip_cidr_contains(&unix_net, &unix_addr));
	ck_assert(!ip_addr_equal(&unix_addr, &unix_addr));
}
END_TEST

static Suite *addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_addr_parse, 0, (int)ARRAY_LEN(addr_cases));
	tcase_add_loop_test(tc, test_cidr_parse, 0, (int)ARRAY_LEN(cidr_cases));
	tcase_add_test(tc, test_cidr_every_prefix);
	tcase_add_test(tc, test_long_strings);
	tcase_add_loop_test(tc, test_cidr_from_bytes, 0, (int)ARRAY_LEN(bytes_cases));
	tcase_add_test(tc, test_addr_from_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_loop_test(tc, test_format_space, 0, (int)ARRAY_LEN(format_cases));
	tcase_add_test(tc, test_format_bad_family);
	suite_add_tcase(s, tc);

	tc = tcase_create("compare");
	tcase_add_test(tc, test_family);
	tcase_add_loop_test(tc, test_addr_equal, 0, (int)ARRAY_LEN(equal_cases));
	tcase_add_loop_test(tc, test_cidr_mask, 0, (int)ARRAY_LEN(mask_cases));
	tcase_add_loop_test(tc, test_cidr_contains, 0, (int)ARRAY_LEN(contains_cases));
	tcase_add_loop_test(tc, test_cidr_contains_cidr, 0, (int)ARRAY_LEN(contains_cidr_cases));
	tcase_add_test(tc, test_contains_invalid);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(addr_suite());
}
