/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_WG_IFACE_H
#define WIREGUI_AGENT_WG_IFACE_H

/*
 * The one WireGuard interface this agent owns: its private key (from the
 * config's key file; only the public key ever leaves), its backend (kernel
 * netlink, or the UAPI socket of a userspace implementation the agent starts
 * where the kernel has none), its addresses, MTU and link state. Nothing is
 * remembered that the kernel can be asked for: every sync starts from a dump.
 */

#include <stddef.h>
#include <stdint.h>

#include "agent_conf.h"
#include "wg.h"

struct wg_iface;

/* What a write changed, for the log and the Result message. */
struct wg_write_stats {
	size_t removed, added, changed;
	bool device; /* private key or listen port rewritten */
};

/*
 * Bring the interface to the config's state: key file (created 0600 when
 * missing), backend found or created, private key and listen port, addresses,
 * MTU, link up. 0 or -errno with a message in err.
 */
int wg_iface_open(const struct agent_conf *conf, struct wg_iface **ret_wg, char *err,
		  size_t errlen);
/* For tests: drive this backend (owned from now on); no link management. */
struct wg_iface *wg_iface_new(const struct agent_conf *conf, struct wg_backend *backend,
			      const uint8_t private_key[WG_KEY_LEN]);
void wg_iface_free(struct wg_iface *wg);

enum wg_backend_kind wg_iface_backend(const struct wg_iface *wg);
const uint8_t *wg_iface_public_key(const struct wg_iface *wg);
/* Last full sync applied by this process (0: none yet). */
uint64_t wg_iface_generation(const struct wg_iface *wg);

/* Re-create or re-configure whatever drifted (level-triggered). 0 or -errno. */
int wg_iface_ensure(struct wg_iface *wg, char *err, size_t errlen);
/* Make the peers exactly desired's (sorted in place); device fields from the config. */
int wg_iface_sync(struct wg_iface *wg, struct wg_device *desired, uint64_t generation,
		  struct wg_write_stats *ret_stats, char *err, size_t errlen);
/* Write a change (upserts and removals) as it is. */
int wg_iface_patch(struct wg_iface *wg, const struct wg_device *change, char *err, size_t errlen);
/* The device as the backend has it (caller frees). */
int wg_iface_dump(struct wg_iface *wg, struct wg_device **ret_dev, char *err, size_t errlen);

#endif
