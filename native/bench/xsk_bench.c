// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xsk_bench: the pure-C AF_XDP baseline for `pnpm bench xsk`, driving the same libkbx batch calls as
 * @kbx/xsk from a C loop. Prints one JSON line of results on stdout.
 *
 *   xsk_bench tx --iface IF [--dst-mac M --src-mac M --src-ip A --dst-ip A --sport P --dport P]
 *                [--frame-len 64] [--duration 2] [--count N] [--batch 64] [--stamp]
 *     sends copies of a prebuilt UDP frame as fast as possible; counts completed frames.
 *     --stamp writes a per-frame sequence number into the payload (the UDP checksum is then 0).
 *   xsk_bench rx --iface IF [--xdp-object PATH] [--duration 2] [--idle 3] [--batch 64]
 *     loads xdp_xsk_redirect.o (bpf_link), steers the queue to its socket, counts and releases frames
 *     for --duration seconds from the first one.
 * Common: --queue Q, --frames N (UMEM frames), --zero-copy try|never|require, --tx-budget N.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../src/kbx_frame.h"
#include "kbx_xsk.h"
#include "xdp_xsk_redirect.h"

#define MAX_BATCH 1024

struct options {
	const char *mode;
	const char *iface;
	uint32_t queue;
	uint32_t frames;
	uint32_t batch;
	double duration;
	double idle;
	uint64_t count;
	uint32_t frame_len;
	uint32_t zero_copy;
	uint32_t tx_budget;
	bool stamp;
	uint8_t src_mac[6], dst_mac[6];
	uint32_t src_ip, dst_ip; /* network order */
	uint16_t sport, dport;
	const char *xdp_object;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	stopping = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds this process spent in user space and in the kernel. */
static void cpu_times(double *user, double *sys)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	*sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void fail(const char *what, int err)
{
	struct kbx_error e;
	kbx_error_take(&e);
	fprintf(stdout, "{\"event\":\"error\",\"op\":\"%s\",\"detail\":\"%s: %s\",\"errno\":%d,\"message\":\"%s\"}\n",
		what, e.operation, e.message, err < 0 ? -err : err, strerror(err < 0 ? -err : err));
	exit(1);
}

static void usage(const char *msg)
{
	fprintf(stderr, "xsk_bench: %s\nusage: xsk_bench tx|rx --iface IF [options] (see the source header)\n", msg);
	exit(2);
}

static bool parse_mac(const char *s, uint8_t *mac)
{
	unsigned int b[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return true;
}

/* Ethernet + IPv4 + UDP with correct checksums (UDP checksum 0 when frames are stamped later). */
static void build_udp_frame(const struct options *o, uint8_t *f)
{
	uint32_t udp_payload_len = o->frame_len - KBX_ETH_HEADER_LEN - KBX_IPV4_HEADER_LEN - KBX_UDP_HEADER_LEN;
	memset(f, 0, o->frame_len);
	uint8_t *ip = kbx_put_ethernet(f, o->dst_mac, o->src_mac, ETH_P_IP);
	uint8_t *udp = kbx_put_ipv4(ip, 0, 0, IPPROTO_UDP, &o->src_ip, &o->dst_ip);
	kbx_put_be16(udp, o->sport);
	kbx_put_be16(udp + 2, o->dport);
	for (uint32_t i = 0; i < udp_payload_len; i++)
		udp[KBX_UDP_HEADER_LEN + i] = (uint8_t)('a' + (KBX_UDP_HEADER_LEN + i) % 26);
	kbx_finish_ipv4_udp(ip, udp_payload_len, !o->stamp);
}

static struct kbx_xsk *open_socket(const struct options *o, struct kbx_umem *umem, bool rx, bool tx,
				   struct kbx_xsk_info *info)
{
	struct kbx_xsk_config c = {
		.queue = o->queue,
		.rx_size = rx ? 2048 : 0,
		.tx_size = tx ? 2048 : 0,
		.zero_copy = o->zero_copy,
		.need_wakeup = 1,
		.bind_retries = 10,
		.retry_delay_ms = 50,
		.tx_budget = o->tx_budget,
	};
	struct kbx_xsk *x = NULL;
	int err = kbx_xsk_create(umem, o->iface, &c, &x, info);
	if (err)
		fail("kbx_xsk_create", err);
	return x;
}

static void print_stats_json(struct kbx_xsk *x)
{
	struct kbx_xsk_stats s;
	if (kbx_xsk_statistics(x, &s))
		memset(&s, 0, sizeof(s));
	printf("\"stats\":{\"rx_dropped\":%llu,\"rx_ring_full\":%llu,\"fill_ring_empty\":%llu,\"tx_invalid\":%llu,"
	       "\"tx_ring_empty\":%llu,\"kicks\":%llu,\"kick_errors\":%llu,\"polls\":%llu,\"anomalies\":%llu}",
	       (unsigned long long)s.rx_dropped, (unsigned long long)s.rx_ring_full,
	       (unsigned long long)s.rx_fill_ring_empty_descs, (unsigned long long)s.tx_invalid_descs,
	       (unsigned long long)s.tx_ring_empty_descs, (unsigned long long)s.kicks,
	       (unsigned long long)s.kick_errors, (unsigned long long)s.polls, (unsigned long long)s.anomalies);
}

static int run_tx(const struct options *o)
{
	struct kbx_umem_config uc = { .frame_count = o->frames };
	struct kbx_umem *umem = NULL;
	int err = kbx_umem_create(&uc, &umem);
	if (err)
		fail("kbx_umem_create", err);
	struct kbx_xsk_info info;
	struct kbx_xsk *x = open_socket(o, umem, false, true, &info);

	/* Every frame carries the template from the start: the loop only sets lengths (and stamps). */
	uint8_t *area = kbx_umem_area(umem);
	struct kbx_umem_config cfg;
	kbx_umem_get_config(umem, &cfg);
	build_udp_frame(o, area);
	for (uint32_t f = 1; f < cfg.frame_count; f++)
		memcpy(area + (uint64_t)f * cfg.frame_size, area, o->frame_len);

	struct kbx_tx_batch *batch = calloc(1, sizeof(*batch) + MAX_BATCH * sizeof(struct kbx_desc));
	batch->capacity = o->batch;
	uint64_t submitted = 0, sequence = 0, allocated = 0;
	struct kbx_xsk_stats s0;
	kbx_xsk_statistics(x, &s0);
	double user0, sys0, user1, sys1;
	cpu_times(&user0, &sys0);
	double start = now_s(), end = start + o->duration, t = start;
	uint64_t iterations = 0;
	/* The same one call per batch as @kbx/xsk: send what the batch holds, refill it with free frames. */
	uint32_t refill = o->batch;
	while (!stopping && t < end && (!o->count || submitted < o->count)) {
		for (uint32_t i = batch->fresh; i < batch->count; i++) {
			batch->descs[i].len = o->frame_len;
			if (o->stamp) {
				uint32_t seq = (uint32_t)sequence++;
				memcpy(area + batch->descs[i].addr + 42, &seq, 4);
			}
		}
		allocated += batch->count - batch->fresh;
		if (o->count && allocated + refill > o->count)
			refill = (uint32_t)(o->count - allocated);
		uint32_t had = batch->count;
		int sent = kbx_xsk_send_batch(x, batch, refill, 0);
		if (sent < 0)
			fail("kbx_xsk_send_batch", sent);
		submitted += (uint64_t)sent;
		if (sent == 0 && had)
			kbx_xsk_wait(x, KBX_POLL_TX, 1);
		if ((++iterations & 15) == 0)
			t = now_s();
	}
	double elapsed = now_s() - start;
	cpu_times(&user1, &sys1);
	struct kbx_xsk_stats s1;
	kbx_xsk_statistics(x, &s1);
	uint64_t completed_in_window = s1.tx_completed - s0.tx_completed;
	/* Drain: completions still in flight are counted separately. */
	double drain_end = now_s() + 1.0;
	while (kbx_xsk_tx_pending(x) && now_s() < drain_end) {
		if (!kbx_xsk_complete(x))
			kbx_xsk_wait(x, KBX_POLL_TX, 1);
	}
	kbx_umem_release(umem, batch->descs, batch->count);
	free(batch);
	kbx_xsk_statistics(x, &s1);
	printf("{\"event\":\"end\",\"mode\":\"tx\",\"impl\":\"c\",\"iface\":\"%s\",\"queue\":%u,\"zero_copy\":%s,"
	       "\"tx_budget\":%u,\"batch\":%u,\"frame_len\":%u,\"seconds\":%.6f,\"submitted\":%llu,"
	       "\"completed\":%llu,\"completed_in_window\":%llu,\"pps\":%.0f,\"user_s\":%.3f,\"sys_s\":%.3f,",
	       o->iface, o->queue, info.zero_copy ? "true" : "false", info.tx_budget, o->batch, o->frame_len,
	       elapsed, (unsigned long long)submitted, (unsigned long long)(s1.tx_completed - s0.tx_completed),
	       (unsigned long long)completed_in_window, (double)completed_in_window / elapsed, user1 - user0,
	       sys1 - sys0);
	print_stats_json(x);
	printf("}\n");
	kbx_xsk_close(x);
	kbx_umem_destroy(umem);
	return 0;
}

struct steering {
	struct bpf_object *obj;
	struct bpf_link *link;
};

static void steer(const struct options *o, struct kbx_xsk *x, struct steering *st)
{
	int err;
	uint32_t ifindex = if_nametoindex(o->iface);
	st->obj = bpf_object__open_file(o->xdp_object, NULL);
	if (!st->obj)
		fail("bpf_object__open_file", -errno);
	err = bpf_object__load(st->obj);
	if (err)
		fail("bpf_object__load", err);
	struct bpf_program *prog = bpf_object__find_program_by_name(st->obj, "kbx_xsk_redirect");
	struct bpf_map *xsks = bpf_object__find_map_by_name(st->obj, "xsks");
	struct bpf_map *slots = bpf_object__find_map_by_name(st->obj, "xsk_slots");
	if (!prog || !xsks || !slots)
		fail("find kbx_xsk_redirect, xsks and xsk_slots in the XDP object", -ENOENT);
	uint32_t slot = 0;
	int fd = kbx_xsk_fd(x);
	struct kbx_xsk_slot_key key = { .ifindex = ifindex, .queue = o->queue };
	err = bpf_map__update_elem(xsks, &slot, sizeof(slot), &fd, sizeof(fd), BPF_ANY);
	if (err)
		fail("update xsks", err);
	err = bpf_map__update_elem(slots, &key, sizeof(key), &slot, sizeof(slot), BPF_ANY);
	if (err)
		fail("update xsk_slots", err);
	st->link = bpf_program__attach_xdp(prog, (int)ifindex);
	if (!st->link)
		fail("bpf_program__attach_xdp", -errno);
}

static int run_rx(const struct options *o)
{
	struct kbx_umem_config uc = { .frame_count = o->frames };
	struct kbx_umem *umem = NULL;
	int err = kbx_umem_create(&uc, &umem);
	if (err)
		fail("kbx_umem_create", err);
	struct kbx_xsk_info info;
	struct kbx_xsk *x = open_socket(o, umem, true, false, &info);
	struct steering st = { 0 };
	if (o->xdp_object)
		steer(o, x, &st);
	fprintf(stderr, "xsk_bench rx: ready on %s queue %u\n", o->iface, o->queue);

	uint8_t *area = kbx_umem_area(umem);
	static struct kbx_desc batch[MAX_BATCH];
	uint32_t held = 0;
	uint64_t packets = 0, bytes = 0;
	double user0 = 0, sys0 = 0, user1, sys1;
	uint32_t stamp_xor = 0;
	double ready = now_s(), start = 0, end = 0, t = ready;
	struct kbx_xsk_stats s0 = { 0 };
	while (!stopping) {
		int n = kbx_xsk_receive(x, batch, o->batch, held, 5);
		if (n < 0)
			fail("kbx_xsk_receive", n);
		held = (uint32_t)n;
		t = now_s();
		if (n && start == 0) {
			start = t;
			end = start + o->duration;
			kbx_xsk_statistics(x, &s0);
			cpu_times(&user0, &sys0);
		}
		for (int i = 0; i < n; i++) {
			bytes += batch[i].len;
			uint32_t stamp;
			memcpy(&stamp, area + batch[i].addr + 42, 4);
			stamp_xor ^= stamp;
		}
		packets += (uint64_t)n;
		if (start != 0 && t >= end)
			break;
		if (start == 0 && t - ready > o->idle)
			break;
	}
	double elapsed = start ? now_s() - start : 0;
	cpu_times(&user1, &sys1);
	kbx_umem_release(umem, batch, held);
	if (st.link)
		bpf_link__destroy(st.link);
	struct kbx_xsk_stats s1;
	kbx_xsk_statistics(x, &s1);
	printf("{\"event\":\"end\",\"mode\":\"rx\",\"impl\":\"c\",\"iface\":\"%s\",\"queue\":%u,\"zero_copy\":%s,"
	       "\"batch\":%u,\"seconds\":%.6f,\"packets\":%llu,\"bytes\":%llu,\"pps\":%.0f,\"stamp_xor\":%u,"
	       "\"rx_dropped_in_window\":%llu,\"user_s\":%.3f,\"sys_s\":%.3f,",
	       o->iface, o->queue, info.zero_copy ? "true" : "false", o->batch, elapsed,
	       (unsigned long long)packets, (unsigned long long)bytes, elapsed > 0 ? (double)packets / elapsed : 0.0,
	       stamp_xor, (unsigned long long)(s1.rx_dropped - s0.rx_dropped), start ? user1 - user0 : 0.0,
	       start ? sys1 - sys0 : 0.0);
	print_stats_json(x);
	printf("}\n");
	if (st.obj)
		bpf_object__close(st.obj);
	kbx_xsk_close(x);
	kbx_umem_destroy(umem);
	return 0;
}

static uint32_t parse_ip(const char *s)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		usage("bad IPv4 address");
	return a.s_addr;
}

int main(int argc, char **argv)
{
	struct options o = {
		.frames = 4096,
		.batch = 64,
		.duration = 2,
		.idle = 3,
		.frame_len = 64,
		.zero_copy = KBX_ZERO_COPY_TRY,
		.src_mac = { 0x02, 0, 0, 0, 0, 0x01 },
		.dst_mac = { 0x02, 0, 0, 0, 0, 0x02 },
		.sport = 9000,
		.dport = 9001,
	};
	o.src_ip = parse_ip("10.11.0.1");
	o.dst_ip = parse_ip("10.11.0.2");
	static const struct option longopts[] = {
		{ "iface", required_argument, 0, 'i' },	 { "queue", required_argument, 0, 'q' },
		{ "frames", required_argument, 0, 'F' }, { "batch", required_argument, 0, 'b' },
		{ "duration", required_argument, 0, 'd' }, { "idle", required_argument, 0, 'I' },
		{ "count", required_argument, 0, 'n' },	 { "frame-len", required_argument, 0, 'l' },
		{ "zero-copy", required_argument, 0, 'z' }, { "tx-budget", required_argument, 0, 'B' },
		{ "stamp", no_argument, 0, 'S' },	 { "src-mac", required_argument, 0, 'm' },
		{ "dst-mac", required_argument, 0, 'M' }, { "src-ip", required_argument, 0, 'a' },
		{ "dst-ip", required_argument, 0, 'A' }, { "sport", required_argument, 0, 'p' },
		{ "dport", required_argument, 0, 'P' },	 { "xdp-object", required_argument, 0, 'x' },
		{ 0, 0, 0, 0 },
	};
	if (argc < 2)
		usage("missing mode");
	o.mode = argv[1];
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o.iface = optarg; break;
		case 'q': o.queue = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'F': o.frames = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'b': o.batch = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'd': o.duration = strtod(optarg, NULL); break;
		case 'I': o.idle = strtod(optarg, NULL); break;
		case 'n': o.count = strtoull(optarg, NULL, 0); break;
		case 'l': o.frame_len = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'z':
			if (!strcmp(optarg, "never"))
				o.zero_copy = KBX_ZERO_COPY_NEVER;
			else if (!strcmp(optarg, "require"))
				o.zero_copy = KBX_ZERO_COPY_REQUIRE;
			else if (!strcmp(optarg, "try"))
				o.zero_copy = KBX_ZERO_COPY_TRY;
			else
				usage("--zero-copy takes try, never or require");
			break;
		case 'B': o.tx_budget = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'S': o.stamp = true; break;
		case 'm': if (!parse_mac(optarg, o.src_mac)) usage("bad --src-mac"); break;
		case 'M': if (!parse_mac(optarg, o.dst_mac)) usage("bad --dst-mac"); break;
		case 'a': o.src_ip = parse_ip(optarg); break;
		case 'A': o.dst_ip = parse_ip(optarg); break;
		case 'p': o.sport = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'P': o.dport = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'x': o.xdp_object = optarg; break;
		default: usage("bad option");
		}
	}
	if (!o.iface)
		usage("--iface is required");
	if (o.batch == 0 || o.batch > MAX_BATCH)
		usage("--batch must be 1..1024");
	if (o.frame_len < 42 + 4 || o.frame_len > 1514)
		usage("--frame-len must be 46..1514");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!strcmp(o.mode, "tx"))
		return run_tx(&o);
	if (!strcmp(o.mode, "rx"))
		return run_rx(&o);
	usage("mode must be tx or rx");
}
