// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Gap tracking per stream for ab-arbitrate's receive loop (see include/kbx_ab.h and ab_track.h).
 *
 * `base` is the next expected logical number and a circular bitmap of `window` bits holds which numbers in
 * [base, base + window) arrived. A number at or past base + window pushes base forward: every number leaving
 * the window unseen is a gap. A number arriving inside the window fills its bit (a late fill when it is below
 * the newest). Logical numbers are u64 compared by serial arithmetic, so they may pass 2^64: the raw number
 * is unwrapped against the newest in the format's width (optiq 32 bits, moldudp64 64) by ab_format.h's
 * ab_serial_distance, the XDP program's unwrap too. Every loop below
 * counts steps instead of comparing against an end that could wrap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ab_track.h"

int ab_tracker_init(struct ab_tracker *tr, const struct kbx_ab_rx_config *config, struct kbx_ab_rx_counters *counters)
{
	memset(tr, 0, sizeof(*tr));
	tr->window = config->window;
	tr->max_streams = config->max_streams;
	tr->reset_distance = config->reset_distance;
	tr->counters = counters;
	tr->table_size = 1;
	while (tr->table_size < 2 * tr->max_streams)
		tr->table_size <<= 1;
	tr->streams = calloc(tr->table_size, sizeof(*tr->streams));
	return tr->streams ? 0 : -ENOMEM;
}

void ab_tracker_free(struct ab_tracker *tr)
{
	for (uint32_t i = 0; tr->streams && i < tr->table_size; i++)
		free(tr->streams[i].bits);
	free(tr->streams);
	free(tr->pending);
	memset(tr, 0, sizeof(*tr));
}

static uint64_t key_hash(const struct ab_stream_key *k)
{
	uint64_t h = k->id * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)k->id2 << 32 | k->format);
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ULL;
	return h ^ (h >> 32);
}

/*
 * The stream's slot; a new one when create (NULL when the table is full or the key is unknown). Closed
 * sessions leave tombstones: the probe walks past them and an insert takes the first one it passed.
 */
static struct ab_track *insert_track(struct ab_tracker *tr, struct ab_track *t, const struct ab_stream_key *key)
{
	if (tr->live >= tr->max_streams)
		return NULL;
	uint64_t *bits = calloc(tr->window / 64, sizeof(uint64_t));
	if (!bits)
		return NULL;
	memset(t, 0, sizeof(*t));
	t->bits = bits;
	t->used = true;
	t->key = *key;
	tr->live++;
	tr->counters->streams++;
	return t;
}

static struct ab_track *track_for(struct ab_tracker *tr, const struct ab_stream_key *key, bool create)
{
	uint32_t mask = tr->table_size - 1;
	struct ab_track *reuse = NULL;
	for (uint32_t i = (uint32_t)key_hash(key) & mask, probes = 0; probes < tr->table_size; i = (i + 1) & mask, probes++) {
		struct ab_track *t = &tr->streams[i];
		if (t->used && t->deleted) {
			if (!reuse)
				reuse = t;
			continue;
		}
		if (t->used && memcmp(&t->key, key, sizeof(*key)) == 0)
			return t;
		if (!t->used)
			return create ? insert_track(tr, reuse ? reuse : t, key) : NULL;
	}
	return create && reuse ? insert_track(tr, reuse, key) : NULL; /* no empty slot left: tombstones only */
}

static uint64_t raw_of(const struct ab_track *t, uint64_t logical, uint64_t offset)
{
	uint64_t raw = logical - offset;
	return t->key.format == AB_FORMAT_OPTIQ ? raw & 0xffffffffULL : raw;
}

static struct kbx_ab_event *push_event(struct ab_tracker *tr, const struct ab_track *t, uint32_t kind)
{
	if (tr->pending_count == tr->pending_capacity) {
		uint32_t capacity = tr->pending_capacity ? 2 * tr->pending_capacity : 64;
		struct kbx_ab_event *grown = realloc(tr->pending, capacity * sizeof(*grown));
		if (!grown)
			return NULL; /* gaps stay counted in gap_messages; the record is lost */
		tr->pending = grown;
		tr->pending_capacity = capacity;
	}
	struct kbx_ab_event *e = &tr->pending[tr->pending_count++];
	memset(e, 0, sizeof(*e));
	memcpy(e->key, &t->key, sizeof(t->key));
	e->kind = kind;
	return e;
}

