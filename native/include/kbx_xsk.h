/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libkbx AF_XDP layer: a UMEM whose frame pool accounts for every frame, and AF_XDP sockets sharing it
 * across queues and interfaces. Batch operations only: one call moves a whole batch of descriptors.
 *
 * Every frame is in exactly one state at any time:
 *
 *   free --kbx_umem_alloc--> user --kbx_xsk_send--> tx --completion--> free
 *   free --fill-ring refill--> fill --kbx_xsk_receive--> rx --release--> free
 *   rx --kbx_xsk_send--> tx          (a received frame sent on without a copy)
 *   user --release--> free
 *
 * "fill" covers frames posted to a fill ring and frames the kernel has written to an RX ring that the
 * application has not taken yet; "tx" covers frames in a TX ring and frames awaiting completion.
 * Invariant: total == free + fill + rx + tx + user, checked frame by frame by kbx_umem_accounting().
 *
 * Not thread-safe: one thread drives a UMEM and all of its sockets.
 * Functions returning int return a count or 0 on success and a negative errno on failure; after a
 * failure, kbx_error_take() (kbx_error.h) says what failed and why.
 */
#ifndef KBX_XSK_H
#define KBX_XSK_H

#include <stdint.h>

#include "kbx_error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbx_umem;
struct kbx_xsk;

/* A frame descriptor exchanged with callers: the layout of the kernel's struct xdp_desc (16 bytes). */
struct kbx_desc {
	uint64_t addr; /* byte offset of the data in the UMEM area */
	uint32_t len;
	uint32_t options;
};

/*
 * A TX batch kept across calls (kbx_xsk_send_batch): a header, then `capacity` descriptors.
 * Bindings keep it in one buffer and read count/sent/fresh after each call.
 */
struct kbx_tx_batch {
	uint32_t count;    /* descriptors in use, from descs[0] */
	uint32_t capacity; /* descriptors the buffer holds */
	uint32_t sent;     /* out: descriptors the last kbx_xsk_send_batch submitted */
	uint32_t fresh;    /* out: descs[fresh..count) are the frames it appended */
	struct kbx_desc descs[];
};

enum kbx_frame_state {
	KBX_FRAME_FREE = 0,
	KBX_FRAME_FILL = 1,
	KBX_FRAME_RX = 2,
	KBX_FRAME_TX = 3,
	KBX_FRAME_USER = 4,
	KBX_FRAME_STATES = 5,
};

/* Zero values select the defaults shown. */
struct kbx_umem_config {
	uint32_t frame_count; /* 4096 */
	uint32_t frame_size;  /* 2048; a power of two from 2048 to the page size */
	uint32_t headroom;    /* 0; bytes the kernel leaves free before received data in each frame */
	uint32_t fill_size;   /* 2048; entries of every fill ring of this UMEM, a power of two */
	uint32_t comp_size;   /* 2048; entries of every completion ring of this UMEM, a power of two */
};

struct kbx_umem_accounting {
	uint32_t total;
	uint32_t free;
	uint32_t fill;
	uint32_t rx;
	uint32_t tx;
	uint32_t user;
	uint32_t parked; /* of fill + tx: frames left with a closed socket whose bind lives on (see kbx_xsk_close) */
	uint32_t sockets;
};

enum kbx_zero_copy {
	KBX_ZERO_COPY_NEVER = 0,   /* bind with XDP_COPY */
	KBX_ZERO_COPY_TRY = 1,     /* XDP_ZEROCOPY, then XDP_COPY when the driver refuses */
	KBX_ZERO_COPY_REQUIRE = 2, /* XDP_ZEROCOPY or fail with -EOPNOTSUPP */
};

struct kbx_xsk_config {
	uint32_t queue;
	uint32_t rx_size;        /* RX ring entries (power of two); 0 = no RX ring */
	uint32_t tx_size;        /* TX ring entries (power of two); 0 = no TX ring */
	uint32_t fill_frames;    /* frames kept posted in this socket's fill ring; 0 = min(fill ring, free / 2) */
	uint32_t zero_copy;      /* enum kbx_zero_copy */
	uint32_t need_wakeup;    /* nonzero: XDP_USE_NEED_WAKEUP */
	uint32_t bind_retries;   /* further bind attempts after EBUSY */
	uint32_t retry_delay_ms; /* pause before each of them */
	uint32_t tx_budget;      /* copy-mode frames per kick (XDP_MAX_TX_SKB_BUDGET, Linux >= 6.17); 0 = default */
};

