/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_FRAME_H
#define WIREGUI_FRAME_H

/*
 * Agent socket framing. A frame is an 8-byte header then a protobuf payload:
 *   u32 payload length (big endian) | u16 message type (BE) | u8 version | u8 flags (0)
 * The length is checked against FRAME_MAX_PAYLOAD before anything is
 * allocated for the payload.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.pb-c.h"

#define FRAME_HEADER_LEN 8
#define FRAME_VERSION 1
#define FRAME_MAX_PAYLOAD (1024u * 1024u)
/* Entries per *SyncBatch / StatsReply; keeps every batch far below FRAME_MAX_PAYLOAD. */
#define FRAME_MAX_BATCH 1000u

struct frame_header {
	uint32_t length;
	uint16_t type;
	uint8_t version;
	uint8_t flags;
};

/*
 * Decode and check a header: length <= FRAME_MAX_PAYLOAD, version ==
 * FRAME_VERSION, flags == 0. Returns WIREGUI__ERROR_CODE__OK, or
 * BAD_FRAME (length/flags) or VERSION; ret_hdr is filled in either case
 * so the caller can log what it got. The type is not checked here.
 */
Wiregui__ErrorCode frame_header_decode(const uint8_t buf[FRAME_HEADER_LEN],
				       struct frame_header *ret_hdr);
void frame_header_encode(const struct frame_header *hdr, uint8_t out[FRAME_HEADER_LEN]);

/* Descriptor of a message type, NULL if the type is unknown. */
const ProtobufCMessageDescriptor *frame_descriptor(uint16_t type);
/* "Hello", "PeersSyncBegin", ... or "unknown". */
const char *frame_type_name(uint16_t type);

/*
 * Serialise msg (whose descriptor must be frame_descriptor(type)) into a
 * malloc'd frame (header + payload). 0, -EMSGSIZE (payload too large),
 * -EINVAL (type/descriptor mismatch) or -ENOMEM.
 */
int frame_encode(uint16_t type, const ProtobufCMessage *msg, uint8_t **ret_buf, size_t *ret_len);

/*
 * Unpack a payload of the given type. Returns OK and a message to free with
 * protobuf_c_message_free_unpacked(msg, NULL); UNKNOWN_TYPE; DECODE (not a
 * valid protobuf); UNKNOWN_FIELD (any message in the tree carries fields
 * this protocol version does not define: protobuf-c keeps them silently).
 */
Wiregui__ErrorCode frame_decode(uint16_t type, const uint8_t *payload, size_t len,
				ProtobufCMessage **ret_msg);

/* True if msg or any nested message has unknown fields. */
bool frame_has_unknown_fields(const ProtobufCMessage *msg);

#endif
