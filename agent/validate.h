/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_VALIDATE_H
#define WIREGUI_AGENT_VALIDATE_H

/*
 * Every field of every request is checked here before a handler runs:
 * protobuf-c only checks the wire format (unknown fields are refused by
 * frame_decode). A failure names the field and says what is wrong.
 */

#include <stddef.h>

#include "agent.pb-c.h"

struct verr {
	char field[64];
	char message[160];
};

/* 0, or -EINVAL with err filled. */
int validate_hello(const Wiregui__Hello *m, struct verr *err);

#endif
