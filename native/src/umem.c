// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The UMEM: one mmap'd area registered with libxdp, and the frame pool that accounts for every frame. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "xsk_internal.h"

uintptr_t kbx_address_of(const void *p)
{
	return (uintptr_t)p;
}

static bool is_power_of_two(uint32_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static void apply_defaults(struct kbx_umem_config *c)
{
	if (!c->frame_count)
		c->frame_count = 4096;
	if (!c->frame_size)
		c->frame_size = 2048;
	if (!c->fill_size)
		c->fill_size = 2048;
	if (!c->comp_size)
		c->comp_size = 2048;
}

/* Pinning the area counts against RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK. */
static void raise_memlock_limit(void)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	setrlimit(RLIMIT_MEMLOCK, &unlimited);
}

int kbx_umem_register(struct kbx_umem *u)
{
	struct xsk_umem_config xc = {
		.fill_size = u->config.fill_size,
		.comp_size = u->config.comp_size,
		.frame_size = u->config.frame_size,
		.frame_headroom = u->config.headroom,
		.flags = 0,
	};
	int err = xsk_umem__create(&u->registration, u->area, u->area_size, &u->first_fill, &u->first_comp,
				   &xc);
	if (err == -ENOBUFS || err == -ENOMEM || err == -EPERM) {
		raise_memlock_limit();
		err = xsk_umem__create(&u->registration, u->area, u->area_size, &u->first_fill,
				       &u->first_comp, &xc);
	}
	if (err) {
		u->registration = NULL;
		return kbx_fail(err, "register UMEM (XDP_UMEM_REG)", "%u frames of %u bytes", u->config.frame_count,
				u->config.frame_size);
	}
	u->registration_used = false;
	return 0;
}

void kbx_umem_reclaim(struct kbx_umem *u, uint8_t slot)
{
	for (uint32_t f = 0; f < u->config.frame_count; f++) {
		if (u->owner[f] == slot && (u->state[f] == KBX_FRAME_FILL || u->state[f] == KBX_FRAME_TX))
			kbx_pool_push(u, f);
	}
}

void kbx_umem_unregister(struct kbx_umem *u)
{
	if (u->registration) {
		xsk_umem__delete(u->registration);
		u->registration = NULL;
	}
	/* Closing the registration's fd released the last bind: parked frames come home. */
	for (uint32_t s = 0; s < KBX_UMEM_MAX_SOCKETS; s++) {
		struct kbx_xsk *x = u->sockets[s];
		if (x && x->parked) {
			kbx_umem_reclaim(u, (uint8_t)s);
			u->sockets[s] = NULL;
			free(x);
		}
	}
	u->registration_used = false;
}

