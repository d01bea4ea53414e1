/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "frame.h"
#include "session.h"

static struct agent_conf conf = {
	.socket_path = (char *)"/nonexistent/agent.sock",
	.interface = (char *)"wgtest0",
	.nft_table = (char *)"wiregui_test",
};

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
	struct session *s = session_new(&conf);
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
	struct session *s = session_new(&conf);
	struct frames f = {0};
	frames_add_hello(&f, 9);
	Wiregui__PeersSyncBegin begin = WIREGUI__PEERS_SYNC_BEGIN__INIT;
	begin.request_id = 10;
	frames_add(&f, WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BEGIN, &begin.base);
	for (size_t i = 0; i < f.len; i++)
		ck_assert_int_eq(session_input(s, f.buf + i, 1), 0);
	ck_assert_uint_eq(session_frames_begun(s), 2);
	expect_hello_reply(s, 9);
	expect_result(s, 10, WIREGUI__ERROR_CODE__UNSUPPORTED, "");
	expect_no_output(s);
	free(f.buf);
	session_free(s);
}
END_TEST

START_TEST(test_mid_frame)
{
	struct session *s = session_new(&conf);
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
	struct session *s = session_new(&conf);
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
	struct session *s = session_new(&conf);
	struct frames f = {0};
	frames_add_hello(&f, 1);
	for (uint64_t id = 2; id <= 3; id++) {
		Wiregui__StatsRequest req = WIREGUI__STATS_REQUEST__INIT;
		req.request_id = id;
		frames_add(&f, WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, &req.base);
	}
	ck_assert_int_eq(session_input(s, f.buf, f.len), 0);
	expect_hello_reply(s, 1);
	expect_result(s, 2, WIREGUI__ERROR_CODE__UNSUPPORTED, "");
	expect_result(s, 3, WIREGUI__ERROR_CODE__UNSUPPORTED, "");
	free(f.buf);
	session_free(s);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("session");
	tcase_add_test(tc, test_hello);
	tcase_add_test(tc, test_byte_at_a_time);
	tcase_add_test(tc, test_mid_frame);
	tcase_add_loop_test(tc, test_violation, 0, (int)ARRAY_LEN(violations));
	tcase_add_test(tc, test_unsupported_keeps_connection);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(session_suite());
}
