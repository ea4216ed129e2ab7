// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* fix-tcp --io xdp: the AF_XDP batch loop around the userspace TCP connection (see kbx_fix.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fix_internal.h"
#include "kbx_fix.h"
#include "xsk_internal.h"

#define BATCH 64
/* After sending data, a wait spins this long on the RX ring (the answer is due) before sleeping in poll(). */
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
	struct kbx_fix_reflex *reflex;
	struct kbx_tcp_config tcp_config;   /* for the connections after the first (kbx_fix_xdp_reconnect) */
	struct kbx_tcp_stats earlier;       /* counters of the connections before this one, summed */
	uint32_t connections;
	int tx_short;           /* this step left bytes TS wrote outside the send buffer: the reflex must not pass them */
	/* ticks → ns: CLOCK_MONOTONIC and kbx_fix_ticks() read together at creation, the ratio refined as time passes */
	double ns_per_tick;
	uint64_t cal_ns, cal_ticks, cal_next_ns;
	/* CLOCK_MONOTONIC and ticks read together at the start of the step: later times of the step are derived */
	uint64_t anchor_ns, anchor_ticks;
	int64_t wall_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC, read every 100 ms (the SendingTime needs ms) */
	/* the reflex's window (RX descriptors taken → its order submitted), in ticks */
	uint64_t win_start;   /* RX descriptors taken */
	uint64_t submit_tick; /* transmit() handed its first frames to kbx_xsk_send (0: none yet) */
	struct kbx_fix_xdp_times *times; /* paced runs: the wake-up deadline in, TX and RX times out (TS's memory) */
	struct timing_ring response, native, kick, reflex_time, reflex_kick;
	struct timing_ring stage[KBX_FIX_REFLEX_STAGES], reflex_window;
};

static void read_wall_offset(struct kbx_fix_xdp *x, uint64_t now)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	x->wall_offset_ns = (int64_t)((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) - (int64_t)now;
}

/* A first ticks → ns ratio: both clocks read 200 µs apart (at creation, once). */
static void calibrate_ticks(struct kbx_fix_xdp *x)
{
	x->cal_ns = kbx_fix_mono_ns();
	x->cal_ticks = kbx_fix_ticks();
	uint64_t ns, t;
	do {
		ns = kbx_fix_mono_ns();
		t = kbx_fix_ticks();
	} while (ns - x->cal_ns < 200000);
	x->ns_per_tick = t > x->cal_ticks ? (double)(ns - x->cal_ns) / (double)(t - x->cal_ticks) : 1.0;
	x->cal_next_ns = ns + 100000000ull;
	read_wall_offset(x, ns);
}

/* The ratio over all the time since creation (now and ticks read together), every 100 ms. */
static void refine_ticks(struct kbx_fix_xdp *x, uint64_t now, uint64_t ticks)
{
	if (now < x->cal_next_ns || ticks <= x->cal_ticks)
		return;
	x->ns_per_tick = (double)(now - x->cal_ns) / (double)(ticks - x->cal_ticks);
	x->cal_next_ns = now + 100000000ull;
	read_wall_offset(x, now);
}

static uint64_t ticks_ns(const struct kbx_fix_xdp *x, uint64_t ticks) { return (uint64_t)((double)ticks * x->ns_per_tick); }
/* CLOCK_MONOTONIC at ticks t of this step, without reading the clock. */
static uint64_t tick_time(const struct kbx_fix_xdp *x, uint64_t t) { return x->anchor_ns + ticks_ns(x, t - x->anchor_ticks); }


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
	calibrate_ticks(x);
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
	return kbx_tcp_connect(x->tcp, kbx_fix_mono_ns());
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
	return kbx_tcp_connect(x->tcp, kbx_fix_mono_ns());
}
void kbx_fix_xdp_counters(const struct kbx_fix_xdp *x, struct kbx_fix_xdp_counters *out) { *out = x->counters; }
struct kbx_fix_reflex *kbx_fix_xdp_reflex(struct kbx_fix_xdp *x) { return x->reflex; }

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
	struct timing_ring *rings[KBX_FIX_TIMINGS] = {&x->response, &x->native, &x->kick, &x->reflex_time, &x->reflex_kick,
		&x->stage[0], &x->stage[1], &x->stage[2], &x->stage[3], &x->stage[4], &x->stage[5], &x->reflex_window};
	for (int i = 0; i < KBX_FIX_TIMINGS; i++)
		counts[i] = timing_drain(rings[i], out + (size_t)i * cap, cap);
}

/*
 * The reflex sample of this step broken down (kbx_fix.h): the window from x->win_start to x->submit_tick,
 * framing from parsed_from to fed, the reflex's own marks inside it.
 */
