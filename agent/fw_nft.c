/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The firewall state as nftables netlink messages (the table of fw.h), and
 * those messages read back and checked.
 *
 * Build: messages are written attribute by attribute, each object as the
 * kernel dumps it back (its order of attributes, nests without
 * NLA_F_NESTED, a lookup's flags, a verdict map's data length), so that a
 * dump can be checked byte for byte. A chain's rules are cut into groups
 * (rule_group): at least FW_SET_MIN_RUN consecutive tcp/udp rules of one
 * family and action, none overlapping another (the kernel's pipapo sets
 * refuse overlapping elements), become one concat+interval set and one
 * lookup rule with the comment "set". Comments: a user chain has its user's
 * id (32 hex), a rule or rule set element "<id>:<priority>", a map element
 * "u<num>", the global chain's last rule the settings (settings_text): so
 * the table says all the state holds, even what no rule shows.
 *
 * Parse: the state is read loosely from names, comments, expressions and
 * map elements (jump: the user is active; drop: not); then the table that
 * state makes is built, and both are compared object by object: their
 * attributes byte for byte, less those the kernel adds (attr_skipped).
 * Objects whose bytes differ are compared again as text of what they mean
 * (rec_text), since another kernel may dump the same object in other bytes.
 * Whatever differs, is missing or is extra is -EBADMSG.
 */
#include "fw_nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_ROOM (128u * 1024) /* more than any one message built here */
#define ELEMS_PER_MSG 256      /* <= ~130 bytes each: a list nest stays < 64 KiB */
#define NAME_LEN 32	       /* "u<u32>s<u32>" */
#define COMMENT_LEN 128	       /* NFTNL_UDATA_COMMENT_MAXLEN */
#define HEX_LEN (2 * FW_ID_LEN)
#define TEXT_LEN 4096
#define SET_RULE_COMMENT "set"
/* Newer than 6.1's headers: what the kernel (6.18) adds to a set's dump. */
#define ATTR_SET_TYPE (NFTA_SET_EXPRESSIONS + 1)
#define ATTR_SET_COUNT (NFTA_SET_EXPRESSIONS + 2)

static const char *const map_name[2] = {"src4", "src6"};

/* ---- message buffers ---- */

void fw_msgs_init(struct fw_msgs *m)
{
	memset(m, 0, sizeof(*m));
}

void fw_msgs_free(struct fw_msgs *m)
{
	for (size_t i = 0; m->what != NULL && i < m->n_msgs; i++)
		free(m->what[i]);
	free(m->what);
	free(m->buf);
	fw_msgs_init(m);
}

/* What grows is zeroed: libmnl 1.0.4 leaves attribute padding as it finds it. */
static int msgs_reserve(struct fw_msgs *m, size_t room)
{
	size_t cap = m->cap != 0 ? m->cap : 64 * 1024;
	while (cap - m->len < room)
		cap *= 2;
	if (cap == m->cap)
		return 0;
	if (cap > 2 * (size_t)FW_NFT_MAX_BATCH)
		return -E2BIG;
	uint8_t *p = realloc(m->buf, cap);
	if (p == NULL)
		return -ENOMEM;
	memset(p + m->cap, 0, cap - m->cap);
	m->buf = p;
	m->cap = cap;
	return 0;
}

/* what[] holds a power of two >= 16 entries. */
static int what_push(struct fw_msgs *m, char *what)
{
	size_t n = m->n_msgs, cap = 16;
	while (cap < n)
		cap *= 2;
	if (m->what == NULL || n == cap) {
		char **w = realloc(m->what, (n == cap ? 2 * cap : cap) * sizeof(*w));
		if (w == NULL)
			return -ENOMEM;
		if (m->what == NULL)
			memset(w, 0, n * sizeof(*w));
		m->what = w;
	}
	m->what[n] = what;
	return 0;
}

int fw_msgs_append(struct fw_msgs *m, const void *nlh, size_t len)
{
	int r = msgs_reserve(m, NLMSG_ALIGN(len));
	if (r == 0 && m->what != NULL)
		r = what_push(m, NULL);
	if (r < 0)
		return r;
	memcpy(m->buf + m->len, nlh, len);
	memset(m->buf + m->len + len, 0, NLMSG_ALIGN(len) - len);
	m->len += NLMSG_ALIGN(len);
	m->n_msgs++;
	return 0;
}

const char *fw_msgs_what(const struct fw_msgs *m, uint32_t seq)
{
	uint32_t i = seq - m->seq_first;
	if (m->what == NULL || i >= m->n_msgs || m->what[i] == NULL)
		return "?";
	return m->what[i];
}

void fw_env_from_conf(struct fw_env *env, const struct agent_conf *conf)
{
	env->table = conf->nft_table;
	env->ifname = conf->interface;
	env->pools = &conf->peer_networks;
}

/* ---- names and comments ---- */

/* v in decimal at p, and the end: without printf, which costs much at 10k users. */
static char *decimal(char *p, uint32_t v)
{
	char d[10];
	size_t n = 0;
	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = d[--n];
	*p = '\0';
	return p;
}

static void user_chain(const struct fw_user *u, char out[NAME_LEN])
{
	out[0] = 'u';
	decimal(out + 1, u->num);
}

/* "u<num>", num >= 1, exactly as user_chain writes it. */
static bool user_chain_num(const char *name, uint32_t *num)
{
	uint64_t v = 0;
	size_t i = 1;
	if (name == NULL || name[0] != 'u' || name[1] < '1' || name[1] > '9')
		return false;
	for (; name[i] >= '0' && name[i] <= '9' && v <= UINT32_MAX; i++)
		v = 10 * v + (uint64_t)(name[i] - '0');
	*num = (uint32_t)v;
	return name[i] == '\0' && v <= UINT32_MAX;
}

static void rule_comment(const struct fw_rule *r, char out[COMMENT_LEN])
{
	fw_id_hex(r->id, out);
	out[HEX_LEN] = ':';
	out[HEX_LEN + 1] = '-';
	decimal(out + HEX_LEN + 1 + (r->priority < 0),
		r->priority < 0 ? 0u - (uint32_t)r->priority : (uint32_t)r->priority);
}

static bool rule_comment_parse(const char *s, struct fw_rule *r)
{
	char hex[HEX_LEN + 1], *end;
	if (strlen(s) <= HEX_LEN + 1 || s[HEX_LEN] != ':')
		return false;
	memcpy(hex, s, HEX_LEN);
	hex[HEX_LEN] = '\0';
	long p = strtol(s + HEX_LEN + 1, &end, 10);
	r->priority = (int32_t)p;
	return *end == '\0' && p >= INT32_MIN && p <= INT32_MAX && fw_id_parse_hex(hex, r->id) == 0;
}

static void settings_text(const struct fw_settings *st, char out[COMMENT_LEN])
{
	snprintf(out, COMMENT_LEN, "default %s, isolation %s, masquerade4 %s, masquerade6 %s",
		 st->default_accept ? "accept" : "drop", st->client_isolation ? "on" : "off",
		 st->masquerade_ipv4 ? "on" : "off", st->masquerade_ipv6 ? "on" : "off");
}

/* The settings whose settings_text is s: tries the 16 of them. */
static bool settings_parse(const char *s, struct fw_settings *st)
{
	char text[COMMENT_LEN];
	for (unsigned i = 0; i < 16; i++) {
		struct fw_settings t = {i & 1, i & 2, i & 4, i & 8};
		settings_text(&t, text);
		if (strcmp(text, s) == 0) {
			*st = t;
			return true;
		}
	}
	return false;
}

/* The text of a userdata that is exactly one comment TLV (type 0, as nft writes it), or false. */
static bool comment_get(const void *data, uint32_t len, char out[COMMENT_LEN + 1])
{
	const uint8_t *p = data;
	if (p == NULL || len < 3 || p[0] != 0 || p[1] + 2u != len || p[len - 1] != '\0')
		return false;
	memcpy(out, p + 2, p[1]);
	return true;
}

/* ---- building: messages and attributes ---- */

struct bld {
	struct fw_msgs *b;
	const struct fw_env *env;
	uint32_t seq, set_id;
	bool what;		/* name each message for fw_msgs_what */
	struct nlmsghdr *nlh;	/* the message being written; NULL after an error */
	struct nlattr *nest[5]; /* open nests, outermost first */
	const char *chain;	/* of the rule being written */
	size_t last_cmd;	/* offset of the last command message: it gets NLM_F_ACK */
	int err;
};

static void bld_start(struct bld *x, struct fw_msgs *b, const struct fw_env *env, uint32_t seq,
		      bool what)
{
	*x = (struct bld){.b = b, .env = env, .seq = seq, .what = what};
	fw_msgs_free(b);
	b->seq_first = seq;
	x->err = msgs_reserve(b, MSG_ROOM);
	if (x->err == 0 && what)
		x->err = what_push(b, NULL);
	if (x->err == 0) {
		b->len += nftnl_batch_begin((char *)b->buf, x->seq++)->nlmsg_len;
		b->n_msgs++;
	}
}

/* BATCH_END, and NLM_F_ACK on the last command; on error b is left empty. */
static int bld_finish(struct bld *x)
{
	struct fw_msgs *b = x->b;
	if (x->err == 0)
		x->err = msgs_reserve(b, MSG_ROOM);
	if (x->err == 0 && x->what)
		x->err = what_push(b, NULL);
	if (x->err != 0) {
		fw_msgs_free(b);
		return x->err;
	}
	((struct nlmsghdr *)(b->buf + x->last_cmd))->nlmsg_flags |= NLM_F_ACK;
	b->len += nftnl_batch_end((char *)b->buf + b->len, x->seq)->nlmsg_len;
	b->n_msgs++;
	return 0;
}

