/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The kernel backend's pure half, without root or a kernel: changes are
 * built into WG_CMD_SET_DEVICE messages and parsed back with
 * wg_nl_dump_merge() (a SET message has the dump's attribute layout), the
 * result must equal the input. Message splitting is checked on raw
 * attributes; hand-made dump messages cover what only the kernel sends
 * (endpoints, counters, split peers, NLM_F_DUMP_INTR) and malformed input.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "wg_nl.h"

#define FAMILY_ID 0x1d
#define SEQ0 1000
#define RAW_SIZE 4096

/* ---- helpers ---------------------------------------------------------- */

static size_t page_bufsize(void)
{
	return (size_t)MNL_SOCKET_BUFFER_SIZE;
}

static void key_fill(uint8_t key[WG_KEY_LEN], unsigned seed)
{
	for (unsigned i = 0; i < WG_KEY_LEN; i++)
		key[i] = (uint8_t)(seed * 31u + i * 7u + (seed >> 8) + 1u);
}

static void add_cidr(struct wg_peer *p, const char *s)
{
	struct ip_cidr c;

	ck_assert_int_eq(ip_cidr_parse(s, 0, &c), 0);
	ck_assert_int_eq(wg_peer_add_allowed_ip(p, &c), 0);
}

static struct wg_peer *add_peer(struct wg_device *dev, unsigned seed, unsigned flags)
{
	struct wg_peer *p = wg_device_add_peer(dev);

	ck_assert_ptr_nonnull(p);
	key_fill(p->public_key, seed);
	p->flags = flags;
	return p;
}

/* Messages handed to emit(), copied. */
struct msgs {
	struct nlmsghdr *v[4096];
	size_t n;
	size_t fail_at; /* emit fails with -EIO at this index; 0 = never */
	size_t calls;
};

static int collect(void *ctx, const struct nlmsghdr *nlh)
{
	struct msgs *m = ctx;

	m->calls++;
	if (m->fail_at != 0 && m->n == m->fail_at)
		return -EIO;
	ck_assert_uint_lt(m->n, ARRAY_LEN(m->v));
	m->v[m->n] = malloc(nlh->nlmsg_len);
	ck_assert_ptr_nonnull(m->v[m->n]);
	memcpy(m->v[m->n++], nlh, nlh->nlmsg_len);
	return 0;
}

static void msgs_free(struct msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i]);
	free(m);
}

static struct msgs *build(const struct wg_device *dev, size_t bufsize, int want)
{
	struct msgs *m = calloc(1, sizeof(*m));

	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(wg_nl_build_set(dev, FAMILY_ID, SEQ0, bufsize, collect, m), want);
	return m;
}

static const struct genlmsghdr *genl_of(const struct nlmsghdr *nlh)
{
	return mnl_nlmsg_get_payload(nlh);
}

/* Headers of every built message, and each within bufsize. */
static void check_headers(const struct msgs *m, size_t bufsize)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct nlmsghdr *nlh = m->v[i];
		ck_assert_uint_le(nlh->nlmsg_len, bufsize);
		ck_assert_uint_eq(nlh->nlmsg_type, FAMILY_ID);
		ck_assert_uint_eq(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
		ck_assert_uint_eq(nlh->nlmsg_seq, SEQ0 + i);
		ck_assert_uint_eq(genl_of(nlh)->cmd, WG_CMD_SET_DEVICE);
		ck_assert_uint_eq(genl_of(nlh)->version, WG_GENL_VERSION);
		const struct nlattr *a = mnl_nlmsg_get_payload_offset(nlh, GENL_HDRLEN);
		ck_assert_uint_eq(mnl_attr_get_type(a), WGDEVICE_A_IFNAME);
	}
}

static struct wg_device *merge_all(const struct msgs *m)
{
	struct wg_device *dev = wg_device_new(NULL);

	ck_assert_ptr_nonnull(dev);
	for (size_t i = 0; i < m->n; i++)
		ck_assert_int_eq(wg_nl_dump_merge(dev, m->v[i]), 0);
	return dev;
}

static void assert_cidr_eq(const struct ip_cidr *a, const struct ip_cidr *b)
{
	ck_assert_uint_eq(a->addr.family, b->addr.family);
	ck_assert_uint_eq(a->prefix, b->prefix);
	ck_assert_mem_eq(a->addr.bytes, b->addr.bytes, ip_family_len(a->addr.family));
}

static void assert_peer_eq(const struct wg_peer *a, const struct wg_peer *b)
{
	ck_assert_mem_eq(a->public_key, b->public_key, WG_KEY_LEN);
	ck_assert_uint_eq(a->flags, b->flags);
	if (a->flags & WG_PEER_HAS_PSK)
		ck_assert_mem_eq(a->psk, b->psk, WG_KEY_LEN);
	if (a->flags & WG_PEER_HAS_KEEPALIVE)
		ck_assert_uint_eq(a->keepalive, b->keepalive);
	ck_assert_uint_eq(a->n_allowed_ips, b->n_allowed_ips);
	for (size_t i = 0; i < a->n_allowed_ips; i++)
		assert_cidr_eq(&a->allowed_ips[i], &b->allowed_ips[i]);
}

