// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* quic-sink's engine: an ngtcp2 server on a UDP socket counting one transaction per stream (Agave rules). */
#define _GNU_SOURCE
#define KBX_QUIC_INTERNAL
#include "kbx_quic.h"

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

#define SCID_LEN 16
#define MAX_PACKET 1452
#define RX_BATCH 64
#define OUT_BATCH 64
/* the quiet time before a connection that used up its streams is closed: its last ACKs have arrived */
#define STREAM_LIMIT_QUIET_PTOS 3
#define STREAM_LIMIT_QUIET_MIN_NS (50 * NGTCP2_MILLISECONDS)

struct sconn {
	struct kbx_quic_sink *s;
	ngtcp2_crypto_conn_ref conn_ref;
	ngtcp2_conn *conn;
	gnutls_session_t session;
	struct sockaddr_in remote;
	ngtcp2_cid original_dcid; /* the client's first DCID (its Initial retransmissions carry it) */
	uint32_t serial;          /* first 4 bytes of every CID we issue */
	int established;
	int reject;               /* close with KBX_QUIC_APP_ERROR_TX_TOO_LARGE after this read */
	int unwritten;            /* read packets since the last write: answer (ACK) after the receive batch */
	uint64_t uni_granted;     /* unidirectional streams allowed so far (initial MAX_STREAMS + extensions) */
	uint64_t uni_finished;    /* of those, received up to their FIN */
	uint64_t last_rx_ns;
};

struct out_packet {
	struct sockaddr_in to;
	uint32_t len;
	uint8_t data[MAX_PACKET];
};

struct kbx_quic_sink {
	struct kbx_quic_sink_config cfg;
	char alpn[256];
	gnutls_datum_t alpn_datum;
	gnutls_certificate_credentials_t cred;
	struct kbx_quic_identity *own_id;
	int fd;
	struct sockaddr_in local;
	struct sconn **conns;
	uint32_t nconns;
	uint32_t next_serial;
	struct kbx_quic_sink_stats st;
	uint8_t last_peer_key[32]; /* Ed25519 public key of the most recent client certificate */
	int have_peer_key;
	uint8_t out[MAX_PACKET];        /* CONNECTION_CLOSE */
	struct out_packet queue[OUT_BATCH]; /* written packets, sent with one sendmmsg */
	uint32_t queued;
	uint64_t last_rx_ns;
};

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
	struct sconn *c = ref->user_data;
	return c->conn;
}

static int recv_stream_data_cb(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id, uint64_t offset,
			       const uint8_t *data, size_t datalen, void *user_data, void *stream_user_data)
{
	struct sconn *c = user_data;
	uint64_t end = offset + datalen;

	ngtcp2_conn_extend_max_stream_offset(conn, stream_id, datalen);
	ngtcp2_conn_extend_max_offset(conn, datalen);
	if (end > KBX_QUIC_MAX_TX_SIZE || ((flags & NGTCP2_STREAM_DATA_FLAG_FIN) && end == 0)) {
		if (!c->reject)
			c->s->st.rejected++;
		c->reject = 1;
		return 0;
	}
	if (flags & NGTCP2_STREAM_DATA_FLAG_FIN) {
		c->s->st.transactions++;
		c->s->st.bytes += end;
		/* ngtcp2 0.12 does not report a finished remote unidirectional stream closed: its credit
		 * comes back here (bidirectional ones in stream_close), up to the per-connection total */
		if (!ngtcp2_is_bidi_stream(stream_id)) {
			c->uni_finished++;
			if (c->uni_granted < c->s->cfg.max_streams_per_connection) {
				ngtcp2_conn_extend_max_streams_uni(conn, 1);
				c->uni_granted++;
			}
		}
	}
	return 0;
}

static int stream_open_cb(ngtcp2_conn *conn, int64_t stream_id, void *user_data)
{
	struct sconn *c = user_data;

	if (ngtcp2_is_bidi_stream(stream_id))
		c->s->st.streams_bidi++;
	else
		c->s->st.streams_uni++;
	return 0;
}

static int stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id, uint64_t app_error_code,
			   void *user_data, void *stream_user_data)
{
	/* one stream done, one more allowed: the window stays at the configured MAX_STREAMS */
	if (ngtcp2_is_bidi_stream(stream_id))
		ngtcp2_conn_extend_max_streams_bidi(conn, 1);
	return 0;
}

static void remember_peer_key(struct kbx_quic_sink *s, const gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt;
	gnutls_ecc_curve_t curve;
	gnutls_datum_t x = { 0 }, y = { 0 };

	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y) == 0 && curve == GNUTLS_ECC_CURVE_ED25519 &&
	    x.size == 32) {
		memcpy(s->last_peer_key, x.data, 32);
		s->have_peer_key = 1;
	}
	gnutls_free(x.data);
	gnutls_free(y.data);
	gnutls_x509_crt_deinit(crt);
}

int kbx_quic_sink_last_peer_key(const struct kbx_quic_sink *s, uint8_t *out32)
{
	if (!s->have_peer_key)
		return 0;
	memcpy(out32, s->last_peer_key, 32);
	return 1;
}

