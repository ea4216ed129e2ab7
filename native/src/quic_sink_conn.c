// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One of quic-sink's ngtcp2 server connections: accepting it from a client's Initial, its TLS session
 * (client certificate required), and the stream callbacks that count transactions by Agave's rules.
 */
#define _GNU_SOURCE
#include "quic_sink_internal.h"

#include <stdlib.h>
#include <string.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

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
			if (c->s->cfg.agave_qos)
				sink_qos_stream_finished(c->s, c, c->s->now);
			else
				sink_grant_uni(c->s, c, 1);
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

void sink_grant_uni(struct kbx_quic_sink *s, struct sconn *c, uint64_t n)
{
	uint64_t left = s->cfg.max_streams_per_connection - c->uni_granted;

	if (c->uni_granted >= s->cfg.max_streams_per_connection)
		return;
	if (n > left)
		n = left;
	if (!n)
		return;
	ngtcp2_conn_extend_max_streams_uni(c->conn, n);
	c->uni_granted += n;
}

static void remember_distinct_key(struct kbx_quic_sink *s, const uint8_t *key)
{
	uint32_t i;

	for (i = 0; i < s->npeer_keys; i++)
		if (memcmp(s->peer_keys[i], key, 32) == 0)
			return;
	if (s->npeer_keys < KBX_QUIC_SINK_PEER_KEYS)
		memcpy(s->peer_keys[s->npeer_keys++], key, 32);
}

static void remember_peer_key(struct kbx_quic_sink *s, struct sconn *c, const gnutls_datum_t *der)
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
		memcpy(c->peer_key, x.data, 32);
		c->has_peer_key = 1;
		remember_distinct_key(s, x.data);
	}
	gnutls_free(x.data);
	gnutls_free(y.data);
	gnutls_x509_crt_deinit(crt);
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
		remember_peer_key(c->s, c, &peers[0]);
	}
	if (c->s->cfg.agave_qos)
		sink_qos_admit(c->s, c);
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

void sink_conn_free(struct kbx_quic_sink *s, uint32_t i)
{
	struct sconn *c = s->conns[i];

	if (c->conn)
		ngtcp2_conn_del(c->conn);
	if (c->session)
		gnutls_deinit(c->session);
	if (s->cfg.agave_qos)
		sink_qos_closed(s, c);
	if (c->established)
		s->st.connections_closed++;
	else
		s->st.handshake_failures++;
	free(c);
	s->conns[i] = s->conns[--s->nconns];
	s->st.connections_open = s->nconns;
}

static int session_init(struct kbx_quic_sink *s, struct sconn *c)
{
	int rv = gnutls_init(&c->session, GNUTLS_SERVER | GNUTLS_ENABLE_EARLY_DATA | GNUTLS_NO_END_OF_EARLY_DATA);

	if (rv < 0)
		return -1;
	if (ngtcp2_crypto_gnutls_configure_server_session(c->session) != 0)
		return -1;
	if (kbx_quic_tls_session_configure(c->session, s->cred, &s->alpn) < 0)
		return -1;
	/* Agave requires a client certificate; it is self-signed, so it is not verified against a CA */
	gnutls_certificate_server_set_request(c->session, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_ptr(c->session, &c->conn_ref);
	return 0;
}

struct sconn *sink_accept(struct kbx_quic_sink *s, const uint8_t *data, size_t len,
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
		.handshake_completed = handshake_completed_cb,
		.recv_stream_data = recv_stream_data_cb,
		.stream_open = stream_open_cb,
		.stream_close = stream_close_cb,
		.get_new_connection_id = get_new_connection_id_cb,
	};
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_cid scid;
	struct sconn *c;

	kbx_quic_common_callbacks(&cb);
	if (ngtcp2_accept(&hd, data, len) != 0)
		return NULL;
	if (s->cfg.agave_qos ? !sink_qos_accept(s, &hd, from, now) : s->nconns >= s->cfg.max_connections)
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
	/* agave_qos: no stream before the client's identity is known (sink_qos_admit grants them) */
	if (s->cfg.agave_qos)
		c->uni_granted = 0;
	else
		c->uni_granted = s->cfg.max_streams_uni < s->cfg.max_streams_per_connection
					 ? s->cfg.max_streams_uni
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
	if (s->cfg.agave_qos)
		sink_qos_opened(s);
	s->st.connections_accepted++;
	s->st.connections_open = s->nconns;
	return c;
}

int sink_find_conn(struct kbx_quic_sink *s, const uint8_t *data, size_t len)
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
