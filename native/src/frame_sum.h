/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Internet checksum (RFC 1071) of libkbx's frame builders: a one's-complement sum over memory in host
 * byte order, 8 bytes at a time. The sum is byte-order independent: folded and stored back as it is, it is
 * the checksum in network order.
 */
#ifndef KBX_FRAME_SUM_H
#define KBX_FRAME_SUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* The checksum of a sum (complemented), ready to be stored in memory as it is. */
static inline uint16_t kbx_checksum_of(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * Completes the IPv4 and UDP headers at ip (an IPv4 header of ihl words, then UDP) around udp_payload_len
 * bytes already in place: total length, header checksum, UDP length and (unless udp_checksum is 0) the UDP
 * checksum over the pseudo-header, header and payload. The other fields must be set; both checksums are
 * overwritten.
 */
static inline void kbx_finish_ipv4_udp(uint8_t *ip, uint32_t udp_payload_len, int udp_checksum)
{
	uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	uint8_t *udp = ip + ihl;
	uint32_t udp_len = 8 + udp_payload_len, total = ihl + udp_len;
	uint8_t pseudo[4] = { 0, 17, (uint8_t)(udp_len >> 8), (uint8_t)udp_len }; /* zero, protocol, UDP length */
	uint16_t csum;

	ip[2] = (uint8_t)(total >> 8);
	ip[3] = (uint8_t)total;
	ip[10] = ip[11] = 0;
	csum = kbx_checksum_of(kbx_sum_memory(ip, ihl, 0));
	memcpy(ip + 10, &csum, 2);
	udp[4] = (uint8_t)(udp_len >> 8);
	udp[5] = (uint8_t)udp_len;
	udp[6] = udp[7] = 0;
	if (!udp_checksum)
		return;
	/* the pseudo-header's addresses are the IPv4 header's, as they sit in memory */
	csum = kbx_checksum_of(kbx_sum_memory(udp, udp_len, kbx_sum_memory(pseudo, 4, kbx_sum_memory(ip + 12, 8, 0))));
	if (csum == 0)
		csum = 0xffff;
	memcpy(udp + 6, &csum, 2);
}

#endif /* KBX_FRAME_SUM_H */
