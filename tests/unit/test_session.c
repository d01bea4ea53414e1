/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "fake_fw.h"
#include "fake_wg.h"
#include "frame.h"
#include "session.h"

static struct agent_conf conf = {
	.socket_path = (char *)"/nonexistent/agent.sock",
	.interface = (char *)"wgtest0",
	.nft_table = (char *)"wiregui_test",
	.max_peers = 5000,
	.listen_port = 51820,
	.mtu = 1420,
};

static const uint8_t server_key[WG_KEY_LEN] = {0x40, 1, 2, 3};
static struct fake_wg *fake;
static struct wg_iface *wg;
static struct fake_fw *nft;
static struct fw_table *fw;

/*
 * Each test gets a fresh interface, 10.0.0.1/16 and fd00::1/64 with pools to
 * match, and a fresh nft table that no sync made yet.
 */
static void setup(void)
{
	conf.max_users = 100;
	conf.max_rules = 1000;
	ck_assert_int_eq(
		ip_cidr_parse("10.0.0.1/16", IP_CIDR_ALLOW_HOST_BITS, &conf.addresses.items[0]), 0);
	ck_assert_int_eq(
		ip_cidr_parse("fd00::1/64", IP_CIDR_ALLOW_HOST_BITS, &conf.addresses.items[1]), 0);
	conf.addresses.n = 2;
	conf.peer_networks = conf.addresses;
	ip_cidr_mask(&conf.peer_networks.items[0]);
	ip_cidr_mask(&conf.peer_networks.items[1]);
	fake = fake_wg_new(conf.interface);
	wg = wg_iface_new(&conf, &fake->base, server_key);
	ck_assert_ptr_nonnull(wg);
	nft = fake_fw_new();
	fw = fw_table_new(&conf, &nft->base);
	ck_assert_ptr_nonnull(fw);
}

static void teardown(void)
{
	wg_iface_free(wg);
	fw_table_free(fw);
}

static struct session *session_start(void)
{
	return session_new(&conf, wg, fw);
}

struct frames {
	uint8_t *buf;
	size_t len;
};

static void frames_add(struct frames *f, uint16_t type, const ProtobufCMessage *msg)
{
	uint8_t *buf;
	size_t len;
	ck_assert_int_eq(frame_encode(type, msg, &buf, &len), 0);
	f->buf = realloc(f->buf, f->len + len);
	memcpy(f->buf + f->len, buf, len);
	f->len += len;
	free(buf);
}

static void frames_add_raw(struct frames *f, const struct frame_header *h, const void *payload,
			   size_t len)
{
	f->buf = realloc(f->buf, f->len + FRAME_HEADER_LEN + len);
	frame_header_encode(h, f->buf + f->len);
	if (len)
		memcpy(f->buf + f->len + FRAME_HEADER_LEN, payload, len);
	f->len += FRAME_HEADER_LEN + len;
}

static void frames_add_hello(struct frames *f, uint64_t id)
{
	Wiregui__Hello hello = WIREGUI__HELLO__INIT;
	hello.request_id = id;
	hello.protocol_version = FRAME_VERSION;
	hello.client = (char *)"unit test";
	frames_add(f, WIREGUI__MSG_TYPE__MSG_HELLO, &hello.base);
}

/* Pop the next reply from the session's output; NULL if none. */
static ProtobufCMessage *reply_pop(struct session *s, uint16_t *ret_type)
{
	size_t len;
	const uint8_t *out = session_output(s, &len);
	if (len == 0)
		return NULL;
	struct frame_header h;
	ck_assert_uint_ge(len, FRAME_HEADER_LEN);
	ck_assert_int_eq(frame_header_decode(out, &h), WIREGUI__ERROR_CODE__OK);
	ck_assert_uint_ge(len, FRAME_HEADER_LEN + h.length);
	ProtobufCMessage *msg;
	ck_assert_int_eq(frame_decode(h.type, out + FRAME_HEADER_LEN, h.length, &msg),
			 WIREGUI__ERROR_CODE__OK);
	session_output_consumed(s, FRAME_HEADER_LEN + h.length);
	*ret_type = h.type;
	return msg;
}

static void expect_result(struct session *s, uint64_t id, Wiregui__ErrorCode code,
			  const char *field)
{
	uint16_t type;
	ProtobufCMessage *msg = reply_pop(s, &type);
	ck_assert_ptr_nonnull(msg);
	ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_RESULT);
	Wiregui__Result *res = (Wiregui__Result *)msg;
	ck_assert_msg(res->code == code, "code %d (%s), want %d", res->code, res->message, code);
	ck_assert_uint_eq(res->request_id, id);
	ck_assert_str_eq(res->field, field);
	ck_assert_str_ne(res->message, "");
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void expect_hello_reply(struct session *s, uint64_t id)
{
	uint16_t type;
	ProtobufCMessage *msg = reply_pop(s, &type);
	ck_assert_ptr_nonnull(msg);
	ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_HELLO_REPLY);
	Wiregui__HelloReply *r = (Wiregui__HelloReply *)msg;
	ck_assert_uint_eq(r->request_id, id);
	ck_assert_uint_eq(r->protocol_version, FRAME_VERSION);
	ck_assert_uint_eq(r->n_interfaces, 1);
	ck_assert_str_eq(r->interfaces[0]->name, "wgtest0");
	ck_assert_str_eq(r->nft_table, "wiregui_test");
	ck_assert_uint_eq(r->max_frame, FRAME_MAX_PAYLOAD);
	ck_assert_uint_eq(r->max_batch, FRAME_MAX_BATCH);
	ck_assert_uint_eq(r->max_users, conf.max_users);
	ck_assert_uint_eq(r->max_rules, conf.max_rules);
	ck_assert_uint_eq(r->firewall_generation, fw_table_generation(fw));
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void expect_no_output(struct session *s)
{
	size_t len;
	session_output(s, &len);
	ck_assert_uint_eq(len, 0);
}

START_TEST(test_hello)
{
	struct session *s = session_start();
	struct frames f = {0};
	frames_add_hello(&f, 7);
	ck_assert_int_eq(session_input(s, f.buf, f.len), 0);
	expect_hello_reply(s, 7);
	expect_no_output(s);
	ck_assert(!session_mid_frame(s));
	free(f.buf);
	session_free(s);
}
END_TEST

START_TEST(test_byte_at_a_time)
{
	struct session *s = session_start();
	struct frames f = {0};
	frames_add_hello(&f, 9);
	Wiregui__PeersSyncBegin begin = WIREGUI__PEERS_SYNC_BEGIN__INIT;
	begin.request_id = 10;
	begin.interface = (char *)"wg-other";
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BEGIN, &begin.base);
	for (size_t i = 0; i < f.len; i++)
		ck_assert_int_eq(session_input(s, f.buf + i, 1), 0);
	ck_assert_uint_eq(session_frames_begun(s), 2);
	expect_hello_reply(s, 9);
	expect_result(s, 10, WIREGUI__ERROR_CODE__NOT_ALLOWED, "interface");
	expect_no_output(s);
	free(f.buf);
	session_free(s);
}
END_TEST

START_TEST(test_mid_frame)
{
	struct session *s = session_start();
	struct frames f = {0};
	frames_add_hello(&f, 1);
	ck_assert_uint_eq(session_frames_begun(s), 0);
	ck_assert_int_eq(session_input(s, f.buf, 3), 0);
	ck_assert(session_mid_frame(s));
	ck_assert_uint_eq(session_frames_begun(s), 1);
	ck_assert_int_eq(session_input(s, f.buf + 3, f.len - 3), 0);
	ck_assert(!session_mid_frame(s));
	expect_hello_reply(s, 1);
	free(f.buf);
	session_free(s);
}
END_TEST

/* Violations: each answered with a typed Result, then the session refuses more input. */
enum setup {
	RAW,
	AFTER_HELLO
};

static const uint8_t hello_unknown_field[] = {0x08, 0x05, 0x10, 0x01, 0x98, 0x06, 0x01};
static const uint8_t hello_truncated[] = {0x08, 0x05, 0x1a, 0x09, 'x'};
static const uint8_t hello_bad_version[] = {0x08, 0x05, 0x10, 0x02};
static const uint8_t hello_bad_client[] = {0x08, 0x05, 0x10, 0x01, 0x1a, 0x02, 'a', '\n'};
static const uint8_t patch_id_3[] = {0x08, 0x03};
static const uint8_t batch_id_4[] = {0x08, 0x04};
static const uint8_t hello_id_6[] = {0x08, 0x06, 0x10, 0x01};

