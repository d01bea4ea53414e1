/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "wg_iface.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "link.h"
#include "log.h"
#include "peer_diff.h"
#include "wg_nl.h"
#include "wg_uapi.h"

/* Where a userspace implementation named without a path is looked for. */
#define USERSPACE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define USERSPACE_WAIT_MS 10000

struct wg_iface {
	const struct agent_conf *conf;
	struct wg_backend *backend;
	bool manage_link; /* false for tests driving a backend of their own */
	uint8_t private_key[WG_KEY_LEN];
	uint8_t public_key[WG_KEY_LEN];
	uint64_t generation;
	/* At least as many peers as the interface has (exact after a dump). */
	size_t peers_bound;
};

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int r,
						      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * Curve25519 clamping, as `wg genkey` and the kernel do: a key read back
 * from the device is clamped, so ours must be too or every sync would
 * rewrite it.
 */
static void private_key_clamp(uint8_t key[WG_KEY_LEN])
{
	key[0] &= 248;
	key[31] = (uint8_t)((key[31] & 127) | 64);
}

static int private_key_create(const char *path, uint8_t key[WG_KEY_LEN])
{
	char b64[WG_KEY_B64_LEN + 2];
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	if (mkdir(dirname(dir), 0700) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	randombytes_buf(key, WG_KEY_LEN);
	private_key_clamp(key);
	wg_key_to_base64(key, b64);
	b64[WG_KEY_B64_LEN] = '\n';
	ssize_t n = write(fd, b64, WG_KEY_B64_LEN + 1);
	int r = n == WG_KEY_B64_LEN + 1 && fsync(fd) == 0 ? 0 : (n < 0 ? -errno : -EIO);
	sodium_memzero(b64, sizeof(b64));
	close(fd);
	if (r < 0)
		unlink(path);
	return r;
}

/*
 * The key file must be a regular file of ours that nobody else may read or
 * write: whoever can write it chooses the server's identity.
 */
static int private_key_load(const char *path, uint8_t key[WG_KEY_LEN], char *err, size_t errlen)
{
	char buf[128];
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		int r = private_key_create(path, key);
		if (r < 0)
			return fail(err, errlen, r, "%s: cannot create: %s", path, strerror(-r));
		log_info("%s: created a new private key", path);
		return 0;
	}
	if (fd < 0)
		return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		close(fd);
		return fail(err, errlen, -EPERM,
			    "%s: must be a regular file owned by uid %u with mode 0600 or stricter",
			    path, (unsigned)geteuid());
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	int r = -EINVAL;
	if (n > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		r = wg_key_from_base64(buf, key);
	}
	if (r == 0)
		private_key_clamp(key);
	sodium_memzero(buf, sizeof(buf));
	if (r < 0)
		return fail(err, errlen, r,
			    "%s: not a base64 WireGuard key (as `wg genkey` prints)", path);
	return 0;
}

static int program_find(const char *name, char *path, size_t len)
{
	if (name[0] == '/') {
		snprintf(path, len, "%s", name);
		return access(path, X_OK) == 0 ? 0 : -errno;
	}
	const char *dir = USERSPACE_PATH;
	while (*dir) {
		size_t n = strcspn(dir, ":");
		snprintf(path, len, "%.*s/%s", (int)n, dir, name);
		if (access(path, X_OK) == 0)
			return 0;
		dir += n + (dir[n] == ':');
	}
	return -ENOENT;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){.tv_nsec = ms * 1000 * 1000}, NULL);
}

/* In the child, before exec: a clean slate of signals and descriptors. */
static void child_exec(char *prog, char *ifname)
{
	char *argv[] = {prog, ifname, NULL};
	char *envp[] = {"PATH=" USERSPACE_PATH, "LOG_LEVEL=error", NULL};
	sigset_t none;

	/* Its own session: signals for the agent's group are not its. */
	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0 && null != STDIN_FILENO) {
		dup2(null, STDIN_FILENO);
		close(null);
	}
	close_range(3, ~0U, 0);
	execve(prog, argv, envp);
	_exit(127);
}

/*
 * Start the userspace implementation as wg-quick does: "<program> <ifname>",
 * which creates the interface and its UAPI socket, then daemonizes. It gets
 * a fixed PATH and nothing else from our environment, and it outlives us:
 * the interface and its peers stay while the agent restarts (the unit's
 * KillMode=process lets it).
 */
