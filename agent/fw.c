/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "fw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void *grow(void *items, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return items;
	size_t ncap = *cap ? *cap * 2 : 4;
	void *p = realloc(items, ncap * size);
	if (p == NULL)
		return NULL;
	memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
	*cap = ncap;
	return p;
}

struct fw_state *fw_state_new(void)
{
	return calloc(1, sizeof(struct fw_state));
}

static void user_clear(struct fw_user *u)
{
	free(u->addrs);
	free(u->rules);
}

void fw_state_free(struct fw_state *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_users; i++)
		user_clear(&s->users[i]);
	free(s->users);
	free(s->global_rules);
	free(s);
}

static void *dup_array(const void *items, size_t n, size_t size)
{
	if (n == 0)
		return NULL;
	void *p = malloc(n * size);
	if (p != NULL)
		memcpy(p, items, n * size);
	return p;
}

/* u's copy of from; 0 or -ENOMEM (u then owns nothing). */
static int user_copy(struct fw_user *u, const struct fw_user *from)
{
	*u = *from;
	u->addrs = dup_array(from->addrs, from->n_addrs, sizeof(*from->addrs));
	u->rules = dup_array(from->rules, from->n_rules, sizeof(*from->rules));
	u->cap_addrs = from->n_addrs;
	u->cap_rules = from->n_rules;
	if ((from->n_addrs && u->addrs == NULL) || (from->n_rules && u->rules == NULL)) {
		user_clear(u);
		memset(u, 0, sizeof(*u));
		return -ENOMEM;
	}
	return 0;
}

struct fw_state *fw_state_copy(const struct fw_state *s)
{
	struct fw_state *c = fw_state_new();
	if (c == NULL)
		return NULL;
	c->settings = s->settings;
	for (size_t i = 0; i < s->n_users; i++) {
		struct fw_user *u = fw_state_add_user(c);
		if (u == NULL || user_copy(u, &s->users[i]) < 0) {
			fw_state_free(c);
			return NULL;
		}
	}
	c->global_rules = dup_array(s->global_rules, s->n_global_rules, sizeof(*s->global_rules));
	if (s->n_global_rules && c->global_rules == NULL) {
		fw_state_free(c);
		return NULL;
	}
	c->n_global_rules = c->cap_global_rules = s->n_global_rules;
	return c;
}

struct fw_user *fw_state_add_user(struct fw_state *s)
{
	struct fw_user *p = grow(s->users, &s->cap_users, s->n_users, sizeof(*p));
	if (p == NULL)
		return NULL;
	s->users = p;
	return &s->users[s->n_users++];
}

struct fw_rule *fw_state_add_global_rule(struct fw_state *s)
{
	struct fw_rule *p =
		grow(s->global_rules, &s->cap_global_rules, s->n_global_rules, sizeof(*p));
	if (p == NULL)
		return NULL;
	s->global_rules = p;
	return &s->global_rules[s->n_global_rules++];
}

struct fw_rule *fw_user_add_rule(struct fw_user *u)
{
	struct fw_rule *p = grow(u->rules, &u->cap_rules, u->n_rules, sizeof(*p));
	if (p == NULL)
		return NULL;
	u->rules = p;
	return &u->rules[u->n_rules++];
}

int fw_user_add_addr(struct fw_user *u, const struct ip_addr *a)
{
	struct ip_addr *p = grow(u->addrs, &u->cap_addrs, u->n_addrs, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	u->addrs = p;
	u->addrs[u->n_addrs++] = *a;
	return 0;
}

int fw_rule_cmp(const struct fw_rule *a, const struct fw_rule *b)
{
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	return memcmp(a->id, b->id, FW_ID_LEN);
}

static int rule_qcmp(const void *a, const void *b)
{
	return fw_rule_cmp(a, b);
}

/* Family first, then the bytes: one total order for v4 and v6. */
static int addr_cmp(const struct ip_addr *a, const struct ip_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->bytes, b->bytes, ip_family_len(a->family));
}

static int addr_qcmp(const void *a, const void *b)
{
	return addr_cmp(a, b);
}

static int user_qcmp(const void *a, const void *b)
{
	return memcmp(((const struct fw_user *)a)->id, ((const struct fw_user *)b)->id, FW_ID_LEN);
}

static void user_normalize(struct fw_user *u)
{
	if (u->n_addrs == 0)
		u->active = true;
	if (u->n_addrs > 1)
		qsort(u->addrs, u->n_addrs, sizeof(*u->addrs), addr_qcmp);
	if (u->n_rules > 1)
		qsort(u->rules, u->n_rules, sizeof(*u->rules), rule_qcmp);
}

