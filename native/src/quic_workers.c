// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Workers (kbx_quic.h, "Workers"): one thread per engine, paused all at once while the caller reads or
 * changes the engines, and the hand-over of datagrams between linked flooders whose return traffic
 * arrived on another worker's RX queue.
 */
#define _GNU_SOURCE
#include "quic_flood_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- hand-over between linked flooders ---- */

int kbx_quic_flood_link(struct kbx_quic_flood *const *floods, uint32_t n)
{
	uint32_t i, j;

	if (n < 1 || n > KBX_QUIC_MAX_WORKERS)
		return kbx_fail(-EINVAL, "link QUIC flooders", "%u workers: 1..%u", n, KBX_QUIC_MAX_WORKERS);
	for (i = 0; i < n; i++) {
		struct kbx_quic_flood *f = floods[i];
		uint32_t expected = i ? floods[i - 1]->cfg.local_port + floods[i - 1]->nconns : f->cfg.local_port;

		if (f->cfg.io != KBX_QUIC_IO_XDP || f->cfg.local_port != expected)
			return kbx_fail(-EINVAL, "link QUIC flooders",
					"worker %u: xdp io and local ports from %u expected (the previous worker's end), has %u", i,
					expected, f->cfg.local_port);
	}
	for (i = 0; i < n; i++) {
		struct kbx_quic_flood *f = floods[i];
		struct flood_inbox *box = calloc(1, sizeof(*box));

		if (!box)
			return kbx_fail(-ENOMEM, "link QUIC flooders", "allocate an inbox");
		box->half[0] = calloc(KBX_QUIC_HANDOFF_SLOTS, sizeof(struct handoff_packet));
		box->half[1] = calloc(KBX_QUIC_HANDOFF_SLOTS, sizeof(struct handoff_packet));
		pthread_mutex_init(&box->lock, NULL);
		box->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		flood_inbox_free(f);
		f->inbox = box;
		if (!box->half[0] || !box->half[1])
			return kbx_fail(-ENOMEM, "link QUIC flooders", "allocate an inbox");
		if (box->wake_fd < 0)
			return kbx_fail(-errno, "link QUIC flooders", "create an eventfd");
		for (j = 0; j < n; j++)
			f->peers[j] = floods[j];
		f->npeers = n;
		f->self = i;
	}
	return 0;
}

void flood_inbox_free(struct kbx_quic_flood *f)
{
	if (!f->inbox)
		return;
	pthread_mutex_destroy(&f->inbox->lock);
	if (f->inbox->wake_fd >= 0)
		close(f->inbox->wake_fd);
	free(f->inbox->half[0]);
	free(f->inbox->half[1]);
	free(f->inbox);
	f->inbox = NULL;
}

int flood_handoff(struct kbx_quic_flood *f, const struct quic_udp_datagram *d, uint16_t dport)
{
	uint32_t owner, queued;
	struct flood_inbox *box;
	struct handoff_packet *p;

	for (owner = 0; owner < f->npeers; owner++)
		if ((uint32_t)dport - f->peers[owner]->cfg.local_port < f->peers[owner]->nconns)
			break;
	if (owner >= f->npeers || owner == f->self)
		return 0;
	box = f->peers[owner]->inbox;
	pthread_mutex_lock(&box->lock);
	if (box->count[box->active] >= KBX_QUIC_HANDOFF_SLOTS) {
		pthread_mutex_unlock(&box->lock);
		f->st.rx_handoff_dropped++;
		return 1;
	}
	queued = box->count[box->active];
	p = &box->half[box->active][queued];
	p->len = d->len;
	p->saddr = d->saddr;
	p->sport = d->sport;
	p->dport = dport;
	p->ecn = d->ecn;
	memcpy(p->data, d->payload, d->len);
	__atomic_store_n(&box->count[box->active], queued + 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&box->lock);
	if (!queued) {
		uint64_t one = 1;
		if (write(box->wake_fd, &one, sizeof(one)) < 0) { /* already signalled: the counter only grows */
		}
	}
	f->st.rx_handed_off++;
	return 1;
}

int flood_handoff_drain(struct kbx_quic_flood *f, uint64_t now)
{
	struct flood_inbox *box = f->inbox;
	uint32_t half, n, i;

	if (!box || !__atomic_load_n(&box->count[__atomic_load_n(&box->active, __ATOMIC_RELAXED)], __ATOMIC_RELAXED))
		return 0;
	uint64_t signalled;

	if (read(box->wake_fd, &signalled, sizeof(signalled)) < 0) { /* nothing signalled yet: fine */
	}
	pthread_mutex_lock(&box->lock);
	half = box->active;
	n = box->count[half];
	box->active = half ^ 1;
	pthread_mutex_unlock(&box->lock);
	for (i = 0; i < n; i++) {
		const struct handoff_packet *p = &box->half[half][i];
		uint32_t idx = (uint32_t)p->dport - f->cfg.local_port;
		struct conn *c;

		if (idx >= f->nconns) {
			f->st.rx_ignored++;
			continue;
		}
		c = &f->conns[idx];
		if (p->saddr != c->remote.sin_addr.s_addr || p->sport != c->remote.sin_port) {
			f->st.rx_ignored++;
			continue;
		}
		flood_conn_read(c, p->data, p->len, p->ecn, now);
	}
	pthread_mutex_lock(&box->lock);
	box->count[half] = 0;
	pthread_mutex_unlock(&box->lock);
	f->st.rx_handoff_received += n;
	return (int)n;
}