int kbx_umem_create(const struct kbx_umem_config *config, struct kbx_umem **out)
{
	struct kbx_umem_config c = config ? *config : (struct kbx_umem_config){ 0 };
	long page = sysconf(_SC_PAGESIZE);
	apply_defaults(&c);
	if (!is_power_of_two(c.frame_size) || c.frame_size < 2048 || c.frame_size > (uint32_t)page) {
		return kbx_fail(-EINVAL, "create UMEM", "frame size %u is not a power of two from 2048 to %ld",
				c.frame_size, page);
	}
	if (!is_power_of_two(c.fill_size) || !is_power_of_two(c.comp_size)) {
		return kbx_fail(-EINVAL, "create UMEM", "ring sizes %u/%u are not powers of two", c.fill_size,
				c.comp_size);
	}
	if (c.headroom + 256 + 64 > c.frame_size) {
		return kbx_fail(-EINVAL, "create UMEM", "headroom %u leaves no room in a %u-byte frame", c.headroom,
				c.frame_size);
	}
	if (c.frame_count > (1u << 24)) {
		return kbx_fail(-E2BIG, "create UMEM", "%u frames is too many (at most %u)", c.frame_count, 1u << 24);
	}

	struct kbx_umem *u = calloc(1, sizeof(*u));
	if (!u) {
		return kbx_fail(-ENOMEM, "create UMEM", "allocate");
	}
	u->config = c;
	u->frame_shift = (uint32_t)__builtin_ctz(c.frame_size);
	u->area_size = (uint64_t)c.frame_count * c.frame_size;
	u->free_stack = calloc(c.frame_count, sizeof(uint32_t));
	u->state = calloc(c.frame_count, 1);
	u->owner = malloc(c.frame_count);
	if (!u->free_stack || !u->state || !u->owner) {
		kbx_umem_destroy(u);
		return kbx_fail(-ENOMEM, "create UMEM", "allocate frame tables");
	}
	u->area = mmap(NULL, u->area_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->area == MAP_FAILED) {
		int err = -errno;
		u->area = NULL;
		kbx_umem_destroy(u);
		return kbx_fail(err, "map UMEM area", "%llu bytes", (unsigned long long)u->area_size);
	}
	memset(u->owner, KBX_NO_OWNER, c.frame_count);
	/* Frame 0 on top of the stack: frames go out in address order at first. */
	for (uint32_t i = 0; i < c.frame_count; i++)
		u->free_stack[i] = c.frame_count - 1 - i;
	u->free_top = c.frame_count;
	u->counts[KBX_FRAME_FREE] = c.frame_count;

	int err = kbx_umem_register(u);
	if (err) {
		kbx_umem_destroy(u);
		return err;
	}
	*out = u;
	return 0;
}

void kbx_umem_destroy(struct kbx_umem *u)
{
	if (!u)
		return;
	for (uint32_t s = 0; s < KBX_UMEM_MAX_SOCKETS; s++) {
		if (u->sockets[s] && !u->sockets[s]->parked)
			kbx_xsk_close(u->sockets[s]);
	}
	kbx_umem_unregister(u);
	if (u->area && !u->area_taken)
		munmap(u->area, u->area_size);
	free(u->free_stack);
	free(u->state);
	free(u->owner);
	free(u);
}

void *kbx_umem_area(const struct kbx_umem *u)
{
	return u->area;
}

uint64_t kbx_umem_area_size(const struct kbx_umem *u)
{
	return u->area_size;
}

void *kbx_umem_take_area(struct kbx_umem *u)
{
	u->area_taken = true;
	return u->area;
}

void kbx_area_unmap(void *area, uint64_t size)
{
	if (area)
		munmap(area, size);
}

void kbx_umem_get_config(const struct kbx_umem *u, struct kbx_umem_config *out)
{
	*out = u->config;
}

int kbx_umem_alloc(struct kbx_umem *u, struct kbx_desc *descs, uint32_t n)
{
	if (n > u->free_top)
		n = u->free_top;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t f = kbx_pool_pop(u);
		kbx_frame_move(u, f, KBX_FRAME_USER, KBX_NO_OWNER);
		descs[i].addr = (uint64_t)f << u->frame_shift;
		descs[i].len = 0;
		descs[i].options = 0;
	}
	return (int)n;
}

static bool held_by_user(uint8_t state)
{
	return state == KBX_FRAME_RX || state == KBX_FRAME_USER;
}

int kbx_umem_release(struct kbx_umem *u, const struct kbx_desc *descs, uint32_t n)
{
	uint32_t i;
	for (i = 0; i < n; i++) {
		uint64_t addr = descs[i].addr;
		uint32_t f = kbx_frame_of(u, addr);
		if (addr >= u->area_size || !held_by_user(u->state[f]))
			break;
		u->state[f] |= KBX_FRAME_MARK;
	}
	if (i < n) {
		uint64_t bad = descs[i].addr;
		int state = bad < u->area_size ? u->state[kbx_frame_of(u, bad)] : -1;
		while (i-- > 0)
			u->state[kbx_frame_of(u, descs[i].addr)] &= (uint8_t)~KBX_FRAME_MARK;
		if (state < 0)
			return kbx_fail(-EINVAL, "release UMEM frames", "frame at 0x%llx: past the end of the UMEM",
					(unsigned long long)bad);
		return kbx_fail(-EINVAL, "release UMEM frames", "frame at 0x%llx: not held by the user (state %s)",
				(unsigned long long)bad,
				(state & KBX_FRAME_MARK) ? "named twice in the batch"
				: state == KBX_FRAME_FREE ? "free"
				: state == KBX_FRAME_FILL ? "fill"
				: state == KBX_FRAME_TX   ? "tx"
							  : "?");
	}
	for (i = 0; i < n; i++)
		kbx_pool_push(u, kbx_frame_of(u, descs[i].addr));
	return (int)n;
}

