// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A minimal userspace TCP client connection: see kbx_tcp.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_internal.h"

struct kbx_tcp *kbx_tcp_create(const struct kbx_tcp_config *config)
{
	struct kbx_tcp *c = calloc(1, sizeof(*c));
	if (!c) return NULL;
	c->cfg = *config;
	if (!c->cfg.mss) c->cfg.mss = 1460;
	if (c->cfg.mss > FRAME_MAX - KBX_ETH_HEADER_LEN - KBX_IPV4_HEADER_LEN - KBX_TCP_HEADER_LEN) c->cfg.mss = FRAME_MAX - KBX_ETH_HEADER_LEN - KBX_IPV4_HEADER_LEN - KBX_TCP_HEADER_LEN;
	if (!c->cfg.rcv_buf) c->cfg.rcv_buf = 262144;
	if (!c->cfg.snd_buf) c->cfg.snd_buf = 1 << 20;
	if (!c->cfg.rto_min_us) c->cfg.rto_min_us = 200000;
	c->rcap = c->cfg.rcv_buf;
	c->scap = c->cfg.snd_buf;
	c->rbuf = malloc(c->rcap);
	c->sbuf = malloc(c->scap);
	c->txq = malloc(sizeof(*c->txq) * TXQ_FRAMES);
	if (!c->rbuf || !c->sbuf || !c->txq) {
		kbx_tcp_destroy(c);
		return NULL;
	}
	while ((c->rcap >> c->rcv_wscale) > 65535 && c->rcv_wscale < 14) c->rcv_wscale++;
	c->state = KBX_TCP_CLOSED;
	c->iss = c->cfg.isn;
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->ecn_recover = c->iss;
	c->peer_mss = 536;
	c->rto_us = RTO_INITIAL_US;
	c->ssthresh = 0x7fffffff;
	return c;
}

void kbx_tcp_destroy(struct kbx_tcp *c)
{
	if (!c) return;
	free(c->rbuf);
	free(c->sbuf);
	free(c->txq);
	free(c);
}

void tcp_set_closed(struct kbx_tcp *c, uint32_t reason)
{
	c->state = KBX_TCP_CLOSED;
	c->ack_pending = 0;
	if (!c->close_reason) c->close_reason = reason;
	c->rto_deadline = 0;
	c->persist_deadline = 0;
}


/* Builds one segment into the TX queue. data: `len` bytes of the send ring starting at sequence `seq`. */
void tcp_emit(struct kbx_tcp *c, uint8_t flags, uint32_t seq, uint32_t len, int ect)
{
	uint32_t opt_len = (flags & F_SYN) ? 8 : 0;
	uint32_t tcp_len = KBX_TCP_HEADER_LEN + opt_len + len;
	uint8_t *ip, *tcp;
	uint32_t slot, win;

	if (c->txcount == TXQ_FRAMES) {
		c->st.tx_queue_full++;
		return;
	}
	slot = (c->txhead + c->txcount) % TXQ_FRAMES;
	ip = kbx_put_ethernet(c->txq[slot], c->cfg.remote_mac, c->cfg.local_mac, ETH_P_IP);
	tcp = kbx_put_ipv4(ip, ect ? 0x02 : 0 /* ECT(0) */, c->ip_id++, IPPROTO_TCP, &c->cfg.local_ip, &c->cfg.remote_ip);
	kbx_put_be16(tcp, c->cfg.local_port);
	kbx_put_be16(tcp + 2, c->cfg.remote_port);
	kbx_put_be32(tcp + 4, seq);
	kbx_put_be32(tcp + 8, (flags & F_ACK) ? c->rcv_nxt : 0);
	tcp[12] = (uint8_t)(((KBX_TCP_HEADER_LEN + opt_len) / 4) << 4);
	if ((flags & F_ACK) && c->ece_pending && c->ecn_ok) flags |= F_ECE;
	tcp[13] = flags;
	win = (flags & F_SYN) ? (rcv_window(c) > 65535 ? 65535 : rcv_window(c)) : rcv_window(c) >> c->rcv_wscale;
	kbx_put_be16(tcp + 14, (uint16_t)(win > 65535 ? 65535 : win));
	kbx_put_be16(tcp + 18, 0);
	if (opt_len) {
		uint8_t *o = tcp + KBX_TCP_HEADER_LEN;
		o[0] = 2; o[1] = 4; kbx_put_be16(o + 2, c->cfg.mss);
		o[4] = 1; o[5] = 3; o[6] = 3; o[7] = c->rcv_wscale;
	}
	if (len) {
		uint32_t off = seq - c->snd_una;
		uint32_t at = (c->shead + off) % c->scap;
		uint32_t first = len < c->scap - at ? len : c->scap - at;
		memcpy(tcp + KBX_TCP_HEADER_LEN + opt_len, c->sbuf + at, first);
		if (first < len) memcpy(tcp + KBX_TCP_HEADER_LEN + opt_len + first, c->sbuf, len - first);
	}
	kbx_finish_ipv4_tcp(ip, tcp_len);
	c->txlen[slot] = (uint16_t)(KBX_ETH_HEADER_LEN + KBX_IPV4_HEADER_LEN + tcp_len);
	c->txcount++;
	c->st.segs_out++;
	if (flags & F_ACK) c->ack_pending = 0; /* it carries rcv_nxt */
	if (flags & F_RST) c->st.rst_out++;
}

