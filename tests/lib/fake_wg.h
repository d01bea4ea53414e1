/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_TESTS_FAKE_WG_H
#define WIREGUI_TESTS_FAKE_WG_H

/*
 * An in-memory WireGuard backend for tests without root: get() returns a
 * copy of its device, set() applies a change with the kernel's semantics
 * (remove, create-or-update, PSK and keepalive when flagged, allowed IPs
 * replaced or added; an allowed IP moves from any other peer). It counts
 * the writes, so tests can show that a no-op sync writes nothing.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wg.h"

struct fake_wg {
	struct wg_backend base; /* first: the backend pointer is the fake's */
	struct wg_device *dev;
	int fail_set; /* when non-zero, set() returns it */
};

static inline int fake_wg_copy_peer(struct wg_device *to, const struct wg_peer *p)
{
	struct wg_peer *q = wg_device_add_peer(to);
	if (q == NULL)
		return -ENOMEM;
	struct ip_cidr *ips = q->allowed_ips;
	*q = *p;
	q->allowed_ips = ips;
	q->n_allowed_ips = q->cap_allowed_ips = 0;
	for (size_t i = 0; i < p->n_allowed_ips; i++)
		if (wg_peer_add_allowed_ip(q, &p->allowed_ips[i]) < 0)
			return -ENOMEM;
	return 0;
}

static inline int fake_wg_get(struct wg_backend *b, const char *ifname, struct wg_device **ret)
{
	struct fake_wg *f = (struct fake_wg *)b;
	struct wg_device *d = wg_device_new(ifname);
	if (d == NULL)
		return -ENOMEM;
	d->flags = f->dev->flags;
	memcpy(d->private_key, f->dev->private_key, WG_KEY_LEN);
	memcpy(d->public_key, f->dev->public_key, WG_KEY_LEN);
	d->listen_port = f->dev->listen_port;
	for (size_t i = 0; i < f->dev->n_peers; i++) {
		if (fake_wg_copy_peer(d, &f->dev->peers[i]) < 0) {
			wg_device_free(d);
			return -ENOMEM;
		}
		d->peers[i].flags = WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE;
	}
	*ret = d;
	return 0;
}

static inline struct wg_peer *fake_wg_find(struct wg_device *d, const uint8_t *key)
{
	for (size_t i = 0; i < d->n_peers; i++)
		if (memcmp(d->peers[i].public_key, key, WG_KEY_LEN) == 0)
			return &d->peers[i];
	return NULL;
}

/* An allowed IP belongs to one peer: take it from whoever has it. */
static inline void fake_wg_unclaim(struct wg_device *d, const struct ip_cidr *c)
{
	for (size_t i = 0; i < d->n_peers; i++) {
		struct wg_peer *p = &d->peers[i];
		for (size_t j = 0; j < p->n_allowed_ips; j++)
			if (p->allowed_ips[j].prefix == c->prefix &&
			    ip_addr_equal(&p->allowed_ips[j].addr, &c->addr))
				p->allowed_ips[j--] = p->allowed_ips[--p->n_allowed_ips];
	}
}

static inline int fake_wg_apply_peer(struct wg_device *d, const struct wg_peer *c)
{
	struct wg_peer *p = fake_wg_find(d, c->public_key);
	if (c->flags & WG_PEER_REMOVE) {
		if (p != NULL) {
			free(p->allowed_ips);
			*p = d->peers[--d->n_peers];
		}
		return 0;
	}
	if (p == NULL) {
		p = wg_device_add_peer(d);
		if (p == NULL)
			return -ENOMEM;
		memcpy(p->public_key, c->public_key, WG_KEY_LEN);
	}
	if (c->flags & WG_PEER_HAS_PSK)
		memcpy(p->psk, c->psk, WG_KEY_LEN);
	if (c->flags & WG_PEER_HAS_KEEPALIVE)
		p->keepalive = c->keepalive;
	if (c->flags & WG_PEER_REPLACE_ALLOWED_IPS)
		p->n_allowed_ips = 0;
	for (size_t i = 0; i < c->n_allowed_ips; i++) {
		struct ip_cidr ip = c->allowed_ips[i];
		fake_wg_unclaim(d, &ip);
		p = fake_wg_find(d, c->public_key);
		if (wg_peer_add_allowed_ip(p, &ip) < 0)
			return -ENOMEM;
	}
	return 0;
}

static inline int fake_wg_set(struct wg_backend *b, const char *ifname,
			      const struct wg_device *change)
{
	struct fake_wg *f = (struct fake_wg *)b;
	(void)ifname;
	if (f->fail_set)
		return f->fail_set;
	b->messages_sent++;
	if (change->flags & WG_DEVICE_HAS_PRIVATE_KEY)
		memcpy(f->dev->private_key, change->private_key, WG_KEY_LEN);
	if (change->flags & WG_DEVICE_HAS_LISTEN_PORT)
		f->dev->listen_port = change->listen_port;
	f->dev->flags |= change->flags;
	for (size_t i = 0; i < change->n_peers; i++) {
		int r = fake_wg_apply_peer(f->dev, &change->peers[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static inline void fake_wg_free(struct wg_backend *b)
{
	struct fake_wg *f = (struct fake_wg *)b;
	wg_device_free(f->dev);
	free(f);
}

static inline struct fake_wg *fake_wg_new(const char *ifname)
{
	struct fake_wg *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->dev = wg_device_new(ifname);
	f->base.kind = WG_BACKEND_USERSPACE;
	f->base.get = fake_wg_get;
	f->base.set = fake_wg_set;
	f->base.free = fake_wg_free;
	return f;
}

#endif