bool ab_track_push(struct ab_tracker *tr, const struct kbx_ab_event *e)
{
	struct ab_track t;
	memcpy(&t.key, e->key, sizeof(t.key));
	struct kbx_ab_event *slot = push_event(tr, &t, e->kind);
	if (slot)
		*slot = *e;
	return slot != NULL;
}

/* Reported in the stream's raw numbering of the epoch the hole lies in. */
static void push_gap(struct ab_tracker *tr, const struct ab_track *t, uint64_t from, uint64_t to)
{
	uint64_t offset = t->offset;
	if (t->has_prev && (int64_t)(from - t->prev_highest) <= (int64_t)(t->dead_to - t->prev_highest))
		offset = t->prev_offset; /* at or below the reserve: the old epoch's numbers */
	tr->counters->gaps++;
	if (tr->gap_sink) {
		struct kbx_ab_event gap = { .kind = KBX_AB_EVENT_GAP, .from = raw_of(t, from, offset),
					    .to = raw_of(t, to, offset), .count = to - from + 1 };
		memcpy(gap.key, &t->key, sizeof(t->key));
		tr->gap_sink(tr->gap_ctx, &gap);
		return;
	}
	struct kbx_ab_event *e = push_event(tr, t, KBX_AB_EVENT_GAP);
	if (!e)
		return;
	e->from = raw_of(t, from, offset);
	e->to = raw_of(t, to, offset);
	e->count = to - from + 1;
}

/* The open hole is complete (the number after it arrived, or the stream ends): report it. */
static void close_run(struct ab_tracker *tr, struct ab_track *t)
{
	if (!t->run_open)
		return;
	push_gap(tr, t, t->run_from, t->run_to);
	t->run_open = false;
}

static void extend_run(struct ab_tracker *tr, struct ab_track *t, uint64_t from, uint64_t to)
{
	tr->counters->gap_messages += to - from + 1;
	if (t->run_open && t->run_to + 1 == from) {
		t->run_to = to;
		return;
	}
	close_run(tr, t);
	t->run_open = true;
	t->run_from = from;
	t->run_to = to;
}

/* Holes from..to (serial, from <= to), less the dead reserve of a restart. */
static void emit_gap(struct ab_tracker *tr, struct ab_track *t, uint64_t from, uint64_t to)
{
	if (t->dead && (int64_t)(t->dead_to - t->dead_from) >= 0) {
		bool before = (int64_t)(from - t->dead_from) < 0;
		bool after = (int64_t)(to - t->dead_to) > 0;
		bool overlaps = (int64_t)(to - t->dead_from) >= 0 && (int64_t)(from - t->dead_to) <= 0;
		if (overlaps) {
			if (before)
				extend_run(tr, t, from, t->dead_from - 1);
			close_run(tr, t); /* the dead reserve separates the two epochs' holes */
			if (after)
				extend_run(tr, t, t->dead_to + 1, to);
			return;
		}
	}
	extend_run(tr, t, from, to);
}

static inline bool bit_get(const struct ab_track *t, uint32_t w, uint64_t n)
{
	uint64_t i = n & (w - 1);
	return t->bits[i >> 6] >> (i & 63) & 1;
}

static inline void bit_put(struct ab_track *t, uint32_t w, uint64_t n, bool on)
{
	uint64_t i = n & (w - 1);
	if (on)
		t->bits[i >> 6] |= 1ULL << (i & 63);
	else
		t->bits[i >> 6] &= ~(1ULL << (i & 63));
}

/* Moves base up to new_base (serial, not behind base); numbers leaving the window unseen are gaps. */
static void advance_to(struct ab_tracker *tr, struct ab_track *t, uint64_t new_base)
{
	uint32_t w = tr->window;
	uint64_t span = new_base - t->base;
	uint64_t steps = span > w ? w : span;
	uint64_t run_from = 0;
	bool in_run = false;
	for (uint64_t i = 0; i < steps; i++) {
		uint64_t n = t->base + i;
		if (bit_get(t, w, n)) {
			bit_put(t, w, n, false);
			if (in_run)
				emit_gap(tr, t, run_from, n - 1);
			in_run = false;
			close_run(tr, t);
		} else if (!in_run) {
			run_from = n;
			in_run = true;
		}
	}
	if (span > w) { /* numbers that were never in the window at all */
		if (!in_run)
			run_from = t->base + w;
		in_run = true;
	}
	if (in_run)
		emit_gap(tr, t, run_from, new_base - 1);
	t->base = new_base;
}

/* Reserve of logical numbers above the old newest at a restart: twice the XDP program's, because the receive
 * loop may see a restart before the last old winners of the other line the XDP program saw before it. */
