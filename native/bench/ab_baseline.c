// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ab_baseline: the C baselines of `pnpm bench ab` (part 2), on the same two lines as ab-arbitrate.
 *
 *   ab_baseline xsk IF_A IF_B SECONDS
 *     bare AF_XDP receive loop WITHOUT arbitration: xdp_xsk_redirect.o (bpf_link) on both interfaces,
 *     one UMEM, one socket per line (queue 0); counts every packet (both copies).
 *   ab_baseline udp IP_A IP_B PORT SECONDS [spin]
 *     kernel-socket arbitrator: two UDP sockets (16 MiB receive buffers), recvmmsg batches of 256, the same first-copy-wins logic in C
 *     (a window bitmap of 4096 optiq sequence numbers); counts unique and duplicate packets. Idle, it sleeps in
 *     poll(); with spin it keeps calling recvmmsg (MSG_DONTWAIT) instead, like ab-arbitrate --busy-poll.
 *
 * Counting starts at the first packet and lasts SECONDS (or until 1 s without packets). One JSON line on
 * stdout: packets, unique, pps (unique per second for udp, packets per second for xsk).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ab_format.h"
#include "kbx_xsk.h"
#include "xdp_xsk_redirect.h"

#define BATCH 64      /* AF_XDP descriptors per socket per call, as ab-arbitrate's default */
#define UDP_BATCH 256 /* datagrams per recvmmsg */
#define WINDOW 4096

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, int err)
{
	struct kbx_error e;
	kbx_error_take(&e);
	fprintf(stderr, "ab_baseline: %s: %s (%s: %s)\n", what, strerror(err < 0 ? -err : err), e.operation, e.message);
	exit(1);
}

/* First copy wins over a window of sequence numbers (one stream; the benchmark feed has one). */
struct dedupe {
	uint64_t top;
	bool started;
	uint64_t tags[WINDOW];
};

static bool first_copy(struct dedupe *d, uint32_t raw)
{
	uint64_t l = d->started ? d->top + (int64_t)(int32_t)(raw - (uint32_t)d->top) : raw;
	if (!d->started) {
		d->started = true;
		d->top = l;
	}
	if ((int64_t)(l - d->top) > 0)
		d->top = l;
	if ((int64_t)(d->top - l) >= WINDOW)
		return false;
	uint64_t *slot = &d->tags[l & (WINDOW - 1)];
	if (*slot == l + 1)
		return false;
	*slot = l + 1;
	return true;
}

static int run_xsk(const char *if_a, const char *if_b, double seconds)
{
	const char *ifs[2] = { if_a, if_b };
	struct kbx_umem_config uc = { .frame_count = 16384, .fill_size = 4096 };
	struct kbx_umem *umem = NULL;
	int err = kbx_umem_create(&uc, &umem);
	if (err)
		fail("kbx_umem_create", err);
	struct kbx_xsk *x[2];
	for (int i = 0; i < 2; i++) {
		struct kbx_xsk_config c = { .queue = 0, .rx_size = 4096, .fill_frames = 4096, .zero_copy = KBX_ZERO_COPY_TRY,
					    .need_wakeup = 1, .bind_retries = 20, .retry_delay_ms = 50 };
		struct kbx_xsk_info info;
		err = kbx_xsk_create(umem, ifs[i], &c, &x[i], &info);
		if (err)
			fail("kbx_xsk_create", err);
	}
	const char *dir = getenv("KBX_BPF_DIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/xdp_xsk_redirect.o", dir ? dir : "bpf/build");
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj)
		fail("bpf_object__open_file", -errno);
	if ((err = bpf_object__load(obj)))
		fail("bpf_object__load", err);
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "kbx_xsk_redirect");
	struct bpf_map *xsks = bpf_object__find_map_by_name(obj, "xsks");
	struct bpf_map *slots = bpf_object__find_map_by_name(obj, "xsk_slots");
	if (!prog || !xsks || !slots)
		fail("find kbx_xsk_redirect in the XDP object", -ENOENT);
	struct bpf_link *links[2];
	for (uint32_t i = 0; i < 2; i++) {
		int fd = kbx_xsk_fd(x[i]);
		struct kbx_xsk_slot_key key = { .ifindex = if_nametoindex(ifs[i]), .queue = 0 };
		if (bpf_map__update_elem(xsks, &i, sizeof(i), &fd, sizeof(fd), BPF_ANY) ||
		    bpf_map__update_elem(slots, &key, sizeof(key), &i, sizeof(i), BPF_ANY))
			fail("steer", -errno);
		links[i] = bpf_program__attach_xdp(prog, (int)key.ifindex);
		if (!links[i])
			fail("bpf_program__attach_xdp", -errno);
	}
	fprintf(stderr, "ab_baseline xsk: ready\n");
	static struct kbx_desc descs[2][BATCH];
	uint32_t held[2] = { 0, 0 };
	uint64_t packets = 0;
	double start = 0, last = now_s(), ready = last;
	while (!stopping) {
		int got = 0;
		for (int i = 0; i < 2; i++) {
			int n = kbx_xsk_receive(x[i], descs[i], BATCH, held[i], 0);
			if (n < 0)
				fail("kbx_xsk_receive", n);
			held[i] = (uint32_t)n;
			got += n;
		}
		double t = now_s();
		if (got) {
			if (start == 0)
				start = t;
			last = t;
			packets += (uint64_t)got;
		} else {
			struct pollfd p[2] = { { kbx_xsk_fd(x[0]), POLLIN, 0 }, { kbx_xsk_fd(x[1]), POLLIN, 0 } };
			poll(p, 2, 5);
		}
		if (start && (t - start >= seconds || t - last > 1.0))
			break;
		if (!start && t - ready > 30)
			break;
	}
	double elapsed = start ? last - start : 0;
	printf("{\"impl\":\"bare-xsk\",\"packets\":%llu,\"seconds\":%.3f,\"pps\":%.0f}\n", (unsigned long long)packets,
	       elapsed, elapsed > 0 ? (double)packets / elapsed : 0.0);
	for (int i = 0; i < 2; i++) {
		kbx_umem_release(umem, descs[i], held[i]);
		bpf_link__destroy(links[i]);
		kbx_xsk_close(x[i]);
	}
	bpf_object__close(obj);
	kbx_umem_destroy(umem);
	return 0;
}

