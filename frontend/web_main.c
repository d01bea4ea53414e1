/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * wiregui-web: the unprivileged daemon. One libevent loop carries HTTP,
 * PostgreSQL, Redis and the agent connection; it stays up and answers
 * "degraded" while any of the three is away, and reconnects by itself.
 */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent_client.h"
#include "config.h"
#include "db.h"
#include "health.h"
#include "http.h"
#include "log.h"
#include "redisc.h"
#include "web_conf.h"

struct web {
	struct event_base *base;
	struct web_conf conf;
	struct db *db;
	struct redisc *redis;
	struct agent_client *agent;
	struct health_sources health;
	struct http_server *http;
	struct event *sigint_ev, *sigterm_ev;
};

static void route_health(struct evhttp_request *req, void *ctx)
{
	struct web *web = ctx;
	health_handle(req, &web->health);
}

static const struct http_route web_routes[] = {
	{EVHTTP_REQ_GET, "/api/health", route_health},
	{EVHTTP_REQ_GET, "/healthz", route_health},
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wiregui-web [-c CONFIG]\n"
		"       wiregui-web --version | --help\n"
		"\n"
		"  -c, --config FILE  configuration file (default: %s if it exists;\n"
		"                     every key can also be set as WIREGUI_<SECTION>_<KEY>)\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         print this help and exit\n",
		WEB_CONF_DEFAULT_PATH);
}

/* Returns the config path (NULL: none), or exits for --help/--version/bad usage. */
static const char *parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "c:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'V':
			printf("wiregui-web %s\n", WIREGUI_VERSION);
			exit(EXIT_SUCCESS);
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (path == NULL && access(WEB_CONF_DEFAULT_PATH, F_OK) == 0)
		path = WEB_CONF_DEFAULT_PATH;
	return path;
}

static void web_load_conf(struct web *web, const char *path)
{
	char err[512];

	if (web_conf_load(path, &web->conf, err, sizeof(err)) < 0)
		fatalx("%s", err);
	log_set_level(web->conf.log_level);
	log_debug("configuration: %s", path ? path : "(defaults and environment)");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct web *web = arg;

	(void)what;
	log_info("%s: shutting down", strsignal((int)sig));
	event_base_loopbreak(web->base);
}

static void web_start(struct web *web)
{
	char err[512];
	struct http_limits limits = {
		.max_header_size = web->conf.http_max_header_size,
		.max_body_size = web->conf.http_max_body_size,
		.timeout = (unsigned)web->conf.http_timeout,
	};

	web->base = event_base_new();
	if (web->base == NULL)
		fatalx("cannot create the event loop");
	if (db_new(web->base, web->conf.database_url, &web->db, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (redisc_new(web->base, web->conf.redis_address, &web->redis, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (agent_client_new(web->base, web->conf.agent_socket, "wiregui-web " WIREGUI_VERSION,
			     &web->agent, err, sizeof(err)) < 0)
		fatalx("%s", err);
	web->health = (struct health_sources){web->db, web->redis, web->agent};
	if (http_server_new(web->base, web->conf.http_address, &limits, web_routes,
			    sizeof(web_routes) / sizeof(web_routes[0]), web, &web->http, err,
			    sizeof(err)) < 0)
		fatalx("%s", err);

	web->sigint_ev = evsignal_new(web->base, SIGINT, on_signal, web);
	web->sigterm_ev = evsignal_new(web->base, SIGTERM, on_signal, web);
	if (web->sigint_ev == NULL || web->sigterm_ev == NULL ||
	    evsignal_add(web->sigint_ev, NULL) < 0 || evsignal_add(web->sigterm_ev, NULL) < 0)
		fatalx("cannot install signal handlers");
}

static void web_stop(struct web *web)
{
	if (web->sigterm_ev != NULL)
		event_free(web->sigterm_ev);
	if (web->sigint_ev != NULL)
		event_free(web->sigint_ev);
	http_server_free(web->http);
	agent_client_free(web->agent);
	redisc_free(web->redis);
	db_free(web->db);
	if (web->base != NULL)
		event_base_free(web->base);
	web_conf_free(&web->conf);
}

/* Every client connection costs a descriptor: allow as many as the hard limit does. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the descriptor limit: %s", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	struct web web = {0};

	log_init("wiregui-web", LOG_LVL_INFO);
	web_load_conf(&web, parse_args(argc, argv));
	if (geteuid() == 0)
		log_warn(
			"running as root: wiregui-web needs no privileges, run it as its own user");
	/* Writes to a closed peer must fail with EPIPE, not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	web_start(&web);
	log_info("wiregui-web %s listening on %s", WIREGUI_VERSION, web.conf.http_address);
	int r = event_base_dispatch(web.base);
	web_stop(&web);
	libevent_global_shutdown();
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
