/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libkbx QUIC engine: Solana-style transaction flooding (client) and a transaction sink (server) on
 * ngtcp2 0.12 (sans-IO) + GnuTLS. The whole per-packet loop runs in C; callers make one call per time
 * slice (kbx_quic_flood_run / kbx_quic_sink_run) and read counters.
 *
 * Client I/O is a kernel UDP socket (sendmmsg, UDP GSO when the batch allows) or an AF_XDP socket from
 * kbx_xsk.h that the caller creates, with its UMEM, and hands over (frames built here with real IPv4 and UDP
 * checksums). The sink always uses a UDP socket.
 *
 * Conventions: int-returning calls return 0 / a count, or a negative errno (or negative ngtcp2/GnuTLS
 * code folded into -EPROTO); kbx_error_take() (kbx_error.h) then says what failed and why.
 * Not thread-safe: one thread drives an object at a time. Several engines run in parallel on worker threads
 * (kbx_quic_workers_start, "Workers" below), which the caller pauses to touch them.
 */
#ifndef KBX_QUIC_H
#define KBX_QUIC_H

#include <stdint.h>

#include "kbx_histogram.h"
#include "kbx_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Agave's limit on a transaction (PACKET_DATA_SIZE): larger or empty streams close the connection. */
#define KBX_QUIC_MAX_TX_SIZE 1232

/*
 * Bounded memory. ngtcp2 0.12.1 (Debian's) never frees a finished remote unidirectional stream
 * (ngtcp2#662, fixed in 0.13): a server keeps ~300 bytes per received transaction until the connection
 * closes. So no connection lives forever:
 * - the flooder rotates: after streams_per_connection streams it opens no more on that connection,
 *   waits until every one of them is acknowledged, closes it with NO_ERROR and connects afresh on the
 *   same port at once. Nothing is in flight at the close, so acked == the sink's count stays exact.
 * - the sink protects itself from clients that do not rotate: it grants one connection at most
 *   max_streams_per_connection unidirectional streams in total (MAX_STREAMS stops growing there); once
 *   all of them have finished and the connection has been quiet for three PTOs (so its ACKs have
 *   arrived), it closes it with application error KBX_QUIC_APP_ERROR_STREAM_LIMIT.
 * Memory then stays within connections x streams per connection x ~300 bytes.
 */
#define KBX_QUIC_STREAMS_PER_CONNECTION 131072
#define KBX_QUIC_SINK_STREAMS_PER_CONNECTION 262144
#define KBX_QUIC_APP_ERROR_TX_TOO_LARGE 1
#define KBX_QUIC_APP_ERROR_STREAM_LIMIT 2
#define KBX_QUIC_APP_ERROR_TOO_MANY 4 /* --agave-qos: over the per-identity connection limit (Agave's code) */

/* Limits and defaults the engine applies (a config's 0 takes the default; outside the limits: -EINVAL). */
#define KBX_QUIC_MAX_ALPN_LEN 255
#define KBX_QUIC_MAX_CONNECTIONS 64             /* flooder connections per server */
#define KBX_QUIC_MAX_SERVERS 32                 /* server slots of one flooder (fan-out) */
#define KBX_QUIC_MAX_TOTAL_CONNECTIONS 256      /* server slots x connections: one poll set, one port range */
#define KBX_QUIC_MAX_IDENTITIES 64              /* client identities of one flooder */
#define KBX_QUIC_DEFAULT_IDLE_TIMEOUT_MS 30000
#define KBX_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS 5000
#define KBX_QUIC_DEFAULT_MAX_BACKOFF_MS 5000
#define KBX_QUIC_SINK_DEFAULT_MAX_STREAMS 512   /* max_streams_uni and max_streams_bidi */
#define KBX_QUIC_SINK_DEFAULT_MAX_CONNECTIONS 1024
/*
 * xdp io: the UMEM the caller creates for the flooder's AF_XDP socket. Half its frames wait in the fill
 * ring, the rest carry TX batches (KBX_QUIC_TX_BATCH frames written before a flush, as many spare);
 * frames of at least KBX_QUIC_MIN_FRAME_SIZE bytes hold Ethernet + IPv4 + UDP + the largest datagram.
 */
