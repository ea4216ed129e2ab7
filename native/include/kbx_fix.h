/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * fix-tcp --io xdp: the userspace TCP connection (kbx_tcp.h) driven over one AF_XDP socket, one call
 * per batch. kbx_fix_xdp_step: the bytes TS wants to send go into the send buffer, timers run, a batch of
 * frames is received and fed to the connection, every frame it has to transmit goes out through TX
 * (UMEM frames), and the in-order received bytes are copied to the caller's buffer.
 */
#ifndef KBX_FIX_H
#define KBX_FIX_H

#include <stdint.h>

#include "kbx_tcp.h"
#include "kbx_xsk.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbx_fix_xdp;

/*
 * The reflex (one order at a time over --io xdp): a zero-allocation FIX framer over the in-order received
 * byte stream (BodyLength(9), CheckSum(10) validated, messages framed across segments, garbage and invalid
 * frames skipped exactly like the TypeScript parser) that, when armed, answers the ExecutionReport (35=8)
 * for the one outstanding order with the next NewOrderSingle, built from a template and sent on the spot.
 *
 * Arming (TypeScript, before each step; the step takes the arm and clears io->armed): the outstanding
 * ClOrdID, the MsgSeqNum expected next from the peer, our next MsgSeqNum and ClOrdID. While armed, every
 * message framed must be a Heartbeat (35=0) or an ExecutionReport (35=8) from the peer's CompIDs with
 * exactly the expected MsgSeqNum and no PossDupFlag(43)=Y; anything else (an admin message, a gap, a
 * duplicate, a framing error) disarms it and leaves the answer to the TypeScript session, as does a TCP
 * send that could not go out at once (window, cwnd, bytes of the session still queued). Either way the
 * received bytes go to TypeScript as before; the order sent is reported in io so the session records it.
 */
#define KBX_FIX_REFLEX_MSG_MAX 1024

/* Shared with TypeScript (its memory), all fields little-endian, in this order. */
struct kbx_fix_reflex_io {
	/* in: written before a step, taken (armed cleared) by it */
	uint64_t armed;
	uint64_t cl_ord_id;      /* the outstanding order's ClOrdID (11) */
	uint64_t expect_seq;     /* MsgSeqNum (34) expected next from the peer */
	uint64_t next_seq;       /* our MsgSeqNum for the reflex order */
	uint64_t next_cl_ord_id; /* its ClOrdID */
	/* out: the order sent (the step's result says reflex_sent) */
	uint64_t sent_seq;
	uint64_t sent_cl_ord_id;
	uint64_t sent_ns;        /* CLOCK_MONOTONIC (from the TSC): its TX descriptor handed to the TX ring (before the kick) */
	uint64_t trigger_seq;    /* MsgSeqNum of the ExecutionReport it answered */
	uint32_t len;            /* the message, msg[0..len) */
	uint32_t time_at;        /* offset of the SendingTime(52) value (21 bytes) */
	uint32_t body_at;        /* offset of the first body field (after SendingTime) */
	uint32_t body_end;       /* offset of "10=" */
	uint8_t msg[KBX_FIX_REFLEX_MSG_MAX];
};

/* All u64, in this order. */
struct kbx_fix_reflex_counters {
	uint64_t messages;        /* valid messages framed */
	uint64_t garbage_bytes;
	uint64_t bad_checksum;
	uint64_t bad_body_length;
	uint64_t bad_header;
	uint64_t armed;           /* steps (or feeds) that took an arm */
	uint64_t sent;            /* orders sent by the reflex */
	uint64_t deferred;        /* trigger seen, but the send could not go out now: left to TypeScript */
	uint64_t disarmed;        /* an arm dropped by a message that was not a quiet in-sequence one */
};

struct kbx_fix_reflex;
/* Sends msg[0..len) now, entirely, or nothing: returns 1 when sent. */
typedef int (*kbx_fix_reflex_send_fn)(void *ctx, const uint8_t *msg, uint32_t len);

struct kbx_fix_reflex *kbx_fix_reflex_create(void);
void kbx_fix_reflex_destroy(struct kbx_fix_reflex *r);
/*
 * The order template: BeginString, our SenderCompID/TargetCompID (the peer's are the reverse), MsgType, the
 * body fields after ClOrdID(11) up to the time field (pre), the tag of a UTC timestamp field written with
 * the SendingTime (time_tag, 0 for none: e.g. TransactTime 60), and the fields after it (post), all
 * "tag=value<SOH>". io: the shared block (the caller keeps it alive). Returns 0 or -EINVAL (too long).
 */
int kbx_fix_reflex_configure(struct kbx_fix_reflex *r, const char *begin_string, const char *sender, const char *target,
			     const char *msg_type, const uint8_t *pre, uint32_t pre_len, uint32_t time_tag,
			     const uint8_t *post, uint32_t post_len, struct kbx_fix_reflex_io *io);
/*
 * Header fields of every order after TargetCompID(56), before MsgSeqNum(34) ("tag=value<SOH>"…: SenderSubID,
 * TargetSubID, SenderLocationID, as the session writes its headers); len 0 clears them. 0 or -EINVAL (over 256).
 */
