// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ab-arbitrate's outputs (include/kbx_ab_out.h): udp destinations fed from one batch per flush through
 * sendmmsg, shm rings (ab_shm.c) written message by message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ab_shm.h"
#include "kbx_ab_out.h"
#include "kbx_error.h"

/* Payload bytes a udp batch holds (a datagram that does not fit sends the batch first). */
#define UDP_BATCH_BYTES (256 * 1024)

struct ab_output {
	struct kbx_ab_out_counters counters;
	int fd;                  /* udp */
	struct ab_shm_ring ring; /* shm */
};

struct kbx_ab_out {
	struct ab_output outputs[KBX_AB_OUT_MAX];
	uint32_t count;
	uint32_t udp_count;
	/* The pending udp batch, shared by every udp output (connected sockets: no address per message). */
	struct mmsghdr msgs[KBX_AB_OUT_UDP_BATCH];
	struct iovec iovs[KBX_AB_OUT_UDP_BATCH];
	uint32_t pending;
	uint32_t pending_bytes;
	uint8_t *bytes;
};

int kbx_ab_out_create(struct kbx_ab_out **out)
{
	struct kbx_ab_out *o = calloc(1, sizeof(*o));
	uint8_t *bytes = o ? malloc(UDP_BATCH_BYTES) : NULL;
	if (!bytes) {
		free(o);
		return kbx_fail(-ENOMEM, "create outputs", "allocate a batch of %u bytes", UDP_BATCH_BYTES);
	}
	o->bytes = bytes;
	*out = o;
	return 0;
}

static struct ab_output *next_output(struct kbx_ab_out *o, const char *op)
{
	if (o->count == KBX_AB_OUT_MAX) {
		kbx_fail(-ENOSPC, op, "at most %u outputs", KBX_AB_OUT_MAX);
		return NULL;
	}
	return &o->outputs[o->count];
}

int kbx_ab_out_add_udp(struct kbx_ab_out *o, uint32_t ip_be, uint16_t port_be, uint32_t ifindex, uint32_t ttl)
{
	const char *op = "add udp output";
	struct ab_output *slot = next_output(o, op);
	if (!slot)
		return -ENOSPC;
	char text[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ip_be, text, sizeof(text));
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kbx_fail(-errno, op, "socket for %s:%u", text, ntohs(port_be));
	int rc = 0;
	if (ifindex) {
		struct ip_mreqn mreq = { .imr_ifindex = (int)ifindex };
		int loop = 1;
		int hops = ttl ? (int)ttl : 1;
		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof(mreq)) < 0 ||
		    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) < 0 ||
		    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &hops, sizeof(hops)) < 0)
			rc = kbx_fail(-errno, op, "multicast %s:%u out of ifindex %u", text, ntohs(port_be), ifindex);
	}
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = port_be, .sin_addr = { .s_addr = ip_be } };
	if (!rc && connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0)
		rc = kbx_fail(-errno, op, "connect to %s:%u", text, ntohs(port_be));
	if (rc) {
		close(fd);
		return rc;
	}
	*slot = (struct ab_output){ .counters = { .kind = KBX_AB_OUT_UDP }, .fd = fd };
	o->count++;
	o->udp_count++;
	return 0;
}

int kbx_ab_out_add_shm(struct kbx_ab_out *o, const char *name, uint32_t slots, uint32_t slot_size, uint32_t format)
{
	struct ab_output *slot = next_output(o, "add shm output");
	if (!slot)
		return -ENOSPC;
	*slot = (struct ab_output){ .counters = { .kind = KBX_AB_OUT_SHM }, .fd = -1 };
	int rc = ab_shm_create(&slot->ring, name, slots, slot_size, format);
	if (rc < 0)
		return rc;
	o->count++;
	return 0;
}

uint32_t kbx_ab_out_counters(const struct kbx_ab_out *o, struct kbx_ab_out_counters *counters, uint32_t capacity)
{
	for (uint32_t i = 0; i < o->count && i < capacity; i++) {
		counters[i] = o->outputs[i].counters;
		if (o->outputs[i].counters.kind == KBX_AB_OUT_SHM)
			counters[i].head = o->outputs[i].ring.header->head;
	}
	return o->count;
}

/* The pending batch on one socket: what the kernel refuses is counted and dropped. */
static void send_batch(struct kbx_ab_out *o, struct ab_output *out)
{
	uint32_t sent = 0;
	while (sent < o->pending) {
		int n = sendmmsg(out->fd, o->msgs + sent, o->pending - sent, MSG_DONTWAIT);
		out->counters.head++;
		if (n > 0) {
			for (int i = 0; i < n; i++)
				out->counters.bytes += o->msgs[sent + i].msg_len;
			out->counters.messages += (uint64_t)n;
			sent += (uint32_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			/* EAGAIN, ENOBUFS, ECONNREFUSED (a port unreachable came back), ...: this datagram is dropped */
			out->counters.errors++;
			sent++;
		}
	}
}

void kbx_ab_out_flush(struct kbx_ab_out *o)
{
	if (!o || !o->pending)
		return;
	for (uint32_t i = 0; i < o->count; i++)
		if (o->outputs[i].counters.kind == KBX_AB_OUT_UDP)
			send_batch(o, &o->outputs[i]);
	o->pending = 0;
	o->pending_bytes = 0;
}

static void queue_datagram(struct kbx_ab_out *o, const uint8_t *payload, uint32_t len)
{
	if (o->pending == KBX_AB_OUT_UDP_BATCH || UDP_BATCH_BYTES - o->pending_bytes < len)
		kbx_ab_out_flush(o);
	if (len > UDP_BATCH_BYTES)
		return; /* cannot be a UDP payload */
	uint8_t *copy = o->bytes + o->pending_bytes;
	memcpy(copy, payload, len);
	o->iovs[o->pending] = (struct iovec){ .iov_base = copy, .iov_len = len };
	o->msgs[o->pending] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &o->iovs[o->pending], .msg_iovlen = 1 } };
	o->pending++;
	o->pending_bytes += len;
}

void kbx_ab_out_emit(struct kbx_ab_out *o, const uint8_t *payload, uint32_t len, const void *key, uint64_t sequence,
		     uint32_t line, uint64_t arrival_ns)
{
	if (!o)
		return;
	if (o->udp_count)
		queue_datagram(o, payload, len);
	for (uint32_t i = 0; i < o->count; i++) {
		struct ab_output *out = &o->outputs[i];
		if (out->counters.kind != KBX_AB_OUT_SHM)
			continue;
		if (ab_shm_write(&out->ring, payload, len, key, sequence, line, arrival_ns)) {
			out->counters.messages++;
			out->counters.bytes += len;
		} else {
			out->counters.errors++;
		}
	}
}

void kbx_ab_out_destroy(struct kbx_ab_out *o)
{
	if (!o)
		return;
	kbx_ab_out_flush(o);
	for (uint32_t i = 0; i < o->count; i++) {
		if (o->outputs[i].counters.kind == KBX_AB_OUT_UDP)
			close(o->outputs[i].fd);
		else
			ab_shm_close(&o->outputs[i].ring);
	}
	free(o->bytes);
	free(o);
}
