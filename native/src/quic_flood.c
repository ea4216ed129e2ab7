// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * quic-flood's engine: N ngtcp2 client connections sending one transaction per stream, driven by one
 * loop (kbx_quic_flood_run) over a UDP socket per connection or one AF_XDP socket for all of them.
 */
#define _GNU_SOURCE
#define KBX_QUIC_INTERNAL
#include "kbx_quic.h"
#include "kbx_xsk.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
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

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define MAX_PACKET 1452          /* largest QUIC datagram we write (fits a 1500-byte MTU) */
#define HEADERS_LEN 42           /* Ethernet + IPv4 + UDP */
#define OUT_BATCH 64
#define RX_BATCH 64
#define RECORDS_PER_CONN 8192
#define MAX_PENDING 256          /* streams opened and not yet written, per connection */
/* send->ack latency histogram: exact below 1024 ns, then 128 sub-buckets per power of two (< 0.8% wide) */
#define LAT_EXACT 1024u
#define LAT_SUB_BITS 7
#define LAT_BUCKETS (LAT_EXACT + (64u - 10u) * (1u << LAT_SUB_BITS))
_Static_assert(LAT_BUCKETS + 2 <= KBX_QUIC_LATENCY_PAIRS_MAX, "latency pairs buffer too small");

enum conn_state { CONN_WAITING = 0, CONN_CONNECTING, CONN_ESTABLISHED, CONN_DEAD };

struct conn;

struct tx_record {
	struct conn *c;
	int64_t stream_id;
	uint64_t sent_ns;
	uint32_t tx_index;
	uint32_t len;
	uint32_t written;
	uint32_t acked;
	uint32_t in_use;
	uint32_t counted; /* acked already counted */
	struct tx_record *next; /* pending list or free list */
};

struct conn {
	struct kbx_quic_flood *f;
	uint32_t index;
	ngtcp2_crypto_conn_ref conn_ref;
	ngtcp2_conn *conn;
	gnutls_session_t session;
	int fd;          /* socket io: connected UDP socket; xdp io: a bound placeholder reserving the port */
	uint16_t local_port;
	struct sockaddr_in local, remote;
	enum conn_state state;
	int ever_established;
	uint64_t connect_start_ns;
	uint64_t reconnect_at_ns;
	uint32_t backoff_ms;
	int icmp_refused;
	struct tx_record *records;
	struct tx_record *free_list;
	struct tx_record *pending_head, *pending_tail;
	uint32_t pending;
	uint32_t in_flight; /* records in use */
	uint64_t streams_blocked_since;
	uint64_t flow_blocked_since;
	ngtcp2_connection_close_error last_error;
	int fatal;
	uint64_t conn_streams; /* streams opened on this ngtcp2 connection */
	int retiring;          /* streams_per_connection reached: rotate once every stream is acked */
};

struct out_packet {
	uint32_t len;
	uint8_t data[MAX_PACKET];
};

struct kbx_quic_flood {
	struct kbx_quic_flood_config cfg;
	char alpn[256];
	gnutls_datum_t alpn_datum;
	gnutls_certificate_credentials_t cred;
	uint8_t *txs;
	uint32_t *tx_offsets;
	uint32_t *tx_lens;
	uint32_t tx_count;
	uint32_t next_tx;
	struct conn *conns;
	uint32_t nconns;
	uint64_t opened;         /* streams opened overall (rate/count budget) */
	uint64_t pace_start_ns;
	int stop_sending;
	struct kbx_quic_flood_stats st;
	uint64_t *lat_counts;     /* LAT_BUCKETS */
	uint64_t lat_n, lat_min, lat_max;
	uint64_t last_io_ns;      /* last packet written or received (busy polling) */
	int gso;
	struct out_packet out[OUT_BATCH];
	uint32_t nout;
	/* xdp io */
	struct kbx_xsk *xsk;
	struct kbx_umem *umem;
	struct kbx_xsk *own_xsk;
	struct kbx_umem *own_umem;
	uint8_t *area;
	uint32_t frame_size;
	struct kbx_desc tx_descs[OUT_BATCH * 2];
	uint32_t ntx;          /* descriptors filled and not yet submitted */
	struct kbx_desc spare[OUT_BATCH];
	uint32_t nspare;       /* allocated frames ready to be written */
	struct kbx_desc rx_descs[RX_BATCH];
	uint32_t rx_held;
	uint16_t ip_id;
	int fatal_err;
};

static int conn_start(struct conn *c, uint64_t now);
static void conn_close(struct conn *c, uint64_t now, const char *why, int send_close);
static uint8_t *packet_buffer(struct kbx_quic_flood *f);
static void packet_written(struct kbx_quic_flood *f, struct conn *c, uint32_t len);
static void socket_flush(struct kbx_quic_flood *f, struct conn *c);

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

static uint32_t latency_bucket(uint64_t ns)
{
	uint32_t e;

	if (ns < LAT_EXACT)
		return (uint32_t)ns;
	e = 63u - (uint32_t)__builtin_clzll(ns); /* >= 10 */
	return LAT_EXACT + (e - 10u) * (1u << LAT_SUB_BITS) +
	       (uint32_t)((ns >> (e - LAT_SUB_BITS)) & ((1u << LAT_SUB_BITS) - 1));
}

