/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_CONF_H
#define WIREGUI_CONF_H

/*
 * A small schema-driven config parser shared by both daemons.
 *
 * File syntax (one statement a line):
 *   # comment            ; comment
 *   [section]
 *   key = value          value is trimmed; "double quoted" keeps spaces,
 *                        with \" and \\ as the only escapes
 * Keys before any [section] belong to section "". Names are [a-z0-9_.-]+.
 * Unknown sections/keys, duplicates, bad values, over-long lines (> 4096)
 * and NUL bytes are errors reported as "path:line: what is wrong".
 *
 * Precedence: schema default < file < environment. Each key can be set by
 * the environment variable WIREGUI_<SECTION>_<KEY> (upper-cased, '.' and
 * '-' become '_'; no section: WIREGUI_<KEY>) or by the entry's own env name.
 * Errors from the environment read "environment WIREGUI_X: what is wrong".
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum conf_type {
	CONF_STRING, /* char * (malloc'd; freed by conf_free) */
	CONF_UINT,   /* unsigned long, within [min, max] */
	CONF_BOOL,   /* bool: true/false/yes/no/on/off/1/0 */
	CONF_CUSTOM, /* parse() writes into the target */
};

struct conf_entry {
	const char *section; /* "" for top level */
	const char *key;
	enum conf_type type;
	size_t offset;		/* offsetof(target struct, field) */
	const char *def;	/* default as text, parsed like a file value; NULL = none */
	unsigned long min, max; /* CONF_UINT */
	/* CONF_CUSTOM: 0 or -EINVAL with a message (without location) in err. */
	int (*parse)(const char *value, void *field, char *err, size_t errlen);
	/* CONF_CUSTOM: release what parse() stored; may be NULL. */
	void (*free)(void *field);
	const char *env; /* extra environment name (e.g. "WIREGUI_WG_PORT"); NULL = none */
};

/*
 * Fill target from defaults, then the file at path (NULL: no file; a
 * missing file is an error), then the environment. On error returns
 * -EINVAL (or -errno for I/O) and writes "where: what" into err; target then
 * holds whatever was set and must still be released with conf_free().
 */
int conf_load(const char *path, const struct conf_entry *schema, size_t n, void *target, char *err,
	      size_t errlen);
/* Same, with the file given as a buffer (name is used in messages). No environment. */
int conf_load_buffer(const char *name, const char *buf, size_t len, const struct conf_entry *schema,
		     size_t n, void *target, char *err, size_t errlen);
void conf_free(const struct conf_entry *schema, size_t n, void *target);

/* For CONF_CUSTOM entries that store a malloc'd char *: replace (0 or -ENOMEM), free. */
int conf_string_set(void *field, const char *value);
void conf_string_free(void *field);
/* CONF_CUSTOM parser for an enum log_level field ("error", "warning", "info", "debug"). */
int conf_parse_log_level(const char *value, void *field, char *err, size_t errlen);

#endif
