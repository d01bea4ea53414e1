/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "wg_uapi.h"

#include <endian.h>
#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* Per connect/send/recv step, so a hung wireguard-go cannot hang the agent. */
#define UAPI_TIMEOUT_SEC 30
#define UAPI_REPLY_FIRST (64u << 10)
#define UAPI_REPLY_MAX (256u << 20)
/* Longest value accepted in a reply: an endpoint "[v6%zone]:port" fits. */
#define UAPI_VALUE_MAX 127
/* Largest errno accepted in errno=N (the kernel's MAX_ERRNO). */
#define UAPI_ERRNO_MAX 4095
/* The next get's first buffer: the last reply's size and a quarter more. */
#define UAPI_REPLY_SLACK(len) ((len) + (len) / 4)

/*
 * Request text. The exact size is bounded first, so one allocation holds
 * it (no realloc leaving copies of keys behind) and the writers below
 * need no room checks.
 */
#define LIT(s) (sizeof(s) - 1)
#define KEY_LINE(name) (LIT(name) + WG_KEY_HEX_LEN + 1)
#define U16_LINE(name) (LIT(name) + 5 + 1)
#define CIDR_LINE (LIT("allowed_ip=") + IP_CIDR_STRLEN) /* STRLEN's NUL counts the '\n' */

struct text {
	char *p;
	size_t len;
};

static void put(struct text *t, const char *s, size_t n)
{
	memcpy(t->p + t->len, s, n);
	t->len += n;
}

static void put_key(struct text *t, const char *name, const uint8_t key[WG_KEY_LEN])
{
	put(t, name, strlen(name));
	wg_key_to_hex(key, t->p + t->len); /* its NUL becomes the '\n' */
	t->len += WG_KEY_HEX_LEN;
	t->p[t->len++] = '\n';
}

/* The bound reserves five digits and the '\n' beyond the name. */
static void put_u16(struct text *t, const char *name, uint16_t v)
{
	char digits[8];
	int n = snprintf(digits, sizeof(digits), "%u\n", (unsigned)v);
	put(t, name, strlen(name));
	put(t, digits, (size_t)n);
}

static int put_peer(struct text *t, const struct wg_peer *peer)
{
	put_key(t, "public_key=", peer->public_key);
	if (peer->flags & WG_PEER_REMOVE) {
		put(t, "remove=true\n", LIT("remove=true\n"));
		return 0;
	}
	if (peer->flags & WG_PEER_HAS_PSK)
		put_key(t, "preshared_key=", peer->psk);
	if (peer->flags & WG_PEER_HAS_KEEPALIVE)
		put_u16(t, "persistent_keepalive_interval=", peer->keepalive);
	if (peer->flags & WG_PEER_REPLACE_ALLOWED_IPS)
		put(t, "replace_allowed_ips=true\n", LIT("replace_allowed_ips=true\n"));
	for (size_t i = 0; i < peer->n_allowed_ips; i++) {
		put(t, "allowed_ip=", LIT("allowed_ip="));
		if (ip_cidr_format(&peer->allowed_ips[i], t->p + t->len, IP_CIDR_STRLEN) < 0)
			return -EINVAL;
		t->len += strlen(t->p + t->len);
		t->p[t->len++] = '\n';
	}
	return 0;
}

static int set_text_bound(const struct wg_device *change, size_t *ret_bound)
{
	size_t bound = LIT("set=1\n") + KEY_LINE("private_key=") + U16_LINE("listen_port=") + 2;
	const size_t per_peer =
		KEY_LINE("public_key=") + LIT("remove=true\n") + KEY_LINE("preshared_key=") +
		U16_LINE("persistent_keepalive_interval=") + LIT("replace_allowed_ips=true\n");

	for (size_t i = 0; i < change->n_peers; i++) {
		size_t ips;
		if (__builtin_mul_overflow(change->peers[i].n_allowed_ips, CIDR_LINE, &ips) ||
		    __builtin_add_overflow(bound, ips + per_peer, &bound))
			return -ENOMEM;
	}
	*ret_bound = bound;
	return 0;
}

