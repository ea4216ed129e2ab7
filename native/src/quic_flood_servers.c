// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * quic-flood's fan-out (kbx_quic.h, kbx_quic_flood_set_servers): server slots, each with its connection
 * slots (slot i's connection k is conns[i * per_server + k], local port local_port + that index), the set
 * changed at run time (servers added get connections at once, removed ones drain and close with NO_ERROR),
 * and the per-server report taken once per interval.
 */
#define _GNU_SOURCE
#include "quic_flood_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int flood_servers_init(struct kbx_quic_flood *f)
{
	uint32_t i;

	f->nslots = f->cfg.max_servers;
	f->per_server = f->cfg.connections;
	f->nconns = f->nslots * f->per_server;
	f->conns = calloc(f->nconns, sizeof(struct conn));
	if (!f->conns)
		return kbx_fail(-ENOMEM, "create QUIC flooder", "allocate");
	for (i = 0; i < f->nconns; i++) {
		struct conn *c = &f->conns[i];

		c->f = f;
		c->index = i;
		c->server_index = i / f->per_server;
		c->server = &f->servers[c->server_index];
		c->identity = (i % f->per_server) % f->ncreds;
		c->fd = -1;
		c->state = CONN_DEAD;
	}
	return 0;
}

static int conn_records_alloc(struct conn *c)
{
	uint32_t k;

	if (!c->records) {
		c->records = calloc(RECORDS_PER_CONN, sizeof(struct tx_record));
		if (!c->records)
			return kbx_fail(-ENOMEM, "add QUIC server", "allocate stream records");
	}
	c->free_list = NULL;
	for (k = RECORDS_PER_CONN; k-- > 0;) {
		c->records[k].in_use = 0;
		c->records[k].next = c->free_list;
		c->free_list = &c->records[k];
	}
	c->in_flight = 0;
	return 0;
}

/* Gives slot i the server addr (its counters start afresh unless it is the same server coming back). */
static int activate(struct kbx_quic_flood *f, uint32_t i, const struct kbx_quic_server_addr *addr)
{
	struct server *s = &f->servers[i];
	int same = s->st.state != KBX_QUIC_SERVER_UNUSED && s->st.ip == addr->ip && s->st.port == addr->port;
	static const uint8_t zero_mac[8];
	uint32_t k;

	if (!same) {
		memset(s, 0, sizeof(*s));
		s->st.ip = addr->ip;
		s->st.port = addr->port;
		s->remote.sin_family = AF_INET;
		s->remote.sin_addr.s_addr = addr->ip;
		s->remote.sin_port = htons((uint16_t)addr->port);
	}
	memcpy(s->dst_mac, memcmp(addr->dst_mac, zero_mac, 6) ? addr->dst_mac : f->cfg.dst_mac, 6);
	s->st.state = KBX_QUIC_SERVER_ACTIVE;
	s->generation = ++f->generation;
	for (k = 0; k < f->per_server; k++) {
		struct conn *c = &f->conns[i * f->per_server + k];
		int rv;

		if (c->conn)
			continue; /* still draining from a removal: it goes on (streams resume) */
		c->remote = s->remote;
		rv = conn_records_alloc(c);
		if (rv == 0 && f->cfg.io == KBX_QUIC_IO_SOCKET)
			rv = flood_socket_connect(f, c);
		if (rv < 0)
			return rv;
		c->state = CONN_WAITING;
		c->reconnect_at_ns = 0;
		c->backoff_ms = 0;
		c->ever_established = 0;
		if (!same) {
			c->handshakes = 0;
			c->tx_acked = 0;
		}
	}
	return 0;
}

static int find_slot(struct kbx_quic_flood *f, const struct kbx_quic_server_addr *a)
{
	uint32_t i;

	for (i = 0; i < f->nslots; i++)
		if (f->servers[i].st.state != KBX_QUIC_SERVER_UNUSED && f->servers[i].st.ip == a->ip &&
		    f->servers[i].st.port == a->port)
			return (int)i;
	return -1;
}

/* A slot for a new server: never used, else the one removed longest ago; -1 when none. */
static int free_slot(struct kbx_quic_flood *f, const uint8_t *taken)
{
	int best = -1;
	uint32_t i;

	for (i = 0; i < f->nslots; i++) {
		struct server *s = &f->servers[i];

		if (taken[i])
			continue;
		if (s->st.state == KBX_QUIC_SERVER_UNUSED)
			return (int)i;
		if (s->st.state == KBX_QUIC_SERVER_REMOVED && (best < 0 || s->generation < f->servers[best].generation))
			best = (int)i;
	}
	return best;
}

int kbx_quic_flood_set_servers(struct kbx_quic_flood *f, const struct kbx_quic_server_addr *addrs, uint32_t n)
{
	uint8_t wanted[KBX_QUIC_MAX_SERVERS] = { 0 };
	int slot_of[KBX_QUIC_MAX_SERVERS];
	uint32_t i, j;

	if (n > f->nslots)
		return kbx_fail(-ENOSPC, "set QUIC servers", "%u servers: this flooder has %u server slots", n, f->nslots);
	for (i = 0; i < n; i++) {
		if (!addrs[i].ip || !addrs[i].port || addrs[i].port > 65535)
			return kbx_fail(-EINVAL, "set QUIC servers", "server %u: no address or port", i);
		for (j = 0; j < i; j++)
			if (addrs[j].ip == addrs[i].ip && addrs[j].port == addrs[i].port)
				return kbx_fail(-EINVAL, "set QUIC servers", "server %u is given twice", i);
		slot_of[i] = find_slot(f, &addrs[i]);
		if (slot_of[i] >= 0)
			wanted[slot_of[i]] = 1;
	}
	/* plan the new servers' slots first, so that running out changes nothing */
	for (i = 0; i < n; i++) {
		if (slot_of[i] >= 0)
			continue;
		slot_of[i] = free_slot(f, wanted);
		if (slot_of[i] < 0)
			return kbx_fail(-ENOSPC, "set QUIC servers",
					"no free server slot (%u slots, the removed servers still draining)", f->nslots);
		wanted[slot_of[i]] = 1;
	}
	for (i = 0; i < f->nslots; i++)
		if (!wanted[i] && f->servers[i].st.state == KBX_QUIC_SERVER_ACTIVE)
			f->servers[i].st.state = KBX_QUIC_SERVER_REMOVING;
	for (i = 0; i < n; i++) {
		int rv = activate(f, (uint32_t)slot_of[i], &addrs[i]);
		if (rv < 0)
			return rv;
	}
	return 0;
}

void flood_servers_retire(struct kbx_quic_flood *f, uint64_t now)
{
	uint32_t i, k;

	for (i = 0; i < f->nslots; i++) {
		struct server *s = &f->servers[i];
		int left = 0;

		if (s->st.state != KBX_QUIC_SERVER_REMOVING)
			continue;
		for (k = 0; k < f->per_server; k++) {
			struct conn *c = &f->conns[i * f->per_server + k];

			if (c->conn && !c->in_flight) {
				ngtcp2_connection_close_error_default(&c->last_error);
				flood_conn_teardown(c, now, 1);
			}
			if (c->conn) {
				left = 1;
				continue;
			}
			c->state = CONN_DEAD;
		}
		if (left)
			continue;
		s->st.state = KBX_QUIC_SERVER_REMOVED;
		for (k = 0; k < f->per_server; k++) {
			struct conn *c = &f->conns[i * f->per_server + k];
			free(c->records);
			c->records = NULL;
			c->free_list = NULL;
		}
	}
}

/* A connection of the server that could open a stream now (established, credit and records left). */
static int takes_streams(struct kbx_quic_flood *f, uint32_t slot)
{
	uint32_t k;

	for (k = 0; k < f->per_server; k++) {
		const struct conn *c = &f->conns[slot * f->per_server + k];
		if (c->state == CONN_ESTABLISHED && !c->retiring && !c->streams_blocked_since && c->free_list &&
		    c->pending < MAX_PENDING)
			return 1;
	}
	return 0;
}

uint64_t flood_spread_floor(struct kbx_quic_flood *f, const struct server *except)
{
	uint64_t floor = UINT64_MAX;
	uint32_t i;

	for (i = 0; i < f->nslots; i++) {
		struct server *s = &f->servers[i];
		if (s != except && s->st.state == KBX_QUIC_SERVER_ACTIVE && s->opened < floor && takes_streams(f, i))
			floor = s->opened;
	}
	return floor;
}

void flood_server_close_record(struct conn *c, uint64_t code, const char *reason)
{
	struct kbx_quic_server_stats *st = &c->server->st;
	uint32_t i;

	st->connections_closed++;
	for (i = 0; i < KBX_QUIC_SERVER_CLOSES; i++) {
		struct kbx_quic_close_record *r = &st->closes[i];

		if (r->count && (r->code != code || strncmp(r->reason, reason, sizeof(r->reason) - 1) != 0))
			continue;
		if (!r->count) {
			r->code = code;
			snprintf(r->reason, sizeof(r->reason), "%s", reason);
		}
		r->count++;
		return;
	}
	st->closes_dropped++;
}

int kbx_quic_flood_take_servers(struct kbx_quic_flood *f, struct kbx_quic_server_stats *servers, uint32_t cap,
				struct kbx_quic_conn_info *conns, uint32_t conns_cap, uint32_t *conn_count)
{
	uint64_t now = kbx_quic_now();
	uint32_t i, k, n = 0, nc = 0;

	for (i = 0; i < f->nslots && n < cap; i++) {
		struct server *s = &f->servers[i];

		if (s->st.state == KBX_QUIC_SERVER_UNUSED)
			continue;
		servers[n] = s->st;
		servers[n].connections_open = s->established;
		for (k = 0; k < f->per_server; k++) {
			struct conn *c = &f->conns[i * f->per_server + k];

			if (c->streams_blocked_since)
				servers[n].blocked_streams_ns += now - c->streams_blocked_since;
			if (nc < conns_cap && (c->conn || c->state != CONN_DEAD || c->handshakes)) {
				conns[nc].server = n;
				conns[nc].identity = c->identity;
				conns[nc].state = c->state;
				conns[nc].local_port = c->local_port;
				conns[nc].handshakes = c->handshakes;
				conns[nc].tx_acked = c->tx_acked;
				nc++;
			}
		}
		memset(&s->st.latency, 0, sizeof(s->st.latency));
		n++;
	}
	*conn_count = nc;
	return (int)n;
}

/* Counts a close for the server's report: the server's CONNECTION_CLOSE (code, reason) when it sent one, else ours. */
void flood_server_count_close(struct conn *c, const char *why, int sent_by_us)
{
	ngtcp2_connection_close_error received;
	char reason[KBX_QUIC_CLOSE_REASON_LEN];
	uint64_t code = c->last_error.error_code;

	if (!sent_by_us) {
		ngtcp2_conn_get_connection_close_error(c->conn, &received);
		code = received.error_code;
		if (received.reasonlen) {
			snprintf(reason, sizeof(reason), "%s%s: %.*s", why,
				 received.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION ? " (application error)" : "",
				 (int)received.reasonlen, (const char *)received.reason);
			flood_server_close_record(c, code, reason);
			return;
		}
		if (received.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION) {
			snprintf(reason, sizeof(reason), "%s (application error)", why);
			flood_server_close_record(c, code, reason);
			return;
		}
	}
	flood_server_close_record(c, code, why);
}
