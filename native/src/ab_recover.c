// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * MoldUDP64 gap recovery for ab-arbitrate's receive loop; see include/kbx_ab.h (kbx_ab_rx_enable_recovery)
 * and ab_recover.h. A gap the tracker declares waits in a slot with a bit per message; requests for its
 * missing messages go out at once and again after timeout, 2 × timeout, … ; every answered message of it is
 * delivered once; its record goes on with the outcome when the last message came (recovered) or the last
 * retry's time passed (lost).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ab_recover.h"
#include "kbx_frame.h"

#define REQUESTS_PER_ROUND 64
#define MOLD_HEARTBEAT 0
#define MOLD_END_OF_SESSION 0xffffu

int ab_recovery_open(struct ab_recovery *r, const struct kbx_ab_recovery_config *config, struct ab_tracker *tr,
		     struct kbx_ab_rx_counters *counters)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->config = *config;
	if (!r->config.max_request)
		r->config.max_request = KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST;
	if (r->config.max_request > 65534 || !r->config.server_port || r->config.server_port > 65535 || !r->config.timeout_ns)
		return -EINVAL;
	r->tracker = tr;
	r->counters = counters;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)r->config.server_port),
				  .sin_addr.s_addr = r->config.server_ip };
	struct sockaddr_in local;
	socklen_t local_len = sizeof(local);
	int buffer = 4 << 20; /* a burst of answers waits here while a batch is delivered */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
	/* Connected only to learn the local address: unconnected, a closed server port (ICMP unreachable) never
	 * fails a later send, and answers are taken from the server's address only. */
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 || getsockname(fd, (struct sockaddr *)&local, &local_len) < 0 ||
	    connect(fd, &unspec, sizeof(unspec)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	r->fd = fd;
	r->local_ip = local.sin_addr.s_addr;
	r->local_port = ntohs(local.sin_port);
	return 0;
}

void ab_recovery_close(struct ab_recovery *r)
{
	for (uint32_t i = 0; i < KBX_AB_RECOVERY_SLOTS; i++)
		free(r->gaps[i].got);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static struct ab_recovery_gap *gap_of(struct ab_recovery *r, const uint8_t key[16], uint64_t seq);
static bool got_bit(const struct ab_recovery_gap *g, uint64_t i);

static void settle(struct ab_recovery *r, struct ab_recovery_gap *g, uint32_t outcome, uint64_t now_ns)
{
	g->gap.outcome = outcome;
	if (outcome == KBX_AB_GAP_RECOVERED) {
		g->gap.recovery_ns = now_ns - g->declared_ns;
		r->counters->gaps_recovered++;
	} else {
		r->counters->gaps_unrecovered++;
	}
	ab_track_push(r->tracker, &g->gap);
	if (g->used) {
		free(g->got);
		memset(g, 0, sizeof(*g));
		r->counters->recovery_pending--;
	}
}

void ab_recovery_add(void *recovery, const struct kbx_ab_event *gap)
{
	struct ab_recovery *r = recovery;
	struct ab_recovery_gap *slot = NULL;
	for (uint32_t i = 0; i < KBX_AB_RECOVERY_SLOTS && !slot; i++)
		if (!r->gaps[i].used)
			slot = &r->gaps[i];
	uint64_t *got = slot && gap->count <= KBX_AB_RECOVERY_MAX_GAP ? calloc((gap->count + 63) / 64, sizeof(uint64_t)) : NULL;
	if (!got) {
		struct ab_recovery_gap refused = { .gap = *gap };
		r->counters->recovery_refused++;
		settle(r, &refused, KBX_AB_GAP_LOST, 0);
		return;
	}
	*slot = (struct ab_recovery_gap){ .gap = *gap, .declared_ns = r->tracker->now_ns, .next_send_ns = r->tracker->now_ns,
					  .got = got, .used = true };
	r->counters->recovery_pending++;
}

static bool got_bit(const struct ab_recovery_gap *g, uint64_t i)
{
	return g->got[i / 64] >> (i % 64) & 1;
}

static void send_request(struct ab_recovery *r, const struct ab_recovery_gap *g, uint64_t first, uint32_t count)
{
	uint8_t req[KBX_AB_MOLD_REQUEST_SIZE];
	uint64_t seq = g->gap.from + first;
	memcpy(req, g->gap.key, 8); /* struct ab_stream_key of a mold stream: session[0..8) in id, [8..10) in id2 */
	memcpy(req + 8, g->gap.key + 8, 2);
	for (int i = 0; i < 8; i++)
		req[10 + i] = (uint8_t)(seq >> (56 - 8 * i));
	kbx_put_be16(req + 18, (uint16_t)count);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)r->config.server_port),
				  .sin_addr.s_addr = r->config.server_ip };
	if (sendto(r->fd, req, sizeof(req), MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)sizeof(req))
		r->counters->recovery_requests++;
}

