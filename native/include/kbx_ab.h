/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ab-arbitrate's receive loop: the AF_XDP sockets of both lines (sharing one UMEM), read batch by batch
 * in C. Every delivered packet is parsed here (bpf/include/ab_format.h), counted per line and per
 * stream, and its sequence numbers are tracked per stream against the next expected one, so that a hole
 * is reported as a gap once the window has moved past it (a late copy that fills it before then is not a
 * gap). One call per batch: TypeScript reads the cumulative counters, the event records of the call (gaps,
 * restarts, session ends) and, when it asked for them, copies of the delivered frames.
 *
 * Restarts follow the XDP program's rules (bpf/include/ab_arbitrate.h): a number reset_distance or more
 * from the newest, either way, starts a new epoch; the new numbers continue above a reserve, and late copies
 * of the old numbering (the other line restarts later) still fill the old epoch's holes. Numbers of the
 * reserve that never arrived are not gaps. A moldudp64 end-of-session closes its session: the holes below
 * its next number become gaps once the end arrived on both lines (or at the end), and the next new session
 * is reported as the restart that follows it.
 *
 * Not thread-safe; one thread drives the loop and the UMEM. Negative errno on failure.
 */
#ifndef KBX_AB_H
#define KBX_AB_H

#include <stdint.h>

#include "kbx_xsk.h"
#include "ab_arbitrate.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KBX_AB_MAX_SOCKETS 64
/* Descriptors taken per socket per call when kbx_ab_rx_config.batch_size is 0. */
#define KBX_AB_DEFAULT_BATCH 64
/* Ended sessions waiting for the new session that follows them (a restart). */
#define KBX_AB_ENDED_QUEUE 64

struct kbx_ab_rx;

/*
 * The limits and defaults of ab_arbitrate.h and this header, for bindings that cannot read a header
 * (TypeScript checks options with them and takes its defaults from them).
 */
struct kbx_ab_limits {
	uint32_t min_window;
	uint32_t max_window;
	uint32_t default_streams;
	uint32_t max_streams;
	uint64_t default_reset_distance;
	uint64_t max_reset_distance;
	uint32_t default_window;
	uint32_t default_batch;
	uint32_t default_skew_sample;
	uint32_t max_skew_sample;
};

void kbx_ab_limits(struct kbx_ab_limits *out);

struct kbx_ab_rx_config {
	uint32_t format;         /* enum ab_format */
	uint32_t window;         /* power of two AB_MIN_WINDOW..AB_MAX_WINDOW (default AB_DEFAULT_WINDOW): how far
				    past a hole before it is a gap */
	uint32_t max_streams;    /* streams tracked (default AB_DEFAULT_STREAMS); packets of further streams: untracked */
	uint32_t batch_size;     /* descriptors taken per socket per call (default KBX_AB_DEFAULT_BATCH) */
	uint64_t reset_distance; /* a number this far from the newest, either way, restarts the stream
				    (default AB_DEFAULT_RESET_DISTANCE) */
	uint32_t busy_poll_us;   /* with nothing to take, kbx_ab_rx_poll spins on the RX rings this long (at most its
				    timeout; UINT32_MAX: the whole timeout) before it sleeps in poll(). A loop that
				    does not sleep is not woken by the kernel (in copy mode that wake-up is paid in
				    the sender's softirq, for every batch); 0: sleep at once */
	uint32_t xdp_arrival;    /* 1: the XDP program stamps first copies (its arrival_stamp, struct
				    ab_arrival_meta): delivered messages carry that XDP arrival time instead of the
				    batch's clock, and the loop keeps a histogram of XDP arrival -> taken from the
				    RX ring (kbx_ab_rx_arrival_stats) */
};

