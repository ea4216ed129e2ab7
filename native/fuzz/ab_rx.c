// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target `ab-rx`: the sequence tracking of ab-arbitrate's receive loop (src/ab_track.c, as
 * src/ab_rx.c drives it: ab_track_message per delivered packet, ab_track_flush at the end) against an
 * independent model. The input picks the window (64..1024), the width
 * (optiq u32 or MoldUDP64 u64), the first number (often at an edge: 0, just below 2^32, just below 2^64,
 * 2^63) and then packets as signed steps from the newest number, with message counts. Like the XDP
 * program in front of it, the harness never delivers a number twice. Model, in numbers relative to the
 * first one (no wrap): a number below the window's base is `after_gap`; a new newest number H moves the
 * base to H - window + 1 and every number left behind unseen is a gap; at the end every unseen number
 * up to H is a gap. Checked after every packet and after the flush: `repeated` == 0, gap_messages and
 * after_gap equal the model's, and the gap records name exactly the model's gaps, each once.
 * Resets are not exercised (steps stay far inside reset_distance).
 * Time-based expiry (ab_track_expire, as ab_rx.c drives it with a gap wait): some steps are ticks instead
 * of packets, a quarter of the wait apart, each an expire call. Model: at each tick, the holes below the
 * newest number as of a tick at least the wait ago are gaps (the base moves up to it); then the tick's
 * newest number is noted.
 */
#include <stdio.h>

#include "../src/ab_track.c"

struct rx {
	struct ab_tracker tracker;
	struct kbx_ab_rx_counters counters;
};

/* Numbers seen (relative to the first one), open addressing. */
#define SET_CAP (1u << 18)
static int64_t seen_n[SET_CAP];
static uint8_t seen_used[SET_CAP];
static uint32_t seen_slots[SET_CAP], seen_count;

static uint32_t probe(int64_t n)
{
	uint32_t i = (uint32_t)(((uint64_t)n * 0x9E3779B97F4A7C15ull) >> 46) & (SET_CAP - 1);
	while (seen_used[i] && seen_n[i] != n)
		i = (i + 1) & (SET_CAP - 1);
	return i;
}

static int is_seen(int64_t n) { return seen_used[probe(n)]; }

static int mark_seen(int64_t n)
{
	uint32_t i = probe(n);
	if (seen_used[i])
		return 0;
	if (seen_count >= SET_CAP / 2)
		return -1;
	seen_used[i] = 1;
	seen_n[i] = n;
	seen_slots[seen_count++] = i;
	return 0;
}

/* The model's gaps: ascending, merged (its base only moves up). */
#define GAPS_CAP 65536
static int64_t gap_from[GAPS_CAP], gap_to[GAPS_CAP];
static uint32_t gap_count;

/* The model's notes of the newest number at each tick (relative numbers). */
#define TICKS_CAP 65536
static int64_t tick_highest[TICKS_CAP];
static uint32_t tick_at[TICKS_CAP], tick_count;
#define EXPIRE_TICKS 4 /* the wait, in ticks */

static void clear_model(void)
{
	tick_count = 0;
	for (uint32_t k = 0; k < seen_count; k++)
		seen_used[seen_slots[k]] = 0;
	seen_count = 0;
	gap_count = 0;
}

struct model {
	uint64_t first;
	int bits; /* 32 or 64 */
	int64_t base, highest;
	int started;
	uint64_t gap_messages, after_gap, late_fills;
	int64_t reported_to; /* gap records arrive ascending: the last number reported */
	uint64_t reported;   /* numbers in gap records */
};

static void broken(const char *what, const struct rx *rx, const struct model *m)
{
	fprintf(stderr,
		"ab-rx invariant broken: %s (first %llu, bits %d, model base %+lld highest %+lld gaps %llu after_gap %llu; "
		"rx gaps %llu after_gap %llu repeated %llu late_fills %llu)\n",
		what, (unsigned long long)m->first, m->bits, (long long)m->base, (long long)m->highest,
		(unsigned long long)m->gap_messages, (unsigned long long)m->after_gap, (unsigned long long)rx->counters.gap_messages,
		(unsigned long long)rx->counters.after_gap, (unsigned long long)rx->counters.repeated,
		(unsigned long long)rx->counters.late_fills);
	abort();
}

