/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_FW_H
#define WIREGUI_AGENT_FW_H

/*
 * The firewall as data: what a FirewallSync stream or a FirewallPatch asks
 * for once agent/validate.c has checked every field, and what the agent reads
 * back from the kernel's table (agent/fw_nft.c parses it into the same form,
 * so "equal" is fw_state_equal()). No I/O here.
 *
 * Names in the kernel are made from numbers, never from frontend strings:
 * user chains are "u<num>", num assigned by the agent (fw_state_assign_nums).
 * Ids and priorities travel in the kernel objects' comments, so a state read
 * back after a restart is the state that was written.
 *
 * Table `inet <firewall.table>` (DESIGN.md section 3, README "Firewall"):
 *
 *   chain forward { type filter hook forward priority filter; policy accept;
 *       iifname != "<wg>" accept          only packets from the tunnel are ours
 *       meta nfproto ipv4 ip saddr vmap @src4
 *       meta nfproto ipv6 ip6 saddr vmap @src6
 *       ct direction reply accept         after the user's chain returned:
 *                                         replies of flows let through
 *       goto global }
 *   map src4 { ipv4_addr : verdict }      device address -> jump u<num> (user
 *   map src6 { ipv6_addr : verdict }        active) or drop (disabled/expired);
 *                                           element comment "u<num>"; and the
 *                                           catch-all * : drop (no device)
 *   chain u<num> { comment "<user id, 32 hex>"
 *       the user's rules, lowest priority first (a run of >= FW_SET_MIN_RUN
 *       tcp/udp rules of one family and action, no two overlapping, becomes
 *       one lookup in a set u<num>s<k>: ip daddr . meta l4proto . th dport) }
 *   chain global {
 *       the global rules, lowest priority first (sets "gs<k>" likewise)
 *       [client_isolation: ip daddr <each v4 pool> drop; ip6 daddr <v6 pool> drop]
 *       accept | drop }                   the site default action
 *   chain postrouting { type nat hook postrouting priority srcnat; policy accept;
 *       [masquerade_ipv4: oifname != "<wg>" ip saddr <each v4 pool> masquerade]
 *       [masquerade_ipv6: oifname != "<wg>" ip6 saddr <each v6 pool> masquerade] }
 *
 * So a packet meets its user's rules, then the global rules, then the
 * default, as if each user chain ended in "jump global"; the jump is made
 * once, in forward, so user chains hold nothing but their rules. On kernel
 * 6.18 a transaction that adds a rule (any of ours) or changes the map's
 * verdicts makes the kernel walk every chain reachable from the base
 * chains, i.e. every user chain: about 1 us each, 9-12 ms a patch at 10k
 * users (README "Performance"; agent/NFT-NOTES.md section 5, also for why
 * a disable measured flat alone but not through the agent); removing a
 * user stays flat.
 *
 * Pools are the agent's wireguard.peer_networks. Every user has a chain,
 * active or not (re-enabling a user only swaps its map elements); the map
 * elements say which (a user with no address is active by definition). Rules
 * carry the comment "<id, 32 hex>:<priority>"; set elements likewise.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define FW_ID_LEN 16
#define FW_MAX_ADDRS_PER_USER 64
#define FW_MAX_RULES_PER_USER 1024
#define FW_MAX_GLOBAL_RULES 10000
/* User chain numbers: a patch wanting a higher one fails (-E2BIG). */
#define FW_MAX_NUM 0x7fffffffu
/* Consecutive rules of one shape and action that become one set lookup. */
#define FW_SET_MIN_RUN 4

enum fw_proto {
	FW_PROTO_ANY = 0,
	FW_PROTO_TCP = 6,
	FW_PROTO_UDP = 17,
};

struct fw_rule {
	uint8_t id[FW_ID_LEN];
	int32_t priority;	     /* lower first; ties by id */
	struct ip_cidr dst;	     /* host bits clear */
	uint8_t proto;		     /* enum fw_proto */
	uint16_t port_from, port_to; /* 0/0 = any port; else 1 <= from <= to, proto set */
	bool accept;
};

