/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "check_run.h"
#include "conf.h"

struct tconf {
	unsigned long workers;
	char *name;
	char *http_address;
	unsigned long http_timeout;
	bool http_tls;
	unsigned long http_max_body;
	char *agent_socket;
	unsigned long wg_port;
	struct ip_cidr wg_pool;
	char *log_level;
	char *dotted;
};

static int parse_pool(const char *value, void *field, char *err, size_t errlen)
{
	if (ip_cidr_parse(value, 0, field) < 0) {
		snprintf(err, errlen, "not a network in CIDR notation");
		return -EINVAL;
	}
	return 0;
}

static int parse_level(const char *value, void *field, char *err, size_t errlen)
{
	static const char *const levels[] = {"error", "warning", "info", "debug"};
	for (size_t i = 0; i < ARRAY_LEN(levels); i++)
		if (strcmp(value, levels[i]) == 0)
			return conf_string_set(field, value);
	snprintf(err, errlen, "must be one of error, warning, info, debug");
	return -EINVAL;
}

#define F(member) .offset = offsetof(struct tconf, member)

static const struct conf_entry schema[] = {
	{"", "workers", CONF_UINT, F(workers), .def = "4", .min = 1, .max = 64},
	{"", "name", CONF_STRING, F(name)},
	{"http", "address", CONF_STRING, F(http_address), .def = "127.0.0.1:13000"},
	{"http", "timeout", CONF_UINT, F(http_timeout), .def = "30", .min = 1, .max = 3600},
	{"http", "tls", CONF_BOOL, F(http_tls), .def = "no"},
	{"http", "max_body", CONF_UINT, F(http_max_body), .min = 0, .max = ULONG_MAX},
	{"agent", "socket", CONF_STRING, F(agent_socket), .def = "/run/wiregui/agent.sock"},
	{"wg", "listen-port", CONF_UINT, F(wg_port), .def = "51820", .min = 1, .max = 65535,
	 .env = "WIREGUI_WG_PORT"},
	{"wg", "pool", CONF_CUSTOM, F(wg_pool), .def = "10.8.0.0/24", .parse = parse_pool},
	{"log", "level", CONF_CUSTOM, F(log_level), .def = "info", .parse = parse_level,
	 .free = conf_string_free},
	{"x.y-z", "a-b.c", CONF_STRING, F(dotted)},
};

/* Every variable the schema listens to, cleared around each test. */
static const char *const env_names[] = {
	"WIREGUI_WORKERS",	"WIREGUI_NAME",		"WIREGUI_HTTP_ADDRESS",
	"WIREGUI_HTTP_TIMEOUT", "WIREGUI_HTTP_TLS",	"WIREGUI_HTTP_MAX_BODY",
	"WIREGUI_AGENT_SOCKET", "WIREGUI_WG_PORT",	"WIREGUI_WG_LISTEN_PORT",
	"WIREGUI_WG_POOL",	"WIREGUI_LOG_LEVEL",	"WIREGUI_X_Y_Z_A_B_C",
	"wiregui_http_address", "WIREGUI_HTTP_address",
};

static void clear_env(void)
{
	for (size_t i = 0; i < ARRAY_LEN(env_names); i++)
		unsetenv(env_names[i]);
}

static void label_of(const struct conf_entry *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", e->section, e->section[0] != '\0' ? "." : "", e->key);
}

static const char *string_field(const void *field)
{
	const char *str = *(char *const *)field;

	return str != NULL ? str : "(null)";
}

/* "section.key=value" as text, whatever the field's type. */
static void render(const struct tconf *c, const struct conf_entry *e, char *buf, size_t len)
{
	const void *field = (const char *)c + e->offset;
	char label[128], value[IP_CIDR_STRLEN + 64];

	label_of(e, label, sizeof(label));
	switch (e->type) {
	case CONF_STRING:
		snprintf(value, sizeof(value), "%s", string_field(field));
		break;
	case CONF_UINT:
		snprintf(value, sizeof(value), "%lu", *(const unsigned long *)field);
		break;
	case CONF_BOOL:
		snprintf(value, sizeof(value), "%s", *(const bool *)field ? "true" : "false");
		break;
	case CONF_CUSTOM:
		if (e->parse == parse_pool)
			ck_assert_int_eq(ip_cidr_format(field, value, sizeof(value)), 0);
		else
			snprintf(value, sizeof(value), "%s", string_field(field));
		break;
	}
	snprintf(buf, len, "%s=%s", label, value);
}

/* expect is "label=value"; the field with that label must render to it. */
static void assert_field(const struct tconf *c, const char *expect)
{
	char label[128], got[512];
	size_t n = strcspn(expect, "=");

	for (size_t i = 0; i < ARRAY_LEN(schema); i++) {
		label_of(&schema[i], label, sizeof(label));
		if (strlen(label) != n || strncmp(label, expect, n) != 0)
			continue;
		render(c, &schema[i], got, sizeof(got));
		ck_assert_str_eq(got, expect);
		return;
	}
	ck_abort_msg("no field for '%s'", expect);
}

