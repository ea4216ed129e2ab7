// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Steers matching IPv4 UDP/TCP frames to AF_XDP sockets; everything else goes to the kernel untouched.
 * Maps, .rodata knobs and counters: include/xdp_xsk_redirect.h.
 *
 * The socket for a frame is found in two steps, (ingress ifindex, rx queue) → slot in xsk_slots, then
 * slot → socket in xsks, so one program serves several interfaces and queues. IPv4 fragments, the first
 * included, are passed: redirecting the first fragment alone would leave the kernel unable to reassemble
 * the rest.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kbx_parse.h"
#include "kbx_stats.h"
#include "xdp_xsk_redirect.h"

const volatile __u8 match_proto = IPPROTO_UDP;
const volatile __u16 match_dport_min = 0;
const volatile __u16 match_dport_max = 65535;
const volatile __u32 match_daddr = 0;

KBX_STATS_MAP(struct kbx_xsk_redirect_stats);

static __always_inline int matches(enum kbx_packet_class class, const struct kbx_packet *pkt)
{
	if (class != KBX_PACKET_UDP && class != KBX_PACKET_TCP && class != KBX_PACKET_IPV4)
		return 0;
	if (match_daddr != 0 && pkt->ip4->daddr != match_daddr)
		return 0;
	if (match_proto == 0) {
		if (class == KBX_PACKET_IPV4)
			return 0;
	} else if (pkt->l4_proto != match_proto) {
		return 0;
	}
	if (class == KBX_PACKET_IPV4)
		return 1;
	__u16 dport = bpf_ntohs(kbx_packet_dport(pkt));
	return dport >= match_dport_min && dport <= match_dport_max;
}

SEC("xdp")
int kbx_xsk_redirect(struct xdp_md *ctx)
{
	struct kbx_xsk_redirect_stats *s = kbx_stats_this_cpu(&stats);
	if (!s)
		return XDP_PASS;
	__u64 len = kbx_frame_len(ctx);
	s->rx++;
	s->rx_bytes += len;

	struct kbx_packet pkt;
	enum kbx_packet_class class = kbx_parse_packet(ctx, &pkt);
	if (class == KBX_PACKET_MALFORMED) {
		s->malformed++;
		return XDP_PASS;
	}
	if (class == KBX_PACKET_IPV4_FRAGMENT || (pkt.ip4 && pkt.fragment != KBX_FRAGMENT_NONE)) {
		s->passed_fragment++;
		return XDP_PASS;
	}
	if (!matches(class, &pkt)) {
		s->passed_nomatch++;
		return XDP_PASS;
	}
	s->matched++;

	int action = kbx_xsk_steer_counted(ctx, (struct kbx_xsk_steer_counters){ &s->passed_noslot, &s->passed_nosocket, &s->redirected });
	if (action == XDP_REDIRECT)
		s->redirected_bytes += len;
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
