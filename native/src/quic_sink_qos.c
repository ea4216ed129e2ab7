// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * quic-sink's Agave QoS (kbx_quic.h, "Agave's QoS"): stake-weighted stream limits, per-identity and per-IP
 * connection limits, and the per-connection stream rate, counted under the names of Agave's StreamerStats.
 */
#define _GNU_SOURCE
#include "quic_sink_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MS_NS 1000000ull
#define MINUTE_NS (60000ull * MS_NS)
/* Agave: 20 % of the capacity is kept for unstaked streams; staked streams are throttled by stake share
 * once the staked load's EMA (over 40 intervals of 5 ms) reaches 95 % of the rest */
#define UNSTAKED_SHARE_PERCENT 20
#define LOAD_EMA_INTERVALS 40
#define LOAD_EMA_SCALE 1024
#define LOADED_PERCENT 95

uint32_t kbx_quic_qos_max_uni_streams(uint64_t stake, uint64_t total_stake)
{
	double share, streams;

	if (stake == 0)
		return KBX_QUIC_QOS_UNSTAKED_STREAMS;
	if (total_stake == 0 || stake > total_stake)
		return KBX_QUIC_QOS_MIN_STAKED_STREAMS;
	share = (double)stake / (double)total_stake;
	streams = share * (double)(KBX_QUIC_QOS_TOTAL_STAKED_STREAMS - KBX_QUIC_QOS_MIN_STAKED_STREAMS);
	streams = (double)(uint64_t)streams + KBX_QUIC_QOS_MIN_STAKED_STREAMS;
	return streams > KBX_QUIC_QOS_MAX_STAKED_STREAMS ? KBX_QUIC_QOS_MAX_STAKED_STREAMS : (uint32_t)streams;
}

int kbx_quic_qos_is_staked(uint64_t stake, uint64_t total_stake, uint32_t max_streams_per_ms)
{
	double min_share = 1.0 / ((double)max_streams_per_ms * KBX_QUIC_QOS_THROTTLING_INTERVAL_MS);

	if (stake == 0 || total_stake == 0)
		return 0;
	return (double)stake / (double)total_stake >= min_share;
}

static uint64_t staked_streams_per_ms(uint32_t max_streams_per_ms)
{
	return max_streams_per_ms - (uint64_t)max_streams_per_ms * UNSTAKED_SHARE_PERCENT / 100;
}

uint64_t kbx_quic_qos_stream_capacity(uint64_t stake, uint64_t total_stake, uint32_t max_streams_per_ms, int loaded)
{
	uint64_t unstaked = KBX_QUIC_QOS_MAX_UNSTAKED_TPS * KBX_QUIC_QOS_THROTTLING_INTERVAL_MS / 1000;
	uint64_t staked = staked_streams_per_ms(max_streams_per_ms) * KBX_QUIC_QOS_THROTTLING_INTERVAL_MS;
	unsigned __int128 share;

	if (stake == 0)
		return unstaked;
	if (!loaded)
		return staked;
	if (total_stake == 0)
		return unstaked + 1;
	share = (unsigned __int128)staked * stake / total_stake;
	return share > unstaked + 1 ? (uint64_t)share : unstaked + 1;
}

int kbx_quic_rate_limiter_allow(struct kbx_quic_rate_limiter *r, uint32_t burst, uint64_t interval_ns, uint64_t now_ns)
{
	uint64_t tat = r->tat_ns > now_ns ? r->tat_ns : now_ns;

	if (burst == 0)
		return 0;
	if (tat - now_ns > (uint64_t)(burst - 1) * interval_ns)
		return 0;
	r->tat_ns = tat + interval_ns;
	return 1;
}

int kbx_quic_stream_window_admit(struct kbx_quic_stream_window *w, uint64_t capacity, uint64_t now_ns)
{
	if (w->start_ns == 0 || now_ns - w->start_ns > KBX_QUIC_QOS_THROTTLING_INTERVAL_MS * MS_NS) {
		w->start_ns = now_ns;
		w->count = 0;
	}
	if (w->count >= capacity)
		return 0;
	w->count++;
	return 1;
}

static int stake_cmp(const void *a, const void *b)
{
	return memcmp(((const struct qos_stake *)a)->key, ((const struct qos_stake *)b)->key, 32);
}

