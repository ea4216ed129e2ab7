// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * quic-flood's kernel UDP back-end: one connected socket per connection, packets sent with sendmmsg (UDP
 * GSO for runs of equal-size datagrams) and received with recvmmsg. xdp io also reserves its ports here.
 */
#define _GNU_SOURCE
#include "quic_flood_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gnutls/crypto.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

void flood_socket_flush(struct kbx_quic_flood *f, struct conn *c)
{
	struct mmsghdr msgs[OUT_BATCH];
	struct iovec iovs[OUT_BATCH];
	char cbufs[OUT_BATCH][CMSG_SPACE(sizeof(uint16_t))];
	uint32_t i = 0, nmsg = 0, sent_pkts = 0, done;
	int rv;

	if (!f->nout)
		return;
	memset(msgs, 0, sizeof(struct mmsghdr) * OUT_BATCH);
	/* one message per run of equal-size datagrams (the last of a run may be shorter): UDP GSO */
	while (i < f->nout) {
		uint32_t seg = f->out[i].len, j = i + 1;
		struct msghdr *m = &msgs[nmsg].msg_hdr;

		if (f->gso)
			while (j < f->nout && j - i < 64 && f->out[j].len == seg)
				j++;
		if (f->gso && j < f->nout && j - i < 64 && f->out[j].len < seg && j > i)
			j++;
		m->msg_iov = &iovs[i];
		m->msg_iovlen = j - i;
		for (uint32_t k = i; k < j; k++) {
			iovs[k].iov_base = f->out[k].data;
			iovs[k].iov_len = f->out[k].len;
		}
		if (j - i > 1) {
			struct cmsghdr *cm;

			m->msg_control = cbufs[nmsg];
			m->msg_controllen = sizeof(cbufs[nmsg]);
			cm = CMSG_FIRSTHDR(m);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			*(uint16_t *)CMSG_DATA(cm) = (uint16_t)seg;
		}
		msgs[nmsg].msg_len = j - i; /* datagrams in this message (restored below) */
		nmsg++;
		i = j;
	}
	uint32_t counts[OUT_BATCH];
	for (i = 0; i < nmsg; i++)
		counts[i] = msgs[i].msg_len;
	done = 0;
	while (done < nmsg) {
		rv = sendmmsg(c->fd, msgs + done, nmsg - done, 0);
		if (rv < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EIO || errno == EINVAL) && f->gso && msgs[done].msg_hdr.msg_iovlen > 1) {
				f->gso = 0; /* no GSO on this path: resend one datagram per message */
				for (i = done; i < nmsg; i++) {
					struct msghdr *m = &msgs[i].msg_hdr;
					for (size_t k = 0; k < m->msg_iovlen; k++) {
						if (send(c->fd, m->msg_iov[k].iov_base, m->msg_iov[k].iov_len, 0) > 0)
							sent_pkts++;
						else
							f->st.send_errors++;
					}
				}
				break;
			}
			if (errno == ECONNREFUSED)
				c->icmp_refused = 1;
			else
				f->st.send_errors++;
			break;
		}
		for (i = done; i < done + (uint32_t)rv; i++) {
			sent_pkts += counts[i];
			if (counts[i] > 1)
				f->st.gso_batches++;
		}
		done += (uint32_t)rv;
	}
	f->st.packets_sent += sent_pkts;
	f->nout = 0;
}

int flood_socket_receive(struct kbx_quic_flood *f, struct conn *c, uint64_t now)
{
	static __thread uint8_t bufs[RX_BATCH][KBX_QUIC_RX_BUFFER];
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iovs[RX_BATCH];
	int n, i, total = 0;

	for (;;) {
		kbx_quic_recv_batch_prepare(msgs, iovs, bufs, NULL, RX_BATCH);
		n = recvmmsg(c->fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == ECONNREFUSED) {
				c->icmp_refused = 1;
				continue;
			}
			return total;
		}
		for (i = 0; i < n && c->conn; i++)
			flood_conn_read(c, bufs[i], msgs[i].msg_len, 0, now);
		total += n;
		if (n < RX_BATCH || !c->conn)
			return total;
	}
}

static int open_socket(struct kbx_quic_flood *f, struct conn *c, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), size = 4 << 20;
	socklen_t len = sizeof(c->local);

	if (fd < 0)
		return kbx_fail(-errno, "create UDP socket", "for QUIC over kernel UDP");
	c->local.sin_family = AF_INET;
	c->local.sin_addr.s_addr = f->cfg.local_ip;
	c->local.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&c->local, sizeof(c->local)) != 0) {
		int err = errno;
		char a[INET_ADDRSTRLEN];
		close(fd);
		inet_ntop(AF_INET, &c->local.sin_addr, a, sizeof(a));
		return kbx_fail(-err, "bind UDP socket", "%s:%u", a, port);
	}
	getsockname(fd, (struct sockaddr *)&c->local, &len);
	if (f->cfg.io == KBX_QUIC_IO_SOCKET) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	c->fd = fd;
	c->local_port = ntohs(c->local.sin_port);
	return 0;
}

/* socket io: points the connection's socket at its server (again when its slot changes server). */
int flood_socket_connect(struct kbx_quic_flood *f, struct conn *c)
{
	char a[INET_ADDRSTRLEN];
	int err;

	(void)f;
	if (connect(c->fd, (struct sockaddr *)&c->remote, sizeof(c->remote)) == 0)
		return 0;
	err = errno;
	inet_ntop(AF_INET, &c->remote.sin_addr, a, sizeof(a));
	return kbx_fail(-err, "connect UDP socket", "to the QUIC server %s:%u", a, ntohs(c->remote.sin_port));
}

int flood_socket_reserve_ports(struct kbx_quic_flood *f)
{
	uint32_t attempt, i;
	int rv = 0;

	for (attempt = 0; attempt < 64; attempt++) {
		uint16_t base = (uint16_t)f->cfg.local_port;

		if (!base) {
			uint16_t r;
			gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r));
			base = (uint16_t)(40000 + r % (20000 - f->nconns));
		}
		for (i = 0; i < f->nconns; i++) {
			rv = open_socket(f, &f->conns[i], (uint16_t)(base + i));
			if (rv < 0)
				break;
		}
		if (i == f->nconns) {
			f->cfg.local_port = base;
			return 0;
		}
		while (i-- > 0) {
			close(f->conns[i].fd);
			f->conns[i].fd = -1;
		}
		if (f->cfg.local_port)
			return rv;
	}
	return rv;
}
