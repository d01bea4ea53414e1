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

#define NOT_A_NETWORK \
	"not a network (4 or 16 address bytes, prefix within the family, host bits zero)"

static int cidr_from_msg(const Wiregui__Cidr *c, struct ip_cidr *ret_cidr)
{
	if (c == NULL ||
	    ip_cidr_from_bytes(c->address.data, c->address.len, c->prefix, 0, ret_cidr) < 0)
		return -EINVAL;
	return 0;
}

/* Addresses given to peers and devices must lie in the agent's own pools. */
static int within_pools(const struct ip_cidr *cidr, const struct agent_conf *conf, struct verr *err)
{
	char text[IP_CIDR_STRLEN];

	for (size_t i = 0; i < conf->peer_networks.n; i++)
		if (ip_cidr_contains_cidr(&conf->peer_networks.items[i], cidr))
			return 0;
	ip_cidr_format(cidr, text, sizeof(text));
	verr_set(err, "", "%s is outside the agent's peer_networks", text);
	return -EPERM;
}

/*
 * err's field, a sub-field so far (".rules[1023].destination" is the
 * longest), becomes list[index] and it.
 */
static int field_in_list(struct verr *err, const char *list, size_t index, int r)
{
	char sub[sizeof(err->field)];

	memcpy(sub, err->field, sizeof(sub));
	snprintf(err->field, sizeof(err->field), "%.20s[%zu]%.28s", list, index, sub);
	return r;
}

static int validate_allowed_ip(const Wiregui__Cidr *c, const struct agent_conf *conf,
			       struct ip_cidr *ret_cidr, struct verr *err)
{
	if (cidr_from_msg(c, ret_cidr) < 0)
		return verr_set(err, "", NOT_A_NETWORK);
	return within_pools(ret_cidr, conf, err);
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

