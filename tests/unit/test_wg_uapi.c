/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "wg_uapi.h"

/* 32 copies of a two-digit string: the hex of a key filled with one byte. */
#define X2(s) s s
#define X4(s) X2(s) X2(s)
#define X8(s) X4(s) X4(s)
#define HEX32(b) X8(b) X8(b) X8(b) X8(b)

/* RFC 7748 section 6.1: Alice's private key and the public key it gives. */
#define RFC7748_PRIV "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define RFC7748_PUB "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"

static struct ip_cidr cidr(const char *s)
{
	struct ip_cidr c;
	ck_assert_int_eq(ip_cidr_parse(s, 0, &c), 0);
	return c;
}

static struct wg_peer *add_peer(struct wg_device *dev, uint8_t key_byte, unsigned flags)
{
	struct wg_peer *p = wg_device_add_peer(dev);
	ck_assert_ptr_nonnull(p);
	memset(p->public_key, key_byte, WG_KEY_LEN);
	p->flags = flags;
	return p;
}

static void add_ip(struct wg_peer *p, const char *s)
{
	struct ip_cidr c = cidr(s);
	ck_assert_int_eq(wg_peer_add_allowed_ip(p, &c), 0);
}

/* ---- wg_uapi_format_set: exact request text ---- */

static void build_empty(struct wg_device *dev)
{
	(void)dev;
}

static void build_device_only(struct wg_device *dev)
{
	dev->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT;
	memset(dev->private_key, 0x11, WG_KEY_LEN);
	dev->listen_port = 51820;
}

static void build_full_peer(struct wg_device *dev)
{
	struct wg_peer *p = add_peer(
		dev, 0x22, WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE | WG_PEER_REPLACE_ALLOWED_IPS);
	memset(p->psk, 0x33, WG_KEY_LEN);
	p->keepalive = 25;
	add_ip(p, "10.0.0.2/32");
	add_ip(p, "fd00::2/128");
}

static void build_clear_psk_keepalive(struct wg_device *dev)
{
	struct wg_peer *p = add_peer(dev, 0x22, WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE);
	p->keepalive = 0;
}

static void build_remove(struct wg_device *dev)
{
	struct wg_peer *p = add_peer(dev, 0x44,
				     WG_PEER_REMOVE | WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE |
					     WG_PEER_REPLACE_ALLOWED_IPS);
	memset(p->psk, 0x33, WG_KEY_LEN);
	add_ip(p, "10.0.0.4/32");
	add_peer(dev, 0x55, 0);
}

static void build_replace_only(struct wg_device *dev)
{
	add_peer(dev, 0x22, WG_PEER_REPLACE_ALLOWED_IPS);
}

