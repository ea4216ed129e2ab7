/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU counters, the same shape in every kbx XDP program:
 *
 *   a BPF_MAP_TYPE_PERCPU_ARRAY named `stats` with ONE entry (key 0) whose value is a struct made only
 *   of __u64 counters. Each program's header defines that struct; userspace reads the field names from
 *   the map's BTF (@kbx/bpf readCounters), so no counter name or index is written down twice. The
 *   "index" of a counter is its position in the struct (byte offset / 8).
 *
 * Per-CPU entries need no atomics: an XDP program runs to completion on one CPU.
 */
#ifndef KBX_STATS_H
#define KBX_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define KBX_STATS_MAP(value_type)                                                                  \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                           \
		__uint(max_entries, 1);                                                            \
		__type(key, __u32);                                                                \
		__type(value, value_type);                                                         \
	} stats SEC(".maps")

/* This CPU's counters, or NULL (never for an array, but the verifier wants the check). */
static __always_inline void *kbx_stats_this_cpu(void *stats_map)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(stats_map, &zero);
}

/* Frame length in bytes as the program sees it (no FCS). */
static __always_inline __u64 kbx_frame_len(const struct xdp_md *ctx)
{
	return (__u64)ctx->data_end - (__u64)ctx->data;
}

#endif /* KBX_STATS_H */
