/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The firewall backend over NETLINK_NETFILTER. A batch goes to the kernel in
 * one sendmsg, which runs the whole transaction before it returns: every
 * reply is queued by then, so they are read without blocking. A table is
 * read back with a GETTABLE and dumps of its chains, sets, each set's
 * elements and rules, between two reads of the ruleset generation so that
 * the pieces are of one ruleset.
 */
#include "fw_table.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <limits.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The kernel's dump messages are at most 32 KiB. */
#define RECV_SIZE 65536
/* Queued replies: a failing batch can send an error for many of its messages. */
#define RCVBUF_SIZE (8 << 20)
#define SNDBUF_SLACK 65536
#define DUMP_TRIES 8
#define REQ_SIZE 1024

/* The table's name is attribute 1 in every object's messages. */
#define ATTR_TABLE 1
_Static_assert(NFTA_TABLE_NAME == ATTR_TABLE && NFTA_CHAIN_TABLE == ATTR_TABLE &&
		       NFTA_SET_TABLE == ATTR_TABLE && NFTA_SET_ELEM_LIST_TABLE == ATTR_TABLE &&
		       NFTA_RULE_TABLE == ATTR_TABLE,
	       "table attribute");

#define NFT_TYPE(msg) ((uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | (msg)))

struct fw_nl {
	struct fw_backend b;
	struct mnl_socket *sock; /* NULL when a reopen failed */
	bool dirty;		 /* replies may be left unread: reopen first */
	uint32_t portid, seq;
	uint8_t *buf; /* RECV_SIZE */
};

typedef int (*reply_cb)(const struct nlmsghdr *h, void *data);

static int sock_open(struct fw_nl *nl)
{
	int one = 1, rcv = RCVBUF_SIZE, fd;

	nl->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (nl->sock == NULL)
		return -errno;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return r;
	}
	fd = mnl_socket_get_fd(nl->sock);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	/* Errors then carry the kernel's message, not a copy of our request. */
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->dirty = false;
	return 0;
}

/* A socket with no replies of earlier requests left on it. */
static int sock_ready(struct fw_nl *nl)
{
	if (nl->sock != NULL && !nl->dirty)
		return 0;
	if (nl->sock != NULL)
		mnl_socket_close(nl->sock); /* with whatever it still holds */
	nl->sock = NULL;
	return sock_open(nl);
}

/* Room for the batch: netlink refuses a message bigger than the send buffer. */
static void sndbuf_fit(struct fw_nl *nl, size_t len)
{
	int fd = mnl_socket_get_fd(nl->sock), size = (int)(len + SNDBUF_SLACK);

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* One datagram from the kernel; -ENOSPC when it did not fit. */
static ssize_t sock_recv(struct fw_nl *nl, int flags)
{
	struct sockaddr_nl sa;
	struct iovec iov = {nl->buf, RECV_SIZE};
	struct msghdr mh = {
		.msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n = recvmsg(mnl_socket_get_fd(nl->sock), &mh, flags);

	if (n < 0)
		return -errno;
	if (mh.msg_flags & MSG_TRUNC)
		return -ENOSPC;
	return sa.nl_pid == 0 ? n : 0;
}

/* The status an NLMSG_ERROR or NLMSG_DONE carries: 0 or -errno. */
static int reply_status(const struct nlmsghdr *h)
{
	int status = 0;

	if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_len < mnl_nlmsg_size(sizeof(struct nlmsgerr)))
		return -EBADMSG;
	if (h->nlmsg_len >= mnl_nlmsg_size(sizeof(int)))
		memcpy(&status, mnl_nlmsg_get_payload(h), sizeof(int));
	return status > 0 ? -EPROTO : status;
}

/* The attribute of this type among len bytes of attributes, or NULL. */
static const struct nlattr *find_attr(const void *attrs, size_t len, uint16_t type)
{
	const struct nlattr *a = attrs;
	int rem = len <= INT_MAX ? (int)len : 0;

	for (; mnl_attr_ok(a, rem); a = mnl_attr_next(a)) {
		if (mnl_attr_get_type(a) == type)
			return a;
		rem -= (int)NLMSG_ALIGN(a->nla_len);
	}
	return NULL;
}

/* An attribute of an nftables message (length checked by the caller). */
static const struct nlattr *msg_attr(const struct nlmsghdr *h, uint16_t type)
{
	size_t off = mnl_nlmsg_size(sizeof(struct nfgenmsg));

	return find_attr((const uint8_t *)h + off, h->nlmsg_len - off, type);
}

/* A NUL-terminated string attribute of an nftables message, or NULL. */
static const char *msg_str(const struct nlmsghdr *h, uint16_t type)
{
	const struct nlattr *a = msg_attr(h, type);

	return a != NULL && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0 ? mnl_attr_get_str(a)
									   : NULL;
}

/*
 * Read the replies to seq up to its NLMSG_DONE or NLMSG_ERROR, passing the
 * others to cb. All are read even after cb failed, so the socket is clean;
 * a receive error leaves it dirty. *intr: a part was NLM_F_DUMP_INTR.
 */
static int recv_replies(struct fw_nl *nl, uint32_t seq, reply_cb cb, void *data, bool *intr)
{
	int r = 0;

	for (;;) {
		ssize_t n = sock_recv(nl, 0);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			nl->dirty = true;
			return (int)n;
		}
		int len = (int)n;
		const struct nlmsghdr *h = (const void *)nl->buf;
		for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
			if (h->nlmsg_pid != nl->portid || h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				*intr = true;
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				int status = reply_status(h);
				return r != 0 ? r : status;
			}
			if (r == 0 && h->nlmsg_type >= NLMSG_MIN_TYPE)
				r = cb(h, data);
		}
		if (len != 0 && r == 0)
			r = -EBADMSG;
	}
}

