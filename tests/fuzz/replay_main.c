/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Replay inputs through LLVMFuzzerTestOneInput without libFuzzer, so that
 * every build (gcc, ASan, valgrind) runs the seed corpus as a test. Each
 * argument is a file, or a directory whose regular files are replayed in
 * name order (not recursively; dot files are skipped). Fails when an input
 * cannot be read or when nothing was replayed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* An exact-size copy, so that ASan sees any read past the end of the input. */
static int read_input(int fd, uint8_t **ret_buf, size_t *ret_len)
{
	struct stat st;
	size_t len, done = 0;
	uint8_t *buf = NULL;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	len = (size_t)st.st_size;
	buf = malloc(len > 0 ? len : 1);
	if (buf == NULL)
		return -ENOMEM;
	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

static int replay_file(const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0) {
		r = -errno;
		goto err;
	}
	r = read_input(fd, &buf, &len);
	close(fd);
	if (r < 0)
		goto err;
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;

err:
	fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
	return r;
}

static int skip_dot(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static int replay_dir(const char *dir, size_t *count)
{
	struct dirent **names;
	int n = scandir(dir, &names, skip_dot, alphasort);
	int r = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (r == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			r = replay_file(path);
			if (r == 0)
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	struct stat st;

	for (int i = 1; i < argc; i++) {
		int r;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			r = replay_dir(argv[i], &count);
		} else {
			r = replay_file(argv[i]);
			if (r == 0)
				count++;
		}
		if (r < 0)
			return EXIT_FAILURE;
	}
	if (count == 0) {
		fprintf(stderr, "replay: no input replayed\n");
		return EXIT_FAILURE;
	}
	printf("replayed %zu inputs\n", count);
	return EXIT_SUCCESS;
}
