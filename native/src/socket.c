// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* AF_XDP sockets on a shared UMEM, and their batch ring operations. */
#include <errno.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "xsk_internal.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
/* Linux 6.17: frames one sendto() may transmit in copy mode (default 32). */
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9
#endif

/* A kick that hits the kernel's per-call budget keeps going while the kernel makes progress. */
#define KBX_MAX_KICKS_PER_CALL 128
/* kbx_xsk_send tops up the TX ring again after a kick freed room, this many times at most. */
#define KBX_SEND_ROUNDS 4

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static const char *zero_copy_words(bool zero_copy)
{
	return zero_copy ? "zero-copy" : "copy mode";
}

/* ---------------------------------------------------------------- rings */

static uint32_t reap_completions(struct kbx_xsk *x)
{
	struct kbx_umem *u = x->umem;
	uint32_t idx = 0;
	uint32_t n = xsk_ring_cons__peek(x->comp, u->config.comp_size, &idx);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(x->comp, idx + i);
		uint32_t f = kbx_frame_of(u, addr);
		if (addr >= u->area_size || u->state[f] != KBX_FRAME_TX || u->owner[f] != x->slot) {
			x->stats.anomalies++;
			continue;
		}
		kbx_pool_push(u, f);
		x->tx_pending--;
	}
	if (n) {
		xsk_ring_cons__release(x->comp, n);
		x->stats.tx_completed += n;
	}
	return n;
}

static void wake_fill_ring(struct kbx_xsk *x)
{
	if (x->need_wakeup && xsk_ring_prod__needs_wakeup(x->fill)) {
		recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		x->stats.fill_wakeups++;
	}
}

static void refill(struct kbx_xsk *x)
{
	struct kbx_umem *u = x->umem;
	if (!x->has_rx || x->in_fill >= x->fill_target)
		return;
	uint32_t want = x->fill_target - x->in_fill;
	if (want > u->free_top)
		want = u->free_top;
	uint32_t room = xsk_prod_nb_free(x->fill, want);
	if (want > room)
		want = room;
	uint32_t idx = 0;
	if (!want || xsk_ring_prod__reserve(x->fill, want, &idx) != want)
		return;
	for (uint32_t i = 0; i < want; i++) {
		uint32_t f = kbx_pool_pop(u);
		kbx_frame_move(u, f, KBX_FRAME_FILL, x->slot);
		*xsk_ring_prod__fill_addr(x->fill, idx + i) = (uint64_t)f << u->frame_shift;
	}
	xsk_ring_prod__submit(x->fill, want);
	x->in_fill += want;
	wake_fill_ring(x);
}

static uint32_t take_rx(struct kbx_xsk *x, struct kbx_desc *descs, uint32_t max)
{
	struct kbx_umem *u = x->umem;
	uint32_t idx = 0;
	uint32_t n = xsk_ring_cons__peek(&x->rx, max, &idx);
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + i);
		uint32_t f = kbx_frame_of(u, d->addr);
		descs[i].addr = d->addr;
		descs[i].len = d->len;
		descs[i].options = d->options;
		bytes += d->len;
		if (d->addr >= u->area_size) {
			x->stats.anomalies++;
			descs[i].len = 0;
			continue;
		}
		if (u->state[f] == KBX_FRAME_FILL && u->owner[f] == x->slot)
			x->in_fill--;
		else
			x->stats.anomalies++;
		kbx_frame_move(u, f, KBX_FRAME_RX, KBX_NO_OWNER);
	}
	if (n) {
		xsk_ring_cons__release(&x->rx, n);
		x->stats.rx_packets += n;
		x->stats.rx_bytes += bytes;
	}
	return n;
}

static bool tx_ring_empty(const struct kbx_xsk *x)
{
	return __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE) == *x->tx.producer;
}

