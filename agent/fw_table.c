/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "fw_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct fw_table {
	struct fw_env env;
	struct fw_backend *backend;
	struct fw_state *mem; /* the kernel's table as last read or written; NULL: unknown */
	uint64_t generation;
	uint32_t seq;
};

struct fw_table *fw_table_new(const struct agent_conf *conf, struct fw_backend *backend)
{
	struct fw_table *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		backend->free(backend);
		return NULL;
	}
	fw_env_from_conf(&t->env, conf);
	t->backend = backend;
	t->seq = 1;
	return t;
}

void fw_table_free(struct fw_table *t)
{
	if (t == NULL)
		return;
	fw_state_free(t->mem);
	t->backend->free(t->backend);
	free(t);
}

uint64_t fw_table_generation(const struct fw_table *t)
{
	return t->generation;
}

static void forget(struct fw_table *t)
{
	fw_state_free(t->mem);
	t->mem = NULL;
}

/*
 * The table as the kernel has it: 0 and *ret, -ENOENT (no table), -EBADMSG
 * (it holds what we did not make: *foreign), or -errno with err.
 */
static int read_back(struct fw_table *t, struct fw_state **ret, bool *foreign, char *err,
		     size_t errlen)
{
	struct fw_msgs msgs;
	int r;

	fw_msgs_init(&msgs);
	r = t->backend->dump(t->backend, t->env.table, &msgs, err, errlen);
	if (r == 0) {
		char why[256];
		r = fw_nft_parse(&t->env, &msgs, ret, why, sizeof(why));
		if (r == -EBADMSG) {
			log_warn("nft table inet %s holds what this agent did not make (%s): "
				 "it is replaced",
				 t->env.table, why);
			*foreign = true;
		} else if (r == -ENOMEM) {
			snprintf(err, errlen, "out of memory reading the nft table back");
		}
	}
	fw_msgs_free(&msgs);
	return r;
}

/* Send one batch; on error the kernel kept what it had. */
static int commit(struct fw_table *t, const struct fw_msgs *batch, char *err, size_t errlen)
{
	t->seq += (uint32_t)batch->n_msgs;
	return t->backend->commit(t->backend, batch, err, errlen);
}

int fw_table_sync(struct fw_table *t, struct fw_state *desired, uint64_t generation,
		  struct fw_write_stats *ret_stats, char *err, size_t errlen)
{
	struct fw_state *kernel = NULL;
	struct fw_msgs batch;
	int r;

	memset(ret_stats, 0, sizeof(*ret_stats));
	ret_stats->users = desired->n_users;
	ret_stats->rules = desired->n_global_rules;
	for (size_t i = 0; i < desired->n_users; i++)
		ret_stats->rules += desired->users[i].n_rules;

	/* Never trust memory here: what the kernel has decides. */
	forget(t);
	r = read_back(t, &kernel, &ret_stats->foreign, err, errlen);
	if (r < 0 && r != -ENOENT && r != -EBADMSG) {
		fw_state_free(desired);
		return r;
	}
	if (kernel != NULL && fw_state_equal(kernel, desired)) {
		fw_state_free(desired);
		t->mem = kernel;
		t->generation = generation;
		return 0;
	}

	fw_state_assign_nums(desired, kernel);
	fw_msgs_init(&batch);
	r = fw_nft_build_replace(&batch, &t->env, desired, t->seq);
	if (r < 0)
		snprintf(err, errlen, "%s building the nft batch",
			 r == -E2BIG ? "too large" : "out of memory");
	else
		r = commit(t, &batch, err, errlen);
	fw_msgs_free(&batch);
	if (r < 0) {
		/* A rejected batch changes nothing, but a lost reply says nothing. */
		fw_state_free(kernel);
		fw_state_free(desired);
		return r;
	}
	fw_state_free(kernel);
	t->mem = desired;
	t->generation = generation;
	ret_stats->replaced = true;
	return 0;
}

int fw_table_current(struct fw_table *t, const struct fw_state **ret, char *err, size_t errlen)
{
	bool foreign = false;

	if (t->mem == NULL) {
		int r = read_back(t, &t->mem, &foreign, err, errlen);
		if (r == -ENOENT)
			snprintf(err, errlen, "no nft table inet %s yet: a full sync comes first",
				 t->env.table);
		else if (r == -EBADMSG)
			snprintf(err, errlen,
				 "nft table inet %s was changed by hand: a full sync comes first",
				 t->env.table);
		if (r < 0)
			return r;
	}
	*ret = t->mem;
	return 0;
}

int fw_table_patch(struct fw_table *t, struct fw_change *c, char *err, size_t errlen)
{
	const struct fw_state *cur;
	struct fw_state *next = NULL;
	struct fw_msgs batch;
	int r = fw_table_current(t, &cur, err, errlen);

	if (r < 0)
		return r;
	fw_msgs_init(&batch);
	r = fw_change_prepare(cur, c, &next);
	if (r == -E2BIG)
		snprintf(err, errlen, "no user chain number left: a full sync renumbers");
	else if (r == 0 && (r = fw_nft_build_patch(&batch, &t->env, cur, next, c, t->seq)) < 0)
		snprintf(err, errlen, "%s building the nft batch",
			 r == -E2BIG ? "too large" : "out of memory");
	else if (r < 0)
		snprintf(err, errlen, "out of memory");
	else if (batch.n_msgs > 0)
		r = commit(t, &batch, err, errlen);
	fw_msgs_free(&batch);
	fw_state_free(next);
	if (r < 0) {
		/* The kernel kept its table, but it may not be what memory says. */
		forget(t);
		return r;
	}
	if (fw_change_apply(t->mem, c) < 0) {
		/* The kernel has the change; memory is read back next time. */
		forget(t);
		log_warn("out of memory after a firewall patch: the table is read back next");
	}
	return 0;
}
