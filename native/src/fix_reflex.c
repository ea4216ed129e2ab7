// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The FIX reflex (see kbx_fix.h): a zero-allocation framer over the received byte stream and the order
 * built from a template when the armed ExecutionReport arrives. The framer accepts and rejects exactly what
 * the TypeScript parser (packages/fix/src/codec.ts) does, message by message: the rules are written once,
 * in packages/fix/README.md "Framing rules" (start pattern, limits, early-trailer rule, required header
 * fields, resynchronisation). Both see the same messages; the reflex only fires on exact MsgSeqNum matches, so a divergence could
 * only disarm it, never make it send twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fix_internal.h"
#include "kbx_fix.h"

#define SOH 0x01
#define MAX_MESSAGE 65536
#define BUF_CAP (MAX_MESSAGE + 8192)
#define MAX_FIELDS 256
#define TEXT_MAX 64

enum { NEED_MORE, FRAMED, FAILED };

/* Seams for the fuzzers (native/fuzz/fix_frame_trace.h defines them before including this file), empty in
 * the library: a frame at r->buf[start, end), and n bytes leaving the front of r->buf. */
#ifndef FIX_REFLEX_ON_FRAME
#define FIX_REFLEX_ON_FRAME(r, start, end) ((void)0)
#endif
#ifndef FIX_REFLEX_ON_DISCARD
#define FIX_REFLEX_ON_DISCARD(r, n) ((void)0)
#endif

struct text {
	uint8_t b[TEXT_MAX];
	uint32_t n;
};

struct kbx_fix_reflex {
	struct kbx_fix_reflex_io *io;
	kbx_fix_reflex_send_fn send;
	void *send_ctx;
	/* template */
	struct text begin, sender, target, msg_type;
	uint8_t pre[512], post[512], hdr[256];
	uint32_t pre_len, post_len, time_tag, hdr_len;
	int configured;
	struct fix_order_template order;
	/* arm */
	int armed;
	uint64_t cl_ord_id, expect_seq, next_seq, next_cl_ord_id;
	/* stream */
	uint32_t head, tail;
	struct kbx_fix_reflex_counters counters;
	struct kbx_fix_reflex_marks marks; /* the stages of the order last sent */
	uint64_t wall_ns;                  /* kbx_fix_reflex_set_wall_clock, for the next feed */
	int unframed;                      /* feeding stopped at a trigger: buffered bytes wait to be framed */
	uint8_t buf[BUF_CAP];
};

struct kbx_fix_reflex *kbx_fix_reflex_create(void)
{
	return calloc(1, sizeof(struct kbx_fix_reflex));
}

void kbx_fix_reflex_destroy(struct kbx_fix_reflex *r) { free(r); }

static int set_text(struct text *t, const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= TEXT_MAX)
		return -EINVAL;
	memcpy(t->b, s, n);
	t->n = (uint32_t)n;
	return 0;
}

/* The template of the order (fix_order.c) from the texts and parts configured. */
static int prepare_order(struct kbx_fix_reflex *r)
{
	char begin[TEXT_MAX], type[TEXT_MAX], sender[TEXT_MAX], target[TEXT_MAX];
	const struct text *from[] = { &r->begin, &r->msg_type, &r->sender, &r->target };
	char *to[] = { begin, type, sender, target };
	for (int i = 0; i < 4; i++) {
		memcpy(to[i], from[i]->b, from[i]->n);
		to[i][from[i]->n] = 0;
	}
	return fix_order_prepare(&r->order, begin, type, sender, target, r->hdr, r->hdr_len, r->pre, r->pre_len, r->time_tag, r->post,
				 r->post_len);
}

