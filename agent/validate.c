/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "validate.h"

#include <errno.h>
#include <net/if.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define HELLO_CLIENT_MAX 128

int verr_set(struct verr *err, const char *field, const char *fmt, ...)
{
	va_list ap;
	snprintf(err->field, sizeof(err->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Printable ASCII only: the string ends up in the agent's log. */
static int validate_label(const char *s, size_t max, const char *field, struct verr *err)
{
	size_t len = strlen(s);
	if (len > max)
		return verr_set(err, field, "longer than %zu bytes", max);
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return verr_set(err, field, "byte %zu is not printable ASCII", i);
	return 0;
}

int validate_hello(const Wiregui__Hello *m, struct verr *err)
{
	if (m->protocol_version != FRAME_VERSION)
		return verr_set(err, "protocol_version",
				"%u is not supported (this agent speaks %u)", m->protocol_version,
				FRAME_VERSION);
	return validate_label(m->client, HELLO_CLIENT_MAX, "client", err);
}

int validate_interface(const char *name, const struct agent_conf *conf, const char *field,
		       struct verr *err)
{
	if (strcmp(name, conf->interface) == 0)
		return 0;
	if (validate_label(name, IFNAMSIZ, field, err) < 0)
		return -EINVAL;
	verr_set(err, field, "'%s' is not this agent's interface (%s)", name, conf->interface);
	return -EPERM;
}

static int validate_key(const ProtobufCBinaryData *key, const char *field, struct verr *err)
{
	if (key->len != WG_KEY_LEN)
		return verr_set(err, field, "%zu bytes, a key has %d", key->len, WG_KEY_LEN);
	if (wg_key_is_zero(key->data))
		return verr_set(err, field, "all zero");
	return 0;
}

static int validate_allowed_ip(const Wiregui__Cidr *c, const struct agent_conf *conf, size_t j,
			       struct ip_cidr *ret_cidr, struct verr *err)
{
	if (c == NULL ||
	    ip_cidr_from_bytes(c->address.data, c->address.len, c->prefix, 0, ret_cidr) < 0) {
		verr_set(err, "",
			 "not a network (4 or 16 address bytes, prefix within the "
			 "family, host bits zero)");
		goto err_name;
	}
	for (size_t i = 0; i < conf->peer_networks.n; i++)
		if (ip_cidr_contains_cidr(&conf->peer_networks.items[i], ret_cidr))
			return 0;
	char text[IP_CIDR_STRLEN];
	ip_cidr_format(ret_cidr, text, sizeof(text));
	verr_set(err, "", "%s is outside the agent's peer_networks", text);
	snprintf(err->field, sizeof(err->field), ".allowed_ips[%zu]", j);
	return -EPERM;
err_name:
	snprintf(err->field, sizeof(err->field), ".allowed_ips[%zu]", j);
	return -EINVAL;
}

/* Field names are made only for an error: a sync checks many peers. */
static int peer_fail(struct verr *err, const char *list, size_t index, int r)
{
	char sub[24]; /* ".allowed_ips[255]" at most */
	memcpy(sub, err->field, sizeof(sub) - 1);
	sub[sizeof(sub) - 1] = '\0';
	snprintf(err->field, sizeof(err->field), "%.16s[%zu]%s", list, index, sub);
	return r;
}

static int validate_peer_fields(const Wiregui__Peer *m, const uint8_t own_key[WG_KEY_LEN],
				struct verr *err)
{
	if (validate_key(&m->public_key, ".public_key", err) < 0)
		return -EINVAL;
	if (memcmp(m->public_key.data, own_key, WG_KEY_LEN) == 0)
		return verr_set(err, ".public_key", "is the interface's own public key");
	if (m->preshared_key.len != 0 && validate_key(&m->preshared_key, ".preshared_key", err) < 0)
		return -EINVAL;
	if (m->persistent_keepalive > UINT16_MAX)
		return verr_set(err, ".persistent_keepalive", "%u is above %u seconds",
				m->persistent_keepalive, UINT16_MAX);
	if (m->n_allowed_ips > VALIDATE_MAX_ALLOWED_IPS) {
		verr_set(err, ".allowed_ips", "%zu entries, at most %d", m->n_allowed_ips,
			 VALIDATE_MAX_ALLOWED_IPS);
		return -E2BIG;
	}
	return 0;
}

int validate_peer(const Wiregui__Peer *m, const struct agent_conf *conf,
		  const uint8_t own_key[WG_KEY_LEN], const char *list, size_t index,
		  struct wg_device *dev, struct verr *err)
{
	struct ip_cidr cidr;
	int r = validate_peer_fields(m, own_key, err);

	if (r < 0)
		return peer_fail(err, list, index, r);
	struct wg_peer *p = wg_device_add_peer(dev);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p->public_key, m->public_key.data, WG_KEY_LEN);
	if (m->preshared_key.len != 0)
		memcpy(p->psk, m->preshared_key.data, WG_KEY_LEN);
	p->keepalive = (uint16_t)m->persistent_keepalive;
	p->flags = WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE | WG_PEER_REPLACE_ALLOWED_IPS;
	for (size_t j = 0; j < m->n_allowed_ips; j++) {
		if ((r = validate_allowed_ip(m->allowed_ips[j], conf, j, &cidr, err)) < 0) {
			peer_fail(err, list, index, r);
			goto err_drop_peer;
		}
		if ((r = wg_peer_add_allowed_ip(p, &cidr)) < 0)
			goto err_drop_peer;
	}
	return 0;

err_drop_peer:
	sodium_memzero(p->psk, sizeof(p->psk));
	free(p->allowed_ips);
	dev->n_peers--;
	return r;
}

int validate_peer_removal(const ProtobufCBinaryData *key, const char *field, struct wg_device *dev,
			  struct verr *err)
{
	if (validate_key(key, field, err) < 0)
		return -EINVAL;
	struct wg_peer *p = wg_device_add_peer(dev);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p->public_key, key->data, WG_KEY_LEN);
	p->flags = WG_PEER_REMOVE;
	return 0;
}

/*
 * Allowed IPs seen so far, in an open-addressing hash set: a sync checks
 * tens of thousands, in one pass. Each slot points at its CIDR and says
 * whose it is.
 */
struct cidr_slot {
	const struct ip_cidr *cidr; /* NULL: empty */
	size_t peer;
};

static uint64_t cidr_hash(const struct ip_cidr *c)
{
	uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)c->addr.family << 8 | c->prefix);
	for (size_t i = 0; i < ip_family_len(c->addr.family); i++)
		h = (h ^ c->addr.bytes[i]) * 0x100000001b3ull;
	return h ^ h >> 29;
}

