// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* fix-tcp --io xdp: the AF_XDP batch loop around the userspace TCP connection (see kbx_fix.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbx_fix.h"
#include "xsk_internal.h"

#define BATCH 64
/* After sending data, a wait spins this long on the RX ring (the answer is due) before sleeping in poll()
 * (the default: kbx_fix_xdp_times may say otherwise). */
#define SPIN_AFTER_SEND_NS 200000ull
#define RING_MASK (KBX_FIX_TIMING_RING - 1)

struct timing_ring {
	uint32_t head, count;
	uint32_t ns[KBX_FIX_TIMING_RING];
};

struct kbx_fix_xdp {
	struct kbx_umem *umem;
	struct kbx_xsk *xsk;
	struct kbx_tcp *tcp;
	uint8_t *area;
	uint32_t frame_size;
	uint32_t held; /* rx descriptors from the last step, released by the next receive */
	int busy_poll;
	uint64_t bytes_out_seen, last_send_ns;
	struct kbx_desc rx[BATCH];
	struct kbx_desc tx[BATCH];
	struct kbx_fix_xdp_counters counters;
	uint64_t unread_since; /* RX descriptors taken for the oldest received bytes TS has not been handed yet */
	uint64_t handed_since; /* same, for the bytes the last step handed TS: its reply, if any, comes next step */
	uint64_t handed_native; /* ns of C work from handed_since to the end of that step */
	uint64_t send_ns;       /* time spent in kbx_xsk_send (TX ring + kick) by transmit() */
	uint64_t submit_ns;     /* when transmit() handed its first frames to kbx_xsk_send (0: none yet) */
	struct kbx_fix_reflex *reflex;
	struct kbx_tcp_config tcp_config;   /* for the connections after the first (kbx_fix_xdp_reconnect) */
	struct kbx_tcp_stats earlier;       /* counters of the connections before this one, summed */
	uint32_t connections;
	int tx_short;           /* this step left bytes TS wrote outside the send buffer: the reflex must not pass them */
	struct kbx_fix_xdp_times *times; /* paced runs: the wake-up deadline in, TX and RX times out (TS's memory) */
	struct timing_ring response, native, kick, reflex_time, reflex_kick;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The reflex order goes into the TCP stream now, entirely, or not at all (deferred to TypeScript). */
static int reflex_send(void *ctx, const uint8_t *msg, uint32_t len)
{
	struct kbx_fix_xdp *x = ctx;
	return !x->tx_short && kbx_tcp_send_now(x->tcp, msg, len) == (int)len;
}

int kbx_fix_xdp_create(struct kbx_xsk *xsk, const struct kbx_fix_xdp_config *config, struct kbx_fix_xdp **out)
{
	if (!xsk || xsk->parked || !xsk->has_rx || !xsk->has_tx)
		return kbx_fail(-EINVAL, "create fix-tcp AF_XDP connection",
				"needs an open AF_XDP socket with RX and TX rings");
	struct kbx_fix_xdp *x = calloc(1, sizeof(*x));
	if (!x)
		return kbx_fail(-ENOMEM, "create fix-tcp AF_XDP connection", "allocate");
	struct kbx_umem_config ucfg;
	kbx_umem_get_config(xsk->umem, &ucfg);
	x->umem = xsk->umem;
	x->xsk = xsk;
	x->area = kbx_umem_area(xsk->umem);
	x->frame_size = ucfg.frame_size - ucfg.headroom;
	x->busy_poll = config->busy_poll != 0;
	x->tcp_config = config->tcp;
	x->connections = 1;
	x->tcp = kbx_tcp_create(&config->tcp);
	x->reflex = kbx_fix_reflex_create();
	if (!x->tcp || !x->reflex) {
		kbx_tcp_destroy(x->tcp);
		kbx_fix_reflex_destroy(x->reflex);
		free(x);
		return kbx_fail(-ENOMEM, "create fix-tcp AF_XDP connection", "allocate the TCP connection and the reflex");
	}
	kbx_fix_reflex_set_sender(x->reflex, reflex_send, x);
	*out = x;
	return 0;
}

/* Frames still held go back to the UMEM; the socket and the UMEM stay the caller's. */
void kbx_fix_xdp_destroy(struct kbx_fix_xdp *x)
{
	if (!x)
		return;
	if (x->held)
		kbx_umem_release(x->umem, x->rx, x->held);
	kbx_tcp_destroy(x->tcp);
	kbx_fix_reflex_destroy(x->reflex);
	free(x);
}

int kbx_fix_xdp_connect(struct kbx_fix_xdp *x)
{
	return kbx_tcp_connect(x->tcp, now_ns());
}
void kbx_fix_xdp_shutdown(struct kbx_fix_xdp *x) { kbx_tcp_shutdown(x->tcp); }
void kbx_fix_xdp_abort(struct kbx_fix_xdp *x) { kbx_tcp_abort(x->tcp); }
/* The counters (segs_in … keepalives) of struct kbx_tcp_stats, as u64 indexes: summed over connections. */
#define STATS_FIRST_COUNTER 2
#define STATS_LAST_COUNTER 27

void kbx_fix_xdp_tcp_stats(const struct kbx_fix_xdp *x, struct kbx_tcp_stats *out)
{
	kbx_tcp_get_stats(x->tcp, out);
	uint64_t *o = (uint64_t *)out;
	const uint64_t *e = (const uint64_t *)&x->earlier;
	for (int i = STATS_FIRST_COUNTER; i <= STATS_LAST_COUNTER; i++)
		o[i] += e[i];
}

int kbx_fix_xdp_reconnect(struct kbx_fix_xdp *x, uint32_t jitter)
{
	struct kbx_tcp_config cfg = x->tcp_config;
	cfg.isn = kbx_tcp_snd_max(x->tcp) + 0x10000u + (jitter & 0xffffu);
	cfg.drop_tx_nth = 0; /* the test hook applies to the first connection only */
	struct kbx_tcp *fresh = kbx_tcp_create(&cfg);
	if (!fresh)
		return kbx_fail(-ENOMEM, "reconnect TCP", "allocate the new connection");
	struct kbx_tcp_stats old;
	kbx_tcp_get_stats(x->tcp, &old);
	uint64_t *e = (uint64_t *)&x->earlier;
	const uint64_t *o = (const uint64_t *)&old;
	for (int i = STATS_FIRST_COUNTER; i <= STATS_LAST_COUNTER; i++)
		e[i] += o[i];
	kbx_tcp_destroy(x->tcp);
	x->tcp = fresh;
	x->connections++;
	kbx_fix_reflex_reset_stream(x->reflex);
	x->unread_since = x->handed_since = x->handed_native = 0;
	x->bytes_out_seen = 0;
	x->tx_short = 0;
	return kbx_tcp_connect(x->tcp, now_ns());
}
void kbx_fix_xdp_counters(const struct kbx_fix_xdp *x, struct kbx_fix_xdp_counters *out) { *out = x->counters; }
struct kbx_fix_reflex *kbx_fix_xdp_reflex(struct kbx_fix_xdp *x) { return x->reflex; }
void kbx_fix_xdp_set_times(struct kbx_fix_xdp *x, struct kbx_fix_xdp_times *times) { x->times = times; }

/*
 * The step's wait for frames: until `until` (CLOCK_MONOTONIC ns), spinning on the RX ring's producer index
 * until spin_until, asleep in ppoll() after. Returns the descriptors taken (or -errno).
 */
static int wait_rx(struct kbx_fix_xdp *x, uint64_t spin_until, uint64_t until)
{
	while (now_ns() < spin_until) {
		if (kbx_xsk_rx_available(x->xsk) > 0)
			return kbx_xsk_receive(x->xsk, x->rx, BATCH, 0, 0);
		cpu_relax();
	}
	if (now_ns() >= until)
		return kbx_xsk_receive(x->xsk, x->rx, BATCH, 0, 0);
	int rc = kbx_fix_sleep_readable(x->xsk->fd, until);
	if (rc < 0)
		return rc;
	return kbx_xsk_receive(x->xsk, x->rx, BATCH, 0, 0);
}

static void timing_push(struct kbx_fix_xdp *x, struct timing_ring *r, uint64_t ns)
{
	if (r->count == KBX_FIX_TIMING_RING) {
		x->counters.timings_lost++;
		return;
	}
	r->ns[(r->head + r->count) & RING_MASK] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
	r->count++;
}

static uint32_t timing_drain(struct timing_ring *r, uint32_t *out, uint32_t cap)
{
	uint32_t n = r->count < cap ? r->count : cap;
	for (uint32_t i = 0; i < n; i++)
		out[i] = r->ns[(r->head + i) & RING_MASK];
	r->head = (r->head + n) & RING_MASK;
	r->count -= n;
	return n;
}

void kbx_fix_xdp_drain_timings(struct kbx_fix_xdp *x, uint32_t *out, uint32_t *counts, uint32_t cap)
{
	struct timing_ring *rings[KBX_FIX_TIMINGS] = {&x->response, &x->native, &x->kick, &x->reflex_time, &x->reflex_kick};
	for (int i = 0; i < KBX_FIX_TIMINGS; i++)
		counts[i] = timing_drain(rings[i], out + (size_t)i * cap, cap);
}

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
		uint64_t send_start = now_ns();
		if (!x->submit_ns)
			x->submit_ns = send_start;
		int sent = kbx_xsk_send(x->xsk, x->tx, n);
		x->send_ns += now_ns() - send_start;
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
	struct kbx_tcp_stats s;
	memset(r, 0, sizeof(*r));
	x->counters.steps++;
	/* armed by TS for this step only (its state is current: it has processed every byte handed out so far) */
	kbx_fix_reflex_take_arm(x->reflex);