static void assert_dev_eq(const struct wg_device *a, const struct wg_device *b)
{
	ck_assert_str_eq(a->ifname, b->ifname);
	ck_assert_uint_eq(a->flags, b->flags);
	if (a->flags & WG_DEVICE_HAS_PRIVATE_KEY)
		ck_assert_mem_eq(a->private_key, b->private_key, WG_KEY_LEN);
	if (a->flags & WG_DEVICE_HAS_LISTEN_PORT)
		ck_assert_uint_eq(a->listen_port, b->listen_port);
	ck_assert_uint_eq(a->n_peers, b->n_peers);
	for (size_t i = 0; i < a->n_peers; i++)
		assert_peer_eq(&a->peers[i], &b->peers[i]);
}

/* Build at bufsize, check headers, merge back, compare; returns the messages. */
static struct msgs *round_trip(const struct wg_device *in, size_t bufsize)
{
	struct msgs *m = build(in, bufsize, 0);
	struct wg_device *out;

	ck_assert_uint_ge(m->n, 1);
	check_headers(m, bufsize);
	out = merge_all(m);
	assert_dev_eq(in, out);
	wg_device_free(out);
	return m;
}

/* ---- raw view of a peer chunk, to check what each message carries ------ */

struct chunk {
	uint8_t key[WG_KEY_LEN];
	uint32_t flags;
	bool has_flags, has_psk, has_keepalive;
	size_t n_ips;
};

struct chunks {
	struct chunk v[64];
	size_t n;
	bool has_private_key, has_port;
};

static int count_ip(const struct nlattr *a, void *data)
{
	(void)a;
	(*(size_t *)data)++;
	return MNL_CB_OK;
}

static int chunk_attr(const struct nlattr *a, void *data)
{
	struct chunk *c = data;

	switch (mnl_attr_get_type(a)) {
	case WGPEER_A_PUBLIC_KEY:
		memcpy(c->key, mnl_attr_get_payload(a), WG_KEY_LEN);
		break;
	case WGPEER_A_FLAGS:
		c->has_flags = true;
		c->flags = mnl_attr_get_u32(a);
		break;
	case WGPEER_A_PRESHARED_KEY:
		c->has_psk = true;
		break;
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		c->has_keepalive = true;
		break;
	case WGPEER_A_ALLOWEDIPS:
		return mnl_attr_parse_nested(a, count_ip, &c->n_ips);
	}
	return MNL_CB_OK;
}

static int chunk_peer(const struct nlattr *a, void *data)
{
	struct chunks *cs = data;

	ck_assert_uint_lt(cs->n, ARRAY_LEN(cs->v));
	memset(&cs->v[cs->n], 0, sizeof(cs->v[0]));
	return mnl_attr_parse_nested(a, chunk_attr, &cs->v[cs->n++]);
}

static int chunk_device(const struct nlattr *a, void *data)
{
	struct chunks *cs = data;

	switch (mnl_attr_get_type(a)) {
	case WGDEVICE_A_PRIVATE_KEY:
		cs->has_private_key = true;
		break;
	case WGDEVICE_A_LISTEN_PORT:
		cs->has_port = true;
		break;
	case WGDEVICE_A_PEERS:
		return mnl_attr_parse_nested(a, chunk_peer, cs);
	}
	return MNL_CB_OK;
}

static void chunks_of(const struct nlmsghdr *nlh, struct chunks *cs)
{
	memset(cs, 0, sizeof(*cs));
	ck_assert_int_eq(mnl_attr_parse(nlh, GENL_HDRLEN, chunk_device, cs), MNL_CB_OK);
}

/* ---- round trips ------------------------------------------------------ */

static struct wg_device *small_case(int i)
{
	struct wg_device *dev = wg_device_new("wg-test0");
	struct wg_peer *p;

	ck_assert_ptr_nonnull(dev);
	switch (i) {
	case 0: /* nothing: one message with the name only */
		break;
	case 1: /* device fields only */
		dev->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT;
		key_fill(dev->private_key, 900);
		dev->listen_port = 51820;
		break;
	case 2: /* listen port 0 (random) without the key */
		dev->flags = WG_DEVICE_HAS_LISTEN_PORT;
		break;
	case 3: /* one full peer, v4 and v6 */
		p = add_peer(dev, 1,
			     WG_PEER_REPLACE_ALLOWED_IPS | WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE);
		key_fill(p->psk, 77);
		p->keepalive = 25;
		add_cidr(p, "10.0.0.2/32");
		add_cidr(p, "fd00::2/128");
		add_cidr(p, "192.168.0.0/16");
		add_cidr(p, "::/0");
		add_cidr(p, "0.0.0.0/0");
		break;
	case 4: /* a removed peer */
		add_peer(dev, 2, WG_PEER_REMOVE);
		break;
	case 5: /* clearing: zero PSK, keepalive 0, no allowed IPs left */
		p = add_peer(dev, 3,
			     WG_PEER_REPLACE_ALLOWED_IPS | WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE);
		break;
	case 6: /* allowed IPs added without replacing; device and peers mixed */
		dev->flags = WG_DEVICE_HAS_PRIVATE_KEY;
		key_fill(dev->private_key, 901);
		p = add_peer(dev, 4, 0);
		add_cidr(p, "10.1.0.0/24");
		add_peer(dev, 5, WG_PEER_REMOVE);
		p = add_peer(dev, 6, WG_PEER_HAS_KEEPALIVE);
		p->keepalive = 65535;
		add_cidr(p, "2001:db8::/32");
		break;
	}
	return dev;
}