/* The text holds the private key and PSKs: the caller wipes it (sodium_memzero) before free. */
int wg_uapi_format_set(const struct wg_device *change, char **ret_text, size_t *ret_len)
{
	struct text t = {0};
	size_t bound;
	int r;

	if (set_text_bound(change, &bound) < 0)
		return -ENOMEM;
	t.p = malloc(bound);
	if (t.p == NULL)
		return -ENOMEM;
	put(&t, "set=1\n", LIT("set=1\n"));
	if (change->flags & WG_DEVICE_HAS_PRIVATE_KEY)
		put_key(&t, "private_key=", change->private_key);
	if (change->flags & WG_DEVICE_HAS_LISTEN_PORT)
		put_u16(&t, "listen_port=", change->listen_port);
	for (size_t i = 0; i < change->n_peers; i++) {
		r = put_peer(&t, &change->peers[i]);
		if (r < 0)
			goto err_wipe_text;
	}
	put(&t, "\n", 1);
	t.p[t.len] = '\0';
	*ret_text = t.p;
	*ret_len = t.len;
	return 0;

err_wipe_text:
	sodium_memzero(t.p, bound);
	free(t.p);
	return r;
}

/* Decimal digits only (no sign, no spaces), at most max. 0 or -EBADMSG. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (n == 0)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || __builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
			return -EBADMSG;
	}
	if (v > max)
		return -EBADMSG;
	*ret = v;
	return 0;
}

/*
 * The xplatform page says errno=N with N from errno.h; wireguard-go
 * writes its codes negated (errno=-22). Either way the result is -N.
 */
static int parse_errno_value(const char *s, size_t n, int *ret)
{
	uint64_t v;
	bool minus = n > 0 && s[0] == '-';

	if (parse_u64(s + minus, n - minus, UAPI_ERRNO_MAX, &v) < 0)
		return -EBADMSG;
	*ret = -(int)v;
	return 0;
}

/*
 * Keys in a dump, eight hex symbols a step. The contract of
 * wg_key_from_hex (common/key.c: exactly 64 symbols, either case) and its
 * care: no branch or table lookup depends on a symbol, for PSKs and the
 * private key come this way too. A dump carries two keys a peer and
 * decoding them one symbol at a time was the parser's largest cost.
 */
#define BYTES(b) (0x0101010101010101ull * (uint8_t)(b))

/* 0x80 in each byte lane of x (all below 0x80) holding lo <= byte <= hi. */
static uint64_t lanes_in(uint64_t x, uint8_t lo, uint8_t hi)
{
	return (x + BYTES(0x80 - lo)) & ~(x + BYTES(0x7f - hi)) & BYTES(0x80);
}

/* Eight symbols to four bytes; *bad gets a non-zero bit for any non-hex symbol. */
static uint32_t hex8(const char *s, uint64_t *bad)
{
	uint64_t x;

	memcpy(&x, s, sizeof(x));
	x = le64toh(x); /* the first symbol in the low byte */
	*bad |= x & BYTES(0x80);
	x &= BYTES(0x7f);
	uint64_t letter = lanes_in(x, 'a', 'f') | lanes_in(x, 'A', 'F');
	*bad |= (lanes_in(x, '0', '9') | letter) ^ BYTES(0x80);
	/* '0'-'9' are 0x30-0x39, 'a'-'f' and 'A'-'F' end in 1-6: nibbles. */
	uint64_t nib = (x & BYTES(0x0f)) + (letter >> 7) * 9;
	/* Lane pairs (high nibble first) to bytes, then the bytes side by side. */
	uint64_t t = ((nib & 0x00ff00ff00ff00ffull) << 4) | ((nib >> 8) & 0x00ff00ff00ff00ffull);
	t = (t | (t >> 8)) & 0x0000ffff0000ffffull;
	return (uint32_t)(t | (t >> 16));
}

