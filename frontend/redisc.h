/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_REDISC_H
#define WIREGUI_REDISC_H

/*
 * The Redis connection of wiregui-web: hiredis async on the event loop
 * (its libevent adapter). Up once a PING has been answered; a PING every few
 * seconds after that, and a PING without answer in time counts as a
 * failure. Any failure frees the context and retries with a growing delay
 * (backoff.h).
 */

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

struct redisc;

/*
 * address: "host:port", "[v6]:port" or "unix:/path". 0, or -EINVAL with a
 * message in err; the first attempt starts on the loop.
 */
int redisc_new(struct event_base *base, const char *address, struct redisc **ret_redis, char *err,
	       size_t errlen);
void redisc_free(struct redisc *redis);

bool redisc_is_up(const struct redisc *redis);
/* Why the last attempt or connection failed; "" when up. */
const char *redisc_error(const struct redisc *redis);

#endif