int kbx_fix_reflex_configure(struct kbx_fix_reflex *r, const char *begin_string, const char *sender, const char *target,
			     const char *msg_type, const uint8_t *pre, uint32_t pre_len, uint32_t time_tag,
			     const uint8_t *post, uint32_t post_len, struct kbx_fix_reflex_io *io)
{
	if (set_text(&r->begin, begin_string) || set_text(&r->sender, sender) || set_text(&r->target, target) ||
	    set_text(&r->msg_type, msg_type) || pre_len > sizeof(r->pre) || post_len > sizeof(r->post) || !io)
		return kbx_fail(-EINVAL, "configure the FIX reflex", "BeginString, CompIDs and MsgType must be 1..%u bytes, "
				"template parts at most %zu (%u and %u given)%s", (unsigned)(TEXT_MAX - 1), sizeof(r->pre), pre_len,
				post_len, io ? "" : ", and the io block is missing");
	memcpy(r->pre, pre, pre_len);
	memcpy(r->post, post, post_len);
	r->pre_len = pre_len;
	r->post_len = post_len;
	r->time_tag = time_tag;
	if (prepare_order(r) < 0) {
		r->configured = 0;
		return kbx_fail(-EINVAL, "configure the FIX reflex", "the order's fields after ClOrdID take more than %u bytes",
				FIX_ORDER_PART_MAX - 2);
	}
	r->io = io;
	r->armed = 0;
	r->configured = 1;
	return 0;
}

int kbx_fix_reflex_set_header(struct kbx_fix_reflex *r, const uint8_t *fields, uint32_t len)
{
	if (len > sizeof(r->hdr))
		return kbx_fail(-EINVAL, "set the FIX reflex header", "%u bytes: at most %zu", len, sizeof(r->hdr));
	memcpy(r->hdr, fields, len);
	r->hdr_len = len;
	if (r->configured && prepare_order(r) < 0) {
		r->configured = 0;
		return kbx_fail(-EINVAL, "set the FIX reflex header", "the order's header does not fit");
	}
	return 0;
}

void kbx_fix_reflex_set_sender(struct kbx_fix_reflex *r, kbx_fix_reflex_send_fn fn, void *ctx)
{
	r->send = fn;
	r->send_ctx = ctx;
}

void kbx_fix_reflex_reset_stream(struct kbx_fix_reflex *r)
{
	r->head = r->tail = 0;
	r->unframed = 0;
	r->armed = 0;
}

void kbx_fix_reflex_counters(const struct kbx_fix_reflex *r, struct kbx_fix_reflex_counters *out) { *out = r->counters; }
/* Lines the next trigger will touch, brought into the cache (for writing) while the step waits. */
void kbx_fix_reflex_warm(const struct kbx_fix_reflex *r)
{
	for (uint32_t at = 0; at < 512; at += 64) {
		__builtin_prefetch(r->buf + r->tail + at, 1, 3);
		if (r->io)
			__builtin_prefetch(r->io->msg + at, 1, 3);
	}
	__builtin_prefetch(r, 0, 3);
	__builtin_prefetch(&r->order, 0, 3);
	__builtin_prefetch(r->order.tail, 0, 3);
}

void kbx_fix_reflex_marks(const struct kbx_fix_reflex *r, struct kbx_fix_reflex_marks *out) { *out = r->marks; }
void kbx_fix_reflex_set_wall_clock(struct kbx_fix_reflex *r, uint64_t realtime_ns) { r->wall_ns = realtime_ns; }
struct kbx_fix_reflex_io *kbx_fix_reflex_io(struct kbx_fix_reflex *r) { return r->io; }

void kbx_fix_reflex_take_arm(struct kbx_fix_reflex *r)
{
	struct kbx_fix_reflex_io *io = r->io;
	if (!io || !r->configured) {
		r->armed = 0;
		return;
	}
	r->armed = io->armed != 0;
	if (r->armed) {
		r->cl_ord_id = io->cl_ord_id;
		r->expect_seq = io->expect_seq;
		r->next_seq = io->next_seq;
		r->next_cl_ord_id = io->next_cl_ord_id;
		r->counters.armed++;
		io->armed = 0;
	}
}

/* ------------------------------------------------------------------ order */

/* The order into io->msg (fix_order.c); the SendingTime from the caller's wall clock, else CLOCK_REALTIME read here. */
static uint32_t build_order(struct kbx_fix_reflex *r)
{
	uint64_t wall = r->wall_ns;
	r->marks.clock = 0;
	if (!wall) {
		uint64_t clock_start = kbx_fix_ticks();
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		wall = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		r->marks.clock = kbx_fix_ticks() - clock_start;
	}
	return fix_order_build(&r->order, r->next_seq, r->next_cl_ord_id, wall, r->io);
}

/* ------------------------------------------------------------------ framing */

