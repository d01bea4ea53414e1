/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * wg_patchtime: the time of one-peer patches as the web sends them, on one
 * connection after its Hello (which agentctl would repeat, with the dump it
 * costs, for every patch).
 *
 *   wg_patchtime SOCKET FILE
 *
 * FILE: peer lines "PUBKEY_B64 [psk=B64] [keepalive=N] [allowed=CIDR,...]"
 * (agentctl genpeers). Connects, says Hello, then sends one PeersPatch per
 * line upserting that peer, then one per line removing it again, each
 * timed from the send to its Result. Prints "upsert MS" and "remove MS"
 * lines (milliseconds, CLOCK_MONOTONIC). Exit 0, 1 on an error Result,
 * 2 on usage, input or connection trouble.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "frame.h"
#include "key.h"

#define MAX_LINES 10000
#define MAX_CIDRS 8

struct peer_in {
	uint8_t key[WG_KEY_LEN];
	uint8_t psk[WG_KEY_LEN];
	bool has_psk;
	uint32_t keepalive;
	struct ip_cidr cidrs[MAX_CIDRS];
	size_t n_cidrs;
};

__attribute__((format(printf, 1, 2))) static int trouble(const char *fmt, ...)
{
	va_list ap;

	fputs("wg_patchtime: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

static int parse_allowed(struct peer_in *p, char *list)
{
	char *save = NULL;

	for (char *c = strtok_r(list, ",", &save); c != NULL; c = strtok_r(NULL, ",", &save)) {
		if (p->n_cidrs == MAX_CIDRS || ip_cidr_parse(c, 0, &p->cidrs[p->n_cidrs]) < 0)
			return -EINVAL;
		p->n_cidrs++;
	}
	return 0;
}

static int parse_line(char *line, struct peer_in *p)
{
	char *save = NULL, *tok = strtok_r(line, " \t\n", &save);

	memset(p, 0, sizeof(*p));
	if (tok == NULL || wg_key_from_base64(tok, p->key) < 0)
		return -EINVAL;
	while ((tok = strtok_r(NULL, " \t\n", &save)) != NULL) {
		if (strncmp(tok, "psk=", 4) == 0) {
			if (wg_key_from_base64(tok + 4, p->psk) < 0)
				return -EINVAL;
			p->has_psk = true;
		} else if (strncmp(tok, "keepalive=", 10) == 0) {
			char *end;
			unsigned long v = strtoul(tok + 10, &end, 10);
			if (*end != '\0' || v > 65535)
				return -EINVAL;
			p->keepalive = (uint32_t)v;
		} else if (strncmp(tok, "allowed=", 8) == 0) {
			if (parse_allowed(p, tok + 8) < 0)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

static int read_peers(const char *path, struct peer_in *peers, size_t *ret_n)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	size_t n = 0;
	int r = 0;

	if (f == NULL)
		return trouble("%s: %s", path, strerror(errno));
	while (r == 0 && fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (n == MAX_LINES)
			r = trouble("%s: more than %d peers", path, MAX_LINES);
		else if (parse_line(line, &peers[n]) < 0)
			r = trouble("%s: bad peer line %zu", path, n + 1);
		else
			n++;
	}
	fclose(f);
	*ret_n = n;
	return r;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_exact(int fd, uint8_t *buf, size_t len)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = read(fd, buf + have, len - have);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		have += (size_t)n;
	}
	return 0;
}

static int send_msg(int fd, uint16_t type, const ProtobufCMessage *msg)
{
	uint8_t *buf;
	size_t len;
	int r = frame_encode(type, msg, &buf, &len);

	if (r < 0)
		return r;
	r = write_all(fd, buf, len);
	explicit_bzero(buf, len);
	free(buf);
	return r;
}

/* The next message: 0 or -errno / -EBADMSG. */
static int recv_msg(int fd, uint16_t *ret_type, ProtobufCMessage **ret_msg)
{
	uint8_t head[FRAME_HEADER_LEN];
	struct frame_header hdr;
	uint8_t *payload;
	int r = read_exact(fd, head, sizeof(head));

	if (r < 0)
		return r;
	if (frame_header_decode(head, &hdr) != WIREGUI__ERROR_CODE__OK)
		return -EBADMSG;
	payload = malloc(hdr.length ? hdr.length : 1);
	if (payload == NULL)
		return -ENOMEM;
	r = read_exact(fd, payload, hdr.length);
	if (r == 0 &&
	    frame_decode(hdr.type, payload, hdr.length, ret_msg) != WIREGUI__ERROR_CODE__OK)
		r = -EBADMSG;
	free(payload);
	*ret_type = hdr.type;
	return r;
}

static int connect_hello(const char *path, int *ret_fd, char **ret_iface)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	Wiregui__Hello hello = WIREGUI__HELLO__INIT;
	ProtobufCMessage *msg;
	uint16_t type;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return trouble("socket path too long");
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = trouble("connect %s: %s", path, strerror(errno));
		goto close_fd;
	}
	hello.request_id = 1;
	hello.protocol_version = FRAME_VERSION;
	hello.client = (char *)"wg_patchtime";
	r = send_msg(fd, WIREGUI__MSG_TYPE__MSG_HELLO, &hello.base);
	if (r == 0)
		r = recv_msg(fd, &type, &msg);
	if (r < 0) {
		r = trouble("hello: %s", strerror(-r));
		goto close_fd;
	}
	const Wiregui__HelloReply *reply = (const Wiregui__HelloReply *)msg;
	if (type != WIREGUI__MSG_TYPE__MSG_HELLO_REPLY || reply->n_interfaces == 0) {
		protobuf_c_message_free_unpacked(msg, NULL);
		r = trouble("the agent did not answer the Hello with an interface");
		goto close_fd;
	}
	*ret_iface = strdup(reply->interfaces[0]->name);
	protobuf_c_message_free_unpacked(msg, NULL);
	if (*ret_iface == NULL) {
		r = trouble("out of memory");
		goto close_fd;
	}
	*ret_fd = fd;
	return 0;
close_fd:
	if (fd >= 0)
		close(fd);
	return r;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Send the patch, wait for its Result: 0, 1 (error Result) or 2. */
static int timed_patch(int fd, Wiregui__PeersPatch *patch, const char *what)
{
	ProtobufCMessage *msg;
	uint16_t type;
	double t0 = now_ms();
	int r = send_msg(fd, WIREGUI__MSG_TYPE__MSG_PEERS_PATCH, &patch->base);

	if (r == 0)
		r = recv_msg(fd, &type, &msg);
	if (r < 0)
		return trouble("%s %" PRIu64 ": %s", what, patch->request_id, strerror(-r));
	double t1 = now_ms();
	const Wiregui__Result *res = (const Wiregui__Result *)msg;
	if (type != WIREGUI__MSG_TYPE__MSG_RESULT || res->request_id != patch->request_id) {
		r = trouble("%s %" PRIu64 ": not its Result", what, patch->request_id);
	} else if (res->code != WIREGUI__ERROR_CODE__OK) {
		fprintf(stderr, "wg_patchtime: %s %" PRIu64 ": error %d %s: %s\n", what,
			patch->request_id, res->code, res->field, res->message);
		r = 1;
	} else {
		printf("%s %.3f\n", what, t1 - t0);
	}
	protobuf_c_message_free_unpacked(msg, NULL);
	return r;
}

static int upsert(int fd, const char *iface, uint64_t id, const struct peer_in *in)
{
	Wiregui__PeersPatch patch = WIREGUI__PEERS_PATCH__INIT;
	Wiregui__Peer peer = WIREGUI__PEER__INIT;
	Wiregui__Peer *peers[] = {&peer};
	Wiregui__Cidr cidrs[MAX_CIDRS];
	Wiregui__Cidr *cidr_ptrs[MAX_CIDRS];

	peer.public_key.data = (uint8_t *)in->key;
	peer.public_key.len = WG_KEY_LEN;
	if (in->has_psk) {
		peer.preshared_key.data = (uint8_t *)in->psk;
		peer.preshared_key.len = WG_KEY_LEN;
	}
	peer.persistent_keepalive = in->keepalive;
	for (size_t i = 0; i < in->n_cidrs; i++) {
		wiregui__cidr__init(&cidrs[i]);
		cidrs[i].address.data = (uint8_t *)in->cidrs[i].addr.bytes;
		cidrs[i].address.len = ip_family_len(in->cidrs[i].addr.family);
		cidrs[i].prefix = in->cidrs[i].prefix;
		cidr_ptrs[i] = &cidrs[i];
	}
	peer.n_allowed_ips = in->n_cidrs;
	peer.allowed_ips = cidr_ptrs;
	patch.request_id = id;
	patch.interface = (char *)iface;
	patch.n_upsert = 1;
	patch.upsert = peers;
	return timed_patch(fd, &patch, "upsert");
}

static int remove_peer(int fd, const char *iface, uint64_t id, const struct peer_in *in)
{
	Wiregui__PeersPatch patch = WIREGUI__PEERS_PATCH__INIT;
	ProtobufCBinaryData key = {.len = WG_KEY_LEN, .data = (uint8_t *)in->key};

	patch.request_id = id;
	patch.interface = (char *)iface;
	patch.n_remove = 1;
	patch.remove = &key;
	return timed_patch(fd, &patch, "remove");
}

int main(int argc, char **argv)
{
	static struct peer_in peers[MAX_LINES];
	char *iface = NULL;
	size_t n = 0;
	uint64_t id = 2;
	int fd = -1, r;

	if (argc != 3)
		return trouble("usage: wg_patchtime SOCKET FILE");
	r = read_peers(argv[2], peers, &n);
	if (r == 0)
		r = connect_hello(argv[1], &fd, &iface);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = upsert(fd, iface, id++, &peers[i]);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = remove_peer(fd, iface, id++, &peers[i]);
	explicit_bzero(peers, sizeof(peers));
	free(iface);
	if (fd >= 0)
		close(fd);
	return r;
}