static int handshake_completed_cb(ngtcp2_conn *conn, void *user_data)
{
	struct sconn *c = user_data;
	unsigned int n = 0;
	const gnutls_datum_t *peers = gnutls_certificate_get_peers(c->session, &n);

	c->established = 1;
	c->s->st.handshakes++;
	if (peers && n > 0) {
		c->s->st.client_certificates++;
		remember_peer_key(c->s, &peers[0]);
	}
	return 0;
}

static int get_new_connection_id_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
				    void *user_data)
{
	struct sconn *c = user_data;

	gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen);
	memcpy(cid->data, &c->serial, 4);
	cid->datalen = cidlen;
	gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN);
	return 0;
}

static void sconn_free(struct kbx_quic_sink *s, uint32_t i)
{
	struct sconn *c = s->conns[i];

	if (c->conn)
		ngtcp2_conn_del(c->conn);
	if (c->session)
		gnutls_deinit(c->session);
	if (c->established)
		s->st.connections_closed++;
	else
		s->st.handshake_failures++;
	free(c);
	s->conns[i] = s->conns[--s->nconns];
	s->st.connections_open = s->nconns;
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
	sconn_free(s, i);
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

static int session_init(struct kbx_quic_sink *s, struct sconn *c)
{
	int rv = gnutls_init(&c->session, GNUTLS_SERVER | GNUTLS_ENABLE_EARLY_DATA | GNUTLS_NO_END_OF_EARLY_DATA);

	if (rv < 0)
		return -1;
	if (ngtcp2_crypto_gnutls_configure_server_session(c->session) != 0)
		return -1;
	rv = gnutls_priority_set_direct(c->session, kbx_quic_tls_priority, NULL);
	if (rv == 0)
		rv = gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, s->cred);
	if (rv == 0)
		rv = gnutls_alpn_set_protocols(c->session, &s->alpn_datum, 1, GNUTLS_ALPN_MANDATORY);
	if (rv < 0)
		return -1;
	/* Agave requires a client certificate; it is self-signed, so it is not verified against a CA */
	gnutls_certificate_server_set_request(c->session, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_ptr(c->session, &c->conn_ref);
	return 0;
}

static struct sconn *accept_conn(struct kbx_quic_sink *s, const uint8_t *data, size_t len,
				 const struct sockaddr_in *from, uint64_t now)
{
	ngtcp2_pkt_hd hd;
	ngtcp2_path path = {
		{ (struct sockaddr *)&s->local, sizeof(s->local) },
		{ (struct sockaddr *)from, sizeof(*from) },
		NULL,
	};
	ngtcp2_callbacks cb = {
		.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
		.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
		.handshake_completed = handshake_completed_cb,
		.encrypt = ngtcp2_crypto_encrypt_cb,
		.decrypt = ngtcp2_crypto_decrypt_cb,
		.hp_mask = ngtcp2_crypto_hp_mask_cb,
		.recv_stream_data = recv_stream_data_cb,
		.stream_open = stream_open_cb,
		.stream_close = stream_close_cb,
		.rand = kbx_quic_rand_cb,
		.get_new_connection_id = get_new_connection_id_cb,
		.update_key = ngtcp2_crypto_update_key_cb,
		.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
		.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
		.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
		.version_negotiation = ngtcp2_crypto_version_negotiation_cb,
	};
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_cid scid;
	struct sconn *c;

	if (ngtcp2_accept(&hd, data, len) != 0 || s->nconns >= s->cfg.max_connections)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->s = s;
	c->remote = *from;
	c->original_dcid = hd.dcid;
	c->serial = ++s->next_serial;
	c->conn_ref.get_conn = get_conn;
	c->conn_ref.user_data = c;
	scid.datalen = SCID_LEN;
	gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, SCID_LEN);
	memcpy(scid.data, &c->serial, 4);
	ngtcp2_settings_default(&settings);
	settings.initial_ts = now;
	settings.max_tx_udp_payload_size = MAX_PACKET;
	ngtcp2_transport_params_default(&params);
	c->uni_granted = s->cfg.max_streams_uni < s->cfg.max_streams_per_connection ? s->cfg.max_streams_uni
										     : s->cfg.max_streams_per_connection;
	params.initial_max_streams_uni = c->uni_granted;
	params.initial_max_streams_bidi = s->cfg.max_streams_bidi;
	params.initial_max_stream_data_uni = 64 * 1024;
	params.initial_max_stream_data_bidi_remote = 64 * 1024;
	params.initial_max_data = 64 * 1024 * 1024;
	params.max_idle_timeout = (uint64_t)s->cfg.idle_timeout_ms * NGTCP2_MILLISECONDS;
	params.original_dcid = hd.dcid;
	if (session_init(s, c) != 0 ||
	    ngtcp2_conn_server_new(&c->conn, &hd.scid, &scid, &path, hd.version, &cb, &settings, &params, NULL, c) != 0) {
		if (c->session)
			gnutls_deinit(c->session);
		free(c);
		return NULL;
	}
	ngtcp2_conn_set_tls_native_handle(c->conn, c->session);
	s->conns[s->nconns++] = c;
	s->st.connections_accepted++;
	s->st.connections_open = s->nconns;
	return c;
}

