// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sequence order for ab-arbitrate's receive loop; see include/kbx_ab.h (kbx_ab_rx_enable_order) and
 * ab_order.h. Per stream, the number to deliver next and a list of held packets in ascending order (a packet
 * held after a hole is usually the newest, so insertion walks little). The slots and their frame copies are
 * allocated once: hold_max of them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ab_order.h"
#include "kbx_histogram.h"

int ab_order_init(struct ab_order *o, const struct kbx_ab_order_config *config, uint32_t max_streams, uint64_t reset_distance,
		  struct kbx_ab_rx_counters *counters)
{
	memset(o, 0, sizeof(*o));
	o->config = *config;
	if (!o->config.hold_max)
		o->config.hold_max = KBX_AB_DEFAULT_HOLD_MAX;
	if (o->config.hold_max > (1u << 24))
		return -EINVAL;
	o->reset_distance = reset_distance;
	o->counters = counters;
	o->max_streams = max_streams;
	o->table_size = 1;
	while (o->table_size < 2 * max_streams)
		o->table_size <<= 1;
	o->slots = calloc(o->config.hold_max, sizeof(*o->slots));
	o->frames = malloc((size_t)o->config.hold_max * KBX_AB_HOLD_FRAME_MAX);
	o->streams = calloc(o->table_size, sizeof(*o->streams));
	if (!o->slots || !o->frames || !o->streams) {
		ab_order_free(o);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->config.hold_max; i++)
		o->slots[i].next = i + 1 < o->config.hold_max ? (int32_t)(i + 1) : -1;
	o->free_head = 0;
	o->stats.min_ns = UINT64_MAX;
	return 0;
}

void ab_order_free(struct ab_order *o)
{
	free(o->slots);
	free(o->frames);
	free(o->streams);
	memset(o, 0, sizeof(*o));
}

static uint64_t key_hash(const struct ab_stream_key *k)
{
	uint64_t h = (k->id ^ ((uint64_t)k->id2 << 32 | k->format)) * 0x9E3779B97F4A7C15ULL;
	return h ^ (h >> 29);
}

static struct ab_order_stream *stream_of(struct ab_order *o, const struct ab_message *m)
{
	uint32_t mask = o->table_size - 1;
	for (uint32_t i = (uint32_t)key_hash(&m->key) & mask, probes = 0; probes < o->table_size; i = (i + 1) & mask, probes++) {
		struct ab_order_stream *s = &o->streams[i];
		if (s->used && memcmp(&s->key, &m->key, sizeof(m->key)) == 0)
			return s;
		if (!s->used) {
			if (o->live >= o->max_streams)
				return NULL;
			o->live++;
			*s = (struct ab_order_stream){ .key = m->key, .used = true, .next = m->sequence, .head = -1 };
			return s;
		}
	}
	return NULL;
}

/* seq - next in the format's width, signed. */
static int64_t distance(const struct ab_message *m, uint64_t seq, uint64_t next)
{
	return m->seq_bits == 32 ? (int64_t)(int32_t)(uint32_t)(seq - next) : (int64_t)(seq - next);
}

static uint64_t end_of(const struct ab_message *m)
{
	uint64_t end = m->sequence + (m->count ? m->count : 1);
	return m->seq_bits == 32 ? (uint32_t)end : end;
}

static void record_hold(struct ab_order *o, uint64_t ns)
{
	ab_latency_record(&o->stats, ns);
}

/* Held packets the stream's next number reached go out, in order, while there is room. */
static void release(struct ab_order *o, struct ab_order_stream *s, uint64_t now_ns, ab_deliver_fn deliver, void *ctx)
{
	while (s->head >= 0) {
		struct ab_held *h = &o->slots[s->head];
		if (distance(&h->m, h->m.sequence, s->next) > 0)
			return;
		bool late = distance(&h->m, end_of(&h->m), s->next) <= 0;
		if (!late && !deliver(ctx, o->frames + (size_t)s->head * KBX_AB_HOLD_FRAME_MAX, h->len, h->line, &h->m, h->realtime_ns))
			return; /* no room: the next call */
		if (late) {
			o->counters->order_late++;
		} else {
			record_hold(o, now_ns - h->held_ns);
			s->next = end_of(&h->m);
		}
		int32_t slot = s->head;
		s->head = h->next;
		h->next = o->free_head;
		o->free_head = slot;
		o->counters->held_now--;
	}
}