#define KBX_QUIC_TX_BATCH 64
#define KBX_QUIC_DEFAULT_FRAMES 4096
#define KBX_QUIC_MIN_FRAMES 512
#define KBX_QUIC_MAX_FRAMES 262144
#define KBX_QUIC_MAX_DATAGRAM 1452              /* largest QUIC datagram written (fits a 1500-byte MTU) */
#define KBX_QUIC_FRAME_HEADERS 42               /* Ethernet + IPv4 + UDP */
#define KBX_QUIC_MIN_FRAME_SIZE (KBX_QUIC_FRAME_HEADERS + KBX_QUIC_MAX_DATAGRAM)

struct kbx_quic_identity;
struct kbx_quic_flood;
struct kbx_quic_sink;

/*
 * An Ed25519 identity and its self-signed X.509 certificate. keypair: 64 bytes (a Solana keypair file's
 * numbers: 32-byte seed then 32-byte public key; the public key is checked against the seed) or NULL for
 * a fresh random identity.
 */
int kbx_quic_identity_create(const uint8_t *keypair, struct kbx_quic_identity **out);
void kbx_quic_identity_destroy(struct kbx_quic_identity *id);
/* Copies the 32-byte Ed25519 public key. */
void kbx_quic_identity_public_key(const struct kbx_quic_identity *id, uint8_t *out32);
/* The certificate in DER; returns its length, or -ENOSPC when cap is too small. */
int kbx_quic_identity_certificate_der(const struct kbx_quic_identity *id, uint8_t *buf, uint32_t cap);
/* Writes the certificate and the private key as PEM files (for other QUIC stacks). */
int kbx_quic_identity_write_pem(const struct kbx_quic_identity *id, const char *cert_path, const char *key_path);

enum kbx_quic_io { KBX_QUIC_IO_SOCKET = 0, KBX_QUIC_IO_XDP = 1 };
enum kbx_quic_streams { KBX_QUIC_STREAMS_UNI = 0, KBX_QUIC_STREAMS_BIDI = 1 };
/* Fan-out over several servers: every transaction to every server, or each to the next server in turn. */
enum kbx_quic_fanout { KBX_QUIC_FANOUT_ALL = 0, KBX_QUIC_FANOUT_SPREAD = 1 };

struct kbx_quic_flood_config {
	uint32_t io;                   /* enum kbx_quic_io */
	uint32_t streams;              /* enum kbx_quic_streams */
	uint32_t local_ip;             /* network order */
	uint32_t remote_ip;            /* network order */
	uint32_t local_port;           /* first local port (connection slot i uses local_port + i); 0 = a random free
					* range (socket io) */
	uint32_t remote_port;          /* remote_ip:remote_port, when nonzero, is the first server; more servers, or
					* others, through kbx_quic_flood_set_servers */
	uint32_t connections;          /* per server: 1..KBX_QUIC_MAX_CONNECTIONS, 1 when 0 */
	uint32_t idle_timeout_ms;      /* 0 = KBX_QUIC_DEFAULT_IDLE_TIMEOUT_MS */
	uint32_t keep_alive_ms;        /* 0 = none */
	uint32_t handshake_timeout_ms; /* 0 = KBX_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS */
	uint32_t reconnect;            /* nonzero: reconnect with backoff when an established connection closes */
	uint32_t max_backoff_ms;       /* 0 = KBX_QUIC_DEFAULT_MAX_BACKOFF_MS */
	uint64_t rate;                 /* transactions per second over all connections, 0 = as fast as allowed */
	uint64_t count;                /* transactions to send in total, 0 = unlimited */
	uint64_t xsk;                  /* xdp io: the caller's struct kbx_xsk * (it stays the caller's, and must
					* outlive the flooder) */
	uint64_t umem;                 /* xdp io: that socket's struct kbx_umem * (frames >= KBX_QUIC_MIN_FRAME_SIZE) */
	uint8_t src_mac[8];            /* 6 bytes used */
	uint8_t dst_mac[8];            /* next hop */
	uint32_t max_tx_size;          /* TEST ONLY: 0 = KBX_QUIC_MAX_TX_SIZE; larger lets a test send what Agave rejects */
	uint32_t busy_poll_us;         /* while transactions await their ACK, poll instead of sleeping for up to
					* this long after the last packet (0: always sleep when idle) */
	uint32_t streams_per_connection; /* rotate a connection after this many streams (0 =
					  * KBX_QUIC_STREAMS_PER_CONNECTION); see "Bounded memory" above */
	uint32_t fanout;               /* enum kbx_quic_fanout */
	uint32_t max_servers;          /* server slots (0 = 1); slots x connections <= KBX_QUIC_MAX_TOTAL_CONNECTIONS */
	uint32_t max_connections_per_identity; /* 0 = no limit; else connections <= identities x this (-EINVAL) */
	uint32_t keep_trying;          /* nonzero: no failure is fatal; every closed or failed connection (also one
					* never established) reconnects with backoff and is reported per server */
};