static int userspace_start(const struct agent_conf *conf, char *err, size_t errlen)
{
	char prog[PATH_MAX];
	int status = 0;

	if (program_find(conf->userspace_impl, prog, sizeof(prog)) < 0)
		return fail(err, errlen, -ENOENT,
			    "the kernel has no WireGuard and %s was not found (install %s)",
			    conf->userspace_impl, conf->userspace_impl);
	log_info("the kernel has no WireGuard: starting %s %s", prog, conf->interface);
	pid_t pid = fork();
	if (pid < 0)
		return fail(err, errlen, -errno, "fork: %s", strerror(errno));
	if (pid == 0)
		child_exec(prog, conf->interface);
	int64_t deadline = now_ms() + USERSPACE_WAIT_MS;
	pid_t r;
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_ms(20);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return fail(err, errlen, -ETIMEDOUT, "%s %s did not daemonize", prog,
			    conf->interface);
	}
	if (r < 0)
		return fail(err, errlen, -errno, "waitpid: %s", strerror(errno));
	if (WIFSIGNALED(status))
		return fail(err, errlen, -ECHILD, "%s %s was killed by signal %d", prog,
			    conf->interface, WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		return fail(err, errlen, -ECHILD, "%s %s exited with status %d", prog,
			    conf->interface, WEXITSTATUS(status));
	return 0;
}

/*
 * wireguard-go's first process opens the UAPI socket, hands it to the child
 * it daemonizes into and exits; the child sets the MTU to its own default
 * before it serves requests. Wait for an answer to a real request, so that
 * our MTU comes after its.
 */
static int userspace_wait(struct wg_backend *b, const char *ifname, char *err, size_t errlen)
{
	struct wg_device *dev = NULL;
	int64_t deadline = now_ms() + USERSPACE_WAIT_MS;

	while (b->get(b, ifname, &dev) < 0) {
		if (now_ms() >= deadline)
			return fail(err, errlen, -ETIMEDOUT, "%s/%s.sock does not answer",
				    WG_UAPI_DEFAULT_DIR, ifname);
		sleep_ms(20);
	}
	wg_device_free(dev);
	return 0;
}

static void backend_use(struct wg_iface *wg, struct wg_backend *b)
{
	wg_backend_free(wg->backend);
	wg->backend = b;
}

/* The kernel has no WireGuard: the userspace implementation makes the interface. */
static int backend_start_userspace(struct wg_iface *wg, char *err, size_t errlen)
{
	struct wg_backend *b = NULL;
	int r = userspace_start(wg->conf, err, errlen);
	if (r < 0)
		return r;
	r = wg_uapi_new(WG_UAPI_DEFAULT_DIR, &b);
	if (r < 0)
		return fail(err, errlen, r, "out of memory");
	r = userspace_wait(b, wg->conf->interface, err, errlen);
	if (r < 0) {
		wg_backend_free(b);
		return r;
	}
	backend_use(wg, b);
	return 0;
}

/*
 * Which backend drives the interface, creating it if needed: a userspace
 * implementation already answering on its UAPI socket wins (wireguard-tools
 * looks there first too); then a kernel interface; then a new one, from the
 * kernel if it has WireGuard, else from the userspace implementation. The
 * old backend is replaced only by a working one.
 */
static int backend_open(struct wg_iface *wg, char *err, size_t errlen)
{
	const char *ifname = wg->conf->interface;
	struct wg_backend *b = NULL;
	int r;

	if (wg_uapi_probe(WG_UAPI_DEFAULT_DIR, ifname)) {
		r = wg_uapi_new(WG_UAPI_DEFAULT_DIR, &b);
	} else if (link_index(ifname) >= 0) {
		r = wg_nl_new(&b);
	} else {
		r = link_create_wireguard(ifname);
		if (r == -EOPNOTSUPP)
			return backend_start_userspace(wg, err, errlen);
		if (r == 0) {
			log_info("created WireGuard interface %s (kernel)", ifname);
			r = wg_nl_new(&b);
		}
	}
	if (r < 0)
		return fail(err, errlen, r, "no WireGuard backend for %s: %s", ifname,
			    strerror(-r));
	backend_use(wg, b);
	return 0;
}