/* Send a request (table, and set when not NULL) and read its replies. */
static int request(struct fw_nl *nl, uint16_t msg, uint16_t flags, const char *table,
		   const char *set, reply_cb cb, void *data, bool *intr)
{
	/* Zeroed: libmnl 1.0.4 leaves the padding of attributes as it was. */
	_Alignas(struct nlmsghdr) char req[REQ_SIZE] = {0};
	uint16_t family = msg == NFT_MSG_GETGEN ? AF_UNSPEC : NFPROTO_INET;
	struct nlmsghdr *h =
		nftnl_nlmsg_build_hdr(req, msg, family, (uint16_t)(flags | NLM_F_ACK), nl->seq++);

	if (table != NULL)
		mnl_attr_put_strz(h, ATTR_TABLE, table);
	if (set != NULL)
		mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_SET, set);
	if (mnl_socket_sendto(nl->sock, h, h->nlmsg_len) < 0)
		return -errno;
	return recv_replies(nl, h->nlmsg_seq, cb, data, intr);
}

/* The outcome of a batch, from the replies to its messages. */
struct outcome {
	uint32_t first, last; /* the batch's seqs; last: the one asking for an ack */
	bool acked, lost;
	int error; /* of the first failing message */
	uint32_t error_seq;
};

static void outcome_note(struct outcome *o, const struct nlmsghdr *h)
{
	int status;

	if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq - o->first > o->last - o->first)
		return;
	status = reply_status(h);
	if (status != 0 && o->error == 0) {
		o->error = status;
		o->error_seq = h->nlmsg_seq;
	} else if (status == 0 && h->nlmsg_seq == o->last) {
		o->acked = true;
	}
}

/* The replies are all queued when sendmsg returns: read them up to EAGAIN. */
static int commit_replies(struct fw_nl *nl, struct outcome *o)
{
	for (;;) {
		ssize_t n = sock_recv(nl, MSG_DONTWAIT);
		if (n == -EAGAIN)
			return 0;
		if (n == -ENOBUFS) {
			o->lost = true; /* the latest replies were dropped; read the rest */
		} else if (n < 0 && n != -EINTR) {
			nl->dirty = true;
			return (int)n;
		}
		int len = n > 0 ? (int)n : 0;
		const struct nlmsghdr *h = (const void *)nl->buf;
		for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len))
			if (h->nlmsg_pid == nl->portid)
				outcome_note(o, h);
	}
}

