/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "backoff.h"

#include <stdint.h>

#include <event2/util.h>

#define BACKOFF_BASE_MS 500u
#define BACKOFF_MAX_MS 10000u

void backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}

struct timeval backoff_next(struct backoff *b)
{
	uint32_t ms = BACKOFF_MAX_MS;
	if (b->attempt < 5)
		ms = BACKOFF_BASE_MS << b->attempt;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	b->attempt++;

	uint32_t rnd;
	evutil_secure_rng_get_bytes(&rnd, sizeof(rnd));
	ms -= rnd % (ms / 4 + 1);

	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000) * 1000,
	};
	return tv;
}
