// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A/B line arbitration of market-data feeds: the first copy of every (stream, sequence number) goes to
 * an AF_XDP socket on the interface and queue it arrived on; every later copy is dropped here. Feed
 * packets = IPv4 UDP to the configured port range, not fragmented — or, with match_groups, to one of the
 * channels' (interface, group, port[, source]) in the groups map (include/ab_groups.h); anything else is
 * XDP_PASS.
 * Layouts, maps, .rodata and counters: include/ab_arbitrate.h; formats: include/ab_format.h.
 *
 * The claim of a sequence number is one compare-and-swap on its window slot (tag = logical sequence | 1),
 * so copies arriving at the same moment on two CPUs cannot both win, and no lock is taken.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kbx_parse.h"
#include "kbx_stats.h"
#include "kbx_xsk_steer.h"
#include "ab_format.h"
#include "ab_arbitrate.h"
#include "ab_groups.h"

const volatile __u32 feed_format = AB_FORMAT_OPTIQ;
const volatile __u16 feed_port_min = 8080;
const volatile __u16 feed_port_max = 8080;
const volatile __u32 line_b_ifindex = 0;
const volatile __u32 window = AB_DEFAULT_WINDOW;
const volatile __u64 reset_distance = AB_DEFAULT_RESET_DISTANCE;
/* Arrival times (bpf_ktime_get_ns, ~30 ns in a VM) are taken only for logical numbers with
 * (L & skew_sample_mask) == 0: both copies of a number agree on whether it is sampled. */
const volatile __u64 skew_sample_mask = AB_DEFAULT_SKEW_SAMPLE - 1;
/* Benchmarks only (bench/ab.ts): every packet gets the next number of a per-CPU counter instead of its
 * own, so BPF_PROG_TEST_RUN's repeat of one frame measures the first-copy path. */
const volatile __u8 bench_fresh_sequence = 0;
/* 1: first copies carry their arrival time to the receive loop (struct ab_arrival_meta). */
const volatile __u8 arrival_stamp = 0;

#define CLAIM_ATTEMPTS 8

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, AB_DEFAULT_STREAMS); /* set before load: --max-streams */
	__type(key, struct ab_stream_key);
	__type(value, struct ab_stream);
} streams SEC(".maps");

/* A zeroed stream to insert from (a stream is far larger than the BPF stack); never written. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ab_stream);
} blank_stream SEC(".maps");

/* One per-CPU value: the later copy finds histogram and maxima with one lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ab_skew);
} skew SEC(".maps");

KBX_STATS_MAP(struct ab_arbitrate_stats);

static __always_inline void record_skew(struct ab_arbitrate_stats *s, __u64 arrival, __u64 tag_bits, __u64 now)
{
	if (arrival == 0 || (arrival >> 48) != tag_bits) {
		s->skew_unknown++;
		return;
	}
	__u64 first = arrival & AB_ARRIVAL_TIME_MASK;
	__u64 later = now & AB_ARRIVAL_TIME_MASK;
	__u64 ns = (later - first) & AB_ARRIVAL_TIME_MASK;
	__u64 idx = kbx_hist_index(ns, AB_SKEW_SUB_BITS); /* u64: no zero-extended copy for clang to index with */
	__u32 zero = 0;
	struct ab_skew *h = bpf_map_lookup_elem(&skew, &zero);
	if (!h)
		return;
	__u64 *buckets = h->b_late, *max = &h->max_b_late;
	if (arrival & AB_ARRIVAL_LINE_BIT) { /* B won: A arrived later, a negative skew */
		buckets = h->a_late;
		max = &h->max_a_late;
	}
	/* ns < 2^AB_ARRIVAL_TIME_BITS, so idx < AB_SKEW_BUCKETS; the barrier keeps clang from dropping the
	 * check the verifier needs. */
	asm volatile("" : "+r"(idx));
	if (idx >= AB_SKEW_BUCKETS)
		return;
	buckets[idx]++;
	if (ns > *max)
		*max = ns;
	s->skew_samples++;
}

static __always_inline struct ab_stream *stream_for(struct ab_arbitrate_stats *s, const struct ab_message *m)
{
	struct ab_stream *st = bpf_map_lookup_elem(&streams, &m->key);
	if (st)
		return st;
	__u32 zero = 0;
	struct ab_stream *blank = bpf_map_lookup_elem(&blank_stream, &zero);
	if (!blank)
		return NULL;
	/* A racing insert from another CPU loses (BPF_NOEXIST); both use the element in the map. */
	if (bpf_map_update_elem(&streams, &m->key, blank, BPF_NOEXIST) == 0)
		s->new_streams++;
	st = bpf_map_lookup_elem(&streams, &m->key);
	if (!st)
		s->stream_table_full++;
	return st;
}