/* The middle of a bucket's range. */
static uint64_t latency_bucket_value(uint32_t b)
{
	uint32_t e, sub;

	if (b < LAT_EXACT)
		return b;
	b -= LAT_EXACT;
	e = b / (1u << LAT_SUB_BITS) + 10u;
	sub = b % (1u << LAT_SUB_BITS);
	return (1ull << e) + ((uint64_t)sub << (e - LAT_SUB_BITS)) + (1ull << (e - LAT_SUB_BITS)) / 2;
}

static void latency_record(struct kbx_quic_flood *f, uint64_t ns)
{
	f->lat_counts[latency_bucket(ns)]++;
	if (!f->lat_n || ns < f->lat_min)
		f->lat_min = ns;
	if (ns > f->lat_max)
		f->lat_max = ns;
	f->lat_n++;
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
		c->f->st.tx_acked++;
		c->f->st.tx_bytes_acked += r->len;
		latency_record(c->f, now - r->sent_ns);
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
	if (!r->counted && r->sent_ns)
		c->f->st.tx_unacked_closed++;
	record_free(c, r);
	return 0;
}

static int handshake_completed_cb(ngtcp2_conn *conn, void *user_data)
{
	struct conn *c = user_data;
	uint64_t now = kbx_quic_now();

	c->state = CONN_ESTABLISHED;
	c->ever_established = 1;
	c->backoff_ms = 0;
	c->f->st.handshakes++;
	c->f->st.handshake_ns = now - c->connect_start_ns;
	if (!c->f->pace_start_ns)
		c->f->pace_start_ns = now;
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
		return kbx_quic_fail(-EPROTO, "gnutls_init: %s", gnutls_strerror(rv));
	if (ngtcp2_crypto_gnutls_configure_client_session(c->session) != 0)
		return kbx_quic_fail(-EPROTO, "configure QUIC client TLS session");
	rv = gnutls_priority_set_direct(c->session, kbx_quic_tls_priority, NULL);
	if (rv == 0)
		rv = gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, f->cred);
	if (rv == 0)
		rv = gnutls_alpn_set_protocols(c->session, &f->alpn_datum, 1, GNUTLS_ALPN_MANDATORY);
	if (rv == 0)
		rv = gnutls_server_name_set(c->session, GNUTLS_NAME_DNS, "localhost", 9);
	if (rv < 0)
		return kbx_quic_fail(-EPROTO, "configure TLS session: %s", gnutls_strerror(rv));
	gnutls_session_set_ptr(c->session, &c->conn_ref);
	return 0;
}

static int conn_start(struct conn *c, uint64_t now)
{
	struct kbx_quic_flood *f = c->f;
	ngtcp2_path path = {
		{ (struct sockaddr *)&c->local, sizeof(c->local) },
		{ (struct sockaddr *)&c->remote, sizeof(c->remote) },
		NULL,
	};
	ngtcp2_callbacks cb = {
		.client_initial = ngtcp2_crypto_client_initial_cb,
		.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
		.handshake_completed = handshake_completed_cb,
		.encrypt = ngtcp2_crypto_encrypt_cb,
		.decrypt = ngtcp2_crypto_decrypt_cb,
		.hp_mask = ngtcp2_crypto_hp_mask_cb,
		.acked_stream_data_offset = acked_stream_data_offset_cb,
		.stream_close = stream_close_cb,
		.recv_retry = ngtcp2_crypto_recv_retry_cb,
		.rand = kbx_quic_rand_cb,
		.get_new_connection_id = get_new_connection_id_cb,
		.update_key = ngtcp2_crypto_update_key_cb,
		.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
		.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
		.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
		.version_negotiation = ngtcp2_crypto_version_negotiation_cb,
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
		return kbx_quic_fail(-EPROTO, "ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
	}
	ngtcp2_conn_set_tls_native_handle(c->conn, c->session);
	if (f->cfg.keep_alive_ms)
		ngtcp2_conn_set_keep_alive_timeout(c->conn, (uint64_t)f->cfg.keep_alive_ms * NGTCP2_MILLISECONDS);
	ngtcp2_connection_close_error_default(&c->last_error);
	c->state = CONN_CONNECTING;
	c->conn_streams = 0;
	c->retiring = 0;
	c->connect_start_ns = now;
	c->icmp_refused = 0;
	c->fatal = 0;
	f->st.connect_attempts++;
	return 0;
}

static void fail_flood(struct kbx_quic_flood *f, int err)
{
	if (!f->fatal_err)
		f->fatal_err = err;
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
	buf = packet_buffer(f);
	if (!buf)
		return;
	ngtcp2_path_storage_zero(&ps);
	n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, buf, MAX_PACKET, &c->last_error, now);
	if (n <= 0)
		return;
	packet_written(f, c, (uint32_t)n);
	if (f->cfg.io == KBX_QUIC_IO_SOCKET)
		socket_flush(f, c);
}

