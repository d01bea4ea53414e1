/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "frame.h"
#include "log.h"
#include "validate.h"

enum session_state {
	ST_NEW = 1 << 0,   /* connected, no Hello yet */
	ST_READY = 1 << 1, /* Hello done */
};

struct session {
	const struct agent_conf *conf;
	enum session_state state;
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
};

typedef int (*handler_fn)(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);

static int handle_hello(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
static int handle_unsupported(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
static int handle_ping(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);

/* Requests that carry no list: far below the frame limit. */
#define SMALL_PAYLOAD 4096u

/*
 * One row per request type: its handler, the states it may arrive in and
 * its largest payload. Type, state and length are all checked on the
 * header, before the payload is allocated, read or decoded.
 */
static const struct handler {
	uint16_t type;
	handler_fn fn;
	unsigned states;
	uint32_t max_len;
} handlers[] = {
	{WIREGUI__MSG_TYPE__MSG_HELLO, handle_hello, ST_NEW, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_PING, handle_ping, ST_READY, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_INTERFACE_SET, handle_unsupported, ST_READY, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BEGIN, handle_unsupported, ST_READY, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_PEERS_PATCH, handle_unsupported, ST_READY, FRAME_MAX_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BEGIN, handle_unsupported, ST_READY, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_FIREWALL_PATCH, handle_unsupported, ST_READY, FRAME_MAX_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, handle_unsupported, ST_READY, SMALL_PAYLOAD},
	/* Batch/End are only valid inside a stream their Begin opened. */
	{WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH, handle_unsupported, 0, FRAME_MAX_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_END, handle_unsupported, 0, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BATCH, handle_unsupported, 0, FRAME_MAX_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_END, handle_unsupported, 0, SMALL_PAYLOAD},
};

struct session *session_new(const struct agent_conf *conf)
{
	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->conf = conf;
	s->state = ST_NEW;
	return s;
}

void session_free(struct session *s)
{
	if (s == NULL)
		return;
	free(s->payload);
	free(s->out);
	free(s);
}

const uint8_t *session_output(const struct session *s, size_t *ret_len)
{
	*ret_len = s->out_len;
	return s->out;
}

void session_output_consumed(struct session *s, size_t n)
{
	if (n >= s->out_len) {
		s->out_len = 0;
		return;
	}
	memmove(s->out, s->out + n, s->out_len - n);
	s->out_len -= n;
}

uint64_t session_frames_begun(const struct session *s)
{
	return s->frames_begun;
}

bool session_mid_frame(const struct session *s)
{
	return s->hdr_have > 0 && !s->closing;
}

static int output_append(struct session *s, const uint8_t *data, size_t len)
{
	if (s->out_len + len > s->out_cap) {
		size_t cap = s->out_cap ? s->out_cap : 4096;
		while (cap < s->out_len + len)
			cap *= 2;
		uint8_t *p = realloc(s->out, cap);
		if (p == NULL)
			return -ENOMEM;
		s->out = p;
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, data, len);
	s->out_len += len;
	return 0;
}

static int session_send(struct session *s, uint16_t type, const ProtobufCMessage *msg)
{
	uint8_t *buf;
	size_t len;
	int r = frame_encode(type, msg, &buf, &len);
	if (r < 0)
		return r;
	r = output_append(s, buf, len);
	free(buf);
	return r;
}

static int session_result(struct session *s, uint64_t request_id, Wiregui__ErrorCode code,
			  const char *field, const char *message)
{
	Wiregui__Result res = WIREGUI__RESULT__INIT;
	res.request_id = request_id;
	res.code = code;
	res.field = (char *)(field ? field : "");
	res.message = (char *)message;
	if (code != WIREGUI__ERROR_CODE__OK)
		log_warn("request %llu: %s%s%s: %s", (unsigned long long)request_id,
			 protobuf_c_enum_descriptor_get_value(&wiregui__error_code__descriptor,
							      (int)code)
				 ->name,
			 field && *field ? " field " : "", field ? field : "", message);
	return session_send(s, WIREGUI__MSG_TYPE__MSG_RESULT, &res.base);
}

/* A protocol violation: say why, then close. */
__attribute__((format(printf, 5, 6))) static int
session_violation(struct session *s, uint64_t request_id, Wiregui__ErrorCode code,
		  const char *field, const char *fmt, ...)
{
	char message[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	session_result(s, request_id, code, field, message);
	s->closing = true;
	return -EPROTO;
}

static int handle_hello(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__Hello *hello = (const Wiregui__Hello *)msg;
	struct verr err;

	if (validate_hello(hello, &err) < 0) {
		Wiregui__ErrorCode code = strcmp(err.field, "protocol_version") == 0
						  ? WIREGUI__ERROR_CODE__VERSION
						  : WIREGUI__ERROR_CODE__INVALID_FIELD;
		return session_violation(s, request_id, code, err.field, "%s", err.message);
	}
	log_info("hello from %s", hello->client[0] ? hello->client : "(unnamed client)");

	Wiregui__InterfaceSettings ifs = WIREGUI__INTERFACE_SETTINGS__INIT;
	Wiregui__InterfaceSettings *ifaces[] = {&ifs};
	ifs.name = s->conf->interface;

	Wiregui__HelloReply reply = WIREGUI__HELLO_REPLY__INIT;
	reply.request_id = request_id;
	reply.protocol_version = FRAME_VERSION;
	reply.agent_version = (char *)WIREGUI_VERSION;
	reply.backend = WIREGUI__BACKEND__BACKEND_NONE;
	reply.n_interfaces = 1;
	reply.interfaces = ifaces;
	reply.nft_table = s->conf->nft_table;
	reply.max_frame = FRAME_MAX_PAYLOAD;
	reply.max_batch = FRAME_MAX_BATCH;
	s->state = ST_READY;
	return session_send(s, WIREGUI__MSG_TYPE__MSG_HELLO_REPLY, &reply.base);
}

static int handle_ping(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	(void)msg;
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, "");
}

/* Known requests whose work lands with the WireGuard and nftables backends. */
static int handle_unsupported(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	char message[128];
	snprintf(message, sizeof(message), "%s is not carried out by this agent build",
		 msg->descriptor->name);
	return session_result(s, request_id, WIREGUI__ERROR_CODE__UNSUPPORTED, NULL, message);
}

/* Every request carries request_id as field 1; replies echo it. */
static uint64_t request_id_of(const ProtobufCMessage *msg)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, "request_id");
	if (f == NULL || f->type != PROTOBUF_C_TYPE_UINT64)
		return 0;
	return *(const uint64_t *)(const void *)((const char *)msg + f->offset);
}

