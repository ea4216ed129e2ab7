/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fuzzing only: the C FIX framer (src/fix_reflex.c, included whole so its static framer is reachable)
 * driven like kbx_fix_reflex_feed, recording every message it frames as stream offsets, MsgType and
 * MsgSeqNum. Used by the libFuzzer harness fix_framer.c and by libkbx_fixframe.so, which the
 * differential TypeScript target fuzz/targets/fix-codec.ts calls through koffi.
 */
#ifndef KBX_FIX_FRAME_TRACE_H
#define KBX_FIX_FRAME_TRACE_H

#include "../src/fix_reflex.c"

struct fuzz_fix_message {
	uint64_t start;    /* stream offset of "8=" */
	uint64_t end;      /* stream offset after the CheckSum's SOH */
	uint32_t msg_type; /* one byte → its code, two → b0 << 8 | b1 (codec.ts msgTypeCode) */
	uint32_t pad;
	int64_t seq;       /* MsgSeqNum (34), -1 when absent or not a plain number */
};

struct fuzz_fix_trace {
	struct kbx_fix_reflex *r;
	uint64_t base; /* stream offset of r->buf[0] */
	struct fuzz_fix_message *out;
	uint32_t cap, count;
};

static void trace_record(struct fuzz_fix_trace *t, uint32_t start, uint32_t end)
{
	const uint8_t *buf = t->r->buf;
	uint32_t body = start;
	for (int soh = 0; soh < 2; body++)
		if (buf[body] == SOH)
			soh++;
	struct view f;
	parse_fields(buf, body, end - 7, &f);
	if (t->count < t->cap) {
		struct fuzz_fix_message *m = &t->out[t->count];
		m->start = t->base + start;
		m->end = t->base + end;
		m->msg_type = f.n[F_MSGTYPE] == 1 ? f.v[F_MSGTYPE][0] : (uint32_t)(f.v[F_MSGTYPE][0] << 8 | f.v[F_MSGTYPE][1]);
		m->pad = 0;
		m->seq = value_uint(f.v[F_SEQ], f.n[F_SEQ]);
	}
	t->count++;
}

/* kbx_fix_reflex_feed, step by step: the same buffer moves and framing calls, with each frame recorded. */
static void trace_feed(struct fuzz_fix_trace *t, const uint8_t *bytes, uint32_t len)
{
	struct kbx_fix_reflex *r = t->r;
	int sent = 0;
	while (len > 0) {
		if (r->head > 0) {
			memmove(r->buf, r->buf + r->head, r->tail - r->head);
			r->tail -= r->head;
			t->base += r->head;
			r->head = 0;
		}
		uint32_t n = BUF_CAP - r->tail < len ? BUF_CAP - r->tail : len;
		if (n == 0) {
			r->counters.garbage_bytes += r->tail;
			t->base += r->tail;
			r->head = r->tail = 0;
			disarm(r);
			continue;
		}
		memcpy(r->buf + r->tail, bytes, n);
		r->tail += n;
		bytes += n;
		len -= n;
		for (;;) {
			uint32_t head = r->head;
			uint64_t garbage = r->counters.garbage_bytes;
			int rc = try_frame(r, &sent);
			if (rc == NEED_MORE)
				break;
			if (rc == FRAMED)
				trace_record(t, head + (uint32_t)(r->counters.garbage_bytes - garbage), r->head);
		}
		if (r->head == r->tail) {
			t->base += r->head;
			r->head = r->tail = 0;
		}
	}
}

/*
 * Frames data[0..len) fed in pieces ending at cuts[0..ncuts) (ascending offsets; the rest after the last).
 * Writes up to cap messages; returns how many were framed (may exceed cap), or -1 without memory.
 */
static int64_t fuzz_fix_frame_stream(const uint8_t *data, uint32_t len, const uint32_t *cuts, uint32_t ncuts,
				     struct fuzz_fix_message *out, uint32_t cap)
{
	struct fuzz_fix_trace t = { .r = kbx_fix_reflex_create(), .out = out, .cap = cap };
	if (!t.r)
		return -1;
	uint32_t at = 0;
	for (uint32_t i = 0; i <= ncuts; i++) {
		uint32_t end = i < ncuts && cuts[i] < len ? cuts[i] : len;
		if (end > at) {
			trace_feed(&t, data + at, end - at);
			at = end;
		}
	}
	if (t.count != t.r->counters.messages)
		abort(); /* the trace missed or invented a frame */
	kbx_fix_reflex_destroy(t.r);
	return t.count;
}

#endif
