/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_CLIENT_H
#define WIREGUI_AGENT_CLIENT_H

/*
 * wiregui-web's side of the agent socket (proto/agent.proto, common/frame.h).
 *
 * Connects to the UNIX socket, sends Hello and is "up" once the HelloReply
 * arrived. Requests go out with agent_client_request(), which numbers them;
 * the agent answers in order, so each reply must match the oldest pending
 * request and is handed to that request's callback. A protocol violation,
 * EOF or error closes the connection; it is retried with a growing delay
 * (backoff.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "frame.h"

struct agent_client;

/* What the agent said in its HelloReply; valid while the client is up. */
struct agent_info {
	Wiregui__Backend backend;
	char *agent_version;
	char **interfaces; /* names, n_interfaces of them */
	size_t n_interfaces;
	char *nft_table;
	uint64_t peers_generation;
	uint64_t firewall_generation;
	uint32_t max_frame, max_batch, max_peers, max_users, max_rules;
};

/*
 * The answer to a request: a HelloReply/StatsReply/Result as type says, or
 * reply NULL (type 0) when the connection went away first. reply is only
 * valid during the call. A StatsRequest's callback runs once per StatsReply.
 */
typedef void (*agent_reply_fn)(struct agent_client *ac, uint16_t type,
			       const ProtobufCMessage *reply, void *arg);

/* Called after the client went up (HelloReply) or down. */
typedef void (*agent_state_fn)(struct agent_client *ac, bool up, void *arg);

/* client_name goes into Hello.client ("wiregui-web 0.1.0"). 0, -EINVAL (path), -ENOMEM. */
int agent_client_new(struct event_base *base, const char *socket_path, const char *client_name,
		     struct agent_client **ret_ac, char *err, size_t errlen);
void agent_client_free(struct agent_client *ac);

void agent_client_set_state_cb(struct agent_client *ac, agent_state_fn fn, void *arg);

bool agent_client_is_up(const struct agent_client *ac);
/* Why the last attempt or connection failed; "" when up. */
const char *agent_client_error(const struct agent_client *ac);
/* NULL unless up. */
const struct agent_info *agent_client_info(const struct agent_client *ac);

/*
 * Send a request of the given type (msg's descriptor must match). Its
 * request_id field is set here, from the client's counter. 0, -ENOTCONN
 * (not up), -EINVAL (type), -EMSGSIZE, -ENOMEM.
 */
int agent_client_request(struct agent_client *ac, uint16_t type, ProtobufCMessage *msg,
			 agent_reply_fn cb, void *arg);

/* "none", "kernel", "userspace" or "unknown". */
const char *agent_backend_name(Wiregui__Backend backend);
/* "OK", "BUSY", ... as in agent.proto. */
const char *agent_error_code_name(Wiregui__ErrorCode code);

#endif
