/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_SERVER_H
#define WIREGUI_AGENT_SERVER_H

/*
 * The agent's UNIX socket: directory 0750 and socket 0660, both group of
 * the frontend user; peers checked with SO_PEERCRED; one client at a time.
 */

#include "agent_conf.h"
#include "fw_table.h"
#include "wg_iface.h"

struct server;

/*
 * Creates the socket directory and the listening socket; fatal() on failure
 * (another agent serving it among them, before anything else is touched).
 */
struct server *server_new(const struct agent_conf *conf);
/* Serve requests on wg and fw until SIGINT/SIGTERM; returns 0 then. */
int server_run(struct server *srv, struct wg_iface *wg, struct fw_table *fw);
/* Closes and unlinks the socket. */
void server_free(struct server *srv);

#endif
