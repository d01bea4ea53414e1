/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_WG_H
#define WIREGUI_AGENT_WG_H

/*
 * A WireGuard device as a backend dumps it, or a change to write to one:
 * the model of wireguard-tools' struct wgdevice. Flags say which fields a
 * change carries; a dump sets every flag it has a value for.
 *
 * Two backends implement the same operations: the kernel's generic netlink
 * family "wireguard" (wg_nl.c) and the UAPI text protocol of a userspace
 * implementation such as wireguard-go (wg_uapi.c).
 */

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "key.h"

enum wg_device_flags {
	WG_DEVICE_HAS_PRIVATE_KEY = 1u << 0,
	WG_DEVICE_HAS_LISTEN_PORT = 1u << 1,
};

enum wg_peer_flags {
	WG_PEER_REMOVE = 1u << 0,	       /* change: remove this peer */
	WG_PEER_REPLACE_ALLOWED_IPS = 1u << 1, /* change: allowed_ips replace the old set */
	WG_PEER_HAS_PSK = 1u << 2,	       /* psk is meaningful (all zero = none/clear) */
	WG_PEER_HAS_KEEPALIVE = 1u << 3,       /* keepalive is meaningful (0 = off) */
};

struct wg_peer {
	uint8_t public_key[WG_KEY_LEN];
	uint8_t psk[WG_KEY_LEN];
	uint16_t keepalive; /* seconds */
	unsigned flags;
	struct ip_cidr *allowed_ips; /* owned; host bits clear */
	size_t n_allowed_ips, cap_allowed_ips;
	/* Dumps only. */
	uint64_t rx_bytes, tx_bytes;
	int64_t last_handshake;	 /* unix seconds, 0 = never */
	struct ip_addr endpoint; /* family 0 = none */
	uint16_t endpoint_port;
};

struct wg_device {
	char ifname[IFNAMSIZ];
	unsigned flags;
	uint8_t private_key[WG_KEY_LEN]; /* wiped by wg_device_free() */
	uint8_t public_key[WG_KEY_LEN];	 /* dumps only */
	uint16_t listen_port;
	struct wg_peer *peers; /* owned */
	size_t n_peers, cap_peers;
};

struct wg_device *wg_device_new(const char *ifname);
/* Wipes keys; NULL-safe. */
void wg_device_free(struct wg_device *dev);
/* A zeroed peer appended to dev, or NULL (ENOMEM). Invalidates earlier peer pointers. */
struct wg_peer *wg_device_add_peer(struct wg_device *dev);
/* 0 or -ENOMEM. */
int wg_peer_add_allowed_ip(struct wg_peer *peer, const struct ip_cidr *cidr);
/* Nothing to write: no device flags and no peers. */
bool wg_device_is_empty(const struct wg_device *dev);
/* Sorts peers by public key (memcmp order) so they can be bsearch'ed. */
void wg_device_sort_peers(struct wg_device *dev);
/* The peer with this key in a sorted device, or NULL. */
struct wg_peer *wg_device_find_peer(const struct wg_device *dev, const uint8_t key[WG_KEY_LEN]);

enum wg_backend_kind {
	WG_BACKEND_KERNEL = 1,
	WG_BACKEND_USERSPACE = 2,
};

struct wg_backend {
	enum wg_backend_kind kind;
	/* Dump the whole device: 0, -ENODEV (no such WireGuard interface), -errno. */
	int (*get)(struct wg_backend *b, const char *ifname, struct wg_device **ret_dev);
	/* Write a change; on -errno the kernel may have taken a prefix of it. */
	int (*set)(struct wg_backend *b, const char *ifname, const struct wg_device *change);
	void (*free)(struct wg_backend *b);
	/* Netlink messages / UAPI requests written so far (benchmarks, tests). */
	uint64_t messages_sent;
};

static inline void wg_backend_free(struct wg_backend *b)
{
	if (b != NULL)
		b->free(b);
}

#endif