void tcp_send_ack(struct kbx_tcp *c) { tcp_emit(c, F_ACK, c->snd_nxt, 0, 0); }

void tcp_arm_rto(struct kbx_tcp *c)
{
	uint64_t rto = (uint64_t)c->rto_us << c->backoff;
	if (rto > RTO_MAX_US) rto = RTO_MAX_US;
	c->rto_deadline = c->now + rto * 1000;
}

int kbx_tcp_connect(struct kbx_tcp *c, uint64_t now_ns)
{
	if (c->state != KBX_TCP_CLOSED || c->close_reason) return kbx_fail(-EISCONN, "connect TCP", "the connection was used before");
	c->now = now_ns;
	c->last_rx = now_ns;
	c->state = KBX_TCP_SYN_SENT;
	tcp_emit(c, F_SYN | (c->cfg.ecn ? F_ECE | F_CWR : 0), c->iss, 0, 0);
	c->snd_nxt = c->snd_max = c->iss + 1;
	c->rtt_timing = 1;
	c->rtt_seq = c->iss;
	c->rtt_start_ns = now_ns;
	tcp_arm_rto(c);
	return 0;
}

void tcp_rtt_sample(struct kbx_tcp *c)
{
	uint32_t r = (uint32_t)((c->now - c->rtt_start_ns) / 1000);
	if (!c->srtt_us) {
		c->srtt_us = r ? r : 1;
		c->rttvar_us = r / 2;
	} else {
		uint32_t d = c->srtt_us > r ? c->srtt_us - r : r - c->srtt_us;
		c->rttvar_us = (3 * c->rttvar_us + d) / 4;
		c->srtt_us = (7 * c->srtt_us + r) / 8;
	}
	c->rto_us = c->srtt_us + 4 * c->rttvar_us;
	if (c->rto_us < c->cfg.rto_min_us) c->rto_us = c->cfg.rto_min_us;
	if (c->rto_us > RTO_MAX_US) c->rto_us = RTO_MAX_US;
	c->rtt_timing = 0;
}


static void arm_persist(struct kbx_tcp *c)
{
	uint64_t interval = (uint64_t)c->rto_us << c->persist_backoff;
	if (interval > PERSIST_MAX_US) interval = PERSIST_MAX_US > c->rto_us ? PERSIST_MAX_US : c->rto_us;
	c->persist_deadline = c->now + interval * 1000;
}

/*
 * RFC 9293 3.8.6.1: one byte of data beyond the zero window, sent again at each expiry with the interval
 * doubled up to PERSIST_MAX_US (a lost window update costs at most that); the connection is never given up
 * while the peer keeps answering. The byte
 * gets its sequence number (the peer may take it); the persist timer, not the RTO, covers it.
 */
static void zero_window_probe(struct kbx_tcp *c)
{
	c->rto_deadline = 0;
	c->rtt_timing = 0;
	c->snd_nxt = c->snd_una;
	tcp_emit(c, F_ACK, c->snd_una, 1, 0);
	c->snd_nxt = c->snd_una + 1;
	if (SEQ_GT(c->snd_nxt, c->snd_max)) {
		c->st.bytes_out++; /* the probe's byte was never sent before */
		c->snd_max = c->snd_nxt;
	}
	c->st.zero_window_probes++;
	if (c->persist_backoff < MAX_BACKOFF) c->persist_backoff++;
	arm_persist(c);
}

/*
 * RFC 9293 3.8.4: after keepalive_s without a segment from the peer and with nothing in flight, an ACK
 * carrying an old sequence number (snd_nxt - 1) makes the peer answer; any segment from it resets the count.
 */
