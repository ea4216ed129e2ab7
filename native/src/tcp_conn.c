// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A minimal userspace TCP client connection: see kbx_tcp.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kbx_tcp.h"

#define TXQ_FRAMES 256
#define FRAME_MAX 1514
#define ETH_LEN 14
#define IP_LEN 20
#define TCP_LEN 20

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10
#define F_ECE 0x40
#define F_CWR 0x80

#define SEQ_LT(a, b) ((int32_t)((a) - (b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((a) - (b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((a) - (b)) >= 0)

#define RTO_INITIAL_US 1000000u
#define RTO_MAX_US 60000000u
#define MAX_BACKOFF 12
#define TIME_WAIT_NS 1000000000ull

struct kbx_tcp {
	struct kbx_tcp_config cfg;
	uint32_t state;
	uint32_t close_reason;
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2;
	uint32_t irs, rcv_nxt;
	uint32_t max_snd_wnd; /* largest window the peer offered (RFC 5961 §5 ACK check) */
	uint8_t snd_wscale, rcv_wscale;
	uint16_t peer_mss;
	uint32_t cwnd, ssthresh, recover, ecn_recover;
	uint32_t dupacks;
	int ecn_ok, ece_pending, cwr_pending;
	int ack_pending, hold_ack; /* received data not yet ACKed (see kbx_tcp_next_frame) */
	/* send ring: slen bytes starting at sequence snd_una, at sbuf[shead] */
	uint8_t *sbuf;
	uint32_t scap, shead, slen;
	int fin_queued, fin_sent, fin_received;
	/* receive ring */
	uint8_t *rbuf;
	uint32_t rcap, rhead, rlen;
	/* retransmission timer */
	uint64_t rto_deadline; /* 0 = not armed */
	uint32_t rto_us, srtt_us, rttvar_us, backoff;
	int rtt_timing;
	uint32_t rtt_seq;
	uint64_t rtt_start_ns;
	uint64_t time_wait_since;
	uint64_t now;
	uint32_t new_data_segs;
	uint16_t ip_id;
	/* frames waiting to be taken by kbx_tcp_next_frame */
	uint8_t (*txq)[FRAME_MAX];
	uint16_t txlen[TXQ_FRAMES];
	uint32_t txhead, txcount;
	struct kbx_tcp_stats st;
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = (v >> 16) & 0xff; p[2] = (v >> 8) & 0xff; p[3] = v & 0xff; }

