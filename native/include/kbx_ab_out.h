/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ab-arbitrate's outputs (`--out udp:IP:PORT`, `--out shm:NAME`): where the receive loop hands each delivered
 * message, written in C from the batch loop. The receive loop calls kbx_ab_out_emit once per message at the
 * point it is delivered in order, and kbx_ab_out_flush once per batch; any ordering layer in front of the
 * outputs calls the same two.
 *
 * udp: the payload as received, one datagram per message, on a connected non-blocking socket; the messages
 * of a batch go out with sendmmsg at kbx_ab_out_flush (or sooner when the batch buffer fills). A datagram the
 * kernel refuses (EAGAIN, ENOBUFS, ECONNREFUSED, ...) is counted as an error and dropped, never retried.
 * shm: the ring of kbx_ab_shm.h, written message by message.
 *
 * Not thread-safe (the receive loop's thread). Negative errno on failure.
 */
#ifndef KBX_AB_OUT_H
#define KBX_AB_OUT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KBX_AB_OUT_MAX 16
/* Messages a udp batch holds before it is sent (also sent at every kbx_ab_out_flush). */
#define KBX_AB_OUT_UDP_BATCH 256

enum kbx_ab_out_kind {
	KBX_AB_OUT_UDP = 0,
	KBX_AB_OUT_SHM = 1,
};

/* One output's cumulative counters. */
struct kbx_ab_out_counters {
	uint32_t kind;     /* enum kbx_ab_out_kind */
	uint32_t reserved;
	uint64_t messages; /* messages written (udp: datagrams the kernel took) */
	uint64_t bytes;    /* their payload bytes */
	uint64_t errors;   /* udp: datagrams refused; shm: payloads larger than a slot (not written) */
	uint64_t head;     /* shm: the ring's head; udp: sendmmsg calls */
};

struct kbx_ab_out;

int kbx_ab_out_create(struct kbx_ab_out **out);
/*
 * A udp destination: ip and port in network byte order. ifindex > 0: multicast leaves through that
 * interface (IP_MULTICAST_IF, TTL ttl, looped back to local members).
 */
int kbx_ab_out_add_udp(struct kbx_ab_out *out, uint32_t ip_be, uint16_t port_be, uint32_t ifindex, uint32_t ttl);
/*
 * A ring /dev/shm/name (a stale file of that name is replaced) of slots (power of two) slots of slot_size
 * bytes (a multiple of 64), for a feed of this format (enum ab_format). Removed by kbx_ab_out_destroy.
 */
int kbx_ab_out_add_shm(struct kbx_ab_out *out, const char *name, uint32_t slots, uint32_t slot_size, uint32_t format);
/* Copies up to capacity outputs' counters, in the order they were added; returns how many there are. */
uint32_t kbx_ab_out_counters(const struct kbx_ab_out *out, struct kbx_ab_out_counters *counters, uint32_t capacity);
/* Sends what is batched, marks the rings ended, removes their files, closes the sockets. */
void kbx_ab_out_destroy(struct kbx_ab_out *out);

/*
 * One delivered message to every output: its UDP payload, stream key (struct ab_stream_key, 16 bytes),
 * sequence number, winning line (0 = A, 1 = B) and arrival time (CLOCK_REALTIME ns). The payload is copied:
 * it need not outlive the call. out may be NULL (no outputs).
 */
void kbx_ab_out_emit(struct kbx_ab_out *out, const uint8_t *payload, uint32_t len, const void *key, uint64_t sequence,
		     uint32_t line, uint64_t arrival_ns);
/* Sends the udp batch. out may be NULL. */
void kbx_ab_out_flush(struct kbx_ab_out *out);

/*
 * The ring reader of kbx_ab_shm.h for bindings that cannot use its inline functions (TypeScript): one
 * call reads a batch. A reader maps /dev/shm/name read-only.
 */
struct kbx_ab_shm_reader;

/* Where a reader stands (kbx_ab_shm_reader_status). */
struct kbx_ab_shm_reader_status {
	uint64_t head;       /* the ring's head */
	uint64_t next;       /* the reader's next message number */
	uint64_t lost;       /* messages overrun since it opened */
	uint32_t state;      /* KBX_AB_SHM_RUNNING or KBX_AB_SHM_ENDED */
	uint32_t slot_size;
	uint32_t slot_count;
	uint32_t format;
};

int kbx_ab_shm_reader_open(const char *name, struct kbx_ab_shm_reader **out);
/*
 * Up to max messages into buf: each a struct kbx_ab_shm_slot (its stamp: 2n + 2 of message n), then the
 * payload, padded to 8 bytes; stops early when the next would not fit whole. Returns the messages read.
 */
int kbx_ab_shm_reader_read(struct kbx_ab_shm_reader *r, uint8_t *buf, uint32_t capacity, uint32_t max);
void kbx_ab_shm_reader_status(const struct kbx_ab_shm_reader *r, struct kbx_ab_shm_reader_status *out);
void kbx_ab_shm_reader_close(struct kbx_ab_shm_reader *r);

#ifdef __cplusplus
}
#endif

#endif /* KBX_AB_OUT_H */
