// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* quic-flood's AF_XDP frames: Ethernet + IPv4 + UDP headers built with real checksums, and parsed back. */
#define _GNU_SOURCE
#include "quic_flood_internal.h"
#include "frame_sum.h"

#include <arpa/inet.h>
#include <string.h>

void quic_frame_build_udp(uint8_t *frame, const struct quic_udp_route *route, uint16_t ip_id, uint32_t payload_len)
{
	uint8_t *ip = frame + 14, *udp = frame + 34;

	memcpy(frame, route->dst_mac, 6);
	memcpy(frame + 6, route->src_mac, 6);
	frame[12] = 0x08;
	frame[13] = 0x00;
	ip[0] = 0x45;
	ip[1] = 0;
	ip[4] = (uint8_t)(ip_id >> 8);
	ip[5] = (uint8_t)ip_id;
	ip[6] = 0x40; /* DF */
	ip[7] = 0;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &route->local->sin_addr.s_addr, 4);
	memcpy(ip + 16, &route->remote->sin_addr.s_addr, 4);
	memcpy(udp, &route->local->sin_port, 2);
	memcpy(udp + 2, &route->remote->sin_port, 2);
	kbx_finish_ipv4_udp(ip, payload_len, 1);
}

int quic_frame_parse_udp(const uint8_t *p, uint32_t len, struct quic_udp_datagram *out)
{
	uint32_t ihl, ulen;
	const uint8_t *udp;

	if (len < HEADERS_LEN || p[12] != 0x08 || p[13] != 0x00 || (p[14] >> 4) != 4 || p[23] != 17)
		return -1;
	ihl = (uint32_t)(p[14] & 0x0f) * 4;
	if (ihl < 20 || len < 14 + ihl + 8)
		return -1;
	udp = p + 14 + ihl;
	ulen = (uint32_t)(udp[4] << 8 | udp[5]);
	if (ulen < 8 || 14 + ihl + ulen > len)
		return -1;
	memcpy(&out->saddr, p + 26, 4);
	memcpy(&out->sport, udp, 2);
	memcpy(&out->dport, udp + 2, 2);
	out->payload = udp + 8;
	out->len = ulen - 8;
	out->ecn = p[15] & 3;
	return 0;
}