int kbx_fix_reflex_set_header(struct kbx_fix_reflex *r, const uint8_t *fields, uint32_t len);
/* The connection's sender (fix_xdp.c); without one (tests) a triggered order counts as sent. */
void kbx_fix_reflex_set_sender(struct kbx_fix_reflex *r, kbx_fix_reflex_send_fn fn, void *ctx);
/* Takes io->armed (clears it): armed for what follows, or disarmed when io->armed was 0. */
void kbx_fix_reflex_take_arm(struct kbx_fix_reflex *r);
/*
 * Frames bytes (the next piece of the stream, any split). An armed reflex that sees its trigger builds
 * and sends the order (io->sent_*, msg). Returns 1 when an order was sent by this call, else 0.
 */
int kbx_fix_reflex_feed(struct kbx_fix_reflex *r, const uint8_t *bytes, uint32_t len);
/* Tests: io->armed taken if set (kept otherwise), then kbx_fix_reflex_feed. */
/* A new byte stream (a new connection): bytes of a message left unframed are dropped, the arm too. */
void kbx_fix_reflex_reset_stream(struct kbx_fix_reflex *r);
int kbx_fix_reflex_feed_armed(struct kbx_fix_reflex *r, const uint8_t *bytes, uint32_t len);
void kbx_fix_reflex_counters(const struct kbx_fix_reflex *r, struct kbx_fix_reflex_counters *out);
struct kbx_fix_reflex_io *kbx_fix_reflex_io(struct kbx_fix_reflex *r);

struct kbx_fix_xdp_config {
	struct kbx_tcp_config tcp;
	uint32_t busy_poll;   /* 1: a step's wait spins on the RX ring instead of sleeping in poll() */
};

/* Out of every kbx_fix_xdp_step, all u32. */
struct kbx_fix_xdp_result {
	uint32_t rx_bytes;    /* received payload bytes copied to rx_buf */
	uint32_t tx_accepted; /* of tx_len, bytes taken into the send buffer */
	uint32_t frames_in;
	uint32_t frames_out;
	uint32_t state;       /* enum kbx_tcp_state after the step */
	uint32_t more;        /* 1: received bytes are left (call again with a buffer) */
	uint32_t timings;     /* samples waiting in the fullest timing ring (kbx_fix_xdp_drain_timings) */
	uint32_t reflex_sent; /* 1: the reflex sent an order in this step (kbx_fix_reflex_io: which) */
};

/* All u64: the loop's own counters (the connection's are kbx_tcp_get_stats). */
struct kbx_fix_xdp_counters {
	uint64_t steps;
	uint64_t frames_in;
	uint64_t frames_out;
	uint64_t not_ours;        /* frames received that the connection did not take */
	uint64_t tx_ring_full;    /* frames dropped because the TX ring or the pool was full */
	uint64_t tx_errors;
	uint64_t timings_lost;    /* timing samples dropped because a ring was full (not drained in time) */
};

/*
 * Internal timing, CLOCK_MONOTONIC, ns, kept in five native rings and drained in bulk. "Submitted" is when
 * the frame, built in UMEM with its descriptor, is handed to kbx_xsk_send (a few stores into the TX ring),
 * before the kick (sendto), which is timed on its own:
 * - response: RX descriptors taken (the batch carrying received bytes) → the step that carries the bytes
 *   TypeScript wrote in reply (the FIX engine ran on what that batch delivered) has submitted the new data
 *   segment (with the ACK for the received bytes on it). Crosses the FFI boundary twice (bytes out of one
 *   step, the reply into the next). No reply in the next step (or the reflex answered), no sample.
 * - native: the C share of each response sample: RX descriptors taken → the step returns, plus the next
 *   step's entry → reply submitted (TCP input, checksums, copies, send buffer, segment, UMEM frame).
 * - kick: the TX call of each response sample (kbx_xsk_send: TX ring, sendto wake-up; in copy mode the
 *   kernel transmits the frame inside that sendto, and on veth runs the peer's receive path too).
 * - reflex: RX descriptors taken → the reflex order submitted, all in one step, in C (TCP input, copy out,
 *   FIX framing and checks, order built, TCP segment, UMEM frame).
 * - reflex_kick: the TX call that carried the reflex order.
 * response = native + the TypeScript/FFI share; the frame leaves after the kick.
 * Then six rings break each reflex sample whose trigger arrived in the same step down into disjoint stages
 * (timed with the CPU's time-stamp counter, converted to ns; they add up to the reflex sample):
 * - clock: clock reads inside the window (the time stamps the TCP and the SendingTime need);
 * - tcp_in: TCP input of the batch (checksums, sequence checks, the copy into the receive ring), the frames
 *   handed back, the received bytes copied out to TypeScript's buffer;
 * - parse: FIX framing (BodyLength, CheckSum, header fields) of what arrived, the trigger recognised;
 * - build: the order written from its template (MsgSeqNum, ClOrdID, SendingTime, BodyLength, CheckSum);
 * - tcp_out: the order into the send buffer and its segment (headers, TCP checksum) queued;
 * - submit: the segment copied into a UMEM frame and handed to the TX ring;
 * and a last ring, reflex_window, their sum for each of those samples (the same window on the same clock).
 */