/* Cumulative counters, read by TypeScript after each call (all u64). */
struct kbx_ab_rx_counters {
	uint64_t delivered;       /* feed packets received over AF_XDP */
	uint64_t delivered_a;
	uint64_t delivered_b;
	uint64_t bytes;
	uint64_t messages;        /* moldudp64: sum of message counts; optiq: = delivered */
	uint64_t gaps;            /* gap records emitted */
	uint64_t gap_messages;    /* sequence numbers in them */
	uint64_t late_fills;      /* holes filled by a late copy before the window passed them */
	uint64_t after_gap;       /* numbers arriving after their hole was reported (behind the window) */
	uint64_t repeated;        /* numbers delivered twice (must stay 0: the XDP program arbitrates) */
	uint64_t resets;          /* sequence restarts of a stream (KBX_AB_EVENT_RESTART) */
	uint64_t not_feed;        /* frames that were not parseable feed packets */
	uint64_t untracked;       /* packets of streams beyond max_streams */
	uint64_t streams;         /* streams ever tracked (closed sessions included) */
	uint64_t copy_truncated;  /* calls that stopped early because the copy buffer was full */
	uint64_t batches;
	uint64_t first_delivery_ns; /* CLOCK_MONOTONIC of the first call that delivered a feed packet (0: none yet) */
	uint64_t last_delivery_ns;  /* ... and of the latest such call: the busy span of the feed */
	uint64_t sessions_ended;  /* moldudp64 sessions closed by an end-of-session */
	uint64_t new_sessions;    /* new sessions that followed an ended one (KBX_AB_EVENT_NEW_SESSION) */
	uint64_t old_epoch;       /* numbers of the numbering before a restart, delivered after it */
	uint64_t unplaced;        /* old-epoch numbers that cannot be placed (too late, or beyond the reserve): not tracked */
	uint64_t end_copies;      /* end-of-session packets received (every copy) */
	uint64_t sessions_closed; /* ended sessions removed from the table (the end came on both lines) */
	/* MoldUDP64 recovery (kbx_ab_rx_enable_recovery); all 0 without it. */
	uint64_t gaps_recovered;      /* gap records whose every message was recovered */
	uint64_t gaps_unrecovered;    /* gap records declared lost after the retries (or not requestable) */
	uint64_t recovered_messages;  /* messages delivered from answers */
	uint64_t recovery_requests;   /* request packets sent */
	uint64_t recovery_answers;    /* answer packets received */
	uint64_t recovery_duplicates; /* answered messages already recovered, or never requested */
	uint64_t recovery_pending;    /* gaps waiting for their answers now */
	uint64_t recovery_refused;    /* gaps not requested: the table (KBX_AB_RECOVERY_SLOTS) was full or the gap
					 larger than KBX_AB_RECOVERY_MAX_GAP */
	uint64_t answers_malformed;   /* answer packets that were not MoldUDP64 downstream packets */
	uint64_t holes_expired;       /* holes declared missing on both lines by time (the wait) rather than the window */
	uint64_t late_line_fills;     /* messages of a waiting gap that a line's late copy brought (delivered) */
	uint64_t late_line_dropped;   /* late line copies of messages already recovered or of a settled gap (not delivered) */
	/* Sequence order (kbx_ab_rx_enable_order); all 0 without it. */
	uint64_t held;               /* packets that waited for a hole before them */
	uint64_t held_now;           /* packets waiting now */
	uint64_t holes_skipped;      /* holes given up on (hold_ns passed, the hold was full, or the end) */
	uint64_t skipped_messages;   /* numbers in them */
	uint64_t order_late;         /* packets behind the delivered sequence (their hole was given up on): not delivered */
	uint64_t hold_overflow;      /* holes given up on because the hold was full */
	uint64_t order_unordered;    /* packets of streams beyond the order table (max_streams): delivered as they came */
	/* XDP arrival stamps (config xdp_arrival); both 0 without them. */
	uint64_t arrival_stamped;    /* feed packets that carried the XDP program's arrival stamp */
	uint64_t arrival_unstamped;  /* feed packets without one (they carry the batch's clock instead) */
};

enum kbx_ab_event_kind {
	KBX_AB_EVENT_GAP = 0,         /* from..to (inclusive, raw numbers) missing on both lines; count */
	KBX_AB_EVENT_RESTART = 1,     /* the stream's numbering restarted: from = newest before, to = first after */
	KBX_AB_EVENT_NEW_SESSION = 2, /* a new session followed `previous` (ended): from = its end's next
					 number, to = the new session's first number */
	KBX_AB_EVENT_SESSION_END = 3, /* end-of-session: from = the next number it announced */
	KBX_AB_EVENT_SESSION_CLOSED = 4, /* the end arrived on both lines: the session left the table (the
					    caller removes it from the XDP program's too) */
};

