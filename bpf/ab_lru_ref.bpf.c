// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark reference only (bench/ab.ts), NOT an arbitrator: the seed project's design, an LRU hash of
 * packet ids (session_id, sequence) looked up and then inserted per packet; first sight passes, a known
 * id drops. It has the race ab_arbitrate.bpf.c avoids (lookup and update are two steps). Same parsing
 * and .rodata port as ab_arbitrate so the per-packet costs compare like for like.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kbx_parse.h"
#include "ab_format.h"

const volatile __u16 feed_port = 8080;
const volatile __u8 bench_fresh_sequence = 0;

struct ab_lru_key {
	__u64 session;
	__u64 sequence;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ab_lru_key);
	__type(value, __u64);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counter SEC(".maps");

SEC("xdp")
int kbx_ab_lru_ref(struct xdp_md *ctx)
{
	struct kbx_packet pkt;
	if (kbx_parse_packet(ctx, &pkt) != KBX_PACKET_UDP || !pkt.udp || bpf_ntohs(pkt.udp->dest) != feed_port)
		return XDP_PASS;
	void *data_end = (void *)(long)ctx->data_end;
	const __u8 *payload = pkt.payload;
	if ((void *)(payload + AB_OPTIQ_SIZE) > data_end)
		return XDP_PASS;
	struct ab_message m;
	ab_parse_optiq(payload, &m);
	if (bench_fresh_sequence) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&counter, &zero);
		if (n)
			m.sequence = (*n)++;
	}
	struct ab_lru_key key = { .session = m.key.id, .sequence = m.sequence };
	if (bpf_map_lookup_elem(&seen, &key))
		return XDP_DROP;
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&seen, &key, &now, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
