// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ab-arbitrate's native receive loop; see include/kbx_ab.h.
 *
 * Tracking of gaps, restarts and session ends: ab_track.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ab_arbitrate.h"
#include "ab_format.h"
#include "kbx_ab.h"
#include "kbx_ab_out.h"
#include "ab_order.h"
#include "ab_recover.h"
#include "ab_track.h"
#include "kbx_frame.h"
#include "xsk_internal.h"

struct ab_line_socket {
	struct kbx_xsk *xsk;
	uint32_t line;
	uint32_t held;
	struct kbx_desc *descs;
};

struct kbx_ab_rx {
	struct kbx_ab_rx_config config;
	struct kbx_umem *umem;
	struct ab_line_socket sockets[KBX_AB_MAX_SOCKETS];
	uint32_t socket_count;
	struct ab_tracker tracker;
	struct kbx_ab_rx_counters counters;
	struct kbx_ab_out *out; /* where delivered messages go (kbx_ab_rx_set_output), or NULL */
	struct ab_recovery *recovery; /* NULL without kbx_ab_rx_enable_recovery */
	struct ab_order *order;       /* NULL without kbx_ab_rx_enable_order (arrival order) */
	uint64_t next_expire_ns;
	struct kbx_ab_hold_stats arrival; /* config xdp_arrival: XDP arrival -> taken from the RX ring */
	/* The frame receive_frame parsed last and its UDP payload, so that delivering it parses it no second time. */
	const uint8_t *parsed_frame;
	const uint8_t *parsed_payload;
	uint32_t parsed_payload_len;
};

/* Where a call's delivered frames are copied to (struct kbx_ab_record entries). */
struct copy_out {
	struct kbx_ab_rx *rx;
	uint8_t *buffer; /* NULL: no copies */
	uint32_t capacity;
	uint32_t used;
	uint64_t realtime_ns;
};

int kbx_ab_rx_create(const struct kbx_ab_rx_config *config, struct kbx_ab_rx **out)
{
	struct kbx_ab_rx *rx = calloc(1, sizeof(*rx));
	if (!rx)
		return kbx_fail(-ENOMEM, "create A/B receive loop", "allocate");
	rx->config = *config;
	if (!rx->config.window)
		rx->config.window = AB_DEFAULT_WINDOW;
	if (!rx->config.max_streams)
		rx->config.max_streams = AB_DEFAULT_STREAMS;
	if (!rx->config.batch_size)
		rx->config.batch_size = KBX_AB_DEFAULT_BATCH;
	if (!rx->config.reset_distance)
		rx->config.reset_distance = AB_DEFAULT_RESET_DISTANCE;
	uint32_t w = rx->config.window;
	uint64_t reset = rx->config.reset_distance;
	if (w < AB_MIN_WINDOW || w > AB_MAX_WINDOW || (w & (w - 1)) || rx->config.format > AB_FORMAT_MOLDUDP64 ||
	    rx->config.max_streams > AB_MAX_STREAMS_LIMIT || reset < 2ULL * w || reset > AB_MAX_RESET_DISTANCE) {
		free(rx);
		return kbx_fail(-EINVAL, "create A/B receive loop", "window %u must be a power of two from %u to %u, streams at most %u, "
				"reset distance %llu from 2 * window to 2^31",
				w, AB_MIN_WINDOW, AB_MAX_WINDOW, AB_MAX_STREAMS_LIMIT, (unsigned long long)reset);
	}
	rx->arrival.min_ns = UINT64_MAX;
	int rc = ab_tracker_init(&rx->tracker, &rx->config, &rx->counters);
	if (rc < 0) {
		kbx_fail(rc, "create A/B receive loop", "allocate %u stream slots", rx->config.max_streams);
		ab_tracker_free(&rx->tracker);
		free(rx);
		return rc;
	}
	*out = rx;
	return 0;
}

