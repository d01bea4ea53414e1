/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_LOG_H
#define WIREGUI_LOG_H

/*
 * One logging module per daemon: levels, stderr only. When stderr is
 * connected to journald (JOURNAL_STREAM set, as systemd does), each line
 * carries a "<N>" syslog priority prefix and no timestamp; otherwise
 * "YYYY-mm-ddTHH:MM:SSZ prog[pid]: level: message".
 */

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warning"/"warn", "info", "debug" -> 0, else -EINVAL. */
int log_level_parse(const char *s, enum log_level *ret_level);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* Start-up failures and broken invariants only. fatal() appends strerror(errno). */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
