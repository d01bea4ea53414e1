/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * peer_diff(): golden cases (desired + dump -> plan), large inputs, input
 * order, and a property test that applies the plan to the dump.
 *
 * Golden files: $WIREGUI_SOURCE_DIR/tests/unit/peer_diff/NAME.golden, one
 * case each, every file in the directory is run (none at all is a failure).
 *
 *   # a comment (any line whose first non-blank is '#'); blank lines ignored
 *   desired:
 *     device listen_port=51820 private_key=k9
 *     peer k1 psk=k7 keepalive=25 allowed=10.0.0.2/32,fd00::2/128
 *   current:
 *     peer k1 psk=none keepalive=0 allowed=fd00::2/128,10.0.0.2/32
 *   plan:
 *     device listen_port=51820 private_key=k9
 *     remove k3
 *     peer k1 psk=k7 keepalive=25
 *     peer k2 replace allowed=10.0.0.3/32
 *
 * The three sections come in this order, each header unindented, entries
 * indented. Keys: kN is the 32-byte key whose bytes are all N (0-255), or 64
 * hex digits. In desired/current a field's flag is set exactly when the field
 * is written, so "psk=none" (HAS_PSK, zero key) differs from no psk= at all
 * (no HAS_PSK), as a dump differs from a validated request; "keepalive=off"
 * (or 0) likewise. "allowed=" takes a comma list of CIDRs (host bits are
 * allowed, to test normalisation) or "none"; absent means no allowed IPs.
 *
 * The plan section is the change peer_diff() returns, one line per entry in
 * its order, single spaces: "device" with the fields it sets, "remove KEY",
 * or "peer KEY" with psk=KEY|none, keepalive=N|off for the flags it carries
 * and "replace allowed=LIST|none" for REPLACE_ALLOWED_IPS. An empty plan
 * section means nothing to write.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "peer_diff.h"

#define GOLDEN_SUBDIR "/tests/unit/peer_diff"

static char golden_dir[PATH_MAX];
static struct dirent **golden_files; /* the *.golden files, by name */
static int n_golden;

/* ---- printing: one format for inputs and plans ---- */

static void print_key(FILE *f, const uint8_t key[WG_KEY_LEN])
{
	char hex[WG_KEY_HEX_LEN + 1];

	if (memcmp(key, key + 1, WG_KEY_LEN - 1) == 0) {
		fprintf(f, "k%u", key[0]);
		return;
	}
	wg_key_to_hex(key, hex);
	fputs(hex, f);
}

static void print_cidrs(FILE *f, const struct wg_peer *p)
{
	char buf[IP_CIDR_STRLEN];

	if (p->n_allowed_ips == 0)
		fputs("none", f);
	for (size_t i = 0; i < p->n_allowed_ips; i++) {
		ck_assert_int_eq(ip_cidr_format(&p->allowed_ips[i], buf, sizeof(buf)), 0);
		fprintf(f, "%s%s", i ? "," : "", buf);
	}
}

static void print_peer(FILE *f, const struct wg_peer *p)
{
	static const unsigned known = WG_PEER_REMOVE | WG_PEER_REPLACE_ALLOWED_IPS |
				      WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE;

	fputs(p->flags & WG_PEER_REMOVE ? "remove " : "peer ", f);
	print_key(f, p->public_key);
	if (p->flags & WG_PEER_HAS_PSK) {
		fputs(" psk=", f);
		if (wg_key_is_zero(p->psk))
			fputs("none", f);
		else
			print_key(f, p->psk);
	}
	if (p->flags & WG_PEER_HAS_KEEPALIVE) {
		if (p->keepalive == 0)
			fputs(" keepalive=off", f);
		else
			fprintf(f, " keepalive=%u", p->keepalive);
	}
	if (p->flags & WG_PEER_REPLACE_ALLOWED_IPS)
		fputs(" replace", f);
	if ((p->flags & WG_PEER_REPLACE_ALLOWED_IPS) || p->n_allowed_ips > 0) {
		fputs(" allowed=", f);
		print_cidrs(f, p);
	}
	if (p->flags & ~known)
		fprintf(f, " flags=%#x", p->flags & ~known);
	fputc('\n', f);
}

/* The device as golden text; caller frees. */
static char *device_text(const struct wg_device *dev)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	if (dev->flags != 0) {
		fputs("device", f);
		if (dev->flags & WG_DEVICE_HAS_LISTEN_PORT)
			fprintf(f, " listen_port=%u", dev->listen_port);
		if (dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) {
			fputs(" private_key=", f);
			print_key(f, dev->private_key);
		}
		if (dev->flags & ~(unsigned)(WG_DEVICE_HAS_LISTEN_PORT | WG_DEVICE_HAS_PRIVATE_KEY))
			fprintf(f, " flags=%#x", dev->flags);
		fputc('\n', f);
	}
	for (size_t i = 0; i < dev->n_peers; i++)
		print_peer(f, &dev->peers[i]);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