int kbx_umem_frame_state(const struct kbx_umem *u, uint64_t addr)
{
	if (addr >= u->area_size)
		return kbx_fail(-EINVAL, "read UMEM frame state", "frame at 0x%llx: past the end of the UMEM",
				(unsigned long long)addr);
	return u->state[kbx_frame_of(u, addr)] & ~KBX_FRAME_MARK;
}

int kbx_umem_accounting(const struct kbx_umem *u, struct kbx_umem_accounting *out)
{
	uint32_t counted[KBX_FRAME_STATES] = { 0 };
	uint32_t fill_by_slot[KBX_UMEM_MAX_SOCKETS] = { 0 };
	uint32_t tx_by_slot[KBX_UMEM_MAX_SOCKETS] = { 0 };
	bool consistent = true;

	memset(out, 0, sizeof(*out));
	out->total = u->config.frame_count;
	out->free = u->counts[KBX_FRAME_FREE];
	out->fill = u->counts[KBX_FRAME_FILL];
	out->rx = u->counts[KBX_FRAME_RX];
	out->tx = u->counts[KBX_FRAME_TX];
	out->user = u->counts[KBX_FRAME_USER];
	out->sockets = u->live;

	for (uint32_t f = 0; f < u->config.frame_count; f++) {
		uint8_t s = u->state[f];
		if (s >= KBX_FRAME_STATES) {
			consistent = false;
			continue;
		}
		counted[s]++;
		uint8_t owner = u->owner[f];
		if (s == KBX_FRAME_FILL || s == KBX_FRAME_TX) {
			if (owner >= KBX_UMEM_MAX_SOCKETS || !u->sockets[owner]) {
				consistent = false;
				continue;
			}
			if (u->sockets[owner]->parked)
				out->parked++;
			else if (s == KBX_FRAME_FILL)
				fill_by_slot[owner]++;
			else
				tx_by_slot[owner]++;
		} else if (owner != KBX_NO_OWNER) {
			consistent = false;
		}
	}
	for (int s = 0; s < KBX_FRAME_STATES; s++)
		consistent = consistent && counted[s] == u->counts[s];
	consistent = consistent && u->free_top == u->counts[KBX_FRAME_FREE];
	uint8_t *on_stack = calloc(u->config.frame_count / 8 + 1, 1);
	if (!on_stack) {
		return kbx_fail(-ENOMEM, "audit UMEM frames", "allocate");
	}
	for (uint32_t i = 0; consistent && i < u->free_top; i++) {
		uint32_t f = u->free_stack[i];
		consistent = f < u->config.frame_count && u->state[f] == KBX_FRAME_FREE &&
			     !(on_stack[f / 8] & (1u << (f % 8)));
		if (consistent)
			on_stack[f / 8] |= (uint8_t)(1u << (f % 8));
	}
	free(on_stack);
	for (uint32_t s = 0; s < KBX_UMEM_MAX_SOCKETS; s++) {
		const struct kbx_xsk *x = u->sockets[s];
		if (x && !x->parked)
			consistent = consistent && fill_by_slot[s] == x->in_fill && tx_by_slot[s] == x->tx_pending;
	}
	uint64_t sum = (uint64_t)out->free + out->fill + out->rx + out->tx + out->user;
	consistent = consistent && sum == out->total;
	if (!consistent) {
		return kbx_fail(-EUCLEAN, "audit UMEM frames", "the per-frame states disagree with the counters");
	}
	return 0;
}
