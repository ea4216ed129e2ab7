// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target `fix-framer`: the C FIX framer (src/fix_reflex.c) over arbitrary byte streams.
 * Invariants, checked independently of the framer's code:
 *   - every message it accepts is "8=<BeginString>SOH9=<n>SOH<n bytes of body>10=<ddd>SOH" with the
 *     body's last byte SOH, MsgType(35) first in the body and ddd the byte sum mod 256 of all before "10=";
 *   - messages are ascending and do not overlap;
 *   - the same stream fed in pieces (split points derived from the input) frames exactly the same messages.
 * The reflex is armed too, so its order builder runs on whatever the fuzzer frames.
 */
#define _GNU_SOURCE /* as the included library sources are built */
#include <stdio.h>

#include "fix_frame_trace.h"

#define MAX_MESSAGES 4096

static void fail_at(const char *what, const struct fuzz_fix_message *m)
{
	fprintf(stderr, "fix-framer invariant broken: %s (message at %llu..%llu)\n", what, (unsigned long long)m->start,
		(unsigned long long)m->end);
	abort();
}

static uint32_t digits(const uint8_t *p, uint32_t n, uint32_t *value)
{
	uint32_t i = 0, v = 0;
	while (i < n && p[i] >= '0' && p[i] <= '9')
		v = v * 10 + (uint32_t)(p[i++] - '0');
	*value = v;
	return i;
}

static void check_message(const uint8_t *data, uint32_t len, const struct fuzz_fix_message *m)
{
	if (m->end > len || m->start + 20 > m->end)
		fail_at("message outside the stream or shorter than any valid one", m);
	const uint8_t *p = data + m->start;
	uint32_t n = (uint32_t)(m->end - m->start);
	if (p[0] != '8' || p[1] != '=')
		fail_at("does not start with 8=", m);
	uint32_t q = 2;
	while (q < n && p[q] != SOH)
		q++;
	if (q + 3 > n || p[q + 1] != '9' || p[q + 2] != '=')
		fail_at("BodyLength(9) is not the second field", m);
	q += 3;
	uint32_t body_length;
	uint32_t d = digits(p + q, n - q, &body_length);
	if (d == 0 || q + d >= n || p[q + d] != SOH)
		fail_at("BodyLength is not a number", m);
	uint32_t body = q + d + 1;
	if (body + body_length + 7 != n)
		fail_at("BodyLength does not match the message", m);
	const uint8_t *t = p + body + body_length;
	if (t[-1] != SOH || t[0] != '1' || t[1] != '0' || t[2] != '=' || t[6] != SOH)
		fail_at("no CheckSum(10) trailer where BodyLength puts it", m);
	uint32_t declared;
	if (digits(t + 3, 3, &declared) != 3)
		fail_at("CheckSum is not three digits", m);
	uint32_t sum = 0;
	for (uint32_t i = 0; i < body + body_length; i++)
		sum += p[i];
	if ((sum & 0xff) != declared)
		fail_at("CheckSum does not match", m);
	if (p[body] != '3' || p[body + 1] != '5' || p[body + 2] != '=')
		fail_at("MsgType(35) is not the first body field", m);
}

static struct fuzz_fix_message whole[MAX_MESSAGES], pieces[MAX_MESSAGES];

static struct kbx_fix_reflex *armed_reflex(struct kbx_fix_reflex_io *io)
{
	static const uint8_t pre[] = "55=EURUSD\0015=1\00138=100\00140=2\00144=1.5\001";
	struct kbx_fix_reflex *r = kbx_fix_reflex_create();
	if (!r)
		return NULL;
	memset(io, 0, sizeof(*io));
	kbx_fix_reflex_configure(r, "FIX.4.4", "CLIENT1", "EXCH", "D", pre, sizeof(pre) - 1, 60, (const uint8_t *)"", 0, io);
	io->armed = 1;
	io->cl_ord_id = 1;
	io->expect_seq = 2;
	io->next_seq = 3;
	io->next_cl_ord_id = 2;
	kbx_fix_reflex_take_arm(r);
	return r;
}

/*
 * fix_xdp.c's way (framing stops at the trigger, the rest framed after the order is out, or by the next
 * feed when a piece skips kbx_fix_reflex_frame_rest) counts and sends exactly what plain feeds of the same
 * pieces do.
 */
