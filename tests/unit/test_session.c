/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
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

/* Each test gets a fresh interface: 10.0.0.1/16 and fd00::1/64, pools to match. */
static void setup(void)
{
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
}

static void teardown(void)
{
	wg_iface_free(wg);
}

static struct session *session_start(void)
{
	return session_new(&conf, wg);
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

START_TEST(test_unsupported_keeps_connection)
{
	struct session *s = session_start();
	struct frames f = {0};
	frames_add_hello(&f, 1);
	for (uint64_t id = 2; id <= 3; id++) {
		Wiregui__FirewallSyncBegin req = WIREGUI__FIREWALL_SYNC_BEGIN__INIT;
		req.request_id = id;
		frames_add(&f, WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BEGIN, &req.base);
	}
	ck_assert_int_eq(session_input(s, f.buf, f.len), 0);
	expect_hello_reply(s, 1);
	expect_result(s, 2, WIREGUI__ERROR_CODE__UNSUPPORTED, "");
	expect_result(s, 3, WIREGUI__ERROR_CODE__UNSUPPORTED, "");
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

static void expect_ok(struct session *s, uint64_t id)
{
	uint16_t type;
	ProtobufCMessage *msg = reply_pop(s, &type);
	ck_assert_ptr_nonnull(msg);
	ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_RESULT);
	Wiregui__Result *res = (Wiregui__Result *)msg;
	ck_assert_msg(res->code == WIREGUI__ERROR_CODE__OK, "request %llu: code %d %s: %s",
		      (unsigned long long)id, res->code, res->field, res->message);
	ck_assert_uint_eq(res->request_id, id);
	protobuf_c_message_free_unpacked(msg, NULL);
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

static Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("session");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hello);
	tcase_add_test(tc, test_byte_at_a_time);
	tcase_add_test(tc, test_mid_frame);
	tcase_add_loop_test(tc, test_violation, 0, (int)ARRAY_LEN(violations));
	tcase_add_test(tc, test_unsupported_keeps_connection);
	tcase_add_test(tc, test_sync_reconciles);
	tcase_add_loop_test(tc, test_stream_error, 0, (int)ARRAY_LEN(stream_errors));
	tcase_add_test(tc, test_ping_inside_stream);
	tcase_add_test(tc, test_kernel_refusal);
	tcase_add_test(tc, test_patch);
	tcase_add_test(tc, test_stats_in_pieces);
	tcase_add_test(tc, test_interface_set);
	tcase_add_test(tc, test_output_backlog);
	tcase_add_test(tc, test_patch_max_peers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(session_suite());
}
