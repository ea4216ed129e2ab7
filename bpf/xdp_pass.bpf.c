// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Passes every frame to the kernel and counts packets and bytes: the simplest program to load and attach. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kbx_stats.h"
#include "xdp_pass.h"

KBX_STATS_MAP(struct kbx_pass_stats);

SEC("xdp")
int kbx_pass(struct xdp_md *ctx)
{
	struct kbx_pass_stats *s = kbx_stats_this_cpu(&stats);
	if (s) {
		s->packets++;
		s->bytes += kbx_frame_len(ctx);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
