// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* fix-tcp --io xdp: the AF_XDP batch loop around the userspace TCP connection (see kbx_fix.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbx_fix.h"

#define BATCH 64

struct kbx_fix_xdp {
	struct kbx_umem *umem;
	struct kbx_xsk *xsk;
	struct kbx_tcp *tcp;
	uint8_t *area;
	uint32_t frame_size;
	uint32_t held; /* rx descriptors from the last step, released by the next receive */
	struct kbx_desc rx[BATCH];
	struct kbx_desc tx[BATCH];
	struct kbx_fix_xdp_counters counters;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int kbx_fix_xdp_create(struct kbx_umem *umem, const char *ifname, const struct kbx_fix_xdp_config *config,
		       struct kbx_fix_xdp **out, struct kbx_xsk_info *info)
{
	struct kbx_fix_xdp *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	struct kbx_umem_config ucfg;
	kbx_umem_get_config(umem, &ucfg);
	x->umem = umem;
	x->area = kbx_umem_area(umem);
	x->frame_size = ucfg.frame_size - ucfg.headroom;
	struct kbx_xsk_config xcfg = {
		.queue = config->queue,
		.rx_size = config->rx_size ? config->rx_size : 2048,
		.tx_size = config->tx_size ? config->tx_size : 2048,
		.zero_copy = config->zero_copy,
		.need_wakeup = 1,
		.bind_retries = 20,
		.retry_delay_ms = 50,
	};
	int rc = kbx_xsk_create(umem, ifname, &xcfg, &x->xsk, info);
	if (rc < 0) {
		free(x);
		return rc;
	}
	x->tcp = kbx_tcp_create(&config->tcp);
	if (!x->tcp) {
		kbx_xsk_close(x->xsk);
		free(x);
		return -ENOMEM;
	}
	*out = x;
	return 0;
}

void kbx_fix_xdp_destroy(struct kbx_fix_xdp *x)
{
	if (!x)
		return;
	if (x->held)
		kbx_umem_release(x->umem, x->rx, x->held);
	kbx_xsk_close(x->xsk);
	kbx_tcp_destroy(x->tcp);
	free(x);
}

int kbx_fix_xdp_connect(struct kbx_fix_xdp *x) { return kbx_tcp_connect(x->tcp, now_ns()); }
void kbx_fix_xdp_shutdown(struct kbx_fix_xdp *x) { kbx_tcp_shutdown(x->tcp); }
void kbx_fix_xdp_abort(struct kbx_fix_xdp *x) { kbx_tcp_abort(x->tcp); }
void kbx_fix_xdp_tcp_stats(const struct kbx_fix_xdp *x, struct kbx_tcp_stats *out) { kbx_tcp_get_stats(x->tcp, out); }
void kbx_fix_xdp_counters(const struct kbx_fix_xdp *x, struct kbx_fix_xdp_counters *out) { *out = x->counters; }
int kbx_fix_xdp_fd(const struct kbx_fix_xdp *x) { return kbx_xsk_fd(x->xsk); }

/* Every frame the connection has queued goes out through TX; returns how many were submitted. */
static uint32_t transmit(struct kbx_fix_xdp *x)
{
	uint32_t total = 0;
	for (;;) {
		int got = kbx_umem_alloc(x->umem, x->tx, BATCH);
		if (got <= 0) {
			/* no free frame: leave the queue to the next step (the connection keeps it) */
			x->counters.tx_ring_full++;
			return total;
		}
		uint32_t n = 0;
		while (n < (uint32_t)got) {
			int len = kbx_tcp_next_frame(x->tcp, x->area + x->tx[n].addr, x->frame_size);
			if (len <= 0)
				break;
			x->tx[n].len = (uint32_t)len;
			n++;
		}
		if ((uint32_t)got > n)
			kbx_umem_release(x->umem, x->tx + n, (uint32_t)got - n);
		if (n == 0)
			return total;
		int sent = kbx_xsk_send(x->xsk, x->tx, n);
		if (sent < 0) {
			x->counters.tx_errors++;
			kbx_umem_release(x->umem, x->tx, n);
			return total;
		}
		if ((uint32_t)sent < n) {
			/* TX ring full: those frames are lost like on a wire; the connection retransmits */
			x->counters.tx_ring_full += n - (uint32_t)sent;
			kbx_umem_release(x->umem, x->tx + sent, n - (uint32_t)sent);
		}
		total += (uint32_t)sent;
		if ((uint32_t)got < BATCH || n < (uint32_t)got)
			return total;
	}
}

int kbx_fix_xdp_step(uintptr_t xp, uintptr_t tx_data, uint32_t tx_len, uintptr_t rx_buf, uint32_t rx_cap,
		     int timeout_ms, uintptr_t resultp)
{
	struct kbx_fix_xdp *x = (struct kbx_fix_xdp *)xp;
	struct kbx_fix_xdp_result *r = (struct kbx_fix_xdp_result *)resultp;
	memset(r, 0, sizeof(*r));
	x->counters.steps++;

	uint64_t now = now_ns();
	if (tx_len > 0) {
		int accepted = kbx_tcp_write(x->tcp, (const uint8_t *)tx_data, tx_len);
		r->tx_accepted = accepted > 0 ? (uint32_t)accepted : 0;
	}
	kbx_tcp_poll(x->tcp, now);
	r->frames_out += transmit(x);
	if (kbx_xsk_tx_pending(x->xsk) > 0)
		kbx_xsk_complete(x->xsk);

	struct kbx_tcp_stats s;
	kbx_tcp_get_stats(x->tcp, &s);
	int wait = (s.readable > 0 || (tx_len > 0 && r->tx_accepted < tx_len)) ? 0 : timeout_ms;
	int n = kbx_xsk_receive(x->xsk, x->rx, BATCH, x->held, wait);
	if (n < 0) {
		x->held = 0;
		return n;
	}
	x->held = (uint32_t)n;
	if (n > 0) {
		now = now_ns();
		for (int i = 0; i < n; i++) {
			if (!kbx_tcp_input(x->tcp, x->area + x->rx[i].addr, x->rx[i].len, now))
				x->counters.not_ours++;
		}
		/* Frames back to the pool now: the connection copied what it keeps. */
		kbx_umem_release(x->umem, x->rx, (uint32_t)n);
		x->held = 0;
		r->frames_in = (uint32_t)n;
		x->counters.frames_in += (uint32_t)n;
		kbx_tcp_poll(x->tcp, now);
		r->frames_out += transmit(x);
	}
	x->counters.frames_out += r->frames_out;
	if (rx_cap > 0) {
		int got = kbx_tcp_read(x->tcp, (uint8_t *)rx_buf, rx_cap);
		r->rx_bytes = got > 0 ? (uint32_t)got : 0;
	}
	kbx_tcp_get_stats(x->tcp, &s);
	r->more = s.readable > 0;
	r->state = (uint32_t)s.state;
	return 0;
}
