/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A minimal userspace TCP for one long-lived client connection (fix-tcp --io xdp): active open with MSS
 * and window scale; out-of-order data held and reassembled (bounded: see KBX_TCP_OOO_RANGES; no SACK, so
 * each out-of-order segment is answered with a duplicate ACK for the hole, RFC 5681 §4.2), immediate
 * ACKs, zero-window probing with backoff (RFC 9293 3.8.6.1), optional keep-alives (RFC 9293 3.8.4), retransmission on timeout (RFC 6298 RTO, Karn) and on three duplicate ACKs, the peer's receive
 * window and a congestion window respected, ECN (ECT(0) on data, ECE/CWR: the congestion window halves
 * once per window of data), FIN both ways, RST, RFC 9293 acceptability checks with challenge ACKs,
 * software checksums, bounds-checked option parsing, and an ARP responder for our address.
 *
 * I/O free: frames go in through kbx_tcp_input, frames to transmit come out of kbx_tcp_next_frame; the
 * caller moves them (AF_XDP, or a test). Time is passed in (ns, monotonic). Not thread-safe.
 */
#ifndef KBX_TCP_H
#define KBX_TCP_H

#include <stdint.h>

#include "kbx_error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbx_tcp;

/*
 * Out-of-order data is held in the receive buffer itself, at its place after the in-order bytes, so it
 * never takes more than the window we advertised (rcv_buf). At most KBX_TCP_OOO_RANGES disjoint sequence
 * ranges are held; a segment that would need one more is dropped (counted in ooo_overflows) and the peer
 * retransmits it. Held bytes are delivered once the hole before them is filled.
 */
#define KBX_TCP_OOO_RANGES 8
/* Keep-alive probes sent without any answer before the connection is given up (timed out). */
#define KBX_TCP_KEEPALIVE_PROBES 5

struct kbx_tcp_config {
	uint8_t local_mac[6];
	uint8_t remote_mac[6]; /* next hop */
	uint32_t local_ip;     /* network byte order */
	uint32_t remote_ip;    /* network byte order */
	uint16_t local_port;   /* host byte order */
	uint16_t remote_port;  /* host byte order */
	uint32_t isn;          /* initial send sequence number */
	uint16_t mss;          /* ours, advertised; 0 → 1460 */
	uint16_t ecn;          /* 1: negotiate ECN */
	uint32_t rcv_buf;      /* receive buffer bytes; 0 → 262144 */
	uint32_t snd_buf;      /* send buffer bytes; 0 → 1 MiB */
	uint32_t rto_min_us;   /* 0 → 200000 */
	uint32_t drop_tx_nth;  /* test hook: silently drop the Nth new data segment sent (1-based); 0 = never */
	uint32_t keepalive_s;  /* 0: no keep-alives; else a probe after this many seconds without a segment from
				* the peer (and nothing in flight), again every keepalive_s, and after
				* KBX_TCP_KEEPALIVE_PROBES unanswered ones a RST and KBX_TCP_TIMED_OUT */
};

enum kbx_tcp_state {
	KBX_TCP_CLOSED = 0,
	KBX_TCP_SYN_SENT = 1,
	KBX_TCP_ESTABLISHED = 2,
	KBX_TCP_FIN_WAIT_1 = 3,
	KBX_TCP_FIN_WAIT_2 = 4,
	KBX_TCP_CLOSING = 5,
	KBX_TCP_TIME_WAIT = 6,
	KBX_TCP_CLOSE_WAIT = 7,
	KBX_TCP_LAST_ACK = 8,
};

/* Why a connection went to CLOSED. */
enum kbx_tcp_close_reason {
	KBX_TCP_OPEN = 0,
	KBX_TCP_CLOSED_NORMALLY = 1,
	KBX_TCP_RESET = 2,    /* RST received */
	KBX_TCP_TIMED_OUT = 3,
	KBX_TCP_REFUSED = 4,  /* RST in SYN-SENT */
};

/* All u64, in this order (bindings read it as an array). */
struct kbx_tcp_stats {
	uint64_t state;
	uint64_t close_reason;
	uint64_t segs_in;
	uint64_t segs_out;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t retransmits;      /* segments sent again (timeout + fast) */
	uint64_t fast_retransmits;
	uint64_t timeouts;
	uint64_t dup_acks;
	uint64_t ooo_overflows;    /* out-of-order data segments dropped: all KBX_TCP_OOO_RANGES ranges in use */
	uint64_t bad_checksum;
	uint64_t malformed;
	uint64_t out_of_window;
	uint64_t challenge_acks;
	uint64_t rst_in;
	uint64_t rst_out;
	uint64_t ecn_ce_in;        /* data segments received with CE */
	uint64_t ecn_ece_in;       /* ECE seen on ACKs: congestion reported by the peer */
	uint64_t cwnd_reductions;
	uint64_t arp_replies;
	uint64_t not_ours;         /* frames that are neither this connection nor ARP for us */
	uint64_t tx_queue_full;
	uint64_t tx_dropped_by_hook;
	uint64_t ooo_held;         /* out-of-order data segments held for reassembly */
	uint64_t ooo_reassembled_bytes; /* held bytes delivered once the hole before them was filled */
	uint64_t zero_window_probes;
	uint64_t keepalives;       /* keep-alive probes sent */
	uint64_t cwnd;
	uint64_t snd_wnd;
	uint64_t srtt_us;
	uint64_t rto_us;
	uint64_t unacked;          /* bytes in flight */
	uint64_t unsent;
	uint64_t readable;
	uint64_t ecn;              /* 1 when negotiated */
};

