/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fuzzing only: the C FIX framer (src/fix_reflex.c, included whole with its seams FIX_REFLEX_ON_FRAME and
 * FIX_REFLEX_ON_DISCARD defined) fed through kbx_fix_reflex_feed itself, recording every message it frames
 * as stream offsets, MsgType and MsgSeqNum. Used by the libFuzzer harness fix_framer.c and by
 * libkbx_fixframe.so, which the
 * differential TypeScript target fuzz/targets/fix-codec.ts calls through koffi.
 */
#ifndef KBX_FIX_FRAME_TRACE_H
#define KBX_FIX_FRAME_TRACE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* as the included library sources are built */
#endif
#include <stdint.h>

struct kbx_fix_reflex;
struct fuzz_fix_trace;
static struct fuzz_fix_trace *fuzz_trace; /* the stream being framed (one at a time); other reflexes untraced */
static void trace_record(const struct kbx_fix_reflex *r, uint32_t start, uint32_t end);
static void trace_discard(const struct kbx_fix_reflex *r, uint32_t n);
#define FIX_REFLEX_ON_FRAME(r, start, end) trace_record((r), (start), (end))
#define FIX_REFLEX_ON_DISCARD(r, n) trace_discard((r), (n))

#include "../src/error.c"
#include "../src/fix_order.c"
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

static void trace_discard(const struct kbx_fix_reflex *r, uint32_t n)
{
	if (fuzz_trace && fuzz_trace->r == r)
		fuzz_trace->base += n;
}

static void trace_record(const struct kbx_fix_reflex *r, uint32_t start, uint32_t end)
{
	struct fuzz_fix_trace *t = fuzz_trace;
	if (!t || t->r != r)
		return;
	const uint8_t *buf = r->buf;
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
	fuzz_trace = &t;
	uint32_t at = 0;
	for (uint32_t i = 0; i <= ncuts; i++) {
		uint32_t end = i < ncuts && cuts[i] < len ? cuts[i] : len;
		if (end > at) {
			kbx_fix_reflex_feed(t.r, data + at, end - at);
			at = end;
		}
	}
	if (t.count != t.r->counters.messages)
		abort(); /* the trace missed or invented a frame */
	kbx_fix_reflex_destroy(t.r);
	fuzz_trace = NULL;
	return t.count;
}

#endif
