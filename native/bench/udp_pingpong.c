// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor under `pnpm bench fix-rate`: a plain UDP ping-pong between two namespaces at a rate, both ends
 * blocking in recv() (and the client in clock_nanosleep() between pings) or both ends spinning (MSG_DONTWAIT).
 *   udp_pingpong echo IP:PORT [--spin]                         answers every datagram until SIGTERM/SIGINT
 *   udp_pingpong ping IP:PORT --rate R --count N [--spin]      one JSON line: RTT percentiles in µs
 * Each ping leaves at its deadline (start + i/R) or, if the last answer came later, at once.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int usage(void)
{
	fprintf(stderr, "usage: udp_pingpong echo IP:PORT [--spin] | udp_pingpong ping IP:PORT --rate R --count N [--spin]\n");
	return 2;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char ip[64];
	const char *colon = strrchr(s, ':');
	if (!colon || colon - s >= (long)sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = 0;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, ip, &a->sin_addr) == 1 && a->sin_port ? 0 : -1;
}

/* One datagram into buf: blocking (with the socket's receive timeout) or spinning; its length, or -1. */
static ssize_t receive(int fd, char *buf, size_t cap, int spin, struct sockaddr_in *from, uint64_t give_up_ns)
{
	socklen_t len = sizeof(*from);
	for (;;) {
		ssize_t n = recvfrom(fd, buf, cap, spin ? MSG_DONTWAIT : 0, (struct sockaddr *)from, &len);
		if (n >= 0)
			return n;
		if (stop || (errno != EAGAIN && errno != EINTR) || now_ns() > give_up_ns)
			return -1;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

static int echo(int fd, int spin)
{
	char buf[2048];
	struct sockaddr_in from;
	printf("{\"event\":\"start\",\"tool\":\"udp-pingpong\",\"data\":{\"role\":\"echo\",\"spin\":%s}}\n", spin ? "true" : "false");
	fflush(stdout);
	uint64_t answered = 0;
	while (!stop) {
		ssize_t n = receive(fd, buf, sizeof(buf), spin, &from, UINT64_MAX);
		if (n < 0)
			continue;
		if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, sizeof(from)) == n)
			answered++;
	}
	printf("{\"event\":\"end\",\"tool\":\"udp-pingpong\",\"data\":{\"role\":\"echo\",\"answered\":%llu}}\n", (unsigned long long)answered);
	return 0;
}

static int ping(int fd, const struct sockaddr_in *to, double rate, long count, int spin)
{
	uint64_t *rtt = calloc((size_t)count, sizeof(*rtt));
	if (!rtt)
		return 1;
	char buf[2048];
	memset(buf, 'x', 64);
	struct sockaddr_in from;
	size_t got = 0;
	long lost = 0;
	uint64_t start = now_ns() + 1000000ull;
	for (long i = 0; i < count && !stop; i++) {
		uint64_t due = start + (uint64_t)((double)i * 1e9 / rate);
		if (spin)
			while (now_ns() < due)
				;
		else {
			struct timespec ts = { .tv_sec = (time_t)(due / 1000000000ull), .tv_nsec = (long)(due % 1000000000ull) };
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
		}
		memcpy(buf, &i, sizeof(i));
		uint64_t sent = now_ns();
		if (sendto(fd, buf, 64, 0, (const struct sockaddr *)to, sizeof(*to)) != 64) {
			lost++;
			continue;
		}
		for (;;) {
			ssize_t n = receive(fd, buf, sizeof(buf), spin, &from, sent + 200000000ull);
			if (n < 0) {
				lost++;
				break;
			}
			long seq;
			memcpy(&seq, buf, sizeof(seq));
			if (n >= (ssize_t)sizeof(seq) && seq == i) {
				rtt[got++] = now_ns() - sent;
				break;
			}
		}
	}
	qsort(rtt, got, sizeof(*rtt), cmp_u64);
	printf("{\"event\":\"end\",\"tool\":\"udp-pingpong\",\"data\":{\"role\":\"ping\",\"spin\":%s,\"rate\":%.0f,\"sent\":%ld,"
	       "\"answered\":%zu,\"lost\":%ld,\"rttUs\":{\"count\":%zu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f}}}\n",
	       spin ? "true" : "false", rate, count, got, lost, got, pct_us(rtt, got, 0.5), pct_us(rtt, got, 0.9),
	       pct_us(rtt, got, 0.99), got ? (double)rtt[got - 1] / 1000.0 : 0.0);
	free(rtt);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	int is_echo = strcmp(argv[1], "echo") == 0;
	if (!is_echo && strcmp(argv[1], "ping") != 0)
		return usage();
	struct sockaddr_in addr;
	if (parse_addr(argv[2], &addr) < 0) {
		fprintf(stderr, "udp_pingpong: expected IP:PORT, got %s\n", argv[2]);
		return 2;
	}
	double rate = 0;
	long count = 0;
	int spin = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--spin"))
			spin = 1;
		else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			rate = atof(argv[++i]);
		else if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = atol(argv[++i]);
		else
			return usage();
	}
	if (!is_echo && (rate <= 0 || count <= 0))
		return usage();
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("udp_pingpong: socket");
		return 1;
	}
	/* blocking receives wake up now and then to see a signal */
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (is_echo) {
		if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			perror("udp_pingpong: bind");
			return 1;
		}
		return echo(fd, spin);
	}
	return ping(fd, &addr, rate, count, spin);
}
