// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * quic-flood's engine: N ngtcp2 client connections per server sending one transaction per stream, driven
 * by one loop (kbx_quic_flood_run) over a UDP socket per connection (quic_io_socket.c) or the caller's AF_XDP
 * socket for all of them (quic_io_xdp.c). One connection's life is in quic_flood_conn.c, the servers of the
 * fan-out and their report in quic_flood_servers.c.
 */
#define _GNU_SOURCE
#include "quic_flood_internal.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void flood_fail(struct kbx_quic_flood *f, int err)
{
	if (!f->fatal_err)
		f->fatal_err = err;
}

/* A buffer for the next packet: an out slot (socket) or a UMEM frame (xdp); NULL when none is free. */
uint8_t *flood_packet_buffer(struct kbx_quic_flood *f)
{
	if (f->cfg.io == KBX_QUIC_IO_SOCKET)
		return f->out[f->nout].data;
	return flood_xdp_buffer(f);
}

void flood_packet_written(struct kbx_quic_flood *f, struct conn *c, uint32_t len)
{
	f->st.wire_bytes_sent += len;
	if (f->cfg.io == KBX_QUIC_IO_SOCKET) {
		f->out[f->nout++].len = len;
		if (f->nout == OUT_BATCH)
			flood_socket_flush(f, c);
		return;
	}
	flood_xdp_written(f, c, len);
}

/* ---- creation ---- */

static int check_config(const struct kbx_quic_flood_config *config, const char *alpn, const uint32_t *tx_lens,
			uint32_t tx_count)
{
	uint32_t max_tx_size = config->max_tx_size ? config->max_tx_size : KBX_QUIC_MAX_TX_SIZE;
	uint32_t i;

	if (!tx_count)
		return kbx_fail(-EINVAL, "create QUIC flooder", "no transactions to send");
	for (i = 0; i < tx_count; i++)
		if (tx_lens[i] == 0 || tx_lens[i] > max_tx_size)
			return kbx_fail(-EMSGSIZE, "create QUIC flooder",
					"transaction %u has %u bytes: a transaction is 1..%u bytes", i, tx_lens[i], max_tx_size);
	if (config->connections > KBX_QUIC_MAX_CONNECTIONS)
		return kbx_fail(-EINVAL, "create QUIC flooder", "%u connections per server: at most %u",
				config->connections, KBX_QUIC_MAX_CONNECTIONS);
	if ((config->max_servers ? config->max_servers : 1) > KBX_QUIC_MAX_SERVERS)
		return kbx_fail(-EINVAL, "create QUIC flooder", "%u server slots: at most %u", config->max_servers,
				KBX_QUIC_MAX_SERVERS);
	if ((uint64_t)(config->max_servers ? config->max_servers : 1) * (config->connections ? config->connections : 1) >
	    KBX_QUIC_MAX_TOTAL_CONNECTIONS)
		return kbx_fail(-EINVAL, "create QUIC flooder", "%u servers x %u connections: at most %u connections",
				config->max_servers, config->connections, KBX_QUIC_MAX_TOTAL_CONNECTIONS);
	if (config->fanout != KBX_QUIC_FANOUT_ALL && config->fanout != KBX_QUIC_FANOUT_SPREAD)
		return kbx_fail(-EINVAL, "create QUIC flooder", "unknown fanout %u", config->fanout);
	if (config->io != KBX_QUIC_IO_SOCKET && config->io != KBX_QUIC_IO_XDP)
		return kbx_fail(-EINVAL, "create QUIC flooder", "unknown io %u", config->io);
	if (!alpn || !*alpn || strlen(alpn) > KBX_QUIC_MAX_ALPN_LEN)
		return kbx_fail(-EINVAL, "set ALPN", "ALPN must be 1..%u bytes", KBX_QUIC_MAX_ALPN_LEN);
	return 0;
}

static void apply_defaults(struct kbx_quic_flood_config *cfg)
{
	if (!cfg->connections)
		cfg->connections = 1;
	if (!cfg->idle_timeout_ms)
		cfg->idle_timeout_ms = KBX_QUIC_DEFAULT_IDLE_TIMEOUT_MS;
	if (!cfg->handshake_timeout_ms)
		cfg->handshake_timeout_ms = KBX_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	if (!cfg->max_backoff_ms)
		cfg->max_backoff_ms = KBX_QUIC_DEFAULT_MAX_BACKOFF_MS;
	if (!cfg->max_servers)
		cfg->max_servers = 1;
	if (!cfg->streams_per_connection)
		cfg->streams_per_connection = KBX_QUIC_STREAMS_PER_CONNECTION;
}

