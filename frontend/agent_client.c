/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "agent_client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "backoff.h"
#include "log.h"

#define AGENT_HELLO_TIMEOUT_SEC 5
/* With nothing to ask for this long, ask a Ping: the agent drops silent clients. */
#define AGENT_PING_SEC 10
/* A request unanswered (no byte from the agent) for this long: the agent is hung. */
#define AGENT_REPLY_TIMEOUT_SEC 20
#define AGENT_ERROR_LEN 256

enum agent_state {
	AGENT_ST_WAIT,	/* no connection; retry timer armed */
	AGENT_ST_HELLO, /* connected, Hello sent; hello timeout armed */
	AGENT_ST_UP,	/* HelloReply received; ping timer armed */
};

struct agent_pending {
	struct agent_pending *next;
	uint64_t request_id;
	uint16_t type;
	agent_reply_fn cb;
	void *arg;
};

struct agent_client {
	struct event_base *base;
	struct sockaddr_un addr;
	socklen_t addrlen;
	char *client_name;
	struct bufferevent *bev;
	struct event *timer;
	enum agent_state state;
	struct backoff backoff;
	uint64_t last_request_id;
	/* Sent, not fully answered, oldest first: the agent answers in order. */
	struct agent_pending *pending, **pending_tail;
	struct agent_info info;
	agent_state_fn state_cb;
	void *state_arg;
	char error[AGENT_ERROR_LEN];
};

static bool reply_is_last(const ProtobufCMessage *reply)
{
	(void)reply;
	return true;
}

static bool stats_reply_is_last(const ProtobufCMessage *reply)
{
	return !((const Wiregui__StatsReply *)reply)->more;
}

/* One row per message the agent may send: what it can answer, when it ends a request. */
static const struct agent_reply_row {
	uint16_t type;
	uint16_t request_type; /* the only request it answers; 0: any */
	bool (*is_last)(const ProtobufCMessage *reply);
} agent_replies[] = {
	{WIREGUI__MSG_TYPE__MSG_HELLO_REPLY, WIREGUI__MSG_TYPE__MSG_HELLO, reply_is_last},
	{WIREGUI__MSG_TYPE__MSG_RESULT, 0, reply_is_last},
	{WIREGUI__MSG_TYPE__MSG_STATS_REPLY, WIREGUI__MSG_TYPE__MSG_STATS_REQUEST,
	 stats_reply_is_last},
};

const char *agent_backend_name(Wiregui__Backend backend)
{
	switch (backend) {
	case WIREGUI__BACKEND__BACKEND_NONE:
		return "none";
	case WIREGUI__BACKEND__BACKEND_KERNEL:
		return "kernel";
	case WIREGUI__BACKEND__BACKEND_USERSPACE:
		return "userspace";
	default:
		return "unknown";
	}
}

const char *agent_error_code_name(Wiregui__ErrorCode code)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&wiregui__error_code__descriptor, (int)code);
	return v != NULL ? v->name : "UNKNOWN";
}

/* Every message of the protocol carries request_id (uint64) as field 1. */
static const ProtobufCFieldDescriptor *request_id_field(const ProtobufCMessageDescriptor *desc)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(desc, "request_id");
	return f != NULL && f->type == PROTOBUF_C_TYPE_UINT64 ? f : NULL;
}

static uint64_t request_id_get(const ProtobufCMessage *msg)
{
	const ProtobufCFieldDescriptor *f = request_id_field(msg->descriptor);
	uint64_t id = 0;
	if (f != NULL)
		memcpy(&id, (const char *)msg + f->offset, sizeof(id));
	return id;
}

static void agent_info_clear(struct agent_info *info)
{
	free(info->agent_version);
	for (size_t i = 0; i < info->n_interfaces; i++)
		free(info->interfaces[i]);
	free(info->interfaces);
	free(info->nft_table);
	memset(info, 0, sizeof(*info));
}