/* Frees the ngtcp2 connection and its stream records (the port and its socket stay). */
static void conn_teardown(struct conn *c, uint64_t now, int send_close)
{
	struct kbx_quic_flood *f = c->f;
	uint32_t i;

	if (send_close)
		send_connection_close(c, now);
	for (i = 0; i < RECORDS_PER_CONN; i++) {
		struct tx_record *r = &c->records[i];

		if (r->in_use) {
			if (r->sent_ns && !r->counted)
				f->st.tx_unacked_closed++;
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
		f->st.blocked_streams_ns += now - c->streams_blocked_since;
		c->streams_blocked_since = 0;
	}
	if (c->flow_blocked_since) {
		f->st.blocked_flow_ns += now - c->flow_blocked_since;
		c->flow_blocked_since = 0;
	}
	ngtcp2_conn_del(c->conn);
	c->conn = NULL;
	gnutls_deinit(c->session);
	c->session = NULL;
	f->st.connections_closed++;
}

/* Frees the connection; schedules a reconnect or records a fatal error. */
static void conn_close(struct conn *c, uint64_t now, const char *why, int send_close)
{
	struct kbx_quic_flood *f = c->f;
	char addr[INET_ADDRSTRLEN];

	if (!c->conn)
		return;
	conn_teardown(c, now, send_close);
	inet_ntop(AF_INET, &c->remote.sin_addr, addr, sizeof(addr));
	if (!c->ever_established || !f->cfg.reconnect) {
		c->state = CONN_DEAD;
		if (!c->ever_established)
			fail_flood(f, kbx_quic_fail(-ETIMEDOUT, "connection to %s:%u failed: %s%s", addr,
						    ntohs(c->remote.sin_port), why,
						    c->icmp_refused ? " (ICMP port unreachable: is quic-sink running?)" : ""));
		else
			fail_flood(f, kbx_quic_fail(-ECONNRESET, "connection to %s:%u closed: %s", addr,
						    ntohs(c->remote.sin_port), why));
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
static void conn_rotate(struct conn *c, uint64_t now)
{
	ngtcp2_connection_close_error_default(&c->last_error);
	conn_teardown(c, now, 1);
	c->f->st.rotations++;
	c->state = CONN_WAITING;
	c->reconnect_at_ns = now;
}

/* ---- output ---- */

/*
 * RFC 1071 one's-complement sum over memory in host byte order, 8 bytes at a time (the sum is byte-order
 * independent: folded and stored back as it is, it is the checksum in network order).
 */
static uint64_t add_carry(uint64_t sum, uint64_t w)
{
	sum += w;
	return sum + (sum < w);
}

static uint64_t sum_memory(const uint8_t *p, size_t len, uint64_t sum)
{
	uint64_t w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		sum = add_carry(sum, w);
	}
	w = 0;
	memcpy(&w, p, len); /* a trailing odd byte is the high byte of a zero-padded network-order word */
	return add_carry(sum, w);
}

/* The checksum of a sum (complemented), ready to be stored in memory as it is. */
static uint16_t checksum_of(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Ethernet + IPv4 + UDP headers in front of a payload already at frame + HEADERS_LEN. */
static void build_headers(struct kbx_quic_flood *f, struct conn *c, uint8_t *frame, uint32_t payload_len)
{
	uint8_t *ip = frame + 14, *udp = frame + 34;
	uint32_t udp_len = 8 + payload_len;
	uint16_t csum;

	memcpy(frame, f->cfg.dst_mac, 6);
	memcpy(frame + 6, f->cfg.src_mac, 6);
	frame[12] = 0x08;
	frame[13] = 0x00;
	ip[0] = 0x45;
	ip[1] = 0;
	ip[2] = (uint8_t)((20 + udp_len) >> 8);
	ip[3] = (uint8_t)(20 + udp_len);
	ip[4] = (uint8_t)(f->ip_id >> 8);
	ip[5] = (uint8_t)f->ip_id;
	f->ip_id++;
	ip[6] = 0x40; /* DF */
	ip[7] = 0;
	ip[8] = 64;
	ip[9] = 17;
	ip[10] = ip[11] = 0;
	memcpy(ip + 12, &c->local.sin_addr.s_addr, 4);
	memcpy(ip + 16, &c->remote.sin_addr.s_addr, 4);
	csum = checksum_of(sum_memory(ip, 20, 0));
	memcpy(ip + 10, &csum, 2);
	memcpy(udp, &c->local.sin_port, 2);
	memcpy(udp + 2, &c->remote.sin_port, 2);
	udp[4] = (uint8_t)(udp_len >> 8);
	udp[5] = (uint8_t)udp_len;
	udp[6] = udp[7] = 0;
	/* pseudo-header: addresses, protocol and UDP length (as network-order words in memory) */
	csum = checksum_of(sum_memory(udp, udp_len, sum_memory(ip + 12, 8, htons(17) + htons((uint16_t)udp_len))));
	if (csum == 0)
		csum = 0xffff;
	memcpy(udp + 6, &csum, 2);
}

static int xdp_flush(struct kbx_quic_flood *f)
{
	int n;

	if (!f->ntx) {
		kbx_xsk_complete(f->xsk);
		return 0;
	}
	n = kbx_xsk_send(f->xsk, f->tx_descs, f->ntx);
	if (n < 0) {
		f->st.send_errors++;
		return n;
	}
	if ((uint32_t)n < f->ntx) {
		f->st.tx_ring_full += f->ntx - (uint32_t)n;
		memmove(f->tx_descs, f->tx_descs + n, (f->ntx - (uint32_t)n) * sizeof(struct kbx_desc));
	}
	f->ntx -= (uint32_t)n;
	return n;
}

static void socket_flush(struct kbx_quic_flood *f, struct conn *c)
{
	struct mmsghdr msgs[OUT_BATCH];
	struct iovec iovs[OUT_BATCH];
	char cbufs[OUT_BATCH][CMSG_SPACE(sizeof(uint16_t))];
	uint32_t i = 0, nmsg = 0, sent_pkts = 0, done;
	int rv;

	if (!f->nout)
		return;
	memset(msgs, 0, sizeof(struct mmsghdr) * OUT_BATCH);
	/* one message per run of equal-size datagrams (the last of a run may be shorter): UDP GSO */
	while (i < f->nout) {
		uint32_t seg = f->out[i].len, j = i + 1;
		struct msghdr *m = &msgs[nmsg].msg_hdr;

		if (f->gso)
			while (j < f->nout && j - i < 64 && f->out[j].len == seg)
				j++;
		if (f->gso && j < f->nout && j - i < 64 && f->out[j].len < seg && j > i)
			j++;
		m->msg_iov = &iovs[i];
		m->msg_iovlen = j - i;
		for (uint32_t k = i; k < j; k++) {
			iovs[k].iov_base = f->out[k].data;
			iovs[k].iov_len = f->out[k].len;
		}
		if (j - i > 1) {
			struct cmsghdr *cm;

			m->msg_control = cbufs[nmsg];
			m->msg_controllen = sizeof(cbufs[nmsg]);
			cm = CMSG_FIRSTHDR(m);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			*(uint16_t *)CMSG_DATA(cm) = (uint16_t)seg;
		}
		msgs[nmsg].msg_len = j - i; /* datagrams in this message (restored below) */
		nmsg++;
		i = j;
	}
	uint32_t counts[OUT_BATCH];
	for (i = 0; i < nmsg; i++)
		counts[i] = msgs[i].msg_len;
	done = 0;
	while (done < nmsg) {
		rv = sendmmsg(c->fd, msgs + done, nmsg - done, 0);
		if (rv < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EIO || errno == EINVAL) && f->gso && msgs[done].msg_hdr.msg_iovlen > 1) {
				f->gso = 0; /* no GSO on this path: resend one datagram per message */
				struct out_packet *rest = &f->out[0];
				(void)rest;
				for (i = done; i < nmsg; i++) {
					struct msghdr *m = &msgs[i].msg_hdr;
					for (size_t k = 0; k < m->msg_iovlen; k++) {
						if (send(c->fd, m->msg_iov[k].iov_base, m->msg_iov[k].iov_len, 0) > 0)
							sent_pkts++;
						else
							f->st.send_errors++;
					}
				}
				break;
			}
			if (errno == ECONNREFUSED)
				c->icmp_refused = 1;
			else
				f->st.send_errors++;
			break;
		}
		for (i = done; i < done + (uint32_t)rv; i++) {
			sent_pkts += counts[i];
			if (counts[i] > 1)
				f->st.gso_batches++;
		}
		done += (uint32_t)rv;
	}
	f->st.packets_sent += sent_pkts;
	f->nout = 0;
}

/* A buffer for the next packet of c: an out slot (socket) or a UMEM frame (xdp); NULL when none is free. */
static uint8_t *packet_buffer(struct kbx_quic_flood *f)
{
	if (f->cfg.io == KBX_QUIC_IO_SOCKET)
		return f->out[f->nout].data;
	if (f->ntx >= OUT_BATCH)
		return NULL;
	if (!f->nspare) {
		int n = kbx_umem_alloc(f->umem, f->spare, OUT_BATCH);
		if (n <= 0) {
			kbx_xsk_complete(f->xsk);
			n = kbx_umem_alloc(f->umem, f->spare, OUT_BATCH);
			if (n <= 0)
				return NULL;
		}
		f->nspare = (uint32_t)n;
	}
	return f->area + f->spare[f->nspare - 1].addr + HEADERS_LEN;
}

static void packet_written(struct kbx_quic_flood *f, struct conn *c, uint32_t len)
{
	f->st.wire_bytes_sent += len;
	if (f->cfg.io == KBX_QUIC_IO_SOCKET) {
		f->out[f->nout++].len = len;
		if (f->nout == OUT_BATCH)
			socket_flush(f, c);
		return;
	}
	struct kbx_desc d = f->spare[--f->nspare];
	build_headers(f, c, f->area + d.addr, len);
	d.len = HEADERS_LEN + len;
	f->tx_descs[f->ntx++] = d;
	f->st.packets_sent++;
	if (f->ntx >= OUT_BATCH)
		xdp_flush(f);
}

static int budget_allows(struct kbx_quic_flood *f, uint64_t now)
{
	if (f->stop_sending)
		return 0;
	if (f->cfg.count && f->opened >= f->cfg.count)
		return 0;
	if (f->cfg.rate && f->pace_start_ns) {
		uint64_t allowed = (now - f->pace_start_ns) / 1000 * f->cfg.rate / 1000000 + 1;
		if (f->opened >= allowed)
			return 0;
	}
	return 1;
}

static void open_streams(struct conn *c, uint64_t now)
{
	struct kbx_quic_flood *f = c->f;

	while (!c->retiring && c->pending < MAX_PENDING && c->free_list && budget_allows(f, now)) {
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
			f->st.blocked_streams_ns += now - c->streams_blocked_since;
			c->streams_blocked_since = 0;
		}
		if (f->cfg.streams == KBX_QUIC_STREAMS_BIDI)
			ngtcp2_conn_shutdown_stream_read(c->conn, sid, 0); /* nothing to read: STOP_SENDING */
		c->free_list = r->next;
		memset(r, 0, sizeof(*r));
		r->c = c;
		r->in_use = 1;
		r->stream_id = sid;
		r->tx_index = f->next_tx;
		r->len = f->tx_lens[f->next_tx];
		f->next_tx = (f->next_tx + 1) % f->tx_count;
		r->next = NULL;
		if (c->pending_tail)
			c->pending_tail->next = r;
		else
			c->pending_head = r;
		c->pending_tail = r;
		c->pending++;
		c->in_flight++;
		f->opened++;
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
		if (c->flow_blocked_since) {
			f->st.blocked_flow_ns += now - c->flow_blocked_since;
			c->flow_blocked_since = 0;
		}
	}
}

