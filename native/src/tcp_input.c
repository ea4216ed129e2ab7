// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The userspace TCP's receive path (see kbx_tcp.h): frames in, RFC 9293 / RFC 5961 checks, state changes. */
#include <string.h>

#include "tcp_internal.h"

static void parse_syn_options(struct kbx_tcp *c, const uint8_t *o, uint32_t len, int *ws_seen, uint8_t *ws)
{
	uint32_t i = 0;
	while (i < len) {
		uint8_t kind = o[i];
		uint8_t olen;
		if (kind == 0) break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len) break;
		olen = o[i + 1];
		if (olen < 2 || i + olen > len) break; /* malformed: ignore the rest */
		if (kind == 2 && olen == 4) {
			uint16_t mss = kbx_get_be16(o + i + 2);
			if (mss >= 64) c->peer_mss = mss;
		} else if (kind == 3 && olen == 3) {
			*ws_seen = 1;
			*ws = o[i + 2] > 14 ? 14 : o[i + 2];
		}
		i += olen;
	}
}

static int handle_arp(struct kbx_tcp *c, const uint8_t *f, uint32_t len)
{
	uint8_t *r;
	uint32_t slot;
	if (len < KBX_ETH_HEADER_LEN + 28) return 0;
	if (kbx_get_be16(f + 14) != 1 || kbx_get_be16(f + 16) != ETH_P_IP || f[18] != 6 || f[19] != 4) return 0;
	if (memcmp(f + 38, &c->cfg.local_ip, 4) != 0) return 0;
	if (kbx_get_be16(f + 20) != 1) return 1; /* a reply or other op for our address: nothing to do */
	if (c->txcount == TXQ_FRAMES) {
		c->st.tx_queue_full++;
		return 1;
	}
	slot = (c->txhead + c->txcount) % TXQ_FRAMES;
	r = c->txq[slot];
	memcpy(r, f + 6, 6);
	memcpy(r + 6, c->cfg.local_mac, 6);
	kbx_put_be16(r + 12, ETH_P_ARP);
	kbx_put_be16(r + 14, 1);
	kbx_put_be16(r + 16, ETH_P_IP);
	r[18] = 6;
	r[19] = 4;
	kbx_put_be16(r + 20, 2);
	memcpy(r + 22, c->cfg.local_mac, 6);
	memcpy(r + 28, &c->cfg.local_ip, 4);
	memcpy(r + 32, f + 22, 6);
	memcpy(r + 38, f + 28, 4);
	memset(r + 42, 0, 18);
	c->txlen[slot] = 60;
	c->txcount++;
	c->st.arp_replies++;
	return 1;
}


static void fin_acked_transitions(struct kbx_tcp *c)
{
	if (!c->fin_sent || c->snd_una != c->snd_max) return;
	if (c->state == KBX_TCP_FIN_WAIT_1) c->state = KBX_TCP_FIN_WAIT_2;
	else if (c->state == KBX_TCP_CLOSING) {
		c->state = KBX_TCP_TIME_WAIT;
		c->time_wait_since = c->now;
	} else if (c->state == KBX_TCP_LAST_ACK) tcp_set_closed(c, KBX_TCP_CLOSED_NORMALLY);
}

/* One received TCP segment of this connection, its checksums verified. */
struct segment {
	const uint8_t *ip, *tcp, *data;
	uint32_t seq, ack, win, doff, data_len;
	uint8_t flags;
};

/*
 * 1: a valid segment of this connection in *s; 0: not ours; -1: ours but malformed or corrupt (counted).
 * Untagged IPv4 to our address from the peer's is ours; kbx_parse.h's rules say what is malformed.
 */
