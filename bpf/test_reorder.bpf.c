// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test-only impairment (test/fix-reorder.test.ts), a tc egress program on the FIX acceptor's veth: the first
 * transmission of every DROP_EVERY-th TCP data segment from port 9878 is dropped, and its retransmission let
 * through, so the segments sent after it arrive first: the receiver sees them out of order and then the
 * missing one later (netem is not available here). Counters in `reorder_counts`.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define FIX_PORT 9878
#define DROP_EVERY 10

enum { SEEN = 0, DROPPED = 1, RETRANSMISSION_PASSED = 2, COUNTS = 3 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} reorder_counts SEC(".maps");

/* Sequence numbers whose first transmission was dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} dropped_seqs SEC(".maps");

static void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&reorder_counts, &which);
	if (n) __sync_fetch_and_add(n, 1);
}

SEC("tc")
int test_reorder(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u32 ip_len, tcp_len, seq, zero = 0;
	__u64 *seen;
	__u8 one = 1;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl < 5) return TC_ACT_OK;
	ip_len = ip->ihl * 4;
	tcp = (void *)ip + ip_len;
	if ((void *)(tcp + 1) > end || tcp->source != bpf_htons(FIX_PORT)) return TC_ACT_OK;
	tcp_len = tcp->doff * 4;
	if (bpf_ntohs(ip->tot_len) <= ip_len + tcp_len) return TC_ACT_OK; /* no data */
	seq = bpf_ntohl(tcp->seq);
	if (bpf_map_lookup_elem(&dropped_seqs, &seq)) {
		bpf_map_delete_elem(&dropped_seqs, &seq);
		count(RETRANSMISSION_PASSED);
		return TC_ACT_OK;
	}
	seen = bpf_map_lookup_elem(&reorder_counts, &zero);
	if (!seen) return TC_ACT_OK;
	if (__sync_fetch_and_add(seen, 1) % DROP_EVERY != DROP_EVERY - 1) return TC_ACT_OK;
	bpf_map_update_elem(&dropped_seqs, &seq, &one, BPF_ANY);
	count(DROPPED);
	/* not TC_ACT_SHOT: that reports NET_XMIT_DROP and TCP resends at once, in order; stolen is "sent" */
	return TC_ACT_STOLEN;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
