// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A consumer of `ab-arbitrate --out shm:NAME` in C, with nothing but native/include/kbx_ab_shm.h:
 *   ab-shm-consumer NAME [--quiet]
 * Prints one JSON line per message ({"stream":…,"sequence":…,"line":"A"|"B","arrivalNs":…,"len":…}), or with
 * --quiet none, and at the end (the producer stopped and every message was read):
 *   {"event":"end","tool":"ab-shm-consumer","data":{"received":N,"lost":L}}
 * Built by native/Makefile as native/build/ab-shm-consumer.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kbx_ab_shm.h"

/* The stream's name as ab-arbitrate prints it: optiq session id in decimal, MoldUDP64 session text. */
static void stream_name(const struct kbx_ab_shm_slot *m, uint32_t format, char *out, size_t size)
{
	uint64_t id;
	memcpy(&id, m->key, 8);
	if (format == 0) {
		snprintf(out, size, "%" PRIu64, id);
		return;
	}
	char session[11] = { 0 };
	memcpy(session, m->key, 10);
	for (int i = 9; i >= 0 && (session[i] == ' ' || session[i] == 0); i--)
		session[i] = 0;
	snprintf(out, size, "%s", session);
}

int main(int argc, char **argv)
{
	if (argc < 2 || (argc == 3 && strcmp(argv[2], "--quiet")) || argc > 3) {
		fprintf(stderr, "usage: %s NAME [--quiet]\n", argv[0]);
		return 2;
	}
	int quiet = argc == 3;
	char path[512];
	snprintf(path, sizeof(path), "/dev/shm/%s", argv[1]);
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		return 1;
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED || kbx_ab_shm_check(map, (uint64_t)st.st_size) < 0) {
		fprintf(stderr, "%s: not a kbx ab ring\n", path);
		return 1;
	}
	const struct kbx_ab_shm_header *ring = map;
	struct kbx_ab_shm_cursor cursor;
	kbx_ab_shm_cursor_open(&cursor, map);
	struct kbx_ab_shm_slot *m = malloc(ring->slot_size);
	uint64_t received = 0;
	char name[32];
	for (;;) {
		if (kbx_ab_shm_next(&cursor, m)) {
			received++;
			if (!quiet) {
				stream_name(m, ring->format, name, sizeof(name));
				printf("{\"stream\":\"%s\",\"sequence\":%" PRIu64 ",\"line\":\"%c\",\"arrivalNs\":%" PRIu64 ",\"len\":%u}\n",
				       name, m->sequence, m->line ? 'B' : 'A', m->arrival_ns, m->len);
			}
			continue;
		}
		/* Nothing new: done once the producer has ended (and nothing arrived after that was seen). */
		if (__atomic_load_n(&ring->state, __ATOMIC_ACQUIRE) == KBX_AB_SHM_ENDED &&
		    cursor.next >= __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE))
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 50000 }, NULL);
	}
	printf("{\"event\":\"end\",\"tool\":\"ab-shm-consumer\",\"data\":{\"received\":%" PRIu64 ",\"lost\":%" PRIu64 "}}\n",
	       received, cursor.lost);
	free(m);
	munmap(map, (size_t)st.st_size);
	return 0;
}
