/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "migrate.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrations.h"

/* Session advisory lock shared by every wiregui migrator: "wiregui" as a big-endian integer. */
#define MIGRATE_LOCK_KEY "33611462277035369"

#define SQL_CREATE_TABLE                                 \
	"CREATE TABLE IF NOT EXISTS schema_migrations (" \
	" version int PRIMARY KEY,"                      \
	" name text NOT NULL,"                           \
	" checksum text NOT NULL,"                       \
	" applied_at timestamptz NOT NULL DEFAULT now())"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* libpq messages end in a newline; the length without trailing white space. */
static int trimmed_len(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		n--;
	return n > INT_MAX ? INT_MAX : (int)n;
}

static PGresult *query(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
	return PQexecParams(conn, sql, nparams, NULL, values, NULL, NULL, 0);
}

static bool result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

/* Report a failed bookkeeping query and release its result. */
static int db_fail(PGconn *conn, PGresult *res, char *err, size_t errlen, const char *what)
{
	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";

	if (*msg == '\0')
		msg = PQerrorMessage(conn);
	set_err(err, errlen, "%s: %.*s", what, trimmed_len(msg), msg);
	PQclear(res);
	return MIGRATE_ERR_DB;
}

static int run_simple(PGconn *conn, const char *sql, char *err, size_t errlen, const char *what)
{
	PGresult *res = query(conn, sql, 0, NULL);

	if (!result_ok(res))
		return db_fail(conn, res, err, errlen, what);
	PQclear(res);
	return 0;
}

static int lock_acquire(PGconn *conn, char *err, size_t errlen)
{
	const char *params[] = {MIGRATE_LOCK_KEY};
	PGresult *res = query(conn, "SELECT pg_advisory_lock($1::bigint)", 1, params);

	if (!result_ok(res))
		return db_fail(conn, res, err, errlen, "cannot take the migration lock");
	PQclear(res);
	return 0;
}

/* Also released when the session ends, so a failure here is harmless. */
static void lock_release(PGconn *conn)
{
	const char *params[] = {MIGRATE_LOCK_KEY};

	PQclear(query(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, params));
}

static int table_exists(PGconn *conn, bool *ret_exists)
{
	PGresult *res = query(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		PQclear(res);
		return MIGRATE_ERR_DB;
	}
	*ret_exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return 0;
}

static int parse_int(const char *s, int *ret_value)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < INT_MIN || v > INT_MAX)
		return -EINVAL;
	*ret_value = (int)v;
	return 0;
}

/*
 * The database must hold exactly versions 1..n, n no higher than we know,
 * each with the checksum of our copy: an edited applied migration means the
 * database and the files disagree about the schema, and only a human can
 * say which is right.
 */
static int check_row(const PGresult *res, int row, char *err, size_t errlen)
{
	const char *sum = PQgetvalue(res, row, 1);
	const struct migration *m = &migrations[row];
	int version;

	if (parse_int(PQgetvalue(res, row, 0), &version) < 0 || version != row + 1) {
		set_err(err, errlen,
			"schema_migrations holds version %s where %d was expected: "
			"the table was edited by hand",
			PQgetvalue(res, row, 0), row + 1);
		return MIGRATE_ERR_CHECKSUM;
	}
	if (strcmp(sum, m->checksum) != 0) {
		set_err(err, errlen,
			"%s was changed after it was applied (checksum %.12s in the database, "
			"%.12s in this wiregui): restore it and put changes in a new migration",
			m->name, sum, m->checksum);
		return MIGRATE_ERR_CHECKSUM;
	}
	return 0;
}

static int check_applied(PGconn *conn, char *err, size_t errlen, int *ret_db_version)
{
	PGresult *res = query(
		conn, "SELECT version, checksum FROM schema_migrations ORDER BY version", 0, NULL);
	int n, top, r = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return db_fail(conn, res, err, errlen, "cannot read schema_migrations");
	n = PQntuples(res);
	if (n > 0 && parse_int(PQgetvalue(res, n - 1, 0), &top) == 0 &&
	    top > migrate_latest_version()) {
		set_err(err, errlen,
			"database schema is at version %d, this wiregui knows up to %d: upgrade wiregui",
			top, migrate_latest_version());
		r = MIGRATE_ERR_NEWER;
	}
	for (int i = 0; r == 0 && i < n; i++)
		r = check_row(res, i, err, errlen);
	PQclear(res);
	if (r == 0)
		*ret_db_version = n;
	return r;
}

/* 1-based line of a 1-based character position in UTF-8 text; 0 if out of range. */
static int position_line(const char *text, size_t len, const char *position)
{
	int target, chars = 0, line = 1;

	if (position == NULL || parse_int(position, &target) < 0 || target < 1)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if ((c & 0xC0) == 0x80)
			continue;
		if (++chars == target)
			return line;
		if (c == '\n')
			line++;
	}
	return 0;
}