static int udp_socket(const char *ip, int port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fail("socket", -errno);
	int size = 16 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		fail("bad IPv4 address", -EINVAL);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
		fail("bind", -errno);
	return fd;
}

static int run_udp(const char *ip_a, const char *ip_b, int port, double seconds, int spin)
{
	int fds[2] = { udp_socket(ip_a, port), udp_socket(ip_b, port) };
	fprintf(stderr, "ab_baseline udp: ready\n");
	static uint8_t bufs[UDP_BATCH][2048];
	static struct iovec iov[UDP_BATCH];
	static struct mmsghdr msgs[UDP_BATCH];
	for (int i = 0; i < UDP_BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	static struct dedupe d;
	uint64_t packets = 0, unique = 0;
	double start = 0, last = now_s(), ready = last;
	while (!stopping) {
		int got = 0;
		for (int s = 0; s < 2; s++) {
			int n = recvmmsg(fds[s], msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
			if (n <= 0)
				continue;
			got += n;
			for (int i = 0; i < n; i++) {
				struct ab_message m;
				if (msgs[i].msg_len < AB_OPTIQ_SIZE)
					continue;
				ab_parse_optiq(bufs[i], &m);
				if (first_copy(&d, (uint32_t)m.sequence))
					unique++;
			}
		}
		double t = now_s();
		if (got) {
			if (start == 0)
				start = t;
			last = t;
			packets += (uint64_t)got;
		} else if (!spin) {
			struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
			poll(p, 2, 5);
		}
		if (start && (t - start >= seconds || t - last > 1.0))
			break;
		if (!start && t - ready > 30)
			break;
	}
	double elapsed = start ? last - start : 0;
	printf("{\"impl\":\"kernel-udp%s\",\"packets\":%llu,\"unique\":%llu,\"seconds\":%.3f,\"pps\":%.0f}\n",
	       spin ? "-spin" : "", (unsigned long long)packets, (unsigned long long)unique, elapsed, elapsed > 0 ? (double)unique / elapsed : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (argc == 5 && strcmp(argv[1], "xsk") == 0)
		return run_xsk(argv[2], argv[3], atof(argv[4]));
	if ((argc == 6 || (argc == 7 && strcmp(argv[6], "spin") == 0)) && strcmp(argv[1], "udp") == 0)
		return run_udp(argv[2], argv[3], atoi(argv[4]), atof(argv[5]), argc == 7);
	fprintf(stderr, "usage: ab_baseline xsk IF_A IF_B SECONDS | ab_baseline udp IP_A IP_B PORT SECONDS [spin]\n");
	return 2;
}
