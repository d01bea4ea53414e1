/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "validate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"

#define HELLO_CLIENT_MAX 128

__attribute__((format(printf, 3, 4))) static int verr_set(struct verr *err, const char *field,
							  const char *fmt, ...)
{
	va_list ap;
	snprintf(err->field, sizeof(err->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Printable ASCII only: the string ends up in the agent's log. */
static int validate_label(const char *s, size_t max, const char *field, struct verr *err)
{
	size_t len = strlen(s);
	if (len > max)
		return verr_set(err, field, "longer than %zu bytes", max);
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return verr_set(err, field, "byte %zu is not printable ASCII", i);
	return 0;
}

int validate_hello(const Wiregui__Hello *m, struct verr *err)
{
	if (m->protocol_version != FRAME_VERSION)
		return verr_set(err, "protocol_version",
				"%u is not supported (this agent speaks %u)", m->protocol_version,
				FRAME_VERSION);
	return validate_label(m->client, HELLO_CLIENT_MAX, "client", err);
}
