// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* quic-sink's engine: an ngtcp2 server on a UDP socket counting one transaction per stream (Agave rules). */
#define _GNU_SOURCE
#include "quic_sink_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

int kbx_quic_sink_last_peer_key(const struct kbx_quic_sink *s, uint8_t *out32)
{
	if (!s->have_peer_key)
		return 0;
	memcpy(out32, s->last_peer_key, 32);
	return 1;
}

int kbx_quic_sink_peer_keys(const struct kbx_quic_sink *s, uint8_t (*out)[32], uint32_t cap)
{
	uint32_t n = s->npeer_keys < cap ? s->npeer_keys : cap;

	memcpy(out, s->peer_keys, (size_t)n * 32);
	return (int)n;
}

static void flush_queue(struct kbx_quic_sink *s)
{
	struct mmsghdr msgs[OUT_BATCH];
	struct iovec iovs[OUT_BATCH];
	uint32_t i, done = 0;

	memset(msgs, 0, sizeof(struct mmsghdr) * s->queued);
	for (i = 0; i < s->queued; i++) {
		iovs[i].iov_base = s->queue[i].data;
		iovs[i].iov_len = s->queue[i].len;
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &s->queue[i].to;
		msgs[i].msg_hdr.msg_namelen = sizeof(s->queue[i].to);
	}
	while (done < s->queued) {
		int n = sendmmsg(s->fd, msgs + done, s->queued - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			done++; /* skip the datagram that failed (e.g. ICMP-refused peer) */
			continue;
		}
		s->st.packets_sent += (uint64_t)n;
		done += (uint32_t)n;
	}
	s->queued = 0;
}

/* The buffer for the next packet (sends the queue first when it is full). */
static uint8_t *queue_slot(struct kbx_quic_sink *s)
{
	if (s->queued == OUT_BATCH)
		flush_queue(s);
	return s->queue[s->queued].data;
}

static void queue_packet(struct kbx_quic_sink *s, struct sconn *c, size_t len)
{
	s->queue[s->queued].to = c->remote;
	s->queue[s->queued].len = (uint32_t)len;
	s->queued++;
}

static void send_packet(struct kbx_quic_sink *s, struct sconn *c, const uint8_t *data, size_t len)
{
	memcpy(queue_slot(s), data, len);
	queue_packet(s, c, len);
}

static void close_with_error(struct kbx_quic_sink *s, uint32_t i, uint64_t now, int app, uint64_t code, int liberr)
{
	struct sconn *c = s->conns[i];
	ngtcp2_connection_close_error ccerr;
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;
	ngtcp2_ssize n;

	ngtcp2_connection_close_error_default(&ccerr);
	if (app)
		ngtcp2_connection_close_error_set_application_error(&ccerr, code, NULL, 0);
	else if (liberr == NGTCP2_ERR_CRYPTO)
		ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, ngtcp2_conn_get_tls_alert(c->conn),
									    NULL, 0);
	else
		ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, liberr, NULL, 0);
	if (!ngtcp2_conn_is_in_closing_period(c->conn) && !ngtcp2_conn_is_in_draining_period(c->conn)) {
		ngtcp2_path_storage_zero(&ps);
		n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, s->out, MAX_PACKET, &ccerr, now);
		if (n > 0)
			send_packet(s, c, s->out, (size_t)n);
	}
	sink_conn_free(s, i);
}

/* Writes what the connection has to send; returns -1 when it had to be closed. */
static int sconn_write(struct kbx_quic_sink *s, uint32_t i, uint64_t now)
{
	struct sconn *c = s->conns[i];
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;

	c->unwritten = 0;
	ngtcp2_path_storage_zero(&ps);
	for (;;) {
		ngtcp2_ssize n = ngtcp2_conn_write_pkt(c->conn, &ps.path, &pi, queue_slot(s), MAX_PACKET, now);
		if (n < 0) {
			close_with_error(s, i, now, 0, 0, (int)n);
			return -1;
		}
		if (n == 0)
			return 0;
		queue_packet(s, c, (size_t)n);
	}
}

