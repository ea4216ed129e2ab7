// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ab-arbitrate's native receive loop; see include/kbx_ab.h.
 *
 * Gap tracking per stream: `base` is the next expected (logical) sequence number and a circular bitmap of
 * `window` bits holds which numbers in [base, base + window) arrived. A number at or past base + window
 * pushes base forward: every number leaving the window unseen is a gap. A number arriving inside the
 * window fills its bit (a late fill when it is below the highest seen). Numbers are logical: optiq's
 * u32 is unwrapped against the highest seen, and a restart (far behind) moves them above all earlier ones,
 * the same rules as the XDP program.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/if_ether.h>

#include "ab_format.h"
#include "kbx_ab.h"
#include "xsk_internal.h"

struct ab_track {
	struct ab_stream_key key;
	bool used;
	bool started;
	uint64_t base;
	uint64_t highest;
	uint64_t offset; /* logical - raw */
	uint64_t *bits;
	/* The hole being reported: kept open until the number after it is consumed, so one hole is one record. */
	bool run_open;
	uint64_t run_from;
	uint64_t run_to;
};

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
	struct ab_track *streams;
	uint32_t table_size; /* power of two >= 2 * max_streams */
	struct kbx_ab_gap *pending;
	uint32_t pending_count;
	uint32_t pending_capacity;
	struct kbx_ab_rx_counters counters;
};

int kbx_ab_rx_create(const struct kbx_ab_rx_config *config, struct kbx_ab_rx **out)
{
	struct kbx_ab_rx *rx = calloc(1, sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	rx->config = *config;
	if (!rx->config.window)
		rx->config.window = 4096;
	if (!rx->config.max_streams)
		rx->config.max_streams = 1024;
	if (!rx->config.batch_size)
		rx->config.batch_size = 64;
	if (!rx->config.reset_distance)
		rx->config.reset_distance = 1ULL << 20;
	uint32_t w = rx->config.window;
	if (w < 64 || w > KBX_AB_MAX_WINDOW || (w & (w - 1)) || rx->config.format > AB_FORMAT_MOLDUDP64) {
		kbx_set_operation("create A/B receive loop: window %u must be a power of two from 64 to %u", w,
				  KBX_AB_MAX_WINDOW);
		free(rx);
		return -EINVAL;
	}
	rx->table_size = 1;
	while (rx->table_size < 2 * rx->config.max_streams)
		rx->table_size <<= 1;
	rx->streams = calloc(rx->table_size, sizeof(*rx->streams));
	if (!rx->streams) {
		free(rx);
		return -ENOMEM;
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
		kbx_set_operation("add AF_XDP socket fd %d to the A/B receive loop: not an open socket of the UMEM", fd);
		return -EINVAL;
	}
	if (rx->socket_count == KBX_AB_MAX_SOCKETS || line > 1 || (rx->umem && rx->umem != xsk->umem) || !xsk->has_rx) {
		kbx_set_operation("add %s queue %u to the A/B receive loop: %s", xsk->ifname, xsk->queue,
				  !xsk->has_rx ? "no RX ring" : line > 1 ? "line must be 0 or 1" : "another UMEM or too many sockets");
		return -EINVAL;
	}
	struct ab_line_socket *s = &rx->sockets[rx->socket_count];
	s->descs = calloc(rx->config.batch_size, sizeof(*s->descs));
	if (!s->descs)
		return -ENOMEM;
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
	for (uint32_t i = 0; i < rx->table_size; i++)
		free(rx->streams[i].bits);
	free(rx->streams);
	free(rx->pending);
	free(rx);
}

void kbx_ab_rx_counters(const struct kbx_ab_rx *rx, struct kbx_ab_rx_counters *out)
{
	*out = rx->counters;
}

static uint64_t key_hash(const struct ab_stream_key *k)
{
	uint64_t h = k->id * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)k->id2 << 32 | k->format);
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ULL;
	return h ^ (h >> 32);
}

static struct ab_track *track_for(struct kbx_ab_rx *rx, const struct ab_stream_key *key)
{
	uint32_t mask = rx->table_size - 1;
	for (uint32_t i = (uint32_t)key_hash(key) & mask, probes = 0; probes < rx->table_size; i = (i + 1) & mask, probes++) {
		struct ab_track *t = &rx->streams[i];
		if (t->used && memcmp(&t->key, key, sizeof(*key)) == 0)
			return t;
		if (!t->used) {
			if (rx->counters.streams >= rx->config.max_streams)
				return NULL;
			t->bits = calloc(rx->config.window / 64, sizeof(uint64_t));
			if (!t->bits)
				return NULL;
			t->used = true;
			t->key = *key;
			rx->counters.streams++;
			return t;
		}
	}
	return NULL;
}