static int gap(struct model *m, int64_t n)
{
	if (gap_count && gap_to[gap_count - 1] + 1 == n) {
		gap_to[gap_count - 1] = n;
	} else {
		if (gap_count == GAPS_CAP)
			return -1;
		gap_from[gap_count] = gap_to[gap_count] = n;
		gap_count++;
	}
	m->gap_messages++;
	return 0;
}

/* One number arrives (never twice). Returns -1 when the model is full (input dropped). */
static int model_arrive(struct model *m, int64_t n, uint32_t window)
{
	if (!m->started) {
		m->started = 1;
		m->base = m->highest = n;
	}
	if (n < m->base) {
		m->after_gap++;
		return 0;
	}
	if (mark_seen(n) < 0)
		return -1;
	if (n < m->highest)
		m->late_fills++;
	else
		m->highest = n;
	for (int64_t new_base = m->highest - (int64_t)window + 1; m->base < new_base; m->base++)
		if (!is_seen(m->base) && gap(m, m->base) < 0)
			return -1;
	while (m->base <= m->highest && is_seen(m->base))
		m->base++;
	return 0;
}

/* A tick: holes below the newest number of a tick EXPIRE_TICKS or more ago become gaps. */
static int model_tick(struct model *m, uint32_t now)
{
	if (!m->started)
		return 0;
	for (uint32_t i = tick_count; i-- > 0;) {
		if (now - tick_at[i] < EXPIRE_TICKS)
			continue;
		for (; m->base < tick_highest[i]; m->base++)
			if (!is_seen(m->base) && gap(m, m->base) < 0)
				return -1;
		while (m->base <= m->highest && is_seen(m->base))
			m->base++;
		break;
	}
	if (tick_count == TICKS_CAP)
		return -1;
	tick_at[tick_count] = now;
	tick_highest[tick_count++] = m->highest;
	return 0;
}

/* The model gap interval holding n: the last one starting at or below it. */
static int64_t gap_end_for(int64_t n)
{
	uint32_t lo = 0, hi = gap_count;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (gap_from[mid] <= n)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? INT64_MIN : gap_to[lo - 1];
}

static int64_t relative(const struct model *m, uint64_t raw)
{
	if (m->bits == 32)
		return (int64_t)(int32_t)((uint32_t)raw - (uint32_t)m->first);
	return (int64_t)(raw - m->first);
}

