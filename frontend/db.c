/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "db.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "backoff.h"
#include "log.h"

#define DB_CONNECT_TIMEOUT_SEC 10
#define DB_PROBE_INTERVAL_SEC 5
#define DB_PROBE_TIMEOUT_SEC 5
#define DB_ERROR_LEN 256

enum db_state {
	DB_ST_WAIT,	  /* no connection; retry timer armed */
	DB_ST_CONNECTING, /* PQconnectPoll in progress; connect timeout armed */
	DB_ST_IDLE,	  /* up; next probe armed */
	DB_ST_PROBING,	  /* up; probe in flight; probe timeout armed */
};

struct db {
	struct event_base *base;
	char *conninfo;
	PGconn *conn;
	evutil_socket_t fd; /* socket the events below watch */
	struct event *rd_ev, *wr_ev;
	struct event *timer;
	enum db_state state;
	struct backoff backoff;
	char error[DB_ERROR_LEN];
	/* FATAL message the server sent before closing, the better reason. */
	char fatal_notice[DB_ERROR_LEN];
};

static void db_connect_start(struct db *db);
static void db_socket_cb(evutil_socket_t fd, short what, void *arg);

/* libpq messages span lines ("...\n\tIs the server running..."); keep one. */
static void db_oneline(char *dst, size_t len, const char *src)
{
	size_t n = 0;
	bool space = false;

	for (; *src != '\0' && n + 1 < len; src++) {
		if (*src == '\n' || *src == '\t' || *src == '\r' || *src == ' ') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < len)
			dst[n++] = ' ';
		space = false;
		dst[n++] = *src;
	}
	dst[n] = '\0';
}

static void db_timer_set(struct db *db, struct timeval tv)
{
	evtimer_add(db->timer, &tv);
}

static void db_timer_set_sec(struct db *db, time_t sec)
{
	db_timer_set(db, (struct timeval){.tv_sec = sec});
}

static void db_events_free(struct db *db)
{
	if (db->rd_ev != NULL)
		event_free(db->rd_ev);
	if (db->wr_ev != NULL)
		event_free(db->wr_ev);
	db->rd_ev = db->wr_ev = NULL;
	db->fd = -1;
}

/* Events go before PQfinish: the socket must still be open when libevent forgets it. */
static void db_close(struct db *db)
{
	db_events_free(db);
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
}

/*
 * Wait for the socket libpq uses now: it may change between PQconnectPoll
 * calls (several hosts or addresses are tried in turn).
 */
static int db_watch(struct db *db, short what)
{
	evutil_socket_t fd = PQsocket(db->conn);

	if (fd < 0)
		return -EBADF;
	if (fd != db->fd || db->rd_ev == NULL) {
		db_events_free(db);
		db->rd_ev = event_new(db->base, fd, EV_READ, db_socket_cb, db);
		db->wr_ev = event_new(db->base, fd, EV_WRITE, db_socket_cb, db);
		if (db->rd_ev == NULL || db->wr_ev == NULL) {
			db_events_free(db);
			return -ENOMEM;
		}
		db->fd = fd;
	}
	if ((what & EV_READ) && event_add(db->rd_ev, NULL) < 0)
		return -EIO;
	if ((what & EV_WRITE) && event_add(db->wr_ev, NULL) < 0)
		return -EIO;
	return 0;
}

