/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "wg_nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The kernel sizes dump messages by our receive buffer, capped at 32 KiB. */
#define NL_RECV_SIZE 32768
#define DUMP_TRIES 5
#define GENL_MSG_HDRLEN (NLMSG_HDRLEN + GENL_HDRLEN)
/* Room for a request without peers: headers and an interface or family name. */
#define SMALL_REQ_SIZE 128
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Parsing ---------------------------------------------------------- */

/*
 * Attributes are read into a table by type, as the kernel does with its
 * nla_policy: a type with a length here must have exactly that payload,
 * the parser checks the others (0). Types beyond the table are skipped.
 */
static const uint16_t device_lens[WGDEVICE_A_MAX + 1] = {
	[WGDEVICE_A_IFINDEX] = 4,
	[WGDEVICE_A_PRIVATE_KEY] = WG_KEY_LEN,
	[WGDEVICE_A_PUBLIC_KEY] = WG_KEY_LEN,
	[WGDEVICE_A_FLAGS] = 4,
	[WGDEVICE_A_LISTEN_PORT] = 2,
	[WGDEVICE_A_FWMARK] = 4,
};
static const uint16_t peer_lens[WGPEER_A_MAX + 1] = {
	[WGPEER_A_PUBLIC_KEY] = WG_KEY_LEN,
	[WGPEER_A_PRESHARED_KEY] = WG_KEY_LEN,
	[WGPEER_A_FLAGS] = 4,
	[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL] = 2,
	[WGPEER_A_LAST_HANDSHAKE_TIME] = sizeof(struct __kernel_timespec),
	[WGPEER_A_RX_BYTES] = 8,
	[WGPEER_A_TX_BYTES] = 8,
	[WGPEER_A_PROTOCOL_VERSION] = 4,
};
static const uint16_t allowed_ip_lens[WGALLOWEDIP_A_MAX + 1] = {
	[WGALLOWEDIP_A_FAMILY] = 2,
	[WGALLOWEDIP_A_CIDR_MASK] = 1,
};
static const uint16_t ctrl_lens[CTRL_ATTR_FAMILY_ID + 1] = {[CTRL_ATTR_FAMILY_ID] = 2};

typedef int (*attr_cb)(const struct nlattr *a, void *data);

/* Every attribute of a payload; bytes left over that are no attribute mean truncation. */
static int walk(const void *payload, size_t len, attr_cb cb, void *data)
{
	const struct nlattr *a = payload;
	int rem = (int)len;

	for (; mnl_attr_ok(a, rem); a = mnl_attr_next(a)) {
		int r = cb(a, data);
		if (r < 0)
			return r;
		rem -= (int)MNL_ALIGN(a->nla_len);
	}
	return rem > 0 ? -EBADMSG : 0;
}

static int walk_nested(const struct nlattr *nest, attr_cb cb, void *data)
{
	return walk(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), cb, data);
}

struct table {
	const struct nlattr **tb;
	const uint16_t *lens;
	size_t n;
};

static int table_put(const struct nlattr *a, void *data)
{
	struct table *t = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type >= t->n)
		return 0;
	if (t->lens[type] != 0 && mnl_attr_get_payload_len(a) != t->lens[type])
		return -EBADMSG;
	t->tb[type] = a;
	return 0;
}

static int table_nested(const struct nlattr *nest, const struct nlattr **tb, const uint16_t *lens,
			size_t n)
{
	struct table t = {tb, lens, n};

	return walk_nested(nest, table_put, &t);
}

/* The attributes of a generic netlink message. */
static int table_genl(const struct nlmsghdr *nlh, const struct nlattr **tb, const uint16_t *lens,
		      size_t n)
{
	struct table t = {tb, lens, n};

	if (nlh->nlmsg_len < GENL_MSG_HDRLEN)
		return -EBADMSG;
	return walk((const uint8_t *)nlh + GENL_MSG_HDRLEN, nlh->nlmsg_len - GENL_MSG_HDRLEN,
		    table_put, &t);
}