struct view {
	const uint8_t *v[6];
	uint32_t n[6];
};
enum { F_MSGTYPE, F_SEQ, F_POSSDUP, F_SENDER, F_TARGET, F_CLORDID };

static int value_equals(const uint8_t *v, uint32_t n, const struct text *t)
{
	return v && n == t->n && memcmp(v, t->b, n) == 0;
}

/* Non-negative decimal (≤ 15 digits, as the TypeScript parseUint); -1 otherwise. */
static int64_t value_uint(const uint8_t *v, uint32_t n)
{
	if (!v || n == 0 || n > 15)
		return -1;
	int64_t x = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

/* Body fields [body, trailer): tag digits, '=', value; MsgType first; the required header fields. 0 when malformed (TS: bad-header). */
static int parse_fields(const uint8_t *buf, uint32_t body, uint32_t trailer, struct view *f)
{
	uint32_t p = body, count = 2;
	memset(f, 0, sizeof(*f));
	while (p < trailer) {
		uint32_t tag = 0, tag_start = p;
		while (p < trailer && buf[p] != '=') {
			if (buf[p] < '0' || buf[p] > '9')
				return 0;
			tag = tag * 10 + (uint32_t)(buf[p] - '0');
			p++;
		}
		if (p == tag_start || p >= trailer || p - tag_start > 9)
			return 0;
		p++;
		uint32_t vs = p;
		const uint8_t *soh = memchr(buf + p, SOH, trailer - p);
		p = soh ? (uint32_t)(soh - buf) : trailer;
		if (count >= MAX_FIELDS)
			return 0;
		if (count == 2 && tag != 35)
			return 0;
		int slot = -1;
		switch (tag) {
		case 35: slot = F_MSGTYPE; break;
		case 34: slot = F_SEQ; break;
		case 43: slot = F_POSSDUP; break;
		case 49: slot = F_SENDER; break;
		case 56: slot = F_TARGET; break;
		case 11: slot = F_CLORDID; break;
		}
		if (slot >= 0 && !f->v[slot]) { /* first occurrence, like the TypeScript view */
			f->v[slot] = buf + vs;
			f->n[slot] = p - vs;
		}
		count++;
		p++;
	}
	/* the framing rules (packages/fix/README.md): MsgType first, 1 or 2 bytes; 49 and 56 present; 34 ≥ 1 */
	return (f->n[F_MSGTYPE] == 1 || f->n[F_MSGTYPE] == 2) && f->v[F_SENDER] && f->v[F_TARGET] &&
	       value_uint(f->v[F_SEQ], f->n[F_SEQ]) >= 1;
}

static void disarm(struct kbx_fix_reflex *r)
{
	if (r->armed)
		r->counters.disarmed++;
	r->armed = 0;
}

/* One valid message while armed: quiet and in sequence, the trigger, or the end of the arm. Returns 1 when an order went out. */
static int on_message(struct kbx_fix_reflex *r, const struct view *f)
{
	if (!r->armed)
		return 0;
	int64_t seq = value_uint(f->v[F_SEQ], f->n[F_SEQ]);
	int quiet = value_equals(f->v[F_SENDER], f->n[F_SENDER], &r->target) &&
		    value_equals(f->v[F_TARGET], f->n[F_TARGET], &r->sender) && seq >= 0 &&
		    (uint64_t)seq == r->expect_seq && !(f->v[F_POSSDUP] && f->n[F_POSSDUP] > 0 && f->v[F_POSSDUP][0] == 'Y') &&
		    f->n[F_MSGTYPE] == 1 && (f->v[F_MSGTYPE][0] == '8' || f->v[F_MSGTYPE][0] == '0');
	if (!quiet) {
		disarm(r);
		return 0;
	}
	r->expect_seq++;
	if (f->v[F_MSGTYPE][0] != '8' || value_uint(f->v[F_CLORDID], f->n[F_CLORDID]) != (int64_t)r->cl_ord_id)
		return 0;
	/* the trigger: one order, then the arm is spent */
	r->armed = 0;
	r->marks.triggered = kbx_fix_ticks();
	uint32_t len = build_order(r);
	r->marks.built = kbx_fix_ticks();
	if (len == 0 || (r->send && !r->send(r->send_ctx, r->io->msg, len))) {
		r->counters.deferred++;
		return 0;
	}
	r->marks.queued = kbx_fix_ticks();
	struct kbx_fix_reflex_io *io = r->io;
	io->sent_seq = r->next_seq;
	io->sent_cl_ord_id = r->next_cl_ord_id;
	io->trigger_seq = (uint64_t)seq;
	if (!r->send) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		io->sent_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	r->counters.sent++;
	return 1;
}

static int fail(struct kbx_fix_reflex *r, uint64_t *counter)
{
	(*counter)++;
	disarm(r);
	r->head++; /* resynchronise like the TypeScript parser: drop the leading '8', look for the next "8=FIX" */
	r->counters.garbage_bytes++;
	return FAILED;
}

/* A complete "SOH10=nnnSOH" followed by '8' inside [from, limit): a trailer and the next message's start
 * before the declared end, so BodyLength is wrong. Only bytes that have arrived decide, never where they
 * end, so the verdict never depends on TCP segmentation: with limit = the declared trailer for a whole
 * message, and any limit up to trailer + 7 before it is whole (a match reaching past the declared body
 * also breaks its trailer, so the whole message fails the same way). */
static int early_trailer(const uint8_t *buf, uint32_t from, uint32_t limit)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	/* eight bytes at a time: a flag under each byte that may be SOH (exact for the lowest, each one checked) */
	for (uint32_t i = from; i + 9 <= limit; i += 8) {
		uint64_t w;
		memcpy(&w, buf + i, 8);
		w ^= ones * SOH;
		for (uint64_t z = (w - ones) & ~w & highs; z; z &= z - 1) {
			uint32_t at = i + (uint32_t)__builtin_ctzll(z) / 8;
			const uint8_t *h = buf + at;
			if (at + 9 <= limit && h[0] == SOH && h[1] == '1' && h[2] == '0' && h[3] == '=' && h[7] == SOH && h[8] == '8')
				return 1;
		}
	}
	return 0;
}