/* sendto() when the kernel asks for it (always without need-wakeup); in copy mode this transmits. */
static void kick(struct kbx_xsk *x)
{
	if (x->need_wakeup && !xsk_ring_prod__needs_wakeup(&x->tx))
		return;
	for (int i = 0; i < KBX_MAX_KICKS_PER_CALL && !tx_ring_empty(x); i++) {
		uint32_t before = __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
		x->stats.kicks++;
		if (sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			return;
		if (errno == EAGAIN) {
			/* Stopped at its per-call budget: go on while it moves; a full completion ring stops it. */
			if (__atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE) == before)
				return;
			reap_completions(x);
			continue;
		}
		if (errno != ENOBUFS && errno != EBUSY && errno != ENETDOWN)
			x->stats.kick_errors++;
		return;
	}
}

/* ---------------------------------------------------------------- batch operations */

int kbx_xsk_receive(struct kbx_xsk *x, struct kbx_desc *descs, uint32_t max, uint32_t release, int timeout_ms)
{
	if (release) {
		int err = kbx_umem_release(x->umem, descs, release);
		if (err < 0)
			return err;
	}
	if (!x->has_rx)
		return kbx_fail(-EINVAL, "receive", "%s queue %u: the socket has no RX ring", x->ifname, x->queue);
	uint32_t n = take_rx(x, descs, max);
	refill(x);
	if (n == 0 && timeout_ms > 0) {
		struct pollfd p = { .fd = x->fd, .events = POLLIN };
		x->stats.polls++;
		poll(&p, 1, timeout_ms);
		n = take_rx(x, descs, max);
		refill(x);
	}
	return (int)n;
}

static bool frame_sendable(const struct kbx_umem *u, const struct kbx_desc *d)
{
	if (d->addr >= u->area_size || d->len == 0)
		return false;
	uint32_t f = kbx_frame_of(u, d->addr);
	uint64_t end = (d->addr & (u->config.frame_size - 1)) + d->len;
	return (u->state[f] == KBX_FRAME_USER || u->state[f] == KBX_FRAME_RX) && end <= u->config.frame_size;
}

int kbx_xsk_send(struct kbx_xsk *x, const struct kbx_desc *descs, uint32_t n)
{
	struct kbx_umem *u = x->umem;
	if (!x->has_tx)
		return kbx_fail(-EINVAL, "send", "%s queue %u: the socket has no TX ring", x->ifname, x->queue);
	uint32_t i;
	for (i = 0; i < n; i++) {
		if (!frame_sendable(u, &descs[i]))
			break;
		u->state[kbx_frame_of(u, descs[i].addr)] |= KBX_FRAME_MARK;
	}
	if (i < n) {
		const struct kbx_desc *bad = &descs[i];
		uint8_t state = bad->addr < u->area_size ? u->state[kbx_frame_of(u, bad->addr)] : 0;
		kbx_fail(-EINVAL, "send", "frame at 0x%llx, %u bytes: %s", (unsigned long long)bad->addr, bad->len,
			 bad->addr >= u->area_size				    ? "past the end of the UMEM"
			 : bad->len == 0					    ? "empty"
			 : (state & KBX_FRAME_MARK)				    ? "frame named twice in the batch"
			 : state != KBX_FRAME_USER && state != KBX_FRAME_RX ? "frame not held by the user"
									    : "runs past the end of its frame");
		while (i-- > 0)
			u->state[kbx_frame_of(u, descs[i].addr)] &= (uint8_t)~KBX_FRAME_MARK;
		return -EINVAL;
	}

	uint32_t sent = 0;
	uint64_t bytes = 0;
	reap_completions(x);
	for (int round = 0; round < KBX_SEND_ROUNDS && sent < n; round++) {
		uint32_t k = n - sent;
		uint32_t room = xsk_prod_nb_free(&x->tx, k);
		if (k > room)
			k = room;
		uint32_t idx = 0;
		if (k && xsk_ring_prod__reserve(&x->tx, k, &idx) == k) {
			for (uint32_t j = 0; j < k; j++) {
				const struct kbx_desc *d = &descs[sent + j];
				struct xdp_desc *td = xsk_ring_prod__tx_desc(&x->tx, idx + j);
				td->addr = d->addr;
				td->len = d->len;
				td->options = d->options;
				bytes += d->len;
				kbx_frame_move(u, kbx_frame_of(u, d->addr), KBX_FRAME_TX, x->slot);
			}
			xsk_ring_prod__submit(&x->tx, k);
			x->tx_pending += k;
			sent += k;
		}
		kick(x);
		reap_completions(x);
		if (k == 0 && xsk_prod_nb_free(&x->tx, 1) == 0)
			break; /* the kernel made no room */
	}
	for (i = sent; i < n; i++)
		u->state[kbx_frame_of(u, descs[i].addr)] &= (uint8_t)~KBX_FRAME_MARK;
	x->stats.tx_packets += sent;
	x->stats.tx_bytes += bytes;
	return (int)sent;
}