static void db_fail(struct db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void db_fail(struct db *db, const char *fmt, ...)
{
	char msg[DB_ERROR_LEN];
	bool was_up = db->state == DB_ST_IDLE || db->state == DB_ST_PROBING;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (db->fatal_notice[0] != '\0')
		snprintf(msg, sizeof(msg), "%s", db->fatal_notice);

	if (was_up)
		log_warn("postgresql: connection lost: %s", msg);
	else if (strcmp(msg, db->error) != 0)
		log_warn("postgresql: cannot connect: %s", msg);
	else
		log_debug("postgresql: cannot connect: %s", msg);
	snprintf(db->error, sizeof(db->error), "%s", msg);

	db_close(db);
	db->state = DB_ST_WAIT;
	db_timer_set(db, backoff_next(&db->backoff));
}

/* libpq's own message when it has one (it names host and port), else what. */
static void db_fail_conn(struct db *db, const char *what)
{
	char msg[DB_ERROR_LEN];
	db_oneline(msg, sizeof(msg), db->conn ? PQerrorMessage(db->conn) : "");
	db_fail(db, "%s", msg[0] ? msg : what);
}

/* Notices and errors that arrive outside a query (e.g. shutdown): log, keep a FATAL. */
static void db_notice_cb(void *arg, const PGresult *res)
{
	struct db *db = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (sev == NULL)
		sev = "NOTICE";
	if (primary == NULL)
		primary = "";
	if (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0) {
		snprintf(db->fatal_notice, sizeof(db->fatal_notice), "%s: %s", sev, primary);
		log_debug("postgresql: server says %s: %s", sev, primary);
	} else {
		log_info("postgresql: server says %s: %s", sev, primary);
	}
}

static void db_on_connected(struct db *db)
{
	if (PQsetnonblocking(db->conn, 1) != 0) {
		db_fail_conn(db, "cannot make the connection non-blocking");
		return;
	}
	if (db_watch(db, EV_READ) < 0) {
		db_fail(db, "cannot watch the connection");
		return;
	}
	log_info("postgresql: connected (server %d)", PQserverVersion(db->conn));
	db->state = DB_ST_IDLE;
	db->error[0] = '\0';
	backoff_reset(&db->backoff);
	db_timer_set_sec(db, DB_PROBE_INTERVAL_SEC);
}

static void db_connect_poll(struct db *db)
{
	/* Nothing may be pending on the socket when libpq might replace it. */
	db_events_free(db);
	switch (PQconnectPoll(db->conn)) {
	case PGRES_POLLING_READING:
		if (db_watch(db, EV_READ) < 0)
			db_fail(db, "cannot watch the connection");
		break;
	case PGRES_POLLING_WRITING:
		if (db_watch(db, EV_WRITE) < 0)
			db_fail(db, "cannot watch the connection");
		break;
	case PGRES_POLLING_OK:
		db_on_connected(db);
		break;
	case PGRES_POLLING_FAILED:
	default:
		db_fail_conn(db, "connection failed");
		break;
	}
}

static void db_connect_start(struct db *db)
{
	db->fatal_notice[0] = '\0';
	db->conn = PQconnectStart(db->conninfo);
	if (db->conn == NULL) {
		db_fail(db, "out of memory");
		return;
	}
	if (PQstatus(db->conn) == CONNECTION_BAD) {
		db_fail_conn(db, "connection failed");
		return;
	}
	PQsetNoticeReceiver(db->conn, db_notice_cb, db);
	db->state = DB_ST_CONNECTING;
	db_timer_set_sec(db, DB_CONNECT_TIMEOUT_SEC);
	/* As if PQconnectPoll had last said PGRES_POLLING_WRITING (libpq docs). */
	if (db_watch(db, EV_WRITE) < 0)
		db_fail_conn(db, "connection failed");
}

static void db_flush(struct db *db)
{
	int r = PQflush(db->conn);
	if (r < 0)
		db_fail_conn(db, "send failed");
	else if (r > 0 && db_watch(db, EV_WRITE) < 0)
		db_fail(db, "cannot watch the connection");
}

static void db_probe_send(struct db *db)
{
	if (!PQsendQuery(db->conn, "SELECT 1")) {
		db_fail_conn(db, "probe failed");
		return;
	}
	db->state = DB_ST_PROBING;
	db_timer_set_sec(db, DB_PROBE_TIMEOUT_SEC);
	db_flush(db);
}

/* Collect the probe's results; returns -1 after a failure (connection closed). */
static int db_probe_collect(struct db *db)
{
	while (!PQisBusy(db->conn)) {
		PGresult *res = PQgetResult(db->conn);
		if (res == NULL) {
			db->state = DB_ST_IDLE;
			db_timer_set_sec(db, DB_PROBE_INTERVAL_SEC);
			return 0;
		}
		ExecStatusType st = PQresultStatus(res);
		if (st != PGRES_TUPLES_OK) {
			char msg[DB_ERROR_LEN];
			db_oneline(msg, sizeof(msg), PQresultErrorMessage(res));
			PQclear(res);
			db_fail(db, "probe failed: %s", msg[0] ? msg : PQresStatus(st));
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

static void db_read(struct db *db)
{
	if (!PQconsumeInput(db->conn)) {
		db_fail_conn(db, "connection lost");
		return;
	}
	/* Nobody LISTENs yet; drop notifications so they do not pile up. */
	PGnotify *n;
	while ((n = PQnotifies(db->conn)) != NULL)
		PQfreemem(n);
	if (db->state == DB_ST_PROBING && db_probe_collect(db) < 0)
		return;
	if (PQstatus(db->conn) == CONNECTION_BAD) {
		db_fail_conn(db, "connection lost");
		return;
	}
	if (db_watch(db, EV_READ) < 0)
		db_fail(db, "cannot watch the connection");
}

static void db_socket_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;

	(void)fd;
	switch (db->state) {
	case DB_ST_CONNECTING:
		db_connect_poll(db);
		break;
	case DB_ST_IDLE:
	case DB_ST_PROBING:
		if (what & EV_WRITE)
			db_flush(db);
		else
			db_read(db);
		break;
	case DB_ST_WAIT:
		break;
	}
}

static void db_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;

	(void)fd;
	(void)what;
	switch (db->state) {
	case DB_ST_WAIT:
		db_connect_start(db);
		break;
	case DB_ST_CONNECTING:
		db_fail(db, "connection timed out after %d s", DB_CONNECT_TIMEOUT_SEC);
		break;
	case DB_ST_IDLE:
		db_probe_send(db);
		break;
	case DB_ST_PROBING:
		db_fail(db, "no answer to the liveness probe within %d s", DB_PROBE_TIMEOUT_SEC);
		break;
	}
}

int db_conninfo_check(const char *conninfo, char *err, size_t errlen)
{
	char *why = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &why);

	if (opts == NULL) {
		/* libpq's reason quotes the offending part, which may be the password. */
		snprintf(err, errlen,
			 "database.url cannot be parsed: check its syntax, quoting and "
			 "percent-encoding");
		PQfreemem(why);
		return -EINVAL;
	}
	PQconninfoFree(opts);
	return 0;
}

int db_new(struct event_base *base, const char *conninfo, struct db **ret_db, char *err,
	   size_t errlen)
{
	int r = db_conninfo_check(conninfo, err, errlen);
	if (r < 0)
		return r;

	struct db *db = calloc(1, sizeof(*db));
	if (db == NULL)
		return -ENOMEM;
	db->base = base;
	db->fd = -1;
	db->state = DB_ST_WAIT;
	db->conninfo = strdup(conninfo);
	db->timer = evtimer_new(base, db_timer_cb, db);
	if (db->conninfo == NULL || db->timer == NULL) {
		snprintf(err, errlen, "out of memory");
		db_free(db);
		return -ENOMEM;
	}
	snprintf(db->error, sizeof(db->error), "not connected yet");
	db_timer_set_sec(db, 0);
	*ret_db = db;
	return 0;
}

void db_free(struct db *db)
{
	if (db == NULL)
		return;
	db_close(db);
	if (db->timer != NULL)
		event_free(db->timer);
	if (db->conninfo != NULL) {
		/* It may hold a password. */
		explicit_bzero(db->conninfo, strlen(db->conninfo));
		free(db->conninfo);
	}
	free(db);
}

bool db_is_up(const struct db *db)
{
	return db->state == DB_ST_IDLE || db->state == DB_ST_PROBING;
}

const char *db_error(const struct db *db)
{
	return db_is_up(db) ? "" : db->error;
}
