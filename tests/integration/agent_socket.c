/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The real wiregui-agent binary over its real UNIX socket: permissions,
 * SO_PEERCRED, one client at a time, and every kind of bad input answered
 * with a typed error and a closed connection while the agent stays up.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "frame.h"

static char tmpdir[] = "/tmp/wiregui-agent-test.XXXXXX";
/* Unique: wireguard-go's UAPI socket directory is shared by all namespaces. */
static char ifname[IFNAMSIZ];
static char agent_bin[512];
static char sock_path[256];
static pid_t agent_pid;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Start the agent with this config; returns its pid once the socket answers. */
static pid_t agent_start(const char *name, const char *socket, const char *user, const char *log,
			 const char *extra)
{
	char conf_path[512], text[1024];
	snprintf(conf_path, sizeof(conf_path), "%s/%s.conf", tmpdir, name);
	snprintf(text, sizeof(text),
		 "[agent]\nsocket = %s\nfrontend_user = %s\nlog_level = debug\n%s"
		 "[wireguard]\ninterface = %s\nprivate_key_file = %s/wg.key\n"
		 "[firewall]\ntable = wiregui_test\n",
		 socket, user, extra, ifname, tmpdir);
	write_file(conf_path, text);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 2);
		execl(agent_bin, agent_bin, "-c", conf_path, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		int fd = try_connect(socket);
		if (fd >= 0) {
			close(fd);
			return pid;
		}
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	kill(pid, SIGKILL);
	ck_abort_msg("agent did not start; see %s", log);
	return -1;
}

static void agent_stop(pid_t pid)
{
	int status;
	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

static void setup(void)
{
	const char *build = getenv("WIREGUI_BUILD_DIR");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(agent_bin, sizeof(agent_bin), "%s/agent/wiregui-agent", build ? build : ".");
	snprintf(sock_path, sizeof(sock_path), "%s/run/agent.sock", tmpdir);
	char user[32], log[512];
	snprintf(user, sizeof(user), "%u", (unsigned)getuid());
	snprintf(log, sizeof(log), "%s/agent.log", tmpdir);
	agent_pid = agent_start("agent", sock_path, user, log, "");
}

static void teardown(void)
{
	agent_stop(agent_pid);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static void send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		ck_assert_int_gt(n, 0);
		p += n;
		len -= (size_t)n;
	}
}

static void send_msg(int fd, uint16_t type, const ProtobufCMessage *msg)
{
	uint8_t *buf;
	size_t len;
	ck_assert_int_eq(frame_encode(type, msg, &buf, &len), 0);
	send_all(fd, buf, len);
	free(buf);
}

static void send_hello(int fd, uint64_t id)
{
	Wiregui__Hello hello = WIREGUI__HELLO__INIT;
	hello.request_id = id;
	hello.protocol_version = FRAME_VERSION;
	hello.client = (char *)"agent_socket test";
	send_msg(fd, WIREGUI__MSG_TYPE__MSG_HELLO, &hello.base);
}

/* Read exactly len bytes within 10 s; returns bytes read (short on EOF). */
static size_t recv_exact(int fd, uint8_t *buf, size_t len)
{
	size_t have = 0;
	while (have < len) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ck_assert_msg(poll(&pfd, 1, 10000) == 1, "no answer from the agent in 10 s");
		ssize_t n = recv(fd, buf + have, len - have, 0);
		if (n == 0)
			break;
		ck_assert_msg(n > 0, "recv: %s", strerror(errno));
		have += (size_t)n;
	}
	return have;
}

static ProtobufCMessage *recv_msg(int fd, uint16_t *ret_type)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	ck_assert_uint_eq(recv_exact(fd, hdr, sizeof(hdr)), sizeof(hdr));
	struct frame_header h;
	ck_assert_int_eq(frame_header_decode(hdr, &h), WIREGUI__ERROR_CODE__OK);
	uint8_t *payload = malloc(h.length + 1);
	ck_assert_uint_eq(recv_exact(fd, payload, h.length), h.length);
	ProtobufCMessage *msg;
	ck_assert_int_eq(frame_decode(h.type, payload, h.length, &msg), WIREGUI__ERROR_CODE__OK);
	free(payload);
	*ret_type = h.type;
	return msg;
}