static uint64_t reserve_of(uint32_t window)
{
	return 2 * AB_RESTART_RESERVE((uint64_t)window);
}

static void restart(struct ab_tracker *tr, struct ab_track *t, const struct ab_message *m)
{
	struct kbx_ab_event *e = push_event(tr, t, KBX_AB_EVENT_RESTART);
	if (e) {
		e->from = raw_of(t, t->highest, t->offset);
		e->to = m->sequence;
	}
	tr->counters->resets++;
	t->has_prev = true;
	t->prev_highest = t->highest;
	t->prev_offset = t->offset;
	uint64_t start = t->highest + reserve_of(tr->window) + 1;
	t->dead = true;
	t->dead_from = t->highest + 1;
	t->dead_to = start - 1;
	t->offset = start - m->sequence;
	t->highest = start - 1; /* the new numbers continue from here */
	if (t->ended) { /* a session that announced its end restarted after all */
		t->ended = false;
		t->end_lines = 0;
	}
}

/* A new stream: when an ended session waits, this is the session that follows it. */
static void start_stream(struct ab_tracker *tr, struct ab_track *t, const struct ab_message *m)
{
	t->started = true;
	t->base = t->highest = t->known_top = m->sequence;
	t->offset = 0;
	if (tr->ended_count > 0) {
		const struct ab_ended_session *prev = &tr->ended[tr->ended_head];
		tr->ended_head = (tr->ended_head + 1) % KBX_AB_ENDED_QUEUE;
		tr->ended_count--;
		struct kbx_ab_event *e = push_event(tr, t, KBX_AB_EVENT_NEW_SESSION);
		if (e) {
			memcpy(e->previous, &prev->key, sizeof(prev->key));
			e->from = prev->next;
			e->to = m->sequence;
		}
		tr->counters->new_sessions++;
	}
}

/* The logical number of m's first message, or false when it cannot be placed. */
static bool logical_number(struct ab_tracker *tr, struct ab_track *t, const struct ab_message *m, uint64_t *out)
{
	uint32_t w = tr->window;
	int64_t d = ab_serial_distance(m, t->highest - t->offset);
	/* Nearer the previous numbering than the current one: an old copy, never a restart; placed while the
	 * new epoch is young (as in the XDP program, which drops later ones as stale). */
	if ((d <= -(int64_t)w || d > (int64_t)w) && t->has_prev) {
		int64_t dp = ab_serial_distance(m, t->prev_highest - t->prev_offset);
		if (ab_distance_magnitude(dp) < tr->reset_distance && ab_distance_magnitude(dp) < ab_distance_magnitude(d)) {
			tr->counters->old_epoch++;
			bool young = (int64_t)(t->highest - t->prev_highest) <= (int64_t)(reserve_of(w) + w);
			if (!young || dp > (int64_t)reserve_of(w)) {
				tr->counters->unplaced++;
				return false;
			}
			uint64_t l = t->prev_highest + dp;
			if ((int64_t)(l - t->dead_from) >= 0 && (int64_t)(l - t->dead_to) <= 0)
				t->dead_from = l + 1; /* an old number in the reserve: the holes below it are real */
			*out = l;
			return true;
		}
	}
	if (ab_distance_magnitude(d) >= tr->reset_distance) {
		restart(tr, t, m);
		d = ab_serial_distance(m, t->highest - t->offset);
	}
	*out = t->highest + d;
	return true;
}

/* base moves past the numbers that arrived from it on. */
static void consume_present(struct ab_tracker *tr, struct ab_track *t)
{
	uint32_t w = tr->window;
	while ((int64_t)(t->highest - t->base) >= 0 && bit_get(t, w, t->base)) {
		bit_put(t, w, t->base, false);
		t->base++;
		close_run(tr, t);
	}
}

/*
 * Every hole below a number that was the stream's newest expire_ns ago has stayed open that long (that number
 * had arrived above it): such holes become gaps. Each scan samples the newest number; a ring of samples
 * taken every expire_ns / 4 (kbx_ab_rx_poll's pace) always holds one at least expire_ns old.
 */
