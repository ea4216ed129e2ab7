/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Layouts of fix_steer.bpf.c that userspace reads or writes.
 *
 * Maps (the xdp_xsk_redirect scheme, so @kbx/xsk steerTo fills them):
 *   xsks       XSKMAP, key u32 slot → AF_XDP socket fd, KBX_XSK_MAX_SOCKETS entries
 *   xsk_slots  HASH, struct kbx_xsk_slot_key {u32 ifindex; u32 queue} → u32 slot in xsks
 *   stats      PERCPU_ARRAY, one entry, struct kbx_fix_steer_stats
 *
 * .rodata (set before load; addresses in network order, ports in host order):
 *   local_ip, local_port    our end of the connection (the frame's destination)
 *   remote_ip, remote_port  the gateway (the frame's source)
 * Only untagged frames are redirected (the userspace stack sends and takes no VLAN tags): IPv4 TCP
 * segments from remote to local with exactly these four values, and ARP requests whose target protocol
 * address is local_ip (answered by the userspace stack); ARP replies
 * go to the kernel, whose neighbour table the stack reads the next hop's MAC from; everything else passes to the kernel untouched.
 */
#ifndef KBX_FIX_STEER_H
#define KBX_FIX_STEER_H

#include <linux/types.h>

#include "kbx_xsk_steer.h"

/*
 *   rx = malformed + passed_fragment + passed_nomatch + matched_tcp + matched_arp
 *   matched_tcp + matched_arp = passed_noslot + passed_nosocket + redirected
 */
struct kbx_fix_steer_stats {
	__u64 rx;              /* [0] frames seen */
	__u64 matched_tcp;     /* [1] segments of our 4-tuple */
	__u64 matched_arp;     /* [2] ARP requests for our address */
	__u64 redirected;      /* [3] */
	__u64 passed_nomatch;  /* [4] anything else, well formed */
	__u64 passed_noslot;   /* [5] ours, but no xsk_slots entry for this ifindex/queue */
	__u64 passed_nosocket; /* [6] ours, slotted, but no socket in xsks */
	__u64 passed_fragment; /* [7] IPv4 fragments */
	__u64 malformed;       /* [8] truncated or inconsistent headers (ARP shorter than 28 bytes included) */
};

#endif