/*
 * Only the first socket of a UMEM chooses copy/zero-copy and need-wakeup: later sockets bind with
 * XDP_SHARED_UMEM and inherit both (the kernel refuses bind flags there), so `zero_copy` and
 * `need_wakeup` report what the socket really got.
 */
struct kbx_xsk_info {
	int32_t fd;
	uint32_t ifindex;
	uint32_t queue;
	uint32_t zero_copy;       /* 1 when bound in zero-copy mode (XDP_OPTIONS_ZEROCOPY) */
	uint32_t need_wakeup;     /* 1 when the UMEM's sockets use XDP_USE_NEED_WAKEUP */
	int32_t zero_copy_errno;  /* errno of a refused zero-copy bind that fell back to copy mode, else 0 */
	uint32_t bind_attempts;
	uint32_t shared;          /* 1 when bound with XDP_SHARED_UMEM (not the UMEM's first socket) */
	uint32_t tx_budget;       /* budget the kernel accepted, 0 when left at its default */
	uint32_t fill_frames;     /* frames this socket keeps in its fill ring */
};

struct kbx_xsk_stats {
	/* the kernel's XDP_STATISTICS */
	uint64_t rx_dropped;
	uint64_t rx_invalid_descs;
	uint64_t tx_invalid_descs;
	uint64_t rx_ring_full;
	uint64_t rx_fill_ring_empty_descs;
	uint64_t tx_ring_empty_descs;
	/* this library's counters for the socket */
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets; /* descriptors submitted to the TX ring */
	uint64_t tx_bytes;
	uint64_t tx_completed;
	uint64_t kicks;        /* sendto() wake-ups of the TX path */
	uint64_t kick_errors;  /* of those, failures other than EAGAIN/ENOBUFS/EBUSY/ENETDOWN */
	uint64_t fill_wakeups; /* recvfrom() wake-ups of the fill ring */
	uint64_t polls;
	uint64_t anomalies;    /* descriptors naming a frame in an unexpected state (never in a correct run) */
};

/*
 * The address of p. Bindings whose foreign calls are costly for pointer arguments (koffi: ~1 us for a
 * buffer or handle, ~75 ns for integers) take addresses once and pass pointers as uintptr_t on the
 * batch path; on LP64 targets both travel in the same registers.
 */
uintptr_t kbx_address_of(const void *p);

int kbx_umem_create(const struct kbx_umem_config *config, struct kbx_umem **out);
/* Closes the UMEM's sockets that are still open, then the UMEM; the area is unmapped. */
void kbx_umem_destroy(struct kbx_umem *umem);
void *kbx_umem_area(const struct kbx_umem *umem);
uint64_t kbx_umem_area_size(const struct kbx_umem *umem);
/*
 * Hands the area's ownership to the caller: kbx_umem_destroy will not unmap it, the caller unmaps it with
 * kbx_area_unmap once nothing can reach it (a garbage-collected language unmaps it when its view dies, so
 * a stale view never touches unmapped memory).
 */
void *kbx_umem_take_area(struct kbx_umem *umem);
void kbx_area_unmap(void *area, uint64_t size);
/* The configuration with defaults filled in. */
void kbx_umem_get_config(const struct kbx_umem *umem, struct kbx_umem_config *out);
/* Moves up to n free frames to the user: descs[i].addr = frame start, len = 0. Returns how many. */
int kbx_umem_alloc(struct kbx_umem *umem, struct kbx_desc *descs, uint32_t n);
/*
 * Returns frames the user holds (received or allocated) to the pool. Any address in the frame counts.
 * All or nothing: -EINVAL, releasing none, when one descriptor names a frame the user does not hold.
 */
