/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The firewall against a real kernel, in a network namespace of our own:
 * agent/fw_nl.c (commit, dump) with batches made by hand with libnftnl, then
 * agent/fw_table.c over it. Tables of other names and families sit beside
 * ours in every test and must be neither read nor touched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "fw_table.h"

#define TABLE "wgt"
#define NFT_TYPE(msg) ((uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | (msg)))

/* ---- helpers ---------------------------------------------------------- */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* The standard output of a shell command (malloc'd). */
static char *sh_out(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char *text = NULL;
	size_t len = 0, cap = 0, n;

	ck_assert_ptr_nonnull(p);
	do {
		if (cap - len < 65536) {
			char *more = realloc(text, cap * 2 + 65536);
			ck_assert_ptr_nonnull(more);
			text = more;
			cap = cap * 2 + 65536;
		}
		n = fread(text + len, 1, cap - len - 1, p);
		len += n;
	} while (n > 0);
	text[len] = '\0';
	ck_assert_msg(pclose(p) == 0, "failed: %s", cmd);
	return text;
}

static char *file_read(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}

/* `nft -j list table inet TABLE` as nft prints it, handles and all. */
static char *table_json_raw(void)
{
	return sh_out("nft -j list table inet " TABLE);
}

/* The table's handle: it changes whenever the table is replaced. */
static long table_handle(void)
{
	char *j = table_json_raw();
	const char *t = strstr(j, "{\"table\": {");
	long handle = -1;

	ck_assert_ptr_nonnull(t);
	t = strstr(t, "\"handle\": ");
	ck_assert_ptr_nonnull(t);
	handle = strtol(t + strlen("\"handle\": "), NULL, 10);
	free(j);
	return handle;
}

/* The ruleset generation: +1 for every committed transaction. */
static uint32_t nft_genid(void)
{
	char buf[8192];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	struct nlmsghdr *nlh;
	struct nftnl_gen *gen = nftnl_gen_alloc();
	uint32_t id;
	ssize_t n;

	ck_assert_ptr_nonnull(nl);
	ck_assert_int_eq(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, 0, 1);
	ck_assert_int_ge(mnl_socket_sendto(nl, nlh, nlh->nlmsg_len), 0);
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	nlh = (struct nlmsghdr *)buf;
	ck_assert_uint_eq(nlh->nlmsg_type, NFT_TYPE(NFT_MSG_NEWGEN));
	ck_assert_int_eq(nftnl_gen_nlmsg_parse(nlh, gen), 0);
	id = nftnl_gen_get_u32(gen, NFTNL_GEN_ID);
	nftnl_gen_free(gen);
	mnl_socket_close(nl);
	return id;
}

/* Every test starts from an empty ruleset plus tables that are not ours. */
static void ruleset_reset(void)
{
	sh("nft flush ruleset");
	sh("nft -f - <<'EOF'\n"
	   "table inet other {\n"
	   "  set s { type ipv4_addr; elements = { 192.0.2.1 } }\n"
	   "  chain c { ip daddr @s accept; }\n"
	   "}\n"
	   "table ip " TABLE " {\n"
	   "  set s { type ipv4_addr; elements = { 192.0.2.2 } }\n"
	   "  chain u1 { ip daddr @s accept; }\n"
	   "}\n"
	   "EOF");
}

static char *foreign_snapshot(void)
{
	return sh_out("nft list table inet other; nft list table ip " TABLE);
}

/* ---- batches by hand -------------------------------------------------- */

struct hand {
	struct fw_msgs m;
	uint32_t seq;
	size_t last; /* offset of the last command message */
	const char *what[64];
	char buf[65536];
};

static struct nlmsghdr *hand_hdr(struct hand *h, uint16_t type, uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(h->buf, type, NFPROTO_INET, flags, h->seq++);
}

static void hand_put(struct hand *h, const struct nlmsghdr *nlh, const char *what)
{
	if (h->m.n_msgs < ARRAY_LEN(h->what))
		h->what[h->m.n_msgs] = what;
	h->last = h->m.len;
	ck_assert_int_eq(fw_msgs_append(&h->m, nlh, nlh->nlmsg_len), 0);
}

static void hand_begin(struct hand *h, uint32_t seq)
{
	memset(h->what, 0, sizeof(h->what));
	fw_msgs_init(&h->m);
	h->m.seq_first = seq;
	h->seq = seq;
	hand_put(h, nftnl_batch_begin(h->buf, h->seq++), NULL);
}

static void hand_table(struct hand *h, uint16_t type, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh = hand_hdr(h, type, flags);

	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, TABLE);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	hand_put(h, nlh, "table");
}

static void hand_chain(struct hand *h, const char *name)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh = hand_hdr(h, NFT_MSG_NEWCHAIN, NLM_F_CREATE);

	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	hand_put(h, nlh, "a chain");
}

static struct nftnl_set *hand_set_alloc(const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();

	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	return s;
}

/* An ipv4_addr set with n elements 10.<i>. */
static void hand_set(struct hand *h, const char *name, uint32_t n)
{
	struct nftnl_set *s = hand_set_alloc(name);
	struct nlmsghdr *nlh = hand_hdr(h, NFT_MSG_NEWSET, NLM_F_CREATE);

	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, 7);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 4);
	nftnl_set_set_u32(s, NFTNL_SET_ID, h->seq);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	hand_put(h, nlh, "a set");
	for (uint32_t i = 0; i < n;) {
		s = hand_set_alloc(name);
		for (uint32_t k = 0; k < 1000 && i < n; k++, i++) {
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();
			uint32_t a = htonl(0x0a000000 + i);

			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &a, sizeof(a));
			nftnl_set_elem_add(s, e);
		}
		nlh = hand_hdr(h, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		hand_put(h, nlh, "set elements");
	}
}

/* A rule of one verdict (to chain for a jump). */
static void hand_rule(struct hand *h, const char *chain, int verdict, const char *to,
		      const char *what)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	struct nlmsghdr *nlh = hand_hdr(h, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);

	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (to != NULL)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, to);
	nftnl_rule_add_expr(r, e);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	hand_put(h, nlh, what);
}

/* The last command asks for the ack; what[] goes to the batch. */
static void hand_end(struct hand *h)
{
	struct nlmsghdr *last = (struct nlmsghdr *)(h->m.buf + h->last);

	last->nlmsg_flags |= NLM_F_ACK;
	hand_put(h, nftnl_batch_end(h->buf, h->seq++), NULL);
	h->m.what = calloc(h->m.n_msgs, sizeof(char *));
	ck_assert_ptr_nonnull(h->m.what);
	for (size_t i = 0; i < h->m.n_msgs && i < ARRAY_LEN(h->what); i++)
		if (h->what[i] != NULL)
			h->m.what[i] = strdup(h->what[i]);
}

