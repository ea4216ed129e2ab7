/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one histogram layout of kbx, for XDP programs and libkbx alike: log-linear buckets over u64
 * values, with S = sub_bits sub-buckets bits. Decoded by @kbx/stats (LogLinearLayout, BucketHistogram),
 * which reads the same bucket bounds.
 *
 *   v < 2^(S+1)   bucket v, exact
 *   otherwise     m = index of v's highest set bit, g = m - S: bucket (g << S) + (v >> g), whose values
 *                 are [(v >> g) << g, ((v >> g) << g) + 2^g - 1]: 2^S buckets per power of two, each at
 *                 most 1/2^S of its values wide (S = 3: 12.5 %, S = 7: 0.8 %)
 *
 * Values below 2^value_bits need KBX_HIST_BUCKETS(sub_bits, value_bits) buckets (u64: value_bits 64).
 * Bucket order is value order, so a cumulative walk over the array gives ranks and percentiles.
 */
#ifndef KBX_HISTOGRAM_H
#define KBX_HISTOGRAM_H

#include <linux/types.h>

/* Not __always_inline: glibc defines that name too, and this header comes before or after it. */
#define KBX_HIST_INLINE static inline __attribute__((always_inline))

#define KBX_HIST_BUCKETS(sub_bits, value_bits) ((((value_bits) - (sub_bits)) + 1) << (sub_bits))

/* Index of the highest set bit of v (v > 0). Shifts, not clz: BPF has no such instruction. */
KBX_HIST_INLINE __u32 kbx_hist_msb(__u64 v)
{
#ifdef __bpf__
	__u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
#else
	return 63u - (__u32)__builtin_clzll(v);
#endif
}

KBX_HIST_INLINE __u32 kbx_hist_index(__u64 v, __u32 sub_bits)
{
	if (v < (2ULL << sub_bits))
		return (__u32)v;
	__u32 g = kbx_hist_msb(v) - sub_bits;
	return (g << sub_bits) + (__u32)(v >> g);
}

/* Smallest value of bucket i. */
KBX_HIST_INLINE __u64 kbx_hist_lower(__u32 i, __u32 sub_bits)
{
	if (i < (2u << sub_bits))
		return i;
	__u32 g = (i >> sub_bits) - 1;
	return (__u64)(i - (g << sub_bits)) << g;
}

/* Largest value of bucket i. */
KBX_HIST_INLINE __u64 kbx_hist_upper(__u32 i, __u32 sub_bits)
{
	if (i < (2u << sub_bits))
		return i;
	__u32 g = (i >> sub_bits) - 1;
	return kbx_hist_lower(i, sub_bits) + ((1ULL << g) - 1);
}

#endif /* KBX_HISTOGRAM_H */