/* Requests for every run of missing messages, max_request at a time (at most REQUESTS_PER_ROUND). */
static void request_missing(struct ab_recovery *r, const struct ab_recovery_gap *g)
{
	uint32_t sent = 0;
	for (uint64_t i = 0; i < g->gap.count && sent < REQUESTS_PER_ROUND;) {
		if (got_bit(g, i)) {
			i++;
			continue;
		}
		uint64_t n = 0;
		while (i + n < g->gap.count && n < r->config.max_request && !got_bit(g, i + n))
			n++;
		send_request(r, g, i, (uint32_t)n);
		sent++;
		i += n;
	}
}

bool ab_recovery_line_copy(struct ab_recovery *r, const struct ab_message *m)
{
	uint8_t key[16];
	memcpy(key, &m->key, sizeof(key));
	bool first = false;
	for (uint32_t k = 0; k < (m->count ? m->count : 1); k++) {
		struct ab_recovery_gap *g = gap_of(r, key, m->sequence + k);
		uint64_t i = g ? m->sequence + k - g->gap.from : 0;
		if (g && !got_bit(g, i)) {
			g->got[i / 64] |= 1ULL << (i % 64);
			g->received++;
			r->counters->late_line_fills++;
			first = true;
		} else {
			r->counters->late_line_dropped++;
		}
	}
	return first;
}

bool ab_recovery_take_answer(struct ab_recovery *r, const uint8_t *payload, uint32_t len)
{
	if (r->answer_len)
		return false;
	r->counters->recovery_answers++;
	if (len < AB_MOLD_HEADER_SIZE || len > sizeof(r->answer)) {
		r->counters->answers_malformed++;
		return true;
	}
	uint32_t count = kbx_get_be16(payload + 18);
	if (count == MOLD_HEARTBEAT || count == MOLD_END_OF_SESSION)
		return true;
	uint32_t at = AB_MOLD_HEADER_SIZE;
	for (uint32_t i = 0; i < count; i++) { /* every message whole, or the packet is refused */
		if (at + 2 > len || at + 2 + kbx_get_be16(payload + at) > len) {
			r->counters->answers_malformed++;
			return true;
		}
		at += 2 + kbx_get_be16(payload + at);
	}
	memcpy(r->answer, payload, len);
	r->answer_len = len;
	r->answer_at = AB_MOLD_HEADER_SIZE;
	r->answer_index = 0;
	return true;
}

static struct ab_recovery_gap *gap_of(struct ab_recovery *r, const uint8_t key[16], uint64_t seq)
{
	for (uint32_t k = 0; k < KBX_AB_RECOVERY_SLOTS; k++) {
		uint32_t i = (r->last_match + k) % KBX_AB_RECOVERY_SLOTS;
		struct ab_recovery_gap *g = &r->gaps[i];
		if (g->used && seq - g->gap.from < g->gap.count && memcmp(g->gap.key, key, 16) == 0) {
			r->last_match = i;
			return g;
		}
	}
	return NULL;
}

