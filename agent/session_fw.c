/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The firewall requests: a full sync streamed as FirewallSyncBegin, Batch x
 * N, End (checked as it comes, applied at the End in one transaction), and
 * FirewallPatch (checked against the table's state, one transaction).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "session_int.h"
#include "validate.h"

void fw_stream_reset(struct session *s)
{
	fw_state_free(s->fw_stream.desired);
	memset(&s->fw_stream, 0, sizeof(s->fw_stream));
	s->state = ST_READY;
}

/* The stream failed: what it built goes. */
static int fw_stream_fail(struct session *s, uint64_t request_id, int r)
{
	struct fw_stream *st = &s->fw_stream;
	fw_state_free(st->desired);
	st->desired = NULL;
	return stream_error_set(s, &st->fail, request_id, r);
}

static int fw_begin_check(const struct agent_conf *conf, const Wiregui__FirewallSyncBegin *m,
			  struct fw_settings *ret_settings, struct verr *err)
{
	unsigned long max_global = conf->max_rules < FW_MAX_GLOBAL_RULES ? conf->max_rules
									 : FW_MAX_GLOBAL_RULES;

	if (m->generation == 0)
		return verr_set(err, "generation", "must not be 0");
	if (m->total_users > conf->max_users) {
		verr_set(err, "total_users", "%u users, this agent takes at most %lu",
			 m->total_users, conf->max_users);
		return -E2BIG;
	}
	if (m->total_global_rules > max_global) {
		verr_set(err, "total_global_rules", "%u global rules, this agent takes at most %lu",
			 m->total_global_rules, max_global);
		return -E2BIG;
	}
	return validate_fw_settings(m->settings, "settings", ret_settings, err);
}

int handle_fw_sync_begin(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__FirewallSyncBegin *m = (const Wiregui__FirewallSyncBegin *)msg;
	struct fw_stream *st = &s->fw_stream;
	int r;

	fw_stream_reset(s);
	s->state = ST_FW_SYNC;
	st->generation = m->generation;
	st->total_users = m->total_users;
	st->total_global_rules = m->total_global_rules;
	st->desired = fw_state_new();
	if (st->desired == NULL)
		return fw_stream_fail(s, request_id, -ENOMEM);
	if ((r = fw_begin_check(s->conf, m, &st->desired->settings, &st->fail.err)) < 0)
		return fw_stream_fail(s, request_id, r);
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, "");
}

/* One more rule (at field) in the stream's count of all rules. */
static int fw_stream_count_rules(struct fw_stream *st, size_t n, const struct agent_conf *conf,
				 const char *list, size_t index, const char *sub)
{
	char field[sizeof(st->fail.err.field)];

	if ((st->rules += n) <= conf->max_rules)
		return 0;
	snprintf(field, sizeof(field), "%s[%zu]%s", list, index, sub);
	verr_set(&st->fail.err, field, "rules beyond %lu in all", conf->max_rules);
	return -E2BIG;
}

static int fw_batch_add(struct session *s, const Wiregui__FirewallSyncBatch *m)
{
	struct fw_stream *st = &s->fw_stream;
	struct fw_state *desired = st->desired;
	int r = 0;

	for (size_t i = 0; i < m->n_users && r == 0; i++) {
		size_t index = desired->n_users;
		r = validate_fw_user(m->users[i], s->conf, "users", index, desired, &st->fail.err);
		if (r == 0)
			r = fw_stream_count_rules(st, m->users[i]->n_rules, s->conf, "users", index,
						  ".rules");
		if (r == 0 && (st->addrs += m->users[i]->n_addresses) >
				      VALIDATE_ADDRS_PER_PEER * s->conf->max_peers) {
			char field[sizeof(st->fail.err.field)];
			snprintf(field, sizeof(field), "users[%zu].addresses", index);
			verr_set(&st->fail.err, field, "addresses beyond %lu in all",
				 VALIDATE_ADDRS_PER_PEER * s->conf->max_peers);
			r = -E2BIG;
		}
	}
	for (size_t k = 0; k < m->n_global_rules && r == 0; k++) {
		size_t index = desired->n_global_rules;
		struct fw_rule *rule = fw_state_add_global_rule(desired);
		if (rule == NULL)
			return -ENOMEM;
		r = validate_fw_rule(m->global_rules[k], "global_rules", index, rule,
				     &st->fail.err);
		if (r == 0)
			r = fw_stream_count_rules(st, 1, s->conf, "global_rules", index, "");
	}
	return r;
}