#define KBX_FIX_TIMING_RING 65536
#define KBX_FIX_REFLEX_STAGES 6
#define KBX_FIX_TIMINGS (5 + KBX_FIX_REFLEX_STAGES + 1)

/*
 * The connection on the caller's AF_XDP socket (RX and TX rings; created with its UMEM by @kbx/xsk, like every
 * tool's): frames come from and go back to that socket's UMEM. The socket and UMEM stay the caller's, to close
 * after kbx_fix_xdp_destroy. -EINVAL without a usable socket, -ENOMEM (kbx_error.h says which).
 */
int kbx_fix_xdp_create(struct kbx_xsk *xsk, const struct kbx_fix_xdp_config *config, struct kbx_fix_xdp **out);
/* Releases the frames it holds; leaves the socket and the UMEM open. */
void kbx_fix_xdp_destroy(struct kbx_fix_xdp *x);
/* SYN out (transmitted by the next step). */
int kbx_fix_xdp_connect(struct kbx_fix_xdp *x);
/*
 * One batch. x, tx_data, rx_buf, result are addresses (uintptr_t, see kbx_address_of). timeout_ms: how long
 * to wait for frames when there is nothing to send (sleeping in poll(), or spinning with busy_poll). Returns 0 or a negative errno (-ENOTCONN from the
 * send buffer is not an error: tx_accepted is 0).
 */
int kbx_fix_xdp_step(uintptr_t x, uintptr_t tx_data, uint32_t tx_len, uintptr_t rx_buf, uint32_t rx_cap,
		     int timeout_ms, uintptr_t result);
/*
 * A new connection on the same AF_XDP socket, UMEM and steering (same 4-tuple, so the same XDP program
 * keeps steering it): the old connection (closed, or given up) is dropped with whatever it still held, a
 * fresh one sends its SYN at the next step. Its ISN is 64 KiB + (jitter & 0xffff) beyond the highest
 * sequence number the old one sent, so a peer still holding the old one in TIME-WAIT takes the SYN as a new
 * connection (a peer still holding it ESTABLISHED answers with an ACK our SYN-SENT resets, RFC 9293). The reflex's
 * unframed bytes are dropped; kbx_fix_xdp_tcp_stats keeps summing the counters over all connections.
 */
int kbx_fix_xdp_reconnect(struct kbx_fix_xdp *x, uint32_t jitter);
/* FIN after the buffered data / RST now; both transmitted by the next step. */
void kbx_fix_xdp_shutdown(struct kbx_fix_xdp *x);
void kbx_fix_xdp_abort(struct kbx_fix_xdp *x);
void kbx_fix_xdp_tcp_stats(const struct kbx_fix_xdp *x, struct kbx_tcp_stats *out);
void kbx_fix_xdp_counters(const struct kbx_fix_xdp *x, struct kbx_fix_xdp_counters *out);
/*
 * Moves up to cap samples (u32 ns) of each ring (response, native, kick, reflex, reflex_kick, then the
 * reflex's stages clock, tcp_in, parse, build, tcp_out, submit, and reflex_window) into
 * out[i * cap …]; counts[i]: how many. One call per drain (interval), never per sample.
 */
void kbx_fix_xdp_drain_timings(struct kbx_fix_xdp *x, uint32_t *out, uint32_t *counts, uint32_t cap);
/* The connection's reflex (configure it with kbx_fix_reflex_configure; armed through its io block). */
struct kbx_fix_reflex *kbx_fix_xdp_reflex(struct kbx_fix_xdp *x);

/*
 * Timing of the steps: TS's memory, lent once with kbx_fix_xdp_set_times, read and written by every step. All u64,
 * CLOCK_MONOTONIC ns (the clock of process.hrtime in TS), in this order.
 */
struct kbx_fix_xdp_times {
	uint64_t wake_at_ns; /* in: the step's wait ends here at the latest (the next paced order is due); 0: none */
	uint64_t tx_ns;      /* out: the first frame carrying bytes TS wrote for this step handed to the TX ring; 0: none */
	uint64_t rx_ns;      /* out: RX descriptors taken in this step; 0: none */
	uint64_t spin_after_send_ns; /* in: without busy_poll, spin on the RX ring this long after sending before sleeping */
};
void kbx_fix_xdp_set_times(struct kbx_fix_xdp *x, struct kbx_fix_xdp_times *times);

/* fix_wait.c. The calling thread's timer slack to 1 ns (paced wake-ups on time); 0 or -errno. */
int kbx_fix_precise_timers(void);
/* Sleeps in ppoll() until fd is readable or until_ns (CLOCK_MONOTONIC): 1 readable, 0 not, -errno. */
int kbx_fix_sleep_readable(int fd, uint64_t until_ns);
/* Waits until fd is readable, wake_at_ns (0: none) or timeout_ms, asleep in ppoll() or (busy) spinning on poll(). */
int kbx_fix_wait_fd(int fd, uint64_t wake_at_ns, int timeout_ms, int busy);

#ifdef __cplusplus
}
#endif

#endif
