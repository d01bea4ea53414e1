/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_FUZZ_H
#define WIREGUI_FUZZ_H

/*
 * libFuzzer entry point, defined by each fuzz_<name>.c. The same file is
 * linked either with libFuzzer (-Dfuzz=true) or with replay_main.c, which
 * feeds it the seed corpus in every build.
 */

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
