/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Layouts of xdp_xsk_redirect.bpf.c that userspace reads or writes.
 *
 * Maps:
 *   xsks       XSKMAP, key u32 slot → AF_XDP socket fd (written by userspace), KBX_XSK_MAX_SOCKETS entries
 *   xsk_slots  HASH, struct kbx_xsk_slot_key → u32 slot in xsks
 *   stats      PERCPU_ARRAY, one entry, struct kbx_xsk_redirect_stats
 *
 * .rodata (set before load):
 *   match_proto      u8   0 = UDP or TCP, otherwise the IPv4 protocol number (default 17 = UDP);
 *                         ports are compared only for UDP and TCP
 *   match_dport_min  u16  host order, default 0
 *   match_dport_max  u16  host order, default 65535
 *   match_daddr      u32  IPv4 destination in network order, 0 = any (default)
 */
#ifndef KBX_XDP_XSK_REDIRECT_H
#define KBX_XDP_XSK_REDIRECT_H

#include <linux/types.h>

#include "kbx_xsk_steer.h"

/*
 * Every frame lands in exactly one of malformed, passed_fragment, passed_nomatch, matched; every matched
 * frame in exactly one of passed_noslot, passed_nosocket, redirected:
 *   rx = malformed + passed_fragment + passed_nomatch + matched
 *   matched = passed_noslot + passed_nosocket + redirected
 */
struct kbx_xsk_redirect_stats {
	__u64 rx;               /* [0] frames seen */
	__u64 rx_bytes;         /* [1] */
	__u64 matched;          /* [2] IPv4 frames matching the .rodata config */
	__u64 redirected;       /* [3] handed to bpf_redirect_map (a socket was in xsks at the slot) */
	__u64 redirected_bytes; /* [4] */
	__u64 passed_nomatch;   /* [5] well-formed but not ours: ARP, IPv6, other protocol, port or address */
	__u64 passed_noslot;    /* [6] matched, but no xsk_slots entry for this ifindex/queue */
	__u64 passed_nosocket;  /* [7] matched and slotted, but no socket in xsks at that slot */
	__u64 passed_fragment;  /* [8] IPv4 fragments, first ones included: the kernel reassembles them */
	__u64 malformed;        /* [9] truncated or inconsistent headers */
};

#endif
