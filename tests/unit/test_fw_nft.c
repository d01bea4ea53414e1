/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fw_nft without root or a kernel. Replace: states are built into a batch
 * and parsed back; fw_nft_parse must give the same state and nums, every
 * object compared byte for byte; the same objects in libnftnl's bytes are
 * compared as text and still equal. Tamper: a table changed by hand is
 * refused (-EBADMSG). Patch: the batch is applied
 * to an in-test model of the kernel's objects, which refuses what the kernel
 * refuses (a missing chain or set, a set or chain still in use, an element
 * that exists or does not), and the model's table parsed back must be cur
 * with the change applied (fw_change_apply).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "fw_nft.h"

#define SEQ0 100

static struct cidr_list pools;
static struct fw_env env = {.table = "wgtest", .ifname = "wg0", .pools = &pools};

static void pools_set(struct cidr_list *l, const char *const *cidrs, size_t n)
{
	l->n = n;
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(ip_cidr_parse(cidrs[i], 0, &l->items[i]), 0);
}

static void setup(void)
{
	static const char *const p[] = {"10.3.0.0/16", "fd00:3::/64", "10.4.0.0/22"};
	pools_set(&pools, p, ARRAY_LEN(p));
}

/* ---- states ---- */

static void id_make(uint8_t id[FW_ID_LEN], uint8_t tag, uint32_t n)
{
	memset(id, 0, FW_ID_LEN);
	id[0] = tag;
	id[12] = (uint8_t)(n >> 24);
	id[13] = (uint8_t)(n >> 16);
	id[14] = (uint8_t)(n >> 8);
	id[15] = (uint8_t)n;
}

static struct fw_user *user_new(struct fw_state *s, uint32_t n, bool active)
{
	struct fw_user *u = fw_state_add_user(s);
	ck_assert_ptr_nonnull(u);
	id_make(u->id, 0xaa, n);
	u->active = active;
	return u;
}

static void addr_add(struct fw_user *u, const char *text)
{
	struct ip_addr a;
	ck_assert_int_eq(ip_addr_parse(text, &a), 0);
	ck_assert_int_eq(fw_user_add_addr(u, &a), 0);
}

/* Rule ids: tag 0xbb and n, unique across the whole test state. */
static void rule_fill(struct fw_rule *r, uint32_t n, int32_t prio, const char *dst, uint8_t proto,
		      uint16_t from, uint16_t to, bool accept)
{
	ck_assert_ptr_nonnull(r);
	id_make(r->id, 0xbb, n);
	r->priority = prio;
	ck_assert_int_eq(ip_cidr_parse(dst, IP_CIDR_ALLOW_BARE, &r->dst), 0);
	r->proto = proto;
	r->port_from = from;
	r->port_to = to;
	r->accept = accept;
}

#define USER_RULE(u, ...) rule_fill(fw_user_add_rule(u), __VA_ARGS__)
#define GLOBAL_RULE(s, ...) rule_fill(fw_state_add_global_rule(s), __VA_ARGS__)

static struct fw_state *state_done(struct fw_state *s)
{
	fw_state_normalize(s);
	fw_state_assign_nums(s, NULL);
	return s;
}

/* n rules of one shape and action: 10.9.<i>.0/24 tcp 443 (a set). */
static void run_of(struct fw_user *u, struct fw_state *g, uint32_t n0, size_t n, int32_t prio)
{
	char dst[32];
	for (size_t i = 0; i < n; i++) {
		snprintf(dst, sizeof(dst), "10.9.%zu.0/24", i);
		struct fw_rule *r = u != NULL ? fw_user_add_rule(u) : fw_state_add_global_rule(g);
		rule_fill(r, n0 + (uint32_t)i, prio + (int32_t)i, dst, FW_PROTO_TCP, 443, 443,
			  true);
	}
}

static void rules_every_shape(struct fw_user *u, uint32_t n0)
{
	USER_RULE(u, n0 + 0, 1, "192.0.2.10", FW_PROTO_ANY, 0, 0, true);
	USER_RULE(u, n0 + 1, 2, "198.51.100.0/24", FW_PROTO_TCP, 443, 443, true);
	USER_RULE(u, n0 + 2, 3, "10.128.0.0/17", FW_PROTO_UDP, 1000, 2000, false);
	USER_RULE(u, n0 + 3, 4, "0.0.0.0/0", FW_PROTO_ANY, 0, 0, false);
	USER_RULE(u, n0 + 4, 5, "2001:db8::/64", FW_PROTO_TCP, 22, 22, true);
	USER_RULE(u, n0 + 5, 6, "2001:db8::1", FW_PROTO_ANY, 0, 0, true);
	USER_RULE(u, n0 + 6, 7, "2001:db8:8000::/33", FW_PROTO_UDP, 53, 54, true);
	USER_RULE(u, n0 + 7, 8, "203.0.113.0/24", FW_PROTO_TCP, 0, 0, true);
	USER_RULE(u, n0 + 8, -5, "::/0", FW_PROTO_ANY, 0, 0, false);
	USER_RULE(u, n0 + 9, 8, "0.0.0.0/0", FW_PROTO_UDP, 1, 65535, true);
}

static struct fw_state *state_case(int which)
{
	struct fw_state *s = fw_state_new();
	struct fw_user *u;
	ck_assert_ptr_nonnull(s);
	switch (which) {
	case 0: /* empty, all settings off (default drop) */
		break;
	case 1: /* one user, one address, no rule */
		s->settings.default_accept = true;
		addr_add(user_new(s, 1, true), "10.3.0.2");
		break;
	case 2: /* inactive user, v4 + v6 */
		u = user_new(s, 1, false);
		addr_add(u, "10.3.0.2");
		addr_add(u, "fd00:3::2");
		break;
	case 3: /* every rule shape */
		u = user_new(s, 1, true);
		addr_add(u, "10.3.0.2");
		addr_add(u, "fd00:3::2");
		rules_every_shape(u, 0);
		break;
	case 4: /* a run of 6 of one shape: one set; then an overlap that splits */
		u = user_new(s, 1, true);
		addr_add(u, "10.3.0.2");
		run_of(u, NULL, 0, 6, 10);
		USER_RULE(u, 6, 16, "10.9.0.0/16", FW_PROTO_TCP, 400, 500, true); /* overlaps */
		USER_RULE(u, 7, 17, "10.8.0.1", FW_PROTO_UDP, 0, 0, true);
		USER_RULE(u, 8, 18, "10.8.0.2", FW_PROTO_TCP, 1, 65535, true);
		break;
	case 5: /* isolation, masquerade, global rules with a set, v6 run */
		s->settings = (struct fw_settings){false, true, true, true};
		u = user_new(s, 1, true);
		addr_add(u, "10.3.0.2");
		addr_add(u, "10.4.0.9");
		for (uint32_t i = 0; i < 5; i++) {
			char dst[48];
			snprintf(dst, sizeof(dst), "2001:db8:%x::/48", i);
			USER_RULE(u, 100 + i, 50, dst, FW_PROTO_UDP, 53, 53, false);
		}
		run_of(NULL, s, 200, 5, -100);
		GLOBAL_RULE(s, 300, 7, "10.5.0.0/16", FW_PROTO_ANY, 0, 0, true);
		addr_add(user_new(s, 2, false), "fd00:3::9");
		user_new(s, 3, true); /* no address */
		user_new(s, 4, false);
		break;
	case 6: /* many users, settings mixed */
		s->settings = (struct fw_settings){true, false, true, false};
		for (uint32_t i = 0; i < 60; i++) {
			char a[48];
			u = user_new(s, 1000 - i, i % 7 != 3);
			snprintf(a, sizeof(a), "10.3.%u.%u", i / 200, i % 200 + 2);
			addr_add(u, a);
			if (i % 3 == 0) {
				snprintf(a, sizeof(a), "fd00:3::%x", i + 2);
				addr_add(u, a);
			}
			if (i % 5 == 0)
				rules_every_shape(u, 1000 * i);
			if (i % 11 == 0)
				run_of(u, NULL, 1000 * i + 500, 4 + i % 3, 0);
		}
		break;
	}
	return state_done(s);
}