/* Writes every packet c can send now. Returns packets written, or -1 when the connection was closed. */
static int conn_write(struct conn *c, uint64_t now)
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
		uint8_t *buf = packet_buffer(f);

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
				conn_close(c, now, ngtcp2_strerror((int)n), 1);
				return -1;
			}
		}
		if (n == 0)
			break;
		if (r)
			record_progress(c, r, wdatalen, now);
		packet_written(f, c, (uint32_t)n);
		packets++;
		if (packets >= 4 * OUT_BATCH)
			break;
	}
	if (f->cfg.io == KBX_QUIC_IO_SOCKET)
		socket_flush(f, c);
	return packets;
}

/* ---- input ---- */

static void conn_read(struct conn *c, const uint8_t *data, size_t len, uint8_t ecn, uint64_t now)
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
		conn_close(c, now,
			   c->state == CONN_ESTABLISHED
				   ? "the server closed the connection"
				   : "the server refused the handshake (wrong ALPN? it expects the one given with --alpn; "
				     "or it rejected our certificate)",
			   0);
		return;
	}
	if (rv == NGTCP2_ERR_DISCARD_PKT || rv == NGTCP2_ERR_DROP_CONN) {
		if (rv == NGTCP2_ERR_DROP_CONN)
			conn_close(c, now, "stateless reset or unusable packet from the server", 0);
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
		conn_close(c, now, why, 1);
	}
}