static int load_buffer(const char *text, size_t len, struct tconf *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	return conf_load_buffer("t.conf", text, len, schema, ARRAY_LEN(schema), c, err, errlen);
}

static const struct good_case {
	const char *text;
	const char *expect[4];
} good_cases[] = {
	{"", {"workers=4", "http.address=127.0.0.1:13000", "http.timeout=30", "http.tls=false"}},
	{"",
	 {"agent.socket=/run/wiregui/agent.sock", "wg.listen-port=51820", "wg.pool=10.8.0.0/24",
	  "log.level=info"}},
	{"", {"name=(null)", "http.max_body=0", "x.y-z.a-b.c=(null)"}},
	{"# only comments\n; another\n\n   \n\t\n   # indented\n", {"workers=4", "name=(null)"}},
	{"workers = 8\n", {"workers=8"}},
	{"workers=8", {"workers=8"}},
	{"\tworkers\t=\t8\t\n", {"workers=8"}},
	{"workers = 64\n", {"workers=64"}},
	{"workers = 1\n", {"workers=1"}},
	{"[http]\naddress = 0.0.0.0:80\ntimeout = 3600\ntls = yes\n",
	 {"http.address=0.0.0.0:80", "http.timeout=3600", "http.tls=true", "workers=4"}},
	{"[ http ]\ntimeout = 1\n", {"http.timeout=1"}},
	{"[\thttp\t]\ntimeout = 2\n", {"http.timeout=2"}},
	{"  [http]  \n  timeout = 3  \n", {"http.timeout=3"}},
	{"[http]\r\naddress = a\r\ntimeout = 4\r\n", {"http.address=a", "http.timeout=4"}},
	{"[http]\ntimeout = 7", {"http.timeout=7"}},
	{"[http]\ntls = true\n", {"http.tls=true"}},
	{"[http]\ntls = TRUE\n", {"http.tls=true"}},
	{"[http]\ntls = On\n", {"http.tls=true"}},
	{"[http]\ntls = 1\n", {"http.tls=true"}},
	{"[http]\ntls = yEs\n", {"http.tls=true"}},
	{"[http]\ntls = false\n", {"http.tls=false"}},
	{"[http]\ntls = off\n", {"http.tls=false"}},
	{"[http]\ntls = No\n", {"http.tls=false"}},
	{"[http]\ntls = 0\n", {"http.tls=false"}},
	{"[http]\ntls = \"yes\"\n", {"http.tls=true"}},
	{"[http]\nmax_body = 0\n", {"http.max_body=0"}},
	{"[http]\nmax_body = 1048576\n", {"http.max_body=1048576"}},
	{"name = \"  spaced  \"\n", {"name=  spaced  "}},
	{"name = \"a\\\"b\"\n", {"name=a\"b"}},
	{"name = \"a\\\\b\"\n", {"name=a\\b"}},
	{"name = \"a\\\\\"\n", {"name=a\\"}},
	{"name = \"\"\n", {"name="}},
	{"name = \"\"   \n", {"name="}},
	{"name =\n", {"name="}},
	{"name=", {"name="}},
	{"name = \"#not a comment\"\n", {"name=#not a comment"}},
	{"name = \"=;#[]\"\n", {"name==;#[]"}},
	{"name = x # not a comment\n", {"name=x # not a comment"}},
	{"name = a \"b\" c\n", {"name=a \"b\" c"}},
	{"name = C:\\path\\n\n", {"name=C:\\path\\n"}},
	{"name = a=b=c\n", {"name=a=b=c"}},
	{"name = a\tb\n", {"name=a\tb"}},
	{"name = \"h\xc3\xa9llo w\xc3\xb6rld\"\n", {"name=h\xc3\xa9llo w\xc3\xb6rld"}},
	{"name = postgresql://u:p@h/db?sslmode=require\n",
	 {"name=postgresql://u:p@h/db?sslmode=require"}},
	{"[http]\naddress = a\n[agent]\nsocket = /s\n[http]\ntimeout = 9\n",
	 {"http.address=a", "agent.socket=/s", "http.timeout=9"}},
	{"name = top\n[agent]\nsocket = /tmp/a.sock\n", {"name=top", "agent.socket=/tmp/a.sock"}},
	{"[wg]\npool = 10.9.0.0/16\nlisten-port = 1\n",
	 {"wg.pool=10.9.0.0/16", "wg.listen-port=1"}},
	{"[wg]\npool = fd00::3:2:0/120\nlisten-port = 65535\n",
	 {"wg.pool=fd00::3:2:0/120", "wg.listen-port=65535"}},
	{"[log]\nlevel = debug\n", {"log.level=debug"}},
	{"[log]\nlevel = \"error\"\n", {"log.level=error"}},
	{"[x.y-z]\na-b.c = v\n", {"x.y-z.a-b.c=v"}},
};

