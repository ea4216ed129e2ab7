/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Ethernet, IPv4, UDP and TCP frames for libkbx's C, written once: big-endian loads and stores, the parser,
 * the Internet checksum and the header builders.
 *
 * The parser is the XDP programs' own (bpf/include/kbx_parse.h): Ethernet with up to two VLAN tags, IPv4
 * with options, UDP or TCP, every length checked against the bytes present; kbx_frame_parse() runs it over a
 * frame in memory, so a frame the C side takes is one the XDP program in front of it classified the same way.
 *
 * The checksum (RFC 1071) is a one's-complement sum over memory in host byte order, 8 bytes at a time. The
 * sum is byte-order independent: folded and stored back as it is, it is the checksum in network order.
 */
#ifndef KBX_FRAME_H
#define KBX_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kbx_parse.h"

#define KBX_ETH_HEADER_LEN 14
#define KBX_IPV4_HEADER_LEN 20 /* without options: what the builders write */
#define KBX_UDP_HEADER_LEN 8
#define KBX_TCP_HEADER_LEN 20  /* without options */

static inline uint16_t kbx_get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline uint32_t kbx_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void kbx_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void kbx_put_be32(uint8_t *p, uint32_t v)
{
	kbx_put_be16(p, (uint16_t)(v >> 16));
	kbx_put_be16(p + 2, (uint16_t)v);
}

/* kbx_parse_frame() over len bytes at frame; nothing is written through pkt's pointers. */
static inline enum kbx_packet_class kbx_frame_parse(const uint8_t *frame, uint32_t len, struct kbx_packet *pkt)
{
	return kbx_parse_frame((void *)(uintptr_t)frame, (void *)(uintptr_t)(frame + len), pkt);
}

static inline uint64_t kbx_sum_add(uint64_t sum, uint64_t w)
{
	sum += w;
	return sum + (sum < w);
}

static inline uint64_t kbx_sum_memory(const uint8_t *p, size_t len, uint64_t sum)
{
	uint64_t w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		sum = kbx_sum_add(sum, w);
	}
	w = 0;
	memcpy(&w, p, len); /* a trailing odd byte is the high byte of a zero-padded network-order word */
	return kbx_sum_add(sum, w);
}

/* The checksum of a sum (complemented), ready to be stored in memory as it is; 0 when verifying a good one. */
static inline uint16_t kbx_checksum_of(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The sum of the pseudo-header of the UDP or TCP header behind the IPv4 header at ip: its addresses as they
 * sit there, zero, the protocol, the UDP or TCP length. */
static inline uint64_t kbx_sum_ipv4_pseudo(const uint8_t *ip, uint8_t protocol, uint32_t l4_len)
{
	uint8_t rest[4] = { 0, protocol, (uint8_t)(l4_len >> 8), (uint8_t)l4_len };

	return kbx_sum_memory(rest, 4, kbx_sum_memory(ip + 12, 8, 0));
}

/* Destination and source MAC and the ethertype (host order); returns where the next header goes. */
static inline uint8_t *kbx_put_ethernet(uint8_t *frame, const uint8_t *dst_mac, const uint8_t *src_mac, uint16_t ethertype)
{
	memcpy(frame, dst_mac, 6);
	memcpy(frame + 6, src_mac, 6);
	kbx_put_be16(frame + 12, ethertype);
	return frame + KBX_ETH_HEADER_LEN;
}

/*
 * An IPv4 header without options: version 4, tos, id, Don't Fragment, TTL 64, protocol, and the addresses
 * (network order, as sockets hold them). The total length and the checksum are left to kbx_finish_ipv4_udp
 * or kbx_finish_ipv4_tcp. Returns where the UDP or TCP header goes.
 */
static inline uint8_t *kbx_put_ipv4(uint8_t *ip, uint8_t tos, uint16_t id, uint8_t protocol, const void *saddr,
				    const void *daddr)
{
	ip[0] = 0x45;
	ip[1] = tos;
	kbx_put_be16(ip + 4, id);
	kbx_put_be16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = protocol;
	memcpy(ip + 12, saddr, 4);
	memcpy(ip + 16, daddr, 4);
	return ip + KBX_IPV4_HEADER_LEN;
}

/* The total length and header checksum of the IPv4 header at ip (of ihl words) around l4_len bytes. */
static inline void kbx_finish_ipv4(uint8_t *ip, uint32_t l4_len)
{
	uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	uint16_t csum;

	kbx_put_be16(ip + 2, (uint16_t)(ihl + l4_len));
	ip[10] = ip[11] = 0;
	csum = kbx_checksum_of(kbx_sum_memory(ip, ihl, 0));
	memcpy(ip + 10, &csum, 2);
}

/*
 * Completes the IPv4 and UDP headers at ip (an IPv4 header of ihl words, then UDP) around udp_payload_len
 * bytes already in place: total length, header checksum, UDP length and (unless udp_checksum is 0) the UDP
 * checksum over the pseudo-header, header and payload. The other fields must be set; both checksums are
 * overwritten.
 */
static inline void kbx_finish_ipv4_udp(uint8_t *ip, uint32_t udp_payload_len, int udp_checksum)
{
	uint8_t *udp = ip + (ip[0] & 0x0f) * 4;
	uint32_t udp_len = KBX_UDP_HEADER_LEN + udp_payload_len;
	uint16_t csum;

	kbx_finish_ipv4(ip, udp_len);
	kbx_put_be16(udp + 4, (uint16_t)udp_len);
	udp[6] = udp[7] = 0;
	if (!udp_checksum)
		return;
	csum = kbx_checksum_of(kbx_sum_memory(udp, udp_len, kbx_sum_ipv4_pseudo(ip, IPPROTO_UDP, udp_len)));
	if (csum == 0)
		csum = 0xffff; /* 0 says "no checksum" in UDP */
	memcpy(udp + 6, &csum, 2);
}

/* Completes the IPv4 header at ip and the checksum of the tcp_len bytes of TCP header and data behind it. */
static inline void kbx_finish_ipv4_tcp(uint8_t *ip, uint32_t tcp_len)
{
	uint8_t *tcp = ip + (ip[0] & 0x0f) * 4;
	uint16_t csum;

	kbx_finish_ipv4(ip, tcp_len);
	tcp[16] = tcp[17] = 0;
	csum = kbx_checksum_of(kbx_sum_memory(tcp, tcp_len, kbx_sum_ipv4_pseudo(ip, IPPROTO_TCP, tcp_len)));
	memcpy(tcp + 16, &csum, 2);
}

#endif /* KBX_FRAME_H */