/* v of n symbols: 0 or -EBADMSG; ret_key is written only on success. */
static int key_from_hex(const char *v, size_t n, uint8_t ret_key[WG_KEY_LEN])
{
	uint8_t key[WG_KEY_LEN];
	uint64_t bad = 0;

	if (n != WG_KEY_HEX_LEN)
		return -EBADMSG;
	for (unsigned i = 0; i < WG_KEY_LEN / 4; i++) {
		uint32_t w = htole32(hex8(v + 8 * i, &bad)); /* the first byte low */
		memcpy(key + 4 * i, &w, sizeof(w));
	}
	if (bad == 0)
		memcpy(ret_key, key, WG_KEY_LEN);
	sodium_memzero(key, sizeof(key));
	return bad == 0 ? 0 : -EBADMSG;
}

/* State of a get reply being parsed: the current peer, keys seen in its section. */
struct get_parse {
	struct wg_device *dev;
	struct wg_peer *peer;
	unsigned seen;
	bool have_errno;
	int err;
};

/* "1.2.3.4:51820" or "[2001:db8::1]:51820"; a zone ("[fe80::1%eth0]:1") is dropped. */
static int get_endpoint(struct wg_peer *peer, char *v, size_t n)
{
	char *host = v, *port;
	struct ip_addr addr;
	uint64_t p;

	if (v[0] == '[') {
		char *close = memchr(v, ']', n);
		if (close == NULL || close[1] != ':')
			return -EBADMSG;
		*close = '\0';
		host = v + 1;
		port = close + 2;
		char *zone = strchr(host, '%');
		if (zone != NULL)
			*zone = '\0';
	} else {
		port = strrchr(v, ':');
		if (port == NULL)
			return -EBADMSG;
		*port++ = '\0';
	}
	if (ip_addr_parse(host, &addr) < 0 || parse_u64(port, strlen(port), UINT16_MAX, &p) < 0 ||
	    (addr.family == AF_INET6) != (v[0] == '['))
		return -EBADMSG;
	peer->endpoint = addr;
	peer->endpoint_port = (uint16_t)p;
	return 0;
}

/* wireguard-go reports masked prefixes; host bits are cleared anyway to keep wg.h's promise. */
static int get_allowed_ip(struct wg_peer *peer, const char *v)
{
	struct ip_cidr cidr;

	if (ip_cidr_parse(v, IP_CIDR_ALLOW_HOST_BITS, &cidr) < 0)
		return -EBADMSG;
	ip_cidr_mask(&cidr);
	return wg_peer_add_allowed_ip(peer, &cidr);
}

/* A dump always carries the PSK (zero = none) and keepalive of every peer. */
static int get_public_key(struct get_parse *g, const char *v, size_t n)
{
	g->peer = wg_device_add_peer(g->dev);
	if (g->peer == NULL)
		return -ENOMEM;
	g->peer->flags = WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE;
	g->seen = 0;
	return key_from_hex(v, n, g->peer->public_key);
}

static int get_private_key(struct wg_device *dev, const char *v, size_t n)
{
	if (key_from_hex(v, n, dev->private_key) < 0 ||
	    crypto_scalarmult_curve25519_base(dev->public_key, dev->private_key) != 0)
		return -EBADMSG;
	dev->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
	return 0;
}

enum get_field {
	F_PRIVATE_KEY,
	F_LISTEN_PORT,
	F_FWMARK,
	F_PUBLIC_KEY,
	F_PSK,
	F_PROTOCOL_VERSION,
	F_ENDPOINT,
	F_HANDSHAKE_SEC,
	F_HANDSHAKE_NSEC,
	F_TX_BYTES,
	F_RX_BYTES,
	F_KEEPALIVE,
	F_ALLOWED_IP,
	F_ERRNO,
};

enum {
	IN_DEVICE = 1,
	IN_PEER = 2
};

/*
 * Every key wireguard-go writes, indexed by get_field. Unknown keys are
 * refused (-EBADMSG): the agent reconciles against this dump, and a key it
 * does not understand may change what a peer means. A key that a future
 * wireguard-go adds needs a row here.
 */