struct kbx_quic_flood_stats {
	uint64_t tx_sent;            /* streams opened and completely written (data + FIN) */
	uint64_t tx_acked;           /* every byte up to FIN acknowledged */
	uint64_t tx_unacked_closed;  /* sent but unacknowledged when their connection closed */
	uint64_t tx_bytes_sent;
	uint64_t tx_bytes_acked;
	uint64_t packets_sent;
	uint64_t packets_received;
	uint64_t wire_bytes_sent;    /* UDP payload bytes */
	uint64_t wire_bytes_received;
	uint64_t stream_frames_lost; /* ngtcp2's per-stream loss counts, summed at stream close */
	uint64_t pto_count;
	uint64_t cwnd;               /* summed over established connections */
	uint64_t bytes_in_flight;
	uint64_t rtt_min_ns;         /* lowest over established connections */
	uint64_t rtt_smoothed_ns;    /* mean over established connections */
	uint64_t rtt_latest_ns;      /* first established connection */
	uint64_t handshake_ns;       /* most recent completed handshake */
	uint64_t handshakes;
	uint64_t connect_attempts;
	uint64_t connections_closed;
	uint64_t connections_open;   /* established now */
	uint64_t blocked_streams_ns; /* time with work waiting and no stream credit (peer MAX_STREAMS) */
	uint64_t blocked_flow_ns;    /* time with written streams blocked by flow control */
	uint64_t send_errors;
	uint64_t rx_ignored;         /* frames/datagrams not for any connection */
	uint64_t gso_batches;        /* sendmmsg messages carrying several datagrams (socket io) */
	uint64_t tx_ring_full;       /* frames that waited for TX ring room (xdp io) */
	uint64_t last_close_error;   /* error code of the last CONNECTION_CLOSE the server sent (transport or application) */
	uint64_t rotations;          /* connections closed after streams_per_connection streams, all acked */
	uint64_t connections_refused; /* closed, or never completed, before any of their transactions was acked
				       * (e.g. a server's per-identity or per-IP connection limit) */
	/* xdp io with workers (kbx_quic_flood_link): the frames of this worker's RX queue, and the hand-over of
	 * those that belong to another worker's connections */
	uint64_t rx_frames;           /* frames taken from this worker's AF_XDP RX ring */
	uint64_t rx_handed_off;       /* of them, datagrams for another worker's ports, copied to its inbox */
	uint64_t rx_handoff_received; /* datagrams other workers handed to this one */
	uint64_t rx_handoff_dropped;  /* datagrams for another worker dropped: its inbox was full (QUIC resends) */
};

/* Runs stop codes (>= 0) of kbx_quic_flood_run. */
#define KBX_QUIC_RUN_SLICE 0 /* the time slice ended */
#define KBX_QUIC_RUN_DONE 1  /* count reached and every transaction acknowledged, or nothing left to do */