static void push_stages(struct kbx_fix_xdp *x, uint64_t parsed_from, uint64_t fed)
{
	struct kbx_fix_reflex_marks m;
	kbx_fix_reflex_marks(x->reflex, &m);
	uint64_t stage[KBX_FIX_REFLEX_STAGES] = {
		m.clock,
		parsed_from - x->win_start,
		(m.triggered - parsed_from) + (fed - m.queued),
		m.built - m.triggered - m.clock,
		m.queued - m.built,
		x->submit_tick - fed,
	};
	for (int i = 0; i < KBX_FIX_REFLEX_STAGES; i++)
		timing_push(x, &x->stage[i], (int64_t)stage[i] > 0 ? ticks_ns(x, stage[i]) : 0);
	timing_push(x, &x->reflex_window, ticks_ns(x, x->submit_tick - x->win_start));
}

/*
 * Every frame the connection has queued goes out through TX, in UMEM frames taken for just those frames;
 * returns how many were submitted. Times by the tick counter: x->submit_tick (the first frames handed to
 * kbx_xsk_send), x->send_ns (the TX calls).
 */
static uint32_t transmit(struct kbx_fix_xdp *x)
{
	uint32_t total = 0;
	for (;;) {
		uint32_t want = kbx_tcp_frames_queued(x->tcp);
		if (want == 0)
			return total;
		int got = kbx_umem_alloc(x->umem, x->tx, want < BATCH ? want : BATCH);
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
		uint64_t send_start = kbx_fix_ticks();
		if (!x->submit_tick)
			x->submit_tick = send_start;
		int sent = kbx_xsk_send(x->xsk, x->tx, n);
		x->send_ns += ticks_ns(x, kbx_fix_ticks() - send_start);
		if (sent < 0) {
			x->counters.tx_errors++;
			kbx_umem_release(x->umem, x->tx, n);
			return total;
		}
		if ((uint32_t)sent < n) {
			/* TX ring full: those frames are lost like on a wire; the connection retransmits */
			x->counters.tx_ring_full += n - (uint32_t)sent;
			kbx_umem_release(x->umem, x->tx + sent, n - (uint32_t)sent);
			return total + (uint32_t)sent;
		}
		total += (uint32_t)sent;
		if (n < (uint32_t)got)
			return total;
	}
}

/*
 * The reflex's order went out in this step: its time for TypeScript (io->sent_ns), its internal time since
 * handed (the RX descriptors that brought its trigger) and, when they came in this step, its stages.
 */
static void reflex_submitted(struct kbx_fix_xdp *x, uint64_t handed, uint64_t taken, uint64_t parsed_from, uint64_t fed)
{
	uint64_t submitted = tick_time(x, x->submit_tick ? x->submit_tick : kbx_fix_ticks());
	kbx_fix_reflex_io(x->reflex)->sent_ns = submitted;
	if (!handed)
		return;
	timing_push(x, &x->reflex_time, submitted - handed);
	timing_push(x, &x->reflex_kick, x->send_ns);
	if (handed == taken && x->submit_tick)
		push_stages(x, parsed_from, fed);
}

/*
 * A batch of RX descriptors (the last step's released first), waiting up to wait ms: spinning on the RX
 * ring's producer index (no syscall, no sleep, no wake-up latency) for the whole wait with busy_poll, else
 * while an answer to what we sent is due, then asleep in poll(). The spin's deadline is in ticks.
 */
void kbx_fix_xdp_set_times(struct kbx_fix_xdp *x, struct kbx_fix_xdp_times *times) { x->times = times; }

/*
 * The step's wait for frames, up to `wait` ms or sooner the paced run's next order (to the microsecond):
 * spinning on the RX ring's producer index (no syscall, no wake-up) the whole wait with busy_poll, else while
 * an answer to what we sent is due; then asleep in ppoll() to the deadline.
 */
