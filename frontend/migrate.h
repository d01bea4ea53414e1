/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_MIGRATE_H
#define WIREGUI_MIGRATE_H

/*
 * Applies the embedded migrations (sql/migrations.h) to a database, with
 * blocking libpq: for the CLI and start-up, never on the web event loop.
 * Progress is recorded in schema_migrations (version, name, checksum,
 * applied_at); a session advisory lock keeps concurrent migrators apart.
 */

#include <stddef.h>

#include <libpq-fe.h>

enum migrate_error {
	MIGRATE_ERR_DB = -1,	   /* connection or bookkeeping query failed */
	MIGRATE_ERR_NEWER = -2,	   /* database is ahead of this binary */
	MIGRATE_ERR_CHECKSUM = -3, /* an applied migration was edited, or one is missing */
	MIGRATE_ERR_FAILED = -4,   /* a migration failed and was rolled back */
};

/*
 * Apply every pending migration, each in its own transaction together with
 * its schema_migrations row; stop at the first failure (earlier ones stay).
 * conn must be idle (not in a transaction); its client encoding is set to
 * UTF8. 0 and *ret_applied = number applied, or a migrate_error with a
 * one-line message in err.
 */
int migrate_run(PGconn *conn, char *err, size_t errlen, int *ret_applied);

/* Highest applied version (0: none, or no schema_migrations), or MIGRATE_ERR_DB. */
int migrate_status(PGconn *conn, int *ret_db_version);

/* Highest version this binary knows. */
int migrate_latest_version(void);

#endif
