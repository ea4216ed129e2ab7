/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Layout of xdp_pass.bpf.c's `stats` value (see kbx_stats.h). */
#ifndef KBX_XDP_PASS_H
#define KBX_XDP_PASS_H

#include <linux/types.h>

struct kbx_pass_stats {
	__u64 packets; /* [0] every frame seen */
	__u64 bytes;   /* [1] their length, Ethernet header included, FCS excluded */
};

#endif
