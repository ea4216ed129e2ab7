// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One of quic-flood's ngtcp2 client connections: its TLS session and handshake, the streams it opens (one
 * transaction each) and their acknowledgements, the packets it writes and reads, its close, reconnect and
 * rotation (kbx_quic.h, "Bounded memory").
 */
#define _GNU_SOURCE
#include "quic_flood_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
	struct conn *c = ref->user_data;
	return c->conn;
}

static void record_free(struct conn *c, struct tx_record *r)
{
	r->in_use = 0;
	r->next = c->free_list;
	c->free_list = r;
	c->in_flight--;
}

static int acked_stream_data_offset_cb(ngtcp2_conn *conn, int64_t stream_id, uint64_t offset, uint64_t datalen,
				       void *user_data, void *stream_user_data)
{
	struct conn *c = user_data;
	struct tx_record *r = stream_user_data;

	if (!r || !r->in_use)
		return 0;
	r->acked += (uint32_t)datalen;
	if (!r->counted && r->acked >= r->len && r->written >= r->len && r->sent_ns) {
		uint64_t now = kbx_quic_now();

		r->counted = 1;
		if (!c->conn_acked) {
			/* the server takes our transactions: the next close starts the backoff afresh */
			c->conn_acked = 1;
			c->backoff_ms = 0;
		}
		c->f->st.tx_acked++;
		c->f->st.tx_bytes_acked += r->len;
		c->tx_acked++;
		c->server->st.tx_acked++;
		quic_latency_record(c->f->latency, now - r->sent_ns);
		quic_latency_record(&c->server->st.latency, now - r->sent_ns);
	}
	return 0;
}

static int stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id, uint64_t app_error_code,
			   void *user_data, void *stream_user_data)
{
	struct conn *c = user_data;
	struct tx_record *r = stream_user_data;

	if (!r || !r->in_use)
		return 0;
	c->f->st.stream_frames_lost += ngtcp2_conn_get_stream_loss_count(conn, stream_id);
	if (r->written < r->len) {
		/* closed before it was completely written (reset by the peer): unlink from pending */
		struct tx_record **p = &c->pending_head, *prev = NULL;

		while (*p && *p != r) {
			prev = *p;
			p = &(*p)->next;
		}
		if (*p) {
			*p = r->next;
			if (c->pending_tail == r)
				c->pending_tail = prev;
			c->pending--;
		}
	}
	if (!r->counted && r->sent_ns) {
		c->f->st.tx_unacked_closed++;
		c->server->st.tx_unacked_closed++;
	}
	record_free(c, r);
	return 0;
}

static int handshake_completed_cb(ngtcp2_conn *conn, void *user_data)
{
	struct conn *c = user_data;
	struct kbx_quic_flood *f = c->f;
	struct server *s = c->server;
	uint64_t now = kbx_quic_now();

	c->state = CONN_ESTABLISHED;
	c->ever_established = 1;
	c->handshakes++;
	f->st.handshakes++;
	f->st.handshake_ns = now - c->connect_start_ns;
	if (!f->pace_start_ns)
		f->pace_start_ns = now;
	if (!s->established++) {
		/* fanout ALL: a server (back) in reach is paced from now on, no burst for the time it was away */
		if (f->cfg.fanout == KBX_QUIC_FANOUT_ALL && f->cfg.rate) {
			s->pace_start_ns = now - s->opened * 1000000000ull / f->cfg.rate;
		}
	}
	if (!s->pace_start_ns)
		s->pace_start_ns = now;
	s->st.handshakes++;
	return 0;
}