/* The transactions, copied into one buffer with their offsets. */
static int copy_transactions(struct kbx_quic_flood *f, const uint8_t *txs, const uint32_t *tx_lens, uint32_t tx_count)
{
	uint64_t total = 0;
	uint32_t i;

	for (i = 0; i < tx_count; i++)
		total += tx_lens[i];
	f->txs = malloc(total);
	f->tx_offsets = calloc(tx_count, sizeof(uint32_t));
	f->tx_lens = calloc(tx_count, sizeof(uint32_t));
	if (!f->txs || !f->tx_offsets || !f->tx_lens)
		return kbx_fail(-ENOMEM, "create QUIC flooder", "allocate");
	memcpy(f->txs, txs, total);
	total = 0;
	for (i = 0; i < tx_count; i++) {
		f->tx_offsets[i] = (uint32_t)total;
		f->tx_lens[i] = tx_lens[i];
		total += tx_lens[i];
	}
	f->tx_count = tx_count;
	return 0;
}

/* One set of certificate credentials per identity; checks the per-identity connection limit. */
static int init_credentials(struct kbx_quic_flood *f, const struct kbx_quic_identity *const *ids, uint32_t id_count)
{
	uint32_t i, limit = f->cfg.max_connections_per_identity;

	if (!id_count || id_count > KBX_QUIC_MAX_IDENTITIES)
		return kbx_fail(-EINVAL, "create QUIC flooder", "%u identities: 1..%u", id_count, KBX_QUIC_MAX_IDENTITIES);
	if (limit && f->cfg.connections > (uint64_t)limit * id_count)
		return kbx_fail(-EINVAL, "create QUIC flooder",
				"%u connections per server over %u identities exceed %u connections per identity",
				f->cfg.connections, id_count, limit);
	for (i = 0; i < id_count; i++) {
		int rv = kbx_quic_credentials(ids[i], &f->creds[i]);
		if (rv < 0)
			return rv;
		f->ncreds++;
	}
	return 0;
}

int kbx_quic_flood_create(const struct kbx_quic_flood_config *config, const char *alpn,
			  const struct kbx_quic_identity *const *ids, uint32_t id_count, const uint8_t *txs,
			  const uint32_t *tx_lens, uint32_t tx_count, struct kbx_quic_flood **out)
{
	struct kbx_quic_flood *f;
	int rv;

	*out = NULL;
	rv = check_config(config, alpn, tx_lens, tx_count);
	if (rv < 0)
		return rv;
	f = calloc(1, sizeof(*f));
	if (!f)
		return kbx_fail(-ENOMEM, "create QUIC flooder", "allocate");
	f->cfg = *config;
	apply_defaults(&f->cfg);
	f->gso = 1;
	rv = kbx_quic_alpn_init(&f->alpn, alpn);
	if (rv == 0)
		rv = copy_transactions(f, txs, tx_lens, tx_count);
	if (rv == 0)
		rv = (f->latency = calloc(1, sizeof(*f->latency))) ? 0 : kbx_fail(-ENOMEM, "create QUIC flooder", "allocate the latency histogram");
	if (rv == 0)
		rv = init_credentials(f, ids, id_count);
	if (rv == 0)
		rv = flood_servers_init(f);
	if (rv == 0 && f->cfg.io == KBX_QUIC_IO_XDP)
		rv = flood_xdp_attach(f);
	if (rv == 0)
		rv = flood_socket_reserve_ports(f);
	if (rv == 0 && f->cfg.io == KBX_QUIC_IO_SOCKET)
		f->cfg.local_port = f->conns[0].local_port;
	if (rv == 0 && f->cfg.remote_port) {
		struct kbx_quic_server_addr first = { .ip = f->cfg.remote_ip, .port = f->cfg.remote_port };
		rv = kbx_quic_flood_set_servers(f, &first, 1);
	}
	if (rv < 0) {
		kbx_quic_flood_destroy(f);
		return rv;
	}
	*out = f;
	return 0;
}

uint32_t kbx_quic_flood_local_port(const struct kbx_quic_flood *f)
{
	return f->cfg.local_port;
}

/* ---- the run loop ---- */

/* Every server's budget used up (fanout ALL: of those ever reached; a server never reached holds no one up). */
static int budget_spent(struct kbx_quic_flood *f)
{
	int reached = 0;
	uint32_t i;

	if (f->stop_sending)
		return 1;
	if (!f->cfg.count)
		return 0;
	for (i = 0; i < f->nslots; i++) {
		struct server *s = &f->servers[i];

		if (s->st.state != KBX_QUIC_SERVER_ACTIVE || !s->st.handshakes)
			continue;
		reached = 1;
		if (f->cfg.fanout == KBX_QUIC_FANOUT_ALL && s->opened < f->cfg.count)
			return 0;
	}
	if (f->cfg.fanout == KBX_QUIC_FANOUT_SPREAD)
		return f->opened >= f->cfg.count;
	return reached;
}

