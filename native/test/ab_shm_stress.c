// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The shm ring (include/kbx_ab_shm.h) under real concurrency: the producer of src/ab_shm.c on one thread
 * writing as fast as it can into a ring of a few slots, a reader on another (the header's inline reader),
 * so the producer laps the reader mid-copy again and again. Every message's fields and payload are a
 * function of its number, so a torn copy cannot pass unnoticed. Usage: ab_shm_stress [MESSAGES [SLOTS]].
 * Prints {"written":…,"received":…,"lost":…,"torn":…,"outOfOrder":…}; exit 0 when nothing was torn or out
 * of order and received + lost = written. Run by packages/ab/src/shm-reader.unit.test.ts.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/ab_shm.h"

static struct ab_shm_ring ring;
static uint64_t messages = 2000000;

static uint32_t length_of(uint64_t n) { return 8 + (uint32_t)(n % 73); }

static void fill(uint64_t n, uint8_t *payload, uint8_t *key)
{
	memcpy(payload, &n, 8);
	for (uint32_t i = 8; i < length_of(n); i++)
		payload[i] = (uint8_t)(n * 7 + i);
	for (uint32_t i = 0; i < 16; i++)
		key[i] = (uint8_t)(n + i);
}

static void *produce(void *arg)
{
	uint8_t payload[128], key[16];
	for (uint64_t n = 0; n < messages; n++) {
		fill(n, payload, key);
		ab_shm_write(&ring, payload, length_of(n), key, n, (uint32_t)(n & 1), n * 3);
		/* Paced about as fast as the reader, unevenly: it keeps lapping the reader mid-copy, not only between copies. */
		for (volatile uint32_t spin = 0; spin < (uint32_t)((n * 2654435761u) >> 24) % 96; spin++)
			;
	}
	__atomic_store_n(&ring.header->state, KBX_AB_SHM_ENDED, __ATOMIC_RELEASE);
	return arg;
}

int main(int argc, char **argv)
{
	uint32_t slots = 4;
	if (argc > 1)
		messages = strtoull(argv[1], NULL, 10);
	if (argc > 2)
		slots = (uint32_t)strtoul(argv[2], NULL, 10);
	char name[64];
	snprintf(name, sizeof(name), "kbx-shm-stress-%d", (int)getpid());
	if (ab_shm_create(&ring, name, slots, 128, 0) < 0) {
		fprintf(stderr, "cannot create the ring %s\n", name);
		return 1;
	}
	struct kbx_ab_shm_cursor cursor;
	kbx_ab_shm_cursor_open(&cursor, ring.header);
	pthread_t producer;
	pthread_create(&producer, NULL, produce, NULL);
	uint8_t copy[128], payload[128], key[16];
	struct kbx_ab_shm_slot *m = (struct kbx_ab_shm_slot *)copy;
	uint64_t received = 0, torn = 0, out_of_order = 0, last = 0;
	for (;;) {
		if (!kbx_ab_shm_next(&cursor, m)) {
			if (__atomic_load_n(&ring.header->state, __ATOMIC_ACQUIRE) == KBX_AB_SHM_ENDED &&
			    cursor.next >= __atomic_load_n(&ring.header->head, __ATOMIC_ACQUIRE))
				break;
			continue;
		}
		uint64_t n = m->sequence;
		fill(n, payload, key);
		if (m->stamp != 2 * n + 2 || m->len != length_of(n) || m->line != (n & 1) || m->arrival_ns != n * 3 ||
		    memcmp(m->key, key, 16) || memcmp(copy + sizeof(*m), payload, m->len))
			torn++;
		if (received && n <= last)
			out_of_order++;
		last = n;
		received++;
	}
	pthread_join(producer, NULL);
	printf("{\"written\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"torn\":%" PRIu64 ",\"outOfOrder\":%" PRIu64 "}\n",
	       messages, received, cursor.lost, torn, out_of_order);
	ab_shm_close(&ring);
	return torn || out_of_order || received + cursor.lost != messages ? 1 : 0;
}
