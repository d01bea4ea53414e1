/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * wg_nlcount: how many WG_CMD_SET_DEVICE messages the kernel backend writes
 * for N peers, without a kernel: the change a full sync plans (peer_diff)
 * against an empty device (cold), against the same peers (no-op) and
 * against a set that differs in 1% of its peers, built by wg_nl_build_set
 * into messages of MNL_SOCKET_BUFFER_SIZE bytes, as the backend sends them.
 *
 *   wg_nlcount N...
 *
 * Peers as agentctl genpeers makes them: a PSK, no keepalive, one IPv4 /32
 * and one IPv6 /128. Prints, per N (1k for 1000, 10k for 10000):
 *   bench: nl_messages_<N> <count> messages        (cold)
 *   bench: nl_bytes_<N> <bytes> bytes              (cold)
 *   bench: nl_peers_per_message_<N> <x> peers
 *   bench: nl_messages_noop_<N> <count> messages
 *   bench: nl_messages_1pct_<N> <count> messages
 */
#include <errno.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "peer_diff.h"
#include "wg.h"
#include "wg_nl.h"

#define FAMILY_ID 0x20	  /* any: the kernel assigns it, the size does not depend on it */
#define MAX_PEERS 60000ul /* distinct IPv4 /32s under 10.<seed>.0.0/16 */

struct count {
	uint64_t messages, bytes;
};

static int count_emit(void *ctx, const struct nlmsghdr *nlh)
{
	struct count *c = ctx;

	if (nlh->nlmsg_len > (size_t)MNL_SOCKET_BUFFER_SIZE)
		return -EMSGSIZE;
	c->messages++;
	c->bytes += nlh->nlmsg_len;
	return 0;
}

/* Deterministic bytes, distinct per (seed, index). */
static void fill_key(uint8_t key[WG_KEY_LEN], uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + i + 1;

	for (size_t k = 0; k < WG_KEY_LEN; k += 8) {
		z += 0x9e3779b97f4a7c15ull;
		uint64_t v = z;
		v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
		v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
		v ^= v >> 31;
		memcpy(key + k, &v, sizeof(v));
	}
}

/* Peer i of set seed: 10.<seed>.x.y/32 and fd00:<seed>::<i>/128. */
static int add_peer(struct wg_device *dev, uint64_t seed, uint64_t i)
{
	struct wg_peer *p = wg_device_add_peer(dev);
	struct ip_cidr v4 = {.addr = {.family = AF_INET}, .prefix = 32};
	struct ip_cidr v6 = {.addr = {.family = AF_INET6}, .prefix = 128};
	uint64_t host = i + 2;
	int r;

	if (p == NULL)
		return -ENOMEM;
	fill_key(p->public_key, seed, 2 * i);
	fill_key(p->psk, seed, 2 * i + 1);
	p->flags = WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE |
		   WG_PEER_REPLACE_ALLOWED_IPS; /* as validate.c */
	v4.addr.bytes[0] = 10;
	v4.addr.bytes[1] = (uint8_t)seed;
	v4.addr.bytes[2] = (uint8_t)(host >> 8);
	v4.addr.bytes[3] = (uint8_t)host;
	v6.addr.bytes[0] = 0xfd;
	v6.addr.bytes[3] = (uint8_t)seed;
	for (size_t k = 0; k < 8; k++)
		v6.addr.bytes[15 - k] = (uint8_t)(host >> (8 * k));
	r = wg_peer_add_allowed_ip(p, &v4);
	return r < 0 ? r : wg_peer_add_allowed_ip(p, &v6);
}

