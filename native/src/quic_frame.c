// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* quic-flood's AF_XDP frames: Ethernet + IPv4 + UDP headers built with real checksums, and parsed back. */
#define _GNU_SOURCE
#include "quic_flood_internal.h"
#include "kbx_frame.h"

#include <string.h>

void quic_frame_build_udp(uint8_t *frame, const struct quic_udp_route *route, uint16_t ip_id, uint32_t payload_len)
{
	uint8_t *ip = kbx_put_ethernet(frame, route->dst_mac, route->src_mac, ETH_P_IP);
	uint8_t *udp = kbx_put_ipv4(ip, 0, ip_id, IPPROTO_UDP, &route->local->sin_addr.s_addr, &route->remote->sin_addr.s_addr);

	memcpy(udp, &route->local->sin_port, 2);
	memcpy(udp + 2, &route->remote->sin_port, 2);
	kbx_finish_ipv4_udp(ip, payload_len, 1);
}

int quic_frame_parse_udp(const uint8_t *frame, uint32_t len, struct quic_udp_datagram *out)
{
	struct kbx_packet pkt;

	/* untagged like the frames the flooder sends back, and whole */
	if (kbx_frame_parse(frame, len, &pkt) != KBX_PACKET_UDP || pkt.vlan_count || pkt.fragment != KBX_FRAGMENT_NONE)
		return -1;
	out->saddr = pkt.ip4->saddr;
	out->sport = pkt.udp->source;
	out->dport = pkt.udp->dest;
	out->payload = pkt.payload;
	out->len = pkt.payload_len;
	out->ecn = pkt.ip4->tos & 3;
	return 0;
}