/* An event of one stream: a gap, a restart, a session end. */
struct kbx_ab_event {
	uint8_t key[16]; /* struct ab_stream_key */
	uint64_t from;
	uint64_t to;
	uint64_t count;
	uint32_t kind;   /* enum kbx_ab_event_kind */
	uint32_t outcome; /* KBX_AB_EVENT_GAP with recovery: enum kbx_ab_gap_outcome */
	uint8_t previous[16]; /* KBX_AB_EVENT_NEW_SESSION: the ended session's key */
	uint64_t recovery_ns; /* KBX_AB_GAP_RECOVERED: from the hole's declaration to its last recovered message */
};

enum kbx_ab_gap_outcome {
	KBX_AB_GAP_UNREQUESTED = 0, /* no recovery configured */
	KBX_AB_GAP_RECOVERED = 1,
	KBX_AB_GAP_LOST = 2, /* the retries passed without every message answered */
};

/*
 * A delivered frame in the copy buffer: this header, then `len` bytes of frame, then padding to 8 bytes.
 * Record size = sizeof header + ((len + 7) & ~7).
 */
struct kbx_ab_record {
	uint32_t len;
	uint32_t line; /* 0 = A, 1 = B */
	uint64_t realtime_ns;
	uint64_t sequence;
	uint8_t key[16];
};

int kbx_ab_rx_create(const struct kbx_ab_rx_config *config, struct kbx_ab_rx **out);
/*
 * Adds the UMEM's socket with this fd (it needs an RX ring) as line 0 (A) or 1 (B); all sockets of a
 * loop share one UMEM. Bindings that only hold the UMEM's handle and a socket's fd can use it directly.
 */
int kbx_ab_rx_add_socket(struct kbx_ab_rx *rx, struct kbx_umem *umem, int fd, uint32_t line);
/* Releases held frames; the sockets stay the caller's. */
void kbx_ab_rx_destroy(struct kbx_ab_rx *rx);

/*
 * One batch from every socket (poll()s them all for up to timeout_ms when none has anything).
 * events: room for capacity records (the rest wait for the next call);
 * copy/copy_capacity: 0 for no copies, else a buffer that receives struct kbx_ab_record entries; the
 * call takes no more packets than fit whole. *copied_bytes receives the bytes used.
 * Returns the number of gap records written, or a negative errno.
 */
int kbx_ab_rx_poll(struct kbx_ab_rx *rx, struct kbx_ab_event *events, uint32_t capacity, uint8_t *copy,
		   uint32_t copy_capacity, uint32_t *copied_bytes, int timeout_ms);
/* At the end: every hole below each stream's highest number becomes a gap. Returns records written. */
int kbx_ab_rx_flush(struct kbx_ab_rx *rx, struct kbx_ab_event *events, uint32_t capacity);
/*
 * The receive path of one frame without a socket (tests, fuzzers): parsed, counted and tracked exactly as
 * kbx_ab_rx_poll does with a delivered frame. Returns 1 for feed data, 0 otherwise; events wait for
 * kbx_ab_rx_take_events.
 */
int kbx_ab_rx_ingest(struct kbx_ab_rx *rx, const uint8_t *frame, uint32_t len, uint32_t line);
int kbx_ab_rx_take_events(struct kbx_ab_rx *rx, struct kbx_ab_event *events, uint32_t capacity);
/*
 * Delivered messages also go to these outputs (include/kbx_ab_out.h: kbx_ab_out_emit per delivered message,
 * kbx_ab_out_flush per call); NULL: none. The outputs stay the caller's (destroy them after the loop).
 */
struct kbx_ab_out;
void kbx_ab_rx_set_output(struct kbx_ab_rx *rx, struct kbx_ab_out *out);