static void migration_error(const struct migration *m, PGconn *conn, const PGresult *res, char *err,
			    size_t errlen)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	int line = position_line(m->sql, m->sql_len,
				 PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION));
	char where[32] = "", extra[512] = "";

	if (msg == NULL)
		msg = PQerrorMessage(conn);
	if (line > 0)
		snprintf(where, sizeof(where), " at line %d", line);
	if (detail != NULL)
		snprintf(extra, sizeof(extra), " (%.*s)", trimmed_len(detail), detail);
	set_err(err, errlen, "migration %s failed%s: %.*s%s", m->name, where, trimmed_len(msg), msg,
		extra);
}

static int record(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
	char version[16];
	const char *params[3] = {version, m->name, m->checksum};
	PGresult *res;

	snprintf(version, sizeof(version), "%d", m->version);
	res = query(
		conn,
		"INSERT INTO schema_migrations (version, name, checksum) VALUES ($1::int, $2, $3)",
		3, params);
	if (!result_ok(res))
		return db_fail(conn, res, err, errlen, "cannot record the migration");
	PQclear(res);
	return 0;
}

/*
 * One migration and its schema_migrations row commit together or not at
 * all. The body goes through the simple query protocol: it holds several
 * statements and no parameters.
 */
static int apply_one(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
	char what[160];
	PGresult *res;
	int r;

	r = run_simple(conn, "BEGIN", err, errlen, "cannot begin a transaction");
	if (r < 0)
		return r;
	res = PQexec(conn, m->sql);
	if (!result_ok(res)) {
		migration_error(m, conn, res, err, errlen);
		PQclear(res);
		r = MIGRATE_ERR_FAILED;
		goto err_rollback;
	}
	PQclear(res);
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		set_err(err, errlen,
			"migration %s ended the transaction itself: remove BEGIN/COMMIT", m->name);
		r = MIGRATE_ERR_FAILED;
		goto err_rollback;
	}
	r = record(conn, m, err, errlen);
	if (r < 0)
		goto err_rollback;
	snprintf(what, sizeof(what), "migration %s failed at COMMIT", m->name);
	if (run_simple(conn, "COMMIT", err, errlen, what) < 0)
		return MIGRATE_ERR_FAILED;
	return 0;

err_rollback:
	PQclear(query(conn, "ROLLBACK", 0, NULL));
	return r;
}

int migrate_latest_version(void)
{
	return (int)migrations_count;
}

int migrate_run(PGconn *conn, char *err, size_t errlen, int *ret_applied)
{
	const char *encoding = PQparameterStatus(conn, "client_encoding");
	int db_version = 0, r;
	bool exists;

	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE) {
		set_err(err, errlen, "database connection is not ready");
		return MIGRATE_ERR_DB;
	}
	/* Migrations are UTF-8 text; another client encoding would garble them. */
	if ((encoding == NULL || strcmp(encoding, "UTF8") != 0) &&
	    PQsetClientEncoding(conn, "UTF8") != 0)
		return db_fail(conn, NULL, err, errlen, "cannot set client encoding UTF8");
	r = lock_acquire(conn, err, errlen);
	if (r < 0)
		return r;
	r = table_exists(conn, &exists);
	if (r < 0) {
		r = db_fail(conn, NULL, err, errlen, "cannot look for schema_migrations");
		goto err_unlock;
	}
	if (!exists) {
		r = run_simple(conn, SQL_CREATE_TABLE, err, errlen,
			       "cannot create schema_migrations");
		if (r < 0)
			goto err_unlock;
	}
	r = check_applied(conn, err, errlen, &db_version);
	if (r < 0)
		goto err_unlock;
	for (size_t i = (size_t)db_version; i < migrations_count; i++) {
		r = apply_one(conn, &migrations[i], err, errlen);
		if (r < 0)
			goto err_unlock;
	}
	lock_release(conn);
	*ret_applied = (int)migrations_count - db_version;
	return 0;

err_unlock:
	lock_release(conn);
	return r;
}

int migrate_status(PGconn *conn, int *ret_db_version)
{
	PGresult *res;
	bool exists;
	int version;

	if (table_exists(conn, &exists) < 0)
		return MIGRATE_ERR_DB;
	if (!exists) {
		*ret_db_version = 0;
		return 0;
	}
	res = query(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    parse_int(PQgetvalue(res, 0, 0), &version) < 0) {
		PQclear(res);
		return MIGRATE_ERR_DB;
	}
	PQclear(res);
	*ret_db_version = version;
	return 0;
}