static void check_stop_at_trigger(const uint8_t *data, uint32_t len, const uint32_t *cuts, uint32_t ncuts)
{
	static struct kbx_fix_reflex_io io_plain, io_stop;
	struct kbx_fix_reflex *plain = armed_reflex(&io_plain), *stop = armed_reflex(&io_stop);
	if (plain && stop) {
		uint32_t at = 0;
		int sent_plain = 0, sent_stop = 0;
		for (uint32_t i = 0; i <= ncuts; i++) {
			uint32_t end = i < ncuts && cuts[i] < len ? cuts[i] : len;
			if (end <= at)
				continue;
			uint64_t wall = 1796300000000000000ull + at;
			kbx_fix_reflex_set_wall_clock(plain, wall);
			kbx_fix_reflex_set_wall_clock(stop, wall);
			sent_plain += kbx_fix_reflex_feed(plain, data + at, end - at);
			sent_stop += kbx_fix_reflex_feed_to_trigger(stop, data + at, end - at);
			if (i % 2 == 0)
				kbx_fix_reflex_frame_rest(stop);
			at = end;
		}
		kbx_fix_reflex_frame_rest(stop);
		if (sent_plain != sent_stop || memcmp(&plain->counters, &stop->counters, sizeof(plain->counters)) != 0 ||
		    (sent_plain && (io_plain.len != io_stop.len || memcmp(io_plain.msg, io_stop.msg, io_plain.len) != 0)))
			fail_at("framing stopped at the trigger counts or sends differently", &whole[0]);
	}
	kbx_fix_reflex_destroy(plain);
	kbx_fix_reflex_destroy(stop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	uint32_t len = (uint32_t)size;
	int64_t n = fuzz_fix_frame_stream(data, len, NULL, 0, whole, MAX_MESSAGES);
	if (n < 0)
		return 0;
	uint32_t kept = n < MAX_MESSAGES ? (uint32_t)n : MAX_MESSAGES;
	for (uint32_t i = 0; i < kept; i++) {
		check_message(data, len, &whole[i]);
		if (i > 0 && whole[i].start < whole[i - 1].end)
			fail_at("overlaps the previous message", &whole[i]);
	}
	/* split points from the bytes themselves: deterministic for a given input */
	uint32_t cuts[64], ncuts = 0, h = 2166136261u;
	for (uint32_t i = 0; i < len; i++) {
		h = (h ^ data[i]) * 16777619u;
		if ((h & 7) == 0 && ncuts < 64)
			cuts[ncuts++] = i + 1;
	}
	int64_t m = fuzz_fix_frame_stream(data, len, cuts, ncuts, pieces, MAX_MESSAGES);
	if (m != n)
		fail_at("a different number of messages when fed in pieces", &whole[0]);
	for (uint32_t i = 0; i < kept; i++)
		if (memcmp(&whole[i], &pieces[i], sizeof(whole[i])) != 0)
			fail_at("a different message when fed in pieces", &whole[i]);

	check_stop_at_trigger(data, len, cuts, ncuts);

	/* the reflex's order path: armed for whatever ExecutionReport comes first */
	static struct kbx_fix_reflex_io io;
	struct kbx_fix_reflex *r = kbx_fix_reflex_create();
	if (r) {
		static const uint8_t pre[] = "55=EURUSD\0015=1\00138=100\00140=2\00144=1.5\001";
		kbx_fix_reflex_configure(r, "FIX.4.4", "CLIENT1", "EXCH", "D", pre, sizeof(pre) - 1, 60, (const uint8_t *)"", 0, &io);
		memset(&io, 0, sizeof(io));
		io.armed = 1;
		io.cl_ord_id = 1;
		io.expect_seq = 2;
		io.next_seq = 3;
		io.next_cl_ord_id = 2;
		if (kbx_fix_reflex_feed_armed(r, data, len)) {
			struct fuzz_fix_message order[2];
			if (fuzz_fix_frame_stream(io.msg, io.len, NULL, 0, order, 2) != 1 || order[0].start != 0 || order[0].end != io.len)
				fail_at("the reflex built an order its own framer does not accept", &whole[0]);
		}
		kbx_fix_reflex_destroy(r);
	}
	return 0;
}
