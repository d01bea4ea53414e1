/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int port_parse(const char *s, uint16_t *ret_port)
{
	if (*s < '0' || *s > '9' || strlen(s) > 5)
		return -EINVAL;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return -EINVAL;
	*ret_port = (uint16_t)v;
	return 0;
}

static int unix_parse(const char *path, struct endpoint *ep, char *err, size_t errlen)
{
	if (path[0] != '/') {
		snprintf(err, errlen, "a UNIX socket path must be absolute");
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(ep->path)) {
		snprintf(err, errlen, "UNIX socket path longer than %zu bytes",
			 sizeof(ep->path) - 1);
		return -EINVAL;
	}
	ep->kind = ENDPOINT_UNIX;
	strcpy(ep->path, path);
	return 0;
}

/* "[v6]:port" or "host:port"; a bare IPv6 address needs the brackets. */
static int tcp_parse(const char *s, struct endpoint *ep, char *err, size_t errlen)
{
	const char *host = s, *host_end, *colon;

	if (s[0] == '[') {
		host = s + 1;
		host_end = strchr(host, ']');
		if (host_end == NULL || host_end[1] != ':') {
			snprintf(err, errlen, "expected [address]:port");
			return -EINVAL;
		}
		colon = host_end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL) {
			snprintf(err, errlen, "expected host:port or [address]:port");
			return -EINVAL;
		}
		host_end = colon;
	}
	size_t hostlen = (size_t)(host_end - host);
	if (hostlen == 0 || hostlen >= sizeof(ep->host)) {
		snprintf(err, errlen, "missing or over-long host");
		return -EINVAL;
	}
	memcpy(ep->host, host, hostlen);
	ep->host[hostlen] = '\0';
	if (s[0] == '[') {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, ep->host, &a6) != 1) {
			snprintf(err, errlen, "'%s' is not an IPv6 address", ep->host);
			return -EINVAL;
		}
	}
	if (port_parse(colon + 1, &ep->port) < 0) {
		snprintf(err, errlen, "port must be a number from 1 to 65535");
		return -EINVAL;
	}
	ep->kind = ENDPOINT_TCP;
	return 0;
}

int endpoint_parse(const char *s, unsigned flags, struct endpoint *ret_ep, char *err, size_t errlen)
{
	struct endpoint ep;
	int r;

	memset(&ep, 0, sizeof(ep));
	if (strncmp(s, "unix:", 5) == 0) {
		if (!(flags & ENDPOINT_ALLOW_UNIX)) {
			snprintf(err, errlen, "a UNIX socket is not supported here");
			return -EINVAL;
		}
		r = unix_parse(s + 5, &ep, err, errlen);
	} else {
		r = tcp_parse(s, &ep, err, errlen);
	}
	if (r < 0)
		return r;
	*ret_ep = ep;
	return 0;
}