static void push_gap(struct kbx_ab_rx *rx, const struct ab_track *t, uint64_t from, uint64_t to)
{
	/* Reported in the stream's raw numbering (optiq: wrapped to 32 bits). */
	uint64_t raw_from = from - t->offset, raw_to = to - t->offset;
	if (t->key.format == AB_FORMAT_OPTIQ) {
		raw_from &= 0xffffffffULL;
		raw_to &= 0xffffffffULL;
	}
	if (rx->pending_count == rx->pending_capacity) {
		uint32_t capacity = rx->pending_capacity ? 2 * rx->pending_capacity : 64;
		struct kbx_ab_gap *grown = realloc(rx->pending, capacity * sizeof(*grown));
		if (!grown)
			return; /* counted in gap_messages; the record is lost */
		rx->pending = grown;
		rx->pending_capacity = capacity;
	}
	struct kbx_ab_gap *g = &rx->pending[rx->pending_count++];
	memcpy(g->key, &t->key, sizeof(t->key));
	g->from = raw_from;
	g->to = raw_to;
	g->count = to - from + 1;
	rx->counters.gaps++;
}

/* The open hole is complete (the number after it arrived, or the stream ends): report it. */
static void close_run(struct kbx_ab_rx *rx, struct ab_track *t)
{
	if (!t->run_open)
		return;
	push_gap(rx, t, t->run_from, t->run_to);
	t->run_open = false;
}

