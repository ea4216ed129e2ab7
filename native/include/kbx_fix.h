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
};

/* Out of every kbx_fix_xdp_step, all u32. */
struct kbx_fix_xdp_result {
	uint32_t rx_bytes;    /* received payload bytes copied to rx_buf */
	uint32_t tx_accepted; /* of tx_len, bytes taken into the send buffer */
	uint32_t frames_in;
	uint32_t frames_out;
	uint32_t state;       /* enum kbx_tcp_state after the step */
	uint32_t more;        /* 1: received bytes are left (call again with a buffer) */
};

/* All u64: the loop's own counters (the connection's are kbx_tcp_get_stats). */
struct kbx_fix_xdp_counters {
	uint64_t steps;
	uint64_t frames_in;
	uint64_t frames_out;
	uint64_t not_ours;        /* frames received that the connection did not take */
	uint64_t tx_ring_full;    /* frames dropped because the TX ring or the pool was full */
	uint64_t tx_errors;
};

/* Creates the AF_XDP socket (RX + TX) on ifname/queue sharing umem and the connection. *info: how it bound. */
int kbx_fix_xdp_create(struct kbx_umem *umem, const char *ifname, const struct kbx_fix_xdp_config *config,
		       struct kbx_fix_xdp **out, struct kbx_xsk_info *info);
void kbx_fix_xdp_destroy(struct kbx_fix_xdp *x);
/* SYN out (transmitted by the next step). */
int kbx_fix_xdp_connect(struct kbx_fix_xdp *x);
/*
 * One batch. x, tx_data, rx_buf, result are addresses (uintptr_t, see kbx_address_of). timeout_ms: how long
 * to wait for frames when there is nothing to send. Returns 0 or a negative errno (-ENOTCONN from the
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

#ifdef __cplusplus
}
#endif

#endif