/* The widest value of every field: the size bound must hold them (ASan checks). */
static void build_longest(struct wg_device *dev)
{
	dev->flags = WG_DEVICE_HAS_LISTEN_PORT;
	dev->listen_port = 65535;
	for (int i = 0; i < 3; i++) {
		struct wg_peer *p = add_peer(dev, (uint8_t)(0xa0 + i),
					     WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE |
						     WG_PEER_REPLACE_ALLOWED_IPS);
		memset(p->psk, 0xff, WG_KEY_LEN);
		p->keepalive = 65535;
		add_ip(p, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
		add_ip(p, "::ffff:255.255.255.255/128");
		add_ip(p, "255.255.255.255/32");
		add_ip(p, "0.0.0.0/0");
	}
}

#define LONGEST_PEER(b)                                                                 \
	"public_key=" HEX32(b) "\npreshared_key=" HEX32(                                \
		"ff") "\n"                                                              \
		      "persistent_keepalive_interval=65535\nreplace_allowed_ips=true\n" \
		      "allowed_ip=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128\n"        \
		      "allowed_ip=::ffff:255.255.255.255/128\n"                         \
		      "allowed_ip=255.255.255.255/32\nallowed_ip=0.0.0.0/0\n"

static const struct {
	const char *name;
	void (*build)(struct wg_device *dev);
	const char *want;
} format_cases[] = {
	{"empty change", build_empty, "set=1\n\n"},
	{"device only", build_device_only,
	 "set=1\nprivate_key=" HEX32("11") "\nlisten_port=51820\n\n"},
	{"peer with psk, keepalive, v4 and v6", build_full_peer,
	 "set=1\npublic_key=" HEX32("22") "\npreshared_key=" HEX32(
		 "33") "\n"
		       "persistent_keepalive_interval=25\nreplace_allowed_ips=true\n"
		       "allowed_ip=10.0.0.2/32\nallowed_ip=fd00::2/128\n\n"},
	{"zero psk clears, keepalive 0 turns off", build_clear_psk_keepalive,
	 "set=1\npublic_key=" HEX32("22") "\npreshared_key=" HEX32(
		 "00") "\n"
		       "persistent_keepalive_interval=0\n\n"},
	{"remove says nothing else; a flagless peer is its key", build_remove,
	 "set=1\npublic_key=" HEX32("44") "\nremove=true\npublic_key=" HEX32("55") "\n\n"},
	{"replace with no allowed IPs", build_replace_only,
	 "set=1\npublic_key=" HEX32("22") "\nreplace_allowed_ips=true\n\n"},
	{"longest values", build_longest,
	 "set=1\nlisten_port=65535\n" LONGEST_PEER("a0") LONGEST_PEER("a1")
		 LONGEST_PEER("a2") "\n"},
};

START_TEST(test_format_set)
{
	struct wg_device *dev = wg_device_new("wg0");
	char *text;
	size_t len;

	format_cases[_i].build(dev);
	ck_assert_int_eq(wg_uapi_format_set(dev, &text, &len), 0);
	ck_assert_msg(strcmp(text, format_cases[_i].want) == 0, "%s: got\n%s",
		      format_cases[_i].name, text);
	ck_assert_uint_eq(len, strlen(format_cases[_i].want));
	sodium_memzero(text, len);
	free(text);
	wg_device_free(dev);
}
END_TEST

START_TEST(test_format_set_bad_family)
{
	struct wg_device *dev = wg_device_new("wg0");
	struct wg_peer *p = add_peer(dev, 0x22, 0);
	struct ip_cidr bad = {.addr = {.family = AF_UNIX}, .prefix = 8};
	char *text = NULL;
	size_t len;

	ck_assert_int_eq(wg_peer_add_allowed_ip(p, &bad), 0);
	ck_assert_int_eq(wg_uapi_format_set(dev, &text, &len), -EINVAL);
	ck_assert_ptr_null(text);
	wg_device_free(dev);
}
END_TEST

/* ---- wg_uapi_parse_get ---- */

static struct wg_device *parse_ok(const char *text)
{
	struct wg_device *dev = NULL;
	int r = wg_uapi_parse_get(text, strlen(text), "wg0", &dev);
	ck_assert_msg(r == 0, "parse: %d", r);
	ck_assert_ptr_nonnull(dev);
	return dev;
}

static void assert_cidr(const struct ip_cidr *c, const char *want)
{
	char buf[IP_CIDR_STRLEN];
	ck_assert_int_eq(ip_cidr_format(c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, want);
}

static void assert_endpoint(const struct wg_peer *p, const char *addr, uint16_t port)
{
	char buf[IP_ADDR_STRLEN];
	ck_assert_int_eq(ip_addr_format(&p->endpoint, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, addr);
	ck_assert_uint_eq(p->endpoint_port, port);
}

static void assert_key_byte(const uint8_t key[WG_KEY_LEN], uint8_t b)
{
	for (size_t i = 0; i < WG_KEY_LEN; i++)
		ck_assert_uint_eq(key[i], b);
}

/* The shape wireguard-go 0.0.2022 writes (device/uapi.go IpcGetOperation). */
static const char realistic_reply[] =
	"private_key=" RFC7748_PRIV "\n"
	"listen_port=51820\n"
	"fwmark=4660\n"
	"public_key=" HEX32(
		"22") "\n"
		      "preshared_key=" HEX32(
			      "33") "\n"
				    "protocol_version=1\n"
				    "endpoint=192.0.2.1:51820\n"
				    "last_handshake_time_sec=1700000000\n"
				    "last_handshake_time_nsec=123456789\n"
				    "tx_bytes=1234\n"
				    "rx_bytes=18446744073709551615\n"
				    "persistent_keepalive_interval=25\n"
				    "allowed_ip=10.0.0.2/32\n"
				    "allowed_ip=fd00::2/128\n"
				    "public_key=" HEX32(
					    "44") "\n"
						  "preshared_key=" HEX32(
							  "00") "\n"
								"protocol_version=1\n"
								"endpoint=[2001:db8::1]:51821\n"
								"last_handshake_time_sec=0\n"
								"last_handshake_time_nsec=0\n"
								"tx_bytes=0\n"
								"rx_bytes=0\n"
								"persistent_keepalive_interval=0\n"
								"allowed_ip=10.0.1.0/24\n"
								"public_key=" HEX32(
									"55") "\n"
									      "preshared_key=" HEX32(
										      "00") "\n"
											    "protocol_version=1\n"
											    "last_handshake_time_sec=0\n"
											    "last_handshake_time_nsec=0\n"
											    "tx_bytes=0\n"
											    "rx_bytes=0\n"
											    "persistent_keepalive_interval=0\n"
											    "errno=0\n\n";

START_TEST(test_parse_realistic)
{
	struct wg_device *dev = parse_ok(realistic_reply);
	uint8_t want_priv[WG_KEY_LEN], want_pub[WG_KEY_LEN];
	const unsigned dumped = WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE;

	ck_assert_str_eq(dev->ifname, "wg0");
	ck_assert_uint_eq(dev->flags, WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT);
	ck_assert_int_eq(wg_key_from_hex(RFC7748_PRIV, want_priv), 0);
	ck_assert_int_eq(wg_key_from_hex(RFC7748_PUB, want_pub), 0);
	ck_assert_mem_eq(dev->private_key, want_priv, WG_KEY_LEN);
	ck_assert_mem_eq(dev->public_key, want_pub, WG_KEY_LEN);
	ck_assert_uint_eq(dev->listen_port, 51820);
	ck_assert_uint_eq(dev->n_peers, 3);

	const struct wg_peer *a = &dev->peers[0], *b = &dev->peers[1], *c = &dev->peers[2];
	assert_key_byte(a->public_key, 0x22);
	assert_key_byte(a->psk, 0x33);
	ck_assert_uint_eq(a->flags, dumped);
	assert_endpoint(a, "192.0.2.1", 51820);
	ck_assert_int_eq(a->last_handshake, 1700000000);
	ck_assert_uint_eq(a->tx_bytes, 1234);
	ck_assert_uint_eq(a->rx_bytes, UINT64_MAX);
	ck_assert_uint_eq(a->keepalive, 25);
	ck_assert_uint_eq(a->n_allowed_ips, 2);
	assert_cidr(&a->allowed_ips[0], "10.0.0.2/32");
	assert_cidr(&a->allowed_ips[1], "fd00::2/128");

	assert_key_byte(b->public_key, 0x44);
	assert_key_byte(b->psk, 0);
	ck_assert_uint_eq(b->flags, dumped);
	assert_endpoint(b, "2001:db8::1", 51821);
	ck_assert_int_eq(b->last_handshake, 0);
	ck_assert_uint_eq(b->keepalive, 0);
	ck_assert_uint_eq(b->n_allowed_ips, 1);
	assert_cidr(&b->allowed_ips[0], "10.0.1.0/24");

	assert_key_byte(c->public_key, 0x55);
	ck_assert_uint_eq(c->endpoint.family, 0);
	ck_assert_uint_eq(c->n_allowed_ips, 0);
	wg_device_free(dev);
}
END_TEST

START_TEST(test_parse_no_peers)
{
	struct wg_device *dev =
		parse_ok("private_key=" RFC7748_PRIV "\nlisten_port=0\nerrno=0\n\n");
	ck_assert_uint_eq(dev->flags, WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT);
	ck_assert_uint_eq(dev->listen_port, 0);
	ck_assert_uint_eq(dev->n_peers, 0);
	wg_device_free(dev);

	/* A fresh wireguard-go: no key, and (newer versions) no port. */
	dev = parse_ok("errno=0\n\n");
	ck_assert_uint_eq(dev->flags, 0);
	ck_assert_uint_eq(dev->n_peers, 0);
	wg_device_free(dev);
}
END_TEST

START_TEST(test_parse_tolerated_shapes)
{
	/* Zone dropped, v4-mapped kept, host bits cleared, errno=-0 is 0. */
	struct wg_device *dev = parse_ok("public_key=" HEX32(
		"22") "\n"
		      "endpoint=[fe80::1%eth0]:1\n"
		      "allowed_ip=10.1.2.3/8\n"
		      "allowed_ip=2001:db8::1/32\n"
		      "public_key=" HEX32("AB") "\n"
						"endpoint=[::ffff:192.0.2.1]:65535\n"
						"errno=-0\n\n");
	ck_assert_uint_eq(dev->n_peers, 2);
	assert_endpoint(&dev->peers[0], "fe80::1", 1);
	assert_cidr(&dev->peers[0].allowed_ips[0], "10.0.0.0/8");
	assert_cidr(&dev->peers[0].allowed_ips[1], "2001:db8::/32");
	assert_key_byte(dev->peers[1].public_key, 0xab);
	assert_endpoint(&dev->peers[1], "::ffff:192.0.2.1", 65535);
	wg_device_free(dev);
}
END_TEST

#define PEER "public_key=" HEX32("22") "\n"

/* sizeof, not strlen: one case carries a NUL. */
#define BAD(name, text, want)                      \
	{                                          \
		name, text, sizeof(text) - 1, want \
	}

static const struct {
	const char *name;
	const char *text;
	size_t len;
	int want;
} bad_get_cases[] = {
	BAD("errno=2", "errno=2\n\n", -2),
	BAD("errno=-22 (wireguard-go's sign)", "errno=-22\n\n", -22),
	BAD("errno after peers", PEER "errno=5\n\n", -5),
	BAD("empty", "", -EBADMSG),
	BAD("only the empty line", "\n", -EBADMSG),
	BAD("missing errno", "listen_port=1\n\n", -EBADMSG),
	BAD("missing empty line", "errno=0\n", -EBADMSG),
	BAD("no newline at all", "errno=0", -EBADMSG),
	BAD("data after the empty line", "errno=0\n\nx", -EBADMSG),
	BAD("line after errno", "errno=0\nlisten_port=1\n\n", -EBADMSG),
	BAD("two errno", "errno=0\nerrno=0\n\n", -EBADMSG),
	BAD("errno too big", "errno=4096\n\n", -EBADMSG),
	BAD("errno not a number", "errno=abc\n\n", -EBADMSG),
	BAD("errno empty", "errno=\n\n", -EBADMSG),
	BAD("errno bare minus", "errno=-\n\n", -EBADMSG),
	BAD("unknown device key", "jc=3\nerrno=0\n\n", -EBADMSG),
	BAD("unknown peer key", PEER "update_only=true\nerrno=0\n\n", -EBADMSG),
	BAD("key differs in case", "Listen_port=1\nerrno=0\n\n", -EBADMSG),
	BAD("key prefix", "listen=1\nerrno=0\n\n", -EBADMSG),
	BAD("no '='", "listen_port\nerrno=0\n\n", -EBADMSG),
	BAD("empty value", "listen_port=\nerrno=0\n\n", -EBADMSG),
	BAD("space before value", "listen_port= 1\nerrno=0\n\n", -EBADMSG),
	BAD("CRLF", "listen_port=1\r\nerrno=0\n\n", -EBADMSG),
	BAD("NUL in value",
	    "listen_port=1\0"
	    "2\nerrno=0\n\n",
	    -EBADMSG),
	BAD("bad hex private key", "private_key=" HEX32("1g") "\nerrno=0\n\n", -EBADMSG),
	BAD("short private key", "private_key=" X8("11") "\nerrno=0\n\n", -EBADMSG),
	BAD("long public key", "public_key=" HEX32("22") "00\nerrno=0\n\n", -EBADMSG),
	BAD("bad hex psk", PEER "preshared_key=" HEX32("x0") "\nerrno=0\n\n", -EBADMSG),
	BAD("private key after a peer", PEER "private_key=" RFC7748_PRIV "\nerrno=0\n\n", -EBADMSG),
	BAD("listen port after a peer", PEER "listen_port=1\nerrno=0\n\n", -EBADMSG),
	BAD("listen port twice", "listen_port=1\nlisten_port=2\nerrno=0\n\n", -EBADMSG),
	BAD("psk twice in one peer",
	    PEER "preshared_key=" HEX32("00") "\npreshared_key=" HEX32("00") "\nerrno=0\n\n",
	    -EBADMSG),
	BAD("allowed_ip before any public_key", "allowed_ip=10.0.0.1/32\nerrno=0\n\n", -EBADMSG),
	BAD("endpoint before any public_key", "endpoint=1.2.3.4:5\nerrno=0\n\n", -EBADMSG),
	BAD("protocol_version 2", PEER "protocol_version=2\nerrno=0\n\n", -EBADMSG),
	BAD("bad CIDR prefix", PEER "allowed_ip=10.0.0.0/33\nerrno=0\n\n", -EBADMSG),
	BAD("bad CIDR v6 prefix", PEER "allowed_ip=fd00::/129\nerrno=0\n\n", -EBADMSG),
	BAD("CIDR without prefix", PEER "allowed_ip=10.0.0.1\nerrno=0\n\n", -EBADMSG),
	BAD("CIDR short quad", PEER "allowed_ip=10.0.0/8\nerrno=0\n\n", -EBADMSG),
	BAD("CIDR garbage", PEER "allowed_ip=example.com/8\nerrno=0\n\n", -EBADMSG),
	BAD("endpoint without port", PEER "endpoint=1.2.3.4\nerrno=0\n\n", -EBADMSG),
	BAD("endpoint port too big", PEER "endpoint=1.2.3.4:65536\nerrno=0\n\n", -EBADMSG),
	BAD("endpoint empty port", PEER "endpoint=1.2.3.4:\nerrno=0\n\n", -EBADMSG),
	BAD("endpoint v6 unbracketed", PEER "endpoint=2001:db8::1:51820\nerrno=0\n\n", -EBADMSG),
	BAD("endpoint v6 no colon", PEER "endpoint=[::1]51820\nerrno=0\n\n", -EBADMSG),
	BAD("endpoint v6 unclosed", PEER "endpoint=[::1:51820\nerrno=0\n\n", -EBADMSG),
	BAD("endpoint v4 bracketed", PEER "endpoint=[1.2.3.4]:1\nerrno=0\n\n", -EBADMSG),
	BAD("endpoint hostname", PEER "endpoint=example.com:1\nerrno=0\n\n", -EBADMSG),
	BAD("listen port 65536", "listen_port=65536\nerrno=0\n\n", -EBADMSG),
	BAD("listen port negative", "listen_port=-1\nerrno=0\n\n", -EBADMSG),
	BAD("listen port plus", "listen_port=+1\nerrno=0\n\n", -EBADMSG),
	BAD("fwmark 2^32", "fwmark=4294967296\nerrno=0\n\n", -EBADMSG),
	BAD("keepalive 65536", PEER "persistent_keepalive_interval=65536\nerrno=0\n\n", -EBADMSG),
	BAD("tx_bytes 2^64", PEER "tx_bytes=18446744073709551616\nerrno=0\n\n", -EBADMSG),
	BAD("rx_bytes 10^20", PEER "rx_bytes=100000000000000000000\nerrno=0\n\n", -EBADMSG),
	BAD("handshake 2^63", PEER "last_handshake_time_sec=9223372036854775808\nerrno=0\n\n",
	    -EBADMSG),
	BAD("handshake nsec 10^9", PEER "last_handshake_time_nsec=1000000000\nerrno=0\n\n",
	    -EBADMSG),
	BAD("value too long", PEER "endpoint=[" X8(X8("00")) "]:1\nerrno=0\n\n", -EBADMSG),
};

START_TEST(test_parse_bad)
{
	struct wg_device *dev = NULL;
	int r = wg_uapi_parse_get(bad_get_cases[_i].text, bad_get_cases[_i].len, "wg0", &dev);
	ck_assert_msg(r == bad_get_cases[_i].want, "%s: got %d, want %d", bad_get_cases[_i].name, r,
		      bad_get_cases[_i].want);
	ck_assert_ptr_null(dev);
}
END_TEST

/* ---- wg_uapi_parse_errno ---- */

static const struct {
	const char *text;
	int want;
} errno_cases[] = {
	{"errno=0\n\n", 0},
	{"errno=22\n\n", -22},
	{"errno=-22\n\n", -22},
	{"errno=-55\n\n", -55},
	{"errno=4095\n\n", -4095},
	{"errno=4096\n\n", -EBADMSG},
	{"", -EBADMSG},
	{"\n\n", -EBADMSG},
	{"errno=0\n", -EBADMSG},
	{"errno=0", -EBADMSG},
	{"errno=\n\n", -EBADMSG},
	{"errno=0\n\nx", -EBADMSG},
	{"errno=0\n\n\n", -EBADMSG},
	{"x=1\nerrno=0\n\n", -EBADMSG},
	{"errno=0\nx=1\n\n", -EBADMSG},
	{"errno=1x\n\n", -EBADMSG},
	{"ERRNO=0\n\n", -EBADMSG},
};

START_TEST(test_parse_errno)
{
	int r = wg_uapi_parse_errno(errno_cases[_i].text, strlen(errno_cases[_i].text));
	ck_assert_msg(r == errno_cases[_i].want, "%s: got %d", errno_cases[_i].text, r);
}
END_TEST

/* ---- round trip: a 10k-peer change, as a dump, parsed back ---- */

#define BIG_PEERS 10000

static struct wg_device *big_change(void)
{
	struct wg_device *dev = wg_device_new("wg0");
	ck_assert_int_eq(wg_key_from_hex(RFC7748_PRIV, dev->private_key), 0);
	dev->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT;
	dev->listen_port = 51820;
	for (unsigned i = 0; i < BIG_PEERS; i++) {
		struct wg_peer *p = add_peer(dev, 0xab,
					     WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE |
						     WG_PEER_REPLACE_ALLOWED_IPS);
		char v4[IP_CIDR_STRLEN], v6[IP_CIDR_STRLEN];
		memcpy(p->public_key, &i, sizeof(i));
		memset(p->psk, 0xcd, WG_KEY_LEN);
		memcpy(p->psk, &i, sizeof(i));
		p->keepalive = (uint16_t)(i % 100);
		snprintf(v4, sizeof(v4), "10.%u.%u.%u/32", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(v6, sizeof(v6), "fd00::%x/128", i);
		add_ip(p, v4);
		add_ip(p, v6);
	}
	return dev;
}

/* What wireguard-go would dump after taking this request. */
static char *set_to_get_reply(const char *set, size_t len, size_t *ret_len)
{
	char *out = malloc(len * 2 + 64), *o = out;
	const char *line = set, *end = set + len;

	ck_assert_ptr_nonnull(out);
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = (size_t)(nl - line);
		ck_assert_ptr_nonnull(nl);
		if (n == 0) {
			o += sprintf(o, "errno=0\n\n");
		} else if (strncmp(line, "set=1", n) != 0 &&
			   strncmp(line, "replace_allowed_ips=true", n) != 0) {
			memcpy(o, line, n + 1);
			o += n + 1;
			if (strncmp(line, "public_key=", 11) == 0)
				o += sprintf(o, "protocol_version=1\ntx_bytes=0\n");
		}
		line = nl + 1;
	}
	*ret_len = (size_t)(o - out);
	return out;
}

static void assert_same_peers(const struct wg_device *want, const struct wg_device *got)
{
	ck_assert_uint_eq(got->n_peers, want->n_peers);
	for (size_t i = 0; i < want->n_peers; i++) {
		const struct wg_peer *a = &want->peers[i], *b = &got->peers[i];
		ck_assert_mem_eq(a->public_key, b->public_key, WG_KEY_LEN);
		ck_assert_mem_eq(a->psk, b->psk, WG_KEY_LEN);
		ck_assert_uint_eq(a->keepalive, b->keepalive);
		ck_assert_uint_eq(b->flags, WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE);
		ck_assert_uint_eq(a->n_allowed_ips, b->n_allowed_ips);
		for (size_t j = 0; j < a->n_allowed_ips; j++) {
			ck_assert_uint_eq(a->allowed_ips[j].prefix, b->allowed_ips[j].prefix);
			ck_assert(ip_addr_equal(&a->allowed_ips[j].addr, &b->allowed_ips[j].addr));
		}
	}
}

START_TEST(test_round_trip_10k)
{
	struct wg_device *change = big_change(), *got = NULL;
	uint8_t want_pub[WG_KEY_LEN];
	size_t len, rlen;
	char *text, *reply;

	ck_assert_int_eq(wg_uapi_format_set(change, &text, &len), 0);
	reply = set_to_get_reply(text, len, &rlen);
	ck_assert_int_eq(wg_uapi_parse_get(reply, rlen, "wg0", &got), 0);
	ck_assert_uint_eq(got->flags, change->flags);
	ck_assert_mem_eq(got->private_key, change->private_key, WG_KEY_LEN);
	ck_assert_int_eq(wg_key_from_hex(RFC7748_PUB, want_pub), 0);
	ck_assert_mem_eq(got->public_key, want_pub, WG_KEY_LEN);
	ck_assert_uint_eq(got->listen_port, 51820);
	assert_same_peers(change, got);
	free(reply);
	free(text);
	wg_device_free(got);
	wg_device_free(change);
}
END_TEST

/* Some error, whichever the kernel reports first: never success, never -ENODEV, never a hang. */
#define ANY_ERROR 1

static void assert_result(const char *name, int r, int want)
{
	if (want == ANY_ERROR)
		ck_assert_msg(r < 0 && r != -ENODEV, "%s: got %d", name, r);
	else
		ck_assert_msg(r == want, "%s: got %d, want %d", name, r, want);
}

/* ---- the backend on a real socket, against a fake UAPI server in a child ---- */

enum server_mode {
	SRV_GET,	 /* expect "get=1\n\n", answer `answer` in small pieces */
	SRV_SET,	 /* expect exactly `expect`, answer errno=0 (or errno=5 and exit 3) */
	SRV_ANSWER,	 /* read one request, answer `answer` */
	SRV_CLOSE,	 /* accept and hang up */
	SRV_HALF_ANSWER, /* read one request, write part of an answer, hang up */
	SRV_REJECT,	 /* like wireguard-go on a bad line: answer after 100 bytes, hang up */
};

struct server {
	char dir[32];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pid_t pid;
};

static int listen_at(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

/* Child side: read until the empty line ("\n\n") or EOF; at most `limit` bytes. */
static size_t srv_read(int fd, char **ret, size_t limit)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		_exit(9);
	while (len < limit) {
		if (len == cap) {
			char *bigger = realloc(buf, cap *= 2);
			if (bigger == NULL)
				_exit(9);
			buf = bigger;
		}
		ssize_t n = read(fd, buf + len, cap - len < limit - len ? cap - len : limit - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memmem(buf, len, "\n\n", 2) != NULL)
			break;
	}
	*ret = buf;
	return len;
}

static void srv_write(int fd, const char *p, size_t len, size_t piece)
{
	while (len > 0) {
		size_t n = len < piece ? len : piece;
		if (send(fd, p, n, MSG_NOSIGNAL) != (ssize_t)n)
			_exit(8);
		p += n;
		len -= n;
	}
}

static int serve(int cfd, enum server_mode mode, const char *data, size_t data_len)
{
	char *req = NULL;
	size_t len;
	int status = 0;

	switch (mode) {
	case SRV_GET:
		len = srv_read(cfd, &req, SIZE_MAX);
		if (len != 7 || memcmp(req, "get=1\n\n", 7) != 0)
			status = 2;
		srv_write(cfd, data, data_len, 1000);
		break;
	case SRV_SET:
		len = srv_read(cfd, &req, SIZE_MAX);
		status = len == data_len && memcmp(req, data, len) == 0 ? 0 : 3;
		srv_write(cfd, status == 0 ? "errno=0\n\n" : "errno=5\n\n", 9, 9);
		break;
	case SRV_ANSWER:
		srv_read(cfd, &req, SIZE_MAX);
		srv_write(cfd, data, data_len, data_len);
		break;
	case SRV_CLOSE:
		break;
	case SRV_HALF_ANSWER:
		srv_read(cfd, &req, SIZE_MAX);
		srv_write(cfd, "errno=", 6, 6);
		break;
	case SRV_REJECT:
		srv_read(cfd, &req, 100);
		srv_write(cfd, data, data_len, data_len);
		break;
	}
	free(req);
	return status;
}

static void server_start(struct server *s, const char *ifname, enum server_mode mode,
			 const char *data, size_t data_len)
{
	int lfd;

	snprintf(s->dir, sizeof(s->dir), "/tmp/wguapi.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/%s.sock", s->dir, ifname);
	lfd = listen_at(s->path);
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		int cfd = accept(lfd, NULL, NULL);
		_exit(cfd < 0 ? 7 : serve(cfd, mode, data, data_len));
	}
	close(lfd);
}

/* The child's exit status; removes the socket and directory. */
static int server_end(struct server *s)
{
	int status;
	ck_assert_int_eq(waitpid(s->pid, &status, 0), s->pid);
	unlink(s->path);
	rmdir(s->dir);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static struct wg_backend *backend_at(const struct server *s)
{
	struct wg_backend *b = NULL;
	ck_assert_int_eq(wg_uapi_new(s->dir, &b), 0);
	ck_assert_int_eq(b->kind, WG_BACKEND_USERSPACE);
	return b;
}

/* A server answering with the string answer (NULL: none), and a backend on it. */
static struct wg_backend *server_answering(struct server *s, const char *ifname,
					   enum server_mode mode, const char *answer)
{
	server_start(s, ifname, mode, answer, answer != NULL ? strlen(answer) : 0);
	return backend_at(s);
}

/* A request the server makes fail: the backend returns want (or ANY_ERROR). */
struct fail_case {
	const char *name;
	enum server_mode mode;
	const char *answer;
	bool big; /* a 10k-peer request, so the server hangs up mid-write */
	int want;
};

START_TEST(test_socket_get)
{
	struct server s = {0};
	struct wg_device *dev = NULL;

	server_start(&s, "wgtest0", SRV_GET, realistic_reply, sizeof(realistic_reply) - 1);
	struct wg_backend *b = backend_at(&s);
	ck_assert_int_eq(b->get(b, "wgtest0", &dev), 0);
	ck_assert_str_eq(dev->ifname, "wgtest0");
	ck_assert_uint_eq(dev->n_peers, 3);
	ck_assert_uint_eq(b->messages_sent, 0);
	ck_assert_int_eq(server_end(&s), 0);
	wg_device_free(dev);
	wg_backend_free(b);
}
END_TEST

START_TEST(test_socket_get_10k)
{
	struct wg_device *change = big_change(), *got = NULL;
	size_t len, rlen;
	char *text, *reply;
	struct server s = {0};

	ck_assert_int_eq(wg_uapi_format_set(change, &text, &len), 0);
	reply = set_to_get_reply(text, len, &rlen);
	server_start(&s, "wgtest1", SRV_GET, reply, rlen);
	struct wg_backend *b = backend_at(&s);
	ck_assert_int_eq(b->get(b, "wgtest1", &got), 0);
	assert_same_peers(change, got);
	ck_assert_int_eq(server_end(&s), 0);
	wg_device_free(got);
	wg_backend_free(b);
	free(reply);
	free(text);
	wg_device_free(change);
}
END_TEST

START_TEST(test_socket_set)
{
	struct wg_device *change = big_change();
	size_t len;
	char *text;
	struct server s = {0};

	ck_assert_int_eq(wg_uapi_format_set(change, &text, &len), 0);
	server_start(&s, "wgtest2", SRV_SET, text, len);
	struct wg_backend *b = backend_at(&s);
	ck_assert_int_eq(b->set(b, "wgtest2", change), 0);
	ck_assert_uint_eq(b->messages_sent, 1);
	ck_assert_int_eq(server_end(&s), 0);
	wg_backend_free(b);
	free(text);
	wg_device_free(change);
}
END_TEST

static const struct fail_case set_fail_cases[] = {
	{"errno=22", SRV_ANSWER, "errno=22\n\n", false, -22},
	{"errno=-22", SRV_ANSWER, "errno=-22\n\n", false, -22},
	{"garbage answer", SRV_ANSWER, "hello\n\n", false, -EBADMSG},
	{"answer with extra lines", SRV_ANSWER, "errno=0\nx=1\n\n", false, -EBADMSG},
	{"hangs up at once", SRV_CLOSE, NULL, false, ANY_ERROR},
	{"hangs up at once, big", SRV_CLOSE, NULL, true, ANY_ERROR},
	{"half an answer", SRV_HALF_ANSWER, NULL, false, -ECONNRESET},
	{"rejects after 100 bytes", SRV_REJECT, "errno=-22\n\n", true, -22},
	{"rejects with errno=0", SRV_REJECT, "errno=0\n\n", true, ANY_ERROR},
};

START_TEST(test_socket_set_fails)
{
	struct wg_device *change = set_fail_cases[_i].big ? big_change() : wg_device_new("x");
	struct server s = {0};
	int r;

	if (!set_fail_cases[_i].big)
		build_full_peer(change);
	struct wg_backend *b =
		server_answering(&s, "wgtest3", set_fail_cases[_i].mode, set_fail_cases[_i].answer);
	r = b->set(b, "wgtest3", change);
	assert_result(set_fail_cases[_i].name, r, set_fail_cases[_i].want);
	ck_assert_uint_eq(b->messages_sent, 1);
	server_end(&s);
	wg_backend_free(b);
	wg_device_free(change);
}
END_TEST

static const struct fail_case get_fail_cases[] = {
	{"errno=2", SRV_GET, "errno=2\n\n", false, -2},
	{"bad line", SRV_GET, "listen_port=x\nerrno=0\n\n", false, -EBADMSG},
	{"hangs up at once", SRV_CLOSE, NULL, false, ANY_ERROR},
	{"half an answer", SRV_HALF_ANSWER, NULL, false, -ECONNRESET},
};

START_TEST(test_socket_get_fails)
{
	struct wg_device *dev = NULL;
	struct server s = {0};
	int r;

	struct wg_backend *b =
		server_answering(&s, "wgtest4", get_fail_cases[_i].mode, get_fail_cases[_i].answer);
	r = b->get(b, "wgtest4", &dev);
	assert_result(get_fail_cases[_i].name, r, get_fail_cases[_i].want);
	ck_assert_ptr_null(dev);
	server_end(&s);
	wg_backend_free(b);
}
END_TEST

START_TEST(test_socket_missing)
{
	char dir[] = "/tmp/wguapi.XXXXXX", path[64];
	struct wg_device *dev = NULL, *change = wg_device_new("x");
	struct wg_backend *b = NULL;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(wg_uapi_new(dir, &b), 0);
	build_full_peer(change);

	/* No socket at all. */
	ck_assert(!wg_uapi_probe(dir, "wgmissing"));
	ck_assert_int_eq(b->get(b, "wgmissing", &dev), -ENODEV);
	ck_assert_int_eq(b->set(b, "wgmissing", change), -ENODEV);
	ck_assert_uint_eq(b->messages_sent, 0);

	/* A stale socket left by a dead wireguard-go: ECONNREFUSED. */
	snprintf(path, sizeof(path), "%s/wgstale.sock", dir);
	close(listen_at(path));
	ck_assert(!wg_uapi_probe(dir, "wgstale"));
	ck_assert_int_eq(b->get(b, "wgstale", &dev), -ENODEV);

	/* Names that cannot be an interface. */
	ck_assert_int_eq(b->get(b, "", &dev), -EINVAL);
	ck_assert_int_eq(b->get(b, "../etc", &dev), -EINVAL);
	ck_assert_int_eq(b->get(b, "wg0123456789abcd", &dev), -EINVAL);
	ck_assert_ptr_null(dev);

	/* Nothing to write: no connection at all. */
	struct wg_device *empty = wg_device_new("x");
	ck_assert_int_eq(b->set(b, "wgmissing", empty), 0);
	ck_assert_uint_eq(b->messages_sent, 0);

	unlink(path);
	rmdir(dir);
	wg_device_free(empty);
	wg_device_free(change);
	wg_backend_free(b);
}
END_TEST

START_TEST(test_socket_dir_too_long)
{
	char dir[200];
	struct wg_backend *b = NULL;
	struct wg_device *dev = NULL;

	memset(dir, 'a', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 1] = '\0';
	ck_assert_int_eq(wg_uapi_new(dir, &b), 0);
	ck_assert_int_eq(b->get(b, "wg0", &dev), -ENAMETOOLONG);
	wg_backend_free(b);
}
END_TEST

START_TEST(test_probe)
{
	struct server s = {0};

	server_start(&s, "wgtest5", SRV_CLOSE, NULL, 0);
	ck_assert(wg_uapi_probe(s.dir, "wgtest5"));
	ck_assert_int_eq(server_end(&s), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wg_uapi");
	TCase *tc = tcase_create("text");
	tcase_add_loop_test(tc, test_format_set, 0, ARRAY_LEN(format_cases));
	tcase_add_test(tc, test_format_set_bad_family);
	tcase_add_test(tc, test_parse_realistic);
	tcase_add_test(tc, test_parse_no_peers);
	tcase_add_test(tc, test_parse_tolerated_shapes);
	tcase_add_loop_test(tc, test_parse_bad, 0, ARRAY_LEN(bad_get_cases));
	tcase_add_loop_test(tc, test_parse_errno, 0, ARRAY_LEN(errno_cases));
	tcase_add_test(tc, test_round_trip_10k);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_add_test(tc, test_socket_get);
	tcase_add_test(tc, test_socket_get_10k);
	tcase_add_test(tc, test_socket_set);
	tcase_add_loop_test(tc, test_socket_set_fails, 0, ARRAY_LEN(set_fail_cases));
	tcase_add_loop_test(tc, test_socket_get_fails, 0, ARRAY_LEN(get_fail_cases));
	tcase_add_test(tc, test_socket_missing);
	tcase_add_test(tc, test_socket_dir_too_long);
	tcase_add_test(tc, test_probe);
	suite_add_tcase(s, tc);
	return check_run(s);
}