int kbx_ab_rx_add_socket(struct kbx_ab_rx *rx, struct kbx_umem *umem, int fd, uint32_t line)
{
	struct kbx_xsk *xsk = NULL;
	for (uint32_t i = 0; i < KBX_UMEM_MAX_SOCKETS && !xsk; i++) {
		if (umem->sockets[i] && !umem->sockets[i]->parked && umem->sockets[i]->fd == fd)
			xsk = umem->sockets[i];
	}
	if (!xsk) {
		return kbx_fail(-EINVAL, "add socket to the A/B receive loop", "fd %d: not an open socket of the UMEM", fd);
	}
	if (rx->socket_count == KBX_AB_MAX_SOCKETS || line > 1 || (rx->umem && rx->umem != xsk->umem) || !xsk->has_rx) {
		return kbx_fail(-EINVAL, "add socket to the A/B receive loop", "%s queue %u: %s", xsk->ifname, xsk->queue,
				!xsk->has_rx ? "no RX ring" : line > 1 ? "line must be 0 or 1" : "another UMEM or too many sockets");
	}
	struct ab_line_socket *s = &rx->sockets[rx->socket_count];
	s->descs = calloc(rx->config.batch_size, sizeof(*s->descs));
	if (!s->descs)
		return kbx_fail(-ENOMEM, "add socket to the A/B receive loop", "allocate a batch of %u", rx->config.batch_size);
	s->xsk = xsk;
	s->line = line;
	s->held = 0;
	rx->umem = xsk->umem;
	rx->socket_count++;
	return 0;
}

void kbx_ab_rx_destroy(struct kbx_ab_rx *rx)
{
	if (!rx)
		return;
	for (uint32_t i = 0; i < rx->socket_count; i++) {
		struct ab_line_socket *s = &rx->sockets[i];
		if (s->held)
			kbx_umem_release(rx->umem, s->descs, s->held);
		free(s->descs);
	}
	if (rx->recovery) {
		ab_recovery_close(rx->recovery);
		free(rx->recovery);
	}
	if (rx->order) {
		ab_order_free(rx->order);
		free(rx->order);
	}
	ab_tracker_free(&rx->tracker);
	free(rx);
}

void kbx_ab_rx_set_output(struct kbx_ab_rx *rx, struct kbx_ab_out *out)
{
	rx->out = out;
}

int kbx_ab_rx_enable_recovery(struct kbx_ab_rx *rx, const struct kbx_ab_recovery_config *config)
{
	if (rx->config.format != AB_FORMAT_MOLDUDP64 || rx->recovery)
		return kbx_fail(-EINVAL, "enable MoldUDP64 recovery", "%s", rx->recovery ? "already enabled" : "the feed is not moldudp64");
	struct ab_recovery *r = calloc(1, sizeof(*r));
	if (!r)
		return kbx_fail(-ENOMEM, "enable MoldUDP64 recovery", "allocate");
	int rc = ab_recovery_open(r, config, &rx->tracker, &rx->counters);
	if (rc < 0) {
		free(r);
		return kbx_fail(rc, "enable MoldUDP64 recovery", "a UDP socket towards port %u (max_request %u, timeout %llu ns)",
				config->server_port, config->max_request, (unsigned long long)config->timeout_ns);
	}
	rx->recovery = r;
	rx->tracker.gap_sink = ab_recovery_add;
	rx->tracker.gap_ctx = r;
	rx->tracker.expire_ns = config->wait_ns;
	return 0;
}

int kbx_ab_rx_enable_order(struct kbx_ab_rx *rx, const struct kbx_ab_order_config *config)
{
	if (rx->order)
		return kbx_fail(-EINVAL, "enable sequence order", "already enabled");
	struct ab_order *o = calloc(1, sizeof(*o));
	int rc = o ? ab_order_init(o, config, rx->config.max_streams, rx->config.reset_distance, &rx->counters) : -ENOMEM;
	if (rc < 0) {
		free(o);
		return kbx_fail(rc, "enable sequence order", "a hold of %u packets of %u bytes (at most 2^24)", config->hold_max,
				KBX_AB_HOLD_FRAME_MAX);
	}
	rx->order = o;
	return 0;
}

void kbx_ab_rx_release_held(struct kbx_ab_rx *rx)
{
	if (!rx->order)
		return;
	rx->order->config.hold_ns = 0;
	rx->order->next_scan_ns = 0;
}

void kbx_ab_rx_hold_stats(const struct kbx_ab_rx *rx, struct kbx_ab_hold_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (rx->order)
		*out = rx->order->stats;
	if (!out->count)
		out->min_ns = 0;
}

void kbx_ab_rx_arrival_stats(const struct kbx_ab_rx *rx, struct kbx_ab_hold_stats *out)
{
	*out = rx->arrival;
	if (!out->count)
		out->min_ns = 0;
}