/* The frame of one recovered message: a downstream packet of it alone, from the server to our socket. */
static uint32_t recovered_frame(const struct ab_recovery *r, const uint8_t *msg, uint32_t msg_len, uint64_t seq, uint8_t *out)
{
	static const uint8_t zero_mac[6];
	uint8_t *ip = kbx_put_ethernet(out, zero_mac, zero_mac, 0x0800);
	uint8_t *udp = kbx_put_ipv4(ip, 0, 0, IPPROTO_UDP, &r->config.server_ip, &r->local_ip);
	kbx_put_be16(udp, (uint16_t)r->config.server_port);
	kbx_put_be16(udp + 2, r->local_port);
	uint8_t *p = udp + KBX_UDP_HEADER_LEN;
	memcpy(p, r->answer, 10);
	for (int i = 0; i < 8; i++)
		p[10 + i] = (uint8_t)(seq >> (56 - 8 * i));
	kbx_put_be16(p + 18, 1);
	kbx_put_be16(p + 20, (uint16_t)msg_len);
	memcpy(p + 22, msg, msg_len);
	kbx_finish_ipv4_udp(ip, AB_MOLD_HEADER_SIZE + 2 + msg_len, 1);
	return (uint32_t)(p + 22 + msg_len - out);
}

/* The next message of the answer being delivered. */
static void deliver_next(struct ab_recovery *r, ab_recovered_fn deliver, void *ctx)
{
	uint8_t frame[KBX_ETH_HEADER_LEN + KBX_IPV4_HEADER_LEN + KBX_UDP_HEADER_LEN + sizeof(r->answer)];
	struct ab_message m = { .count = 1, .seq_bits = 64 };
	const uint8_t *p = r->answer;
	m.key.id = ab_load_le64(p);
	m.key.id2 = (uint32_t)p[8] | ((uint32_t)p[9] << 8);
	m.key.format = AB_FORMAT_MOLDUDP64;
	m.sequence = ab_load_be64(p + 10) + r->answer_index;
	uint32_t msg_len = kbx_get_be16(p + r->answer_at);
	const uint8_t *msg = p + r->answer_at + 2;
	uint8_t key[16];
	memcpy(key, &m.key, sizeof(key));
	struct ab_recovery_gap *g = gap_of(r, key, m.sequence);
	uint64_t i = g ? m.sequence - g->gap.from : 0;
	if (!g || got_bit(g, i)) {
		r->counters->recovery_duplicates++;
	} else {
		g->got[i / 64] |= 1ULL << (i % 64);
		g->received++;
		r->counters->recovered_messages++;
		deliver(ctx, frame, recovered_frame(r, msg, msg_len, m.sequence, frame), &m);
	}
	r->answer_at += 2 + msg_len;
	if (++r->answer_index == kbx_get_be16(p + 18))
		r->answer_len = 0;
}

void ab_recovery_step(struct ab_recovery *r, uint64_t now_ns, bool (*room)(void *ctx), ab_recovered_fn deliver, void *ctx)
{
	uint8_t packet[2048];
	while (room(ctx)) {
		if (r->answer_len) {
			deliver_next(r, deliver, ctx);
			continue;
		}
		if (r->fd < 0)
			break;
		struct sockaddr_in from;
		socklen_t from_len = sizeof(from);
		ssize_t n = recvfrom(r->fd, packet, sizeof(packet), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &from_len);
		if (n < 0)
			break;
		if (from.sin_addr.s_addr == r->config.server_ip && ntohs(from.sin_port) == r->config.server_port)
			ab_recovery_take_answer(r, packet, (uint32_t)n);
	}
	for (uint32_t i = 0; i < KBX_AB_RECOVERY_SLOTS && r->counters->recovery_pending; i++) {
		struct ab_recovery_gap *g = &r->gaps[i];
		if (!g->used)
			continue;
		if (g->received == g->gap.count) {
			settle(r, g, KBX_AB_GAP_RECOVERED, now_ns);
		} else if ((int64_t)(now_ns - g->next_send_ns) >= 0) {
			if (g->attempts > r->config.retries) {
				settle(r, g, KBX_AB_GAP_LOST, now_ns);
				continue;
			}
			if (r->fd >= 0)
				request_missing(r, g);
			uint32_t shift = g->attempts < 16 ? g->attempts : 16;
			g->attempts++;
			g->next_send_ns = now_ns + (r->config.timeout_ns << shift);
		}
	}
}
