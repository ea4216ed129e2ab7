/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sequence order of ab-arbitrate's receive loop (ab_order.c), internal to ab_rx.c; see include/kbx_ab.h
 * (kbx_ab_rx_enable_order) for the rules. It sits before the point where a frame is delivered.
 */
#ifndef KBX_AB_ORDER_H
#define KBX_AB_ORDER_H

#include <stdbool.h>
#include <stdint.h>

#include "ab_format.h"
#include "kbx_ab.h"
#include "kbx_histogram.h"

/* Delivers a frame; false when there is no room now (the frame then waits in the hold). */
/* One value (ns) into a histogram of the hold's layout (held times, XDP arrival to the RX ring). */
static inline void ab_latency_record(struct kbx_ab_hold_stats *h, uint64_t ns)
{
	uint64_t v = ns < (1ULL << KBX_AB_HOLD_VALUE_BITS) ? ns : (1ULL << KBX_AB_HOLD_VALUE_BITS) - 1;
	h->buckets[kbx_hist_index(v, KBX_AB_HOLD_SUB_BITS)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

typedef bool (*ab_deliver_fn)(void *ctx, const uint8_t *frame, uint32_t len, uint32_t line, const struct ab_message *m,
			      uint64_t realtime_ns);

struct ab_held {
	struct ab_message m;
	uint32_t line;
	uint32_t len;
	uint64_t realtime_ns;
	uint64_t held_ns;
	int32_t next; /* the stream's next held packet, or -1 (a free slot: the next free one) */
};

struct ab_order_stream {
	struct ab_stream_key key;
	bool used;
	uint64_t next; /* the number to deliver next */
	int32_t head;  /* lowest held packet, or -1 */
};

struct ab_order {
	struct kbx_ab_order_config config;
	uint64_t reset_distance;
	struct ab_held *slots;
	uint8_t *frames; /* KBX_AB_HOLD_FRAME_MAX per slot */
	int32_t free_head;
	struct ab_order_stream *streams;
	uint32_t table_size;
	uint32_t max_streams;
	uint32_t live;
	uint64_t next_scan_ns;
	struct kbx_ab_hold_stats stats;
	struct kbx_ab_rx_counters *counters;
};

int ab_order_init(struct ab_order *o, const struct kbx_ab_order_config *config, uint32_t max_streams, uint64_t reset_distance,
		  struct kbx_ab_rx_counters *counters);
void ab_order_free(struct ab_order *o);
/* A frame that would be delivered: delivered now, held, or dropped as late. */
void ab_order_offer(struct ab_order *o, uint64_t now_ns, const uint8_t *frame, uint32_t len, uint32_t line,
		    const struct ab_message *m, uint64_t realtime_ns, ab_deliver_fn deliver, void *ctx);
/* Holes waited on for hold_ns are given up on; what waits behind them (and what waited for room) goes out. */
void ab_order_step(struct ab_order *o, uint64_t now_ns, ab_deliver_fn deliver, void *ctx);

#endif /* KBX_AB_ORDER_H */
