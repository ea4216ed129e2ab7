// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A/B line arbitration of market-data feeds: the first copy of every (stream, sequence number) goes to
 * an AF_XDP socket on the interface and queue it arrived on; every later copy is dropped here. Feed
 * packets = IPv4 UDP to the configured port range, not fragmented; anything else is XDP_PASS.
 * Layouts, maps, .rodata and counters: include/ab_arbitrate.h; formats: include/ab_format.h.
 *
 * The claim of a sequence number is one compare-and-swap on its window slot (tag = logical sequence + 1),
 * so copies arriving at the same moment on two CPUs cannot both win, and no lock is taken.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kbx_parse.h"
#include "kbx_stats.h"
#include "kbx_xsk_steer.h"
#include "ab_format.h"
#include "ab_arbitrate.h"

const volatile __u32 feed_format = AB_FORMAT_OPTIQ;
const volatile __u16 feed_port_min = 8080;
const volatile __u16 feed_port_max = 8080;
const volatile __u32 line_b_ifindex = 0;
const volatile __u32 window = AB_MAX_WINDOW;
const volatile __u64 reset_distance = 1ULL << 20;
/* Arrival times (bpf_ktime_get_ns, ~30 ns in a VM) are taken only for logical numbers with
 * (L & skew_sample_mask) == 0: both copies of a number agree on whether it is sampled. */
const volatile __u64 skew_sample_mask = 7;
/* Benchmarks only (bench/ab.ts): every packet gets the next number of a per-CPU counter instead of its
 * own, so BPF_PROG_TEST_RUN's repeat of one frame measures the first-copy path. */
const volatile __u8 bench_fresh_sequence = 0;

#define CLAIM_ATTEMPTS 8

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, AB_MAX_STREAMS);
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