/* The byte sum of p[0..n), eight bytes at a time in 16-bit lanes (each takes at most 128 words before folding). */
static uint32_t byte_sum(const uint8_t *p, uint32_t n)
{
	const uint64_t even = 0x00ff00ff00ff00ffull;
	uint32_t sum = 0;
	while (n >= 8) {
		uint64_t lanes = 0;
		for (uint32_t words = 0; n >= 8 && words < 128; words++, p += 8, n -= 8) {
			uint64_t w;
			memcpy(&w, p, 8);
			lanes += (w & even) + ((w >> 8) & even);
		}
		sum += (uint32_t)((lanes & 0xffff) + ((lanes >> 16) & 0xffff) + ((lanes >> 32) & 0xffff) + (lanes >> 48));
	}
	while (n--)
		sum += *p++;
	return sum;
}

/* One frame at head (after any garbage). *sent: 1 when the message made an order go out. */
static int try_frame(struct kbx_fix_reflex *r, int *sent)
{
	const uint8_t *buf = r->buf;
	uint32_t tail = r->tail, p = r->head;
	for (; p < tail; p++) {
		if (buf[p] != '8')
			continue;
		if (p + 1 < tail && buf[p + 1] != '=')
			continue;
		if (p + 2 < tail && buf[p + 2] != 'F')
			continue;
		if (p + 3 < tail && buf[p + 3] != 'I')
			continue;
		if (p + 4 < tail && buf[p + 4] != 'X')
			continue;
		break;
	}
	if (p > r->head) {
		r->counters.garbage_bytes += p - r->head;
		r->head = p;
		disarm(r);
	}
	if (tail - p < 5)
		return NEED_MORE;
	uint32_t start = p, q = start + 2;
	while (q < tail && buf[q] != SOH) {
		if (q - start > 32)
			return fail(r, &r->counters.bad_header);
		q++;
	}
	if (q >= tail)
		return NEED_MORE;
	q++;
	if (tail - q < 2)
		return NEED_MORE;
	if (buf[q] != '9' || buf[q + 1] != '=')
		return fail(r, &r->counters.bad_header);
	q += 2;
	uint32_t body_length = 0, len_start = q;
	while (q < tail && buf[q] != SOH) {
		if (buf[q] < '0' || buf[q] > '9' || q - len_start >= 7)
			return fail(r, &r->counters.bad_header);
		body_length = body_length * 10 + (uint32_t)(buf[q] - '0');
		q++;
	}
	if (q >= tail)
		return NEED_MORE;
	if (q == len_start)
		return fail(r, &r->counters.bad_header);
	q++;
	uint32_t body = q, trailer = body + body_length;
	if (trailer + 7 - start > MAX_MESSAGE)
		return fail(r, &r->counters.bad_body_length);
	if (tail < trailer + 7)
		return early_trailer(buf, body, tail) ? fail(r, &r->counters.bad_body_length) : NEED_MORE;
	if (buf[trailer - 1] != SOH || buf[trailer] != '1' || buf[trailer + 1] != '0' || buf[trailer + 2] != '=' ||
	    buf[trailer + 6] != SOH || early_trailer(buf, body, trailer))
		return fail(r, &r->counters.bad_body_length);
	int64_t declared = value_uint(buf + trailer + 3, 3);
	uint32_t sum = byte_sum(buf + start, trailer - start);
	if (declared != (int64_t)(sum & 0xff))
		return fail(r, &r->counters.bad_checksum);
	struct view f;
	if (!parse_fields(buf, body, trailer, &f))
		return fail(r, &r->counters.bad_header);
	r->head = trailer + 7;
	FIX_REFLEX_ON_FRAME(r, start, r->head);
	r->counters.messages++;
	*sent |= on_message(r, &f);
	return FRAMED;
}