static int parse_allowed_ip(const struct nlattr *nest, void *peer)
{
	const struct nlattr *tb[WGALLOWEDIP_A_MAX + 1] = {0};
	struct ip_cidr cidr;
	size_t len;
	int r = table_nested(nest, tb, allowed_ip_lens, ARRAY_SIZE(tb));

	if (r < 0)
		return r;
	if (!tb[WGALLOWEDIP_A_FAMILY] || !tb[WGALLOWEDIP_A_IPADDR] || !tb[WGALLOWEDIP_A_CIDR_MASK])
		return -EBADMSG;
	len = mnl_attr_get_payload_len(tb[WGALLOWEDIP_A_IPADDR]);
	if (ip_family_len(mnl_attr_get_u16(tb[WGALLOWEDIP_A_FAMILY])) != len ||
	    ip_cidr_from_bytes(mnl_attr_get_payload(tb[WGALLOWEDIP_A_IPADDR]), len,
			       mnl_attr_get_u8(tb[WGALLOWEDIP_A_CIDR_MASK]),
			       IP_CIDR_ALLOW_HOST_BITS, &cidr) < 0)
		return -EBADMSG;
	ip_cidr_mask(&cidr);
	return wg_peer_add_allowed_ip(peer, &cidr);
}

/* A sockaddr_in or sockaddr_in6, told apart by length, checked by family. */
static int parse_endpoint(const struct nlattr *a, struct wg_peer *p)
{
	union {
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	size_t len = mnl_attr_get_payload_len(a);

	if (len != sizeof(u.in) && len != sizeof(u.in6))
		return -EBADMSG;
	memcpy(&u, mnl_attr_get_payload(a), len);
	if (len == sizeof(u.in) && u.in.sin_family == AF_INET) {
		p->endpoint_port = ntohs(u.in.sin_port);
		return ip_addr_from_bytes((const uint8_t *)&u.in.sin_addr, 4, &p->endpoint);
	}
	if (len == sizeof(u.in6) && u.in6.sin6_family == AF_INET6) {
		p->endpoint_port = ntohs(u.in6.sin6_port);
		return ip_addr_from_bytes(u.in6.sin6_addr.s6_addr, 16, &p->endpoint);
	}
	return -EBADMSG;
}

/* The peer with this key if it is the last one (the kernel splits a peer's
 * allowed IPs across dump messages), else a new one. */
static struct wg_peer *peer_for_key(struct wg_device *dev, const uint8_t *key)
{
	struct wg_peer *p = dev->n_peers > 0 ? &dev->peers[dev->n_peers - 1] : NULL;

	if (p != NULL && memcmp(p->public_key, key, WG_KEY_LEN) == 0)
		return p;
	p = wg_device_add_peer(dev);
	if (p != NULL)
		memcpy(p->public_key, key, WG_KEY_LEN);
	return p;
}

/* Flags are set for what is present: the kernel always dumps PSK and keepalive. */
static int parse_peer(const struct nlattr *nest, void *dev)
{
	const struct nlattr *tb[WGPEER_A_MAX + 1] = {0};
	struct __kernel_timespec ts;
	struct wg_peer *p;
	int r = table_nested(nest, tb, peer_lens, ARRAY_SIZE(tb));

	if (r < 0)
		return r;
	if (tb[WGPEER_A_PUBLIC_KEY] == NULL)
		return -EBADMSG;
	p = peer_for_key(dev, mnl_attr_get_payload(tb[WGPEER_A_PUBLIC_KEY]));
	if (p == NULL)
		return -ENOMEM;
	if (tb[WGPEER_A_PRESHARED_KEY]) {
		memcpy(p->psk, mnl_attr_get_payload(tb[WGPEER_A_PRESHARED_KEY]), WG_KEY_LEN);
		p->flags |= WG_PEER_HAS_PSK;
	}
	if (tb[WGPEER_A_FLAGS]) {
		uint32_t f = mnl_attr_get_u32(tb[WGPEER_A_FLAGS]);
		p->flags |= ((f & WGPEER_F_REMOVE_ME) ? WG_PEER_REMOVE : 0) |
			    ((f & WGPEER_F_REPLACE_ALLOWEDIPS) ? WG_PEER_REPLACE_ALLOWED_IPS : 0);
	}
	if (tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]) {
		p->keepalive = mnl_attr_get_u16(tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]);
		p->flags |= WG_PEER_HAS_KEEPALIVE;
	}
	if (tb[WGPEER_A_LAST_HANDSHAKE_TIME]) {
		memcpy(&ts, mnl_attr_get_payload(tb[WGPEER_A_LAST_HANDSHAKE_TIME]), sizeof(ts));
		p->last_handshake = ts.tv_sec;
	}
	if (tb[WGPEER_A_RX_BYTES])
		p->rx_bytes = mnl_attr_get_u64(tb[WGPEER_A_RX_BYTES]);
	if (tb[WGPEER_A_TX_BYTES])
		p->tx_bytes = mnl_attr_get_u64(tb[WGPEER_A_TX_BYTES]);
	if (tb[WGPEER_A_ENDPOINT] && (r = parse_endpoint(tb[WGPEER_A_ENDPOINT], p)) < 0)
		return r;
	return tb[WGPEER_A_ALLOWEDIPS] ? walk_nested(tb[WGPEER_A_ALLOWEDIPS], parse_allowed_ip, p)
				       : 0;
}