void ab_track_expire(struct ab_tracker *tr)
{
	for (uint32_t i = 0; tr->expire_ns && i < tr->table_size; i++) {
		struct ab_track *t = &tr->streams[i];
		if (!t->used || t->deleted || !t->started)
			continue;
		bool found = false;
		uint64_t h = 0;
		for (uint32_t k = 1; k <= AB_EXPIRE_SAMPLES && !found; k++) { /* newest first */
			uint32_t at = (t->sample_next + AB_EXPIRE_SAMPLES - k) % AB_EXPIRE_SAMPLES;
			if (t->sample_ns[at] && tr->now_ns - t->sample_ns[at] >= tr->expire_ns) {
				found = true;
				h = t->sample_highest[at];
			}
		}
		if (found && (int64_t)(h - t->base) > 0) {
			uint64_t gap_messages = tr->counters->gap_messages;
			advance_to(tr, t, h);
			consume_present(tr, t);
			close_run(tr, t);
			if (tr->counters->gap_messages != gap_messages)
				tr->counters->holes_expired++;
		}
		t->sample_highest[t->sample_next] = t->highest;
		t->sample_ns[t->sample_next] = tr->now_ns | 1;
		t->sample_next = (t->sample_next + 1) % AB_EXPIRE_SAMPLES;
	}
}

void ab_track_message(struct ab_tracker *tr, const struct ab_message *m)
{
	struct ab_track *t = track_for(tr, &m->key, true);
	if (!t) {
		tr->counters->untracked++;
		return;
	}
	uint32_t w = tr->window;
	uint64_t l;
	if (!t->started)
		start_stream(tr, t, m);
	if (!logical_number(tr, t, m, &l))
		return;
	uint32_t count = m->count ? m->count : 1;
	for (uint32_t i = 0; i < count; i++, l++) {
		if ((int64_t)(l - t->base) < 0) {
			tr->counters->after_gap++;
			continue;
		}
		if (l - t->base >= w)
			advance_to(tr, t, l - w + 1);
		if (bit_get(t, w, l)) {
			tr->counters->repeated++;
			continue;
		}
		if ((int64_t)(l - t->highest) < 0)
			tr->counters->late_fills++;
		else
			t->highest = l;
		if ((int64_t)(t->highest - t->known_top) > 0)
			t->known_top = t->highest;
		bit_put(t, w, l, true);
		consume_present(tr, t);
	}
}

/* Every hole below the newest known number becomes a gap. */
static void close_stream(struct ab_tracker *tr, struct ab_track *t)
{
	if (t->started && (int64_t)(t->known_top - t->base) >= 0)
		advance_to(tr, t, t->known_top + 1);
	close_run(tr, t);
}

void ab_track_end(struct ab_tracker *tr, const struct ab_message *m, uint32_t line)
{
	tr->counters->end_copies++;
	struct ab_track *t = track_for(tr, &m->key, false);
	if (!t || !t->started || t->closed)
		return;
	t->end_lines |= (uint8_t)(1u << line);
	if (!t->ended) {
		t->ended = true;
		uint64_t next = t->highest + ab_serial_distance(m, t->highest - t->offset);
		if ((int64_t)(next - 1 - t->known_top) > 0)
			t->known_top = next - 1;
		tr->counters->sessions_ended++;
		struct kbx_ab_event *e = push_event(tr, t, KBX_AB_EVENT_SESSION_END);
		if (e)
			e->from = m->sequence;
		if (tr->ended_count < KBX_AB_ENDED_QUEUE) {
			tr->ended[(tr->ended_head + tr->ended_count) % KBX_AB_ENDED_QUEUE] = (struct ab_ended_session){ t->key, m->sequence };
			tr->ended_count++;
		}
	}
	if (t->end_lines == 3) {
		/* Both lines ended (each line's copies come in order): no copy of this session is still on its
		 * way. Its holes are reported and it leaves the table, here and (KBX_AB_EVENT_SESSION_CLOSED) in
		 * the XDP program's, so a long run of sessions never fills either. */
		close_stream(tr, t);
		t->closed = true;
		push_event(tr, t, KBX_AB_EVENT_SESSION_CLOSED);
		free(t->bits);
		t->bits = NULL;
		t->deleted = true;
		tr->live--;
		tr->counters->sessions_closed++;
	}
}

void ab_track_flush(struct ab_tracker *tr)
{
	for (uint32_t i = 0; i < tr->table_size; i++) {
		struct ab_track *t = &tr->streams[i];
		if (t->used && !t->deleted)
			close_stream(tr, t);
	}
}

uint32_t ab_take_events(struct ab_tracker *tr, struct kbx_ab_event *out, uint32_t capacity)
{
	uint32_t n = tr->pending_count < capacity ? tr->pending_count : capacity;
	if (n == 0)
		return 0;
	memcpy(out, tr->pending, n * sizeof(*out));
	memmove(tr->pending, tr->pending + n, (tr->pending_count - n) * sizeof(*out));
	tr->pending_count -= n;
	return n;
}