int kbx_quic_sink_set_stakes(struct kbx_quic_sink *s, const uint8_t *keys, const uint64_t *lamports, uint32_t count)
{
	struct qos_stake *table = NULL;
	uint64_t total = 0;
	uint32_t i;

	if (count > KBX_QUIC_QOS_MAX_STAKES)
		return kbx_fail(-EINVAL, "set stakes", "%u entries: at most %u", count, KBX_QUIC_QOS_MAX_STAKES);
	if (count) {
		table = calloc(count, sizeof(*table));
		if (!table)
			return kbx_fail(-ENOMEM, "set stakes", "allocate %u entries", count);
	}
	for (i = 0; i < count; i++) {
		memcpy(table[i].key, keys + (size_t)i * 32, 32);
		table[i].lamports = lamports[i];
		if (total + lamports[i] < total) {
			free(table);
			return kbx_fail(-EINVAL, "set stakes", "the total stake overflows 64 bits");
		}
		total += lamports[i];
	}
	if (count)
		qsort(table, count, sizeof(*table), stake_cmp);
	free(s->qos.stakes);
	s->qos.stakes = table;
	s->qos.nstakes = count;
	s->qos.total_stake = total;
	return 0;
}

static uint64_t stake_of(const struct kbx_quic_sink *s, const uint8_t *key)
{
	struct qos_stake probe;
	const struct qos_stake *hit;

	if (!s->qos.nstakes)
		return 0;
	memcpy(probe.key, key, 32);
	hit = bsearch(&probe, s->qos.stakes, s->qos.nstakes, sizeof(probe), stake_cmp);
	return hit ? hit->lamports : 0;
}

static void shared_release(struct sink_qos_shared *q)
{
	int last;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	last = --q->refs == 0;
	pthread_mutex_unlock(&q->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q->ips);
	free(q->identities);
	free(q);
}

int sink_qos_init(struct kbx_quic_sink *s)
{
	uint64_t staked_per_interval = staked_streams_per_ms(s->cfg.max_streams_per_ms) * KBX_QUIC_QOS_LOAD_EMA_INTERVAL_MS;
	struct sink_qos_shared *q = calloc(1, sizeof(*q));

	if (!q)
		return kbx_fail(-ENOMEM, "create QUIC sink", "allocate the QoS state");
	pthread_mutex_init(&q->lock, NULL);
	q->refs = 1;
	s->qos.shared = q;
	q->ips = calloc(QOS_IP_SLOTS, sizeof(*q->ips));
	q->identities = calloc(QOS_IDENTITY_SLOTS, sizeof(*q->identities));
	if (!q->ips || !q->identities)
		return kbx_fail(-ENOMEM, "create QUIC sink", "allocate the per-IP rate limiters and per-identity counts");
	q->staked_threshold = staked_per_interval * LOADED_PERCENT / 100;
	return 0;
}

void sink_qos_free(struct kbx_quic_sink *s)
{
	free(s->qos.stakes);
	shared_release(s->qos.shared);
	s->qos.shared = NULL;
}

int kbx_quic_sink_link(struct kbx_quic_sink *const *sinks, uint32_t n)
{
	uint32_t i;

	if (n < 1 || n > KBX_QUIC_MAX_WORKERS)
		return kbx_fail(-EINVAL, "link QUIC sinks", "%u workers: 1..%u", n, KBX_QUIC_MAX_WORKERS);
	for (i = 0; i < n; i++)
		if (!sinks[i]->cfg.reuse_port || !sinks[i]->cfg.agave_qos != !sinks[0]->cfg.agave_qos ||
		    sinks[i]->cfg.max_connections != sinks[0]->cfg.max_connections || sinks[i]->nconns)
			return kbx_fail(-EINVAL, "link QUIC sinks",
					"sink %u: reuse_port, the same agave_qos and max_connections, no connection yet", i);
	if (!sinks[0]->cfg.agave_qos)
		return 0;
	for (i = 1; i < n; i++) {
		struct sink_qos_shared *q = sinks[0]->qos.shared;

		if (sinks[i]->qos.shared == q)
			continue;
		shared_release(sinks[i]->qos.shared);
		pthread_mutex_lock(&q->lock);
		q->refs++;
		pthread_mutex_unlock(&q->lock);
		sinks[i]->qos.shared = q;
	}
	return 0;
}

/* The identity's slot (lock held): its own, else the first free one on its probe; NULL when none is left. */
static struct qos_identity *identity_slot(struct sink_qos_shared *q, const uint8_t *key)
{
	uint32_t h, i;
	struct qos_identity *free_slot = NULL;

	memcpy(&h, key, sizeof(h)); /* an Ed25519 public key is uniformly spread */
	for (i = 0; i < QOS_IDENTITY_SLOTS; i++) {
		struct qos_identity *slot = &q->identities[(h + i) % QOS_IDENTITY_SLOTS];

		if (slot->used && memcmp(slot->key, key, 32) == 0)
			return slot;
		if (!free_slot && !slot->admitted)
			free_slot = slot;
		if (!slot->used)
			break;
	}
	if (free_slot) {
		memcpy(free_slot->key, key, 32);
		free_slot->used = 1;
	}
	return free_slot;
}

