/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent's whole input path: bytes from the socket into the session
 * (frame header, length bound, protobuf decode, unknown-field check,
 * state machine, validation, handlers). The input is fed in two pieces
 * split where its first byte says (that byte is not input), to exercise
 * partial frames.
 */
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "fuzz.h"
#include "log.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct agent_conf conf = {
		.socket_path = (char *)"/nonexistent/agent.sock",
		.interface = (char *)"wgfuzz0",
		.nft_table = (char *)"wiregui_fuzz",
	};
	log_set_level(LOG_LVL_ERR);
	if (size == 0)
		return 0;
	/* The first byte is not input: it says where the rest is split. */
	size_t split = data[0];
	data++;
	size--;
	if (split > size)
		split = size;
	struct session *s = session_new(&conf);
	if (s == NULL)
		return 0;
	if (session_input(s, data, split) == 0)
		session_input(s, data + split, size - split);
	size_t len;
	const uint8_t *out = session_output(s, &len);
	/* Every reply the agent queues must itself be a well-formed frame. */
	while (len >= FRAME_HEADER_LEN) {
		struct frame_header h;
		if (frame_header_decode(out, &h) != WIREGUI__ERROR_CODE__OK ||
		    len < FRAME_HEADER_LEN + h.length)
			__builtin_trap();
		ProtobufCMessage *msg;
		if (frame_decode(h.type, out + FRAME_HEADER_LEN, h.length, &msg) !=
		    WIREGUI__ERROR_CODE__OK)
			__builtin_trap();
		protobuf_c_message_free_unpacked(msg, NULL);
		out += FRAME_HEADER_LEN + h.length;
		len -= FRAME_HEADER_LEN + h.length;
	}
	if (len != 0)
		__builtin_trap();
	session_free(s);
	return 0;
}
