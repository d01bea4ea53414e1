/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "web_conf.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"

#define STR(sec, k, member, dflt)                                         \
	{                                                                 \
		.section = sec, .key = k, .type = CONF_STRING,            \
		.offset = offsetof(struct web_conf, member), .def = dflt, \
	}
#define UINT(sec, k, member, dflt, lo, hi)                                                      \
	{                                                                                       \
		.section = sec, .key = k, .type = CONF_UINT,                                    \
		.offset = offsetof(struct web_conf, member), .def = dflt, .min = lo, .max = hi, \
	}

static const struct conf_entry web_schema[] = {
	STR("http", "address", http_address, "127.0.0.1:13000"),
	UINT("http", "max_header_size", http_max_header_size, "16384", 1024, 1024 * 1024),
	UINT("http", "max_body_size", http_max_body_size, "1048576", 1024, 64 * 1024 * 1024),
	UINT("http", "timeout", http_timeout, "30", 1, 3600),
	STR("database", "url", database_url, "postgresql:///wiregui"),
	STR("redis", "address", redis_address, "127.0.0.1:6379"),
	STR("agent", "socket", agent_socket, "/run/wiregui/agent.sock"),
	{
		.section = "log",
		.key = "level",
		.type = CONF_CUSTOM,
		.offset = offsetof(struct web_conf, log_level),
		.def = "info",
		.parse = conf_parse_log_level,
	},
};

#define WEB_SCHEMA_LEN (sizeof(web_schema) / sizeof(web_schema[0]))

int web_conf_load(const char *path, struct web_conf *ret_conf, char *err, size_t errlen)
{
	memset(ret_conf, 0, sizeof(*ret_conf));
	int r = conf_load(path, web_schema, WEB_SCHEMA_LEN, ret_conf, err, errlen);
	if (r < 0)
		web_conf_free(ret_conf);
	return r;
}

void web_conf_free(struct web_conf *conf)
{
	if (conf == NULL)
		return;
	conf_free(web_schema, WEB_SCHEMA_LEN, conf);
}
