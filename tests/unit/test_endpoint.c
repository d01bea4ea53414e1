/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <errno.h>
#include <string.h>

#include "backoff.h"
#include "check_run.h"
#include "endpoint.h"

static const struct {
	const char *text;
	unsigned flags;
	int ret;
	enum endpoint_kind kind;
	const char *host_or_path;
	uint16_t port;
} cases[] = {
	{"127.0.0.1:13000", 0, 0, ENDPOINT_TCP, "127.0.0.1", 13000},
	{"localhost:1", 0, 0, ENDPOINT_TCP, "localhost", 1},
	{"[::1]:65535", 0, 0, ENDPOINT_TCP, "::1", 65535},
	{"[fd00::3:2:1]:443", 0, 0, ENDPOINT_TCP, "fd00::3:2:1", 443},
	{"unix:/run/redis/redis.sock", ENDPOINT_ALLOW_UNIX, 0, ENDPOINT_UNIX,
	 "/run/redis/redis.sock", 0},
	{"unix:/run/redis/redis.sock", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"unix:relative.sock", ENDPOINT_ALLOW_UNIX, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"unix:", ENDPOINT_ALLOW_UNIX, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"127.0.0.1", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"127.0.0.1:", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{":80", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"127.0.0.1:0", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"127.0.0.1:65536", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"127.0.0.1:080000", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"127.0.0.1:+80", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"127.0.0.1:80x", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"127.0.0.1: 80", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"::1:80", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"[::1]80", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"[::1", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"[]:80", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"[not-v6]:80", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
	{"", 0, -EINVAL, ENDPOINT_TCP, NULL, 0},
};

START_TEST(test_parse)
{
	struct endpoint ep = {.port = 7};
	char err[128] = "";
	int r = endpoint_parse(cases[_i].text, cases[_i].flags, &ep, err, sizeof(err));
	ck_assert_msg(r == cases[_i].ret, "'%s': %d (%s)", cases[_i].text, r, err);
	if (r < 0) {
		ck_assert_str_ne(err, "");
		ck_assert_uint_eq(ep.port, 7); /* untouched */
		return;
	}
	ck_assert_int_eq(ep.kind, cases[_i].kind);
	if (ep.kind == ENDPOINT_TCP) {
		ck_assert_str_eq(ep.host, cases[_i].host_or_path);
		ck_assert_uint_eq(ep.port, cases[_i].port);
	} else {
		ck_assert_str_eq(ep.path, cases[_i].host_or_path);
	}
}
END_TEST

START_TEST(test_long_inputs)
{
	char s[400];
	struct endpoint ep;
	char err[128];
	memset(s, 'a', 300);
	strcpy(s + 300, ":80");
	ck_assert_int_eq(endpoint_parse(s, 0, &ep, err, sizeof(err)), -EINVAL);
	strcpy(s, "unix:/");
	memset(s + 6, 'a', 200);
	s[206] = '\0';
	ck_assert_int_eq(endpoint_parse(s, ENDPOINT_ALLOW_UNIX, &ep, err, sizeof(err)), -EINVAL);
}
END_TEST

/* 0.5 s doubling to 10 s, each less at most a quarter; reset starts over. */
START_TEST(test_backoff)
{
	static const long want_ms[] = {500, 1000, 2000, 4000, 8000, 10000, 10000, 10000};
	struct backoff b;
	backoff_reset(&b);
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < ARRAY_LEN(want_ms); i++) {
			struct timeval tv = backoff_next(&b);
			long ms = (long)tv.tv_sec * 1000 + (long)tv.tv_usec / 1000;
			ck_assert_int_le(ms, want_ms[i]);
			ck_assert_int_ge(ms, want_ms[i] - want_ms[i] / 4);
		}
		backoff_reset(&b);
	}
}
END_TEST

static Suite *endpoint_suite(void)
{
	Suite *s = suite_create("endpoint");
	TCase *tc = tcase_create("endpoint");
	tcase_add_loop_test(tc, test_parse, 0, (int)ARRAY_LEN(cases));
	tcase_add_test(tc, test_long_inputs);
	tcase_add_test(tc, test_backoff);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(endpoint_suite());
}