/* ---- batches ---- */

static size_t count_type(const struct fw_msgs *b, uint16_t type)
{
	const struct nlmsghdr *nlh = (const void *)b->buf;
	int rem = (int)b->len;
	size_t n = 0;
	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem))
		n += nlh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | type);
	return n;
}

/* BEGIN, commands, END; seqs from seq; NLM_F_ACK on the last command only. */
static void check_batch(const struct fw_msgs *b, uint32_t seq)
{
	const struct nlmsghdr *nlh = (const void *)b->buf;
	int rem = (int)b->len;
	size_t i = 0;
	ck_assert_uint_ge(b->n_msgs, 3);
	ck_assert_uint_eq(b->seq_first, seq);
	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem), i++) {
		ck_assert_uint_eq(nlh->nlmsg_seq, seq + i);
		ck_assert(nlh->nlmsg_flags & NLM_F_REQUEST);
		ck_assert_int_eq(!!(nlh->nlmsg_flags & NLM_F_ACK), i + 2 == b->n_msgs);
		if (i == 0)
			ck_assert_uint_eq(nlh->nlmsg_type, NFNL_MSG_BATCH_BEGIN);
		else if (i + 1 == b->n_msgs)
			ck_assert_uint_eq(nlh->nlmsg_type, NFNL_MSG_BATCH_END);
		else
			ck_assert_str_ne(fw_msgs_what(b, (uint32_t)(seq + i)), "?");
	}
	ck_assert_uint_eq(i, b->n_msgs);
	ck_assert_int_eq(rem, 0);
	ck_assert_str_eq(fw_msgs_what(b, seq), "?");
	ck_assert_str_eq(fw_msgs_what(b, (uint32_t)(seq + i + 5)), "?");
}

static void build(struct fw_msgs *b, const struct fw_state *s)
{
	fw_msgs_init(b);
	ck_assert_int_eq(fw_nft_build_replace(b, &env, s, SEQ0), 0);
	check_batch(b, SEQ0);
}

static int parse(const struct fw_env *e, const struct fw_msgs *b, struct fw_state **ret, char *why,
		 size_t whylen)
{
	why[0] = '\0';
	*ret = NULL;
	return fw_nft_parse(e, b, ret, why, whylen);
}

static void check_state(const struct fw_state *got, const struct fw_state *want)
{
	ck_assert(fw_state_equal(got, want));
	for (size_t i = 0; i < want->n_users; i++)
		ck_assert_uint_eq(got->users[i].num, want->users[i].num);
}

static void check_roundtrip(const struct fw_state *s)
{
	struct fw_msgs b;
	struct fw_state *got;
	char why[1024];
	build(&b, s);
	int r = parse(&env, &b, &got, why, sizeof(why));
	ck_assert_msg(r == 0, "parse: %d %s", r, why);
	check_state(got, s);
	fw_state_free(got);
	fw_msgs_free(&b);
}

START_TEST(test_roundtrip)
{
	struct fw_state *s = state_case(_i);
	check_roundtrip(s);
	fw_state_free(s);
}
END_TEST

/* A run of 6 is one set; the overlap closes it; a run of 3 stays rules. */
START_TEST(test_sets)
{
	struct fw_state *s = state_case(4);
	struct fw_msgs b;
	build(&b, s);
	/* src4, src6, u1s0; rules: forward 5, set, 3 singles, default */
	ck_assert_uint_eq(count_type(&b, NFT_MSG_NEWSET), 3);
	ck_assert_uint_eq(count_type(&b, NFT_MSG_NEWRULE), 5 + 1 + 3 + 1);
	fw_msgs_free(&b);
	/* four that do not overlap after the overlapping one: a second set */
	USER_RULE(&s->users[0], 9, 19, "10.8.0.3", FW_PROTO_TCP, 80, 80, true);
	state_done(s);
	build(&b, s);
	ck_assert_uint_eq(count_type(&b, NFT_MSG_NEWSET), 4);
	ck_assert_uint_eq(count_type(&b, NFT_MSG_NEWRULE), 5 + 2 + 1);
	fw_msgs_free(&b);
	check_roundtrip(s);
	fw_state_free(s);
}
END_TEST

START_TEST(test_10k_users)
{
	struct fw_state *s = fw_state_new();
	for (uint32_t i = 0; i < 10000; i++) {
		char a[32];
		struct fw_user *u = user_new(s, i, i % 10 != 0);
		snprintf(a, sizeof(a), "10.3.%u.%u", i / 250, i % 250 + 2);
		addr_add(u, a);
		USER_RULE(u, 2 * i, 1, "192.0.2.0/24", FW_PROTO_TCP, 443, 443, true);
		USER_RULE(u, 2 * i + 1, 2, "198.51.100.7", FW_PROTO_ANY, 0, 0, false);
	}
	state_done(s);
	check_roundtrip(s);
	fw_state_free(s);
}
END_TEST

/* ---- tampering: messages rewritten through libnftnl ---- */

static void put_msg(struct fw_msgs *out, const struct nlmsghdr *like, void *obj,
		    void (*payload)(struct nlmsghdr *, void *))
{
	static char buf[1 << 17];
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, (uint16_t)(like->nlmsg_type & 0xff),
						     NFPROTO_INET, like->nlmsg_flags,
						     like->nlmsg_seq);
	nlh->nlmsg_flags = like->nlmsg_flags;
	payload(nlh, obj);
	ck_assert_int_eq(fw_msgs_append(out, nlh, nlh->nlmsg_len), 0);
}

static void rule_payload(struct nlmsghdr *nlh, void *r)
{
	nftnl_rule_nlmsg_build_payload(nlh, r);
}

static int elem_put(struct nftnl_set_elem *e, void *nlh)
{
	nftnl_set_elem_nlmsg_build(nlh, e, NFTA_LIST_ELEM);
	return 0;
}

/* Each element an NFTA_LIST_ELEM (libnftnl 1.2.4 would number them). */
static void elems_payload(struct nlmsghdr *nlh, void *s)
{
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, nftnl_set_get_str(s, NFTNL_SET_NAME));
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, nftnl_set_get_str(s, NFTNL_SET_TABLE));
	struct nlattr *list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	nftnl_set_elem_foreach(s, elem_put, nlh);
	mnl_attr_nest_end(nlh, list);
}

static void chain_payload(struct nlmsghdr *nlh, void *c)
{
	nftnl_chain_nlmsg_build_payload(nlh, c);
}

