/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_CONF_H
#define WIREGUI_AGENT_CONF_H

/*
 * The agent's own root-owned config: what it may touch and who may ask.
 *
 *   [agent]     socket = /run/wiregui/agent.sock
 *               frontend_user = wiregui   user name or numeric uid allowed to connect
 *               log_level = info
 *               idle_timeout = 60         seconds without a frame before the
 *                                         frontend's connection is dropped
 *               max_peers = 100000        most peers a full sync may carry
 *   [wireguard] interface = wg-wiregui    the only interface it programs
 *               listen_port = 51820
 *               private_key_file = /var/lib/wiregui-agent/private.key
 *                                         created 0600 if missing; never sent
 *               address = 10.3.2.1/24, fd00::3:2:1/120   tunnel addresses
 *               mtu = 1420
 *               peer_networks =           pools peers' allowed IPs must lie
 *                                         in; empty: the networks of address
 *               userspace_implementation = wireguard-go   run where the
 *                                         kernel has no WireGuard
 *   [firewall]  table = wiregui           the only nft table (family inet) it owns
 *               max_users = 100000        most users a firewall full sync may
 *                                         carry (at most 1000000)
 *               max_rules = 200000        most rules in all (users' and
 *                                         global) a firewall full sync may
 *                                         carry; patches keep within both
 */

#include <stddef.h>
#include <sys/types.h>

#include "addr.h"
#include "log.h"

#define AGENT_CONF_MAX_CIDRS 16

struct cidr_list {
	struct ip_cidr items[AGENT_CONF_MAX_CIDRS];
	size_t n;
};

struct agent_conf {
	char *socket_path;
	char *frontend_user;
	enum log_level log_level;
	unsigned long idle_timeout;
	unsigned long max_peers;
	char *interface;
	unsigned long listen_port;
	char *private_key_file;
	struct cidr_list addresses; /* host bits kept: the interface's own addresses */
	unsigned long mtu;
	struct cidr_list peer_networks; /* masked; defaulted from addresses */
	char *userspace_impl;
	char *nft_table;
	unsigned long max_users;
	unsigned long max_rules;
	/* Resolved from frontend_user at load time. */
	uid_t frontend_uid;
	gid_t frontend_gid;
};

#define AGENT_CONF_DEFAULT_PATH WIREGUI_SYSCONFDIR "/agent.conf"

/* 0 or -errno; err holds "where: what". */
int agent_conf_load(const char *path, struct agent_conf *ret_conf, char *err, size_t errlen);
void agent_conf_free(struct agent_conf *conf);

#endif