/* Replace the table: chains c1 c2, set s1 of n elements, rules in c1. */
static void hand_replace(struct hand *h, uint32_t seq, uint32_t n, bool bad_jump)
{
	hand_begin(h, seq);
	hand_table(h, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	hand_table(h, NFT_MSG_DELTABLE, 0);
	hand_table(h, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	hand_chain(h, "c1");
	hand_chain(h, "c2");
	hand_set(h, "s1", n);
	hand_rule(h, "c1", NFT_JUMP, "c2", "rule jump c2");
	if (bad_jump)
		hand_rule(h, "c1", NFT_JUMP, "nochain", "rule jump nochain");
	hand_rule(h, "c1", NF_ACCEPT, NULL, "rule accept");
	hand_end(h);
}

static struct fw_backend *backend_open(void)
{
	struct fw_backend *b = NULL;
	char err[256];

	ck_assert_msg(fw_nl_open(&b, err, sizeof(err)) == 0, "%s", err);
	return b;
}

static int commit(struct fw_backend *b, struct hand *h, char *err, size_t errlen)
{
	int r = b->commit(b, &h->m, err, errlen);

	fw_msgs_free(&h->m);
	return r;
}

/* Messages of a dump by type, each checked to be about inet TABLE. */
struct counts {
	size_t table, chain, set, elem_msgs, elems, rule;
};

static int count_elem_cb(struct nftnl_set_elem *e, void *data)
{
	(void)e;
	(*(size_t *)data)++;
	return 0;
}

static struct counts dump_counts(const struct fw_msgs *m)
{
	struct counts c = {0};
	const struct nlmsghdr *nlh = (const void *)m->buf;
	int len = (int)m->len;
	size_t n = 0;

	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len), n++) {
		const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
		const char *table = NULL;
		struct nftnl_chain *ch;
		struct nftnl_set *s;
		struct nftnl_rule *r;
		struct nftnl_table *t;

		ck_assert_uint_eq(g->nfgen_family, NFPROTO_INET);
		switch (nlh->nlmsg_type & 0xff) {
		case NFT_MSG_NEWTABLE:
			ck_assert_uint_eq(n, 0); /* first */
			t = nftnl_table_alloc();
			ck_assert_int_eq(nftnl_table_nlmsg_parse(nlh, t), 0);
			ck_assert_str_eq(nftnl_table_get_str(t, NFTNL_TABLE_NAME), TABLE);
			nftnl_table_free(t);
			c.table++;
			table = TABLE;
			break;
		case NFT_MSG_NEWCHAIN:
			ch = nftnl_chain_alloc();
			ck_assert_int_eq(nftnl_chain_nlmsg_parse(nlh, ch), 0);
			ck_assert_str_eq(nftnl_chain_get_str(ch, NFTNL_CHAIN_TABLE), TABLE);
			nftnl_chain_free(ch);
			c.chain++;
			table = TABLE;
			break;
		case NFT_MSG_NEWSET:
			s = nftnl_set_alloc();
			ck_assert_int_eq(nftnl_set_nlmsg_parse(nlh, s), 0);
			ck_assert_str_eq(nftnl_set_get_str(s, NFTNL_SET_TABLE), TABLE);
			nftnl_set_free(s);
			c.set++;
			table = TABLE;
			break;
		case NFT_MSG_NEWSETELEM:
			s = nftnl_set_alloc();
			ck_assert_int_eq(nftnl_set_elems_nlmsg_parse(nlh, s), 0);
			ck_assert_str_eq(nftnl_set_get_str(s, NFTNL_SET_TABLE), TABLE);
			nftnl_set_elem_foreach(s, count_elem_cb, &c.elems);
			nftnl_set_free(s);
			c.elem_msgs++;
			table = TABLE;
			break;
		case NFT_MSG_NEWRULE:
			r = nftnl_rule_alloc();
			ck_assert_int_eq(nftnl_rule_nlmsg_parse(nlh, r), 0);
			ck_assert_str_eq(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), TABLE);
			nftnl_rule_free(r);
			c.rule++;
			table = TABLE;
			break;
		}
		ck_assert_msg(table != NULL, "message type %u in a dump", nlh->nlmsg_type);
	}
	ck_assert_int_eq(len, 0);
	ck_assert_uint_eq(n, m->n_msgs);
	return c;
}

static struct counts dump(struct fw_backend *b)
{
	struct fw_msgs m;
	struct counts c;
	char err[256];

	fw_msgs_init(&m);
	ck_assert_msg(b->dump(b, TABLE, &m, err, sizeof(err)) == 0, "%s", err);
	c = dump_counts(&m);
	fw_msgs_free(&m);
	return c;
}

/* ---- fw_nl with batches by hand --------------------------------------- */

