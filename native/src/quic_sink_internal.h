/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside quic-sink's engine (kbx_quic.h): the sink's state, shared by quic_sink.c (the UDP socket, the
 * run loop, the API) and quic_sink_conn.c (accepting a connection, its TLS session and stream callbacks).
 * Not part of libkbx's interface.
 */
#ifndef KBX_QUIC_SINK_INTERNAL_H
#define KBX_QUIC_SINK_INTERNAL_H

#define KBX_QUIC_INTERNAL
#include "kbx_quic.h"

#include <netinet/in.h>
#include <stdint.h>
#include <ngtcp2/ngtcp2_crypto.h>

#define SCID_LEN 16
#define MAX_PACKET KBX_QUIC_MAX_DATAGRAM
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
	struct kbx_quic_alpn alpn;
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
	uint8_t peer_keys[KBX_QUIC_SINK_PEER_KEYS][32]; /* distinct client keys, the first ones seen */
	uint32_t npeer_keys;
	uint8_t out[MAX_PACKET];        /* CONNECTION_CLOSE */
	struct out_packet queue[OUT_BATCH]; /* written packets, sent with one sendmmsg */
	uint32_t queued;
	uint64_t last_rx_ns;
};

/* quic_sink_conn.c */
/* A new server connection for a client's first Initial (NULL when it is none, or the sink is full). */
struct sconn *sink_accept(struct kbx_quic_sink *s, const uint8_t *data, size_t len, const struct sockaddr_in *from,
			  uint64_t now);
/* The index of the connection a datagram belongs to, -1 for none, -2 when it is no QUIC packet. */
int sink_find_conn(struct kbx_quic_sink *s, const uint8_t *data, size_t len);
/* Frees connection i (no CONNECTION_CLOSE) and counts it closed, or failed when it never completed its handshake. */
void sink_conn_free(struct kbx_quic_sink *s, uint32_t i);

#endif /* KBX_QUIC_SINK_INTERNAL_H */
