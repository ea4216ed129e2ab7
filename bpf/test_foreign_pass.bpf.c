// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A test program as foreign as they come: counts every frame it sees in `seen` and returns XDP_PASS. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("xdp")
int foreign_pass(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&seen, &zero);
	if (count)
		(*count)++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
