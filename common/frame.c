/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>

static const struct {
	const ProtobufCMessageDescriptor *desc;
	const char *name;
} frame_types[] = {
	[WIREGUI__MSG_TYPE__MSG_HELLO] = {&wiregui__hello__descriptor, "Hello"},
	[WIREGUI__MSG_TYPE__MSG_HELLO_REPLY] = {&wiregui__hello_reply__descriptor, "HelloReply"},
	[WIREGUI__MSG_TYPE__MSG_RESULT] = {&wiregui__result__descriptor, "Result"},
	[WIREGUI__MSG_TYPE__MSG_INTERFACE_SET] = {&wiregui__interface_set__descriptor,
						  "InterfaceSet"},
	[WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BEGIN] = {&wiregui__peers_sync_begin__descriptor,
						     "PeersSyncBegin"},
	[WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH] = {&wiregui__peers_sync_batch__descriptor,
						     "PeersSyncBatch"},
	[WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_END] = {&wiregui__peers_sync_end__descriptor,
						   "PeersSyncEnd"},
	[WIREGUI__MSG_TYPE__MSG_PEERS_PATCH] = {&wiregui__peers_patch__descriptor, "PeersPatch"},
	[WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BEGIN] = {&wiregui__firewall_sync_begin__descriptor,
							"FirewallSyncBegin"},
	[WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BATCH] = {&wiregui__firewall_sync_batch__descriptor,
							"FirewallSyncBatch"},
	[WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_END] = {&wiregui__firewall_sync_end__descriptor,
						      "FirewallSyncEnd"},
	[WIREGUI__MSG_TYPE__MSG_FIREWALL_PATCH] = {&wiregui__firewall_patch__descriptor,
						   "FirewallPatch"},
	[WIREGUI__MSG_TYPE__MSG_STATS_REQUEST] = {&wiregui__stats_request__descriptor,
						  "StatsRequest"},
	[WIREGUI__MSG_TYPE__MSG_STATS_REPLY] = {&wiregui__stats_reply__descriptor, "StatsReply"},
	[WIREGUI__MSG_TYPE__MSG_PING] = {&wiregui__ping__descriptor, "Ping"},
};

#define FRAME_NTYPES (sizeof(frame_types) / sizeof(frame_types[0]))

static uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

Wiregui__ErrorCode frame_header_decode(const uint8_t buf[FRAME_HEADER_LEN],
				       struct frame_header *ret_hdr)
{
	ret_hdr->length = be32_get(buf);
	ret_hdr->type = (uint16_t)(buf[4] << 8 | buf[5]);
	ret_hdr->version = buf[6];
	ret_hdr->flags = buf[7];
	if (ret_hdr->version != FRAME_VERSION)
		return WIREGUI__ERROR_CODE__VERSION;
	if (ret_hdr->length > FRAME_MAX_PAYLOAD || ret_hdr->flags != 0)
		return WIREGUI__ERROR_CODE__BAD_FRAME;
	return WIREGUI__ERROR_CODE__OK;
}

void frame_header_encode(const struct frame_header *hdr, uint8_t out[FRAME_HEADER_LEN])
{
	out[0] = (uint8_t)(hdr->length >> 24);
	out[1] = (uint8_t)(hdr->length >> 16);
	out[2] = (uint8_t)(hdr->length >> 8);
	out[3] = (uint8_t)hdr->length;
	out[4] = (uint8_t)(hdr->type >> 8);
	out[5] = (uint8_t)hdr->type;
	out[6] = hdr->version;
	out[7] = hdr->flags;
}

const ProtobufCMessageDescriptor *frame_descriptor(uint16_t type)
{
	return type < FRAME_NTYPES ? frame_types[type].desc : NULL;
}

const char *frame_type_name(uint16_t type)
{
	return type < FRAME_NTYPES && frame_types[type].name ? frame_types[type].name : "unknown";
}

int frame_encode(uint16_t type, const ProtobufCMessage *msg, uint8_t **ret_buf, size_t *ret_len)
{
	const ProtobufCMessageDescriptor *desc = frame_descriptor(type);
	if (desc == NULL || msg->descriptor != desc)
		return -EINVAL;
	size_t payload = protobuf_c_message_get_packed_size(msg);
	if (payload > FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	uint8_t *buf = malloc(FRAME_HEADER_LEN + payload);
	if (buf == NULL)
		return -ENOMEM;
	struct frame_header hdr = {
		.length = (uint32_t)payload,
		.type = type,
		.version = FRAME_VERSION,
	};
	frame_header_encode(&hdr, buf);
	protobuf_c_message_pack(msg, buf + FRAME_HEADER_LEN);
	*ret_buf = buf;
	*ret_len = FRAME_HEADER_LEN + payload;
	return 0;
}

bool frame_has_unknown_fields(const ProtobufCMessage *msg)
{
	if (msg->n_unknown_fields != 0)
		return true;
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *base = (const char *)msg;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
			const ProtobufCMessage *const *items =
				*(const ProtobufCMessage *const *const *)(const void *)(base +
											f->offset);
			for (size_t j = 0; j < n; j++)
				if (frame_has_unknown_fields(items[j]))
					return true;
		} else {
			const ProtobufCMessage *sub =
				*(const ProtobufCMessage *const *)(const void *)(base + f->offset);
			if (sub != NULL && frame_has_unknown_fields(sub))
				return true;
		}
	}
	return false;
}

Wiregui__ErrorCode frame_decode(uint16_t type, const uint8_t *payload, size_t len,
				ProtobufCMessage **ret_msg)
{
	const ProtobufCMessageDescriptor *desc = frame_descriptor(type);
	if (desc == NULL)
		return WIREGUI__ERROR_CODE__UNKNOWN_TYPE;
	ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, payload);
	if (msg == NULL)
		return WIREGUI__ERROR_CODE__DECODE;
	if (frame_has_unknown_fields(msg)) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return WIREGUI__ERROR_CODE__UNKNOWN_FIELD;
	}
	*ret_msg = msg;
	return WIREGUI__ERROR_CODE__OK;
}