int kbx_xsk_send_batch(struct kbx_xsk *x, struct kbx_tx_batch *b, uint32_t refill, uint32_t refill_len)
{
	uint32_t n = b->count;
	if (n > b->capacity) {
		return kbx_fail(-EINVAL, "send TX batch", "count %u exceeds its capacity %u", n, b->capacity);
	}
	int sent = kbx_xsk_send(x, b->descs, n);
	if (sent < 0)
		return sent;
	uint32_t left = n - (uint32_t)sent;
	if (sent && left)
		memmove(b->descs, b->descs + sent, left * sizeof(b->descs[0]));
	b->count = left;
	b->sent = (uint32_t)sent;
	b->fresh = left;
	uint32_t room = b->capacity - left;
	if (refill > room)
		refill = room;
	if (refill) {
		int got = kbx_umem_alloc(x->umem, b->descs + left, refill);
		for (int i = 0; i < got; i++)
			b->descs[left + (uint32_t)i].len = refill_len;
		b->count += (uint32_t)got;
	}
	return sent;
}

int kbx_xsk_complete(struct kbx_xsk *x)
{
	if (!x->has_tx)
		return 0;
	uint64_t before = x->stats.tx_completed;
	reap_completions(x);
	if (x->tx_pending)
		kick(x);
	reap_completions(x);
	return (int)(x->stats.tx_completed - before);
}

uint32_t kbx_xsk_tx_pending(const struct kbx_xsk *x)
{
	return x->tx_pending;
}

uint32_t kbx_xsk_rx_available(struct kbx_xsk *x)
{
	if (!x->has_rx)
		return 0;
	return xsk_cons_nb_avail(&x->rx, x->rx.size);
}

int kbx_xsk_wait(struct kbx_xsk *x, uint32_t events, int timeout_ms)
{
	struct pollfd p = { .fd = x->fd, .events = 0 };
	if (events & KBX_POLL_RX)
		p.events |= POLLIN;
	if (events & KBX_POLL_TX)
		p.events |= POLLOUT;
	x->stats.polls++;
	int r = poll(&p, 1, timeout_ms);
	if (r < 0) {
		if (errno == EINTR)
			return 0;
		return kbx_fail(-errno, "poll AF_XDP socket", "%s queue %u", x->ifname, x->queue);
	}
	int ready = 0;
	if (p.revents & POLLIN)
		ready |= KBX_POLL_RX;
	if (p.revents & POLLOUT)
		ready |= KBX_POLL_TX;
	return ready;
}

int kbx_xsk_statistics(struct kbx_xsk *x, struct kbx_xsk_stats *out)
{
	struct xdp_statistics ks = { 0 };
	socklen_t len = sizeof(ks);
	if (getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &ks, &len)) {
		return kbx_fail(-errno, "read XDP_STATISTICS", "%s queue %u", x->ifname, x->queue);
	}
	*out = x->stats;
	out->rx_dropped = ks.rx_dropped;
	out->rx_invalid_descs = ks.rx_invalid_descs;
	out->tx_invalid_descs = ks.tx_invalid_descs;
	if (len >= sizeof(ks)) {
		out->rx_ring_full = ks.rx_ring_full;
		out->rx_fill_ring_empty_descs = ks.rx_fill_ring_empty_descs;
		out->tx_ring_empty_descs = ks.tx_ring_empty_descs;
	}
	return 0;
}

int kbx_xsk_fd(const struct kbx_xsk *x)
{
	return x->fd;
}

/* ---------------------------------------------------------------- life cycle */