static int socket_receive(struct kbx_quic_flood *f, struct conn *c, uint64_t now)
{
	static __thread uint8_t bufs[RX_BATCH][2048];
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iovs[RX_BATCH];
	int n, i, total = 0;

	for (;;) {
		for (i = 0; i < RX_BATCH; i++) {
			iovs[i].iov_base = bufs[i];
			iovs[i].iov_len = sizeof(bufs[i]);
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = &iovs[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(c->fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == ECONNREFUSED) {
				c->icmp_refused = 1;
				continue;
			}
			return total;
		}
		for (i = 0; i < n && c->conn; i++)
			conn_read(c, bufs[i], msgs[i].msg_len, 0, now);
		total += n;
		if (n < RX_BATCH || !c->conn)
			return total;
	}
}

static int xdp_receive(struct kbx_quic_flood *f, uint64_t now)
{
	int n = kbx_xsk_receive(f->xsk, f->rx_descs, RX_BATCH, f->rx_held, 0);
	int i;

	f->rx_held = 0;
	if (n <= 0)
		return 0;
	f->rx_held = (uint32_t)n;
	for (i = 0; i < n; i++) {
		const uint8_t *p = f->area + f->rx_descs[i].addr;
		uint32_t len = f->rx_descs[i].len, ihl, ulen;
		uint16_t dport;
		uint32_t idx;
		struct conn *c;

		if (len < HEADERS_LEN || p[12] != 0x08 || p[13] != 0x00 || (p[14] >> 4) != 4 || p[23] != 17) {
			f->st.rx_ignored++;
			continue;
		}
		ihl = (uint32_t)(p[14] & 0x0f) * 4;
		if (ihl < 20 || len < 14 + ihl + 8) {
			f->st.rx_ignored++;
			continue;
		}
		dport = (uint16_t)(p[14 + ihl + 2] << 8 | p[14 + ihl + 3]);
		ulen = (uint32_t)(p[14 + ihl + 4] << 8 | p[14 + ihl + 5]);
		idx = (uint32_t)(dport - f->cfg.local_port);
		if (idx >= f->nconns || ulen < 8 || 14 + ihl + ulen > len) {
			f->st.rx_ignored++;
			continue;
		}
		c = &f->conns[idx];
		if (memcmp(p + 26, &c->remote.sin_addr.s_addr, 4) != 0 || memcmp(p + 14 + ihl, &c->remote.sin_port, 2) != 0) {
			f->st.rx_ignored++;
			continue;
		}
		conn_read(c, p + 14 + ihl + 8, ulen - 8, p[15] & 3, now);
	}
	return n;
}

/* ---- lifecycle ---- */

static int open_socket(struct kbx_quic_flood *f, struct conn *c, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), size = 4 << 20;
	socklen_t len = sizeof(c->local);

	if (fd < 0)
		return kbx_quic_fail(-errno, "create UDP socket: %s", strerror(errno));
	c->local.sin_family = AF_INET;
	c->local.sin_addr.s_addr = f->cfg.local_ip;
	c->local.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&c->local, sizeof(c->local)) != 0) {
		int err = errno;
		char a[INET_ADDRSTRLEN];
		close(fd);
		inet_ntop(AF_INET, &c->local.sin_addr, a, sizeof(a));
		return kbx_quic_fail(-err, "bind UDP socket to %s:%u: %s", a, port, strerror(err));
	}
	getsockname(fd, (struct sockaddr *)&c->local, &len);
	if (f->cfg.io == KBX_QUIC_IO_SOCKET) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		if (connect(fd, (struct sockaddr *)&c->remote, sizeof(c->remote)) != 0) {
			int err = errno;
			close(fd);
			return kbx_quic_fail(-err, "connect UDP socket: %s", strerror(err));
		}
	}
	c->fd = fd;
	c->local_port = ntohs(c->local.sin_port);
	return 0;
}