int handle_fw_sync_batch(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__FirewallSyncBatch *m = (const Wiregui__FirewallSyncBatch *)msg;
	struct fw_stream *st = &s->fw_stream;
	struct verr *err = &st->fail.err;
	int r = -E2BIG;

	st->batches++;
	if (st->fail.code != WIREGUI__ERROR_CODE__OK)
		return stream_error_answer(s, &st->fail, request_id);
	if (m->n_users + m->n_global_rules > FRAME_MAX_BATCH)
		verr_set(err, "users", "batch %zu carries %zu users and global rules, at most %d",
			 st->batches, m->n_users + m->n_global_rules, FRAME_MAX_BATCH);
	else if (st->desired->n_users + m->n_users > st->total_users)
		verr_set(err, "users", "batch %zu brings %zu users, beyond total_users %u",
			 st->batches, st->desired->n_users + m->n_users, st->total_users);
	else if (st->desired->n_global_rules + m->n_global_rules > st->total_global_rules)
		verr_set(err, "global_rules",
			 "batch %zu brings %zu global rules, beyond total_global_rules %u",
			 st->batches, st->desired->n_global_rules + m->n_global_rules,
			 st->total_global_rules);
	else
		r = fw_batch_add(s, m);
	if (r < 0)
		return fw_stream_fail(s, request_id, r);
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, "");
}

static int fw_end_check(const struct session *s, const Wiregui__FirewallSyncEnd *m,
			struct verr *err)
{
	const struct fw_stream *st = &s->fw_stream;

	if (m->generation != st->generation)
		return verr_set(err, "generation", "%llu, Begin said %llu",
				(unsigned long long)m->generation,
				(unsigned long long)st->generation);
	if (st->desired->n_users != st->total_users)
		return verr_set(err, "total_users",
				"Begin announced %u users, the batches carried %zu",
				st->total_users, st->desired->n_users);
	if (st->desired->n_global_rules != st->total_global_rules)
		return verr_set(err, "total_global_rules",
				"Begin announced %u global rules, the batches carried %zu",
				st->total_global_rules, st->desired->n_global_rules);
	return validate_fw_state(st->desired, s->conf, err);
}

/* The table takes the stream's state (and frees it). */
static int fw_sync_apply(struct session *s, struct fw_state *desired, uint64_t generation,
			 uint64_t request_id)
{
	struct fw_write_stats ws;
	char why[256];

	fw_state_normalize(desired);
	int r = fw_table_sync(s->fw, desired, generation, &ws, why, sizeof(why));
	if (r < 0)
		return session_result(s, request_id, session_write_code(r), NULL, why);
	snprintf(why, sizeof(why), "generation %llu: table %s, %zu users, %zu rules%s",
		 (unsigned long long)generation, ws.replaced ? "replaced" : "unchanged", ws.users,
		 ws.rules, ws.foreign ? " (it held objects this agent did not make)" : "");
	if (ws.replaced)
		log_info("firewall sync %s", why);
	else
		log_debug("firewall sync %s", why);
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, why);
}

int handle_fw_sync_end(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__FirewallSyncEnd *m = (const Wiregui__FirewallSyncEnd *)msg;
	struct fw_stream *st = &s->fw_stream;
	int r;

	if (st->fail.code != WIREGUI__ERROR_CODE__OK)
		r = stream_error_answer(s, &st->fail, request_id);
	else if ((r = fw_end_check(s, m, &st->fail.err)) < 0)
		r = fw_stream_fail(s, request_id, r);
	if (st->fail.code != WIREGUI__ERROR_CODE__OK) {
		fw_stream_reset(s);
		return r;
	}
	struct fw_state *desired = st->desired;
	st->desired = NULL;
	fw_stream_reset(s);
	return fw_sync_apply(s, desired, m->generation, request_id);
}

/* The removals of a list of ids (list names them) into ids (room for n). */
static int fw_patch_ids(const ProtobufCBinaryData *m, size_t n, const char *list,
			uint8_t (*ids)[FW_ID_LEN], size_t *ret_n, struct verr *err)
{
	char field[64];

	for (size_t i = 0; i < n; i++) {
		snprintf(field, sizeof(field), "%s[%zu]", list, i);
		if (validate_fw_id(&m[i], field, ids[i], err) < 0)
			return -EINVAL;
		*ret_n = i + 1;
	}
	return 0;
}

