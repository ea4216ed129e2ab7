/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Market-data feed formats understood by ab-arbitrate, in ONE place for the XDP program
 * (bpf/ab_arbitrate.bpf.c) and the native receive loop (native/src/ab_rx.c). The TypeScript side
 * (feeder, tests) mirrors it in packages/ab/src/format.ts.
 *
 * A format turns a UDP payload into (stream key, sequence number, message count):
 *
 *   optiq      the 36-byte struct below, ALL FIELDS LITTLE-ENDIAN (the layout of the seed's packed C
 *              struct on x86); stream = session_id, sequence = sequence_number (u32, wraps), count 1.
 *   moldudp64  Nasdaq MoldUDP64 downstream header: session[10] (ASCII), sequence u64 BIG-ENDIAN (number
 *              of the first message), message count u16 BIG-ENDIAN; stream = session. Count 0 is a
 *              heartbeat and 0xFFFF end-of-session: neither is data (AB_PARSE_HEARTBEAT / _END).
 *
 * Adding a format: an enum value, a parse function here, a branch in ab_parse_payload, and the TS encoder.
 * The functions take plain byte pointers with the length already checked by the caller (XDP: against
 * data_end; C: against the frame length), so they compile for BPF and for userspace alike.
 */
#ifndef KBX_AB_FORMAT_H
#define KBX_AB_FORMAT_H

#include <linux/types.h>

enum ab_format {
	AB_FORMAT_OPTIQ = 0,
	AB_FORMAT_MOLDUDP64 = 1,
};

#define AB_OPTIQ_SIZE 36
#define AB_MOLD_HEADER_SIZE 20
#define AB_MOLD_HEARTBEAT 0
#define AB_MOLD_END_OF_SESSION 0xFFFF

struct ab_optiq {
	__u8 version;
	__u8 optiq_length;
	__u16 service_id;
	__u32 session_id;
	__u32 sequence_number;
	__u64 timestamp;
	__u16 message_type;
	__u16 quantity;
	__u32 price;
	__u64 order_id;
} __attribute__((packed));

struct ab_mold_header {
	__u8 session[10];
	__u8 sequence[8]; /* big-endian */
	__u8 count[2];    /* big-endian */
} __attribute__((packed));

/* Identifies a stream: optiq {session_id, 0}, moldudp64 {session[0..8), session[8..10)}. */
struct ab_stream_key {
	__u64 id;
	__u32 id2;
	__u32 format;
};

enum ab_parse_result {
	AB_PARSE_DATA = 0,
	AB_PARSE_SHORT = 1,     /* payload too short for the format's header */
	AB_PARSE_HEARTBEAT = 2, /* moldudp64 count 0 */
	AB_PARSE_END = 3,       /* moldudp64 count 0xFFFF */
};

struct ab_message {
	struct ab_stream_key key;
	__u64 sequence;  /* optiq: the u32 sequence_number; moldudp64: the u64 */
	__u32 count;     /* messages in the packet (optiq 1) */
	__u32 seq_bits;  /* width of the sequence number: 32 or 64 (wrap arithmetic) */
};

static __always_inline __u64 ab_load_be64(const __u8 *p)
{
	return ((__u64)p[0] << 56) | ((__u64)p[1] << 48) | ((__u64)p[2] << 40) | ((__u64)p[3] << 32) |
	       ((__u64)p[4] << 24) | ((__u64)p[5] << 16) | ((__u64)p[6] << 8) | (__u64)p[7];
}

static __always_inline __u64 ab_load_le64(const __u8 *p)
{
	return ((__u64)p[7] << 56) | ((__u64)p[6] << 48) | ((__u64)p[5] << 40) | ((__u64)p[4] << 32) |
	       ((__u64)p[3] << 24) | ((__u64)p[2] << 16) | ((__u64)p[1] << 8) | (__u64)p[0];
}

static __always_inline __u32 ab_load_le32(const __u8 *p)
{
	return ((__u32)p[3] << 24) | ((__u32)p[2] << 16) | ((__u32)p[1] << 8) | (__u32)p[0];
}

/* The caller guarantees len >= AB_OPTIQ_SIZE bytes are readable at p. */
static __always_inline void ab_parse_optiq(const __u8 *p, struct ab_message *m)
{
	m->key.id = ab_load_le32(p + 4);
	m->key.id2 = 0;
	m->key.format = AB_FORMAT_OPTIQ;
	m->sequence = ab_load_le32(p + 8);
	m->count = 1;
	m->seq_bits = 32;
}

/* The caller guarantees AB_MOLD_HEADER_SIZE bytes are readable at p. */
static __always_inline int ab_parse_mold(const __u8 *p, struct ab_message *m)
{
	__u32 count = ((__u32)p[18] << 8) | p[19];
	m->key.id = ab_load_le64(p);
	m->key.id2 = (__u32)p[8] | ((__u32)p[9] << 8);
	m->key.format = AB_FORMAT_MOLDUDP64;
	m->sequence = ab_load_be64(p + 10);
	m->count = count;
	m->seq_bits = 64;
	if (count == AB_MOLD_HEARTBEAT)
		return AB_PARSE_HEARTBEAT;
	if (count == AB_MOLD_END_OF_SESSION)
		return AB_PARSE_END;
	return AB_PARSE_DATA;
}

/*
 * The sequence unwrap, ONE for the XDP program and the receive loop: the serial distance of m's raw number
 * from raw_ref (a raw number of the same stream) in the format's width (optiq u32 numbers wrap at 2^32,
 * moldudp64's at 2^64); negative when m is behind. A logical number L whose raw number is L - offset
 * unwraps m as L + ab_serial_distance(m, L - offset).
 */
static __always_inline __s64 ab_serial_distance(const struct ab_message *m, __u64 raw_ref)
{
	if (m->seq_bits == 32)
		return (__s32)((__u32)m->sequence - (__u32)raw_ref);
	return (__s64)(m->sequence - raw_ref);
}

/* |d| as an unsigned number (defined for every d, -2^63 included). */
static __always_inline __u64 ab_distance_magnitude(__s64 d)
{
	return d < 0 ? -(__u64)d : (__u64)d;
}

/* Bytes of payload a format needs before ab_parse_payload may be called. */
static __always_inline __u32 ab_header_size(__u32 format)
{
	return format == AB_FORMAT_MOLDUDP64 ? AB_MOLD_HEADER_SIZE : AB_OPTIQ_SIZE;
}

/* p holds at least ab_header_size(format) readable bytes. Returns enum ab_parse_result. */
static __always_inline int ab_parse_payload(__u32 format, const __u8 *p, struct ab_message *m)
{
	if (format == AB_FORMAT_MOLDUDP64)
		return ab_parse_mold(p, m);
	ab_parse_optiq(p, m);
	return AB_PARSE_DATA;
}

#endif /* KBX_AB_FORMAT_H */
