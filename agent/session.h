/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_SESSION_H
#define WIREGUI_AGENT_SESSION_H

/*
 * One frontend connection's protocol state, without any file descriptor:
 * bytes in (session_input), frames out (session_output). Keeping I/O out of
 * it lets the fuzzer and the tests drive exactly the code the socket does.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_conf.h"
#include "wg_iface.h"

struct session;
struct fw_table;

/*
 * wg: the interface requests act on; fw: the nftables table (both borrowed;
 * they outlive the session).
 */
struct session *session_new(const struct agent_conf *conf, struct wg_iface *wg,
			    struct fw_table *fw);
void session_free(struct session *s);

/* Replies queued beyond this: requests wait (see session_input). */
#define SESSION_OUTPUT_HIGH_WATER (4u * 1024 * 1024)

/*
 * Consume bytes from the client, handling each complete frame and queueing
 * replies. Returns 0 to go on, or -EPROTO once the connection must be closed
 * (after the queued output, which says why, is flushed); later input is
 * ignored. -ENOMEM likewise closes. Once the queued replies reach
 * SESSION_OUTPUT_HIGH_WATER, the rest of data is kept (session_backlogged):
 * read nothing more until the output drained, then call session_resume().
 * -EAGAIN when called while backlogged.
 */
int session_input(struct session *s, const uint8_t *data, size_t len);
bool session_backlogged(const struct session *s);
/* Handle kept input as session_input would; 0, -EPROTO or -ENOMEM. */
int session_resume(struct session *s);

/* Queued output not yet written, and how much of it the socket took. */
const uint8_t *session_output(const struct session *s, size_t *ret_len);
void session_output_consumed(struct session *s, size_t n);

/* A frame has started but not finished (for the stall timeout). */
bool session_mid_frame(const struct session *s);
/* Frames started so far: a change means a new frame began (its own stall clock). */
uint64_t session_frames_begun(const struct session *s);

#endif