static void set_payload(struct nlmsghdr *nlh, void *s)
{
	nftnl_set_nlmsg_build_payload(nlh, s);
}

/* Copy in to out; edit may write its own message instead of one (true). */
typedef bool edit_fn(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget);

static void rewrite(const struct fw_msgs *in, struct fw_msgs *out, edit_fn *edit)
{
	const struct nlmsghdr *nlh = (const void *)in->buf;
	int rem = (int)in->len, budget = 1;
	fw_msgs_init(out);
	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem))
		if (!edit(nlh, out, &budget))
			ck_assert_int_eq(fw_msgs_append(out, nlh, nlh->nlmsg_len), 0);
	ck_assert_int_eq(budget, 0);
}

static bool is_type(const struct nlmsghdr *nlh, uint16_t type)
{
	return nlh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | type);
}

static struct nftnl_rule *rule_of(const struct nlmsghdr *nlh)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	ck_assert_int_eq(nftnl_rule_nlmsg_parse(nlh, r), 0);
	return r;
}

static int flip_accept(struct nftnl_expr *e, void *data)
{
	if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "immediate") == 0 &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT) == NF_ACCEPT) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_DROP);
		(*(int *)data)++;
	}
	return 0;
}

/*
 * A rule of u1 (budget permitting) whose expressions fn changed (fn counts
 * its changes in *data): written changed.
 */
static bool edit_u1_rule(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget,
			 int (*fn)(struct nftnl_expr *e, void *data))
{
	if (*budget == 0 || !is_type(nlh, NFT_MSG_NEWRULE))
		return false;
	struct nftnl_rule *r = rule_of(nlh);
	int changed = 0;
	if (strcmp(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), "u1") == 0)
		nftnl_expr_foreach(r, fn, &changed);
	if (changed)
		put_msg(out, nlh, r, rule_payload), (*budget)--;
	nftnl_rule_free(r);
	return changed;
}

/* The first accept rule in u1: drop instead. */
static bool edit_verdict(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	return edit_u1_rule(nlh, out, budget, flip_accept);
}

static int daddr_to_saddr(struct nftnl_expr *e, void *data)
{
	if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "payload") == 0 &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET) == 16) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, 12);
		(*(int *)data)++;
	}
	return 0;
}

/* The first ip daddr match in u1: ip saddr instead. */
static bool edit_payload(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	return edit_u1_rule(nlh, out, budget, daddr_to_saddr);
}

/* A comment "<id>:8" rewritten "<id>:08": the same priority, not our text. */
static bool edit_comment(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	uint32_t len;
	if (*budget == 0 || !is_type(nlh, NFT_MSG_NEWRULE))
		return false;
	struct nftnl_rule *r = rule_of(nlh);
	const uint8_t *ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
	bool hit = ud != NULL && len > 4 && memcmp(ud + len - 3, ":8", 3) == 0;
	if (hit) {
		uint8_t copy[256];
		memcpy(copy, ud, len);
		memcpy(copy + len - 2, "08", 3);
		copy[1]++;
		nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, copy, len + 1);
		put_msg(out, nlh, r, rule_payload);
		(*budget)--;
	}
	nftnl_rule_free(r);
	return hit;
}

/* After the last rule: "accept" appended to u1 (someone's nft add rule). */
static bool edit_foreign_rule(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	if (*budget == 0 || nlh->nlmsg_type != NFNL_MSG_BATCH_END)
		return false;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, env.table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, "u1");
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
	nftnl_rule_add_expr(r, e);
	struct nlmsghdr like = {.nlmsg_type = NFT_MSG_NEWRULE, .nlmsg_flags = NLM_F_REQUEST};
	put_msg(out, &like, r, rule_payload);
	nftnl_rule_free(r);
	(*budget)--;
	return false;
}

static bool edit_foreign_chain(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	if (*budget == 0 || nlh->nlmsg_type != NFNL_MSG_BATCH_END)
		return false;
	struct nftnl_chain *c = nftnl_chain_alloc();
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, env.table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, "extra");
	struct nlmsghdr like = {.nlmsg_type = NFT_MSG_NEWCHAIN, .nlmsg_flags = NLM_F_REQUEST};
	put_msg(out, &like, c, chain_payload);
	nftnl_chain_free(c);
	(*budget)--;
	return false;
}

/* libnftnl 1.2.4 does not export nftnl_set_elem_clone. */
static struct nftnl_set_elem *elem_copy(struct nftnl_set_elem *e)
{
	static const uint16_t attrs[] = {NFTNL_SET_ELEM_KEY,	  NFTNL_SET_ELEM_KEY_END,
					 NFTNL_SET_ELEM_VERDICT,  NFTNL_SET_ELEM_CHAIN,
					 NFTNL_SET_ELEM_USERDATA, NFTNL_SET_ELEM_FLAGS};
	struct nftnl_set_elem *c = nftnl_set_elem_alloc();
	ck_assert_ptr_nonnull(c);
	for (size_t i = 0; i < ARRAY_LEN(attrs); i++) {
		uint32_t len;
		const void *p = nftnl_set_elem_get(e, attrs[i], &len);
		if (p != NULL)
			ck_assert_int_eq(nftnl_set_elem_set(c, attrs[i], p, len), 0);
	}
	return c;
}

/* A chain u99 that says it is user 1's. */
static bool edit_twin_chain(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	if (*budget == 0 || !is_type(nlh, NFT_MSG_NEWCHAIN))
		return false;
	struct nftnl_chain *c = nftnl_chain_alloc();
	ck_assert_int_eq(nftnl_chain_nlmsg_parse(nlh, c), 0);
	if (strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), "u1") == 0) {
		ck_assert_int_eq(fw_msgs_append(out, nlh, nlh->nlmsg_len), 0);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, "u99");
		put_msg(out, nlh, c, chain_payload);
		(*budget)--;
	}
	bool hit = *budget == 0;
	nftnl_chain_free(c);
	return hit;
}

/*
 * The elements of the set named name (a NEWSETELEM message of it, budget
 * permitting) rewritten by fn: the element to keep (a copy), or NULL.
 */
typedef struct nftnl_set_elem *elem_edit_fn(struct nftnl_set_elem *e, size_t index);

static bool edit_elems(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget,
		       const char *name, elem_edit_fn *fn)
{
	if (*budget == 0 || !is_type(nlh, NFT_MSG_NEWSETELEM))
		return false;
	struct nftnl_set *s = nftnl_set_alloc(), *keep = nftnl_set_alloc();
	ck_assert_int_eq(nftnl_set_elems_nlmsg_parse(nlh, s), 0);
	bool hit = strcmp(nftnl_set_get_str(s, NFTNL_SET_NAME), name) == 0;
	if (hit) {
		struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(s);
		struct nftnl_set_elem *e;
		nftnl_set_set_str(keep, NFTNL_SET_TABLE, env.table);
		nftnl_set_set_str(keep, NFTNL_SET_NAME, name);
		nftnl_set_set_u32(keep, NFTNL_SET_FAMILY, NFPROTO_INET);
		for (size_t i = 0; (e = nftnl_set_elems_iter_next(it)) != NULL; i++) {
			struct nftnl_set_elem *c = fn(e, i);
			if (c != NULL)
				nftnl_set_elem_add(keep, c);
		}
		nftnl_set_elems_iter_destroy(it);
		put_msg(out, nlh, keep, elems_payload);
		(*budget)--;
	}
	nftnl_set_free(s);
	nftnl_set_free(keep);
	return hit;
}