static int reserve_ports(struct kbx_quic_flood *f)
{
	uint32_t attempt, i;
	int rv = 0;

	for (attempt = 0; attempt < 64; attempt++) {
		uint16_t base = (uint16_t)f->cfg.local_port;

		if (!base) {
			uint16_t r;
			gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r));
			base = (uint16_t)(40000 + r % (20000 - f->nconns));
		}
		for (i = 0; i < f->nconns; i++) {
			rv = open_socket(f, &f->conns[i], (uint16_t)(base + i));
			if (rv < 0)
				break;
		}
		if (i == f->nconns) {
			f->cfg.local_port = base;
			return 0;
		}
		while (i-- > 0) {
			close(f->conns[i].fd);
			f->conns[i].fd = -1;
		}
		if (f->cfg.local_port)
			return rv;
	}
	return rv;
}

int kbx_quic_flood_create(const struct kbx_quic_flood_config *config, const char *alpn, const char *ifname,
			  const struct kbx_quic_identity *id, const uint8_t *txs, const uint32_t *tx_lens,
			  uint32_t tx_count, struct kbx_quic_flood **out)
{
	struct kbx_quic_flood *f;
	uint64_t total = 0;
	uint32_t i;
	int rv;

	*out = NULL;
	if (!tx_count)
		return kbx_quic_fail(-EINVAL, "no transactions to send");
	uint32_t max_tx_size = config->max_tx_size ? config->max_tx_size : KBX_QUIC_MAX_TX_SIZE;

	for (i = 0; i < tx_count; i++) {
		if (tx_lens[i] == 0 || tx_lens[i] > max_tx_size)
			return kbx_quic_fail(-EMSGSIZE, "transaction %u has %u bytes: a transaction is 1..%u bytes", i,
					     tx_lens[i], max_tx_size);
		total += tx_lens[i];
	}
	if (!alpn || !*alpn || strlen(alpn) > 255)
		return kbx_quic_fail(-EINVAL, "ALPN must be 1..255 bytes");
	f = calloc(1, sizeof(*f));
	if (!f)
		return kbx_quic_fail(-ENOMEM, "allocate flooder");
	f->cfg = *config;
	if (!f->cfg.connections)
		f->cfg.connections = 1;
	if (!f->cfg.idle_timeout_ms)
		f->cfg.idle_timeout_ms = 30000;
	if (!f->cfg.handshake_timeout_ms)
		f->cfg.handshake_timeout_ms = 5000;
	if (!f->cfg.max_backoff_ms)
		f->cfg.max_backoff_ms = 5000;
	if (!f->cfg.streams_per_connection)
		f->cfg.streams_per_connection = KBX_QUIC_STREAMS_PER_CONNECTION;
	f->gso = 1;
	snprintf(f->alpn, sizeof(f->alpn), "%s", alpn);
	f->alpn_datum.data = (unsigned char *)f->alpn;
	f->alpn_datum.size = (unsigned)strlen(f->alpn);
	f->nconns = f->cfg.connections;
	f->txs = malloc(total);
	f->tx_offsets = calloc(tx_count, sizeof(uint32_t));
	f->tx_lens = calloc(tx_count, sizeof(uint32_t));
	f->lat_counts = calloc(LAT_BUCKETS, sizeof(uint64_t));
	f->conns = calloc(f->nconns, sizeof(struct conn));
	if (!f->txs || !f->tx_offsets || !f->tx_lens || !f->lat_counts || !f->conns) {
		kbx_quic_flood_destroy(f);
		return kbx_quic_fail(-ENOMEM, "allocate flooder");
	}
	memcpy(f->txs, txs, total);
	total = 0;
	for (i = 0; i < tx_count; i++) {
		f->tx_offsets[i] = (uint32_t)total;
		f->tx_lens[i] = tx_lens[i];
		total += tx_lens[i];
	}
	f->tx_count = tx_count;
	for (i = 0; i < f->nconns; i++) {
		struct conn *c = &f->conns[i];

		c->f = f;
		c->index = i;
		c->fd = -1;
		c->remote.sin_family = AF_INET;
		c->remote.sin_addr.s_addr = f->cfg.remote_ip;
		c->remote.sin_port = htons((uint16_t)f->cfg.remote_port);
		c->records = calloc(RECORDS_PER_CONN, sizeof(struct tx_record));
		if (!c->records) {
			kbx_quic_flood_destroy(f);
			return kbx_quic_fail(-ENOMEM, "allocate stream records");
		}
		for (uint32_t k = RECORDS_PER_CONN; k-- > 0;) {
			c->records[k].next = c->free_list;
			c->free_list = &c->records[k];
		}
	}
	if (f->cfg.io == KBX_QUIC_IO_XDP) {
		struct kbx_umem_config uc;

		f->xsk = (struct kbx_xsk *)(uintptr_t)f->cfg.xsk;
		f->umem = (struct kbx_umem *)(uintptr_t)f->cfg.umem;
		if (!f->xsk && ifname) {
			struct kbx_umem_config umc = { .frame_count = 4096, .frame_size = 2048 };
			struct kbx_xsk_config xc = { .queue = f->cfg.queue, .rx_size = 2048, .tx_size = 2048,
						     .zero_copy = f->cfg.zero_copy, .need_wakeup = 1,
						     .bind_retries = 20, .retry_delay_ms = 50 };
			struct kbx_xsk_info info;

			rv = kbx_umem_create(&umc, &f->own_umem);
			if (rv == 0)
				rv = kbx_xsk_create(f->own_umem, ifname, &xc, &f->own_xsk, &info);
			if (rv < 0) {
				rv = kbx_quic_fail(rv, "%s: %s", kbx_last_operation(), strerror(-rv));
				kbx_quic_flood_destroy(f);
				return rv;
			}
			f->xsk = f->own_xsk;
			f->umem = f->own_umem;
		}
		if (!f->xsk || !f->umem) {
			kbx_quic_flood_destroy(f);
			return kbx_quic_fail(-EINVAL, "xdp io needs an AF_XDP socket and its UMEM");
		}
		f->area = kbx_umem_area(f->umem);
		kbx_umem_get_config(f->umem, &uc);
		f->frame_size = uc.frame_size;
		if (f->frame_size < HEADERS_LEN + MAX_PACKET + uc.headroom) {
			kbx_quic_flood_destroy(f);
			return kbx_quic_fail(-EINVAL, "UMEM frames of %u bytes are too small", f->frame_size);
		}
		if (f->cfg.local_port && f->cfg.local_port + f->nconns > 65536) {
			kbx_quic_flood_destroy(f);
			return kbx_quic_fail(-EINVAL, "local ports overflow");
		}
	}
	rv = reserve_ports(f);
	if (rv < 0) {
		kbx_quic_flood_destroy(f);
		return rv;
	}
	if (f->cfg.io == KBX_QUIC_IO_SOCKET)
		f->cfg.local_port = f->conns[0].local_port;
	rv = kbx_quic_credentials(id, &f->cred);
	if (rv < 0) {
		kbx_quic_flood_destroy(f);
		return rv;
	}
	*out = f;
	return 0;
}

