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

void wg_device_sort_peers(struct wg_device *dev)
{
	if (dev->n_peers > 1)
		qsort(dev->peers, dev->n_peers, sizeof(*dev->peers), peer_key_cmp);
}

struct wg_peer *wg_device_find_peer(const struct wg_device *dev, const uint8_t key[WG_KEY_LEN])
{
	if (dev->n_peers == 0)
		return NULL;
	return bsearch(key, dev->peers, dev->n_peers, sizeof(*dev->peers), peer_key_cmp);
}