int kbx_umem_release(struct kbx_umem *umem, const struct kbx_desc *descs, uint32_t n);
/* Fills *out from the counters; returns -EUCLEAN when a frame-by-frame audit disagrees with them. */
int kbx_umem_accounting(const struct kbx_umem *umem, struct kbx_umem_accounting *out);
/* State of the frame holding addr, or -EINVAL past the area. */
int kbx_umem_frame_state(const struct kbx_umem *umem, uint64_t addr);

/*
 * Creates an AF_XDP socket on ifname/queue sharing the UMEM; never loads an XDP program
 * (XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD). Fills the fill ring when the socket has an RX ring.
 * One socket per (interface, queue) per UMEM: -EBUSY for a second one.
 */
int kbx_xsk_create(struct kbx_umem *umem, const char *ifname, const struct kbx_xsk_config *config,
		   struct kbx_xsk **out, struct kbx_xsk_info *info);
/*
 * Closes the socket. Frames in its fill and TX rings return to the pool, except for the UMEM's first
 * socket: its bind lives as long as the UMEM's registration, so its frames stay parked (counted as fill
 * or tx) until the UMEM's last socket closes, which releases the registration and them.
 */
void kbx_xsk_close(struct kbx_xsk *xsk);
int kbx_xsk_fd(const struct kbx_xsk *xsk);

/*
 * One batch of receive:
 *   1. returns descs[0..release) (frames held from a previous call) to the pool,
 *   2. takes up to max descriptors off the RX ring into descs (frames move to rx),
 *   3. tops up the fill ring from the pool,
 *   4. when nothing arrived and timeout_ms > 0, poll()s once for up to timeout_ms and retries 2 and 3.
 * Returns the number of descriptors received; -EINVAL (nothing received or released) when one of the
 * descriptors to release is not held by the user.
 */
int kbx_xsk_receive(struct kbx_xsk *xsk, struct kbx_desc *descs, uint32_t max, uint32_t release,
		    int timeout_ms);
/*
 * One batch of transmit: reaps completions, submits descs[0..n) (frames the user holds, allocated or
 * received) to the TX ring in order, as many as fit, kicks the kernel when it needs a wake-up, and reaps
 * again. Returns how many were submitted (the first ones); -EINVAL (nothing submitted) when a descriptor
 * names a frame the user does not hold or overruns its frame.
 */
int kbx_xsk_send(struct kbx_xsk *xsk, const struct kbx_desc *descs, uint32_t n);
/*
 * kbx_xsk_send of b->descs[0..count), then in the same call: the descriptors not submitted move to the
 * front, and up to `refill` free frames are appended while capacity allows (addr = frame start,
 * len = refill_len), so a TX loop makes ONE call per batch. Returns the number submitted (also b->sent);
 * -EINVAL as kbx_xsk_send, or when count > capacity.
 */
int kbx_xsk_send_batch(struct kbx_xsk *xsk, struct kbx_tx_batch *b, uint32_t refill, uint32_t refill_len);
/* Kicks the TX path if frames are pending and reaps completions. Returns how many frames completed. */
int kbx_xsk_complete(struct kbx_xsk *xsk);
/* Frames submitted by this socket and not yet completed. */
uint32_t kbx_xsk_tx_pending(const struct kbx_xsk *xsk);
/* Frames pending in the RX ring (a hint; no state changes). */
uint32_t kbx_xsk_rx_available(struct kbx_xsk *xsk);

#define KBX_POLL_RX 1u
#define KBX_POLL_TX 2u
/* poll() for up to timeout_ms; returns the ready KBX_POLL_* bits (0 on timeout or signal). */
int kbx_xsk_wait(struct kbx_xsk *xsk, uint32_t events, int timeout_ms);
int kbx_xsk_statistics(struct kbx_xsk *xsk, struct kbx_xsk_stats *out);

/*
 * Creates a small UMEM and an RX+TX socket on ifname/queue with the given zero-copy policy, reports how it
 * bound in *info, closes both. Returns 0 or the bind's negative errno.
 */
int kbx_xsk_probe(const char *ifname, uint32_t queue, uint32_t zero_copy, struct kbx_xsk_info *info);

#ifdef __cplusplus
}
#endif

#endif /* KBX_XSK_H */