	/* Field names are made only for an error: a sync checks many peers. */
	if (r < 0)
		return field_in_list(err, list, index, r);
	struct wg_peer *p = wg_device_add_peer(dev);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p->public_key, m->public_key.data, WG_KEY_LEN);
	if (m->preshared_key.len != 0)
		memcpy(p->psk, m->preshared_key.data, WG_KEY_LEN);
	p->keepalive = (uint16_t)m->persistent_keepalive;
	p->flags = WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE | WG_PEER_REPLACE_ALLOWED_IPS;
	for (size_t j = 0; j < m->n_allowed_ips; j++) {
		if ((r = validate_allowed_ip(m->allowed_ips[j], conf, &cidr, err)) < 0) {
			field_in_list(err, ".allowed_ips", j, r);
			field_in_list(err, list, index, r);
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
 * Keys seen so far (allowed IPs, addresses, ids) in an open-addressing hash
 * set: a sync checks hundreds of thousands, in one pass. Each slot points
 * at its key and says whose it is (owner) and where there (index).
 */
struct key_slot {
	const void *key; /* NULL: empty */
	size_t owner, index;
};

struct keyset {
	struct key_slot *slots;
	size_t mask;
	uint64_t (*hash)(const void *key);
	bool (*same)(const void *a, const void *b);
};

/* Room for n keys. */
static int keyset_init(struct keyset *ks, size_t n, uint64_t (*hash)(const void *),
		       bool (*same)(const void *, const void *))
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	ks->slots = calloc(cap, sizeof(*ks->slots));
	ks->mask = cap - 1;
	ks->hash = hash;
	ks->same = same;
	return ks->slots == NULL ? -ENOMEM : 0;
}

static void keyset_free(struct keyset *ks)
{
	free(ks->slots);
	ks->slots = NULL;
}

/* The slot already holding key, or the empty one where it goes. */
static struct key_slot *keyset_find(const struct keyset *ks, const void *key)
{
	for (size_t i = ks->hash(key) & ks->mask;; i = (i + 1) & ks->mask)
		if (ks->slots[i].key == NULL || ks->same(ks->slots[i].key, key))
			return &ks->slots[i];
}

/* The slot of an equal key seen before, or NULL (and key is recorded). */
static const struct key_slot *keyset_add(struct keyset *ks, const void *key, size_t owner,
					 size_t index)
{
	struct key_slot *slot = keyset_find(ks, key);
	if (slot->key != NULL)
		return slot;
	*slot = (struct key_slot){key, owner, index};
	return NULL;
}

/* The slot holding key, or NULL. */
static const struct key_slot *keyset_get(const struct keyset *ks, const void *key)
{
	const struct key_slot *slot = keyset_find(ks, key);
	return slot->key != NULL ? slot : NULL;
}

/*
 * Keyed (SipHash, a key made at the first use): the frontend cannot pick
 * ids or addresses that all land in one slot and make a check quadratic.
 */
static uint64_t hash_bytes16(const uint8_t *bytes, size_t len, uint64_t seed)
{
	static uint8_t key[crypto_shorthash_KEYBYTES];
	static bool keyed;
	uint8_t in[16 + sizeof(seed)] = {0}, out[crypto_shorthash_BYTES];
	uint64_t h;

	if (!keyed) {
		randombytes_buf(key, sizeof(key));
		keyed = true;
	}
	memcpy(in, bytes, len);
	memcpy(in + 16, &seed, sizeof(seed));
	crypto_shorthash(out, in, sizeof(in), key);
	memcpy(&h, out, sizeof(h));
	return h;
}

static uint64_t cidr_hash(const void *key)
{
	const struct ip_cidr *c = key;
	return hash_bytes16(c->addr.bytes, ip_family_len(c->addr.family),
			    (uint64_t)c->addr.family << 8 | c->prefix);
}

static bool cidr_same(const void *a, const void *b)
{
	const struct ip_cidr *x = a, *y = b;
	return x->prefix == y->prefix && ip_addr_equal(&x->addr, &y->addr);
}

static uint64_t addr_hash(const void *key)
{
	const struct ip_addr *a = key;
	return hash_bytes16(a->bytes, ip_family_len(a->family), a->family);
}

static bool addr_same(const void *a, const void *b)
{
	return ip_addr_equal(a, b);
}

static uint64_t id_hash(const void *key)
{
	return hash_bytes16(key, FW_ID_LEN, 0);
}

static bool id_same(const void *a, const void *b)
{
	return memcmp(a, b, FW_ID_LEN) == 0;
}

static int unique_allowed_ips(const struct wg_device *dev, size_t n, struct verr *err)
{
	char text[IP_CIDR_STRLEN];
	struct keyset set;
	int r = keyset_init(&set, n, cidr_hash, cidr_same);

	for (size_t i = 0; i < dev->n_peers && r == 0; i++) {
		for (size_t j = 0; j < dev->peers[i].n_allowed_ips && r == 0; j++) {
			const struct ip_cidr *c = &dev->peers[i].allowed_ips[j];
			const struct key_slot *dup = keyset_add(&set, c, i, j);
			if (dup == NULL)
				continue;
			ip_cidr_format(c, text, sizeof(text));
			r = verr_set(err, "peers", "allowed IP %s is listed twice%s", text,
				     dup->owner == i ? " on one peer" : ", on two peers");
		}
	}
	keyset_free(&set);
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

/* ---- the firewall ---------------------------------------------------------- */

int validate_fw_id(const ProtobufCBinaryData *id, const char *field, uint8_t ret_id[FW_ID_LEN],
		   struct verr *err)
{
	if (id->len != FW_ID_LEN)
		return verr_set(err, field, "%zu bytes, an id has %d", id->len, FW_ID_LEN);
	memcpy(ret_id, id->data, FW_ID_LEN);
	return 0;
}

/* 0/0 is any port; else from 1..65535, to 0 (= from) or from..65535, with TCP or UDP. */
static int validate_fw_ports(const Wiregui__FirewallRule *m, struct fw_rule *rule, struct verr *err)
{
	uint32_t to = m->port_to != 0 ? m->port_to : m->port_from;

	if (m->port_from == 0 && m->port_to == 0)
		return 0;
	if (m->port_from == 0 || m->port_from > UINT16_MAX)
		return verr_set(err, ".port_from",
				"%u is not a port (1..65535; 0 with port_to 0: any)", m->port_from);
	if (to < m->port_from || to > UINT16_MAX)
		return verr_set(err, ".port_to", "%u is not 0 or within port_from (%u)..65535",
				m->port_to, m->port_from);
	if (rule->proto == FW_PROTO_ANY)
		return verr_set(err, ".port_from", "a port needs protocol TCP or UDP");
	rule->port_from = (uint16_t)m->port_from;
	rule->port_to = (uint16_t)to;
	return 0;
}

static int validate_fw_rule_fields(const Wiregui__FirewallRule *m, struct fw_rule *rule,
				   struct verr *err)
{
	static const uint8_t protos[] = {
		[WIREGUI__PROTOCOL__PROTO_ANY] = FW_PROTO_ANY,
		[WIREGUI__PROTOCOL__PROTO_TCP] = FW_PROTO_TCP,
		[WIREGUI__PROTOCOL__PROTO_UDP] = FW_PROTO_UDP,
	};

	memset(rule, 0, sizeof(*rule));
	if (validate_fw_id(&m->id, ".id", rule->id, err) < 0)
		return -EINVAL;
	if (cidr_from_msg(m->destination, &rule->dst) < 0)
		return verr_set(err, ".destination", NOT_A_NETWORK);
	if ((unsigned)m->protocol >= sizeof(protos))
		return verr_set(err, ".protocol", "%d is not ANY, TCP or UDP", (int)m->protocol);
	rule->proto = protos[m->protocol];
	if (m->action != WIREGUI__ACTION__ACTION_ACCEPT &&
	    m->action != WIREGUI__ACTION__ACTION_DROP)
		return verr_set(err, ".action", "%d is not ACCEPT or DROP", (int)m->action);
	rule->accept = m->action == WIREGUI__ACTION__ACTION_ACCEPT;
	rule->priority = m->priority;
	return validate_fw_ports(m, rule, err);
}

int validate_fw_rule(const Wiregui__FirewallRule *m, const char *list, size_t index,
		     struct fw_rule *ret_rule, struct verr *err)
{
	struct fw_rule rule;
	int r = validate_fw_rule_fields(m, &rule, err);

	if (r < 0)
		return field_in_list(err, list, index, r);
	*ret_rule = rule;
	return 0;
}

/* A device address: one host (/32 or /128) in the pools. */
static int validate_fw_addr(const Wiregui__Cidr *c, const struct agent_conf *conf,
			    struct ip_addr *ret_addr, struct verr *err)
{
	struct ip_cidr cidr;

	if (cidr_from_msg(c, &cidr) < 0 || cidr.prefix != ip_family_bits(cidr.addr.family))
		return verr_set(err, "", "not a host address (4 bytes /32 or 16 bytes /128)");
	if (within_pools(&cidr, conf, err) < 0)
		return -EPERM;
	*ret_addr = cidr.addr;
	return 0;
}

static int validate_fw_user_fields(const Wiregui__FirewallUser *m, const struct agent_conf *conf,
				   struct fw_user *u, struct verr *err)
{
	struct ip_addr addr;
	int r;

	if (validate_fw_id(&m->id, ".id", u->id, err) < 0)
		return -EINVAL;
	u->active = m->active;
	if (m->n_addresses > FW_MAX_ADDRS_PER_USER) {
		verr_set(err, ".addresses", "%zu addresses, at most %d", m->n_addresses,
			 FW_MAX_ADDRS_PER_USER);
		return -E2BIG;
	}
	if (m->n_rules > FW_MAX_RULES_PER_USER) {
		verr_set(err, ".rules", "%zu rules, at most %d a user", m->n_rules,
			 FW_MAX_RULES_PER_USER);
		return -E2BIG;
	}
	for (size_t j = 0; j < m->n_addresses; j++) {
		if ((r = validate_fw_addr(m->addresses[j], conf, &addr, err)) < 0)
			return field_in_list(err, ".addresses", j, r);
		if ((r = fw_user_add_addr(u, &addr)) < 0)
			return r;
	}
	for (size_t k = 0; k < m->n_rules; k++) {
		struct fw_rule *rule = fw_user_add_rule(u);
		if (rule == NULL)
			return -ENOMEM;
		if ((r = validate_fw_rule(m->rules[k], ".rules", k, rule, err)) < 0)
			return r;
	}
	return 0;
}

int validate_fw_user(const Wiregui__FirewallUser *m, const struct agent_conf *conf,
		     const char *list, size_t index, struct fw_state *s, struct verr *err)
{
	struct fw_user *u = fw_state_add_user(s);
	if (u == NULL)
		return -ENOMEM;
	int r = validate_fw_user_fields(m, conf, u, err);
	if (r < 0) {
		/* fw_state_add_user hands out the slot as it finds it: leave it zeroed. */
		free(u->addrs);
		free(u->rules);
		memset(u, 0, sizeof(*u));
		s->n_users--;
		return field_in_list(err, list, index, r);
	}
	return 0;
}

int validate_fw_settings(const Wiregui__FirewallSettings *m, const char *field,
			 struct fw_settings *ret_settings, struct verr *err)
{
	if (m == NULL)
		return verr_set(err, field, "missing");
	if (m->default_action != WIREGUI__ACTION__ACTION_ACCEPT &&
	    m->default_action != WIREGUI__ACTION__ACTION_DROP) {
		char sub[sizeof(err->field)];
		snprintf(sub, sizeof(sub), "%s.default_action", field);
		return verr_set(err, sub, "%d is not ACCEPT or DROP", (int)m->default_action);
	}
	*ret_settings = (struct fw_settings){
		.default_accept = m->default_action == WIREGUI__ACTION__ACTION_ACCEPT,
		.client_isolation = m->client_isolation,
		.masquerade_ipv4 = m->masquerade_ipv4,
		.masquerade_ipv6 = m->masquerade_ipv6,
	};
	return 0;
}

/* What a message calls a state's lists. */
struct fw_lists {
	const char *users, *global_rules;
};

static const struct fw_lists sync_lists = {"users", "global_rules"};
static const struct fw_lists patch_lists = {"upsert_users", "upsert_global_rules"};

/* The owner of a global rule in a rule id set (else the user's index). */
#define FW_GLOBAL SIZE_MAX

/* "users[3].rules[2]" or "global_rules[5]" */
static void fw_rule_where(const struct fw_lists *lists, size_t owner, size_t index, char *buf,
			  size_t len)
{
	if (owner == FW_GLOBAL)
		snprintf(buf, len, "%s[%zu]", lists->global_rules, index);
	else
		snprintf(buf, len, "%s[%zu].rules[%zu]", lists->users, owner, index);
}

/* A state's user ids, addresses and rule ids, each with its place. */
struct fw_sets {
	struct keyset users, addrs, rules;
	size_t n_addrs, n_user_rules;
};

static void fw_sets_free(struct fw_sets *fs)
{
	keyset_free(&fs->users);
	keyset_free(&fs->addrs);
	keyset_free(&fs->rules);
}

static int fw_sets_init(struct fw_sets *fs, const struct fw_state *s)
{
	*fs = (struct fw_sets){0};
	for (size_t i = 0; i < s->n_users; i++) {
		fs->n_addrs += s->users[i].n_addrs;
		fs->n_user_rules += s->users[i].n_rules;
	}
	if (keyset_init(&fs->users, s->n_users, id_hash, id_same) < 0 ||
	    keyset_init(&fs->addrs, fs->n_addrs, addr_hash, addr_same) < 0 ||
	    keyset_init(&fs->rules, fs->n_user_rules + s->n_global_rules, id_hash, id_same) < 0) {
		fw_sets_free(fs);
		return -ENOMEM;
	}
	return 0;
}

static int fw_rule_twice(const struct fw_lists *lists, size_t owner, size_t index,
			 const struct key_slot *dup, struct verr *err)
{
	char field[sizeof(err->field)], other[sizeof(err->field)], hex[2 * FW_ID_LEN + 1];

	fw_rule_where(lists, owner, index, field, sizeof(field) - 3);
	strcat(field, ".id");
	fw_rule_where(lists, dup->owner, dup->index, other, sizeof(other));
	fw_id_hex(dup->key, hex);
	return verr_set(err, field, "rule %s is also %s", hex, other);
}

static int fw_sets_add_user(struct fw_sets *fs, const struct fw_state *s, size_t i,
			    const struct fw_lists *lists, struct verr *err)
{
	const struct fw_user *u = &s->users[i];
	const struct key_slot *dup;
	char field[sizeof(err->field)], text[IP_ADDR_STRLEN];

	if ((dup = keyset_add(&fs->users, u->id, i, 0)) != NULL) {
		fw_id_hex(u->id, text);
		snprintf(field, sizeof(field), "%s[%zu].id", lists->users, i);
		return verr_set(err, field, "user %s is also %s[%zu]", text, lists->users,
				dup->owner);
	}
	for (size_t j = 0; j < u->n_addrs; j++) {
		if ((dup = keyset_add(&fs->addrs, &u->addrs[j], i, j)) == NULL)
			continue;
		ip_addr_format(&u->addrs[j], text, sizeof(text));
		snprintf(field, sizeof(field), "%s[%zu].addresses[%zu]", lists->users, i, j);
		return verr_set(err, field, "%s is also %s[%zu].addresses[%zu]", text, lists->users,
				dup->owner, dup->index);
	}
	for (size_t k = 0; k < u->n_rules; k++)
		if ((dup = keyset_add(&fs->rules, u->rules[k].id, i, k)) != NULL)
			return fw_rule_twice(lists, i, k, dup, err);
	return 0;
}

/* Every user id, address and rule id of s once; the sets keep where each is. */
static int fw_sets_fill(struct fw_sets *fs, const struct fw_state *s, const struct fw_lists *lists,
			struct verr *err)
{
	for (size_t i = 0; i < s->n_users; i++) {
		int r = fw_sets_add_user(fs, s, i, lists, err);
		if (r < 0)
			return r;
	}
	for (size_t k = 0; k < s->n_global_rules; k++) {
		const struct key_slot *dup =
			keyset_add(&fs->rules, s->global_rules[k].id, FW_GLOBAL, k);
		if (dup != NULL)
			return fw_rule_twice(lists, FW_GLOBAL, k, dup, err);
	}
	return 0;
}

/* Totals of a whole state against the limits; field names what brought them. */
static int fw_limits(size_t users, size_t rules, size_t global, const struct agent_conf *conf,
		     const struct fw_lists *lists, const char *rules_field, struct verr *err)
{
	if (global > FW_MAX_GLOBAL_RULES)
		verr_set(err, lists->global_rules, "%zu global rules, at most %d", global,
			 FW_MAX_GLOBAL_RULES);
	else if (users > conf->max_users)
		verr_set(err, lists->users, "%zu users, this agent takes at most %lu", users,
			 conf->max_users);
	else if (rules + global > conf->max_rules)
		verr_set(err, rules_field, "%zu rules in all, this agent takes at most %lu",
			 rules + global, conf->max_rules);
	else
		return 0;
	return -E2BIG;
}

int validate_fw_state(const struct fw_state *s, const struct agent_conf *conf, struct verr *err)
{
	struct fw_sets fs;
	int r = fw_sets_init(&fs, s);

	if (r < 0)
		return r;
	r = fw_sets_fill(&fs, s, &sync_lists, err);
	if (r == 0)
		r = fw_limits(s->n_users, fs.n_user_rules, s->n_global_rules, conf, &sync_lists,
			      "users", err);
	fw_sets_free(&fs);
	return r;
}

/*
 * Removal ids: each once, and not upserted by the same patch as well (which
 * would win is unclear). A global rule removed may come back as a user's.
 */
static int fw_removals_add(struct keyset *set, uint8_t (*ids)[FW_ID_LEN], size_t n,
			   const char *list, const struct keyset *upserted, bool only_global,
			   struct verr *err)
{
	char field[sizeof(err->field)], hex[2 * FW_ID_LEN + 1];

	for (size_t i = 0; i < n; i++) {
		const struct key_slot *twice = keyset_add(set, ids[i], 0, i);
		const struct key_slot *up = keyset_get(upserted, ids[i]);
		if (twice == NULL && (up == NULL || (only_global && up->owner != FW_GLOBAL)))
			continue;
		snprintf(field, sizeof(field), "%s[%zu]", list, i);
		fw_id_hex(ids[i], hex);
		if (twice != NULL)
			return verr_set(err, field, "%s is also %s[%zu]", hex, list, twice->index);
		return verr_set(err, field, "%s is upserted by the same patch", hex);
	}
	return 0;
}

/* A patch's own sets: what it upserts (fw_sets) and the ids it removes. */
struct fw_patch_sets {
	struct fw_sets up;
	struct keyset rm_users, rm_rules;
};

static void fw_patch_sets_free(struct fw_patch_sets *ps)
{
	fw_sets_free(&ps->up);
	keyset_free(&ps->rm_users);
	keyset_free(&ps->rm_rules);
}

static int fw_patch_sets_fill(struct fw_patch_sets *ps, const struct fw_change *c, struct verr *err)
{
	int r;

	*ps = (struct fw_patch_sets){0};
	if (fw_sets_init(&ps->up, c->upsert) < 0 ||
	    keyset_init(&ps->rm_users, c->n_remove_users, id_hash, id_same) < 0 ||
	    keyset_init(&ps->rm_rules, c->n_remove_rules, id_hash, id_same) < 0)
		return -ENOMEM;
	if ((r = fw_sets_fill(&ps->up, c->upsert, &patch_lists, err)) < 0)
		return r;
	if ((r = fw_removals_add(&ps->rm_users, c->remove_users, c->n_remove_users, "remove_users",
				 &ps->up.users, false, err)) < 0)
		return r;
	return fw_removals_add(&ps->rm_rules, c->remove_rules, c->n_remove_rules,
			       "remove_global_rules", &ps->up.rules, true, err);
}

/* A user of the current state the patch replaces or removes: its addresses and rules go. */
static bool fw_patch_drops_user(const struct fw_patch_sets *ps, const struct fw_user *u)
{
	return keyset_get(&ps->up.users, u->id) != NULL || keyset_get(&ps->rm_users, u->id) != NULL;
}

/* An upserted address or rule id that a user the patch keeps already has. */
static int fw_patch_collides_user(const struct fw_patch_sets *ps, const struct fw_user *u,
				  struct verr *err)
{
	const struct key_slot *slot;
	char field[sizeof(err->field)], text[IP_ADDR_STRLEN], hex[2 * FW_ID_LEN + 1];

	for (size_t j = 0; j < u->n_addrs; j++) {
		if ((slot = keyset_get(&ps->up.addrs, &u->addrs[j])) == NULL ||
		    fw_patch_drops_user(ps, u))
			continue;
		ip_addr_format(&u->addrs[j], text, sizeof(text));
		fw_id_hex(u->id, hex);
		snprintf(field, sizeof(field), "upsert_users[%zu].addresses[%zu]", slot->owner,
			 slot->index);
		return verr_set(err, field, "%s belongs to user %s", text, hex);
	}
	for (size_t k = 0; k < u->n_rules; k++) {
		if ((slot = keyset_get(&ps->up.rules, u->rules[k].id)) == NULL ||
		    fw_patch_drops_user(ps, u))
			continue;
		fw_rule_where(&patch_lists, slot->owner, slot->index, field, sizeof(field) - 3);
		strcat(field, ".id");
		fw_id_hex(u->id, hex);
		return verr_set(err, field, "a rule of user %s has this id", hex);
	}
	return 0;
}

/* Users and their rules of the state the patch makes (limits), collisions on the way. */
static int fw_patch_users(const struct fw_state *cur, const struct fw_change *c,
			  const struct fw_patch_sets *ps, const struct agent_conf *conf,
			  size_t *ret_users, size_t *ret_rules, struct verr *err)
{
	size_t users = cur->n_users + c->upsert->n_users, rules = ps->up.n_user_rules;
	size_t addrs = ps->up.n_addrs;
	const struct fw_user *old;

	for (size_t i = 0; i < cur->n_users; i++) {
		rules += cur->users[i].n_rules;
		addrs += cur->users[i].n_addrs;
	}
	for (size_t i = 0; i < c->upsert->n_users; i++)
		if ((old = fw_state_find_user(cur, c->upsert->users[i].id)) != NULL) {
			users--;
			rules -= old->n_rules;
			addrs -= old->n_addrs;
		}
	for (size_t i = 0; i < c->n_remove_users; i++)
		if ((old = fw_state_find_user(cur, c->remove_users[i])) != NULL) {
			users--;
			rules -= old->n_rules;
			addrs -= old->n_addrs;
		}
	if (addrs > VALIDATE_ADDRS_PER_PEER * conf->max_peers) {
		verr_set(err, "upsert_users", "%zu addresses in all, at most %lu", addrs,
			 VALIDATE_ADDRS_PER_PEER * conf->max_peers);
		return -E2BIG;
	}
	/* Only a patch bringing addresses or rules can collide with a user it keeps. */
	if (ps->up.n_addrs > 0 || ps->up.n_user_rules > 0 || c->upsert->n_global_rules > 0)
		for (size_t i = 0; i < cur->n_users; i++) {
			int r = fw_patch_collides_user(ps, &cur->users[i], err);
			if (r < 0)
				return r;
		}
	*ret_users = users;
	*ret_rules = rules;
	return 0;
}

/* Global rules of the state the patch makes; a user's rule may not take a kept one's id. */
static int fw_patch_global(const struct fw_state *cur, const struct fw_change *c,
			   const struct fw_patch_sets *ps, size_t *ret_global, struct verr *err)
{
	size_t global = cur->n_global_rules + c->upsert->n_global_rules;
	const struct key_slot *slot;
	char field[sizeof(err->field)];

	for (size_t k = 0; k < cur->n_global_rules; k++) {
		const uint8_t *id = cur->global_rules[k].id;
		if (keyset_get(&ps->rm_rules, id) != NULL) {
			global--;
			continue;
		}
		if ((slot = keyset_get(&ps->up.rules, id)) == NULL)
			continue;
		if (slot->owner == FW_GLOBAL) {
			global--;
			continue;
		}
		fw_rule_where(&patch_lists, slot->owner, slot->index, field, sizeof(field) - 3);
		strcat(field, ".id");
		return verr_set(err, field, "a global rule has this id");
	}
	*ret_global = global;
	return 0;
}

int validate_fw_change(const struct fw_state *cur, const struct fw_change *c,
		       const struct agent_conf *conf, struct verr *err)
{
	struct fw_patch_sets ps;
	size_t users = 0, rules = 0, global = 0;
	int r = fw_patch_sets_fill(&ps, c, err);

	if (r == 0)
		r = fw_patch_users(cur, c, &ps, conf, &users, &rules, err);
	if (r == 0)
		r = fw_patch_global(cur, c, &ps, &global, err);
	if (r == 0)
		r = fw_limits(users, rules, global, conf, &patch_lists,
			      ps.up.n_user_rules > 0 ? "upsert_users" : "upsert_global_rules", err);
	fw_patch_sets_free(&ps);
	return r;
}