START_TEST(test_small_round_trip)
{
	struct wg_device *in = small_case(_i);
	struct msgs *m = round_trip(in, page_bufsize());

	ck_assert_uint_eq(m->n, 1);
	msgs_free(m);
	wg_device_free(in);
}
END_TEST

/* What a removed peer carries: its key and REMOVE_ME, nothing else. */
START_TEST(test_remove_peer_is_key_only)
{
	struct wg_device *in = wg_device_new("wg0");
	struct wg_peer *p = add_peer(in, 8, WG_PEER_REMOVE | WG_PEER_HAS_PSK);
	struct chunks cs;
	struct msgs *m;

	add_cidr(p, "10.0.0.1/32");
	m = build(in, page_bufsize(), 0);
	ck_assert_uint_eq(m->n, 1);
	chunks_of(m->v[0], &cs);
	ck_assert_uint_eq(cs.n, 1);
	ck_assert(cs.v[0].has_flags);
	ck_assert_uint_eq(cs.v[0].flags, WGPEER_F_REMOVE_ME);
	ck_assert(!cs.v[0].has_psk);
	ck_assert_uint_eq(cs.v[0].n_ips, 0);
	msgs_free(m);
	wg_device_free(in);
}
END_TEST

/* The benchmark's shape: N peers, each with PSK, one /32 and one /128. */
START_TEST(test_many_peers)
{
	const size_t n = 1000, bufsize = page_bufsize();
	struct wg_device *in = wg_device_new("wg0");
	char buf[64];

	in->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT;
	key_fill(in->private_key, 5000);
	in->listen_port = 443;
	for (unsigned i = 0; i < n; i++) {
		struct wg_peer *p = add_peer(in, i + 10,
					     WG_PEER_REPLACE_ALLOWED_IPS | WG_PEER_HAS_PSK |
						     WG_PEER_HAS_KEEPALIVE);
		key_fill(p->psk, i + 3000);
		p->keepalive = (uint16_t)(i % 60);
		snprintf(buf, sizeof(buf), "10.%u.%u.%u/32", i >> 16, (i >> 8) & 255, i & 255);
		add_cidr(p, buf);
		snprintf(buf, sizeof(buf), "fd00::%x/128", i + 1);
		add_cidr(p, buf);
	}
	struct msgs *m = round_trip(in, bufsize);
	ck_assert_uint_lt(m->n, n / 10);
	/* Every message but the last is reasonably full. */
	for (size_t i = 0; i + 1 < m->n; i++)
		ck_assert_uint_gt(m->v[i]->nlmsg_len, bufsize - 200);
	/* Device fields only in the first; a peer split at a message end goes on
	 * in the next; no chunk goes without an allowed IP. */
	size_t ips = 0, chunks = 0;
	for (size_t i = 0; i < m->n; i++) {
		struct chunks cs;
		chunks_of(m->v[i], &cs);
		ck_assert(cs.has_private_key == (i == 0));
		ck_assert(cs.has_port == (i == 0));
		for (size_t j = 0; j < cs.n; j++) {
			ck_assert_uint_ge(cs.v[j].n_ips, 1);
			ips += cs.v[j].n_ips;
		}
		chunks += cs.n;
	}
	ck_assert_uint_eq(ips, 2 * n);
	ck_assert_uint_lt(chunks, n + m->n);
	msgs_free(m);
	wg_device_free(in);
}
END_TEST