void sink_qos_opened(struct kbx_quic_sink *s)
{
	__atomic_add_fetch(&s->qos.shared->open, 1, __ATOMIC_RELAXED);
}

void sink_qos_closed(struct kbx_quic_sink *s, struct sconn *c)
{
	struct sink_qos_shared *q = s->qos.shared;

	__atomic_sub_fetch(&q->open, 1, __ATOMIC_RELAXED);
	if (!c->admitted)
		return;
	pthread_mutex_lock(&q->lock);
	{
		struct qos_identity *slot = identity_slot(q, c->peer_key);
		if (slot && slot->admitted)
			slot->admitted--;
	}
	pthread_mutex_unlock(&q->lock);
}

/* The IP's rate limiter (lock held): its own slot, else a free or expired one near it, else the one freed soonest. */
static struct kbx_quic_rate_limiter *ip_limiter(struct sink_qos_shared *q, uint32_t ip, uint64_t now)
{
	uint32_t h = (ip * 2654435761u) % QOS_IP_SLOTS, i;
	struct qos_ip_slot *reuse = NULL;

	for (i = 0; i < QOS_IP_PROBES; i++) {
		struct qos_ip_slot *slot = &q->ips[(h + i) % QOS_IP_SLOTS];
		if (slot->ip == ip && slot->limiter.tat_ns)
			return &slot->limiter;
		if (!reuse || (reuse->limiter.tat_ns > now && slot->limiter.tat_ns < reuse->limiter.tat_ns))
			reuse = slot;
	}
	reuse->ip = ip;
	reuse->limiter.tat_ns = 0;
	return &reuse->limiter;
}

static int ignored_before(struct sink_qos_shared *q, const ngtcp2_cid *dcid)
{
	uint32_t i;

	for (i = 0; i < QOS_IGNORED_RING; i++) {
		const ngtcp2_cid *o = &q->ignored[i];
		if (o->datalen && o->datalen == dcid->datalen && memcmp(o->data, dcid->data, dcid->datalen) == 0)
			return 1;
	}
	q->ignored[q->ignored_next++ % QOS_IGNORED_RING] = *dcid;
	return 0;
}