/* Index of the highest set bit of v (v > 0). */
static __always_inline __u32 msb64(__u64 v)
{
	__u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

/* Log-linear bucket of a magnitude in ns: exact below 8, then 8 sub-buckets per power of two. */
static __always_inline __u32 skew_bucket(__u64 ns)
{
	if (ns < (1u << AB_SKEW_SUB_BITS))
		return (__u32)ns;
	__u32 m = msb64(ns);
	__u32 sub = (ns >> (m - AB_SKEW_SUB_BITS)) & ((1u << AB_SKEW_SUB_BITS) - 1);
	__u32 idx = ((m - AB_SKEW_SUB_BITS + 1) << AB_SKEW_SUB_BITS) + sub;
	return idx < AB_SKEW_HALF ? idx : AB_SKEW_HALF - 1;
}

static __always_inline void record_skew(struct ab_arbitrate_stats *s, __u64 arrival, __u64 tag, __u64 now)
{
	if (arrival == 0 || (arrival >> 48) != (tag & 0xffff)) {
		s->skew_unknown++;
		return;
	}
	__u64 first = arrival & AB_ARRIVAL_TIME_MASK;
	__u64 later = now & AB_ARRIVAL_TIME_MASK;
	__u64 ns = (later - first) & AB_ARRIVAL_TIME_MASK;
	__u32 idx = skew_bucket(ns);
	__u32 zero = 0;
	struct ab_skew *h = bpf_map_lookup_elem(&skew, &zero);
	if (!h)
		return;
	if (arrival & AB_ARRIVAL_LINE_BIT) { /* B won: A arrived later, a negative skew */
		idx += AB_SKEW_HALF;
		if (ns > h->max_a_late)
			h->max_a_late = ns;
	} else if (ns > h->max_b_late) {
		h->max_b_late = ns;
	}
	/* idx < AB_SKEW_BUCKETS already; the barrier keeps clang from dropping the mask the verifier needs. */
	asm volatile("" : "+r"(idx));
	h->buckets[idx & (AB_SKEW_BUCKETS - 1)]++;
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

/* Signed distance of the raw sequence from the stream's newest, as a logical sequence. */
static __always_inline __u64 logical_of(const struct ab_message *m, __u64 top, __u64 offset)
{
	if (m->seq_bits == 32) {
		__u32 raw_top = (__u32)(top - offset);
		__s32 d = (__s32)((__u32)m->sequence - raw_top);
		return top + (__s64)d;
	}
	return m->sequence + offset;
}

enum claim { CLAIM_WON, CLAIM_DUP, CLAIM_STALE, CLAIM_RESET_WON };

static __always_inline enum claim claim(struct ab_arbitrate_stats *s, struct ab_stream *st,
					 const struct ab_message *m, __u32 line, __u32 *dup_winner)
{
	__u64 top = st->top;
	__u64 offset = st->offset;
	__u64 l = logical_of(m, top, offset);
	int reset = 0;

	/* top 0: a new stream (or one whose newest number really is 0); its first number is taken as is,
	 * without unwrapping it against 0. */
	if (top == 0) {
		l = m->sequence + offset;
		top = __sync_val_compare_and_swap(&st->top, 0, l);
		if (top == 0)
			top = l;
		else
			l = logical_of(m, top, offset);
	}
	__s64 d = (__s64)(l - top);

	if (d <= -(__s64)reset_distance) {
		/* A restart: move the numbers above everything the window can hold. */
		__u64 new_offset = top + 2 * (__u64)window - m->sequence;
		if (__sync_val_compare_and_swap(&st->offset, offset, new_offset) == offset) {
			__sync_fetch_and_add(&st->resets, 1);
			s->resets++;
			reset = 1;
		}
		offset = st->offset;
		top = st->top;
		l = logical_of(m, top, offset);
		if (m->seq_bits == 32) /* unwrapping against the old top cannot reach the new numbers */
			l = (__u32)m->sequence + offset;
		d = (__s64)(l - top);
	}
	if (d <= -(__s64)window)
		return CLAIM_STALE;

	/* Advance top (a max with compare-and-swap). */
	for (int i = 0; i < CLAIM_ATTEMPTS && (__s64)(l - top) > 0; i++) {
		__u64 seen = __sync_val_compare_and_swap(&st->top, top, l);
		if (seen == top)
			break;
		top = seen;
	}

	__u64 tag = l + 1;
	struct ab_slot *slot = &st->slots[l & (AB_MAX_WINDOW - 1) & (window - 1)];
	__u64 old = slot->tag;
	for (int i = 0; i < CLAIM_ATTEMPTS; i++) {
		if (old == tag) {
			__u64 arrival = slot->arrival;
			*dup_winner = (arrival >> 48) == (tag & 0xffff) && (arrival & AB_ARRIVAL_LINE_BIT) ? 1 : 0;
			if ((l & skew_sample_mask) == 0)
				record_skew(s, arrival, tag, bpf_ktime_get_ns());
			return CLAIM_DUP;
		}
		if ((__s64)(old - tag) > 0 && old != 0)
			return CLAIM_STALE; /* the slot already holds a newer number: this one left the window */
		__u64 seen = __sync_val_compare_and_swap(&slot->tag, old, tag);
		if (seen == old) {
			__u64 now = (l & skew_sample_mask) == 0 ? bpf_ktime_get_ns() : 0;
			slot->arrival = ((tag & 0xffff) << 48) | (line ? AB_ARRIVAL_LINE_BIT : 0) | (now & AB_ARRIVAL_TIME_MASK);
			return reset ? CLAIM_RESET_WON : CLAIM_WON;
		}
		s->claim_retries++;
		old = seen;
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
	if (dport < feed_port_min || dport > feed_port_max) {
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
			return XDP_PASS;
		}
		parsed = ab_parse_mold(payload, &m);
	} else {
		if (pkt.payload_len < AB_OPTIQ_SIZE || (void *)(payload + AB_OPTIQ_SIZE) > data_end) {
			s->short_payload++;
			return XDP_PASS;
		}
		ab_parse_optiq(payload, &m);
		parsed = AB_PARSE_DATA;
	}
	if (parsed == AB_PARSE_HEARTBEAT) {
		s->heartbeat++;
		return XDP_DROP;
	}
	if (parsed == AB_PARSE_END) {
		s->end_of_session++;
		return XDP_DROP;
	}

	if (bench_fresh_sequence)
		m.sequence = s->rx;
	__u32 line = ctx->ingress_ifindex == line_b_ifindex ? 1 : 0;
	struct ab_stream *st = stream_for(s, &m);
	if (!st)
		return XDP_PASS;
	__u32 dup_winner = 0;
	enum claim c = claim(s, st, &m, line, &dup_winner);
	if (c == CLAIM_STALE) {
		if (line)
			s->stale_b++;
		else
			s->stale_a++;
		return XDP_DROP;
	}
	if (c == CLAIM_DUP) {
		if (line)
			dup_winner ? s->dup_b_after_b++ : s->dup_b_after_a++;
		else
			dup_winner ? s->dup_a_after_b++ : s->dup_a_after_a++;
		return XDP_DROP;
	}
	if (line)
		s->won_b++;
	else
		s->won_a++;

	if (kbx_xsk_steer(ctx) != KBX_XSK_REDIRECTED) {
		s->won_nosocket++;
		return XDP_PASS;
	}
	return XDP_REDIRECT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
