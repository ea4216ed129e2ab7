// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* fix-tcp at a rate: waits on a file descriptor that end at a CLOCK_MONOTONIC deadline to the microsecond. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/prctl.h>
#include <time.h>

#include "fix_internal.h"
#include "kbx_fix.h"


int kbx_fix_precise_timers(void)
{
	/* The default 50 µs timer slack would be added to every paced wake-up. */
	return prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) == 0 ? 0 : -errno;
}

int kbx_fix_sleep_readable(int fd, uint64_t until_ns)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		uint64_t now = kbx_fix_mono_ns();
		if (now >= until_ns)
			return poll(&p, 1, 0) > 0;
		uint64_t left = until_ns - now;
		struct timespec ts = { .tv_sec = (time_t)(left / 1000000000ull), .tv_nsec = (long)(left % 1000000000ull) };
		int rc = ppoll(&p, 1, &ts, NULL);
		if (rc > 0)
			return 1;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int kbx_fix_wait_fd(int fd, uint64_t wake_at_ns, int timeout_ms, int busy)
{
	uint64_t now = kbx_fix_mono_ns();
	uint64_t until = now + (timeout_ms > 0 ? (uint64_t)timeout_ms * 1000000ull : 0);
	if (wake_at_ns && wake_at_ns < until)
		until = wake_at_ns;
	if (!busy)
		return kbx_fix_sleep_readable(fd, until);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	do {
		if (poll(&p, 1, 0) > 0)
			return 1;
		cpu_relax();
	} while (kbx_fix_mono_ns() < until);
	return 0;
}