/* ---- parsing golden files ---- */

static int parse_key(const char *s, uint8_t key[WG_KEY_LEN])
{
	if (s[0] == 'k' && isdigit((unsigned char)s[1])) {
		char *end;
		unsigned long n = strtoul(s + 1, &end, 10);
		if (*end != '\0' || n > 255)
			return -EINVAL;
		memset(key, (int)n, WG_KEY_LEN);
		return 0;
	}
	return wg_key_from_hex(s, key);
}

static int parse_u16(const char *s, uint16_t *ret)
{
	char *end;

	if (strcmp(s, "off") == 0) {
		*ret = 0;
		return 0;
	}
	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	unsigned long n = strtoul(s, &end, 10);
	if (*end != '\0' || n > UINT16_MAX)
		return -EINVAL;
	*ret = (uint16_t)n;
	return 0;
}

static int parse_allowed(char *list, struct wg_peer *p)
{
	char *save = NULL;
	struct ip_cidr c;

	if (strcmp(list, "none") == 0)
		return 0;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (ip_cidr_parse(t, IP_CIDR_ALLOW_HOST_BITS, &c) < 0 ||
		    wg_peer_add_allowed_ip(p, &c) < 0)
			return -EINVAL;
	return 0;
}

static int parse_device_field(char *name, char *val, struct wg_device *dev)
{
	if (strcmp(name, "listen_port") == 0) {
		dev->flags |= WG_DEVICE_HAS_LISTEN_PORT;
		return parse_u16(val, &dev->listen_port);
	}
	if (strcmp(name, "private_key") == 0) {
		dev->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
		return parse_key(val, dev->private_key);
	}
	return -EINVAL;
}

static int parse_peer_field(char *name, char *val, struct wg_peer *p)
{
	if (strcmp(name, "psk") == 0) {
		p->flags |= WG_PEER_HAS_PSK;
		if (strcmp(val, "none") == 0)
			return 0;
		return parse_key(val, p->psk);
	}
	if (strcmp(name, "keepalive") == 0) {
		p->flags |= WG_PEER_HAS_KEEPALIVE;
		return parse_u16(val, &p->keepalive);
	}
	if (strcmp(name, "allowed") == 0)
		return parse_allowed(val, p);
	return -EINVAL;
}

/* "device name=val..." or "peer KEY name=val..." into dev. */
static int parse_entry(char *line, struct wg_device *dev)
{
	char *save = NULL, *kind = strtok_r(line, " \t", &save);
	struct wg_peer *p = NULL;

	if (strcmp(kind, "peer") == 0) {
		char *key = strtok_r(NULL, " \t", &save);
		p = wg_device_add_peer(dev);
		if (p == NULL || key == NULL || parse_key(key, p->public_key) < 0)
			return -EINVAL;
	} else if (strcmp(kind, "device") != 0) {
		return -EINVAL;
	}
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(t, '=');
		if (eq == NULL)
			return -EINVAL;
		*eq = '\0';
		int r = p ? parse_peer_field(t, eq + 1, p) : parse_device_field(t, eq + 1, dev);
		if (r < 0)
			return r;
	}
	return 0;
}

struct golden {
	struct wg_device *desired, *current;
	char *plan;
	size_t plan_len;
};

enum section {
	SEC_NONE,
	SEC_DESIRED,
	SEC_CURRENT,
	SEC_PLAN
};

static char *trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* One line of a golden file; *sec advances on section headers. */
static int golden_line(char *raw, enum section *sec, struct golden *g, FILE *plan)
{
	static const char *const headers[] = {"desired:", "current:", "plan:"};
	bool indented = raw[0] == ' ' || raw[0] == '\t';
	char *line = trim(raw);

	if (line[0] == '\0' || line[0] == '#')
		return 0;
	if (!indented) {
		if (*sec == SEC_PLAN || strcmp(line, headers[*sec]) != 0)
			return -EINVAL;
		*sec = (enum section)(*sec + 1);
		return 0;
	}
	switch (*sec) {
	case SEC_DESIRED:
		return parse_entry(line, g->desired);
	case SEC_CURRENT:
		return parse_entry(line, g->current);
	case SEC_PLAN:
		fprintf(plan, "%s\n", line);
		return 0;
	default:
		return -EINVAL;
	}
}

