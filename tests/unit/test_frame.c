/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "frame.h"

static const struct {
	const char *name;
	uint8_t bytes[FRAME_HEADER_LEN];
	Wiregui__ErrorCode code;
	uint32_t length;
	uint16_t type;
} header_cases[] = {
	{"empty hello", {0, 0, 0, 0, 0, 1, 1, 0}, WIREGUI__ERROR_CODE__OK, 0, 1},
	{"max length", {0, 0x10, 0, 0, 0, 5, 1, 0}, WIREGUI__ERROR_CODE__OK, FRAME_MAX_PAYLOAD, 5},
	{"max+1",
	 {0, 0x10, 0, 1, 0, 5, 1, 0},
	 WIREGUI__ERROR_CODE__BAD_FRAME,
	 FRAME_MAX_PAYLOAD + 1,
	 5},
	{"4 GiB",
	 {0xff, 0xff, 0xff, 0xff, 0, 1, 1, 0},
	 WIREGUI__ERROR_CODE__BAD_FRAME,
	 0xffffffffu,
	 1},
	{"version 0", {0, 0, 0, 4, 0, 1, 0, 0}, WIREGUI__ERROR_CODE__VERSION, 4, 1},
	{"version 2", {0, 0, 0, 4, 0, 1, 2, 0}, WIREGUI__ERROR_CODE__VERSION, 4, 1},
	{"flags set", {0, 0, 0, 4, 0, 1, 1, 0x80}, WIREGUI__ERROR_CODE__BAD_FRAME, 4, 1},
	{"unknown type is the caller's",
	 {0, 0, 1, 0, 0xff, 0xff, 1, 0},
	 WIREGUI__ERROR_CODE__OK,
	 256,
	 0xffff},
	{"ascii garbage",
	 {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'},
	 WIREGUI__ERROR_CODE__VERSION,
	 0x47455420,
	 0x2f20},
};

START_TEST(test_header_decode)
{
	struct frame_header h;
	Wiregui__ErrorCode code = frame_header_decode(header_cases[_i].bytes, &h);
	ck_assert_msg(code == header_cases[_i].code, "%s: code %d", header_cases[_i].name, code);
	ck_assert_uint_eq(h.length, header_cases[_i].length);
	ck_assert_uint_eq(h.type, header_cases[_i].type);
}
END_TEST

START_TEST(test_header_round_trip)
{
	struct frame_header in = {.length = 0x01020304, .type = 0xa0b, .version = 1}, out;
	uint8_t buf[FRAME_HEADER_LEN];
	frame_header_encode(&in, buf);
	static const uint8_t want[] = {1, 2, 3, 4, 0x0a, 0x0b, 1, 0};
	ck_assert_mem_eq(buf, want, sizeof(want));
	frame_header_decode(buf, &out);
	ck_assert_uint_eq(out.length, in.length);
	ck_assert_uint_eq(out.type, in.type);
}
END_TEST

START_TEST(test_every_type_named)
{
	for (uint16_t t = 1; t <= WIREGUI__MSG_TYPE__MSG_PING; t++) {
		ck_assert_ptr_nonnull(frame_descriptor(t));
		ck_assert_str_ne(frame_type_name(t), "unknown");
	}
	ck_assert_ptr_null(frame_descriptor(0));
	ck_assert_ptr_null(frame_descriptor(WIREGUI__MSG_TYPE__MSG_PING + 1));
	ck_assert_ptr_null(frame_descriptor(0xffff));
	ck_assert_str_eq(frame_type_name(0xffff), "unknown");
}
END_TEST

START_TEST(test_encode_decode_hello)
{
	Wiregui__Hello hello = WIREGUI__HELLO__INIT;
	hello.request_id = 42;
	hello.protocol_version = FRAME_VERSION;
	hello.client = (char *)"test";
	uint8_t *buf;
	size_t len;
	ck_assert_int_eq(frame_encode(WIREGUI__MSG_TYPE__MSG_HELLO, &hello.base, &buf, &len), 0);

	struct frame_header h;
	ck_assert_int_eq(frame_header_decode(buf, &h), WIREGUI__ERROR_CODE__OK);
	ck_assert_uint_eq(h.type, WIREGUI__MSG_TYPE__MSG_HELLO);
	ck_assert_uint_eq(h.length + FRAME_HEADER_LEN, len);

	ProtobufCMessage *msg;
	ck_assert_int_eq(frame_decode(h.type, buf + FRAME_HEADER_LEN, h.length, &msg),
			 WIREGUI__ERROR_CODE__OK);
	Wiregui__Hello *got = (Wiregui__Hello *)msg;
	ck_assert_uint_eq(got->request_id, 42);
	ck_assert_str_eq(got->client, "test");
	protobuf_c_message_free_unpacked(msg, NULL);
	free(buf);
}
END_TEST

START_TEST(test_encode_type_mismatch)
{
	Wiregui__Hello hello = WIREGUI__HELLO__INIT;
	uint8_t *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(frame_encode(WIREGUI__MSG_TYPE__MSG_RESULT, &hello.base, &buf, &len),
			 -EINVAL);
	ck_assert_int_eq(frame_encode(999, &hello.base, &buf, &len), -EINVAL);
	ck_assert_ptr_null(buf);
}
END_TEST

START_TEST(test_encode_too_large)
{
	/* 40000 keys of 32 bytes: about 1.3 MB, over the frame limit. */
	enum {
		N = 40000
	};
	static uint8_t key[32];
	ProtobufCBinaryData *keys = calloc(N, sizeof(*keys));
	ck_assert_ptr_nonnull(keys);
	for (size_t i = 0; i < N; i++)
		keys[i] = (ProtobufCBinaryData){.len = sizeof(key), .data = key};
	Wiregui__PeersPatch patch = WIREGUI__PEERS_PATCH__INIT;
	patch.n_remove = N;
	patch.remove = keys;
	uint8_t *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(frame_encode(WIREGUI__MSG_TYPE__MSG_PEERS_PATCH, &patch.base, &buf, &len),
			 -EMSGSIZE);
	ck_assert_ptr_null(buf);
	free(keys);
}
END_TEST

/* Payloads by hand: a field this protocol does not define, at top level and nested. */
static const struct {
	const char *name;
	uint16_t type;
	uint8_t payload[24];
	size_t len;
	Wiregui__ErrorCode code;
} decode_cases[] = {
	{"empty hello", WIREGUI__MSG_TYPE__MSG_HELLO, {0}, 0, WIREGUI__ERROR_CODE__OK},
	{"hello request_id=1",
	 WIREGUI__MSG_TYPE__MSG_HELLO,
	 {0x08, 0x01},
	 2,
	 WIREGUI__ERROR_CODE__OK},
	{"hello + field 99",
	 WIREGUI__MSG_TYPE__MSG_HELLO,
	 {0x08, 0x01, 0x98, 0x06, 0x01},
	 5,
	 WIREGUI__ERROR_CODE__UNKNOWN_FIELD},
	{"truncated varint",
	 WIREGUI__MSG_TYPE__MSG_HELLO,
	 {0x08, 0xff},
	 2,
	 WIREGUI__ERROR_CODE__DECODE},
	{"string length past end",
	 WIREGUI__MSG_TYPE__MSG_HELLO,
	 {0x1a, 0x10, 'a'},
	 3,
	 WIREGUI__ERROR_CODE__DECODE},
	{"wrong wire type",
	 WIREGUI__MSG_TYPE__MSG_HELLO,
	 {0x0d, 1, 2, 3, 4},
	 5,
	 WIREGUI__ERROR_CODE__DECODE},
	/* PeersSyncBatch{peers: [Peer{public_key: "", field 9: 1}]} */
	{"nested unknown field",
	 WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH,
	 {0x12, 0x04, 0x0a, 0x00, 0x48, 0x01},
	 6,
	 WIREGUI__ERROR_CODE__UNKNOWN_FIELD},
	/* PeersSyncBatch{peers: [Peer{allowed_ips: [Cidr{prefix: 1, field 7: 1}]}]} */
	{"doubly nested unknown field",
	 WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH,
	 {0x12, 0x06, 0x1a, 0x04, 0x10, 0x01, 0x38, 0x01},
	 8,
	 WIREGUI__ERROR_CODE__UNKNOWN_FIELD},
	{"nested ok",
	 WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH,
	 {0x12, 0x04, 0x1a, 0x02, 0x10, 0x01},
	 6,
	 WIREGUI__ERROR_CODE__OK},
	/* FirewallSyncBegin{settings: {field 15: 1}} — optional submessage */
	{"unknown field in optional submessage",
	 WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BEGIN,
	 {0x1a, 0x02, 0x78, 0x01},
	 4,
	 WIREGUI__ERROR_CODE__UNKNOWN_FIELD},
	{"unknown type", 77, {0}, 0, WIREGUI__ERROR_CODE__UNKNOWN_TYPE},
};

START_TEST(test_decode_cases)
{
	ProtobufCMessage *msg = NULL;
	Wiregui__ErrorCode code = frame_decode(decode_cases[_i].type, decode_cases[_i].payload,
					       decode_cases[_i].len, &msg);
	ck_assert_msg(code == decode_cases[_i].code, "%s: got %d want %d", decode_cases[_i].name,
		      code, decode_cases[_i].code);
	if (code == WIREGUI__ERROR_CODE__OK)
		protobuf_c_message_free_unpacked(msg, NULL);
	else
		ck_assert_ptr_null(msg);
}
END_TEST

static Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("frame");
	tcase_add_loop_test(tc, test_header_decode, 0, (int)ARRAY_LEN(header_cases));
	tcase_add_test(tc, test_header_round_trip);
	tcase_add_test(tc, test_every_type_named);
	tcase_add_test(tc, test_encode_decode_hello);
	tcase_add_test(tc, test_encode_type_mismatch);
	tcase_add_test(tc, test_encode_too_large);
	tcase_add_loop_test(tc, test_decode_cases, 0, (int)ARRAY_LEN(decode_cases));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(frame_suite());
}