static const struct {
	const char *name;
	enum setup setup;
	struct frame_header hdr;
	const uint8_t *payload;
	size_t len;
	Wiregui__ErrorCode code;
	uint64_t request_id;
	const char *field;
} violations[] = {
	{"oversized length",
	 RAW,
	 {FRAME_MAX_PAYLOAD + 1, 1, 1, 0},
	 NULL,
	 0,
	 WIREGUI__ERROR_CODE__BAD_FRAME,
	 0,
	 ""},
	{"frame version 2", RAW, {2, 1, 2, 0}, NULL, 0, WIREGUI__ERROR_CODE__VERSION, 0, ""},
	{"flags", RAW, {0, 1, 1, 1}, NULL, 0, WIREGUI__ERROR_CODE__BAD_FRAME, 0, ""},
	{"unknown type", RAW, {0, 4242, 1, 0}, NULL, 0, WIREGUI__ERROR_CODE__UNKNOWN_TYPE, 0, ""},
	{"reply type sent as request",
	 AFTER_HELLO,
	 {0, WIREGUI__MSG_TYPE__MSG_RESULT, 1, 0},
	 NULL,
	 0,
	 WIREGUI__ERROR_CODE__UNKNOWN_TYPE,
	 0,
	 ""},
	{"unknown protobuf field",
	 RAW,
	 {sizeof(hello_unknown_field), WIREGUI__MSG_TYPE__MSG_HELLO, 1, 0},
	 hello_unknown_field,
	 sizeof(hello_unknown_field),
	 WIREGUI__ERROR_CODE__UNKNOWN_FIELD,
	 0,
	 ""},
	{"bad protobuf",
	 RAW,
	 {sizeof(hello_truncated), WIREGUI__MSG_TYPE__MSG_HELLO, 1, 0},
	 hello_truncated,
	 sizeof(hello_truncated),
	 WIREGUI__ERROR_CODE__DECODE,
	 0,
	 ""},
	{"hello protocol version 2",
	 RAW,
	 {sizeof(hello_bad_version), WIREGUI__MSG_TYPE__MSG_HELLO, 1, 0},
	 hello_bad_version,
	 sizeof(hello_bad_version),
	 WIREGUI__ERROR_CODE__VERSION,
	 5,
	 "protocol_version"},
	{"hello client with newline",
	 RAW,
	 {sizeof(hello_bad_client), WIREGUI__MSG_TYPE__MSG_HELLO, 1, 0},
	 hello_bad_client,
	 sizeof(hello_bad_client),
	 WIREGUI__ERROR_CODE__INVALID_FIELD,
	 5,
	 "client"},
	{"request before hello",
	 RAW,
	 {sizeof(patch_id_3), WIREGUI__MSG_TYPE__MSG_PEERS_PATCH, 1, 0},
	 patch_id_3,
	 sizeof(patch_id_3),
	 WIREGUI__ERROR_CODE__OUT_OF_STATE,
	 0,
	 ""},
	{"batch without begin",
	 AFTER_HELLO,
	 {sizeof(batch_id_4), WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH, 1, 0},
	 batch_id_4,
	 sizeof(batch_id_4),
	 WIREGUI__ERROR_CODE__OUT_OF_STATE,
	 0,
	 ""},
	{"firewall batch without begin",
	 AFTER_HELLO,
	 {sizeof(batch_id_4), WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BATCH, 1, 0},
	 batch_id_4,
	 sizeof(batch_id_4),
	 WIREGUI__ERROR_CODE__OUT_OF_STATE,
	 0,
	 ""},
	{"firewall end without begin",
	 AFTER_HELLO,
	 {sizeof(batch_id_4), WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_END, 1, 0},
	 batch_id_4,
	 sizeof(batch_id_4),
	 WIREGUI__ERROR_CODE__OUT_OF_STATE,
	 0,
	 ""},
	{"hello larger than a hello can be",
	 RAW,
	 {5000, WIREGUI__MSG_TYPE__MSG_HELLO, 1, 0},
	 NULL,
	 0,
	 WIREGUI__ERROR_CODE__LIMIT,
	 0,
	 ""},
	{"stats request of 64 KiB",
	 AFTER_HELLO,
	 {65536, WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, 1, 0},
	 NULL,
	 0,
	 WIREGUI__ERROR_CODE__LIMIT,
	 0,
	 ""},
	{"second hello",
	 AFTER_HELLO,
	 {sizeof(hello_id_6), WIREGUI__MSG_TYPE__MSG_HELLO, 1, 0},
	 hello_id_6,
	 sizeof(hello_id_6),
	 WIREGUI__ERROR_CODE__OUT_OF_STATE,
	 0,
	 ""},
};

START_TEST(test_violation)
{
	struct session *s = session_start();
	struct frames f = {0};
	if (violations[_i].setup == AFTER_HELLO) {
		frames_add_hello(&f, 1);
		ck_assert_int_eq(session_input(s, f.buf, f.len), 0);
		expect_hello_reply(s, 1);
		free(f.buf);
		f = (struct frames){0};
	}
	frames_add_raw(&f, &violations[_i].hdr, violations[_i].payload, violations[_i].len);
	/* A valid Hello right behind it must not be served. */
	frames_add_hello(&f, 99);
	ck_assert_msg(session_input(s, f.buf, f.len) == -EPROTO, "%s: not refused",
		      violations[_i].name);
	expect_result(s, violations[_i].request_id, violations[_i].code, violations[_i].field);
	expect_no_output(s);
	ck_assert_int_eq(session_input(s, f.buf, f.len), -EPROTO);
	expect_no_output(s);
	free(f.buf);
	session_free(s);
}
END_TEST

/* A peer whose key bytes are all n, with 10.0.n.n/32 and optionally a PSK. */
struct peer_msg {
	Wiregui__Peer peer;
	Wiregui__Cidr cidr;
	Wiregui__Cidr *cidrs[2];
	uint8_t key[WG_KEY_LEN], psk[WG_KEY_LEN], addr[4];
};

static void peer_msg_init(struct peer_msg *m, uint8_t n, bool psk, uint32_t keepalive)
{
	wiregui__peer__init(&m->peer);
	wiregui__cidr__init(&m->cidr);
	memset(m->key, n, sizeof(m->key));
	memset(m->psk, 0x70 + n, sizeof(m->psk));
	m->addr[0] = 10;
	m->addr[1] = 0;
	m->addr[2] = n;
	m->addr[3] = n;
	m->cidr.address = (ProtobufCBinaryData){4, m->addr};
	m->cidr.prefix = 32;
	m->cidrs[0] = &m->cidr;
	m->peer.public_key = (ProtobufCBinaryData){WG_KEY_LEN, m->key};
	if (psk)
		m->peer.preshared_key = (ProtobufCBinaryData){WG_KEY_LEN, m->psk};
	m->peer.persistent_keepalive = keepalive;
	m->peer.n_allowed_ips = 1;
	m->peer.allowed_ips = m->cidrs;
}

/* Begin, one batch with these peers, End; all with request ids from id. */
static void frames_add_sync(struct frames *f, uint64_t id, uint64_t gen, struct peer_msg *pm,
			    size_t n, uint32_t total)
{
	Wiregui__Peer *peers[16];
	Wiregui__PeersSyncBegin begin = WIREGUI__PEERS_SYNC_BEGIN__INIT;
	begin.request_id = id;
	begin.interface = conf.interface;
	begin.generation = gen;
	begin.total = total;
	frames_add(f, WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BEGIN, &begin.base);
	Wiregui__PeersSyncBatch batch = WIREGUI__PEERS_SYNC_BATCH__INIT;
	batch.request_id = id + 1;
	for (size_t i = 0; i < n; i++)
		peers[i] = &pm[i].peer;
	batch.n_peers = n;
	batch.peers = peers;
	frames_add(f, WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH, &batch.base);
	Wiregui__PeersSyncEnd end = WIREGUI__PEERS_SYNC_END__INIT;
	end.request_id = id + 2;
	end.generation = gen;
	frames_add(f, WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_END, &end.base);
}

/* An OK Result for id whose message contains says (NULL: any). */
static void expect_ok_says(struct session *s, uint64_t id, const char *says)
{
	uint16_t type;
	ProtobufCMessage *msg = reply_pop(s, &type);
	ck_assert_ptr_nonnull(msg);
	ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_RESULT);
	Wiregui__Result *res = (Wiregui__Result *)msg;
	ck_assert_msg(res->code == WIREGUI__ERROR_CODE__OK, "request %llu: code %d %s: %s",
		      (unsigned long long)id, res->code, res->field, res->message);
	ck_assert_uint_eq(res->request_id, id);
	if (says != NULL)
		ck_assert_msg(strstr(res->message, says) != NULL, "request %llu: '%s' says no '%s'",
			      (unsigned long long)id, res->message, says);
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void expect_ok(struct session *s, uint64_t id)
{
	expect_ok_says(s, id, NULL);
}

static struct session *session_ready(void)
{
	struct session *s = session_start();
	struct frames f = {0};
	frames_add_hello(&f, 1);
	ck_assert_int_eq(session_input(s, f.buf, f.len), 0);
	expect_hello_reply(s, 1);
	free(f.buf);
	return s;
}

static void session_feed(struct session *s, struct frames *f)
{
	ck_assert_int_eq(session_input(s, f->buf, f->len), 0);
	free(f->buf);
	*f = (struct frames){0};
}