static int agent_info_copy(struct agent_info *info, const Wiregui__HelloReply *hr)
{
	agent_info_clear(info);
	info->backend = hr->backend;
	info->peers_generation = hr->peers_generation;
	info->firewall_generation = hr->firewall_generation;
	info->max_frame = hr->max_frame;
	info->max_batch = hr->max_batch;
	info->max_peers = hr->max_peers;
	info->max_users = hr->max_users;
	info->max_rules = hr->max_rules;
	info->agent_version = strdup(hr->agent_version ? hr->agent_version : "");
	info->nft_table = strdup(hr->nft_table ? hr->nft_table : "");
	info->interfaces = calloc(hr->n_interfaces + 1, sizeof(char *));
	if (info->agent_version == NULL || info->nft_table == NULL || info->interfaces == NULL)
		goto err_clear;
	for (size_t i = 0; i < hr->n_interfaces; i++) {
		const char *name = hr->interfaces[i]->name;
		info->interfaces[i] = strdup(name ? name : "");
		if (info->interfaces[i] == NULL)
			goto err_clear;
		info->n_interfaces++;
	}
	return 0;

err_clear:
	agent_info_clear(info);
	return -ENOMEM;
}

/* Answer every pending request with "connection gone" (the client is already down). */
static void agent_pending_flush(struct agent_client *ac)
{
	struct agent_pending *p = ac->pending;

	ac->pending = NULL;
	ac->pending_tail = &ac->pending;
	while (p != NULL) {
		struct agent_pending *next = p->next;
		p->cb(ac, 0, NULL, p->arg);
		free(p);
		p = next;
	}
}

static void agent_close(struct agent_client *ac)
{
	if (ac->bev != NULL)
		bufferevent_free(ac->bev);
	ac->bev = NULL;
	agent_info_clear(&ac->info);
	agent_pending_flush(ac);
}