/* ---- threads ---- */

struct worker {
	struct kbx_quic_workers *group;
	void *engine;
	pthread_t thread;
	int started;
	int status;             /* KBX_QUIC_WORKER_RUNNING, _DONE or a negative errno */
	struct kbx_error error; /* of a failed run */
	uint64_t ran_generation; /* the resume a DONE status belongs to */
	int parked;
};

struct kbx_quic_workers {
	uint32_t kind;
	uint32_t n;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* pause, resume, stop, a worker parked */
	int pause;
	int stop;
	uint32_t parked;
	uint64_t generation;    /* resumes so far: a worker that was DONE runs again after one */
	struct worker workers[KBX_QUIC_MAX_WORKERS];
};

static int run_engine(struct kbx_quic_workers *g, void *engine)
{
	if (g->kind == KBX_QUIC_WORKERS_FLOOD)
		return kbx_quic_flood_run(engine, KBX_QUIC_WORKER_SLICE_MS);
	return kbx_quic_sink_run(engine, KBX_QUIC_WORKER_SLICE_MS);
}

/* Whether the worker has nothing to run until the next resume (failed, or done since the last resume). */
static int idle(const struct kbx_quic_workers *g, const struct worker *w)
{
	return w->status < 0 || (w->status == KBX_QUIC_WORKER_DONE && w->ran_generation == g->generation);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct kbx_quic_workers *g = w->group;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		int rv;

		while (!g->stop && (g->pause || idle(g, w))) {
			if (g->pause && !w->parked) {
				w->parked = 1;
				g->parked++;
				pthread_cond_broadcast(&g->changed);
			}
			pthread_cond_wait(&g->changed, &g->lock);
		}
		if (w->parked) {
			w->parked = 0;
			g->parked--;
		}
		if (g->stop)
			break;
		w->ran_generation = g->generation;
		pthread_mutex_unlock(&g->lock);
		rv = run_engine(g, w->engine);
		if (rv < 0)
			kbx_error_take(&w->error);
		pthread_mutex_lock(&g->lock);
		if (rv < 0)
			w->status = rv;
		else
			w->status = rv == KBX_QUIC_RUN_DONE && g->kind == KBX_QUIC_WORKERS_FLOOD ? KBX_QUIC_WORKER_DONE
											   : KBX_QUIC_WORKER_RUNNING;
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int kbx_quic_workers_start(uint32_t kind, void *const *engines, uint32_t n, struct kbx_quic_workers **out)
{
	struct kbx_quic_workers *g;
	uint32_t i;

	*out = NULL;
	if (n < 1 || n > KBX_QUIC_MAX_WORKERS)
		return kbx_fail(-EINVAL, "start QUIC workers", "%u workers: 1..%u", n, KBX_QUIC_MAX_WORKERS);
	if (kind != KBX_QUIC_WORKERS_FLOOD && kind != KBX_QUIC_WORKERS_SINK)
		return kbx_fail(-EINVAL, "start QUIC workers", "unknown kind %u", kind);
	g = calloc(1, sizeof(*g));
	if (!g)
		return kbx_fail(-ENOMEM, "start QUIC workers", "allocate");
	g->kind = kind;
	g->n = n;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->changed, NULL);
	for (i = 0; i < n; i++) {
		struct worker *w = &g->workers[i];
		int err;

		w->group = g;
		w->engine = engines[i];
		err = pthread_create(&w->thread, NULL, worker_main, w);
		if (err) {
			kbx_quic_workers_stop(g);
			return kbx_fail(-err, "start QUIC workers", "thread %u of %u", i, n);
		}
		w->started = 1;
	}
	*out = g;
	return 0;
}

void kbx_quic_workers_pause(struct kbx_quic_workers *g)
{
	uint32_t started = 0, i;

	for (i = 0; i < g->n; i++)
		started += (uint32_t)g->workers[i].started;
	pthread_mutex_lock(&g->lock);
	g->pause = 1;
	pthread_cond_broadcast(&g->changed);
	while (g->parked < started)
		pthread_cond_wait(&g->changed, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

void kbx_quic_workers_resume(struct kbx_quic_workers *g)
{
	pthread_mutex_lock(&g->lock);
	g->pause = 0;
	g->generation++;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
}

int kbx_quic_workers_status(struct kbx_quic_workers *g, uint32_t i, struct kbx_error *err)
{
	int status;

	if (i >= g->n)
		return kbx_fail(-EINVAL, "QUIC worker status", "worker %u of %u", i, g->n);
	pthread_mutex_lock(&g->lock);
	status = g->workers[i].status;
	if (err)
		*err = g->workers[i].error;
	pthread_mutex_unlock(&g->lock);
	return status;
}

void kbx_quic_workers_stop(struct kbx_quic_workers *g)
{
	uint32_t i;

	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = 1;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
	for (i = 0; i < g->n; i++)
		if (g->workers[i].started)
			pthread_join(g->workers[i].thread, NULL);
	pthread_cond_destroy(&g->changed);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