static void sync_expect_ok(struct session *s, uint64_t id, uint64_t gen, struct peer_msg *pm,
			   size_t n)
{
	struct frames f = {0};
	frames_add_sync(&f, id, gen, pm, n, (uint32_t)n);
	session_feed(s, &f);
	expect_ok(s, id);
	expect_ok(s, id + 1);
	expect_ok(s, id + 2);
	expect_no_output(s);
}

START_TEST(test_sync_reconciles)
{
	struct session *s = session_ready();
	struct peer_msg pm[3];
	peer_msg_init(&pm[0], 1, true, 25);
	peer_msg_init(&pm[1], 2, false, 0);
	peer_msg_init(&pm[2], 3, true, 0);

	sync_expect_ok(s, 10, 1, pm, 3);
	ck_assert_uint_eq(fake->dev->n_peers, 3);
	ck_assert_uint_eq(fake->dev->listen_port, 51820);
	ck_assert_mem_eq(fake->dev->private_key, server_key, WG_KEY_LEN);
	ck_assert_uint_eq(fake->base.messages_sent, 1);
	ck_assert_uint_eq(wg_iface_generation(wg), 1);

	/* The same state again writes nothing. */
	sync_expect_ok(s, 20, 2, pm, 3);
	ck_assert_uint_eq(fake->base.messages_sent, 1);

	/* A peer added behind our back goes; a changed keepalive is written. */
	struct wg_peer *extra = wg_device_add_peer(fake->dev);
	memset(extra->public_key, 9, WG_KEY_LEN);
	pm[1].peer.persistent_keepalive = 15;
	sync_expect_ok(s, 30, 3, pm, 3);
	ck_assert_uint_eq(fake->base.messages_sent, 2);
	ck_assert_uint_eq(fake->dev->n_peers, 3);
	uint8_t k9[WG_KEY_LEN], k2[WG_KEY_LEN];
	memset(k9, 9, sizeof(k9));
	memset(k2, 2, sizeof(k2));
	ck_assert_ptr_null(fake_wg_find(fake->dev, k9));
	ck_assert_uint_eq(fake_wg_find(fake->dev, k2)->keepalive, 15);

	/* An empty desired state removes everyone. */
	sync_expect_ok(s, 40, 4, pm, 0);
	ck_assert_uint_eq(fake->dev->n_peers, 0);
	session_free(s);
}
END_TEST

/* What a stream-error case spoils: the peers, Begin's total, End's generation. */
struct spoiled {
	struct peer_msg *pm;
	uint32_t total;
	uint64_t gen;
};

static void spoil_short_key(struct spoiled *sp)
{
	sp->pm[1].peer.public_key.len = 31;
}

static void spoil_zero_key(struct spoiled *sp)
{
	memset(sp->pm[1].key, 0, WG_KEY_LEN);
}

static void spoil_own_key(struct spoiled *sp)
{
	memcpy(sp->pm[1].key, wg_iface_public_key(wg), WG_KEY_LEN);
}

static void spoil_psk_len(struct spoiled *sp)
{
	sp->pm[0].peer.preshared_key.len = 16;
}

static void spoil_keepalive(struct spoiled *sp)
{
	sp->pm[2].peer.persistent_keepalive = 65536;
}

static void spoil_outside_pool(struct spoiled *sp)
{
	sp->pm[1].addr[1] = 1; /* 10.1.x.x is outside 10.0.0.0/16 */
}

static void spoil_host_bits(struct spoiled *sp)
{
	sp->pm[1].cidr.prefix = 24;
}

static void spoil_prefix(struct spoiled *sp)
{
	sp->pm[1].cidr.prefix = 33;
}

static void spoil_addr_len(struct spoiled *sp)
{
	sp->pm[1].cidr.address.len = 5;
}

static void spoil_duplicate_key(struct spoiled *sp)
{
	memset(sp->pm[2].key, 1, WG_KEY_LEN);
}

static void spoil_ip_twice(struct spoiled *sp)
{
	sp->pm[1].cidrs[1] = &sp->pm[1].cidr;
	sp->pm[1].peer.n_allowed_ips = 2;
	sp->pm[1].peer.allowed_ips = (Wiregui__Cidr **)sp->pm[1].cidrs;
}

static void spoil_shared_ip(struct spoiled *sp)
{
	memcpy(sp->pm[2].addr, sp->pm[0].addr, 4);
}

static void spoil_total_high(struct spoiled *sp)
{
	sp->total = 4;
}

static void spoil_total_low(struct spoiled *sp)
{
	sp->total = 2;
}

static void spoil_max_peers(struct spoiled *sp)
{
	sp->total = 5001;
}

static void spoil_generation(struct spoiled *sp)
{
	sp->gen = 8;
}

static const struct stream_error {
	const char *name;
	void (*spoil)(struct spoiled *sp);
	Wiregui__ErrorCode code;
	const char *field;
	int first_bad; /* 0 Begin, 1 Batch, 2 End */
} stream_errors[] = {
	{"short key", spoil_short_key, WIREGUI__ERROR_CODE__INVALID_FIELD, "peers[1].public_key",
	 1},
	{"zero key", spoil_zero_key, WIREGUI__ERROR_CODE__INVALID_FIELD, "peers[1].public_key", 1},
	{"own key", spoil_own_key, WIREGUI__ERROR_CODE__INVALID_FIELD, "peers[1].public_key", 1},
	{"psk length", spoil_psk_len, WIREGUI__ERROR_CODE__INVALID_FIELD, "peers[0].preshared_key",
	 1},
	{"keepalive", spoil_keepalive, WIREGUI__ERROR_CODE__INVALID_FIELD,
	 "peers[2].persistent_keepalive", 1},
	{"outside pool", spoil_outside_pool, WIREGUI__ERROR_CODE__NOT_ALLOWED,
	 "peers[1].allowed_ips[0]", 1},
	{"host bits", spoil_host_bits, WIREGUI__ERROR_CODE__INVALID_FIELD,
	 "peers[1].allowed_ips[0]", 1},
	{"prefix", spoil_prefix, WIREGUI__ERROR_CODE__INVALID_FIELD, "peers[1].allowed_ips[0]", 1},
	{"address length", spoil_addr_len, WIREGUI__ERROR_CODE__INVALID_FIELD,
	 "peers[1].allowed_ips[0]", 1},
	{"duplicate key", spoil_duplicate_key, WIREGUI__ERROR_CODE__INVALID_FIELD, "peers", 2},
	{"allowed ip twice on a peer", spoil_ip_twice, WIREGUI__ERROR_CODE__INVALID_FIELD, "peers",
	 2},
	{"shared allowed ip", spoil_shared_ip, WIREGUI__ERROR_CODE__INVALID_FIELD, "peers", 2},
	{"total above batches", spoil_total_high, WIREGUI__ERROR_CODE__INVALID_FIELD, "total", 2},
	{"batches above total", spoil_total_low, WIREGUI__ERROR_CODE__LIMIT, "peers", 1},
	{"above max_peers", spoil_max_peers, WIREGUI__ERROR_CODE__LIMIT, "total", 0},
	{"generation", spoil_generation, WIREGUI__ERROR_CODE__INVALID_FIELD, "generation", 2},
};

START_TEST(test_stream_error)
{
	const struct stream_error *e = &stream_errors[_i];
	struct session *s = session_ready();
	struct peer_msg pm[3];
	peer_msg_init(&pm[0], 1, true, 25);
	peer_msg_init(&pm[1], 2, false, 0);
	peer_msg_init(&pm[2], 3, true, 0);
	struct spoiled sp = {pm, 3, 7};
	e->spoil(&sp);

	struct frames f = {0};
	frames_add_sync(&f, 10, 7, pm, 3, sp.total);
	if (sp.gen != 7) { /* replace the End with one naming another generation */
		f.len -= FRAME_HEADER_LEN + 4;
		Wiregui__PeersSyncEnd end = WIREGUI__PEERS_SYNC_END__INIT;
		end.request_id = 12;
		end.generation = sp.gen;
		frames_add(&f, WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_END, &end.base);
	}
	session_feed(s, &f);
	for (int i = 0; i < 3; i++) {
		if (i < e->first_bad)
			expect_ok(s, 10 + (uint64_t)i);
		else
			expect_result(s, 10 + (uint64_t)i, e->code, e->field);
	}
	expect_no_output(s);
	ck_assert_msg(fake->dev->n_peers == 0 && fake->base.messages_sent == 0,
		      "%s: something was applied", e->name);

	/* The connection goes on: a good sync after it works. */
	peer_msg_init(&pm[0], 1, true, 25);
	sync_expect_ok(s, 20, 8, pm, 1);
	ck_assert_uint_eq(fake->dev->n_peers, 1);
	session_free(s);
}
END_TEST