	/* The bytes handed out by the previous step were TS's to answer in this one; no reply, no sample. */
	uint64_t answering = x->handed_since;
	uint64_t bytes_out_before = 0;
	x->handed_since = 0;
	uint64_t now = now_ns();
	/* A data ACK held back by the last step leaves now: on TS's reply if there is one, else alone. */
	kbx_tcp_hold_ack(x->tcp, 0);
	x->tx_short = 0;
	if (x->times)
		x->times->tx_ns = x->times->rx_ns = 0;
	if (tx_len > 0) {
		int accepted = kbx_tcp_write(x->tcp, (const uint8_t *)tx_data, tx_len);
		r->tx_accepted = accepted > 0 ? (uint32_t)accepted : 0;
		x->tx_short = r->tx_accepted < tx_len;
		if (answering && r->tx_accepted) {
			kbx_tcp_get_stats(x->tcp, &s);
			bytes_out_before = s.bytes_out;
		} else
			answering = 0;
	} else
		answering = 0;
	kbx_tcp_poll(x->tcp, now);
	x->send_ns = 0;
	x->submit_ns = 0;
	r->frames_out += transmit(x);
	if (x->times && r->tx_accepted && x->submit_ns)
		x->times->tx_ns = x->submit_ns;
	if (answering) {
		kbx_tcp_get_stats(x->tcp, &s);
		if (s.bytes_out > bytes_out_before && x->submit_ns) {
			/* stamped when the reply's TX descriptor was handed to the TX ring, before the kick */
			timing_push(x, &x->response, x->submit_ns - answering);
			timing_push(x, &x->native, x->handed_native + (x->submit_ns - now));
			timing_push(x, &x->kick, x->send_ns);
		}
	}
	if (kbx_xsk_tx_pending(x->xsk) > 0)
		kbx_xsk_complete(x->xsk);