static void expect_result(int fd, Wiregui__ErrorCode code, uint64_t id)
{
	uint16_t type;
	ProtobufCMessage *msg = recv_msg(fd, &type);
	ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_RESULT);
	Wiregui__Result *res = (Wiregui__Result *)msg;
	ck_assert_msg(res->code == code, "code %d (%s), want %d", res->code, res->message, code);
	ck_assert_uint_eq(res->request_id, id);
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void expect_hello_reply(int fd, uint64_t id)
{
	uint16_t type;
	ProtobufCMessage *msg = recv_msg(fd, &type);
	ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_HELLO_REPLY);
	Wiregui__HelloReply *r = (Wiregui__HelloReply *)msg;
	ck_assert_uint_eq(r->request_id, id);
	ck_assert_str_eq(r->interfaces[0]->name, ifname);
	ck_assert_str_eq(r->nft_table, "wiregui_test");
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void expect_eof(int fd)
{
	uint8_t b;
	ck_assert_uint_eq(recv_exact(fd, &b, 1), 0);
}

/* The agent is alive and serves a fresh connection from the start. */
static void expect_agent_serving(void)
{
	ck_assert_int_eq(kill(agent_pid, 0), 0);
	int fd = try_connect(sock_path);
	ck_assert_int_ge(fd, 0);
	send_hello(fd, 1000);
	expect_hello_reply(fd, 1000);
	close(fd);
}

