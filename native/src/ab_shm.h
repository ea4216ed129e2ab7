/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The producer's side of the shm ring (include/kbx_ab_shm.h), internal to ab_out.c. */
#ifndef KBX_AB_SHM_INTERNAL_H
#define KBX_AB_SHM_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "kbx_ab_shm.h"

struct ab_shm_ring {
	struct kbx_ab_shm_header *header;
	uint64_t size;
	char path[PATH_MAX];
};

int ab_shm_create(struct ab_shm_ring *ring, const char *name, uint32_t slots, uint32_t slot_size, uint32_t format);
/* One message (false: larger than a slot, not written). */
bool ab_shm_write(struct ab_shm_ring *ring, const uint8_t *payload, uint32_t len, const void *key, uint64_t sequence,
		  uint32_t line, uint64_t arrival_ns);
/* Marks the ring ended, unmaps it and removes its file. */
void ab_shm_close(struct ab_shm_ring *ring);

#endif