static struct nftnl_set_elem *all_but_first(struct nftnl_set_elem *e, size_t index)
{
	return index == 0 ? NULL : elem_copy(e);
}

static bool drop_first_elem(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget,
			    const char *name)
{
	return edit_elems(nlh, out, budget, name, all_but_first);
}

static struct nftnl_set_elem *verdict_drop(struct nftnl_set_elem *e, size_t index)
{
	struct nftnl_set_elem *c = elem_copy(e);
	(void)index;
	nftnl_set_elem_unset(c, NFTNL_SET_ELEM_CHAIN);
	nftnl_set_elem_set_u32(c, NFTNL_SET_ELEM_VERDICT, NF_DROP);
	return c;
}

/* src4's elements say drop where they said jump (the user is still active). */
static bool edit_map_verdict(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	return edit_elems(nlh, out, budget, "src4", verdict_drop);
}

static struct nftnl_set_elem *keyed_only(struct nftnl_set_elem *e, size_t index)
{
	(void)index;
	return nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_KEY) ? elem_copy(e) : NULL;
}

/* src4 without its catch-all element (the one without a key). */
static bool edit_drop_catchall(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	return edit_elems(nlh, out, budget, "src4", keyed_only);
}

static int is_goto(struct nftnl_expr *e, void *data)
{
	if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "immediate") == 0 &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT) == (uint32_t)NFT_GOTO)
		*(bool *)data = true;
	return 0;
}

/* The forward chain without its last rule, goto global. */
static bool edit_drop_goto(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	bool hit = false;
	(void)out;
	if (*budget == 0 || !is_type(nlh, NFT_MSG_NEWRULE))
		return false;
	struct nftnl_rule *r = rule_of(nlh);
	if (strcmp(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), "forward") == 0)
		nftnl_expr_foreach(r, is_goto, &hit);
	*budget -= hit;
	nftnl_rule_free(r);
	return hit;
}

static bool edit_drop_map_elem(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	return drop_first_elem(nlh, out, budget, "src4");
}

static bool edit_drop_set_elem(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	return drop_first_elem(nlh, out, budget, "u1s0");
}

#define check_refused(s, edit) check_refused_(s, edit, #edit)
static void check_refused_(const struct fw_state *s, edit_fn *edit, const char *name)
{
	struct fw_msgs b, t;
	struct fw_state *got;
	char why[1024];
	build(&b, s);
	rewrite(&b, &t, edit);
	int r = parse(&env, &t, &got, why, sizeof(why));
	ck_assert_msg(r == -EBADMSG, "%s: parse: %d %s", name, r, why);
	ck_assert_ptr_null(got);
	ck_assert_str_ne(why, "");
	fw_msgs_free(&t);
	fw_msgs_free(&b);
}

START_TEST(test_tamper)
{
	struct fw_state *s = state_case(3);
	check_refused(s, edit_payload);
	check_refused(s, edit_comment);
	check_refused(s, edit_foreign_rule);
	check_refused(s, edit_foreign_chain);
	check_refused(s, edit_twin_chain);
	check_refused(s, edit_map_verdict); /* v4 says drop, v6 says jump */
	check_refused(s, edit_drop_catchall);
	check_refused(s, edit_drop_goto);
	fw_state_free(s);
	/* u1s0 holds 4 elements here: 3 left are 3 rules, not a set */
	s = state_case(4);
	while (s->users[0].n_rules > 4)
		s->users[0].n_rules--;
	check_refused(s, edit_drop_set_elem);
	fw_state_free(s);
}
END_TEST

/* A table another state would make is read as that state: not refused. */
static struct fw_state *parse_edited(const struct fw_state *s, edit_fn *edit)
{
	struct fw_state *got;
	struct fw_msgs b, t;
	char why[1024];
	build(&b, s);
	rewrite(&b, &t, edit);
	int r = parse(&env, &t, &got, why, sizeof(why));
	ck_assert_msg(r == 0, "parse: %d %s", r, why);
	ck_assert(!fw_state_equal(got, s));
	fw_msgs_free(&t);
	fw_msgs_free(&b);
	return got;
}

START_TEST(test_other_state)
{
	struct fw_state *s = state_case(2), *got = parse_edited(s, edit_drop_map_elem);
	ck_assert_uint_eq(got->users[0].n_addrs, 1); /* the v6 one */
	ck_assert(got->users[0].addrs[0].family == AF_INET6);
	fw_state_free(got);
	fw_state_free(s);
	s = state_case(3);
	got = parse_edited(s, edit_verdict);
	ck_assert(!got->users[0].rules[1].accept);
	ck_assert(s->users[0].rules[1].accept);
	fw_state_free(got);
	fw_state_free(s);
	/* a user of one address whose element says drop is a disabled user */
	s = state_case(1);
	got = parse_edited(s, edit_map_verdict);
	ck_assert(!got->users[0].active);
	ck_assert(s->users[0].active);
	fw_state_free(got);
	fw_state_free(s);
}
END_TEST

/* Every object through libnftnl and back: the same table in other bytes. */
static bool edit_reserialize(const struct nlmsghdr *nlh, struct fw_msgs *out, int *budget)
{
	void *o = NULL;
	*budget = 0;
	if (is_type(nlh, NFT_MSG_NEWRULE)) {
		o = rule_of(nlh);
		put_msg(out, nlh, o, rule_payload);
		nftnl_rule_free(o);
	} else if (is_type(nlh, NFT_MSG_NEWCHAIN)) {
		o = nftnl_chain_alloc();
		ck_assert_int_eq(nftnl_chain_nlmsg_parse(nlh, o), 0);
		put_msg(out, nlh, o, chain_payload);
		nftnl_chain_free(o);
	} else if (is_type(nlh, NFT_MSG_NEWSET) || is_type(nlh, NFT_MSG_NEWSETELEM)) {
		o = nftnl_set_alloc();
		if (is_type(nlh, NFT_MSG_NEWSET)) {
			ck_assert_int_eq(nftnl_set_nlmsg_parse(nlh, o), 0);
			put_msg(out, nlh, o, set_payload);
		} else {
			ck_assert_int_eq(nftnl_set_elems_nlmsg_parse(nlh, o), 0);
			put_msg(out, nlh, o, elems_payload);
		}
		nftnl_set_free(o);
	}
	return o != NULL;
}

/*
 * A kernel that dumps the same objects in other bytes: each object is then
 * compared as libnftnl reads it, and still equal. Our own bytes never need that.
 */
START_TEST(test_other_bytes)
{
	struct fw_state *s = state_case(_i), *got;
	struct fw_msgs b, t;
	char why[1024];
	build(&b, s);
	ck_assert_int_eq(parse(&env, &b, &got, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, " 0 compared as text") != NULL, "%s", why);
	fw_state_free(got);
	rewrite(&b, &t, edit_reserialize);
	int r = parse(&env, &t, &got, why, sizeof(why));
	ck_assert_msg(r == 0, "parse: %d %s", r, why);
	ck_assert_msg(strstr(why, " 0 compared as text") == NULL, "%s", why);
	check_state(got, s);
	fw_state_free(got);
	fw_msgs_free(&t);
	fw_msgs_free(&b);
	fw_state_free(s);
}
END_TEST