static int get_new_connection_id_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
				    void *user_data)
{
	if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	cid->datalen = cidlen;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int session_init(struct conn *c)
{
	struct kbx_quic_flood *f = c->f;
	int rv = gnutls_init(&c->session, GNUTLS_CLIENT | GNUTLS_ENABLE_EARLY_DATA | GNUTLS_NO_END_OF_EARLY_DATA);

	if (rv < 0)
		return kbx_fail(-EPROTO, "open QUIC connection", "gnutls_init: %s", gnutls_strerror(rv));
	if (ngtcp2_crypto_gnutls_configure_client_session(c->session) != 0)
		return kbx_fail(-EPROTO, "open QUIC connection", "configure the client TLS session");
	rv = kbx_quic_tls_session_configure(c->session, f->creds[c->identity], &f->alpn);
	if (rv == 0)
		rv = gnutls_server_name_set(c->session, GNUTLS_NAME_DNS, "localhost", 9);
	if (rv < 0)
		return kbx_fail(-EPROTO, "open QUIC connection", "configure the TLS session: %s", gnutls_strerror(rv));
	gnutls_session_set_ptr(c->session, &c->conn_ref);
	return 0;
}

int flood_conn_start(struct conn *c, uint64_t now)
{
	struct kbx_quic_flood *f = c->f;
	ngtcp2_path path = {
		{ (struct sockaddr *)&c->local, sizeof(c->local) },
		{ (struct sockaddr *)&c->remote, sizeof(c->remote) },
		NULL,
	};
	ngtcp2_callbacks cb = {
		.client_initial = ngtcp2_crypto_client_initial_cb,
		.handshake_completed = handshake_completed_cb,
		.acked_stream_data_offset = acked_stream_data_offset_cb,
		.stream_close = stream_close_cb,
		.recv_retry = ngtcp2_crypto_recv_retry_cb,
		.get_new_connection_id = get_new_connection_id_cb,
	};
	ngtcp2_cid dcid, scid;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	int rv;

	dcid.datalen = 16;
	scid.datalen = 16;
	gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen);
	gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen);
	ngtcp2_settings_default(&settings);
	settings.initial_ts = now;
	settings.max_tx_udp_payload_size = MAX_PACKET;
	settings.handshake_timeout = (uint64_t)f->cfg.handshake_timeout_ms * NGTCP2_MILLISECONDS;
	ngtcp2_transport_params_default(&params);
	/* 3 server streams: HTTP/3 peers (other stacks, for interop checks) refuse fewer; Agave opens none */
	params.initial_max_streams_uni = 3;
	params.initial_max_stream_data_uni = 16 * 1024;
	params.initial_max_streams_bidi = 0;
	params.initial_max_stream_data_bidi_local = 64 * 1024;
	params.initial_max_data = 1024 * 1024;
	params.max_idle_timeout = (uint64_t)f->cfg.idle_timeout_ms * NGTCP2_MILLISECONDS;

	kbx_quic_common_callbacks(&cb);
	c->conn_ref.get_conn = get_conn;
	c->conn_ref.user_data = c;
	rv = session_init(c);
	if (rv < 0)
		return rv;
	rv = ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &settings, &params,
				    NULL, c);
	if (rv != 0) {
		gnutls_deinit(c->session);
		c->session = NULL;
		return kbx_fail(-EPROTO, "open QUIC connection", "ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
	}
	ngtcp2_conn_set_tls_native_handle(c->conn, c->session);
	if (f->cfg.keep_alive_ms)
		ngtcp2_conn_set_keep_alive_timeout(c->conn, (uint64_t)f->cfg.keep_alive_ms * NGTCP2_MILLISECONDS);
	ngtcp2_connection_close_error_default(&c->last_error);
	c->state = CONN_CONNECTING;
	c->conn_streams = 0;
	c->retiring = 0;
	c->conn_acked = 0;
	c->connect_start_ns = now;
	c->icmp_refused = 0;
	c->fatal = 0;
	f->st.connect_attempts++;
	c->server->st.connect_attempts++;
	return 0;
}

/* Writes CONNECTION_CLOSE with c->last_error (socket io: sent now; xdp io: with the next TX flush). */
static void send_connection_close(struct conn *c, uint64_t now)
{
	struct kbx_quic_flood *f = c->f;
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;
	ngtcp2_ssize n;
	uint8_t *buf;

	if (ngtcp2_conn_is_in_closing_period(c->conn) || ngtcp2_conn_is_in_draining_period(c->conn))
		return;
	buf = flood_packet_buffer(f);
	if (!buf)
		return;
	ngtcp2_path_storage_zero(&ps);
	n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, buf, MAX_PACKET, &c->last_error, now);
	if (n <= 0)
		return;
	flood_packet_written(f, c, (uint32_t)n);
	if (f->cfg.io == KBX_QUIC_IO_SOCKET)
		flood_socket_flush(f, c);
}