static void handle_datagram(struct kbx_quic_sink *s, const uint8_t *data, size_t len, const struct sockaddr_in *from,
			    uint64_t now)
{
	int i = sink_find_conn(s, data, len);
	struct sconn *c;
	ngtcp2_path path;
	ngtcp2_pkt_info pi = { 0 };
	int rv;

	s->st.packets_received++;
	if (i == -2) {
		s->st.packets_dropped++;
		return;
	}
	if (i < 0) {
		if (!sink_accept(s, data, len, from, now)) {
			s->st.packets_dropped++;
			return;
		}
		i = (int)s->nconns - 1;
	}
	c = s->conns[i];
	path.local.addr = (struct sockaddr *)&s->local;
	path.local.addrlen = sizeof(s->local);
	path.remote.addr = (struct sockaddr *)from;
	path.remote.addrlen = sizeof(*from);
	path.user_data = NULL;
	s->now = now;
	rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, data, len, now);
	if (rv == NGTCP2_ERR_DRAINING || rv == NGTCP2_ERR_DROP_CONN) {
		sink_conn_free(s, (uint32_t)i);
		return;
	}
	if (rv != 0 && rv != NGTCP2_ERR_DISCARD_PKT) {
		close_with_error(s, (uint32_t)i, now, 0, 0, rv);
		return;
	}
	if (c->reject) {
		close_with_error(s, (uint32_t)i, now, 1, KBX_QUIC_APP_ERROR_TX_TOO_LARGE, 0);
		return;
	}
	if (c->too_many) {
		close_with_error(s, (uint32_t)i, now, 1, KBX_QUIC_APP_ERROR_TOO_MANY, 0);
		return;
	}
	c->unwritten = 1;
	c->last_rx_ns = now;
}

int kbx_quic_sink_create(const struct kbx_quic_sink_config *config, const char *alpn,
			 const struct kbx_quic_identity *id, struct kbx_quic_sink **out)
{
	struct kbx_quic_sink *s = calloc(1, sizeof(*s));
	socklen_t len = sizeof(s->local);
	int rv, size = 8 << 20, one = 1;

	*out = NULL;
	if (!s)
		return kbx_fail(-ENOMEM, "create QUIC sink", "allocate");
	s->fd = -1;
	s->cfg = *config;
	if (!s->cfg.max_streams_uni)
		s->cfg.max_streams_uni = KBX_QUIC_SINK_DEFAULT_MAX_STREAMS;
	if (!s->cfg.max_streams_bidi)
		s->cfg.max_streams_bidi = KBX_QUIC_SINK_DEFAULT_MAX_STREAMS;
	if (!s->cfg.idle_timeout_ms)
		s->cfg.idle_timeout_ms = KBX_QUIC_DEFAULT_IDLE_TIMEOUT_MS;
	if (!s->cfg.max_connections)
		s->cfg.max_connections = KBX_QUIC_SINK_DEFAULT_MAX_CONNECTIONS;
	if (!s->cfg.max_streams_per_connection)
		s->cfg.max_streams_per_connection = KBX_QUIC_SINK_STREAMS_PER_CONNECTION;
	if (!s->cfg.max_streams_per_ms)
		s->cfg.max_streams_per_ms = KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS;
	if (!s->cfg.max_connections_per_ipaddr_per_min)
		s->cfg.max_connections_per_ipaddr_per_min = KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN;
	if (s->cfg.agave_qos && !config->idle_timeout_ms)
		s->cfg.idle_timeout_ms = KBX_QUIC_QOS_IDLE_TIMEOUT_MS;
	rv = kbx_quic_alpn_init(&s->alpn, alpn);
	if (rv < 0) {
		free(s);
		return rv;
	}
	s->conns = calloc(s->cfg.max_connections, sizeof(*s->conns));
	if (!s->conns) {
		free(s);
		return kbx_fail(-ENOMEM, "create QUIC sink", "allocate");
	}
	if (s->cfg.agave_qos) {
		rv = sink_qos_init(s);
		if (rv < 0) {
			kbx_quic_sink_destroy(s);
			return rv;
		}
	}
	if (!id) {
		rv = kbx_quic_identity_create(NULL, &s->own_id);
		if (rv < 0) {
			kbx_quic_sink_destroy(s);
			return rv;
		}
		id = s->own_id;
	}
	rv = kbx_quic_credentials(id, &s->cred);
	if (rv < 0) {
		kbx_quic_sink_destroy(s);
		return rv;
	}
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rv = kbx_fail(-errno, "create UDP socket", "for the QUIC sink");
		kbx_quic_sink_destroy(s);
		return rv;
	}
	setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (s->cfg.reuse_port && setsockopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
		rv = kbx_fail(-errno, "set SO_REUSEPORT", "on the QUIC sink's UDP socket");
		kbx_quic_sink_destroy(s);
		return rv;
	}
	s->local.sin_family = AF_INET;
	s->local.sin_addr.s_addr = s->cfg.local_ip;
	s->local.sin_port = htons((uint16_t)s->cfg.local_port);
	if (bind(s->fd, (struct sockaddr *)&s->local, sizeof(s->local)) != 0) {
		char a[INET_ADDRSTRLEN];
		int err = errno;
		inet_ntop(AF_INET, &s->local.sin_addr, a, sizeof(a));
		rv = kbx_fail(-err, "bind UDP socket", "%s:%u", a, s->cfg.local_port);
		kbx_quic_sink_destroy(s);
		return rv;
	}
	getsockname(s->fd, (struct sockaddr *)&s->local, &len);
	*out = s;
	return 0;
}