int sink_qos_accept(struct kbx_quic_sink *s, const ngtcp2_pkt_hd *hd, const struct sockaddr_in *from, uint64_t now)
{
	uint32_t per_min = s->cfg.max_connections_per_ipaddr_per_min;
	struct sink_qos_shared *q = s->qos.shared;
	int verdict = 1;

	pthread_mutex_lock(&q->lock);
	if (!kbx_quic_rate_limiter_allow(ip_limiter(q, from->sin_addr.s_addr, now), per_min, MINUTE_NS / per_min, now)) {
		if (!ignored_before(q, &hd->dcid))
			s->st.connection_rate_limited_per_ipaddr++;
		verdict = 0;
	} else if (__atomic_load_n(&q->open, __ATOMIC_RELAXED) >= s->cfg.max_connections || s->nconns >= s->cfg.max_connections) {
		if (!ignored_before(q, &hd->dcid))
			s->st.refused_connections_too_many_open_connections++;
		verdict = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return verdict;
}

void sink_qos_admit(struct kbx_quic_sink *s, struct sconn *c)
{
	struct sink_qos_shared *q = s->qos.shared;
	struct qos_identity *slot = NULL;
	uint32_t limit;
	uint64_t stake = 0;

	if (c->has_peer_key) {
		stake = stake_of(s, c->peer_key);
		if (!kbx_quic_qos_is_staked(stake, s->qos.total_stake, s->cfg.max_streams_per_ms))
			stake = 0;
	}
	limit = stake ? KBX_QUIC_QOS_CONNECTIONS_PER_STAKED_PEER : KBX_QUIC_QOS_CONNECTIONS_PER_UNSTAKED_PEER;
	pthread_mutex_lock(&q->lock);
	if (c->has_peer_key) {
		slot = identity_slot(q, c->peer_key);
		if (slot && slot->admitted < limit)
			slot->admitted++;
		else
			slot = NULL;
	}
	pthread_mutex_unlock(&q->lock);
	if (!slot) {
		s->st.connection_add_failed++;
		if (stake)
			s->st.connection_add_failed_staked_node++;
		else
			s->st.connection_add_failed_unstaked_node++;
		c->too_many = 1;
		return;
	}
	c->admitted = 1;
	c->stake = stake;
	if (stake)
		s->st.connection_added_from_staked_peer++;
	else
		s->st.connection_added_from_unstaked_peer++;
	sink_grant_uni(s, c, kbx_quic_qos_max_uni_streams(stake, s->qos.total_stake));
	s->st.last_admitted_max_streams = c->uni_granted;
}

/* Every 5 ms: the staked load's EMA over the streams every linked sink counted, and whether it is loaded. */
static void update_load(struct sink_qos_shared *q, uint64_t now)
{
	const uint64_t interval = KBX_QUIC_QOS_LOAD_EMA_INTERVAL_MS * MS_NS;
	const uint64_t alpha = 2 * LOAD_EMA_SCALE / (LOAD_EMA_INTERVALS + 1);
	uint64_t elapsed, idle, recent, updated = __atomic_load_n(&q->ema_updated_ns, __ATOMIC_RELAXED);

	if (updated && now - updated < interval)
		return;
	pthread_mutex_lock(&q->lock);
	if (!q->ema_updated_ns) {
		__atomic_store_n(&q->ema_updated_ns, now, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&q->lock);
		return;
	}
	elapsed = now - q->ema_updated_ns;
	if (now < q->ema_updated_ns || elapsed < interval) { /* another worker updated it meanwhile */
		pthread_mutex_unlock(&q->lock);
		return;
	}
	recent = __atomic_exchange_n(&q->staked_load_recent, 0, __ATOMIC_RELAXED);
	q->staked_load_ema = (recent * alpha + q->staked_load_ema * (LOAD_EMA_SCALE - alpha)) / LOAD_EMA_SCALE;
	/* intervals without an update carried no load */
	for (idle = (elapsed - 1) / interval; idle > 0 && q->staked_load_ema; idle--)
		q->staked_load_ema = q->staked_load_ema * (LOAD_EMA_SCALE - alpha) / LOAD_EMA_SCALE;
	__atomic_store_n(&q->ema_updated_ns, now, __ATOMIC_RELAXED);
	__atomic_store_n(&q->loaded, q->staked_threshold > 0 && q->staked_load_ema >= q->staked_threshold, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&q->lock);
}

static int loaded(const struct kbx_quic_sink *s)
{
	return __atomic_load_n(&s->qos.shared->loaded, __ATOMIC_RELAXED);
}

void sink_qos_stream_finished(struct kbx_quic_sink *s, struct sconn *c, uint64_t now)
{
	uint64_t capacity;

	if (c->stake) {
		__atomic_add_fetch(&s->qos.shared->staked_load_recent, 1, __ATOMIC_RELAXED);
		update_load(s->qos.shared, now);
	}
	capacity = kbx_quic_qos_stream_capacity(c->stake, s->qos.total_stake, s->cfg.max_streams_per_ms, loaded(s));
	if (!c->throttled_credit && kbx_quic_stream_window_admit(&c->window, capacity, now)) {
		sink_grant_uni(s, c, 1);
		return;
	}
	c->throttled_credit++;
	s->st.throttled_streams++;
	if (c->stake)
		s->st.throttled_staked_streams++;
	else
		s->st.throttled_unstaked_streams++;
}

int sink_qos_refill(struct kbx_quic_sink *s, struct sconn *c, uint64_t now, uint64_t *wake)
{
	uint64_t window_end = c->window.start_ns + KBX_QUIC_QOS_THROTTLING_INTERVAL_MS * MS_NS + 1;
	uint64_t capacity, granted = 0;

	if (!c->throttled_credit)
		return 0;
	if (now < window_end) {
		if (window_end < *wake)
			*wake = window_end;
		return 0;
	}
	capacity = kbx_quic_qos_stream_capacity(c->stake, s->qos.total_stake, s->cfg.max_streams_per_ms, loaded(s));
	while (c->throttled_credit && kbx_quic_stream_window_admit(&c->window, capacity, now)) {
		c->throttled_credit--;
		granted++;
	}
	sink_grant_uni(s, c, granted);
	if (c->throttled_credit) {
		window_end = c->window.start_ns + KBX_QUIC_QOS_THROTTLING_INTERVAL_MS * MS_NS + 1;
		if (window_end < *wake)
			*wake = window_end;
	}
	return granted > 0;
}

void sink_qos_stats(struct kbx_quic_sink *s)
{
	uint32_t i;

	s->st.open_staked_connections = 0;
	s->st.open_unstaked_connections = 0;
	for (i = 0; i < s->nconns; i++) {
		if (!s->conns[i]->admitted)
			continue;
		if (s->conns[i]->stake)
			s->st.open_staked_connections++;
		else
			s->st.open_unstaked_connections++;
	}
	pthread_mutex_lock(&s->qos.shared->lock);
	s->st.staked_stream_load_ema = s->qos.shared->staked_load_ema;
	pthread_mutex_unlock(&s->qos.shared->lock);
	s->st.staked_throttling_enabled = (uint64_t)loaded(s);
}
