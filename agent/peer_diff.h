/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_PEER_DIFF_H
#define WIREGUI_AGENT_PEER_DIFF_H

/*
 * Reconcile planning, wireguard-tools' syncconf as the model: given the
 * desired device and what the backend dumped, the smallest change that
 * makes the one equal to the other.
 *
 *   - a current peer not desired:         REMOVE
 *   - a desired peer not current:         added with its PSK (if any), its
 *                                         keepalive (if any) and its allowed
 *                                         IPs (REPLACE_ALLOWED_IPS)
 *   - a peer in both, per field, only where it differs:
 *       PSK        HAS_PSK with the new key, or all zero to clear it
 *       keepalive  HAS_KEEPALIVE with the new value, or 0 to clear it
 *       allowed IPs (compared as sets) REPLACE_ALLOWED_IPS with the full set
 *     a peer equal in every field does not appear in the change at all
 *   - device: private key / listen port only when desired (flag set) and
 *     different.
 *
 * Order: device fields, then removals, then additions and changes, each in
 * public key order, so golden files are stable. Neither input is modified
 * except that both have their peers sorted. The change owns copies.
 * 0, -EINVAL (a public key listed twice in either input) or -ENOMEM; an
 * empty change (wg_device_is_empty) means nothing to write.
 */

#include "wg.h"

int peer_diff(struct wg_device *desired, struct wg_device *current, struct wg_device **ret_change);

/* The device fields alone (private key, listen port), set in change's flags. */
void peer_diff_device(const struct wg_device *desired, const struct wg_device *current,
		      struct wg_device *change);

#endif
