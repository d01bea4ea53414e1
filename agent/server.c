/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "session.h"

/* A frame begun and not finished within this long closes the connection. */
#define STALL_TIMEOUT_MS 30000

struct server {
	const struct agent_conf *conf;
	struct wg_iface *wg;
	struct fw_table *fw;
	int listen_fd;
	int client_fd;
	struct session *session;
	uid_t client_uid;
	pid_t client_pid;
	struct timespec frame_started;
	struct timespec last_input;
};

static volatile sig_atomic_t server_stop;

static void on_signal(int sig)
{
	(void)sig;
	server_stop = 1;
}

/*
 * A directory we create gets 0750 and the frontend's group. One that exists
 * (tmpfiles.d made it, or an admin) is left as it is, but must be ours and
 * writable by nobody else: whoever can write it could swap the socket. We
 * never chmod a directory we did not make (socket = /tmp/x.sock must not
 * change /tmp).
 */
static int socket_dir_prepare(const struct agent_conf *conf)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", conf->socket_path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		return -EPERM;
	*slash = '\0';
	if (mkdir(dir, 0700) == 0) {
		if (chown(dir, geteuid(), conf->frontend_gid) < 0 && geteuid() == 0)
			return -errno;
		return chmod(dir, 0750) < 0 ? -errno : 0;
	}
	if (errno != EEXIST)
		return -errno;
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0)
		return -EPERM;
	return 0;
}

/* A live socket means another agent; a dead one is left over and removed. */
static int stale_socket_remove(const struct sockaddr_un *sa)
{
	struct stat st;
	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	return unlink(sa->sun_path) < 0 ? -errno : 0;
}

static int listen_socket_open(const struct agent_conf *conf)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", conf->socket_path);

	int r = stale_socket_remove(&sa);
	if (r == -EADDRINUSE)
		fatalx("%s: another agent is listening there", conf->socket_path);
	if (r < 0) {
		errno = -r;
		fatal("%s: cannot replace", conf->socket_path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fatal("socket");
	mode_t old = umask(0117);
	r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		fatal("bind %s", conf->socket_path);
	if (chown(conf->socket_path, geteuid(), conf->frontend_gid) < 0 && geteuid() == 0)
		fatal("chown %s", conf->socket_path);
	if (chmod(conf->socket_path, 0660) < 0)
		fatal("chmod %s", conf->socket_path);
	if (listen(fd, 4) < 0)
		fatal("listen %s", conf->socket_path);
	return fd;
}

struct server *server_new(const struct agent_conf *conf)
{
	int r = socket_dir_prepare(conf);
	if (r == -EPERM)
		fatalx("%s: the socket directory must be a directory owned by uid %u and writable "
		       "by no one else",
		       conf->socket_path, (unsigned)geteuid());
	if (r < 0) {
		errno = -r;
		fatal("%s: cannot prepare the socket directory", conf->socket_path);
	}
	struct server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		fatal("calloc");
	srv->conf = conf;
	srv->client_fd = -1;
	srv->listen_fd = listen_socket_open(conf);

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		fatal("sigaction");
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		fatal("sigaction");
	log_info("listening on %s for uid %u", conf->socket_path, (unsigned)conf->frontend_uid);
	return srv;
}

static void client_close(struct server *srv, const char *why)
{
	log_info("frontend (pid %ld) disconnected: %s", (long)srv->client_pid, why);
	close(srv->client_fd);
	srv->client_fd = -1;
	session_free(srv->session);
	srv->session = NULL;
}

/* Tell a refused peer why, best effort, without blocking. */
static void refuse(int fd, Wiregui__ErrorCode code, const char *message)
{
	Wiregui__Result res = WIREGUI__RESULT__INIT;
	res.code = code;
	res.message = (char *)message;
	uint8_t *buf;
	size_t len;
	if (frame_encode(WIREGUI__MSG_TYPE__MSG_RESULT, &res.base, &buf, &len) == 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n;
		free(buf);
	}
	close(fd);
}

static void server_accept(struct server *srv)
{
	int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		return;
	}
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return;
	}
	if (cred.uid != srv->conf->frontend_uid) {
		log_warn("refused connection from uid %u pid %ld: only uid %u may connect",
			 (unsigned)cred.uid, (long)cred.pid, (unsigned)srv->conf->frontend_uid);
		refuse(fd, WIREGUI__ERROR_CODE__NOT_ALLOWED, "this uid may not connect");
		return;
	}
	if (srv->client_fd >= 0) {
		log_warn("refused connection from pid %ld: pid %ld is connected", (long)cred.pid,
			 (long)srv->client_pid);
		refuse(fd, WIREGUI__ERROR_CODE__BUSY, "another frontend is connected");
		return;
	}
	srv->session = session_new(srv->conf, srv->wg, srv->fw);
	if (srv->session == NULL) {
		log_err("out of memory for a session");
		close(fd);
		return;
	}
	srv->client_fd = fd;
	srv->client_uid = cred.uid;
	srv->client_pid = cred.pid;
	clock_gettime(CLOCK_MONOTONIC, &srv->last_input);
	log_info("frontend connected (pid %ld)", (long)cred.pid);
}

