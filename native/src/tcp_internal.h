/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the userspace TCP (kbx_tcp.h): the connection's state, shared by tcp_conn.c (creation, output,
 * timers, the API) and tcp_input.c (received frames). Not part of libkbx's interface.
 */
#ifndef KBX_TCP_INTERNAL_H
#define KBX_TCP_INTERNAL_H

#include <stdint.h>

#include "kbx_frame.h"
#include "kbx_tcp.h"

#define TXQ_FRAMES 256
#define FRAME_MAX 1514

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
/* The zero-window probe interval's cap: a lost window update delays sending by at most this (RFC 9293 leaves it open). */
#define PERSIST_MAX_US 1000000u
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
	/* receive ring: rlen in-order bytes at rbuf[rhead]; held out-of-order ranges (sorted, disjoint, not
	 * touching, all beyond rcv_nxt) at their offset from rcv_nxt after them */
	uint8_t *rbuf;
	uint32_t rcap, rhead, rlen;
	struct {
		uint32_t start, end;
	} ooo[KBX_TCP_OOO_RANGES];
	uint32_t ooo_count;
	/* zero-window probe (persist) timer; keep-alive */
	uint64_t persist_deadline; /* 0 = not armed */
	uint32_t persist_backoff;
	uint64_t last_rx;
	uint32_t keepalives_unanswered;
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

static inline uint32_t rcv_window(const struct kbx_tcp *c) { return c->rcap - c->rlen; }
static inline uint32_t smss(const struct kbx_tcp *c) { return c->peer_mss < c->cfg.mss ? c->peer_mss : c->cfg.mss; }
static inline int in_window(uint32_t seq, uint32_t start, uint32_t wnd) { return SEQ_GEQ(seq, start) && SEQ_LT(seq, start + wnd); }

#define TCP_HIDDEN __attribute__((visibility("hidden")))
/* tcp_conn.c */
TCP_HIDDEN void tcp_set_closed(struct kbx_tcp *c, uint32_t reason);
/* Builds one segment into the TX queue. data: `len` bytes of the send ring starting at sequence `seq`. */
TCP_HIDDEN void tcp_emit(struct kbx_tcp *c, uint8_t flags, uint32_t seq, uint32_t len, int ect);
TCP_HIDDEN void tcp_send_ack(struct kbx_tcp *c);
TCP_HIDDEN void tcp_arm_rto(struct kbx_tcp *c);
TCP_HIDDEN void tcp_rtt_sample(struct kbx_tcp *c);
/* Sends what the windows allow, then the FIN once all data went out. */
TCP_HIDDEN void tcp_output(struct kbx_tcp *c);
/* One segment at snd_una, outside the normal flow (fast retransmit, partial ACK). */
TCP_HIDDEN void tcp_retransmit_first(struct kbx_tcp *c);

#endif