static int session_dispatch(struct session *s, const uint8_t *payload, size_t len)
{
	const struct handler *h = s->handler;
	ProtobufCMessage *msg;
	Wiregui__ErrorCode code = frame_decode(h->type, payload, len, &msg);
	if (code != WIREGUI__ERROR_CODE__OK)
		return session_violation(s, 0, code, NULL, "%s payload of %zu bytes rejected",
					 frame_type_name(h->type), len);
	int r = h->fn(s, msg, request_id_of(msg));
	protobuf_c_message_free_unpacked(msg, NULL);
	return r;
}

static const struct handler *handler_find(uint16_t type)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].type == type)
			return &handlers[i];
	return NULL;
}

static int session_header_done(struct session *s)
{
	Wiregui__ErrorCode code = frame_header_decode(s->hdr_buf, &s->hdr);
	if (code == WIREGUI__ERROR_CODE__VERSION)
		return session_violation(s, 0, code, NULL, "frame version %u, this agent speaks %u",
					 s->hdr.version, FRAME_VERSION);
	if (code != WIREGUI__ERROR_CODE__OK)
		return session_violation(s, 0, code, NULL, "bad frame header (length %u, flags %u)",
					 s->hdr.length, s->hdr.flags);
	uint16_t type = s->hdr.type;
	s->handler = handler_find(type);
	if (s->handler == NULL)
		return session_violation(s, 0, WIREGUI__ERROR_CODE__UNKNOWN_TYPE, NULL,
					 "message type %u (%s) is not a request", type,
					 frame_type_name(type));
	if (!(s->handler->states & s->state))
		return session_violation(s, 0, WIREGUI__ERROR_CODE__OUT_OF_STATE, NULL,
					 "%s is not allowed %s", frame_type_name(type),
					 s->state == ST_NEW ? "before Hello" : "now");
	if (s->hdr.length > s->handler->max_len)
		return session_violation(s, 0, WIREGUI__ERROR_CODE__LIMIT, NULL,
					 "%s of %u bytes, at most %u", frame_type_name(type),
					 s->hdr.length, s->handler->max_len);
	/* The length is bounded by frame_header_decode: now it may be allocated. */
	s->payload = malloc(s->hdr.length ? s->hdr.length : 1);
	if (s->payload == NULL) {
		s->closing = true;
		return -ENOMEM;
	}
	s->payload_have = 0;
	return 0;
}

static int session_frame_done(struct session *s)
{
	int r = session_dispatch(s, s->payload, s->hdr.length);
	free(s->payload);
	s->payload = NULL;
	s->hdr_have = 0;
	return r;
}

int session_input(struct session *s, const uint8_t *data, size_t len)
{
	while (len > 0 && !s->closing) {
		int r = 0;
		if (s->hdr_have < FRAME_HEADER_LEN) {
			if (s->hdr_have == 0)
				s->frames_begun++;
			size_t n = FRAME_HEADER_LEN - s->hdr_have;
			n = n < len ? n : len;
			memcpy(s->hdr_buf + s->hdr_have, data, n);
			s->hdr_have += n;
			data += n;
			len -= n;
			if (s->hdr_have == FRAME_HEADER_LEN)
				r = session_header_done(s);
		} else {
			size_t n = s->hdr.length - s->payload_have;
			n = n < len ? n : len;
			memcpy(s->payload + s->payload_have, data, n);
			s->payload_have += n;
			data += n;
			len -= n;
		}
		if (r == 0 && s->hdr_have == FRAME_HEADER_LEN && s->payload != NULL &&
		    s->payload_have == s->hdr.length)
			r = session_frame_done(s);
		if (r < 0) {
			s->closing = true;
			return r;
		}
	}
	return s->closing ? -EPROTO : 0;
}