/* One peer whose allowed IPs take several messages. */
START_TEST(test_peer_split)
{
	const size_t n_ips = 1000;
	struct wg_device *in = wg_device_new("wg0");
	struct wg_peer *p;
	size_t total = 0;
	char buf[64];

	add_peer(in, 1, WG_PEER_HAS_PSK); /* a small peer before */
	p = add_peer(in, 2, WG_PEER_REPLACE_ALLOWED_IPS | WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE);
	key_fill(p->psk, 99);
	p->keepalive = 10;
	for (unsigned i = 0; i < n_ips; i++) {
		snprintf(buf, sizeof(buf), i % 2 ? "10.%u.%u.0/24" : "fd%02x:%x::/32", i >> 8,
			 i & 255);
		add_cidr(p, buf);
	}
	add_peer(in, 3, WG_PEER_REMOVE); /* and one after */

	struct msgs *m = round_trip(in, page_bufsize());
	ck_assert_uint_gt(m->n, 2);
	for (size_t i = 0; i < m->n; i++) {
		struct chunks cs;
		chunks_of(m->v[i], &cs);
		for (size_t j = 0; j < cs.n; j++) {
			struct chunk *c = &cs.v[j];
			if (memcmp(c->key, p->public_key, WG_KEY_LEN) != 0)
				continue;
			bool first = total == 0;
			ck_assert(c->has_flags == first);
			if (first)
				ck_assert_uint_eq(c->flags, WGPEER_F_REPLACE_ALLOWEDIPS);
			ck_assert(c->has_psk == first);
			ck_assert(c->has_keepalive == first);
			ck_assert_uint_gt(c->n_ips, 0);
			total += c->n_ips;
		}
	}
	ck_assert_uint_eq(total, n_ips);
	msgs_free(m);
	wg_device_free(in);
}
END_TEST

static struct wg_device *mixed_change(void)
{
	struct wg_device *dev = wg_device_new("wg1");
	struct wg_peer *p;

	dev->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT;
	key_fill(dev->private_key, 1);
	dev->listen_port = 1;
	p = add_peer(dev, 10, WG_PEER_REPLACE_ALLOWED_IPS | WG_PEER_HAS_PSK);
	key_fill(p->psk, 11);
	add_cidr(p, "10.0.0.0/8");
	add_cidr(p, "fd00::/8");
	add_cidr(p, "10.0.0.0/9");
	add_peer(dev, 20, WG_PEER_REMOVE);
	p = add_peer(dev, 30, WG_PEER_HAS_KEEPALIVE);
	add_cidr(p, "192.0.2.0/24");
	add_peer(dev, 40, 0);
	return dev;
}

/* Across all messages: a peer's chunks other than a removal's carry allowed
 * IPs (if it has any), and only one of them REPLACE_ALLOWEDIPS. */
static void check_chunks(const struct wg_device *in, const struct msgs *m)
{
	size_t replaced[16] = {0};

	ck_assert_uint_le(in->n_peers, ARRAY_LEN(replaced));
	for (size_t i = 0; i < m->n; i++) {
		struct chunks cs;
		chunks_of(m->v[i], &cs);
		for (size_t j = 0; j < cs.n; j++) {
			size_t k = 0;
			while (k < in->n_peers &&
			       memcmp(in->peers[k].public_key, cs.v[j].key, WG_KEY_LEN) != 0)
				k++;
			ck_assert_uint_lt(k, in->n_peers);
			if (!(in->peers[k].flags & WG_PEER_REMOVE) &&
			    in->peers[k].n_allowed_ips > 0)
				ck_assert_uint_gt(cs.v[j].n_ips, 0);
			if (cs.v[j].flags & WGPEER_F_REPLACE_ALLOWEDIPS)
				replaced[k]++;
		}
	}
	for (size_t k = 0; k < in->n_peers; k++)
		ck_assert_uint_eq(replaced[k],
				  (in->peers[k].flags & WG_PEER_REPLACE_ALLOWED_IPS) ? 1 : 0);
}

/* Every buffer size either fails with -EMSGSIZE or round-trips, and once
 * one size works every larger one does too. */
START_TEST(test_every_bufsize)
{
	struct wg_device *in = mixed_change();
	bool worked = false;

	for (size_t size = 0; size <= 600; size++) {
		struct msgs *m = calloc(1, sizeof(*m));
		int r = wg_nl_build_set(in, FAMILY_ID, SEQ0, size, collect, m);
		if (r == 0) {
			check_headers(m, size);
			struct wg_device *out = merge_all(m);
			assert_dev_eq(in, out);
			wg_device_free(out);
			check_chunks(in, m);
			worked = true;
		} else {
			ck_assert_int_eq(r, -EMSGSIZE);
			ck_assert_msg(!worked, "size %zu failed after a smaller one worked", size);
		}
		msgs_free(m);
	}
	ck_assert(worked);
	wg_device_free(in);
}
END_TEST

static size_t min_bufsize(const struct wg_device *dev)
{
	for (size_t size = 0; size < 1000; size++) {
		struct msgs *m = calloc(1, sizeof(*m));
		int r = wg_nl_build_set(dev, FAMILY_ID, SEQ0, size, collect, m);
		msgs_free(m);
		if (r == 0)
			return size;
	}
	ck_abort_msg("no size up to 1000 works");
	return 0;
}

/* Device fields go alone in a message when they leave no room for a peer:
 * they never make a change need a bigger buffer. */