/*
 * Frames what is buffered; with stop_at_send, only up to the message that made an order go out (the rest is
 * framed by the next feed or kbx_fix_reflex_frame_rest). Returns 1 when an order went out.
 */
static int frame_buffered(struct kbx_fix_reflex *r, int stop_at_send)
{
	int sent = 0;
	r->unframed = 0;
	while (try_frame(r, &sent) != NEED_MORE) {
		if (sent && stop_at_send) {
			r->unframed = 1;
			return 1;
		}
	}
	if (r->head == r->tail) {
		FIX_REFLEX_ON_DISCARD(r, r->head);
		r->head = r->tail = 0;
	}
	return sent;
}

/* Every byte into the buffer and framed; with stop_at_send, framing (not copying) stops after an order went out. */
static int feed(struct kbx_fix_reflex *r, const uint8_t *bytes, uint32_t len, int stop_at_send)
{
	int sent = r->unframed ? frame_buffered(r, 0) : 0;
	while (len > 0) {
		if (r->head > 0) { /* keep the unframed tail at the front */
			FIX_REFLEX_ON_DISCARD(r, r->head);
			memmove(r->buf, r->buf + r->head, r->tail - r->head);
			r->tail -= r->head;
			r->head = 0;
		}
		uint32_t n = BUF_CAP - r->tail < len ? BUF_CAP - r->tail : len;
		if (n == 0) {
			/* cannot happen with frames capped at MAX_MESSAGE < BUF_CAP; drop everything rather than stall */
			r->counters.garbage_bytes += r->tail;
			FIX_REFLEX_ON_DISCARD(r, r->tail);
			r->head = r->tail = 0;
			disarm(r);
			continue;
		}
		memcpy(r->buf + r->tail, bytes, n);
		r->tail += n;
		bytes += n;
		len -= n;
		/* an early stop keeps the rest unframed only when it all fitted in the buffer */
		sent |= frame_buffered(r, stop_at_send && len == 0);
	}
	r->wall_ns = 0;
	return sent;
}

int kbx_fix_reflex_feed(struct kbx_fix_reflex *r, const uint8_t *bytes, uint32_t len) { return feed(r, bytes, len, 0); }
int kbx_fix_reflex_feed_to_trigger(struct kbx_fix_reflex *r, const uint8_t *bytes, uint32_t len) { return feed(r, bytes, len, 1); }

void kbx_fix_reflex_frame_rest(struct kbx_fix_reflex *r)
{
	if (r->unframed)
		frame_buffered(r, 0);
}

int kbx_fix_reflex_feed_armed(struct kbx_fix_reflex *r, const uint8_t *bytes, uint32_t len)
{
	if (r->io && r->io->armed)
		kbx_fix_reflex_take_arm(r);
	return kbx_fix_reflex_feed(r, bytes, len);
}