int wg_nl_dump_merge(struct wg_device *dev, const struct nlmsghdr *nlh)
{
	const struct nlattr *tb[WGDEVICE_A_MAX + 1] = {0}, *a;
	int r;

	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
		return -EINTR;
	r = table_genl(nlh, tb, device_lens, ARRAY_SIZE(tb));
	if (r < 0)
		return r;
	if ((a = tb[WGDEVICE_A_IFNAME]) != NULL) {
		size_t len = mnl_attr_get_payload_len(a);
		if (len == 0 || len > IFNAMSIZ || mnl_attr_get_str(a)[len - 1] != '\0')
			return -EBADMSG;
		memcpy(dev->ifname, mnl_attr_get_str(a), len);
	}
	if ((a = tb[WGDEVICE_A_PRIVATE_KEY]) != NULL && !wg_key_is_zero(mnl_attr_get_payload(a))) {
		memcpy(dev->private_key, mnl_attr_get_payload(a), WG_KEY_LEN);
		dev->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
	}
	if ((a = tb[WGDEVICE_A_PUBLIC_KEY]) != NULL)
		memcpy(dev->public_key, mnl_attr_get_payload(a), WG_KEY_LEN);
	if ((a = tb[WGDEVICE_A_LISTEN_PORT]) != NULL) {
		dev->listen_port = mnl_attr_get_u16(a);
		dev->flags |= WG_DEVICE_HAS_LISTEN_PORT;
	}
	return tb[WGDEVICE_A_PEERS] ? walk_nested(tb[WGDEVICE_A_PEERS], parse_peer, dev) : 0;
}

/* ---- Building --------------------------------------------------------- */

struct msg {
	struct nlmsghdr *nlh;
	size_t size;
};

/* Both the wireguard family and the controller take version 1. */
static struct nlmsghdr *msg_start(void *buf, uint16_t type, uint8_t cmd, uint16_t flags,
				  uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	genl->cmd = cmd;
	genl->version = WG_GENL_VERSION;
	return nlh;
}

static bool put_device(struct msg *m, const struct wg_device *dev)
{
	if ((dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) &&
	    !mnl_attr_put_check(m->nlh, m->size, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN,
				dev->private_key))
		return false;
	return !(dev->flags & WG_DEVICE_HAS_LISTEN_PORT) ||
	       mnl_attr_put_u16_check(m->nlh, m->size, WGDEVICE_A_LISTEN_PORT, dev->listen_port);
}

static bool put_allowed_ip(struct msg *m, const struct ip_cidr *c)
{
	struct nlattr *nest = mnl_attr_nest_start_check(m->nlh, m->size, 0);

	if (nest == NULL ||
	    !mnl_attr_put_u16_check(m->nlh, m->size, WGALLOWEDIP_A_FAMILY, c->addr.family) ||
	    !mnl_attr_put_check(m->nlh, m->size, WGALLOWEDIP_A_IPADDR,
				ip_family_len(c->addr.family), c->addr.bytes) ||
	    !mnl_attr_put_u8_check(m->nlh, m->size, WGALLOWEDIP_A_CIDR_MASK, c->prefix)) {
		if (nest != NULL)
			mnl_attr_nest_cancel(m->nlh, nest);
		return false;
	}
	mnl_attr_nest_end(m->nlh, nest);
	return true;
}

