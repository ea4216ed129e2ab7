/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Layouts of ab_arbitrate.bpf.c that userspace reads or writes (packages/ab/src/arbitrator.ts).
 *
 * Maps:
 *   xsks       XSKMAP, slot → AF_XDP socket (the same two-step steering as xdp_xsk_redirect)
 *   xsk_slots  HASH, struct kbx_xsk_slot_key {ifindex, queue} → u32 slot
 *   streams    HASH, struct ab_stream_key → struct ab_stream (the arbitration window of one stream)
 *   skew       PERCPU_ARRAY, one struct ab_skew: histograms of B-late and A-late arrival times and the maxima
 *   stats      PERCPU_ARRAY, one struct ab_arbitrate_stats
 *
 * .rodata (set before load):
 *   feed_format      u32  enum ab_format (default optiq)
 *   feed_port_min    u16  UDP destination port range, host order (default 8080..8080)
 *   feed_port_max    u16
 *   line_b_ifindex   u32  frames arriving on this ifindex are line B; every other one is line A
 *   window           u32  sequence numbers a copy may lag the newest one and still be arbitrated (power of
 *                         two, AB_MIN_WINDOW..AB_MAX_WINDOW; default AB_DEFAULT_WINDOW); older ones are stale
 *   reset_distance   u64  a sequence number this far or further from the newest one, behind or ahead,
 *                         restarts the stream (session restart / sequence reset); default AB_DEFAULT_RESET_DISTANCE
 *   skew_sample_mask u64  arrival times are taken (bpf_ktime_get_ns) and skew sampled only for logical numbers
 *                         L with (L & mask) == 0; default AB_DEFAULT_SKEW_SAMPLE - 1 (one number in 8), 0 = every number
 *   arrival_stamp    u8   1: every first copy steered to a socket carries its arrival time as XDP metadata
 *                         (struct ab_arrival_meta, right before the frame in the UMEM); default 0
 */
#ifndef KBX_AB_ARBITRATE_H
#define KBX_AB_ARBITRATE_H

#include <linux/types.h>
#include "ab_format.h"
#include "kbx_histogram.h"

/*
 * Limits of ab-arbitrate, in ONE place: the XDP program, the native receive loop (kbx_ab_limits()) and the
 * CLI's usage checks all take them from here.
 *   window      AB_MIN_WINDOW..AB_MAX_WINDOW, a power of two (the receive loop's bitmap is whole u64 words:
 *               at least 64)
 *   streams     1..AB_MAX_STREAMS_LIMIT in the stream table (--max-streams; default AB_DEFAULT_STREAMS).
 *               A stream costs sizeof(struct ab_stream) (~64 KiB) of kernel memory once it is seen.
 *   reset       a restart is a number at least reset_distance from the newest: from 2 * window to 2^31
 *               (optiq's serial arithmetic cannot tell further than 2^31 behind from ahead)
 *   skew sample skew measured on one logical number in n: a power of two from 1 to AB_MAX_SKEW_SAMPLE
 */
#define AB_MIN_WINDOW 64
#define AB_MAX_WINDOW 4096
#define AB_DEFAULT_WINDOW AB_MAX_WINDOW
#define AB_DEFAULT_STREAMS 1024
#define AB_MAX_STREAMS_LIMIT 65536
#define AB_DEFAULT_RESET_DISTANCE (1ULL << 20)
#define AB_MAX_RESET_DISTANCE (1ULL << 31)
#define AB_DEFAULT_SKEW_SAMPLE 8
#define AB_MAX_SKEW_SAMPLE (1U << 20)

/* Logical numbers kept free above the old newest at a restart, for late copies of the old numbering. */
#define AB_RESTART_RESERVE(window) ((window) / 4)

/*
 * One window slot per sequence number modulo the window. `tag` = logical sequence | 1 of the copy that
 * claimed it (0 = never used: the slot index already fixes bit 0 of every number that maps to it, as the
 * window is at least 2, so no number's tag is 0, not even 2^64 - 1's), claimed with compare-and-swap so
 * exactly one copy of a sequence number wins whatever CPUs the copies arrive on. Tags of a slot only grow
 * (serial arithmetic): a copy whose slot holds a newer tag is stale. `arrival` = (tag >> 1 & 0xffff) << 48
 * | winner line << 47 | ktime ns (47 bits), written by the winner after its claim; a later copy computes
 * the skew from it when the tag bits match.
 */
struct ab_slot {
	__u64 tag;
	__u64 arrival;
};