static int keepalive(struct kbx_tcp *c)
{
	uint64_t idle_ns = (uint64_t)c->cfg.keepalive_s * 1000000000ull;
	if (!c->cfg.keepalive_s || c->state != KBX_TCP_ESTABLISHED || c->snd_una != c->snd_max || c->slen) return 0;
	if (c->now - c->last_rx < idle_ns * (c->keepalives_unanswered + 1)) return 0;
	if (c->keepalives_unanswered == KBX_TCP_KEEPALIVE_PROBES) {
		tcp_emit(c, F_RST | F_ACK, c->snd_nxt, 0, 0);
		tcp_set_closed(c, KBX_TCP_TIMED_OUT);
		return 1;
	}
	tcp_emit(c, F_ACK, c->snd_nxt - 1, 0, 0);
	c->keepalives_unanswered++;
	c->st.keepalives++;
	return 0;
}

/* Sends what the windows allow, then the FIN once all data went out. */
void tcp_output(struct kbx_tcp *c)
{
	uint32_t mss = smss(c);
	if (c->state != KBX_TCP_ESTABLISHED && c->state != KBX_TCP_CLOSE_WAIT && c->state != KBX_TCP_FIN_WAIT_1 &&
	    c->state != KBX_TCP_LAST_ACK && c->state != KBX_TCP_CLOSING)
		return;
	for (;;) {
		uint32_t off = c->snd_nxt - c->snd_una;
		uint32_t window = c->snd_wnd < c->cwnd ? c->snd_wnd : c->cwnd;
		uint32_t len;
		int fresh;
		/* a full TX queue: the rest goes out at the next poll (a segment emitted into it would be lost) */
		if (off >= c->slen || off >= window || c->txcount >= TXQ_FRAMES - 1) break;
		len = c->slen - off;
		if (len > mss) len = mss;
		if (len > window - off) len = window - off;
		fresh = SEQ_GEQ(c->snd_nxt, c->snd_max);
		if (fresh && c->cfg.drop_tx_nth && ++c->new_data_segs == c->cfg.drop_tx_nth) {
			c->st.tx_dropped_by_hook++;
		} else {
			uint8_t flags = F_ACK | F_PSH;
			if (fresh && c->cwr_pending) {
				flags |= F_CWR;
				c->cwr_pending = 0;
			}
			tcp_emit(c, flags, c->snd_nxt, len, c->ecn_ok && fresh);
		}
		if (!fresh) c->st.retransmits++;
		/* new bytes: a resent segment may reach past snd_max (after a timeout, with a larger window) */
		if (SEQ_GT(c->snd_nxt + len, c->snd_max)) c->st.bytes_out += c->snd_nxt + len - c->snd_max;
		if (fresh && !c->rtt_timing) {
			c->rtt_timing = 1;
			c->rtt_seq = c->snd_nxt;
			c->rtt_start_ns = c->now;
		}
		c->snd_nxt += len;
		if (SEQ_GT(c->snd_nxt, c->snd_max)) c->snd_max = c->snd_nxt;
		if (!c->rto_deadline) tcp_arm_rto(c);
	}
	/* the FIN takes one sequence number, once: after a timeout rewound snd_nxt it is resent at that number */
	if (c->fin_queued && c->snd_nxt == c->snd_una + c->slen && (!c->fin_sent || SEQ_LT(c->snd_nxt, c->snd_max)) &&
	    c->txcount < TXQ_FRAMES) {
		tcp_emit(c, F_FIN | F_ACK, c->snd_nxt, 0, 0);
		c->fin_sent = 1;
		c->snd_nxt++;
		if (SEQ_GT(c->snd_nxt, c->snd_max)) c->snd_max = c->snd_nxt;
		if (c->state == KBX_TCP_ESTABLISHED) c->state = KBX_TCP_FIN_WAIT_1;
		else if (c->state == KBX_TCP_CLOSE_WAIT) c->state = KBX_TCP_LAST_ACK;
		if (!c->rto_deadline) tcp_arm_rto(c);
	}
	/* data waiting, a zero window, nothing the retransmission timer watches: the persist timer probes */
	if (c->snd_wnd == 0 && c->slen && !c->rto_deadline && !c->persist_deadline) arm_persist(c);
}

/* One segment at snd_una, outside the normal flow (fast retransmit, partial ACK): only bytes already sent,
 * never past snd_max (the peer would hold bytes our sequence space says were never sent). */