	kbx_tcp_get_stats(x->tcp, &s);
	int wait = (s.readable > 0 || x->tx_short) ? 0 : timeout_ms;
	if (s.bytes_out != x->bytes_out_seen) {
		x->bytes_out_seen = s.bytes_out;
		x->last_send_ns = now;
	}
	/* Spin on the RX ring's producer index (no syscall, no sleep, no wake-up latency): the whole wait with
	 * busy_poll, else while an answer to what we sent is due; then asleep in ppoll() to the deadline: the
	 * timeout, or sooner the paced run's next order (to the microsecond). */
	int n = kbx_xsk_receive(x->xsk, x->rx, BATCH, x->held, 0);
	if (n == 0 && wait > 0) {
		uint64_t start = now_ns();
		uint64_t until = start + (uint64_t)wait * 1000000ull;
		uint64_t wake_at = x->times ? x->times->wake_at_ns : 0;
		if (wake_at && wake_at < until)
			until = wake_at;
		uint64_t spin_after_send = x->times ? x->times->spin_after_send_ns : SPIN_AFTER_SEND_NS;
		uint64_t spin_until = x->busy_poll ? until : x->last_send_ns + spin_after_send;
		if (spin_until > until)
			spin_until = until;
		n = wait_rx(x, spin_until, until);
	}
	if (n < 0) {
		x->held = 0;
		return n;
	}
	x->held = (uint32_t)n;
	if (n > 0) {
		uint64_t taken = now_ns();
		if (x->times)
			x->times->rx_ns = taken;
		uint64_t readable_before = s.readable;
		for (int i = 0; i < n; i++) {
			if (!kbx_tcp_input(x->tcp, x->area + x->rx[i].addr, x->rx[i].len, taken))
				x->counters.not_ours++;
		}
		/* Frames back to the pool now: the connection copied what it keeps. */
		kbx_umem_release(x->umem, x->rx, (uint32_t)n);
		x->held = 0;
		r->frames_in = (uint32_t)n;
		x->counters.frames_in += (uint32_t)n;
		kbx_tcp_poll(x->tcp, taken);
		kbx_tcp_get_stats(x->tcp, &s);
		if (s.readable > readable_before && !x->unread_since)
			x->unread_since = taken;
	}
	/*
	 * Received bytes to TS, framed on the way by the reflex: the ExecutionReport it is armed for is answered
	 * here, the next order (carrying the ACK) written to the connection before anything is transmitted.
	 */
	uint64_t handed = 0;
	int got = 0;
	if (rx_cap > 0) {
		got = kbx_tcp_read(x->tcp, (uint8_t *)rx_buf, rx_cap);
		r->rx_bytes = got > 0 ? (uint32_t)got : 0;
		if (got > 0) {
			handed = x->unread_since;
			x->unread_since = 0;
			r->reflex_sent = (uint32_t)kbx_fix_reflex_feed(x->reflex, (const uint8_t *)rx_buf, (uint32_t)got);
		}
	}
	if (n > 0 || got > 0) {
		/* With no reflex order, the ACK waits for the next step: on TS's reply, or alone. */
		kbx_tcp_hold_ack(x->tcp, got > 0 && !r->reflex_sent);
		x->send_ns = 0;
		x->submit_ns = 0;
		r->frames_out += transmit(x);
		if (r->reflex_sent) {
			uint64_t submitted = x->submit_ns ? x->submit_ns : now_ns();
			kbx_fix_reflex_io(x->reflex)->sent_ns = submitted;
			if (handed) {
				timing_push(x, &x->reflex_time, submitted - handed);
				timing_push(x, &x->reflex_kick, x->send_ns);
			}
		}
	}
	x->counters.frames_out += r->frames_out;
	if (got > 0 && !r->reflex_sent) {
		x->handed_since = handed;
		x->handed_native = now_ns() - handed;
	}
	kbx_tcp_get_stats(x->tcp, &s);
	r->more = s.readable > 0;
	if (r->more && !x->unread_since)
		x->unread_since = handed ? handed : now_ns();
	r->state = (uint32_t)s.state;
	r->timings = x->response.count > x->reflex_time.count ? x->response.count : x->reflex_time.count;
	return 0;
}
