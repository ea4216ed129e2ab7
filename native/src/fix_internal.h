/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside fix-tcp's native path (fix_reflex.c, fix_xdp.c), not part of libkbx's interface: the cycle counter
 * that times the reflex's stages, and where the reflex's own stages ended on the order it last sent.
 */
#ifndef KBX_FIX_INTERNAL_H
#define KBX_FIX_INTERNAL_H

#include <stdint.h>
#include <time.h>

struct kbx_fix_reflex;

/* Ticks of the CPU's invariant time-stamp counter (about 8 ns to read here, against 17 ns for clock_gettime);
 * elsewhere CLOCK_MONOTONIC_RAW ns. fix_xdp.c calibrates ticks against CLOCK_MONOTONIC. */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t kbx_fix_ticks(void) { return __rdtsc(); }
#else
static inline uint64_t kbx_fix_ticks(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#endif

/* kbx_fix_ticks() at the ends of the reflex's stages for the order it last sent. */
struct kbx_fix_reflex_marks {
	uint64_t triggered; /* the ExecutionReport framed, checked and found to be the trigger */
	uint64_t built;     /* the order written into io->msg */
	uint64_t queued;    /* the order's segment queued by the TCP (kbx_tcp_send_now returned) */
	uint64_t clock;     /* ticks spent reading clocks between triggered and built (the SendingTime) */
};

#define FIX_HIDDEN __attribute__((visibility("hidden")))
FIX_HIDDEN void kbx_fix_reflex_marks(const struct kbx_fix_reflex *r, struct kbx_fix_reflex_marks *out);
/*
 * The wall clock (CLOCK_REALTIME ns) for the SendingTime of an order the next feed sends, so the reflex reads
 * no clock itself; 0 (the default, and after every feed): it reads CLOCK_REALTIME.
 */
FIX_HIDDEN void kbx_fix_reflex_set_wall_clock(struct kbx_fix_reflex *r, uint64_t realtime_ns);

#endif