static void agent_fail(struct agent_client *ac, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void agent_fail(struct agent_client *ac, const char *fmt, ...)
{
	char msg[AGENT_ERROR_LEN];
	bool was_up = ac->state == AGENT_ST_UP;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (was_up)
		log_warn("agent: connection lost: %s", msg);
	else if (strcmp(msg, ac->error) != 0)
		log_warn("agent: cannot connect: %s", msg);
	else
		log_debug("agent: cannot connect: %s", msg);
	snprintf(ac->error, sizeof(ac->error), "%s", msg);

	/* Down before the pending callbacks run, so they cannot send. */
	ac->state = AGENT_ST_WAIT;
	agent_close(ac);
	struct timeval tv = backoff_next(&ac->backoff);
	evtimer_add(ac->timer, &tv);
	if (was_up && ac->state_cb != NULL)
		ac->state_cb(ac, false, ac->state_arg);
}

static int agent_send(struct agent_client *ac, uint16_t type, ProtobufCMessage *msg,
		      agent_reply_fn cb, void *arg)
{
	const ProtobufCFieldDescriptor *f = request_id_field(msg->descriptor);
	uint8_t *buf;
	size_t len;
	int r;

	if (f == NULL || frame_descriptor(type) != msg->descriptor)
		return -EINVAL;
	struct agent_pending *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	/* 0 is what the agent uses for answers that concern no request. */
	if (++ac->last_request_id == 0)
		ac->last_request_id = 1;
	p->request_id = ac->last_request_id;
	p->type = type;
	p->cb = cb;
	p->arg = arg;
	memcpy((char *)msg + f->offset, &p->request_id, sizeof(p->request_id));

	r = frame_encode(type, msg, &buf, &len);
	if (r < 0)
		goto err_free_pending;
	r = bufferevent_write(ac->bev, buf, len) < 0 ? -ENOMEM : 0;
	free(buf);
	if (r < 0)
		goto err_free_pending;
	if (ac->pending == NULL) {
		/* Libevent restarts it on every byte read: it fires only on silence. */
		struct timeval tv = {.tv_sec = AGENT_REPLY_TIMEOUT_SEC};
		bufferevent_set_timeouts(ac->bev, &tv, NULL);
	}
	*ac->pending_tail = p;
	ac->pending_tail = &p->next;
	return 0;

err_free_pending:
	free(p);
	return r;
}

int agent_client_request(struct agent_client *ac, uint16_t type, ProtobufCMessage *msg,
			 agent_reply_fn cb, void *arg)
{
	if (ac->state != AGENT_ST_UP)
		return -ENOTCONN;
	return agent_send(ac, type, msg, cb, arg);
}

static void agent_ping_schedule(struct agent_client *ac)
{
	struct timeval tv = {.tv_sec = AGENT_PING_SEC};
	evtimer_add(ac->timer, &tv);
}

/* A non-OK Result is logged with the others; nothing else to do. */
static void agent_ping_reply(struct agent_client *ac, uint16_t type, const ProtobufCMessage *reply,
			     void *arg)
{
	(void)ac;
	(void)type;
	(void)reply;
	(void)arg;
}

static void agent_ping(struct agent_client *ac)
{
	if (ac->pending == NULL) {
		Wiregui__Ping ping = WIREGUI__PING__INIT;
		int r = agent_send(ac, WIREGUI__MSG_TYPE__MSG_PING, &ping.base, agent_ping_reply,
				   NULL);
		if (r < 0) {
			agent_fail(ac, "cannot send Ping: %s", strerror(-r));
			return;
		}
	}
	agent_ping_schedule(ac);
}

static void agent_hello_reply(struct agent_client *ac, uint16_t type, const ProtobufCMessage *reply,
			      void *arg)
{
	(void)arg;
	if (reply == NULL)
		return;
	if (type == WIREGUI__MSG_TYPE__MSG_RESULT) {
		const Wiregui__Result *res = (const Wiregui__Result *)reply;
		agent_fail(ac, "Hello refused: %s: %s", agent_error_code_name(res->code),
			   res->message ? res->message : "");
		return;
	}
	const Wiregui__HelloReply *hr = (const Wiregui__HelloReply *)reply;
	if (hr->protocol_version != FRAME_VERSION) {
		agent_fail(ac, "agent speaks protocol version %u, we speak %u",
			   hr->protocol_version, FRAME_VERSION);
		return;
	}
	if (agent_info_copy(&ac->info, hr) < 0) {
		agent_fail(ac, "out of memory");
		return;
	}
	ac->state = AGENT_ST_UP;
	ac->error[0] = '\0';
	backoff_reset(&ac->backoff);
	agent_ping_schedule(ac);
	log_info("agent: connected (agent %s, backend %s, %zu interface(s))",
		 ac->info.agent_version, agent_backend_name(ac->info.backend),
		 ac->info.n_interfaces);
	if (ac->state_cb != NULL)
		ac->state_cb(ac, true, ac->state_arg);
}

static const struct agent_reply_row *agent_reply_row(uint16_t type)
{
	for (size_t i = 0; i < sizeof(agent_replies) / sizeof(agent_replies[0]); i++)
		if (agent_replies[i].type == type)
			return &agent_replies[i];
	return NULL;
}

static void agent_log_result(const struct agent_pending *p, const Wiregui__Result *res)
{
	const char *req = frame_type_name(p->type);

	if (res->code == WIREGUI__ERROR_CODE__OK) {
		log_debug("agent: %s: OK", req);
		return;
	}
	log_warn("agent: %s: %s%s%s: %s", req, agent_error_code_name(res->code),
		 res->field && res->field[0] ? " in " : "", res->field ? res->field : "",
		 res->message ? res->message : "");
}

static void agent_handle_reply(struct agent_client *ac, uint16_t type, const ProtobufCMessage *msg)
{
	const struct agent_reply_row *row = agent_reply_row(type);
	struct agent_pending *p = ac->pending;
	uint64_t id = request_id_get(msg);

	if (row == NULL) {
		agent_fail(ac, "agent sent %s, which is not a reply", frame_type_name(type));
		return;
	}
	if (type == WIREGUI__MSG_TYPE__MSG_RESULT && id == 0) {
		/* About the connection itself (BUSY, NOT_ALLOWED, BAD_FRAME): it ends. */
		const Wiregui__Result *res = (const Wiregui__Result *)msg;
		agent_fail(ac, "agent refused the connection: %s: %s",
			   agent_error_code_name(res->code), res->message ? res->message : "");
		return;
	}
	if (p == NULL) {
		agent_fail(ac, "agent sent %s for request %" PRIu64 ", none is pending",
			   frame_type_name(type), id);
		return;
	}
	if (p->request_id != id) {
		agent_fail(ac, "agent sent %s for request %" PRIu64 ", expected %" PRIu64,
			   frame_type_name(type), id, p->request_id);
		return;
	}
	if (row->request_type != 0 && row->request_type != p->type) {
		agent_fail(ac, "agent answered %s with %s", frame_type_name(p->type),
			   frame_type_name(type));
		return;
	}
	if (type == WIREGUI__MSG_TYPE__MSG_RESULT)
		agent_log_result(p, (const Wiregui__Result *)msg);
	if (!row->is_last(msg)) {
		p->cb(ac, type, msg, p->arg);
		return;
	}
	ac->pending = p->next;
	if (ac->pending == NULL) {
		ac->pending_tail = &ac->pending;
		bufferevent_set_timeouts(ac->bev, NULL, NULL);
	}
	p->cb(ac, type, msg, p->arg);
	free(p);
}

/* 1: a frame was handled; 0: more bytes needed; -1: the connection was closed. */
static int agent_read_frame(struct agent_client *ac, struct evbuffer *in)
{
	uint8_t hdr_buf[FRAME_HEADER_LEN];
	struct frame_header hdr;
	size_t avail = evbuffer_get_length(in);

	if (avail < FRAME_HEADER_LEN)
		return 0;
	evbuffer_copyout(in, hdr_buf, sizeof(hdr_buf));
	Wiregui__ErrorCode code = frame_header_decode(hdr_buf, &hdr);
	if (code != WIREGUI__ERROR_CODE__OK) {
		agent_fail(ac, "bad frame from the agent: %s (length %" PRIu32 ", version %u)",
			   agent_error_code_name(code), hdr.length, hdr.version);
		return -1;
	}
	size_t total = FRAME_HEADER_LEN + (size_t)hdr.length;
	if (avail < total)
		return 0;
	const uint8_t *frame = evbuffer_pullup(in, (ev_ssize_t)total);
	if (frame == NULL) {
		agent_fail(ac, "out of memory");
		return -1;
	}
	ProtobufCMessage *msg = NULL;
	code = frame_decode(hdr.type, frame + FRAME_HEADER_LEN, hdr.length, &msg);
	evbuffer_drain(in, total);
	if (code != WIREGUI__ERROR_CODE__OK) {
		agent_fail(ac, "bad %s from the agent: %s", frame_type_name(hdr.type),
			   agent_error_code_name(code));
		return -1;
	}
	agent_handle_reply(ac, hdr.type, msg);
	protobuf_c_message_free_unpacked(msg, NULL);
	return 1;
}

static void agent_read_cb(struct bufferevent *bev, void *arg)
{
	struct agent_client *ac = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* A handler may have closed the connection: stop touching bev then. */
	while (ac->bev == bev && agent_read_frame(ac, in) > 0)
		;
}

/*
 * The agent explains a refusal (BUSY, NOT_ALLOWED) in a Result and closes;
 * our Hello may then hit EPIPE before that Result was read. Read what the
 * socket still holds so the reason, not "Broken pipe", is reported.
 * Returns true if a frame closed the connection.
 */
static bool agent_read_last_words(struct agent_client *ac, struct bufferevent *bev)
{
	/* The bufferevent's input is frozen at its end: collect into our own buffer. */
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL)
		return false;
	evbuffer_add_buffer(buf, bufferevent_get_input(bev));
	size_t have = evbuffer_get_length(buf);
	size_t room = FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD;
	if (have < room)
		(void)evbuffer_read(buf, bufferevent_getfd(bev), (int)(room - have));
	while (ac->bev == bev && agent_read_frame(ac, buf) > 0)
		;
	evbuffer_free(buf);
	return ac->bev != bev;
}

