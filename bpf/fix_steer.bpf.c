// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * fix-tcp --io xdp: steers ONE TCP connection (our 4-tuple) and ARP requests for our address to the AF_XDP
 * socket of the userspace TCP stack; every other frame goes to the kernel untouched, so the host's own
 * networking keeps working beside it. Maps, .rodata and counters: include/fix_steer.h.
 */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

#include "kbx_parse.h"
#include "kbx_stats.h"
#include "fix_steer.h"

const volatile __u32 local_ip = 0;
const volatile __u32 remote_ip = 0;
const volatile __u16 local_port = 0;
const volatile __u16 remote_port = 0;

KBX_STATS_MAP(struct kbx_fix_steer_stats);

#define KBX_ARPHRD_ETHER 1
#define KBX_ARPOP_REQUEST 1

/* Ethernet/IPv4 ARP body (RFC 826): 8-byte header, then sender MAC, sender IP, target MAC, target IP. */
struct kbx_arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

/*
 * 1: ARP request for local_ip, 0: anything else, -1: truncated ARP. Replies go to the kernel even when
 * addressed to us: they answer the kernel's own requests, and the kernel's neighbour table is where the
 * userspace stack finds the next hop's MAC.
 */
static __always_inline int arp_for_us(struct xdp_md *ctx, const struct kbx_packet *pkt)
{
	if (pkt->ethertype != bpf_htons(ETH_P_ARP))
		return 0;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct kbx_arp_ipv4 *arp = data + sizeof(struct ethhdr);
	if ((void *)(arp + 1) > data_end)
		return -1;
	if (arp->htype != bpf_htons(KBX_ARPHRD_ETHER) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != 6 || arp->plen != 4 ||
	    arp->op != bpf_htons(KBX_ARPOP_REQUEST))
		return 0;
	__u32 target;
	__builtin_memcpy(&target, arp->tpa, 4);
	return target == local_ip;
}

static __always_inline int our_segment(const struct kbx_packet *pkt)
{
	return pkt->ip4->daddr == local_ip && pkt->ip4->saddr == remote_ip && pkt->tcp->dest == bpf_htons(local_port) &&
	       pkt->tcp->source == bpf_htons(remote_port);
}

SEC("xdp")
int kbx_fix_steer(struct xdp_md *ctx)
{
	struct kbx_fix_steer_stats *s = kbx_stats_this_cpu(&stats);
	if (!s)
		return XDP_PASS;
	s->rx++;

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
	/* The userspace TCP sends and takes untagged frames only: tagged ones stay the kernel's. */
	if (pkt.vlan_count) {
		s->passed_nomatch++;
		return XDP_PASS;
	}
	if (class == KBX_PACKET_TCP && pkt.ip4 && pkt.tcp && our_segment(&pkt)) {
		s->matched_tcp++;
	} else if (class == KBX_PACKET_NOT_IP) {
		int arp = arp_for_us(ctx, &pkt);
		if (arp < 0) {
			s->malformed++;
			return XDP_PASS;
		}
		if (arp == 0) {
			s->passed_nomatch++;
			return XDP_PASS;
		}
		s->matched_arp++;
	} else {
		s->passed_nomatch++;
		return XDP_PASS;
	}

	return kbx_xsk_steer_counted(ctx, (struct kbx_xsk_steer_counters){ &s->passed_noslot, &s->passed_nosocket, &s->redirected });
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
