/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_WG_UAPI_H
#define WIREGUI_AGENT_WG_UAPI_H

/*
 * Userspace backend: the cross-platform UAPI text protocol
 * (https://www.wireguard.com/xplatform/) on SOCKDIR/<ifname>.sock, as
 * wireguard-go serves it. Keys travel as lowercase hex. The request
 * formatter and the reply parser are pure functions for the tests.
 */

#include <stdbool.h>
#include <stddef.h>

#include "wg.h"

#define WG_UAPI_DEFAULT_DIR "/var/run/wireguard"

/* sockdir: where the <ifname>.sock sockets live (copied). 0 or -ENOMEM. */
int wg_uapi_new(const char *sockdir, struct wg_backend **ret_backend);

/* Whether SOCKDIR/<ifname>.sock accepts a connection. */
bool wg_uapi_probe(const char *sockdir, const char *ifname);

/*
 * The "set=1" request for a change, ending with the empty line, in a
 * malloc'ed NUL-terminated string. A PSK flagged but all zero clears it
 * (preshared_key=000...); keepalive 0 turns it off. 0 or -ENOMEM.
 */
int wg_uapi_format_set(const struct wg_device *change, char **ret_text, size_t *ret_len);

/*
 * Parse the reply to "get=1" (key=value lines up to and including
 * "errno=N" and the empty line) into a new device.
 * 0; -EBADMSG on a malformed line or key; -N when errno=N is not 0.
 */
int wg_uapi_parse_get(const char *text, size_t len, const char *ifname, struct wg_device **ret_dev);

/* The errno=N of a reply to "set=1": 0, -N, or -EBADMSG. */
int wg_uapi_parse_errno(const char *text, size_t len);

#endif