START_TEST(test_ping_inside_stream)
{
	struct session *s = session_ready();
	struct frames f = {0};
	Wiregui__PeersSyncBegin begin = WIREGUI__PEERS_SYNC_BEGIN__INIT;
	begin.request_id = 2;
	begin.interface = conf.interface;
	begin.generation = 5;
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BEGIN, &begin.base);
	Wiregui__Ping ping = WIREGUI__PING__INIT;
	ping.request_id = 3;
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_PING, &ping.base);
	Wiregui__PeersSyncEnd end = WIREGUI__PEERS_SYNC_END__INIT;
	end.request_id = 4;
	end.generation = 5;
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_END, &end.base);
	session_feed(s, &f);
	expect_ok(s, 2);
	expect_ok(s, 3);
	expect_ok(s, 4);
	session_free(s);
}
END_TEST

START_TEST(test_kernel_refusal)
{
	struct session *s = session_ready();
	struct peer_msg pm[1];
	peer_msg_init(&pm[0], 1, true, 25);
	fake->fail_set = -EINVAL;
	struct frames f = {0};
	frames_add_sync(&f, 10, 3, pm, 1, 1);
	session_feed(s, &f);
	expect_ok(s, 10);
	expect_ok(s, 11);
	expect_result(s, 12, WIREGUI__ERROR_CODE__KERNEL, "");
	ck_assert_uint_eq(wg_iface_generation(wg), 0);
	session_free(s);
}
END_TEST

static void frames_add_patch(struct frames *f, uint64_t id, struct peer_msg *up, size_t n_up,
			     ProtobufCBinaryData *rm, size_t n_rm)
{
	Wiregui__Peer *peers[8];
	Wiregui__PeersPatch patch = WIREGUI__PEERS_PATCH__INIT;
	patch.request_id = id;
	patch.interface = conf.interface;
	for (size_t i = 0; i < n_up; i++)
		peers[i] = &up[i].peer;
	patch.n_upsert = n_up;
	patch.upsert = peers;
	patch.n_remove = n_rm;
	patch.remove = rm;
	frames_add(f, WIREGUI__MSG_TYPE__MSG_PEERS_PATCH, &patch.base);
}

START_TEST(test_patch)
{
	struct session *s = session_ready();
	struct peer_msg pm[2];
	peer_msg_init(&pm[0], 1, true, 25);
	peer_msg_init(&pm[1], 2, true, 0);
	sync_expect_ok(s, 10, 1, pm, 2);

	/* Upsert peer 1 without its PSK (cleared), add peer 3, remove peer 2. */
	struct peer_msg up[2];
	peer_msg_init(&up[0], 1, false, 5);
	peer_msg_init(&up[1], 3, false, 0);
	ProtobufCBinaryData rm = {WG_KEY_LEN, pm[1].key};
	struct frames f = {0};
	frames_add_patch(&f, 20, up, 2, &rm, 1);
	session_feed(s, &f);
	expect_ok(s, 20);
	ck_assert_uint_eq(fake->dev->n_peers, 2);
	ck_assert_ptr_null(fake_wg_find(fake->dev, pm[1].key));
	const struct wg_peer *p1 = fake_wg_find(fake->dev, pm[0].key);
	ck_assert(wg_key_is_zero(p1->psk));
	ck_assert_uint_eq(p1->keepalive, 5);
	ck_assert_ptr_nonnull(fake_wg_find(fake->dev, up[1].key));

	/* A key both upserted and removed is refused, and nothing is written. */
	uint64_t sent = fake->base.messages_sent;
	rm.data = up[1].key;
	frames_add_patch(&f, 21, up, 2, &rm, 1);
	session_feed(s, &f);
	expect_result(s, 21, WIREGUI__ERROR_CODE__INVALID_FIELD, "peers");
	/* So is a removal key of the wrong size, naming it. */
	rm.len = 3;
	frames_add_patch(&f, 22, up, 0, &rm, 1);
	session_feed(s, &f);
	expect_result(s, 22, WIREGUI__ERROR_CODE__INVALID_FIELD, "remove[0]");
	ck_assert_uint_eq(fake->base.messages_sent, sent);
	session_free(s);
}
END_TEST

START_TEST(test_stats_in_pieces)
{
	struct session *s = session_ready();
	for (unsigned i = 0; i < 2500; i++) {
		struct wg_peer *p = wg_device_add_peer(fake->dev);
		memcpy(p->public_key, &i, sizeof(i));
		p->rx_bytes = i;
		p->tx_bytes = 2u * i;
		p->last_handshake = 1700000000 + i;
		if (i % 2) {
			ip_addr_parse("192.0.2.7", &p->endpoint);
			p->endpoint_port = 51821;
		}
	}
	struct frames f = {0};
	Wiregui__StatsRequest req = WIREGUI__STATS_REQUEST__INIT;
	req.request_id = 5;
	req.interface = conf.interface;
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, &req.base);
	session_feed(s, &f);
	size_t seen = 0, replies = 0;
	for (bool more = true; more; replies++) {
		uint16_t type;
		Wiregui__StatsReply *r = (Wiregui__StatsReply *)reply_pop(s, &type);
		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_STATS_REPLY);
		ck_assert_uint_eq(r->request_id, 5);
		for (size_t i = 0; i < r->n_peers; i++, seen++) {
			const Wiregui__PeerStats *ps = r->peers[i];
			ck_assert_uint_eq(ps->public_key.len, WG_KEY_LEN);
			ck_assert_uint_eq(ps->tx_bytes, 2 * ps->rx_bytes);
			ck_assert_int_eq(ps->latest_handshake, 1700000000 + (int64_t)ps->rx_bytes);
			ck_assert((ps->endpoint != NULL) == (ps->rx_bytes % 2 == 1));
			if (ps->endpoint)
				ck_assert_uint_eq(ps->endpoint->port, 51821);
		}
		more = r->more;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	ck_assert_uint_eq(seen, 2500);
	ck_assert_uint_eq(replies, 3);
	expect_no_output(s);
	session_free(s);
}
END_TEST

/* More replies than the high water: the rest of the input waits its turn. */
START_TEST(test_output_backlog)
{
	struct session *s = session_ready();
	for (unsigned i = 0; i < 3000; i++) {
		struct wg_peer *p = wg_device_add_peer(fake->dev);
		memcpy(p->public_key, &i, sizeof(i));
	}
	struct frames f = {0};
	Wiregui__StatsRequest req = WIREGUI__STATS_REQUEST__INIT;
	req.interface = conf.interface;
	for (uint64_t id = 1; id <= 100; id++) {
		req.request_id = id;
		frames_add(&f, WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, &req.base);
	}
	ck_assert_int_eq(session_input(s, f.buf, f.len), 0);
	ck_assert(session_backlogged(s));
	ck_assert_int_eq(session_input(s, f.buf, 1), -EAGAIN);
	size_t len, max_len = 0;
	uint64_t next = 1;
	while (next <= 100) {
		session_output(s, &len);
		max_len = len > max_len ? len : max_len;
		ck_assert_msg(len > 0, "request %llu never answered", (unsigned long long)next);
		for (bool more = true; more;) {
			uint16_t type;
			Wiregui__StatsReply *r = (Wiregui__StatsReply *)reply_pop(s, &type);
			ck_assert_uint_eq(r->request_id, next);
			more = r->more;
			protobuf_c_message_free_unpacked(&r->base, NULL);
		}
		session_output(s, &len);
		if (len == 0 && session_backlogged(s))
			ck_assert_int_eq(session_resume(s), 0);
		next++;
	}
	ck_assert(!session_backlogged(s));
	/* Bounded: the high water plus one request's replies. */
	ck_assert_uint_lt(max_len, SESSION_OUTPUT_HIGH_WATER + 512 * 1024);
	expect_no_output(s);
	free(f.buf);
	session_free(s);
}
END_TEST

/* Patches cannot take the interface past max_peers; removals make room. */
START_TEST(test_patch_max_peers)
{
	unsigned long saved = conf.max_peers;
	conf.max_peers = 2;
	struct session *s = session_ready();
	struct peer_msg pm[3];
	peer_msg_init(&pm[0], 1, false, 0);
	peer_msg_init(&pm[1], 2, false, 0);
	peer_msg_init(&pm[2], 3, false, 0);
	struct frames f = {0};
	frames_add_patch(&f, 2, pm, 2, NULL, 0);
	frames_add_patch(&f, 3, &pm[2], 1, NULL, 0);
	ProtobufCBinaryData rm = {WG_KEY_LEN, pm[0].key};
	frames_add_patch(&f, 4, &pm[2], 1, &rm, 1);
	frames_add_patch(&f, 5, &pm[1], 1, NULL, 0); /* an update: no new peer */
	session_feed(s, &f);
	expect_ok(s, 2);
	expect_result(s, 3, WIREGUI__ERROR_CODE__LIMIT, "");
	ck_assert_uint_eq(fake->dev->n_peers, 2);
	expect_ok(s, 4);
	expect_ok(s, 5);
	ck_assert_uint_eq(fake->dev->n_peers, 2);
	ck_assert_ptr_nonnull(fake_wg_find(fake->dev, pm[2].key));
	conf.max_peers = saved;
	session_free(s);
}
END_TEST