/* The device's own fields, written only where they differ. */
static int device_reconcile(struct wg_iface *wg, char *err, size_t errlen)
{
	struct wg_device want = {.flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT,
				 .listen_port = (uint16_t)wg->conf->listen_port};
	struct wg_device change = {0}, *cur = NULL;
	int r = wg->backend->get(wg->backend, wg->conf->interface, &cur);

	if (r < 0)
		return fail(err, errlen, r, "reading %s: %s", wg->conf->interface, strerror(-r));
	wg->peers_bound = cur->n_peers;
	memcpy(want.private_key, wg->private_key, WG_KEY_LEN);
	peer_diff_device(&want, cur, &change);
	wg_device_free(cur);
	if (change.flags != 0 &&
	    (r = wg->backend->set(wg->backend, wg->conf->interface, &change)) < 0)
		fail(err, errlen, r, "configuring %s: %s", wg->conf->interface, strerror(-r));
	sodium_memzero(want.private_key, WG_KEY_LEN);
	sodium_memzero(change.private_key, WG_KEY_LEN);
	return r;
}

/* The interface exists, has its backend, addresses, MTU and is up. */
static int link_ensure(struct wg_iface *wg, char *err, size_t errlen)
{
	const struct agent_conf *conf = wg->conf;

	if (!wg->manage_link)
		return 0;
	bool gone = wg->backend == NULL || link_index(conf->interface) < 0 ||
		    (wg->backend->kind == WG_BACKEND_USERSPACE &&
		     !wg_uapi_probe(WG_UAPI_DEFAULT_DIR, conf->interface));
	int r = gone ? backend_open(wg, err, errlen) : 0;
	if (r < 0)
		return r;
	int ifindex = link_index(conf->interface);
	if (ifindex < 0)
		return fail(err, errlen, ifindex, "%s disappeared", conf->interface);
	/* Only a link of the kind our backend drives: never reconfigure eth0. */
	const char *kind = wg->backend->kind == WG_BACKEND_KERNEL ? "wireguard" : "tun";
	r = link_configure(ifindex, kind, (uint32_t)conf->mtu, conf->addresses.items,
			   conf->addresses.n);
	if (r < 0)
		return fail(err, errlen, r, "configuring the link %s: %s", conf->interface,
			    strerror(-r));
	return 0;
}

int wg_iface_ensure(struct wg_iface *wg, char *err, size_t errlen)
{
	int r = link_ensure(wg, err, errlen);
	return r < 0 ? r : device_reconcile(wg, err, errlen);
}

static struct wg_iface *wg_iface_alloc(const struct agent_conf *conf)
{
	struct wg_iface *wg = calloc(1, sizeof(*wg));
	if (wg != NULL)
		wg->conf = conf;
	return wg;
}

int wg_iface_open(const struct agent_conf *conf, struct wg_iface **ret_wg, char *err, size_t errlen)
{
	struct wg_iface *wg = wg_iface_alloc(conf);
	if (wg == NULL)
		return fail(err, errlen, -ENOMEM, "out of memory");
	wg->manage_link = true;
	int r = private_key_load(conf->private_key_file, wg->private_key, err, errlen);
	if (r == 0) {
		crypto_scalarmult_base(wg->public_key, wg->private_key);
		r = wg_iface_ensure(wg, err, errlen);
	}
	if (r < 0) {
		wg_iface_free(wg);
		return r;
	}
	*ret_wg = wg;
	return 0;
}

struct wg_iface *wg_iface_new(const struct agent_conf *conf, struct wg_backend *backend,
			      const uint8_t private_key[WG_KEY_LEN])
{
	struct wg_iface *wg = wg_iface_alloc(conf);
	if (wg == NULL) {
		wg_backend_free(backend);
		return NULL;
	}
	wg->backend = backend;
	memcpy(wg->private_key, private_key, WG_KEY_LEN);
	crypto_scalarmult_base(wg->public_key, wg->private_key);
	return wg;
}

void wg_iface_free(struct wg_iface *wg)
{
	if (wg == NULL)
		return;
	wg_backend_free(wg->backend);
	sodium_memzero(wg->private_key, sizeof(wg->private_key));
	free(wg);
}

enum wg_backend_kind wg_iface_backend(const struct wg_iface *wg)
{
	return wg->backend ? wg->backend->kind : 0;
}

const uint8_t *wg_iface_public_key(const struct wg_iface *wg)
{
	return wg->public_key;
}

uint64_t wg_iface_generation(const struct wg_iface *wg)
{
	return wg->generation;
}