static void msg_begin(struct bld *x, uint16_t type)
{
	uint16_t flags = type == NFT_MSG_NEWRULE ? NLM_F_CREATE | NLM_F_APPEND
			 : type == NFT_MSG_NEWTABLE || type == NFT_MSG_NEWCHAIN ||
					 type == NFT_MSG_NEWSET || type == NFT_MSG_NEWSETELEM
				 ? NLM_F_CREATE
				 : 0;
	x->nlh = NULL;
	if (x->err == 0)
		x->err = msgs_reserve(x->b, MSG_ROOM);
	if (x->err != 0)
		return;
	x->nlh = mnl_nlmsg_put_header(x->b->buf + x->b->len);
	x->nlh->nlmsg_type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | type);
	x->nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	x->nlh->nlmsg_seq = x->seq;
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(x->nlh, sizeof(*g));
	g->nfgen_family = NFPROTO_INET;
	g->version = NFNETLINK_V0;
}

/* Ends the message; what it writes (for fw_msgs_what) is fmt's text. */
__attribute__((format(printf, 2, 3))) static void msg_end(struct bld *x, const char *fmt, ...)
{
	char *w = NULL;
	if (x->nlh == NULL)
		return;
	if (x->what) {
		char what[192];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		if ((w = strdup(what)) == NULL || what_push(x->b, w) < 0) {
			free(w);
			x->err = -ENOMEM;
			return;
		}
	}
	x->last_cmd = x->b->len;
	x->b->len += x->nlh->nlmsg_len;
	x->b->n_msgs++;
	x->seq++;
	if (x->nlh->nlmsg_len > UINT16_MAX || x->b->len > FW_NFT_MAX_BATCH)
		x->err = -E2BIG;
	x->nlh = NULL;
}

static void put(struct bld *x, uint16_t type, const void *data, size_t len)
{
	if (x->nlh != NULL)
		mnl_attr_put(x->nlh, type, len, data);
}

static void put_u32(struct bld *x, uint16_t type, uint32_t v)
{
	v = htonl(v);
	put(x, type, &v, sizeof(v));
}

static void put_str(struct bld *x, uint16_t type, const char *s)
{
	put(x, type, s, strlen(s) + 1);
}

/* The comment TLV nft writes (type 0 is the comment of every object kind). */
static void put_comment(struct bld *x, uint16_t type, const char *text)
{
	uint8_t tlv[COMMENT_LEN + 2] = {0};
	size_t n = strnlen(text, COMMENT_LEN - 1) + 1;
	tlv[1] = (uint8_t)n;
	memcpy(tlv + 2, text, n - 1);
	put(x, type, tlv, n + 2);
}

/* Nests as the kernel writes them: without NLA_F_NESTED. */
static void nest_begin(struct bld *x, int depth, uint16_t type)
{
	x->nest[depth] = x->nlh != NULL ? mnl_attr_nest_start(x->nlh, type) : NULL;
	if (x->nest[depth] != NULL)
		x->nest[depth]->nla_type = type;
}

static void nest_end(struct bld *x, int depth)
{
	if (x->nlh != NULL)
		mnl_attr_nest_end(x->nlh, x->nest[depth]);
}

/* type { NFTA_DATA_VALUE data } */
static void put_value(struct bld *x, int depth, uint16_t type, const void *data, size_t len)
{
	nest_begin(x, depth, type);
	put(x, NFTA_DATA_VALUE, data, len);
	nest_end(x, depth);
}

/* type { NFTA_DATA_VERDICT { code [chain] } } */
static void put_verdict(struct bld *x, int depth, uint16_t type, int code, const char *chain)
{
	nest_begin(x, depth, type);
	nest_begin(x, depth + 1, NFTA_DATA_VERDICT);
	put_u32(x, NFTA_VERDICT_CODE, (uint32_t)code);
	if (chain != NULL)
		put_str(x, NFTA_VERDICT_CHAIN, chain);
	nest_end(x, depth + 1);
	nest_end(x, depth);
}

/* ---- building: objects ---- */

static void put_table(struct bld *x, uint16_t type, const char *comment)
{
	msg_begin(x, type);
	put_str(x, NFTA_TABLE_NAME, x->env->table);
	if (type == NFT_MSG_NEWTABLE)
		put_u32(x, NFTA_TABLE_FLAGS, 0);
	if (comment != NULL)
		put_comment(x, NFTA_TABLE_USERDATA, comment);
	msg_end(x, "table %s", x->env->table);
}

/* A user chain, or with hook: a base chain of type filter, or nat at priority srcnat. */
static void put_chain(struct bld *x, uint16_t type, const char *name, uint32_t hook,
		      const char *comment)
{
	msg_begin(x, type);
	put_str(x, NFTA_CHAIN_TABLE, x->env->table);
	put_str(x, NFTA_CHAIN_NAME, name);
	if (hook != 0) {
		nest_begin(x, 0, NFTA_CHAIN_HOOK);
		put_u32(x, NFTA_HOOK_HOOKNUM, hook);
		put_u32(x, NFTA_HOOK_PRIORITY, hook == NF_INET_FORWARD ? 0 : 100);
		nest_end(x, 0);
		put_u32(x, NFTA_CHAIN_POLICY, NF_ACCEPT);
		put_str(x, NFTA_CHAIN_TYPE, hook == NF_INET_FORWARD ? "filter" : "nat");
	}
	if (comment != NULL)
		put_comment(x, NFTA_CHAIN_USERDATA, comment);
	msg_end(x, "chain %s", name);
}

static void put_user_chain(struct bld *x, uint16_t type, const struct fw_user *u)
{
	char name[NAME_LEN], hex[HEX_LEN + 1];
	user_chain(u, name);
	fw_id_hex(u->id, hex);
	put_chain(x, type, name, 0, type == NFT_MSG_NEWCHAIN ? hex : NULL);
}

/*
 * map src4 { ipv4_addr : verdict } (v6: src6, ipv6_addr), not interval; or
 * a rule set { ipv4_addr . inet_proto . inet_service; flags interval }:
 * key types are nft's datatype ids, 6 bits each. The kernel needs an id,
 * and says a verdict's length is 16.
 */