/* 0, or -EINVAL with *ret_line the offending line (0: the file as a whole). */
static int golden_load(const char *path, struct golden *g, unsigned *ret_line)
{
	FILE *f = fopen(path, "r"), *plan;
	char *raw = NULL;
	size_t cap = 0;
	enum section sec = SEC_NONE;
	int r = 0;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	plan = open_memstream(&g->plan, &g->plan_len);
	ck_assert_ptr_nonnull(plan);
	g->desired = wg_device_new("wg0");
	g->current = wg_device_new("wg0");
	ck_assert(g->desired && g->current);
	*ret_line = 0;
	for (unsigned n = 1; r == 0 && getline(&raw, &cap, f) >= 0; n++) {
		r = golden_line(raw, &sec, g, plan);
		if (r < 0)
			*ret_line = n;
	}
	free(raw);
	fclose(f);
	ck_assert_int_eq(fclose(plan), 0);
	return r == 0 && sec != SEC_PLAN ? -EINVAL : r;
}

/* Exact comparison; on a difference, both texts on stderr and the first
 * differing line in the failure. */
static void compare_plan(const char *name, const char *want, const char *got)
{
	if (strcmp(want, got) == 0)
		return;
	fprintf(stderr, "%s: plan differs\n--- expected\n%s+++ got\n%s", name, want, got);
	unsigned line = 1;
	size_t start = 0; /* of the first differing line, in both */
	for (size_t i = 0; want[i] == got[i]; i++)
		if (want[i] == '\n') {
			line++;
			start = i + 1;
		}
	want += start;
	got += start;
	ck_abort_msg("%s: plan line %u: expected \"%.*s\", got \"%.*s\"", name, line,
		     (int)strcspn(want, "\n"), want, (int)strcspn(got, "\n"), got);
}

START_TEST(test_golden)
{
	const char *name = golden_files[_i]->d_name;
	char path[PATH_MAX + NAME_MAX + 2];
	struct golden g = {0};
	struct wg_device *change = NULL;
	unsigned line;

	snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
	ck_assert_msg(golden_load(path, &g, &line) == 0, "%s:%u: %s", name, line,
		      line ? "cannot parse" : "needs desired:, current:, plan: in this order");
	ck_assert_int_eq(peer_diff(g.desired, g.current, &change), 0);
	/* The change owns its copies: the inputs go before it is read. */
	wg_device_free(g.desired);
	wg_device_free(g.current);
	char *got = device_text(change);
	ck_assert_msg(wg_device_is_empty(change) == (got[0] == '\0'), "%s: is_empty", name);
	compare_plan(name, g.plan, got);
	free(got);
	free(g.plan);
	wg_device_free(change);
}
END_TEST

START_TEST(test_golden_missing)
{
	ck_abort_msg("no *.golden case in \"%s\" (WIREGUI_SOURCE_DIR set?)", golden_dir);
}
END_TEST

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_golden(const struct dirent *e)
{
	size_t len = strlen(e->d_name);

	return len > 7 && strcmp(e->d_name + len - 7, ".golden") == 0;
}

static void golden_scan(void)
{
	const char *src = getenv("WIREGUI_SOURCE_DIR");

	snprintf(golden_dir, sizeof(golden_dir), "%s" GOLDEN_SUBDIR, src ? src : "(unset)");
	if (src != NULL)
		n_golden = scandir(golden_dir, &golden_files, is_golden, alphasort);
}