static int receive_batch(struct kbx_fix_xdp *x, uint64_t now, int wait)
{
	int n = kbx_xsk_receive(x->xsk, x->rx, BATCH, x->held, 0);
	if (n != 0 || wait <= 0)
		return n;
	uint64_t until = now + (uint64_t)wait * 1000000ull;
	uint64_t wake_at = x->times ? x->times->wake_at_ns : 0;
	if (wake_at && wake_at < until)
		until = wake_at;
	uint64_t spin_after_send = x->times ? x->times->spin_after_send_ns : SPIN_AFTER_SEND_NS;
	uint64_t spin_until = x->busy_poll ? until : x->last_send_ns + spin_after_send;
	if (spin_until > until)
		spin_until = until;
	if (spin_until > now) {
		uint64_t spin_ticks = x->anchor_ticks + (uint64_t)((double)(spin_until - now) / x->ns_per_tick);
		while (kbx_fix_ticks() < spin_ticks) {
			if (kbx_xsk_rx_available(x->xsk) > 0)
				return kbx_xsk_receive(x->xsk, x->rx, BATCH, 0, 0);
			cpu_relax();
		}
	}
	if (!x->busy_poll && kbx_fix_mono_ns() < until) {
		int rc = kbx_fix_sleep_readable(x->xsk->fd, until);
		if (rc < 0)
			return rc;
	}
	return kbx_xsk_receive(x->xsk, x->rx, BATCH, 0, 0);
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
	if (x->times)
		x->times->tx_ns = x->times->rx_ns = 0;
	uint64_t now = kbx_fix_mono_ns();
	x->anchor_ns = now;
	x->anchor_ticks = kbx_fix_ticks();
	refine_ticks(x, now, x->anchor_ticks);
	/* A data ACK held back by the last step leaves now: on TS's reply if there is one, else alone. */
	kbx_tcp_hold_ack(x->tcp, 0);
	x->tx_short = 0;
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
	x->submit_tick = 0;
	r->frames_out += transmit(x);
	if (x->times && r->tx_accepted && x->submit_tick)
		x->times->tx_ns = tick_time(x, x->submit_tick);
	if (answering) {
		kbx_tcp_get_stats(x->tcp, &s);
		if (s.bytes_out > bytes_out_before && x->submit_tick) {
			/* stamped when the reply's TX descriptor was handed to the TX ring, before the kick */
			uint64_t submitted = tick_time(x, x->submit_tick);
			timing_push(x, &x->response, submitted - answering);
			timing_push(x, &x->native, x->handed_native + (submitted - now));
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
	if (wait > 0) {
		/* about to wait for the answer: what its arrival will touch, into the cache now */
		kbx_tcp_warm(x->tcp);
		kbx_fix_reflex_warm(x->reflex);
	}
	int n = receive_batch(x, now, wait);
	if (n < 0) {
		x->held = 0;
		return n;
	}
	x->held = (uint32_t)n;
	/*
	 * The reflex's window opens: RX descriptors taken. No clock is read in it: its times come from the tick
	 * counter and the step's anchor, the SendingTime from the wall-clock offset.
	 */
	uint64_t taken = 0, parsed_from = 0, fed = 0;
	if (n > 0) {
		x->win_start = kbx_fix_ticks();
		taken = tick_time(x, x->win_start);
		if (x->times)
			x->times->rx_ns = taken;
		uint32_t readable_before = kbx_tcp_readable(x->tcp);
		for (int i = 0; i < n; i++) {
			if (!kbx_tcp_input(x->tcp, x->area + x->rx[i].addr, x->rx[i].len, taken))
				x->counters.not_ours++;
		}
		r->frames_in = (uint32_t)n;
		x->counters.frames_in += (uint32_t)n;
		kbx_tcp_poll(x->tcp, taken);
		if (kbx_tcp_readable(x->tcp) > readable_before && !x->unread_since)
			x->unread_since = taken;
	}
	/*
	 * Received bytes to TS, framed on the way by the reflex: the ExecutionReport it is armed for is answered
	 * here, the next order (carrying the ACK) written to the connection before anything is transmitted; what
	 * follows the trigger is framed once the order is out.
	 */
	uint64_t handed = 0;
	int got = 0;
	if (rx_cap > 0) {
		got = kbx_tcp_read(x->tcp, (uint8_t *)rx_buf, rx_cap);
		r->rx_bytes = got > 0 ? (uint32_t)got : 0;
		if (got > 0) {
			handed = x->unread_since;
			x->unread_since = 0;
			parsed_from = kbx_fix_ticks();
			kbx_fix_reflex_set_wall_clock(x->reflex, (uint64_t)((int64_t)taken + x->wall_offset_ns));
			r->reflex_sent = (uint32_t)kbx_fix_reflex_feed_to_trigger(x->reflex, (const uint8_t *)rx_buf, (uint32_t)got);
			fed = kbx_fix_ticks();
		}
	}
	if (n > 0 || got > 0) {
		/* With no reflex order, the ACK waits for the next step: on TS's reply, or alone. */
		kbx_tcp_hold_ack(x->tcp, got > 0 && !r->reflex_sent);
		x->send_ns = 0;
		x->submit_tick = 0;
		r->frames_out += transmit(x);
		if (r->reflex_sent)
			reflex_submitted(x, handed, taken, parsed_from, fed);
		/* the window is closed: the rest of what arrived is framed, the frames it came in go back to the pool */
		kbx_fix_reflex_frame_rest(x->reflex);
		if (x->held) {
			kbx_umem_release(x->umem, x->rx, x->held);
			x->held = 0;
		}
	}
	x->counters.frames_out += r->frames_out;
	if (got > 0 && !r->reflex_sent) {
		x->handed_since = handed;
		x->handed_native = kbx_fix_mono_ns() - handed;
	}
	kbx_tcp_get_stats(x->tcp, &s);
	r->more = s.readable > 0;
	if (r->more && !x->unread_since)
		x->unread_since = handed ? handed : kbx_fix_mono_ns();
	r->state = (uint32_t)s.state;
	r->timings = x->response.count > x->reflex_time.count ? x->response.count : x->reflex_time.count;
	return 0;
}