START_TEST(test_good)
{
	const struct good_case *c = &good_cases[_i];
	struct tconf conf;
	char err[256];

	int r = load_buffer(c->text, strlen(c->text), &conf, err, sizeof(err));
	ck_assert_msg(r == 0, "case %d: %d %s", _i, r, err);
	ck_assert_str_eq(err, "");
	for (size_t i = 0; i < ARRAY_LEN(c->expect) && c->expect[i] != NULL; i++)
		assert_field(&conf, c->expect[i]);
	conf_free(schema, ARRAY_LEN(schema), &conf);
}
END_TEST

#define UINT_MSG(key, lo, hi) key ": must be an integer between " #lo " and " #hi
#define BOOL_MSG "tls: must be one of true, false, yes, no, on, off, 1, 0"

static const struct bad_case {
	const char *text;
	size_t len; /* 0: strlen(text) */
	const char *err;
} bad_cases[] = {
	{"[agent]\nsockt = /x\n", 0, "t.conf:2: unknown key 'sockt' in section [agent]"},
	{"timeout = 5\n", 0, "t.conf:1: unknown key 'timeout'"},
	{"[http]\nworkers = 5\n", 0, "t.conf:2: unknown key 'workers' in section [http]"},
	{"a=b = c\n", 0, "t.conf:1: unknown key 'a'"},
	{"[nope]\n", 0, "t.conf:1: unknown section [nope]"},
	{"[http]\n\n[a.b]\n", 0, "t.conf:3: unknown section [a.b]"},
	{"[HTTP]\n", 0, "t.conf:1: invalid section name (allowed: a-z 0-9 _ . -)"},
	{"[ht tp]\n", 0, "t.conf:1: invalid section name (allowed: a-z 0-9 _ . -)"},
	{"[http]]\n", 0, "t.conf:1: invalid section name (allowed: a-z 0-9 _ . -)"},
	{"[[http]]\n", 0, "t.conf:1: invalid section name (allowed: a-z 0-9 _ . -)"},
	{"[]\n", 0, "t.conf:1: empty section name"},
	{"[ \t ]\n", 0, "t.conf:1: empty section name"},
	{"[http\n", 0, "t.conf:1: expected ']' at the end of the section header"},
	{"[\n", 0, "t.conf:1: expected ']' at the end of the section header"},
	{"[http] # c\n", 0, "t.conf:1: expected ']' at the end of the section header"},
	{"[http] x\n", 0, "t.conf:1: expected ']' at the end of the section header"},
	{"]\n", 0, "t.conf:1: expected 'key = value'"},
	{"[http]\ntimeout = 0\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = 3601\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = -1\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = +5\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = 0x10\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = 030\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = 1e3\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = 3 0\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = 30s\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout =\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = \"\"\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = \" 30\"\n", 0, "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"[http]\ntimeout = 99999999999999999999999999\n", 0,
	 "t.conf:2: " UINT_MSG("timeout", 1, 3600)},
	{"workers = 0\n", 0, "t.conf:1: " UINT_MSG("workers", 1, 64)},
	{"workers = 65\n", 0, "t.conf:1: " UINT_MSG("workers", 1, 64)},
	{"[wg]\nlisten-port = 65536\n", 0, "t.conf:2: " UINT_MSG("listen-port", 1, 65535)},
	{"[http]\ntls = maybe\n", 0, "t.conf:2: " BOOL_MSG},
	{"[http]\ntls =\n", 0, "t.conf:2: " BOOL_MSG},
	{"[http]\ntls = y\n", 0, "t.conf:2: " BOOL_MSG},
	{"[http]\ntls = 2\n", 0, "t.conf:2: " BOOL_MSG},
	{"[http]\ntls = truex\n", 0, "t.conf:2: " BOOL_MSG},
	{"[http]\ntls = \"yes \"\n", 0, "t.conf:2: " BOOL_MSG},
	{"[http]\ntls = enabled\n", 0, "t.conf:2: " BOOL_MSG},
	{"name\n", 0, "t.conf:1: expected 'key = value'"},
	{"name \"=\"\n", 0, "t.conf:1: invalid key name (allowed: a-z 0-9 _ . -)"},
	{"workers 8\n", 0, "t.conf:1: expected 'key = value'"},
	{"= x\n", 0, "t.conf:1: empty key"},
	{"  \t= x\n", 0, "t.conf:1: empty key"},
	{"=\n", 0, "t.conf:1: empty key"},
	{"Name = x\n", 0, "t.conf:1: invalid key name (allowed: a-z 0-9 _ . -)"},
	{"my name = x\n", 0, "t.conf:1: invalid key name (allowed: a-z 0-9 _ . -)"},
	{"na\xc3\xafve = x\n", 0, "t.conf:1: invalid key name (allowed: a-z 0-9 _ . -)"},
	{"\"name\" = x\n", 0, "t.conf:1: invalid key name (allowed: a-z 0-9 _ . -)"},
	{"name = a\nname = b\n", 0, "t.conf:2: duplicate key 'name' (first set on line 1)"},
	{"name = a\n\n# c\nname = a\n", 0, "t.conf:4: duplicate key 'name' (first set on line 1)"},
	{"[http]\naddress = a\n[agent]\nsocket = s\n[http]\naddress = b\n", 0,
	 "t.conf:6: duplicate key 'address' in section [http] (first set on line 2)"},
	{"name = \"abc\n", 0, "t.conf:1: name: unterminated quoted value"},
	{"name = \"abc\\\"\n", 0, "t.conf:1: name: unterminated quoted value"},
	{"name = \"abc\\\n", 0, "t.conf:1: name: unterminated quoted value"},
	{"name = \"\n", 0, "t.conf:1: name: unterminated quoted value"},
	{"name = \"a\\nb\"\n", 0, "t.conf:1: name: unknown escape (only \\\" and \\\\)"},
	{"name = \"a\\tb\"\n", 0, "t.conf:1: name: unknown escape (only \\\" and \\\\)"},
	{"name = \"abc\" def\n", 0, "t.conf:1: name: text after the closing quote"},
	{"name = \"a\"\"b\"\n", 0, "t.conf:1: name: text after the closing quote"},
	{"name = \"abc\" # comment\n", 0, "t.conf:1: name: text after the closing quote"},
	{"[wg]\npool = 10.0.0.1/24\n", 0, "t.conf:2: pool: not a network in CIDR notation"},
	{"[wg]\npool =\n", 0, "t.conf:2: pool: not a network in CIDR notation"},
	{"[log]\nlevel = loud\n", 0, "t.conf:2: level: must be one of error, warning, info, debug"},
	{"name = a\0b\n", 10, "t.conf:1: NUL byte in line"},
	{"# ok\n[http]\n\0", 13, "t.conf:3: NUL byte in line"},
	{"# ok\n\n# c\0 still a comment\n", 26, "t.conf:3: NUL byte in line"},
	{"# c\r\n\r\n; c\r\n[http]\r\n\r\n  # indented\r\nbogus\r\n", 0,
	 "t.conf:7: expected 'key = value'"},
	{"\n\n\n\n\n\n\n\n\n\n\n\n[agent]\nsockt = x", 0,
	 "t.conf:14: unknown key 'sockt' in section [agent]"},
	/* Strings already set must still be released by conf_free (LSan checks). */
	{"name = x\n[http]\naddress = y\n[log]\nlevel = debug\n[bad", 0,
	 "t.conf:6: expected ']' at the end of the section header"},
};