int wg_iface_dump(struct wg_iface *wg, struct wg_device **ret_dev, char *err, size_t errlen)
{
	int r = wg->backend == NULL ? link_ensure(wg, err, errlen) : 0;
	if (r < 0)
		return r;
	r = wg->backend->get(wg->backend, wg->conf->interface, ret_dev);
	if (r < 0)
		return fail(err, errlen, r, "reading %s: %s", wg->conf->interface, strerror(-r));
	sodium_memzero((*ret_dev)->private_key, WG_KEY_LEN);
	wg->peers_bound = (*ret_dev)->n_peers;
	return 0;
}

static void write_stats_count(const struct wg_device *change, struct wg_write_stats *st,
			      const struct wg_device *current)
{
	memset(st, 0, sizeof(*st));
	st->device = change->flags != 0;
	for (size_t i = 0; i < change->n_peers; i++) {
		const struct wg_peer *p = &change->peers[i];
		if (p->flags & WG_PEER_REMOVE)
			st->removed++;
		else if (wg_device_find_peer(current, p->public_key))
			st->changed++;
		else
			st->added++;
	}
}

int wg_iface_sync(struct wg_iface *wg, struct wg_device *desired, uint64_t generation,
		  struct wg_write_stats *ret_stats, char *err, size_t errlen)
{
	struct wg_device *cur = NULL, *change = NULL;
	int r = link_ensure(wg, err, errlen);
	if (r < 0)
		return r;
	desired->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT;
	memcpy(desired->private_key, wg->private_key, WG_KEY_LEN);
	desired->listen_port = (uint16_t)wg->conf->listen_port;
	/* One dump serves the device fields and the peers alike. */
	r = wg->backend->get(wg->backend, wg->conf->interface, &cur);
	if (r < 0)
		return fail(err, errlen, r, "reading %s: %s", wg->conf->interface, strerror(-r));
	r = peer_diff(desired, cur, &change);
	if (r < 0) {
		fail(err, errlen, r, "out of memory");
		goto out;
	}
	write_stats_count(change, ret_stats, cur);
	if (!wg_device_is_empty(change)) {
		r = wg->backend->set(wg->backend, wg->conf->interface, change);
		if (r < 0) {
			fail(err, errlen, r, "writing %s: %s", wg->conf->interface, strerror(-r));
			goto out;
		}
	}
	wg->generation = generation;
	wg->peers_bound = desired->n_peers;
out:
	wg_device_free(change);
	wg_device_free(cur);
	return r;
}

/*
 * Patches must not take the interface beyond max_peers either. The bound
 * grows with each upsert; only when it would pass the limit is the exact
 * number counted from a dump.
 */
static int patch_within_limit(struct wg_iface *wg, const struct wg_device *change, char *err,
			      size_t errlen)
{
	size_t upserts = 0, count;
	struct wg_device *dev = NULL;

	for (size_t i = 0; i < change->n_peers; i++)
		upserts += !(change->peers[i].flags & WG_PEER_REMOVE);
	if (wg->peers_bound + upserts <= wg->conf->max_peers) {
		wg->peers_bound += upserts;
		return 0;
	}
	int r = wg_iface_dump(wg, &dev, err, errlen);
	if (r < 0)
		return r;
	wg_device_sort_peers(dev);
	count = dev->n_peers;
	for (size_t i = 0; i < change->n_peers; i++) {
		bool there = wg_device_find_peer(dev, change->peers[i].public_key) != NULL;
		if (change->peers[i].flags & WG_PEER_REMOVE)
			count -= there;
		else
			count += !there;
	}
	wg_device_free(dev);
	if (count > wg->conf->max_peers)
		return fail(err, errlen, -E2BIG,
			    "the interface would have %zu peers, max_peers is %lu", count,
			    wg->conf->max_peers);
	wg->peers_bound = count;
	return 0;
}

int wg_iface_patch(struct wg_iface *wg, const struct wg_device *change, char *err, size_t errlen)
{
	int r = wg->backend == NULL ? link_ensure(wg, err, errlen) : 0;
	if (r == 0)
		r = patch_within_limit(wg, change, err, errlen);
	if (r < 0)
		return r;
	r = wg->backend->set(wg->backend, wg->conf->interface, change);
	if (r == -ENODEV && wg->manage_link && wg_iface_ensure(wg, err, errlen) == 0)
		r = wg->backend->set(wg->backend, wg->conf->interface, change);
	if (r < 0)
		return fail(err, errlen, r, "writing %s: %s", wg->conf->interface, strerror(-r));
	return 0;
}
