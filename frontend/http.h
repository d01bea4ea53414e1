/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_HTTP_H
#define WIREGUI_HTTP_H

/*
 * The HTTP server of wiregui-web: evhttp with explicit limits, a route table
 * (method, exact path, handler) and JSON replies carrying the security
 * headers. Unknown paths get 404 {"error":"not_found"}; a known path with
 * another method gets 405 with Allow. HEAD is served by GET routes.
 */

#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>

/* ctx is the pointer given to http_server_new(). */
typedef void (*http_handler_fn)(struct evhttp_request *req, void *ctx);

struct http_route {
	enum evhttp_cmd_type method;
	const char *path;
	http_handler_fn handler;
};

struct http_limits {
	size_t max_header_size; /* all request headers together, bytes */
	size_t max_body_size;	/* bytes */
	unsigned timeout; /* seconds a client may stay silent mid-request (evhttp inactivity) */
};

struct http_server;

/*
 * Listen on address ("host:port" or "[v6]:port"). routes must outlive the
 * server. 0, or -EINVAL (address) / -errno (bind, listen) with a message in err.
 */
int http_server_new(struct event_base *base, const char *address, const struct http_limits *limits,
		    const struct http_route *routes, size_t nroutes, void *ctx,
		    struct http_server **ret_server, char *err, size_t errlen);
void http_server_free(struct http_server *server);

/* Reply with body serialised as JSON (body stays the caller's). */
void http_reply_json(struct evhttp_request *req, int code, struct json_object *body);
/* Reply {"error": error}. */
void http_reply_error(struct evhttp_request *req, int code, const char *error);

#endif
