/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "key.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Known answers (from an independent base64 implementation). */
static const struct key_vector {
	const char *b64;
	const char *hex;
} key_vectors[] = {
	{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	 "0000000000000000000000000000000000000000000000000000000000000000"},
	{"//////////////////////////////////////////8=",
	 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
	{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"},
	{"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
	 "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"},
	{"gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=",
	 "8000000000000000000000000000000000000000000000000000000000000001"},
	{"ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=",
	 "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"},
	{"PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0=",
	 "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"},
	{"Ln0sA6lQeuJl7PW1NWiFpTOTogKdJBOUmXJloaJa78Y=",
	 "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"},
	{"++++++++++++++++++++++++++++++++++++++++++A=",
	 "fbefbefbefbefbefbefbefbefbefbefbefbefbefbefbefbefbefbefbefbefbe0"},
	{"/7///7///7///7///7///7///7///7///7///7///7w=",
	 "ffbfffffbfffffbfffffbfffffbfffffbfffffbfffffbfffffbfffffbfffffbc"},
};

START_TEST(test_vectors)
{
	const struct key_vector *v = &key_vectors[_i];
	uint8_t from_b64[WG_KEY_LEN], from_hex[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN + 1], hex[WG_KEY_HEX_LEN + 1];

	ck_assert_int_eq(wg_key_from_base64(v->b64, from_b64), 0);
	ck_assert_int_eq(wg_key_from_hex(v->hex, from_hex), 0);
	ck_assert_mem_eq(from_b64, from_hex, WG_KEY_LEN);
	wg_key_to_base64(from_hex, b64);
	ck_assert_str_eq(b64, v->b64);
	wg_key_to_hex(from_b64, hex);
	ck_assert_str_eq(hex, v->hex);
}
END_TEST

#define K43 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" /* valid key without '=' */

static const char *const bad_b64[] = {
	"",
	"=",
	K43,						/* 43 chars, no padding */
	K43 "==",					/* 45 chars */
	K43 "=\n",					/* trailing newline */
	K43 "= ",					/* trailing space */
	" " K43 "=",					/* leading space */
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A", /* 44 symbols, no '=' */
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==", /* '=' too early */
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH===", /* '==' padding */
	"AAECAwQFBgcICQoLDA0ODxAR=hMUFRYXGBkaGxwdHh8=", /* '=' in the middle */
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh",	/* 42 */
	"-_-_AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", /* url-safe alphabet */
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh_=", /* url-safe last symbol */
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd.h8=",
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd h8=",
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\th8=",
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\x80h8=", /* high bit set */
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\xffh8=",
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", /* low bits of '9' set */
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh/=", /* low bits of '/' set */
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhB=",
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhD=",
	"//////////////////////////////////////////9=",
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", /* 64 bytes' worth */
};

START_TEST(test_bad_base64)
{
	uint8_t key[WG_KEY_LEN], untouched[WG_KEY_LEN];

	memset(key, 0xa5, sizeof(key));
	memcpy(untouched, key, sizeof(key));
	ck_assert_msg(wg_key_from_base64(bad_b64[_i], key) == -EINVAL, "'%s' accepted",
		      bad_b64[_i]);
	ck_assert_mem_eq(key, untouched, sizeof(key));
}
END_TEST

/*
 * The last symbol before '=' carries 6 bits of which only the high 4 are
 * key material: of the 64 symbols only the 16 with value % 4 == 0
 * (A E I M Q U Y c g k o s w 0 4 8) are legal there.
 */
START_TEST(test_last_symbol)
{
	char text[WG_KEY_B64_LEN + 1];
	uint8_t key[WG_KEY_LEN];

	memcpy(text, K43 "=", sizeof(text));
	text[WG_KEY_B64_LEN - 2] = b64_alphabet[_i];
	int r = wg_key_from_base64(text, key);
	ck_assert_msg(r == (_i % 4 == 0 ? 0 : -EINVAL), "last symbol '%c': %d", b64_alphabet[_i],
		      r);
	if (r == 0) {
		/* Its high 4 bits are the low nibble of the last byte (0x1f in K43). */
		ck_assert_int_eq(key[WG_KEY_LEN - 1] & 0x0f, _i / 4);
		ck_assert_int_eq(key[WG_KEY_LEN - 1] >> 4, 0x1);
	}
}
END_TEST

/* Every byte value in every symbol position: exactly the alphabet decodes. */
START_TEST(test_every_byte_everywhere)
{
	char text[WG_KEY_B64_LEN + 1];
	uint8_t key[WG_KEY_LEN];
	unsigned pos = (unsigned)_i;

	for (unsigned c = 1; c < 256; c++) {
		memcpy(text, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", sizeof(text));
		text[pos] = (char)c;
		const char *sym = strchr(b64_alphabet, (int)c);
		bool legal = sym != NULL;
		if (pos == WG_KEY_B64_LEN - 1)
			legal = c == '=';
		else if (legal && pos == WG_KEY_B64_LEN - 2)
			legal = (sym - b64_alphabet) % 4 == 0;
		ck_assert_msg(wg_key_from_base64(text, key) == (legal ? 0 : -EINVAL),
			      "byte 0x%02x at %u", c, pos);
	}
}
END_TEST

/* Deterministic pseudo-random keys round trip through both encodings. */
START_TEST(test_round_trip)
{
	uint32_t state = 0x9e3779b9u * (uint32_t)(_i + 1);
	uint8_t key[WG_KEY_LEN], back[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN + 1], hex[WG_KEY_HEX_LEN + 1];

	for (size_t i = 0; i < WG_KEY_LEN; i++) {
		state = state * 1664525u + 1013904223u;
		key[i] = (uint8_t)(state >> 24);
	}
	wg_key_to_base64(key, b64);
	ck_assert_uint_eq(strlen(b64), WG_KEY_B64_LEN);
	ck_assert_int_eq(b64[WG_KEY_B64_LEN - 1], '=');
	ck_assert_int_eq(wg_key_from_base64(b64, back), 0);
	ck_assert_mem_eq(back, key, WG_KEY_LEN);

	wg_key_to_hex(key, hex);
	ck_assert_uint_eq(strlen(hex), WG_KEY_HEX_LEN);
	ck_assert_int_eq(wg_key_from_hex(hex, back), 0);
	ck_assert_mem_eq(back, key, WG_KEY_LEN);
}
END_TEST

#define H64 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static const struct hex_case {
	const char *in;
	bool ok;
} hex_cases[] = {
	{H64, true},
	{"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", true},
	{"000102030405060708090a0B0c0D0e0F101112131415161718191A1b1C1d1E1f", true},
	{"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", true},
	{"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", true},
	{"", false},
	{"0", false},
	{"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1", false}, /* 63 */
	{H64 "0", false},							    /* 65 */
	{H64 "00", false},							    /* 66 */
	{H64 "\n", false},
	{" " H64, false},
	{"0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", false},
	{"g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", false}, /* 65 */
	{"g0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", false},
	{"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", false},
	{"000102030405060708090a0b0c0d0e0f10111213141516171819:a1b1c1d1e1f", false},
	{"000102030405060708090a0b0c0d0e0f10111213141516171819@a1b1c1d1e1f", false},
	{"000102030405060708090a0b0c0d0e0f10111213141516171819`a1b1c1d1e1f", false},
	{"000102030405060708090a0b0c0d0e0f10111213141516171819/a1b1c1d1e1f", false},
	{"000102030405060708090a0b0c0d0e0f10111213141516171819Ga1b1c1d1e1f", false},
	{"000102030405060708090a0b0c0d0e0f10111213141516171819 a1b1c1d1e1f", false},
	{"000102030405060708090a0b0c0d0e0f10111213141516171819\xe1"
	 "a1b1c1d1e1f",
	 false},
	{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", false}, /* base64 */
};

START_TEST(test_hex)
{
	const struct hex_case *c = &hex_cases[_i];
	uint8_t key[WG_KEY_LEN], untouched[WG_KEY_LEN], want[WG_KEY_LEN];
	char hex[WG_KEY_HEX_LEN + 1];

	memset(key, 0x5a, sizeof(key));
	memcpy(untouched, key, sizeof(key));
	int r = wg_key_from_hex(c->in, key);
	if (!c->ok) {
		ck_assert_msg(r == -EINVAL, "'%s' accepted", c->in);
		ck_assert_mem_eq(key, untouched, sizeof(key));
		return;
	}
	ck_assert_msg(r == 0, "'%s' rejected", c->in);
	/* Output is always lower case. */
	wg_key_to_hex(key, hex);
	for (size_t i = 0; i < WG_KEY_HEX_LEN; i++) {
		char lower = c->in[i] >= 'A' && c->in[i] <= 'F' ? (char)(c->in[i] - 'A' + 'a')
								: c->in[i];
		ck_assert_int_eq(hex[i], lower);
	}
	ck_assert_int_eq(wg_key_from_hex(hex, want), 0);
	ck_assert_mem_eq(want, key, WG_KEY_LEN);
}
END_TEST

/* Every byte value at one position of a hex key: exactly [0-9a-fA-F] decodes. */
START_TEST(test_hex_every_byte)
{
	char text[WG_KEY_HEX_LEN + 1];
	uint8_t key[WG_KEY_LEN];

	for (unsigned c = 1; c < 256; c++) {
		memcpy(text, H64, sizeof(text));
		text[_i] = (char)c;
		bool legal = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F');
		ck_assert_msg(wg_key_from_hex(text, key) == (legal ? 0 : -EINVAL),
			      "byte 0x%02x at %d", c, _i);
	}
}
END_TEST

START_TEST(test_is_zero)
{
	uint8_t key[WG_KEY_LEN] = {0};

	ck_assert(wg_key_is_zero(key));
	for (unsigned bit = 0; bit < 8; bit++) {
		key[_i] = (uint8_t)(1u << bit);
		ck_assert_msg(!wg_key_is_zero(key), "byte %d bit %u", _i, bit);
	}
	key[_i] = 0xff;
	ck_assert(!wg_key_is_zero(key));
	key[_i] = 0;
	ck_assert(wg_key_is_zero(key));
}
END_TEST

static Suite *key_suite(void)
{
	Suite *s = suite_create("key");
	TCase *tc = tcase_create("base64");

	tcase_add_loop_test(tc, test_vectors, 0, (int)ARRAY_LEN(key_vectors));
	tcase_add_loop_test(tc, test_bad_base64, 0, (int)ARRAY_LEN(bad_b64));
	tcase_add_loop_test(tc, test_last_symbol, 0, 64);
	tcase_add_loop_test(tc, test_every_byte_everywhere, 0, WG_KEY_B64_LEN);
	tcase_add_loop_test(tc, test_round_trip, 0, 64);
	suite_add_tcase(s, tc);

	tc = tcase_create("hex");
	tcase_add_loop_test(tc, test_hex, 0, (int)ARRAY_LEN(hex_cases));
	tcase_add_loop_test(tc, test_hex_every_byte, 0, WG_KEY_HEX_LEN);
	suite_add_tcase(s, tc);

	tc = tcase_create("zero");
	tcase_add_loop_test(tc, test_is_zero, 0, WG_KEY_LEN);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(key_suite());
}
