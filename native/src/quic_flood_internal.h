/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside quic-flood's engine (kbx_quic.h): the flooder's state, shared by quic_flood.c (the API and the
 * run loop), quic_flood_conn.c (one ngtcp2 connection: handshake, streams, reads, writes, close),
 * quic_io_socket.c and quic_io_xdp.c (the two I/O back-ends) and quic_frame.c (Ethernet/IPv4/UDP frames).
 * Not part of libkbx's interface.
 */
#ifndef KBX_QUIC_FLOOD_INTERNAL_H
#define KBX_QUIC_FLOOD_INTERNAL_H

#define KBX_QUIC_INTERNAL
#include "kbx_quic.h"
#include "kbx_xsk.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <ngtcp2/ngtcp2_crypto.h>

#define MAX_PACKET KBX_QUIC_MAX_DATAGRAM
#define HEADERS_LEN KBX_QUIC_FRAME_HEADERS
#define OUT_BATCH KBX_QUIC_TX_BATCH
#define RX_BATCH 64
#define RECORDS_PER_CONN 8192
#define MAX_PENDING 256 /* streams opened and not yet written, per connection */

enum conn_state { CONN_WAITING = 0, CONN_CONNECTING, CONN_ESTABLISHED, CONN_DEAD };

struct conn;
struct quic_udp_datagram;

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

/* A server slot of the fan-out (kbx_quic_flood_set_servers). */
struct server {
	struct kbx_quic_server_stats st; /* state, address and counters as reported */
	struct sockaddr_in remote;
	uint8_t dst_mac[8];
	uint64_t opened;        /* streams opened towards it (fanout ALL: its budget; SPREAD: its share) */
	uint64_t pace_start_ns; /* fanout ALL: its first handshake (its own pacing) */
	uint32_t next_tx;       /* fanout ALL: its own round-robin over the transactions */
	uint32_t established;   /* connections established now */
	uint64_t generation;    /* order of (re)activation: the oldest removed slot is reused first */
};

struct conn {
	struct kbx_quic_flood *f;
	struct server *server;
	uint32_t index;
	uint32_t server_index;
	uint32_t identity;
	uint64_t handshakes;
	uint64_t tx_acked;
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
	int conn_acked;        /* a transaction on this ngtcp2 connection was acknowledged */
};

struct out_packet {
	uint32_t len;
	uint8_t data[MAX_PACKET];
};

/* A datagram one worker received for another (kbx_quic_flood_link). */
struct handoff_packet {
	uint32_t len;
	uint32_t saddr; /* network order */
	uint16_t sport, dport;
	uint8_t ecn;
	uint8_t data[MAX_PACKET];
};
/*
 * A worker's inbox: other workers append under the lock to the active half; the owner swaps halves under
 * the lock and reads the other half alone (no other thread touches a half that is not active).
 */
struct flood_inbox {
	pthread_mutex_t lock;
	struct handoff_packet *half[2];
	uint32_t count[2];
	uint32_t active;
	int wake_fd; /* eventfd: readable once the active half holds a datagram (the owner may be asleep in poll) */
};

struct kbx_quic_flood {
	struct kbx_quic_flood_config cfg;
	struct kbx_quic_alpn alpn;
	gnutls_certificate_credentials_t creds[KBX_QUIC_MAX_IDENTITIES];
	uint32_t ncreds;
	struct server servers[KBX_QUIC_MAX_SERVERS];
	uint32_t nslots;        /* server slots (cfg.max_servers) */
	uint32_t per_server;    /* connection slots per server (cfg.connections) */
	uint64_t generation;
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
	struct kbx_quic_latency *latency; /* since the last kbx_quic_flood_take_latency */
	uint64_t last_io_ns;      /* last packet written or received (busy polling) */
	/* socket io */
	int gso;
	struct out_packet out[OUT_BATCH];
	uint32_t nout;
	/* xdp io: the caller's socket and UMEM */
	struct kbx_xsk *xsk;
	struct kbx_umem *umem;
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
	/* workers (kbx_quic_flood_link): every linked flooder, in port order, and this one's inbox */
	struct kbx_quic_flood *peers[KBX_QUIC_MAX_WORKERS];
	uint32_t npeers, self;
	struct flood_inbox *inbox;
};

/* quic_flood.c: where the next packet is written, and its hand-over to the back-end. */
uint8_t *flood_packet_buffer(struct kbx_quic_flood *f);
void flood_packet_written(struct kbx_quic_flood *f, struct conn *c, uint32_t len);
void flood_fail(struct kbx_quic_flood *f, int err);