static uint32_t csum_add(uint32_t sum, const uint8_t *p, uint32_t len)
{
	uint32_t i;
	for (i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1) sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Sum of the TCP pseudo header; addresses as they sit in the packet (network order bytes). */
static uint32_t pseudo_sum(const uint8_t *saddr, const uint8_t *daddr, uint32_t tcp_len)
{
	uint32_t sum = csum_add(0, saddr, 4);
	sum = csum_add(sum, daddr, 4);
	return sum + 6 + tcp_len;
}

struct kbx_tcp *kbx_tcp_create(const struct kbx_tcp_config *config)
{
	struct kbx_tcp *c = calloc(1, sizeof(*c));
	if (!c) return NULL;
	c->cfg = *config;
	if (!c->cfg.mss) c->cfg.mss = 1460;
	if (c->cfg.mss > FRAME_MAX - ETH_LEN - IP_LEN - TCP_LEN) c->cfg.mss = FRAME_MAX - ETH_LEN - IP_LEN - TCP_LEN;
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

static void set_closed(struct kbx_tcp *c, uint32_t reason)
{
	c->state = KBX_TCP_CLOSED;
	c->ack_pending = 0;
	if (!c->close_reason) c->close_reason = reason;
	c->rto_deadline = 0;
}

static uint32_t rcv_window(const struct kbx_tcp *c) { return c->rcap - c->rlen; }

/* Builds one segment into the TX queue. data: `len` bytes of the send ring starting at sequence `seq`. */
static void emit(struct kbx_tcp *c, uint8_t flags, uint32_t seq, uint32_t len, int ect)
{
	uint32_t opt_len = (flags & F_SYN) ? 8 : 0;
	uint32_t tcp_len = TCP_LEN + opt_len + len;
	uint8_t *f, *ip, *tcp;
	uint32_t slot, win, sum;

	if (c->txcount == TXQ_FRAMES) {
		c->st.tx_queue_full++;
		return;
	}
	slot = (c->txhead + c->txcount) % TXQ_FRAMES;
	f = c->txq[slot];
	memcpy(f, c->cfg.remote_mac, 6);
	memcpy(f + 6, c->cfg.local_mac, 6);
	wr16(f + 12, 0x0800);
	ip = f + ETH_LEN;
	ip[0] = 0x45;
	ip[1] = ect ? 0x02 : 0; /* ECT(0) */
	wr16(ip + 2, (uint16_t)(IP_LEN + tcp_len));
	wr16(ip + 4, c->ip_id++);
	wr16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = 6;
	wr16(ip + 10, 0);
	memcpy(ip + 12, &c->cfg.local_ip, 4);
	memcpy(ip + 16, &c->cfg.remote_ip, 4);
	wr16(ip + 10, csum_fold(csum_add(0, ip, IP_LEN)));
	tcp = ip + IP_LEN;
	wr16(tcp, c->cfg.local_port);
	wr16(tcp + 2, c->cfg.remote_port);
	wr32(tcp + 4, seq);
	wr32(tcp + 8, (flags & F_ACK) ? c->rcv_nxt : 0);
	tcp[12] = (uint8_t)(((TCP_LEN + opt_len) / 4) << 4);
	if ((flags & F_ACK) && c->ece_pending && c->ecn_ok) flags |= F_ECE;
	tcp[13] = flags;
	win = (flags & F_SYN) ? (rcv_window(c) > 65535 ? 65535 : rcv_window(c)) : rcv_window(c) >> c->rcv_wscale;
	wr16(tcp + 14, (uint16_t)(win > 65535 ? 65535 : win));
	wr16(tcp + 16, 0);
	wr16(tcp + 18, 0);
	if (opt_len) {
		uint8_t *o = tcp + TCP_LEN;
		o[0] = 2; o[1] = 4; wr16(o + 2, c->cfg.mss);
		o[4] = 1; o[5] = 3; o[6] = 3; o[7] = c->rcv_wscale;
	}
	if (len) {
		uint32_t off = seq - c->snd_una;
		uint32_t at = (c->shead + off) % c->scap;
		uint32_t first = len < c->scap - at ? len : c->scap - at;
		memcpy(tcp + TCP_LEN + opt_len, c->sbuf + at, first);
		if (first < len) memcpy(tcp + TCP_LEN + opt_len + first, c->sbuf, len - first);
	}
	sum = pseudo_sum(ip + 12, ip + 16, tcp_len);
	wr16(tcp + 16, csum_fold(csum_add(sum, tcp, tcp_len)));
	c->txlen[slot] = (uint16_t)(ETH_LEN + IP_LEN + tcp_len);
	c->txcount++;
	c->st.segs_out++;
	if (flags & F_ACK) c->ack_pending = 0; /* it carries rcv_nxt */
	if (flags & F_RST) c->st.rst_out++;
}

static void send_ack(struct kbx_tcp *c) { emit(c, F_ACK, c->snd_nxt, 0, 0); }

static void arm_rto(struct kbx_tcp *c)
{
	uint64_t rto = (uint64_t)c->rto_us << c->backoff;
	if (rto > RTO_MAX_US) rto = RTO_MAX_US;
	c->rto_deadline = c->now + rto * 1000;
}

int kbx_tcp_connect(struct kbx_tcp *c, uint64_t now_ns)
{
	if (c->state != KBX_TCP_CLOSED || c->close_reason) return -EISCONN;
	c->now = now_ns;
	c->state = KBX_TCP_SYN_SENT;
	emit(c, F_SYN | (c->cfg.ecn ? F_ECE | F_CWR : 0), c->iss, 0, 0);
	c->snd_nxt = c->snd_max = c->iss + 1;
	c->rtt_timing = 1;
	c->rtt_seq = c->iss;
	c->rtt_start_ns = now_ns;
	arm_rto(c);
	return 0;
}

static void rtt_sample(struct kbx_tcp *c)
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

static uint32_t smss(const struct kbx_tcp *c) { return c->peer_mss < c->cfg.mss ? c->peer_mss : c->cfg.mss; }

/* Sends what the windows allow, then the FIN once all data went out. */
static void output(struct kbx_tcp *c)
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
		if (off >= c->slen || off >= window) break;
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
			emit(c, flags, c->snd_nxt, len, c->ecn_ok && fresh);
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
		if (!c->rto_deadline) arm_rto(c);
	}
	/* the FIN takes one sequence number, once: after a timeout rewound snd_nxt it is resent at that number */
	if (c->fin_queued && c->snd_nxt == c->snd_una + c->slen && (!c->fin_sent || SEQ_LT(c->snd_nxt, c->snd_max))) {
		emit(c, F_FIN | F_ACK, c->snd_nxt, 0, 0);
		c->fin_sent = 1;
		c->snd_nxt++;
		if (SEQ_GT(c->snd_nxt, c->snd_max)) c->snd_max = c->snd_nxt;
		if (c->state == KBX_TCP_ESTABLISHED) c->state = KBX_TCP_FIN_WAIT_1;
		else if (c->state == KBX_TCP_CLOSE_WAIT) c->state = KBX_TCP_LAST_ACK;
		if (!c->rto_deadline) arm_rto(c);
	}
}