/*
 * Creates the flooder and starts connecting. ids: id_count identities (1..KBX_QUIC_MAX_IDENTITIES); a
 * server's connection k presents ids[k % id_count]. txs: tx_count transactions concatenated, lengths in
 * tx_lens (each 1..KBX_QUIC_MAX_TX_SIZE; -EMSGSIZE otherwise); they are sent round-robin (with fanout ALL,
 * every server gets the whole sequence; count and rate then apply to each server).
 */
int kbx_quic_flood_create(const struct kbx_quic_flood_config *config, const char *alpn,
			  const struct kbx_quic_identity *const *ids, uint32_t id_count, const uint8_t *txs,
			  const uint32_t *tx_lens, uint32_t tx_count, struct kbx_quic_flood **out);

/* A server of the fan-out: address (network order ip, host order port) and the next hop's MAC (xdp io). */
struct kbx_quic_server_addr {
	uint32_t ip;
	uint32_t port;
	uint8_t dst_mac[8]; /* 6 bytes used; all zero: the config's dst_mac */
};
/*
 * Makes the server set exactly addrs (at most KBX_QUIC_MAX_SERVERS distinct ones). A server no longer in the
 * set stops getting streams and its connections close with NO_ERROR once every transaction on them is
 * acknowledged; a new one gets connections at once. Its slot (and counters) stay, reported as removed, until
 * a new server needs the slot. -ENOSPC when the slots run out (the set is then unchanged).
 */
int kbx_quic_flood_set_servers(struct kbx_quic_flood *f, const struct kbx_quic_server_addr *addrs, uint32_t n);
/*
 * Drives I/O, timers and transmission for up to max_ms. Returns KBX_QUIC_RUN_* or a negative errno on a
 * fatal error (the first handshake failed or timed out, a closed connection with reconnect off, I/O
 * failure): kbx_error_take() explains.
 */
int kbx_quic_flood_run(struct kbx_quic_flood *f, uint32_t max_ms);
/* Stops opening streams (graceful end): run then returns DONE once in-flight transactions are acked. */
void kbx_quic_flood_stop_sending(struct kbx_quic_flood *f);
void kbx_quic_flood_stats(struct kbx_quic_flood *f, struct kbx_quic_flood_stats *out);
/*
 * Send->ack latencies (ns, one monotonic clock) in the kbx_histogram.h layout: 128 buckets per power of
 * two (< 0.8 % wide), exact below 256 ns, with the exact count, sum, minimum and maximum beside them.
 */
#define KBX_QUIC_LATENCY_SUB_BITS 7
#define KBX_QUIC_LATENCY_BUCKETS KBX_HIST_BUCKETS(KBX_QUIC_LATENCY_SUB_BITS, 64)
struct kbx_quic_latency {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns; /* 0 when count is 0 */
	uint64_t max_ns;
	uint64_t buckets[KBX_QUIC_LATENCY_BUCKETS];
};
/* Moves the latencies recorded since the last call into *out (overwritten) and starts recording anew. */
void kbx_quic_flood_take_latency(struct kbx_quic_flood *f, struct kbx_quic_latency *out);

/* Per-server counters (cumulative, except latency: since the last take). */
#define KBX_QUIC_SERVER_CLOSES 8     /* distinct (code, reason) pairs kept per server */
#define KBX_QUIC_CLOSE_REASON_LEN 96
enum kbx_quic_server_state { KBX_QUIC_SERVER_UNUSED = 0, KBX_QUIC_SERVER_ACTIVE = 1, KBX_QUIC_SERVER_REMOVING = 2,
			     KBX_QUIC_SERVER_REMOVED = 3 };