/* Peers [from, to) of set seed, appended. */
static int add_peers(struct wg_device *dev, uint64_t seed, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		int r = add_peer(dev, seed, i);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The desired device of a full sync: keys and port as the agent sets them. */
static struct wg_device *desired_new(void)
{
	struct wg_device *dev = wg_device_new("wg-bench");

	if (dev == NULL)
		return NULL;
	dev->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT;
	fill_key(dev->private_key, 99, 0);
	dev->listen_port = 51820;
	return dev;
}

/* What the kernel would dump after taking desired (no handshakes yet). */
static struct wg_device *current_new(const struct wg_device *desired, uint64_t seed, uint64_t n)
{
	struct wg_device *dev = wg_device_new("wg-bench");

	if (dev == NULL)
		return NULL;
	if (desired != NULL) {
		dev->flags = desired->flags;
		memcpy(dev->private_key, desired->private_key, WG_KEY_LEN);
		dev->listen_port = desired->listen_port;
	}
	if (add_peers(dev, seed, 0, n) < 0) {
		wg_device_free(dev);
		return NULL;
	}
	return dev;
}

/* Messages and bytes for the change desired - current. */
static int count_sync(struct wg_device *desired, struct wg_device *current, struct count *c)
{
	struct wg_device *change = NULL;
	int r = peer_diff(desired, current, &change);

	memset(c, 0, sizeof(*c));
	if (r < 0)
		return r;
	if (!wg_device_is_empty(change))
		r = wg_nl_build_set(change, FAMILY_ID, 1, (size_t)MNL_SOCKET_BUFFER_SIZE,
				    count_emit, c);
	wg_device_free(change);
	return r;
}

static void label(uint64_t n, char *buf, size_t len)
{
	if (n >= 1000 && n % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 "k", n / 1000);
	else
		snprintf(buf, len, "%" PRIu64, n);
}

static int run(uint64_t n)
{
	struct wg_device *desired = desired_new(), *empty = current_new(NULL, 1, 0);
	struct wg_device *same = NULL, *changed = NULL;
	struct count cold, noop, pct;
	uint64_t k = n / 100 > 0 ? n / 100 : 1;
	char name[32];
	int r = -ENOMEM;

	if (desired == NULL || empty == NULL || add_peers(desired, 1, 0, n) < 0)
		goto out;
	same = current_new(desired, 1, n);
	/* 1%: the first k peers of the current set gone, k new ones desired. */
	changed = current_new(desired, 1, n);
	if (same == NULL || changed == NULL)
		goto out;
	r = count_sync(desired, empty, &cold);
	if (r == 0)
		r = count_sync(desired, same, &noop);
	if (r == 0) {
		struct wg_device *d2 = desired_new();
		r = d2 == NULL ? -ENOMEM : add_peers(d2, 1, k, n);
		if (r == 0)
			r = add_peers(d2, 2, 0, k);
		if (r == 0)
			r = count_sync(d2, changed, &pct);
		wg_device_free(d2);
	}
	if (r < 0)
		goto out;
	label(n, name, sizeof(name));
	printf("bench: nl_messages_%s %" PRIu64 " messages\n", name, cold.messages);
	printf("bench: nl_bytes_%s %" PRIu64 " bytes\n", name, cold.bytes);
	printf("bench: nl_peers_per_message_%s %.1f peers\n", name,
	       cold.messages ? (double)n / (double)cold.messages : 0.0);
	printf("bench: nl_messages_noop_%s %" PRIu64 " messages\n", name, noop.messages);
	printf("bench: nl_messages_1pct_%s %" PRIu64 " messages\n", name, pct.messages);
out:
	wg_device_free(desired);
	wg_device_free(empty);
	wg_device_free(same);
	wg_device_free(changed);
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: wg_nlcount N...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		char *end;
		errno = 0;
		unsigned long n = strtoul(argv[i], &end, 10);
		if (errno != 0 || end == argv[i] || *end != '\0' || n == 0 || n > MAX_PEERS) {
			fprintf(stderr, "wg_nlcount: bad peer count '%s' (1..%lu)\n", argv[i],
				MAX_PEERS);
			return 2;
		}
		int r = run(n);
		if (r < 0) {
			fprintf(stderr, "wg_nlcount: %lu peers: %s\n", n, strerror(-r));
			return 1;
		}
	}
	return 0;
}
