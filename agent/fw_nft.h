/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_FW_NFT_H
#define WIREGUI_AGENT_FW_NFT_H

/*
 * The firewall state (fw.h) as nftables netlink messages and back, with
 * libmnl, without a socket: so every byte the agent would send can be
 * built and parsed back in a unit test without root.
 *
 *  - fw_nft_build_replace: one batch replacing the whole table (NEWTABLE,
 *    DELTABLE, NEWTABLE and every object: one transaction; the kernel finds
 *    the objects of the same batch by name).
 *  - fw_nft_build_patch: one batch taking the table from state cur to cur
 *    with the change applied, touching only the users, chains and sets that
 *    differ: a one-user patch is a handful of messages whatever the number
 *    of users. Order: old map elements, then rule flushes, then old sets and
 *    chains, then new chains, sets, rules, and new map elements last.
 *  - fw_nft_parse: the NEW* messages of a table (as the kernel's dumps give
 *    them, or as a replace batch carries them) back into a state.
 */

#include <stddef.h>
#include <stdint.h>

#include "agent_conf.h"
#include "fw.h"

/* What the table depends on besides the state: from the agent's config. */
struct fw_env {
	const char *table;	       /* firewall.table; family inet */
	const char *ifname;	       /* wireguard.interface */
	const struct cidr_list *pools; /* wireguard.peer_networks */
};

/* The env of an agent config (borrowing its strings). */
void fw_env_from_conf(struct fw_env *env, const struct agent_conf *conf);

/*
 * A sequence of netlink messages in one buffer: a batch to send (BATCH_BEGIN
 * ... BATCH_END, sequence numbers seq_first.. in order) or messages read
 * back. what[] says, for each message of a batch, which object it writes
 * ("chain u7", "map src4 element 10.3.2.9", "rule 0123...:10 in u7"), so a
 * kernel error naming a sequence number can name the object.
 */
struct fw_msgs {
	uint8_t *buf;
	size_t len, cap;
	size_t n_msgs;
	uint32_t seq_first;
	char **what; /* n_msgs entries (NULL for begin/end); only batches */
};

void fw_msgs_init(struct fw_msgs *m);
void fw_msgs_free(struct fw_msgs *m);
/* Append one message (copied); 0 or -ENOMEM. */
int fw_msgs_append(struct fw_msgs *m, const void *nlh, size_t len);
/* The object the message with this sequence number writes, or "?". */
const char *fw_msgs_what(const struct fw_msgs *m, uint32_t seq);

/*
 * s: normalized, every user with a num. Batch sequence numbers start at seq.
 * The last command message (before BATCH_END) carries NLM_F_ACK; no other
 * does. 0, -ENOMEM, or -E2BIG when the batch would pass FW_NFT_MAX_BATCH.
 */
#define FW_NFT_MAX_BATCH (256u * 1024 * 1024)
int fw_nft_build_replace(struct fw_msgs *b, const struct fw_env *env, const struct fw_state *s,
			 uint32_t seq);

/*
 * cur: the table's state now (normalized, nums assigned); c: validated and
 * prepared; next: from fw_change_prepare(cur, c) -- only the upserted users
 * (with nums), the new global rules and the new settings. Look users up in
 * cur and next by the ids c names, never loop over cur's users: the cost
 * of a patch must not grow with their number. An empty change builds an
 * empty batch (b->n_msgs == 0).
 */
int fw_nft_build_patch(struct fw_msgs *b, const struct fw_env *env, const struct fw_state *cur,
		       const struct fw_state *next, const struct fw_change *c, uint32_t seq);

/*
 * Read a table's NEW* messages (other types, and objects of other tables,
 * are skipped) into a normalized state with the kernel's nums.
 *   0        ret is the state; why says how many objects were compared as
 *            text of what they mean: the slow way, for bytes other than
 *            fw_nft_build_* makes (another kernel's dump)
 *   -ENOENT  no NEWTABLE for env->table among them
 *   -EBADMSG the table holds something fw_nft_build_* would not have made
 *            (a foreign rule, chain, set, element, a wrong comment, the
 *            wrong interface or pools): why says what; the caller replaces it
 *   -ENOMEM
 */
int fw_nft_parse(const struct fw_env *env, const struct fw_msgs *msgs, struct fw_state **ret,
		 char *why, size_t whylen);

#endif
