// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target `ab-recover`: both parsers of MoldUDP64 recovery. ab-arbitrate's side (src/ab_recover.c):
 * gaps waiting for answers, then answer payloads (raw bytes, or packets built from the input around the gaps,
 * with message lengths from it) and late line copies, in any order, then the end (every gap settles). Checked:
 * every delivered message lies in a waiting gap and is delivered once, its frame a well-formed UDP downstream
 * packet of that one message with its number; recovered_messages counts them; a gap settles recovered exactly
 * when every message of it came, and every gap settles exactly once. ab-feed's side (src/ab_feed.c
 * kbx_ab_feed_answer): a request from the input against a fixed plan: an answer is a downstream packet of the
 * request's session from the request's number, at most the asked count, every message whole.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "../src/ab_track.c"
#include "../src/ab_recover.c"
#include "../src/ab_feed.c"
#include "../src/error.c"

int kbx_umem_alloc(struct kbx_umem *umem, struct kbx_desc *descs, uint32_t n)
{
	return 0; /* kbx_ab_feed_fill is not fuzzed here */
}

#define MAX_GAPS 8

struct input {
	const uint8_t *p;
	size_t left;
};

static uint32_t take(struct input *in, int bytes)
{
	uint32_t v = 0;
	for (int i = 0; i < bytes; i++) {
		v = v << 8 | (in->left ? *in->p : 0);
		if (in->left) {
			in->p++;
			in->left--;
		}
	}
	return v;
}

struct harness {
	struct ab_tracker tracker;
	struct kbx_ab_rx_counters counters;
	struct ab_recovery recovery;
	uint8_t *delivered[MAX_GAPS]; /* a byte per message of each gap */
	uint64_t from[MAX_GAPS], count[MAX_GAPS];
	uint8_t key[MAX_GAPS][16];
	uint32_t gaps;
	uint64_t deliveries;
};

static void broken(const char *what)
{
	fprintf(stderr, "ab-recover invariant broken: %s\n", what);
	abort();
}

static bool always_room(void *ctx)
{
	return true;
}

static void on_delivered(void *ctx, const uint8_t *frame, uint32_t len, const struct ab_message *m)
{
	struct harness *h = ctx;
	struct kbx_packet pkt;
	if (kbx_frame_parse(frame, len, &pkt) != KBX_PACKET_UDP || pkt.payload_len < AB_MOLD_HEADER_SIZE + 2)
		broken("a delivered frame is not UDP with a downstream packet");
	if (kbx_get_be16(pkt.payload + 18) != 1 || ab_load_be64(pkt.payload + 10) != m->sequence ||
	    AB_MOLD_HEADER_SIZE + 2u + kbx_get_be16(pkt.payload + 20) != pkt.payload_len)
		broken("a delivered frame is not one message with its number");
	for (uint32_t g = 0; g < h->gaps; g++) {
		uint64_t i = m->sequence - h->from[g];
		if (i < h->count[g] && memcmp(h->key[g], &m->key, 16) == 0) {
			if (h->delivered[g][i]++)
				broken("a message delivered twice");
			h->deliveries++;
			return;
		}
	}
	broken("a delivered message in no gap");
}

/* Whether gap e (of the same stream) shares a number with one of the first g gaps. */
static bool overlaps_earlier(const struct harness *h, uint32_t g, const struct kbx_ab_event *e)
{
	for (uint32_t i = 0; i < g; i++)
		if (memcmp(h->key[i], e->key, 16) == 0 && (e->from - h->from[i] < h->count[i] || h->from[i] - e->from < e->count))
			return true;
	return false;
}

/* A downstream packet around gap g: its session, a number near the gap, lengths from the input. */
static uint32_t build_answer(struct harness *h, struct input *in, uint8_t *out)
{
	uint32_t g = take(in, 1) % h->gaps;
	int16_t shift = (int16_t)take(in, 2);
	uint32_t n = take(in, 1) % 64;
	memcpy(out, h->key[g], 10);
	put_be(out + 10, h->from[g] + (uint64_t)(int64_t)(shift % 400), 8);
	put_be(out + 18, n, 2);
	uint32_t len = AB_MOLD_HEADER_SIZE;
	for (uint32_t i = 0; i < n && len + 2 + 30 <= 2048; i++) {
		uint32_t msg = take(in, 1) % 31;
		put_be(out + len, msg, 2);
		memset(out + len + 2, 0xab, msg);
		len += 2 + msg;
	}
	return len;
}

