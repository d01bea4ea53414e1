/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "wiregui";
static enum log_level log_threshold = LOG_LVL_INFO;
static bool log_journal;

static const struct {
	const char *name;
	enum log_level level;
} log_names[] = {
	{"error", LOG_LVL_ERR}, {"warning", LOG_LVL_WARN}, {"warn", LOG_LVL_WARN},
	{"info", LOG_LVL_INFO}, {"debug", LOG_LVL_DEBUG},
};

void log_init(const char *progname, enum log_level level)
{
	log_progname = progname;
	log_threshold = level;
	/* systemd sets JOURNAL_STREAM when stderr goes straight to journald. */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

int log_level_parse(const char *s, enum log_level *ret_level)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcasecmp(s, log_names[i].name) == 0) {
			*ret_level = log_names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (log_names[i].level == level)
			return log_names[i].name;
	return "unknown";
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	int saved_errno = errno;

	if (level > log_threshold)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* One line per record, no terminal escapes: a message quoting outside
	 * input must not forge log lines or drive the reader's terminal. */
	for (char *p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", (int)level, line);
	} else {
		char stamp[32];
		struct tm tm;
		time_t now = time(NULL);
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "%s %s[%ld]: %s: %s\n", stamp, log_progname, (long)getpid(),
			log_level_name(level), line);
	}
	errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	char msg[1024];
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("%s: %s", msg, strerror(saved_errno));
	exit(EXIT_FAILURE);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(EXIT_FAILURE);
}