/* The seq of the batch's last message asking for an ack. */
static int batch_last_ack(const struct fw_msgs *batch, uint32_t *ret_seq)
{
	const struct nlmsghdr *h = (const void *)batch->buf;
	int len = batch->len <= INT_MAX ? (int)batch->len : -1, found = -EINVAL;

	for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
		if (h->nlmsg_flags & NLM_F_ACK) {
			*ret_seq = h->nlmsg_seq;
			found = 0;
		}
	}
	return len == 0 ? found : -EINVAL;
}

static int nl_commit(struct fw_backend *b, const struct fw_msgs *batch, char *err, size_t errlen)
{
	struct fw_nl *nl = (struct fw_nl *)b;
	struct outcome o = {.first = batch->seq_first};
	int r;

	if (batch->n_msgs == 0)
		return 0;
	if (batch->len > FW_NFT_MAX_BATCH) {
		snprintf(err, errlen, "batch of %zu bytes", batch->len);
		return -E2BIG;
	}
	if (batch_last_ack(batch, &o.last) < 0) {
		snprintf(err, errlen, "malformed batch, or no message asks for an ack");
		return -EINVAL;
	}
	r = sock_ready(nl);
	if (r < 0) {
		snprintf(err, errlen, "netfilter netlink socket: %s", strerror(-r));
		return r;
	}
	sndbuf_fit(nl, batch->len);
	if (mnl_socket_sendto(nl->sock, batch->buf, batch->len) < 0) {
		r = -errno;
		snprintf(err, errlen, "sending the batch (%zu bytes): %s", batch->len,
			 strerror(-r));
		return r;
	}
	r = commit_replies(nl, &o);
	if (o.error != 0) {
		const char *what = fw_msgs_what(batch, o.error_seq);
		snprintf(err, errlen, "kernel refused %s: %s", /* "?": BATCH_BEGIN, or no name */
			 strcmp(what, "?") != 0 ? what : "the batch", strerror(-o.error));
		return o.error;
	}
	if (r < 0 || !o.acked) {
		r = r < 0 ? r : o.lost ? -ENOBUFS : -EPROTO;
		snprintf(err, errlen, "no outcome for the batch: %s", strerror(-r));
		nl->dirty = true;
		return r;
	}
	b->commits++;
	return 0;
}

struct dump {
	const char *table;
	struct fw_msgs *out;
	uint16_t type; /* the NEW* message kept */
	bool intr;
};

/* Keeps the messages of type d->type about table d->table, family inet. */
static int keep_cb(const struct nlmsghdr *h, void *data)
{
	struct dump *d = data;
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(h);
	const char *table;

	if (h->nlmsg_type != NFT_TYPE(d->type))
		return 0;
	if (h->nlmsg_len < mnl_nlmsg_size(sizeof(*g)))
		return -EBADMSG;
	table = msg_str(h, ATTR_TABLE);
	if (g->nfgen_family != NFPROTO_INET || table == NULL || strcmp(table, d->table) != 0)
		return 0; /* the kernel filters set and rule dumps by table, not chains */
	return fw_msgs_append(d->out, h, h->nlmsg_len);
}