/* Frees the ngtcp2 connection and its stream records (the port and its socket stay). */
void flood_conn_teardown(struct conn *c, uint64_t now, int send_close)
{
	struct kbx_quic_flood *f = c->f;
	uint32_t i;

	if (send_close)
		send_connection_close(c, now);
	for (i = 0; i < RECORDS_PER_CONN; i++) {
		struct tx_record *r = &c->records[i];

		if (r->in_use) {
			if (r->sent_ns && !r->counted) {
				f->st.tx_unacked_closed++;
				c->server->st.tx_unacked_closed++;
			}
			r->in_use = 0;
		}
	}
	c->free_list = NULL;
	for (i = RECORDS_PER_CONN; i-- > 0;) {
		c->records[i].next = c->free_list;
		c->free_list = &c->records[i];
	}
	c->pending_head = c->pending_tail = NULL;
	c->pending = 0;
	c->in_flight = 0;
	if (c->streams_blocked_since) {
		flood_conn_add_blocked_streams(c, now - c->streams_blocked_since);
		c->streams_blocked_since = 0;
	}
	if (c->flow_blocked_since) {
		f->st.blocked_flow_ns += now - c->flow_blocked_since;
		c->flow_blocked_since = 0;
	}
	if (c->state == CONN_ESTABLISHED)
		c->server->established--;
	c->state = CONN_WAITING;
	ngtcp2_conn_del(c->conn);
	c->conn = NULL;
	gnutls_deinit(c->session);
	c->session = NULL;
	f->st.connections_closed++;
}

void flood_conn_add_blocked_streams(struct conn *c, uint64_t ns)
{
	c->f->st.blocked_streams_ns += ns;
	c->server->st.blocked_streams_ns += ns;
}

/* Frees the connection; schedules a reconnect or records a fatal error. */
void flood_conn_close(struct conn *c, uint64_t now, const char *why, int send_close)
{
	struct kbx_quic_flood *f = c->f;
	char addr[INET_ADDRSTRLEN];

	if (!c->conn)
		return;
	flood_server_count_close(c, why, send_close);
	flood_conn_teardown(c, now, send_close);
	inet_ntop(AF_INET, &c->remote.sin_addr, addr, sizeof(addr));
	if (!c->conn_acked)
		f->st.connections_refused++;
	/* a server that took other connections of ours refused or ignored this one (e.g. Agave's
	 * per-identity or per-IP limits): retried with backoff like a closed one */
	if (!f->cfg.keep_trying && ((!c->ever_established && !f->st.handshakes) || !f->cfg.reconnect)) {
		c->state = CONN_DEAD;
		if (!c->ever_established)
			flood_fail(f, kbx_fail(-ETIMEDOUT, "connect to the QUIC server", "connection to %s:%u failed: %s%s",
					       addr, ntohs(c->remote.sin_port), why,
					       c->icmp_refused ? " (ICMP port unreachable: is quic-sink running?)" : ""));
		else
			flood_fail(f, kbx_fail(-ECONNRESET, "connect to the QUIC server", "connection to %s:%u closed: %s",
					       addr, ntohs(c->remote.sin_port), why));
		return;
	}
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 100;
	if (c->backoff_ms > f->cfg.max_backoff_ms)
		c->backoff_ms = f->cfg.max_backoff_ms;
	c->reconnect_at_ns = now + (uint64_t)c->backoff_ms * 1000000ull;
	c->state = CONN_WAITING;
}

/*
 * A retiring connection whose every stream is acknowledged: closed with NO_ERROR and replaced at once by a
 * fresh one on the same port (kbx_quic.h, "Bounded memory").
 */
void flood_conn_rotate(struct conn *c, uint64_t now)
{
	ngtcp2_connection_close_error_default(&c->last_error);
	flood_conn_teardown(c, now, 1);
	c->f->st.rotations++;
	c->state = CONN_WAITING;
	c->reconnect_at_ns = now;
}

/* Runs c's due timers; closes it when the idle or handshake timeout fired or a timer failed. */
void flood_conn_expire(struct conn *c, uint64_t now)
{
	int rv;

	if (ngtcp2_conn_get_expiry(c->conn) > now)
		return;
	rv = ngtcp2_conn_handle_expiry(c->conn, now);
	if (rv == 0)
		return;
	if (rv == NGTCP2_ERR_IDLE_CLOSE) {
		flood_conn_close(c, now, "idle timeout (no packets from the server)", 0);
	} else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
		char why[96];

		snprintf(why, sizeof(why), "handshake timed out after %u ms", c->f->cfg.handshake_timeout_ms);
		flood_conn_close(c, now, why, 0);
	} else {
		ngtcp2_connection_close_error_set_transport_error_liberr(&c->last_error, rv, NULL, 0);
		flood_conn_close(c, now, ngtcp2_strerror(rv), 1);
	}
}