static void put_set(struct bld *x, const char *name, int v6, bool map)
{
	static const uint8_t fields[2][3] = {{4, 1, 2}, {16, 1, 2}};
	uint32_t addr_type = v6 ? 8 : 7;
	msg_begin(x, NFT_MSG_NEWSET);
	put_str(x, NFTA_SET_TABLE, x->env->table);
	put_str(x, NFTA_SET_NAME, name);
	put_u32(x, NFTA_SET_FLAGS, map ? NFT_SET_MAP : NFT_SET_CONCAT | NFT_SET_INTERVAL);
	put_u32(x, NFTA_SET_KEY_TYPE, map ? addr_type : addr_type << 12 | 12 << 6 | 13);
	put_u32(x, NFTA_SET_KEY_LEN, map ? (v6 ? 16 : 4) : (v6 ? 24 : 12));
	if (map) {
		put_u32(x, NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
		put_u32(x, NFTA_SET_DATA_LEN, 16);
	}
	nest_begin(x, 0, NFTA_SET_DESC);
	if (!map) {
		nest_begin(x, 1, NFTA_SET_DESC_CONCAT);
		for (int i = 0; i < 3; i++) {
			nest_begin(x, 2, NFTA_LIST_ELEM);
			put_u32(x, NFTA_SET_FIELD_LEN, fields[v6][i]);
			nest_end(x, 2);
		}
		nest_end(x, 1);
	}
	nest_end(x, 0);
	put_u32(x, NFTA_SET_ID, ++x->set_id);
	msg_end(x, "set %s", name);
}

/* Elements of one set, ELEMS_PER_MSG to a message: no other message is open meanwhile. */
struct elems {
	const char *set;
	uint16_t type; /* NFT_MSG_NEWSETELEM or NFT_MSG_DELSETELEM */
	size_t n;
	char first[COMMENT_LEN + 64];
};

static void elems_flush(struct bld *x, struct elems *a)
{
	if (a->n == 0)
		return;
	nest_end(x, 0);
	msg_end(x, "%s %s elements from %s", a->type == NFT_MSG_NEWSETELEM ? "add" : "delete",
		a->set, a->first);
	a->n = 0;
}

/* Opens an element (what names it, if it is the message's first). */
static void elem_begin(struct bld *x, struct elems *a, const char *what)
{
	if (a->n == 0) {
		msg_begin(x, a->type);
		put_str(x, NFTA_SET_ELEM_LIST_TABLE, x->env->table);
		put_str(x, NFTA_SET_ELEM_LIST_SET, a->set);
		nest_begin(x, 0, NFTA_SET_ELEM_LIST_ELEMENTS);
		snprintf(a->first, sizeof(a->first), "%s", what);
	}
	nest_begin(x, 1, NFTA_LIST_ELEM);
}

static void elem_end(struct bld *x, struct elems *a)
{
	nest_end(x, 1);
	if (++a->n == ELEMS_PER_MSG)
		elems_flush(x, a);
}

static bool user_has_addr(const struct fw_user *u, const struct ip_addr *a)
{
	for (size_t i = 0; u != NULL && i < u->n_addrs; i++)
		if (ip_addr_equal(&u->addrs[i], a))
			return true;
	return false;
}

/* A user's addresses of one family but unless's: jump u<num> or drop; keys only to delete. */
static void put_user_elems(struct bld *x, const struct fw_user *u, int v6, struct elems *a,
			   const struct fw_user *unless)
{
	char name[NAME_LEN], addr[IP_ADDR_STRLEN], what[NAME_LEN + IP_ADDR_STRLEN + 8] = "";
	user_chain(u, name);
	for (size_t i = 0; i < u->n_addrs; i++) {
		const struct ip_addr *ad = &u->addrs[i];
		if ((ad->family == AF_INET6) != v6 || user_has_addr(unless, ad))
			continue;
		if (x->what) {
			ip_addr_format(ad, addr, sizeof(addr));
			snprintf(what, sizeof(what), "%s (%s)", addr, name);
		}
		elem_begin(x, a, what);
		put_value(x, 2, NFTA_SET_ELEM_KEY, ad->bytes, ip_family_len(ad->family));
		if (a->type == NFT_MSG_NEWSETELEM) {
			put_verdict(x, 2, NFTA_SET_ELEM_DATA, u->active ? NFT_JUMP : NF_DROP,
				    u->active ? name : NULL);
			put_comment(x, NFTA_SET_ELEM_USERDATA, name);
		}
		elem_end(x, a);
	}
}

/* The catch-all element * : drop, for a source that is no device. */
static void put_catchall(struct bld *x, struct elems *a)
{
	elem_begin(x, a, "*");
	put_verdict(x, 2, NFTA_SET_ELEM_DATA, NF_DROP, NULL);
	put_u32(x, NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_CATCHALL);
	elem_end(x, a);
}

/* ---- building: rules ---- */

static void rule_begin(struct bld *x, const char *chain)
{
	msg_begin(x, NFT_MSG_NEWRULE);
	put_str(x, NFTA_RULE_TABLE, x->env->table);
	put_str(x, NFTA_RULE_CHAIN, chain);
	nest_begin(x, 0, NFTA_RULE_EXPRESSIONS);
	x->chain = chain;
}

/* Ends the rule being written; label names it in fw_msgs_what. */
static void rule_end(struct bld *x, const char *comment, const char *label)
{
	nest_end(x, 0);
	if (comment != NULL)
		put_comment(x, NFTA_RULE_USERDATA, comment);
	msg_end(x, "rule %s in %s", label, x->chain);
}

/* An expression: its u32 attributes {type, value}, in the order the kernel dumps them. */
static void expr_begin(struct bld *x, const char *name, size_t n, const uint32_t (*attrs)[2])
{
	nest_begin(x, 1, NFTA_LIST_ELEM);
	put_str(x, NFTA_EXPR_NAME, name);
	nest_begin(x, 2, NFTA_EXPR_DATA);
	for (size_t i = 0; i < n; i++)
		put_u32(x, (uint16_t)attrs[i][0], attrs[i][1]);
}

static void expr_end(struct bld *x)
{
	nest_end(x, 2);
	nest_end(x, 1);
}

static void add_meta(struct bld *x, uint32_t key, uint32_t dreg)
{
	const uint32_t a[][2] = {{NFTA_META_KEY, key}, {NFTA_META_DREG, dreg}};
	expr_begin(x, "meta", 2, a);
	expr_end(x);
}

static void add_payload(struct bld *x, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	const uint32_t a[][2] = {{NFTA_PAYLOAD_DREG, dreg},
				 {NFTA_PAYLOAD_BASE, base},
				 {NFTA_PAYLOAD_OFFSET, off},
				 {NFTA_PAYLOAD_LEN, len}};
	expr_begin(x, "payload", 4, a);
	expr_end(x);
}

/* As nft emits it for meta l4proto in a concatenation (1 byte: a no-op). */
static void add_byteorder(struct bld *x, uint32_t reg)
{
	const uint32_t a[][2] = {{NFTA_BYTEORDER_SREG, reg},
				 {NFTA_BYTEORDER_DREG, reg},
				 {NFTA_BYTEORDER_OP, NFT_BYTEORDER_HTON},
				 {NFTA_BYTEORDER_LEN, 1},
				 {NFTA_BYTEORDER_SIZE, 2}};
	expr_begin(x, "byteorder", 5, a);
	expr_end(x);
}

static void add_cmp(struct bld *x, uint32_t op, const void *data, uint32_t len)
{
	const uint32_t a[][2] = {{NFTA_CMP_SREG, NFT_REG_1}, {NFTA_CMP_OP, op}};
	expr_begin(x, "cmp", 2, a);
	put_value(x, 3, NFTA_CMP_DATA, data, len);
	expr_end(x);
}

/* reg 1 = (reg 1 & mask) ^ 0 */
static void add_bitwise(struct bld *x, const uint8_t *mask, uint32_t len)
{
	static const uint8_t zero[16];
	const uint32_t a[][2] = {{NFTA_BITWISE_SREG, NFT_REG_1},
				 {NFTA_BITWISE_DREG, NFT_REG_1},
				 {NFTA_BITWISE_LEN, len},
				 {NFTA_BITWISE_OP, NFT_BITWISE_BOOL}};
	expr_begin(x, "bitwise", 4, a);
	put_value(x, 3, NFTA_BITWISE_MASK, mask, len);
	put_value(x, 3, NFTA_BITWISE_XOR, zero, len);
	expr_end(x);
}

static void add_lookup(struct bld *x, const char *set, bool vmap)
{
	expr_begin(x, "lookup", 0, NULL);
	put_str(x, NFTA_LOOKUP_SET, set);
	put_u32(x, NFTA_LOOKUP_SREG, NFT_REG_1);
	if (vmap)
		put_u32(x, NFTA_LOOKUP_DREG, NFT_REG_VERDICT);
	put_u32(x, NFTA_LOOKUP_FLAGS, 0);
	expr_end(x);
}

static void add_verdict(struct bld *x, int verdict, const char *chain)
{
	const uint32_t a[][2] = {{NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT}};
	expr_begin(x, "immediate", 1, a);
	put_verdict(x, 3, NFTA_IMMEDIATE_DATA, verdict, chain);
	expr_end(x);
}

/* iifname/oifname ==/!= the WireGuard interface: 16 bytes, an exact match. */
static void match_iface(struct bld *x, uint32_t key, uint32_t op)
{
	char name[IF_NAMESIZE] = {0};
	strncpy(name, x->env->ifname, sizeof(name) - 1);
	add_meta(x, key, NFT_REG_1);
	add_cmp(x, op, name, sizeof(name));
}

static void match_nfproto(struct bld *x, sa_family_t family)
{
	uint8_t p = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
	add_meta(x, NFT_META_NFPROTO, NFT_REG_1);
	add_cmp(x, NFT_CMP_EQ, &p, 1);
}

/*
 * ip/ip6 saddr/daddr in c, as nft writes it: a byte-aligned prefix loads
 * just its bytes; another loads the address and masks it; /0 checks only
 * the family.
 */
static void match_addr(struct bld *x, const struct ip_cidr *c, bool src)
{
	bool v4 = c->addr.family == AF_INET;
	uint32_t alen = v4 ? 4 : 16, off = v4 ? (src ? 12 : 16) : (src ? 8 : 24);
	uint8_t mask[16] = {0};
	match_nfproto(x, c->addr.family);
	if (c->prefix == 0)
		return;
	if (c->prefix % 8 == 0) {
		add_payload(x, NFT_PAYLOAD_NETWORK_HEADER, off, c->prefix / 8u, NFT_REG_1);
		add_cmp(x, NFT_CMP_EQ, c->addr.bytes, c->prefix / 8u);
		return;
	}
	memset(mask, 0xff, c->prefix / 8u);
	mask[c->prefix / 8] = (uint8_t)(0xff00 >> (c->prefix % 8));
	add_payload(x, NFT_PAYLOAD_NETWORK_HEADER, off, alen, NFT_REG_1);
	add_bitwise(x, mask, alen);
	add_cmp(x, NFT_CMP_EQ, c->addr.bytes, alen);
}

/* meta l4proto p [th dport from(-to)]; 0/0 is any port. */
static void match_l4(struct bld *x, uint8_t proto, uint16_t from, uint16_t to)
{
	uint16_t f = htons(from), t = htons(to);
	add_meta(x, NFT_META_L4PROTO, NFT_REG_1);
	add_cmp(x, NFT_CMP_EQ, &proto, 1);
	if (from == 0 && to == 0)
		return;
	add_payload(x, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
	add_cmp(x, from == to ? NFT_CMP_EQ : NFT_CMP_GTE, &f, 2);
	if (from != to)
		add_cmp(x, NFT_CMP_LTE, &t, 2);
}

static void put_fw_rule(struct bld *x, const char *chain, const struct fw_rule *fr)
{
	char c[COMMENT_LEN];
	rule_comment(fr, c);
	rule_begin(x, chain);
	match_addr(x, &fr->dst, false);
	if (fr->proto != FW_PROTO_ANY)
		match_l4(x, fr->proto, fr->port_from, fr->port_to);
	add_verdict(x, fr->accept ? NF_ACCEPT : NF_DROP, NULL);
	rule_end(x, c, c);
}

/* ip daddr . meta l4proto . th dport @set, in the registers nft gives them. */
static void put_set_rule(struct bld *x, const char *chain, const char *set,
			 const struct fw_rule *fr)
{
	bool v4 = fr->dst.addr.family == AF_INET;
	rule_begin(x, chain);
	match_nfproto(x, fr->dst.addr.family);
	add_payload(x, NFT_PAYLOAD_NETWORK_HEADER, v4 ? 16 : 24, v4 ? 4 : 16, NFT_REG_1);
	add_meta(x, NFT_META_L4PROTO, v4 ? NFT_REG32_01 : NFT_REG_2);
	add_byteorder(x, v4 ? NFT_REG32_01 : NFT_REG_2);
	add_payload(x, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, v4 ? NFT_REG32_02 : NFT_REG32_05);
	add_lookup(x, set, false);
	add_verdict(x, fr->accept ? NF_ACCEPT : NF_DROP, NULL);
	rule_end(x, SET_RULE_COMMENT, set);
}

/* A rule as a rule set's element: address range . proto . port range. */
static uint32_t rule_key(const struct fw_rule *r, uint8_t key[24], uint8_t end[24])
{
	size_t alen = ip_family_len(r->dst.addr.family);
	bool any = r->port_from == 0 && r->port_to == 0;
	uint16_t from = htons(any ? 0 : r->port_from), to = htons(any ? 65535 : r->port_to);
	memset(key, 0, 24);
	memcpy(key, r->dst.addr.bytes, alen);
	memcpy(end, key, 24);
	for (unsigned b = r->dst.prefix; b < alen * 8; b++)
		end[b / 8] |= (uint8_t)(0x80 >> (b % 8));
	key[alen] = end[alen] = r->proto;
	memcpy(key + alen + 4, &from, 2);
	memcpy(end + alen + 4, &to, 2);
	return (uint32_t)alen + 8;
}

static void put_rule_elems(struct bld *x, const char *set, const struct fw_rule *r, size_t n)
{
	struct elems a = {.set = set, .type = NFT_MSG_NEWSETELEM};
	uint8_t key[24], end[24];
	char c[COMMENT_LEN];
	for (size_t i = 0; i < n; i++) {
		uint32_t len = rule_key(&r[i], key, end);
		rule_comment(&r[i], c);
		elem_begin(x, &a, c);
		put_value(x, 2, NFTA_SET_ELEM_KEY, key, len);
		put_value(x, 2, NFTA_SET_ELEM_KEY_END, end, len);
		put_comment(x, NFTA_SET_ELEM_USERDATA, c);
		elem_end(x, &a);
	}
	elems_flush(x, &a);
}

static bool rule_settable(const struct fw_rule *r)
{
	return r->proto == FW_PROTO_TCP || r->proto == FW_PROTO_UDP;
}

static bool rules_overlap(const struct fw_rule *a, const struct fw_rule *b)
{
	unsigned p = a->dst.prefix < b->dst.prefix ? a->dst.prefix : b->dst.prefix;
	unsigned af = a->port_from, at = a->port_to != 0 ? a->port_to : 65535;
	unsigned bf = b->port_from, bt = b->port_to != 0 ? b->port_to : 65535;
	uint8_t m = (uint8_t)(0xff00 >> (p % 8));
	return a->proto == b->proto && af <= bt && bf <= at &&
	       memcmp(a->dst.addr.bytes, b->dst.addr.bytes, p / 8) == 0 &&
	       (p % 8 == 0 || ((a->dst.addr.bytes[p / 8] ^ b->dst.addr.bytes[p / 8]) & m) == 0);
}

/*
 * The length of the group starting at r[i]: rules of one family and action,
 * tcp/udp, none overlapping another. FW_SET_MIN_RUN or more make a set.
 */
static size_t rule_group(const struct fw_rule *r, size_t i, size_t n)
{
	size_t j = i + 1, k = i;
	if (!rule_settable(&r[i]))
		return 1;
	for (; j < n && k == j - 1; j++) {
		if (!rule_settable(&r[j]) || r[j].accept != r[i].accept ||
		    r[j].dst.addr.family != r[i].dst.addr.family)
			break;
		for (k = i; k < j && !rules_overlap(&r[k], &r[j]);)
			k++;
		if (k < j)
			break;
		k = j;
	}
	return j - i;
}

enum walk {
	WALK_SETS,
	WALK_DELSETS,
	WALK_RULES
};

/* One pass over a chain's rules (sets "<pfx>s<k>"): its sets, or its rules. */
static void walk_chain(struct bld *x, const char *chain, const char *pfx, const struct fw_rule *r,
		       size_t n, enum walk w)
{
	char set[NAME_LEN];
	unsigned k = 0;
	for (size_t i = 0, len; i < n && x->err == 0; i += len) {
		len = rule_group(r, i, n);
		if (len < FW_SET_MIN_RUN) {
			for (size_t j = i; j < i + len && w == WALK_RULES; j++)
				put_fw_rule(x, chain, &r[j]);
			continue;
		}
		snprintf(set, sizeof(set), "%ss%u", pfx, k++);
		if (w == WALK_SETS) {
			put_set(x, set, r[i].dst.addr.family == AF_INET6, false);
			put_rule_elems(x, set, &r[i], len);
		} else if (w == WALK_DELSETS) {
			msg_begin(x, NFT_MSG_DELSET);
			put_str(x, NFTA_SET_TABLE, x->env->table);
			put_str(x, NFTA_SET_NAME, set);
			msg_end(x, "set %s", set);
		} else {
			put_set_rule(x, chain, set, &r[i]);
		}
	}
}

static void walk_user(struct bld *x, const struct fw_user *u, enum walk w)
{
	char name[NAME_LEN];
	user_chain(u, name);
	walk_chain(x, name, name, u->rules, u->n_rules, w);
}

/* ---- building: the table ---- */

/* The next pool of the family of v6, in the order of the config. */
static const struct ip_cidr *pool_next(const struct fw_env *env, int v6, size_t *i)
{
	for (; env->pools != NULL && *i < env->pools->n; (*i)++)
		if ((env->pools->items[*i].addr.family == AF_INET6) == v6)
			return &env->pools->items[(*i)++];
	return NULL;
}

/*
 * Only the tunnel's packets; by source: the user's chain, or drop; then
 * replies of flows let through; then the global rules.
 */
static void put_forward(struct bld *x)
{
	rule_begin(x, "forward");
	match_iface(x, NFT_META_IIFNAME, NFT_CMP_NEQ);
	add_verdict(x, NF_ACCEPT, NULL);
	rule_end(x, NULL, "not from the tunnel");
	for (int v6 = 0; v6 < 2; v6++) {
		rule_begin(x, "forward");
		match_nfproto(x, v6 ? AF_INET6 : AF_INET);
		add_payload(x, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4, NFT_REG_1);
		add_lookup(x, map_name[v6], true);
		rule_end(x, NULL, map_name[v6]);
	}
	/* A reply of a flow the rules let through passes (ct direction reply). */
	const uint32_t ct[][2] = {{NFTA_CT_DREG, NFT_REG_1}, {NFTA_CT_KEY, NFT_CT_DIRECTION}};
	uint8_t reply = IP_CT_DIR_REPLY;
	rule_begin(x, "forward");
	expr_begin(x, "ct", 2, ct);
	expr_end(x);
	add_cmp(x, NFT_CMP_EQ, &reply, 1);
	add_verdict(x, NF_ACCEPT, NULL);
	rule_end(x, NULL, "replies");
	rule_begin(x, "forward");
	add_verdict(x, NFT_GOTO, "global");
	rule_end(x, NULL, "goto global");
}

/* global rules; [isolation: ip(6) daddr <pool> drop]; default verdict. */
static void put_global(struct bld *x, const struct fw_state *s)
{
	const struct ip_cidr *p;
	char text[COMMENT_LEN], label[COMMENT_LEN + 16];
	walk_chain(x, "global", "g", s->global_rules, s->n_global_rules, WALK_RULES);
	for (int v6 = 0; v6 < 2 && s->settings.client_isolation; v6++)
		for (size_t i = 0; (p = pool_next(x->env, v6, &i)) != NULL;) {
			ip_cidr_format(p, text, sizeof(text));
			snprintf(label, sizeof(label), "isolation %s", text);
			rule_begin(x, "global");
			match_addr(x, p, false);
			add_verdict(x, NF_DROP, NULL);
			rule_end(x, NULL, label);
		}
	settings_text(&s->settings, text);
	rule_begin(x, "global");
	add_verdict(x, s->settings.default_accept ? NF_ACCEPT : NF_DROP, NULL);
	rule_end(x, text, "default");
}

/* oifname != "<wg>" ip(6) saddr <pool> masquerade, per family switched on. */
static void put_postrouting(struct bld *x, const struct fw_settings *st)
{
	const struct ip_cidr *p;
	char text[IP_CIDR_STRLEN], label[IP_CIDR_STRLEN + 16];
	for (int v6 = 0; v6 < 2; v6++)
		for (size_t i = 0; (v6 ? st->masquerade_ipv6 : st->masquerade_ipv4) &&
				   (p = pool_next(x->env, v6, &i)) != NULL;) {
			ip_cidr_format(p, text, sizeof(text));
			snprintf(label, sizeof(label), "masquerade %s", text);
			rule_begin(x, "postrouting");
			match_iface(x, NFT_META_OIFNAME, NFT_CMP_NEQ);
			match_addr(x, p, true);
			expr_begin(x, "masq", 0, NULL);
			expr_end(x);
			rule_end(x, NULL, label);
		}
}

static int build_replace(struct fw_msgs *b, const struct fw_env *env, const struct fw_state *s,
			 uint32_t seq, bool what)
{
	struct bld x;
	bld_start(&x, b, env, seq, what);
	put_table(&x, NFT_MSG_NEWTABLE, NULL);
	put_table(&x, NFT_MSG_DELTABLE, NULL);
	put_table(&x, NFT_MSG_NEWTABLE, "managed by wiregui-agent");
	put_set(&x, map_name[0], 0, true);
	put_set(&x, map_name[1], 1, true);
	put_chain(&x, NFT_MSG_NEWCHAIN, "forward", NF_INET_FORWARD, NULL);
	put_chain(&x, NFT_MSG_NEWCHAIN, "postrouting", NF_INET_POST_ROUTING, NULL);
	put_chain(&x, NFT_MSG_NEWCHAIN, "global", 0, NULL);
	for (size_t i = 0; i < s->n_users; i++)
		put_user_chain(&x, NFT_MSG_NEWCHAIN, &s->users[i]);
	for (size_t i = 0; i < s->n_users; i++)
		walk_user(&x, &s->users[i], WALK_SETS);
	walk_chain(&x, "global", "g", s->global_rules, s->n_global_rules, WALK_SETS);
	put_forward(&x);
	put_postrouting(&x, &s->settings);
	for (size_t i = 0; i < s->n_users; i++)
		walk_user(&x, &s->users[i], WALK_RULES);
	put_global(&x, s);
	for (int v6 = 0; v6 < 2; v6++) {
		struct elems a = {.set = map_name[v6], .type = NFT_MSG_NEWSETELEM};
		for (size_t i = 0; i < s->n_users; i++)
			put_user_elems(&x, &s->users[i], v6, &a, NULL);
		put_catchall(&x, &a);
		elems_flush(&x, &a);
	}
	return bld_finish(&x);
}

int fw_nft_build_replace(struct fw_msgs *b, const struct fw_env *env, const struct fw_state *s,
			 uint32_t seq)
{
	return build_replace(b, env, s, seq, true);
}
/* ---- building: a patch ---- */

/* A user the change names: as it is (cur, NULL if new) and will be (next, NULL if removed). */
struct touched {
	const struct fw_user *cur, *next;
	bool rules, elems; /* its chain's rules and sets, its map elements change */
};

static int touched_cmp(const void *a, const void *b)
{
	const struct touched *x = a, *y = b;
	return memcmp(x->cur != NULL ? x->cur->id : x->next->id,
		      y->cur != NULL ? y->cur->id : y->next->id, FW_ID_LEN);
}

static bool rules_equal(const struct fw_rule *a, size_t na, const struct fw_rule *b, size_t nb)
{
	for (size_t i = 0; na == nb && i < na; i++)
		if (fw_rule_cmp(&a[i], &b[i]) != 0 || a[i].dst.prefix != b[i].dst.prefix ||
		    !ip_addr_equal(&a[i].dst.addr, &b[i].dst.addr) || a[i].proto != b[i].proto ||
		    a[i].port_from != b[i].port_from || a[i].port_to != b[i].port_to ||
		    a[i].accept != b[i].accept)
			return false;
	return na == nb;
}

static bool elems_equal(const struct fw_user *a, const struct fw_user *b)
{
	for (size_t i = 0; a->active == b->active && a->n_addrs == b->n_addrs && i < a->n_addrs;
	     i++)
		if (!user_has_addr(b, &a->addrs[i]))
			return false;
	return a->active == b->active && a->n_addrs == b->n_addrs;
}

/* The users c names and changes, by id, each once. */
static size_t touched_collect(struct touched *t, const struct fw_state *cur,
			      const struct fw_state *next, const struct fw_change *c)
{
	size_t n = 0, k = 0;
	for (size_t i = 0; c->upsert != NULL && i < c->upsert->n_users; i++) {
		const uint8_t *id = c->upsert->users[i].id;
		t[n] = (struct touched){fw_state_find_user(cur, id), fw_state_find_user(next, id),
					false, false};
		n += t[n].cur != NULL || t[n].next != NULL;
	}
	for (size_t i = 0; i < c->n_remove_users; i++) {
		t[n] = (struct touched){fw_state_find_user(cur, c->remove_users[i]), NULL, false,
					false};
		n += t[n].cur != NULL && fw_state_find_user(next, c->remove_users[i]) == NULL;
	}
	qsort(t, n, sizeof(*t), touched_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct fw_user *a = t[i].cur, *b = t[i].next;
		if (k > 0 && a == t[k - 1].cur && b == t[k - 1].next)
			continue;
		t[i].rules = a == NULL || b == NULL ||
			     !rules_equal(a->rules, a->n_rules, b->rules, b->n_rules);
		t[i].elems = a == NULL || b == NULL || !elems_equal(a, b);
		if (t[i].rules || t[i].elems)
			t[k++] = t[i];
	}
	return k;
}

static void put_flush(struct bld *x, const char *chain)
{
	msg_begin(x, NFT_MSG_DELRULE);
	put_str(x, NFTA_RULE_TABLE, x->env->table);
	put_str(x, NFTA_RULE_CHAIN, chain);
	msg_end(x, "flush chain %s", chain);
}

/* Map elements that go (type DELSETELEM) or come: those of an address and verdict that stay do neither. */
static void put_patch_elems(struct bld *x, const struct touched *t, size_t n, uint16_t type)
{
	bool add = type == NFT_MSG_NEWSETELEM;
	for (int v6 = 0; v6 < 2; v6++) {
		struct elems a = {.set = map_name[v6], .type = type};
		for (size_t i = 0; i < n; i++) {
			const struct fw_user *u = add ? t[i].next : t[i].cur;
			const struct fw_user *o = add ? t[i].cur : t[i].next;
			if (u != NULL && t[i].elems)
				put_user_elems(x, u, v6, &a,
					       o != NULL && o->active == u->active ? o : NULL);
		}
		elems_flush(x, &a);
	}
}

/* In the order the kernel needs: nothing in use is deleted, nothing missing is named. */
static void put_patch(struct bld *x, const struct fw_state *cur, const struct fw_state *next,
		      const struct touched *t, size_t n, bool global, bool post)
{
	char name[NAME_LEN];
	put_patch_elems(x, t, n, NFT_MSG_DELSETELEM);
	for (size_t i = 0; i < n; i++)
		if (t[i].cur != NULL && t[i].rules) {
			user_chain(t[i].cur, name);
			put_flush(x, name);
		}
	if (global)
		put_flush(x, "global");
	if (post)
		put_flush(x, "postrouting");
	for (size_t i = 0; i < n; i++)
		if (t[i].cur != NULL && t[i].rules)
			walk_user(x, t[i].cur, WALK_DELSETS);
	if (global)
		walk_chain(x, "global", "g", cur->global_rules, cur->n_global_rules, WALK_DELSETS);
	for (size_t i = 0; i < n; i++)
		if (t[i].next == NULL)
			put_user_chain(x, NFT_MSG_DELCHAIN, t[i].cur);
	for (size_t i = 0; i < n; i++)
		if (t[i].cur == NULL)
			put_user_chain(x, NFT_MSG_NEWCHAIN, t[i].next);
	for (size_t i = 0; i < n; i++)
		if (t[i].next != NULL && t[i].rules)
			walk_user(x, t[i].next, WALK_SETS);
	if (global)
		walk_chain(x, "global", "g", next->global_rules, next->n_global_rules, WALK_SETS);
	for (size_t i = 0; i < n; i++)
		if (t[i].next != NULL && t[i].rules)
			walk_user(x, t[i].next, WALK_RULES);
	if (global)
		put_global(x, next);
	if (post)
		put_postrouting(x, &next->settings);
	put_patch_elems(x, t, n, NFT_MSG_NEWSETELEM);
}

int fw_nft_build_patch(struct fw_msgs *b, const struct fw_env *env, const struct fw_state *cur,
		       const struct fw_state *next, const struct fw_change *c, uint32_t seq)
{
	const struct fw_settings *a = &cur->settings, *z = &next->settings;
	bool post = a->masquerade_ipv4 != z->masquerade_ipv4 ||
		    a->masquerade_ipv6 != z->masquerade_ipv6;
	/* the global chain's last rule tells all settings */
	bool global = post || a->default_accept != z->default_accept ||
		      a->client_isolation != z->client_isolation ||
		      !rules_equal(cur->global_rules, cur->n_global_rules, next->global_rules,
				   next->n_global_rules);
	size_t n_users = (c->upsert != NULL ? c->upsert->n_users : 0) + c->n_remove_users;
	struct touched *t = calloc(n_users + 1, sizeof(*t));
	struct bld x;
	int r = 0;

	fw_msgs_free(b);
	if (t == NULL)
		return -ENOMEM;
	size_t n = touched_collect(t, cur, next, c);
	if (n > 0 || global) {
		bld_start(&x, b, env, seq, true);
		put_patch(&x, cur, next, t, n, global, post);
		r = bld_finish(&x);
	}
	free(t);
	return r;
}

/* ---- reading: attributes and objects ---- */

/* Attributes one after another: a message's, a nest's. */
struct attrs {
	const uint8_t *p;
	size_t len;
};

static const void *attr_data(const struct nlattr *a)
{
	return (const uint8_t *)a + sizeof(*a);
}

static uint32_t attr_len(const struct nlattr *a)
{
	return a->nla_len - (uint32_t)sizeof(*a);
}

static struct attrs nest_attrs(const struct nlattr *nest)
{
	return nest != NULL ? (struct attrs){attr_data(nest), attr_len(nest)}
			    : (struct attrs){NULL, 0};
}

/* The next attribute, or NULL at the end (or where they stop making sense). */
static const struct nlattr *attrs_next(struct attrs *it)
{
	const struct nlattr *a = (const void *)it->p;
	if (it->len < sizeof(*a) || a->nla_len < sizeof(*a) || a->nla_len > it->len)
		return NULL;
	size_t step = ((size_t)a->nla_len + 3) & ~(size_t)3;
	step = step < it->len ? step : it->len;
	it->p += step;
	it->len -= step;
	return a;
}

static uint16_t attr_type(const struct nlattr *a)
{
	return (uint16_t)(a->nla_type & ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER));
}

static const struct nlattr *attrs_find(struct attrs it, uint16_t type)
{
	const struct nlattr *a;
	while ((a = attrs_next(&it)) != NULL && attr_type(a) != type)
		;
	return a;
}

static const struct nlattr *nest_find(const struct nlattr *nest, uint16_t type)
{
	return attrs_find(nest_attrs(nest), type);
}

static const char *attr_str(const struct nlattr *a)
{
	const char *s = a != NULL ? attr_data(a) : NULL;
	return s != NULL && attr_len(a) > 0 && s[attr_len(a) - 1] == '\0' ? s : NULL;
}

static uint32_t attr_u32(const struct nlattr *a)
{
	uint32_t v = 0;
	if (a != NULL && attr_len(a) == sizeof(v))
		memcpy(&v, attr_data(a), sizeof(v));
	return ntohl(v);
}

/* The bytes of a value nest (NFTA_DATA_VALUE), or NULL. */
static const uint8_t *attr_value(const struct nlattr *a, uint32_t *len)
{
	const struct nlattr *v = nest_find(a, NFTA_DATA_VALUE);
	*len = v != NULL ? attr_len(v) : 0;
	return v != NULL ? attr_data(v) : NULL;
}

/* The code of a verdict nest (NFTA_DATA_VERDICT). */
static int attr_verdict(const struct nlattr *a)
{
	return (int)attr_u32(nest_find(nest_find(a, NFTA_DATA_VERDICT), NFTA_VERDICT_CODE));
}

static bool attr_comment(const struct nlattr *a, char out[COMMENT_LEN + 1])
{
	return a != NULL && comment_get(attr_data(a), attr_len(a), out);
}

/* In the order the state is read: users, then their rules, then their sets' elements. */
enum kind {
	K_TABLE,
	K_CHAIN,
	K_SET,
	K_RULE,
	K_ELEM
};

/* An object of the table: a message, or an element of a NEWSETELEM. */
struct rec {
	enum kind kind;
	const char *name;	  /* its name; a rule's chain; an element's set */
	const struct nlattr *key; /* an element's key (NULL: none, the catch-all) */
	struct attrs attrs;
	size_t idx;
	uint64_t hash; /* rec_hash */
	const struct nlmsghdr *nlh;
};

struct recs {
	struct rec *v;
	size_t n, cap;
	bool table;
};

/* The kind, then FNV-1a of the name and key: most comparisons of a sort end there. */
static uint64_t rec_hash(const struct rec *r)
{
	const uint8_t *p = (const uint8_t *)r->name, *k = r->key ? attr_data(r->key) : NULL;
	uint64_t h = 0xcbf29ce484222325u;
	for (; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3u;
	for (uint32_t i = 0; k != NULL && i < attr_len(r->key); i++)
		h = (h ^ k[i]) * 0x100000001b3u;
	return (uint64_t)r->kind << 60 | h >> 4;
}

static int recs_push(struct recs *rs, struct rec r)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap != 0 ? 2 * rs->cap : 256;
		struct rec *v = realloc(rs->v, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		rs->v = v;
		rs->cap = cap;
	}
	r.idx = rs->n;
	r.hash = rec_hash(&r);
	rs->v[rs->n++] = r;
	return 0;
}

/* Keeps the objects nlh writes if they are of env's table; DELTABLE forgets all before. */
static int recs_add(const struct fw_env *env, struct recs *rs, const struct nlmsghdr *nlh)
{
	static const uint16_t name_attr[] = {NFTA_TABLE_NAME, NFTA_CHAIN_NAME, NFTA_SET_NAME,
					     NFTA_RULE_CHAIN, NFTA_SET_ELEM_LIST_SET};
	uint16_t type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	enum kind k = type == NFT_MSG_NEWCHAIN	   ? K_CHAIN
		      : type == NFT_MSG_NEWSET	   ? K_SET
		      : type == NFT_MSG_NEWSETELEM ? K_ELEM
		      : type == NFT_MSG_NEWRULE	   ? K_RULE
						   : K_TABLE;
	size_t hdr = NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	if (nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES || nlh->nlmsg_len < hdr ||
	    ((const struct nfgenmsg *)NLMSG_DATA(nlh))->nfgen_family != NFPROTO_INET ||
	    (k == K_TABLE && type != NFT_MSG_NEWTABLE && type != NFT_MSG_DELTABLE))
		return 0;
	struct attrs attrs = {(const uint8_t *)nlh + hdr, nlh->nlmsg_len - hdr}, list;
	/* the table's name is attribute 1 in every object's messages */
	const char *table = attr_str(attrs_find(attrs, 1));
	const char *name = attr_str(attrs_find(attrs, name_attr[k]));
	const struct nlattr *e;
	if (table == NULL || name == NULL)
		return -EBADMSG;
	if (strcmp(table, env->table) != 0)
		return 0;
	if (type == NFT_MSG_DELTABLE) {
		rs->n = 0;
		rs->table = false;
		return 0;
	}
	rs->table = rs->table || k == K_TABLE;
	if (k != K_ELEM)
		return recs_push(rs,
				 (struct rec){.kind = k, .name = name, .attrs = attrs, .nlh = nlh});
	list = nest_attrs(attrs_find(attrs, NFTA_SET_ELEM_LIST_ELEMENTS));
	while ((e = attrs_next(&list)) != NULL) {
		int r = recs_push(rs, (struct rec){.kind = K_ELEM,
						   .name = name,
						   .key = nest_find(e, NFTA_SET_ELEM_KEY),
						   .attrs = nest_attrs(e),
						   .nlh = nlh});
		if (r < 0)
			return r;
	}
	return 0;
}

/* By kind, name and key: the pairs to compare. */
static int rec_key_cmp(const struct rec *x, const struct rec *y)
{
	uint32_t lx = x->key != NULL ? attr_len(x->key) : 0;
	uint32_t ly = y->key != NULL ? attr_len(y->key) : 0;
	int r = x->hash != y->hash ? (x->hash < y->hash ? -1 : 1) : strcmp(x->name, y->name);
	if (r == 0 && lx != ly)
		r = lx < ly ? -1 : 1;
	return r != 0 || lx == 0 ? r : memcmp(attr_data(x->key), attr_data(y->key), lx);
}

/* Then as they came: a chain's rules in their order. */
static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int r = rec_key_cmp(x, y);
	return r != 0 ? r : x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool rec_same_bytes(const struct rec *x, const struct rec *y);

static int recs_read(const struct fw_env *env, const struct fw_msgs *m, struct recs *rs, char *why,
		     size_t whylen)
{
	const struct nlmsghdr *nlh = (const void *)m->buf;
	int rem = (int)m->len;
	for (size_t i = 0; m->buf != NULL && mnl_nlmsg_ok(nlh, rem); i++) {
		int r = recs_add(env, rs, nlh);
		if (r < 0) {
			snprintf(why, whylen, "message %zu (type %#x): %s", i, nlh->nlmsg_type,
				 strerror(-r));
			return r;
		}
		nlh = mnl_nlmsg_next(nlh, &rem);
	}
	if (rs->n > 1)
		qsort(rs->v, rs->n, sizeof(*rs->v), rec_cmp);
	/*
	 * A hash set dumped while the kernel resizes it can give an element
	 * twice (its walk restarts by count): the same element twice is one.
	 */
	size_t k = 0;
	for (size_t i = 0; i < rs->n; i++)
		if (k == 0 || rs->v[i].kind != K_ELEM ||
		    rec_key_cmp(&rs->v[k - 1], &rs->v[i]) != 0 ||
		    !rec_same_bytes(&rs->v[k - 1], &rs->v[i]))
			rs->v[k++] = rs->v[i];
	rs->n = k;
	return 0;
}

/* ---- reading: the state ---- */

struct uref {
	uint32_t num;
	size_t idx; /* in s->users */
};

/* A rule "... @set accept|drop", and whose rule it is. */
struct sref {
	const char *set;
	size_t owner; /* a user's index, or SIZE_MAX: the global chain */
	bool accept;
};

struct reader {
	struct fw_state *s;
	struct uref *users; /* by num */
	size_t n_users;
	struct sref *sets; /* by name */
	size_t n_sets;
	int err;
};

static int uref_cmp(const void *a, const void *b)
{
	const struct uref *x = a, *y = b;
	return x->num < y->num ? -1 : x->num > y->num;
}

static int sref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sref *)a)->set, ((const struct sref *)b)->set);
}

