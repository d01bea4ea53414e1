/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "session.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "frame.h"
#include "log.h"
#include "session_int.h"
#include "validate.h"

/* Peers in StatsReply frames: about 100 bytes each, far below the frame limit. */
#define STATS_PER_REPLY 1000

typedef int (*handler_fn)(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);

static int handle_hello(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
static int handle_ping(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
static int handle_interface_set(struct session *s, const ProtobufCMessage *msg,
				uint64_t request_id);
static int handle_sync_begin(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
static int handle_sync_batch(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
static int handle_sync_end(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
static int handle_patch(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);
static int handle_stats(struct session *s, const ProtobufCMessage *msg, uint64_t request_id);

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
	{WIREGUI__MSG_TYPE__MSG_PING, handle_ping, ST_READY | ST_PEERS_SYNC | ST_FW_SYNC,
	 SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_INTERFACE_SET, handle_interface_set, ST_READY, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BEGIN, handle_sync_begin, ST_READY, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_PEERS_PATCH, handle_patch, ST_READY, FRAME_MAX_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BEGIN, handle_fw_sync_begin, ST_READY, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_FIREWALL_PATCH, handle_fw_patch, ST_READY, FRAME_MAX_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, handle_stats, ST_READY, SMALL_PAYLOAD},
	/* Batch/End are only valid inside a stream their Begin opened. */
	{WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH, handle_sync_batch, ST_PEERS_SYNC,
	 FRAME_MAX_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_END, handle_sync_end, ST_PEERS_SYNC, SMALL_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BATCH, handle_fw_sync_batch, ST_FW_SYNC,
	 FRAME_MAX_PAYLOAD},
	{WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_END, handle_fw_sync_end, ST_FW_SYNC, SMALL_PAYLOAD},
};

struct session *session_new(const struct agent_conf *conf, struct wg_iface *wg, struct fw_table *fw)
{
	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->conf = conf;
	s->wg = wg;
	s->fw = fw;
	s->state = ST_NEW;
	return s;
}

void session_free(struct session *s)
{
	if (s == NULL)
		return;
	wg_device_free(s->stream.desired);
	fw_state_free(s->fw_stream.desired);
	if (s->payload != NULL)
		sodium_memzero(s->payload, s->hdr.length);
	free(s->payload);
	if (s->backlog != NULL)
		sodium_memzero(s->backlog, s->backlog_len);
	free(s->backlog);
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

int session_send(struct session *s, uint16_t type, const ProtobufCMessage *msg)
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

int session_result(struct session *s, uint64_t request_id, Wiregui__ErrorCode code,
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

static Wiregui__ErrorCode verr_code(int r)
{
	switch (r) {
	case -EINVAL:
		return WIREGUI__ERROR_CODE__INVALID_FIELD;
	case -EPERM:
		return WIREGUI__ERROR_CODE__NOT_ALLOWED;
	case -E2BIG:
		return WIREGUI__ERROR_CODE__LIMIT;
	default:
		return WIREGUI__ERROR_CODE__INTERNAL;
	}
}

Wiregui__ErrorCode session_write_code(int r)
{
	switch (r) {
	case -ENOMEM:
		return WIREGUI__ERROR_CODE__INTERNAL;
	case -E2BIG:
		return WIREGUI__ERROR_CODE__LIMIT;
	default:
		return WIREGUI__ERROR_CODE__KERNEL;
	}
}

int session_verr(struct session *s, uint64_t request_id, int r, const struct verr *err)
{
	return session_result(s, request_id, verr_code(r), err->field,
			      r == -ENOMEM ? "out of memory" : err->message);
}

static int handle_hello(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__Hello *hello = (const Wiregui__Hello *)msg;
	const struct cidr_list *addrs = &s->conf->addresses;
	Wiregui__Cidr cidrs[AGENT_CONF_MAX_CIDRS];
	Wiregui__Cidr *cidr_ptrs[AGENT_CONF_MAX_CIDRS];
	struct wg_device *dev = NULL;
	struct verr err = {0};
	char why[256];

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
	ifs.public_key.data = (uint8_t *)wg_iface_public_key(s->wg);
	ifs.public_key.len = WG_KEY_LEN;
	ifs.listen_port = (uint32_t)s->conf->listen_port;
	ifs.mtu = (uint32_t)s->conf->mtu;
	for (size_t i = 0; i < addrs->n; i++) {
		wiregui__cidr__init(&cidrs[i]);
		cidrs[i].address.data = (uint8_t *)addrs->items[i].addr.bytes;
		cidrs[i].address.len = ip_family_len(addrs->items[i].addr.family);
		cidrs[i].prefix = addrs->items[i].prefix;
		cidr_ptrs[i] = &cidrs[i];
	}
	ifs.n_addresses = addrs->n;
	ifs.addresses = cidr_ptrs;
	if (wg_iface_dump(s->wg, &dev, why, sizeof(why)) == 0)
		ifs.peer_count = (uint32_t)dev->n_peers;
	else
		log_warn("hello: %s", why);
	wg_device_free(dev);

	Wiregui__HelloReply reply = WIREGUI__HELLO_REPLY__INIT;
	reply.request_id = request_id;
	reply.protocol_version = FRAME_VERSION;
	reply.agent_version = (char *)WIREGUI_VERSION;
	reply.backend = (Wiregui__Backend)wg_iface_backend(s->wg);
	reply.n_interfaces = 1;
	reply.interfaces = ifaces;
	reply.nft_table = s->conf->nft_table;
	reply.peers_generation = wg_iface_generation(s->wg);
	reply.max_frame = FRAME_MAX_PAYLOAD;
	reply.max_batch = FRAME_MAX_BATCH;
	reply.max_peers = (uint32_t)s->conf->max_peers;
	reply.firewall_generation = fw_table_generation(s->fw);
	reply.max_users = (uint32_t)s->conf->max_users;
	reply.max_rules = (uint32_t)s->conf->max_rules;
	s->state = ST_READY;
	return session_send(s, WIREGUI__MSG_TYPE__MSG_HELLO_REPLY, &reply.base);
}

static int handle_ping(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	(void)msg;
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, "");
}

/*
 * Listen port and MTU are the agent's config, not the frontend's to change:
 * a request restating them (or leaving them 0) re-applies the config.
 */
static int handle_interface_set(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__InterfaceSet *m = (const Wiregui__InterfaceSet *)msg;
	struct verr err = {0};
	char why[256];
	int r = validate_interface(m->name, s->conf, "name", &err);

	if (r < 0)
		return session_verr(s, request_id, r, &err);
	if (m->listen_port != 0 && m->listen_port != s->conf->listen_port)
		return session_result(s, request_id, WIREGUI__ERROR_CODE__NOT_ALLOWED,
				      "listen_port", "set by the agent's config");
	if (m->mtu != 0 && m->mtu != s->conf->mtu)
		return session_result(s, request_id, WIREGUI__ERROR_CODE__NOT_ALLOWED, "mtu",
				      "set by the agent's config");
	if ((r = wg_iface_ensure(s->wg, why, sizeof(why))) < 0)
		return session_result(s, request_id, session_write_code(r), NULL, why);
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, "");
}

static void stream_reset(struct session *s)
{
	wg_device_free(s->stream.desired);
	memset(&s->stream, 0, sizeof(s->stream));
	s->state = ST_READY;
}

int stream_error_set(struct session *s, struct stream_error *e, uint64_t request_id, int r)
{
	e->code = verr_code(r);
	if (r == -ENOMEM)
		snprintf(e->err.message, sizeof(e->err.message), "out of memory");
	return stream_error_answer(s, e, request_id);
}

int stream_error_answer(struct session *s, const struct stream_error *e, uint64_t request_id)
{
	return session_result(s, request_id, e->code, e->err.field, e->err.message);
}

/* The peers stream failed: what it built goes. */
static int stream_fail(struct session *s, uint64_t request_id, int r)
{
	struct peers_stream *st = &s->stream;
	wg_device_free(st->desired);
	st->desired = NULL;
	return stream_error_set(s, &st->fail, request_id, r);
}

static int handle_sync_begin(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__PeersSyncBegin *m = (const Wiregui__PeersSyncBegin *)msg;
	struct peers_stream *st = &s->stream;
	int r;

	stream_reset(s);
	s->state = ST_PEERS_SYNC;
	st->generation = m->generation;
	st->total = m->total;
	if ((r = validate_interface(m->interface, s->conf, "interface", &st->fail.err)) < 0)
		return stream_fail(s, request_id, r);
	if (m->generation == 0) {
		verr_set(&st->fail.err, "generation", "must not be 0");
		return stream_fail(s, request_id, -EINVAL);
	}
	if (m->total > s->conf->max_peers) {
		verr_set(&st->fail.err, "total", "%u peers, this agent takes at most %lu", m->total,
			 s->conf->max_peers);
		return stream_fail(s, request_id, -E2BIG);
	}
	st->desired = wg_device_new(s->conf->interface);
	if (st->desired == NULL)
		return stream_fail(s, request_id, -ENOMEM);
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, "");
}

static int handle_sync_batch(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__PeersSyncBatch *m = (const Wiregui__PeersSyncBatch *)msg;
	struct peers_stream *st = &s->stream;
	char field[32];

	st->batches++;
	if (st->fail.code != WIREGUI__ERROR_CODE__OK)
		return stream_error_answer(s, &st->fail, request_id);
	if (m->n_peers > FRAME_MAX_BATCH || st->desired->n_peers + m->n_peers > st->total) {
		verr_set(&st->fail.err, "peers",
			 "batch %zu brings %zu peers beyond total %u or %d a batch", st->batches,
			 st->desired->n_peers + m->n_peers, st->total, FRAME_MAX_BATCH);
		return stream_fail(s, request_id, -E2BIG);
	}
	for (size_t i = 0; i < m->n_peers; i++) {
		size_t index = st->desired->n_peers;
		int r = validate_peer(m->peers[i], s->conf, wg_iface_public_key(s->wg), "peers",
				      index, st->desired, &st->fail.err);
		if (r == 0 && (st->allowed_ips += m->peers[i]->n_allowed_ips) >
				      VALIDATE_ADDRS_PER_PEER * s->conf->max_peers) {
			snprintf(field, sizeof(field), "peers[%zu].allowed_ips", index);
			verr_set(&st->fail.err, field, "allowed IPs beyond %lu in all",
				 VALIDATE_ADDRS_PER_PEER * s->conf->max_peers);
			r = -E2BIG;
		}
		if (r < 0)
			return stream_fail(s, request_id, r);
	}
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, "");
}

static int handle_sync_end(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__PeersSyncEnd *m = (const Wiregui__PeersSyncEnd *)msg;
	struct peers_stream *st = &s->stream;
	struct wg_write_stats ws;
	char why[256];
	int r;

	if (st->fail.code != WIREGUI__ERROR_CODE__OK) {
		r = stream_error_answer(s, &st->fail, request_id);
		stream_reset(s);
		return r;
	}
	if (m->generation != st->generation) {
		verr_set(&st->fail.err, "generation", "%llu, Begin said %llu",
			 (unsigned long long)m->generation, (unsigned long long)st->generation);
		r = -EINVAL;
	} else if (st->desired->n_peers != st->total) {
		verr_set(&st->fail.err, "total",
			 "Begin announced %u peers, the batches carried %zu", st->total,
			 st->desired->n_peers);
		r = -EINVAL;
	} else {
		r = validate_peer_set(st->desired, &st->fail.err);
	}
	if (r < 0) {
		r = stream_fail(s, request_id, r);
		stream_reset(s);
		return r;
	}
	r = wg_iface_sync(s->wg, st->desired, st->generation, &ws, why, sizeof(why));
	stream_reset(s);
	if (r < 0)
		return session_result(s, request_id, session_write_code(r), NULL, why);
	snprintf(why, sizeof(why), "generation %llu: %zu added, %zu changed, %zu removed%s",
		 (unsigned long long)m->generation, ws.added, ws.changed, ws.removed,
		 ws.device ? ", interface keys or port rewritten" : "");
	if (ws.added || ws.changed || ws.removed || ws.device)
		log_info("peers sync %s", why);
	else
		log_debug("peers sync %s", why);
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, why);
}

static int patch_collect(struct session *s, const Wiregui__PeersPatch *m, struct wg_device *change,
			 struct verr *err)
{
	char field[32];
	int r = validate_interface(m->interface, s->conf, "interface", err);
	if (r < 0)
		return r;
	if (m->n_upsert + m->n_remove > FRAME_MAX_BATCH) {
		verr_set(err, "upsert", "%zu changes, at most %d a patch",
			 m->n_upsert + m->n_remove, FRAME_MAX_BATCH);
		return -E2BIG;
	}
	for (size_t i = 0; i < m->n_upsert && r == 0; i++)
		r = validate_peer(m->upsert[i], s->conf, wg_iface_public_key(s->wg), "upsert", i,
				  change, err);
	for (size_t i = 0; i < m->n_remove && r == 0; i++) {
		snprintf(field, sizeof(field), "remove[%zu]", i);
		r = validate_peer_removal(&m->remove[i], field, change, err);
	}
	/* A key twice (in either list) is ambiguous: refuse it. */
	return r < 0 ? r : validate_peer_set(change, err);
}

static int handle_patch(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__PeersPatch *m = (const Wiregui__PeersPatch *)msg;
	struct wg_device *change = wg_device_new(s->conf->interface);
	struct verr err = {0};
	char why[256];
	int r = change ? patch_collect(s, m, change, &err) : -ENOMEM;

	if (r < 0) {
		wg_device_free(change);
		return session_verr(s, request_id, r, &err);
	}
	if (!wg_device_is_empty(change))
		r = wg_iface_patch(s->wg, change, why, sizeof(why));
	wg_device_free(change);
	if (r < 0)
		return session_result(s, request_id, session_write_code(r), NULL, why);
	log_debug("peers patch: %zu upserted, %zu removed", m->n_upsert, m->n_remove);
	return session_result(s, request_id, WIREGUI__ERROR_CODE__OK, NULL, "");
}

static void stats_fill(const struct wg_peer *p, Wiregui__PeerStats *ps, Wiregui__Endpoint *ep)
{
	wiregui__peer_stats__init(ps);
	ps->public_key.data = (uint8_t *)p->public_key;
	ps->public_key.len = WG_KEY_LEN;
	ps->rx_bytes = p->rx_bytes;
	ps->tx_bytes = p->tx_bytes;
	ps->latest_handshake = p->last_handshake;
	if (p->endpoint.family != 0) {
		wiregui__endpoint__init(ep);
		ep->address.data = (uint8_t *)p->endpoint.bytes;
		ep->address.len = ip_family_len(p->endpoint.family);
		ep->port = p->endpoint_port;
		ps->endpoint = ep;
	}
}

/* One StatsReply per STATS_PER_REPLY peers; the last says more = false. */
static int stats_send(struct session *s, uint64_t request_id, const struct wg_device *dev)
{
	static Wiregui__PeerStats ps[STATS_PER_REPLY];
	static Wiregui__Endpoint eps[STATS_PER_REPLY];
	static Wiregui__PeerStats *ptrs[STATS_PER_REPLY];
	size_t i = 0;
	int r;

	do {
		Wiregui__StatsReply reply = WIREGUI__STATS_REPLY__INIT;
		reply.request_id = request_id;
		reply.peers = ptrs;
		for (; reply.n_peers < STATS_PER_REPLY && i < dev->n_peers; i++) {
			stats_fill(&dev->peers[i], &ps[reply.n_peers], &eps[reply.n_peers]);
			ptrs[reply.n_peers] = &ps[reply.n_peers];
			reply.n_peers++;
		}
		reply.more = i < dev->n_peers;
		r = session_send(s, WIREGUI__MSG_TYPE__MSG_STATS_REPLY, &reply.base);
	} while (r == 0 && i < dev->n_peers);
	return r;
}

static int handle_stats(struct session *s, const ProtobufCMessage *msg, uint64_t request_id)
{
	const Wiregui__StatsRequest *m = (const Wiregui__StatsRequest *)msg;
	struct wg_device *dev = NULL;
	struct verr err = {0};
	char why[256];
	int r = validate_interface(m->interface, s->conf, "interface", &err);

	if (r < 0)
		return session_verr(s, request_id, r, &err);
	if ((r = wg_iface_dump(s->wg, &dev, why, sizeof(why))) < 0)
		return session_result(s, request_id, session_write_code(r), NULL, why);
	r = stats_send(s, request_id, dev);
	wg_device_free(dev);
	return r;
}

static void peers_wipe_psks(Wiregui__Peer **peers, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (peers[i]->preshared_key.data != NULL)
			sodium_memzero(peers[i]->preshared_key.data, peers[i]->preshared_key.len);
}

/* The decoded copies of preshared keys go before the message's memory does. */
static void message_wipe_psks(ProtobufCMessage *msg)
{
	if (msg->descriptor == &wiregui__peers_sync_batch__descriptor) {
		Wiregui__PeersSyncBatch *b = (Wiregui__PeersSyncBatch *)msg;
		peers_wipe_psks(b->peers, b->n_peers);
	} else if (msg->descriptor == &wiregui__peers_patch__descriptor) {
		Wiregui__PeersPatch *p = (Wiregui__PeersPatch *)msg;
		peers_wipe_psks(p->upsert, p->n_upsert);
	}
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
	message_wipe_psks(msg);
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
	/* Requests carry preshared keys. */
	sodium_memzero(s->payload, s->hdr.length);
	free(s->payload);
	s->payload = NULL;
	s->hdr_have = 0;
	return r;
}

/*
 * Handle the frames in data until it is used up, or until the replies
 * queued reach SESSION_OUTPUT_HIGH_WATER (checked between frames, so a
 * burst of small requests cannot make the agent queue without bound).
 */
static int session_consume(struct session *s, const uint8_t *data, size_t len, size_t *ret_used)
{
	size_t left = len;
	while (left > 0 && !s->closing) {
		int r = 0;
		if (s->hdr_have == 0 && s->out_len >= SESSION_OUTPUT_HIGH_WATER)
			break;
		if (s->hdr_have < FRAME_HEADER_LEN) {
			if (s->hdr_have == 0)
				s->frames_begun++;
			size_t n = FRAME_HEADER_LEN - s->hdr_have;
			n = n < left ? n : left;
			memcpy(s->hdr_buf + s->hdr_have, data, n);
			s->hdr_have += n;
			data += n;
			left -= n;
			if (s->hdr_have == FRAME_HEADER_LEN)
				r = session_header_done(s);
		} else {
			size_t n = s->hdr.length - s->payload_have;
			n = n < left ? n : left;
			memcpy(s->payload + s->payload_have, data, n);
			s->payload_have += n;
			data += n;
			left -= n;
		}
		if (r == 0 && s->hdr_have == FRAME_HEADER_LEN && s->payload != NULL &&
		    s->payload_have == s->hdr.length)
			r = session_frame_done(s);
		if (r < 0) {
			s->closing = true;
			return r;
		}
	}
	*ret_used = len - left;
	return s->closing ? -EPROTO : 0;
}

/* Keep data[used..len) for session_resume(). */
static int backlog_keep(struct session *s, const uint8_t *data, size_t len, size_t used)
{
	size_t rest = len - used;
	if (rest == 0)
		return 0;
	uint8_t *p = malloc(rest);
	if (p == NULL) {
		s->closing = true;
		return -ENOMEM;
	}
	memcpy(p, data + used, rest);
	s->backlog = p;
	s->backlog_len = rest;
	return 0;
}

int session_input(struct session *s, const uint8_t *data, size_t len)
{
	size_t used = 0;
	if (s->backlog != NULL) /* the caller should have waited: refuse quietly */
		return -EAGAIN;
	int r = session_consume(s, data, len, &used);
	return r < 0 ? r : backlog_keep(s, data, len, used);
}

bool session_backlogged(const struct session *s)
{
	return s->backlog != NULL;
}

int session_resume(struct session *s)
{
	uint8_t *data = s->backlog;
	size_t len = s->backlog_len, used = 0;
	if (data == NULL)
		return 0;
	s->backlog = NULL;
	s->backlog_len = 0;
	int r = session_consume(s, data, len, &used);
	if (r == 0)
		r = backlog_keep(s, data, len, used);
	sodium_memzero(data, len);
	free(data);
	return r;
}