static int fw_patch_upserts(struct session *s, const Wiregui__FirewallPatch *m, struct fw_state *up,
			    struct verr *err)
{
	int r = 0;

	for (size_t i = 0; i < m->n_upsert_users && r == 0; i++)
		r = validate_fw_user(m->upsert_users[i], s->conf, "upsert_users", i, up, err);
	for (size_t k = 0; k < m->n_upsert_global_rules && r == 0; k++) {
		struct fw_rule *rule = fw_state_add_global_rule(up);
		if (rule == NULL)
			return -ENOMEM;
		r = validate_fw_rule(m->upsert_global_rules[k], "upsert_global_rules", k, rule,
				     err);
	}
	return r;
}

/* Every field of the patch into c (whose contents the caller frees). */
static int fw_patch_collect(struct session *s, const Wiregui__FirewallPatch *m, struct fw_change *c,
			    struct verr *err)
{
	size_t n = m->n_upsert_users + m->n_remove_users + m->n_upsert_global_rules +
		   m->n_remove_global_rules;
	int r;

	if (n > FRAME_MAX_BATCH) {
		verr_set(err, "upsert_users", "%zu changes, at most %d a patch", n,
			 FRAME_MAX_BATCH);
		return -E2BIG;
	}
	c->upsert = fw_state_new();
	c->remove_users = calloc(m->n_remove_users + 1, FW_ID_LEN);
	c->remove_rules = calloc(m->n_remove_global_rules + 1, FW_ID_LEN);
	if (c->upsert == NULL || c->remove_users == NULL || c->remove_rules == NULL)
		return -ENOMEM;
	if ((r = fw_patch_upserts(s, m, c->upsert, err)) < 0 ||
	    (r = fw_patch_ids(m->remove_users, m->n_remove_users, "remove_users", c->remove_users,
			      &c->n_remove_users, err)) < 0 ||
	    (r = fw_patch_ids(m->remove_global_rules, m->n_remove_global_rules,
			      "remove_global_rules", c->remove_rules, &c->n_remove_rules, err)) < 0)
		return r;
	c->has_settings = m->settings != NULL;
	if (c->has_settings)
		return validate_fw_settings(m->settings, "settings", &c->settings, err);
	return 0;
}

/* The table's state could not be had: a patch needs a full sync first, or the kernel failed. */
static int fw_patch_no_base(struct session *s, uint64_t request_id, int r, const char *why)
{
	if (r == -ENOENT)
		return session_result(s, request_id, WIREGUI__ERROR_CODE__OUT_OF_STATE, NULL,
				      "no firewall full sync yet");
	if (r == -EBADMSG) /* changed by hand: only a full sync settles it */
		return session_result(s, request_id, WIREGUI__ERROR_CODE__OUT_OF_STATE, NULL, why);
	return session_result(s, request_id, session_write_code(r), NULL, why);
}

int handle_fw_patch(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__FirewallPatch *m = (const Wiregui__FirewallPatch *)msg;
	struct fw_change c = {0};
	const struct fw_state *cur;
	struct verr err = {0};
	char why[256];
	int r = fw_patch_collect(s, m, &c, &err);

	if (r == 0) {
		if ((r = fw_table_current(s->fw, &cur, why, sizeof(why))) < 0) {
			fw_change_free(&c);
			return fw_patch_no_base(s, request_id, r, why);
		}
		r = validate_fw_change(cur, &c, s->conf, &err);
	}
	if (r < 0) {
		fw_change_free(&c);
		return session_verr(s, request_id, r, &err);
	}
	fw_state_normalize(c.upsert);
	r = fw_table_patch(s->fw, &c, why, sizeof(why));
	fw_change_free(&c);
	if (r < 0)
		return session_result(s, request_id, session_write_code(r), NULL, why);
	log_debug("firewall patch: %zu users upserted, %zu removed; %zu global rules upserted, "
		  "%zu removed%s",
		  m->n_upsert_users, m->n_remove_users, m->n_upsert_global_rules,
		  m->n_remove_global_rules, m->settings ? "; settings" : "");
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, "");
}