/* The user of chain "u<num>", or NULL. */
static struct fw_user *reader_user(const struct reader *rd, const char *chain)
{
	struct uref key = {0};
	const struct uref *u =
		user_chain_num(chain, &key.num)
			? bsearch(&key, rd->users, rd->n_users, sizeof(key), uref_cmp)
			: NULL;
	return u != NULL ? &rd->s->users[u->idx] : NULL;
}

/* What validate.c lets through: the builder is not made for anything else. */
static bool rule_valid(const struct fw_rule *r)
{
	bool any_port = r->port_from == 0 && r->port_to == 0;
	return r->dst.prefix <= ip_family_bits(r->dst.addr.family) &&
	       (r->proto == FW_PROTO_ANY ? any_port
		: r->proto == FW_PROTO_TCP || r->proto == FW_PROTO_UDP
			? any_port || (r->port_from >= 1 && r->port_from <= r->port_to)
			: false);
}

static void reader_add_rule(struct reader *rd, size_t owner, struct fw_rule *fr)
{
	if (!rule_valid(fr))
		return;
	ip_cidr_mask(&fr->dst);
	struct fw_rule *r = owner == SIZE_MAX ? fw_state_add_global_rule(rd->s)
					      : fw_user_add_rule(&rd->s->users[owner]);
	if (r == NULL)
		rd->err = -ENOMEM;
	else
		*r = *fr;
}

