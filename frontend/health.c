/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "health.h"

#include "agent_client.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "redisc.h"

static struct json_object *health_component(bool up, const char *error)
{
	struct json_object *o = json_object_new_object();
	if (o == NULL)
		return NULL;
	json_object_object_add(o, "status", json_object_new_string(up ? "up" : "down"));
	if (!up && error != NULL && error[0] != '\0')
		json_object_object_add(o, "error", json_object_new_string(error));
	return o;
}

static struct json_object *health_agent(const struct agent_client *agent)
{
	const struct agent_info *info = agent_client_info(agent);
	struct json_object *o = health_component(info != NULL, agent_client_error(agent));

	if (o == NULL || info == NULL)
		return o;
	json_object_object_add(o, "backend",
			       json_object_new_string(agent_backend_name(info->backend)));
	struct json_object *ifs = json_object_new_array();
	for (size_t i = 0; ifs != NULL && i < info->n_interfaces; i++)
		json_object_array_add(ifs, json_object_new_string(info->interfaces[i]));
	json_object_object_add(o, "interfaces", ifs);
	json_object_object_add(o, "version", json_object_new_string(info->agent_version));
	json_object_object_add(o, "peers_generation",
			       json_object_new_uint64(info->peers_generation));
	json_object_object_add(o, "firewall_generation",
			       json_object_new_uint64(info->firewall_generation));
	return o;
}

struct json_object *health_report(const struct health_sources *src, bool *ret_ok)
{
	bool ok = db_is_up(src->db) && redisc_is_up(src->redis) && agent_client_is_up(src->agent);
	struct json_object *report = json_object_new_object();

	if (report == NULL)
		return NULL;
	json_object_object_add(report, "status", json_object_new_string(ok ? "ok" : "degraded"));
	json_object_object_add(report, "version", json_object_new_string(WIREGUI_VERSION));
	json_object_object_add(report, "postgresql",
			       health_component(db_is_up(src->db), db_error(src->db)));
	json_object_object_add(report, "redis",
			       health_component(redisc_is_up(src->redis),
						redisc_error(src->redis)));
	json_object_object_add(report, "agent", health_agent(src->agent));
	*ret_ok = ok;
	return report;
}

void health_handle(struct evhttp_request *req, const struct health_sources *src)
{
	bool ok;
	struct json_object *report = health_report(src, &ok);

	if (report == NULL) {
		http_reply_error(req, HTTP_INTERNAL, "internal");
		return;
	}
	http_reply_json(req, ok ? HTTP_OK : HTTP_SERVUNAVAIL, report);
	json_object_put(report);
}