/* The table read with another interface or other pools is not ours. */
START_TEST(test_other_env)
{
	static const char *const other[] = {"10.3.0.0/16", "fd00:3::/64"};
	struct fw_state *s = state_case(5), *got;
	struct fw_env e = env;
	struct cidr_list p;
	struct fw_msgs b;
	char why[1024];
	build(&b, s);
	e.ifname = "wg1";
	ck_assert_int_eq(parse(&e, &b, &got, why, sizeof(why)), -EBADMSG);
	pools_set(&p, other, ARRAY_LEN(other));
	e = env;
	e.pools = &p;
	ck_assert_int_eq(parse(&e, &b, &got, why, sizeof(why)), -EBADMSG);
	e = env;
	e.table = "other";
	ck_assert_int_eq(parse(&e, &b, &got, why, sizeof(why)), -ENOENT);
	fw_msgs_free(&b);
	fw_state_free(s);
}
END_TEST

/* Another table's objects among ours are skipped. */
START_TEST(test_other_table)
{
	struct fw_state *s = state_case(3), *o = state_case(6), *got;
	struct fw_env e = env;
	struct fw_msgs b, ob;
	char why[1024];
	build(&b, s);
	e.table = "other";
	fw_msgs_init(&ob);
	ck_assert_int_eq(fw_nft_build_replace(&ob, &e, o, 1), 0);
	ck_assert_int_eq(fw_msgs_append(&b, ob.buf, ob.len), 0);
	ck_assert_int_eq(parse(&env, &b, &got, why, sizeof(why)), 0);
	check_state(got, s);
	fw_state_free(got);
	ck_assert_int_eq(parse(&e, &b, &got, why, sizeof(why)), 0);
	check_state(got, o);
	fw_state_free(got);
	fw_msgs_free(&ob);
	fw_msgs_free(&b);
	fw_state_free(o);
	fw_state_free(s);
}
END_TEST

/* ---- a model of the kernel's table, for patches ---- */

enum {
	M_TABLE,
	M_CHAIN,
	M_SET,
	M_ELEM,
	M_RULE
};

struct mobj {
	int kind;
	char name[64];	    /* chain, set; a rule's chain; an element's set */
	char key[200];	    /* an element's key (hex) */
	char set[64];	    /* the set a rule looks up */
	char chain[64];	    /* the chain a rule or element jumps to */
	struct fw_msgs msg; /* the object as one NEW* message */
	bool dead;
};

struct model {
	struct mobj *v;
	size_t n;
};

static struct mobj *model_find(struct model *m, int kind, const char *name, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (!m->v[i].dead && m->v[i].kind == kind && strcmp(m->v[i].name, name) == 0 &&
		    (key == NULL || strcmp(m->v[i].key, key) == 0))
			return &m->v[i];
	return NULL;
}

static bool model_uses(struct model *m, const char *set, const char *chain)
{
	for (size_t i = 0; i < m->n; i++)
		if (!m->v[i].dead && ((set != NULL && strcmp(m->v[i].set, set) == 0) ||
				      (chain != NULL && strcmp(m->v[i].chain, chain) == 0)))
			return true;
	return false;
}

static struct mobj *model_add(struct model *m, int kind, const char *name)
{
	m->v = realloc(m->v, (m->n + 1) * sizeof(*m->v));
	ck_assert_ptr_nonnull(m->v);
	struct mobj *o = &m->v[m->n++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	snprintf(o->name, sizeof(o->name), "%s", name);
	fw_msgs_init(&o->msg);
	return o;
}

static void model_kill(struct mobj *o)
{
	o->dead = true;
	fw_msgs_free(&o->msg);
}

static void model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		model_kill(&m->v[i]);
	free(m->v);
}

static int rule_refs(struct nftnl_expr *e, void *data)
{
	struct mobj *o = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	if (strcmp(name, "lookup") == 0)
		snprintf(o->set, sizeof(o->set), "%s",
			 nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET));
	if (strcmp(name, "immediate") == 0 && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN))
		snprintf(o->chain, sizeof(o->chain), "%s",
			 nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN));
	return 0;
}

static void model_rule(struct model *m, const struct nlmsghdr *nlh, bool add)
{
	struct nftnl_rule *r = rule_of(nlh);
	const char *chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	ck_assert_msg(model_find(m, M_CHAIN, chain, NULL) != NULL, "no chain %s", chain);
	if (!add) {
		ck_assert(!nftnl_rule_is_set(r, NFTNL_RULE_HANDLE)); /* a flush */
		for (size_t i = 0; i < m->n; i++)
			if (!m->v[i].dead && m->v[i].kind == M_RULE &&
			    strcmp(m->v[i].name, chain) == 0)
				model_kill(&m->v[i]);
	} else {
		struct mobj *o = model_add(m, M_RULE, chain);
		nftnl_expr_foreach(r, rule_refs, o);
		ck_assert_msg(o->set[0] == '\0' || model_find(m, M_SET, o->set, NULL), "no set");
		ck_assert_msg(o->chain[0] == '\0' || model_find(m, M_CHAIN, o->chain, NULL),
			      "no chain %s", o->chain);
		ck_assert_int_eq(fw_msgs_append(&o->msg, nlh, nlh->nlmsg_len), 0);
	}
	nftnl_rule_free(r);
}

static void elem_key(struct nftnl_set_elem *e, char out[200])
{
	uint32_t len = 0;
	size_t n = 0;
	const uint8_t *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	for (uint32_t i = 0; k != NULL && i < len; i++)
		n += (size_t)snprintf(out + n, 200 - n, "%02x", k[i]);
	k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &len);
	for (uint32_t i = 0; k != NULL && i < len; i++)
		n += (size_t)snprintf(out + n, 200 - n, "%02x", k[i]);
	out[n] = '\0';
}

static void model_elems(struct model *m, const struct nlmsghdr *nlh, bool add)
{
	static char buf[4096];
	struct nftnl_set *s = nftnl_set_alloc();
	ck_assert_int_eq(nftnl_set_elems_nlmsg_parse(nlh, s), 0);
	const char *set = nftnl_set_get_str(s, NFTNL_SET_NAME);
	ck_assert_msg(model_find(m, M_SET, set, NULL) != NULL, "no set %s", set);
	struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(s);
	for (struct nftnl_set_elem *e; (e = nftnl_set_elems_iter_next(it)) != NULL;) {
		char key[200];
		elem_key(e, key);
		struct mobj *old = model_find(m, M_ELEM, set, key);
		ck_assert_msg((old == NULL) == add, "element %s of %s: %s", key, set,
			      add ? "exists" : "missing");
		if (!add) {
			model_kill(old);
			continue;
		}
		struct mobj *o = model_add(m, M_ELEM, set);
		snprintf(o->key, sizeof(o->key), "%s", key);
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN))
			snprintf(o->chain, sizeof(o->chain), "%s",
				 nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN));
		ck_assert(o->chain[0] == '\0' || model_find(m, M_CHAIN, o->chain, NULL));
		struct nftnl_set *one = nftnl_set_alloc();
		nftnl_set_set_str(one, NFTNL_SET_TABLE, env.table);
		nftnl_set_set_str(one, NFTNL_SET_NAME, set);
		nftnl_set_set_u32(one, NFTNL_SET_FAMILY, NFPROTO_INET);
		nftnl_set_elem_add(one, elem_copy(e));
		struct nlmsghdr *n1 = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSETELEM, NFPROTO_INET,
							    NLM_F_CREATE, 0);
		nftnl_set_elems_nlmsg_build_payload(n1, one);
		ck_assert_int_eq(fw_msgs_append(&o->msg, n1, n1->nlmsg_len), 0);
		nftnl_set_free(one);
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
}