START_TEST(test_permissions)
{
	struct stat st;
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/run", tmpdir);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0750);
	ck_assert_int_eq(lstat(sock_path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	ck_assert_uint_eq(st.st_uid, geteuid());
}
END_TEST

static void send_stats_request(int fd, uint64_t id, const char *iface)
{
	Wiregui__StatsRequest req = WIREGUI__STATS_REQUEST__INIT;
	req.request_id = id;
	req.interface = (char *)iface;
	send_msg(fd, WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, &req.base);
}

START_TEST(test_hello)
{
	int fd = try_connect(sock_path);
	ck_assert_int_ge(fd, 0);
	send_hello(fd, 5);
	expect_hello_reply(fd, 5);
	send_stats_request(fd, 6, ifname);
	uint16_t type;
	Wiregui__StatsReply *r = (Wiregui__StatsReply *)recv_msg(fd, &type);
	ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_STATS_REPLY);
	ck_assert_uint_eq(r->request_id, 6);
	ck_assert_uint_eq(r->n_peers, 0);
	ck_assert(!r->more);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* Another interface than the agent's: refused, the connection stays. */
	send_stats_request(fd, 7, "eth0");
	expect_result(fd, WIREGUI__ERROR_CODE__NOT_ALLOWED, 7);
	send_hello(fd, 8);
	expect_result(fd, WIREGUI__ERROR_CODE__OUT_OF_STATE, 0);
	close(fd);
}
END_TEST

START_TEST(test_pipelined)
{
	int fd = try_connect(sock_path);
	send_hello(fd, 1);
	Wiregui__StatsRequest req = WIREGUI__STATS_REQUEST__INIT;
	for (uint64_t i = 2; i <= 200; i++) {
		req.request_id = i;
		send_msg(fd, WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, &req.base);
	}
	expect_hello_reply(fd, 1);
	for (uint64_t i = 2; i <= 200; i++)
		expect_result(fd, WIREGUI__ERROR_CODE__NOT_ALLOWED, i);
	close(fd);
}
END_TEST

static const struct {
	const char *name;
	bool hello_first;
	uint8_t bytes[32];
	size_t len;
	Wiregui__ErrorCode code;
} garbage[] = {
	{"http request", false, "GET / HTTP/1.1\r\n\r\n", 18, WIREGUI__ERROR_CODE__VERSION},
	{"oversized length, no payload",
	 false,
	 {0x7f, 0xff, 0xff, 0xff, 0, 1, 1, 0},
	 8,
	 WIREGUI__ERROR_CODE__BAD_FRAME},
	{"unknown type",
	 false,
	 {0, 0, 0, 0, 0x12, 0x34, 1, 0},
	 8,
	 WIREGUI__ERROR_CODE__UNKNOWN_TYPE},
	{"unknown protobuf field",
	 false,
	 {0, 0, 0, 5, 0, 1, 1, 0, 0x08, 0x01, 0x98, 0x06, 0x01},
	 13,
	 WIREGUI__ERROR_CODE__UNKNOWN_FIELD},
	{"invalid protobuf",
	 false,
	 {0, 0, 0, 2, 0, 1, 1, 0, 0x08, 0xff},
	 10,
	 WIREGUI__ERROR_CODE__DECODE},
	{"request before hello",
	 false,
	 {0, 0, 0, 2, 0, 8, 1, 0, 0x08, 0x01},
	 10,
	 WIREGUI__ERROR_CODE__OUT_OF_STATE},
	{"batch without begin",
	 true,
	 {0, 0, 0, 2, 0, 6, 1, 0, 0x08, 0x01},
	 10,
	 WIREGUI__ERROR_CODE__OUT_OF_STATE},
	{"reply type as request",
	 true,
	 {0, 0, 0, 0, 0, 2, 1, 0},
	 8,
	 WIREGUI__ERROR_CODE__UNKNOWN_TYPE},
};

START_TEST(test_garbage)
{
	int fd = try_connect(sock_path);
	ck_assert_int_ge(fd, 0);
	if (garbage[_i].hello_first) {
		send_hello(fd, 1);
		expect_hello_reply(fd, 1);
	}
	send_all(fd, garbage[_i].bytes, garbage[_i].len);
	uint16_t type;
	ProtobufCMessage *msg = recv_msg(fd, &type);
	ck_assert_uint_eq(type, WIREGUI__MSG_TYPE__MSG_RESULT);
	ck_assert_msg(((Wiregui__Result *)msg)->code == garbage[_i].code, "%s: code %d",
		      garbage[_i].name, ((Wiregui__Result *)msg)->code);
	protobuf_c_message_free_unpacked(msg, NULL);
	expect_eof(fd);
	close(fd);
	expect_agent_serving();
}
END_TEST

START_TEST(test_partial_frame_then_hangup)
{
	static const uint8_t part[] = {0, 0, 0, 100, 0, 1, 1, 0, 0x08};
	int fd = try_connect(sock_path);
	send_all(fd, part, sizeof(part));
	close(fd);
	expect_agent_serving();
}
END_TEST

START_TEST(test_one_client_at_a_time)
{
	int a = try_connect(sock_path);
	send_hello(a, 1);
	expect_hello_reply(a, 1);
	int b = try_connect(sock_path);
	ck_assert_int_ge(b, 0);
	expect_result(b, WIREGUI__ERROR_CODE__BUSY, 0);
	expect_eof(b);
	close(b);
	Wiregui__StatsRequest req = WIREGUI__STATS_REQUEST__INIT;
	req.request_id = 2;
	send_msg(a, WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, &req.base);
	expect_result(a, WIREGUI__ERROR_CODE__NOT_ALLOWED, 2);
	close(a);
	expect_agent_serving();
}
END_TEST

/* File descriptors passed along with a frame are never taken in. */
START_TEST(test_passed_fd_ignored)
{
	int fd = try_connect(sock_path);
	uint8_t *buf;
	size_t len;
	Wiregui__Hello hello = WIREGUI__HELLO__INIT;
	hello.request_id = 3;
	hello.protocol_version = FRAME_VERSION;
	ck_assert_int_eq(frame_encode(WIREGUI__MSG_TYPE__MSG_HELLO, &hello.base, &buf, &len), 0);
	char marker[300];
	snprintf(marker, sizeof(marker), "%s/passed-fd-marker", tmpdir);
	int passed = open(marker, O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(passed, 0);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &passed, sizeof(int));
	ck_assert_int_eq(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
	free(buf);
	expect_hello_reply(fd, 3);
	close(passed);
	close(fd);

	/* The agent holds no descriptor to the file we passed. */
	char fddir[64], link[256], target[256];
	snprintf(fddir, sizeof(fddir), "/proc/%ld/fd", (long)agent_pid);
	for (int i = 0; i < 64; i++) {
		snprintf(link, sizeof(link), "%s/%d", fddir, i);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		ck_assert_str_ne(target, marker);
	}
}
END_TEST

START_TEST(test_peercred_refused)
{
	char other_sock[300], log[300];
	snprintf(other_sock, sizeof(other_sock), "%s/other/agent.sock", tmpdir);
	snprintf(log, sizeof(log), "%s/other.log", tmpdir);
	/* Only uid 65534 may connect to this one; we are someone else. */
	ck_assert_uint_ne(getuid(), 65534);
	pid_t other = agent_start("other", other_sock, "65534", log, "");
	int fd = try_connect(other_sock);
	ck_assert_int_ge(fd, 0);
	expect_result(fd, WIREGUI__ERROR_CODE__NOT_ALLOWED, 0);
	expect_eof(fd);
	close(fd);
	ck_assert_int_eq(kill(other, 0), 0);
	agent_stop(other);
	struct stat st;
	ck_assert_int_eq(lstat(other_sock, &st), -1);
}
END_TEST

static int run_agent_capture(const char *conf_text, char *out, size_t outlen)
{
	char conf_path[300], log[300], cmd[1200];
	snprintf(conf_path, sizeof(conf_path), "%s/bad.conf", tmpdir);
	snprintf(log, sizeof(log), "%s/bad.log", tmpdir);
	write_file(conf_path, conf_text);
	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' 2>'%s'", agent_bin, conf_path, log);
	int status = system(cmd);
	FILE *f = fopen(log, "r");
	size_t n = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const struct {
	const char *conf;
	const char *message;
} bad_confs[] = {
	{"[agent]\nsockt = /tmp/x.sock\n", "bad.conf:2:"},
	{"[agent]\nsocket = relative.sock\n", "bad.conf:2:"},
	{"[wireguard]\ninterface = way-too-long-interface-name\n", "bad.conf:2:"},
	{"\n\n[firewall]\ntable = \"inet; flush ruleset\"\n", "bad.conf:4:"},
	{"[agent]\nfrontend_user = no-such-user-here\n", "no such user"},
	{"[nope]\n", "bad.conf:1:"},
	{"[wireguard]\naddress = 10.3.2.1\n", "bad.conf:2:"},
	{"[wireguard]\naddress =\n", "bad.conf:2:"},
	{"[wireguard]\n\npeer_networks = 10.3.2.1/24\n", "bad.conf:3:"},
	{"[wireguard]\nmtu = 1279\n", "below 1280"},
	{"[wireguard]\nlisten_port = 0\n", "bad.conf:2:"},
	{"[wireguard]\nuserspace_implementation = ../wireguard-go\n", "bad.conf:2:"},
	{"[wireguard]\nprivate_key_file = key\n", "bad.conf:2:"},
	{"[agent]\nmax_peers = 0\n", "bad.conf:2:"},
};

START_TEST(test_bad_config)
{
	char out[2048];
	ck_assert_int_eq(run_agent_capture(bad_confs[_i].conf, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, bad_confs[_i].message) != NULL, "stderr: %s", out);
}
END_TEST

START_TEST(test_second_agent_refused)
{
	char text[600], out[2048];
	snprintf(text, sizeof(text), "[agent]\nsocket = %s\nfrontend_user = %u\n", sock_path,
		 (unsigned)getuid());
	ck_assert_int_eq(run_agent_capture(text, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "another agent") != NULL, "stderr: %s", out);
	expect_agent_serving();
}
END_TEST

/* With the sandbox built in, the agent runs with no_new_privs set. */
START_TEST(test_no_new_privs)
{
	const char *want = getenv("WIREGUI_SANDBOX");
	char path[64], line[256];
	int got = -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)agent_pid);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "NoNewPrivs: %d", &got) == 1)
			break;
	fclose(f);
	ck_assert_ptr_nonnull(want);
	ck_assert_int_eq(got, atoi(want));
}
END_TEST

