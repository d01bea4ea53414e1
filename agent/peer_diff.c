/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "peer_diff.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A peer's allowed IPs as a set: host bits cleared, sorted, no duplicates. */
struct cidr_set {
	struct ip_cidr *v;
	size_t n, cap;
};

struct diff {
	struct wg_device *change;
	struct cidr_set want, have; /* scratch, reused from peer to peer */
};

static const uint8_t zero_key[WG_KEY_LEN];

/* Family, then network, then prefix; bytes beyond the family do not count. */
static int cidr_cmp(const void *a, const void *b)
{
	const struct ip_cidr *x = a, *y = b;

	if (x->addr.family != y->addr.family)
		return x->addr.family < y->addr.family ? -1 : 1;
	int r = memcmp(x->addr.bytes, y->addr.bytes, ip_family_len(x->addr.family));
	if (r != 0)
		return r;
	return (int)x->prefix - (int)y->prefix;
}

static int cidr_set_reserve(struct cidr_set *s, size_t n)
{
	if (n <= s->cap)
		return 0;
	size_t ncap = s->cap * 2 > n ? s->cap * 2 : n;
	void *p = realloc(s->v, ncap * sizeof(*s->v));
	if (p == NULL)
		return -ENOMEM;
	s->v = p;
	s->cap = ncap;
	return 0;
}

/* Below this many, an insertion sort (no calls; none at all when sorted). */
#define CIDR_SMALL 16