/* Key, flags, PSK, keepalive: all of a peer but its allowed IPs. A removed
 * peer needs only its key. PSK and keepalive go with the first chunk only. */
static bool put_peer_head(struct msg *m, const struct wg_peer *p, bool first)
{
	uint32_t flags = 0;

	if (!mnl_attr_put_check(m->nlh, m->size, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p->public_key))
		return false;
	if (p->flags & WG_PEER_REMOVE)
		flags |= WGPEER_F_REMOVE_ME;
	else if (first && (p->flags & WG_PEER_REPLACE_ALLOWED_IPS))
		flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
	if (flags != 0 && !mnl_attr_put_u32_check(m->nlh, m->size, WGPEER_A_FLAGS, flags))
		return false;
	if (!first || (p->flags & WG_PEER_REMOVE))
		return true;
	if ((p->flags & WG_PEER_HAS_PSK) &&
	    !mnl_attr_put_check(m->nlh, m->size, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, p->psk))
		return false;
	return !(p->flags & WG_PEER_HAS_KEEPALIVE) ||
	       mnl_attr_put_u16_check(m->nlh, m->size, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
				      p->keepalive);
}

/*
 * One chunk of peer p from allowed IP *aip on. Returns true when the chunk
 * went in (*aip advanced; == n_allowed_ips when the peer is complete), false
 * when nothing of it fits: a chunk always carries at least one allowed IP
 * unless the peer has none left, so every message makes progress.
 */
static bool put_peer(struct msg *m, const struct wg_peer *p, size_t *aip)
{
	struct nlattr *peer = mnl_attr_nest_start_check(m->nlh, m->size, 0), *ips;
	bool remove = p->flags & WG_PEER_REMOVE;
	size_t i = *aip;

	if (peer == NULL)
		return false;
	if (!put_peer_head(m, p, i == 0))
		goto err_cancel_peer;
	if (!remove && i < p->n_allowed_ips) {
		ips = mnl_attr_nest_start_check(m->nlh, m->size, WGPEER_A_ALLOWEDIPS);
		if (ips == NULL)
			goto err_cancel_peer;
		while (i < p->n_allowed_ips && put_allowed_ip(m, &p->allowed_ips[i]))
			i++;
		if (i == *aip)
			goto err_cancel_peer;
		mnl_attr_nest_end(m->nlh, ips);
	}
	mnl_attr_nest_end(m->nlh, peer);
	*aip = remove ? p->n_allowed_ips : i;
	return true;
err_cancel_peer:
	mnl_attr_nest_cancel(m->nlh, peer);
	return false;
}

/* As many peers (or chunks) as fit from *peer / *aip on; false when none did. */
static bool put_peers(struct msg *m, const struct wg_device *dev, size_t *peer, size_t *aip)
{
	struct nlattr *nest = mnl_attr_nest_start_check(m->nlh, m->size, WGDEVICE_A_PEERS);
	size_t start = *peer, start_aip = *aip;

	if (nest == NULL)
		return false;
	while (*peer < dev->n_peers && put_peer(m, &dev->peers[*peer], aip)) {
		if (*aip < dev->peers[*peer].n_allowed_ips)
			break;
		(*peer)++;
		*aip = 0;
	}
	if (*peer == start && *aip == start_aip) {
		mnl_attr_nest_cancel(m->nlh, nest);
		return false;
	}
	mnl_attr_nest_end(m->nlh, nest);
	return true;
}

/*
 * The first message carries the device fields, alone if no peer fits beside
 * them. A change with nothing in it still makes one message (the name only).
 * Each message is wiped once emitted: it holds keys, and libmnl leaves
 * attribute padding as it finds it, which must not be the last message.
 */