/* A chain or set: its name is the attribute the parse function gives. */
static void model_named(struct model *m, const struct nlmsghdr *nlh, int kind, bool add)
{
	char name[64];
	if (kind == M_CHAIN) {
		struct nftnl_chain *c = nftnl_chain_alloc();
		ck_assert_int_eq(nftnl_chain_nlmsg_parse(nlh, c), 0);
		snprintf(name, sizeof(name), "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
		nftnl_chain_free(c);
	} else {
		struct nftnl_set *s = nftnl_set_alloc();
		ck_assert_int_eq(nftnl_set_nlmsg_parse(nlh, s), 0);
		snprintf(name, sizeof(name), "%s", nftnl_set_get_str(s, NFTNL_SET_NAME));
		nftnl_set_free(s);
	}
	struct mobj *old = model_find(m, kind, name, NULL);
	if (add) {
		/* NLM_F_CREATE without EXCL would keep the old set's elements */
		ck_assert_msg(old == NULL || kind == M_CHAIN, "set %s exists", name);
		if (old == NULL)
			ck_assert_int_eq(fw_msgs_append(&model_add(m, kind, name)->msg, nlh,
							nlh->nlmsg_len),
					 0);
		return;
	}
	ck_assert_msg(old != NULL, "delete %s: missing", name);
	ck_assert_msg(!model_uses(m, kind == M_SET ? name : NULL, kind == M_CHAIN ? name : NULL),
		      "delete %s: in use", name);
	if (kind == M_CHAIN)
		ck_assert_msg(model_find(m, M_RULE, name, NULL) == NULL, "chain %s not empty",
			      name);
	for (size_t i = 0; kind == M_SET && i < m->n; i++)
		if (!m->v[i].dead && m->v[i].kind == M_ELEM && strcmp(m->v[i].name, name) == 0)
			model_kill(&m->v[i]);
	model_kill(old);
}

static void model_apply(struct model *m, const struct fw_msgs *b)
{
	const struct nlmsghdr *nlh = (const void *)b->buf;
	int rem = (int)b->len;
	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
		if (nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES)
			continue;
		switch (NFNL_MSG_TYPE(nlh->nlmsg_type)) {
		case NFT_MSG_NEWTABLE:
			if (model_find(m, M_TABLE, "", NULL) != NULL)
				model_kill(model_find(m, M_TABLE, "", NULL));
			fw_msgs_append(&model_add(m, M_TABLE, "")->msg, nlh, nlh->nlmsg_len);
			break;
		case NFT_MSG_DELTABLE:
			for (size_t i = 0; i < m->n; i++)
				model_kill(&m->v[i]);
			break;
		case NFT_MSG_NEWCHAIN:
		case NFT_MSG_DELCHAIN:
			model_named(m, nlh, M_CHAIN, is_type(nlh, NFT_MSG_NEWCHAIN));
			break;
		case NFT_MSG_NEWSET:
		case NFT_MSG_DELSET:
			model_named(m, nlh, M_SET, is_type(nlh, NFT_MSG_NEWSET));
			break;
		case NFT_MSG_NEWSETELEM:
		case NFT_MSG_DELSETELEM:
			model_elems(m, nlh, is_type(nlh, NFT_MSG_NEWSETELEM));
			break;
		case NFT_MSG_NEWRULE:
		case NFT_MSG_DELRULE:
			model_rule(m, nlh, is_type(nlh, NFT_MSG_NEWRULE));
			break;
		default:
			ck_abort_msg("message type %#x", nlh->nlmsg_type);
		}
	}
}

/* As a dump gives it: table, chains, sets, elements, rules. */
static void model_dump(struct model *m, struct fw_msgs *out)
{
	fw_msgs_init(out);
	for (int kind = M_TABLE; kind <= M_RULE; kind++)
		for (size_t i = 0; i < m->n; i++)
			if (!m->v[i].dead && m->v[i].kind == kind)
				ck_assert_int_eq(
					fw_msgs_append(out, m->v[i].msg.buf, m->v[i].msg.len), 0);
}

/* ---- patches ---- */

struct counts {
	size_t new_chain, del_chain, new_set, del_set, new_elem, del_elem, new_rule, del_rule;
};

static struct counts counts_of(const struct fw_msgs *b)
{
	return (struct counts){
		count_type(b, NFT_MSG_NEWCHAIN),   count_type(b, NFT_MSG_DELCHAIN),
		count_type(b, NFT_MSG_NEWSET),	   count_type(b, NFT_MSG_DELSET),
		count_type(b, NFT_MSG_NEWSETELEM), count_type(b, NFT_MSG_DELSETELEM),
		count_type(b, NFT_MSG_NEWRULE),	   count_type(b, NFT_MSG_DELRULE),
	};
}

static struct fw_change *change_new(void)
{
	struct fw_change *c = calloc(1, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	c->upsert = fw_state_new();
	return c;
}

/* u: a copy of from (its addresses and rules). */
static int user_copy_into(struct fw_user *u, const struct fw_user *from)
{
	memcpy(u->id, from->id, FW_ID_LEN);
	u->active = from->active;
	for (size_t i = 0; i < from->n_addrs; i++)
		if (fw_user_add_addr(u, &from->addrs[i]) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < from->n_rules; i++)
		*fw_user_add_rule(u) = from->rules[i];
	return 0;
}

static void change_free(struct fw_change *c)
{
	fw_change_free(c);
	free(c);
}

static void change_remove_user(struct fw_change *c, uint32_t n)
{
	c->remove_users = realloc(c->remove_users, (c->n_remove_users + 1) * FW_ID_LEN);
	id_make(c->remove_users[c->n_remove_users++], 0xaa, n);
}

static void change_remove_rule(struct fw_change *c, uint32_t n)
{
	c->remove_rules = realloc(c->remove_rules, (c->n_remove_rules + 1) * FW_ID_LEN);
	id_make(c->remove_rules[c->n_remove_rules++], 0xbb, n);
}

/*
 * Patch cur (a kernel model loaded from its replace) with c; the model read
 * back must be cur with c applied. The batch's counts, or n_msgs 0.
 */
static struct counts check_patch(const struct fw_state *cur, struct fw_change *c, size_t *n_msgs)
{
	struct model m = {0};
	struct fw_msgs b, p, dump;
	struct fw_state *next, *want, *got;
	char why[1024];