static void cidr_sort(struct ip_cidr *v, size_t n)
{
	if (n > CIDR_SMALL) {
		qsort(v, n, sizeof(*v), cidr_cmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct ip_cidr c = v[i];
		size_t j = i;
		for (; j > 0 && cidr_cmp(&v[j - 1], &c) > 0; j--)
			v[j] = v[j - 1];
		v[j] = c;
	}
}

/* Loads a peer's allowed IPs into s as a set: a small sort per peer, never a
 * scan against another peer's list, so a few hundred IPs each stay cheap. */
static int cidr_set_load(struct cidr_set *s, const struct wg_peer *peer)
{
	int r = cidr_set_reserve(s, peer->n_allowed_ips);
	if (r < 0)
		return r;
	for (size_t i = 0; i < peer->n_allowed_ips; i++) {
		s->v[i] = peer->allowed_ips[i];
		ip_cidr_mask(&s->v[i]);
	}
	s->n = peer->n_allowed_ips;
	if (s->n < 2)
		return 0;
	cidr_sort(s->v, s->n);
	size_t out = 1;
	for (size_t i = 1; i < s->n; i++)
		if (cidr_cmp(&s->v[out - 1], &s->v[i]) != 0)
			s->v[out++] = s->v[i];
	s->n = out;
	return 0;
}

static bool cidr_set_equal(const struct cidr_set *a, const struct cidr_set *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (cidr_cmp(&a->v[i], &b->v[i]) != 0)
			return false;
	return true;
}

/* Without its flag a field reads as none: no PSK, keepalive off. */
static const uint8_t *peer_psk(const struct wg_peer *p)
{
	return (p->flags & WG_PEER_HAS_PSK) ? p->psk : zero_key;
}

static uint16_t peer_keepalive(const struct wg_peer *p)
{
	return (p->flags & WG_PEER_HAS_KEEPALIVE) ? p->keepalive : 0;
}

static int key_cmp(const struct wg_peer *a, const struct wg_peer *b)
{
	return memcmp(a->public_key, b->public_key, WG_KEY_LEN);
}

/* Sorted peers: a repeated key sits next to its twin. */
static bool has_duplicate_keys(const struct wg_device *dev)
{
	for (size_t i = 1; i < dev->n_peers; i++)
		if (key_cmp(&dev->peers[i - 1], &dev->peers[i]) == 0)
			return true;
	return false;
}

void peer_diff_device(const struct wg_device *want, const struct wg_device *have,
		      struct wg_device *change)
{
	if (want->flags & WG_DEVICE_HAS_PRIVATE_KEY) {
		const uint8_t *cur = (have->flags & WG_DEVICE_HAS_PRIVATE_KEY) ? have->private_key
									       : zero_key;
		if (sodium_memcmp(want->private_key, cur, WG_KEY_LEN) != 0) {
			change->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
			memcpy(change->private_key, want->private_key, WG_KEY_LEN);
		}
	}
	if (want->flags & WG_DEVICE_HAS_LISTEN_PORT) {
		uint16_t cur = (have->flags & WG_DEVICE_HAS_LISTEN_PORT) ? have->listen_port : 0;
		if (want->listen_port != cur) {
			change->flags |= WG_DEVICE_HAS_LISTEN_PORT;
			change->listen_port = want->listen_port;
		}
	}
}

/* Both sorted: one walk side by side finds the current peers not desired. */
static int emit_removals(const struct wg_device *want, const struct wg_device *have,
			 struct wg_device *change)
{
	size_t j = 0;

	for (size_t i = 0; i < have->n_peers; i++) {
		int c = 1;
		while (j < want->n_peers && (c = key_cmp(&want->peers[j], &have->peers[i])) < 0)
			j++;
		if (c == 0)
			continue;
		struct wg_peer *p = wg_device_add_peer(change);
		if (p == NULL)
			return -ENOMEM;
		memcpy(p->public_key, have->peers[i].public_key, WG_KEY_LEN);
		p->flags = WG_PEER_REMOVE;
	}
	return 0;
}

/* The change's entry for want with the given fields; allowed IPs from set. */
static int emit_peer(struct wg_device *change, const struct wg_peer *want, unsigned flags,
		     const struct cidr_set *set)
{
	struct wg_peer *p = wg_device_add_peer(change);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p->public_key, want->public_key, WG_KEY_LEN);
	p->flags = flags;
	if (flags & WG_PEER_HAS_PSK)
		memcpy(p->psk, peer_psk(want), WG_KEY_LEN);
	if (flags & WG_PEER_HAS_KEEPALIVE)
		p->keepalive = peer_keepalive(want);
	if (!(flags & WG_PEER_REPLACE_ALLOWED_IPS))
		return 0;
	for (size_t i = 0; i < set->n; i++) {
		int r = wg_peer_add_allowed_ip(p, &set->v[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A missing peer (have == NULL) is compared with an empty one, so it carries
 * only the fields that are set, plus its allowed IPs whatever they are. */
static int diff_peer(struct diff *d, const struct wg_peer *want, const struct wg_peer *have)
{
	static const struct wg_peer absent;
	unsigned flags = 0;

	if (have == NULL) {
		flags |= WG_PEER_REPLACE_ALLOWED_IPS;
		have = &absent;
	}
	if (sodium_memcmp(peer_psk(want), peer_psk(have), WG_KEY_LEN) != 0)
		flags |= WG_PEER_HAS_PSK;
	if (peer_keepalive(want) != peer_keepalive(have))
		flags |= WG_PEER_HAS_KEEPALIVE;
	int r = cidr_set_load(&d->want, want);
	if (r < 0)
		return r;
	if (!(flags & WG_PEER_REPLACE_ALLOWED_IPS)) {
		r = cidr_set_load(&d->have, have);
		if (r < 0)
			return r;
		if (!cidr_set_equal(&d->want, &d->have))
			flags |= WG_PEER_REPLACE_ALLOWED_IPS;
	}
	if (flags == 0)
		return 0;
	return emit_peer(d->change, want, flags, &d->want);
}

#define PREFETCH_AHEAD 4

static int diff_all(struct diff *d, const struct wg_device *want, const struct wg_device *have)
{
	peer_diff_device(want, have, d->change);
	int r = emit_removals(want, have, d->change);
	size_t j = 0;
	for (size_t i = 0; r == 0 && i < want->n_peers; i++) {
		int c = 1;
		while (j < have->n_peers && (c = key_cmp(&have->peers[j], &want->peers[i])) < 0)
			j++;
		/* Each list of allowed IPs is an allocation of its own: ask for
		 * the ones a few peers ahead now, not wait for each in turn. */
		if (i + PREFETCH_AHEAD < want->n_peers)
			__builtin_prefetch(want->peers[i + PREFETCH_AHEAD].allowed_ips);
		if (j + PREFETCH_AHEAD < have->n_peers)
			__builtin_prefetch(have->peers[j + PREFETCH_AHEAD].allowed_ips);
		r = diff_peer(d, &want->peers[i], c == 0 ? &have->peers[j] : NULL);
	}
	return r;
}

/* Both inputs sorted, then walked side by side: O(n log n) in peers. A key
 * listed twice has no single meaning, so it is refused (-EINVAL). */
int peer_diff(struct wg_device *desired, struct wg_device *current, struct wg_device **ret_change)
{
	struct diff d = {0};

	wg_device_sort_peers(desired);
	wg_device_sort_peers(current);
	if (has_duplicate_keys(desired) || has_duplicate_keys(current))
		return -EINVAL;
	d.change = wg_device_new(desired->ifname);
	if (d.change == NULL)
		return -ENOMEM;
	int r = diff_all(&d, desired, current);
	free(d.want.v);
	free(d.have.v);
	if (r < 0) {
		wg_device_free(d.change);
		return r;
	}
	*ret_change = d.change;
	return 0;
}