/*
 * MoldUDP64 gap recovery (moldudp64 feeds only; native/src/ab_recover.c). A hole is declared missing on both
 * lines when the window passes it or when it stayed open for wait_ns, whichever comes first; then request
 * packets (the MoldUDP64 request: 10-byte session, 8-byte sequence, 2-byte count, big-endian) go by UDP to the
 * server, each for at most max_request messages; missing messages are requested again after timeout_ns,
 * doubled each time, `retries` times. The server answers with MoldUDP64 downstream packets to the socket
 * that asked; every answered message of a hole is delivered (a copy record of line KBX_AB_LINE_RECOVERY, its
 * frame a downstream packet of that one message) once. A line's copy that comes late (after its hole was
 * declared) fills its message too and is delivered unless the message was delivered already (then it is
 * dropped: with recovery, each number is delivered at most once, whichever way it came). The gap's record waits for its outcome: recovered
 * (every message) or lost (after the retries). At most KBX_AB_RECOVERY_SLOTS gaps wait at once and a gap of
 * more than KBX_AB_RECOVERY_MAX_GAP messages is not requested: both are lost at once (recovery_refused).
 */
#define KBX_AB_RECOVERY_SLOTS 1024
#define KBX_AB_RECOVERY_MAX_GAP (1u << 20)
#define KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST 2000 /* CME's cap on a replay request */
#define KBX_AB_LINE_RECOVERY 2
#define KBX_AB_MOLD_REQUEST_SIZE 20

struct kbx_ab_recovery_config {
	uint32_t server_ip;   /* IPv4, network order */
	uint32_t server_port; /* host order */
	uint32_t max_request; /* messages per request (default KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST), 1..65534 */
	uint32_t retries;     /* requests sent again before a gap is lost */
	uint64_t wait_ns;     /* a hole open this long is requested (0: only once the window passes it) */
	uint64_t timeout_ns;  /* the first retry after this; doubled for each further one */
};

/* Opens the UDP socket the requests leave from and the answers come to. -EINVAL for an optiq loop. */
int kbx_ab_rx_enable_recovery(struct kbx_ab_rx *rx, const struct kbx_ab_recovery_config *config);

/*
 * Sequence order (native/src/ab_order.c): per stream, packets are delivered strictly in sequence. A packet
 * after a hole waits (a copy in the hold) until the hole is filled by the other line or recovered, or until
 * it waited hold_ns: then the hole is given up on (holes_skipped) and what waits behind it goes out; a packet
 * of a hole given up on, arriving later, is not delivered (order_late). The hold keeps at most hold_max
 * packets of at most KBX_AB_HOLD_FRAME_MAX bytes (hold_max * 2 KiB of memory); when it is full the hole of
 * the arriving packet's stream is given up on at once (hold_overflow). A restart of a stream (a number
 * reset_distance away) releases what it held. Held times go into a kbx_histogram.h histogram.
 */
#define KBX_AB_DEFAULT_HOLD_MAX 8192
#define KBX_AB_HOLD_FRAME_MAX 2048
#define KBX_AB_HOLD_SUB_BITS 4
#define KBX_AB_HOLD_VALUE_BITS 40
#define KBX_AB_HOLD_BUCKETS ((KBX_AB_HOLD_VALUE_BITS - KBX_AB_HOLD_SUB_BITS + 1) << KBX_AB_HOLD_SUB_BITS)

struct kbx_ab_order_config {
	uint64_t hold_ns;  /* longest wait for a hole */
	uint32_t hold_max; /* packets held at most (default KBX_AB_DEFAULT_HOLD_MAX) */
	uint32_t reserved;
};

/* How long delivered packets were held (those that waited), in ns. */
struct kbx_ab_hold_stats {
	uint64_t count;
	uint64_t min_ns;
	uint64_t max_ns;
	uint64_t sum_ns;
	uint64_t buckets[KBX_AB_HOLD_BUCKETS];
};

int kbx_ab_rx_enable_order(struct kbx_ab_rx *rx, const struct kbx_ab_order_config *config);
/* At the end: every hole is given up on at the next polls, so everything held is delivered. */
void kbx_ab_rx_release_held(struct kbx_ab_rx *rx);
void kbx_ab_rx_hold_stats(const struct kbx_ab_rx *rx, struct kbx_ab_hold_stats *out);
/*
 * With xdp_arrival: how long stamped feed packets took from the XDP program to the receive loop taking them
 * from the RX ring (CLOCK_MONOTONIC ns, the same histogram layout as the hold's).
 */