/* The arrival time as XDP metadata before the frame; a frame without room for it goes unstamped. */
static __always_inline void stamp_arrival(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct ab_arrival_meta)) < 0)
		return;
	struct ab_arrival_meta *meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > (void *)(long)ctx->data)
		return;
	meta->ktime_ns = bpf_ktime_get_ns();
	meta->magic = AB_ARRIVAL_META_MAGIC;
}

enum claim { CLAIM_WON, CLAIM_DUP, CLAIM_STALE, CLAIM_RESET_WON };

/*
 * The logical number of m: in the current epoch, or — when it lies outside the window there, the stream
 * has restarted and the number is nearer the previous epoch's newest — in the previous one (*old = 1, or
 * 2 when it comes too late to be placed). A restart starts a new epoch when the number is reset_distance
 * or more away from both.
 */
static __always_inline __u64 logical_number(struct ab_arbitrate_stats *s, struct ab_stream *st,
					    const struct ab_message *m, int *old, int *reset)
{
	__u64 top = st->top;
	__u64 offset = st->offset;
	__s64 d = ab_serial_distance(m, top - offset);

	/* A number nearer the previous numbering than the current one is an old copy, never a restart: while
	 * the new epoch is younger than a window past its reserve it is placed there; later it is stale (*old
	 * = 2), as every old copy would be by then. */
	if ((d <= -(__s64)window || d > (__s64)window) && st->resets) {
		__u64 prev_top = st->prev_top;
		__s64 dp = ab_serial_distance(m, prev_top - st->prev_offset);
		if (dp > -(__s64)reset_distance && dp < (__s64)reset_distance &&
		    ab_distance_magnitude(dp) < ab_distance_magnitude(d)) {
			s->late_old_epoch++;
			*old = (__s64)(top - prev_top) <= (__s64)(AB_RESTART_RESERVE((__u64)window) + window) ? 1 : 2;
			return prev_top + dp;
		}
	}
	if (d <= -(__s64)reset_distance || d >= (__s64)reset_distance) {
		/* A restart (a jump of reset_distance or more either way: a stream cannot go round the circle
		 * of its numbers without one). The old epoch is kept for late copies; the new numbers continue
		 * above a reserve. */
		st->prev_top = top;
		st->prev_offset = offset;
		__u64 new_offset = top + AB_RESTART_RESERVE((__u64)window) + 1 - m->sequence;
		if (__sync_val_compare_and_swap(&st->offset, offset, new_offset) == offset) {
			__sync_fetch_and_add(&st->resets, 1);
			s->resets++;
			*reset = 1;
		}
		top = st->top;
		offset = st->offset;
		d = ab_serial_distance(m, top - offset);
	}
	return top + d;
}

static __always_inline enum claim claim(struct ab_arbitrate_stats *s, struct ab_stream *st,
					 const struct ab_message *m, __u32 line, __u32 *dup_winner)
{
	/* The first number of a new stream is taken as is (nothing to unwrap it against). */
	if (!st->started) {
		__sync_val_compare_and_swap(&st->top, 0, m->sequence);
		st->started = 1;
	}
	int old = 0, reset = 0;
	__u64 l = logical_number(s, st, m, &old, &reset);
	__u64 top = st->top;
	if (old == 2 || (old && (__s64)(l - st->prev_top) > (__s64)AB_RESTART_RESERVE((__u64)window)))
		return CLAIM_STALE; /* an old number too late, or beyond the reserve: it cannot be placed */
	if ((__s64)(l - top) <= -(__s64)window)
		return CLAIM_STALE;

	/* Advance top (a max with compare-and-swap); old-epoch numbers are always below it. */
	for (int i = 0; i < CLAIM_ATTEMPTS && !old && (__s64)(l - top) > 0; i++) {
		__u64 seen = __sync_val_compare_and_swap(&st->top, top, l);
		if (seen == top)
			break;
		top = seen;
	}

	__u64 tag = l | 1;
	__u64 tag_bits = (tag >> 1) & 0xffff;
	struct ab_slot *slot = &st->slots[l & (AB_MAX_WINDOW - 1) & (window - 1)];
	__u64 seen_tag = slot->tag;
	for (int i = 0; i < CLAIM_ATTEMPTS; i++) {
		if (seen_tag == tag) {
			__u64 arrival = slot->arrival;
			*dup_winner = (arrival >> 48) == tag_bits && (arrival & AB_ARRIVAL_LINE_BIT) ? 1 : 0;
			if ((l & skew_sample_mask) == 0)
				record_skew(s, arrival, tag_bits, bpf_ktime_get_ns());
			return CLAIM_DUP;
		}
		if ((__s64)(seen_tag - tag) > 0 && seen_tag != 0)
			return CLAIM_STALE; /* the slot already holds a newer number: this one left the window */
		__u64 prev = __sync_val_compare_and_swap(&slot->tag, seen_tag, tag);
		if (prev == seen_tag) {
			__u64 now = (l & skew_sample_mask) == 0 ? bpf_ktime_get_ns() : 0;
			slot->arrival = (tag_bits << 48) | (line ? AB_ARRIVAL_LINE_BIT : 0) | (now & AB_ARRIVAL_TIME_MASK);
			return reset ? CLAIM_RESET_WON : CLAIM_WON;
		}
		s->claim_retries++;
		seen_tag = prev;
	}
	return CLAIM_DUP; /* never reached in practice: CLAIM_ATTEMPTS CPUs raced for one slot */
}