static int gen_cb(const struct nlmsghdr *h, void *data)
{
	const struct nlattr *a;

	if (h->nlmsg_type != NFT_TYPE(NFT_MSG_NEWGEN) ||
	    h->nlmsg_len < mnl_nlmsg_size(sizeof(struct nfgenmsg)))
		return -EBADMSG;
	a = msg_attr(h, NFTA_GEN_ID);
	if (a == NULL || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return -EBADMSG;
	*(uint32_t *)data = ntohl(mnl_attr_get_u32(a));
	return 0;
}

static int dump_kind(struct fw_nl *nl, struct dump *d, uint16_t get, uint16_t new_type,
		     const char *set)
{
	d->type = new_type;
	return request(nl, get, NLM_F_DUMP, d->table, set, keep_cb, d, &d->intr);
}

/* The elements of each set among out's messages from offset from to to. */
static int dump_elements(struct fw_nl *nl, struct dump *d, size_t from, size_t to)
{
	char name[NFT_NAME_MAXLEN];

	while (from < to) {
		const struct nlmsghdr *h = (const void *)(d->out->buf + from);
		const char *s = msg_str(h, NFTA_SET_NAME);
		int r;

		if (s == NULL)
			return -EBADMSG;
		snprintf(name, sizeof(name), "%s", s); /* out->buf moves as elements are added */
		from += NLMSG_ALIGN(h->nlmsg_len);
		r = dump_kind(nl, d, NFT_MSG_GETSETELEM, NFT_MSG_NEWSETELEM, name);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * One read of the table. -EAGAIN: the ruleset changed meanwhile (a dump was
 * interrupted, the generation moved, or an object went away), try again.
 */
static int dump_once(struct fw_nl *nl, struct dump *d)
{
	uint32_t gen = 0, gen_after = 0;
	size_t sets_from, sets_to;
	int r;

	d->type = NFT_MSG_NEWTABLE;
	d->intr = false;
	r = request(nl, NFT_MSG_GETGEN, 0, NULL, NULL, gen_cb, &gen, &d->intr);
	if (r == 0)
		r = request(nl, NFT_MSG_GETTABLE, 0, d->table, NULL, keep_cb, d, &d->intr);
	if (r < 0)
		return r;
	r = dump_kind(nl, d, NFT_MSG_GETCHAIN, NFT_MSG_NEWCHAIN, NULL);
	sets_from = d->out->len;
	if (r == 0)
		r = dump_kind(nl, d, NFT_MSG_GETSET, NFT_MSG_NEWSET, NULL);
	sets_to = d->out->len;
	if (r == 0)
		r = dump_elements(nl, d, sets_from, sets_to);
	if (r == 0)
		r = dump_kind(nl, d, NFT_MSG_GETRULE, NFT_MSG_NEWRULE, NULL);
	if (r == 0)
		r = request(nl, NFT_MSG_GETGEN, 0, NULL, NULL, gen_cb, &gen_after, &d->intr);
	if (r == -ENOENT || (r == 0 && (d->intr || gen != gen_after)))
		return -EAGAIN;
	return r;
}

static int nl_dump(struct fw_backend *b, const char *table, struct fw_msgs *out, char *err,
		   size_t errlen)
{
	struct fw_nl *nl = (struct fw_nl *)b;
	struct dump d = {.table = table, .out = out};
	size_t len0 = out->len, n0 = out->n_msgs;
	int r = -EAGAIN;

	if (strlen(table) >= NFT_NAME_MAXLEN) {
		snprintf(err, errlen, "table name too long");
		return -ENAMETOOLONG;
	}
	for (int i = 0; i < DUMP_TRIES && r == -EAGAIN; i++) {
		out->len = len0; /* a retry starts over */
		out->n_msgs = n0;
		r = sock_ready(nl);
		if (r == 0)
			r = dump_once(nl, &d);
	}
	if (r < 0 && r != -ENOENT)
		snprintf(err, errlen, "reading table %s: %s", table,
			 r == -EAGAIN ? "the ruleset kept changing" : strerror(-r));
	if (r < 0) {
		out->len = len0;
		out->n_msgs = n0;
	}
	return r;
}

static void nl_free(struct fw_backend *b)
{
	struct fw_nl *nl = (struct fw_nl *)b;

	if (nl == NULL)
		return;
	if (nl->sock != NULL)
		mnl_socket_close(nl->sock);
	free(nl->buf);
	free(nl);
}

int fw_nl_open(struct fw_backend **ret, char *err, size_t errlen)
{
	struct fw_nl *nl = calloc(1, sizeof(*nl));
	int r = -ENOMEM;

	if (nl == NULL || (nl->buf = malloc(RECV_SIZE)) == NULL)
		goto err_free;
	nl->seq = 1;
	r = sock_open(nl);
	if (r < 0)
		goto err_free;
	nl->b = (struct fw_backend){.commit = nl_commit, .dump = nl_dump, .free = nl_free};
	*ret = &nl->b;
	return 0;
err_free:
	snprintf(err, errlen, "netfilter netlink socket: %s", strerror(-r));
	nl_free(nl != NULL ? &nl->b : NULL);
	return r;
}
