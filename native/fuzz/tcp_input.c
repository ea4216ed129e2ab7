// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target `tcp-input`: the userspace TCP (src/tcp_conn.c and src/tcp_input.c) driven by a script decoded from the
 * input (keep-alives on or off): segments from a peer (SYN-ACK with fuzzed options, data/flags at fuzzed sequence offsets, ACKs
 * around what we sent, fuzzed windows), corrupted segments, raw frames, ARP, our writes, reads, timers,
 * shutdown and abort. The peer's bytes are a known function of their sequence number, and so are ours, so
 * every byte that crosses can be checked. After every step:
 *   - snd_una <= snd_nxt <= snd_max (sequence space), buffers within capacity;
 *   - rcv_nxt - (IRS + 1) == bytes received + (1 if a FIN was accepted, else 0): rcv_nxt never moves over
 *     bytes or FINs not received, and at most one FIN is ever accepted; it never passes the highest
 *     sequence the peer sent; a FIN is accepted only where the peer really sent one;
 *   - bytes read are the peer's bytes, in order;
 *   - held out-of-order ranges are sorted, disjoint, not touching, at most KBX_TCP_OOO_RANGES, all past
 *     rcv_nxt, inside the receive window and within what the peer sent, and the receive ring holds the
 *     peer's bytes at their sequence numbers there (reassembly keeps the byte stream intact);
 *   - every frame out is well formed: Ethernet to the next hop, IPv4 header and TCP checksums valid,
 *     lengths consistent, our ports; data carries our bytes at their sequence numbers, never beyond
 *     snd_max; an ACK never acknowledges beyond rcv_nxt; ARP replies answer for our address.
 */
#include <stdio.h>

#include "../src/error.c"
#include "../src/tcp_conn.c"
#include "../src/tcp_input.c"
#include "reference_sum.h"

static const uint8_t LOCAL_MAC[6] = { 2, 0, 0, 0, 0, 1 }, REMOTE_MAC[6] = { 2, 0, 0, 0, 0, 2 };
static const uint8_t LOCAL_IP[4] = { 10, 0, 3, 1 }, REMOTE_IP[4] = { 10, 0, 3, 2 };
#define LOCAL_PORT 40000
#define REMOTE_PORT 9878
#define MAX_STEPS 256

struct script {
	const uint8_t *p;
	size_t n;
};

static uint32_t take(struct script *s, int bytes)
{
	uint32_t v = 0;
	for (int i = 0; i < bytes; i++) {
		v = v << 8 | (s->n ? *s->p : 0);
		if (s->n) {
			s->p++;
			s->n--;
		}
	}
	return v;
}

static uint8_t peer_byte(uint32_t seq) { return (uint8_t)(seq * 167u + 13u); }
static uint8_t our_byte(uint32_t index) { return (uint8_t)(index * 31u + 7u); }

struct model {
	struct kbx_tcp *c;
	int synced;          /* the SYN-ACK was taken: irs is the peer's */
	uint32_t irs;
	uint32_t peer_max;   /* highest sequence + length the peer sent (valid once synced) */
	uint32_t fins[MAX_STEPS]; /* sequence numbers of the FINs the peer sent, each once */
	uint32_t nfins;
	uint64_t read;       /* bytes read by the application */
	uint64_t written;    /* bytes taken by kbx_tcp_write / send_now */
	uint64_t now;
};

static void broken(const struct model *m, const char *what)
{
	const struct kbx_tcp *c = m->c;
	fprintf(stderr,
		"tcp-input invariant broken: %s (state %u, snd_una %u snd_nxt %u snd_max %u, irs %u rcv_nxt %u, bytes_in %llu; "
		"model irs %u, peer sent up to %u)\n",
		what, c->state, c->snd_una, c->snd_nxt, c->snd_max, c->irs, c->rcv_nxt, (unsigned long long)c->st.bytes_in, m->irs,
		m->peer_max);
	abort();
}