static int find_slot(struct kbx_umem *u, uint32_t ifindex, uint32_t queue, const char *ifname)
{
	int free_slot = -1;
	for (int s = 0; s < KBX_UMEM_MAX_SOCKETS; s++) {
		struct kbx_xsk *o = u->sockets[s];
		if (!o) {
			if (free_slot < 0)
				free_slot = s;
			continue;
		}
		if (o->ifindex == ifindex && o->queue == queue) {
			return kbx_fail(-EBUSY, "bind AF_XDP socket", "%s queue %u: %s", ifname, queue,
					o->parked ? "a closed socket of this UMEM still holds it until the UMEM's other "
						    "sockets close"
						  : "this UMEM already has a socket there");
		}
	}
	if (free_slot < 0) {
		return kbx_fail(-ENOSPC, "create AF_XDP socket", "%s: a UMEM takes at most %d sockets", ifname,
				KBX_UMEM_MAX_SOCKETS);
	}
	return free_slot;
}

static bool bound_zero_copy(int fd)
{
	struct xdp_options opts = { 0 };
	socklen_t len = sizeof(opts);
	return getsockopt(fd, SOL_XDP, XDP_OPTIONS, &opts, &len) == 0 && (opts.flags & XDP_OPTIONS_ZEROCOPY);
}

static void delete_socket(struct kbx_xsk *x)
{
	if (x->socket) {
		xsk_socket__delete(x->socket);
		x->socket = NULL;
	}
}

int kbx_xsk_create(struct kbx_umem *u, const char *ifname, const struct kbx_xsk_config *config,
		   struct kbx_xsk **out, struct kbx_xsk_info *info)
{
	struct kbx_xsk_config c = *config;
	struct kbx_xsk_info local_info;
	if (!info)
		info = &local_info;
	memset(info, 0, sizeof(*info));
	info->fd = -1;