static void frames_add_interface_set(struct frames *f, uint64_t id, const char *name, uint32_t port,
				     uint32_t mtu)
{
	Wiregui__InterfaceSet set = WIREGUI__INTERFACE_SET__INIT;
	set.request_id = id;
	set.name = (char *)name;
	set.listen_port = port;
	set.mtu = mtu;
	frames_add(f, WIREGUI__MSG_TYPE__MSG_INTERFACE_SET, &set.base);
}

START_TEST(test_interface_set)
{
	struct session *s = session_ready();
	struct frames f = {0};
	frames_add_interface_set(&f, 2, conf.interface, 0, 0);
	frames_add_interface_set(&f, 3, conf.interface, 4000, 0);
	frames_add_interface_set(&f, 4, conf.interface, 0, 1280);
	frames_add_interface_set(&f, 5, "eth0", 0, 0);
	session_feed(s, &f);
	expect_ok(s, 2);
	ck_assert_uint_eq(fake->dev->listen_port, 51820);
	expect_result(s, 3, WIREGUI__ERROR_CODE__NOT_ALLOWED, "listen_port");
	expect_result(s, 4, WIREGUI__ERROR_CODE__NOT_ALLOWED, "mtu");
	expect_result(s, 5, WIREGUI__ERROR_CODE__NOT_ALLOWED, "name");
	session_free(s);
}
END_TEST

/* ---- the firewall ----------------------------------------------------------- */

/*
 * Rule k of user n (n 0: a global rule), as agentctl genfw makes them: even
 * k "192.0.2.n/32 tcp 443 accept", odd k "198.51.100.0/24 udp 1000-2000
 * drop", priority 10 (k + 1). Its id is 'r', n, k, zeros.
 */
struct fw_rule_msg {
	Wiregui__FirewallRule rule;
	Wiregui__Cidr dst;
	uint8_t id[FW_ID_LEN], addr[4];
};

static void fw_rule_msg_init(struct fw_rule_msg *m, uint8_t n, uint8_t k)
{
	static const uint8_t net[] = {198, 51, 100, 0};
	wiregui__firewall_rule__init(&m->rule);
	wiregui__cidr__init(&m->dst);
	memset(m->id, 0, sizeof(m->id));
	m->id[0] = 'r';
	m->id[1] = n;
	m->id[2] = k;
	m->rule.id = (ProtobufCBinaryData){FW_ID_LEN, m->id};
	m->rule.priority = 10 * (k + 1);
	if (k % 2 == 0) {
		memcpy(m->addr, (uint8_t[]){192, 0, 2, n}, 4);
		m->dst.prefix = 32;
		m->rule.protocol = WIREGUI__PROTOCOL__PROTO_TCP;
		m->rule.port_from = 443;
		m->rule.action = WIREGUI__ACTION__ACTION_ACCEPT;
	} else {
		memcpy(m->addr, net, 4);
		m->dst.prefix = 24;
		m->rule.protocol = WIREGUI__PROTOCOL__PROTO_UDP;
		m->rule.port_from = 1000;
		m->rule.port_to = 2000;
		m->rule.action = WIREGUI__ACTION__ACTION_DROP;
	}
	m->dst.address = (ProtobufCBinaryData){4, m->addr};
	m->rule.destination = &m->dst;
}

/* User n: id 'u', n, zeros; devices 10.0.1.n and fd00::1:n; rules 0 and 1. */
struct fw_user_msg {
	Wiregui__FirewallUser user;
	Wiregui__Cidr cidr[2];
	Wiregui__Cidr *cidrs[FW_MAX_ADDRS_PER_USER + 1];
	struct fw_rule_msg rm[2];
	Wiregui__FirewallRule *rules[FW_MAX_RULES_PER_USER + 1];
	uint8_t id[FW_ID_LEN], a4[4], a6[16];
};

static void fw_user_msg_init(struct fw_user_msg *m, uint8_t n)
{
	wiregui__firewall_user__init(&m->user);
	memset(m->id, 0, sizeof(m->id));
	m->id[0] = 'u';
	m->id[1] = n;
	memcpy(m->a4, (uint8_t[]){10, 0, 1, n}, 4);
	memset(m->a6, 0, sizeof(m->a6));
	m->a6[0] = 0xfd;
	m->a6[13] = 1;
	m->a6[15] = n;
	for (size_t j = 0; j < 2; j++) {
		wiregui__cidr__init(&m->cidr[j]);
		m->cidr[j].address = j ? (ProtobufCBinaryData){16, m->a6}
				       : (ProtobufCBinaryData){4, m->a4};
		m->cidr[j].prefix = j ? 128 : 32;
		m->cidrs[j] = &m->cidr[j];
		fw_rule_msg_init(&m->rm[j], n, (uint8_t)j);
		m->rules[j] = &m->rm[j].rule;
	}
	m->user.id = (ProtobufCBinaryData){FW_ID_LEN, m->id};
	m->user.active = true;
	m->user.n_addresses = 2;
	m->user.addresses = m->cidrs;
	m->user.n_rules = 2;
	m->user.rules = m->rules;
}

/* A full sync as the tests send it: Begin, users, global rules, End (ids id..id+3). */
struct fw_sync_msg {
	struct fw_user_msg *um;
	size_t n_users;
	struct fw_rule_msg *gm;
	size_t n_global;
	Wiregui__FirewallSettings *settings;
	uint32_t total_users, total_global;
	uint64_t gen, end_gen;
};

static void frames_add_fw_sync(struct frames *f, uint64_t id, const struct fw_sync_msg *m)
{
	Wiregui__FirewallUser *users[8];
	Wiregui__FirewallRule *globals[8];
	Wiregui__FirewallSyncBegin begin = WIREGUI__FIREWALL_SYNC_BEGIN__INIT;
	begin.request_id = id;
	begin.generation = m->gen;
	begin.settings = m->settings;
	begin.total_users = m->total_users;
	begin.total_global_rules = m->total_global;
	frames_add(f, WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BEGIN, &begin.base);
	Wiregui__FirewallSyncBatch batch = WIREGUI__FIREWALL_SYNC_BATCH__INIT;
	batch.request_id = id + 1;
	for (size_t i = 0; i < m->n_users; i++)
		users[i] = &m->um[i].user;
	batch.n_users = m->n_users;
	batch.users = users;
	frames_add(f, WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BATCH, &batch.base);
	batch = (Wiregui__FirewallSyncBatch)WIREGUI__FIREWALL_SYNC_BATCH__INIT;
	batch.request_id = id + 2;
	for (size_t i = 0; i < m->n_global; i++)
		globals[i] = &m->gm[i].rule;
	batch.n_global_rules = m->n_global;
	batch.global_rules = globals;
	frames_add(f, WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BATCH, &batch.base);
	Wiregui__FirewallSyncEnd end = WIREGUI__FIREWALL_SYNC_END__INIT;
	end.request_id = id + 3;
	end.generation = m->end_gen;
	frames_add(f, WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_END, &end.base);
}

/* Three users with two rules each, one global rule (id 'r', 0, 2), default settings. */
struct fw_fixture {
	struct fw_user_msg um[3];
	struct fw_rule_msg gm[1];
	Wiregui__FirewallSettings settings;
	struct fw_sync_msg sync;
};

static void fw_fixture_init(struct fw_fixture *x, uint64_t gen)
{
	for (uint8_t n = 0; n < 3; n++)
		fw_user_msg_init(&x->um[n], (uint8_t)(n + 1));
	fw_rule_msg_init(&x->gm[0], 0, 2);
	wiregui__firewall_settings__init(&x->settings);
	x->sync = (struct fw_sync_msg){x->um, 3, x->gm, 1, &x->settings, 3, 1, gen, gen};
}

static void fw_sync_expect_ok(struct session *s, uint64_t id, const struct fw_sync_msg *m,
			      const char *says)
{
	struct frames f = {0};
	frames_add_fw_sync(&f, id, m);
	session_feed(s, &f);
	expect_ok(s, id);
	expect_ok(s, id + 1);
	expect_ok(s, id + 2);
	expect_ok_says(s, id + 3, says);
	expect_no_output(s);
}

START_TEST(test_fw_sync)
{
	struct session *s = session_ready();
	struct fw_fixture x;
	fw_fixture_init(&x, 5);

	fw_sync_expect_ok(s, 10, &x.sync, "replaced, 3 users, 7 rules");
	ck_assert_uint_eq(nft->base.commits, 1);
	ck_assert_uint_eq(fw_table_generation(fw), 5);

	/* The same state again (the table read back from the "kernel") commits nothing. */
	x.sync.gen = x.sync.end_gen = 6;
	fw_sync_expect_ok(s, 20, &x.sync, "unchanged");
	ck_assert_uint_eq(nft->base.commits, 1);
	ck_assert_uint_eq(fw_table_generation(fw), 6);

	/* A disabled user, default-deny: a new table. */
	x.um[1].user.active = false;
	x.settings.default_action = WIREGUI__ACTION__ACTION_DROP;
	x.sync.gen = x.sync.end_gen = 7;
	fw_sync_expect_ok(s, 30, &x.sync, "replaced");
	ck_assert_uint_eq(nft->base.commits, 2);
	const struct fw_state *cur;
	char why[256];
	ck_assert_int_eq(fw_table_current(fw, &cur, why, sizeof(why)), 0);
	ck_assert_uint_eq(cur->n_users, 3);
	ck_assert(!cur->settings.default_accept);
	ck_assert(!fw_state_find_user(cur, x.um[1].id)->active);
	ck_assert_uint_eq(fw_state_find_user(cur, x.um[1].id)->n_rules, 2);

	/* A new connection hears of the generation. */
	session_free(s);
	s = session_ready();
	session_free(s);
}
END_TEST