struct kbx_quic_close_record {
	uint64_t code;  /* QUIC error code: the server's CONNECTION_CLOSE, ours, or 0 (timeouts, ICMP) */
	uint64_t count;
	char reason[KBX_QUIC_CLOSE_REASON_LEN]; /* NUL-terminated */
};
struct kbx_quic_server_stats {
	uint32_t ip;    /* network order */
	uint32_t port;
	uint32_t state; /* enum kbx_quic_server_state */
	uint32_t connections_open;
	uint64_t tx_sent;
	uint64_t tx_acked;
	uint64_t tx_unacked_closed;
	uint64_t handshakes;
	uint64_t connect_attempts;
	uint64_t connections_closed; /* closed other than by rotation or removal */
	uint64_t blocked_streams_ns;
	uint64_t closes_dropped;     /* closes whose (code, reason) found no free record */
	struct kbx_quic_close_record closes[KBX_QUIC_SERVER_CLOSES];
	struct kbx_quic_latency latency;
};
/* One connection slot of a server in use: its identity and counters. */
struct kbx_quic_conn_info {
	uint32_t server;   /* index into the servers array */
	uint32_t identity; /* index into the create call's ids */
	uint32_t state;    /* 0 waiting to (re)connect, 1 connecting, 2 established, 3 closed for good */
	uint32_t local_port;
	uint64_t handshakes;
	uint64_t tx_acked;
};
/*
 * One call per reporting interval: fills servers[0..) with every slot ever used (up to cap; returns how
 * many) and conns with the connection slots of those servers (up to conns_cap; *conn_count says how many),
 * and moves each server's latencies into its struct (recording starts anew).
 */
int kbx_quic_flood_take_servers(struct kbx_quic_flood *f, struct kbx_quic_server_stats *servers, uint32_t cap,
				struct kbx_quic_conn_info *conns, uint32_t conns_cap, uint32_t *conn_count);
/* First local UDP port (connection slot i uses it + i; slots: max_servers x connections). */
uint32_t kbx_quic_flood_local_port(const struct kbx_quic_flood *f);
/* Sends CONNECTION_CLOSE on every connection, gives its frames back to the UMEM, frees everything else. */
void kbx_quic_flood_destroy(struct kbx_quic_flood *f);

/*
 * Workers (quic_workers.c): N engines, each driven by its own thread, on its own socket, with its own
 * connections. An engine is touched by one thread at a time: its worker between pauses, the caller while
 * they are paused (kbx_quic_workers_pause returns once every worker is parked between two time slices;
 * stats, servers, stop_sending, then kbx_quic_workers_resume).
 *
 * xdp io: every worker's AF_XDP socket is bound to its own RX queue, and the steering program redirects a
 * frame to the socket of the queue it arrived on (an XSKMAP redirect to a socket bound to another queue
 * fails: the kernel drops the frame). Which queue a connection's return traffic arrives on is the NIC's
 * choice (RSS hash of the 4-tuple; on veth, the sending side's TX queue, itself a hash of the 4-tuple)
 * and not known in advance, so kbx_quic_flood_link joins the workers: a worker that receives a datagram
 * for another worker's port range copies it to that worker's inbox (rx_handed_off), which the owner
 * reads with its own RX ring. With flow steering on the NIC (ethtool -N ... dst-port ... action QUEUE)
 * nothing is handed over.
 */
#define KBX_QUIC_MAX_WORKERS 16
#define KBX_QUIC_WORKER_SLICE_MS 5
#define KBX_QUIC_HANDOFF_SLOTS 512 /* datagrams an inbox holds between two reads of its owner */
enum kbx_quic_workers_kind { KBX_QUIC_WORKERS_FLOOD = 0, KBX_QUIC_WORKERS_SINK = 1 };
/* What kbx_quic_workers_status reports of a worker. */
#define KBX_QUIC_WORKER_RUNNING 0
#define KBX_QUIC_WORKER_DONE 1 /* its flooder's run returned KBX_QUIC_RUN_DONE (it runs again after a resume) */
struct kbx_quic_workers;
/*
 * xdp io: joins n flooders (1..KBX_QUIC_MAX_WORKERS) whose port ranges follow each other (flooder i's first
 * local port = the end of flooder i-1's) so each hands the others' datagrams over; before kbx_quic_workers_start.
 */