#define KBX_TCP_STATS_COUNT (sizeof(struct kbx_tcp_stats) / sizeof(uint64_t))

struct kbx_tcp *kbx_tcp_create(const struct kbx_tcp_config *config);
void kbx_tcp_destroy(struct kbx_tcp *c);
/* Queues the SYN. */
int kbx_tcp_connect(struct kbx_tcp *c, uint64_t now_ns);
/* One received Ethernet frame. Returns 1 when it was ours (TCP of this connection or ARP for us), 0 otherwise. */
int kbx_tcp_input(struct kbx_tcp *c, const uint8_t *frame, uint32_t len, uint64_t now_ns);
/* Timers (retransmission, zero-window probe, keep-alive) and transmission of buffered data the windows allow. */
void kbx_tcp_poll(struct kbx_tcp *c, uint64_t now_ns);
/* Appends to the send buffer; returns the bytes accepted (may be fewer than len), or -ENOTCONN. */
int kbx_tcp_write(struct kbx_tcp *c, const uint8_t *data, uint32_t len);
/*
 * All of data, segmented and queued for transmission now, or nothing (returns 0): only when nothing else is
 * waiting to be sent or retransmitted and the peer's window and the congestion window take all of it.
 * Returns len when queued.
 */
int kbx_tcp_send_now(struct kbx_tcp *c, const uint8_t *data, uint32_t len);
/* Takes up to cap received in-order bytes. */
int kbx_tcp_read(struct kbx_tcp *c, uint8_t *out, uint32_t cap);
/* FIN after the buffered data. */
void kbx_tcp_shutdown(struct kbx_tcp *c);
/* Sends a RST and closes. */
void kbx_tcp_abort(struct kbx_tcp *c);
/*
 * Copies the next frame to transmit into out (cap ≥ 1514); returns its length, 0 when none. The ACK for
 * received data is not queued by kbx_tcp_input: any segment sent before it leaves carries it (piggybacked
 * on the reply), else it comes out here as a pure ACK once the queue is empty.
 */
int kbx_tcp_next_frame(struct kbx_tcp *c, uint8_t *out, uint32_t cap);
/*
 * hold 1: kbx_tcp_next_frame keeps the pending data ACK back (other frames still come out), so a reply
 * written before the next transmission carries it; hold 0 (the default) lets it out. The caller releases
 * it at its next transmission opportunity: the ACK is never left to a timer.
 */
void kbx_tcp_hold_ack(struct kbx_tcp *c, int hold);
/* Frames kbx_tcp_next_frame would hand out now, a pending ACK included (more may follow once they are taken). */
uint32_t kbx_tcp_frames_queued(const struct kbx_tcp *c);
/* Prefetches what the next received segment and the answer to it will touch (a wait's idle time, before they come). */
void kbx_tcp_warm(const struct kbx_tcp *c);
/* Received in-order bytes waiting for kbx_tcp_read (kbx_tcp_get_stats' readable, without the copy of the stats). */
uint32_t kbx_tcp_readable(const struct kbx_tcp *c);
void kbx_tcp_get_stats(const struct kbx_tcp *c, struct kbx_tcp_stats *out);
/*
 * The sequence variables, for invariant checks (tests, fuzzers): snd_una <= snd_nxt <= snd_max;
 * snd_max - iss == 1 (SYN) + data bytes sent + fin_sent; once synchronized,
 * rcv_nxt - irs == 1 (SYN) + bytes delivered (bytes_in) + fin_received.
 */
struct kbx_tcp_seq {
	uint32_t iss, snd_una, snd_nxt, snd_max;
	uint32_t irs, rcv_nxt;
	uint32_t fin_sent, fin_received;
};
void kbx_tcp_get_seq(const struct kbx_tcp *c, struct kbx_tcp_seq *out);
/* One past the highest sequence number sent (a later connection's ISN goes beyond it). */
uint32_t kbx_tcp_snd_max(const struct kbx_tcp *c);

#ifdef __cplusplus
}
#endif

#endif
