// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The reflex's order from a prepared template (fix_internal.h): only the numbers and the time are written per order. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fix_internal.h"
#include "kbx_fix.h"

#define SOH 0x01

static uint32_t order_byte_sum(const uint8_t *p, uint32_t n)
{
	uint32_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

/* Decimal digits of v at p; returns how many, their byte sum added to *sum. */
static uint32_t put_uint_summed(uint8_t *p, uint64_t v, uint32_t *sum)
{
	uint8_t tmp[20];
	uint32_t n = 0, s = 0;
	do {
		uint8_t d = (uint8_t)('0' + v % 10);
		tmp[n++] = d;
		s += d;
		v /= 10;
	} while (v);
	for (uint32_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	*sum += s;
	return n;
}

static uint32_t decimal_digits(uint64_t v)
{
	uint32_t n = 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Appends b[0..n) at *at in a part of cap bytes; -1 once it would overflow. */
static int append(uint8_t *part, uint32_t cap, uint32_t *at, const void *b, uint32_t n)
{
	if (*at + n > cap)
		return -1;
	memcpy(part + *at, b, n);
	*at += n;
	return 0;
}

static int append_str(uint8_t *part, uint32_t cap, uint32_t *at, const char *s) { return append(part, cap, at, s, (uint32_t)strlen(s)); }

int fix_order_prepare(struct fix_order_template *t, const char *begin_string, const char *msg_type, const char *sender,
		      const char *target, const uint8_t *hdr, uint32_t hdr_len, const uint8_t *pre, uint32_t pre_len,
		      uint32_t time_tag, const uint8_t *post, uint32_t post_len)
{
	static const uint8_t soh = SOH;
	uint32_t b = 0, h = 0, tl = 0;
	char tag[16];
	int bad = append_str(t->begin, sizeof(t->begin), &b, "8=") || append_str(t->begin, sizeof(t->begin), &b, begin_string) ||
		  append(t->begin, sizeof(t->begin), &b, &soh, 1) || append_str(t->begin, sizeof(t->begin), &b, "9=");
	bad = bad || append_str(t->head, sizeof(t->head), &h, "35=") || append_str(t->head, sizeof(t->head), &h, msg_type) ||
	      append_str(t->head, sizeof(t->head), &h, "\00149=") || append_str(t->head, sizeof(t->head), &h, sender) ||
	      append_str(t->head, sizeof(t->head), &h, "\00156=") || append_str(t->head, sizeof(t->head), &h, target) ||
	      append(t->head, sizeof(t->head), &h, &soh, 1) || append(t->head, sizeof(t->head), &h, hdr, hdr_len) ||
	      append_str(t->head, sizeof(t->head), &h, "34=");
	bad = bad || append(t->tail, sizeof(t->tail), &tl, &soh, 1) || append(t->tail, sizeof(t->tail), &tl, pre, pre_len);
	t->tail_time_at = -1;
	if (!bad && time_tag) {
		snprintf(tag, sizeof(tag), "%u=", time_tag);
		bad = append_str(t->tail, sizeof(t->tail), &tl, tag);
		t->tail_time_at = (int32_t)tl;
		static const uint8_t blank[21] = { 0 };
		bad = bad || append(t->tail, sizeof(t->tail), &tl, blank, 21) || append(t->tail, sizeof(t->tail), &tl, &soh, 1);
	}
	bad = bad || append(t->tail, sizeof(t->tail), &tl, post, post_len);
	if (bad)
		return -EINVAL;
	t->begin_len = b;
	t->head_len = h;
	t->tail_len = tl;
	/* every byte before "10=" but the numbers and the times: the SOH after BodyLength, "SOH52=" and "SOH11=" */
	t->fixed_sum = order_byte_sum(t->begin, b) + SOH + order_byte_sum(t->head, h) + 2 * (SOH + '5' + '2' + '=') - '5' - '2' + '1' + '1' +
		       order_byte_sum(t->tail, tl);
	t->time_sec = -1;
	return 0;
}

/* "YYYYMMDD-HH:MM:SS.sss" (UTC, what the TypeScript session writes) into t->time_text; returns its byte sum. */
static uint32_t sending_time(struct fix_order_template *t, uint64_t wall_ns)
{
	int64_t sec = (int64_t)(wall_ns / 1000000000ull);
	uint8_t *x = t->time_text;
	if (sec != t->time_sec) {
		struct tm tm;
		time_t tsec = (time_t)sec;
		gmtime_r(&tsec, &tm);
		unsigned y = (unsigned)tm.tm_year + 1900;
		unsigned v[] = { y / 1000 % 10, y / 100 % 10, y / 10 % 10, y % 10, (unsigned)(tm.tm_mon + 1) / 10,
				 (unsigned)(tm.tm_mon + 1) % 10, (unsigned)tm.tm_mday / 10, (unsigned)tm.tm_mday % 10 };
		for (int i = 0; i < 8; i++)
			x[i] = (uint8_t)('0' + v[i]);
		x[8] = '-';
		x[9] = (uint8_t)('0' + tm.tm_hour / 10);
		x[10] = (uint8_t)('0' + tm.tm_hour % 10);
		x[11] = ':';
		x[12] = (uint8_t)('0' + tm.tm_min / 10);
		x[13] = (uint8_t)('0' + tm.tm_min % 10);
		x[14] = ':';
		x[15] = (uint8_t)('0' + tm.tm_sec / 10);
		x[16] = (uint8_t)('0' + tm.tm_sec % 10);
		x[17] = '.';
		t->time_sec = sec;
		t->time_sec_sum = order_byte_sum(x, 18);
	}
	unsigned ms = (unsigned)(wall_ns % 1000000000ull / 1000000ull);
	x[18] = (uint8_t)('0' + ms / 100);
	x[19] = (uint8_t)('0' + ms / 10 % 10);
	x[20] = (uint8_t)('0' + ms % 10);
	return t->time_sec_sum + x[18] + x[19] + x[20];
}

uint32_t fix_order_build(struct fix_order_template *t, uint64_t seq, uint64_t cl_ord_id, uint64_t wall_ns, struct kbx_fix_reflex_io *io)
{
	uint32_t body_len = t->head_len + decimal_digits(seq) + 4 + 21 + 4 + decimal_digits(cl_ord_id) + t->tail_len;
	if (t->begin_len + decimal_digits(body_len) + 1 + body_len + 7 > KBX_FIX_REFLEX_MSG_MAX)
		return 0;
	uint32_t sum = t->fixed_sum;
	uint32_t time_sum = sending_time(t, wall_ns);
	uint8_t *m = io->msg, *p = m;
	memcpy(p, t->begin, t->begin_len);
	p += t->begin_len;
	p += put_uint_summed(p, body_len, &sum);
	*p++ = SOH;
	memcpy(p, t->head, t->head_len);
	p += t->head_len;
	p += put_uint_summed(p, seq, &sum);
	memcpy(p, "\00152=", 4);
	p += 4;
	io->time_at = (uint32_t)(p - m);
	memcpy(p, t->time_text, 21);
	p += 21;
	memcpy(p, "\00111=", 4);
	io->body_at = (uint32_t)(p + 1 - m);
	p += 4;
	p += put_uint_summed(p, cl_ord_id, &sum);
	memcpy(p, t->tail, t->tail_len);
	if (t->tail_time_at >= 0) {
		memcpy(p + t->tail_time_at, t->time_text, 21);
		sum += time_sum;
	}
	p += t->tail_len;
	sum += time_sum;
	io->body_end = (uint32_t)(p - m);
	sum &= 0xff;
	p[0] = '1';
	p[1] = '0';
	p[2] = '=';
	p[3] = (uint8_t)('0' + sum / 100);
	p[4] = (uint8_t)('0' + sum / 10 % 10);
	p[5] = (uint8_t)('0' + sum % 10);
	p[6] = SOH;
	io->len = (uint32_t)(p + 7 - m);
	return io->len;
}