static void agent_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct agent_client *ac = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (events & BEV_EVENT_TIMEOUT) {
		agent_fail(ac, "no answer from the agent within %d s", AGENT_REPLY_TIMEOUT_SEC);
		return;
	}
	if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (agent_read_last_words(ac, bev))
		return;
	if (events & BEV_EVENT_EOF)
		agent_fail(ac, "the agent closed the connection");
	else
		agent_fail(ac, "%s", evutil_socket_error_to_string(err));
}

static int agent_bev_setup(struct agent_client *ac, int fd)
{
	ac->bev = bufferevent_socket_new(ac->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (ac->bev == NULL) {
		close(fd);
		return -ENOMEM;
	}
	bufferevent_setcb(ac->bev, agent_read_cb, NULL, agent_event_cb, ac);
	/* Never buffer more than one frame's worth from the agent. */
	bufferevent_setwatermark(ac->bev, EV_READ, 0, FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD);
	if (bufferevent_enable(ac->bev, EV_READ) < 0)
		return -EIO;
	return 0;
}

static void agent_connect(struct agent_client *ac)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		agent_fail(ac, "socket: %s", strerror(errno));
		return;
	}
	/* A UNIX stream connect completes or fails at once (EAGAIN: backlog full). */
	if (connect(fd, (const struct sockaddr *)&ac->addr, ac->addrlen) < 0) {
		int e = errno;
		close(fd);
		agent_fail(ac, "%s: %s", ac->addr.sun_path, strerror(e));
		return;
	}
	int r = agent_bev_setup(ac, fd);
	if (r < 0) {
		agent_fail(ac, "cannot set up the connection: %s", strerror(-r));
		return;
	}
	ac->state = AGENT_ST_HELLO;
	struct timeval tv = {.tv_sec = AGENT_HELLO_TIMEOUT_SEC};
	evtimer_add(ac->timer, &tv);

	Wiregui__Hello hello = WIREGUI__HELLO__INIT;
	hello.protocol_version = FRAME_VERSION;
	hello.client = ac->client_name;
	r = agent_send(ac, WIREGUI__MSG_TYPE__MSG_HELLO, &hello.base, agent_hello_reply, NULL);
	if (r < 0)
		agent_fail(ac, "cannot send Hello: %s", strerror(-r));
}

