/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The checksum the fuzz harnesses check frames against: RFC 1071 in 16-bit network-order words, written
 * apart from src/kbx_frame.h's (8 bytes at a time in host order), which is what is being tested.
 */
#ifndef KBX_FUZZ_REFERENCE_SUM_H
#define KBX_FUZZ_REFERENCE_SUM_H

#include <stdint.h>

/* The complemented one's-complement sum of len bytes at p, starting from sum; 0 over a correct checksum. */
static uint16_t sum16(const uint8_t *p, uint32_t len, uint32_t sum)
{
	for (uint32_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The pseudo-header of the UDP or TCP header behind the IPv4 header at ip, summed as sum16 sums. */
static uint32_t pseudo_sum(const uint8_t *ip, uint8_t protocol, uint32_t l4_len)
{
	uint32_t sum = protocol + l4_len;
	for (int i = 12; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	return sum;
}

#endif /* KBX_FUZZ_REFERENCE_SUM_H */