int wg_nl_build_set(const struct wg_device *change, uint16_t family_id, uint32_t seq,
		    size_t bufsize, int (*emit)(void *ctx, const struct nlmsghdr *nlh), void *ctx)
{
	struct msg m = {.size = bufsize};
	size_t peer = 0, aip = 0;
	bool first = true;
	void *buf;
	int r = 0;

	if (bufsize < GENL_MSG_HDRLEN)
		return -EMSGSIZE;
	buf = calloc(1, bufsize);
	if (buf == NULL)
		return -ENOMEM;
	do {
		m.nlh = msg_start(buf, family_id, WG_CMD_SET_DEVICE, NLM_F_REQUEST | NLM_F_ACK,
				  seq++);
		bool carries = first && change->flags != 0;
		if (!mnl_attr_put_strz_check(m.nlh, m.size, WGDEVICE_A_IFNAME, change->ifname) ||
		    (first && !put_device(&m, change))) {
			r = -EMSGSIZE;
			break;
		}
		if (peer < change->n_peers && !put_peers(&m, change, &peer, &aip) && !carries) {
			r = -EMSGSIZE;
			break;
		}
		r = emit(ctx, m.nlh);
		sodium_memzero(buf, m.nlh->nlmsg_len);
		first = false;
	} while (r == 0 && peer < change->n_peers);
	sodium_memzero(buf, bufsize);
	free(buf);
	return r;
}

/* ---- The socket ------------------------------------------------------- */

struct wg_nl {
	struct wg_backend b;
	struct mnl_socket *sock;
	uint32_t portid, seq;
	uint16_t family_id;
	uint8_t *buf; /* NL_RECV_SIZE; wiped after each use, dumps carry the private key */
};

typedef int (*msg_cb)(const struct nlmsghdr *nlh, void *data);

/* Handles one reply; true when it ends the request. Keeps the first error. */
static bool nl_dispatch(const struct nlmsghdr *h, msg_cb cb, void *data, int *err)
{
	int status = 0;

	switch (h->nlmsg_type) {
	case NLMSG_ERROR:
	case NLMSG_DONE:
		if (h->nlmsg_len >= mnl_nlmsg_size(sizeof(int)))
			memcpy(&status, mnl_nlmsg_get_payload(h), sizeof(int));
		else if (h->nlmsg_type == NLMSG_ERROR)
			status = -EBADMSG;
		if (h->nlmsg_flags & NLM_F_DUMP_INTR)
			status = -EINTR;
		if (*err == 0)
			*err = status > 0 ? -EPROTO : status;
		return true;
	default:
		if (h->nlmsg_type < NLMSG_MIN_TYPE)
			return false;
		if (*err == 0 && cb != NULL)
			*err = cb(h, data);
		return false;
	}
}

/*
 * Read the replies to seq until its ACK, error or NLMSG_DONE, skipping
 * leftovers of earlier requests. After an error (a bad or interrupted dump
 * part) the rest is still read, so the next request starts clean.
 */
static int nl_recv(struct wg_nl *nl, uint32_t seq, msg_cb cb, void *data)
{
	int err = 0;
	bool done = false;

	while (!done) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, NL_RECV_SIZE);
		if (n < 0) {
			err = -errno;
			break;
		}
		int len = (int)n;
		for (const struct nlmsghdr *h = (void *)nl->buf; !done && mnl_nlmsg_ok(h, len);
		     h = mnl_nlmsg_next(h, &len)) {
			if (h->nlmsg_seq == seq && h->nlmsg_pid == nl->portid)
				done = nl_dispatch(h, cb, data, &err);
		}
	}
	sodium_memzero(nl->buf, NL_RECV_SIZE);
	return err;
}

static int nl_send(struct wg_nl *nl, const struct nlmsghdr *nlh)
{
	return mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	return wg_nl_dump_merge(data, nlh);
}

