/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_LINK_H
#define WIREGUI_AGENT_LINK_H

/* The WireGuard network interface over rtnetlink (libmnl): no `ip` processes. */

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* The interface's index, or -ENODEV. */
int link_index(const char *ifname);

/*
 * RTM_NEWLINK of kind "wireguard". 0, -EEXIST, -EOPNOTSUPP when the kernel
 * has no WireGuard (the userspace implementation must create it), -errno.
 */
int link_create_wireguard(const char *ifname);

/*
 * Make the interface have exactly these addresses (extra ones are removed,
 * IPv6 link-local excepted), this MTU, and be up; writes only what differs.
 * kind is what the link must be ("wireguard" for the kernel's, "tun" for a
 * userspace implementation's): anything else is -EMEDIUMTYPE, untouched.
 * 0 or -errno.
 */
int link_configure(int ifindex, const char *kind, uint32_t mtu, const struct ip_cidr *addrs,
		   size_t n_addrs);

#endif