SEC("xdp")
int kbx_ab_arbitrate(struct xdp_md *ctx)
{
	struct ab_arbitrate_stats *s = kbx_stats_this_cpu(&stats);
	if (!s)
		return XDP_PASS;
	s->rx++;

	struct kbx_packet pkt;
	enum kbx_packet_class class = kbx_parse_packet(ctx, &pkt);
	if (class == KBX_PACKET_MALFORMED) {
		s->malformed++;
		return XDP_PASS;
	}
	if (class != KBX_PACKET_UDP || pkt.fragment != KBX_FRAGMENT_NONE || !pkt.udp) {
		s->passed++;
		return XDP_PASS;
	}
	__u16 dport = bpf_ntohs(pkt.udp->dest);
	__u32 line = ctx->ingress_ifindex == line_b_ifindex ? 1 : 0;
	struct ab_channel_stats *cs = NULL;
	if (match_groups) {
		const struct ab_group *g = ab_group_of(ctx->ingress_ifindex, pkt.ip4, dport);
		if (!g) {
			s->passed++;
			return XDP_PASS;
		}
		line = g->line ? 1 : 0;
		cs = ab_channel_stats_of(g);
		AB_CHANNEL_COUNT(cs, rx);
	} else if (dport < feed_port_min || dport > feed_port_max) {
		s->passed++;
		return XDP_PASS;
	}

	void *data_end = (void *)(long)ctx->data_end;
	const __u8 *payload = pkt.payload;
	struct ab_message m;
	int parsed;
	if (feed_format == AB_FORMAT_MOLDUDP64) {
		if (pkt.payload_len < AB_MOLD_HEADER_SIZE || (void *)(payload + AB_MOLD_HEADER_SIZE) > data_end) {
			s->short_payload++;
			AB_CHANNEL_COUNT(cs, short_payload);
			return XDP_PASS;
		}
		parsed = ab_parse_mold(payload, &m);
	} else {
		if (pkt.payload_len < AB_OPTIQ_SIZE || (void *)(payload + AB_OPTIQ_SIZE) > data_end) {
			s->short_payload++;
			AB_CHANNEL_COUNT(cs, short_payload);
			return XDP_PASS;
		}
		ab_parse_optiq(payload, &m);
		parsed = AB_PARSE_DATA;
	}
	if (parsed == AB_PARSE_HEARTBEAT) {
		s->heartbeat++;
		AB_CHANNEL_COUNT(cs, heartbeat);
		return XDP_DROP;
	}
	if (parsed == AB_PARSE_END) {
		/* Every copy goes to the receive loop: it closes the session there (the tail's holes become
		 * gaps, a following new session is a restart). Two packets per session: not arbitrated. */
		s->end_of_session++;
		AB_CHANNEL_COUNT(cs, end_of_session);
		return kbx_xsk_steer(ctx) == KBX_XSK_REDIRECTED ? XDP_REDIRECT : XDP_PASS;
	}

	if (bench_fresh_sequence)
		m.sequence = s->rx;
	struct ab_stream *st = stream_for(s, &m);
	if (!st) {
		AB_CHANNEL_COUNT(cs, stream_table_full);
		return XDP_PASS;
	}
	__u32 dup_winner = 0;
	enum claim c = claim(s, st, &m, line, &dup_winner);
	if (c == CLAIM_STALE) {
		if (line) {
			s->stale_b++;
			AB_CHANNEL_COUNT(cs, stale_b);
		} else {
			s->stale_a++;
			AB_CHANNEL_COUNT(cs, stale_a);
		}
		return XDP_DROP;
	}
	if (c == CLAIM_DUP) {
		if (line) {
			dup_winner ? s->dup_b_after_b++ : s->dup_b_after_a++;
			AB_CHANNEL_COUNT(cs, dup_b);
		} else {
			dup_winner ? s->dup_a_after_b++ : s->dup_a_after_a++;
			AB_CHANNEL_COUNT(cs, dup_a);
		}
		return XDP_DROP;
	}
	if (line) {
		s->won_b++;
		AB_CHANNEL_COUNT(cs, won_b);
	} else {
		s->won_a++;
		AB_CHANNEL_COUNT(cs, won_a);
	}

	if (arrival_stamp)
		stamp_arrival(ctx);
	if (kbx_xsk_steer(ctx) != KBX_XSK_REDIRECTED) {
		s->won_nosocket++;
		AB_CHANNEL_COUNT(cs, won_nosocket);
		return XDP_PASS;
	}
	return XDP_REDIRECT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