/* quic_flood_conn.c */
int flood_conn_start(struct conn *c, uint64_t now);
void flood_conn_add_blocked_streams(struct conn *c, uint64_t ns);
void flood_conn_teardown(struct conn *c, uint64_t now, int send_close);
void flood_conn_close(struct conn *c, uint64_t now, const char *why, int send_close);
void flood_conn_rotate(struct conn *c, uint64_t now);
void flood_conn_expire(struct conn *c, uint64_t now);
void flood_open_streams(struct conn *c, uint64_t now);
int flood_conn_write(struct conn *c, uint64_t now);
void flood_conn_read(struct conn *c, const uint8_t *data, size_t len, uint8_t ecn, uint64_t now);

/* quic_flood_servers.c: the server slots, their connections' records and their reports */
int flood_servers_init(struct kbx_quic_flood *f);
void flood_server_close_record(struct conn *c, uint64_t code, const char *reason);
/* A connection's close in its server's report: the server's CONNECTION_CLOSE (code, reason) when it sent one, else ours. */
void flood_server_count_close(struct conn *c, const char *why, int sent_by_us);
/* Retires the connections of removing servers; marks a server removed once none is left. */
void flood_servers_retire(struct kbx_quic_flood *f, uint64_t now);
/* fanout SPREAD: the fewest streams opened towards a server (but except) that can take a stream now;
 * UINT64_MAX when none can. */
uint64_t flood_spread_floor(struct kbx_quic_flood *f, const struct server *except);

/* quic_io_socket.c */
int flood_socket_reserve_ports(struct kbx_quic_flood *f);
int flood_socket_connect(struct kbx_quic_flood *f, struct conn *c);
void flood_socket_flush(struct kbx_quic_flood *f, struct conn *c);
int flood_socket_receive(struct kbx_quic_flood *f, struct conn *c, uint64_t now);

/* quic_io_xdp.c */
int flood_xdp_attach(struct kbx_quic_flood *f);
uint8_t *flood_xdp_buffer(struct kbx_quic_flood *f);
void flood_xdp_written(struct kbx_quic_flood *f, struct conn *c, uint32_t len);
int flood_xdp_flush(struct kbx_quic_flood *f);
int flood_xdp_receive(struct kbx_quic_flood *f, uint64_t now);
void flood_xdp_release(struct kbx_quic_flood *f);

/* quic_workers.c: the hand-over between linked flooders */
/* Copies a datagram for port dport to the worker that owns it: 1, or 0 when no linked worker owns it. */
int flood_handoff(struct kbx_quic_flood *f, const struct quic_udp_datagram *d, uint16_t dport);
/* Reads what other workers handed over to f into its connections; returns how many datagrams. */
int flood_handoff_drain(struct kbx_quic_flood *f, uint64_t now);
void flood_inbox_free(struct kbx_quic_flood *f);

/* quic_frame.c: Ethernet + IPv4 + UDP frames (no VLAN tags, no IP options on output). */
struct quic_udp_route {
	const uint8_t *src_mac, *dst_mac;
	const struct sockaddr_in *local, *remote; /* network order, as sockets hold them */
};
struct quic_udp_datagram {
	const uint8_t *payload;
	uint32_t len;
	uint32_t saddr;        /* network order */
	uint16_t sport, dport; /* network order */
	uint8_t ecn;
};
/* Writes the headers in front of a payload already at frame + HEADERS_LEN, with IPv4 and UDP checksums. */
void quic_frame_build_udp(uint8_t *frame, const struct quic_udp_route *route, uint16_t ip_id, uint32_t payload_len);
/* An IPv4 UDP datagram in an Ethernet frame: 0, or -1 when the frame is anything else or truncated. */
int quic_frame_parse_udp(const uint8_t *frame, uint32_t len, struct quic_udp_datagram *out);

/* Counts one send->ack latency into the flooder's histogram (kbx_histogram.h buckets). */
static inline void quic_latency_record(struct kbx_quic_latency *h, uint64_t ns)
{
	h->buckets[kbx_hist_index(ns, KBX_QUIC_LATENCY_SUB_BITS)]++;
	if (!h->count || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->count++;
	h->sum_ns += ns;
}

#endif /* KBX_QUIC_FLOOD_INTERNAL_H */