#define KEY(s) s, LIT(s)
static const struct {
	const char *name;
	size_t len;
	unsigned scope;
	bool repeats;
} get_keys[] = {
	[F_PRIVATE_KEY] = {KEY("private_key"), IN_DEVICE, false},
	[F_LISTEN_PORT] = {KEY("listen_port"), IN_DEVICE, false},
	[F_FWMARK] = {KEY("fwmark"), IN_DEVICE, false},
	[F_PUBLIC_KEY] = {KEY("public_key"), IN_DEVICE | IN_PEER, true},
	[F_PSK] = {KEY("preshared_key"), IN_PEER, false},
	[F_PROTOCOL_VERSION] = {KEY("protocol_version"), IN_PEER, false},
	[F_ENDPOINT] = {KEY("endpoint"), IN_PEER, false},
	[F_HANDSHAKE_SEC] = {KEY("last_handshake_time_sec"), IN_PEER, false},
	[F_HANDSHAKE_NSEC] = {KEY("last_handshake_time_nsec"), IN_PEER, false},
	[F_TX_BYTES] = {KEY("tx_bytes"), IN_PEER, false},
	[F_RX_BYTES] = {KEY("rx_bytes"), IN_PEER, false},
	[F_KEEPALIVE] = {KEY("persistent_keepalive_interval"), IN_PEER, false},
	[F_ALLOWED_IP] = {KEY("allowed_ip"), IN_PEER, true},
	[F_ERRNO] = {KEY("errno"), IN_DEVICE | IN_PEER, false},
};

static int get_field_find(const char *key, size_t n)
{
	for (size_t i = 0; i < sizeof(get_keys) / sizeof(get_keys[0]); i++)
		if (get_keys[i].len == n && get_keys[i].name[0] == key[0] &&
		    memcmp(get_keys[i].name, key, n) == 0)
			return (int)i;
	return -EBADMSG;
}

/* v is a NUL-terminated copy of n bytes; g->peer is set for peer fields. */
static int get_value(struct get_parse *g, enum get_field f, char *v, size_t n)
{
	struct wg_peer *peer = g->peer;
	uint64_t x = 0;
	int r;

	switch (f) {
	case F_PRIVATE_KEY:
		return get_private_key(g->dev, v, n);
	case F_LISTEN_PORT:
		g->dev->flags |= WG_DEVICE_HAS_LISTEN_PORT;
		r = parse_u64(v, n, UINT16_MAX, &x);
		g->dev->listen_port = (uint16_t)x;
		return r;
	case F_FWMARK:
		return parse_u64(v, n, UINT32_MAX, &x);
	case F_PUBLIC_KEY:
		return get_public_key(g, v, n);
	case F_PSK:
		return key_from_hex(v, n, peer->psk);
	case F_PROTOCOL_VERSION:
		return strcmp(v, "1") == 0 ? 0 : -EBADMSG;
	case F_ENDPOINT:
		return get_endpoint(peer, v, n);
	case F_HANDSHAKE_SEC:
		r = parse_u64(v, n, INT64_MAX, &x);
		peer->last_handshake = (int64_t)x;
		return r;
	case F_HANDSHAKE_NSEC:
		return parse_u64(v, n, 999999999, &x);
	case F_TX_BYTES:
		return parse_u64(v, n, UINT64_MAX, &peer->tx_bytes);
	case F_RX_BYTES:
		return parse_u64(v, n, UINT64_MAX, &peer->rx_bytes);
	case F_KEEPALIVE:
		r = parse_u64(v, n, UINT16_MAX, &x);
		peer->keepalive = (uint16_t)x;
		return r;
	case F_ALLOWED_IP:
		return get_allowed_ip(peer, v);
	case F_ERRNO:
		g->have_errno = true;
		return parse_errno_value(v, n, &g->err);
	}
	return -EBADMSG;
}

/* One "key=value" line (without its '\n'). The value is copied, then wiped: keys travel here. */
static int get_line(struct get_parse *g, const char *line, size_t n)
{
	const char *eq = memchr(line, '=', n);
	char value[UAPI_VALUE_MAX + 1];
	size_t vlen;
	int f, r;

	if (eq == NULL || g->have_errno)
		return -EBADMSG;
	f = get_field_find(line, (size_t)(eq - line));
	vlen = n - (size_t)(eq - line) - 1;
	if (f < 0 || !(get_keys[f].scope & (g->peer != NULL ? IN_PEER : IN_DEVICE)) || vlen == 0 ||
	    vlen > UAPI_VALUE_MAX || memchr(eq + 1, '\0', vlen) != NULL)
		return -EBADMSG;
	if (!get_keys[f].repeats && (g->seen & (1u << f)))
		return -EBADMSG;
	g->seen |= 1u << f;
	memcpy(value, eq + 1, vlen);
	value[vlen] = '\0';
	r = get_value(g, (enum get_field)f, value, vlen);
	sodium_memzero(value, vlen);
	return r;
}

