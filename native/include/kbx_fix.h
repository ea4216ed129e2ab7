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

struct kbx_fix_xdp_config {
	struct kbx_tcp_config tcp;
	uint32_t queue;
	uint32_t zero_copy;   /* enum kbx_zero_copy */
	uint32_t rx_size;     /* 0 → 2048 */
	uint32_t tx_size;     /* 0 → 2048 */
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
	uint32_t timings;     /* samples waiting in the timing rings (kbx_fix_xdp_drain_timings) */
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
 * Internal timing, CLOCK_MONOTONIC, ns, kept in three native rings and drained in bulk:
 * - response: RX descriptors taken (the batch carrying received bytes) → the step that carries the bytes
 *   TypeScript wrote in reply (the FIX engine ran on what that batch delivered) has submitted the new data
 *   segment (with the ACK for the received bytes on it) to the TX ring and kicked the kernel. Crosses the
 *   FFI boundary twice (bytes out of one step, the reply into the next). No reply in the next step, no sample.
 * - native: the C share of each response sample without the TX call: RX descriptors taken → the step
 *   returns, plus the next step's entry → reply submitted (TCP input, checksums, copies, send buffer,
 *   segment, UMEM frame), minus kick.
 * - kick: the TX call of each response sample (kbx_xsk_send: TX ring, sendto wake-up; in copy mode the
 *   kernel transmits the frame inside that sendto, and on veth runs the peer's receive path too).
 * response = native + kick + the TypeScript/FFI share.
 */
#define KBX_FIX_TIMING_RING 65536

/* Creates the AF_XDP socket (RX + TX) on ifname/queue sharing umem and the connection. *info: how it bound. */
int kbx_fix_xdp_create(struct kbx_umem *umem, const char *ifname, const struct kbx_fix_xdp_config *config,
		       struct kbx_fix_xdp **out, struct kbx_xsk_info *info);
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
/* FIN after the buffered data / RST now; both transmitted by the next step. */
void kbx_fix_xdp_shutdown(struct kbx_fix_xdp *x);
void kbx_fix_xdp_abort(struct kbx_fix_xdp *x);
void kbx_fix_xdp_tcp_stats(const struct kbx_fix_xdp *x, struct kbx_tcp_stats *out);
void kbx_fix_xdp_counters(const struct kbx_fix_xdp *x, struct kbx_fix_xdp_counters *out);
int kbx_fix_xdp_fd(const struct kbx_fix_xdp *x);
/*
 * Moves up to cap samples (u32 ns) of each ring into response[], native[], kick[]; *n_…: how many.
 * One call per drain (interval), never per sample.
 */
void kbx_fix_xdp_drain_timings(struct kbx_fix_xdp *x, uint32_t *response, uint32_t *n_response, uint32_t *native,
			       uint32_t *n_native, uint32_t *kick, uint32_t *n_kick, uint32_t cap);

#ifdef __cplusplus
}
#endif

#endif
