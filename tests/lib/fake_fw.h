/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_TESTS_FAKE_FW_H
#define WIREGUI_TESTS_FAKE_FW_H

/*
 * An in-memory nftables backend for tests without root. commit() counts the
 * batches it takes and keeps a copy of the last one that replaces the table
 * (it holds a DELTABLE); dump() gives that batch's NEW* messages after its
 * DELTABLE, as the kernel's dump would list the table (fw_nft_parse reads
 * either), or -ENOENT before any replace. One difference is undone on the
 * way: libnftnl numbers the elements of a NEWSETELEM it builds 1, 2, 3...
 * (the kernel does not look), the kernel's dump gives each the type
 * NFTA_LIST_ELEM, and nftnl_set_elems_nlmsg_parse takes nothing else. Patch batches are counted, not
 * applied: a dump after a patch shows the table of the last replace.
 * fail_commit / fail_dump make the next calls fail with that -errno, as the
 * kernel refusing a batch changes nothing.
 */

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw_table.h"

struct fake_fw {
	struct fw_backend base; /* first: the backend pointer is the fake's */
	struct fw_msgs table;	/* the last replace batch; n_msgs 0: none yet */
	int fail_commit;	/* when non-zero, commit() returns it */
	int fail_dump;		/* when non-zero, dump() returns it */
};

static inline uint16_t fake_fw_nft_type(const struct nlmsghdr *nlh)
{
	if (nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES)
		return UINT16_MAX;
	return nlh->nlmsg_type & 0xff;
}

static inline bool fake_fw_is_new(const struct nlmsghdr *nlh)
{
	switch (fake_fw_nft_type(nlh)) {
	case NFT_MSG_NEWTABLE:
	case NFT_MSG_NEWCHAIN:
	case NFT_MSG_NEWRULE:
	case NFT_MSG_NEWSET:
	case NFT_MSG_NEWSETELEM:
		return true;
	default:
		return false;
	}
}

/*
 * Call fn for each message of m after its first DELTABLE; false if it has
 * none (not a replace) or a message is malformed.
 */
static inline bool fake_fw_after_deltable(const struct fw_msgs *m,
					  int (*fn)(struct fw_msgs *out, const struct nlmsghdr *),
					  struct fw_msgs *out, int *ret)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)(const void *)m->buf;
	int len = (int)m->len;
	bool seen = false;

	*ret = 0;
	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		if (seen && *ret == 0 && fn != NULL)
			*ret = fn(out, nlh);
		seen |= fake_fw_nft_type(nlh) == NFT_MSG_DELTABLE;
	}
	return seen && len == 0;
}

/* Bytes of the attribute stream from attr to end: libmnl's loops take an int. */
static inline int fake_fw_left(const void *attr, const void *end)
{
	return (int)((const char *)end - (const char *)attr);
}

/* Each element of a NEWSETELEM (nlh, a copy we own) as the kernel dumps it. */
static inline void fake_fw_elems_as_dumped(struct nlmsghdr *nlh)
{
	void *end = mnl_nlmsg_get_payload_tail(nlh);

	for (struct nlattr *attr = mnl_nlmsg_get_payload_offset(nlh, sizeof(struct nfgenmsg));
	     mnl_attr_ok(attr, fake_fw_left(attr, end)); attr = mnl_attr_next(attr)) {
		if (mnl_attr_get_type(attr) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		void *nest_end =
			(char *)mnl_attr_get_payload(attr) + mnl_attr_get_payload_len(attr);
		for (struct nlattr *elem = mnl_attr_get_payload(attr);
		     mnl_attr_ok(elem, fake_fw_left(elem, nest_end)); elem = mnl_attr_next(elem))
			elem->nla_type =
				(uint16_t)((elem->nla_type & ~NLA_TYPE_MASK) | NFTA_LIST_ELEM);
	}
}

static inline int fake_fw_keep_new(struct fw_msgs *out, const struct nlmsghdr *nlh)
{
	if (!fake_fw_is_new(nlh))
		return 0;
	int r = fw_msgs_append(out, nlh, nlh->nlmsg_len);
	if (r == 0 && fake_fw_nft_type(nlh) == NFT_MSG_NEWSETELEM)
		fake_fw_elems_as_dumped(
			(struct nlmsghdr *)(void *)(out->buf + out->len - nlh->nlmsg_len));
	return r;
}

static inline int fake_fw_copy(struct fw_msgs *out, const struct fw_msgs *m)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)(const void *)m->buf;
	int len = (int)m->len;

	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
		if (fw_msgs_append(out, nlh, nlh->nlmsg_len) < 0)
			return -ENOMEM;
	return 0;
}

static inline int fake_fw_commit(struct fw_backend *b, const struct fw_msgs *batch, char *err,
				 size_t errlen)
{
	struct fake_fw *f = (struct fake_fw *)b;
	int r;

	if (f->fail_commit) {
		snprintf(err, errlen, "fake kernel refused the batch");
		return f->fail_commit;
	}
	if (batch->n_msgs == 0)
		return 0;
	if (fake_fw_after_deltable(batch, NULL, NULL, &r)) {
		fw_msgs_free(&f->table);
		fw_msgs_init(&f->table);
		if (fake_fw_copy(&f->table, batch) < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	b->commits++;
	return 0;
}

static inline int fake_fw_dump(struct fw_backend *b, const char *table, struct fw_msgs *out,
			       char *err, size_t errlen)
{
	struct fake_fw *f = (struct fake_fw *)b;
	int r;

	(void)table;
	if (f->fail_dump) {
		snprintf(err, errlen, "fake kernel failed the dump");
		return f->fail_dump;
	}
	if (f->table.n_msgs == 0)
		return -ENOENT;
	if (!fake_fw_after_deltable(&f->table, fake_fw_keep_new, out, &r))
		return -EBADMSG;
	if (r < 0)
		snprintf(err, errlen, "out of memory");
	return r;
}

static inline void fake_fw_free(struct fw_backend *b)
{
	struct fake_fw *f = (struct fake_fw *)b;
	fw_msgs_free(&f->table);
	free(f);
}

static inline struct fake_fw *fake_fw_new(void)
{
	struct fake_fw *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	fw_msgs_init(&f->table);
	f->base.commit = fake_fw_commit;
	f->base.dump = fake_fw_dump;
	f->base.free = fake_fw_free;
	return f;
}

#endif