int wg_uapi_parse_get(const char *text, size_t len, const char *ifname, struct wg_device **ret_dev)
{
	struct get_parse g = {0};
	size_t pos = 0;
	int r;

	g.dev = wg_device_new(ifname);
	if (g.dev == NULL)
		return -ENOMEM;
	for (;;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n;
		if (nl == NULL) {
			r = -EBADMSG;
			goto err_free_dev;
		}
		n = (size_t)(nl - (text + pos));
		if (n == 0)
			break;
		r = get_line(&g, text + pos, n);
		if (r < 0)
			goto err_free_dev;
		pos += n + 1;
	}
	/* The empty line ends the reply and must be its last byte; errno= comes right before it. */
	r = pos + 1 == len && g.have_errno ? g.err : -EBADMSG;
	if (r < 0)
		goto err_free_dev;
	*ret_dev = g.dev;
	return 0;

err_free_dev:
	wg_device_free(g.dev);
	return r;
}

int wg_uapi_parse_errno(const char *text, size_t len)
{
	int err;

	if (len < LIT("errno=\n\n") || memcmp(text, "errno=", LIT("errno=")) != 0 ||
	    text[len - 2] != '\n' || text[len - 1] != '\n' ||
	    parse_errno_value(text + LIT("errno="), len - LIT("errno=\n\n"), &err) < 0)
		return -EBADMSG;
	return err;
}

struct uapi_backend {
	struct wg_backend base; /* first: the backend pointer is this struct's */
	char *sockdir;
	size_t last_reply; /* bytes of the last get reply: sizes the next one's buffer */
};

static int sock_errno(int e)
{
	if (e == EAGAIN || e == EWOULDBLOCK)
		return -ETIMEDOUT;
	if (e == ENOENT || e == ECONNREFUSED)
		return -ENODEV;
	return -e;
}

static int uapi_connect(const char *sockdir, const char *ifname, int *ret_fd)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = UAPI_TIMEOUT_SEC};
	size_t iflen = strnlen(ifname, IFNAMSIZ);
	int fd, n, r;

	if (iflen == 0 || iflen >= IFNAMSIZ || strchr(ifname, '/') != NULL)
		return -EINVAL;
	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s.sock", sockdir, ifname);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Both apply per call; on AF_UNIX the send timeout also bounds connect(). */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		r = -errno;
		goto err_close_fd;
	}
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno != EINTR) {
			r = sock_errno(errno);
			goto err_close_fd;
		}
	}
	/* We send it the private key: only root (or we) may be listening. */
	struct ucred cred;
	socklen_t credlen = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		r = -EPERM;
		goto err_close_fd;
	}
	*ret_fd = fd;
	return 0;

err_close_fd:
	close(fd);
	return r;
}

static int send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sock_errno(errno);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Move to a buffer twice as big, wiping the old one: get replies hold keys. */
static int reply_grow(char **buf, size_t *cap, size_t len)
{
	size_t ncap = *cap * 2 > UAPI_REPLY_MAX ? UAPI_REPLY_MAX : *cap * 2;
	char *p;

	if (len >= UAPI_REPLY_MAX)
		return -EMSGSIZE;
	p = malloc(ncap);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p, *buf, len);
	sodium_memzero(*buf, len);
	free(*buf);
	*buf = p;
	*cap = ncap;
	return 0;
}

/* "\n\n" in the n bytes at p, a line at a time (memchr is fast, memmem's two-byte search not). */
static bool has_empty_line(const char *p, size_t n)
{
	const char *end = p + n, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nl + 1 < end) {
		if (nl[1] == '\n')
			return true;
		p = nl + 1;
	}
	return false;
}

/*
 * Read up to and including the empty line ("\n\n") into a buffer of cap
 * bytes at first (a dump's size is known from the last one: no copies as
 * it grows); the caller wipes and frees.
 */