static int parse_segment(struct kbx_tcp *c, const uint8_t *f, uint32_t len, struct segment *s)
{
	struct kbx_packet pkt = { 0 };
	void *cursor = (void *)(uintptr_t)f, *end = (void *)(uintptr_t)(f + len);
	const kbx_iphdr *ip = (const void *)(f + KBX_ETH_HEADER_LEN);
	const uint8_t *tcp;
	uint32_t tcp_len;

	if (kbx_parse_ethernet(&cursor, end, &pkt) < 0 || pkt.vlan_count || pkt.ethertype != bpf_htons(ETH_P_IP) ||
	    len < KBX_ETH_HEADER_LEN + KBX_IPV4_HEADER_LEN)
		return 0;
	if (ip->version != 4 || ip->protocol != IPPROTO_TCP) return 0;
	if (ip->saddr != c->cfg.remote_ip || ip->daddr != c->cfg.local_ip) return 0;
	if (kbx_parse_ipv4(&cursor, end, &pkt) < 0 || pkt.ip_total_len - pkt.ip_header_len < KBX_TCP_HEADER_LEN) {
		c->st.malformed++;
		return -1;
	}
	tcp = cursor;
	if (kbx_get_be16(tcp) != c->cfg.remote_port || kbx_get_be16(tcp + 2) != c->cfg.local_port) return 0;
	if (kbx_checksum_of(kbx_sum_memory((const uint8_t *)ip, pkt.ip_header_len, 0)) != 0) {
		c->st.bad_checksum++;
		return -1;
	}
	if (pkt.fragment != KBX_FRAGMENT_NONE || kbx_parse_tcp(cursor, end, &pkt) < 0) { /* fragments: not reassembled */
		c->st.malformed++;
		return -1;
	}
	tcp_len = pkt.ip_total_len - pkt.ip_header_len;
	if (kbx_checksum_of(kbx_sum_memory(tcp, tcp_len, kbx_sum_ipv4_pseudo((const uint8_t *)ip, IPPROTO_TCP, tcp_len))) != 0) {
		c->st.bad_checksum++;
		return -1;
	}
	s->ip = (const uint8_t *)ip;
	s->tcp = tcp;
	s->doff = (uint32_t)pkt.tcp->doff * 4;
	s->seq = kbx_get_be32(tcp + 4);
	s->ack = kbx_get_be32(tcp + 8);
	s->flags = tcp[13];
	s->win = kbx_get_be16(tcp + 14);
	s->data = pkt.payload;
	s->data_len = pkt.payload_len;
	return 1;
}

/* RFC 9293: a closed connection answers anything but a RST with a RST. */
static void input_closed(struct kbx_tcp *c, const struct segment *s)
{
	if (s->flags & F_RST) return;
	if (s->flags & F_ACK) tcp_emit(c, F_RST, s->ack, 0, 0);
	else {
		uint32_t saved = c->rcv_nxt;
		c->rcv_nxt = s->seq + s->data_len + !!(s->flags & F_SYN) + !!(s->flags & F_FIN);
		tcp_emit(c, F_RST | F_ACK, 0, 0, 0);
		c->rcv_nxt = saved;
	}
}

static void input_syn_sent(struct kbx_tcp *c, const struct segment *s)
{
	uint8_t flags = s->flags;
	int ack_ok = (flags & F_ACK) && SEQ_GT(s->ack, c->iss) && SEQ_LEQ(s->ack, c->snd_max);
	if ((flags & F_ACK) && !ack_ok) {
		if (!(flags & F_RST)) tcp_emit(c, F_RST, s->ack, 0, 0);
		c->st.out_of_window++;
		return;
	}
	if (flags & F_RST) {
		c->st.rst_in++;
		if (ack_ok) tcp_set_closed(c, KBX_TCP_REFUSED);
		return;
	}
	if ((flags & F_SYN) && ack_ok) {
		int ws_seen = 0;
		uint8_t ws = 0;
		parse_syn_options(c, s->tcp + KBX_TCP_HEADER_LEN, s->doff - KBX_TCP_HEADER_LEN, &ws_seen, &ws);
		if (ws_seen) c->snd_wscale = ws;
		else c->rcv_wscale = 0; /* no scaling either way (RFC 7323) */
		c->irs = s->seq;
		c->rcv_nxt = s->seq + 1;
		c->snd_una = s->ack;
		c->snd_wnd = s->win;
		c->max_snd_wnd = s->win;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		c->ecn_ok = c->cfg.ecn && (flags & F_ECE) && !(flags & F_CWR);
		c->cwnd = 10 * smss(c);
		c->state = KBX_TCP_ESTABLISHED;
		if (c->rtt_timing && c->backoff == 0) tcp_rtt_sample(c);
		c->rtt_timing = 0;
		c->backoff = 0;
		c->rto_deadline = 0;
		tcp_send_ack(c);
		tcp_output(c);
	}
}

/*
 * Synchronized states, RFC 9293 3.10.7.4 with RFC 5961: the sequence check, RST, SYN. Returns 1 when the
 * segment goes on to ACK processing, 0 when it was answered or dropped here.
 */
