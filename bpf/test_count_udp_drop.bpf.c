// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A test program written as a stranger to kbx would write it (no kbx headers): counts IPv4 UDP frames to
 * port `udp_port` (default 9001) in `udp_drops` and drops them; passes everything else. xdp-load's
 * dispatcher tests chain it with test_count_tcp_drop and test_foreign_pass.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

const volatile __u16 udp_port = 9001;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} udp_drops SEC(".maps");

SEC("xdp")
int count_udp_drop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
		return XDP_PASS;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(udp_port))
		return XDP_PASS;
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&udp_drops, &zero);
	if (count)
		__sync_fetch_and_add(count, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
