/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "wg.h"

#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wg_device *wg_device_new(const char *ifname)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));
	if (dev != NULL && ifname != NULL)
		snprintf(dev->ifname, sizeof(dev->ifname), "%s", ifname);
	return dev;
}

void wg_device_free(struct wg_device *dev)
{
	if (dev == NULL)
		return;
	for (size_t i = 0; i < dev->n_peers; i++) {
		sodium_memzero(dev->peers[i].psk, sizeof(dev->peers[i].psk));
		free(dev->peers[i].allowed_ips);
	}
	free(dev->peers);
	sodium_memzero(dev->private_key, sizeof(dev->private_key));
	free(dev);
}

/*
 * Grow *array (of size elements) to hold one more; 0 or -ENOMEM. Not with
 * realloc: peers hold preshared keys, and the old block is wiped first.
 */
static int grow(void **array, size_t size, size_t n, size_t *cap)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 4;
	if (ncap > SIZE_MAX / size)
		return -ENOMEM;
	void *p = malloc(ncap * size);
	if (p == NULL)
		return -ENOMEM;
	if (*array != NULL) {
		memcpy(p, *array, n * size);
		sodium_memzero(*array, n * size);
		free(*array);
	}
	*array = p;
	*cap = ncap;
	return 0;
}

struct wg_peer *wg_device_add_peer(struct wg_device *dev)
{
	if (grow((void **)&dev->peers, sizeof(*dev->peers), dev->n_peers, &dev->cap_peers) < 0)
		return NULL;
	struct wg_peer *p = &dev->peers[dev->n_peers++];
	memset(p, 0, sizeof(*p));
	return p;
}

int wg_peer_add_allowed_ip(struct wg_peer *peer, const struct ip_cidr *cidr)
{
	int r = grow((void **)&peer->allowed_ips, sizeof(*peer->allowed_ips), peer->n_allowed_ips,
		     &peer->cap_allowed_ips);
	if (r < 0)
		return r;
	peer->allowed_ips[peer->n_allowed_ips++] = *cidr;
	return 0;
}

bool wg_device_is_empty(const struct wg_device *dev)
{
	return dev->flags == 0 && dev->n_peers == 0;
}

/* Peers compare by public key, their first member. */
_Static_assert(offsetof(struct wg_peer, public_key) == 0, "public_key first");

static int peer_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, WG_KEY_LEN);
}

static bool keys_sorted(const struct wg_device *dev)
{
	for (size_t i = 1; i < dev->n_peers; i++)
		if (peer_key_cmp(&dev->peers[i - 1], &dev->peers[i]) > 0)
			return false;
	return true;
}

/* A peer's place in the sort: its key's first 8 bytes as a number, then the whole key. */
struct key_rank {
	uint64_t head;
	const struct wg_peer *peer;
};

static int key_rank_cmp(const void *a, const void *b)
{
	const struct key_rank *x = a, *y = b;

	if (x->head != y->head)
		return x->head < y->head ? -1 : 1;
	return peer_key_cmp(x->peer, y->peer);
}

/*
 * A sorted device (a validated request is) is left alone; a dump (a hash
 * map's order) is sorted as small ranks compared mostly as numbers, then
 * moved into a new array: cheaper than qsort moving whole peers. If that
 * cannot be allocated, qsort does it in place.
 */
void wg_device_sort_peers(struct wg_device *dev)
{
	size_t n = dev->n_peers;

	if (keys_sorted(dev))
		return;
	struct key_rank *rank = malloc(n * sizeof(*rank));
	struct wg_peer *peers = malloc(n * sizeof(*peers));
	if (rank == NULL || peers == NULL) {
		free(rank);
		free(peers);
		qsort(dev->peers, n, sizeof(*dev->peers), peer_key_cmp);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t head = 0;
		for (size_t b = 0; b < sizeof(head); b++)
			head = head << 8 | dev->peers[i].public_key[b];
		rank[i] = (struct key_rank){head, &dev->peers[i]};
	}
	qsort(rank, n, sizeof(*rank), key_rank_cmp);
	for (size_t i = 0; i < n; i++)
		peers[i] = *rank[i].peer;
	free(rank);
	sodium_memzero(dev->peers, n * sizeof(*dev->peers)); /* PSKs */
	free(dev->peers);
	dev->peers = peers;
	dev->cap_peers = n;
}

struct wg_peer *wg_device_find_peer(const struct wg_device *dev, const uint8_t key[WG_KEY_LEN])
{
	if (dev->n_peers == 0)
		return NULL;
	return bsearch(key, dev->peers, dev->n_peers, sizeof(*dev->peers), peer_key_cmp);
}