static void emit_gap(struct kbx_ab_rx *rx, struct ab_track *t, uint64_t from, uint64_t to)
{
	rx->counters.gap_messages += to - from + 1;
	if (t->run_open && t->run_to + 1 == from) {
		t->run_to = to;
		return;
	}
	close_run(rx, t);
	t->run_open = true;
	t->run_from = from;
	t->run_to = to;
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

/* Moves base up to new_base; numbers leaving the window unseen are gaps. */
static void advance_to(struct kbx_ab_rx *rx, struct ab_track *t, uint64_t new_base)
{
	uint32_t w = rx->config.window;
	uint64_t stop = new_base - t->base > w ? t->base + w : new_base;
	uint64_t run_from = 0;
	bool in_run = false;
	for (uint64_t n = t->base; n < stop; n++) {
		if (bit_get(t, w, n)) {
			bit_put(t, w, n, false);
			if (in_run)
				emit_gap(rx, t, run_from, n - 1);
			in_run = false;
			close_run(rx, t);
		} else if (!in_run) {
			run_from = n;
			in_run = true;
		}
	}
	if (stop < new_base) { /* never in the window at all */
		if (!in_run)
			run_from = stop;
		in_run = true;
	}
	if (in_run)
		emit_gap(rx, t, run_from, new_base - 1);
	t->base = new_base;
}

static void track(struct kbx_ab_rx *rx, const struct ab_message *m)
{
	struct ab_track *t = track_for(rx, &m->key);
	if (!t) {
		rx->counters.untracked++;
		return;
	}
	uint32_t w = rx->config.window;
	uint64_t l;
	if (!t->started) {
		t->started = true;
		l = m->sequence;
		t->base = l;
		t->highest = l;
	} else if (m->seq_bits == 32) {
		uint32_t ref = (uint32_t)(t->highest - t->offset);
		l = t->highest + (int64_t)(int32_t)((uint32_t)m->sequence - ref);
	} else {
		l = m->sequence + t->offset;
	}
	if ((int64_t)(l - t->base) <= -(int64_t)rx->config.reset_distance) {
		/* A restart: what is missing below the old highest is lost; numbering continues above it. */
		rx->counters.resets++;
		if ((int64_t)(t->highest - t->base) >= 0)
			advance_to(rx, t, t->highest + 1);
		close_run(rx, t);
		memset(t->bits, 0, w / 8);
		t->offset = t->highest + 2 * (uint64_t)w - m->sequence;
		l = m->sequence + t->offset;
		t->base = l;
		t->highest = l;
	}
	uint32_t count = m->count ? m->count : 1;
	for (uint32_t i = 0; i < count; i++, l++) {
		if ((int64_t)(l - t->base) < 0) {
			rx->counters.after_gap++;
			continue;
		}
		if (l - t->base >= w)
			advance_to(rx, t, l - w + 1);
		if (bit_get(t, w, l)) {
			rx->counters.repeated++;
			continue;
		}
		if ((int64_t)(l - t->highest) < 0)
			rx->counters.late_fills++;
		else
			t->highest = l;
		bit_put(t, w, l, true);
		while (t->base <= t->highest && bit_get(t, w, t->base)) {
			bit_put(t, w, t->base, false);
			t->base++;
			close_run(rx, t);
		}
	}
}

/* The UDP payload of an Ethernet (+ one VLAN tag) IPv4 frame, or NULL. */
static const uint8_t *udp_payload(const uint8_t *f, uint32_t len, uint32_t *payload_len)
{
	uint32_t at = 14;
	if (len < at)
		return NULL;
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == ETH_P_8021Q || type == ETH_P_8021AD) {
		if (len < at + 4)
			return NULL;
		type = (uint16_t)(f[16] << 8 | f[17]);
		at += 4;
	}
	if (type != ETH_P_IP || len < at + 20 || (f[at] >> 4) != 4 || f[at + 9] != 17)
		return NULL;
	uint32_t ihl = (f[at] & 15) * 4u;
	uint32_t total = (uint32_t)(f[at + 2] << 8 | f[at + 3]);
	if (ihl < 20 || total < ihl + 8 || at + total > len)
		return NULL;
	at += ihl;
	uint32_t udp_len = (uint32_t)(f[at + 4] << 8 | f[at + 5]);
	if (udp_len < 8 || udp_len > total - ihl)
		return NULL;
	*payload_len = udp_len - 8;
	return f + at + 8;
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint32_t take_pending(struct kbx_ab_rx *rx, struct kbx_ab_gap *gaps, uint32_t capacity)
{
	uint32_t n = rx->pending_count < capacity ? rx->pending_count : capacity;
	if (n == 0)
		return 0;
	memcpy(gaps, rx->pending, n * sizeof(*gaps));
	memmove(rx->pending, rx->pending + n, (rx->pending_count - n) * sizeof(*gaps));
	rx->pending_count -= n;
	return n;
}

int kbx_ab_rx_poll(struct kbx_ab_rx *rx, struct kbx_ab_gap *gaps, uint32_t gap_capacity, uint8_t *copy,
		   uint32_t copy_capacity, uint32_t *copied_bytes, int timeout_ms)
{
	uint8_t *area = kbx_umem_area(rx->umem);
	struct kbx_umem_config uc;
	kbx_umem_get_config(rx->umem, &uc);
	uint32_t record_max = sizeof(struct kbx_ab_record) + uc.frame_size;
	uint32_t used = 0;
	uint32_t total = 0;
	uint64_t delivered_before = rx->counters.delivered;
	uint64_t realtime = clock_ns(CLOCK_REALTIME);

	for (int attempt = 0; attempt < 2; attempt++) {
		for (uint32_t i = 0; i < rx->socket_count; i++) {
			struct ab_line_socket *s = &rx->sockets[i];
			uint32_t max = rx->config.batch_size;
			if (copy) {
				uint32_t room = (copy_capacity - used) / record_max;
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
			for (int j = 0; j < n; j++) {
				const uint8_t *frame = area + s->descs[j].addr;
				uint32_t len = s->descs[j].len;
				uint32_t payload_len = 0;
				const uint8_t *payload = udp_payload(frame, len, &payload_len);
				struct ab_message m;
				if (!payload || payload_len < ab_header_size(rx->config.format) ||
				    ab_parse_payload(rx->config.format, payload, &m) != AB_PARSE_DATA) {
					rx->counters.not_feed++;
					continue;
				}
				rx->counters.delivered++;
				if (s->line)
					rx->counters.delivered_b++;
				else
					rx->counters.delivered_a++;
				rx->counters.bytes += len;
				rx->counters.messages += m.count;
				track(rx, &m);
				if (copy) {
					struct kbx_ab_record rec = { .len = len, .line = s->line, .realtime_ns = realtime, .sequence = m.sequence };
					memcpy(rec.key, &m.key, sizeof(rec.key));
					memcpy(copy + used, &rec, sizeof(rec));
					memcpy(copy + used + sizeof(rec), frame, len);
					used += sizeof(rec) + ((len + 7) & ~7u);
				}
			}
		}
		if (total > 0 || timeout_ms <= 0 || attempt == 1)
			break;
		struct pollfd fds[KBX_AB_MAX_SOCKETS];
		for (uint32_t i = 0; i < rx->socket_count; i++)
			fds[i] = (struct pollfd){ .fd = rx->sockets[i].xsk->fd, .events = POLLIN };
		poll(fds, rx->socket_count, timeout_ms);
		realtime = clock_ns(CLOCK_REALTIME); /* the arrival time of what the wait brought */
	}
	if (rx->counters.delivered != delivered_before) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		if (!rx->counters.first_delivery_ns)
			rx->counters.first_delivery_ns = now;
		rx->counters.last_delivery_ns = now;
	}
	rx->counters.batches++;
	if (copied_bytes)
		*copied_bytes = used;
	return (int)take_pending(rx, gaps, gap_capacity);
}

int kbx_ab_rx_flush(struct kbx_ab_rx *rx, struct kbx_ab_gap *gaps, uint32_t gap_capacity)
{
	if (rx->pending_count == 0) {
		for (uint32_t i = 0; i < rx->table_size; i++) {
			struct ab_track *t = &rx->streams[i];
			if (t->used && t->started && (int64_t)(t->highest - t->base) >= 0)
				advance_to(rx, t, t->highest + 1);
			if (t->used)
				close_run(rx, t);
		}
	}
	return (int)take_pending(rx, gaps, gap_capacity);
}