static void check_frame(struct model *m, const uint8_t *f, uint32_t len)
{
	const struct kbx_tcp *c = m->c;
	if (len < 14 || memcmp(f + 6, LOCAL_MAC, 6) != 0)
		broken(m, "frame out without our MAC as source");
	if (kbx_get_be16(f + 12) == 0x0806) {
		if (len != 60 || kbx_get_be16(f + 20) != 2 || memcmp(f + 22, LOCAL_MAC, 6) != 0 || memcmp(f + 28, LOCAL_IP, 4) != 0)
			broken(m, "ARP out that is not a reply for our address");
		return;
	}
	if (memcmp(f, REMOTE_MAC, 6) != 0 || kbx_get_be16(f + 12) != 0x0800 || len < 54)
		broken(m, "frame out that is not IPv4 to the next hop");
	const uint8_t *ip = f + 14, *tcp = ip + 20;
	uint32_t tot = kbx_get_be16(ip + 2);
	if (ip[0] != 0x45 || ip[9] != 6 || tot != len - 14 || sum16(ip, 20, 0) != 0)
		broken(m, "IPv4 header out malformed or with a bad checksum");
	if (memcmp(ip + 12, LOCAL_IP, 4) != 0 || memcmp(ip + 16, REMOTE_IP, 4) != 0)
		broken(m, "IPv4 addresses out are not the connection's");
	uint32_t tcp_len = tot - 20, doff = (uint32_t)(tcp[12] >> 4) * 4;
	if (kbx_get_be16(tcp) != LOCAL_PORT || kbx_get_be16(tcp + 2) != REMOTE_PORT || doff < 20 || doff > tcp_len)
		broken(m, "TCP header out malformed");
	if (sum16(tcp, tcp_len, pseudo_sum(ip, IPPROTO_TCP, tcp_len)) != 0)
		broken(m, "TCP checksum out invalid");
	uint8_t flags = tcp[13];
	uint32_t seq = kbx_get_be32(tcp + 4), ack = kbx_get_be32(tcp + 8), data_len = tcp_len - doff;
	if (flags & F_RST)
		return; /* RSTs answer the segment they refuse: their numbers are the peer's */
	if (data_len) {
		if (SEQ_GT(seq + data_len, c->snd_max))
			broken(m, "data out beyond snd_max");
		for (uint32_t i = 0; i < data_len; i++)
			if (tcp[doff + i] != our_byte(seq + i - (c->iss + 1)))
				broken(m, "data out is not our bytes at their sequence numbers");
	}
	if ((flags & F_ACK) && m->synced && SEQ_GT(ack, c->rcv_nxt))
		broken(m, "an ACK out beyond rcv_nxt");
	if ((flags & F_ACK) && m->synced && SEQ_LT(ack, m->irs + 1))
		broken(m, "an ACK out below the peer's first byte");
}

static void drain(struct model *m)
{
	static uint8_t frame[2048];
	int n;
	while ((n = kbx_tcp_next_frame(m->c, frame, sizeof(frame))) > 0)
		check_frame(m, frame, (uint32_t)n);
}

static void check_held(struct model *m)
{
	const struct kbx_tcp *c = m->c;
	if (c->ooo_count > KBX_TCP_OOO_RANGES)
		broken(m, "more held ranges than KBX_TCP_OOO_RANGES");
	for (uint32_t i = 0; i < c->ooo_count; i++) {
		uint32_t start = c->ooo[i].start, end = c->ooo[i].end;
		if (!SEQ_GT(start, c->rcv_nxt) || !SEQ_LT(start, end))
			broken(m, "a held range empty or not past rcv_nxt");
		if (i && !SEQ_GT(start, c->ooo[i - 1].end))
			broken(m, "held ranges unsorted, overlapping or touching");
		if (SEQ_GT(end, c->rcv_nxt + rcv_window(c)) || SEQ_GT(end, m->peer_max))
			broken(m, "a held range beyond the window or beyond what the peer sent");
		for (uint32_t seq = start; seq != end; seq++)
			if (c->rbuf[(c->rhead + c->rlen + (seq - c->rcv_nxt)) % c->rcap] != peer_byte(seq))
				broken(m, "held bytes are not the peer's bytes at their sequence numbers");
	}
}