/* One segment at snd_una, outside the normal flow (fast retransmit, partial ACK). */
static void retransmit_first(struct kbx_tcp *c)
{
	uint32_t len = c->slen < smss(c) ? c->slen : smss(c);
	if (len) emit(c, F_ACK | F_PSH, c->snd_una, len, 0);
	else if (c->fin_sent) emit(c, F_FIN | F_ACK, c->snd_una, 0, 0);
	else return;
	c->st.retransmits++;
	c->rtt_timing = 0;
}

void kbx_tcp_poll(struct kbx_tcp *c, uint64_t now_ns)
{
	c->now = now_ns;
	if (c->state == KBX_TCP_TIME_WAIT && now_ns - c->time_wait_since >= TIME_WAIT_NS) set_closed(c, KBX_TCP_CLOSED_NORMALLY);
	if (c->rto_deadline && now_ns >= c->rto_deadline) {
		c->st.timeouts++;
		if (++c->backoff > MAX_BACKOFF) {
			emit(c, F_RST | F_ACK, c->snd_nxt, 0, 0);
			set_closed(c, KBX_TCP_TIMED_OUT);
			return;
		}
		c->rtt_timing = 0;
		c->rto_deadline = 0;
		if (c->state == KBX_TCP_SYN_SENT) {
			emit(c, F_SYN | (c->cfg.ecn ? F_ECE | F_CWR : 0), c->iss, 0, 0);
			c->st.retransmits++;
			arm_rto(c);
			return;
		}
		{
			uint32_t flight = c->snd_max - c->snd_una;
			c->ssthresh = flight / 2 > 2 * smss(c) ? flight / 2 : 2 * smss(c);
		}
		c->cwnd = smss(c);
		c->dupacks = 0;
		if (c->slen == 0 && c->fin_sent) {
			emit(c, F_FIN | F_ACK, c->snd_una, 0, 0);
			c->st.retransmits++;
			arm_rto(c);
			return;
		}
		c->snd_nxt = c->snd_una; /* output() sends the data again, then the FIN at its number */
		if (c->snd_wnd == 0 && c->slen) {
			/* zero-window probe: one byte beyond the window */
			emit(c, F_ACK, c->snd_una, 1, 0);
			c->snd_nxt = c->snd_una + 1;
			if (SEQ_GT(c->snd_nxt, c->snd_max)) {
				c->st.bytes_out++; /* the probe's byte was never sent before */
				c->snd_max = c->snd_nxt;
			}
			arm_rto(c);
			return;
		}
		output(c);
		if (!c->rto_deadline && (c->slen || c->fin_sent)) arm_rto(c);
		return;
	}
	output(c);
}

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
			uint16_t mss = rd16(o + i + 2);
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
	if (len < ETH_LEN + 28) return 0;
	if (rd16(f + 14) != 1 || rd16(f + 16) != 0x0800 || f[18] != 6 || f[19] != 4) return 0;
	if (memcmp(f + 38, &c->cfg.local_ip, 4) != 0) return 0;
	if (rd16(f + 20) != 1) return 1; /* a reply or other op for our address: nothing to do */
	if (c->txcount == TXQ_FRAMES) {
		c->st.tx_queue_full++;
		return 1;
	}
	slot = (c->txhead + c->txcount) % TXQ_FRAMES;
	r = c->txq[slot];
	memcpy(r, f + 6, 6);
	memcpy(r + 6, c->cfg.local_mac, 6);
	wr16(r + 12, 0x0806);
	wr16(r + 14, 1);
	wr16(r + 16, 0x0800);
	r[18] = 6;
	r[19] = 4;
	wr16(r + 20, 2);
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

