/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* conf_load_buffer() on arbitrary bytes, with a schema using every conf_type. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "fuzz.h"

struct fuzz_conf {
	unsigned long workers;
	char *name;
	char *http_address;
	unsigned long http_timeout;
	bool http_tls;
	unsigned long http_max_body;
	struct ip_cidr wg_pool;
	char *log_level;
	char *dotted;
};

static int parse_pool(const char *value, void *field, char *err, size_t errlen)
{
	if (ip_cidr_parse(value, IP_CIDR_ALLOW_BARE, field) < 0) {
		snprintf(err, errlen, "not a CIDR");
		return -EINVAL;
	}
	return 0;
}

/* Allocates, so conf_free must call its free (conf_string_free): leaks show up under LSan. */
static int parse_level(const char *value, void *field, char *err, size_t errlen)
{
	if (strcmp(value, "error") != 0 && strcmp(value, "info") != 0 &&
	    strcmp(value, "debug") != 0) {
		snprintf(err, errlen, "bad level");
		return -EINVAL;
	}
	return conf_string_set(field, value);
}

#define F(member) .offset = offsetof(struct fuzz_conf, member)

static const struct conf_entry schema[] = {
	{"", "workers", CONF_UINT, F(workers), .def = "4", .min = 1, .max = 64},
	{"", "name", CONF_STRING, F(name)},
	{"http", "address", CONF_STRING, F(http_address), .def = "127.0.0.1:13000"},
	{"http", "timeout", CONF_UINT, F(http_timeout), .def = "30", .min = 1, .max = 3600},
	{"http", "tls", CONF_BOOL, F(http_tls), .def = "no"},
	{"http", "max_body", CONF_UINT, F(http_max_body), .min = 0, .max = (unsigned long)-1},
	{"wg", "pool", CONF_CUSTOM, F(wg_pool), .def = "10.8.0.0/24", .parse = parse_pool},
	{"log", "level", CONF_CUSTOM, F(log_level), .def = "info", .parse = parse_level,
	 .free = conf_string_free},
	{"x.y-z", "a-b.c", CONF_STRING, F(dotted)},
};

#define SCHEMA_LEN (sizeof(schema) / sizeof(schema[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_conf conf;
	char err[256];
	int r;

	memset(&conf, 0, sizeof(conf));
	r = conf_load_buffer("fuzz", (const char *)data, size, schema, SCHEMA_LEN, &conf, err,
			     sizeof(err));
	/* Every error names the input and a line; every success obeys the schema. */
	if (r < 0 && (r != -EINVAL || strncmp(err, "fuzz:", 5) != 0))
		abort();
	if (r == 0 &&
	    (conf.workers < 1 || conf.workers > 64 || conf.http_timeout < 1 ||
	     conf.http_timeout > 3600 || conf.http_address == NULL || conf.log_level == NULL))
		abort();
	conf_free(schema, SCHEMA_LEN, &conf);
	if (conf.name != NULL || conf.http_address != NULL || conf.log_level != NULL ||
	    conf.dotted != NULL)
		abort();
	return 0;
}