/* ---- generated inputs ---- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
	return (unsigned)(rng_next(s) % n);
}

static void shuffle_peers(struct wg_device *dev, uint64_t *rng)
{
	for (size_t i = dev->n_peers; i > 1; i--) {
		size_t j = rng_below(rng, (unsigned)i);
		struct wg_peer t = dev->peers[i - 1];
		dev->peers[i - 1] = dev->peers[j];
		dev->peers[j] = t;
	}
}

static void reverse_allowed(struct wg_peer *p)
{
	for (size_t i = 0; i < p->n_allowed_ips / 2; i++) {
		struct ip_cidr t = p->allowed_ips[i];
		p->allowed_ips[i] = p->allowed_ips[p->n_allowed_ips - 1 - i];
		p->allowed_ips[p->n_allowed_ips - 1 - i] = t;
	}
}

static struct wg_peer *add_peer(struct wg_device *dev, const uint8_t key[WG_KEY_LEN])
{
	struct wg_peer *p = wg_device_add_peer(dev);

	ck_assert_ptr_nonnull(p);
	memcpy(p->public_key, key, WG_KEY_LEN);
	return p;
}

static void add_cidr(struct wg_peer *p, const char *s)
{
	struct ip_cidr c;

	ck_assert_int_eq(ip_cidr_parse(s, IP_CIDR_ALLOW_HOST_BITS, &c), 0);
	ck_assert_int_eq(wg_peer_add_allowed_ip(p, &c), 0);
}

static struct wg_device *clone_device(const struct wg_device *src)
{
	struct wg_device *dev = wg_device_new(src->ifname);

	ck_assert_ptr_nonnull(dev);
	dev->flags = src->flags;
	dev->listen_port = src->listen_port;
	memcpy(dev->private_key, src->private_key, WG_KEY_LEN);
	for (size_t i = 0; i < src->n_peers; i++) {
		const struct wg_peer *s = &src->peers[i];
		struct wg_peer *p = add_peer(dev, s->public_key);
		memcpy(p->psk, s->psk, WG_KEY_LEN);
		p->keepalive = s->keepalive;
		p->flags = s->flags;
		for (size_t j = 0; j < s->n_allowed_ips; j++)
			ck_assert_int_eq(wg_peer_add_allowed_ip(p, &s->allowed_ips[j]), 0);
	}
	return dev;
}

/* Key i of a large device: big-endian index first, so key order is index order. */
static void index_key(uint8_t key[WG_KEY_LEN], uint32_t i, uint8_t fill)
{
	memset(key, fill, WG_KEY_LEN);
	key[0] = (uint8_t)(i >> 24);
	key[1] = (uint8_t)(i >> 16);
	key[2] = (uint8_t)(i >> 8);
	key[3] = (uint8_t)i;
}

static uint32_t key_index(const uint8_t key[WG_KEY_LEN])
{
	return (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
}

/* n peers as the benchmark has them: PSK, keepalive 25, a v4 /32 and a v6
 * /128; a dump lists the allowed IPs the other way round. */
static struct wg_device *big_device(uint32_t n, bool dump)
{
	struct wg_device *dev = wg_device_new("wg0");
	char buf[64];

	ck_assert_ptr_nonnull(dev);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t key[WG_KEY_LEN];
		index_key(key, i, 0x11);
		struct wg_peer *p = add_peer(dev, key);
		index_key(p->psk, i, 0x22);
		p->keepalive = 25;
		p->flags = WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE;
		snprintf(buf, sizeof(buf), "10.%u.%u.%u/32", i >> 16, (i >> 8) & 255, i & 255);
		add_cidr(p, buf);
		snprintf(buf, sizeof(buf), "fd00::%x/128", i);
		add_cidr(p, buf);
		if (dump)
			reverse_allowed(p);
	}
	return dev;
}

START_TEST(test_10k_equal)
{
	uint64_t rng = 1;
	struct wg_device *desired = big_device(10000, false), *current = big_device(10000, true);
	struct wg_device *change = NULL;

	shuffle_peers(desired, &rng);
	shuffle_peers(current, &rng);
	ck_assert_int_eq(peer_diff(desired, current, &change), 0);
	ck_assert_msg(wg_device_is_empty(change), "%zu peers in the plan", change->n_peers);
	wg_device_free(change);
	wg_device_free(desired);
	wg_device_free(current);
}
END_TEST

/* Peer 100k+7 differs in one field, by variant k % 5. */
static unsigned one_percent_variant(struct wg_peer *want, struct wg_peer *have, uint32_t i)
{
	switch ((i / 100) % 5) {
	case 0:
		index_key(have->psk, i, 0x33);
		return WG_PEER_HAS_PSK;
	case 1:
		want->flags &= ~(unsigned)WG_PEER_HAS_PSK;
		return WG_PEER_HAS_PSK;
	case 2:
		have->keepalive = 0;
		return WG_PEER_HAS_KEEPALIVE;
	case 3:
		want->keepalive = 0;
		return WG_PEER_HAS_KEEPALIVE;
	default:
		add_cidr(have, "192.168.0.1/32");
		return WG_PEER_REPLACE_ALLOWED_IPS;
	}
}

