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

/* Inside a spin on a ring or a clock: tells the CPU (and a sibling hyperthread) that this is a wait. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* CLOCK_MONOTONIC in ns: the clock of every deadline and time the fix path shares with TS. */
static inline uint64_t kbx_fix_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* kbx_fix_ticks() at the ends of the reflex's stages for the order it last sent. */
struct kbx_fix_reflex_marks {
	uint64_t triggered; /* the ExecutionReport framed, checked and found to be the trigger */
	uint64_t built;     /* the order written into io->msg */
	uint64_t queued;    /* the order's segment queued by the TCP (kbx_tcp_send_now returned) */
	uint64_t clock;     /* ticks spent reading clocks between triggered and built (the SendingTime) */
};

#define FIX_HIDDEN __attribute__((visibility("hidden")))

/*
 * The reflex's order, prepared once (fix_order.c): every byte that does not change between orders is laid
 * out and summed in advance, so an order is three copies, four numbers (BodyLength, MsgSeqNum, ClOrdID, the
 * CheckSum) and the SendingTime written into place, its CheckSum the constant parts' sum plus the variable
 * bytes'. The message: 8=B|9=LEN|35=T|49=S|56=T|hdr 34=SEQ|52=TIME|11=ID|pre [tag=TIME|] post 10=CCC|
 */
#define FIX_ORDER_PART_MAX 1088 /* SOH, pre (≤ 512), a time field (≤ 34), post (≤ 512) */
struct fix_order_template {
	uint8_t begin[80];  /* "8=<BeginString>SOH9=" */
	uint8_t head[512];  /* "35=…SOH49=…SOH56=…SOH<header fields>34=" */
	uint8_t tail[FIX_ORDER_PART_MAX]; /* "SOH<pre>[<tag>=<21 bytes of time>SOH]<post>" */
	uint32_t begin_len, head_len, tail_len;
	int32_t tail_time_at; /* where the time goes in tail, -1: no time field */
	uint32_t fixed_sum;   /* every constant byte of the message, summed */
	/* SendingTime "YYYYMMDD-HH:MM:SS.sss": the text up to the second and its sum, cached per second */
	int64_t time_sec;
	uint8_t time_text[21];
	uint32_t time_sec_sum;
};

/* 0, or -EINVAL when the parts do not fit (hdr ≤ 256, pre + post + time ≤ FIX_ORDER_PART_MAX - 2). */
FIX_HIDDEN int fix_order_prepare(struct fix_order_template *t, const char *begin_string, const char *msg_type, const char *sender,
				 const char *target, const uint8_t *hdr, uint32_t hdr_len, const uint8_t *pre, uint32_t pre_len,
				 uint32_t time_tag, const uint8_t *post, uint32_t post_len);
/*
 * The order into io->msg (len, time_at, body_at, body_end set) for SendingTime wall_ns (CLOCK_REALTIME ns,
 * UTC); returns its length, 0 when over KBX_FIX_REFLEX_MSG_MAX.
 */
struct kbx_fix_reflex_io;
FIX_HIDDEN uint32_t fix_order_build(struct fix_order_template *t, uint64_t seq, uint64_t cl_ord_id, uint64_t wall_ns,
				    struct kbx_fix_reflex_io *io);
FIX_HIDDEN void kbx_fix_reflex_warm(const struct kbx_fix_reflex *r);
FIX_HIDDEN void kbx_fix_reflex_marks(const struct kbx_fix_reflex *r, struct kbx_fix_reflex_marks *out);
/*
 * The wall clock (CLOCK_REALTIME ns) for the SendingTime of an order the next feed sends, so the reflex reads
 * no clock itself; 0 (the default, and after every feed): it reads CLOCK_REALTIME.
 */
FIX_HIDDEN void kbx_fix_reflex_set_wall_clock(struct kbx_fix_reflex *r, uint64_t realtime_ns);
/*
 * kbx_fix_reflex_feed, but framing stops after the message that made an order go out (every byte is still
 * taken): the caller transmits the order first, then frames the rest with kbx_fix_reflex_frame_rest (or the
 * next feed does). Counters and the framing are the same as one kbx_fix_reflex_feed.
 */
FIX_HIDDEN int kbx_fix_reflex_feed_to_trigger(struct kbx_fix_reflex *r, const uint8_t *bytes, uint32_t len);
FIX_HIDDEN void kbx_fix_reflex_frame_rest(struct kbx_fix_reflex *r);

#endif