static int input_acceptable(struct kbx_tcp *c, const struct segment *s)
{
	uint32_t seg_len = s->data_len + !!(s->flags & F_SYN) + !!(s->flags & F_FIN);
	uint32_t rwnd = rcv_window(c);
	int ok;
	if (seg_len == 0) ok = rwnd == 0 ? s->seq == c->rcv_nxt : in_window(s->seq, c->rcv_nxt, rwnd);
	else ok = rwnd == 0 ? 0 : in_window(s->seq, c->rcv_nxt, rwnd) || in_window(s->seq + seg_len - 1, c->rcv_nxt, rwnd);
	/* a retransmitted FIN (or data) entirely below rcv_nxt: re-ACK it */
	if (!ok) {
		c->st.out_of_window++;
		if (!(s->flags & F_RST)) tcp_send_ack(c);
		return 0;
	}
	if (s->flags & F_RST) {
		c->st.rst_in++;
		if (s->seq == c->rcv_nxt) tcp_set_closed(c, KBX_TCP_RESET);
		else {
			c->st.challenge_acks++; /* RFC 5961 §3 */
			tcp_send_ack(c);
		}
		return 0;
	}
	if (s->flags & F_SYN) {
		c->st.challenge_acks++; /* RFC 5961 §4 */
		tcp_send_ack(c);
		return 0;
	}
	if (!(s->flags & F_ACK)) return 0;
	/* an ACK for data never sent, or older than any window the peer offered (RFC 5961 §5): ACK back, drop */
	if (SEQ_GT(s->ack, c->snd_max) || SEQ_LT(s->ack, c->snd_una - c->max_snd_wnd)) {
		c->st.out_of_window++;
		tcp_send_ack(c);
		return 0;
	}
	return 1;
}

/* The ACK of an acceptable segment: ECN, new data acknowledged (congestion control), duplicate ACKs, window. */
static void input_ack(struct kbx_tcp *c, const struct segment *s)
{
	uint32_t ack = s->ack, window_was = c->snd_wnd;
	if (c->ecn_ok && (s->flags & F_CWR)) c->ece_pending = 0;
	if (c->ecn_ok && (s->flags & F_ECE)) {
		c->st.ecn_ece_in++;
		if (SEQ_GT(c->snd_una, c->ecn_recover)) {
			c->ssthresh = c->cwnd / 2 > 2 * smss(c) ? c->cwnd / 2 : 2 * smss(c);
			c->cwnd = c->ssthresh;
			c->cwr_pending = 1;
			c->ecn_recover = c->snd_max;
			c->st.cwnd_reductions++;
		}
	}
	if (SEQ_GT(ack, c->snd_una)) {
		uint32_t acked = ack - c->snd_una;
		uint32_t data_acked = acked > c->slen ? c->slen : acked;
		uint32_t mss = smss(c);
		c->shead = (c->shead + data_acked) % c->scap;
		c->slen -= data_acked;
		c->snd_una = ack;
		if (SEQ_LT(c->snd_nxt, c->snd_una)) c->snd_nxt = c->snd_una;
		if (c->rtt_timing && SEQ_GT(ack, c->rtt_seq)) tcp_rtt_sample(c);
		c->backoff = 0;
		c->rto_deadline = 0;
		if (c->snd_una != c->snd_max) tcp_arm_rto(c);
		if (c->dupacks >= 3) {
			if (SEQ_GEQ(ack, c->recover)) {
				c->cwnd = c->ssthresh;
				c->dupacks = 0;
			} else {
				tcp_retransmit_first(c); /* NewReno partial ACK */
			}
		} else {
			c->dupacks = 0;
			if (c->cwnd < c->ssthresh) c->cwnd += data_acked < mss ? data_acked : mss;
			else c->cwnd += mss * mss / c->cwnd > 0 ? mss * mss / c->cwnd : 1;
		}
		fin_acked_transitions(c);
	} else if (ack == c->snd_una && s->data_len == 0 && !(s->flags & (F_SYN | F_FIN)) && c->snd_max != c->snd_una &&
		   s->win != 0 && (s->win << c->snd_wscale) == c->snd_wnd) {
		/* a zero window's ACKs (the answers to our probes) say nothing of loss: never duplicates, or each
		 * third probe would be a fast retransmit and collapse the congestion window the reopened window needs */
		c->st.dup_acks++;
		if (++c->dupacks == 3) {
			uint32_t flight = c->snd_max - c->snd_una;
			c->ssthresh = flight / 2 > 2 * smss(c) ? flight / 2 : 2 * smss(c);
			c->recover = c->snd_max;
			tcp_retransmit_first(c);
			c->st.fast_retransmits++;
			c->cwnd = c->ssthresh + 3 * smss(c);
		} else if (c->dupacks > 3) {
			c->cwnd += smss(c);
		}
	}
	/* window update only from an ACK at or above snd_una (RFC 9293 3.10.7.4): an old one must not shrink it */
	if (SEQ_GEQ(ack, c->snd_una) && (SEQ_LT(c->snd_wl1, s->seq) || (c->snd_wl1 == s->seq && SEQ_LEQ(c->snd_wl2, ack)))) {
		c->snd_wnd = s->win << c->snd_wscale;
		if (c->snd_wnd > c->max_snd_wnd) c->max_snd_wnd = c->snd_wnd;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = ack;
	}
	if (c->snd_wnd && (c->persist_deadline || (window_was == 0 && SEQ_LT(c->snd_una, c->snd_max)))) {
		/* the window opened: a probe byte the peer did not take, and whatever was in flight past the closed
		 * window (the peer dropped it), is sent again at once with what follows, not after an RTO */
		c->persist_deadline = 0;
		c->persist_backoff = 0;
		c->snd_nxt = c->snd_una;
	}
}

