/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_CHECK_RUN_H
#define WIREGUI_CHECK_RUN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* Run a suite; fail when anything failed or when nothing ran at all. */
static inline int check_run(Suite *suite)
{
	SRunner *sr = srunner_create(suite);
	srunner_run_all(sr, CK_NORMAL);
	int ran = srunner_ntests_run(sr);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (ran == 0) {
		fprintf(stderr, "no test ran\n");
		return EXIT_FAILURE;
	}
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
