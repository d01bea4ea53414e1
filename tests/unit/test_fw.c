/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The firewall model (agent/fw.c): order, equality, nums, and that a
 * prepared patch applied in place gives what the whole new state would.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check_run.h"
#include "fw.h"

static void id_of(uint8_t id[FW_ID_LEN], unsigned n)
{
	memset(id, 0, FW_ID_LEN);
	id[FW_ID_LEN - 2] = (uint8_t)(n >> 8);
	id[FW_ID_LEN - 1] = (uint8_t)n;
}

static struct fw_user *user(struct fw_state *s, unsigned n, bool active, unsigned nrules)
{
	struct fw_user *u = fw_state_add_user(s);
	ck_assert_ptr_nonnull(u);
	id_of(u->id, n);
	u->active = active;
	struct ip_addr a = {.family = AF_INET, .bytes = {10, 3, (uint8_t)(n >> 8), (uint8_t)n}};
	ck_assert_int_eq(fw_user_add_addr(u, &a), 0);
	for (unsigned i = 0; i < nrules; i++) {
		struct fw_rule *r = fw_user_add_rule(u);
		ck_assert_ptr_nonnull(r);
		id_of(r->id, 1000 * n + i);
		r->priority = (int32_t)(nrules - i); /* reverse order: normalize sorts */
		r->dst.addr.family = AF_INET;
		r->dst.addr.bytes[0] = 192;
		r->dst.prefix = 8;
		r->accept = i % 2;
	}
	return u;
}

START_TEST(test_normalize_and_equal)
{
	struct fw_state *a = fw_state_new(), *b = fw_state_new();
	for (unsigned n = 5; n >= 1; n--)
		user(a, n, n % 2, 3);
	for (unsigned n = 1; n <= 5; n++)
		user(b, n, n % 2, 3);
	fw_state_normalize(a);
	fw_state_normalize(b);
	for (size_t i = 1; i < a->n_users; i++)
		ck_assert_int_lt(memcmp(a->users[i - 1].id, a->users[i].id, FW_ID_LEN), 0);
	ck_assert_int_le(a->users[0].rules[0].priority, a->users[0].rules[1].priority);
	a->users[2].num = 77; /* nums do not count */
	ck_assert(fw_state_equal(a, b));
	b->users[2].rules[1].port_to = 9;
	ck_assert(!fw_state_equal(a, b));
	b->users[2].rules[1].port_to = 0;
	b->settings.client_isolation = true;
	ck_assert(!fw_state_equal(a, b));
	b->settings.client_isolation = false;
	b->users[4].active = !b->users[4].active;
	ck_assert(!fw_state_equal(a, b));

	struct fw_state *c = fw_state_copy(a);
	ck_assert(fw_state_equal(a, c));
	ck_assert_ptr_ne(c->users[0].rules, a->users[0].rules);
	fw_state_free(a);
	fw_state_free(b);
	fw_state_free(c);
}
END_TEST

START_TEST(test_assign_nums)
{
	struct fw_state *prev = fw_state_new(), *s = fw_state_new();
	user(prev, 1, true, 0)->num = 4;
	user(prev, 2, true, 0)->num = 9;
	for (unsigned n = 1; n <= 4; n++)
		user(s, n, true, 0);
	fw_state_normalize(prev);
	fw_state_normalize(s);
	fw_state_assign_nums(s, prev);
	ck_assert_uint_eq(s->users[0].num, 4);
	ck_assert_uint_eq(s->users[1].num, 9);
	ck_assert_uint_eq(s->users[2].num, 10);
	ck_assert_uint_eq(s->users[3].num, 11);
	fw_state_assign_nums(s, NULL);
	for (size_t i = 0; i < s->n_users; i++)
		ck_assert_uint_eq(s->users[i].num, i + 1);
	ck_assert_ptr_null(fw_state_find_user(s, (uint8_t[FW_ID_LEN]){1}));
	fw_state_free(prev);
	fw_state_free(s);
}
END_TEST

static struct fw_rule *global(struct fw_state *s, unsigned n, int32_t prio)
{
	struct fw_rule *r = fw_state_add_global_rule(s);
	ck_assert_ptr_nonnull(r);
	id_of(r->id, 50000 + n);
	r->priority = prio;
	r->dst.addr.family = AF_INET6;
	r->dst.prefix = 0;
	return r;
}