	build(&b, cur);
	model_apply(&m, &b);
	ck_assert_int_eq(fw_change_prepare(cur, c, &next), 0);
	fw_msgs_init(&p);
	ck_assert_int_eq(fw_nft_build_patch(&p, &env, cur, next, c, SEQ0), 0);
	if (p.n_msgs > 0)
		check_batch(&p, SEQ0);
	model_apply(&m, &p);
	model_dump(&m, &dump);
	want = fw_state_copy(cur);
	ck_assert_int_eq(fw_change_apply(want, c), 0);
	int r = parse(&env, &dump, &got, why, sizeof(why));
	ck_assert_msg(r == 0, "parse: %d %s", r, why);
	check_state(got, want);
	struct counts k = counts_of(&p);
	*n_msgs = p.n_msgs;
	fw_state_free(got);
	fw_state_free(want);
	fw_state_free(next);
	fw_msgs_free(&dump);
	fw_msgs_free(&p);
	fw_msgs_free(&b);
	model_free(&m);
	return k;
}

/* users 1..n; user 2 has a set; user 3 has v4 and v6 and is inactive */
static struct fw_state *state_users(uint32_t n)
{
	struct fw_state *s = fw_state_new();
	s->settings.default_accept = true;
	for (uint32_t i = 1; i <= n; i++) {
		char a[48];
		struct fw_user *u = user_new(s, i, i != 3);
		snprintf(a, sizeof(a), "10.3.%u.%u", i / 250, i % 250 + 2);
		addr_add(u, a);
		if (i == 3)
			addr_add(u, "fd00:3::3");
		USER_RULE(u, 10 * i, 1, "192.0.2.0/24", FW_PROTO_TCP, 443, 443, true);
		if (i == 2)
			run_of(u, NULL, 10 * i + 100000, 5, 2);
	}
	run_of(NULL, s, 900000, 4, 0);
	return state_done(s);
}

START_TEST(test_patch_add_user)
{
	struct fw_state *cur = state_users(10);
	struct fw_change *c = change_new();
	struct fw_user *u = user_new(c->upsert, 77, true);
	size_t n;
	addr_add(u, "10.3.9.9");
	addr_add(u, "fd00:3::77");
	run_of(u, NULL, 7700, 4, 0);
	struct counts k = check_patch(cur, c, &n);
	ck_assert_uint_eq(k.new_chain, 1);
	ck_assert_uint_eq(k.new_set, 1);
	ck_assert_uint_eq(k.new_rule, 1);
	ck_assert_uint_eq(k.new_elem, 3); /* set, src4, src6 */
	ck_assert_uint_eq(k.del_chain + k.del_set + k.del_elem + k.del_rule, 0);
	change_free(c);
	fw_state_free(cur);
}
END_TEST

START_TEST(test_patch_remove_user)
{
	struct fw_state *cur = state_users(10);
	struct fw_change *c = change_new();
	size_t n;
	change_remove_user(c, 2);
	change_remove_user(c, 3);
	change_remove_user(c, 999); /* not there: no error */
	struct counts k = check_patch(cur, c, &n);
	ck_assert_uint_eq(k.del_chain, 2);
	ck_assert_uint_eq(k.del_set, 1);
	ck_assert_uint_eq(k.del_rule, 2);
	ck_assert_uint_eq(k.del_elem, 2); /* src4, src6 */
	ck_assert_uint_eq(k.new_chain + k.new_set + k.new_elem + k.new_rule, 0);
	change_free(c);
	fw_state_free(cur);
}
END_TEST

/* A user's new rules and addresses: its chain is kept, its content redone. */
START_TEST(test_patch_change_user)
{
	struct fw_state *cur = state_users(10);
	struct fw_change *c = change_new();
	struct fw_user *u = user_new(c->upsert, 2, true);
	size_t n;
	addr_add(u, "10.3.0.200");
	rules_every_shape(u, 5000);
	struct counts k = check_patch(cur, c, &n);
	ck_assert_uint_eq(k.new_chain + k.del_chain, 0);
	ck_assert_uint_eq(k.del_set, 1);
	ck_assert_uint_eq(k.new_set, 0);
	ck_assert_uint_eq(k.del_rule, 1);
	ck_assert_uint_eq(k.new_rule, 10);
	ck_assert_uint_eq(k.del_elem, 1);
	ck_assert_uint_eq(k.new_elem, 1);
	change_free(c);
	fw_state_free(cur);
}
END_TEST

/* New addresses, the same rules: map elements only, and only those that change. */
START_TEST(test_patch_addresses)
{
	struct fw_state *cur = state_users(10);
	struct fw_change *c = change_new();
	const struct fw_user *old = &cur->users[2]; /* user 3: 10.3.0.5, fd00:3::3 */
	struct fw_user *u = user_new(c->upsert, 3, false);
	size_t n;
	addr_add(u, "10.3.0.5");
	addr_add(u, "fd00:3::33");
	addr_add(u, "fd00:3::34");
	for (size_t i = 0; i < old->n_rules; i++)
		*fw_user_add_rule(u) = old->rules[i];
	struct counts k = check_patch(cur, c, &n);
	ck_assert_uint_eq(k.del_elem, 1); /* src6: fd00:3::3 */
	ck_assert_uint_eq(k.new_elem, 1); /* src6: the two new ones */
	ck_assert_uint_eq(n, 4);	  /* and the batch's begin and end */
	change_free(c);
	fw_state_free(cur);
}
END_TEST

/* Disable and enable: the map elements swap in the same batch; the chain stays as it is. */
START_TEST(test_patch_active)
{
	struct fw_state *cur = state_users(10);
	for (int active = 0; active < 2; active++) {
		struct fw_change *c = change_new();
		const struct fw_user *old = &cur->users[active ? 2 : 0];
		struct fw_user *u = user_new(c->upsert, active ? 3 : 1, active);
		size_t n;
		for (size_t i = 0; i < old->n_addrs; i++)
			ck_assert_int_eq(fw_user_add_addr(u, &old->addrs[i]), 0);
		USER_RULE(u, active ? 30 : 10, 1, "192.0.2.0/24", FW_PROTO_TCP, 443, 443, true);
		struct counts k = check_patch(cur, c, &n);
		ck_assert_uint_eq(k.del_elem, old->n_addrs); /* a message per family */
		ck_assert_uint_eq(k.new_elem, old->n_addrs);
		ck_assert_uint_eq(n, 2 + 2 * old->n_addrs); /* nothing else */
		change_free(c);
	}
	fw_state_free(cur);
}
END_TEST

START_TEST(test_patch_global)
{
	struct fw_state *cur = state_users(10);
	struct fw_change *c = change_new();
	size_t n;
	GLOBAL_RULE(c->upsert, 900001, 1, "10.9.1.0/24", FW_PROTO_TCP, 443, 443, false);
	GLOBAL_RULE(c->upsert, 42, 5, "2001:db8::/32", FW_PROTO_ANY, 0, 0, true);
	change_remove_rule(c, 900002);
	struct counts k = check_patch(cur, c, &n);
	ck_assert_uint_eq(k.del_rule, 1);
	ck_assert_uint_eq(k.del_set, 1);
	ck_assert_uint_eq(k.new_set, 0); /* 2 of the set left, 1 changed: rules */
	ck_assert_uint_eq(k.new_chain + k.del_chain + k.new_elem + k.del_elem, 0);
	change_free(c);
	fw_state_free(cur);
}
END_TEST

START_TEST(test_patch_settings)
{
	struct fw_state *cur = state_users(10);
	static const struct fw_settings set[] = {
		{true, true, false, false}, /* isolation: global only */
		{true, false, true, true},  /* masquerade: postrouting and global */
		{false, false, false, false},
	};
	static const size_t flushes[] = {1, 2, 1};
	for (size_t i = 0; i < ARRAY_LEN(set); i++) {
		struct fw_change *c = change_new();
		size_t n;
		c->has_settings = true;
		c->settings = set[i];
		struct counts k = check_patch(cur, c, &n);
		ck_assert_uint_eq(k.del_rule, flushes[i]);
		ck_assert_uint_eq(k.del_set, 1); /* the global set, remade */
		ck_assert_uint_eq(k.new_set, 1);
		ck_assert_uint_eq(k.new_elem, 1);
		ck_assert_uint_eq(k.new_chain + k.del_chain + k.del_elem, 0);
		change_free(c);
	}
	fw_state_free(cur);
}
END_TEST

START_TEST(test_patch_empty)
{
	struct fw_state *cur = state_users(10);
	struct fw_change *c = change_new();
	size_t n;
	check_patch(cur, c, &n);
	ck_assert_uint_eq(n, 0);
	c->has_settings = true;
	c->settings = cur->settings;
	check_patch(cur, c, &n);
	ck_assert_uint_eq(n, 0);
	/* a user and a global rule as they are */
	struct fw_user *u = fw_state_add_user(c->upsert);
	ck_assert_int_eq(user_copy_into(u, &cur->users[1]), 0);
	*fw_state_add_global_rule(c->upsert) = cur->global_rules[2];
	check_patch(cur, c, &n);
	ck_assert_uint_eq(n, 0);
	change_free(c);
	fw_state_free(cur);
}
END_TEST

/* A one-user change costs the same messages at 10 and at 10k users. */
START_TEST(test_patch_flat)
{
	size_t n_small = 0;
	for (uint32_t users = 10; users <= 10000; users *= 1000) {
		struct fw_state *cur = state_users(users);
		struct fw_change *c = change_new();
		struct fw_msgs p;
		struct fw_state *next;
		struct fw_user *u = user_new(c->upsert, 5, false);
		addr_add(u, "10.3.0.7");
		rules_every_shape(u, 800000);
		u = user_new(c->upsert, 20000, true);
		addr_add(u, "10.3.200.7");
		change_remove_user(c, 2);
		ck_assert_int_eq(fw_change_prepare(cur, c, &next), 0);
		fw_msgs_init(&p);
		ck_assert_int_eq(fw_nft_build_patch(&p, &env, cur, next, c, SEQ0), 0);
		check_batch(&p, SEQ0);
		if (users == 10)
			n_small = p.n_msgs;
		ck_assert_uint_eq(p.n_msgs, n_small);
		fw_msgs_free(&p);
		fw_state_free(next);
		change_free(c);
		fw_state_free(cur);
	}
}
END_TEST

/* ---- random states and changes through the model ---- */

static uint32_t rnd(uint64_t *seed, uint32_t n)
{
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*seed >> 33) % n;
}