START_TEST(test_device_fields_alone)
{
	struct wg_device *in = mixed_change();
	size_t size;

	in->flags = 0;
	size = min_bufsize(in);
	in->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT;
	ck_assert_uint_eq(min_bufsize(in), size);

	struct msgs *m = round_trip(in, size);
	struct chunks cs;
	chunks_of(m->v[0], &cs);
	ck_assert(cs.has_private_key && cs.has_port);
	ck_assert_uint_eq(cs.n, 0);
	msgs_free(m);
	wg_device_free(in);
}
END_TEST

static const size_t too_small[] = {0, 8, 19, 20, 24, 40, 64};

START_TEST(test_bufsize_too_small)
{
	struct wg_device *in = mixed_change();
	struct msgs *m = build(in, too_small[_i], -EMSGSIZE);

	msgs_free(m);
	wg_device_free(in);
}
END_TEST

START_TEST(test_emit_error_stops)
{
	struct wg_device *in = mixed_change();
	struct msgs *m = build(in, 200, 0);

	ck_assert_uint_ge(m->n, 3); /* so failing at the second stops early */
	msgs_free(m);
	m = calloc(1, sizeof(*m));
	m->fail_at = 1;
	ck_assert_int_eq(wg_nl_build_set(in, FAMILY_ID, SEQ0, 200, collect, m), -EIO);
	ck_assert_uint_eq(m->n, 1);
	ck_assert_uint_eq(m->calls, 2);
	msgs_free(m);
	wg_device_free(in);
}
END_TEST

/* ---- hand-made dump messages ------------------------------------------ */

static struct nlmsghdr *raw_start(void *buf, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));

	nlh->nlmsg_type = FAMILY_ID;
	nlh->nlmsg_flags = flags;
	genl->cmd = WG_CMD_GET_DEVICE;
	genl->version = WG_GENL_VERSION;
	return nlh;
}

static void raw_key(struct nlmsghdr *nlh, uint16_t type, unsigned seed, size_t len)
{
	uint8_t key[WG_KEY_LEN + 1];

	key_fill(key, seed);
	key[WG_KEY_LEN] = 0;
	mnl_attr_put(nlh, type, len, key);
}

static void raw_ip(struct nlmsghdr *nlh, uint16_t family, const char *addr, size_t len, int cidr)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, 0);
	uint8_t bytes[16] = {0};

	if (addr != NULL)
		ck_assert_int_eq(inet_pton(strchr(addr, ':') ? AF_INET6 : AF_INET, addr, bytes), 1);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, family);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, len, bytes);
	if (cidr >= 0)
		mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, (uint8_t)cidr);
	mnl_attr_nest_end(nlh, nest);
}

/* First message of a kernel dump: device, one peer with everything, a
 * second peer cut short after two allowed IPs. */
static void dump_part1(struct nlmsghdr *nlh)
{
	struct __kernel_timespec ts = {.tv_sec = 1700000000, .tv_nsec = 123};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(4242)};
	struct nlattr *peers, *peer, *ips;

	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 0);
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 7);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg-dump");
	raw_key(nlh, WGDEVICE_A_PRIVATE_KEY, 500, WG_KEY_LEN);
	raw_key(nlh, WGDEVICE_A_PUBLIC_KEY, 501, WG_KEY_LEN);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);

	peer = mnl_attr_nest_start(nlh, 0);
	raw_key(nlh, WGPEER_A_PUBLIC_KEY, 1, WG_KEY_LEN);
	mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, (uint8_t[WG_KEY_LEN]){0});
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), &ts);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 0);
	mnl_attr_put(nlh, WGPEER_A_UNSPEC, 0, NULL); /* 64-bit alignment pad */
	mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 1ull << 40);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 12345);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr), 1);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin6), &sin6);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	raw_ip(nlh, AF_INET, "10.0.0.2", 4, 32);
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);

	peer = mnl_attr_nest_start(nlh, 0);
	raw_key(nlh, WGPEER_A_PUBLIC_KEY, 2, WG_KEY_LEN);
	raw_key(nlh, WGPEER_A_PRESHARED_KEY, 3, WG_KEY_LEN);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	raw_ip(nlh, AF_INET, "10.0.1.0", 4, 24);
	raw_ip(nlh, AF_INET6, "fd00::1:0", 16, 112);
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
}

/* Second message: the cut peer goes on (key and allowed IPs only), one more peer. */
static void dump_part2(struct nlmsghdr *nlh)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(51820)};
	struct nlattr *peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS), *peer, *ips;

	peer = mnl_attr_nest_start(nlh, 0);
	raw_key(nlh, WGPEER_A_PUBLIC_KEY, 2, WG_KEY_LEN);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	raw_ip(nlh, AF_INET, "10.0.2.7", 4, 24); /* host bits: masked */
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);

	peer = mnl_attr_nest_start(nlh, 0);
	raw_key(nlh, WGPEER_A_PUBLIC_KEY, 4, WG_KEY_LEN);
	sin.sin_addr.s_addr = htonl(0xc0000201);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
}

