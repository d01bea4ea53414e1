/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_AGENT_SESSION_INT_H
#define WIREGUI_AGENT_SESSION_INT_H

/*
 * Inside the session: the state shared by session.c (frames, dispatch, Hello,
 * WireGuard requests) and session_fw.c (firewall requests). Not for other
 * modules: they use session.h.
 */

#include <stddef.h>
#include <stdint.h>

#include "agent.pb-c.h"
#include "frame.h"
#include "fw_table.h"
#include "session.h"
#include "validate.h"

enum session_state {
	ST_NEW = 1 << 0,	/* connected, no Hello yet */
	ST_READY = 1 << 1,	/* Hello done */
	ST_PEERS_SYNC = 1 << 2, /* between PeersSyncBegin and PeersSyncEnd */
	ST_FW_SYNC = 1 << 3,	/* between FirewallSyncBegin and FirewallSyncEnd */
};

/*
 * The first error of a full sync being received ends its use: later batches
 * and the End are answered with it, nothing is applied, and the connection
 * stays open.
 */
struct stream_error {
	Wiregui__ErrorCode code; /* OK while the stream is good */
	struct verr err;
};

struct peers_stream {
	struct wg_device *desired;
	uint64_t generation;
	uint32_t total;
	size_t batches;
	size_t allowed_ips; /* so far, all peers */
	struct stream_error fail;
};

struct fw_stream {
	struct fw_state *desired; /* in stream order until the End */
	uint64_t generation;
	uint32_t total_users, total_global_rules;
	size_t batches;
	size_t rules; /* so far, users' and global */
	size_t addrs; /* so far, all users */
	struct stream_error fail;
};

struct session {
	const struct agent_conf *conf;
	struct wg_iface *wg;
	struct fw_table *fw;
	enum session_state state;
	struct peers_stream stream;
	struct fw_stream fw_stream;
	bool closing;

	uint8_t hdr_buf[FRAME_HEADER_LEN];
	size_t hdr_have;
	struct frame_header hdr;
	const struct handler *handler; /* of the frame being read */
	uint64_t frames_begun;
	uint8_t *payload; /* allocated once the header is checked */
	size_t payload_have;

	uint8_t *out;
	size_t out_len, out_cap;

	/* Input not yet handled because the output was above the high water. */
	uint8_t *backlog;
	size_t backlog_len;
};

/* Queue a reply; 0 or -ENOMEM. */
int session_send(struct session *s, uint16_t type, const ProtobufCMessage *msg);
/* Queue a Result (logged unless OK). */
int session_result(struct session *s, uint64_t request_id, Wiregui__ErrorCode code,
		   const char *field, const char *message);
/* A validation failure (validate.h's -errno) as its Result. */
int session_verr(struct session *s, uint64_t request_id, int r, const struct verr *err);
/* What a failed write to WireGuard or nftables means for the frontend. */
Wiregui__ErrorCode session_write_code(int r);

/* Record a stream's first error (r from validate.h, err filled) and answer with it. */
int stream_error_set(struct session *s, struct stream_error *e, uint64_t request_id, int r);
/* Answer a request of a stream that already failed. */
int stream_error_answer(struct session *s, const struct stream_error *e, uint64_t request_id);

/* session_fw.c: the firewall requests, and the stream's reset (back to ST_READY). */
int handle_fw_sync_begin(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
int handle_fw_sync_batch(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
int handle_fw_sync_end(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
int handle_fw_patch(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
void fw_stream_reset(struct session *s);

#endif
