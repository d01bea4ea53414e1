/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_HEALTH_H
#define WIREGUI_HEALTH_H

/*
 * GET /api/health and /healthz: the state of PostgreSQL, Redis and the
 * agent as their connection modules track it (no I/O here). 200 and
 * "ok" when all three are up, else 503 and "degraded":
 *
 *   {"status":"ok","version":"0.1.0",
 *    "postgresql":{"status":"up"},
 *    "redis":{"status":"down","error":"Connection refused"},
 *    "agent":{"status":"up","backend":"userspace","interfaces":["wg0"],...}}
 */

#include <stdbool.h>

#include <event2/http.h>
#include <json-c/json.h>

struct db;
struct redisc;
struct agent_client;

struct health_sources {
	const struct db *db;
	const struct redisc *redis;
	const struct agent_client *agent;
};

/* The report; *ret_ok is false when something is down. NULL on allocation failure. */
struct json_object *health_report(const struct health_sources *src, bool *ret_ok);
void health_handle(struct evhttp_request *req, const struct health_sources *src);

#endif