int kbx_quic_flood_link(struct kbx_quic_flood *const *floods, uint32_t n);
/* Starts one thread per engine (kind: enum kbx_quic_workers_kind); the engines stay the caller's. */
int kbx_quic_workers_start(uint32_t kind, void *const *engines, uint32_t n, struct kbx_quic_workers **out);
void kbx_quic_workers_pause(struct kbx_quic_workers *w);
void kbx_quic_workers_resume(struct kbx_quic_workers *w);
/* Worker i: KBX_QUIC_WORKER_RUNNING or _DONE, or the negative errno it failed with (*err: its kbx_error). */
int kbx_quic_workers_status(struct kbx_quic_workers *w, uint32_t i, struct kbx_error *err);
/* Stops and joins every thread (paused or not) and frees w; destroy the engines afterwards. */
void kbx_quic_workers_stop(struct kbx_quic_workers *w);

struct kbx_quic_sink_config {
	uint32_t local_ip;         /* network order; 0 = any */
	uint32_t local_port;
	uint32_t max_streams_uni;  /* 0 = KBX_QUIC_SINK_DEFAULT_MAX_STREAMS */
	uint32_t max_streams_bidi; /* 0 = KBX_QUIC_SINK_DEFAULT_MAX_STREAMS */
	uint32_t idle_timeout_ms;  /* 0 = KBX_QUIC_DEFAULT_IDLE_TIMEOUT_MS */
	uint32_t max_connections;  /* 0 = KBX_QUIC_SINK_DEFAULT_MAX_CONNECTIONS */
	uint32_t busy_poll_us;     /* poll instead of sleeping for up to this long after the last packet (0: sleep) */
	uint32_t max_streams_per_connection; /* uni streams one connection may ever open (0 =
					      * KBX_QUIC_SINK_STREAMS_PER_CONNECTION); see "Bounded memory" */
	uint32_t agave_qos;        /* nonzero: Agave's stake-weighted QoS (see "Agave's QoS" below) */
	uint32_t max_streams_per_ms; /* agave_qos: the sink's capacity (0 = KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS) */
	uint32_t max_connections_per_ipaddr_per_min; /* agave_qos: 0 = KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN */
	uint32_t reuse_port;       /* nonzero: SO_REUSEPORT, so several sinks (workers) share local_port; the kernel
				    * spreads datagrams over their sockets by 4-tuple hash */
};

struct kbx_quic_sink_stats {
	uint64_t connections_accepted;
	uint64_t connections_open;
	uint64_t connections_closed;
	uint64_t handshakes;
	uint64_t handshake_failures;
	uint64_t transactions;
	uint64_t bytes;
	uint64_t rejected;          /* streams over KBX_QUIC_MAX_TX_SIZE or empty: connection closed */
	uint64_t streams_uni;
	uint64_t streams_bidi;
	uint64_t packets_received;
	uint64_t packets_sent;
	uint64_t packets_dropped;   /* not for any connection and not a valid Initial */
	uint64_t client_certificates; /* handshakes where the client presented a certificate */
	uint64_t connections_stream_limited; /* closed with KBX_QUIC_APP_ERROR_STREAM_LIMIT */
	/* agave_qos: Agave's StreamerStats counters, under its names */
	uint64_t connection_rate_limited_per_ipaddr;          /* new connections ignored: over the per-IP rate */
	uint64_t refused_connections_too_many_open_connections; /* new connections ignored: max_connections open */
	uint64_t connection_added_from_staked_peer;
	uint64_t connection_added_from_unstaked_peer;
	uint64_t connection_add_failed;                       /* over the per-identity limit (both kinds) */
	uint64_t connection_add_failed_staked_node;
	uint64_t connection_add_failed_unstaked_node;
	uint64_t throttled_streams;                           /* streams held back by the stream rate */
	uint64_t throttled_staked_streams;
	uint64_t throttled_unstaked_streams;
	uint64_t open_staked_connections;                     /* now */
	uint64_t open_unstaked_connections;                   /* now */
	uint64_t staked_stream_load_ema;                      /* staked streams per 5 ms, smoothed */
	uint64_t staked_throttling_enabled;                   /* 1 while the staked load is over 95 % of capacity */
	uint64_t last_admitted_max_streams; /* MAX_STREAMS (uni) granted to the most recently admitted connection */
};