static void fuzz_recovery(struct input *in)
{
	static struct harness h;
	memset(&h, 0, sizeof(h));
	struct kbx_ab_rx_config config = { .window = 64, .max_streams = 4, .reset_distance = AB_DEFAULT_RESET_DISTANCE };
	if (ab_tracker_init(&h.tracker, &config, &h.counters) < 0)
		return;
	h.recovery.fd = -1;
	h.recovery.config = (struct kbx_ab_recovery_config){ .server_port = 9000, .max_request = 1 + take(in, 1), .retries = take(in, 1) % 4, .timeout_ns = 1000 };
	h.recovery.tracker = &h.tracker;
	h.recovery.counters = &h.counters;
	h.gaps = 1 + take(in, 1) % MAX_GAPS;
	for (uint32_t g = 0; g < h.gaps; g++) {
		struct kbx_ab_event e = { .kind = KBX_AB_EVENT_GAP };
		memcpy(e.key, "S00000000", 9);
		e.key[9] = (uint8_t)('0' + take(in, 1) % 3);
		e.key[12] = AB_FORMAT_MOLDUDP64;
		e.from = (uint64_t)take(in, 4) << 32 | take(in, 4);
		e.count = 1 + take(in, 2) % 300;
		e.to = e.from + e.count - 1;
		if (overlaps_earlier(&h, g, &e)) { /* the tracker reports a number of a stream in one gap at most */
			h.gaps = g;
			break;
		}
		memcpy(h.key[g], e.key, 16);
		h.from[g] = e.from;
		h.count[g] = e.count;
		h.delivered[g] = calloc(e.count, 1);
		ab_recovery_add(&h.recovery, &e);
	}
	uint64_t now = 0;
	uint8_t packet[4096];
	while (in->left) {
		uint32_t op = take(in, 1) % 4;
		if (op == 0) { /* raw bytes */
			uint32_t len = take(in, 2) % (sizeof(packet) + 1);
			for (uint32_t i = 0; i < len; i++)
				packet[i] = (uint8_t)take(in, 1);
			ab_recovery_take_answer(&h.recovery, packet, len);
		} else if (op == 1) {
			ab_recovery_take_answer(&h.recovery, packet, build_answer(&h, in, packet));
		} else if (op == 2) { /* a late line copy of a number near a gap */
			uint32_t g = take(in, 1) % h.gaps;
			struct ab_message m = { .count = 1 + take(in, 1) % 4, .seq_bits = 64 };
			memcpy(&m.key, h.key[g], 16);
			m.sequence = h.from[g] + (uint64_t)(int64_t)((int16_t)take(in, 2) % 400);
			ab_recovery_line_copy(&h.recovery, &m); /* not delivered through on_delivered: the line's copy */
		}
		now += take(in, 2) * 100ULL;
		ab_recovery_step(&h.recovery, now, always_room, on_delivered, &h);
	}
	for (int i = 0; i < 40 && h.counters.recovery_pending; i++) {
		now += 1ULL << 40;
		ab_recovery_step(&h.recovery, now, always_room, on_delivered, &h);
	}
	if (h.counters.recovery_pending || h.counters.gaps_recovered + h.counters.gaps_unrecovered != h.gaps)
		broken("a gap did not settle exactly once");
	if (h.counters.recovered_messages != h.deliveries)
		broken("recovered_messages is not the deliveries");
	struct kbx_ab_event events[MAX_GAPS + 1];
	if (ab_take_events(&h.tracker, events, MAX_GAPS + 1) != h.gaps)
		broken("not one record per gap");
	ab_recovery_close(&h.recovery);
	for (uint32_t g = 0; g < h.gaps; g++)
		free(h.delivered[g]);
	ab_tracker_free(&h.tracker);
}

static void fuzz_request(struct input *in)
{
	struct kbx_ab_feed_config c = { .format = AB_FORMAT_MOLDUDP64, .streams = 1 + take(in, 1) % 4, .payload_len = 22 + take(in, 1) % 40,
					.header_len = 42, .l3_offset = 14, .start_seq = take(in, 2), .restart_seq = 1,
					.restart_every = take(in, 1) % 50 };
	uint8_t request[KBX_AB_MOLD_REQUEST_SIZE];
	for (uint32_t i = 0; i < sizeof(request); i++)
		request[i] = (uint8_t)take(in, 1);
	if (take(in, 1) & 1) /* a name ab-feed writes */
		mold_session_name(request, take(in, 1) % 5, take(in, 1) % 3);
	uint8_t out[1472];
	uint32_t messages = 0;
	uint32_t capacity = take(in, 2) % (sizeof(out) + 1);
	int len = kbx_ab_feed_answer(&c, request, sizeof(request), take(in, 2), 1 + take(in, 2), out, capacity, &messages);
	if (len <= 0)
		return;
	if (messages == 0 || messages > kbx_get_be16(request + 18) || (uint32_t)len > capacity ||
	    (uint32_t)len != AB_MOLD_HEADER_SIZE + messages * (c.payload_len - AB_MOLD_HEADER_SIZE) ||
	    memcmp(out, request, 18) != 0 || kbx_get_be16(out + 18) != messages)
		broken("an answer that is not the request's messages");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	if (take(&in, 1) & 1)
		fuzz_request(&in);
	else
		fuzz_recovery(&in);
	return 0;
}
