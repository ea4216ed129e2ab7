/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ab-arbitrate's receive loop: the AF_XDP sockets of both lines (sharing one UMEM), read batch by batch
 * in C. Every delivered packet is parsed here (bpf/include/ab_format.h), counted per line and per
 * stream, and its sequence numbers are tracked per stream against the next expected one, so that a hole
 * is reported as a gap once the window has moved past it (a late copy that fills it before then is not a
 * gap). One call per batch: TypeScript reads the cumulative counters, the gap records of the call and,
 * when it asked for them, copies of the delivered frames.
 *
 * Not thread-safe; one thread drives the loop and the UMEM. Negative errno on failure.
 */
#ifndef KBX_AB_H
#define KBX_AB_H

#include <stdint.h>

#include "kbx_xsk.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KBX_AB_MAX_SOCKETS 64
#define KBX_AB_MAX_WINDOW 65536

struct kbx_ab_rx;

struct kbx_ab_rx_config {
	uint32_t format;         /* enum ab_format */
	uint32_t window;         /* power of two <= KBX_AB_MAX_WINDOW: how far past a hole before it is a gap */
	uint32_t max_streams;    /* streams tracked (default 1024); packets of further streams: untracked */
	uint32_t batch_size;     /* descriptors taken per socket per call (default 64) */
	uint64_t reset_distance; /* a number this far behind the next expected restarts the stream (1 << 20) */
};

/* Cumulative counters, read by TypeScript after each call (all u64). */
struct kbx_ab_rx_counters {
	uint64_t delivered;       /* feed packets received over AF_XDP */
	uint64_t delivered_a;
	uint64_t delivered_b;
	uint64_t bytes;
	uint64_t messages;        /* moldudp64: sum of message counts; optiq: = delivered */
	uint64_t gaps;            /* gap records emitted */
	uint64_t gap_messages;    /* sequence numbers in them */
	uint64_t late_fills;      /* holes filled by a late copy before the window passed them */
	uint64_t after_gap;       /* numbers arriving after their hole was reported (behind the window) */
	uint64_t repeated;        /* numbers delivered twice (must stay 0: the XDP program arbitrates) */
	uint64_t resets;          /* stream restarts seen */
	uint64_t not_feed;        /* frames that were not parseable feed packets */
	uint64_t untracked;       /* packets of streams beyond max_streams */
	uint64_t streams;
	uint64_t copy_truncated;  /* calls that stopped early because the copy buffer was full */
	uint64_t batches;
	uint64_t first_delivery_ns; /* CLOCK_MONOTONIC of the first call that delivered a feed packet (0: none yet) */
	uint64_t last_delivery_ns;  /* ... and of the latest such call: the busy span of the feed */
};

/* A gap: sequence numbers from..to (inclusive) of one stream missing on both lines. */
struct kbx_ab_gap {
	uint8_t key[16]; /* struct ab_stream_key */
	uint64_t from;
	uint64_t to;
	uint64_t count;
};

/*
 * A delivered frame in the copy buffer: this header, then `len` bytes of frame, then padding to 8 bytes.
 * Record size = sizeof header + ((len + 7) & ~7).
 */
struct kbx_ab_record {
	uint32_t len;
	uint32_t line; /* 0 = A, 1 = B */
	uint64_t realtime_ns;
	uint64_t sequence;
	uint8_t key[16];
};

int kbx_ab_rx_create(const struct kbx_ab_rx_config *config, struct kbx_ab_rx **out);
/*
 * Adds the UMEM's socket with this fd (it needs an RX ring) as line 0 (A) or 1 (B); all sockets of a
 * loop share one UMEM. Bindings that only hold the UMEM's handle and a socket's fd can use it directly.
 */
int kbx_ab_rx_add_socket(struct kbx_ab_rx *rx, struct kbx_umem *umem, int fd, uint32_t line);
/* Releases held frames; the sockets stay the caller's. */
void kbx_ab_rx_destroy(struct kbx_ab_rx *rx);

/*
 * One batch from every socket (poll()s them all for up to timeout_ms when none has anything).
 * gaps: room for gap_capacity records (the call stops before a batch could overflow it);
 * copy/copy_capacity: 0 for no copies, else a buffer that receives struct kbx_ab_record entries; the
 * call takes no more packets than fit whole. *copied_bytes receives the bytes used.
 * Returns the number of gap records written, or a negative errno.
 */
int kbx_ab_rx_poll(struct kbx_ab_rx *rx, struct kbx_ab_gap *gaps, uint32_t gap_capacity, uint8_t *copy,
		   uint32_t copy_capacity, uint32_t *copied_bytes, int timeout_ms);
/* At the end: every hole below each stream's highest number becomes a gap. Returns records written. */
int kbx_ab_rx_flush(struct kbx_ab_rx *rx, struct kbx_ab_gap *gaps, uint32_t gap_capacity);
/* Copies the cumulative counters. */
void kbx_ab_rx_counters(const struct kbx_ab_rx *rx, struct kbx_ab_rx_counters *out);

#ifdef __cplusplus
}
#endif

#endif /* KBX_AB_H */