void fw_state_normalize(struct fw_state *s)
{
	for (size_t i = 0; i < s->n_users; i++)
		user_normalize(&s->users[i]);
	if (s->n_users > 1)
		qsort(s->users, s->n_users, sizeof(*s->users), user_qcmp);
	if (s->n_global_rules > 1)
		qsort(s->global_rules, s->n_global_rules, sizeof(*s->global_rules), rule_qcmp);
}

/* Index of the first user whose id is not below id. */
static size_t user_lower_bound(const struct fw_state *s, const uint8_t id[FW_ID_LEN])
{
	size_t lo = 0, hi = s->n_users;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(s->users[mid].id, id, FW_ID_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct fw_user *fw_state_find_user(const struct fw_state *s, const uint8_t id[FW_ID_LEN])
{
	size_t i = user_lower_bound(s, id);
	if (i < s->n_users && memcmp(s->users[i].id, id, FW_ID_LEN) == 0)
		return &s->users[i];
	return NULL;
}

static bool rule_equal(const struct fw_rule *a, const struct fw_rule *b)
{
	return memcmp(a->id, b->id, FW_ID_LEN) == 0 && a->priority == b->priority &&
	       a->dst.prefix == b->dst.prefix && ip_addr_equal(&a->dst.addr, &b->dst.addr) &&
	       a->proto == b->proto && a->port_from == b->port_from && a->port_to == b->port_to &&
	       a->accept == b->accept;
}

static bool rules_equal(const struct fw_rule *a, size_t na, const struct fw_rule *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!rule_equal(&a[i], &b[i]))
			return false;
	return true;
}

static bool user_equal(const struct fw_user *a, const struct fw_user *b)
{
	if (memcmp(a->id, b->id, FW_ID_LEN) != 0 || a->active != b->active ||
	    a->n_addrs != b->n_addrs)
		return false;
	for (size_t i = 0; i < a->n_addrs; i++)
		if (addr_cmp(&a->addrs[i], &b->addrs[i]) != 0)
			return false;
	return rules_equal(a->rules, a->n_rules, b->rules, b->n_rules);
}

bool fw_state_equal(const struct fw_state *a, const struct fw_state *b)
{
	if (memcmp(&a->settings, &b->settings, sizeof(a->settings)) != 0 ||
	    a->n_users != b->n_users ||
	    !rules_equal(a->global_rules, a->n_global_rules, b->global_rules, b->n_global_rules))
		return false;
	for (size_t i = 0; i < a->n_users; i++)
		if (!user_equal(&a->users[i], &b->users[i]))
			return false;
	return true;
}

static uint32_t max_num(const struct fw_state *s)
{
	uint32_t m = 0;
	for (size_t i = 0; s != NULL && i < s->n_users; i++)
		if (s->users[i].num > m)
			m = s->users[i].num;
	return m;
}

void fw_state_assign_nums(struct fw_state *s, const struct fw_state *prev)
{
	/* Patches only ever take new numbers: a full sync starts again low. */
	if (max_num(prev) > FW_MAX_NUM / 2)
		prev = NULL;
	uint32_t next = max_num(prev);
	for (size_t i = 0; i < s->n_users; i++) {
		const struct fw_user *p = prev ? fw_state_find_user(prev, s->users[i].id) : NULL;
		s->users[i].num = p ? p->num : 0;
	}
	for (size_t i = 0; i < s->n_users; i++)
		if (s->users[i].num > next)
			next = s->users[i].num;
	for (size_t i = 0; i < s->n_users; i++)
		if (s->users[i].num == 0)
			s->users[i].num = ++next;
}

/*
 * Users removed, replaced and added in O(N + k log N) for k changes: one
 * compaction pass, then one merge from the back (c->upsert is sorted).
 * num 0 marks a removed user: every user here has one (prepare, assign).
 */
static int users_change(struct fw_state *s, const struct fw_change *c)
{
	const struct fw_state *up = c->upsert;
	struct fw_user *fresh = NULL;
	size_t n_fresh = 0, kept = 0;
	struct fw_user *u;

	for (size_t i = 0; i < c->n_remove_users; i++)
		if ((u = fw_state_find_user(s, c->remove_users[i])) != NULL && u->num != 0) {
			user_clear(u);
			u->num = 0;
		}
	for (size_t i = 0; c->n_remove_users > 0 && i < s->n_users; i++)
		if (s->users[i].num != 0)
			s->users[kept++] = s->users[i];
	if (c->n_remove_users > 0)
		s->n_users = kept;
	if (up == NULL || up->n_users == 0)
		return 0;

	fresh = calloc(up->n_users, sizeof(*fresh));
	if (fresh == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < up->n_users; i++) {
		struct fw_user copy;
		if (user_copy(&copy, &up->users[i]) < 0)
			goto oom;
		user_normalize(&copy);
		if ((u = fw_state_find_user(s, copy.id)) != NULL) {
			user_clear(u);
			*u = copy;
		} else {
			fresh[n_fresh++] = copy;
		}
	}
	if (n_fresh > 0) {
		size_t need = s->n_users + n_fresh;
		if (need > s->cap_users) {
			struct fw_user *p = realloc(s->users, need * sizeof(*p));
			if (p == NULL)
				goto oom;
			s->users = p;
			s->cap_users = need;
		}
		size_t i = s->n_users, j = n_fresh, w = need;
		while (j > 0) {
			if (i > 0 && memcmp(s->users[i - 1].id, fresh[j - 1].id, FW_ID_LEN) > 0)
				s->users[--w] = s->users[--i];
			else
				s->users[--w] = fresh[--j];
		}
		s->n_users = need;
	}
	free(fresh);
	return 0;
oom:
	for (size_t i = 0; i < n_fresh; i++)
		user_clear(&fresh[i]);
	free(fresh);
	return -ENOMEM;
}

static void global_rule_remove(struct fw_state *s, const uint8_t id[FW_ID_LEN])
{
	for (size_t i = 0; i < s->n_global_rules; i++)
		if (memcmp(s->global_rules[i].id, id, FW_ID_LEN) == 0) {
			memmove(&s->global_rules[i], &s->global_rules[i + 1],
				(s->n_global_rules - i - 1) * sizeof(*s->global_rules));
			s->n_global_rules--;
			return;
		}
}

/* Remove and replace s's global rules as c says; s stays sorted. */
static int global_rules_change(struct fw_state *s, const struct fw_change *c)
{
	const struct fw_state *up = c->upsert;
	for (size_t i = 0; i < c->n_remove_rules; i++)
		global_rule_remove(s, c->remove_rules[i]);
	for (size_t i = 0; up != NULL && i < up->n_global_rules; i++) {
		global_rule_remove(s, up->global_rules[i].id);
		struct fw_rule *r = fw_state_add_global_rule(s);
		if (r == NULL)
			return -ENOMEM;
		*r = up->global_rules[i];
	}
	if (s->n_global_rules > 1)
		qsort(s->global_rules, s->n_global_rules, sizeof(*s->global_rules), rule_qcmp);
	return 0;
}

int fw_change_prepare(const struct fw_state *cur, struct fw_change *c, struct fw_state **ret_next)
{
	struct fw_state *next = fw_state_new();
	uint32_t fresh = max_num(cur);

	if (next == NULL)
		return -ENOMEM;
	next->settings = c->has_settings ? c->settings : cur->settings;
	if (c->upsert != NULL) {
		fw_state_normalize(c->upsert);
		for (size_t i = 0; i < c->upsert->n_users; i++) {
			struct fw_user *u = &c->upsert->users[i];
			const struct fw_user *old = fw_state_find_user(cur, u->id);
			if (old == NULL && fresh >= FW_MAX_NUM) {
				fw_state_free(next);
				return -E2BIG;
			}
			u->num = old ? old->num : ++fresh;
			struct fw_user *n = fw_state_add_user(next);
			if (n == NULL || user_copy(n, u) < 0) {
				if (n != NULL)
					next->n_users--;
				fw_state_free(next);
				return -ENOMEM;
			}
		}
	}
	for (size_t i = 0; i < cur->n_global_rules; i++) {
		struct fw_rule *r = fw_state_add_global_rule(next);
		if (r == NULL) {
			fw_state_free(next);
			return -ENOMEM;
		}
		*r = cur->global_rules[i];
	}
	if (global_rules_change(next, c) < 0) {
		fw_state_free(next);
		return -ENOMEM;
	}
	*ret_next = next;
	return 0;
}

int fw_change_apply(struct fw_state *s, const struct fw_change *c)
{
	if (users_change(s, c) < 0)
		return -ENOMEM;
	if ((c->n_remove_rules > 0 || (c->upsert && c->upsert->n_global_rules > 0)) &&
	    global_rules_change(s, c) < 0)
		return -ENOMEM;
	if (c->has_settings)
		s->settings = c->settings;
	return 0;
}

void fw_change_free(struct fw_change *c)
{
	fw_state_free(c->upsert);
	free(c->remove_users);
	free(c->remove_rules);
	memset(c, 0, sizeof(*c));
}

void fw_id_hex(const uint8_t id[FW_ID_LEN], char out[2 * FW_ID_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < FW_ID_LEN; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[2 * FW_ID_LEN] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int fw_id_parse_hex(const char *hex, uint8_t id[FW_ID_LEN])
{
	if (strlen(hex) != 2 * FW_ID_LEN)
		return -EINVAL;
	for (size_t i = 0; i < FW_ID_LEN; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		id[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