static int in_window(uint32_t seq, uint32_t start, uint32_t wnd) { return SEQ_GEQ(seq, start) && SEQ_LT(seq, start + wnd); }

static void fin_acked_transitions(struct kbx_tcp *c)
{
	if (!c->fin_sent || c->snd_una != c->snd_max) return;
	if (c->state == KBX_TCP_FIN_WAIT_1) c->state = KBX_TCP_FIN_WAIT_2;
	else if (c->state == KBX_TCP_CLOSING) {
		c->state = KBX_TCP_TIME_WAIT;
		c->time_wait_since = c->now;
	} else if (c->state == KBX_TCP_LAST_ACK) set_closed(c, KBX_TCP_CLOSED_NORMALLY);
}

/* One received TCP segment of this connection, its checksums verified. */
struct segment {
	const uint8_t *ip, *tcp, *data;
	uint32_t seq, ack, win, doff, data_len;
	uint8_t flags;
};

/* 1: a valid segment of this connection in *s; 0: not ours; -1: ours but malformed or corrupt (counted). */
static int parse_segment(struct kbx_tcp *c, const uint8_t *f, uint32_t len, struct segment *s)
{
	const uint8_t *ip, *tcp;
	uint32_t ihl, tot, tcp_len, doff;
	if (rd16(f + 12) != 0x0800 || len < ETH_LEN + IP_LEN) return 0;
	ip = f + ETH_LEN;
	if ((ip[0] >> 4) != 4 || ip[9] != 6) return 0;
	if (memcmp(ip + 12, &c->cfg.remote_ip, 4) != 0 || memcmp(ip + 16, &c->cfg.local_ip, 4) != 0) return 0;
	ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	tot = rd16(ip + 2);
	if (ihl < IP_LEN || tot < ihl + TCP_LEN || tot > len - ETH_LEN) {
		c->st.malformed++;
		return -1;
	}
	tcp = ip + ihl;
	if (rd16(tcp) != c->cfg.remote_port || rd16(tcp + 2) != c->cfg.local_port) return 0;
	if (csum_fold(csum_add(0, ip, ihl)) != 0) {
		c->st.bad_checksum++;
		return -1;
	}
	if (rd16(ip + 6) & 0x3fff) { /* a fragment: not reassembled */
		c->st.malformed++;
		return -1;
	}
	tcp_len = tot - ihl;
	doff = (uint32_t)(tcp[12] >> 4) * 4;
	if (doff < TCP_LEN || doff > tcp_len) {
		c->st.malformed++;
		return -1;
	}
	if (csum_fold(csum_add(pseudo_sum(ip + 12, ip + 16, tcp_len), tcp, tcp_len)) != 0) {
		c->st.bad_checksum++;
		return -1;
	}
	s->ip = ip;
	s->tcp = tcp;
	s->doff = doff;
	s->seq = rd32(tcp + 4);
	s->ack = rd32(tcp + 8);
	s->flags = tcp[13];
	s->win = rd16(tcp + 14);
	s->data = tcp + doff;
	s->data_len = tcp_len - doff;
	return 1;
}

