/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef WIREGUI_ENDPOINT_H
#define WIREGUI_ENDPOINT_H

/*
 * Addresses of things the frontend listens on or connects to, as written in
 * the config: "host:port", "[v6addr]:port" and, where allowed,
 * "unix:/absolute/path".
 */

#include <stddef.h>
#include <stdint.h>

enum endpoint_kind {
	ENDPOINT_TCP,
	ENDPOINT_UNIX,
};

/* sun_path is 108 bytes on Linux. */
#define ENDPOINT_PATH_MAX 108
#define ENDPOINT_HOST_MAX 256

struct endpoint {
	enum endpoint_kind kind;
	char host[ENDPOINT_HOST_MAX]; /* TCP: name or address, without brackets */
	uint16_t port;		      /* TCP: 1..65535 */
	char path[ENDPOINT_PATH_MAX]; /* UNIX */
};

enum {
	ENDPOINT_ALLOW_UNIX = 1 << 0,
};

/* 0, or -EINVAL with the reason in err; ret_ep is untouched on error. */
int endpoint_parse(const char *s, unsigned flags, struct endpoint *ret_ep, char *err,
		   size_t errlen);

#endif