void tcp_retransmit_first(struct kbx_tcp *c)
{
	uint32_t sent = c->snd_max - c->snd_una;
	if (c->fin_sent && sent) sent--; /* the FIN's sequence number carries no byte */
	uint32_t len = c->slen < smss(c) ? c->slen : smss(c);
	if (len > sent) len = sent;
	if (len) tcp_emit(c, F_ACK | F_PSH, c->snd_una, len, 0);
	else if (c->fin_sent) tcp_emit(c, F_FIN | F_ACK, c->snd_una, 0, 0);
	else return;
	c->st.retransmits++;
	c->rtt_timing = 0;
}

void kbx_tcp_poll(struct kbx_tcp *c, uint64_t now_ns)
{
	c->now = now_ns;
	if (c->state == KBX_TCP_TIME_WAIT && now_ns - c->time_wait_since >= TIME_WAIT_NS) tcp_set_closed(c, KBX_TCP_CLOSED_NORMALLY);
	if (keepalive(c)) return;
	if (c->persist_deadline && now_ns >= c->persist_deadline) {
		if (c->snd_wnd == 0 && c->slen && c->state != KBX_TCP_CLOSED) zero_window_probe(c);
		else c->persist_deadline = 0;
	}
	if (c->rto_deadline && now_ns >= c->rto_deadline) {
		c->st.timeouts++;
		if (++c->backoff > MAX_BACKOFF) {
			tcp_emit(c, F_RST | F_ACK, c->snd_nxt, 0, 0);
			tcp_set_closed(c, KBX_TCP_TIMED_OUT);
			return;
		}
		c->rtt_timing = 0;
		c->rto_deadline = 0;
		if (c->state == KBX_TCP_SYN_SENT) {
			tcp_emit(c, F_SYN | (c->cfg.ecn ? F_ECE | F_CWR : 0), c->iss, 0, 0);
			c->st.retransmits++;
			tcp_arm_rto(c);
			return;
		}
		{
			uint32_t flight = c->snd_max - c->snd_una;
			c->ssthresh = flight / 2 > 2 * smss(c) ? flight / 2 : 2 * smss(c);
		}
		c->cwnd = smss(c);
		c->dupacks = 0;
		if (c->slen == 0 && c->fin_sent) {
			tcp_emit(c, F_FIN | F_ACK, c->snd_una, 0, 0);
			c->st.retransmits++;
			tcp_arm_rto(c);
			return;
		}
		c->snd_nxt = c->snd_una; /* tcp_output() sends the data again, then the FIN at its number */
		if (c->snd_wnd == 0 && c->slen) {
			c->persist_backoff = c->backoff < MAX_BACKOFF ? c->backoff : MAX_BACKOFF;
			c->backoff = 0;
			zero_window_probe(c);
			return;
		}
		tcp_output(c);
		if (!c->rto_deadline && (c->slen || c->fin_sent)) tcp_arm_rto(c);
		return;
	}
	tcp_output(c);
}

int kbx_tcp_write(struct kbx_tcp *c, const uint8_t *data, uint32_t len)
{
	uint32_t space, at, first;
	if ((c->state != KBX_TCP_ESTABLISHED && c->state != KBX_TCP_CLOSE_WAIT && c->state != KBX_TCP_SYN_SENT) || c->fin_queued)
		return kbx_fail(-ENOTCONN, "write to TCP", "the connection is not open for sending");
	space = c->scap - c->slen;
	if (len > space) len = space;
	at = (c->shead + c->slen) % c->scap;
	first = len < c->scap - at ? len : c->scap - at;
	memcpy(c->sbuf + at, data, first);
	if (first < len) memcpy(c->sbuf, data + first, len - first);
	c->slen += len;
	return (int)len;
}

int kbx_tcp_send_now(struct kbx_tcp *c, const uint8_t *data, uint32_t len)
{
	uint32_t flight = c->snd_nxt - c->snd_una;
	uint32_t window = c->snd_wnd < c->cwnd ? c->snd_wnd : c->cwnd;
	uint32_t mss = smss(c);
	if (c->state != KBX_TCP_ESTABLISHED || c->fin_queued || len == 0 || flight != c->slen || c->snd_nxt != c->snd_max)
		return 0;
	if (flight + len > window || len > c->scap - c->slen || TXQ_FRAMES - c->txcount < (len + mss - 1) / mss)
		return 0;
	if (kbx_tcp_write(c, data, len) != (int)len)
		return 0;
	tcp_output(c);
	return (int)len;
}