static void assert_cidr_str(const struct ip_cidr *c, const char *want)
{
	char buf[IP_CIDR_STRLEN];

	ck_assert_int_eq(ip_cidr_format(c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, want);
}

START_TEST(test_dump_split)
{
	_Alignas(struct nlmsghdr) uint8_t b1[RAW_SIZE], b2[RAW_SIZE];
	struct nlmsghdr *m1 = raw_start(b1, NLM_F_MULTI), *m2 = raw_start(b2, NLM_F_MULTI);
	struct wg_device *dev = wg_device_new(NULL);
	uint8_t key[WG_KEY_LEN];
	char buf[IP_ADDR_STRLEN];

	dump_part1(m1);
	dump_part2(m2);
	ck_assert_int_eq(wg_nl_dump_merge(dev, m1), 0);
	ck_assert_int_eq(wg_nl_dump_merge(dev, m2), 0);

	ck_assert_str_eq(dev->ifname, "wg-dump");
	ck_assert_uint_eq(dev->flags, WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT);
	key_fill(key, 500);
	ck_assert_mem_eq(dev->private_key, key, WG_KEY_LEN);
	key_fill(key, 501);
	ck_assert_mem_eq(dev->public_key, key, WG_KEY_LEN);
	ck_assert_uint_eq(dev->listen_port, 51820);
	ck_assert_uint_eq(dev->n_peers, 3);

	const struct wg_peer *p = &dev->peers[0];
	ck_assert_uint_eq(p->flags, WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE);
	ck_assert(wg_key_is_zero(p->psk));
	ck_assert_uint_eq(p->keepalive, 0);
	ck_assert_int_eq(p->last_handshake, 1700000000);
	ck_assert_uint_eq(p->tx_bytes, 1ull << 40);
	ck_assert_uint_eq(p->rx_bytes, 12345);
	ck_assert_uint_eq(p->endpoint.family, AF_INET6);
	ck_assert_int_eq(ip_addr_format(&p->endpoint, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "2001:db8::1");
	ck_assert_uint_eq(p->endpoint_port, 4242);
	ck_assert_uint_eq(p->n_allowed_ips, 1);
	assert_cidr_str(&p->allowed_ips[0], "10.0.0.2/32");

	p = &dev->peers[1];
	key_fill(key, 2);
	ck_assert_mem_eq(p->public_key, key, WG_KEY_LEN);
	key_fill(key, 3);
	ck_assert_mem_eq(p->psk, key, WG_KEY_LEN);
	ck_assert_uint_eq(p->keepalive, 25);
	ck_assert_uint_eq(p->flags, WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE);
	ck_assert_uint_eq(p->n_allowed_ips, 3);
	assert_cidr_str(&p->allowed_ips[0], "10.0.1.0/24");
	assert_cidr_str(&p->allowed_ips[1], "fd00::1:0/112");
	assert_cidr_str(&p->allowed_ips[2], "10.0.2.0/24");
	ck_assert_uint_eq(p->endpoint.family, 0);
	ck_assert_int_eq(p->last_handshake, 0);

	p = &dev->peers[2];
	key_fill(key, 4);
	ck_assert_mem_eq(p->public_key, key, WG_KEY_LEN);
	ck_assert_int_eq(ip_addr_format(&p->endpoint, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "192.0.2.1");
	ck_assert_uint_eq(p->endpoint_port, 51820);
	wg_device_free(dev);
}
END_TEST

/* A device without a private key dumps 32 zero bytes? Then it has none. */
START_TEST(test_dump_zero_private_key)
{
	_Alignas(struct nlmsghdr) uint8_t b[RAW_SIZE];
	struct nlmsghdr *nlh = raw_start(b, NLM_F_MULTI);
	struct wg_device *dev = wg_device_new(NULL);

	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, (uint8_t[WG_KEY_LEN]){0});
	ck_assert_int_eq(wg_nl_dump_merge(dev, nlh), 0);
	ck_assert_uint_eq(dev->flags, 0);
	wg_device_free(dev);
}
END_TEST

START_TEST(test_dump_intr)
{
	_Alignas(struct nlmsghdr) uint8_t b[RAW_SIZE];
	struct nlmsghdr *nlh = raw_start(b, NLM_F_MULTI | NLM_F_DUMP_INTR);
	struct wg_device *dev = wg_device_new(NULL);

	dump_part1(nlh);
	ck_assert_int_eq(wg_nl_dump_merge(dev, nlh), -EINTR);
	ck_assert_uint_eq(dev->n_peers, 0);
	wg_device_free(dev);
}
END_TEST

/* ---- malformed -------------------------------------------------------- */

static struct nlattr *open_peer(struct nlmsghdr *nlh, struct nlattr **peers)
{
	*peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	struct nlattr *peer = mnl_attr_nest_start(nlh, 0);
	raw_key(nlh, WGPEER_A_PUBLIC_KEY, 1, WG_KEY_LEN);
	return peer;
}

static void close_peer(struct nlmsghdr *nlh, struct nlattr *peers, struct nlattr *peer)
{
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
}

static void one_ip(struct nlmsghdr *nlh, uint16_t family, const char *addr, size_t len, int cidr)
{
	struct nlattr *peers, *peer = open_peer(nlh, &peers);
	struct nlattr *ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);

	raw_ip(nlh, family, addr, len, cidr);
	mnl_attr_nest_end(nlh, ips);
	close_peer(nlh, peers, peer);
}

static void one_peer_attr(struct nlmsghdr *nlh, uint16_t type, size_t len)
{
	struct nlattr *peers, *peer = open_peer(nlh, &peers);
	uint8_t zero[64] = {0};

	mnl_attr_put(nlh, type, len, zero);
	close_peer(nlh, peers, peer);
}

static void bad_truncated(struct nlmsghdr *nlh)
{
	dump_part1(nlh);
	nlh->nlmsg_len -= 2;
}

static void bad_truncated_nest(struct nlmsghdr *nlh)
{
	struct nlattr *peers, *peer = open_peer(nlh, &peers);

	close_peer(nlh, peers, peer);
	peer->nla_len = (uint16_t)(peer->nla_len - 4); /* the key sticks out of the peer */
}

static void bad_short_header(struct nlmsghdr *nlh)
{
	nlh->nlmsg_len = NLMSG_HDRLEN + 2;
}

static void bad_private_key_31(struct nlmsghdr *nlh)
{
	raw_key(nlh, WGDEVICE_A_PRIVATE_KEY, 1, WG_KEY_LEN - 1);
}

static void bad_public_key_33(struct nlmsghdr *nlh)
{
	raw_key(nlh, WGDEVICE_A_PUBLIC_KEY, 1, WG_KEY_LEN + 1);
}

static void bad_peer_key_31(struct nlmsghdr *nlh)
{
	struct nlattr *peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	struct nlattr *peer = mnl_attr_nest_start(nlh, 0);

	raw_key(nlh, WGPEER_A_PUBLIC_KEY, 1, WG_KEY_LEN - 1);
	close_peer(nlh, peers, peer);
}

static void bad_peer_no_key(struct nlmsghdr *nlh)
{
	struct nlattr *peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	struct nlattr *peer = mnl_attr_nest_start(nlh, 0);

	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 5);
	close_peer(nlh, peers, peer);
}