/* RFC 9293: a closed connection answers anything but a RST with a RST. */
static void input_closed(struct kbx_tcp *c, const struct segment *s)
{
	if (s->flags & F_RST) return;
	if (s->flags & F_ACK) emit(c, F_RST, s->ack, 0, 0);
	else {
		uint32_t saved = c->rcv_nxt;
		c->rcv_nxt = s->seq + s->data_len + !!(s->flags & F_SYN) + !!(s->flags & F_FIN);
		emit(c, F_RST | F_ACK, 0, 0, 0);
		c->rcv_nxt = saved;
	}
}

static void input_syn_sent(struct kbx_tcp *c, const struct segment *s)
{
	uint8_t flags = s->flags;
	int ack_ok = (flags & F_ACK) && SEQ_GT(s->ack, c->iss) && SEQ_LEQ(s->ack, c->snd_max);
	if ((flags & F_ACK) && !ack_ok) {
		if (!(flags & F_RST)) emit(c, F_RST, s->ack, 0, 0);
		c->st.out_of_window++;
		return;
	}
	if (flags & F_RST) {
		c->st.rst_in++;
		if (ack_ok) set_closed(c, KBX_TCP_REFUSED);
		return;
	}
	if ((flags & F_SYN) && ack_ok) {
		int ws_seen = 0;
		uint8_t ws = 0;
		parse_syn_options(c, s->tcp + TCP_LEN, s->doff - TCP_LEN, &ws_seen, &ws);
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
		if (c->rtt_timing && c->backoff == 0) rtt_sample(c);
		c->rtt_timing = 0;
		c->backoff = 0;
		c->rto_deadline = 0;
		send_ack(c);
		output(c);
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
		if (!(s->flags & F_RST)) send_ack(c);
		return 0;
	}
	if (s->flags & F_RST) {
		c->st.rst_in++;
		if (s->seq == c->rcv_nxt) set_closed(c, KBX_TCP_RESET);
		else {
			c->st.challenge_acks++; /* RFC 5961 §3 */
			send_ack(c);
		}
		return 0;
	}
	if (s->flags & F_SYN) {
		c->st.challenge_acks++; /* RFC 5961 §4 */
		send_ack(c);
		return 0;
	}
	if (!(s->flags & F_ACK)) return 0;
	/* an ACK for data never sent, or older than any window the peer offered (RFC 5961 §5): ACK back, drop */
	if (SEQ_GT(s->ack, c->snd_max) || SEQ_LT(s->ack, c->snd_una - c->max_snd_wnd)) {
		c->st.out_of_window++;
		send_ack(c);
		return 0;
	}
	return 1;
}

