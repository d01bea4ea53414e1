/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_WEB_CONF_H
#define WIREGUI_WEB_CONF_H

/*
 * Configuration of wiregui-web and the wiregui CLI: one file
 * (default WIREGUI_SYSCONFDIR "/wiregui.conf"), every key also settable as
 * WIREGUI_<SECTION>_<KEY> (see common/conf.h).
 *
 *   [http]     address = 127.0.0.1:13000   host:port or [v6]:port
 *              max_header_size = 16384      bytes, all headers together
 *              max_body_size = 1048576      bytes
 *              timeout = 30                 seconds a client may stay silent mid-request
 *   [database] url = postgresql:///wiregui  libpq conninfo string or URI
 *   [redis]    address = 127.0.0.1:6379     host:port or unix:/path/to.sock
 *   [agent]    socket = /run/wiregui/agent.sock
 *   [log]      level = info                 error | warning | info | debug
 */

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct web_conf {
	char *http_address;
	unsigned long http_max_header_size;
	unsigned long http_max_body_size;
	unsigned long http_timeout;
	char *database_url;
	char *redis_address;
	char *agent_socket;
	enum log_level log_level;
};

#define WEB_CONF_DEFAULT_PATH WIREGUI_SYSCONFDIR "/wiregui.conf"

/* path NULL: defaults + environment only. 0 or -errno; err holds "where: what". */
int web_conf_load(const char *path, struct web_conf *ret_conf, char *err, size_t errlen);
void web_conf_free(struct web_conf *conf);

#endif
