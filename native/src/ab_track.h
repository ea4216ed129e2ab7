/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Gap and restart tracking of ab-arbitrate's receive loop (ab_track.c), internal to ab_rx.c: the table of
 * streams and the pending event records. See include/kbx_ab.h for the rules.
 */
#ifndef KBX_AB_TRACK_H
#define KBX_AB_TRACK_H

#include <stdbool.h>
#include <stdint.h>

#include "ab_format.h"
#include "kbx_ab.h"

#define AB_EXPIRE_SAMPLES 8

struct ab_track {
	struct ab_stream_key key;
	bool used;
	bool started;
	bool has_prev; /* restarted at least once: prev_* hold the old epoch */
	bool ended;    /* moldudp64 end-of-session seen */
	bool closed;   /* ... and its holes reported */
	bool deleted;  /* closed and removed: a tombstone the probe walks past and an insert reuses */
	uint8_t end_lines; /* lines the end-of-session arrived on (bit per line) */
	uint64_t base;      /* next expected logical number */
	uint64_t highest;   /* newest logical number */
	uint64_t known_top; /* newest number known to exist (highest, or the end-of-session's next - 1) */
	uint64_t offset;    /* logical - raw */
	uint64_t prev_highest;
	uint64_t prev_offset;
	/* Logical numbers [dead_from, dead_to] belong to no numbering (the reserve above the old epoch's
	 * newest, less the old numbers that arrived in it): holes there are not gaps. */
	bool dead;
	uint64_t dead_from;
	uint64_t dead_to;
	uint64_t *bits;
	/* The hole being reported: kept open until the number after it is consumed, so one hole is one record. */
	bool run_open;
	uint64_t run_from;
	uint64_t run_to;
	/* With expire_ns: the newest number at each of the last AB_EXPIRE_SAMPLES scans (ab_track_expire). */
	uint64_t sample_highest[AB_EXPIRE_SAMPLES];
	uint64_t sample_ns[AB_EXPIRE_SAMPLES];
	uint32_t sample_next;
};

/* An ended session waiting for the session that follows it. */
struct ab_ended_session {
	struct ab_stream_key key;
	uint64_t next; /* the number its end-of-session announced */
};

struct ab_tracker {
	uint32_t window;
	uint32_t max_streams;
	uint64_t reset_distance;
	struct ab_track *streams;
	uint32_t table_size; /* power of two >= 2 * max_streams */
	struct kbx_ab_event *pending;
	uint32_t pending_count;
	uint32_t pending_capacity;
	uint32_t live; /* streams in the table (closed sessions leave it) */
	struct ab_ended_session ended[KBX_AB_ENDED_QUEUE]; /* ended sessions not yet followed */
	uint32_t ended_head;
	uint32_t ended_count;
	struct kbx_ab_rx_counters *counters;
	/* Holes open expire_ns (0: never) by now_ns (set by the caller) are declared by ab_track_expire, called
	 * every expire_ns / 4. */
	uint64_t now_ns;
	uint64_t expire_ns;
	/* When set, gap records go here instead of the pending events (recovery decides their outcome). */
	void (*gap_sink)(void *ctx, const struct kbx_ab_event *gap);
	void *gap_ctx;
};

int ab_tracker_init(struct ab_tracker *tr, const struct kbx_ab_rx_config *config, struct kbx_ab_rx_counters *counters);
void ab_tracker_free(struct ab_tracker *tr);
/* A delivered data packet (count messages from m->sequence). */
void ab_track_message(struct ab_tracker *tr, const struct ab_message *m);
/* A delivered moldudp64 end-of-session copy from line `line`. */
void ab_track_end(struct ab_tracker *tr, const struct ab_message *m, uint32_t line);
/* Every hole below each stream's newest known number becomes a gap. */
void ab_track_flush(struct ab_tracker *tr);
/* Holes open for expire_ns or longer become gaps (as if the window had passed them). */
void ab_track_expire(struct ab_tracker *tr);
/* Appends an event record (a gap whose outcome is known); false when it could not be stored. */
bool ab_track_push(struct ab_tracker *tr, const struct kbx_ab_event *e);
uint32_t ab_take_events(struct ab_tracker *tr, struct kbx_ab_event *out, uint32_t capacity);

#endif /* KBX_AB_TRACK_H */