int kbx_quic_flood_xsk_fd(const struct kbx_quic_flood *f)
{
	return f->xsk ? kbx_xsk_fd(f->xsk) : -1;
}

uint32_t kbx_quic_flood_local_port(const struct kbx_quic_flood *f)
{
	return f->cfg.local_port;
}

static int all_done(struct kbx_quic_flood *f)
{
	uint32_t i, alive = 0;

	if (!f->stop_sending && !(f->cfg.count && f->opened >= f->cfg.count))
		return 0;
	for (i = 0; i < f->nconns; i++) {
		struct conn *c = &f->conns[i];
		if (c->state == CONN_DEAD)
			continue;
		if (c->state == CONN_WAITING && f->stop_sending)
			continue;
		alive++;
		if (c->in_flight)
			return 0;
	}
	return 1;
}

int kbx_quic_flood_run(struct kbx_quic_flood *f, uint32_t max_ms)
{
	uint64_t now = kbx_quic_now(), deadline = now + (uint64_t)max_ms * 1000000ull;
	uint32_t i;

	if (f->fatal_err)
		return f->fatal_err;
	for (;;) {
		int activity = 0;
		uint64_t wake = deadline;

		now = kbx_quic_now();
		/* connect and reconnect */
		for (i = 0; i < f->nconns; i++) {
			struct conn *c = &f->conns[i];
			if (c->state == CONN_WAITING && !c->conn && now >= c->reconnect_at_ns && !f->stop_sending) {
				int rv = conn_start(c, now);
				if (rv < 0)
					return f->fatal_err = rv;
			}
		}
		/* input */
		if (f->cfg.io == KBX_QUIC_IO_XDP) {
			activity += xdp_receive(f, now);
		} else {
			for (i = 0; i < f->nconns; i++)
				if (f->conns[i].conn)
					activity += socket_receive(f, &f->conns[i], now);
		}
		now = kbx_quic_now();
		/* timers, streams, output */
		for (i = 0; i < f->nconns; i++) {
			struct conn *c = &f->conns[i];
			ngtcp2_tstamp expiry;
			int rv;

			if (!c->conn)
				continue;
			expiry = ngtcp2_conn_get_expiry(c->conn);
			if (expiry <= now) {
				rv = ngtcp2_conn_handle_expiry(c->conn, now);
				if (rv == NGTCP2_ERR_IDLE_CLOSE) {
					conn_close(c, now, "idle timeout (no packets from the server)", 0);
					continue;
				}
				if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
					char why[96];
					snprintf(why, sizeof(why), "handshake timed out after %u ms",
						 f->cfg.handshake_timeout_ms);
					conn_close(c, now, why, 0);
					continue;
				}
				if (rv != 0) {
					ngtcp2_connection_close_error_set_transport_error_liberr(&c->last_error, rv, NULL, 0);
					conn_close(c, now, ngtcp2_strerror(rv), 1);
					continue;
				}
			}
			if (c->state == CONN_ESTABLISHED)
				open_streams(c, now);
			rv = conn_write(c, now);
			if (rv > 0)
				activity += rv;
			if (c->retiring && c->conn && !c->in_flight) {
				conn_rotate(c, now);
				activity++;
				continue;
			}
			if (c->conn) {
				expiry = ngtcp2_conn_get_expiry(c->conn);
				if (expiry < wake)
					wake = expiry;
			}
		}
		if (f->cfg.io == KBX_QUIC_IO_XDP) {
			xdp_flush(f);
			if (f->ntx)
				activity++;
		}
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
		for (i = 0; i < f->nconns; i++) {
			struct conn *c = &f->conns[i];
			if (c->state == CONN_WAITING && c->reconnect_at_ns < wake)
				wake = c->reconnect_at_ns;
			if (c->state == CONN_ESTABLISHED && f->cfg.rate && f->pace_start_ns && c->free_list &&
			    c->pending < MAX_PENDING && !f->stop_sending && !c->streams_blocked_since) {
				uint64_t next = f->pace_start_ns + (f->opened * 1000000000ull) / f->cfg.rate;
				if (next < wake)
					wake = next;
			}
		}
		if (wake > now) {
			struct pollfd pfds[65];
			nfds_t n = 0;
			struct timespec ts;
			uint64_t wait = wake - now;

			if (wait > 100000000ull)
				wait = 100000000ull;
			ts.tv_sec = (time_t)(wait / 1000000000ull);
			ts.tv_nsec = (long)(wait % 1000000000ull);
			if (f->cfg.io == KBX_QUIC_IO_XDP) {
				pfds[n].fd = kbx_xsk_fd(f->xsk);
				pfds[n++].events = POLLIN;
			} else {
				for (i = 0; i < f->nconns && n < 65; i++) {
					if (!f->conns[i].conn)
						continue;
					pfds[n].fd = f->conns[i].fd;
					pfds[n++].events = POLLIN;
				}
			}
			ppoll(pfds, n, &ts, NULL);
		}
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

int kbx_quic_flood_take_latency_histogram(struct kbx_quic_flood *f, uint64_t out_addr, uint32_t cap_pairs)
{
	uint64_t *out = (uint64_t *)(uintptr_t)out_addr;
	uint32_t b, n = 0, lo, hi;

	if (cap_pairs < KBX_QUIC_LATENCY_PAIRS_MAX)
		return -ENOSPC;
	if (!f->lat_n)
		return 0;
	/* the exact extremes as their own samples, the rest as bucket middles */
	lo = latency_bucket(f->lat_min);
	hi = latency_bucket(f->lat_max);
	out[0] = f->lat_min;
	out[1] = 1;
	n = 1;
	f->lat_counts[lo]--;
	if (f->lat_n > 1) {
		f->lat_counts[hi]--;
		for (b = lo; b <= hi; b++) {
			if (!f->lat_counts[b])
				continue;
			out[2 * n] = latency_bucket_value(b);
			out[2 * n + 1] = f->lat_counts[b];
			f->lat_counts[b] = 0;
			n++;
		}
		out[2 * n] = f->lat_max;
		out[2 * n + 1] = 1;
		n++;
	}
	f->lat_n = 0;
	f->lat_min = f->lat_max = 0;
	return (int)n;
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
				conn_teardown(c, now, f->cfg.io == KBX_QUIC_IO_SOCKET || f->xsk);
			if (c->fd >= 0)
				close(c->fd);
			free(c->records);
		}
		if (f->cfg.io == KBX_QUIC_IO_XDP && f->xsk) {
			xdp_flush(f);
			for (i = 0; i < 10 && kbx_xsk_tx_pending(f->xsk); i++) {
				kbx_xsk_complete(f->xsk);
				usleep(1000);
			}
			if (f->ntx)
				kbx_umem_release(f->umem, f->tx_descs, f->ntx);
			if (f->nspare)
				kbx_umem_release(f->umem, f->spare, f->nspare);
			if (f->rx_held)
				kbx_umem_release(f->umem, f->rx_descs, f->rx_held);
		}
	}
	if (f->cred)
		gnutls_certificate_free_credentials(f->cred);
	if (f->own_umem)
		kbx_umem_destroy(f->own_umem); /* closes own_xsk too */
	free(f->conns);
	free(f->txs);
	free(f->tx_offsets);
	free(f->tx_lens);
	free(f->lat_counts);
	free(f);
}