/* A user per chain "u<num>" whose comment is an id; active unless a map element says drop. */
static void read_user(struct reader *rd, const struct rec *c)
{
	char text[COMMENT_LEN + 1];
	uint32_t num;
	struct fw_user *u;
	if (!user_chain_num(c->name, &num) ||
	    !attr_comment(attrs_find(c->attrs, NFTA_CHAIN_USERDATA), text))
		return;
	if ((u = fw_state_add_user(rd->s)) == NULL) {
		rd->err = -ENOMEM;
		return;
	}
	rd->err = fw_id_parse_hex(text, u->id) < 0 ? -EBADMSG : 0;
	u->num = num;
	u->active = true;
	rd->users[rd->n_users++] = (struct uref){num, rd->s->n_users - 1};
}

/* What a rule's expressions say, read loosely: the check is strict. */
struct dec {
	struct fw_rule r;
	enum {
		LD_NONE,
		LD_NFPROTO,
		LD_ADDR,
		LD_PROTO,
		LD_PORT
	} loaded;
	const char *set;
};

static void dec_cmp(struct dec *d, const struct nlattr *data)
{
	uint32_t len, op = attr_u32(nest_find(data, NFTA_CMP_OP));
	const uint8_t *v = attr_value(nest_find(data, NFTA_CMP_DATA), &len);
	if (v == NULL || len == 0)
		return;
	uint16_t port = (uint16_t)(len >= 2 ? v[0] << 8 | v[1] : 0);
	if (d->loaded == LD_NFPROTO)
		d->r.dst.addr.family = v[0] == NFPROTO_IPV6 ? AF_INET6 : AF_INET;
	else if (d->loaded == LD_ADDR)
		memcpy(d->r.dst.addr.bytes, v, len < 16 ? len : 16);
	else if (d->loaded == LD_PROTO)
		d->r.proto = v[0];
	if (d->loaded == LD_PORT && op != NFT_CMP_LTE)
		d->r.port_from = port;
	if (d->loaded == LD_PORT && op != NFT_CMP_GTE)
		d->r.port_to = port;
}