static void check_state(struct model *m)
{
	const struct kbx_tcp *c = m->c;
	if (SEQ_GT(c->snd_una, c->snd_nxt) || SEQ_GT(c->snd_nxt, c->snd_max))
		broken(m, "not snd_una <= snd_nxt <= snd_max");
	if (c->slen > c->scap || c->rlen > c->rcap || c->txcount > TXQ_FRAMES)
		broken(m, "a buffer beyond its capacity");
	if (c->st.bytes_in != m->read + c->rlen)
		broken(m, "bytes received != bytes read + bytes readable");
	if (!m->synced)
		return;
	uint32_t beyond = c->rcv_nxt - (m->irs + 1) - (uint32_t)c->st.bytes_in;
	if (beyond > 1)
		broken(m, "rcv_nxt advanced over more than the bytes and one FIN received");
	if (SEQ_GT(c->rcv_nxt, m->peer_max))
		broken(m, "rcv_nxt beyond anything the peer sent");
	check_held(m);
	if (beyond == 1) {
		int sent = 0;
		for (uint32_t i = 0; i < m->nfins; i++)
			sent |= m->fins[i] + 1 == c->rcv_nxt;
		if (!sent)
			broken(m, "a FIN accepted where the peer sent none");
	}
}

/* A segment from the peer: our tuple, valid checksums unless corrupt says otherwise. */
static uint32_t build_segment(uint8_t *f, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win, const uint8_t *opts,
			      uint32_t opt_len, uint32_t data_len, uint8_t tos)
{
	opt_len &= ~3u;
	uint32_t tcp_len = 20 + opt_len + data_len, tot = 20 + tcp_len;
	memcpy(f, LOCAL_MAC, 6);
	memcpy(f + 6, REMOTE_MAC, 6);
	kbx_put_be16(f + 12, 0x0800);
	uint8_t *ip = f + 14, *tcp = ip + 20;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[1] = tos;
	kbx_put_be16(ip + 2, (uint16_t)tot);
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, REMOTE_IP, 4);
	memcpy(ip + 16, LOCAL_IP, 4);
	kbx_put_be16(ip + 10, sum16(ip, 20, 0));
	kbx_put_be16(tcp, REMOTE_PORT);
	kbx_put_be16(tcp + 2, LOCAL_PORT);
	kbx_put_be32(tcp + 4, seq);
	kbx_put_be32(tcp + 8, ack);
	tcp[12] = (uint8_t)(((20 + opt_len) / 4) << 4);
	tcp[13] = flags;
	kbx_put_be16(tcp + 14, win);
	kbx_put_be16(tcp + 16, 0);
	kbx_put_be16(tcp + 18, 0);
	if (opt_len)
		memcpy(tcp + 20, opts, opt_len);
	for (uint32_t i = 0; i < data_len; i++)
		tcp[20 + opt_len + i] = peer_byte(seq + i);
	kbx_put_be16(tcp + 16, sum16(tcp, tcp_len, pseudo_sum(ip, IPPROTO_TCP, tcp_len)));
	return 14 + tot;
}

static void peer_sent(struct model *m, uint32_t seq, uint32_t data_len, uint8_t flags)
{
	if (!m->synced)
		return;
	uint32_t end = seq + data_len + !!(flags & F_FIN);
	/* What lies past the receive window (a far or corrupted sequence number) cannot be taken: counted only up
	 * to the window's edge, so a run of far segments cannot carry peer_max half the sequence space away. */
	uint32_t edge = m->c->rcv_nxt + rcv_window(m->c) + 1;
	if (SEQ_GT(end, edge))
		end = edge;
	if (SEQ_GT(end, m->peer_max))
		m->peer_max = end;
	if (!(flags & F_FIN))
		return;
	for (uint32_t i = 0; i < m->nfins; i++)
		if (m->fins[i] == seq + data_len)
			return;
	if (m->nfins < MAX_STEPS) /* one segment per step: never full */
		m->fins[m->nfins++] = seq + data_len;
}

