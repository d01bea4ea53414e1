/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The userspace backend's reply parsers on arbitrary bytes: the text comes
 * from a wireguard-go process, which the agent does not trust to be sane.
 * A parsed device must obey wg.h's promises, and the change the agent would
 * write from it must format; that request, restated as a get reply
 * ("set=1" dropped, "errno=0" added), must parse back to the same device.
 */
#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_wg.h"
#include "wg_uapi.h"

#define IFNAME "wgfuzz0"
/* wg_uapi.c's UAPI_ERRNO_MAX: errno=N with N above it is malformed. */
#define ERRNO_MAX 4095
#define SET_HEAD "set=1\n"
#define GET_TAIL "errno=0\n\n"

static void check_peer(const struct wg_peer *p)
{
	/* A dump flags PSK and keepalive on every peer, and carries no change flags. */
	if (p->flags != (WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE))
		__builtin_trap();
	fuzz_check_peer(p);
	if (p->last_handshake < 0)
		__builtin_trap();
}

static void check_device(const struct wg_device *dev)
{
	if (strcmp(dev->ifname, IFNAME) != 0)
		__builtin_trap();
	fuzz_check_device(dev);
	/* The public key is derived from the private key, not read. */
	if (dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) {
		uint8_t pub[WG_KEY_LEN];
		if (crypto_scalarmult_curve25519_base(pub, dev->private_key) != 0 ||
		    memcmp(pub, dev->public_key, WG_KEY_LEN) != 0)
			__builtin_trap();
	}
	for (size_t i = 0; i < dev->n_peers; i++)
		check_peer(&dev->peers[i]);
}

/* What a set request carries of a peer: key, PSK, keepalive, allowed IPs in order. */
static bool peer_same(const struct wg_peer *a, const struct wg_peer *b)
{
	return memcmp(a->public_key, b->public_key, WG_KEY_LEN) == 0 &&
	       memcmp(a->psk, b->psk, WG_KEY_LEN) == 0 && a->keepalive == b->keepalive &&
	       a->flags == b->flags && a->n_allowed_ips == b->n_allowed_ips &&
	       fuzz_allowed_same(a, b);
}

/* The set request as a get reply: the keys it writes are all keys a reply may carry. */
static void check_round_trip(const struct wg_device *dev, const char *set, size_t set_len)
{
	const size_t head = sizeof(SET_HEAD) - 1, tail = sizeof(GET_TAIL) - 1;
	struct wg_device *again = NULL;
	size_t len;
	char *get;

	/* "set=1\n", lines, then the empty line; NUL-terminated, no NUL inside. */
	if (set_len < head + 1 || memcmp(set, SET_HEAD, head) != 0 || set[set_len - 2] != '\n' ||
	    set[set_len - 1] != '\n' || strlen(set) != set_len)
		__builtin_trap();
	len = set_len - head - 1 + tail;
	get = malloc(len);
	if (get == NULL)
		return;
	memcpy(get, set + head, set_len - head - 1);
	memcpy(get + set_len - head - 1, GET_TAIL, tail);
	if (wg_uapi_parse_get(get, len, IFNAME, &again) != 0 ||
	    !fuzz_device_same(dev, again, peer_same))
		__builtin_trap();
	sodium_memzero(get, len);
	free(get);
	wg_device_free(again);
}

static void check_format(const struct wg_device *dev)
{
	char *text = NULL;
	size_t len = 0;

	if (wg_uapi_format_set(dev, &text, &len) != 0)
		__builtin_trap();
	check_round_trip(dev, text, len);
	sodium_memzero(text, len);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct wg_device *dev = NULL;
	int r;

	r = wg_uapi_parse_errno(text, size);
	if (r > 0 || r < -ERRNO_MAX)
		__builtin_trap();
	r = wg_uapi_parse_get(text, size, IFNAME, &dev);
	if (r > 0 || r < -ERRNO_MAX || (r < 0) != (dev == NULL))
		__builtin_trap();
	if (r < 0)
		return 0;
	check_device(dev);
	check_format(dev);
	wg_device_free(dev);
	return 0;
}
