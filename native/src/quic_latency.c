// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * quic-flood's send->ack latency histogram: exact below 1024 ns, then 128 sub-buckets per power of two
 * (< 0.8% wide), handed to TypeScript as (value, count) pairs with the exact minimum and maximum.
 */
#define _GNU_SOURCE
#include "quic_flood_internal.h"

#include <errno.h>
#include <stdlib.h>

#define LAT_EXACT 1024u
#define LAT_SUB_BITS 7
#define LAT_BUCKETS (LAT_EXACT + (64u - 10u) * (1u << LAT_SUB_BITS))
_Static_assert(LAT_BUCKETS + 2 <= KBX_QUIC_LATENCY_PAIRS_MAX, "latency pairs buffer too small");

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

int quic_latency_init(struct quic_latency *h)
{
	h->counts = calloc(LAT_BUCKETS, sizeof(uint64_t));
	h->n = h->min = h->max = 0;
	return h->counts ? 0 : -ENOMEM;
}

void quic_latency_free(struct quic_latency *h)
{
	free(h->counts);
	h->counts = NULL;
}

void quic_latency_record(struct quic_latency *h, uint64_t ns)
{
	h->counts[latency_bucket(ns)]++;
	if (!h->n || ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
	h->n++;
}

int quic_latency_take(struct quic_latency *h, uint64_t *out, uint32_t cap_pairs)
{
	uint32_t b, n = 0, lo, hi;

	if (cap_pairs < KBX_QUIC_LATENCY_PAIRS_MAX)
		return -ENOSPC;
	if (!h->n)
		return 0;
	/* the exact extremes as their own samples, the rest as bucket middles */
	lo = latency_bucket(h->min);
	hi = latency_bucket(h->max);
	out[0] = h->min;
	out[1] = 1;
	n = 1;
	h->counts[lo]--;
	if (h->n > 1) {
		h->counts[hi]--;
		for (b = lo; b <= hi; b++) {
			if (!h->counts[b])
				continue;
			out[2 * n] = latency_bucket_value(b);
			out[2 * n + 1] = h->counts[b];
			h->counts[b] = 0;
			n++;
		}
		out[2 * n] = h->max;
		out[2 * n + 1] = 1;
		n++;
	}
	h->n = 0;
	h->min = h->max = 0;
	return (int)n;
}