static int dump_once(struct wg_nl *nl, const char *ifname, struct wg_device *dev)
{
	_Alignas(struct nlmsghdr) uint8_t req[SMALL_REQ_SIZE] = {0};
	struct nlmsghdr *nlh = msg_start(req, nl->family_id, WG_CMD_GET_DEVICE,
					 NLM_F_REQUEST | NLM_F_DUMP, nl->seq++);
	int r;

	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	r = nl_send(nl, nlh);
	return r < 0 ? r : nl_recv(nl, nlh->nlmsg_seq, dump_cb, dev);
}

static int nl_get(struct wg_backend *b, const char *ifname, struct wg_device **ret_dev)
{
	struct wg_nl *nl = (struct wg_nl *)b;

	if (strlen(ifname) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	for (int i = 0; i < DUMP_TRIES; i++) {
		struct wg_device *dev = wg_device_new(NULL);
		int r = dev != NULL ? dump_once(nl, ifname, dev) : -ENOMEM;
		if (r == 0) {
			*ret_dev = dev;
			return 0;
		}
		wg_device_free(dev);
		if (r == -ENOENT || r == -ENODEV)
			return -ENODEV;
		if (r != -EINTR)
			return r;
	}
	return -EAGAIN;
}

static int set_emit(void *ctx, const struct nlmsghdr *nlh)
{
	struct wg_nl *nl = ctx;
	int r = nl_send(nl, nlh);

	nl->seq = nlh->nlmsg_seq + 1;
	if (r < 0)
		return r;
	nl->b.messages_sent++;
	return nl_recv(nl, nlh->nlmsg_seq, NULL, NULL);
}

static int nl_set(struct wg_backend *b, const char *ifname, const struct wg_device *change)
{
	struct wg_nl *nl = (struct wg_nl *)b;
	struct wg_device named;
	int r;

	if (strlen(ifname) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	if (wg_device_is_empty(change))
		return 0;
	named = *change; /* under the interface name we were given */
	memcpy(named.ifname, ifname, strlen(ifname) + 1);
	r = wg_nl_build_set(&named, nl->family_id, nl->seq, (size_t)MNL_SOCKET_BUFFER_SIZE,
			    set_emit, nl);
	sodium_memzero(named.private_key, sizeof(named.private_key));
	return r;
}

static void nl_free(struct wg_backend *b)
{
	struct wg_nl *nl = (struct wg_nl *)b;

	mnl_socket_close(nl->sock);
	free(nl->buf);
	free(nl);
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[CTRL_ATTR_FAMILY_ID + 1] = {0};
	int r = table_genl(nlh, tb, ctrl_lens, ARRAY_SIZE(tb));

	if (r == 0 && tb[CTRL_ATTR_FAMILY_ID] != NULL)
		*(uint16_t *)data = mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	return r;
}

static int resolve_family(struct wg_nl *nl)
{
	_Alignas(struct nlmsghdr) uint8_t req[SMALL_REQ_SIZE] = {0};
	struct nlmsghdr *nlh = msg_start(req, GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
					 NLM_F_REQUEST | NLM_F_ACK, nl->seq++);
	int r;

	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	r = nl_send(nl, nlh);
	if (r == 0)
		r = nl_recv(nl, nlh->nlmsg_seq, family_cb, &nl->family_id);
	if (r == 0 && nl->family_id == 0)
		r = -ENOENT;
	return r;
}

int wg_nl_new(struct wg_backend **ret_backend)
{
	struct wg_nl *nl = calloc(1, sizeof(*nl));
	int one = 1, r = -ENOMEM;

	if (nl == NULL || (nl->buf = malloc(NL_RECV_SIZE)) == NULL)
		goto err_free;
	nl->sock = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (nl->sock == NULL || mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto err_close;
	}
	/* Errors would otherwise echo our request, PSKs included. Old kernels lack it. */
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = 1;
	r = resolve_family(nl);
	if (r < 0)
		goto err_close;
	nl->b = (struct wg_backend){
		.kind = WG_BACKEND_KERNEL, .get = nl_get, .set = nl_set, .free = nl_free};
	*ret_backend = &nl->b;
	return 0;
err_close:
	if (nl->sock != NULL)
		mnl_socket_close(nl->sock);
err_free:
	if (nl != NULL)
		free(nl->buf);
	free(nl);
	return r;
}