static void check_records(struct rx *rx, struct model *m)
{
	static struct kbx_ab_event gaps[256];
	int n;
	while ((n = (int)ab_take_events(&rx->tracker, gaps, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			if (gaps[i].kind != KBX_AB_EVENT_GAP)
				broken("an event other than a gap without a restart or session end", rx, m);
			int64_t from = relative(m, gaps[i].from);
			if (gaps[i].count == 0 || gaps[i].count > (1u << 22))
				broken("a gap record with an impossible count", rx, m);
			if (relative(m, gaps[i].to) != from + (int64_t)gaps[i].count - 1)
				broken("a gap record whose from..to disagrees with its count", rx, m);
			int64_t to = from + (int64_t)gaps[i].count - 1;
			if (from <= m->reported_to)
				broken("a gap record out of order or naming a number already reported", rx, m);
			if (gap_end_for(from) < to)
				broken("a gap record names a number the model does not call a gap", rx, m);
			m->reported_to = to;
			m->reported += gaps[i].count;
		}
	}
}

static void check_counters(struct rx *rx, struct model *m)
{
	if (rx->counters.repeated != 0)
		broken("repeated != 0 although no number was delivered twice", rx, m);
	if (rx->counters.gap_messages != m->gap_messages)
		broken("gap_messages differs from the numbers the window passed unseen", rx, m);
	if (rx->counters.after_gap != m->after_gap)
		broken("after_gap differs from the numbers that arrived behind the window", rx, m);
	if (rx->counters.late_fills != m->late_fills)
		broken("late_fills differs from the numbers that filled a hole inside the window", rx, m);
}

static const uint64_t edges[] = { 0, 1, 0xfffffff0ull, 0xffffffffull, 0x100000000ull, 0x7ffffffffffffff0ull,
				  0xfffffffffffffff6ull, 0xffffffffffffff00ull, 0xffffffffffffffffull, 1000 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 10)
		return 0;
	struct model m = { .bits = data[0] & 1 ? 32 : 64, .reported_to = INT64_MIN };
	uint32_t window = 64u << ((data[0] >> 1) % 5);
	uint64_t first = 0;
	for (int i = 0; i < 8; i++)
		first = first << 8 | data[1 + i];
	if (data[9] < 0xc0) /* mostly an edge, adjusted a little */
		first = edges[data[9] % 10] - (first & 0xff) + (data[9] & 0x80 ? 0x80 : 0);
	if (m.bits == 32)
		first &= 0xffffffffull;
	m.first = first;
	struct kbx_ab_rx_config cfg = { .format = m.bits == 32 ? AB_FORMAT_OPTIQ : AB_FORMAT_MOLDUDP64,
					 .window = window,
					 .max_streams = 4,
					 .reset_distance = AB_DEFAULT_RESET_DISTANCE };
	static struct rx state;
	struct rx *rx = &state;
	memset(rx, 0, sizeof(*rx));
	if (ab_tracker_init(&rx->tracker, &cfg, &rx->counters) != 0)
		return 0;
	struct ab_message msg = { .key = { .id = 7, .format = cfg.format }, .seq_bits = (uint32_t)m.bits };
	int full = 0;
	uint32_t tick = 0;
	rx->tracker.expire_ns = EXPIRE_TICKS * 1000;
	for (size_t p = 10; p + 3 <= size && !full; p += 3) {
		if ((data[p + 2] & 0x7c) == 0x7c) { /* a tick: ab_rx.c expires every wait / 4 */
			rx->tracker.now_ns = ++tick * 1000ull + 1;
			ab_track_expire(&rx->tracker);
			full = model_tick(&m, tick) < 0;
			if (!full) {
				check_records(rx, &m);
				check_counters(rx, &m);
			}
			continue;
		}
		int64_t step = (int16_t)(data[p] << 8 | data[p + 1]);
		uint32_t count = m.bits == 64 ? 1 + (data[p + 2] & 3) : 1;
		if (data[p + 2] & 0x80)
			step = (int8_t)data[p + 1]; /* small steps are where the window's edges are */
		else
			step %= (int64_t)(4 * window + 64); /* past the window, but not so far the model crawls */
		int64_t n = (m.started ? m.highest : 0) + step;
		int fresh = 1;
		for (uint32_t k = 0; k < count && fresh; k++)
			fresh = !is_seen(n + (int64_t)k);
		if (!fresh)
			continue;
		msg.sequence = m.bits == 32 ? (uint32_t)(first + (uint64_t)n) : first + (uint64_t)n;
		msg.count = count;
		ab_track_message(&rx->tracker, &msg);
		for (uint32_t k = 0; k < count && !full; k++)
			full = model_arrive(&m, n + (int64_t)k, window) < 0;
		if (full)
			break;
		check_records(rx, &m);
		check_counters(rx, &m);
	}
	if (!full && m.started) {
		for (int64_t n = m.base; n <= m.highest && !full; n++)
			full = !is_seen(n) && gap(&m, n) < 0;
		ab_track_flush(&rx->tracker);
		if (!full) {
			check_records(rx, &m);
			check_counters(rx, &m);
			if (m.reported != m.gap_messages)
				broken("the gap records after the flush do not name every gap", rx, &m);
		}
	}
	ab_tracker_free(&rx->tracker);
	clear_model();
	return 0;
}
