// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* quic-flood's AF_XDP frames: Ethernet + IPv4 + UDP headers built with real checksums, and parsed back. */
#define _GNU_SOURCE
#include "quic_flood_internal.h"

#include <arpa/inet.h>
#include <string.h>

/*
 * RFC 1071 one's-complement sum over memory in host byte order, 8 bytes at a time (the sum is byte-order
 * independent: folded and stored back as it is, it is the checksum in network order).
 */
static uint64_t add_carry(uint64_t sum, uint64_t w)
{
	sum += w;
	return sum + (sum < w);
}

static uint64_t sum_memory(const uint8_t *p, size_t len, uint64_t sum)
{
	uint64_t w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		sum = add_carry(sum, w);
	}
	w = 0;
	memcpy(&w, p, len); /* a trailing odd byte is the high byte of a zero-padded network-order word */
	return add_carry(sum, w);
}

/* The checksum of a sum (complemented), ready to be stored in memory as it is. */
static uint16_t checksum_of(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void quic_frame_build_udp(uint8_t *frame, const struct quic_udp_route *route, uint16_t ip_id, uint32_t payload_len)
{
	uint8_t *ip = frame + 14, *udp = frame + 34;
	uint32_t udp_len = 8 + payload_len;
	uint16_t csum;

	memcpy(frame, route->dst_mac, 6);
	memcpy(frame + 6, route->src_mac, 6);
	frame[12] = 0x08;
	frame[13] = 0x00;
	ip[0] = 0x45;
	ip[1] = 0;
	ip[2] = (uint8_t)((20 + udp_len) >> 8);
	ip[3] = (uint8_t)(20 + udp_len);
	ip[4] = (uint8_t)(ip_id >> 8);
	ip[5] = (uint8_t)ip_id;
	ip[6] = 0x40; /* DF */
	ip[7] = 0;
	ip[8] = 64;
	ip[9] = 17;
	ip[10] = ip[11] = 0;
	memcpy(ip + 12, &route->local->sin_addr.s_addr, 4);
	memcpy(ip + 16, &route->remote->sin_addr.s_addr, 4);
	csum = checksum_of(sum_memory(ip, 20, 0));
	memcpy(ip + 10, &csum, 2);
	memcpy(udp, &route->local->sin_port, 2);
	memcpy(udp + 2, &route->remote->sin_port, 2);
	udp[4] = (uint8_t)(udp_len >> 8);
	udp[5] = (uint8_t)udp_len;
	udp[6] = udp[7] = 0;
	/* pseudo-header: addresses, protocol and UDP length (as network-order words in memory) */
	csum = checksum_of(sum_memory(udp, udp_len, sum_memory(ip + 12, 8, htons(17) + htons((uint16_t)udp_len))));
	if (csum == 0)
		csum = 0xffff;
	memcpy(udp + 6, &csum, 2);
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