static void dec_expr(struct dec *d, const struct nlattr *e)
{
	const struct nlattr *data = nest_find(e, NFTA_EXPR_DATA);
	const char *name = attr_str(nest_find(e, NFTA_EXPR_NAME));
	uint32_t len;
	if (name == NULL) {
		return;
	} else if (strcmp(name, "meta") == 0) {
		uint32_t key = attr_u32(nest_find(data, NFTA_META_KEY));
		d->loaded = key == NFT_META_NFPROTO   ? LD_NFPROTO
			    : key == NFT_META_L4PROTO ? LD_PROTO
						      : LD_NONE;
	} else if (strcmp(name, "payload") == 0) {
		bool net = attr_u32(nest_find(data, NFTA_PAYLOAD_BASE)) ==
			   NFT_PAYLOAD_NETWORK_HEADER;
		uint32_t bits = 8 * attr_u32(nest_find(data, NFTA_PAYLOAD_LEN));
		d->loaded = net ? LD_ADDR : LD_PORT;
		if (net)
			d->r.dst.prefix = (uint8_t)(bits <= 128 ? bits : 255);
	} else if (strcmp(name, "bitwise") == 0) {
		const uint8_t *m = attr_value(nest_find(data, NFTA_BITWISE_MASK), &len);
		d->r.dst.prefix = 0;
		for (uint32_t i = 0; m != NULL && i < len && i < 16; i++)
			d->r.dst.prefix = (uint8_t)(d->r.dst.prefix + __builtin_popcount(m[i]));
	} else if (strcmp(name, "cmp") == 0) {
		dec_cmp(d, data);
	} else if (strcmp(name, "lookup") == 0) {
		d->set = attr_str(nest_find(data, NFTA_LOOKUP_SET));
	} else if (strcmp(name, "immediate") == 0) {
		d->r.accept = attr_verdict(nest_find(data, NFTA_IMMEDIATE_DATA)) == NF_ACCEPT;
	}
}