START_TEST(test_change)
{
	struct fw_state *cur = fw_state_new(), *next = NULL;
	for (unsigned n = 1; n <= 6; n++)
		user(cur, n, true, 2);
	global(cur, 1, 10);
	global(cur, 2, 20);
	fw_state_normalize(cur);
	fw_state_assign_nums(cur, NULL);

	struct fw_change c = {.upsert = fw_state_new()};
	user(c.upsert, 9, true, 1);  /* new */
	user(c.upsert, 3, false, 4); /* replaced, disabled */
	global(c.upsert, 2, 5);	     /* moved first */
	global(c.upsert, 3, 15);     /* new */
	c.remove_users = calloc(2, FW_ID_LEN);
	id_of(c.remove_users[0], 6);
	id_of(c.remove_users[1], 999); /* absent: no error */
	c.n_remove_users = 2;
	c.remove_rules = calloc(1, FW_ID_LEN);
	id_of(c.remove_rules[0], 50001);
	c.n_remove_rules = 1;
	c.has_settings = true;
	c.settings.default_accept = true;

	ck_assert_int_eq(fw_change_prepare(cur, &c, &next), 0);
	/* next: only the upserted users, with nums; all global rules; settings */
	ck_assert_uint_eq(next->n_users, 2);
	ck_assert_uint_eq(next->users[0].num, 3);
	ck_assert_uint_eq(next->users[1].num, 7);
	ck_assert_uint_eq(next->n_global_rules, 2);
	ck_assert_int_eq(next->global_rules[0].priority, 5);
	ck_assert_int_eq(next->global_rules[1].priority, 15);
	ck_assert(next->settings.default_accept);

	/* The whole new state, built independently. */
	struct fw_state *want = fw_state_new();
	for (unsigned n = 1; n <= 5; n++)
		if (n != 3)
			user(want, n, true, 2);
	user(want, 3, false, 4);
	user(want, 9, true, 1);
	global(want, 2, 5);
	global(want, 3, 15);
	want->settings.default_accept = true;
	fw_state_normalize(want);

	ck_assert_int_eq(fw_change_apply(cur, &c), 0);
	ck_assert(fw_state_equal(cur, want));
	ck_assert_uint_eq(fw_state_find_user(cur, next->users[1].id)->num, 7);
	ck_assert_uint_eq(fw_state_find_user(cur, next->users[0].id)->num, 3);
	fw_state_free(want);
	fw_state_free(next);
	fw_change_free(&c);
	fw_state_free(cur);
}
END_TEST

/* Many users in and out in one change: the merge keeps the order. */
START_TEST(test_change_many)
{
	struct fw_state *cur = fw_state_new(), *want = fw_state_new(), *next = NULL;
	struct fw_change c = {.upsert = fw_state_new()};

	for (unsigned n = 2; n <= 400; n += 2)
		user(cur, n, true, 1);
	fw_state_normalize(cur);
	fw_state_assign_nums(cur, NULL);
	for (int n = 401; n >= 1; n -= 2) /* new, out of order */
		user(c.upsert, (unsigned)n, n % 3 == 0, 2);
	user(c.upsert, 4, false, 3); /* replaced */
	c.remove_users = calloc(100, FW_ID_LEN);
	for (unsigned n = 100; n < 300; n += 2)
		id_of(c.remove_users[c.n_remove_users++], n);

	for (unsigned n = 1; n <= 401; n++) {
		if (n % 2 == 1)
			user(want, n, n % 3 == 0, 2);
		else if (n == 4)
			user(want, n, false, 3);
		else if (n <= 400 && (n < 100 || n >= 300))
			user(want, n, true, 1);
	}
	fw_state_normalize(want);

	ck_assert_int_eq(fw_change_prepare(cur, &c, &next), 0);
	ck_assert_int_eq(fw_change_apply(cur, &c), 0);
	ck_assert(fw_state_equal(cur, want));
	for (size_t i = 1; i < cur->n_users; i++)
		ck_assert_uint_ne(cur->users[i].num, 0);
	fw_state_free(next);
	fw_state_free(want);
	fw_change_free(&c);
	fw_state_free(cur);
}
END_TEST

START_TEST(test_id_hex)
{
	uint8_t id[FW_ID_LEN], back[FW_ID_LEN];
	char hex[2 * FW_ID_LEN + 1];
	for (size_t i = 0; i < FW_ID_LEN; i++)
		id[i] = (uint8_t)(i * 17 + 3);
	fw_id_hex(id, hex);
	ck_assert_str_eq(hex, "031425364758697a8b9cadbecfe0f102");
	ck_assert_int_eq(fw_id_parse_hex(hex, back), 0);
	ck_assert_mem_eq(id, back, FW_ID_LEN);
	ck_assert_int_eq(fw_id_parse_hex("031425364758697A8B9CADBECFE0F102", back), 0);
	ck_assert_mem_eq(id, back, FW_ID_LEN);
	ck_assert_int_eq(fw_id_parse_hex("03142536", back), -EINVAL);
	ck_assert_int_eq(fw_id_parse_hex("031425364758697a8b9cadbecfe0f1g2", back), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fw");
	TCase *tc = tcase_create("model");
	tcase_add_test(tc, test_normalize_and_equal);
	tcase_add_test(tc, test_assign_nums);
	tcase_add_test(tc, test_change);
	tcase_add_test(tc, test_change_many);
	tcase_add_test(tc, test_id_hex);
	suite_add_tcase(s, tc);
	return check_run(s);
}
