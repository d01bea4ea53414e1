/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "redisc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "backoff.h"
#include "endpoint.h"
#include "log.h"

#define REDISC_CONNECT_TIMEOUT_SEC 10
#define REDISC_PING_INTERVAL_SEC 5
#define REDISC_PING_TIMEOUT_SEC 5
#define REDISC_ERROR_LEN 256

enum redisc_state {
	REDISC_ST_WAIT,	      /* no context; retry timer armed */
	REDISC_ST_CONNECTING, /* context made, first PING queued; connect timeout armed */
	REDISC_ST_UP,	      /* a PING was answered; ping timer armed */
};

struct redisc {
	struct event_base *base;
	struct endpoint ep;
	/*
	 * hiredis frees the context itself after a failed connect or a
	 * disconnect; callbacks compare their context with this one and
	 * ignore any other, and we clear it before freeing it ourselves.
	 */
	redisAsyncContext *ac;
	struct event *timer;
	enum redisc_state state;
	bool ping_pending;
	struct backoff backoff;
	char error[REDISC_ERROR_LEN];
};

static void redisc_timer_set(struct redisc *r, struct timeval tv)
{
	evtimer_add(r->timer, &tv);
}

static void redisc_timer_set_sec(struct redisc *r, time_t sec)
{
	redisc_timer_set(r, (struct timeval){.tv_sec = sec});
}

static void redisc_close(struct redisc *r)
{
	redisAsyncContext *ac = r->ac;
	r->ac = NULL;
	r->ping_pending = false;
	if (ac != NULL)
		redisAsyncFree(ac);
}

static void redisc_fail(struct redisc *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void redisc_fail(struct redisc *r, const char *fmt, ...)
{
	char msg[REDISC_ERROR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->state == REDISC_ST_UP)
		log_warn("redis: connection lost: %s", msg);
	else if (strcmp(msg, r->error) != 0)
		log_warn("redis: cannot connect: %s", msg);
	else
		log_debug("redis: cannot connect: %s", msg);
	snprintf(r->error, sizeof(r->error), "%s", msg);

	redisc_close(r);
	r->state = REDISC_ST_WAIT;
	redisc_timer_set(r, backoff_next(&r->backoff));
}

static void redisc_pong(struct redisc *r)
{
	r->ping_pending = false;
	if (r->state != REDISC_ST_UP) {
		log_info("redis: connected");
		r->state = REDISC_ST_UP;
		r->error[0] = '\0';
		backoff_reset(&r->backoff);
	}
	redisc_timer_set_sec(r, REDISC_PING_INTERVAL_SEC);
}

/* The signature is hiredis's redisCallbackFn: ac cannot be const. */
// cppcheck-suppress constParameter
static void redisc_ping_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redisc *r = privdata;
	const redisReply *rep = reply;

	/* NULL: the context is going away; its disconnect callback reports why. */
	if (ac != r->ac || rep == NULL)
		return;
	if (rep->type == REDIS_REPLY_STATUS && rep->str != NULL && strcmp(rep->str, "PONG") == 0)
		redisc_pong(r);
	else if (rep->type == REDIS_REPLY_ERROR && rep->str != NULL)
		redisc_fail(r, "PING refused: %s", rep->str);
	else
		redisc_fail(r, "unexpected answer to PING (type %d)", rep->type);
}

static int redisc_ping(struct redisc *r)
{
	if (redisAsyncCommand(r->ac, redisc_ping_cb, r, "PING") != REDIS_OK)
		return -EIO;
	r->ping_pending = true;
	return 0;
}

static void redisc_connect_cb(const redisAsyncContext *ac, int status)
{
	struct redisc *r = ac->data;

	if (ac != r->ac)
		return;
	if (status == REDIS_OK) {
		log_debug("redis: socket connected");
		return;
	}
	/* hiredis frees the context when this returns. */
	r->ac = NULL;
	redisc_fail(r, "%s", ac->errstr ? ac->errstr : "connection failed");
}

static void redisc_disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct redisc *r = ac->data;

	if (ac != r->ac)
		return;
	/* hiredis frees the context when this returns. */
	r->ac = NULL;
	redisc_fail(r, "%s",
		    status == REDIS_OK || ac->errstr == NULL ? "disconnected" : ac->errstr);
}

static redisAsyncContext *redisc_context_new(const struct endpoint *ep)
{
	if (ep->kind == ENDPOINT_UNIX)
		return redisAsyncConnectUnix(ep->path);
	return redisAsyncConnect(ep->host, ep->port);
}

static void redisc_connect_start(struct redisc *r)
{
	redisAsyncContext *ac = redisc_context_new(&r->ep);
	if (ac == NULL) {
		redisc_fail(r, "out of memory");
		return;
	}
	if (ac->err) {
		char msg[REDISC_ERROR_LEN];
		snprintf(msg, sizeof(msg), "%s", ac->errstr);
		redisAsyncFree(ac);
		redisc_fail(r, "%s", msg);
		return;
	}
	ac->data = r;
	r->ac = ac;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK ||
	    redisAsyncSetConnectCallback(ac, redisc_connect_cb) != REDIS_OK ||
	    redisAsyncSetDisconnectCallback(ac, redisc_disconnect_cb) != REDIS_OK ||
	    redisc_ping(r) < 0) {
		redisc_fail(r, "cannot set up the connection");
		return;
	}
	r->state = REDISC_ST_CONNECTING;
	redisc_timer_set_sec(r, REDISC_CONNECT_TIMEOUT_SEC);
}

static void redisc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redisc *r = arg;

	(void)fd;
	(void)what;
	switch (r->state) {
	case REDISC_ST_WAIT:
		redisc_connect_start(r);
		break;
	case REDISC_ST_CONNECTING:
		redisc_fail(r, "no answer to PING within %d s of connecting",
			    REDISC_CONNECT_TIMEOUT_SEC);
		break;
	case REDISC_ST_UP:
		if (r->ping_pending) {
			redisc_fail(r, "no answer to PING within %d s", REDISC_PING_TIMEOUT_SEC);
		} else if (redisc_ping(r) < 0) {
			redisc_fail(r, "cannot send PING");
		} else {
			redisc_timer_set_sec(r, REDISC_PING_TIMEOUT_SEC);
		}
		break;
	}
}

int redisc_new(struct event_base *base, const char *address, struct redisc **ret_redis, char *err,
	       size_t errlen)
{
	struct endpoint ep;
	char why[128];

	if (endpoint_parse(address, ENDPOINT_ALLOW_UNIX, &ep, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "redis.address '%s': %s", address, why);
		return -EINVAL;
	}
	struct redisc *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->base = base;
	r->ep = ep;
	r->state = REDISC_ST_WAIT;
	r->timer = evtimer_new(base, redisc_timer_cb, r);
	if (r->timer == NULL) {
		snprintf(err, errlen, "out of memory");
		free(r);
		return -ENOMEM;
	}
	snprintf(r->error, sizeof(r->error), "not connected yet");
	redisc_timer_set_sec(r, 0);
	*ret_redis = r;
	return 0;
}

void redisc_free(struct redisc *redis)
{
	if (redis == NULL)
		return;
	redisc_close(redis);
	event_free(redis->timer);
	free(redis);
}

bool redisc_is_up(const struct redisc *redis)
{
	return redis->state == REDISC_ST_UP;
}

const char *redisc_error(const struct redisc *redis)
{
	return redisc_is_up(redis) ? "" : redis->error;
}
