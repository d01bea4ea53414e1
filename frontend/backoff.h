/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_BACKOFF_H
#define WIREGUI_BACKOFF_H

/*
 * Reconnect delays shared by the frontend's clients (PostgreSQL, Redis,
 * agent): 0.5 s doubling up to 10 s, each less a random 0-25 % so that many
 * web instances do not hammer a server that just came back in lockstep.
 */

#include <sys/time.h>

struct backoff {
	unsigned attempt;
};

void backoff_reset(struct backoff *b);
/* The delay before the next attempt; advances the sequence. */
struct timeval backoff_next(struct backoff *b);

#endif
