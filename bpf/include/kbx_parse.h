/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bounds-checked packet parsing shared by every kbx XDP program.
 *
 * kbx_parse_packet() walks Ethernet, up to two VLAN tags (802.1Q / 802.1ad), IPv4 (with options) and
 * UDP or TCP, and sorts the frame into one enum kbx_packet_class. Every header is checked against
 * data_end before it is read, and every length field is checked against the bytes really present, so a
 * frame the kernel's own stack would reject as truncated or inconsistent comes back KBX_PACKET_MALFORMED.
 * Lengths are compared as scalars (never two packet pointers with each other), so programs load with
 * CAP_BPF + CAP_NET_ADMIN alone.
 *
 * Not checked here: the IPv4 header checksum and the UDP/TCP checksums (left to whoever reads the
 * payload), IPv6 beyond its fixed header (kbx programs pass IPv6 to the kernel).
 *
 * The same rules serve libkbx's C (native/src/kbx_frame.h): outside BPF, kbx_parse_frame() reads a frame in
 * memory. Its users must not include glibc's <netinet/ip.h>, <netinet/udp.h> or <netinet/tcp.h>, whose
 * structs of the same names these uapi headers define.
 */
#ifndef KBX_PARSE_H
#define KBX_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#ifdef __bpf__
#include <bpf/bpf_helpers.h>
#endif

#ifdef __clang__
#define KBX_UNROLL _Pragma("unroll")
#else
#define KBX_UNROLL /* gcc (libkbx): a two-pass loop it unrolls or not as it likes */
#endif

#define KBX_MAX_VLANS 2

#define KBX_IP_MF 0x2000
#define KBX_IP_OFFSET_MASK 0x1fff

/* The VLAN tag as it sits on the wire after the MAC addresses (not in the uapi headers). */
struct kbx_vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

/*
 * The headers as the parser reads them: in BPF the uapi structs themselves; in C, where a frame sits at any
 * address (behind 14 bytes of Ethernet, IPv4 is never 4-byte aligned), the same structs aligned to a byte.
 */
#ifdef __bpf__
#define KBX_HEADER_ALIGN
#else
#define KBX_HEADER_ALIGN __attribute__((aligned(1)))
#endif
typedef struct ethhdr kbx_ethhdr KBX_HEADER_ALIGN;
typedef struct kbx_vlan_hdr kbx_vlanhdr KBX_HEADER_ALIGN;
typedef struct iphdr kbx_iphdr KBX_HEADER_ALIGN;
typedef struct ipv6hdr kbx_ipv6hdr KBX_HEADER_ALIGN;
typedef struct udphdr kbx_udphdr KBX_HEADER_ALIGN;
typedef struct tcphdr kbx_tcphdr KBX_HEADER_ALIGN;

enum kbx_packet_class {
	KBX_PACKET_MALFORMED = 0, /* truncated or inconsistent lengths: pass it to the kernel untouched */
	KBX_PACKET_NOT_IP,        /* ARP, LLDP, a third VLAN tag, anything that is neither IPv4 nor IPv6 */
	KBX_PACKET_IPV6,          /* fixed IPv6 header present; not parsed further */
	KBX_PACKET_IPV4_FRAGMENT, /* IPv4 fragment with a non-zero offset: it carries no L4 header */
	KBX_PACKET_IPV4,          /* IPv4 whose protocol is neither UDP nor TCP (ICMP, GRE, ...) */
	KBX_PACKET_UDP,
	KBX_PACKET_TCP,
};

enum kbx_fragment {
	KBX_FRAGMENT_NONE = 0,
	KBX_FRAGMENT_FIRST, /* offset 0 with More Fragments set: the L4 header is here, the rest is not */
	KBX_FRAGMENT_LATER, /* offset > 0: no L4 header */
};

struct kbx_packet {
	kbx_ethhdr *eth;
	__u16 vlan_ids[KBX_MAX_VLANS]; /* VIDs (12 bits, host order), outer first */
	__u8 vlan_count;
	__u8 l4_proto;      /* IPv4 protocol number, 0 when not IPv4 */
	__u8 fragment;      /* enum kbx_fragment */
	__u8 ip_header_len; /* bytes, options included */
	__be16 ethertype;   /* innermost ethertype, network order (a third VLAN tag shows here as 0x8100/0x88a8) */
	__u16 ip_total_len; /* IPv4 total length (host order); bytes past it are Ethernet padding */
	kbx_iphdr *ip4;
	kbx_ipv6hdr *ip6;
	kbx_udphdr *udp;
	kbx_tcphdr *tcp;
	void *payload;      /* first byte after the UDP header or the TCP header with options */
	__u16 payload_len;  /* UDP: len - 8 (for a first fragment: what this fragment holds); TCP: to ip_total_len */
};

/* Ethernet plus up to KBX_MAX_VLANS tags; sets eth, vlan_*, ethertype. Returns 0, or -1 when truncated. */
static __always_inline int kbx_parse_ethernet(void **cursor, void *data_end, struct kbx_packet *pkt)
{
	kbx_ethhdr *eth = *cursor;
	if ((void *)(eth + 1) > data_end)
		return -1;
	pkt->eth = eth;
	__be16 proto = eth->h_proto;
	void *pos = eth + 1;

	KBX_UNROLL
	for (int i = 0; i < KBX_MAX_VLANS; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		kbx_vlanhdr *vlan = pos;
		if ((void *)(vlan + 1) > data_end)
			return -1;
		pkt->vlan_ids[i] = bpf_ntohs(vlan->tci) & 0x0fff;
		pkt->vlan_count = i + 1;
		proto = vlan->encapsulated_proto;
		pos = vlan + 1;
	}
	pkt->ethertype = proto;
	*cursor = pos;
	return 0;
}