/* The ACK of an acceptable segment: ECN, new data acknowledged (congestion control), duplicate ACKs, window. */
static void input_ack(struct kbx_tcp *c, const struct segment *s)
{
	uint32_t ack = s->ack;
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
		if (c->rtt_timing && SEQ_GT(ack, c->rtt_seq)) rtt_sample(c);
		c->backoff = 0;
		c->rto_deadline = 0;
		if (c->snd_una != c->snd_max) arm_rto(c);
		if (c->dupacks >= 3) {
			if (SEQ_GEQ(ack, c->recover)) {
				c->cwnd = c->ssthresh;
				c->dupacks = 0;
			} else {
				retransmit_first(c); /* NewReno partial ACK */
			}
		} else {
			c->dupacks = 0;
			if (c->cwnd < c->ssthresh) c->cwnd += data_acked < mss ? data_acked : mss;
			else c->cwnd += mss * mss / c->cwnd > 0 ? mss * mss / c->cwnd : 1;
		}
		fin_acked_transitions(c);
	} else if (ack == c->snd_una && s->data_len == 0 && !(s->flags & (F_SYN | F_FIN)) && c->snd_max != c->snd_una &&
		   (s->win << c->snd_wscale) == c->snd_wnd) {
		c->st.dup_acks++;
		if (++c->dupacks == 3) {
			uint32_t flight = c->snd_max - c->snd_una;
			c->ssthresh = flight / 2 > 2 * smss(c) ? flight / 2 : 2 * smss(c);
			c->recover = c->snd_max;
			retransmit_first(c);
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
}

static int fin_not_received(const struct kbx_tcp *c)
{
	return c->state == KBX_TCP_ESTABLISHED || c->state == KBX_TCP_FIN_WAIT_1 || c->state == KBX_TCP_FIN_WAIT_2;
}

/* In-order data into the receive buffer (out of order: dropped, duplicate ACK). Returns 0 when dropped. */
static int input_data(struct kbx_tcp *c, const struct segment *s)
{
	uint32_t skip;
	if ((s->ip[1] & 3) == 3) {
		c->st.ecn_ce_in++;
		if (c->ecn_ok) c->ece_pending = 1;
	}
	if (SEQ_GT(s->seq, c->rcv_nxt)) {
		c->st.ooo_drops++;
		send_ack(c); /* a duplicate ACK: the peer retransmits */
		return 0;
	}
	skip = c->rcv_nxt - s->seq;
	if (skip < s->data_len) {
		uint32_t n = s->data_len - skip;
		uint32_t space = rcv_window(c);
		uint32_t at, first;
		if (n > space) n = space;
		at = (c->rhead + c->rlen) % c->rcap;
		first = n < c->rcap - at ? n : c->rcap - at;
		memcpy(c->rbuf + at, s->data + skip, first);
		if (first < n) memcpy(c->rbuf, s->data + skip + first, n - first);
		c->rlen += n;
		c->rcv_nxt += n;
		c->st.bytes_in += n;
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
	if (len < ETH_LEN) return 0;
	if (rd16(f + 12) == 0x0806) return handle_arp(c, f, len);
	parsed = parse_segment(c, f, len, &s);
	if (parsed <= 0) return parsed < 0;
	c->st.segs_in++;
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
	output(c);
	return 1;
}

int kbx_tcp_write(struct kbx_tcp *c, const uint8_t *data, uint32_t len)
{
	uint32_t space, at, first;
	if ((c->state != KBX_TCP_ESTABLISHED && c->state != KBX_TCP_CLOSE_WAIT && c->state != KBX_TCP_SYN_SENT) || c->fin_queued)
		return -ENOTCONN;
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
	output(c);
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
	if (n && before < c->rcap / 4 && rcv_window(c) >= c->rcap / 4 && c->state >= KBX_TCP_ESTABLISHED) send_ack(c);
	return (int)n;
}

void kbx_tcp_shutdown(struct kbx_tcp *c)
{
	if (c->state == KBX_TCP_SYN_SENT) {
		set_closed(c, KBX_TCP_CLOSED_NORMALLY);
		return;
	}
	if (c->state != KBX_TCP_ESTABLISHED && c->state != KBX_TCP_CLOSE_WAIT) return;
	c->fin_queued = 1;
	output(c);
}

void kbx_tcp_abort(struct kbx_tcp *c)
{
	if (c->state != KBX_TCP_CLOSED && c->state != KBX_TCP_SYN_SENT) emit(c, F_RST | F_ACK, c->snd_nxt, 0, 0);
	set_closed(c, KBX_TCP_RESET);
}

int kbx_tcp_next_frame(struct kbx_tcp *c, uint8_t *out, uint32_t cap)
{
	uint32_t n;
	if (!c->txcount && c->ack_pending && !c->hold_ack) send_ack(c);
	if (!c->txcount) return 0;
	n = c->txlen[c->txhead];
	if (n > cap) return -ENOSPC;
	memcpy(out, c->txq[c->txhead], n);
	c->txhead = (c->txhead + 1) % TXQ_FRAMES;
	c->txcount--;
	return (int)n;
}

void kbx_tcp_hold_ack(struct kbx_tcp *c, int hold) { c->hold_ack = hold; }
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