START_TEST(test_10k_one_percent)
{
	uint64_t rng = 2;
	struct wg_device *desired = big_device(10000, false), *current = big_device(10000, true);
	struct wg_device *change = NULL;
	unsigned want_flags[100];

	for (uint32_t k = 0; k < 100; k++) {
		uint32_t i = 100 * k + 7;
		want_flags[k] = one_percent_variant(&desired->peers[i], &current->peers[i], i);
	}
	shuffle_peers(desired, &rng);
	shuffle_peers(current, &rng);
	ck_assert_int_eq(peer_diff(desired, current, &change), 0);
	ck_assert_uint_eq(change->flags, 0);
	ck_assert_uint_eq(change->n_peers, 100);
	for (uint32_t k = 0; k < 100; k++) {
		const struct wg_peer *p = &change->peers[k];
		uint32_t i = key_index(p->public_key);
		ck_assert_uint_eq(i, 100 * k + 7);
		ck_assert_uint_eq(p->flags, want_flags[k]);
		uint8_t psk[WG_KEY_LEN];
		index_key(psk, i, 0x22);
		if (p->flags & WG_PEER_HAS_PSK)
			ck_assert(memcmp(p->psk, psk, WG_KEY_LEN) == 0 || wg_key_is_zero(p->psk));
		if (p->flags & WG_PEER_HAS_KEEPALIVE)
			ck_assert(p->keepalive == 25 || p->keepalive == 0);
		ck_assert_uint_eq(p->n_allowed_ips,
				  (p->flags & WG_PEER_REPLACE_ALLOWED_IPS) ? 2 : 0);
	}
	wg_device_free(change);
	wg_device_free(desired);
	wg_device_free(current);
}
END_TEST

START_TEST(test_duplicate_key)
{
	static const uint8_t k1[WG_KEY_LEN] = {1}, k2[WG_KEY_LEN] = {2};
	struct wg_device *a = wg_device_new("wg0"), *b = wg_device_new("wg0");
	struct wg_device *change = NULL;

	ck_assert(a && b);
	add_peer(a, k1);
	add_peer(a, k2);
	add_peer(a, k1);
	add_peer(b, k2);
	ck_assert_int_eq(peer_diff(a, b, &change), -EINVAL);
	ck_assert_int_eq(peer_diff(b, a, &change), -EINVAL);
	ck_assert_ptr_null(change);
	wg_device_free(a);
	wg_device_free(b);
}
END_TEST

/* A small random device over shared key/PSK/CIDR pools, so desired and
 * current overlap. Desired peers carry HAS_PSK / HAS_KEEPALIVE or not (with
 * junk behind a missing flag); dumps always carry both. */
static struct wg_device *random_device(uint64_t *rng, bool dump)
{
	static const char *const pool[] = {
		"10.0.0.1/32", "10.0.0.0/24", "10.0.0.7/24", "10.0.1.0/24",
		"10.0.0.0/16", "0.0.0.0/0",   "fd00::1/128", "fd00::/64",
		"fd00::5/64",  "fd00::/48",   "fd01::/48",   "::/0",
	};
	static const uint8_t psks[] = {0, 20, 21}, keepalives[] = {0, 25, 60};
	struct wg_device *dev = wg_device_new("wg0");

	ck_assert_ptr_nonnull(dev);
	if (rng_below(rng, 3) != 0) {
		dev->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
		memset(dev->private_key, 30 + (int)rng_below(rng, 2), WG_KEY_LEN);
	}
	if (rng_below(rng, 3) != 0) {
		dev->flags |= WG_DEVICE_HAS_LISTEN_PORT;
		dev->listen_port = (uint16_t)(51820 + rng_below(rng, 2));
	}
	for (int k = 1; k <= 12; k++) {
		if (rng_below(rng, 5) >= 2)
			continue;
		uint8_t key[WG_KEY_LEN];
		memset(key, k, WG_KEY_LEN);
		struct wg_peer *p = add_peer(dev, key);
		memset(p->psk, psks[rng_below(rng, 3)], WG_KEY_LEN);
		p->keepalive = keepalives[rng_below(rng, 3)];
		p->flags = WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE;
		if (!dump && rng_below(rng, 2) == 0) {
			p->flags &= ~(unsigned)WG_PEER_HAS_PSK;
			memset(p->psk, 99, WG_KEY_LEN);
		}
		if (!dump && rng_below(rng, 4) == 0) {
			p->flags &= ~(unsigned)WG_PEER_HAS_KEEPALIVE;
			p->keepalive = 77;
		}
		for (unsigned n = rng_below(rng, 6); n > 0; n--) {
			add_cidr(p, pool[rng_below(rng, ARRAY_LEN(pool))]);
			struct ip_cidr *c = &p->allowed_ips[p->n_allowed_ips - 1];
			if (c->addr.family == AF_INET) /* junk past the family's bytes */
				memset(c->addr.bytes + 4, 0xee, sizeof(c->addr.bytes) - 4);
		}
	}
	shuffle_peers(dev, rng);
	return dev;
}

/* Many seeds per test: a fork per seed is slow under ASan. */
#define SEEDS_PER_TEST 50