static void bad_psk_31(struct nlmsghdr *nlh)
{
	one_peer_attr(nlh, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN - 1);
}

static void bad_keepalive_len(struct nlmsghdr *nlh)
{
	one_peer_attr(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 4);
}

static void bad_rx_len(struct nlmsghdr *nlh)
{
	one_peer_attr(nlh, WGPEER_A_RX_BYTES, 4);
}

static void bad_flags_len(struct nlmsghdr *nlh)
{
	one_peer_attr(nlh, WGPEER_A_FLAGS, 2);
}

static void bad_handshake_len(struct nlmsghdr *nlh)
{
	one_peer_attr(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, 8);
}

static void bad_endpoint_len(struct nlmsghdr *nlh)
{
	one_peer_attr(nlh, WGPEER_A_ENDPOINT, 20);
}

static void bad_endpoint_family(struct nlmsghdr *nlh)
{
	struct nlattr *peers, *peer = open_peer(nlh, &peers);
	struct sockaddr_in sin = {.sin_family = AF_INET6};

	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
	close_peer(nlh, peers, peer);
}

static void bad_ip_v4_len16(struct nlmsghdr *nlh)
{
	one_ip(nlh, AF_INET, "fd00::", 16, 8);
}

static void bad_ip_v6_len4(struct nlmsghdr *nlh)
{
	one_ip(nlh, AF_INET6, "10.0.0.0", 4, 8);
}

static void bad_ip_cidr33(struct nlmsghdr *nlh)
{
	one_ip(nlh, AF_INET, "10.0.0.0", 4, 33);
}

static void bad_ip_cidr129(struct nlmsghdr *nlh)
{
	one_ip(nlh, AF_INET6, "fd00::", 16, 129);
}

static void bad_ip_no_cidr(struct nlmsghdr *nlh)
{
	one_ip(nlh, AF_INET, "10.0.0.0", 4, -1);
}

static void bad_ip_family(struct nlmsghdr *nlh)
{
	one_ip(nlh, AF_UNIX, "10.0.0.0", 4, 8);
}

static void bad_ip_len5(struct nlmsghdr *nlh)
{
	one_ip(nlh, AF_INET, "10.0.0.0", 5, 8);
}

static void bad_ifname_no_nul(struct nlmsghdr *nlh)
{
	mnl_attr_put(nlh, WGDEVICE_A_IFNAME, 3, "wg0");
}

static void bad_ifname_long(struct nlmsghdr *nlh)
{
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0123456789abcde"); /* 17 + NUL */
}

static void bad_port_len(struct nlmsghdr *nlh)
{
	mnl_attr_put_u32(nlh, WGDEVICE_A_LISTEN_PORT, 1);
}

