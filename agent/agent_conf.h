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
 *   [wireguard] interface = wg-wiregui    the only interface it programs
 *   [firewall]  table = wiregui           the only nft table (family inet) it owns
 */

#include <stddef.h>
#include <sys/types.h>

#include "log.h"

struct agent_conf {
	char *socket_path;
	char *frontend_user;
	enum log_level log_level;
	unsigned long idle_timeout;
	char *interface;
	char *nft_table;
	/* Resolved from frontend_user at load time. */
	uid_t frontend_uid;
	gid_t frontend_gid;
};

#define AGENT_CONF_DEFAULT_PATH WIREGUI_SYSCONFDIR "/agent.conf"

/* 0 or -errno; err holds "where: what". */
int agent_conf_load(const char *path, struct agent_conf *ret_conf, char *err, size_t errlen);
void agent_conf_free(struct agent_conf *conf);

#endif