/* What a firewall stream-error case spoils of the fixture. */
static void fw_spoil_user_id(struct fw_fixture *x)
{
	x->um[1].user.id.len = 15;
}

static void fw_spoil_rule_id(struct fw_fixture *x)
{
	x->um[0].rm[1].rule.id.len = 17;
}

static void fw_spoil_no_destination(struct fw_fixture *x)
{
	x->um[1].rm[0].rule.destination = NULL;
}

static void fw_spoil_host_bits(struct fw_fixture *x)
{
	x->um[2].rm[0].dst.prefix = 24;
}

static void fw_spoil_prefix(struct fw_fixture *x)
{
	x->um[2].rm[1].dst.prefix = 33;
}

static void fw_spoil_dst_len(struct fw_fixture *x)
{
	x->um[2].rm[1].dst.address.len = 5;
}

static void fw_spoil_protocol(struct fw_fixture *x)
{
	x->um[0].rm[0].rule.protocol = 7;
}

static void fw_spoil_port_from(struct fw_fixture *x)
{
	x->um[0].rm[0].rule.port_from = 65536;
}

static void fw_spoil_port_to_low(struct fw_fixture *x)
{
	x->um[0].rm[1].rule.port_to = 999;
}

static void fw_spoil_port_to_high(struct fw_fixture *x)
{
	x->um[0].rm[1].rule.port_to = 70000;
}

static void fw_spoil_port_to_alone(struct fw_fixture *x)
{
	x->um[0].rm[0].rule.port_from = 0;
	x->um[0].rm[0].rule.port_to = 80;
}

static void fw_spoil_ports_any(struct fw_fixture *x)
{
	x->um[0].rm[0].rule.protocol = WIREGUI__PROTOCOL__PROTO_ANY;
}

static void fw_spoil_action(struct fw_fixture *x)
{
	x->um[1].rm[1].rule.action = 2;
}

static void fw_spoil_outside_pool(struct fw_fixture *x)
{
	x->um[1].a4[1] = 1; /* 10.1.x.x is outside 10.0.0.0/16 */
}

static void fw_spoil_not_host(struct fw_fixture *x)
{
	x->um[1].cidr[1].prefix = 64;
	memset(x->um[1].a6 + 8, 0, 8);
}

static void fw_spoil_many_addresses(struct fw_fixture *x)
{
	for (size_t j = 0; j <= FW_MAX_ADDRS_PER_USER; j++)
		x->um[1].cidrs[j] = &x->um[1].cidr[0];
	x->um[1].user.n_addresses = FW_MAX_ADDRS_PER_USER + 1;
}

static void fw_spoil_many_rules(struct fw_fixture *x)
{
	for (size_t k = 0; k <= FW_MAX_RULES_PER_USER; k++)
		x->um[1].rules[k] = &x->um[1].rm[0].rule;
	x->um[1].user.n_rules = FW_MAX_RULES_PER_USER + 1;
}

static void fw_spoil_global_rule(struct fw_fixture *x)
{
	x->gm[0].dst.prefix = 33;
}

static void fw_spoil_user_twice(struct fw_fixture *x)
{
	x->um[2].id[1] = 1;
}

static void fw_spoil_address_shared(struct fw_fixture *x)
{
	x->um[2].a4[3] = 1;
}

static void fw_spoil_address_twice(struct fw_fixture *x)
{
	x->um[1].cidrs[1] = &x->um[1].cidr[0];
}

static void fw_spoil_rule_shared(struct fw_fixture *x)
{
	x->um[2].rm[0].id[1] = 1;
}

static void fw_spoil_rule_global(struct fw_fixture *x)
{
	x->gm[0].id[1] = 3;
	x->gm[0].id[2] = 1;
}

static void fw_spoil_total_users_high(struct fw_fixture *x)
{
	x->sync.total_users = 4;
}

static void fw_spoil_total_users_low(struct fw_fixture *x)
{
	x->sync.total_users = 2;
}

static void fw_spoil_total_global_high(struct fw_fixture *x)
{
	x->sync.total_global = 2;
}

static void fw_spoil_total_global_low(struct fw_fixture *x)
{
	x->sync.total_global = 0;
}

static void fw_spoil_max_users(struct fw_fixture *x)
{
	x->sync.total_users = 101;
}

static void fw_spoil_max_global(struct fw_fixture *x)
{
	x->sync.total_global = FW_MAX_GLOBAL_RULES + 1;
}

static void fw_spoil_max_rules(struct fw_fixture *x)
{
	(void)x;
	conf.max_rules = 6; /* the three users' rules fit, the global one not */
}

static void fw_spoil_generation(struct fw_fixture *x)
{
	x->sync.end_gen = 8;
}

static void fw_spoil_generation_zero(struct fw_fixture *x)
{
	x->sync.gen = x->sync.end_gen = 0;
}

static void fw_spoil_no_settings(struct fw_fixture *x)
{
	x->sync.settings = NULL;
}

static void fw_spoil_settings(struct fw_fixture *x)
{
	x->settings.default_action = 9;
}

static const struct fw_stream_error {
	const char *name;
	void (*spoil)(struct fw_fixture *x);
	Wiregui__ErrorCode code;
	const char *field;
	int first_bad; /* 0 Begin, 1 users' batch, 2 global rules' batch, 3 End */
} fw_stream_errors[] = {
#define INVALID WIREGUI__ERROR_CODE__INVALID_FIELD
#define LIMIT WIREGUI__ERROR_CODE__LIMIT
	{"user id length", fw_spoil_user_id, INVALID, "users[1].id", 1},
	{"rule id length", fw_spoil_rule_id, INVALID, "users[0].rules[1].id", 1},
	{"no destination", fw_spoil_no_destination, INVALID, "users[1].rules[0].destination", 1},
	{"destination host bits", fw_spoil_host_bits, INVALID, "users[2].rules[0].destination", 1},
	{"destination prefix", fw_spoil_prefix, INVALID, "users[2].rules[1].destination", 1},
	{"destination length", fw_spoil_dst_len, INVALID, "users[2].rules[1].destination", 1},
	{"protocol", fw_spoil_protocol, INVALID, "users[0].rules[0].protocol", 1},
	{"port_from", fw_spoil_port_from, INVALID, "users[0].rules[0].port_from", 1},
	{"port_to below", fw_spoil_port_to_low, INVALID, "users[0].rules[1].port_to", 1},
	{"port_to above", fw_spoil_port_to_high, INVALID, "users[0].rules[1].port_to", 1},
	{"port_to without port_from", fw_spoil_port_to_alone, INVALID,
	 "users[0].rules[0].port_from", 1},
	{"ports without protocol", fw_spoil_ports_any, INVALID, "users[0].rules[0].port_from", 1},
	{"action", fw_spoil_action, INVALID, "users[1].rules[1].action", 1},
	{"address outside pool", fw_spoil_outside_pool, WIREGUI__ERROR_CODE__NOT_ALLOWED,
	 "users[1].addresses[0]", 1},
	{"address not a host", fw_spoil_not_host, INVALID, "users[1].addresses[1]", 1},
	{"too many addresses", fw_spoil_many_addresses, LIMIT, "users[1].addresses", 1},
	{"too many rules", fw_spoil_many_rules, LIMIT, "users[1].rules", 1},
	{"global rule", fw_spoil_global_rule, INVALID, "global_rules[0].destination", 2},
	{"user id twice", fw_spoil_user_twice, INVALID, "users[2].id", 3},
	{"address on two users", fw_spoil_address_shared, INVALID, "users[2].addresses[0]", 3},
	{"address twice on a user", fw_spoil_address_twice, INVALID, "users[1].addresses[1]", 3},
	{"rule id on two users", fw_spoil_rule_shared, INVALID, "users[2].rules[0].id", 3},
	{"rule id of a user and global", fw_spoil_rule_global, INVALID, "global_rules[0].id", 3},
	{"total_users above batches", fw_spoil_total_users_high, INVALID, "total_users", 3},
	{"batches above total_users", fw_spoil_total_users_low, LIMIT, "users", 1},
	{"total_global_rules above batches", fw_spoil_total_global_high, INVALID,
	 "total_global_rules", 3},
	{"batches above total_global_rules", fw_spoil_total_global_low, LIMIT, "global_rules", 2},
	{"above max_users", fw_spoil_max_users, LIMIT, "total_users", 0},
	{"above the global rules limit", fw_spoil_max_global, LIMIT, "total_global_rules", 0},
	{"above max_rules", fw_spoil_max_rules, LIMIT, "global_rules[0]", 2},
	{"generation", fw_spoil_generation, INVALID, "generation", 3},
	{"generation 0", fw_spoil_generation_zero, INVALID, "generation", 0},
	{"no settings", fw_spoil_no_settings, INVALID, "settings", 0},
	{"default action", fw_spoil_settings, INVALID, "settings.default_action", 0},
#undef INVALID
#undef LIMIT
};

