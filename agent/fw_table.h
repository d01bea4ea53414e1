/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_FW_TABLE_H
#define WIREGUI_AGENT_FW_TABLE_H

/*
 * The one nftables table this agent owns (inet <firewall.table>), written
 * in whole transactions through a backend: NETLINK_NETFILTER (fw_nl.c), or
 * an in-memory fake in tests.
 *
 * Memory: the state the kernel's table has, as last read back or written
 * by this process; "unknown" at start and after any failed transaction, and
 * then read back from the kernel before it is used. A full sync always reads
 * the table back (it never trusts memory), compares, and writes nothing when
 * equal; otherwise it replaces the table in one transaction. A patch builds
 * on memory (read back first when unknown) and is one transaction.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_conf.h"
#include "fw.h"
#include "fw_nft.h"

struct fw_backend {
	/*
	 * Send one batch (a whole transaction) and wait for its outcome. 0, or
	 * -errno of the first failing message with err naming its object
	 * (fw_msgs_what): the kernel then applied none of the batch.
	 */
	int (*commit)(struct fw_backend *b, const struct fw_msgs *batch, char *err, size_t errlen);
	/*
	 * Every object of table (family inet) as NEW* messages: the table,
	 * chains, sets, each set's elements, rules. 0, -ENOENT (no such table),
	 * or -errno with err.
	 */
	int (*dump)(struct fw_backend *b, const char *table, struct fw_msgs *out, char *err,
		    size_t errlen);
	void (*free)(struct fw_backend *b);
	/* Batches committed (tests: a no-op sync commits nothing). */
	uint64_t commits;
};

/* The netlink backend; opens a NETLINK_NETFILTER socket, touches nothing. */
int fw_nl_open(struct fw_backend **ret, char *err, size_t errlen);

struct fw_table;

/* backend: owned from now on. Writes nothing. */
struct fw_table *fw_table_new(const struct agent_conf *conf, struct fw_backend *backend);
void fw_table_free(struct fw_table *t);

/* Last full sync applied by this process (0: none yet). */
uint64_t fw_table_generation(const struct fw_table *t);

struct fw_write_stats {
	bool replaced;	     /* false: the kernel already had it */
	bool foreign;	     /* the table held something we did not make (why logged) */
	size_t users, rules; /* in the desired state */
};

/*
 * Make the table desired's (normalized; nums are assigned here, reusing the
 * kernel's). Takes desired (freed here, or kept as memory). 0 or -errno
 * with err; on error the kernel's table is as it was.
 */
int fw_table_sync(struct fw_table *t, struct fw_state *desired, uint64_t generation,
		  struct fw_write_stats *ret_stats, char *err, size_t errlen);

/*
 * The state a patch would apply to (memory, read back first when unknown).
 * -ENOENT: there is no table yet (a patch needs a full sync first).
 */
int fw_table_current(struct fw_table *t, const struct fw_state **ret, char *err, size_t errlen);

/*
 * Apply a validated change in one transaction (c is prepared here: see
 * fw_change_prepare). 0 or -errno with err; on error the kernel's table is
 * as it was.
 */
int fw_table_patch(struct fw_table *t, struct fw_change *c, char *err, size_t errlen);

#endif