static void bad_ifindex_len(struct nlmsghdr *nlh)
{
	mnl_attr_put_u16(nlh, WGDEVICE_A_IFINDEX, 1);
}

static const struct {
	const char *name;
	void (*fill)(struct nlmsghdr *nlh);
} bad_cases[] = {
	{"truncated", bad_truncated},
	{"truncated nest", bad_truncated_nest},
	{"short header", bad_short_header},
	{"private key 31", bad_private_key_31},
	{"public key 33", bad_public_key_33},
	{"peer key 31", bad_peer_key_31},
	{"peer without key", bad_peer_no_key},
	{"psk 31", bad_psk_31},
	{"keepalive 4 bytes", bad_keepalive_len},
	{"rx bytes 4 bytes", bad_rx_len},
	{"peer flags 2 bytes", bad_flags_len},
	{"handshake 8 bytes", bad_handshake_len},
	{"endpoint 20 bytes", bad_endpoint_len},
	{"endpoint family", bad_endpoint_family},
	{"v4 with 16 bytes", bad_ip_v4_len16},
	{"v6 with 4 bytes", bad_ip_v6_len4},
	{"v4 /33", bad_ip_cidr33},
	{"v6 /129", bad_ip_cidr129},
	{"no cidr", bad_ip_no_cidr},
	{"family AF_UNIX", bad_ip_family},
	{"address 5 bytes", bad_ip_len5},
	{"ifname without NUL", bad_ifname_no_nul},
	{"ifname too long", bad_ifname_long},
	{"listen port 4 bytes", bad_port_len},
	{"ifindex 2 bytes", bad_ifindex_len},
};

START_TEST(test_malformed)
{
	_Alignas(struct nlmsghdr) uint8_t b[RAW_SIZE];
	struct nlmsghdr *nlh = raw_start(b, NLM_F_MULTI);
	struct wg_device *dev = wg_device_new(NULL);

	bad_cases[_i].fill(nlh);
	ck_assert_msg(wg_nl_dump_merge(dev, nlh) == -EBADMSG, "%s", bad_cases[_i].name);
	wg_device_free(dev);
}
END_TEST

/* The good twins of some bad cases parse: the table is not vacuous. */
START_TEST(test_well_formed_twins)
{
	static void (*const good[])(struct nlmsghdr *) = {dump_part1, dump_part2};
	_Alignas(struct nlmsghdr) uint8_t b[RAW_SIZE];
	struct nlmsghdr *nlh = raw_start(b, NLM_F_MULTI);
	struct wg_device *dev = wg_device_new(NULL);

	if (_i < (int)ARRAY_LEN(good)) {
		good[_i](nlh);
	} else {
		one_ip(nlh, AF_INET6, "fd00::", 16, 128);
		one_ip(nlh, AF_INET, "10.0.0.0", 4, 32);
	}
	ck_assert_int_eq(wg_nl_dump_merge(dev, nlh), 0);
	ck_assert_uint_ge(dev->n_peers, 1);
	wg_device_free(dev);
}
END_TEST

/* ---- the real socket, as far as this machine allows ------------------- */

/* Asks the kernel's generic netlink controller for the family (no root
 * needed): absent gives -ENOENT; present, a missing interface is -ENODEV. */
START_TEST(test_backend_probe)
{
	struct wg_backend *b = NULL;
	struct wg_device *dev = NULL;
	int r = wg_nl_new(&b);

	if (r == -ENOENT) {
		ck_assert_ptr_null(b);
		return;
	}
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(b->kind, WG_BACKEND_KERNEL);
	ck_assert_int_eq(b->get(b, "wgnl-absent0", &dev), -ENODEV);
	ck_assert_ptr_null(dev);
	ck_assert_int_eq(b->get(b, "wgnl-name-too-long", &dev), -ENAMETOOLONG);
	ck_assert_uint_eq(b->messages_sent, 0);
	wg_backend_free(b);
}
END_TEST

static Suite *wg_nl_suite(void)
{
	Suite *s = suite_create("wg_nl");
	TCase *tc = tcase_create("build");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_small_round_trip, 0, 7);
	tcase_add_test(tc, test_remove_peer_is_key_only);
	tcase_add_test(tc, test_many_peers);
	tcase_add_test(tc, test_peer_split);
	tcase_add_test(tc, test_every_bufsize);
	tcase_add_test(tc, test_device_fields_alone);
	tcase_add_loop_test(tc, test_bufsize_too_small, 0, (int)ARRAY_LEN(too_small));
	tcase_add_test(tc, test_emit_error_stops);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_dump_split);
	tcase_add_test(tc, test_dump_zero_private_key);
	tcase_add_test(tc, test_dump_intr);
	tcase_add_loop_test(tc, test_malformed, 0, (int)ARRAY_LEN(bad_cases));
	tcase_add_loop_test(tc, test_well_formed_twins, 0, 3);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_add_test(tc, test_backend_probe);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(wg_nl_suite());
}