/* A socket directory someone else owns could let them swap the socket: refuse it. */
START_TEST(test_foreign_socket_dir_refused)
{
	char dir[300], text[600], out[2048];
	snprintf(dir, sizeof(dir), "%s/foreign", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0750), 0);
	if (geteuid() != 0)
		return; /* cannot give a directory away without root */
	ck_assert_int_eq(chown(dir, 65534, 65534), 0);
	snprintf(text, sizeof(text), "[agent]\nsocket = %s/agent.sock\nfrontend_user = 0\n", dir);
	ck_assert_int_eq(run_agent_capture(text, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "must be a directory owned by") != NULL, "stderr: %s", out);
}
END_TEST

/* An existing directory is never changed; a shared one (like /tmp) is refused. */
START_TEST(test_existing_socket_dir)
{
	char dir[300], text[600], out[2048];
	struct stat st;
	snprintf(dir, sizeof(dir), "%s/shared", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(chmod(dir, 01777), 0);
	snprintf(text, sizeof(text), "[agent]\nsocket = %s/agent.sock\nfrontend_user = %u\n", dir,
		 (unsigned)getuid());
	ck_assert_int_eq(run_agent_capture(text, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "writable by no one else") != NULL, "stderr: %s", out);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 01777);

	/* 0755 and ours: used as it is. */
	char log[300], sock[350];
	snprintf(dir, sizeof(dir), "%s/open", tmpdir);
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(log, sizeof(log), "%s/open.log", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	char user[32];
	snprintf(user, sizeof(user), "%u", (unsigned)getuid());
	pid_t pid = agent_start("open", sock, user, log, "");
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0755);
	agent_stop(pid);
}
END_TEST

