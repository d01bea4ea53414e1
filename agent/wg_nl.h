/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_WG_NL_H
#define WIREGUI_AGENT_WG_NL_H

/*
 * Kernel backend: generic netlink family "wireguard" (<linux/wireguard.h>).
 * The message builder and the dump parser are pure functions over buffers
 * so they are tested without root or a kernel module.
 */

#include <linux/netlink.h>
#include <stddef.h>
#include <stdint.h>

#include "wg.h"

/* Resolves the family; -ENOENT (or -errno) where the kernel has no WireGuard. */
int wg_nl_new(struct wg_backend **ret_backend);

/*
 * Split a change into WG_CMD_SET_DEVICE messages of at most bufsize bytes
 * each, as wireguard-tools does: device attributes in the first message,
 * then as many peers as fit; a peer whose allowed IPs do not fit continues
 * in the next message under the same public key, without
 * WGPEER_F_REPLACE_ALLOWEDIPS. Each message is handed to emit() (which
 * returns 0 or -errno to stop). Returns 0, -EMSGSIZE (bufsize too small for
 * one peer header), or emit's error.
 */
int wg_nl_build_set(const struct wg_device *change, uint16_t family_id, uint32_t seq,
		    size_t bufsize, int (*emit)(void *ctx, const struct nlmsghdr *nlh), void *ctx);

/*
 * Merge one WG_CMD_GET_DEVICE dump message (or a SET message: the attribute
 * layout is the same) into dev: device attributes, then peers; a peer whose
 * public key equals the last peer's continues it (split dumps).
 * 0, -EINTR when the message carries NLM_F_DUMP_INTR (restart the dump),
 * -EBADMSG on malformed attributes, -ENOMEM.
 */
int wg_nl_dump_merge(struct wg_device *dev, const struct nlmsghdr *nlh);

#endif