static void agent_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_client *ac = arg;

	(void)fd;
	(void)what;
	switch (ac->state) {
	case AGENT_ST_WAIT:
		agent_connect(ac);
		break;
	case AGENT_ST_HELLO:
		agent_fail(ac, "no answer to Hello within %d s", AGENT_HELLO_TIMEOUT_SEC);
		break;
	case AGENT_ST_UP:
		agent_ping(ac);
		break;
	}
}

int agent_client_new(struct event_base *base, const char *socket_path, const char *client_name,
		     struct agent_client **ret_ac, char *err, size_t errlen)
{
	struct agent_client *ac;

	if (socket_path[0] != '/' || strlen(socket_path) >= sizeof(ac->addr.sun_path)) {
		snprintf(err, errlen,
			 "agent.socket: must be an absolute path shorter than %zu bytes",
			 sizeof(ac->addr.sun_path));
		return -EINVAL;
	}
	ac = calloc(1, sizeof(*ac));
	if (ac == NULL)
		return -ENOMEM;
	ac->base = base;
	ac->addr.sun_family = AF_UNIX;
	strcpy(ac->addr.sun_path, socket_path);
	ac->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(socket_path) + 1);
	ac->state = AGENT_ST_WAIT;
	ac->pending_tail = &ac->pending;
	ac->client_name = strdup(client_name);
	ac->timer = evtimer_new(base, agent_timer_cb, ac);
	if (ac->client_name == NULL || ac->timer == NULL) {
		snprintf(err, errlen, "out of memory");
		agent_client_free(ac);
		return -ENOMEM;
	}
	snprintf(ac->error, sizeof(ac->error), "not connected yet");
	struct timeval now = {0};
	evtimer_add(ac->timer, &now);
	*ret_ac = ac;
	return 0;
}

void agent_client_free(struct agent_client *ac)
{
	if (ac == NULL)
		return;
	ac->state = AGENT_ST_WAIT;
	agent_close(ac);
	if (ac->timer != NULL)
		event_free(ac->timer);
	free(ac->client_name);
	free(ac);
}

void agent_client_set_state_cb(struct agent_client *ac, agent_state_fn fn, void *arg)
{
	ac->state_cb = fn;
	ac->state_arg = arg;
}

bool agent_client_is_up(const struct agent_client *ac)
{
	return ac->state == AGENT_ST_UP;
}

const char *agent_client_error(const struct agent_client *ac)
{
	return agent_client_is_up(ac) ? "" : ac->error;
}

const struct agent_info *agent_client_info(const struct agent_client *ac)
{
	return agent_client_is_up(ac) ? &ac->info : NULL;
}