/* A rule with a comment: a rule ("<id>:<prio>"), a set's ("set"), the settings (global's last). */
static void read_rule(struct reader *rd, const struct rec *rr)
{
	struct fw_user *u = reader_user(rd, rr->name);
	size_t owner = u != NULL ? (size_t)(u - rd->s->users) : SIZE_MAX;
	struct dec d = {.r.dst.addr.family = AF_INET};
	char text[COMMENT_LEN + 1];
	struct attrs exprs = nest_attrs(attrs_find(rr->attrs, NFTA_RULE_EXPRESSIONS));
	const struct nlattr *e;
	if ((u == NULL && strcmp(rr->name, "global") != 0) ||
	    !attr_comment(attrs_find(rr->attrs, NFTA_RULE_USERDATA), text))
		return;
	while ((e = attrs_next(&exprs)) != NULL)
		dec_expr(&d, e);
	if (strcmp(text, SET_RULE_COMMENT) == 0 && d.set != NULL)
		rd->sets[rd->n_sets++] = (struct sref){d.set, owner, d.r.accept};
	else if (rule_comment_parse(text, &d.r))
		reader_add_rule(rd, owner, &d.r);
	else if (u == NULL)
		settings_parse(text, &rd->s->settings);
}

/* src4/src6: an address of the user its comment names. */
static void read_map_elem(struct reader *rd, const struct rec *e)
{
	char text[COMMENT_LEN + 1];
	uint32_t len;
	const uint8_t *key = attr_value(attrs_find(e->attrs, NFTA_SET_ELEM_KEY), &len);
	struct ip_addr a;
	struct fw_user *u;
	if (key == NULL || ip_addr_from_bytes(key, len, &a) < 0 ||
	    !attr_comment(attrs_find(e->attrs, NFTA_SET_ELEM_USERDATA), text) ||
	    (u = reader_user(rd, text)) == NULL)
		return;
	rd->err = fw_user_add_addr(u, &a);
	if (attr_verdict(attrs_find(e->attrs, NFTA_SET_ELEM_DATA)) != NFT_JUMP)
		u->active = false;
}

/* A rule set's element: the rule back from rule_key and its comment. */
static void read_rule_elem(struct reader *rd, const struct sref *set, const struct rec *e)
{
	char text[COMMENT_LEN + 1];
	uint32_t klen, elen;
	const uint8_t *k = attr_value(attrs_find(e->attrs, NFTA_SET_ELEM_KEY), &klen);
	const uint8_t *end = attr_value(attrs_find(e->attrs, NFTA_SET_ELEM_KEY_END), &elen);
	struct fw_rule fr = {.accept = set->accept};
	size_t alen = klen == 12 ? 4 : 16;
	if (k == NULL || end == NULL || klen != elen || (klen != 12 && klen != 24) ||
	    !attr_comment(attrs_find(e->attrs, NFTA_SET_ELEM_USERDATA), text) ||
	    !rule_comment_parse(text, &fr))
		return;
	fr.dst.addr.family = alen == 4 ? AF_INET : AF_INET6;
	memcpy(fr.dst.addr.bytes, k, alen);
	while (fr.dst.prefix < 8 * alen && ((k[fr.dst.prefix / 8] ^ end[fr.dst.prefix / 8]) &
					    (0x80 >> (fr.dst.prefix % 8))) == 0)
		fr.dst.prefix++;
	fr.proto = k[alen];
	fr.port_from = (uint16_t)(k[alen + 4] << 8 | k[alen + 5]);
	fr.port_to = (uint16_t)(end[alen + 4] << 8 | end[alen + 5]);
	if (fr.port_from == 0 && fr.port_to == 65535)
		fr.port_to = 0;
	reader_add_rule(rd, set->owner, &fr);
}

static void read_elem(struct reader *rd, const struct rec *e)
{
	struct sref key = {.set = e->name};
	const struct sref *set;
	if (strcmp(e->name, map_name[0]) == 0 || strcmp(e->name, map_name[1]) == 0)
		read_map_elem(rd, e);
	else if ((set = bsearch(&key, rd->sets, rd->n_sets, sizeof(key), sref_cmp)) != NULL)
		read_rule_elem(rd, set, e);
}

/* Users from chains, then rules, then set elements: each needs the ones before. */
static int state_read(const struct recs *o, struct fw_state *s, char *why, size_t whylen)
{
	struct reader rd = {.s = s};
	rd.users = calloc(o->n + 1, sizeof(*rd.users));
	rd.sets = calloc(o->n + 1, sizeof(*rd.sets));
	rd.err = rd.users == NULL || rd.sets == NULL ? -ENOMEM : 0;
	for (size_t i = 0; rd.err == 0 && i < o->n; i++)
		if (o->v[i].kind == K_CHAIN)
			read_user(&rd, &o->v[i]);
	if (rd.err == 0)
		qsort(rd.users, rd.n_users, sizeof(*rd.users), uref_cmp);
	for (size_t i = 0; rd.err == 0 && i < o->n; i++)
		if (o->v[i].kind == K_RULE)
			read_rule(&rd, &o->v[i]);
	if (rd.err == 0)
		qsort(rd.sets, rd.n_sets, sizeof(*rd.sets), sref_cmp);
	for (size_t i = 0; rd.err == 0 && i < o->n; i++)
		if (o->v[i].kind == K_ELEM)
			read_elem(&rd, &o->v[i]);
	free(rd.users);
	free(rd.sets);
	fw_state_normalize(s);
	/* two chains for one user: a patch would update one of them */
	for (size_t i = 1; rd.err == 0 && i < s->n_users; i++)
		if (memcmp(s->users[i - 1].id, s->users[i].id, FW_ID_LEN) == 0)
			rd.err = -EBADMSG;
	if (rd.err != 0)
		snprintf(why, whylen, "%s",
			 rd.err == -EBADMSG ? "a user chain's comment is no id, or one id twice"
					    : strerror(-rd.err));
	return rd.err;
}

/* ---- reading: the check ---- */

/* Attributes the kernel adds to what it was sent, and the set id it was sent: not compared. */
static bool attr_skipped(enum kind k, const struct nlattr *a)
{
	uint16_t t = attr_type(a);
	switch (k) {
	case K_TABLE:
		return t == NFTA_TABLE_USE || t == NFTA_TABLE_HANDLE || t == NFTA_TABLE_PAD;
	case K_CHAIN:
		return t == NFTA_CHAIN_HANDLE || t == NFTA_CHAIN_USE || t == NFTA_CHAIN_PAD ||
		       (t == NFTA_CHAIN_FLAGS && attr_u32(a) == NFT_CHAIN_BASE);
	case K_SET:
		return t == NFTA_SET_HANDLE || t == NFTA_SET_PAD || t == NFTA_SET_ID ||
		       t == ATTR_SET_TYPE || t == ATTR_SET_COUNT;
	case K_RULE:
		return t == NFTA_RULE_HANDLE || t == NFTA_RULE_POSITION || t == NFTA_RULE_PAD;
	default:
		return false;
	}
}

static bool rec_same_bytes(const struct rec *x, const struct rec *y)
{
	struct attrs ix = x->attrs, iy = y->attrs;
	const struct nlattr *a, *b;
	do {
		while ((a = attrs_next(&ix)) != NULL && attr_skipped(x->kind, a))
			;
		while ((b = attrs_next(&iy)) != NULL && attr_skipped(y->kind, b))
			;
		if (a == NULL || b == NULL)
			return a == b;
	} while (a->nla_len == b->nla_len && memcmp(a, b, a->nla_len) == 0);
	return false;
}

/* What an object means, for objects whose bytes differ, and to name them. */
struct text {
	char s[TEXT_LEN];
	size_t len; /* >= TEXT_LEN: cut short */
};

