/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "endpoint.h"
#include "log.h"

/* After accept() ran out of descriptors, wait this long before accepting again. */
#define HTTP_ACCEPT_PAUSE_SEC 1

struct http_server {
	struct evhttp *http;
	const struct http_route *routes;
	size_t nroutes;
	void *ctx;
};

/* Methods evhttp lets through to us at all; anything else gets its 501. */
#define HTTP_METHODS                                                                               \
	(EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	 EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS)

static const struct {
	enum evhttp_cmd_type method;
	const char *name;
} http_method_names[] = {
	{EVHTTP_REQ_GET, "GET"},	 {EVHTTP_REQ_HEAD, "HEAD"},	{EVHTTP_REQ_POST, "POST"},
	{EVHTTP_REQ_PUT, "PUT"},	 {EVHTTP_REQ_DELETE, "DELETE"}, {EVHTTP_REQ_PATCH, "PATCH"},
	{EVHTTP_REQ_OPTIONS, "OPTIONS"},
};

static const char *http_method_name(enum evhttp_cmd_type method)
{
	for (size_t i = 0; i < sizeof(http_method_names) / sizeof(http_method_names[0]); i++)
		if (http_method_names[i].method == method)
			return http_method_names[i].name;
	return "?";
}

static void http_add_security_headers(struct evkeyvalq *h)
{
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

void http_reply_json(struct evhttp_request *req, int code, struct json_object *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	size_t len;
	const char *text = json_object_to_json_string_length(
		body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	evhttp_add_header(h, "Content-Type", "application/json");
	http_add_security_headers(h);
	if (text == NULL || evbuffer_add(evhttp_request_get_output_buffer(req), text, len) < 0) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_send_reply(req, code, NULL, NULL);
}

void http_reply_error(struct evhttp_request *req, int code, const char *error)
{
	struct json_object *body = json_object_new_object();
	if (body == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	json_object_object_add(body, "error", json_object_new_string(error));
	http_reply_json(req, code, body);
	json_object_put(body);
}

static bool http_route_matches_method(const struct http_route *route, enum evhttp_cmd_type method)
{
	return route->method == method ||
	       (method == EVHTTP_REQ_HEAD && route->method == EVHTTP_REQ_GET);
}

/* "GET, HEAD, POST": every method some route serves for this path. */
static void http_allow_header(const struct http_server *srv, const char *path, char *buf,
			      size_t len)
{
	unsigned seen = 0;
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < srv->nroutes; i++) {
		const struct http_route *route = &srv->routes[i];
		if (strcmp(route->path, path) != 0 || (seen & (unsigned)route->method))
			continue;
		seen |= (unsigned)route->method;
		const char *name = http_method_name(route->method);
		int n = snprintf(buf + used, len - used, "%s%s%s", used ? ", " : "", name,
				 route->method == EVHTTP_REQ_GET ? ", HEAD" : "");
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

static void http_dispatch(struct evhttp_request *req, void *arg)
{
	struct http_server *srv = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	bool path_known = false;

	if (path == NULL || path[0] == '\0')
		path = "/";
	for (size_t i = 0; i < srv->nroutes; i++) {
		const struct http_route *route = &srv->routes[i];
		if (strcmp(route->path, path) != 0)
			continue;
		path_known = true;
		if (http_route_matches_method(route, method)) {
			route->handler(req, srv->ctx);
			return;
		}
	}
	if (!path_known) {
		http_reply_error(req, HTTP_NOTFOUND, "not_found");
		return;
	}
	char allow[128];
	http_allow_header(srv, path, allow, sizeof(allow));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	http_reply_error(req, HTTP_BADMETHOD, "method_not_allowed");
}

static void http_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evconnlistener_enable(arg);
}

/*
 * accept() failing for lack of descriptors or memory would fail again on
 * every loop turn (the pending connection stays queued): pause accepting
 * for a moment instead of spinning, and say so once per pause.
 */
static void http_accept_error(struct evconnlistener *listener, void *arg)
{
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval pause = {.tv_sec = HTTP_ACCEPT_PAUSE_SEC};

	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_warn("accept: %s", strerror(e));
		return;
	}
	log_warn("accept: %s: not accepting connections for %d s", strerror(e),
		 HTTP_ACCEPT_PAUSE_SEC);
	(void)arg; /* evhttp's, not ours */
	evconnlistener_disable(listener);
	/* A one-shot timer of the base: freed with it if the loop ends first. */
	if (event_base_once(evconnlistener_get_base(listener), -1, EV_TIMEOUT, http_accept_resume,
			    listener, &pause) < 0)
		evconnlistener_enable(listener);
}

static int http_listen(struct http_server *srv, const char *address, char *err, size_t errlen)
{
	struct endpoint ep;
	char why[128];

	if (endpoint_parse(address, 0, &ep, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "http.address '%s': %s", address, why);
		return -EINVAL;
	}
	errno = 0;
	struct evhttp_bound_socket *bound =
		evhttp_bind_socket_with_handle(srv->http, ep.host, ep.port);
	if (bound == NULL) {
		int e = errno ? errno : EADDRNOTAVAIL;
		snprintf(err, errlen, "cannot listen on %s: %s", address, strerror(e));
		return -e;
	}
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), http_accept_error);
	return 0;
}

static void http_apply_limits(struct evhttp *http, const struct http_limits *limits)
{
	/* evhttp's own defaults are unlimited: always set both. */
	evhttp_set_max_headers_size(http, (ev_ssize_t)limits->max_header_size);
	evhttp_set_max_body_size(http, (ev_ssize_t)limits->max_body_size);
	struct timeval tv = {.tv_sec = (time_t)limits->timeout};
	evhttp_set_timeout_tv(http, &tv);
	evhttp_set_allowed_methods(http, HTTP_METHODS);
	/*
	 * Read and discard an over-long body before answering 413; closing
	 * with unread data would reset the connection and the client would
	 * never see the status. The read timeout still bounds it.
	 */
	evhttp_set_flags(http, EVHTTP_SERVER_LINGERING_CLOSE);
}

int http_server_new(struct event_base *base, const char *address, const struct http_limits *limits,
		    const struct http_route *routes, size_t nroutes, void *ctx,
		    struct http_server **ret_server, char *err, size_t errlen)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	int r;

	if (srv == NULL)
		return -ENOMEM;
	srv->routes = routes;
	srv->nroutes = nroutes;
	srv->ctx = ctx;
	srv->http = evhttp_new(base);
	if (srv->http == NULL) {
		r = -ENOMEM;
		snprintf(err, errlen, "evhttp_new failed");
		goto err_free_srv;
	}
	http_apply_limits(srv->http, limits);
	evhttp_set_gencb(srv->http, http_dispatch, srv);
	r = http_listen(srv, address, err, errlen);
	if (r < 0)
		goto err_free_http;
	*ret_server = srv;
	return 0;

err_free_http:
	evhttp_free(srv->http);
err_free_srv:
	free(srv);
	return r;
}

void http_server_free(struct http_server *server)
{
	if (server == NULL)
		return;
	evhttp_free(server->http);
	free(server);
}
