/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_MIGRATIONS_H
#define WIREGUI_MIGRATIONS_H

/*
 * The schema migrations sql/NNNN_name.sql, embedded at build time by
 * sql/embed.py. migrations[i].version == i + 1: the build fails on a gap.
 */

#include <stddef.h>

struct migration {
	int version;
	const char *name; /* file name, "0001_base.sql" */
	const char *sql;  /* the file's text, NUL-terminated */
	size_t sql_len;
	const char *checksum; /* SHA-256 of the text, lowercase hex */
};

extern const struct migration migrations[];
extern const size_t migrations_count;

#endif
