// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#ifndef KBX_AB_REPLAY_H
#define KBX_AB_REPLAY_H

/*
 * ab-feed --replay: a line's prepared frames (captured packets with the bed's addresses and fresh
 * checksums, built once by packages/ab/src/replay-frames.ts) copied into UMEM frames a TX batch per call.
 * Entry i of the line's send list sends packet entries[i] when the replay clock reaches due_ns[i].
 */
#include <stdint.h>

#include "kbx_xsk.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbx_ab_replay_line {
	uint64_t frames;  /* address of the packets' bytes, back to back */
	uint64_t offsets; /* address of uint32_t offsets[packets + 1]: packet p is frames[offsets[p], offsets[p + 1]) */
	uint64_t entries; /* address of uint32_t entries[len]: the packet each send carries, in send order */
	uint64_t due_ns;  /* address of double due_ns[len]: when each send is due, ns after the replay's start */
	uint32_t packets; /* packets in frames */
	uint32_t len;     /* sends in the list */
	uint32_t next;    /* in/out: the first send not yet written */
	uint32_t reserved;
	double up_to_ns;  /* write the sends due at or before this time */
	uint64_t bytes;   /* out: frame bytes written so far */
};

/*
 * Appends to b one UMEM frame per send from next on while it is due, b has room and the UMEM has free
 * frames; advances next past them. Returns how many it appended, or -EINVAL when an entry names no packet
 * or a packet does not fit a UMEM frame.
 */
int kbx_ab_replay_fill(struct kbx_umem *umem, struct kbx_tx_batch *b, struct kbx_ab_replay_line *line);

#ifdef __cplusplus
}
#endif

#endif /* KBX_AB_REPLAY_H */
