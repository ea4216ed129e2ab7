// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * quic-flood's AF_XDP back-end: the caller's socket and UMEM (kbx_xsk.h) carry every connection. Packets
 * are written straight into UMEM frames behind the Ethernet/IPv4/UDP headers, queued on the TX ring in
 * batches; received frames are matched to a connection by destination port (local_port + index), then
 * checked against that connection's server address.
 */
#define _GNU_SOURCE
#include "quic_flood_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

int flood_xdp_attach(struct kbx_quic_flood *f)
{
	struct kbx_umem_config uc;

	f->xsk = (struct kbx_xsk *)(uintptr_t)f->cfg.xsk;
	f->umem = (struct kbx_umem *)(uintptr_t)f->cfg.umem;
	if (!f->xsk || !f->umem)
		return kbx_fail(-EINVAL, "create QUIC flooder", "xdp io needs an AF_XDP socket and its UMEM");
	f->area = kbx_umem_area(f->umem);
	kbx_umem_get_config(f->umem, &uc);
	f->frame_size = uc.frame_size;
	if (f->frame_size < KBX_QUIC_MIN_FRAME_SIZE + uc.headroom)
		return kbx_fail(-EINVAL, "create QUIC flooder", "UMEM frames of %u bytes are too small", f->frame_size);
	if (uc.frame_count < KBX_QUIC_MIN_FRAMES || uc.frame_count > KBX_QUIC_MAX_FRAMES)
		return kbx_fail(-EINVAL, "create QUIC flooder", "a UMEM of %u frames: the flooder takes %u..%u",
				uc.frame_count, KBX_QUIC_MIN_FRAMES, KBX_QUIC_MAX_FRAMES);
	if (f->cfg.local_port && f->cfg.local_port + f->nconns > 65536)
		return kbx_fail(-EINVAL, "create QUIC flooder", "local ports overflow");
	return 0;
}

/* A free UMEM frame's payload area (behind the headers), or NULL when the TX batch is full or no frame is free. */
uint8_t *flood_xdp_buffer(struct kbx_quic_flood *f)
{
	if (f->ntx >= OUT_BATCH)
		return NULL;
	if (!f->nspare) {
		int n = kbx_umem_alloc(f->umem, f->spare, OUT_BATCH);
		if (n <= 0) {
			kbx_xsk_complete(f->xsk);
			n = kbx_umem_alloc(f->umem, f->spare, OUT_BATCH);
			if (n <= 0)
				return NULL;
		}
		f->nspare = (uint32_t)n;
	}
	return f->area + f->spare[f->nspare - 1].addr + HEADERS_LEN;
}

void flood_xdp_written(struct kbx_quic_flood *f, struct conn *c, uint32_t len)
{
	struct kbx_desc d = f->spare[--f->nspare];
	struct quic_udp_route route = { f->cfg.src_mac, c->server->dst_mac, &c->local, &c->remote };

	quic_frame_build_udp(f->area + d.addr, &route, f->ip_id++, len);
	d.len = HEADERS_LEN + len;
	f->tx_descs[f->ntx++] = d;
	f->st.packets_sent++;
	if (f->ntx >= OUT_BATCH)
		flood_xdp_flush(f);
}

int flood_xdp_flush(struct kbx_quic_flood *f)
{
	int n;

	if (!f->ntx) {
		kbx_xsk_complete(f->xsk);
		return 0;
	}
	n = kbx_xsk_send(f->xsk, f->tx_descs, f->ntx);
	if (n < 0) {
		f->st.send_errors++;
		return n;
	}
	if ((uint32_t)n < f->ntx) {
		f->st.tx_ring_full += f->ntx - (uint32_t)n;
		memmove(f->tx_descs, f->tx_descs + n, (f->ntx - (uint32_t)n) * sizeof(struct kbx_desc));
	}
	f->ntx -= (uint32_t)n;
	return n;
}

int flood_xdp_receive(struct kbx_quic_flood *f, uint64_t now)
{
	int n = kbx_xsk_receive(f->xsk, f->rx_descs, RX_BATCH, f->rx_held, 0);
	int i;

	int handed;

	f->rx_held = 0;
	handed = flood_handoff_drain(f, now);
	if (n <= 0)
		return handed;
	f->rx_held = (uint32_t)n;
	f->st.rx_frames += (uint32_t)n;
	for (i = 0; i < n; i++) {
		struct quic_udp_datagram d;
		struct conn *c;
		uint32_t idx;

		if (quic_frame_parse_udp(f->area + f->rx_descs[i].addr, f->rx_descs[i].len, &d) != 0) {
			f->st.rx_ignored++;
			continue;
		}
		idx = (uint32_t)ntohs(d.dport) - f->cfg.local_port;
		if (idx >= f->nconns) {
			if (!flood_handoff(f, &d, ntohs(d.dport)))
				f->st.rx_ignored++;
			continue;
		}
		c = &f->conns[idx];
		if (d.saddr != c->remote.sin_addr.s_addr || d.sport != c->remote.sin_port) {
			f->st.rx_ignored++;
			continue;
		}
		flood_conn_read(c, d.payload, d.len, d.ecn, now);
	}
	return n + handed;
}

/* Sends what is queued, waits briefly for completions and gives every frame the flooder holds back. */
void flood_xdp_release(struct kbx_quic_flood *f)
{
	uint32_t i;

	flood_xdp_flush(f);
	for (i = 0; i < 10 && kbx_xsk_tx_pending(f->xsk); i++) {
		kbx_xsk_complete(f->xsk);
		usleep(1000);
	}
	if (f->ntx)
		kbx_umem_release(f->umem, f->tx_descs, f->ntx);
	if (f->nspare)
		kbx_umem_release(f->umem, f->spare, f->nspare);
	if (f->rx_held)
		kbx_umem_release(f->umem, f->rx_descs, f->rx_held);
	f->ntx = f->nspare = f->rx_held = 0;
}