START_TEST(test_bad)
{
	const struct bad_case *c = &bad_cases[_i];
	size_t len = c->len != 0 ? c->len : strlen(c->text);
	struct tconf conf;
	char err[256];

	int r = load_buffer(c->text, len, &conf, err, sizeof(err));
	ck_assert_msg(r == -EINVAL, "case %d accepted (%d)", _i, r);
	ck_assert_str_eq(err, c->err);
	conf_free(schema, ARRAY_LEN(schema), &conf);
}
END_TEST

/* Lines of exactly 4096 bytes are fine, 4097 is not (the '\n' does not count). */
static const struct long_case {
	size_t line_len;
	const char *eol;
	int want;
} long_cases[] = {
	{4095, "\n", 0},	 {4096, "\n", 0},     {4096, "", 0},
	{4097, "\n", -EINVAL},	 {4097, "", -EINVAL}, {4096, "\r\n", -EINVAL},
	{100000, "\n", -EINVAL},
};

START_TEST(test_long_line)
{
	const struct long_case *c = &long_cases[_i];
	static const char head[] = "# first\nname = ";
	size_t value_len = c->line_len - strlen("name = ");
	size_t len = strlen(head) + value_len + strlen(c->eol);
	char *text = malloc(len);
	struct tconf conf;
	char err[256];

	ck_assert_ptr_nonnull(text);
	memcpy(text, head, strlen(head));
	memset(text + strlen(head), 'x', value_len);
	memcpy(text + strlen(head) + value_len, c->eol, strlen(c->eol));
	int r = load_buffer(text, len, &conf, err, sizeof(err));
	ck_assert_int_eq(r, c->want);
	if (r == 0)
		ck_assert_uint_eq(strlen(conf.name), value_len);
	else
		ck_assert_str_eq(err, "t.conf:2: line longer than 4096 bytes");
	conf_free(schema, ARRAY_LEN(schema), &conf);
	free(text);
}
END_TEST