static uint32_t pick_ack(struct model *m, uint32_t sel, uint32_t delta)
{
	const struct kbx_tcp *c = m->c;
	uint32_t base = sel % 3 == 0 ? c->snd_una : sel % 3 == 1 ? c->snd_nxt : c->snd_max;
	return base + (uint32_t)(int32_t)(int16_t)delta;
}

/* One step of the script: what the peer sends, what the application does, or time passing. */
static void run_op(struct model *m, struct script *s, uint32_t op, uint32_t irs)
{
	static uint8_t frame[2048], buf[8192];
	switch (op & 15) {
	case 0: case 1: { /* the SYN-ACK, with options */
		uint32_t opt_len = take(s, 1) % 41, ack_sel = take(s, 1);
		uint8_t opts[40];
		for (uint32_t i = 0; i < opt_len; i++)
			opts[i] = (uint8_t)take(s, 1);
		uint8_t flags = F_SYN | F_ACK | (ack_sel & 0x40 ? F_ECE : 0);
		uint32_t ack = ack_sel & 0x80 ? pick_ack(m, ack_sel, take(s, 2)) : m->c->iss + 1;
		uint32_t len = build_segment(frame, irs, ack, flags, (uint16_t)take(s, 2), opts, opt_len, 0, 0);
		kbx_tcp_input(m->c, frame, len, m->now);
		break;
	}
	case 2: case 3: case 4: case 5: { /* a segment: data and flags at an offset from what we expect */
		uint32_t rel = take(s, 2), data_len = take(s, 2) % 1461, flags = take(s, 1), ack_sel = take(s, 1);
		uint32_t seq = (m->synced ? m->c->rcv_nxt : irs + 1) + (uint32_t)(int32_t)(int16_t)rel;
		if ((op & 15) == 4)
			seq = m->c->rcv_nxt + (rel & 3) - 1; /* near rcv_nxt: the interesting edge */
		else if ((op & 15) == 5)
			seq = m->c->rcv_nxt + 1 + rel % 6000; /* just past rcv_nxt: held, merged, reassembled */
		uint32_t ack = pick_ack(m, ack_sel, ack_sel & 0x80 ? take(s, 2) : 0);
		uint8_t tos = (uint8_t)(ack_sel & 0x40 ? 3 : 0);
		uint32_t len = build_segment(frame, seq, ack, (uint8_t)flags, (uint16_t)take(s, 2), NULL, 0, data_len, tos);
		peer_sent(m, seq, data_len, (uint8_t)flags);
		kbx_tcp_input(m->c, frame, len, m->now);
		break;
	}
	case 6: { /* a corrupted segment: bytes flipped anywhere, checksums maybe fixed up */
		uint32_t data_len = take(s, 1), flags = take(s, 1), flips = take(s, 1) % 8;
		uint32_t seq = m->c->rcv_nxt + (uint32_t)(int32_t)(int8_t)take(s, 1);
		uint32_t len = build_segment(frame, seq, m->c->snd_nxt, (uint8_t)flags, 65535, NULL, 0, data_len, 0);
		for (uint32_t i = 0; i < flips; i++) {
			uint32_t at = take(s, 1) % len;
			frame[at] ^= (uint8_t)take(s, 1);
		}
		uint32_t cut = take(s, 1);
		if (cut < len)
			len = cut < 14 ? 14 : cut;
		/* a corrupted frame may claim any sequence: count it as sent when it is a segment of ours */
		if (len >= 54 && frame[23] == 6) {
			uint32_t ihl = (frame[14] & 15) * 4u, tot = kbx_get_be16(frame + 16);
			if (ihl >= 20 && tot >= ihl + 20 && tot <= len - 14) {
				const uint8_t *t = frame + 14 + ihl;
				uint32_t doff = (uint32_t)(t[12] >> 4) * 4;
				if (doff <= tot - ihl)
					peer_sent(m, kbx_get_be32(t + 4), tot - ihl - doff, t[13]);
			}
		}
		kbx_tcp_input(m->c, frame, len, m->now);
		break;
	}
	case 7: { /* ARP (request or other) for some address */
		uint8_t *f = frame;
		memset(f, 0, 60);
		memset(f, 0xff, 6);
		memcpy(f + 6, REMOTE_MAC, 6);
		kbx_put_be16(f + 12, 0x0806);
		kbx_put_be16(f + 14, 1);
		kbx_put_be16(f + 16, 0x0800);
		f[18] = 6;
		f[19] = 4;
		kbx_put_be16(f + 20, (uint16_t)(take(s, 1) & 3));
		memcpy(f + 22, REMOTE_MAC, 6);
		memcpy(f + 28, REMOTE_IP, 4);
		memcpy(f + 38, LOCAL_IP, 4);
		uint32_t x = take(s, 1);
		if (x & 1)
			f[41] ^= 1;
		kbx_tcp_input(m->c, f, 42 + (x >> 1) % 19, m->now);
		break;
	}
	case 8: case 9: { /* we write */
		uint32_t n = take(s, 2) % sizeof(buf);
		for (uint32_t i = 0; i < n; i++)
			buf[i] = our_byte((uint32_t)(m->written + i));
		int w = (op & 15) == 8 ? kbx_tcp_write(m->c, buf, n) : kbx_tcp_send_now(m->c, buf, n);
		if (w > 0)
			m->written += (uint64_t)w;
		break;
	}
	case 10: { /* we read */
		int n = kbx_tcp_read(m->c, buf, take(s, 2) % sizeof(buf));
		for (int i = 0; i < n; i++)
			if (buf[i] != peer_byte((uint32_t)(m->irs + 1 + m->read + (uint64_t)i)))
				broken(m, "bytes read are not the peer's bytes in order");
		m->read += (uint64_t)(n > 0 ? n : 0);
		break;
	}
	case 11: case 12:
		kbx_tcp_poll(m->c, m->now);
		break;
	case 13:
		kbx_tcp_shutdown(m->c);
		break;
	case 14:
		kbx_tcp_hold_ack(m->c, take(s, 1) & 1);
		break;
	case 15:
		if (take(s, 1) == 0xa5)
			kbx_tcp_abort(m->c);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script s = { data, size };
	struct kbx_tcp_config cfg = { 0 };
	memcpy(cfg.local_mac, LOCAL_MAC, 6);
	memcpy(cfg.remote_mac, REMOTE_MAC, 6);
	memcpy(&cfg.local_ip, LOCAL_IP, 4);
	memcpy(&cfg.remote_ip, REMOTE_IP, 4);
	cfg.local_port = LOCAL_PORT;
	cfg.remote_port = REMOTE_PORT;
	cfg.isn = take(&s, 4);
	uint32_t setup = take(&s, 1);
	cfg.ecn = setup & 1;
	cfg.rcv_buf = setup & 2 ? 4096 : 0;
	cfg.snd_buf = setup & 4 ? 8192 : 65536;
	cfg.mss = setup & 8 ? 536 : 0;
	cfg.keepalive_s = setup & 16 ? 1 : 0; /* steps are up to 15 ms: a probe after ~70 steps of silence */
	struct model m = { .c = kbx_tcp_create(&cfg) };
	if (!m.c)
		return 0;
	uint32_t irs = take(&s, 4);
	kbx_tcp_connect(m.c, 0);
	drain(&m);
	for (int steps = 0; s.n > 0 && steps < MAX_STEPS; steps++) {
		uint32_t op = take(&s, 1);
		m.now += (uint64_t)(op >> 4) * 1000000ull; /* up to 15 ms per step */
		run_op(&m, &s, op, irs);
		if (!m.synced && m.c->state != KBX_TCP_SYN_SENT && m.c->state != KBX_TCP_CLOSED) {
			/* a SYN-ACK was taken (any op may carry one): its sequence number is the peer's IRS */
			m.synced = 1;
			m.irs = m.c->irs;
			m.peer_max = m.irs + 1;
		}
		check_state(&m);
		drain(&m);
		check_state(&m);
	}
	kbx_tcp_destroy(m.c);
	return 0;
}