int kbx_quic_sink_create(const struct kbx_quic_sink_config *config, const char *alpn,
			 const struct kbx_quic_identity *id, struct kbx_quic_sink **out);
/* Bound UDP port (useful with local_port 0). */
uint32_t kbx_quic_sink_port(const struct kbx_quic_sink *s);
int kbx_quic_sink_run(struct kbx_quic_sink *s, uint32_t max_ms);
void kbx_quic_sink_stats(struct kbx_quic_sink *s, struct kbx_quic_sink_stats *out);
/*
 * Agave's QoS (config agave_qos), after Agave's streamer (nonblocking/quic.rs, swqos.rs, stream_throttle.rs):
 * - a client's identity is the Ed25519 key of its certificate; its stake comes from kbx_quic_sink_set_stakes.
 *   A stake below 1 / (max_streams_per_ms x 100) of the total counts as unstaked.
 * - new connections: at most max_connections_per_ipaddr_per_min per source IP (GCRA, a burst of as many),
 *   and max_connections open; over either, the Initial is ignored (as quinn's incoming.ignore()).
 * - after the handshake: at most 8 connections per unstaked identity, 16 per staked one; one more is closed
 *   with KBX_QUIC_APP_ERROR_TOO_MANY.
 * - concurrent uni streams (MAX_STREAMS, 0 before the handshake): kbx_quic_qos_max_uni_streams.
 * - stream rate per connection, per 100 ms window: kbx_quic_qos_stream_capacity. A stream over it is counted
 *   throttled and its credit comes back in the next window (Agave stops reading for the rest of the window).
 * - idle timeout 2 s unless idle_timeout_ms says otherwise.
 */
#define KBX_QUIC_QOS_UNSTAKED_STREAMS 128
#define KBX_QUIC_QOS_MIN_STAKED_STREAMS 128
#define KBX_QUIC_QOS_MAX_STAKED_STREAMS 512
#define KBX_QUIC_QOS_TOTAL_STAKED_STREAMS 100000
#define KBX_QUIC_QOS_CONNECTIONS_PER_UNSTAKED_PEER 8
#define KBX_QUIC_QOS_CONNECTIONS_PER_STAKED_PEER 16
#define KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN 8
#define KBX_QUIC_QOS_MAX_UNSTAKED_TPS 200
#define KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS 500
#define KBX_QUIC_QOS_THROTTLING_INTERVAL_MS 100
#define KBX_QUIC_QOS_LOAD_EMA_INTERVAL_MS 5
#define KBX_QUIC_QOS_IDLE_TIMEOUT_MS 2000
#define KBX_QUIC_QOS_MAX_STAKES 1000000

/* MAX_STREAMS for a peer: 128 unstaked (stake 0); staked 128 + its share of 100000, within 128..512. */
uint32_t kbx_quic_qos_max_uni_streams(uint64_t stake, uint64_t total_stake);
/* Whether a stake counts as staked (at least one stream per throttling window at max_streams_per_ms). */
int kbx_quic_qos_is_staked(uint64_t stake, uint64_t total_stake, uint32_t max_streams_per_ms);
/*
 * Streams a connection may start per 100 ms window: unstaked 20 (200/s); staked 80 % of max_streams_per_ms x
 * 100, or, while the sink is loaded, that times its stake share (at least one more than unstaked).
 */
uint64_t kbx_quic_qos_stream_capacity(uint64_t stake, uint64_t total_stake, uint32_t max_streams_per_ms, int loaded);
/* A GCRA rate limiter (theoretical arrival time); zeroed = full burst available. */
struct kbx_quic_rate_limiter {
	uint64_t tat_ns;
};
/* 1 when one more event fits: at most burst at once, then one per interval_ns. */
int kbx_quic_rate_limiter_allow(struct kbx_quic_rate_limiter *r, uint32_t burst, uint64_t interval_ns, uint64_t now_ns);
/* A connection's stream count in its current throttling window; zeroed = a fresh window. */
struct kbx_quic_stream_window {
	uint64_t start_ns;
	uint64_t count;
};
/* 1 when one more stream fits in the window at now (a window older than 100 ms starts again), counting it. */
int kbx_quic_stream_window_admit(struct kbx_quic_stream_window *w, uint64_t capacity, uint64_t now_ns);
/*
 * The stake table (agave_qos): count Ed25519 public keys (32 bytes each, concatenated) and their lamports;
 * replaces the previous table. Connections already admitted keep their limits.
 */
