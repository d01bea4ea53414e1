/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "agent_conf.h"

#include <errno.h>
#include <net/if.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"

/* An absolute path without "..", short enough for sun_path. */
static int parse_socket_path(const char *value, void *field, char *err, size_t errlen)
{
	if (value[0] != '/' || strstr(value, "/../") != NULL || strlen(value) >= 108) {
		snprintf(err, errlen,
			 "must be an absolute path shorter than 108 bytes without '..'");
		return -EINVAL;
	}
	return conf_string_set(field, value);
}

/* Linux interface names: 1..15 bytes, no '/', ':' or whitespace; we allow [A-Za-z0-9_.-]. */
static int parse_ifname(const char *value, void *field, char *err, size_t errlen)
{
	size_t len = strlen(value);
	if (len == 0 || len >= IFNAMSIZ ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyz"
			  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len ||
	    strcmp(value, ".") == 0 || strcmp(value, "..") == 0) {
		snprintf(err, errlen, "'%s' is not an interface name (1-%d of A-Z a-z 0-9 _ . -)",
			 value, IFNAMSIZ - 1);
		return -EINVAL;
	}
	return conf_string_set(field, value);
}

/* nft table names: an identifier; we keep to [a-z0-9_], starting with a letter. */
static int parse_table(const char *value, void *field, char *err, size_t errlen)
{
	size_t len = strlen(value);
	if (len == 0 || len > 64 || value[0] < 'a' || value[0] > 'z' ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_") != len) {
		snprintf(err, errlen, "'%s' is not a table name ([a-z][a-z0-9_]*, at most 64)",
			 value);
		return -EINVAL;
	}
	return conf_string_set(field, value);
}

static int parse_user(const char *value, void *field, char *err, size_t errlen)
{
	if (value[0] == '\0') {
		snprintf(err, errlen, "must name a user or a uid");
		return -EINVAL;
	}
	return conf_string_set(field, value);
}

#define CUSTOM(sec, k, member, dflt, fn)                                                 \
	{                                                                                \
		.section = sec, .key = k, .type = CONF_CUSTOM,                           \
		.offset = offsetof(struct agent_conf, member), .def = dflt, .parse = fn, \
		.free = conf_string_free,                                                \
	}

static const struct conf_entry agent_schema[] = {
	CUSTOM("agent", "socket", socket_path, "/run/wiregui/agent.sock", parse_socket_path),
	CUSTOM("agent", "frontend_user", frontend_user, "wiregui", parse_user),
	{
		.section = "agent",
		.key = "log_level",
		.type = CONF_CUSTOM,
		.offset = offsetof(struct agent_conf, log_level),
		.def = "info",
		.parse = conf_parse_log_level,
	},
	{
		.section = "agent",
		.key = "idle_timeout",
		.type = CONF_UINT,
		.offset = offsetof(struct agent_conf, idle_timeout),
		.def = "60",
		.min = 2,
		.max = 86400,
	},
	CUSTOM("wireguard", "interface", interface, "wg-wiregui", parse_ifname),
	CUSTOM("firewall", "table", nft_table, "wiregui", parse_table),
};

#define AGENT_SCHEMA_LEN (sizeof(agent_schema) / sizeof(agent_schema[0]))

/* frontend_user: a numeric uid, or a name looked up in the user database. */
static int resolve_frontend(struct agent_conf *conf, char *err, size_t errlen)
{
	const char *name = conf->frontend_user;
	char *end;
	errno = 0;
	unsigned long uid = strtoul(name, &end, 10);
	struct passwd *pw;

	if (*end == '\0' && errno == 0 && uid <= 0x7fffffffUL) {
		conf->frontend_uid = (uid_t)uid;
		pw = getpwuid((uid_t)uid);
		conf->frontend_gid = pw != NULL ? pw->pw_gid : (gid_t)uid;
		return 0;
	}
	pw = getpwnam(name);
	if (pw == NULL) {
		snprintf(err, errlen, "frontend_user: no such user '%s'", name);
		return -EINVAL;
	}
	conf->frontend_uid = pw->pw_uid;
	conf->frontend_gid = pw->pw_gid;
	return 0;
}

int agent_conf_load(const char *path, struct agent_conf *ret_conf, char *err, size_t errlen)
{
	memset(ret_conf, 0, sizeof(*ret_conf));
	int r = conf_load(path, agent_schema, AGENT_SCHEMA_LEN, ret_conf, err, errlen);
	if (r == 0)
		r = resolve_frontend(ret_conf, err, errlen);
	if (r < 0)
		agent_conf_free(ret_conf);
	return r;
}

void agent_conf_free(struct agent_conf *conf)
{
	if (conf == NULL)
		return;
	conf_free(agent_schema, AGENT_SCHEMA_LEN, conf);
}