/* The hole before the stream's first held packet is given up on. */
static void skip_hole(struct ab_order *o, struct ab_order_stream *s, uint64_t now_ns, ab_deliver_fn deliver, void *ctx)
{
	struct ab_held *h = &o->slots[s->head];
	int64_t d = distance(&h->m, h->m.sequence, s->next);
	if (d > 0) {
		o->counters->holes_skipped++;
		o->counters->skipped_messages += (uint64_t)d;
		s->next = h->m.sequence;
	}
	release(o, s, now_ns, deliver, ctx);
}

static bool hold(struct ab_order *o, struct ab_order_stream *s, const uint8_t *frame, uint32_t len, uint32_t line,
		 const struct ab_message *m, uint64_t realtime_ns, uint64_t now_ns)
{
	if (o->free_head < 0 || len > KBX_AB_HOLD_FRAME_MAX)
		return false;
	int32_t slot = o->free_head;
	struct ab_held *h = &o->slots[slot];
	o->free_head = h->next;
	*h = (struct ab_held){ .m = *m, .line = line, .len = len, .realtime_ns = realtime_ns, .held_ns = now_ns };
	memcpy(o->frames + (size_t)slot * KBX_AB_HOLD_FRAME_MAX, frame, len);
	int32_t *at = &s->head;
	while (*at >= 0 && distance(m, o->slots[*at].m.sequence, m->sequence) < 0)
		at = &o->slots[*at].next;
	h->next = *at;
	*at = slot;
	o->counters->held++;
	o->counters->held_now++;
	return true;
}

void ab_order_offer(struct ab_order *o, uint64_t now_ns, const uint8_t *frame, uint32_t len, uint32_t line,
		    const struct ab_message *m, uint64_t realtime_ns, ab_deliver_fn deliver, void *ctx)
{
	struct ab_order_stream *s = stream_of(o, m);
	if (!s) {
		o->counters->order_unordered++;
		deliver(ctx, frame, len, line, m, realtime_ns);
		return;
	}
	int64_t d = distance(m, m->sequence, s->next);
	uint64_t magnitude = d < 0 ? (uint64_t)-d : (uint64_t)d;
	if (magnitude >= o->reset_distance) { /* a restart: what the old numbering held goes out, then the new one */
		while (s->head >= 0) {
			int32_t before = s->head;
			skip_hole(o, s, now_ns, deliver, ctx);
			if (s->head == before)
				break; /* no room: held ones stay; the new numbering waits behind them */
		}
		if (s->head < 0)
			s->next = m->sequence;
		d = distance(m, m->sequence, s->next);
	}
	if (distance(m, end_of(m), s->next) <= 0) {
		o->counters->order_late++;
		return;
	}
	if (d <= 0 && s->head < 0 && deliver(ctx, frame, len, line, m, realtime_ns)) {
		s->next = end_of(m);
		return;
	}
	if (hold(o, s, frame, len, line, m, realtime_ns, now_ns)) {
		release(o, s, now_ns, deliver, ctx);
		return;
	}
	/* The hold is full: this stream's hole is given up on now. */
	o->counters->hold_overflow++;
	if (s->head >= 0)
		skip_hole(o, s, now_ns, deliver, ctx);
	d = distance(m, m->sequence, s->next);
	if (d > 0 && s->head < 0) {
		o->counters->holes_skipped++;
		o->counters->skipped_messages += (uint64_t)d;
		s->next = m->sequence;
	}
	if (distance(m, m->sequence, s->next) <= 0 && s->head < 0 && deliver(ctx, frame, len, line, m, realtime_ns))
		s->next = end_of(m);
	else if (!hold(o, s, frame, len, line, m, realtime_ns, now_ns))
		o->counters->order_late++; /* nowhere to go: counted as not delivered */
}

void ab_order_step(struct ab_order *o, uint64_t now_ns, ab_deliver_fn deliver, void *ctx)
{
	if (!o->counters->held_now || (int64_t)(now_ns - o->next_scan_ns) < 0)
		return;
	o->next_scan_ns = now_ns + o->config.hold_ns / 8;
	for (uint32_t i = 0; i < o->table_size && o->counters->held_now; i++) {
		struct ab_order_stream *s = &o->streams[i];
		if (!s->used || s->head < 0)
			continue;
		release(o, s, now_ns, deliver, ctx); /* what waited for room */
		while (s->head >= 0 && now_ns - o->slots[s->head].held_ns >= o->config.hold_ns) {
			int32_t before = s->head;
			skip_hole(o, s, now_ns, deliver, ctx);
			if (s->head == before)
				break; /* no room */
		}
	}
}
