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
#include <pthread.h>
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
	/* agave_qos */
	uint8_t peer_key[32];
	int has_peer_key;
	int admitted;              /* counted against its identity's connection limit */
	int too_many;              /* close with KBX_QUIC_APP_ERROR_TOO_MANY after this read */
	uint64_t stake;            /* 0: unstaked */
	struct kbx_quic_stream_window window;
	uint64_t throttled_credit; /* finished streams whose credit waits for the next window */
};

/* agave_qos state (quic_sink_qos.c) */
#define QOS_IP_SLOTS 4096 /* per-IP rate limiters, open addressing */
#define QOS_IP_PROBES 8
#define QOS_IGNORED_RING 64 /* DCIDs of ignored Initials: their retransmissions are not counted again */
struct qos_stake {
	uint8_t key[32];
	uint64_t lamports;
};
struct qos_ip_slot {
	uint32_t ip;
	struct kbx_quic_rate_limiter limiter;
};
#define QOS_IDENTITY_SLOTS 8192 /* identities with admitted connections, open addressing */
struct qos_identity {
	uint8_t key[32];
	uint32_t used;     /* the slot ever held a key (a probe goes on past it) */
	uint32_t admitted; /* connections of this identity admitted and open (0: the slot may take another key) */
};
/*
 * The limits of agave_qos that hold per identity, per IP and for the whole sink however many workers'
 * sockets take the traffic (kbx_quic_sink_link shares one between them): everything here is under lock,
 * except the staked load, which every finished staked stream adds to with atomics.
 */
struct sink_qos_shared {
	pthread_mutex_t lock;
	uint32_t refs;             /* linked sinks holding it */
	struct qos_ip_slot *ips;
	ngtcp2_cid ignored[QOS_IGNORED_RING];
	uint32_t ignored_next;
	struct qos_identity *identities;
	uint32_t open;             /* connections open over every linked sink (max_connections applies to it) */
	uint64_t staked_load_recent; /* staked streams since the last EMA update (atomic) */
	uint64_t staked_load_ema;
	uint64_t ema_updated_ns;   /* (atomic) */
	uint64_t staked_threshold; /* EMA at which staked streams are throttled by stake share */
	int loaded;                /* (atomic) */
};
struct sink_qos {
	struct qos_stake *stakes; /* sorted by key */
	uint32_t nstakes;
	uint64_t total_stake;
	struct sink_qos_shared *shared;
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
	uint64_t now;              /* of the datagram being read (stream callbacks) */
	struct sink_qos qos;
};

/* quic_sink_conn.c */
/* A new server connection for a client's first Initial (NULL when it is none, or the sink is full). */
struct sconn *sink_accept(struct kbx_quic_sink *s, const uint8_t *data, size_t len, const struct sockaddr_in *from,
			  uint64_t now);
/* The index of the connection a datagram belongs to, -1 for none, -2 when it is no QUIC packet. */
int sink_find_conn(struct kbx_quic_sink *s, const uint8_t *data, size_t len);
/* Frees connection i (no CONNECTION_CLOSE) and counts it closed, or failed when it never completed its handshake. */
void sink_conn_free(struct kbx_quic_sink *s, uint32_t i);

/* quic_sink_qos.c (agave_qos) */
int sink_qos_init(struct kbx_quic_sink *s);
void sink_qos_free(struct kbx_quic_sink *s);
/* Whether a new connection's Initial is let in (0: ignore it; counted once per connection attempt). */
int sink_qos_accept(struct kbx_quic_sink *s, const ngtcp2_pkt_hd *hd, const struct sockaddr_in *from, uint64_t now);
/* At handshake completion: admits c by its identity's stake and connection count, or marks it too_many. */
void sink_qos_admit(struct kbx_quic_sink *s, struct sconn *c);
/* A uni stream of c finished: its credit comes back now, or in the next window when over the stream rate. */
void sink_qos_stream_finished(struct kbx_quic_sink *s, struct sconn *c, uint64_t now);
/* Returns held-back credit when c's window has passed (1: MAX_STREAMS to write); *wake: when to look again. */
int sink_qos_refill(struct kbx_quic_sink *s, struct sconn *c, uint64_t now, uint64_t *wake);
/* A connection was accepted, or is being freed (its identity's and the sink's counts). */
void sink_qos_opened(struct kbx_quic_sink *s);
void sink_qos_closed(struct kbx_quic_sink *s, struct sconn *c);
/* Fills the counters that describe the present (open connections by kind, load). */
void sink_qos_stats(struct kbx_quic_sink *s);
/* Gives back up to n uni stream credits within the connection's lifetime total. */
void sink_grant_uni(struct kbx_quic_sink *s, struct sconn *c, uint64_t n);

#endif /* KBX_QUIC_SINK_INTERNAL_H */