/*
 * Logical sequence L = a u64 that only grows while the stream lives (serial arithmetic, so it may pass
 * 2^64): the raw number is unwrapped against `top` (the newest L) by serial-number arithmetic in the
 * format's width (optiq 32 bits, moldudp64 64: a MoldUDP64 number after 2^64 - 1 is 0, the next one).
 * A restart (a number reset_distance or more from the newest, either way) starts a new epoch: `offset` moves so the
 * new numbers continue at top + AB_RESTART_RESERVE + 1, and the old epoch's top and offset are kept, so
 * late copies of the old numbering (the other line restarts later) are placed in the old epoch's numbers
 * instead of restarting the stream again.
 */
struct ab_stream {
	__u64 top;         /* newest logical sequence seen */
	__u64 offset;      /* logical - raw sequence */
	__u64 resets;
	__u64 started;     /* top holds the first number (a new stream's top is set once) */
	__u64 prev_top;    /* the previous epoch's newest logical number (when resets > 0) */
	__u64 prev_offset; /* ... and its logical - raw */
	struct ab_slot slots[AB_MAX_WINDOW];
};

#define AB_ARRIVAL_TIME_BITS 47
#define AB_ARRIVAL_TIME_MASK ((1ULL << AB_ARRIVAL_TIME_BITS) - 1)
#define AB_ARRIVAL_LINE_BIT (1ULL << 47)

/* Skew histograms: kbx_histogram.h buckets of |ns| (8 per power of two), below 2^AB_ARRIVAL_TIME_BITS. */
#define AB_SKEW_SUB_BITS 3
#define AB_SKEW_BUCKETS KBX_HIST_BUCKETS(AB_SKEW_SUB_BITS, AB_ARRIVAL_TIME_BITS)

/*
 * Per line (a = line A, b = line B):
 *   rx = malformed + passed + heartbeat + end_of_session + short + won_* + dup_* + stale_* + reset
 *   won_x: first copies (redirected, or passed when no socket: won_nosocket)
 *   end_of_session: moldudp64 end-of-session packets, redirected (every copy) so the receive loop sees a
 *     session end; passed when no socket
 *   dup_x_after_y: later copies on line x of a sequence line y won (x == y: the line repeated itself)
 */
struct ab_arbitrate_stats {
	__u64 rx;
	__u64 passed;            /* not a feed packet: ARP, IPv6, other ports, fragments, non-UDP */
	__u64 malformed;
	__u64 short_payload;     /* feed port, payload too short for the format: passed */
	__u64 heartbeat;         /* moldudp64 count 0: dropped */
	__u64 end_of_session;    /* moldudp64 count 0xFFFF: redirected, not arbitrated */
	__u64 won_a;
	__u64 won_b;
	__u64 dup_a_after_a;
	__u64 dup_a_after_b;
	__u64 dup_b_after_a;
	__u64 dup_b_after_b;
	__u64 stale_a;
	__u64 stale_b;
	__u64 resets;            /* stream restarts (the copy that caused one also counts as won) */
	__u64 late_old_epoch;    /* copies of the numbering before a restart, placed in the old epoch (won,
				    dup or stale as usual) */
	__u64 new_streams;
	__u64 stream_table_full; /* first copies passed because the stream table was full */
	__u64 won_nosocket;      /* winners passed to the kernel: no AF_XDP socket for the ifindex/queue */
	__u64 skew_samples;
	__u64 skew_unknown;      /* a later copy whose first copy's arrival time was already overwritten */
	__u64 claim_retries;     /* compare-and-swap lost to another CPU and retried */
};

/* Per CPU; userspace sums the buckets and takes the largest maxima. */
struct ab_skew {
	__u64 max_b_late;              /* largest ns line B arrived after line A */
	__u64 max_a_late;              /* largest ns line A arrived after line B */
	__u64 b_late[AB_SKEW_BUCKETS]; /* ns B arrived after A (or at the same ns, when A won) */
	__u64 a_late[AB_SKEW_BUCKETS]; /* ns A arrived after B (B won) */
};

/*
 * With arrival_stamp: the XDP metadata of a first copy, the sizeof(struct ab_arrival_meta) bytes before the
 * frame's first byte (AF_XDP copies metadata into the UMEM with the frame). ktime_ns = bpf_ktime_get_ns()
 * (CLOCK_MONOTONIC) as the program claimed it; magic tells a stamp from what the headroom held before (the
 * receive loop clears it once read).
 */
#define AB_ARRIVAL_META_MAGIC 0x31766972726178bfULL
struct ab_arrival_meta {
	__u64 ktime_ns;
	__u64 magic;
};

#endif /* KBX_AB_ARBITRATE_H */