struct fw_user {
	uint8_t id[FW_ID_LEN];
	uint32_t num;	       /* names chain u<num>; 0 = none assigned yet */
	bool active;	       /* false: every address maps to drop; normalized to true
			 when there is no address (nothing in the table shows it) */
	struct ip_addr *addrs; /* hosts (/32, /128); sorted and unique once normalized */
	size_t n_addrs, cap_addrs;
	struct fw_rule *rules; /* by (priority, id) once normalized */
	size_t n_rules, cap_rules;
};

struct fw_settings {
	bool default_accept;
	bool client_isolation;
	bool masquerade_ipv4, masquerade_ipv6;
};

struct fw_state {
	struct fw_settings settings;
	struct fw_user *users; /* by id once normalized */
	size_t n_users, cap_users;
	struct fw_rule *global_rules; /* by (priority, id) once normalized */
	size_t n_global_rules, cap_global_rules;
};

/* A patch: one transaction. */
struct fw_change {
	struct fw_state *upsert; /* users (whole: addresses, state, rules) and global
				    rules to add or replace; its settings are unused */
	uint8_t (*remove_users)[FW_ID_LEN];
	size_t n_remove_users;
	uint8_t (*remove_rules)[FW_ID_LEN]; /* global rules */
	size_t n_remove_rules;
	bool has_settings;
	struct fw_settings settings;
};

struct fw_state *fw_state_new(void);
void fw_state_free(struct fw_state *s);
/* A deep copy, or NULL. */
struct fw_state *fw_state_copy(const struct fw_state *s);

/* Append a zeroed user/rule/address; NULL (or -ENOMEM) when out of memory. */
struct fw_user *fw_state_add_user(struct fw_state *s);
struct fw_rule *fw_state_add_global_rule(struct fw_state *s);
struct fw_rule *fw_user_add_rule(struct fw_user *u);
int fw_user_add_addr(struct fw_user *u, const struct ip_addr *a);

/* Sort users by id, addresses, and rules by (priority, id). */
void fw_state_normalize(struct fw_state *s);
/* In a normalized state: the user with this id, or NULL. */
struct fw_user *fw_state_find_user(const struct fw_state *s, const uint8_t id[FW_ID_LEN]);
int fw_rule_cmp(const struct fw_rule *a, const struct fw_rule *b); /* (priority, id) */

/* Normalized states: everything equal but the users' nums. */
bool fw_state_equal(const struct fw_state *a, const struct fw_state *b);

/*
 * Give every user of s a num: the one it has in prev (normalized, may be
 * NULL) when there, else one above every num of s and prev; all anew from
 * 1 once prev's reach FW_MAX_NUM / 2.
 */
void fw_state_assign_nums(struct fw_state *s, const struct fw_state *prev);

/*
 * Before a patch: normalize c->upsert, give each of its users its num (the
 * one it has in cur, else a fresh one above every num of cur), and make
 * *ret_next: what the patch leaves of the names it touches, for
 * fw_nft_build_patch: the upserted users (copies, with their nums), the
 * complete new list of global rules, and the new settings. Not a whole
 * state: users the change does not name are not in it, so a patch costs
 * the same whatever the number of users. 0, -ENOMEM, or -E2BIG when a new
 * user would need a num above FW_MAX_NUM (a full sync renumbers).
 */
int fw_change_prepare(const struct fw_state *cur, struct fw_change *c, struct fw_state **ret_next);

/*
 * Apply a prepared change to a normalized state in place (it stays
 * normalized; upserted users keep the nums prepare gave them). Removing
 * what is not there is no error. 0, or -ENOMEM and s is half-changed: the
 * caller forgets it (reads the kernel).
 */
int fw_change_apply(struct fw_state *s, const struct fw_change *c);
void fw_change_free(struct fw_change *c); /* frees c's contents, not c */

void fw_id_hex(const uint8_t id[FW_ID_LEN], char out[2 * FW_ID_LEN + 1]);
/* 0, or -EINVAL unless exactly 32 hex digits. */
int fw_id_parse_hex(const char *hex, uint8_t id[FW_ID_LEN]);

#endif
