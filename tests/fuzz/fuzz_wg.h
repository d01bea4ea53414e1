/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_FUZZ_WG_H
#define WIREGUI_FUZZ_WG_H

/*
 * What the WireGuard backends' fuzz targets (fuzz_uapi.c, fuzz_wgnl.c) check
 * alike of a parsed struct wg_device: wg.h's promises on CIDRs, peers and
 * the peer array, and the comparison of two devices after a round trip.
 * Each target adds what its backend promises beyond that. A broken promise
 * traps.
 */

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "wg.h"

static inline void fuzz_check_cidr(const struct ip_cidr *c)
{
	struct ip_cidr masked;
	size_t len = ip_family_len(c->addr.family);

	/* Family and prefix, and no host bits: from_bytes without ALLOW_HOST_BITS checks all. */
	if (len == 0 || ip_cidr_from_bytes(c->addr.bytes, len, c->prefix, 0, &masked) < 0)
		__builtin_trap();
	/* Bytes beyond an IPv4 address stay zero: sets of CIDRs are compared with memcmp. */
	for (size_t i = len; i < sizeof(c->addr.bytes); i++)
		if (c->addr.bytes[i] != 0)
			__builtin_trap();
}

/* A peer's allowed IPs and endpoint; its flags are the target's to check. */
static inline void fuzz_check_peer(const struct wg_peer *p)
{
	if (p->n_allowed_ips > p->cap_allowed_ips || (p->n_allowed_ips > 0 && !p->allowed_ips))
		__builtin_trap();
	for (size_t i = 0; i < p->n_allowed_ips; i++)
		fuzz_check_cidr(&p->allowed_ips[i]);
	if (p->endpoint.family != 0 && p->endpoint.family != AF_INET &&
	    p->endpoint.family != AF_INET6)
		__builtin_trap();
}

/* The device's flags (a dump sets no others) and its peer array's bounds. */
static inline void fuzz_check_device(const struct wg_device *dev)
{
	if ((dev->flags & ~(unsigned)(WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT)) != 0)
		__builtin_trap();
	if (dev->n_peers > dev->cap_peers || (dev->n_peers > 0 && dev->peers == NULL))
		__builtin_trap();
}

/* The same allowed IPs in the same order (their counts already equal). */
static inline bool fuzz_allowed_same(const struct wg_peer *a, const struct wg_peer *b)
{
	for (size_t i = 0; i < a->n_allowed_ips; i++) {
		const struct ip_cidr *x = &a->allowed_ips[i], *y = &b->allowed_ips[i];
		if (x->prefix != y->prefix || !ip_addr_equal(&x->addr, &y->addr))
			return false;
	}
	return true;
}

/* Flags, private key and port where flagged, and the peers by peer_same, in order. */
static inline bool fuzz_device_same(const struct wg_device *a, const struct wg_device *b,
				    bool (*peer_same)(const struct wg_peer *,
						      const struct wg_peer *))
{
	if (a->flags != b->flags || a->n_peers != b->n_peers)
		return false;
	if ((a->flags & WG_DEVICE_HAS_PRIVATE_KEY) &&
	    memcmp(a->private_key, b->private_key, WG_KEY_LEN) != 0)
		return false;
	if ((a->flags & WG_DEVICE_HAS_LISTEN_PORT) && a->listen_port != b->listen_port)
		return false;
	for (size_t i = 0; i < a->n_peers; i++)
		if (!peer_same(&a->peers[i], &b->peers[i]))
			return false;
	return true;
}

#endif
