/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_VALIDATE_H
#define WIREGUI_AGENT_VALIDATE_H

/*
 * Every field of every request is checked here before a handler runs:
 * protobuf-c only checks the wire format (unknown fields are refused by
 * frame_decode). A failure names the field and says what is wrong.
 */

#include <stddef.h>

#include "agent.pb-c.h"
#include "agent_conf.h"
#include "fw.h"
#include "wg.h"

struct verr {
	char field[64];
	char message[160];
};

/* Fill err; returns -EINVAL. */
__attribute__((format(printf, 3, 4))) int verr_set(struct verr *err, const char *field,
						   const char *fmt, ...);

/* Allowed IPs one peer may carry. */
#define VALIDATE_MAX_ALLOWED_IPS 256
/*
 * Allowed IPs of all peers, and device addresses of all firewall users,
 * on average per peer of max_peers: what bounds a sync's memory.
 */
#define VALIDATE_ADDRS_PER_PEER 4ul

/*
 * Results: 0; -EINVAL (INVALID_FIELD); -EPERM (NOT_ALLOWED: well-formed but
 * outside the agent's own policy); -E2BIG (LIMIT). err names the field.
 */
int validate_hello(const Wiregui__Hello *m, struct verr *err);
/* The interface a request names must be the one in the agent's config. */
int validate_interface(const char *name, const struct agent_conf *conf, const char *field,
		       struct verr *err);

/*
 * Check one peer (list[index], e.g. peers[3], names it in err) and append it
 * to dev as a complete desired peer: HAS_PSK (zero = none), HAS_KEEPALIVE
 * and REPLACE_ALLOWED_IPS set. own_key is the interface's public key, which
 * no peer may have (the kernel would silently skip it).
 */
int validate_peer(const Wiregui__Peer *m, const struct agent_conf *conf,
		  const uint8_t own_key[WG_KEY_LEN], const char *list, size_t index,
		  struct wg_device *dev, struct verr *err);
/* A 32-byte public key to remove; appended to dev with WG_PEER_REMOVE. */
int validate_peer_removal(const ProtobufCBinaryData *key, const char *field, struct wg_device *dev,
			  struct verr *err);
/*
 * Across a whole set (sorts dev's peers): no public key twice, and no
 * allowed IP twice (on two peers WireGuard would silently move it to the
 * last one; on one it is a mistake).
 */
int validate_peer_set(struct wg_device *dev, struct verr *err);

/*
 * The firewall. A rule, list[index] in err ("users[3].rules", 2 names
 * "users[3].rules[2]"): id of 16 bytes, destination a network (host bits
 * zero), protocol, ports 0/0 (any) or 1 <= from <= to <= 65535 (to 0: =
 * from) with TCP or UDP, action.
 */
int validate_fw_rule(const Wiregui__FirewallRule *m, const char *list, size_t index,
		     struct fw_rule *ret_rule, struct verr *err);
/*
 * A user, appended to s: id of 16 bytes; addresses hosts (/32, /128) inside
 * peer_networks (-EPERM otherwise), at most FW_MAX_ADDRS_PER_USER; at most
 * FW_MAX_RULES_PER_USER rules (-E2BIG beyond either). s is as it was on error.
 */
int validate_fw_user(const Wiregui__FirewallUser *m, const struct agent_conf *conf,
		     const char *list, size_t index, struct fw_state *s, struct verr *err);
/* field: "settings"; absent (NULL) is an error. */
int validate_fw_settings(const Wiregui__FirewallSettings *m, const char *field,
			 struct fw_settings *ret_settings, struct verr *err);
/* An id of exactly FW_ID_LEN bytes (a user or rule to remove), field naming it. */
int validate_fw_id(const ProtobufCBinaryData *id, const char *field, uint8_t ret_id[FW_ID_LEN],
		   struct verr *err);

/*
 * A full sync's state, as its batches built it (before fw_state_normalize:
 * errors name the users and rules by their place in the stream): no user id
 * twice, no address twice (on one user or two), no rule id twice (users' and
 * global rules alike); at most FW_MAX_GLOBAL_RULES global rules, max_users
 * users and max_rules rules in all (-E2BIG).
 */
int validate_fw_state(const struct fw_state *s, const struct agent_conf *conf, struct verr *err);
/*
 * A patch (c->upsert as validate_fw_user and validate_fw_rule built it,
 * not normalized yet) against cur, the table's state (normalized): the patch
 * itself as validate_fw_state says, no id both upserted and removed or
 * removed twice, and the state it makes keeps the same properties. An
 * address or rule id may move from a user the patch removes or replaces.
 * One pass over cur.
 */
int validate_fw_change(const struct fw_state *cur, const struct fw_change *c,
		       const struct agent_conf *conf, struct verr *err);

#endif