/* Returns false when the connection is over. */
static bool client_flush(struct server *srv)
{
	size_t len;
	const uint8_t *out = session_output(srv->session, &len);
	while (len > 0) {
		ssize_t n = send(srv->client_fd, out, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			client_close(srv, strerror(errno));
			return false;
		}
		session_output_consumed(srv->session, (size_t)n);
		out = session_output(srv->session, &len);
	}
	return true;
}

/* Returns false when nothing more is to be read now, or the connection is over. */
static bool client_handled(struct server *srv, int r);

static bool client_read_once(struct server *srv)
{
	uint8_t buf[65536];
	ssize_t n = recv(srv->client_fd, buf, sizeof(buf), 0);
	if (n == 0) {
		client_close(srv, "end of stream");
		return false;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return false;
		client_close(srv, strerror(errno));
		return false;
	}
	uint64_t begun = session_frames_begun(srv->session);
	int r = session_input(srv->session, buf, (size_t)n);
	sodium_memzero(buf, (size_t)n); /* requests carry preshared keys */
	/* After the work: a long request must not count as silence. */
	clock_gettime(CLOCK_MONOTONIC, &srv->last_input);
	if (session_frames_begun(srv->session) != begun)
		clock_gettime(CLOCK_MONOTONIC, &srv->frame_started);
	return client_handled(srv, r);
}

/* After input was handled: send the replies; close after a violation. */
static bool client_handled(struct server *srv, int r)
{
	if (!client_flush(srv))
		return false;
	if (r < 0) {
		/* The Result saying why is on its way; the peer gets nothing more. */
		shutdown(srv->client_fd, SHUT_WR);
		client_close(srv, r == -ENOMEM ? "out of memory" : "protocol violation");
		return false;
	}
	return true;
}

static size_t client_pending(const struct server *srv)
{
	size_t pending;
	session_output(srv->session, &pending);
	return pending;
}

/* Replies piling up (the client does not read them): read no more requests. */
static bool client_may_read(const struct server *srv)
{
	return client_pending(srv) < SESSION_OUTPUT_HIGH_WATER && !session_backlogged(srv->session);
}

/*
 * Read what is there (bounded, so one client cannot starve the loop), so a
 * hang-up behind the data is seen before a new connection is judged busy.
 */
static void client_read(struct server *srv)
{
	for (int i = 0; i < 64 && srv->client_fd >= 0; i++)
		if (!client_may_read(srv) || !client_read_once(srv))
			return;
}

static long ms_left(const struct timespec *since, long limit_ms)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long elapsed =
		(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
	return elapsed >= limit_ms ? 0 : limit_ms - elapsed;
}

/*
 * Milliseconds until the client must be dropped: a frame begun and not
 * finished in STALL_TIMEOUT_MS, or nothing at all (the web pings when it
 * has nothing to ask) for idle_timeout. -1 without a client. Why in *why.
 */
static int client_deadline_ms(const struct server *srv, const char **why)
{
	if (srv->client_fd < 0)
		return -1;
	long left = ms_left(&srv->last_input, (long)srv->conf->idle_timeout * 1000);
	*why = "silent for longer than idle_timeout";
	if (session_mid_frame(srv->session)) {
		long stall = ms_left(&srv->frame_started, STALL_TIMEOUT_MS);
		if (stall < left) {
			left = stall;
			*why = "frame not completed in time";
		}
	}
	return (int)left;
}

int server_run(struct server *srv, struct wg_iface *wg, struct fw_table *fw)
{
	srv->wg = wg;
	srv->fw = fw;
	sigset_t block, orig;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);

	while (!server_stop) {
		struct pollfd pfd[2] = {{.fd = srv->listen_fd, .events = POLLIN}, {.fd = -1}};
		if (srv->client_fd >= 0) {
			size_t pending = client_pending(srv);
			pfd[1].fd = srv->client_fd;
			pfd[1].events = (short)((client_may_read(srv) ? POLLIN : 0) |
						(pending ? POLLOUT : 0));
		}
		const char *why = NULL;
		int timeout = client_deadline_ms(srv, &why);
		struct timespec ts = {timeout / 1000, (timeout % 1000) * 1000000L};
		int n = ppoll(pfd, 2, timeout < 0 ? NULL : &ts, &orig);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fatal("ppoll");
		}
		if (client_deadline_ms(srv, &why) == 0) {
			client_close(srv, why);
			continue;
		}
		if (pfd[1].revents & POLLOUT && !client_flush(srv))
			continue;
		if (srv->client_fd >= 0 && session_backlogged(srv->session) &&
		    client_pending(srv) < SESSION_OUTPUT_HIGH_WATER &&
		    !client_handled(srv, session_resume(srv->session)))
			continue;
		if (pfd[1].revents & POLLIN)
			client_read(srv);
		else if (pfd[1].revents & (POLLHUP | POLLERR))
			client_close(srv, "hang-up");
		if (pfd[0].revents & POLLIN)
			server_accept(srv);
	}
	sigprocmask(SIG_SETMASK, &orig, NULL);
	log_info("stopping");
	return 0;
}

void server_free(struct server *srv)
{
	if (srv == NULL)
		return;
	if (srv->client_fd >= 0)
		client_close(srv, "agent stopping");
	close(srv->listen_fd);
	unlink(srv->conf->socket_path);
	free(srv);
}
