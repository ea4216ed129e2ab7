// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The per-thread failure record of every native module (kbx_error.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kbx_error.h"

static __thread struct kbx_error last;

int kbx_fail(int err, const char *operation, const char *message, ...)
{
	va_list ap;

	last.errnum = err < 0 ? -err : err;
	snprintf(last.operation, sizeof(last.operation), "%s", operation ? operation : "");
	last.message[0] = '\0';
	if (message) {
		va_start(ap, message);
		vsnprintf(last.message, sizeof(last.message), message, ap);
		va_end(ap);
	}
	return err;
}

int kbx_error_take(struct kbx_error *out)
{
	*out = last;
	memset(&last, 0, sizeof(last));
	return out->errnum;
}
