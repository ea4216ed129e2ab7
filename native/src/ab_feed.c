// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* ab-feed's frame writer; see include/kbx_ab.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ab_format.h"
#include "kbx_ab.h"
#include "kbx_frame.h"
#include "xsk_internal.h"

#define MOLD_END_OF_SESSION 0xffffu
#define MOLD_MESSAGE_LENGTH 2

struct item_number {
	uint32_t stream;
	uint64_t session;
	uint64_t sequence; /* wrapped to the format's width */
};

static struct item_number item_number(const struct kbx_ab_feed_config *c, uint64_t k)
{
	uint64_t offset = k / c->streams;
	struct item_number n = { .stream = (uint32_t)(k % c->streams) };

	n.session = c->restart_every ? offset / c->restart_every : 0;
	n.sequence = (n.session ? c->restart_seq : c->start_seq) + (offset - n.session * c->restart_every);
	if (c->format == AB_FORMAT_OPTIQ)
		n.sequence = (uint32_t)n.sequence;
	return n;
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* A mold session name: S + 9 digits of the stream for the first session, R + 4 base-36 digits + 5 after. */
static void mold_session_name(uint8_t out[10], uint32_t stream, uint64_t session)
{
	static const char digits36[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	char name[24];
	int n;

	if (session == 0) {
		n = snprintf(name, sizeof(name), "S%09u", stream);
	} else {
		char s36[16];
		int len = 0;
		for (uint64_t v = session; v; v /= 36)
			s36[len++] = digits36[v % 36];
		name[0] = 'R';
		n = 1;
		for (int i = len; i < 4; i++)
			name[n++] = '0';
		while (len)
			name[n++] = s36[--len];
		n += snprintf(name + n, sizeof(name) - (size_t)n, "%05u", stream);
	}
	memset(out, ' ', 10);
	memcpy(out, name, n < 10 ? (size_t)n : 10);
}

static uint32_t data_payload(const struct kbx_ab_feed_config *c, const struct item_number *n, uint8_t *p)
{
	memset(p, 0, c->payload_len);
	if (c->format == AB_FORMAT_OPTIQ) {
		struct ab_optiq *m = (struct ab_optiq *)p;
		m->version = 1;
		m->optiq_length = sizeof(*m);
		put_le((uint8_t *)&m->session_id, 1000 + n->stream, 4);
		put_le((uint8_t *)&m->sequence_number, n->sequence, 4);
		put_le((uint8_t *)&m->order_id, n->sequence, 8);
		return c->payload_len;
	}
	struct ab_mold_header *h = (struct ab_mold_header *)p;
	mold_session_name(h->session, n->stream, n->session);
	put_be(h->sequence, n->sequence, 8);
	put_be(h->count, 1, 2);
	put_be(p + sizeof(*h), c->payload_len - sizeof(*h) - MOLD_MESSAGE_LENGTH, MOLD_MESSAGE_LENGTH);
	return c->payload_len;
}

static uint32_t end_of_session_payload(const struct item_number *last, uint8_t *p)
{
	struct ab_mold_header *h = (struct ab_mold_header *)p;

	mold_session_name(h->session, last->stream, last->session);
	put_be(h->sequence, last->sequence + 1, 8);
	put_be(h->count, MOLD_END_OF_SESSION, 2);
	return sizeof(*h);
}

static bool config_valid(const struct kbx_ab_feed_config *c)
{
	uint32_t least = c->format == AB_FORMAT_OPTIQ ? sizeof(struct ab_optiq) : sizeof(struct ab_mold_header) + MOLD_MESSAGE_LENGTH;
	uint32_t ip_udp = KBX_IPV4_HEADER_LEN + KBX_UDP_HEADER_LEN;

	return c->streams > 0 && c->header_len <= KBX_AB_FEED_MAX_HEADER && c->l3_offset + ip_udp <= c->header_len &&
	       (c->format == AB_FORMAT_OPTIQ || c->format == AB_FORMAT_MOLDUDP64) && c->payload_len >= least &&
	       c->payload_len <= 0xffff - ip_udp;
}

static uint32_t write_frame(const struct kbx_ab_feed_config *c, uint64_t first_item, uint32_t entry, uint8_t *out)
{
	struct item_number n = item_number(c, first_item + (entry & ~KBX_AB_FEED_END_OF_SESSION));
	uint8_t *payload = out + c->header_len;
	uint32_t len;

	memcpy(out, c->header, c->header_len);
	if (entry & KBX_AB_FEED_END_OF_SESSION)
		len = end_of_session_payload(&n, payload);
	else
		len = data_payload(c, &n, payload);
	kbx_finish_ipv4_udp(out + c->l3_offset, len, c->udp_checksum != 0);
	return c->header_len + len;
}

int kbx_ab_feed_frame(const struct kbx_ab_feed_config *c, uint64_t first_item, uint32_t entry, uint8_t *out,
		      uint32_t capacity)
{
	if (!config_valid(c))
		return kbx_fail(-EINVAL, "write an ab-feed frame", "streams, header (%u bytes), format or payload (%u bytes) "
				"out of range", c->header_len, c->payload_len);
	if (c->header_len + c->payload_len > capacity)
		return kbx_fail(-ENOSPC, "write an ab-feed frame", "%u header + %u payload bytes do not fit %u",
				c->header_len, c->payload_len, capacity);
	return (int)write_frame(c, first_item, entry, out);
}

int kbx_ab_feed_fill(const struct kbx_ab_feed_config *c, struct kbx_umem *umem, struct kbx_tx_batch *b,
		     struct kbx_ab_feed_line *line)
{
	const uint32_t *entries = (const uint32_t *)(uintptr_t)line->entries;
	const uint32_t *due = (const uint32_t *)(uintptr_t)line->due;
	uint32_t want = 0, got;

	if (!config_valid(c) || c->header_len + c->payload_len > umem->config.frame_size) {
		return kbx_fail(-EINVAL, "write ab-feed frames", "%u header + %u payload bytes, %u-byte frames",
				c->header_len, c->payload_len, umem->config.frame_size);
	}
	while (line->next + want < line->len && b->count + want < b->capacity &&
	       (uint64_t)due[line->next + want] + line->lag < line->up_to)
		want++;
	b->fresh = b->count;
	got = want ? (uint32_t)kbx_umem_alloc(umem, b->descs + b->count, want) : 0;
	for (uint32_t i = 0; i < got; i++) {
		struct kbx_desc *d = &b->descs[b->count + i];
		d->len = write_frame(c, line->first_item, entries[line->next + i], (uint8_t *)umem->area + d->addr);
	}
	b->count += got;
	line->next += got;
	return (int)got;
}

/* The stream and session of a mold session name (mold_session_name's inverse); false for a name it never writes. */
static bool parse_session_name(const uint8_t name[10], uint32_t *stream, uint64_t *session)
{
	uint64_t v = 0;
	if (name[0] == 'S') {
		for (int i = 1; i < 10; i++) {
			if (name[i] < '0' || name[i] > '9')
				return false;
			v = v * 10 + (name[i] - '0');
		}
		*stream = (uint32_t)v;
		*session = 0;
		return v <= UINT32_MAX;
	}
	if (name[0] != 'R')
		return false;
	for (int i = 1; i < 5; i++) {
		uint32_t digit = name[i] >= '0' && name[i] <= '9' ? (uint32_t)(name[i] - '0')
				 : name[i] >= 'A' && name[i] <= 'Z' ? (uint32_t)(name[i] - 'A' + 10) : 36;
		if (digit >= 36)
			return false;
		v = v * 36 + digit;
	}
	*session = v;
	v = 0;
	for (int i = 5; i < 10; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (name[i] - '0');
	}
	*stream = (uint32_t)v;
	return *session > 0;
}

/* The plan item of (stream, session, sequence), or false when the plan has none. */
static bool item_of(const struct kbx_ab_feed_config *c, uint32_t stream, uint64_t session, uint64_t sequence, uint64_t *item)
{
	if (stream >= c->streams || (session && !c->restart_every))
		return false;
	uint64_t into = sequence - (session ? c->restart_seq : c->start_seq);
	if (c->restart_every && into >= c->restart_every)
		return false;
	uint64_t offset = session * c->restart_every + into;
	if (c->restart_every && offset / c->restart_every != session)
		return false; /* overflowed */
	if (offset > (UINT64_MAX - stream) / c->streams)
		return false;
	*item = offset * c->streams + stream;
	return true;
}

int kbx_ab_feed_answer(const struct kbx_ab_feed_config *c, const uint8_t *request, uint32_t len, uint64_t published,
		       uint64_t history, uint8_t *out, uint32_t capacity, uint32_t *messages)
{
	*messages = 0;
	if (!config_valid(c) || c->format != AB_FORMAT_MOLDUDP64 || len != sizeof(struct ab_mold_header) || capacity < sizeof(struct ab_mold_header))
		return -EINVAL;
	const struct ab_mold_header *req = (const struct ab_mold_header *)request;
	uint32_t stream;
	uint64_t session, item;
	uint64_t sequence = ab_load_be64(req->sequence);
	uint32_t count = kbx_get_be16(req->count);
	if (!parse_session_name(req->session, &stream, &session) || !item_of(c, stream, session, sequence, &item))
		return 0;
	uint64_t oldest = history * c->streams < published ? published - history * c->streams : 0;
	uint32_t message_len = c->payload_len - sizeof(struct ab_mold_header); /* with its 2-byte length */
	uint8_t *p = out + sizeof(struct ab_mold_header);
	uint32_t n = 0;
	for (; n < count && item >= oldest && item < published && (uint32_t)(p - out) + message_len <= capacity; n++) {
		struct item_number num = item_number(c, item);
		if (num.session != session || num.stream != stream)
			break; /* past the end of the session */
		put_be(p, message_len - MOLD_MESSAGE_LENGTH, MOLD_MESSAGE_LENGTH);
		memset(p + MOLD_MESSAGE_LENGTH, 0, message_len - MOLD_MESSAGE_LENGTH);
		p += message_len;
		item += c->streams;
	}
	if (!n)
		return 0;
	memcpy(out, req->session, sizeof(req->session));
	put_be(out + 10, sequence, 8);
	put_be(out + 18, n, 2);
	*messages = n;
	return (int)(p - out);
}
