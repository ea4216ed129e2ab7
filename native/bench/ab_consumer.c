// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The delivered-to-consumer half of `pnpm bench ab`: a consumer of ab-arbitrate's outputs that measures, for
 * every message, its arrival time as the message carries it (CLOCK_REALTIME: the XDP program's stamp with
 * `ab-arbitrate --xdp-arrival`) against the CLOCK_REALTIME reading taken when the consumer read it.
 *
 *   ab_consumer shm NAME COUNT IDLE_MS
 *       reads the ring /dev/shm/NAME (kbx_ab_shm.h) as it is written, spinning; one clock reading per message.
 *   ab_consumer udp IP:PORT ARRIVALS COUNT IDLE_MS
 *       reads the datagrams of `--out udp:IP:PORT` with recvmmsg, spinning (MSG_DONTWAIT); one clock reading per
 *       recvmmsg call (every datagram it returns was read then). A UDP payload carries no arrival time: the
 *       run's `--out shm:ARRIVALS` ring (large enough to hold the whole feed) gives each sequence number's, read
 *       after the feed, so nothing but the socket is read while it runs. One stream (the bench's feed).
 * Both spin under SCHED_IDLE: they share a CPU with the arbitrator (the machine has two; the feeder has the other)
 * and run only while it sleeps, so it is never kept waiting for them (it preempts them at once when woken).
 * Both wait up to 30 s for the ring / bind at once, print "ready" on stderr, and stop after COUNT messages, or
 * IDLE_MS without one once the first came. stdout, one JSON line:
 *   {"output":"shm"|"udp","received":N,"lost":L,"matched":M,"seconds":S,"perSecond":R,
 *    "latencyNs":{"min":…,"p50":…,"p99":…,"p999":…,"max":…,"mean":…},"negative":K}
 * seconds: first to last read; perSecond: received / seconds; matched: messages with an arrival time (udp: found
 * in ARRIVALS); negative: readings before their arrival time (clock conversion error), counted as 0 ns.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ab_format.h"
#include "kbx_ab_shm.h"
#include "kbx_histogram.h"

#define SUB_BITS 7 /* buckets at most 0.8 % wide */
#define VALUE_BITS 40
#define BUCKETS KBX_HIST_BUCKETS(SUB_BITS, VALUE_BITS)
#define UDP_BATCH 64
#define UDP_MAX_PAYLOAD 2048

struct latency {
	uint64_t buckets[BUCKETS];
	uint64_t count, sum, min, max, negative;
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void record(struct latency *h, uint64_t read_ns, uint64_t arrival_ns)
{
	uint64_t ns = 0;
	if (read_ns >= arrival_ns)
		ns = read_ns - arrival_ns;
	else
		h->negative++;
	uint64_t v = ns < (1ULL << VALUE_BITS) ? ns : (1ULL << VALUE_BITS) - 1;
	h->buckets[kbx_hist_index(v, SUB_BITS)]++;
	h->count++;
	h->sum += ns;
	if (h->count == 1 || ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
}

/* The value at quantile q: the upper bound of the bucket that holds it (at most the maximum). */
static uint64_t quantile(const struct latency *h, double q)
{
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
	uint64_t seen = 0;
	if (rank == 0)
		rank = 1;
	for (uint32_t i = 0; i < BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t upper = kbx_hist_upper(i, SUB_BITS);
			return upper < h->max ? upper : h->max;
		}
	}
	return h->max;
}

static void report(const char *output, uint64_t received, uint64_t lost, uint64_t first_ns, uint64_t last_ns,
		   const struct latency *h)
{
	double seconds = received > 1 ? (double)(last_ns - first_ns) / 1e9 : 0;
	printf("{\"output\":\"%s\",\"received\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"matched\":%" PRIu64
	       ",\"seconds\":%.6f,\"perSecond\":%.0f,\"latencyNs\":{\"min\":%" PRIu64 ",\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
	       ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 ",\"mean\":%.0f},\"negative\":%" PRIu64 "}\n",
	       output, received, lost, h->count, seconds, seconds > 0 ? (double)received / seconds : 0, h->min,
	       quantile(h, 0.5), quantile(h, 0.99), quantile(h, 0.999), h->max,
	       h->count ? (double)h->sum / (double)h->count : 0, h->negative);
}

/* /dev/shm/name mapped read-only, waiting up to 30 s for it to appear. */
static const struct kbx_ab_shm_header *open_ring(const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	for (int tries = 0; tries < 3000; tries++) {
		int fd = open(path, O_RDONLY);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
			void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
			close(fd);
			if (map != MAP_FAILED && kbx_ab_shm_check(map, (uint64_t)st.st_size) == 0)
				return map;
			fprintf(stderr, "ab_consumer: %s is not a kbx ab ring\n", path);
			return NULL;
		}
		if (fd >= 0)
			close(fd);
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	fprintf(stderr, "ab_consumer: %s did not appear\n", path);
	return NULL;
}

static int run_shm(const char *name, uint64_t count, uint64_t idle_ns)
{
	const struct kbx_ab_shm_header *ring = open_ring(name);
	if (!ring)
		return 1;
	struct kbx_ab_shm_cursor cursor;
	kbx_ab_shm_cursor_open(&cursor, ring);
	struct kbx_ab_shm_slot *m = malloc(ring->slot_size);
	struct latency *h = calloc(1, sizeof(*h));
	uint64_t received = 0, first_ns = 0, last_ns = 0;
	fprintf(stderr, "ab_consumer shm: ready\n");
	while (received < count) {
		if (kbx_ab_shm_next(&cursor, m)) {
			uint64_t now = realtime_ns();
			record(h, now, m->arrival_ns);
			if (!received++)
				first_ns = now;
			last_ns = now;
			continue;
		}
		if (__atomic_load_n(&ring->state, __ATOMIC_ACQUIRE) == KBX_AB_SHM_ENDED &&
		    cursor.next >= __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE))
			break;
		if (received && realtime_ns() - last_ns > idle_ns)
			break;
		__builtin_ia32_pause();
	}
	report("shm", received, cursor.lost, first_ns, last_ns, h);
	return 0;
}

/* Read time per sequence number, indexed by sequence & mask (the feed's numbers are consecutive). */
struct reads {
	uint64_t *sequence; /* the number recorded in the slot, + 1 (0: none) */
	uint64_t *read_ns;
	uint64_t mask;
};

static int udp_socket(const char *address)
{
	char ip[64];
	const char *colon = strrchr(address, ':');
	if (!colon || colon - address >= (long)sizeof(ip)) {
		fprintf(stderr, "ab_consumer: %s: expected IP:PORT\n", address);
		return -1;
	}
	memcpy(ip, address, (size_t)(colon - address));
	ip[colon - address] = 0;
	struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int size = 64 << 20;
	if (fd < 0 || inet_pton(AF_INET, ip, &at.sin_addr) != 1 ||
	    (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0 &&
	     setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0) ||
	    bind(fd, (struct sockaddr *)&at, sizeof(at)) < 0) {
		fprintf(stderr, "ab_consumer: udp %s: %s\n", address, strerror(errno));
		return -1;
	}
	return fd;
}

/* Every arrival in the ring (it must still hold them all) against the read times: into h. */
static uint64_t match_arrivals(const struct kbx_ab_shm_header *ring, const struct reads *r, struct latency *h)
{
	uint64_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
	struct kbx_ab_shm_cursor cursor = { .ring = ring, .next = head > ring->slot_count ? head - ring->slot_count : 0 };
	struct kbx_ab_shm_slot *m = malloc(ring->slot_size);
	uint64_t lost = cursor.next;
	while (cursor.next < head && kbx_ab_shm_next(&cursor, m)) {
		uint64_t slot = m->sequence & r->mask;
		if (r->sequence[slot] == m->sequence + 1)
			record(h, r->read_ns[slot], m->arrival_ns);
	}
	free(m);
	return lost + cursor.lost;
}

static int run_udp(const char *address, const char *arrivals, uint64_t count, uint64_t idle_ns)
{
	int fd = udp_socket(address);
	if (fd < 0)
		return 1;
	const struct kbx_ab_shm_header *ring = open_ring(arrivals);
	if (!ring)
		return 1;
	struct reads r = { .mask = 1 };
	while (r.mask < 2 * count)
		r.mask <<= 1;
	r.sequence = calloc(r.mask, sizeof(uint64_t));
	r.read_ns = calloc(r.mask, sizeof(uint64_t));
	r.mask--;
	static uint8_t payloads[UDP_BATCH][UDP_MAX_PAYLOAD];
	struct iovec iovs[UDP_BATCH];
	struct mmsghdr msgs[UDP_BATCH];
	for (int i = 0; i < UDP_BATCH; i++) {
		iovs[i] = (struct iovec){ .iov_base = payloads[i], .iov_len = UDP_MAX_PAYLOAD };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iovs[i], .msg_iovlen = 1 } };
	}
	uint64_t received = 0, unparsed = 0, first_ns = 0, last_ns = 0;
	fprintf(stderr, "ab_consumer udp: ready\n");
	while (received < count) {
		int n = recvmmsg(fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (received && realtime_ns() - last_ns > idle_ns)
				break;
			__builtin_ia32_pause();
			continue;
		}
		uint64_t now = realtime_ns();
		if (!received)
			first_ns = now;
		last_ns = now;
		received += (uint64_t)n;
		for (int i = 0; i < n; i++) {
			struct ab_message m;
			if (msgs[i].msg_len < ab_header_size(ring->format) ||
			    ab_parse_payload(ring->format, payloads[i], &m) != AB_PARSE_DATA) {
				unparsed++;
				continue;
			}
			r.sequence[m.sequence & r.mask] = m.sequence + 1;
			r.read_ns[m.sequence & r.mask] = now;
		}
	}
	struct latency *h = calloc(1, sizeof(*h));
	uint64_t overrun = match_arrivals(ring, &r, h);
	if (overrun)
		fprintf(stderr, "ab_consumer udp: %" PRIu64 " arrivals no longer in %s (make the ring larger)\n", overrun, arrivals);
	if (unparsed)
		fprintf(stderr, "ab_consumer udp: %" PRIu64 " datagrams were not feed data\n", unparsed);
	report("udp", received, 0, first_ns, last_ns, h);
	return 0;
}

int main(int argc, char **argv)
{
	struct sched_param idle = { 0 };
	if (sched_setscheduler(0, SCHED_IDLE, &idle) < 0)
		perror("ab_consumer: SCHED_IDLE");
	if (argc == 5 && strcmp(argv[1], "shm") == 0)
		return run_shm(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10) * 1000000ULL);
	if (argc == 6 && strcmp(argv[1], "udp") == 0)
		return run_udp(argv[2], argv[3], strtoull(argv[4], NULL, 10), strtoull(argv[5], NULL, 10) * 1000000ULL);
	fprintf(stderr, "usage: ab_consumer shm NAME COUNT IDLE_MS | ab_consumer udp IP:PORT ARRIVALS COUNT IDLE_MS\n");
	return 2;
}