/* fanout SPREAD: how far one server may run ahead of the one with the fewest streams (round-robin by batches). */
#define SPREAD_SLACK 16

static int budget_allows(struct kbx_quic_flood *f, struct conn *c, uint64_t now, uint64_t spread_floor)
{
	struct server *s = c->server;
	int own = f->cfg.fanout == KBX_QUIC_FANOUT_ALL; /* each server its own count and pacing */
	uint64_t opened = own ? s->opened : f->opened, start = own ? s->pace_start_ns : f->pace_start_ns;

	if (f->stop_sending || s->st.state != KBX_QUIC_SERVER_ACTIVE)
		return 0;
	if (f->cfg.count && opened >= f->cfg.count)
		return 0;
	if (f->cfg.rate && start) {
		uint64_t allowed = (now - start) / 1000 * f->cfg.rate / 1000000 + 1;
		if (opened >= allowed)
			return 0;
	}
	return own || spread_floor == UINT64_MAX || s->opened < spread_floor + SPREAD_SLACK;
}

void flood_open_streams(struct conn *c, uint64_t now)
{
	struct kbx_quic_flood *f = c->f;
	struct server *s = c->server;
	uint64_t spread_floor = f->cfg.fanout == KBX_QUIC_FANOUT_SPREAD ? flood_spread_floor(f, s) : 0;

	/* spread: a server that could not take streams for a while is levelled with the others, not caught up
	 * (round-robin over the servers that can take a stream, none waiting for a slow one) */
	if (spread_floor != UINT64_MAX && s->opened < spread_floor)
		s->opened = spread_floor;

	while (!c->retiring && c->pending < MAX_PENDING && c->free_list && budget_allows(f, c, now, spread_floor)) {
		struct tx_record *r = c->free_list;
		int64_t sid;
		int rv = f->cfg.streams == KBX_QUIC_STREAMS_BIDI ? ngtcp2_conn_open_bidi_stream(c->conn, &sid, r)
								   : ngtcp2_conn_open_uni_stream(c->conn, &sid, r);

		if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) {
			if (!c->streams_blocked_since)
				c->streams_blocked_since = now;
			return;
		}
		if (rv != 0)
			return;
		if (c->streams_blocked_since) {
			flood_conn_add_blocked_streams(c, now - c->streams_blocked_since);
			c->streams_blocked_since = 0;
		}
		if (f->cfg.streams == KBX_QUIC_STREAMS_BIDI)
			ngtcp2_conn_shutdown_stream_read(c->conn, sid, 0); /* nothing to read: STOP_SENDING */
		c->free_list = r->next;
		memset(r, 0, sizeof(*r));
		r->c = c;
		r->in_use = 1;
		r->stream_id = sid;
		{
			uint32_t *next_tx = f->cfg.fanout == KBX_QUIC_FANOUT_ALL ? &s->next_tx : &f->next_tx;

			r->tx_index = *next_tx;
			r->len = f->tx_lens[*next_tx];
			*next_tx = (*next_tx + 1) % f->tx_count;
		}
		r->next = NULL;
		if (c->pending_tail)
			c->pending_tail->next = r;
		else
			c->pending_head = r;
		c->pending_tail = r;
		c->pending++;
		c->in_flight++;
		f->opened++;
		s->opened++;
		if (++c->conn_streams >= f->cfg.streams_per_connection)
			c->retiring = 1;
	}
}

static void pending_pop(struct conn *c)
{
	struct tx_record *r = c->pending_head;

	c->pending_head = r->next;
	if (!c->pending_head)
		c->pending_tail = NULL;
	r->next = NULL;
	c->pending--;
}

static void record_progress(struct conn *c, struct tx_record *r, ngtcp2_ssize wdatalen, uint64_t now)
{
	struct kbx_quic_flood *f = c->f;

	if (wdatalen < 0)
		return;
	r->written += (uint32_t)wdatalen;
	if (r->written >= r->len && c->pending_head == r) {
		pending_pop(c);
		r->sent_ns = now;
		f->st.tx_sent++;
		f->st.tx_bytes_sent += r->len;
		c->server->st.tx_sent++;
		if (c->flow_blocked_since) {
			f->st.blocked_flow_ns += now - c->flow_blocked_since;
			c->flow_blocked_since = 0;
		}
	}
}

