/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "key.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

/*
 * Keys are secrets (private keys, PSKs), so decoding and encoding do not
 * branch or index tables on key material: each symbol is mapped with
 * range masks. The range mask of lo <= x <= hi is ((lo - 1 - x) & (x - hi - 1)) >> 8:
 * both terms are negative only inside the range, and an arithmetic shift of a
 * small negative number is -1 (all ones), of a small positive one 0.
 */
static int range_mask(int x, int lo, int hi)
{
	return ((lo - 1 - x) & (x - hi - 1)) >> 8;
}

/* 0..63, or -1 when c is not in the standard alphabet. */
static int b64_value(unsigned char c)
{
	int x = c;
	int v = -1;

	v += range_mask(x, 'A', 'Z') & (x - 'A' + 1);
	v += range_mask(x, 'a', 'z') & (x - 'a' + 27);
	v += range_mask(x, '0', '9') & (x - '0' + 53);
	v += range_mask(x, '+', '+') & 63;
	v += range_mask(x, '/', '/') & 64;
	return v;
}

static char b64_symbol(unsigned v)
{
	int x = (int)(v & 63);
	int c = 'A' + x;

	c += ((25 - x) >> 8) & ('a' - 26 - 'A');
	c += ((51 - x) >> 8) & ('0' - 52 - ('a' - 26));
	c += ((61 - x) >> 8) & ('+' - 62 - ('0' - 52));
	c += ((62 - x) >> 8) & ('/' - 63 - ('+' - 62));
	return (char)c;
}

/* 0..15, or -1. */
static int hex_value(unsigned char c)
{
	int x = c;
	int v = -1;

	v += range_mask(x, '0', '9') & (x - '0' + 1);
	v += range_mask(x, 'a', 'f') & (x - 'a' + 11);
	v += range_mask(x, 'A', 'F') & (x - 'A' + 11);
	return v;
}

static char hex_symbol(unsigned v)
{
	int x = (int)(v & 15);

	return (char)('0' + x + (((9 - x) >> 8) & ('a' - '0' - 10)));
}

/*
 * 32 bytes are ten 3-byte groups (4 symbols each) and a 2-byte tail: three
 * symbols carrying 18 bits, of which the low 2 must be zero, then '='.
 */
/* Hand a decoded key out only when decoding found nothing wrong; wipe the scratch copy. */
static int key_commit(int bad, uint8_t key[WG_KEY_LEN], uint8_t ret_key[WG_KEY_LEN])
{
	int r = bad < 0 ? -EINVAL : 0;
	if (r == 0)
		memcpy(ret_key, key, WG_KEY_LEN);
	explicit_bzero(key, WG_KEY_LEN);
	return r;
}

int wg_key_from_base64(const char *s, uint8_t ret_key[WG_KEY_LEN])
{
	const unsigned char *in = (const unsigned char *)s;
	uint8_t key[WG_KEY_LEN];
	int bad = 0;
	unsigned i;

	if (strnlen(s, WG_KEY_B64_LEN + 1) != WG_KEY_B64_LEN || s[WG_KEY_B64_LEN - 1] != '=')
		return -EINVAL;

	for (i = 0; i < WG_KEY_LEN / 3; i++) {
		int v = 0;
		for (unsigned j = 0; j < 4; j++) {
			int sym = b64_value(in[i * 4 + j]);
			bad |= sym;
			v = (v << 6) | (sym & 63);
		}
		key[i * 3] = (uint8_t)(v >> 16);
		key[i * 3 + 1] = (uint8_t)(v >> 8);
		key[i * 3 + 2] = (uint8_t)v;
	}

	int tail = 0;
	for (unsigned j = 0; j < 3; j++) {
		int sym = b64_value(in[i * 4 + j]);
		bad |= sym;
		tail = (tail << 6) | (sym & 63);
	}
	key[WG_KEY_LEN - 2] = (uint8_t)(tail >> 10);
	key[WG_KEY_LEN - 1] = (uint8_t)(tail >> 2);
	/* Non-zero unused bits would give a second spelling of the same key. */
	bad |= -(tail & 3);

	return key_commit(bad, key, ret_key);
}

void wg_key_to_base64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN + 1])
{
	unsigned i;

	for (i = 0; i < WG_KEY_LEN / 3; i++) {
		unsigned v = (unsigned)key[i * 3] << 16 | (unsigned)key[i * 3 + 1] << 8 |
			     key[i * 3 + 2];
		out[i * 4] = b64_symbol(v >> 18);
		out[i * 4 + 1] = b64_symbol(v >> 12);
		out[i * 4 + 2] = b64_symbol(v >> 6);
		out[i * 4 + 3] = b64_symbol(v);
	}
	unsigned tail = (unsigned)key[WG_KEY_LEN - 2] << 10 | (unsigned)key[WG_KEY_LEN - 1] << 2;
	out[i * 4] = b64_symbol(tail >> 12);
	out[i * 4 + 1] = b64_symbol(tail >> 6);
	out[i * 4 + 2] = b64_symbol(tail);
	out[WG_KEY_B64_LEN - 1] = '=';
	out[WG_KEY_B64_LEN] = '\0';
}

int wg_key_from_hex(const char *s, uint8_t ret_key[WG_KEY_LEN])
{
	const unsigned char *in = (const unsigned char *)s;
	uint8_t key[WG_KEY_LEN];
	int bad = 0;

	if (strnlen(s, WG_KEY_HEX_LEN + 1) != WG_KEY_HEX_LEN)
		return -EINVAL;
	for (unsigned i = 0; i < WG_KEY_LEN; i++) {
		int hi = hex_value(in[i * 2]);
		int lo = hex_value(in[i * 2 + 1]);
		bad |= hi | lo;
		key[i] = (uint8_t)((hi & 15) << 4 | (lo & 15));
	}
	return key_commit(bad, key, ret_key);
}

void wg_key_to_hex(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_HEX_LEN + 1])
{
	for (unsigned i = 0; i < WG_KEY_LEN; i++) {
		out[i * 2] = hex_symbol(key[i] >> 4);
		out[i * 2 + 1] = hex_symbol(key[i]);
	}
	out[WG_KEY_HEX_LEN] = '\0';
}

bool wg_key_is_zero(const uint8_t key[WG_KEY_LEN])
{
	unsigned acc = 0;

	for (size_t i = 0; i < WG_KEY_LEN; i++)
		acc |= key[i];
	/* acc - 1 wraps to all ones only when acc is 0. */
	return ((acc - 1) >> 8) & 1;
}