static int all_done(struct kbx_quic_flood *f)
{
	uint32_t i;

	if (!budget_spent(f))
		return 0;
	for (i = 0; i < f->nconns; i++) {
		struct conn *c = &f->conns[i];
		if (c->state == CONN_DEAD)
			continue;
		if (c->state == CONN_WAITING && f->stop_sending)
			continue;
		if (c->in_flight)
			return 0;
	}
	return 1;
}

/* Starts the connections whose (re)connect time has come; a negative errno when one cannot start. */
static int connect_due(struct kbx_quic_flood *f, uint64_t now)
{
	uint32_t i;

	for (i = 0; i < f->nconns; i++) {
		struct conn *c = &f->conns[i];
		if (c->state == CONN_WAITING && !c->conn && now >= c->reconnect_at_ns && !f->stop_sending &&
		    c->server->st.state == KBX_QUIC_SERVER_ACTIVE) {
			int rv = flood_conn_start(c, now);
			if (rv < 0)
				return rv;
		}
	}
	return 0;
}

static int receive_all(struct kbx_quic_flood *f, uint64_t now)
{
	int activity = 0;
	uint32_t i;

	if (f->cfg.io == KBX_QUIC_IO_XDP)
		return flood_xdp_receive(f, now);
	for (i = 0; i < f->nconns; i++)
		if (f->conns[i].conn)
			activity += flood_socket_receive(f, &f->conns[i], now);
	return activity;
}

/* Timers, new streams and output of every connection; lowers *wake to the earliest timer. */
static int service_conns(struct kbx_quic_flood *f, uint64_t now, uint64_t *wake)
{
	int activity = 0;
	uint32_t i;

	for (i = 0; i < f->nconns; i++) {
		struct conn *c = &f->conns[i];
		int rv;

		if (!c->conn)
			continue;
		flood_conn_expire(c, now);
		if (c->conn && c->icmp_refused && c->state == CONN_CONNECTING && f->cfg.keep_trying)
			flood_conn_close(c, now, "ICMP port unreachable (nothing listens there)", 0);
		if (!c->conn)
			continue;
		if (c->state == CONN_ESTABLISHED)
			flood_open_streams(c, now);
		rv = flood_conn_write(c, now);
		if (rv > 0)
			activity += rv;
		if (c->retiring && c->conn && !c->in_flight) {
			flood_conn_rotate(c, now);
			activity++;
			continue;
		}
		if (c->conn && ngtcp2_conn_get_expiry(c->conn) < *wake)
			*wake = ngtcp2_conn_get_expiry(c->conn);
	}
	flood_servers_retire(f, now);
	if (f->cfg.io == KBX_QUIC_IO_XDP) {
		flood_xdp_flush(f);
		if (f->ntx)
			activity++;
	}
	return activity;
}

/* The earliest reconnect or pacing slot before wake. */
static uint64_t next_wake(struct kbx_quic_flood *f, uint64_t wake)
{
	uint32_t i;

	for (i = 0; i < f->nconns; i++) {
		struct conn *c = &f->conns[i];
		if (c->state == CONN_WAITING && c->reconnect_at_ns < wake)
			wake = c->reconnect_at_ns;
		if (c->state == CONN_ESTABLISHED && f->cfg.rate && c->free_list && c->pending < MAX_PENDING &&
		    !f->stop_sending && !c->streams_blocked_since) {
			int own = f->cfg.fanout == KBX_QUIC_FANOUT_ALL; /* each server paced on its own */
			uint64_t start = own ? c->server->pace_start_ns : f->pace_start_ns;
			uint64_t opened = own ? c->server->opened : f->opened;
			uint64_t next = start + (opened * 1000000000ull) / f->cfg.rate;

			if (start && next < wake)
				wake = next;
		}
	}
	return wake;
}

/* Sleeps until input arrives or wake (at most 100 ms). */
static void wait_for_input(struct kbx_quic_flood *f, uint64_t now, uint64_t wake)
{
	struct pollfd pfds[KBX_QUIC_MAX_TOTAL_CONNECTIONS + 1];
	uint64_t wait = wake - now;
	struct timespec ts;
	nfds_t n = 0;
	uint32_t i;

	if (wait > 100000000ull)
		wait = 100000000ull;
	ts.tv_sec = (time_t)(wait / 1000000000ull);
	ts.tv_nsec = (long)(wait % 1000000000ull);
	if (f->cfg.io == KBX_QUIC_IO_XDP) {
		pfds[n].fd = kbx_xsk_fd(f->xsk);
		pfds[n++].events = POLLIN;
		if (f->inbox) {
			pfds[n].fd = f->inbox->wake_fd;
			pfds[n++].events = POLLIN;
		}
	} else {
		for (i = 0; i < f->nconns && n < KBX_QUIC_MAX_TOTAL_CONNECTIONS + 1; i++) {
			if (!f->conns[i].conn)
				continue;
			pfds[n].fd = f->conns[i].fd;
			pfds[n++].events = POLLIN;
		}
	}
	ppoll(pfds, n, &ts, NULL);
}