uint32_t kbx_quic_sink_port(const struct kbx_quic_sink *s)
{
	return ntohs(s->local.sin_port);
}

/* The connection has received every stream it will ever be granted (see kbx_quic.h, "Bounded memory"). */
static int stream_limit_reached(const struct kbx_quic_sink *s, const struct sconn *c)
{
	return c->established && c->uni_granted >= s->cfg.max_streams_per_connection &&
	       c->uni_finished >= c->uni_granted;
}

static uint64_t stream_limit_close_at(const struct sconn *c)
{
	uint64_t quiet = STREAM_LIMIT_QUIET_PTOS * ngtcp2_conn_get_pto(c->conn);

	return c->last_rx_ns + (quiet > STREAM_LIMIT_QUIET_MIN_NS ? quiet : STREAM_LIMIT_QUIET_MIN_NS);
}

int kbx_quic_sink_run(struct kbx_quic_sink *s, uint32_t max_ms)
{
	static __thread uint8_t bufs[RX_BATCH][KBX_QUIC_RX_BUFFER];
	struct sockaddr_in addrs[RX_BATCH];
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iovs[RX_BATCH];
	uint64_t now = kbx_quic_now(), deadline = now + (uint64_t)max_ms * 1000000ull;

	for (;;) {
		uint64_t wake = deadline;
		int n, i;

		kbx_quic_recv_batch_prepare(msgs, iovs, bufs, addrs, RX_BATCH);
		n = recvmmsg(s->fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
		now = kbx_quic_now();
		for (i = 0; i < n; i++)
			handle_datagram(s, bufs[i], msgs[i].msg_len, &addrs[i], now);
		if (n > 0)
			s->last_rx_ns = now;
		/* one answer per connection per receive batch: its ACK covers every packet of the batch */
		for (i = (int)s->nconns - 1; i >= 0; i--) {
			struct sconn *c = s->conns[i];
			ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(c->conn);

			if (s->cfg.agave_qos && sink_qos_refill(s, c, now, &wake))
				c->unwritten = 1;
			if (c->unwritten && expiry > now) {
				if (sconn_write(s, (uint32_t)i, now) < 0)
					continue;
				expiry = ngtcp2_conn_get_expiry(c->conn);
			}
			if (expiry <= now) {
				int rv = ngtcp2_conn_handle_expiry(c->conn, now);
				if (rv == NGTCP2_ERR_IDLE_CLOSE || rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
					sink_conn_free(s, (uint32_t)i);
					continue;
				}
				if (rv != 0) {
					close_with_error(s, (uint32_t)i, now, 0, 0, rv);
					continue;
				}
				if (sconn_write(s, (uint32_t)i, now) < 0)
					continue;
			}
			if (stream_limit_reached(s, c)) {
				uint64_t close_at = stream_limit_close_at(c);
				if (close_at <= now) {
					s->st.connections_stream_limited++;
					close_with_error(s, (uint32_t)i, now, 1, KBX_QUIC_APP_ERROR_STREAM_LIMIT, 0);
					continue;
				}
				if (close_at < wake)
					wake = close_at;
			}
			expiry = ngtcp2_conn_get_expiry(c->conn);
			if (expiry < wake)
				wake = expiry;
		}
		flush_queue(s);
		now = kbx_quic_now();
		if (now >= deadline)
			return 0;
		if (n > 0)
			continue;
		if (s->cfg.busy_poll_us && s->nconns && now - s->last_rx_ns < (uint64_t)s->cfg.busy_poll_us * 1000ull) {
			sched_yield();
			continue;
		}
		if (wake > now) {
			struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
			uint64_t wait = wake - now;
			struct timespec ts = { (time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull) };
			ppoll(&pfd, 1, &ts, NULL);
		}
	}
}

void kbx_quic_sink_stats(struct kbx_quic_sink *s, struct kbx_quic_sink_stats *out)
{
	s->st.connections_open = s->nconns;
	if (s->cfg.agave_qos)
		sink_qos_stats(s);
	*out = s->st;
}

void kbx_quic_sink_destroy(struct kbx_quic_sink *s)
{
	if (!s)
		return;
	while (s->nconns)
		close_with_error(s, s->nconns - 1, kbx_quic_now(), 1, 0, 0);
	if (s->fd >= 0)
		flush_queue(s);
	if (s->fd >= 0)
		close(s->fd);
	if (s->cred)
		gnutls_certificate_free_credentials(s->cred);
	kbx_quic_identity_destroy(s->own_id);
	sink_qos_free(s);
	free(s->conns);
	free(s);
}