static int fin_not_received(const struct kbx_tcp *c)
{
	return c->state == KBX_TCP_ESTABLISHED || c->state == KBX_TCP_FIN_WAIT_1 || c->state == KBX_TCP_FIN_WAIT_2;
}

/* n bytes into the receive ring at `offset` bytes past rcv_nxt (0: the next in-order byte). */
static void ring_put(struct kbx_tcp *c, uint32_t offset, const uint8_t *data, uint32_t n)
{
	uint32_t at = (c->rhead + c->rlen + offset) % c->rcap;
	uint32_t first = n < c->rcap - at ? n : c->rcap - at;
	memcpy(c->rbuf + at, data, first);
	if (first < n) memcpy(c->rbuf, data + first, n - first);
}

/*
 * Holds the part of a segment beyond rcv_nxt that fits the window: merged with the ranges it overlaps or
 * touches, else a new range. Returns 0 when no range was free (the segment is dropped).
 */
static int hold_out_of_order(struct kbx_tcp *c, uint32_t seq, const uint8_t *data, uint32_t len)
{
	uint32_t offset = seq - c->rcv_nxt, rwnd = rcv_window(c);
	uint32_t start, end, i = 0, j;
	if (offset >= rwnd) return 1; /* nothing of it in the window: the duplicate ACK says where we are */
	if (len > rwnd - offset) len = rwnd - offset;
	start = seq;
	end = seq + len;
	while (i < c->ooo_count && SEQ_LT(c->ooo[i].end, start)) i++;
	j = i;
	while (j < c->ooo_count && SEQ_LEQ(c->ooo[j].start, end)) j++;
	if (i == j) { /* touches no held range: a new one at i */
		if (c->ooo_count == KBX_TCP_OOO_RANGES) return 0;
		memmove(&c->ooo[i + 1], &c->ooo[i], (c->ooo_count - i) * sizeof(c->ooo[0]));
		c->ooo_count++;
		j = i + 1;
	} else {
		if (SEQ_LT(c->ooo[i].start, start)) start = c->ooo[i].start;
		if (SEQ_GT(c->ooo[j - 1].end, end)) end = c->ooo[j - 1].end;
		memmove(&c->ooo[i + 1], &c->ooo[j], (c->ooo_count - j) * sizeof(c->ooo[0]));
		c->ooo_count -= j - i - 1;
	}
	c->ooo[i].start = start;
	c->ooo[i].end = end;
	ring_put(c, offset, data, len);
	return 1;
}

/* Held ranges reached by rcv_nxt become in-order bytes. */
static void deliver_held(struct kbx_tcp *c)
{
	while (c->ooo_count && SEQ_LEQ(c->ooo[0].start, c->rcv_nxt)) {
		if (SEQ_GT(c->ooo[0].end, c->rcv_nxt)) {
			uint32_t n = c->ooo[0].end - c->rcv_nxt;
			c->rlen += n;
			c->rcv_nxt += n;
			c->st.bytes_in += n;
			c->st.ooo_reassembled_bytes += n;
		}
		c->ooo_count--;
		memmove(&c->ooo[0], &c->ooo[1], c->ooo_count * sizeof(c->ooo[0]));
	}
}

