/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Multicast channels of ab_arbitrate.bpf.c: which (interface, group, UDP port[, source]) is a feed line,
 * and counters per channel. Userspace: packages/ab/src/channels.ts.
 *
 * When .rodata match_groups is 1, a feed packet is an IPv4 UDP packet, not fragmented, whose
 * (ingress ifindex, destination address, destination port, source address) is in `groups`, or — for an
 * any-source join — whose (ifindex, destination, port, source 0) is; the port range is not used then, and
 * the entry's line (not line_b_ifindex) says whether it is line A or B. Everything else is XDP_PASS
 * (`passed`), as before: a packet to a joined group from another source than a source-specific join's
 * is not steered.
 *
 * Maps:
 *   groups         HASH, struct ab_group_key → struct ab_group (max_entries set before load: 2 × channels)
 *   channel_stats  PERCPU_ARRAY, channel index → struct ab_channel_stats (max_entries: channels)
 */
#ifndef KBX_AB_GROUPS_H
#define KBX_AB_GROUPS_H

#include <linux/types.h>

#define AB_MAX_CHANNELS 1024

struct ab_group_key {
	__u32 ifindex;
	__be32 group;  /* destination address, network order */
	__be32 source; /* network order; 0 = any source */
	__u16 port;    /* UDP destination port, host order */
	__u16 pad;     /* 0 */
};

struct ab_group {
	__u32 channel; /* index into channel_stats */
	__u32 line;    /* 0 = line A, 1 = line B */
};

/* The same meaning as the fields of struct ab_arbitrate_stats with these names, for one channel. */
struct ab_channel_stats {
	__u64 rx;             /* packets matched by one of the channel's groups */
	__u64 short_payload;
	__u64 heartbeat;
	__u64 end_of_session;
	__u64 won_a;
	__u64 won_b;
	__u64 dup_a;          /* dup_a_after_a + dup_a_after_b */
	__u64 dup_b;
	__u64 stale_a;
	__u64 stale_b;
	__u64 won_nosocket;
	__u64 stream_table_full;
};

#ifdef __BPF__
const volatile __u8 match_groups = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2); /* set before load */
	__type(key, struct ab_group_key);
	__type(value, struct ab_group);
} groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1); /* set before load */
	__type(key, __u32);
	__type(value, struct ab_channel_stats);
} channel_stats SEC(".maps");

/* The channel entry of an IPv4 UDP packet arriving on ifindex, or NULL when it belongs to no channel. */
static __always_inline const struct ab_group *ab_group_of(__u32 ifindex, const struct iphdr *ip, __u16 dport)
{
	struct ab_group_key key = { .ifindex = ifindex, .group = ip->daddr, .source = ip->saddr, .port = dport };
	const struct ab_group *g = bpf_map_lookup_elem(&groups, &key);
	if (g)
		return g;
	key.source = 0;
	return bpf_map_lookup_elem(&groups, &key);
}

static __always_inline struct ab_channel_stats *ab_channel_stats_of(const struct ab_group *g)
{
	__u32 channel = g->channel;
	return bpf_map_lookup_elem(&channel_stats, &channel);
}

/* Counts on the packet's channel, when it has one (match_groups). */
#define AB_CHANNEL_COUNT(cs, field) \
	do {                        \
		if (cs)             \
			(cs)->field++; \
	} while (0)
#endif

#endif /* KBX_AB_GROUPS_H */