	if (!c.rx_size && !c.tx_size) {
		return kbx_fail(-EINVAL, "create AF_XDP socket", "%s: neither an RX nor a TX ring asked for", ifname);
	}
	if ((c.rx_size & (c.rx_size - 1)) || (c.tx_size & (c.tx_size - 1))) {
		return kbx_fail(-EINVAL, "create AF_XDP socket", "%s: ring sizes %u/%u are not powers of two", ifname,
				c.rx_size, c.tx_size);
	}
	uint32_t ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		return kbx_fail(-ENODEV, "look up interface", "%s", ifname);
	}
	int slot = find_slot(u, ifindex, c.queue, ifname);
	if (slot < 0)
		return slot;

	struct kbx_xsk *x = calloc(1, sizeof(*x));
	if (!x) {
		return kbx_fail(-ENOMEM, "create AF_XDP socket", "%s: allocate", ifname);
	}
	x->umem = u;
	x->ifindex = ifindex;
	x->queue = c.queue;
	x->slot = (uint8_t)slot;
	x->has_rx = c.rx_size != 0;
	x->has_tx = c.tx_size != 0;
	snprintf(x->ifname, sizeof(x->ifname), "%s", ifname);

	struct xsk_socket_config sc = {
		.rx_size = c.rx_size,
		.tx_size = c.tx_size,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = 0,
		.bind_flags = 0,
	};
	bool want_zero_copy = c.zero_copy != KBX_ZERO_COPY_NEVER;
	uint32_t busy_retries = 0;
	int err;
	for (;;) {
		bool first = u->live == 0;
		if (first && u->registration_used)
			kbx_umem_unregister(u);
		if (!u->registration) {
			err = kbx_umem_register(u);
			if (err)
				goto fail;
		}
		/* libxdp binds a socket sharing the UMEM with XDP_SHARED_UMEM alone: flags come from the first. */
		sc.bind_flags = (uint16_t)((c.need_wakeup ? XDP_USE_NEED_WAKEUP : 0) |
					   (want_zero_copy ? XDP_ZEROCOPY : XDP_COPY));
		x->fill = first ? &u->first_fill : &x->own_fill;
		x->comp = first ? &u->first_comp : &x->own_comp;
		info->bind_attempts++;
		err = xsk_socket__create_shared(&x->socket, ifname, c.queue, u->registration,
						x->has_rx ? &x->rx : NULL, x->has_tx ? &x->tx : NULL, x->fill,
						x->comp, &sc);
		if (first)
			u->registration_used = true;
		if (!err) {
			x->shared = !first;
			break;
		}
		x->socket = NULL;
		if (err == -EOPNOTSUPP && want_zero_copy && c.zero_copy == KBX_ZERO_COPY_TRY && first) {
			info->zero_copy_errno = EOPNOTSUPP;
			want_zero_copy = false;
			continue;
		}
		if (err == -EBUSY && busy_retries < c.bind_retries) {
			busy_retries++;
			sleep_ms(c.retry_delay_ms);
			continue;
		}
		kbx_fail(err, "bind AF_XDP socket", "%s queue %u: %s%s, %u attempt%s", ifname, c.queue,
			 !first ? "sharing the UMEM" : zero_copy_words(want_zero_copy),
			 c.need_wakeup && first ? ", need-wakeup" : "", info->bind_attempts,
			 info->bind_attempts == 1 ? "" : "s");
		goto fail;
	}

	x->fd = xsk_socket__fd(x->socket);
	bool zero_copy = bound_zero_copy(x->fd);
	if (c.zero_copy == KBX_ZERO_COPY_REQUIRE && !zero_copy) {
		err = kbx_fail(-EOPNOTSUPP, "bind AF_XDP socket", "%s queue %u in zero-copy mode: it shares a UMEM "
			       "whose first socket bound in copy mode", ifname, c.queue);
		delete_socket(x);
		if (u->live == 0)
			kbx_umem_unregister(u);
		goto fail;
	}
	if (!x->shared)
		u->need_wakeup = c.need_wakeup != 0;
	x->need_wakeup = u->need_wakeup;
	if (c.tx_budget && x->has_tx && !zero_copy &&
	    setsockopt(x->fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &c.tx_budget, sizeof(c.tx_budget)) == 0)
		info->tx_budget = c.tx_budget;

	if (x->has_rx) {
		uint32_t target = c.fill_frames ? c.fill_frames : u->free_top / 2;
		if (target > u->config.fill_size)
			target = u->config.fill_size;
		x->fill_target = target ? target : 1;
	}
	u->sockets[slot] = x;
	u->live++;
	refill(x);

	info->fd = x->fd;
	info->ifindex = ifindex;
	info->queue = c.queue;
	info->zero_copy = zero_copy;
	info->need_wakeup = x->need_wakeup;
	info->shared = x->shared;
	info->fill_frames = x->fill_target;
	*out = x;
	return 0;

fail:
	free(x);
	return err;
}

void kbx_xsk_close(struct kbx_xsk *x)
{
	if (!x || x->parked)
		return;
	struct kbx_umem *u = x->umem;
	delete_socket(x);
	u->live--;
	if (!x->shared && u->live > 0) {
		/* The registration's fd stays bound until it closes: the kernel may still fill these frames. */
		x->parked = true;
		return;
	}
	kbx_umem_reclaim(u, x->slot);
	u->sockets[x->slot] = NULL;
	free(x);
	if (u->live == 0)
		kbx_umem_unregister(u);
}

int kbx_xsk_probe(const char *ifname, uint32_t queue, uint32_t zero_copy, struct kbx_xsk_info *info)
{
	struct kbx_umem_config uc = { .frame_count = 64, .frame_size = 2048, .fill_size = 64, .comp_size = 64 };
	struct kbx_xsk_config xc = {
		.queue = queue,
		.rx_size = 64,
		.tx_size = 64,
		.fill_frames = 32,
		.zero_copy = zero_copy,
		.need_wakeup = 1,
		.bind_retries = 3,
		.retry_delay_ms = 20,
	};
	struct kbx_umem *u = NULL;
	struct kbx_xsk *x = NULL;
	memset(info, 0, sizeof(*info));
	int err = kbx_umem_create(&uc, &u);
	if (err)
		return err;
	err = kbx_xsk_create(u, ifname, &xc, &x, info);
	if (!err)
		kbx_xsk_close(x);
	kbx_umem_destroy(u);
	return err;
}