START_TEST(test_fw_stream_error)
{
	const struct fw_stream_error *e = &fw_stream_errors[_i];
	struct session *s = session_ready();
	struct fw_fixture x;
	fw_fixture_init(&x, 7);
	e->spoil(&x);

	struct frames f = {0};
	frames_add_fw_sync(&f, 10, &x.sync);
	session_feed(s, &f);
	for (int i = 0; i < 4; i++) {
		if (i < e->first_bad)
			expect_ok(s, 10 + (uint64_t)i);
		else
			expect_result(s, 10 + (uint64_t)i, e->code, e->field);
	}
	expect_no_output(s);
	ck_assert_msg(nft->base.commits == 0 && fw_table_generation(fw) == 0,
		      "%s: something was applied", e->name);

	/* The connection goes on: a good sync after it works. */
	conf.max_rules = 1000;
	fw_fixture_init(&x, 8);
	fw_sync_expect_ok(s, 20, &x.sync, "replaced");
	ck_assert_uint_eq(nft->base.commits, 1);
	session_free(s);
}
END_TEST

/* A stream of one kind admits no request of another until its End. */
START_TEST(test_fw_stream_out_of_state)
{
	static const uint16_t intruders[] = {
		WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH,
		WIREGUI__MSG_TYPE__MSG_FIREWALL_PATCH,
		WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BEGIN,
	};
	struct session *s = session_ready();
	struct frames f = {0};
	Wiregui__FirewallSettings settings = WIREGUI__FIREWALL_SETTINGS__INIT;
	Wiregui__FirewallSyncBegin begin = WIREGUI__FIREWALL_SYNC_BEGIN__INIT;
	begin.request_id = 2;
	begin.generation = 1;
	begin.settings = &settings;
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BEGIN, &begin.base);
	Wiregui__Ping ping = WIREGUI__PING__INIT;
	ping.request_id = 3;
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_PING, &ping.base);
	frames_add_raw(&f, &(struct frame_header){2, intruders[_i], 1, 0}, batch_id_4, 2);
	ck_assert_int_eq(session_input(s, f.buf, f.len), -EPROTO);
	expect_ok(s, 2);
	expect_ok(s, 3);
	expect_result(s, 0, WIREGUI__ERROR_CODE__OUT_OF_STATE, "");
	expect_no_output(s);
	ck_assert_uint_eq(nft->base.commits, 0);
	free(f.buf);
	session_free(s);
}
END_TEST

START_TEST(test_fw_kernel_refusal)
{
	struct session *s = session_ready();
	struct fw_fixture x;
	fw_fixture_init(&x, 3);
	nft->fail_commit = -EINVAL;
	struct frames f = {0};
	frames_add_fw_sync(&f, 10, &x.sync);
	Wiregui__Ping ping = WIREGUI__PING__INIT;
	ping.request_id = 14;
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_PING, &ping.base);
	session_feed(s, &f);
	expect_ok(s, 10);
	expect_ok(s, 11);
	expect_ok(s, 12);
	expect_result(s, 13, WIREGUI__ERROR_CODE__KERNEL, "");
	expect_ok(s, 14); /* the connection stays open */
	ck_assert_uint_eq(fw_table_generation(fw), 0);

	/* A dump that fails is the kernel's failure too. */
	nft->fail_commit = 0;
	nft->fail_dump = -EIO;
	frames_add_fw_sync(&f, 20, &x.sync);
	session_feed(s, &f);
	expect_ok(s, 20);
	expect_ok(s, 21);
	expect_ok(s, 22);
	expect_result(s, 23, WIREGUI__ERROR_CODE__KERNEL, "");
	ck_assert_uint_eq(nft->base.commits, 0);
	session_free(s);
}
END_TEST

/* A FirewallPatch in the making: users and global rules to upsert, ids to remove. */
struct fw_patch_msg {
	Wiregui__FirewallPatch patch;
	Wiregui__FirewallUser *users[4];
	Wiregui__FirewallRule *globals[4];
	ProtobufCBinaryData rm_users[4], rm_rules[4];
};

static void fw_patch_init(struct fw_patch_msg *p)
{
	wiregui__firewall_patch__init(&p->patch);
	p->patch.upsert_users = p->users;
	p->patch.upsert_global_rules = p->globals;
	p->patch.remove_users = p->rm_users;
	p->patch.remove_global_rules = p->rm_rules;
}

static void fw_patch_upsert(struct fw_patch_msg *p, struct fw_user_msg *u)
{
	p->users[p->patch.n_upsert_users++] = &u->user;
}

static void fw_patch_remove(struct fw_patch_msg *p, uint8_t *id)
{
	p->rm_users[p->patch.n_remove_users++] = (ProtobufCBinaryData){FW_ID_LEN, id};
}

/* Send p as request id; expect code (OK: any message) naming field. */
static void fw_patch_expect(struct session *s, struct fw_patch_msg *p, uint64_t id,
			    Wiregui__ErrorCode code, const char *field)
{
	struct frames f = {0};
	p->patch.request_id = id;
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_FIREWALL_PATCH, &p->patch.base);
	session_feed(s, &f);
	if (code == WIREGUI__ERROR_CODE__OK)
		expect_ok(s, id);
	else
		expect_result(s, id, code, field);
	expect_no_output(s);
}

START_TEST(test_fw_patch_before_sync)
{
	struct session *s = session_ready();
	struct fw_user_msg u;
	struct fw_patch_msg p;
	fw_user_msg_init(&u, 4);
	fw_patch_init(&p);
	fw_patch_upsert(&p, &u);
	fw_patch_expect(s, &p, 2, WIREGUI__ERROR_CODE__OUT_OF_STATE, "");
	ck_assert_uint_eq(nft->base.commits, 0);
	/* The connection goes on. */
	fw_patch_expect(s, &p, 3, WIREGUI__ERROR_CODE__OUT_OF_STATE, "");
	session_free(s);
}
END_TEST

START_TEST(test_fw_patch)
{
	struct session *s = session_ready();
	struct fw_fixture x;
	fw_fixture_init(&x, 1);
	fw_sync_expect_ok(s, 10, &x.sync, "replaced");

	/* User 4 joins: one transaction. */
	struct fw_user_msg u4, u5;
	struct fw_patch_msg p;
	fw_user_msg_init(&u4, 4);
	fw_patch_init(&p);
	fw_patch_upsert(&p, &u4);
	fw_patch_expect(s, &p, 20, WIREGUI__ERROR_CODE__OK, "");
	ck_assert_uint_eq(nft->base.commits, 2);

	/* User 5 may not take user 4's address, nor one of its rule ids. */
	fw_user_msg_init(&u5, 5);
	u5.a4[3] = 4;
	fw_patch_init(&p);
	fw_patch_upsert(&p, &u5);
	fw_patch_expect(s, &p, 21, WIREGUI__ERROR_CODE__INVALID_FIELD,
			"upsert_users[0].addresses[0]");
	fw_user_msg_init(&u5, 5);
	u5.rm[1].id[1] = 4;
	fw_patch_expect(s, &p, 22, WIREGUI__ERROR_CODE__INVALID_FIELD,
			"upsert_users[0].rules[1].id");
	/* Nor a global rule's id. */
	fw_user_msg_init(&u5, 5);
	memcpy(u5.rm[0].id, x.gm[0].id, FW_ID_LEN);
	fw_patch_expect(s, &p, 23, WIREGUI__ERROR_CODE__INVALID_FIELD,
			"upsert_users[0].rules[0].id");
	ck_assert_uint_eq(nft->base.commits, 2);

	/* ...but it may when user 4 goes in the same patch... */
	fw_user_msg_init(&u5, 5);
	u5.a4[3] = 4;
	u5.rm[1].id[1] = 4;
	fw_patch_remove(&p, u4.id);
	fw_patch_expect(s, &p, 24, WIREGUI__ERROR_CODE__OK, "");
	ck_assert_uint_eq(nft->base.commits, 3);
	/* ...and they move back from user 5 when it is upserted without them. */
	fw_user_msg_init(&u4, 4);
	fw_user_msg_init(&u5, 5);
	u5.user.n_rules = 0;
	fw_patch_init(&p);
	fw_patch_upsert(&p, &u4);
	fw_patch_upsert(&p, &u5);
	fw_patch_expect(s, &p, 25, WIREGUI__ERROR_CODE__OK, "");
	ck_assert_uint_eq(nft->base.commits, 4);
	const struct fw_state *cur;
	char why[256];
	ck_assert_int_eq(fw_table_current(fw, &cur, why, sizeof(why)), 0);
	ck_assert_uint_eq(cur->n_users, 5);
	ck_assert_uint_eq(fw_state_find_user(cur, u4.id)->n_rules, 2);
	ck_assert_uint_eq(fw_state_find_user(cur, u5.id)->n_rules, 0);
	session_free(s);
}
END_TEST

