// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target `frame-parse`: libkbx's frame header (src/kbx_frame.h), whose parser is the XDP programs'
 * own (bpf/include/kbx_parse.h), in userspace C at any alignment. The input's first byte picks the frame's
 * offset from an 8-byte boundary (0..7), the next ten a route and payload length for the builder, the rest
 * is the frame. Checked:
 *   - kbx_frame_parse over the frame: whatever it takes as UDP or TCP is what its bytes say, read here
 *     byte by byte: at most two VLAN tags, ethertype IPv4, version 4, header and total length inside the
 *     frame, the UDP length or TCP data offset inside the IPv4 total length, payload and payload_len where
 *     those lengths put them;
 *   - quic-flood's reader (src/quic_frame.c) takes exactly the untagged, unfragmented UDP frames, with the
 *     addresses, ports, ECN bits and payload at their places;
 *   - quic-flood's builder around the input's payload: the reader reads back what was built, and the IPv4
 *     and UDP checksums are right by an independent 16-bit RFC 1071 sum.
 */
#include "../src/quic_frame.c"

#include <stdio.h>
#include <stdlib.h>

#include "reference_sum.h"

static void broken(const char *what, const uint8_t *frame, uint32_t len)
{
	fprintf(stderr, "frame-parse invariant broken: %s (frame of %u bytes:", what, len);
	for (uint32_t i = 0; i < len && i < 96; i++)
		fprintf(stderr, " %02x", frame[i]);
	fprintf(stderr, ")\n");
	abort();
}

/* What the bytes say of a frame kbx_frame_parse took as UDP or TCP. */
static void check_l4(const uint8_t *f, uint32_t len, const struct kbx_packet *pkt, enum kbx_packet_class class)
{
	uint32_t l2 = 14 + 4u * pkt->vlan_count;
	if (pkt->vlan_count > 2 || (uint8_t *)pkt->eth != f || len < l2 + 20 || kbx_get_be16(f + l2 - 2) != ETH_P_IP)
		broken("Ethernet and VLAN tags", f, len);
	for (uint32_t i = 0; i < pkt->vlan_count; i++) {
		uint16_t tpid = kbx_get_be16(f + 12 + 4 * i);
		if ((tpid != ETH_P_8021Q && tpid != ETH_P_8021AD) || pkt->vlan_ids[i] != (kbx_get_be16(f + 14 + 4 * i) & 0xfff))
			broken("a VLAN tag", f, len);
	}
	const uint8_t *ip = f + l2;
	uint32_t ihl = (ip[0] & 15) * 4u, total = kbx_get_be16(ip + 2), protocol = class == KBX_PACKET_UDP ? 17 : 6;
	if ((uint8_t *)pkt->ip4 != ip || ip[0] >> 4 != 4 || ihl < 20 || total < ihl || l2 + total > len || ip[9] != protocol ||
	    pkt->ip_header_len != ihl || pkt->ip_total_len != total || (kbx_get_be16(ip + 6) & 0x1fff) != 0)
		broken("the IPv4 header", f, len);
	const uint8_t *l4 = ip + ihl, *end = (const uint8_t *)pkt->payload + pkt->payload_len;
	if (class == KBX_PACKET_UDP) {
		uint32_t udp_len = kbx_get_be16(l4 + 4);
		int whole = !(kbx_get_be16(ip + 6) & 0x2000);
		if ((uint8_t *)pkt->udp != l4 || pkt->payload != l4 + 8 || udp_len < 8 || total - ihl < 8 ||
		    (whole && (udp_len > total - ihl || pkt->payload_len != udp_len - 8)) || (!whole && pkt->payload_len != total - ihl - 8))
			broken("the UDP header", f, len);
	} else {
		uint32_t doff = (l4[12] >> 4) * 4u;
		if ((uint8_t *)pkt->tcp != l4 || doff < 20 || doff > total - ihl || pkt->payload != l4 + doff ||
		    pkt->payload_len != total - ihl - doff)
			broken("the TCP header", f, len);
	}
	if (end > f + len)
		broken("a payload past the frame", f, len);
}

