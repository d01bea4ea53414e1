/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONF_MAX_LINE 4096
/* A config file is a few hundred bytes; refuse to slurp anything absurd. */
#define CONF_MAX_FILE (1024 * 1024)
#define CONF_MSG_LEN 512
#define CONF_ENV_PREFIX "WIREGUI_"

/* Where the values come from and where messages go. */
struct conf_ctx {
	const struct conf_entry *schema;
	size_t n;
	void *target;
	char *err;
	size_t errlen;
};

struct conf_parser {
	const struct conf_ctx *ctx;
	const char *name;
	size_t lineno;
	size_t *set_on_line; /* per schema entry: line of this file that set it, 0 = none */
	char section[CONF_MAX_LINE + 1];
	char line[CONF_MAX_LINE + 1];
};

__attribute__((format(printf, 2, 3))) static int ctx_error(const struct conf_ctx *ctx,
							   const char *fmt, ...)
{
	if (ctx->err != NULL && ctx->errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ctx->err, ctx->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* "name:line: what", always -EINVAL. */
__attribute__((format(printf, 2, 3))) static int parser_error(const struct conf_parser *p,
							      const char *fmt, ...)
{
	char msg[CONF_MSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ctx_error(p->ctx, "%s:%zu: %s", p->name, p->lineno, msg);
}

static const char *entry_section(const struct conf_entry *e)
{
	return e->section != NULL ? e->section : "";
}

static void *entry_field(const struct conf_ctx *ctx, const struct conf_entry *e)
{
	return (char *)ctx->target + e->offset;
}

/* ---- values ---- */

int conf_string_set(void *field, const char *value)
{
	char **dst = field;
	char *copy = strdup(value);

	if (copy == NULL)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

void conf_string_free(void *field)
{
	char **dst = field;

	free(*dst);
	*dst = NULL;
}

int conf_parse_log_level(const char *value, void *field, char *err, size_t errlen)
{
	if (log_level_parse(value, field) < 0) {
		snprintf(err, errlen, "'%s' is not one of error, warning, info, debug", value);
		return -EINVAL;
	}
	return 0;
}

static int set_string(const struct conf_entry *e, void *field, const char *value, char *msg,
		      size_t msglen)
{
	(void)e;
	if (conf_string_set(field, value) < 0) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Decimal digits only: no sign, no spaces, and no leading zero, so "0600" is not read as 600. */
static bool parse_ulong(const char *s, unsigned long *ret)
{
	unsigned long v = 0;

	if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned long d = (unsigned long)(*s - '0');
		if (v > (ULONG_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*ret = v;
	return true;
}

static int set_uint(const struct conf_entry *e, void *field, const char *value, char *msg,
		    size_t msglen)
{
	unsigned long v;

	if (!parse_ulong(value, &v) || v < e->min || v > e->max) {
		snprintf(msg, msglen, "must be an integer between %lu and %lu", e->min, e->max);
		return -EINVAL;
	}
	*(unsigned long *)field = v;
	return 0;
}

static const struct {
	const char *word;
	bool value;
} bool_words[] = {
	{"true", true}, {"false", false}, {"yes", true}, {"no", false},
	{"on", true},	{"off", false},	  {"1", true},	 {"0", false},
};

/* ASCII only: strcasecmp() follows the locale. */
static bool ascii_case_equal(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
		if (ca != *b)
			return false;
	}
	return *a == *b;
}

static int set_bool(const struct conf_entry *e, void *field, const char *value, char *msg,
		    size_t msglen)
{
	(void)e;
	for (size_t i = 0; i < sizeof(bool_words) / sizeof(bool_words[0]); i++) {
		if (ascii_case_equal(value, bool_words[i].word)) {
			*(bool *)field = bool_words[i].value;
			return 0;
		}
	}
	snprintf(msg, msglen, "must be one of true, false, yes, no, on, off, 1, 0");
	return -EINVAL;
}

static int set_custom(const struct conf_entry *e, void *field, const char *value, char *msg,
		      size_t msglen)
{
	int r;

	if (e->parse == NULL) {
		snprintf(msg, msglen, "no parser in the schema");
		return -EINVAL;
	}
	msg[0] = '\0';
	r = e->parse(value, field, msg, msglen);
	if (r < 0 && msg[0] == '\0')
		snprintf(msg, msglen, "%s", r == -ENOMEM ? "out of memory" : "invalid value");
	return r < 0 ? r : 0;
}

static int (*const setters[])(const struct conf_entry *, void *, const char *, char *, size_t) = {
	[CONF_STRING] = set_string,
	[CONF_UINT] = set_uint,
	[CONF_BOOL] = set_bool,
	[CONF_CUSTOM] = set_custom,
};

/* Store value into e's field; on error msg says what is wrong (no location). */
static int set_value(const struct conf_ctx *ctx, const struct conf_entry *e, const char *value,
		     char *msg, size_t msglen)
{
	if ((size_t)e->type >= sizeof(setters) / sizeof(setters[0])) {
		snprintf(msg, msglen, "unknown type in the schema");
		return -EINVAL;
	}
	return setters[e->type](e, entry_field(ctx, e), value, msg, msglen);
}

static int apply_defaults(const struct conf_ctx *ctx)
{
	char msg[CONF_MSG_LEN];

	for (size_t i = 0; i < ctx->n; i++) {
		const struct conf_entry *e = &ctx->schema[i];
		if (e->def == NULL)
			continue;
		int r = set_value(ctx, e, e->def, msg, sizeof(msg));
		if (r < 0) {
			ctx_error(ctx, "default of %s%s%s: %s", entry_section(e),
				  *entry_section(e) != '\0' ? "." : "", e->key, msg);
			return r;
		}
	}
	return 0;
}

/* ---- file syntax ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static char *trim(char *s)
{
	size_t len;

	while (is_space(*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_space(s[len - 1]))
		s[--len] = '\0';
	return s;
}

static bool valid_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.' || *s == '-'))
			return false;
	return true;
}

static bool known_section(const struct conf_ctx *ctx, const char *section)
{
	for (size_t i = 0; i < ctx->n; i++)
		if (strcmp(entry_section(&ctx->schema[i]), section) == 0)
			return true;
	return false;
}

static const struct conf_entry *find_entry(const struct conf_ctx *ctx, const char *section,
					   const char *key)
{
	for (size_t i = 0; i < ctx->n; i++) {
		const struct conf_entry *e = &ctx->schema[i];
		if (strcmp(entry_section(e), section) == 0 && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

/* In place: "..." with \" and \\ as the only escapes, nothing after the closing quote. */
static int unquote(char *s, const char **ret_msg)
{
	char *out = s;
	const char *in = s + 1;

	for (;;) {
		char c = *in++;
		if (c == '\\') {
			c = *in++;
			if (c != '"' && c != '\\' && c != '\0') {
				*ret_msg = "unknown escape (only \\\" and \\\\)";
				return -EINVAL;
			}
		} else if (c == '"') {
			break;
		}
		if (c == '\0') {
			*ret_msg = "unterminated quoted value";
			return -EINVAL;
		}
		*out++ = c;
	}
	if (*in != '\0') {
		*ret_msg = "text after the closing quote";
		return -EINVAL;
	}
	*out = '\0';
	return 0;
}

static int parse_section(struct conf_parser *p, char *s)
{
	size_t len = strlen(s);
	char *name;

	if (s[len - 1] != ']')
		return parser_error(p, "expected ']' at the end of the section header");
	s[len - 1] = '\0';
	name = trim(s + 1);
	if (*name == '\0')
		return parser_error(p, "empty section name");
	if (!valid_name(name))
		return parser_error(p, "invalid section name (allowed: a-z 0-9 _ . -)");
	if (!known_section(p->ctx, name))
		return parser_error(p, "unknown section [%s]", name);
	memcpy(p->section, name, strlen(name) + 1);
	return 0;
}

static int unknown_key(const struct conf_parser *p, const char *key)
{
	if (p->section[0] == '\0')
		return parser_error(p, "unknown key '%s'", key);
	return parser_error(p, "unknown key '%s' in section [%s]", key, p->section);
}

static int duplicate_key(const struct conf_parser *p, const char *key, size_t first)
{
	if (p->section[0] == '\0')
		return parser_error(p, "duplicate key '%s' (first set on line %zu)", key, first);
	return parser_error(p, "duplicate key '%s' in section [%s] (first set on line %zu)", key,
			    p->section, first);
}

static int parse_assignment(struct conf_parser *p, char *s)
{
	char *eq = strchr(s, '=');
	const struct conf_entry *e;
	const char *why;
	char msg[CONF_MSG_LEN];
	char *key, *value;
	size_t idx;
	int r;

	if (eq == NULL)
		return parser_error(p, "expected 'key = value'");
	*eq = '\0';
	key = trim(s);
	value = trim(eq + 1);
	if (*key == '\0')
		return parser_error(p, "empty key");
	if (!valid_name(key))
		return parser_error(p, "invalid key name (allowed: a-z 0-9 _ . -)");
	e = find_entry(p->ctx, p->section, key);
	if (e == NULL)
		return unknown_key(p, key);
	idx = (size_t)(e - p->ctx->schema);
	if (p->set_on_line[idx] != 0)
		return duplicate_key(p, key, p->set_on_line[idx]);
	p->set_on_line[idx] = p->lineno;

	if (*value == '"' && unquote(value, &why) < 0)
		return parser_error(p, "%s: %s", key, why);
	r = set_value(p->ctx, e, value, msg, sizeof(msg));
	if (r < 0) {
		parser_error(p, "%s: %s", key, msg);
		return r;
	}
	return 0;
}

static int parse_line(struct conf_parser *p, const char *text, size_t len)
{
	char *s;

	if (len > CONF_MAX_LINE)
		return parser_error(p, "line longer than %d bytes", CONF_MAX_LINE);
	if (memchr(text, '\0', len) != NULL)
		return parser_error(p, "NUL byte in line");
	memcpy(p->line, text, len);
	p->line[len] = '\0';

	s = trim(p->line);
	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[')
		return parse_section(p, s);
	return parse_assignment(p, s);
}

static int parse_text(const struct conf_ctx *ctx, const char *name, const char *buf, size_t len)
{
	struct conf_parser *p = calloc(1, sizeof(*p));
	size_t pos = 0;
	int r = 0;

	if (p == NULL)
		goto err_nomem;
	p->set_on_line = calloc(ctx->n + 1, sizeof(*p->set_on_line));
	if (p->set_on_line == NULL)
		goto err_free_parser;
	p->ctx = ctx;
	p->name = name;

	while (pos < len && r == 0) {
		const char *start = buf + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t linelen = nl != NULL ? (size_t)(nl - start) : len - pos;

		pos += linelen + (nl != NULL ? 1 : 0);
		p->lineno++;
		r = parse_line(p, start, linelen);
	}
	free(p->set_on_line);
	free(p);
	return r;

err_free_parser:
	free(p);
err_nomem:
	ctx_error(ctx, "%s: out of memory", name);
	return -ENOMEM;
}

/* ---- sources ---- */

/* Room for one byte more than CONF_MAX_FILE, so that a larger file is noticed. */
static int grow_file_buffer(char **buf, size_t *cap)
{
	size_t new_cap = *cap * 2 > CONF_MAX_FILE + 1 ? CONF_MAX_FILE + 1 : *cap * 2;
	char *bigger;

	if (*cap > CONF_MAX_FILE)
		return -EFBIG;
	bigger = realloc(*buf, new_cap);
	if (bigger == NULL)
		return -ENOMEM;
	*buf = bigger;
	*cap = new_cap;
	return 0;
}

static int read_file(const char *path, char **ret_buf, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int fd, r = 0;

	if (buf == NULL)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		goto err_free_buf;
	}
	for (;;) {
		if (len == cap) {
			r = grow_file_buffer(&buf, &cap);
			if (r < 0)
				goto err_close_fd;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto err_close_fd;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*ret_buf = buf;
	*ret_len = len;
	return 0;

err_close_fd:
	close(fd);
err_free_buf:
	free(buf);
	return r;
}

static int load_file(const struct conf_ctx *ctx, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int r = read_file(path, &buf, &len);

	if (r < 0) {
		char errbuf[128];
		ctx_error(ctx, "%s: %s", path, strerror_r(-r, errbuf, sizeof(errbuf)));
		return r;
	}
	r = parse_text(ctx, path, buf, len);
	free(buf);
	return r;
}

/* WIREGUI_<SECTION>_<KEY> (or WIREGUI_<KEY>), upper case, '.' and '-' as '_'. Malloc'd. */
static char *env_name(const struct conf_entry *e)
{
	const char *section = entry_section(e);
	size_t len = strlen(CONF_ENV_PREFIX) + strlen(section) + 1 + strlen(e->key) + 1;
	char *name = malloc(len);

	if (name == NULL)
		return NULL;
	snprintf(name, len, "%s%s%s%s", CONF_ENV_PREFIX, section, *section != '\0' ? "_" : "",
		 e->key);
	for (char *c = name; *c != '\0'; c++) {
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
		else if (*c == '.' || *c == '-')
			*c = '_';
	}
	return name;
}

/*
 * secure_getenv: should a daemon ever run set-uid, the caller's
 * environment must not be able to configure it.
 */
static int apply_env_entry(const struct conf_ctx *ctx, const struct conf_entry *e)
{
	const char *value = e->env != NULL ? secure_getenv(e->env) : NULL;
	const char *name = e->env;
	char *derived = NULL;
	int r = 0;

	if (value == NULL) {
		derived = env_name(e);
		if (derived == NULL) {
			ctx_error(ctx, "environment: out of memory");
			return -ENOMEM;
		}
		name = derived;
		value = secure_getenv(derived);
	}
	if (value != NULL) {
		char msg[CONF_MSG_LEN];
		r = set_value(ctx, e, value, msg, sizeof(msg));
		if (r < 0)
			ctx_error(ctx, "environment %s: %s", name, msg);
	}
	free(derived);
	return r;
}

static int apply_env(const struct conf_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n; i++) {
		int r = apply_env_entry(ctx, &ctx->schema[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static void ctx_init(struct conf_ctx *ctx, const struct conf_entry *schema, size_t n, void *target,
		     char *err, size_t errlen)
{
	ctx->schema = schema;
	ctx->n = n;
	ctx->target = target;
	ctx->err = err;
	ctx->errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

int conf_load(const char *path, const struct conf_entry *schema, size_t n, void *target, char *err,
	      size_t errlen)
{
	struct conf_ctx ctx;
	int r;

	ctx_init(&ctx, schema, n, target, err, errlen);
	r = apply_defaults(&ctx);
	if (r < 0)
		return r;
	if (path != NULL) {
		r = load_file(&ctx, path);
		if (r < 0)
			return r;
	}
	return apply_env(&ctx);
}

int conf_load_buffer(const char *name, const char *buf, size_t len, const struct conf_entry *schema,
		     size_t n, void *target, char *err, size_t errlen)
{
	struct conf_ctx ctx;
	int r;

	ctx_init(&ctx, schema, n, target, err, errlen);
	r = apply_defaults(&ctx);
	if (r < 0)
		return r;
	return parse_text(&ctx, name, buf, len);
}

void conf_free(const struct conf_entry *schema, size_t n, void *target)
{
	if (schema == NULL || target == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct conf_entry *e = &schema[i];
		void *field = (char *)target + e->offset;
		if (e->type == CONF_STRING)
			conf_string_free(field);
		else if (e->type == CONF_CUSTOM && e->free != NULL) {
			e->free(field);
		}
	}
}