__attribute__((format(printf, 2, 3))) static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	if (t->len >= sizeof(t->s))
		return;
	va_start(ap, fmt);
	int n = vsnprintf(t->s + t->len, sizeof(t->s) - t->len, fmt, ap);
	va_end(ap);
	t->len = n < 0 ? sizeof(t->s) : t->len + (size_t)n;
}

/* Bytes as hex, or as text with other bytes escaped. */
static void text_bytes(struct text *t, const char *label, const void *data, uint32_t len, bool hex)
{
	const uint8_t *p = data;
	if (p == NULL)
		return;
	text_add(t, " %s=", label);
	for (uint32_t i = 0; i < len; i++)
		if (!hex && p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			text_add(t, "%c", p[i]);
		else
			text_add(t, hex ? "%02x" : "\\x%02x", p[i]);
}

/* The u32 attributes of types 1.. that have a label: as 0 when they are not there. */
static void text_u32s(struct text *t, struct attrs a, const char *const *labels, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		if (labels[i] != NULL)
			text_add(t, " %s=%#x", labels[i], attr_u32(attrs_find(a, i + 1)));
}

/* Which of these attributes are there. */
static void text_present(struct text *t, struct attrs a, const uint16_t *types, size_t n)
{
	for (size_t i = 0; i < n; i++)
		text_add(t, "%s", attrs_find(a, types[i]) != NULL ? " +" : " -");
}

static void text_userdata(struct text *t, const struct nlattr *ud)
{
	char c[COMMENT_LEN + 1];
	if (attr_comment(ud, c))
		text_bytes(t, "comment", c, (uint32_t)strlen(c), false);
	else if (ud != NULL)
		text_bytes(t, "userdata", attr_data(ud), attr_len(ud), true);
}

/* libnftnl's text of an expression, with the data lengths it does not print. */
static int text_expr(struct nftnl_expr *e, void *data)
{
	struct text *t = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	char s[512];
	uint32_t len = 0;
	nftnl_expr_snprintf(s, sizeof(s), e, NFTNL_OUTPUT_DEFAULT, 0);
	if (strcmp(name, "cmp") == 0)
		nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
	if (strcmp(name, "bitwise") == 0)
		len = nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_LEN);
	text_add(t, len != 0 ? " [%s %s (%u bytes)]" : " [%s %s]", name, s, len);
	return 0;
}

static void text_chain(struct text *t, struct attrs a)
{
	static const char *const labels[] = {[NFTA_CHAIN_POLICY - 1] = "policy"};
	const struct nlattr *hook = attrs_find(a, NFTA_CHAIN_HOOK);
	const char *type = attr_str(attrs_find(a, NFTA_CHAIN_TYPE));
	if (hook != NULL)
		text_add(t, " %s hook %u priority %d", type != NULL ? type : "-",
			 attr_u32(nest_find(hook, NFTA_HOOK_HOOKNUM)),
			 (int)attr_u32(nest_find(hook, NFTA_HOOK_PRIORITY)));
	text_u32s(t, a, labels, sizeof(labels) / sizeof(*labels));
	text_add(t, " flags=%#x",
		 attr_u32(attrs_find(a, NFTA_CHAIN_FLAGS)) & ~(uint32_t)NFT_CHAIN_BASE);
}

static void text_set(struct text *t, struct attrs a)
{
	static const char *const labels[] = {
		[NFTA_SET_FLAGS - 1] = "flags",	  [NFTA_SET_KEY_TYPE - 1] = "key",
		[NFTA_SET_KEY_LEN - 1] = "len",	  [NFTA_SET_DATA_TYPE - 1] = "data",
		[NFTA_SET_POLICY - 1] = "policy", [NFTA_SET_OBJ_TYPE - 1] = "object"};
	static const uint16_t others[] = {NFTA_SET_TIMEOUT, NFTA_SET_EXPR, NFTA_SET_EXPRESSIONS};
	struct attrs it = nest_attrs(nest_find(attrs_find(a, NFTA_SET_DESC), NFTA_SET_DESC_CONCAT));
	const struct nlattr *e;
	text_u32s(t, a, labels, sizeof(labels) / sizeof(*labels));
	while ((e = attrs_next(&it)) != NULL)
		text_add(t, " field=%u", attr_u32(nest_find(e, NFTA_SET_FIELD_LEN)));
	text_present(t, a, others, sizeof(others) / sizeof(*others));
}

static void text_elem(struct text *t, struct attrs a)
{
	static const char *const labels[] = {[NFTA_SET_ELEM_FLAGS - 1] = "flags"};
	static const uint16_t others[] = {NFTA_SET_ELEM_TIMEOUT, NFTA_SET_ELEM_EXPIRATION,
					  NFTA_SET_ELEM_EXPR, NFTA_SET_ELEM_OBJREF,
					  NFTA_SET_ELEM_EXPRESSIONS};
	static const uint16_t values[] = {NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_KEY_END,
					  NFTA_SET_ELEM_DATA};
	const struct nlattr *v = nest_find(attrs_find(a, NFTA_SET_ELEM_DATA), NFTA_DATA_VERDICT);
	const char *chain = attr_str(nest_find(v, NFTA_VERDICT_CHAIN));
	for (size_t i = 0; i < sizeof(values) / sizeof(*values); i++) {
		uint32_t len;
		const uint8_t *p = attr_value(attrs_find(a, values[i]), &len);
		text_bytes(t, "value", p, len, true);
	}
	if (v != NULL)
		text_add(t, " verdict=%d %s", (int)attr_u32(nest_find(v, NFTA_VERDICT_CODE)),
			 chain != NULL ? chain : "");
	text_u32s(t, a, labels, sizeof(labels) / sizeof(*labels));
	text_present(t, a, others, sizeof(others) / sizeof(*others));
}

/* 0, or -ENOMEM. */
static int text_rule(struct text *t, const struct rec *r)
{
	struct nftnl_rule *rule = nftnl_rule_alloc();
	if (rule == NULL)
		return -ENOMEM;
	if (nftnl_rule_nlmsg_parse(r->nlh, rule) == 0)
		nftnl_expr_foreach(rule, text_expr, t);
	else
		text_add(t, " (unreadable)");
	nftnl_rule_free(rule);
	return 0;
}

/*
 * What makes an object what it is, in a fixed order: what the kernel adds,
 * and how it orders and flags attributes, left out. 0 or -ENOMEM.
 */
static int rec_text(const struct rec *r, struct text *t)
{
	static const char *const kind[] = {"table", "chain", "set", "rule in", "element of"};
	static const uint16_t userdata[] = {NFTA_TABLE_USERDATA, NFTA_CHAIN_USERDATA,
					    NFTA_SET_USERDATA, NFTA_RULE_USERDATA,
					    NFTA_SET_ELEM_USERDATA};
	t->len = 0;
	text_add(t, "%s %s:", kind[r->kind], r->name);
	text_userdata(t, attrs_find(r->attrs, userdata[r->kind]));
	if (r->kind == K_TABLE)
		text_add(t, " flags=%#x", attr_u32(attrs_find(r->attrs, NFTA_TABLE_FLAGS)));
	else if (r->kind == K_CHAIN)
		text_chain(t, r->attrs);
	else if (r->kind == K_SET)
		text_set(t, r->attrs);
	else if (r->kind == K_ELEM)
		text_elem(t, r->attrs);
	else
		return text_rule(t, r);
	return 0;
}

/*
 * The table read (got) against the one its state makes (want), pair by
 * pair; *n_text: pairs whose bytes differed.
 */
static int recs_check(const struct recs *got, const struct recs *want, size_t *n_text, char *why,
		      size_t whylen)
{
	struct text a = {0}, b = {0};
	size_t i = 0, j = 0;
	int r = 0, c = 0;
	for (; r == 0 && c == 0 && (i < got->n || j < want->n); i++, j++) {
		c = i == got->n ? 1 : j == want->n ? -1 : rec_key_cmp(&got->v[i], &want->v[j]);
		if (c == 0 && rec_same_bytes(&got->v[i], &want->v[j]))
			continue;
		if ((c <= 0 && (r = rec_text(&got->v[i], &a)) < 0) ||
		    (c >= 0 && (r = rec_text(&want->v[j], &b)) < 0))
			break;
		*n_text += c == 0;
		r = c == 0 && a.len < sizeof(a.s) && strcmp(a.s, b.s) == 0 ? 0 : -EBADMSG;
	}
	if (r == -ENOMEM)
		snprintf(why, whylen, "%s", strerror(ENOMEM));
	else if (c != 0)
		snprintf(why, whylen, "the kernel %s: %s", c < 0 ? "has more" : "lacks",
			 c < 0 ? a.s : b.s);
	else if (r != 0)
		snprintf(why, whylen, "the kernel has \"%s\" where wiregui makes \"%s\"", a.s, b.s);
	return c != 0 ? -EBADMSG : r;
}

int fw_nft_parse(const struct fw_env *env, const struct fw_msgs *msgs, struct fw_state **ret,
		 char *why, size_t whylen)
{
	struct recs got = {0}, want = {0};
	struct fw_msgs again;
	struct fw_state *s = fw_state_new();
	size_t n_text = 0;
	int r = s == NULL ? -ENOMEM : recs_read(env, msgs, &got, why, whylen);

	fw_msgs_init(&again);
	if (r == 0 && !got.table) {
		snprintf(why, whylen, "no table inet %s", env->table);
		r = -ENOENT;
	}
	if (r == 0)
		r = state_read(&got, s, why, whylen);
	if (r == 0 && (r = build_replace(&again, env, s, 1, false)) < 0)
		snprintf(why, whylen, "rebuilding: %s", strerror(-r));
	if (r == 0)
		r = recs_read(env, &again, &want, why, whylen);
	if (r == 0)
		r = recs_check(&got, &want, &n_text, why, whylen);
	if (r == 0)
		snprintf(why, whylen, "%zu objects, %zu compared as text", got.n, n_text);
	fw_msgs_free(&again);
	free(got.v);
	free(want.v);
	if (r != 0) {
		fw_state_free(s);
		return r;
	}
	*ret = s;
	return 0;
}