static bool cidr_same(const struct ip_cidr *a, const struct ip_cidr *b)
{
	return a->prefix == b->prefix && ip_addr_equal(&a->addr, &b->addr);
}

/* The slot already holding c, or the empty one where it goes. */
static struct cidr_slot *cidr_slot_find(struct cidr_slot *set, size_t mask, const struct ip_cidr *c)
{
	for (size_t i = cidr_hash(c) & mask;; i = (i + 1) & mask)
		if (set[i].cidr == NULL || cidr_same(set[i].cidr, c))
			return &set[i];
}

static int unique_allowed_ips(const struct wg_device *dev, size_t n, struct verr *err)
{
	char text[IP_CIDR_STRLEN];
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	struct cidr_slot *set = calloc(cap, sizeof(*set));
	if (set == NULL)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < dev->n_peers && r == 0; i++) {
		for (size_t j = 0; j < dev->peers[i].n_allowed_ips && r == 0; j++) {
			const struct ip_cidr *c = &dev->peers[i].allowed_ips[j];
			struct cidr_slot *slot = cidr_slot_find(set, cap - 1, c);
			if (slot->cidr == NULL) {
				*slot = (struct cidr_slot){c, i};
				continue;
			}
			ip_cidr_format(c, text, sizeof(text));
			r = verr_set(err, "peers", "allowed IP %s is listed twice%s", text,
				     slot->peer == i ? " on one peer" : ", on two peers");
		}
	}
	free(set);
	return r;
}

int validate_peer_set(struct wg_device *dev, struct verr *err)
{
	char key[WG_KEY_B64_LEN + 1];
	size_t n = 0;

	wg_device_sort_peers(dev);
	for (size_t i = 0; i < dev->n_peers; i++) {
		n += dev->peers[i].n_allowed_ips;
		if (i > 0 && memcmp(dev->peers[i - 1].public_key, dev->peers[i].public_key,
				    WG_KEY_LEN) == 0) {
			wg_key_to_base64(dev->peers[i].public_key, key);
			return verr_set(err, "peers", "public key %s appears twice", key);
		}
	}
	return unique_allowed_ips(dev, n, err);
}