static int read_reply(int fd, size_t cap, char **ret_buf, size_t *ret_len)
{
	size_t len = 0;
	char *buf;
	int r;

	if (cap < UAPI_REPLY_FIRST)
		cap = UAPI_REPLY_FIRST;
	if (cap > UAPI_REPLY_MAX)
		cap = UAPI_REPLY_MAX;
	buf = malloc(cap);
	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		size_t from = len > 0 ? len - 1 : 0;
		ssize_t n;
		if (len == cap && (r = reply_grow(&buf, &cap, len)) < 0)
			goto err_wipe_buf;
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n == 0 ? -ECONNRESET : sock_errno(errno);
			goto err_wipe_buf;
		}
		len += (size_t)n;
		if (has_empty_line(buf + from, len - from))
			break;
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;

err_wipe_buf:
	sodium_memzero(buf, len);
	free(buf);
	return r;
}

static int uapi_get(struct wg_backend *b, const char *ifname, struct wg_device **ret_dev)
{
	struct uapi_backend *u = (struct uapi_backend *)b;
	char *reply;
	size_t len;
	int fd, r;

	r = uapi_connect(u->sockdir, ifname, &fd);
	if (r < 0)
		return r;
	r = send_all(fd, "get=1\n\n", LIT("get=1\n\n"));
	if (r == 0)
		r = read_reply(fd, UAPI_REPLY_SLACK(u->last_reply), &reply, &len);
	close(fd);
	if (r < 0)
		return r;
	u->last_reply = len;
	r = wg_uapi_parse_get(reply, len, ifname, ret_dev);
	sodium_memzero(reply, len);
	free(reply);
	return r;
}

/* A well-formed "errno=N" reply: 0 and *ret_err = -N; else a read error or -EBADMSG. */
static int reply_errno(int fd, int *ret_err)
{
	char *reply;
	size_t len;
	int r;

	r = read_reply(fd, 0, &reply, &len);
	if (r < 0)
		return r;
	r = wg_uapi_parse_errno(reply, len);
	free(reply);
	if (r == -EBADMSG)
		return r;
	*ret_err = r;
	return 0;
}

/*
 * wireguard-go answers at the first bad line and hangs up on the rest, so
 * a send that fails because the peer left is followed by a read: its
 * errno= is the better error. Empty changes write nothing.
 */
static int uapi_set(struct wg_backend *b, const char *ifname, const struct wg_device *change)
{
	struct uapi_backend *u = (struct uapi_backend *)b;
	size_t len;
	char *text;
	int fd, r, w, err;

	if (wg_device_is_empty(change))
		return 0;
	r = wg_uapi_format_set(change, &text, &len);
	if (r < 0)
		return r;
	r = uapi_connect(u->sockdir, ifname, &fd);
	if (r < 0)
		goto out_wipe_text;
	b->messages_sent++;
	w = send_all(fd, text, len);
	r = w;
	if (w == 0 || w == -EPIPE || w == -ECONNRESET) {
		r = reply_errno(fd, &err);
		if (r == 0 && (w == 0 || err < 0))
			r = err;
		else if (w < 0)
			r = w;
	}
	close(fd);
out_wipe_text:
	sodium_memzero(text, len);
	free(text);
	return r;
}

static void uapi_free(struct wg_backend *b)
{
	struct uapi_backend *u = (struct uapi_backend *)b;

	free(u->sockdir);
	free(u);
}

int wg_uapi_new(const char *sockdir, struct wg_backend **ret_backend)
{
	struct uapi_backend *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return -ENOMEM;
	u->sockdir = strdup(sockdir);
	if (u->sockdir == NULL) {
		free(u);
		return -ENOMEM;
	}
	u->base.kind = WG_BACKEND_USERSPACE;
	u->base.get = uapi_get;
	u->base.set = uapi_set;
	u->base.free = uapi_free;
	*ret_backend = &u->base;
	return 0;
}

bool wg_uapi_probe(const char *sockdir, const char *ifname)
{
	int fd;

	if (uapi_connect(sockdir, ifname, &fd) < 0)
		return false;
	close(fd);
	return true;
}
