/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_DB_H
#define WIREGUI_DB_H

/*
 * The PostgreSQL connection of wiregui-web, driven by the event loop:
 * libpq in non-blocking mode, never a blocking call on the loop (except the
 * host name lookup inside PQconnectStart: use an address or a socket path
 * in database.url where that matters).
 *
 * States: WAIT (retry timer) -> CONNECTING (PQconnectPoll) -> IDLE (up) <->
 * PROBING (up, "SELECT 1" in flight). Any failure closes the connection and
 * goes back to WAIT with a growing delay (backoff.h). A probe that gets no
 * answer in time counts as a failure.
 */

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

struct db;

/*
 * conninfo is a libpq connection string or URI. It is checked here
 * (-EINVAL with a message in err, which never repeats the string: it may
 * hold a password); the first connection attempt starts on the loop.
 */
int db_new(struct event_base *base, const char *conninfo, struct db **ret_db, char *err,
	   size_t errlen);
void db_free(struct db *db);

/* The check db_new() makes: 0, or -EINVAL with a message that never quotes conninfo. */
int db_conninfo_check(const char *conninfo, char *err, size_t errlen);

bool db_is_up(const struct db *db);
/* Why the last attempt or connection failed; "" when none did. */
const char *db_error(const struct db *db);

#endif