/* IPv4 header with options, total length checked against the frame. Returns 0 on success, -1 when malformed. */
static __always_inline int kbx_parse_ipv4(void **cursor, void *data_end, struct kbx_packet *pkt)
{
	kbx_iphdr *ip = *cursor;
	if ((void *)(ip + 1) > data_end)
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	__u32 header_len = ip->ihl * 4;
	if ((void *)ip + header_len > data_end)
		return -1;
	__u32 total_len = bpf_ntohs(ip->tot_len);
	if (total_len < header_len || (void *)ip + total_len > data_end)
		return -1;

	__u16 frag = bpf_ntohs(ip->frag_off);
	if (frag & KBX_IP_OFFSET_MASK)
		pkt->fragment = KBX_FRAGMENT_LATER;
	else if (frag & KBX_IP_MF)
		pkt->fragment = KBX_FRAGMENT_FIRST;
	else
		pkt->fragment = KBX_FRAGMENT_NONE;

	pkt->ip4 = ip;
	pkt->l4_proto = ip->protocol;
	pkt->ip_header_len = header_len;
	pkt->ip_total_len = total_len;
	*cursor = (void *)ip + header_len;
	return 0;
}

/*
 * UDP header; its length must be at least 8 and fit in the IPv4 payload. A first fragment's UDP length
 * covers the whole datagram, so there only the header itself must be present.
 */
static __always_inline int kbx_parse_udp(void *cursor, void *data_end, struct kbx_packet *pkt)
{
	kbx_udphdr *udp = cursor;
	if ((void *)(udp + 1) > data_end)
		return -1;
	__u32 ip_payload_len = pkt->ip_total_len - pkt->ip_header_len;
	__u32 udp_len = bpf_ntohs(udp->len);
	if (ip_payload_len < sizeof(*udp) || udp_len < sizeof(*udp))
		return -1;
	if (pkt->fragment == KBX_FRAGMENT_NONE) {
		if (udp_len > ip_payload_len)
			return -1;
		pkt->payload_len = udp_len - sizeof(*udp);
	} else {
		pkt->payload_len = ip_payload_len - sizeof(*udp);
	}
	pkt->udp = udp;
	pkt->payload = udp + 1;
	return 0;
}

/* TCP header with options (doff); the header must fit in the IPv4 payload. */
static __always_inline int kbx_parse_tcp(void *cursor, void *data_end, struct kbx_packet *pkt)
{
	kbx_tcphdr *tcp = cursor;
	if ((void *)(tcp + 1) > data_end)
		return -1;
	if (tcp->doff < 5)
		return -1;
	__u32 header_len = tcp->doff * 4;
	__u32 ip_payload_len = pkt->ip_total_len - pkt->ip_header_len;
	if (header_len > ip_payload_len || cursor + header_len > data_end)
		return -1;
	pkt->tcp = tcp;
	pkt->payload = cursor + header_len;
	pkt->payload_len = ip_payload_len - header_len;
	return 0;
}

/* Classify the frame from data to data_end; fills *pkt as far as the frame could be parsed. */
static __always_inline enum kbx_packet_class kbx_parse_frame(void *data, void *data_end, struct kbx_packet *pkt)
{
	void *cursor = data;

	__builtin_memset(pkt, 0, sizeof(*pkt));
	if (kbx_parse_ethernet(&cursor, data_end, pkt) < 0)
		return KBX_PACKET_MALFORMED;
	__be16 proto = pkt->ethertype;

	if (proto == bpf_htons(ETH_P_IPV6)) {
		kbx_ipv6hdr *ip6 = cursor;
		if ((void *)(ip6 + 1) > data_end)
			return KBX_PACKET_MALFORMED;
		pkt->ip6 = ip6;
		return KBX_PACKET_IPV6;
	}
	if (proto != bpf_htons(ETH_P_IP))
		return KBX_PACKET_NOT_IP;

	if (kbx_parse_ipv4(&cursor, data_end, pkt) < 0)
		return KBX_PACKET_MALFORMED;
	if (pkt->fragment == KBX_FRAGMENT_LATER)
		return KBX_PACKET_IPV4_FRAGMENT;

	if (pkt->l4_proto == IPPROTO_UDP) {
		if (kbx_parse_udp(cursor, data_end, pkt) < 0)
			return KBX_PACKET_MALFORMED;
		return KBX_PACKET_UDP;
	}
	if (pkt->l4_proto == IPPROTO_TCP) {
		if (kbx_parse_tcp(cursor, data_end, pkt) < 0)
			return KBX_PACKET_MALFORMED;
		return KBX_PACKET_TCP;
	}
	return KBX_PACKET_IPV4;
}

#ifdef __bpf__
/* Classify the XDP program's frame. */
static __always_inline enum kbx_packet_class kbx_parse_packet(struct xdp_md *ctx, struct kbx_packet *pkt)
{
	return kbx_parse_frame((void *)(long)ctx->data, (void *)(long)ctx->data_end, pkt);
}
#endif

/* Destination port (network order) of a UDP or TCP packet; 0 for anything else. */
static __always_inline __be16 kbx_packet_dport(const struct kbx_packet *pkt)
{
	if (pkt->udp)
		return pkt->udp->dest;
	if (pkt->tcp)
		return pkt->tcp->dest;
	return 0;
}

#endif /* KBX_PARSE_H */