static int find_conn(struct kbx_quic_sink *s, const uint8_t *data, size_t len)
{
	ngtcp2_version_cid vc;
	uint32_t i, serial;

	if (ngtcp2_pkt_decode_version_cid(&vc, data, len, SCID_LEN) != 0)
		return -2;
	if (vc.dcidlen == SCID_LEN) {
		memcpy(&serial, vc.dcid, 4);
		for (i = 0; i < s->nconns; i++)
			if (s->conns[i]->serial == serial)
				return (int)i;
	}
	for (i = 0; i < s->nconns; i++) {
		ngtcp2_cid *o = &s->conns[i]->original_dcid;
		if (o->datalen == vc.dcidlen && memcmp(o->data, vc.dcid, vc.dcidlen) == 0)
			return (int)i;
	}
	return -1;
}

static void handle_datagram(struct kbx_quic_sink *s, const uint8_t *data, size_t len, const struct sockaddr_in *from,
			    uint64_t now)
{
	int i = find_conn(s, data, len);
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
		if (!accept_conn(s, data, len, from, now)) {
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
	rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, data, len, now);
	if (rv == NGTCP2_ERR_DRAINING || rv == NGTCP2_ERR_DROP_CONN) {
		sconn_free(s, (uint32_t)i);
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
	c->unwritten = 1;
	c->last_rx_ns = now;
}

int kbx_quic_sink_create(const struct kbx_quic_sink_config *config, const char *alpn,
			 const struct kbx_quic_identity *id, struct kbx_quic_sink **out)
{
	struct kbx_quic_sink *s = calloc(1, sizeof(*s));
	socklen_t len = sizeof(s->local);
	int rv, size = 8 << 20;

	*out = NULL;
	if (!s)
		return kbx_quic_fail(-ENOMEM, "allocate sink");
	s->fd = -1;
	s->cfg = *config;
	if (!s->cfg.max_streams_uni)
		s->cfg.max_streams_uni = 512;
	if (!s->cfg.max_streams_bidi)
		s->cfg.max_streams_bidi = 512;
	if (!s->cfg.idle_timeout_ms)
		s->cfg.idle_timeout_ms = 30000;
	if (!s->cfg.max_connections)
		s->cfg.max_connections = 1024;
	if (!s->cfg.max_streams_per_connection)
		s->cfg.max_streams_per_connection = KBX_QUIC_SINK_STREAMS_PER_CONNECTION;
	if (!alpn || !*alpn || strlen(alpn) > 255) {
		free(s);
		return kbx_quic_fail(-EINVAL, "ALPN must be 1..255 bytes");
	}
	snprintf(s->alpn, sizeof(s->alpn), "%s", alpn);
	s->alpn_datum.data = (unsigned char *)s->alpn;
	s->alpn_datum.size = (unsigned)strlen(s->alpn);
	s->conns = calloc(s->cfg.max_connections, sizeof(*s->conns));
	if (!s->conns) {
		free(s);
		return kbx_quic_fail(-ENOMEM, "allocate sink");
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
		rv = kbx_quic_fail(-errno, "create UDP socket: %s", strerror(errno));
		kbx_quic_sink_destroy(s);
		return rv;
	}
	setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	s->local.sin_family = AF_INET;
	s->local.sin_addr.s_addr = s->cfg.local_ip;
	s->local.sin_port = htons((uint16_t)s->cfg.local_port);
	if (bind(s->fd, (struct sockaddr *)&s->local, sizeof(s->local)) != 0) {
		char a[INET_ADDRSTRLEN];
		int err = errno;
		inet_ntop(AF_INET, &s->local.sin_addr, a, sizeof(a));
		rv = kbx_quic_fail(-err, "bind UDP %s:%u: %s", a, s->cfg.local_port, strerror(err));
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
	static __thread uint8_t bufs[RX_BATCH][2048];
	struct sockaddr_in addrs[RX_BATCH];
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iovs[RX_BATCH];
	uint64_t now = kbx_quic_now(), deadline = now + (uint64_t)max_ms * 1000000ull;

	for (;;) {
		uint64_t wake = deadline;
		int n, i;

		for (i = 0; i < RX_BATCH; i++) {
			iovs[i].iov_base = bufs[i];
			iovs[i].iov_len = sizeof(bufs[i]);
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = &iovs[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &addrs[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		}
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

			if (c->unwritten && expiry > now) {
				if (sconn_write(s, (uint32_t)i, now) < 0)
					continue;
				expiry = ngtcp2_conn_get_expiry(c->conn);
			}
			if (expiry <= now) {
				int rv = ngtcp2_conn_handle_expiry(c->conn, now);
				if (rv == NGTCP2_ERR_IDLE_CLOSE || rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
					sconn_free(s, (uint32_t)i);
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
	free(s->conns);
	free(s);
}