START_TEST(test_uint_full_range)
{
	char text[128], want[128];
	struct tconf conf;
	char err[256];

	snprintf(text, sizeof(text), "[http]\nmax_body = %lu\n", ULONG_MAX);
	ck_assert_int_eq(load_buffer(text, strlen(text), &conf, err, sizeof(err)), 0);
	ck_assert(conf.http_max_body == ULONG_MAX);
	conf_free(schema, ARRAY_LEN(schema), &conf);

	/* One more than ULONG_MAX: "...615" becomes "...616". */
	snprintf(text, sizeof(text), "[http]\nmax_body = %lu\n", ULONG_MAX);
	text[strlen(text) - 2]++;
	ck_assert_int_eq(load_buffer(text, strlen(text), &conf, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "t.conf:2: max_body: must be an integer between 0 and %lu",
		 ULONG_MAX);
	ck_assert_str_eq(err, want);
	conf_free(schema, ARRAY_LEN(schema), &conf);
}
END_TEST

START_TEST(test_empty_buffer)
{
	struct tconf conf;
	char err[64];

	ck_assert_int_eq(load_buffer(NULL, 0, &conf, err, sizeof(err)), 0);
	ck_assert_uint_eq(conf.http_timeout, 30);
	ck_assert_str_eq(conf.http_address, "127.0.0.1:13000");
	conf_free(schema, ARRAY_LEN(schema), &conf);
}
END_TEST

/* The message is cut to errlen; a NULL err is allowed. */
START_TEST(test_err_buffer)
{
	const char *text = "[nope]\n";
	struct tconf conf;
	char err[10];

	memset(err, 'z', sizeof(err));
	ck_assert_int_eq(load_buffer(text, strlen(text), &conf, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "t.conf:1:");
	conf_free(schema, ARRAY_LEN(schema), &conf);

	ck_assert_int_eq(load_buffer(text, strlen(text), &conf, NULL, 0), -EINVAL);
	conf_free(schema, ARRAY_LEN(schema), &conf);

	err[0] = 'z';
	ck_assert_int_eq(load_buffer(text, strlen(text), &conf, err, 1), -EINVAL);
	ck_assert_int_eq(err[0], '\0');
	conf_free(schema, ARRAY_LEN(schema), &conf);
}
END_TEST

START_TEST(test_free)
{
	const char *text = "name = n\n[x.y-z]\na-b.c = d\n[log]\nlevel = warning\n";
	struct tconf conf;
	char err[64];

	ck_assert_int_eq(load_buffer(text, strlen(text), &conf, err, sizeof(err)), 0);
	ck_assert_str_eq(conf.dotted, "d");
	conf_free(schema, ARRAY_LEN(schema), &conf);
	ck_assert_ptr_null(conf.name);
	ck_assert_ptr_null(conf.http_address);
	ck_assert_ptr_null(conf.agent_socket);
	ck_assert_ptr_null(conf.log_level);
	ck_assert_ptr_null(conf.dotted);
	/* Twice, and with nothing to free. */
	conf_free(schema, ARRAY_LEN(schema), &conf);
	conf_free(schema, ARRAY_LEN(schema), NULL);
	conf_free(NULL, 0, &conf);
}
END_TEST

/* A default that does not parse is a schema bug, reported as such. */
START_TEST(test_bad_default)
{
	static const struct conf_entry bad_schema[] = {
		{"http", "timeout", CONF_UINT, F(http_timeout), .def = "0", .min = 1, .max = 9},
	};
	static const struct conf_entry bad_top[] = {
		{"", "tls", CONF_BOOL, F(http_tls), .def = "perhaps"},
	};
	struct tconf conf = {0};
	char err[128];

	ck_assert_int_eq(conf_load_buffer("t.conf", "", 0, bad_schema, 1, &conf, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "default of http.timeout: must be an integer between 1 and 9");
	ck_assert_int_eq(conf_load(NULL, bad_top, 1, &conf, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "default of tls: must be one of true, false, yes, no, on, off, 1, 0");
}
END_TEST

static int parse_silent(const char *value, void *field, char *err, size_t errlen)
{
	(void)value, (void)field, (void)err, (void)errlen;
	return -EINVAL;
}

static int parse_nomem(const char *value, void *field, char *err, size_t errlen)
{
	(void)value, (void)field, (void)err, (void)errlen;
	return -ENOMEM;
}

/* Custom parsers that say nothing, and schema mistakes, still give a message. */
static const struct schema_case {
	struct conf_entry entry;
	int want;
	const char *err;
} schema_cases[] = {
	{{"", "k", CONF_CUSTOM, F(name), .parse = parse_silent},
	 -EINVAL,
	 "t.conf:1: k: invalid value"},
	{{"", "k", CONF_CUSTOM, F(name), .parse = parse_nomem},
	 -ENOMEM,
	 "t.conf:1: k: out of memory"},
	{{"", "k", CONF_CUSTOM, F(name)}, -EINVAL, "t.conf:1: k: no parser in the schema"},
	{{"", "k", (enum conf_type)42, F(name)}, -EINVAL, "t.conf:1: k: unknown type in the schema"},
	{{NULL, "k", CONF_STRING, F(name)}, 0, ""}, /* NULL section is the top level */
};

START_TEST(test_schema_errors)
{
	const struct schema_case *c = &schema_cases[_i];
	struct tconf conf = {0};
	char err[128];

	int r = conf_load_buffer("t.conf", "k = v\n", 6, &c->entry, 1, &conf, err, sizeof(err));
	ck_assert_int_eq(r, c->want);
	ck_assert_str_eq(err, c->err);
	if (r == 0)
		ck_assert_str_eq(conf.name, "v");
	free(conf.name);
}
END_TEST

/* ---- files and the environment ---- */

static char tmp_path[64];

static void setup_env(void)
{
	clear_env();
	tmp_path[0] = '\0';
}

static void teardown_env(void)
{
	clear_env();
	if (tmp_path[0] != '\0')
		unlink(tmp_path);
}

static const char *write_tmp(const char *text, size_t len)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/wiregui-test-conf-XXXXXX");
	int fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	while (len > 0) {
		ssize_t n = write(fd, text, len);
		ck_assert_int_gt(n, 0);
		text += n;
		len -= (size_t)n;
	}
	ck_assert_int_eq(close(fd), 0);
	return tmp_path;
}

#define ENV_UINT_MSG "must be an integer between "
#define ENV_BOOL_MSG "must be one of true, false, yes, no, on, off, 1, 0"

/*
 * want: "label=value" on success; "!message" for an error, where a leading
 * '@' in the message stands for the temporary file's path.
 */
static const struct env_case {
	const char *file; /* NULL: conf_load(NULL, ...) */
	const char *var, *value;
	const char *var2, *value2;
	const char *want;
} env_cases[] = {
	{"[http]\naddress = 1.2.3.4:80\n", "WIREGUI_HTTP_ADDRESS", "[::1]:8080", NULL, NULL,
	 "http.address=[::1]:8080"},
	{NULL, "WIREGUI_HTTP_ADDRESS", "[::1]:8080", NULL, NULL, "http.address=[::1]:8080"},
	{"[http]\naddress = 1.2.3.4:80\n", NULL, NULL, NULL, NULL, "http.address=1.2.3.4:80"},
	{NULL, NULL, NULL, NULL, NULL, "http.address=127.0.0.1:13000"},
	{"[http]\ntimeout = 5\n", "WIREGUI_HTTP_TIMEOUT", "60", NULL, NULL, "http.timeout=60"},
	{"[http]\ntimeout = 5\n", "WIREGUI_HTTP_TIMEOUT", "0", NULL, NULL,
	 "!environment WIREGUI_HTTP_TIMEOUT: " ENV_UINT_MSG "1 and 3600"},
	{NULL, "WIREGUI_HTTP_TIMEOUT", " 30", NULL, NULL,
	 "!environment WIREGUI_HTTP_TIMEOUT: " ENV_UINT_MSG "1 and 3600"},
	{NULL, "WIREGUI_HTTP_TIMEOUT", "", NULL, NULL,
	 "!environment WIREGUI_HTTP_TIMEOUT: " ENV_UINT_MSG "1 and 3600"},
	{NULL, "WIREGUI_HTTP_TLS", "on", NULL, NULL, "http.tls=true"},
	{NULL, "WIREGUI_HTTP_TLS", "maybe", NULL, NULL,
	 "!environment WIREGUI_HTTP_TLS: " ENV_BOOL_MSG},
	{NULL, "WIREGUI_WORKERS", "8", NULL, NULL, "workers=8"},
	{"workers = 2\n", "WIREGUI_WORKERS", "9", NULL, NULL, "workers=9"},
	{NULL, "WIREGUI_NAME", "", NULL, NULL, "name="},
	{NULL, "WIREGUI_NAME", "  kept as is  ", NULL, NULL, "name=  kept as is  "},
	{NULL, "WIREGUI_NAME", "\"not unquoted\"", NULL, NULL, "name=\"not unquoted\""},
	/* The entry's own name, the derived one, and both (the entry's wins). */
	{"[wg]\nlisten-port = 1000\n", "WIREGUI_WG_PORT", "1234", NULL, NULL,
	 "wg.listen-port=1234"},
	{"[wg]\nlisten-port = 1000\n", "WIREGUI_WG_LISTEN_PORT", "2222", NULL, NULL,
	 "wg.listen-port=2222"},
	{NULL, "WIREGUI_WG_PORT", "1234", "WIREGUI_WG_LISTEN_PORT", "2222", "wg.listen-port=1234"},
	{NULL, "WIREGUI_WG_LISTEN_PORT", "2222", "WIREGUI_WG_PORT", "1234", "wg.listen-port=1234"},
	{NULL, "WIREGUI_WG_PORT", "70000", NULL, NULL,
	 "!environment WIREGUI_WG_PORT: " ENV_UINT_MSG "1 and 65535"},
	{NULL, "WIREGUI_WG_LISTEN_PORT", "0", NULL, NULL,
	 "!environment WIREGUI_WG_LISTEN_PORT: " ENV_UINT_MSG "1 and 65535"},
	{NULL, "WIREGUI_X_Y_Z_A_B_C", "dots", NULL, NULL, "x.y-z.a-b.c=dots"},
	{NULL, "WIREGUI_WG_POOL", "fd00::/64", NULL, NULL, "wg.pool=fd00::/64"},
	{NULL, "WIREGUI_WG_POOL", "10.0.0.1/24", NULL, NULL,
	 "!environment WIREGUI_WG_POOL: not a network in CIDR notation"},
	{"[log]\nlevel = debug\n", "WIREGUI_LOG_LEVEL", "error", NULL, NULL, "log.level=error"},
	{NULL, "WIREGUI_LOG_LEVEL", "loud", NULL, NULL,
	 "!environment WIREGUI_LOG_LEVEL: must be one of error, warning, info, debug"},
	/* Names are exact: no lower-case or mixed-case variants. */
	{NULL, "wiregui_http_address", "x", "WIREGUI_HTTP_address", "y",
	 "http.address=127.0.0.1:13000"},
	/* A file error is reported before the environment is looked at. */
	{"[http]\ntimeout = 0\n", "WIREGUI_HTTP_TIMEOUT", "5", NULL, NULL,
	 "!@:2: timeout: " ENV_UINT_MSG "1 and 3600"},
};

START_TEST(test_env)
{
	const struct env_case *c = &env_cases[_i];
	const char *path = c->file != NULL ? write_tmp(c->file, strlen(c->file)) : NULL;
	struct tconf conf = {0};
	char err[256], want[256];

	if (c->var != NULL)
		ck_assert_int_eq(setenv(c->var, c->value, 1), 0);
	if (c->var2 != NULL)
		ck_assert_int_eq(setenv(c->var2, c->value2, 1), 0);
	int r = conf_load(path, schema, ARRAY_LEN(schema), &conf, err, sizeof(err));
	if (c->want[0] != '!') {
		ck_assert_msg(r == 0, "case %d: %d %s", _i, r, err);
		assert_field(&conf, c->want);
	} else {
		ck_assert_int_eq(r, -EINVAL);
		if (c->want[1] == '@')
			snprintf(want, sizeof(want), "%s%s", path, c->want + 2);
		else
			snprintf(want, sizeof(want), "%s", c->want + 1);
		ck_assert_str_eq(err, want);
	}
	conf_free(schema, ARRAY_LEN(schema), &conf);
}
END_TEST

START_TEST(test_buffer_ignores_env)
{
	struct tconf conf;
	char err[64];

	ck_assert_int_eq(setenv("WIREGUI_HTTP_TIMEOUT", "99", 1), 0);
	ck_assert_int_eq(setenv("WIREGUI_NAME", "env", 1), 0);
	ck_assert_int_eq(load_buffer("", 0, &conf, err, sizeof(err)), 0);
	ck_assert_uint_eq(conf.http_timeout, 30);
	ck_assert_ptr_null(conf.name);
	conf_free(schema, ARRAY_LEN(schema), &conf);
}
END_TEST

/* Every layer replaces the previous value: default, file, environment (LSan checks frees). */
START_TEST(test_layers_replace)
{
	const char *text = "name = file\n[http]\naddress = file\n[log]\nlevel = debug\n";
	const char *path = write_tmp(text, strlen(text));
	struct tconf conf = {0};
	char err[256];

	ck_assert_int_eq(setenv("WIREGUI_NAME", "env", 1), 0);
	ck_assert_int_eq(setenv("WIREGUI_HTTP_ADDRESS", "env", 1), 0);
	ck_assert_int_eq(setenv("WIREGUI_LOG_LEVEL", "warning", 1), 0);
	ck_assert_int_eq(conf_load(path, schema, ARRAY_LEN(schema), &conf, err, sizeof(err)), 0);
	ck_assert_str_eq(conf.name, "env");
	ck_assert_str_eq(conf.http_address, "env");
	ck_assert_str_eq(conf.log_level, "warning");
	ck_assert_str_eq(conf.agent_socket, "/run/wiregui/agent.sock");
	conf_free(schema, ARRAY_LEN(schema), &conf);
}
END_TEST

START_TEST(test_file_errors)
{
	struct tconf conf = {0};
	char err[256], want[256];

	ck_assert_int_eq(conf_load("/nonexistent-wiregui/x.conf", schema, ARRAY_LEN(schema), &conf,
				   err, sizeof(err)),
			 -ENOENT);
	ck_assert_str_eq(err, "/nonexistent-wiregui/x.conf: No such file or directory");
	conf_free(schema, ARRAY_LEN(schema), &conf);

	ck_assert_int_eq(conf_load("/", schema, ARRAY_LEN(schema), &conf, err, sizeof(err)),
			 -EISDIR);
	ck_assert_str_eq(err, "/: Is a directory");
	conf_free(schema, ARRAY_LEN(schema), &conf);

	const char *text = "# agent\n[agent]\n\nsockt = /run/x\n";
	const char *path = write_tmp(text, strlen(text));
	ck_assert_int_eq(conf_load(path, schema, ARRAY_LEN(schema), &conf, err, sizeof(err)),
			 -EINVAL);
	snprintf(want, sizeof(want), "%s:4: unknown key 'sockt' in section [agent]", path);
	ck_assert_str_eq(err, want);
	conf_free(schema, ARRAY_LEN(schema), &conf);
}
END_TEST

/* Files are read whole, up to 1 MiB; larger ones are refused. */
START_TEST(test_file_size)
{
	const size_t sizes[] = {0, 1, 4095, 4096, 4097, 65536 + 3, 1024 * 1024, 1024 * 1024 + 1};
	struct tconf conf = {0};
	char err[256], want[256];

	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		/* Comment lines of 63 bytes + '\n'. */
		char *text = malloc(sizes[i] + 1);
		ck_assert_ptr_nonnull(text);
		for (size_t j = 0; j < sizes[i]; j++)
			text[j] = (j % 64 == 63) ? '\n' : (j % 64 == 0 ? '#' : 'c');
		const char *path = write_tmp(text, sizes[i]);
		int r = conf_load(path, schema, ARRAY_LEN(schema), &conf, err, sizeof(err));
		if (sizes[i] <= 1024 * 1024) {
			ck_assert_msg(r == 0, "size %zu: %s", sizes[i], err);
		} else {
			ck_assert_int_eq(r, -EFBIG);
			snprintf(want, sizeof(want), "%s: File too large", path);
			ck_assert_str_eq(err, want);
		}
		conf_free(schema, ARRAY_LEN(schema), &conf);
		unlink(path);
		tmp_path[0] = '\0';
		free(text);
	}
}
END_TEST

static const struct {
	const char *text;
	int ret;
	enum log_level level;
} log_level_cases[] = {
	{"error", 0, LOG_LVL_ERR},   {"warning", 0, LOG_LVL_WARN},
	{"warn", 0, LOG_LVL_WARN},   {"INFO", 0, LOG_LVL_INFO},
	{"debug", 0, LOG_LVL_DEBUG}, {"loud", -EINVAL, LOG_LVL_INFO},
	{"", -EINVAL, LOG_LVL_INFO}, {"info ", -EINVAL, LOG_LVL_INFO},
};

START_TEST(test_parse_log_level)
{
	enum log_level level = LOG_LVL_INFO;
	char err[128] = "";
	int r = conf_parse_log_level(log_level_cases[_i].text, &level, err, sizeof(err));
	ck_assert_int_eq(r, log_level_cases[_i].ret);
	ck_assert_int_eq(level, log_level_cases[_i].level);
	if (r < 0)
		ck_assert_ptr_nonnull(strstr(err, "is not one of"));
}
END_TEST

START_TEST(test_string_helpers)
{
	char *field = NULL;
	ck_assert_int_eq(conf_string_set(&field, "one"), 0);
	ck_assert_int_eq(conf_string_set(&field, "two"), 0);
	ck_assert_str_eq(field, "two");
	conf_string_free(&field);
	ck_assert_ptr_null(field);
	conf_string_free(&field);
}
END_TEST

static Suite *conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("buffer");

	tcase_add_loop_test(tc, test_good, 0, (int)ARRAY_LEN(good_cases));
	tcase_add_loop_test(tc, test_bad, 0, (int)ARRAY_LEN(bad_cases));
	tcase_add_loop_test(tc, test_long_line, 0, (int)ARRAY_LEN(long_cases));
	tcase_add_test(tc, test_uint_full_range);
	tcase_add_test(tc, test_empty_buffer);
	tcase_add_test(tc, test_err_buffer);
	tcase_add_test(tc, test_free);
	tcase_add_test(tc, test_bad_default);
	tcase_add_loop_test(tc, test_parse_log_level, 0, (int)ARRAY_LEN(log_level_cases));
	tcase_add_test(tc, test_string_helpers);
	tcase_add_loop_test(tc, test_schema_errors, 0, (int)ARRAY_LEN(schema_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup_env, teardown_env);
	tcase_add_loop_test(tc, test_env, 0, (int)ARRAY_LEN(env_cases));
	tcase_add_test(tc, test_buffer_ignores_env);
	tcase_add_test(tc, test_layers_replace);
	tcase_add_test(tc, test_file_errors);
	tcase_add_test(tc, test_file_size);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(conf_suite());
}
