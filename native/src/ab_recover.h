/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * MoldUDP64 gap recovery of ab-arbitrate's receive loop (ab_recover.c), internal to ab_rx.c; see
 * include/kbx_ab.h (kbx_ab_rx_enable_recovery) for the rules.
 */
#ifndef KBX_AB_RECOVER_H
#define KBX_AB_RECOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "ab_track.h"
#include "kbx_ab.h"

/* A gap waiting for its answers. */
struct ab_recovery_gap {
	struct kbx_ab_event gap; /* the record, sent on with its outcome */
	uint64_t declared_ns;
	uint64_t next_send_ns;
	uint64_t received;
	uint64_t *got; /* a bit per message of the gap */
	uint32_t attempts;
	bool used;
};

/* A delivered recovered message: the caller copies it out. */
typedef void (*ab_recovered_fn)(void *ctx, const uint8_t *frame, uint32_t len, const struct ab_message *m);

struct ab_recovery {
	struct kbx_ab_recovery_config config;
	int fd;
	uint32_t local_ip;   /* network order: the synthesized frames' destination */
	uint16_t local_port; /* host order */
	struct ab_tracker *tracker;
	struct kbx_ab_rx_counters *counters;
	struct ab_recovery_gap gaps[KBX_AB_RECOVERY_SLOTS];
	uint32_t last_match;
	/* The answer being delivered: the rest of its messages wait for room in the copy buffer. */
	uint8_t answer[2048];
	uint32_t answer_len;
	uint32_t answer_at;    /* offset of the next message */
	uint32_t answer_index; /* its index in the packet */
};

int ab_recovery_open(struct ab_recovery *r, const struct kbx_ab_recovery_config *config, struct ab_tracker *tr,
		     struct kbx_ab_rx_counters *counters);
void ab_recovery_close(struct ab_recovery *r);
/* The tracker's gap_sink: a gap declared missing on both lines starts waiting for its answers. */
void ab_recovery_add(void *recovery, const struct kbx_ab_event *gap);
/*
 * Delivers answered messages (through deliver) while room says there is space for one more, sends the
 * requests that are due and settles the gaps that are complete or out of retries.
 */
void ab_recovery_step(struct ab_recovery *r, uint64_t now_ns, bool (*room)(void *ctx), ab_recovered_fn deliver,
		      void *ctx);
/*
 * A line's copy that came after its hole was declared (behind the tracker's base): it fills its messages in
 * a waiting gap. True when it brought a message not yet delivered (deliver it); false when every message
 * of it was recovered already or its gap settled (a duplicate: not delivered).
 */
bool ab_recovery_line_copy(struct ab_recovery *r, const struct ab_message *m);
/*
 * One answer packet's payload through the parser (without a socket: tests and fuzzers); its messages are
 * delivered at the next step. False when a previous answer is still being delivered.
 */
bool ab_recovery_take_answer(struct ab_recovery *r, const uint8_t *payload, uint32_t len);

#endif /* KBX_AB_RECOVER_H */