int kbx_quic_sink_set_stakes(struct kbx_quic_sink *s, const uint8_t *keys, const uint64_t *lamports, uint32_t count);

/* Copies the Ed25519 public key of the most recent client certificate; returns 1, or 0 when none seen. */
int kbx_quic_sink_last_peer_key(const struct kbx_quic_sink *s, uint8_t *out32);
/* The distinct client public keys seen (the first KBX_QUIC_SINK_PEER_KEYS): copies up to cap, returns how many. */
#define KBX_QUIC_SINK_PEER_KEYS 64
int kbx_quic_sink_peer_keys(const struct kbx_quic_sink *s, uint8_t (*out)[32], uint32_t cap);
void kbx_quic_sink_destroy(struct kbx_quic_sink *s);
/*
 * Workers: n sinks (1..KBX_QUIC_MAX_WORKERS) bound to one port with reuse_port, before any traffic. With
 * agave_qos they then share one QoS state (quic_sink_qos.c: per-IP rate, per-identity connection counts,
 * the total connection cap and the staked load, under a mutex and atomics), so every limit holds for the
 * whole sink; the stake table stays each sink's own (set it on every one).
 */
int kbx_quic_sink_link(struct kbx_quic_sink *const *sinks, uint32_t n);

#ifdef KBX_QUIC_INTERNAL
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/abstract.h>
#include <ngtcp2/ngtcp2.h>

struct kbx_quic_identity {
	gnutls_x509_crt_t crt;
	gnutls_x509_privkey_t key;
	uint8_t public_key[32];
};

uint64_t kbx_quic_now(void);
/* Certificate credentials holding the identity's certificate and key. */
int kbx_quic_credentials(const struct kbx_quic_identity *id, gnutls_certificate_credentials_t *out);
void kbx_quic_rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx);
extern const char kbx_quic_tls_priority[];

/* The ALPN a flooder or sink offers, and gnutls' view of it. */
struct kbx_quic_alpn {
	char name[KBX_QUIC_MAX_ALPN_LEN + 1];
	gnutls_datum_t datum;
};
/* Copies alpn (1..KBX_QUIC_MAX_ALPN_LEN bytes; -EINVAL otherwise, recorded with kbx_fail). */
int kbx_quic_alpn_init(struct kbx_quic_alpn *out, const char *alpn);
/* TLS 1.3 priorities, the certificate credentials and the mandatory ALPN on a QUIC session (0 or gnutls' error). */
int kbx_quic_tls_session_configure(gnutls_session_t session, gnutls_certificate_credentials_t cred,
				   const struct kbx_quic_alpn *alpn);
/* The callbacks every connection sets the same way (ngtcp2_crypto's, randomness); the caller adds its own. */
void kbx_quic_common_callbacks(ngtcp2_callbacks *cb);
/*
 * Points msgs[i] at bufs[i] (and, when addrs is not NULL, its source address at addrs[i]) for recvmmsg;
 * recvmmsg overwrites msg_len and msg_namelen, so this runs before every call.
 */
#define KBX_QUIC_RX_BUFFER 2048
struct mmsghdr;
struct iovec;
struct sockaddr_in;
void kbx_quic_recv_batch_prepare(struct mmsghdr *msgs, struct iovec *iovs, uint8_t (*bufs)[KBX_QUIC_RX_BUFFER],
				 struct sockaddr_in *addrs, unsigned count);
#endif

#ifdef __cplusplus
}
#endif

#endif /* KBX_QUIC_H */
