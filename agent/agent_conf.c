/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "agent_conf.h"

#include <errno.h>
#include <net/if.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"

/* An absolute path without "..", short enough for sun_path (and any path). */
static int parse_abs_path(const char *value, void *field, char *err, size_t errlen)
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

/* "a/n, b/m": at most AGENT_CONF_MAX_CIDRS CIDRs, comma or space separated. */
static int parse_cidr_list(const char *value, struct cidr_list *list, unsigned flags, char *err,
			   size_t errlen)
{
	char buf[1024];
	char *save = NULL;

	list->n = 0;
	if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "too long");
		return -EINVAL;
	}
	for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (list->n == AGENT_CONF_MAX_CIDRS) {
			snprintf(err, errlen, "more than %d networks", AGENT_CONF_MAX_CIDRS);
			return -EINVAL;
		}
		if (ip_cidr_parse(tok, flags, &list->items[list->n]) < 0) {
			snprintf(err, errlen, "'%s' is not a CIDR", tok);
			return -EINVAL;
		}
		list->n++;
	}
	return 0;
}

/* Tunnel addresses: the interface's own address with its network's prefix. */
static int parse_addresses(const char *value, void *field, char *err, size_t errlen)
{
	struct cidr_list *list = field;
	int r = parse_cidr_list(value, list, IP_CIDR_ALLOW_HOST_BITS, err, errlen);
	if (r == 0 && list->n == 0) {
		snprintf(err, errlen, "needs at least one address");
		return -EINVAL;
	}
	return r;
}

static int parse_networks(const char *value, void *field, char *err, size_t errlen)
{
	return parse_cidr_list(value, field, 0, err, errlen);
}

/* A program name (looked up in a fixed PATH) or an absolute path. */
static int parse_program(const char *value, void *field, char *err, size_t errlen)
{
	size_t len = strlen(value);
	if (len == 0 || len > 255 ||
	    (value[0] != '/' && strspn(value, "abcdefghijklmnopqrstuvwxyz"
					      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len)) {
		snprintf(err, errlen, "must be a program name or an absolute path");
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

#define UINT(sec, k, member, dflt, lo, hi)                                                        \
	{                                                                                         \
		.section = sec, .key = k, .type = CONF_UINT,                                      \
		.offset = offsetof(struct agent_conf, member), .def = dflt, .min = lo, .max = hi, \
	}

static const struct conf_entry agent_schema[] = {
	CUSTOM("agent", "socket", socket_path, "/run/wiregui/agent.sock", parse_abs_path),
	CUSTOM("agent", "frontend_user", frontend_user, "wiregui", parse_user),
	{
		.section = "agent",
		.key = "log_level",
		.type = CONF_CUSTOM,
		.offset = offsetof(struct agent_conf, log_level),
		.def = "info",
		.parse = conf_parse_log_level,
	},
	UINT("agent", "idle_timeout", idle_timeout, "60", 2, 86400),
	/* A dump of this many peers stays within the UAPI reply limit. */
	UINT("agent", "max_peers", max_peers, "100000", 1, 200000),
	CUSTOM("wireguard", "interface", interface, "wg-wiregui", parse_ifname),
	{
		.section = "wireguard",
		.key = "listen_port",
		.type = CONF_UINT,
		.offset = offsetof(struct agent_conf, listen_port),
		.def = "51820",
		.min = 1,
		.max = 65535,
		.env = "WIREGUI_WG_PORT",
	},
	CUSTOM("wireguard", "private_key_file", private_key_file,
	       "/var/lib/wiregui-agent/private.key", parse_abs_path),
	{
		.section = "wireguard",
		.key = "address",
		.type = CONF_CUSTOM,
		.offset = offsetof(struct agent_conf, addresses),
		.def = "10.3.2.1/24, fd00::3:2:1/120",
		.parse = parse_addresses,
	},
	UINT("wireguard", "mtu", mtu, "1420", 576, 9000),
	{
		.section = "wireguard",
		.key = "peer_networks",
		.type = CONF_CUSTOM,
		.offset = offsetof(struct agent_conf, peer_networks),
		.def = "",
		.parse = parse_networks,
	},
	CUSTOM("wireguard", "userspace_implementation", userspace_impl, "wireguard-go",
	       parse_program),
	CUSTOM("firewall", "table", nft_table, "wiregui", parse_table),
	UINT("firewall", "max_users", max_users, "100000", 1, 1000000),
	/* Two rules for each of the most users. */
	UINT("firewall", "max_rules", max_rules, "200000", 0, 2000000),
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

/*
 * Peer pools default to the networks of the tunnel addresses. IPv6 needs an
 * MTU of at least 1280 (RFC 8200 section 5).
 */
static int conf_finish(struct agent_conf *conf, char *err, size_t errlen)
{
	bool has_v6 = false;
	for (size_t i = 0; i < conf->addresses.n; i++)
		has_v6 |= conf->addresses.items[i].addr.family == AF_INET6;
	if (has_v6 && conf->mtu < 1280) {
		snprintf(err, errlen, "wireguard.mtu: %lu is below 1280, the IPv6 minimum",
			 conf->mtu);
		return -EINVAL;
	}
	if (conf->peer_networks.n == 0) {
		conf->peer_networks = conf->addresses;
		for (size_t i = 0; i < conf->peer_networks.n; i++)
			ip_cidr_mask(&conf->peer_networks.items[i]);
	}
	return resolve_frontend(conf, err, errlen);
}

int agent_conf_load(const char *path, struct agent_conf *ret_conf, char *err, size_t errlen)
{
	memset(ret_conf, 0, sizeof(*ret_conf));
	int r = conf_load(path, agent_schema, AGENT_SCHEMA_LEN, ret_conf, err, errlen);
	if (r == 0)
		r = conf_finish(ret_conf, err, errlen);
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