static void input_order_case(uint64_t seed)
{
	uint64_t rng = seed;
	struct wg_device *desired = random_device(&rng, false);
	struct wg_device *current = random_device(&rng, true);
	struct wg_device *desired2 = clone_device(desired), *current2 = clone_device(current);
	struct wg_device *c1 = NULL, *c2 = NULL;

	shuffle_peers(desired2, &rng);
	shuffle_peers(current2, &rng);
	for (size_t i = 0; i < desired2->n_peers; i++)
		reverse_allowed(&desired2->peers[i]);
	for (size_t i = 0; i < current2->n_peers; i++)
		reverse_allowed(&current2->peers[i]);
	ck_assert_int_eq(peer_diff(desired, current, &c1), 0);
	ck_assert_int_eq(peer_diff(desired2, current2, &c2), 0);
	char *t1 = device_text(c1), *t2 = device_text(c2);
	char name[64];
	snprintf(name, sizeof(name), "seed %llu, shuffled", (unsigned long long)seed);
	compare_plan(name, t1, t2);
	free(t1);
	free(t2);
	wg_device_free(c1);
	wg_device_free(c2);
	wg_device_free(desired);
	wg_device_free(current);
	wg_device_free(desired2);
	wg_device_free(current2);
}

START_TEST(test_input_order)
{
	for (uint64_t k = 0; k < SEEDS_PER_TEST; k++)
		input_order_case(1000000 + (uint64_t)_i * SEEDS_PER_TEST + k);
}
END_TEST

/* ---- property: the plan applied to the dump gives the desired state ---- */

/* The allowed IPs as a set in text, by our own route (masked, formatted,
 * sorted as strings, duplicates dropped), independent of peer_diff's. */
static char *allowed_canon(const struct wg_peer *p)
{
	char **v = calloc(p->n_allowed_ips + 1, sizeof(*v));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert(v && f);
	for (size_t i = 0; i < p->n_allowed_ips; i++) {
		struct ip_cidr c = p->allowed_ips[i];
		ip_cidr_mask(&c);
		v[i] = malloc(IP_CIDR_STRLEN);
		ck_assert_int_eq(ip_cidr_format(&c, v[i], IP_CIDR_STRLEN), 0);
	}
	qsort(v, p->n_allowed_ips, sizeof(*v), str_cmp);
	for (size_t i = 0; i < p->n_allowed_ips; i++) {
		if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
			fprintf(f, "%s,", v[i]);
	}
	for (size_t i = 0; i < p->n_allowed_ips; i++)
		free(v[i]);
	free(v);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

static const uint8_t *eff_psk(const struct wg_peer *p)
{
	static const uint8_t zero[WG_KEY_LEN];
	return (p->flags & WG_PEER_HAS_PSK) ? p->psk : zero;
}

static unsigned eff_keepalive(const struct wg_peer *p)
{
	return (p->flags & WG_PEER_HAS_KEEPALIVE) ? p->keepalive : 0;
}

/* Every peer with its effective values, one line each, sorted. */
static char *peers_canon(const struct wg_device *dev)
{
	char **lines = calloc(dev->n_peers + 1, sizeof(*lines));
	char *buf = NULL, hex[WG_KEY_HEX_LEN + 1], phex[WG_KEY_HEX_LEN + 1];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert(lines && f);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];
		char *ips = allowed_canon(p);
		wg_key_to_hex(p->public_key, hex);
		wg_key_to_hex(eff_psk(p), phex);
		ck_assert_int_ge(asprintf(&lines[i], "%s psk=%s ka=%u ips=%s\n", hex, phex,
					  eff_keepalive(p), ips),
				 0);
		free(ips);
	}
	qsort(lines, dev->n_peers, sizeof(*lines), str_cmp);
	for (size_t i = 0; i < dev->n_peers; i++) {
		fputs(lines[i], f);
		free(lines[i]);
	}
	free(lines);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

static struct {
	uint64_t seed;
	char *desired, *current, *plan;
} ctx;

static void fail_case(const char *what)
{
	fprintf(stderr, "seed %llu: %s\ndesired:\n%scurrent:\n%splan:\n%s",
		(unsigned long long)ctx.seed, what, ctx.desired, ctx.current,
		ctx.plan ? ctx.plan : "");
	ck_abort_msg("seed %llu: %s", (unsigned long long)ctx.seed, what);
}

static void expect(bool ok, const char *what)
{
	if (!ok)
		fail_case(what);
}

static size_t find_peer(const struct wg_device *dev, const uint8_t key[WG_KEY_LEN])
{
	size_t i = 0;

	while (i < dev->n_peers && memcmp(dev->peers[i].public_key, key, WG_KEY_LEN) != 0)
		i++;
	return i;
}

static bool cidr_identical(const struct ip_cidr *a, const struct ip_cidr *b)
{
	return a->addr.family == b->addr.family && a->prefix == b->prefix &&
	       memcmp(a->addr.bytes, b->addr.bytes, sizeof(a->addr.bytes)) == 0;
}