int kbx_tcp_read(struct kbx_tcp *c, uint8_t *out, uint32_t cap)
{
	uint32_t n = cap < c->rlen ? cap : c->rlen;
	uint32_t first = n < c->rcap - c->rhead ? n : c->rcap - c->rhead;
	uint32_t before = rcv_window(c);
	memcpy(out, c->rbuf + c->rhead, first);
	if (first < n) memcpy(out + first, c->rbuf, n - first);
	c->rhead = (c->rhead + n) % c->rcap;
	c->rlen -= n;
	/* window update when a nearly closed window opens up */
	if (n && before < c->rcap / 4 && rcv_window(c) >= c->rcap / 4 && c->state >= KBX_TCP_ESTABLISHED) tcp_send_ack(c);
	return (int)n;
}

void kbx_tcp_shutdown(struct kbx_tcp *c)
{
	if (c->state == KBX_TCP_SYN_SENT) {
		tcp_set_closed(c, KBX_TCP_CLOSED_NORMALLY);
		return;
	}
	if (c->state != KBX_TCP_ESTABLISHED && c->state != KBX_TCP_CLOSE_WAIT) return;
	c->fin_queued = 1;
	tcp_output(c);
}

void kbx_tcp_abort(struct kbx_tcp *c)
{
	if (c->state != KBX_TCP_CLOSED && c->state != KBX_TCP_SYN_SENT) tcp_emit(c, F_RST | F_ACK, c->snd_nxt, 0, 0);
	tcp_set_closed(c, KBX_TCP_RESET);
}

int kbx_tcp_next_frame(struct kbx_tcp *c, uint8_t *out, uint32_t cap)
{
	uint32_t n;
	if (!c->txcount && c->ack_pending && !c->hold_ack) tcp_send_ack(c);
	if (!c->txcount) return 0;
	n = c->txlen[c->txhead];
	if (n > cap) return kbx_fail(-ENOSPC, "take a TCP frame", "%u bytes do not fit %u", n, cap);
	memcpy(out, c->txq[c->txhead], n);
	c->txhead = (c->txhead + 1) % TXQ_FRAMES;
	c->txcount--;
	return (int)n;
}

void kbx_tcp_hold_ack(struct kbx_tcp *c, int hold) { c->hold_ack = hold; }
uint32_t kbx_tcp_frames_queued(const struct kbx_tcp *c) { return c->txcount + (uint32_t)(c->ack_pending && !c->hold_ack); }
uint32_t kbx_tcp_readable(const struct kbx_tcp *c) { return c->rlen; }

void kbx_tcp_warm(const struct kbx_tcp *c)
{
	const uint8_t *rx = c->rbuf + (c->rhead + c->rlen) % c->rcap;
	const uint8_t *tx = c->sbuf + (c->shead + c->slen) % c->scap;
	const uint8_t *frame = c->txq[(c->txhead + c->txcount) % TXQ_FRAMES];
	for (uint32_t at = 0; at < 512; at += 64) {
		if (rx + at < c->rbuf + c->rcap)
			__builtin_prefetch(rx + at, 1, 3);
		if (tx + at < c->sbuf + c->scap)
			__builtin_prefetch(tx + at, 1, 3);
		__builtin_prefetch(frame + at, 1, 3);
	}
	for (uint32_t at = 0; at < sizeof(*c); at += 64)
		__builtin_prefetch((const uint8_t *)c + at, 1, 3);
}
uint32_t kbx_tcp_snd_max(const struct kbx_tcp *c) { return c->snd_max; }

void kbx_tcp_get_seq(const struct kbx_tcp *c, struct kbx_tcp_seq *out)
{
	out->iss = c->iss;
	out->snd_una = c->snd_una;
	out->snd_nxt = c->snd_nxt;
	out->snd_max = c->snd_max;
	out->irs = c->irs;
	out->rcv_nxt = c->rcv_nxt;
	out->fin_sent = (uint32_t)c->fin_sent;
	out->fin_received = (uint32_t)c->fin_received;
}

void kbx_tcp_get_stats(const struct kbx_tcp *c, struct kbx_tcp_stats *out)
{
	*out = c->st;
	out->state = c->state;
	out->close_reason = c->close_reason;
	out->cwnd = c->cwnd;
	out->snd_wnd = c->snd_wnd;
	out->srtt_us = c->srtt_us;
	out->rto_us = c->rto_us;
	out->unacked = c->snd_nxt - c->snd_una;
	out->unsent = c->slen - (c->snd_nxt - c->snd_una > c->slen ? c->slen : c->snd_nxt - c->snd_una);
	out->readable = c->rlen;
	out->ecn = (uint64_t)c->ecn_ok;
}