int kbx_quic_flood_run(struct kbx_quic_flood *f, uint32_t max_ms)
{
	uint64_t now = kbx_quic_now(), deadline = now + (uint64_t)max_ms * 1000000ull;

	if (f->fatal_err)
		return f->fatal_err;
	for (;;) {
		int activity, rv;
		uint64_t wake = deadline;

		rv = connect_due(f, kbx_quic_now());
		if (rv < 0)
			return f->fatal_err = rv;
		activity = receive_all(f, kbx_quic_now());
		activity += service_conns(f, kbx_quic_now(), &wake);
		if (f->fatal_err)
			return f->fatal_err;
		if (all_done(f))
			return KBX_QUIC_RUN_DONE;
		now = kbx_quic_now();
		if (now >= deadline)
			return KBX_QUIC_RUN_SLICE;
		if (activity) {
			f->last_io_ns = now;
			continue;
		}
		/* an ACK is due: poll instead of sleeping (a wakeup costs tens of µs), yielding to anything
		 * runnable here, for up to busy_poll_us after the last packet */
		if (f->cfg.busy_poll_us && f->st.tx_sent > f->st.tx_acked + f->st.tx_unacked_closed &&
		    now - f->last_io_ns < (uint64_t)f->cfg.busy_poll_us * 1000ull) {
			sched_yield();
			continue;
		}
		/* idle: sleep until a timer, a pacing slot, a reconnect or input */
		wake = next_wake(f, wake);
		if (wake > now)
			wait_for_input(f, now, wake);
	}
}

void kbx_quic_flood_stop_sending(struct kbx_quic_flood *f)
{
	f->stop_sending = 1;
}

void kbx_quic_flood_stats(struct kbx_quic_flood *f, struct kbx_quic_flood_stats *out)
{
	uint64_t now = kbx_quic_now(), smoothed = 0, established = 0;
	uint32_t i;

	f->st.cwnd = 0;
	f->st.bytes_in_flight = 0;
	f->st.pto_count = 0;
	f->st.rtt_min_ns = 0;
	f->st.connections_open = 0;
	for (i = 0; i < f->nconns; i++) {
		struct conn *c = &f->conns[i];
		ngtcp2_conn_stat cs;

		if (!c->conn || c->state != CONN_ESTABLISHED)
			continue;
		ngtcp2_conn_get_conn_stat(c->conn, &cs);
		f->st.connections_open++;
		f->st.cwnd += cs.cwnd;
		f->st.bytes_in_flight += cs.bytes_in_flight;
		f->st.pto_count += cs.pto_count;
		if (!f->st.rtt_min_ns || cs.min_rtt < f->st.rtt_min_ns)
			f->st.rtt_min_ns = cs.min_rtt;
		if (!established)
			f->st.rtt_latest_ns = cs.latest_rtt;
		smoothed += cs.smoothed_rtt;
		established++;
	}
	f->st.rtt_smoothed_ns = established ? smoothed / established : 0;
	*out = f->st;
	for (i = 0; i < f->nconns; i++) {
		struct conn *c = &f->conns[i];
		if (c->streams_blocked_since)
			out->blocked_streams_ns += now - c->streams_blocked_since;
		if (c->flow_blocked_since)
			out->blocked_flow_ns += now - c->flow_blocked_since;
	}
}

void kbx_quic_flood_take_latency(struct kbx_quic_flood *f, struct kbx_quic_latency *out)
{
	*out = *f->latency;
	memset(f->latency, 0, sizeof(*f->latency));
}

void kbx_quic_flood_destroy(struct kbx_quic_flood *f)
{
	uint32_t i;

	if (!f)
		return;
	if (f->conns) {
		uint64_t now = kbx_quic_now();
		for (i = 0; i < f->nconns; i++) {
			struct conn *c = &f->conns[i];

			if (c->conn)
				flood_conn_teardown(c, now, f->cfg.io == KBX_QUIC_IO_SOCKET || f->xsk);
			if (c->fd >= 0)
				close(c->fd);
			free(c->records);
		}
		if (f->cfg.io == KBX_QUIC_IO_XDP && f->xsk)
			flood_xdp_release(f);
	}
	for (i = 0; i < f->ncreds; i++)
		gnutls_certificate_free_credentials(f->creds[i]);
	free(f->conns);
	free(f->txs);
	free(f->tx_offsets);
	free(f->tx_lens);
	free(f->latency);
	flood_inbox_free(f);
	free(f);
}
