// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* ab-feed --replay's frame copier; see include/kbx_ab_replay.h. */
#include <errno.h>
#include <string.h>

#include "kbx_ab_replay.h"
#include "xsk_internal.h"

int kbx_ab_replay_fill(struct kbx_umem *umem, struct kbx_tx_batch *b, struct kbx_ab_replay_line *line)
{
	const uint8_t *frames = (const uint8_t *)(uintptr_t)line->frames;
	const uint32_t *offsets = (const uint32_t *)(uintptr_t)line->offsets;
	const uint32_t *entries = (const uint32_t *)(uintptr_t)line->entries;
	const double *due = (const double *)(uintptr_t)line->due_ns;
	uint32_t want = 0, got;

	while (line->next + want < line->len && b->count + want < b->capacity && due[line->next + want] <= line->up_to_ns) {
		uint32_t packet = entries[line->next + want];
		if (packet >= line->packets || offsets[packet + 1] < offsets[packet] ||
		    offsets[packet + 1] - offsets[packet] > umem->config.frame_size) {
			return kbx_fail(-EINVAL, "replay a capture", "send %u: packet %u of %u does not fit a %u-byte UMEM frame",
					line->next + want, packet, line->packets, umem->config.frame_size);
		}
		want++;
	}
	b->fresh = b->count;
	got = want ? (uint32_t)kbx_umem_alloc(umem, b->descs + b->count, want) : 0;
	for (uint32_t i = 0; i < got; i++) {
		struct kbx_desc *d = &b->descs[b->count + i];
		uint32_t packet = entries[line->next + i];
		d->len = offsets[packet + 1] - offsets[packet];
		memcpy((uint8_t *)umem->area + d->addr, frames + offsets[packet], d->len);
		line->bytes += d->len;
	}
	b->count += got;
	line->next += got;
	return (int)got;
}