/*
 * Data into the receive buffer: in order, then whatever held data it joins; beyond rcv_nxt, held (and a
 * duplicate ACK for the hole). Returns 0 when the segment did not advance rcv_nxt.
 */
static int input_data(struct kbx_tcp *c, const struct segment *s)
{
	uint32_t skip;
	if ((s->ip[1] & 3) == 3) {
		c->st.ecn_ce_in++;
		if (c->ecn_ok) c->ece_pending = 1;
	}
	if (SEQ_GT(s->seq, c->rcv_nxt)) {
		if (hold_out_of_order(c, s->seq, s->data, s->data_len)) c->st.ooo_held++;
		else c->st.ooo_overflows++;
		tcp_send_ack(c); /* a duplicate ACK: nothing past rcv_nxt is acknowledged */
		return 0;
	}
	skip = c->rcv_nxt - s->seq;
	if (skip < s->data_len) {
		uint32_t n = s->data_len - skip;
		uint32_t space = rcv_window(c);
		if (n > space) n = space;
		ring_put(c, 0, s->data + skip, n);
		c->rlen += n;
		c->rcv_nxt += n;
		c->st.bytes_in += n;
		deliver_held(c);
	}
	return 1;
}

/*
 * A FIN is processed once (RFC 9293): only in the states that have not received one. In CLOSE-WAIT,
 * CLOSING, LAST-ACK and TIME-WAIT a FIN (or data) that passed the acceptability check is only ACKed with
 * the current rcv_nxt: taking it would ACK sequence space the peer never sent.
 */
static void input_fin(struct kbx_tcp *c, uint64_t now_ns)
{
	c->rcv_nxt++;
	c->fin_received = 1;
	c->ooo_count = 0; /* nothing comes after the FIN */
	if (c->state == KBX_TCP_ESTABLISHED) c->state = KBX_TCP_CLOSE_WAIT;
	else if (c->state == KBX_TCP_FIN_WAIT_1) {
		if (c->fin_sent && c->snd_una == c->snd_max) {
			c->state = KBX_TCP_TIME_WAIT;
			c->time_wait_since = now_ns;
		} else
			c->state = KBX_TCP_CLOSING;
	} else if (c->state == KBX_TCP_FIN_WAIT_2) {
		c->state = KBX_TCP_TIME_WAIT;
		c->time_wait_since = now_ns;
	}
}

int kbx_tcp_input(struct kbx_tcp *c, const uint8_t *f, uint32_t len, uint64_t now_ns)
{
	struct segment s;
	int parsed;

	c->now = now_ns;
	if (len < KBX_ETH_HEADER_LEN) return 0;
	if (kbx_get_be16(f + 12) == ETH_P_ARP) return handle_arp(c, f, len);
	parsed = parse_segment(c, f, len, &s);
	if (parsed <= 0) return parsed < 0;
	c->st.segs_in++;
	c->last_rx = now_ns;
	c->keepalives_unanswered = 0;
	if (c->state == KBX_TCP_CLOSED) {
		input_closed(c, &s);
		return 1;
	}
	if (c->state == KBX_TCP_SYN_SENT) {
		input_syn_sent(c, &s);
		return 1;
	}
	if (!input_acceptable(c, &s)) return 1;
	input_ack(c, &s);
	if (c->state == KBX_TCP_CLOSED) return 1;
	if (s.data_len && fin_not_received(c) && !input_data(c, &s)) return 1;
	if ((s.flags & F_FIN) && s.seq + s.data_len == c->rcv_nxt && fin_not_received(c)) {
		input_fin(c, now_ns);
		c->ack_pending = 1;
	} else if ((s.flags & F_FIN) || s.data_len) {
		/* data taken, or a FIN not taken (after the peer's FIN, or beyond rcv_nxt), or data after the FIN:
		 * ACK with the current rcv_nxt (TIME-WAIT restarts its timer on a retransmitted FIN) */
		if (c->state == KBX_TCP_TIME_WAIT && (s.flags & F_FIN)) c->time_wait_since = now_ns;
		c->ack_pending = 1;
	}
	tcp_output(c);
	return 1;
}