static void check_quic_reader(const uint8_t *f, uint32_t len, const struct kbx_packet *pkt, enum kbx_packet_class class)
{
	struct quic_udp_datagram d;
	int taken = quic_frame_parse_udp(f, len, &d) == 0;
	int whole_untagged_udp = class == KBX_PACKET_UDP && !pkt->vlan_count && !(kbx_get_be16(f + 20) & 0x3fff);
	if (taken != whole_untagged_udp)
		broken("quic-flood's reader takes a frame that is not untagged whole UDP, or refuses one", f, len);
	if (!taken)
		return;
	const uint8_t *ip = f + 14, *udp = ip + (ip[0] & 15) * 4;
	if (memcmp(&d.saddr, ip + 12, 4) || memcmp(&d.sport, udp, 2) || memcmp(&d.dport, udp + 2, 2) || d.ecn != (ip[1] & 3) ||
	    d.payload != udp + 8 || d.len != kbx_get_be16(udp + 4) - 8u)
		broken("quic-flood's reader: a field not where the bytes put it", f, len);
}

static void check_quic_builder(const uint8_t *route_bytes, const uint8_t *payload, uint32_t payload_len)
{
	static uint8_t frame[8 + KBX_QUIC_FRAME_HEADERS + 1500];
	uint8_t *f = frame + (route_bytes[0] & 7);
	struct sockaddr_in local = { .sin_family = AF_INET }, remote = { .sin_family = AF_INET };
	memcpy(&local.sin_addr.s_addr, route_bytes, 4);
	memcpy(&remote.sin_addr.s_addr, route_bytes + 4, 4);
	memcpy(&local.sin_port, route_bytes + 8, 2);
	remote.sin_port = (uint16_t)(local.sin_port * 31u + 7u);
	const uint8_t src_mac[6] = { 2, 0, 0, 0, 0, 1 }, dst_mac[6] = { 2, 0, 0, 0, 0, 2 };
	struct quic_udp_route route = { src_mac, dst_mac, &local, &remote };

	memcpy(f + KBX_QUIC_FRAME_HEADERS, payload, payload_len);
	quic_frame_build_udp(f, &route, (uint16_t)payload_len, payload_len);
	uint32_t len = KBX_QUIC_FRAME_HEADERS + payload_len;
	const uint8_t *ip = f + 14, *udp = ip + 20;
	if (sum16(ip, 20, 0) != 0)
		broken("quic-flood's builder: IPv4 header checksum", f, len);
	if (kbx_get_be16(udp + 6) == 0 || sum16(udp, 8 + payload_len, pseudo_sum(ip, IPPROTO_UDP, 8 + payload_len)) != 0)
		broken("quic-flood's builder: UDP checksum", f, len);
	struct quic_udp_datagram d;
	if (quic_frame_parse_udp(f, len, &d) != 0 || d.saddr != local.sin_addr.s_addr || d.sport != local.sin_port ||
	    d.dport != remote.sin_port || d.len != payload_len || memcmp(d.payload, payload, payload_len) != 0)
		broken("quic-flood's reader does not read back what its builder wrote", f, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 11 || size - 11 > 4096)
		return 0;
	uint32_t len = (uint32_t)(size - 11), offset = data[0] & 7;
	/* the frame ends where its heap block does, so ASan sees any read past it; it starts at any alignment */
	uint8_t *block = malloc(offset + len + 1), *f = block + 1 + offset;
	memcpy(f, data + 11, len);

	struct kbx_packet pkt;
	enum kbx_packet_class class = kbx_frame_parse(f, len, &pkt);
	if (class == KBX_PACKET_UDP || class == KBX_PACKET_TCP)
		check_l4(f, len, &pkt, class);
	if (len >= 22)
		check_quic_reader(f, len, &pkt, class);
	else if (quic_frame_parse_udp(f, len, &(struct quic_udp_datagram){ 0 }) == 0)
		broken("quic-flood's reader takes a frame shorter than its headers", f, len);
	check_quic_builder(data + 1, f, len < 1500 ? len : 1500);
	free(block);
	return 0;
}
