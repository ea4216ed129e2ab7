/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The AF_XDP steering every kbx program shares (userspace fills it: @kbx/xsk steerTo). A frame finds its
 * socket in two steps, so one program serves several interfaces and queues:
 *   xsk_slots  HASH, struct kbx_xsk_slot_key {ingress ifindex, rx queue} → u32 slot
 *   xsks       XSKMAP, slot → AF_XDP socket, KBX_XSK_MAX_SOCKETS entries
 */
#ifndef KBX_XSK_STEER_H
#define KBX_XSK_STEER_H

#include <linux/types.h>

#define KBX_XSK_MAX_SOCKETS 64

struct kbx_xsk_slot_key {
	__u32 ifindex; /* ingress interface */
	__u32 queue;   /* rx queue index */
};

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, KBX_XSK_MAX_SOCKETS);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KBX_XSK_MAX_SOCKETS);
	__type(key, struct kbx_xsk_slot_key);
	__type(value, __u32);
} xsk_slots SEC(".maps");

enum kbx_xsk_steer_result {
	KBX_XSK_REDIRECTED,
	KBX_XSK_NO_SLOT,   /* no xsk_slots entry for this ifindex/queue */
	KBX_XSK_NO_SOCKET, /* slotted, but no socket in xsks at that slot */
};

/* Redirects the frame to the socket of its interface and queue; on any other result the caller passes it. */
static __always_inline enum kbx_xsk_steer_result kbx_xsk_steer(struct xdp_md *ctx)
{
	struct kbx_xsk_slot_key key = { .ifindex = ctx->ingress_ifindex, .queue = ctx->rx_queue_index };
	__u32 *slot = bpf_map_lookup_elem(&xsk_slots, &key);

	if (!slot)
		return KBX_XSK_NO_SLOT;
	/* XDP_PASS in the flags: an empty xsks slot passes the frame instead of dropping it. */
	if (bpf_redirect_map(&xsks, *slot, XDP_PASS) != XDP_REDIRECT)
		return KBX_XSK_NO_SOCKET;
	return KBX_XSK_REDIRECTED;
}

/* The counters of a steering program's outcomes (its stats struct's passed_noslot, passed_nosocket, redirected). */
struct kbx_xsk_steer_counters {
	__u64 *noslot;
	__u64 *nosocket;
	__u64 *redirected;
};

/* kbx_xsk_steer, its outcome counted: XDP_REDIRECT, or XDP_PASS when the frame has no socket to go to. */
static __always_inline int kbx_xsk_steer_counted(struct xdp_md *ctx, struct kbx_xsk_steer_counters c)
{
	switch (kbx_xsk_steer(ctx)) {
	case KBX_XSK_NO_SLOT:
		(*c.noslot)++;
		return XDP_PASS;
	case KBX_XSK_NO_SOCKET:
		(*c.nosocket)++;
		return XDP_PASS;
	case KBX_XSK_REDIRECTED:
		break;
	}
	(*c.redirected)++;
	return XDP_REDIRECT;
}
#endif

#endif