START_TEST(test_nl_commit_dump)
{
	struct fw_backend *b = backend_open();
	static struct hand h;
	char err[256] = "", *foreign = foreign_snapshot();
	uint32_t gen = nft_genid();
	struct fw_msgs m;
	struct counts c;

	fw_msgs_init(&m);
	ck_assert_int_eq(b->dump(b, TABLE, &m, err, sizeof(err)), -ENOENT);
	ck_assert_uint_eq(m.n_msgs, 0);
	ck_assert_uint_eq(nft_genid(), gen);

	hand_replace(&h, 100, 5, false);
	ck_assert_msg(commit(b, &h, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(b->commits, 1);
	ck_assert_uint_eq(nft_genid(), gen + 1);
	c = dump(b);
	ck_assert_uint_eq(c.table, 1);
	ck_assert_uint_eq(c.chain, 2);
	ck_assert_uint_eq(c.set, 1);
	ck_assert_uint_eq(c.elems, 5);
	ck_assert_uint_eq(c.rule, 2);

	/* Again over the same socket: nothing stale on it. */
	hand_replace(&h, 200, 3, false);
	ck_assert_msg(commit(b, &h, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(b->commits, 2);
	c = dump(b);
	ck_assert_uint_eq(c.elems, 3);
	ck_assert_uint_eq(nft_genid(), gen + 2);

	/* An empty batch is no transaction. */
	ck_assert_int_eq(b->commit(b, &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(b->commits, 2);
	ck_assert_uint_eq(nft_genid(), gen + 2);

	char *after = foreign_snapshot();
	ck_assert_str_eq(after, foreign);
	free(after);
	free(foreign);
	fw_msgs_free(&m);
	b->free(b);
}
END_TEST

START_TEST(test_nl_rejected)
{
	struct fw_backend *b = backend_open();
	static struct hand h;
	char err[256] = "", *before, *after;
	uint32_t gen;

	hand_replace(&h, 1, 5, false);
	ck_assert_msg(commit(b, &h, err, sizeof(err)) == 0, "%s", err);
	before = table_json_raw();
	gen = nft_genid();

	hand_replace(&h, 50, 7, true);
	ck_assert_int_eq(commit(b, &h, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "kernel refused rule jump nochain: No such file or directory");
	ck_assert_uint_eq(b->commits, 1);
	ck_assert_uint_eq(nft_genid(), gen);
	after = table_json_raw();
	ck_assert_str_eq(after, before);
	free(after);

	/* The socket is clean for the next requests. */
	ck_assert_uint_eq(dump(b).elems, 5);
	hand_replace(&h, 80, 2, false);
	ck_assert_msg(commit(b, &h, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(dump(b).elems, 2);
	free(before);
	b->free(b);
}
END_TEST

/* Without CAP_NET_ADMIN: the kernel refuses the whole batch, we say so. */
START_TEST(test_nl_unprivileged)
{
	struct fw_backend *b = backend_open();
	static struct hand h;
	uint32_t gen = nft_genid();
	pid_t pid;
	int status;

	hand_replace(&h, 1, 3, false);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char err[256] = "";
		bool ok;
		int r;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		r = b->commit(b, &h.m, err, sizeof(err));
		fprintf(stderr, "unprivileged commit: %d %s\n", r, err);
		ok = r == -EPERM && b->commits == 0 &&
		     strcmp(err, "kernel refused the batch: Operation not permitted") == 0;
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	ck_assert_uint_eq(nft_genid(), gen);
	fw_msgs_free(&h.m);
	b->free(b);
}
END_TEST

/* A batch failing in thousands of messages: the first error is named, and
 * the errors that did not fit the socket leave nothing behind. */
START_TEST(test_nl_many_errors)
{
	struct fw_backend *b = backend_open();
	struct hand *h = calloc(1, sizeof(*h));
	char err[256] = "";
	uint32_t gen = nft_genid();

	ck_assert_ptr_nonnull(h);
	hand_begin(h, 1);
	hand_table(h, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	hand_chain(h, "c1");
	hand_rule(h, "c1", NFT_JUMP, "nochain", "first bad rule");
	for (int i = 0; i < 30000; i++)
		hand_rule(h, "c1", NFT_JUMP, "nochain", NULL);
	hand_end(h);
	ck_assert_int_eq(commit(b, h, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "kernel refused first bad rule: No such file or directory");
	ck_assert_uint_eq(nft_genid(), gen);
	ck_assert_uint_eq(b->commits, 0);

	struct fw_msgs m;
	fw_msgs_init(&m);
	ck_assert_int_eq(b->dump(b, TABLE, &m, err, sizeof(err)), -ENOENT);
	fw_msgs_free(&m);
	hand_replace(h, 70000, 1, false);
	ck_assert_msg(commit(b, h, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(dump(b).elems, 1);
	free(h);
	b->free(b);
}
END_TEST

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The size of a 10k-user table: a batch of many MB, a dump of many parts. */
START_TEST(test_nl_large)
{
	struct fw_backend *b = backend_open();
	struct hand *h = calloc(1, sizeof(*h));
	char err[256] = "", name[32];
	struct counts c;
	double t0;

	ck_assert_ptr_nonnull(h);
	hand_begin(h, 1);
	hand_table(h, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	hand_table(h, NFT_MSG_DELTABLE, 0);
	hand_table(h, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		hand_chain(h, name);
	}
	hand_set(h, "s1", 20000);
	hand_set(h, "s2", 3);
	for (int i = 0; i < 30000; i++) {
		snprintf(name, sizeof(name), "u%d", i % 10000);
		hand_rule(h, name, NF_ACCEPT, NULL, NULL);
	}
	hand_end(h);
	fprintf(stderr, "large batch: %zu messages, %zu bytes\n", h->m.n_msgs, h->m.len);
	t0 = now();
	ck_assert_msg(commit(b, h, err, sizeof(err)) == 0, "%s", err);
	fprintf(stderr, "large commit: %.3f s\n", now() - t0);
	t0 = now();
	c = dump(b);
	fprintf(stderr, "large dump: %.3f s\n", now() - t0);
	ck_assert_uint_eq(c.chain, 10000);
	ck_assert_uint_eq(c.set, 2);
	ck_assert_uint_eq(c.elems, 20003);
	ck_assert_uint_eq(c.rule, 30000);
	free(h);
	b->free(b);
}
END_TEST

/* Other nft users commit while we dump: the dump starts over, never mixes. */
START_TEST(test_nl_dump_while_changing)
{
	struct fw_backend *b = backend_open();
	static struct hand h;
	char err[256] = "";
	pid_t noise;

	hand_replace(&h, 1, 2000, false);
	ck_assert_msg(commit(b, &h, err, sizeof(err)) == 0, "%s", err);
	/*
	 * The kernel grows the set's hash table after the commit, in a worker;
	 * an element dump meanwhile may give elements twice or miss some (it
	 * resumes by count). Let it settle: other tables' commits must not.
	 */
	nanosleep(&(struct timespec){.tv_nsec = 300 * 1000 * 1000}, NULL);
	noise = fork();
	ck_assert_int_ge(noise, 0);
	if (noise == 0) {
		for (int i = 0;; i++) {
			char cmd[128];
			snprintf(cmd, sizeof(cmd),
				 "nft add table ip noise%d; nft delete table ip noise%d", i, i);
			if (system(cmd) != 0)
				_exit(1);
		}
	}
	for (int i = 0; i < 300; i++) {
		struct counts c = dump(b);
		ck_assert_uint_eq(c.chain, 2);
		ck_assert_uint_eq(c.elems, 2000);
		ck_assert_uint_eq(c.rule, 2);
	}
	kill(noise, SIGKILL);
	waitpid(noise, NULL, 0);
	b->free(b);
}
END_TEST

/* A dump's view of the toggled objects: chain c3, element 10.0.0.250 of s1. */
static int has_elem_cb(struct nftnl_set_elem *e, void *data)
{
	uint32_t len, want = htonl(0x0a0000fa);
	const void *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);

	if (len == sizeof(want) && memcmp(key, &want, len) == 0)
		*(bool *)data = true;
	return 0;
}

static void dump_toggled(struct fw_backend *b, bool *ret_chain, bool *ret_elem)
{
	struct fw_msgs m;
	char err[256];
	const struct nlmsghdr *nlh;
	int len;

	*ret_chain = *ret_elem = false;
	fw_msgs_init(&m);
	ck_assert_msg(b->dump(b, TABLE, &m, err, sizeof(err)) == 0, "%s", err);
	nlh = (const void *)m.buf;
	len = (int)m.len;
	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		if (nlh->nlmsg_type == NFT_TYPE(NFT_MSG_NEWCHAIN)) {
			struct nftnl_chain *c = nftnl_chain_alloc();
			ck_assert_int_eq(nftnl_chain_nlmsg_parse(nlh, c), 0);
			*ret_chain |= strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), "c3") == 0;
			nftnl_chain_free(c);
		} else if (nlh->nlmsg_type == NFT_TYPE(NFT_MSG_NEWSETELEM)) {
			struct nftnl_set *s = nftnl_set_alloc();
			ck_assert_int_eq(nftnl_set_elems_nlmsg_parse(nlh, s), 0);
			nftnl_set_elem_foreach(s, has_elem_cb, ret_elem);
			nftnl_set_free(s);
		}
	}
	fw_msgs_free(&m);
}

/* Our own table changes between the chain and the element dumps: every
 * read is of one ruleset (chain c3 exactly when element 10.0.0.250). */
START_TEST(test_nl_dump_consistent)
{
	struct fw_backend *b = backend_open();
	static struct hand h;
	char err[256] = "";
	pid_t toggler;
	int with = 0, without = 0;

	hand_replace(&h, 1, 200, false);
	ck_assert_msg(commit(b, &h, err, sizeof(err)) == 0, "%s", err);
	toggler = fork();
	ck_assert_int_ge(toggler, 0);
	if (toggler == 0) {
		for (;;) {
			if (system("nft 'add chain inet " TABLE " c3; add element inet " TABLE
				   " s1 { 10.0.0.250 }'") != 0 ||
			    system("nft 'delete chain inet " TABLE " c3; delete element inet " TABLE
				   " s1 { 10.0.0.250 }'") != 0)
				_exit(1);
		}
	}
	for (int i = 0; i < 400; i++) {
		bool chain, elem;
		dump_toggled(b, &chain, &elem);
		ck_assert_msg(chain == elem, "a dump mixed two rulesets: chain c3 %d, element %d",
			      chain, elem);
		*(chain ? &with : &without) += 1;
	}
	kill(toggler, SIGKILL);
	waitpid(toggler, NULL, 0);
	ck_assert_int_gt(with, 0);
	ck_assert_int_gt(without, 0);
	b->free(b);
}
END_TEST

/* ---- states from text ------------------------------------------------- */

/*
 * A state (or a patch's upsert) in a line per item, ';' between lines:
 *   settings accept|drop [isolation] [masq4] [masq6]
 *   user N on|off ADDR[,ADDR...]     (user id aa..N)
 *   rule N PRIO DST any|tcp|udp [PORT[-PORT]] accept|drop   (the last user's)
 *   global N PRIO DST any|tcp|udp [PORT[-PORT]] accept|drop (rule id bb..N)
 */
static void id_make(uint8_t id[FW_ID_LEN], uint8_t kind, unsigned n)
{
	memset(id, 0, FW_ID_LEN);
	id[0] = kind;
	id[FW_ID_LEN - 2] = (uint8_t)(n >> 8);
	id[FW_ID_LEN - 1] = (uint8_t)n;
}

static void rule_parse(struct fw_rule *r, const char *line)
{
	char dst[64], proto[8], a[16], b[16] = "";
	unsigned n, from = 0, to = 0;
	int prio, k = sscanf(line, "%*s %u %d %63s %7s %15s %15s", &n, &prio, dst, proto, a, b);

	ck_assert_msg(k == 5 || k == 6, "bad rule line: %s", line);
	id_make(r->id, 0xbb, n);
	r->priority = prio;
	ck_assert_msg(ip_cidr_parse(dst, IP_CIDR_ALLOW_BARE, &r->dst) == 0, "%s", dst);
	r->proto = strcmp(proto, "tcp") == 0   ? FW_PROTO_TCP
		   : strcmp(proto, "udp") == 0 ? FW_PROTO_UDP
					       : FW_PROTO_ANY;
	if (k == 6) {
		if (sscanf(a, "%u-%u", &from, &to) == 1)
			to = from;
		strcpy(a, b);
	}
	r->port_from = (uint16_t)from;
	r->port_to = (uint16_t)to;
	ck_assert_msg(strcmp(a, "accept") == 0 || strcmp(a, "drop") == 0, "%s", line);
	r->accept = strcmp(a, "accept") == 0;
}

static void user_parse(struct fw_user *u, const char *line)
{
	char state[8], addrs[512], *save = NULL;
	unsigned n;

	ck_assert_msg(sscanf(line, "user %u %7s %511s", &n, state, addrs) == 3, "%s", line);
	id_make(u->id, 0xaa, n);
	u->active = strcmp(state, "on") == 0;
	for (char *a = strtok_r(addrs, ",", &save); a != NULL; a = strtok_r(NULL, ",", &save)) {
		struct ip_addr ip;
		ck_assert_msg(ip_addr_parse(a, &ip) == 0, "%s", a);
		ck_assert_int_eq(fw_user_add_addr(u, &ip), 0);
	}
}

static struct fw_state *state_parse(const char *spec)
{
	struct fw_state *s = fw_state_new();
	char *text = strdup(spec), *save = NULL;
	struct fw_user *u = NULL;

	ck_assert_ptr_nonnull(s);
	for (char *l = strtok_r(text, ";\n", &save); l != NULL; l = strtok_r(NULL, ";\n", &save)) {
		while (*l == ' ')
			l++;
		if (strncmp(l, "settings ", 9) == 0) {
			s->settings.default_accept = strstr(l, " accept") != NULL;
			s->settings.client_isolation = strstr(l, " isolation") != NULL;
			s->settings.masquerade_ipv4 = strstr(l, " masq4") != NULL;
			s->settings.masquerade_ipv6 = strstr(l, " masq6") != NULL;
		} else if (strncmp(l, "user ", 5) == 0) {
			u = fw_state_add_user(s);
			ck_assert_ptr_nonnull(u);
			user_parse(u, l);
		} else if (strncmp(l, "rule ", 5) == 0) {
			ck_assert_ptr_nonnull(u);
			rule_parse(fw_user_add_rule(u), l);
		} else if (strncmp(l, "global ", 7) == 0) {
			rule_parse(fw_state_add_global_rule(s), l);
		} else if (*l != '\0') {
			ck_abort_msg("bad state line: %s", l);
		}
	}
	free(text);
	fw_state_normalize(s);
	return s;
}

/* ---- fw_table over fw_nl ---------------------------------------------- */

static char conf_ifname[] = "wg0", conf_table[] = TABLE;
static struct agent_conf conf;

static void conf_init(void)
{
	static const char *pools[] = {"10.3.2.0/24", "10.4.0.0/16", "fd00::3:2:0/120"};

	conf.interface = conf_ifname;
	conf.nft_table = conf_table;
	for (size_t i = 0; i < ARRAY_LEN(pools); i++)
		if (ip_cidr_parse(pools[i], 0, &conf.peer_networks.items[i]) < 0)
			abort();
	conf.peer_networks.n = ARRAY_LEN(pools);
}

struct agent {
	struct fw_table *t;
	struct fw_backend *b; /* owned by t */
};

static struct agent agent_start(void)
{
	struct agent a = {.b = backend_open()};

	a.t = fw_table_new(&conf, a.b);
	ck_assert_ptr_nonnull(a.t);
	return a;
}

static struct fw_write_stats agent_sync(struct agent *a, const char *spec)
{
	struct fw_write_stats st;
	char err[256] = "";

	ck_assert_msg(fw_table_sync(a->t, state_parse(spec), 1, &st, err, sizeof(err)) == 0, "%s",
		      err);
	return st;
}

/* What the kernel's table holds, read back by an agent started now. */
static void assert_kernel_state(const char *spec)
{
	struct agent a = agent_start();
	struct fw_state *want = state_parse(spec);
	const struct fw_state *cur;
	char err[256] = "";

	ck_assert_msg(fw_table_current(a.t, &cur, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(fw_state_equal(cur, want), "the kernel's table is not the state %s", spec);
	fw_state_free(want);
	fw_table_free(a.t);
}

/* `nft -j list table inet TABLE` in the normalized form of the golden files. */
static char *table_json(void)
{
	char cmd[1024];
	const char *src = getenv("WIREGUI_SOURCE_DIR");

	snprintf(cmd, sizeof(cmd),
		 "nft -j list table inet " TABLE
		 " | /usr/bin/python3 %s/tests/integration/nft_json_norm.py",
		 src != NULL ? src : "..");
	return sh_out(cmd);
}

static const char state_a[] = "settings accept\n"
			      "user 1 on 10.3.2.2,fd00::3:2:2\n"
			      "rule 1 10 192.0.2.10 tcp 443 accept\n"
			      "rule 2 20 198.51.100.0/24 udp 1000-2000 drop\n"
			      "rule 3 30 2001:db8::/32 any drop\n"
			      "user 2 off 10.3.2.3\n"
			      "rule 4 10 192.0.2.0/24 any accept\n"
			      "user 3 on 10.3.2.4,10.4.0.9\n"
			      "rule 5 5 192.0.2.20 tcp 22 accept\n"
			      "rule 6 5 192.0.2.21 tcp 22 accept\n"
			      "rule 7 5 192.0.2.22 tcp 22 accept\n"
			      "rule 8 5 192.0.2.23 tcp 22 accept\n"
			      "rule 9 5 192.0.2.24 tcp 22 accept\n"
			      "global 1 100 203.0.113.0/24 any drop\n"
			      "global 2 200 0.0.0.0/0 tcp 80 accept\n";

/* a) A full sync loads; an agent started now reads the same state back. */
START_TEST(test_table_replace_read_back)
{
	struct agent a = agent_start();
	char *foreign = foreign_snapshot(), *after;
	struct fw_write_stats st = agent_sync(&a, state_a);

	ck_assert(st.replaced);
	ck_assert(!st.foreign);
	ck_assert_uint_eq(st.users, 3);
	ck_assert_uint_eq(st.rules, 11);
	ck_assert_uint_eq(a.b->commits, 1);
	assert_kernel_state(state_a);
	after = foreign_snapshot();
	ck_assert_str_eq(after, foreign);
	free(after);
	free(foreign);
	fw_table_free(a.t);
}
END_TEST

/* b) A batch the kernel refuses changes nothing, and the error names the object. */
START_TEST(test_table_rejected_patch)
{
	struct agent a = agent_start();
	struct fw_change c = {0};
	char err[256] = "", *before, *after;
	uint32_t gen;
	long handle;

	agent_sync(&a, state_a);
	/* By hand, behind the agent's back: the address a new user will get. */
	sh("nft add element inet " TABLE " src4 '{ 10.3.2.9 : drop }'");
	before = table_json_raw();
	gen = nft_genid();
	handle = table_handle();

	c.upsert = state_parse("user 4 on 10.3.2.9\nrule 20 1 192.0.2.1 any accept");
	ck_assert_int_lt(fw_table_patch(a.t, &c, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "10.3.2.9") != NULL && strncmp(err, "kernel refused ", 15) == 0,
		      "error: %s", err);
	ck_assert_uint_eq(a.b->commits, 1);
	ck_assert_uint_eq(nft_genid(), gen);
	ck_assert_int_eq(table_handle(), handle);
	after = table_json_raw();
	ck_assert_str_eq(after, before);
	free(after);
	free(before);
	fw_change_free(&c);

	/* The next full sync finds the foreign element and replaces the table. */
	struct fw_write_stats st = agent_sync(&a, state_a);
	ck_assert(st.replaced);
	ck_assert(st.foreign);
	assert_kernel_state(state_a);
	fw_table_free(a.t);
}
END_TEST

/* The first message of a batch after seq holding these bytes, or NULL. */
static struct nlmsghdr *batch_find(const struct fw_msgs *m, uint32_t after, const void *bytes,
				   size_t n)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)m->buf;
	int len = (int)m->len;

	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
		if (nlh->nlmsg_seq > after && memmem(nlh, nlh->nlmsg_len, bytes, n) != NULL)
			return nlh;
	return NULL;
}

/*
 * b) A full sync whose batch the kernel refuses leaves the table as it was:
 * the builder's own batch, with chain "global" renamed in its NEWCHAIN, so
 * that the first message naming "global" fails.
 */
START_TEST(test_table_rejected_replace)
{
	static const char name[] = "global", other[] = "globaX";
	struct fw_backend *b = backend_open();
	struct agent a = agent_start();
	struct fw_state *s = state_parse(state_a);
	struct fw_env env;
	struct fw_msgs batch;
	struct nlmsghdr *chain, *first;
	char err[256] = "", want[512], *before, *after;
	uint32_t gen;

	agent_sync(&a, "settings drop\nuser 9 on 10.3.2.99\nrule 1 1 192.0.2.1 any accept");
	before = table_json_raw();
	gen = nft_genid();

	fw_env_from_conf(&env, &conf);
	for (size_t i = 0; i < s->n_users; i++)
		s->users[i].num = (uint32_t)(i + 1);
	fw_msgs_init(&batch);
	ck_assert_int_eq(fw_nft_build_replace(&batch, &env, s, 1000), 0);
	chain = batch_find(&batch, 0, name, sizeof(name));
	ck_assert_ptr_nonnull(chain);
	ck_assert_uint_eq(chain->nlmsg_type, NFT_TYPE(NFT_MSG_NEWCHAIN));
	first = batch_find(&batch, chain->nlmsg_seq, name, sizeof(name));
	ck_assert_ptr_nonnull(first);
	snprintf(want, sizeof(want), "kernel refused %s: No such file or directory",
		 fw_msgs_what(&batch, first->nlmsg_seq));
	memcpy(memmem(chain, chain->nlmsg_len, name, sizeof(name)), other, sizeof(other));

	ck_assert_int_eq(b->commit(b, &batch, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, want);
	ck_assert_uint_eq(b->commits, 0);
	ck_assert_uint_eq(nft_genid(), gen);
	after = table_json_raw();
	ck_assert_str_eq(after, before);
	free(after);
	free(before);
	fw_msgs_free(&batch);
	fw_state_free(s);
	b->free(b);
	fw_table_free(a.t);
}
END_TEST

/* c) A full sync equal to the kernel's table writes nothing, even after a restart. */
START_TEST(test_table_sync_noop)
{
	struct agent a = agent_start(), b;
	struct fw_write_stats st;
	uint32_t gen;
	long handle;

	agent_sync(&a, state_a);
	gen = nft_genid();
	handle = table_handle();

	st = agent_sync(&a, state_a);
	ck_assert(!st.replaced);
	ck_assert(!st.foreign);
	ck_assert_uint_eq(a.b->commits, 1);
	ck_assert_uint_eq(nft_genid(), gen);
	ck_assert_int_eq(table_handle(), handle);

	b = agent_start(); /* a restarted agent */
	st = agent_sync(&b, state_a);
	ck_assert(!st.replaced);
	ck_assert_uint_eq(b.b->commits, 0);
	ck_assert_uint_eq(nft_genid(), gen);
	ck_assert_int_eq(table_handle(), handle);

	/* A different state is written, in one transaction. */
	st = agent_sync(&b, "settings drop");
	ck_assert(st.replaced);
	ck_assert_uint_eq(b.b->commits, 1);
	ck_assert_uint_eq(nft_genid(), gen + 1);
	fw_table_free(b.t);
	fw_table_free(a.t);
}
END_TEST

/* d) A table changed by hand is found by the next full sync and replaced. */
static const char *const hand_changes[] = {
	"nft add rule inet " TABLE " u1 accept",
	"nft insert rule inet " TABLE " forward accept",
	"nft delete element inet " TABLE " src4 '{ 10.3.2.2 }'",
	"nft add chain inet " TABLE " extra",
	"nft add set inet " TABLE " extra '{ type ipv4_addr; }'",
	"nft flush chain inet " TABLE " global",
	"nft delete table inet " TABLE,
	"nft 'add chain inet " TABLE " forward { policy drop; }'",
};

START_TEST(test_table_hand_change)
{
	struct agent a = agent_start();
	struct fw_write_stats st;
	char *want, *got;
	const struct fw_state *cur;
	char err[256];

	agent_sync(&a, state_a);
	want = table_json();
	/* The chain the first change names is u1: user 1's. */
	ck_assert_int_eq(fw_table_current(a.t, &cur, err, sizeof(err)), 0);
	ck_assert_uint_eq(cur->users[0].num, 1);

	sh("%s", hand_changes[_i]);
	st = agent_sync(&a, state_a);
	ck_assert(st.replaced);
	ck_assert_uint_eq(a.b->commits, 2);
	got = table_json();
	ck_assert_str_eq(got, want);
	assert_kernel_state(state_a);
	free(got);
	free(want);
	fw_table_free(a.t);
}
END_TEST

/* e) Patches: each is one transaction, and leaves the table a full sync of
 * the patched state would make. */
struct patch_case {
	const char *name;
	const char *before;
	const char *upsert; /* NULL: none */
	unsigned remove_users[2], remove_rules[2];
	const char *settings; /* NULL: unchanged */
	const char *after;
};

#define USER1 "user 1 on 10.3.2.2,fd00::3:2:2\nrule 1 10 192.0.2.10 tcp 443 accept\n"
#define USER2 "user 2 on 10.3.2.3\nrule 2 10 192.0.2.0/24 any drop\n"
#define GLOBALS "global 10 100 203.0.113.0/24 any drop\nglobal 11 200 0.0.0.0/0 tcp 80 accept\n"
#define RUN4                                                                       \
	"rule 40 5 192.0.2.20 tcp 22 accept\nrule 41 5 192.0.2.21 tcp 22 accept\n" \
	"rule 42 5 192.0.2.22 tcp 22 accept\nrule 43 5 192.0.2.23 tcp 22 accept\n"

static const struct patch_case patch_cases[] = {
	{"add user",
	 "settings accept\n" USER1 GLOBALS,
	 USER2,
	 {0},
	 {0},
	 NULL,
	 "settings accept\n" USER1 USER2 GLOBALS},
	{"remove user",
	 "settings accept\n" USER1 USER2 GLOBALS,
	 NULL,
	 {1},
	 {0},
	 NULL,
	 "settings accept\n" USER2 GLOBALS},
	{"change user",
	 "settings accept\n" USER1 USER2 GLOBALS,
	 "user 1 on 10.3.2.5,fd00::3:2:2\nrule 1 15 192.0.2.11 udp 53 drop\nrule 3 1 "
	 "2001:db8::/64 tcp 1-1024 accept",
	 {0},
	 {0},
	 NULL,
	 "settings accept\nuser 1 on 10.3.2.5,fd00::3:2:2\nrule 1 15 192.0.2.11 udp 53 drop\nrule 3 1 "
	 "2001:db8::/64 tcp 1-1024 accept\n" USER2 GLOBALS},
	{"disable user",
	 "settings accept\n" USER1 USER2 GLOBALS,
	 "user 1 off 10.3.2.2,fd00::3:2:2\nrule 1 10 192.0.2.10 tcp 443 accept",
	 {0},
	 {0},
	 NULL,
	 "settings accept\nuser 1 off 10.3.2.2,fd00::3:2:2\nrule 1 10 192.0.2.10 tcp 443 accept\n" USER2
		 GLOBALS},
	{"enable user",
	 "settings accept\nuser 1 off 10.3.2.2\n" USER2 GLOBALS,
	 "user 1 on 10.3.2.2",
	 {0},
	 {0},
	 NULL,
	 "settings accept\nuser 1 on 10.3.2.2\n" USER2 GLOBALS},
	{"rules into a set",
	 "settings accept\n" USER1 USER2,
	 "user 1 on 10.3.2.2\n" RUN4,
	 {0},
	 {0},
	 NULL,
	 "settings accept\nuser 1 on 10.3.2.2\n" RUN4 USER2},
	{"set back into rules",
	 "settings accept\nuser 1 on 10.3.2.2\n" RUN4 USER2,
	 "user 1 on 10.3.2.2\nrule 40 5 192.0.2.20 tcp 22 accept\nrule 41 5 192.0.2.21 tcp 22 accept",
	 {0},
	 {0},
	 NULL,
	 "settings accept\nuser 1 on 10.3.2.2\nrule 40 5 192.0.2.20 tcp 22 accept\nrule 41 5 "
	 "192.0.2.21 tcp 22 accept\n" USER2},
	{"change global rule",
	 "settings accept\n" USER1 GLOBALS,
	 "global 10 300 203.0.113.0/25 udp 5 drop",
	 {0},
	 {0},
	 NULL,
	 "settings accept\n" USER1
	 "global 10 300 203.0.113.0/25 udp 5 drop\nglobal 11 200 0.0.0.0/0 tcp 80 accept\n"},
	{"add global run",
	 "settings accept\n" USER1 GLOBALS,
	 "global 20 50 198.51.100.1 any accept\nglobal 21 50 198.51.100.2 any accept\n"
	 "global 22 50 198.51.100.3 any accept\nglobal 23 50 198.51.100.4 any accept",
	 {0},
	 {0},
	 NULL,
	 "settings accept\n" USER1 GLOBALS
	 "global 20 50 198.51.100.1 any accept\nglobal 21 50 198.51.100.2 any accept\n"
	 "global 22 50 198.51.100.3 any accept\nglobal 23 50 198.51.100.4 any accept"},
	{"remove global rule",
	 "settings accept\n" USER1 GLOBALS,
	 NULL,
	 {0},
	 {10},
	 NULL,
	 "settings accept\n" USER1 "global 11 200 0.0.0.0/0 tcp 80 accept\n"},
	{"settings",
	 "settings accept\n" USER1 GLOBALS,
	 NULL,
	 {0},
	 {0},
	 "settings drop isolation masq4 masq6",
	 "settings drop isolation masq4 masq6\n" USER1 GLOBALS},
	{"settings back",
	 "settings drop isolation masq4 masq6\n" USER1 GLOBALS,
	 NULL,
	 {0},
	 {0},
	 "settings accept",
	 "settings accept\n" USER1 GLOBALS},
	{"several at once",
	 "settings accept\n" USER1 USER2 GLOBALS,
	 "user 3 on 10.4.0.3,fd00::3:2:3\nrule 30 1 192.0.2.30 udp 500-600 accept\nglobal 12 1 "
	 "192.0.2.99 any drop",
	 {2},
	 {11},
	 "settings drop masq4",
	 "settings drop masq4\n" USER1
	 "user 3 on 10.4.0.3,fd00::3:2:3\nrule 30 1 192.0.2.30 udp 500-600 accept\n"
	 "global 10 100 203.0.113.0/24 any drop\nglobal 12 1 192.0.2.99 any drop"},
};

static void change_make(struct fw_change *c, const struct patch_case *pc)
{
	static uint8_t users[2][FW_ID_LEN], rules[2][FW_ID_LEN];

	memset(c, 0, sizeof(*c));
	if (pc->upsert != NULL)
		c->upsert = state_parse(pc->upsert);
	for (size_t i = 0; i < 2 && pc->remove_users[i] != 0; i++)
		id_make(users[c->n_remove_users++], 0xaa, pc->remove_users[i]);
	for (size_t i = 0; i < 2 && pc->remove_rules[i] != 0; i++)
		id_make(rules[c->n_remove_rules++], 0xbb, pc->remove_rules[i]);
	c->remove_users = c->n_remove_users ? users : NULL;
	c->remove_rules = c->n_remove_rules ? rules : NULL;
	if (pc->settings != NULL) {
		struct fw_state *s = state_parse(pc->settings);
		c->has_settings = true;
		c->settings = s->settings;
		fw_state_free(s);
	}
}

START_TEST(test_table_patch)
{
	const struct patch_case *pc = &patch_cases[_i];
	struct agent a = agent_start(), b;
	struct fw_change c;
	const struct fw_state *cur;
	struct fw_state *mine;
	struct fw_env env;
	struct fw_msgs batch;
	struct fw_write_stats st;
	char err[256] = "", *patched, *fresh;
	uint32_t gen;

	agent_sync(&a, pc->before);
	gen = nft_genid();
	change_make(&c, pc);
	ck_assert_msg(fw_table_patch(a.t, &c, err, sizeof(err)) == 0, "%s: %s", pc->name, err);
	fw_state_free(c.upsert); /* not fw_change_free: the id arrays are static */
	ck_assert_uint_eq(a.b->commits, 2);
	ck_assert_uint_eq(nft_genid(), gen + 1);
	patched = table_json();
	assert_kernel_state(pc->after);

	/* A full sync of the patched state finds nothing to do. */
	b = agent_start();
	st = agent_sync(&b, pc->after);
	ck_assert_msg(!st.replaced, "%s: a full sync rewrote the patched table", pc->name);

	/* The table a replace of that state (the kernel's nums) makes is the same. */
	ck_assert_int_eq(fw_table_current(b.t, &cur, err, sizeof(err)), 0);
	mine = fw_state_copy(cur);
	ck_assert_ptr_nonnull(mine);
	fw_table_free(b.t);
	sh("nft delete table inet " TABLE);
	fw_env_from_conf(&env, &conf);
	fw_msgs_init(&batch);
	ck_assert_int_eq(fw_nft_build_replace(&batch, &env, mine, 1), 0);
	b.b = backend_open();
	ck_assert_msg(b.b->commit(b.b, &batch, err, sizeof(err)) == 0, "%s", err);
	fresh = table_json();
	ck_assert_msg(strcmp(patched, fresh) == 0, "%s: patched table\n%s\nfresh table\n%s",
		      pc->name, patched, fresh);
	b.b->free(b.b);
	fw_msgs_free(&batch);
	fw_state_free(mine);
	free(fresh);
	free(patched);
	fw_table_free(a.t);
}
END_TEST

/* An empty patch is no transaction. */
START_TEST(test_table_patch_empty)
{
	struct agent a = agent_start();
	struct fw_change c = {0};
	char err[256] = "";
	uint32_t gen;

	agent_sync(&a, state_a);
	gen = nft_genid();
	ck_assert_msg(fw_table_patch(a.t, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(a.b->commits, 1);
	ck_assert_uint_eq(nft_genid(), gen);
	fw_table_free(a.t);
}
END_TEST

/* f) Golden tables: this state -> this table, in nft's JSON form. */
struct golden_case {
	const char *name;
	const char *state;
};

static const struct golden_case golden_cases[] = {
	{"empty", "settings accept"},
	{"one_user_one_rule",
	 "settings accept\nuser 1 on 10.3.2.2\nrule 1 10 192.0.2.10 tcp 443 accept"},
	{"inactive_user",
	 "settings accept\nuser 1 on 10.3.2.2,fd00::3:2:2\nrule 1 10 192.0.2.10 any drop\n"
	 "user 2 off 10.3.2.3,fd00::3:2:3\nrule 2 10 192.0.2.0/24 tcp 22 accept"},
	/* Global rules 1-4: address-only rules stay rules (fw.h: only tcp/udp
	 * runs become sets); 5-9: one set gs0. */
	{"v4_v6_ports_and_sets",
	 "settings accept\nuser 1 on 10.3.2.2,fd00::3:2:2\n"
	 "rule 9 -5 192.0.2.99 any drop\n"
	 "rule 1 10 198.51.100.0/24 udp 1000-2000 drop\n"
	 "rule 2 20 2001:db8::/64 tcp 443 accept\n"
	 "rule 3 30 2001:db8:1::1 any drop\n"
	 "rule 4 40 192.0.2.1 tcp 80 accept\nrule 5 40 192.0.2.2 tcp 8000-8080 accept\n"
	 "rule 6 40 192.0.2.0/28 udp 53 accept\nrule 7 41 192.0.2.3 tcp 443 accept\n"
	 "rule 8 50 10.9.0.0/16 any drop\n"
	 "global 1 10 203.0.113.1 any accept\nglobal 2 10 203.0.113.2 any accept\n"
	 "global 3 10 203.0.113.3 any accept\nglobal 4 11 203.0.113.64/26 any accept\n"
	 "global 5 20 2001:db8:2::/48 udp 1-65535 drop\n"
	 "global 6 30 2001:db8:3::1 tcp 22 drop\nglobal 7 30 2001:db8:3::2 tcp 22 drop\n"
	 "global 8 30 2001:db8:3::/64 udp 5000-6000 drop\n"
	 "global 9 31 2001:db8:4::/48 tcp 1-1024 drop\n"
	 "global 10 40 0.0.0.0/0 tcp 25 drop"},
	{"isolation_default_drop",
	 "settings drop isolation\nuser 1 on 10.3.2.2,10.4.1.1,fd00::3:2:2\n"
	 "rule 1 10 10.3.2.3 tcp 22 accept\nglobal 1 10 0.0.0.0/0 udp 53 accept"},
	{"masquerade", "settings accept masq4 masq6\nuser 1 on 10.3.2.2,fd00::3:2:2"},
	{"masquerade_v4_only", "settings drop masq4"},
};

START_TEST(test_table_golden)
{
	const struct golden_case *gc = &golden_cases[_i];
	const char *src = getenv("WIREGUI_SOURCE_DIR"), *update = getenv("WIREGUI_GOLDEN_UPDATE");
	struct agent a = agent_start();
	char path[512], *got, *want;

	agent_sync(&a, gc->state);
	got = table_json();
	snprintf(path, sizeof(path), "%s/tests/integration/fw_golden/%s.json",
		 src != NULL ? src : "..", gc->name);
	if (update != NULL && strcmp(update, "1") == 0) {
		FILE *f = fopen(path, "w");
		ck_assert_msg(f != NULL, "%s", path);
		fputs(got, f);
		fclose(f);
	}
	want = file_read(path);
	ck_assert_msg(strcmp(got, want) == 0, "%s: the table differs from %s:\n%s", gc->name, path,
		      got);
	assert_kernel_state(gc->state);
	free(want);
	free(got);
	fw_table_free(a.t);
}
END_TEST

/*
 * The kernel dumps back the bytes the builder wrote: fw_nft_parse compares
 * each object byte for byte, none as text (the slow way, for another
 * kernel's dumps). If this fails on another kernel, reading back is only
 * slower there: NFT-NOTES.md says what the builder must write.
 */
START_TEST(test_table_fast_check)
{
	const struct golden_case *gc = &golden_cases[_i];
	struct agent a = agent_start();
	struct fw_state *got = NULL;
	struct fw_env env;
	struct fw_msgs m;
	char err[256] = "", why[512] = "";

	agent_sync(&a, gc->state);
	fw_msgs_init(&m);
	ck_assert_msg(a.b->dump(a.b, TABLE, &m, err, sizeof(err)) == 0, "%s", err);
	fw_env_from_conf(&env, &conf);
	ck_assert_msg(fw_nft_parse(&env, &m, &got, why, sizeof(why)) == 0, "%s", why);
	ck_assert_msg(strstr(why, " 0 compared as text") != NULL, "%s: %s", gc->name, why);
	fw_state_free(got);
	fw_msgs_free(&m);
	fw_table_free(a.t);
}
END_TEST

static Suite *fw_nl_suite(void)
{
	Suite *s = suite_create("fw_nl");
	TCase *tc = tcase_create("netlink");

	tcase_add_checked_fixture(tc, ruleset_reset, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_nl_commit_dump);
	tcase_add_test(tc, test_nl_rejected);
	tcase_add_test(tc, test_nl_unprivileged);
	tcase_add_test(tc, test_nl_many_errors);
	tcase_add_test(tc, test_nl_large);
	tcase_add_test(tc, test_nl_dump_while_changing);
	tcase_add_test(tc, test_nl_dump_consistent);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_checked_fixture(tc, ruleset_reset, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_table_replace_read_back);
	tcase_add_test(tc, test_table_rejected_patch);
	tcase_add_test(tc, test_table_rejected_replace);
	tcase_add_test(tc, test_table_sync_noop);
	tcase_add_loop_test(tc, test_table_hand_change, 0, (int)ARRAY_LEN(hand_changes));
	tcase_add_loop_test(tc, test_table_patch, 0, (int)ARRAY_LEN(patch_cases));
	tcase_add_test(tc, test_table_patch_empty);
	tcase_add_loop_test(tc, test_table_golden, 0, (int)ARRAY_LEN(golden_cases));
	tcase_add_loop_test(tc, test_table_fast_check, 0, (int)ARRAY_LEN(golden_cases));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root: a network namespace and nftables\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare(CLONE_NEWNET)");
		return EXIT_FAILURE;
	}
	conf_init();
	return check_run(fw_nl_suite());
}