START_TEST(test_ping)
{
	int fd = try_connect(sock_path);
	send_hello(fd, 1);
	expect_hello_reply(fd, 1);
	Wiregui__Ping ping = WIREGUI__PING__INIT;
	ping.request_id = 2;
	send_msg(fd, WIREGUI__MSG_TYPE__MSG_PING, &ping.base);
	expect_result(fd, WIREGUI__ERROR_CODE__OK, 2);
	close(fd);
}
END_TEST

/* A frontend that says nothing for idle_timeout loses its slot to the next one. */
START_TEST(test_idle_client_dropped)
{
	char sock[300], log[300];
	snprintf(sock, sizeof(sock), "%s/idle/agent.sock", tmpdir);
	snprintf(log, sizeof(log), "%s/idle.log", tmpdir);
	char user[32];
	snprintf(user, sizeof(user), "%u", (unsigned)getuid());
	pid_t pid = agent_start("idle", sock, user, log, "idle_timeout = 2\n");
	int fd = try_connect(sock);
	send_hello(fd, 1);
	expect_hello_reply(fd, 1);
	expect_eof(fd);
	close(fd);
	fd = try_connect(sock);
	send_hello(fd, 2);
	expect_hello_reply(fd, 2);
	close(fd);
	agent_stop(pid);
}
END_TEST

static Suite *agent_socket_suite(void)
{
	Suite *s = suite_create("agent_socket");
	TCase *tc = tcase_create("agent_socket");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_permissions);
	tcase_add_test(tc, test_hello);
	tcase_add_test(tc, test_pipelined);
	tcase_add_loop_test(tc, test_garbage, 0, (int)ARRAY_LEN(garbage));
	tcase_add_test(tc, test_partial_frame_then_hangup);
	tcase_add_test(tc, test_one_client_at_a_time);
	tcase_add_test(tc, test_passed_fd_ignored);
	tcase_add_test(tc, test_peercred_refused);
	tcase_add_loop_test(tc, test_bad_config, 0, (int)ARRAY_LEN(bad_confs));
	tcase_add_test(tc, test_second_agent_refused);
	tcase_add_test(tc, test_foreign_socket_dir_refused);
	tcase_add_test(tc, test_no_new_privs);
	tcase_add_test(tc, test_existing_socket_dir);
	tcase_add_test(tc, test_ping);
	tcase_add_test(tc, test_idle_client_dropped);
	suite_add_tcase(s, tc);
	return s;
}

/*
 * The agent creates its WireGuard interface (wireguard-go here) when it
 * starts: give it a network namespace of our own, and delete the interface
 * at the end, which also ends the wireguard-go serving it.
 */
int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root: the agent creates a WireGuard interface\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare(CLONE_NEWNET)");
		return EXIT_FAILURE;
	}
	snprintf(ifname, sizeof(ifname), "wgas%ld", (long)getpid() % 10000000);
	int r = check_run(agent_socket_suite());
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "ip link del %s 2>/dev/null", ifname);
	if (system(cmd) != 0)
		fprintf(stderr, "no interface %s left to delete\n", ifname);
	return r;
}
