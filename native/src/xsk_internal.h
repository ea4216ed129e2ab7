/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Layouts private to libkbx's AF_XDP layer (umem.c, socket.c). */
#ifndef KBX_XSK_INTERNAL_H
#define KBX_XSK_INTERNAL_H

#include <net/if.h>
#include <stdbool.h>
#include <xdp/xsk.h>

#include "kbx_xsk.h"

#define KBX_UMEM_MAX_SOCKETS 64
#define KBX_NO_OWNER 0xffu
/* Set on a frame's state while a batch is being checked, to catch a frame named twice in one batch. */
#define KBX_FRAME_MARK 0x80u

struct kbx_umem {
	struct xsk_umem *registration; /* libxdp's UMEM; NULL between the last socket's close and the next create */
	/* Fill and completion rings libxdp creates with the registration; the UMEM's first socket uses them. */
	struct xsk_ring_prod first_fill;
	struct xsk_ring_cons first_comp;
	void *area;
	uint64_t area_size;
	bool area_taken; /* the caller unmaps the area (kbx_umem_take_area) */
	struct kbx_umem_config config;
	uint32_t frame_shift;
	uint32_t *free_stack; /* indices of free frames; the top is free_stack[free_top - 1] */
	uint32_t free_top;
	uint8_t *state;       /* enum kbx_frame_state per frame */
	uint8_t *owner;       /* socket slot holding the frame in fill or tx, else KBX_NO_OWNER */
	uint32_t counts[KBX_FRAME_STATES];
	struct kbx_xsk *sockets[KBX_UMEM_MAX_SOCKETS]; /* by slot, parked ones included */
	uint32_t live;                                 /* open sockets */
	bool registration_used; /* a bind used the registration's own fd: it must be renewed before reuse */
	bool need_wakeup;       /* chosen by the first socket, inherited by the others */
};

struct kbx_xsk {
	struct kbx_umem *umem;
	struct xsk_socket *socket;
	struct xsk_ring_cons rx;
	struct xsk_ring_prod tx;
	struct xsk_ring_prod own_fill;
	struct xsk_ring_cons own_comp;
	struct xsk_ring_prod *fill; /* &own_fill, or the UMEM's first_fill for its first socket */
	struct xsk_ring_cons *comp;
	int fd;
	uint32_t ifindex;
	uint32_t queue;
	uint8_t slot;
	bool has_rx;
	bool has_tx;
	bool shared;  /* bound with XDP_SHARED_UMEM; false for the socket owning the registration's fd */
	bool parked;  /* closed, but its bind lives on with the registration */
	bool need_wakeup;
	uint32_t fill_target;
	uint32_t in_fill;    /* frames in state fill owned by this socket */
	uint32_t tx_pending; /* frames in state tx owned by this socket */
	struct kbx_xsk_stats stats;
	char ifname[IF_NAMESIZE];
};

static inline uint32_t kbx_frame_of(const struct kbx_umem *u, uint64_t addr)
{
	return (uint32_t)(addr >> u->frame_shift);
}

static inline void kbx_frame_move(struct kbx_umem *u, uint32_t frame, uint8_t to, uint8_t owner)
{
	u->counts[u->state[frame] & ~KBX_FRAME_MARK]--;
	u->counts[to]++;
	u->state[frame] = to;
	u->owner[frame] = owner;
}

static inline uint32_t kbx_pool_pop(struct kbx_umem *u)
{
	return u->free_stack[--u->free_top];
}

/* Moves the frame to free and pushes it on the pool. */
static inline void kbx_pool_push(struct kbx_umem *u, uint32_t frame)
{
	kbx_frame_move(u, frame, KBX_FRAME_FREE, KBX_NO_OWNER);
	u->free_stack[u->free_top++] = frame;
}

/* Renews libxdp's registration when no socket is open; returns frames parked with closed sockets. */
int kbx_umem_register(struct kbx_umem *u);
void kbx_umem_unregister(struct kbx_umem *u);
/* Returns the slot's fill and tx frames to the pool. */
void kbx_umem_reclaim(struct kbx_umem *u, uint8_t slot);

#endif
