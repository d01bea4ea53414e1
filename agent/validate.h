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

#endif
