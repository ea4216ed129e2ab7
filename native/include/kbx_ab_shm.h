/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The shared-memory ring of `ab-arbitrate --out shm:NAME`: the file /dev/shm/NAME, written by one producer
 * (ab-arbitrate's receive loop, native/src/ab_out.c) and read by any number of readers, each with its own
 * cursor in its own memory. Readers map the file read-only: nothing a reader does reaches the producer or
 * another reader, and the producer never waits for a reader.
 *
 * The file: a struct kbx_ab_shm_header (KBX_AB_SHM_HEADER_SIZE bytes), then slot_count slots of slot_size
 * bytes. Message n (counting from 0) lives in slot n & (slot_count - 1): a struct kbx_ab_shm_slot, then
 * `len` bytes of payload (the UDP payload as the winning line delivered it).
 *
 * Every slot carries a stamp, a per-slot sequence lock:
 *   producer, writing message n:  stamp = 2n + 1 (odd: being written); release fence; the slot's fields
 *                                 and payload; stamp = 2n + 2 (store-release: complete); head = n + 1
 *                                 (store-release).
 *   reader, wanting message n (n < head): s1 = stamp (load-acquire); if s1 == 2n + 2, copy the slot out,
 *                                 acquire fence, s2 = stamp again; the copy is message n exactly when
 *                                 s2 == s1. Any other stamp, or s2 != s1, means the producer has wrapped
 *                                 onto the slot: the reader was overrun.
 * An overrun reader skips to the oldest message still in the ring (head - slot_count) and is told how many
 * messages it lost; it never returns a torn copy. `len` is clamped to the slot before copying, so even a
 * torn read cannot run past the slot.
 *
 * head counts the messages written since the ring was created; a reader that opens the ring starts at the
 * head it reads then (kbx_ab_shm_cursor_open). state turns KBX_AB_SHM_ENDED when the producer stops; the file
 * is removed at its exit (readers that have it mapped read on to the end).
 *
 * The kbx_ab_shm_* inline functions below are a complete reader: a C consumer needs only this header
 * (examples/ab-shm-consumer.c). @kbx/ab's ShmReader calls the same code through libkbx.so, a batch a call.
 */
#ifndef KBX_AB_SHM_H
#define KBX_AB_SHM_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KBX_AB_SHM_MAGIC 0x4d4853424158424bULL /* "KBXABSHM" little-endian */
#define KBX_AB_SHM_VERSION 1
#define KBX_AB_SHM_HEADER_SIZE 128
#define KBX_AB_SHM_DEFAULT_SLOTS 16384
#define KBX_AB_SHM_DEFAULT_SLOT_SIZE 256
#define KBX_AB_SHM_RUNNING 1
#define KBX_AB_SHM_ENDED 2

/* At offset 0: the constant fields in the first cache line, head and state in the second. */
struct kbx_ab_shm_header {
	uint64_t magic;       /* KBX_AB_SHM_MAGIC */
	uint32_t version;     /* KBX_AB_SHM_VERSION */
	uint32_t header_size; /* KBX_AB_SHM_HEADER_SIZE: slot 0's offset */
	uint32_t slot_size;   /* bytes per slot, a multiple of 64, struct kbx_ab_shm_slot included */
	uint32_t slot_count;  /* a power of two */
	uint32_t format;      /* enum ab_format of the feed (0 optiq, 1 moldudp64) */
	uint32_t reserved0;
	uint8_t pad0[32];
	uint64_t head;        /* messages written (store-release after each message is complete) */
	uint32_t state;       /* KBX_AB_SHM_RUNNING, KBX_AB_SHM_ENDED */
	uint32_t reserved1;
	uint8_t pad1[48];
};

/* The start of every slot; `len` bytes of payload follow it. */
struct kbx_ab_shm_slot {
	uint64_t stamp;      /* 2n + 1 while message n is written, 2n + 2 once complete, 0 never written */
	uint64_t sequence;   /* the message's sequence number (optiq u32, moldudp64 u64) */
	uint64_t arrival_ns; /* CLOCK_REALTIME of the batch that delivered it */
	uint8_t key[16];     /* its stream: struct ab_stream_key (bpf/include/ab_format.h) */
	uint32_t line;       /* the line that won: 0 = A, 1 = B */
	uint32_t len;        /* payload bytes */
};

/* A reader's own position. */
struct kbx_ab_shm_cursor {
	const struct kbx_ab_shm_header *ring; /* the mapped file */
	uint64_t next;                        /* the next message number to read */
	uint64_t lost;                        /* messages overrun since the cursor opened */
};

/* 0 for a mapping of `size` bytes that holds a ring this header describes, else -1. */
static inline int kbx_ab_shm_check(const void *map, uint64_t size)
{
	const struct kbx_ab_shm_header *h = (const struct kbx_ab_shm_header *)map;
	if (size < KBX_AB_SHM_HEADER_SIZE || h->magic != KBX_AB_SHM_MAGIC || h->version != KBX_AB_SHM_VERSION ||
	    h->header_size != KBX_AB_SHM_HEADER_SIZE || h->slot_count == 0 || (h->slot_count & (h->slot_count - 1)) ||
	    h->slot_size < sizeof(struct kbx_ab_shm_slot) || h->slot_size % 64)
		return -1;
	return size >= (uint64_t)h->header_size + (uint64_t)h->slot_size * h->slot_count ? 0 : -1;
}

static inline const struct kbx_ab_shm_slot *kbx_ab_shm_slot_of(const struct kbx_ab_shm_header *h, uint64_t n)
{
	return (const struct kbx_ab_shm_slot *)((const uint8_t *)h + h->header_size +
						 (uint64_t)h->slot_size * (n & (h->slot_count - 1)));
}

/* A cursor at the ring's current head: it reads what is written from now on. */
static inline void kbx_ab_shm_cursor_open(struct kbx_ab_shm_cursor *c, const void *map)
{
	c->ring = (const struct kbx_ab_shm_header *)map;
	c->next = __atomic_load_n(&c->ring->head, __ATOMIC_ACQUIRE);
	c->lost = 0;
}

/*
 * The next message into out (room for slot_size bytes: the slot header, then the payload). Returns 1 with
 * a message, 0 when there is none yet. Messages overrun on the way are added to c->lost.
 */
static inline int kbx_ab_shm_next(struct kbx_ab_shm_cursor *c, struct kbx_ab_shm_slot *out)
{
	const struct kbx_ab_shm_header *h = c->ring;
	uint32_t room = h->slot_size - (uint32_t)sizeof(struct kbx_ab_shm_slot);
	for (;;) {
		uint64_t head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
		if (c->next >= head)
			return 0;
		if (head - c->next > h->slot_count) {
			c->lost += head - h->slot_count - c->next;
			c->next = head - h->slot_count;
		}
		const struct kbx_ab_shm_slot *slot = kbx_ab_shm_slot_of(h, c->next);
		uint64_t want = 2 * c->next + 2;
		uint64_t s1 = __atomic_load_n(&slot->stamp, __ATOMIC_ACQUIRE);
		if (s1 == want) {
			memcpy(out, slot, sizeof(*out));
			uint32_t len = out->len < room ? out->len : room;
			memcpy((uint8_t *)out + sizeof(*out), (const uint8_t *)slot + sizeof(*slot), len);
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if (__atomic_load_n(&slot->stamp, __ATOMIC_RELAXED) == s1) {
				out->len = len;
				c->next++;
				return 1;
			}
		}
		/* Overwritten under us (or being overwritten): skip to the oldest message the ring still holds. */
		head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
		uint64_t oldest = head > h->slot_count ? head - h->slot_count + 1 : 0;
		if (oldest <= c->next)
			oldest = c->next + 1;
		c->lost += oldest - c->next;
		c->next = oldest;
	}
}

#ifdef __cplusplus
}
#endif

#endif /* KBX_AB_SHM_H */