void kbx_ab_rx_counters(const struct kbx_ab_rx *rx, struct kbx_ab_rx_counters *out)
{
	*out = rx->counters;
}

/* The UDP payload of a frame the XDP program takes as feed data (kbx_parse.h: Ethernet with up to two VLAN
 * tags, IPv4, UDP, not a fragment), or NULL. */
static const uint8_t *udp_payload(const uint8_t *frame, uint32_t len, uint32_t *payload_len)
{
	struct kbx_packet pkt;

	if (kbx_frame_parse(frame, len, &pkt) != KBX_PACKET_UDP || pkt.fragment != KBX_FRAGMENT_NONE)
		return NULL;
	*payload_len = pkt.payload_len;
	return pkt.payload;
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void kbx_ab_limits(struct kbx_ab_limits *out)
{
	*out = (struct kbx_ab_limits){
		.min_window = AB_MIN_WINDOW,
		.max_window = AB_MAX_WINDOW,
		.default_streams = AB_DEFAULT_STREAMS,
		.max_streams = AB_MAX_STREAMS_LIMIT,
		.default_reset_distance = AB_DEFAULT_RESET_DISTANCE,
		.max_reset_distance = AB_MAX_RESET_DISTANCE,
		.default_window = AB_DEFAULT_WINDOW,
		.default_batch = KBX_AB_DEFAULT_BATCH,
		.default_skew_sample = AB_DEFAULT_SKEW_SAMPLE,
		.max_skew_sample = AB_MAX_SKEW_SAMPLE,
	};
}

/* Parses, counts and tracks one delivered frame; true for feed data to deliver. */
static bool receive_frame(struct kbx_ab_rx *rx, const uint8_t *frame, uint32_t len, uint32_t line, struct ab_message *m)
{
	uint32_t payload_len = 0;
	const uint8_t *payload = udp_payload(frame, len, &payload_len);
	rx->parsed_frame = frame;
	rx->parsed_payload = payload;
	rx->parsed_payload_len = payload_len;
	int parsed = payload && payload_len >= ab_header_size(rx->config.format) ?
			     ab_parse_payload(rx->config.format, payload, m) : AB_PARSE_SHORT;
	if (parsed == AB_PARSE_END) {
		ab_track_end(&rx->tracker, m, line);
		return false;
	}
	if (parsed != AB_PARSE_DATA) {
		rx->counters.not_feed++;
		return false;
	}
	rx->counters.delivered++;
	if (line)
		rx->counters.delivered_b++;
	else
		rx->counters.delivered_a++;
	rx->counters.bytes += len;
	rx->counters.messages += m->count;
	uint64_t after_gap = rx->counters.after_gap;
	ab_track_message(&rx->tracker, m);
	if (rx->recovery && rx->counters.after_gap != after_gap)
		return ab_recovery_line_copy(rx->recovery, m); /* its hole was declared: a late fill, or a duplicate */
	return true;
}

/* A delivered frame's payload to the outputs (kbx_ab_rx_set_output), if any. */
static void emit_frame(struct kbx_ab_rx *rx, const uint8_t *frame, uint32_t len, uint32_t line, const struct ab_message *m,
		       uint64_t realtime_ns)
{
	uint32_t payload_len = rx->parsed_payload_len;
	const uint8_t *payload = rx->parsed_payload;
	if (!rx->out)
		return;
	if (frame != rx->parsed_frame) /* a held or recovered frame */
		payload = udp_payload(frame, len, &payload_len);
	if (payload)
		kbx_ab_out_emit(rx->out, payload, payload_len, &m->key, m->sequence, line, realtime_ns);
}

int kbx_ab_rx_ingest(struct kbx_ab_rx *rx, const uint8_t *frame, uint32_t len, uint32_t line)
{
	struct ab_message m;
	if (!receive_frame(rx, frame, len, line ? 1 : 0, &m))
		return 0;
	emit_frame(rx, frame, len, line ? 1 : 0, &m, clock_ns(CLOCK_REALTIME));
	kbx_ab_out_flush(rx->out);
	return 1;
}

int kbx_ab_rx_take_events(struct kbx_ab_rx *rx, struct kbx_ab_event *events, uint32_t capacity)
{
	return (int)ab_take_events(&rx->tracker, events, capacity);
}

/* The point where a frame is delivered: to the outputs, and copied out for the caller. False (nothing done) when the copy buffer has no room. */
static bool deliver_frame(void *ctx, const uint8_t *frame, uint32_t len, uint32_t line, const struct ab_message *m, uint64_t realtime_ns)
{
	struct copy_out *out = ctx;
	uint32_t size = sizeof(struct kbx_ab_record) + ((len + 7) & ~7u);
	if (out->buffer && out->capacity - out->used < size)
		return false;
	emit_frame(out->rx, frame, len, line, m, realtime_ns);
	if (!out->buffer)
		return true;
	struct kbx_ab_record rec = { .len = len, .line = line, .realtime_ns = realtime_ns, .sequence = m->sequence };
	memcpy(rec.key, &m->key, sizeof(rec.key));
	memcpy(out->buffer + out->used, &rec, sizeof(rec));
	memcpy(out->buffer + out->used + sizeof(rec), frame, len);
	out->used += size;
	return true;
}

/* A frame to deliver: in sequence order through the hold, else at once. */
static void offer_frame(struct copy_out *out, const uint8_t *frame, uint32_t len, uint32_t line, const struct ab_message *m)
{
	struct kbx_ab_rx *rx = out->rx;
	if (rx->order)
		ab_order_offer(rx->order, rx->tracker.now_ns, frame, len, line, m, out->realtime_ns, deliver_frame, out);
	else
		deliver_frame(out, frame, len, line, m, out->realtime_ns);
}

static bool recovery_room(void *ctx)
{
	const struct copy_out *out = ctx;
	return !out->buffer || out->capacity - out->used >= sizeof(struct kbx_ab_record) + 2 * 2048;
}

static void deliver_recovered(void *ctx, const uint8_t *frame, uint32_t len, const struct ab_message *m)
{
	offer_frame(ctx, frame, len, KBX_AB_LINE_RECOVERY, m);
}

/* Holes out of time, answers, requests and settled gaps (at most every quarter of the wait for the scan). */
static void recovery_step(struct kbx_ab_rx *rx, struct copy_out *out)
{
	uint64_t now = rx->tracker.now_ns;
	if (rx->tracker.expire_ns && (int64_t)(now - rx->next_expire_ns) >= 0) {
		ab_track_expire(&rx->tracker);
		rx->next_expire_ns = now + rx->tracker.expire_ns / 4;
	}
	ab_recovery_step(rx->recovery, now, recovery_room, deliver_recovered, out);
}

/*
 * The XDP arrival time of a stamped frame (struct ab_arrival_meta before it) as CLOCK_REALTIME, recorded
 * against took_ns (CLOCK_MONOTONIC, when the batch was taken from the ring); the batch's time otherwise.
 */
static uint64_t arrival_of(struct kbx_ab_rx *rx, uint8_t *frame, uint64_t took_ns, int64_t realtime_offset,
			   uint64_t batch_realtime_ns)
{
	struct ab_arrival_meta *meta = (struct ab_arrival_meta *)(frame - sizeof(*meta));
	if (meta->magic != AB_ARRIVAL_META_MAGIC || (int64_t)(took_ns - meta->ktime_ns) < 0) {
		rx->counters.arrival_unstamped++;
		return batch_realtime_ns;
	}
	meta->magic = 0; /* the frame's next use may come unstamped */
	rx->counters.arrival_stamped++;
	ab_latency_record(&rx->arrival, took_ns - meta->ktime_ns);
	return meta->ktime_ns + (uint64_t)realtime_offset;
}

/* Spins until a socket's RX ring has something (true) or spin_ns passed (false). */
static bool spin_for_rx(struct kbx_ab_rx *rx, uint64_t spin_ns)
{
	uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + spin_ns;
	for (uint32_t spins = 1;; spins++) {
		for (uint32_t i = 0; i < rx->socket_count; i++)
			if (xsk_cons_nb_avail(&rx->sockets[i].xsk->rx, 1))
				return true;
		if (spins % 16 == 0 && (int64_t)(clock_ns(CLOCK_MONOTONIC) - deadline) >= 0)
			return false;
		__builtin_ia32_pause();
	}
}

int kbx_ab_rx_poll(struct kbx_ab_rx *rx, struct kbx_ab_event *events, uint32_t capacity, uint8_t *copy,
		   uint32_t copy_capacity, uint32_t *copied_bytes, int timeout_ms)
{
	uint8_t *area = kbx_umem_area(rx->umem);
	struct kbx_umem_config uc;
	kbx_umem_get_config(rx->umem, &uc);
	uint32_t record_max = sizeof(struct kbx_ab_record) + uc.frame_size;
	struct copy_out out = { .rx = rx, .buffer = copy, .capacity = copy_capacity, .realtime_ns = clock_ns(CLOCK_REALTIME) };
	uint32_t total = 0;
	uint64_t delivered_before = rx->counters.delivered;
	rx->tracker.now_ns = clock_ns(CLOCK_MONOTONIC);
	uint64_t batch_realtime_ns = out.realtime_ns;

	for (int attempt = 0; attempt < 2; attempt++) {
		for (uint32_t i = 0; i < rx->socket_count; i++) {
			struct ab_line_socket *s = &rx->sockets[i];
			uint32_t max = rx->config.batch_size;
			if (copy) {
				uint32_t room = (copy_capacity - out.used) / record_max;
				if (room < max) {
					max = room;
					rx->counters.copy_truncated++;
				}
			}
			int n = kbx_xsk_receive(s->xsk, s->descs, max, s->held, 0);
			if (n < 0)
				return n;
			s->held = (uint32_t)n;
			total += (uint32_t)n;
			bool stamped = rx->config.xdp_arrival && n > 0;
			uint64_t took_ns = stamped ? clock_ns(CLOCK_MONOTONIC) : 0;
			int64_t realtime_offset = (int64_t)(batch_realtime_ns - rx->tracker.now_ns);
			for (int j = 0; j < n; j++) {
				uint8_t *frame = area + s->descs[j].addr;
				uint32_t len = s->descs[j].len;
				struct ab_message m;
				if (!receive_frame(rx, frame, len, s->line, &m))
					continue;
				if (stamped)
					out.realtime_ns = arrival_of(rx, frame, took_ns, realtime_offset, batch_realtime_ns);
				offer_frame(&out, frame, len, s->line, &m);
			}
			out.realtime_ns = batch_realtime_ns;
		}
		if (rx->recovery)
			recovery_step(rx, &out);
		if (rx->order)
			ab_order_step(rx->order, rx->tracker.now_ns, deliver_frame, &out);
		if (total > 0 || timeout_ms <= 0 || attempt == 1)
			break;
		/* Spin first (busy_poll_us, at most the timeout): a loop that keeps up with a busy feed finds the next
		 * batch before it would sleep, and a loop that never sleeps is never woken by the kernel. */
		uint64_t timeout_ns = (uint64_t)timeout_ms * 1000000ULL;
		uint64_t spin_ns = (uint64_t)rx->config.busy_poll_us * 1000ULL;
		if (spin_ns && (spin_for_rx(rx, spin_ns < timeout_ns ? spin_ns : timeout_ns) || spin_ns >= timeout_ns)) {
			out.realtime_ns = batch_realtime_ns = clock_ns(CLOCK_REALTIME);
			rx->tracker.now_ns = clock_ns(CLOCK_MONOTONIC);
			continue;
		}
		struct pollfd fds[KBX_AB_MAX_SOCKETS + 1];
		uint32_t nfds = rx->socket_count;
		for (uint32_t i = 0; i < rx->socket_count; i++)
			fds[i] = (struct pollfd){ .fd = rx->sockets[i].xsk->fd, .events = POLLIN };
		if (rx->recovery)
			fds[nfds++] = (struct pollfd){ .fd = rx->recovery->fd, .events = POLLIN };
		poll(fds, nfds, timeout_ms);
		out.realtime_ns = batch_realtime_ns = clock_ns(CLOCK_REALTIME); /* the arrival time of what the wait brought */
		rx->tracker.now_ns = clock_ns(CLOCK_MONOTONIC);
	}
	kbx_ab_out_flush(rx->out);
	if (rx->counters.delivered != delivered_before) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		if (!rx->counters.first_delivery_ns)
			rx->counters.first_delivery_ns = now;
		rx->counters.last_delivery_ns = now;
	}
	rx->counters.batches++;
	if (copied_bytes)
		*copied_bytes = out.used;
	return (int)ab_take_events(&rx->tracker, events, capacity);
}

int kbx_ab_rx_flush(struct kbx_ab_rx *rx, struct kbx_ab_event *events, uint32_t capacity)
{
	if (rx->tracker.pending_count == 0)
		ab_track_flush(&rx->tracker);
	return (int)ab_take_events(&rx->tracker, events, capacity);
}