/* A patch's own errors, each naming its field; nothing is written. */
START_TEST(test_fw_patch_errors)
{
	struct session *s = session_ready();
	struct fw_fixture x;
	fw_fixture_init(&x, 1);
	fw_sync_expect_ok(s, 10, &x.sync, "replaced");
	struct fw_user_msg u4, u5;
	struct fw_rule_msg g;
	struct fw_patch_msg p;
	Wiregui__FirewallSettings settings = WIREGUI__FIREWALL_SETTINGS__INIT;
	fw_user_msg_init(&u4, 4);
	fw_user_msg_init(&u5, 5);

	/* Upserted and removed: which wins is unclear. */
	fw_patch_init(&p);
	fw_patch_upsert(&p, &u4);
	fw_patch_remove(&p, u4.id);
	fw_patch_expect(s, &p, 20, WIREGUI__ERROR_CODE__INVALID_FIELD, "remove_users[0]");
	/* Removed twice; an id of 3 bytes. */
	fw_patch_init(&p);
	fw_patch_remove(&p, x.um[0].id);
	fw_patch_remove(&p, x.um[0].id);
	fw_patch_expect(s, &p, 21, WIREGUI__ERROR_CODE__INVALID_FIELD, "remove_users[1]");
	p.rm_users[1].len = 3;
	fw_patch_expect(s, &p, 22, WIREGUI__ERROR_CODE__INVALID_FIELD, "remove_users[1]");
	/* Two upserted users sharing an address. */
	u5.a4[3] = 4;
	fw_patch_init(&p);
	fw_patch_upsert(&p, &u4);
	fw_patch_upsert(&p, &u5);
	fw_patch_expect(s, &p, 23, WIREGUI__ERROR_CODE__INVALID_FIELD,
			"upsert_users[1].addresses[0]");
	/* A bad rule of an upserted user, a bad global rule. */
	fw_user_msg_init(&u5, 5);
	u5.rm[1].rule.port_to = 999;
	fw_patch_expect(s, &p, 24, WIREGUI__ERROR_CODE__INVALID_FIELD,
			"upsert_users[1].rules[1].port_to");
	fw_rule_msg_init(&g, 0, 3);
	g.rule.action = 3;
	fw_patch_init(&p);
	p.globals[p.patch.n_upsert_global_rules++] = &g.rule;
	fw_patch_expect(s, &p, 25, WIREGUI__ERROR_CODE__INVALID_FIELD,
			"upsert_global_rules[0].action");
	/* Removing a global rule and upserting it again. */
	fw_rule_msg_init(&g, 0, 2);
	p.rm_rules[p.patch.n_remove_global_rules++] = g.rule.id;
	fw_patch_expect(s, &p, 26, WIREGUI__ERROR_CODE__INVALID_FIELD, "remove_global_rules[0]");
	/* Settings. */
	settings.default_action = 5;
	fw_patch_init(&p);
	p.patch.settings = &settings;
	fw_patch_expect(s, &p, 27, WIREGUI__ERROR_CODE__INVALID_FIELD, "settings.default_action");
	/* An address outside the pools. */
	fw_user_msg_init(&u5, 5);
	u5.a6[0] = 0xfe;
	fw_patch_init(&p);
	fw_patch_upsert(&p, &u5);
	fw_patch_expect(s, &p, 28, WIREGUI__ERROR_CODE__NOT_ALLOWED,
			"upsert_users[0].addresses[1]");
	/* Beyond max_users: the patch would make 4 users of 3. */
	conf.max_users = 3;
	fw_user_msg_init(&u5, 5);
	fw_patch_expect(s, &p, 29, WIREGUI__ERROR_CODE__LIMIT, "upsert_users");
	/* Beyond max_rules: 7 rules and 2 more. */
	conf.max_users = 100;
	conf.max_rules = 8;
	fw_patch_expect(s, &p, 30, WIREGUI__ERROR_CODE__LIMIT, "upsert_users");
	ck_assert_uint_eq(nft->base.commits, 1);

	/* Replacing user 1 keeps the count: within max_rules. */
	fw_patch_init(&p);
	fw_patch_upsert(&p, &x.um[0]);
	settings.default_action = WIREGUI__ACTION__ACTION_DROP;
	p.patch.settings = &settings;
	fw_patch_expect(s, &p, 31, WIREGUI__ERROR_CODE__OK, "");
	ck_assert_uint_eq(nft->base.commits, 2);
	session_free(s);
}
END_TEST

START_TEST(test_fw_patch_kernel_refusal)
{
	struct session *s = session_ready();
	struct fw_fixture x;
	fw_fixture_init(&x, 1);
	fw_sync_expect_ok(s, 10, &x.sync, "replaced");
	struct fw_user_msg u4;
	struct fw_patch_msg p;
	fw_user_msg_init(&u4, 4);
	fw_patch_init(&p);
	fw_patch_upsert(&p, &u4);
	nft->fail_commit = -ENOENT;
	fw_patch_expect(s, &p, 20, WIREGUI__ERROR_CODE__KERNEL, "");
	/* Memory was dropped: the next patch reads the table back, and works. */
	nft->fail_commit = 0;
	fw_patch_expect(s, &p, 21, WIREGUI__ERROR_CODE__OK, "");
	ck_assert_uint_eq(nft->base.commits, 2);
	session_free(s);
}
END_TEST

/* The firewall limits come from [firewall]; HelloReply says them. */
START_TEST(test_fw_limits_from_config)
{
	static const struct {
		const char *text;
		int ok;
		unsigned long max_users, max_rules;
	} cases[] = {
		{"", 1, 100000, 200000},
		{"[firewall]\nmax_users = 7\nmax_rules = 9\n", 1, 7, 9},
		{"[firewall]\nmax_users = 1000001\n", 0, 0, 0},
		{"[firewall]\nmax_users = 0\n", 0, 0, 0},
		{"[firewall]\nmax_rules = 2000001\n", 0, 0, 0},
	};
	char path[] = "/tmp/wiregui-test-agent-conf.XXXXXX", err[256];
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int fd = mkstemp(path);
		ck_assert_int_ge(fd, 0);
		FILE *f = fdopen(fd, "w");
		fprintf(f, "[agent]\nfrontend_user = 0\n%s", cases[i].text);
		fclose(f);
		struct agent_conf loaded;
		int r = agent_conf_load(path, &loaded, err, sizeof(err));
		unlink(path);
		strcpy(path + strlen(path) - 6, "XXXXXX");
		ck_assert_msg((r == 0) == cases[i].ok, "case %zu: %d %s", i, r, err);
		if (r < 0)
			continue;
		ck_assert_uint_eq(loaded.max_users, cases[i].max_users);
		ck_assert_uint_eq(loaded.max_rules, cases[i].max_rules);
		struct session *s = session_new(&loaded, wg, fw);
		struct frames fr = {0};
		frames_add_hello(&fr, 1);
		session_feed(s, &fr);
		uint16_t type;
		Wiregui__HelloReply *h = (Wiregui__HelloReply *)reply_pop(s, &type);
		ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_HELLO_REPLY);
		ck_assert_uint_eq(h->max_users, cases[i].max_users);
		ck_assert_uint_eq(h->max_rules, cases[i].max_rules);
		ck_assert_str_eq(h->nft_table, "wiregui");
		protobuf_c_message_free_unpacked(&h->base, NULL);
		session_free(s);
		agent_conf_free(&loaded);
	}
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("session");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hello);
	tcase_add_test(tc, test_byte_at_a_time);
	tcase_add_test(tc, test_mid_frame);
	tcase_add_loop_test(tc, test_violation, 0, (int)ARRAY_LEN(violations));
	tcase_add_test(tc, test_sync_reconciles);
	tcase_add_loop_test(tc, test_stream_error, 0, (int)ARRAY_LEN(stream_errors));
	tcase_add_test(tc, test_ping_inside_stream);
	tcase_add_test(tc, test_kernel_refusal);
	tcase_add_test(tc, test_patch);
	tcase_add_test(tc, test_stats_in_pieces);
	tcase_add_test(tc, test_interface_set);
	tcase_add_test(tc, test_output_backlog);
	tcase_add_test(tc, test_patch_max_peers);
	tcase_add_test(tc, test_fw_sync);
	tcase_add_loop_test(tc, test_fw_stream_error, 0, (int)ARRAY_LEN(fw_stream_errors));
	tcase_add_loop_test(tc, test_fw_stream_out_of_state, 0, 3);
	tcase_add_test(tc, test_fw_kernel_refusal);
	tcase_add_test(tc, test_fw_patch_before_sync);
	tcase_add_test(tc, test_fw_patch);
	tcase_add_test(tc, test_fw_patch_errors);
	tcase_add_test(tc, test_fw_patch_kernel_refusal);
	tcase_add_test(tc, test_fw_limits_from_config);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(session_suite());
}
