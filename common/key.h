/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_KEY_H
#define WIREGUI_KEY_H

/* WireGuard keys: exactly 32 bytes; base64 (44 chars, '=' padded) and hex. */

#include <stdbool.h>
#include <stdint.h>

#define WG_KEY_LEN 32
#define WG_KEY_B64_LEN 44 /* without NUL */
#define WG_KEY_HEX_LEN 64 /* without NUL */

/* Strict: exactly 44 chars of the standard alphabet, one '=' at the end,
 * the unused low bits of the last symbol zero. 0 or -EINVAL; ret untouched on error. */
int wg_key_from_base64(const char *s, uint8_t ret_key[WG_KEY_LEN]);
void wg_key_to_base64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN + 1]);
/* Lower- or upper-case hex, exactly 64 chars. 0 or -EINVAL. */
int wg_key_from_hex(const char *s, uint8_t ret_key[WG_KEY_LEN]);
void wg_key_to_hex(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_HEX_LEN + 1]);
/* Constant time. */
bool wg_key_is_zero(const uint8_t key[WG_KEY_LEN]);

#endif