/* Same bytes in every input field, junk behind a missing flag included. */
static bool identical(const struct wg_device *a, const struct wg_device *b)
{
	if (a->flags != b->flags || a->listen_port != b->listen_port ||
	    memcmp(a->private_key, b->private_key, WG_KEY_LEN) != 0 || a->n_peers != b->n_peers)
		return false;
	for (size_t i = 0; i < a->n_peers; i++) {
		const struct wg_peer *p = &a->peers[i], *q = &b->peers[i];
		if (memcmp(p->public_key, q->public_key, WG_KEY_LEN) != 0 ||
		    memcmp(p->psk, q->psk, WG_KEY_LEN) != 0 || p->keepalive != q->keepalive ||
		    p->flags != q->flags || p->n_allowed_ips != q->n_allowed_ips)
			return false;
		for (size_t j = 0; j < p->n_allowed_ips; j++)
			if (!cidr_identical(&p->allowed_ips[j], &q->allowed_ips[j]))
				return false;
	}
	return true;
}

/* Removals first, then the rest, each strictly in key order; no key twice. */
static void check_plan_order(const struct wg_device *change)
{
	size_t i = 0;

	for (; i < change->n_peers && (change->peers[i].flags & WG_PEER_REMOVE); i++) {
		expect(change->peers[i].flags == WG_PEER_REMOVE, "remove with other flags");
		expect(i == 0 || memcmp(change->peers[i - 1].public_key,
					change->peers[i].public_key, WG_KEY_LEN) < 0,
		       "removals out of order");
	}
	for (size_t first = i; i < change->n_peers; i++) {
		expect(!(change->peers[i].flags & WG_PEER_REMOVE), "remove after a change");
		expect(i == first || memcmp(change->peers[i - 1].public_key,
					    change->peers[i].public_key, WG_KEY_LEN) < 0,
		       "changes out of order");
		for (size_t j = 0; j < first; j++)
			expect(memcmp(change->peers[j].public_key, change->peers[i].public_key,
				      WG_KEY_LEN) != 0,
			       "key both removed and changed");
	}
}

/* The plan's allowed IPs: host bits clear, no duplicates. */
static void check_plan_cidrs(const struct wg_peer *p)
{
	for (size_t i = 0; i < p->n_allowed_ips; i++) {
		struct ip_cidr c = p->allowed_ips[i];
		ip_cidr_mask(&c);
		expect(ip_addr_equal(&c.addr, &p->allowed_ips[i].addr), "host bits in plan");
		for (size_t j = 0; j < i; j++)
			expect(p->allowed_ips[j].prefix != c.prefix ||
				       !ip_addr_equal(&p->allowed_ips[j].addr, &c.addr),
			       "duplicate allowed IP in plan");
	}
	expect(p->n_allowed_ips == 0 || (p->flags & WG_PEER_REPLACE_ALLOWED_IPS),
	       "allowed IPs without replace");
}

static void remove_peer(struct wg_device *dev, size_t i)
{
	free(dev->peers[i].allowed_ips);
	dev->peers[i] = dev->peers[--dev->n_peers];
}

/* What the kernel does with the change, checking on the way that each field
 * the plan sets really changes something (the plan is minimal). */
static void apply_peer(struct wg_device *dev, const struct wg_peer *c)
{
	size_t i = find_peer(dev, c->public_key);
	bool added = i == dev->n_peers;

	check_plan_cidrs(c);
	if (c->flags & WG_PEER_REMOVE) {
		expect(!added, "removes a peer that is not there");
		remove_peer(dev, i);
		return;
	}
	if (added) {
		expect(c->flags & WG_PEER_REPLACE_ALLOWED_IPS, "added without replace");
		expect(!(c->flags & WG_PEER_HAS_PSK) || !wg_key_is_zero(c->psk), "added, psk none");
		expect(!(c->flags & WG_PEER_HAS_KEEPALIVE) || c->keepalive, "added, keepalive off");
		struct wg_peer *p = add_peer(dev, c->public_key);
		p->flags = WG_PEER_HAS_PSK | WG_PEER_HAS_KEEPALIVE;
	}
	struct wg_peer *p = &dev->peers[i];
	expect(c->flags != 0, "peer in plan with nothing to do");
	if (c->flags & WG_PEER_HAS_PSK) {
		expect(added || memcmp(eff_psk(p), c->psk, WG_KEY_LEN) != 0, "psk already so");
		memcpy(p->psk, c->psk, WG_KEY_LEN);
		p->flags |= WG_PEER_HAS_PSK;
	}
	if (c->flags & WG_PEER_HAS_KEEPALIVE) {
		expect(added || eff_keepalive(p) != c->keepalive, "keepalive already so");
		p->keepalive = c->keepalive;
		p->flags |= WG_PEER_HAS_KEEPALIVE;
	}
	if (c->flags & WG_PEER_REPLACE_ALLOWED_IPS) {
		char *before = allowed_canon(p), *after = allowed_canon(c);
		expect(added || strcmp(before, after) != 0, "allowed IPs already so");
		free(before);
		free(after);
		p->n_allowed_ips = 0;
		for (size_t j = 0; j < c->n_allowed_ips; j++)
			ck_assert_int_eq(wg_peer_add_allowed_ip(p, &c->allowed_ips[j]), 0);
	}
}