static void random_rules(uint64_t *seed, struct fw_user *u, struct fw_state *g, uint32_t *rid)
{
	static const char *const dst[] = {"10.0.0.0/8",	   "10.1.0.0/16", "10.1.2.3",
					  "2001:db8::/32", "2001:db8::1", "0.0.0.0/0"};
	static const uint8_t proto[] = {FW_PROTO_ANY, FW_PROTO_TCP, FW_PROTO_UDP, FW_PROTO_TCP};
	uint32_t n = rnd(seed, 12);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t p = proto[rnd(seed, 4)];
		uint16_t from = p != FW_PROTO_ANY && rnd(seed, 2) ? (uint16_t)(1 + rnd(seed, 100))
								  : 0;
		uint16_t to = from != 0 ? (uint16_t)(from + rnd(seed, 3)) : 0;
		struct fw_rule *r = u != NULL ? fw_user_add_rule(u) : fw_state_add_global_rule(g);
		rule_fill(r, (*rid)++, (int32_t)rnd(seed, 5), dst[rnd(seed, 6)], p, from, to,
			  rnd(seed, 4) != 0);
	}
}

static void random_user(uint64_t *seed, struct fw_state *s, uint32_t n, uint32_t *rid)
{
	char a[48];
	struct fw_user *u = user_new(s, n, rnd(seed, 3) != 0);
	snprintf(a, sizeof(a), "10.3.%u.%u", n / 200, n % 200 + 1);
	addr_add(u, a);
	if (rnd(seed, 2)) {
		snprintf(a, sizeof(a), "fd00:3::%x", n + 1);
		addr_add(u, a);
	}
	random_rules(seed, u, NULL, rid);
}

START_TEST(test_patch_random)
{
	uint64_t seed = (uint64_t)_i + 1;
	uint32_t rid = 1;
	struct fw_state *cur = fw_state_new();
	struct fw_change *c = change_new();
	size_t n;
	for (uint32_t i = 0; i < 12; i++)
		random_user(&seed, cur, i * 3, &rid);
	random_rules(&seed, NULL, cur, &rid);
	cur->settings =
		(struct fw_settings){rnd(&seed, 2), rnd(&seed, 2), rnd(&seed, 2), rnd(&seed, 2)};
	state_done(cur);
	for (uint32_t i = 0, n0 = rnd(&seed, 40); i < 3; i++) {
		random_user(&seed, c->upsert, (n0 + 13 * i) % 40, &rid);
		change_remove_user(c, rnd(&seed, 40));
	}
	random_rules(&seed, NULL, c->upsert, &rid);
	for (size_t i = 0; i < cur->n_global_rules; i++)
		if (rnd(&seed, 3) == 0)
			change_remove_rule(c, rid - 1 - rnd(&seed, rid - 1));
	c->has_settings = rnd(&seed, 2);
	c->settings =
		(struct fw_settings){rnd(&seed, 2), rnd(&seed, 2), rnd(&seed, 2), rnd(&seed, 2)};
	check_patch(cur, c, &n);
	change_free(c);
	fw_state_free(cur);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fw_nft");
	TCase *replace = tcase_create("replace");
	TCase *patch = tcase_create("patch");

	tcase_add_checked_fixture(replace, setup, NULL);
	tcase_add_checked_fixture(patch, setup, NULL);
	tcase_set_timeout(replace, 120);
	tcase_set_timeout(patch, 120);
	tcase_add_loop_test(replace, test_roundtrip, 0, 7);
	tcase_add_test(replace, test_sets);
	tcase_add_test(replace, test_10k_users);
	tcase_add_test(replace, test_tamper);
	tcase_add_test(replace, test_other_state);
	tcase_add_loop_test(replace, test_other_bytes, 0, 7);
	tcase_add_test(replace, test_other_env);
	tcase_add_test(replace, test_other_table);
	suite_add_tcase(s, replace);
	tcase_add_test(patch, test_patch_add_user);
	tcase_add_test(patch, test_patch_remove_user);
	tcase_add_test(patch, test_patch_change_user);
	tcase_add_test(patch, test_patch_addresses);
	tcase_add_test(patch, test_patch_active);
	tcase_add_test(patch, test_patch_global);
	tcase_add_test(patch, test_patch_settings);
	tcase_add_test(patch, test_patch_empty);
	tcase_add_test(patch, test_patch_flat);
	tcase_add_loop_test(patch, test_patch_random, 0, 60);
	suite_add_tcase(s, patch);
	return check_run(s);
}