/* Writes every packet c can send now. Returns packets written, or -1 when the connection was closed. */
int flood_conn_write(struct conn *c, uint64_t now)
{
	struct kbx_quic_flood *f = c->f;
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;
	int packets = 0, skip_streams = 0;

	ngtcp2_path_storage_zero(&ps);
	for (;;) {
		struct tx_record *r = skip_streams ? NULL : c->pending_head;
		ngtcp2_vec vec;
		ngtcp2_ssize wdatalen = -1, n;
		uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
		int64_t sid = -1;
		uint8_t *buf = flood_packet_buffer(f);

		if (!buf)
			break;
		if (r) {
			vec.base = f->txs + f->tx_offsets[r->tx_index] + r->written;
			vec.len = r->len - r->written;
			sid = r->stream_id;
			flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
		}
		n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, buf, MAX_PACKET, &wdatalen, flags, sid,
					      r ? &vec : NULL, r ? 1 : 0, now);
		if (n < 0) {
			switch (n) {
			case NGTCP2_ERR_WRITE_MORE:
				record_progress(c, r, wdatalen, now);
				continue;
			case NGTCP2_ERR_STREAM_DATA_BLOCKED:
				if (!c->flow_blocked_since)
					c->flow_blocked_since = now;
				skip_streams = 1;
				continue;
			case NGTCP2_ERR_STREAM_SHUT_WR:
			case NGTCP2_ERR_STREAM_NOT_FOUND:
				if (r) {
					pending_pop(c);
					if (r->in_use)
						record_free(c, r);
				}
				continue;
			default:
				ngtcp2_connection_close_error_set_transport_error_liberr(&c->last_error, (int)n, NULL, 0);
				flood_conn_close(c, now, ngtcp2_strerror((int)n), 1);
				return -1;
			}
		}
		if (n == 0)
			break;
		if (r)
			record_progress(c, r, wdatalen, now);
		flood_packet_written(f, c, (uint32_t)n);
		packets++;
		if (packets >= 4 * OUT_BATCH)
			break;
	}
	if (f->cfg.io == KBX_QUIC_IO_SOCKET)
		flood_socket_flush(f, c);
	return packets;
}

void flood_conn_read(struct conn *c, const uint8_t *data, size_t len, uint8_t ecn, uint64_t now)
{
	struct kbx_quic_flood *f = c->f;
	ngtcp2_path path = {
		{ (struct sockaddr *)&c->local, sizeof(c->local) },
		{ (struct sockaddr *)&c->remote, sizeof(c->remote) },
		NULL,
	};
	ngtcp2_pkt_info pi = { .ecn = ecn };
	int rv;

	if (!c->conn)
		return;
	f->st.packets_received++;
	f->st.wire_bytes_received += len;
	rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, data, len, now);
	if (rv == 0)
		return;
	if (rv == NGTCP2_ERR_DRAINING) {
		ngtcp2_connection_close_error peer_error;

		ngtcp2_conn_get_connection_close_error(c->conn, &peer_error);
		f->st.last_close_error = peer_error.error_code;
		flood_conn_close(c, now,
			   c->state == CONN_ESTABLISHED
				   ? "the server closed the connection"
				   : "the server refused the handshake (wrong ALPN? it expects the one given with --alpn; "
				     "or it rejected our certificate)",
			   0);
		return;
	}
	if (rv == NGTCP2_ERR_DISCARD_PKT || rv == NGTCP2_ERR_DROP_CONN) {
		if (rv == NGTCP2_ERR_DROP_CONN)
			flood_conn_close(c, now, "stateless reset or unusable packet from the server", 0);
		return;
	}
	if (rv == NGTCP2_ERR_CRYPTO)
		ngtcp2_connection_close_error_set_transport_error_tls_alert(
			&c->last_error, ngtcp2_conn_get_tls_alert(c->conn), NULL, 0);
	else
		ngtcp2_connection_close_error_set_transport_error_liberr(&c->last_error, rv, NULL, 0);
	{
		char why[160];
		snprintf(why, sizeof(why), "receiving a packet failed: %s", ngtcp2_strerror(rv));
		flood_conn_close(c, now, why, 1);
	}
}