static void apply_device(struct wg_device *dev, const struct wg_device *want,
			 const struct wg_device *c)
{
	if (c->flags & WG_DEVICE_HAS_PRIVATE_KEY) {
		expect(want->flags & WG_DEVICE_HAS_PRIVATE_KEY, "private key not desired");
		expect(memcmp(dev->private_key, c->private_key, WG_KEY_LEN) != 0 ||
			       !(dev->flags & WG_DEVICE_HAS_PRIVATE_KEY),
		       "private key already so");
		memcpy(dev->private_key, c->private_key, WG_KEY_LEN);
	}
	if (c->flags & WG_DEVICE_HAS_LISTEN_PORT) {
		expect(want->flags & WG_DEVICE_HAS_LISTEN_PORT, "listen port not desired");
		expect(dev->listen_port != c->listen_port ||
			       !(dev->flags & WG_DEVICE_HAS_LISTEN_PORT),
		       "listen port already so");
		dev->listen_port = c->listen_port;
	}
	dev->flags |= c->flags;
	if (want->flags & WG_DEVICE_HAS_PRIVATE_KEY)
		expect(memcmp(dev->private_key, want->private_key, WG_KEY_LEN) == 0,
		       "private key differs after apply");
	if (want->flags & WG_DEVICE_HAS_LISTEN_PORT)
		expect(dev->listen_port == want->listen_port, "listen port differs after apply");
}

static void property_case(uint64_t seed)
{
	uint64_t rng = ctx.seed = seed;
	struct wg_device *desired = random_device(&rng, false);
	struct wg_device *current = random_device(&rng, true);
	struct wg_device *change = NULL, *again = NULL;

	ctx.desired = device_text(desired);
	ctx.current = device_text(current);
	ctx.plan = NULL;
	char *want = peers_canon(desired);
	struct wg_device *desired0 = clone_device(desired), *current0 = clone_device(current);
	wg_device_sort_peers(desired0);
	wg_device_sort_peers(current0);
	expect(peer_diff(desired, current, &change) == 0, "peer_diff failed");
	ctx.plan = device_text(change);

	expect(identical(desired, desired0) && identical(current, current0), "inputs modified");
	check_plan_order(change);
	struct wg_device *result = clone_device(current);
	apply_device(result, desired, change);
	for (size_t i = 0; i < change->n_peers; i++)
		apply_peer(result, &change->peers[i]);
	char *got = peers_canon(result);
	expect(strcmp(got, want) == 0, "applied plan does not give the desired peers");
	expect(peer_diff(desired, result, &again) == 0 && wg_device_is_empty(again),
	       "second diff not empty");

	free(got);
	free(want);
	wg_device_free(desired0);
	wg_device_free(current0);
	free(ctx.desired);
	free(ctx.current);
	free(ctx.plan);
	wg_device_free(again);
	wg_device_free(result);
	wg_device_free(change);
	wg_device_free(desired);
	wg_device_free(current);
}

START_TEST(test_property_apply)
{
	for (uint64_t k = 0; k < SEEDS_PER_TEST; k++)
		property_case((uint64_t)_i * SEEDS_PER_TEST + k);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("peer_diff");
	TCase *golden = tcase_create("golden");
	TCase *checks = tcase_create("checks");

	golden_scan();
	if (n_golden > 0)
		tcase_add_loop_test(golden, test_golden, 0, n_golden);
	else
		tcase_add_test(golden, test_golden_missing);
	suite_add_tcase(s, golden);
	tcase_add_test(checks, test_10k_equal);
	tcase_add_test(checks, test_10k_one_percent);
	tcase_add_test(checks, test_duplicate_key);
	tcase_add_loop_test(checks, test_input_order, 0, 4);
	tcase_add_loop_test(checks, test_property_apply, 0, 40);
	suite_add_tcase(s, checks);
	int r = check_run(s);
	for (int i = 0; i < n_golden; i++)
		free(golden_files[i]);
	free(golden_files);
	return r;
}