void kbx_ab_rx_arrival_stats(const struct kbx_ab_rx *rx, struct kbx_ab_hold_stats *out);

/* Copies the cumulative counters. */
void kbx_ab_rx_counters(const struct kbx_ab_rx *rx, struct kbx_ab_rx_counters *out);

/*
 * ab-feed's frame writer: a line's frames written in C a batch at a time. Item k of a plan (streams
 * interleaved) is number k / streams of stream k % streams; with restart_every > 0 a stream starts a new
 * session every restart_every numbers (numbering again from restart_seq; moldudp64: under a new session
 * name). A plan entry is an item number relative to its chunk, or KBX_AB_FEED_END_OF_SESSION | item: the
 * moldudp64 end-of-session packet after that item, announcing the number after it. The payloads are
 * @kbx/ab's encodeFeedPayload and encodeEndOfSession, byte for byte.
 */
#define KBX_AB_FEED_END_OF_SESSION 0x80000000u
#define KBX_AB_FEED_MAX_HEADER 64

struct kbx_ab_feed_config {
	uint32_t format;       /* enum ab_format */
	uint32_t streams;      /* streams of the plan, > 0 */
	uint32_t payload_len;  /* a data packet's payload: the format's minimum, or more (zero padding) */
	uint32_t header_len;   /* bytes of header[]: Ethernet, IPv4, UDP */
	uint32_t l3_offset;    /* the IPv4 header's offset in header[] */
	uint32_t udp_checksum; /* 0: UDP checksum left 0 */
	uint64_t start_seq;    /* a stream's first number */
	uint64_t restart_seq;  /* first number of every later session */
	uint64_t restart_every; /* numbers per session; 0: one session */
	uint8_t header[KBX_AB_FEED_MAX_HEADER]; /* the headers; lengths and checksums are written per frame */
};

/* One line's place in its chunk's plan; kbx_ab_feed_fill reads it and advances next. */
struct kbx_ab_feed_line {
	uint64_t entries;    /* address of the line's uint32_t entries[len] */
	uint64_t due;        /* address of uint32_t due[len]: the step at which each entry is sent */
	uint64_t first_item; /* item number of the chunk's entry 0 */
	uint32_t len;
	uint32_t next;       /* in/out: the first entry not yet written */
	uint32_t lag;        /* steps this line lags its plan */
	uint32_t up_to;      /* write the entries due (due + lag) before this step */
};

/*
 * Appends to b one UMEM frame per entry of the line, from next on, while the entry is due before up_to,
 * b has room and the UMEM has free frames; advances next past them. Returns how many it appended, or
 * -EINVAL for a config whose frames do not fit the UMEM's.
 */
int kbx_ab_feed_fill(const struct kbx_ab_feed_config *c, struct kbx_umem *umem, struct kbx_tx_batch *b,
		     struct kbx_ab_feed_line *line);
/* The frame of one entry (item relative to first_item) into out: returns its length, or -ENOSPC. */
int kbx_ab_feed_frame(const struct kbx_ab_feed_config *c, uint64_t first_item, uint32_t entry, uint8_t *out,
		      uint32_t capacity);

/*
 * ab-feed's MoldUDP64 request server: the answer to one request (KBX_AB_MOLD_REQUEST_SIZE bytes: session,
 * sequence, count) as a downstream packet in out, its messages rebuilt from their numbers exactly as
 * kbx_ab_feed_frame writes them (withheld numbers included). Served: items of the plan below `published`
 * (global item numbers, every stream) and not more than history * streams items below it. As many messages as
 * fit capacity; *messages receives how many (0: nothing to answer: unknown session, out of the history, a
 * count of 0). Returns the payload length, 0 for nothing, or -EINVAL for a malformed request or config.
 */
int kbx_ab_feed_answer(const struct kbx_ab_feed_config *c, const uint8_t *request, uint32_t len, uint64_t published,
		       uint64_t history, uint8_t *out, uint32_t capacity, uint32_t *messages);

#ifdef __cplusplus
}
#endif

#endif /* KBX_AB_H */
