/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The kernel backend's dump parser over a sequence of netlink messages, as
 * one dump would bring them: the input is cut into messages by nlmsg_len
 * (each copied to a buffer of exactly its size, so ASan sees a read past
 * it) and stops at a length that does not fit. Every message is merged
 * into one device until the first error. The device must obey wg.h's
 * promises after every message; a whole dump must format as a UAPI change
 * and survive wg_nl_build_set() -> wg_nl_dump_merge() unchanged, split
 * into small messages.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_wg.h"
#include "wg_nl.h"
#include "wg_uapi.h"

/* Small enough that a peer with a few allowed IPs is split across messages. */
#define SPLIT_BUFSIZE 320
#define FAMILY_ID 0x20

static void check_peer(const struct wg_peer *p)
{
	const unsigned all = WG_PEER_REMOVE | WG_PEER_REPLACE_ALLOWED_IPS | WG_PEER_HAS_PSK |
			     WG_PEER_HAS_KEEPALIVE;

	if ((p->flags & ~all) != 0)
		__builtin_trap();
	fuzz_check_peer(p);
}

static void check_device(const struct wg_device *dev)
{
	if (memchr(dev->ifname, '\0', sizeof(dev->ifname)) == NULL)
		__builtin_trap();
	fuzz_check_device(dev);
	/* A zero private key in a dump means none. */
	if ((dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) && wg_key_is_zero(dev->private_key))
		__builtin_trap();
	for (size_t i = 0; i < dev->n_peers; i++) {
		check_peer(&dev->peers[i]);
		/* A peer continued in the next message is merged, never repeated. */
		if (i > 0 &&
		    memcmp(dev->peers[i - 1].public_key, dev->peers[i].public_key, WG_KEY_LEN) == 0)
			__builtin_trap();
	}
}

/* What a SET message carries of a peer; a removed peer carries its key alone. */
static bool peer_same(const struct wg_peer *a, const struct wg_peer *b)
{
	if (memcmp(a->public_key, b->public_key, WG_KEY_LEN) != 0)
		return false;
	if (a->flags & WG_PEER_REMOVE)
		return b->flags == WG_PEER_REMOVE;
	if (a->flags != b->flags || a->n_allowed_ips != b->n_allowed_ips)
		return false;
	if ((a->flags & WG_PEER_HAS_PSK) && memcmp(a->psk, b->psk, WG_KEY_LEN) != 0)
		return false;
	if ((a->flags & WG_PEER_HAS_KEEPALIVE) && a->keepalive != b->keepalive)
		return false;
	return fuzz_allowed_same(a, b);
}

static bool device_same(const struct wg_device *a, const struct wg_device *b)
{
	return strcmp(a->ifname, b->ifname) == 0 && fuzz_device_same(a, b, peer_same);
}

static int merge_emitted(void *ctx, const struct nlmsghdr *nlh)
{
	return wg_nl_dump_merge(ctx, nlh);
}

static void check_round_trip(const struct wg_device *dev)
{
	struct wg_device *again = wg_device_new(NULL);

	if (again == NULL)
		return;
	if (wg_nl_build_set(dev, FAMILY_ID, 1, SPLIT_BUFSIZE, merge_emitted, again) != 0)
		__builtin_trap();
	check_device(again);
	if (!device_same(dev, again))
		__builtin_trap();
	wg_device_free(again);
}

static void check_uapi_format(const struct wg_device *dev)
{
	char *text = NULL;
	size_t len = 0;

	if (wg_uapi_format_set(dev, &text, &len) != 0 || strlen(text) != len)
		__builtin_trap();
	sodium_memzero(text, len);
	free(text);
}

enum step {
	STEP_MERGED, /* merged (r says how it went); used is the message's aligned length */
	STEP_SKIPPED,
	STEP_END, /* NLMSG_DONE or NLMSG_ERROR ends the dump, as in nl_recv() */
	STEP_BAD, /* no whole message left */
};

static void check_merge_result(int r, const struct nlmsghdr *hdr)
{
	if (r != 0 && r != -EINTR && r != -EBADMSG && r != -ENOMEM)
		__builtin_trap();
	if ((r == -EINTR) != ((hdr->nlmsg_flags & NLM_F_DUMP_INTR) != 0))
		__builtin_trap();
}

/* One message, in a buffer of its exact size. */
static enum step merge_one(struct wg_device *dev, const uint8_t *data, size_t size, size_t *used,
			   int *ret_merge)
{
	struct nlmsghdr hdr;
	void *msg;

	if (size < sizeof(hdr))
		return STEP_BAD;
	memcpy(&hdr, data, sizeof(hdr));
	if (hdr.nlmsg_len < sizeof(hdr) || hdr.nlmsg_len > size)
		return STEP_BAD;
	*used = NLMSG_ALIGN(hdr.nlmsg_len) < size ? NLMSG_ALIGN(hdr.nlmsg_len) : size;
	if (hdr.nlmsg_type == NLMSG_DONE || hdr.nlmsg_type == NLMSG_ERROR)
		return STEP_END;
	if (hdr.nlmsg_type < NLMSG_MIN_TYPE)
		return STEP_SKIPPED;
	msg = malloc(hdr.nlmsg_len);
	if (msg == NULL)
		return STEP_BAD;
	memcpy(msg, data, hdr.nlmsg_len);
	*ret_merge = wg_nl_dump_merge(dev, msg);
	free(msg);
	check_merge_result(*ret_merge, &hdr);
	return STEP_MERGED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_device *dev = wg_device_new(NULL);
	enum step step = STEP_SKIPPED;
	size_t used = 0;
	int r = 0;

	if (dev == NULL)
		return 0;
	while (r == 0 && step != STEP_END && step != STEP_BAD) {
		step = merge_one(dev, data, size, &used, &r);
		check_device(dev);
		if (step != STEP_BAD) {
			data += used;
			size -= used;
		}
	}
	if (r == 0) {
		check_uapi_format(dev);
		check_round_trip(dev);
	}
	wg_device_free(dev);
	return 0;
}
