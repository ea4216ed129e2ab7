// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The shared-memory ring of ab-arbitrate's `--out shm:NAME` (include/kbx_ab_shm.h): the producer's side
 * (used by ab_out.c) and the batch reader for bindings (include/kbx_ab_out.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ab_shm.h"
#include "kbx_ab_out.h"
#include "kbx_error.h"

static int shm_path(const char *name, char *path, size_t size)
{
	if (!name[0] || strchr(name, '/') || strlen(name) > NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	snprintf(path, size, "/dev/shm/%s", name);
	return 0;
}

int ab_shm_create(struct ab_shm_ring *ring, const char *name, uint32_t slots, uint32_t slot_size, uint32_t format)
{
	char path[PATH_MAX];
	if (shm_path(name, path, sizeof(path)) < 0)
		return kbx_fail(-EINVAL, "create shm ring", "name %s: one path component, no '/'", name);
	if (!slots || (slots & (slots - 1)) || slot_size < sizeof(struct kbx_ab_shm_slot) + 8 || slot_size % 64 ||
	    (uint64_t)slots * slot_size > (1ULL << 34))
		return kbx_fail(-EINVAL, "create shm ring", "%u slots of %u bytes: slots a power of two, a slot a multiple "
				"of 64 from 64 bytes, at most 16 GiB", slots, slot_size);
	uint64_t size = KBX_AB_SHM_HEADER_SIZE + (uint64_t)slots * slot_size;
	unlink(path); /* a stale ring: its readers keep their mapping of it */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return kbx_fail(-errno, "create shm ring", "open %s", path);
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;
		close(fd);
		unlink(path);
		return kbx_fail(err, "create shm ring", "size %s to %llu bytes", path, (unsigned long long)size);
	}
	void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		int err = -errno;
		unlink(path);
		return kbx_fail(err, "create shm ring", "map %s", path);
	}
	ring->header = map;
	ring->size = size;
	snprintf(ring->path, sizeof(ring->path), "%s", path);
	*ring->header = (struct kbx_ab_shm_header){
		.magic = KBX_AB_SHM_MAGIC,
		.version = KBX_AB_SHM_VERSION,
		.header_size = KBX_AB_SHM_HEADER_SIZE,
		.slot_size = slot_size,
		.slot_count = slots,
		.format = format,
		.state = KBX_AB_SHM_RUNNING,
	};
	return 0;
}

bool ab_shm_write(struct ab_shm_ring *ring, const uint8_t *payload, uint32_t len, const void *key, uint64_t sequence,
		  uint32_t line, uint64_t arrival_ns)
{
	struct kbx_ab_shm_header *h = ring->header;
	if (len > h->slot_size - sizeof(struct kbx_ab_shm_slot))
		return false;
	uint64_t n = h->head; /* the only writer */
	struct kbx_ab_shm_slot *slot = (struct kbx_ab_shm_slot *)((uint8_t *)h + h->header_size +
								   (uint64_t)h->slot_size * (n & (h->slot_count - 1)));
	__atomic_store_n(&slot->stamp, 2 * n + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	slot->sequence = sequence;
	slot->arrival_ns = arrival_ns;
	memcpy(slot->key, key, sizeof(slot->key));
	slot->line = line;
	slot->len = len;
	memcpy((uint8_t *)slot + sizeof(*slot), payload, len);
	__atomic_store_n(&slot->stamp, 2 * n + 2, __ATOMIC_RELEASE);
	__atomic_store_n(&h->head, n + 1, __ATOMIC_RELEASE);
	return true;
}

void ab_shm_close(struct ab_shm_ring *ring)
{
	if (!ring->header)
		return;
	__atomic_store_n(&ring->header->state, KBX_AB_SHM_ENDED, __ATOMIC_RELEASE);
	munmap(ring->header, ring->size);
	unlink(ring->path);
	ring->header = NULL;
}

struct kbx_ab_shm_reader {
	void *map;
	uint64_t size;
	struct kbx_ab_shm_cursor cursor;
	struct kbx_ab_shm_slot *scratch;
};

int kbx_ab_shm_reader_open(const char *name, struct kbx_ab_shm_reader **out)
{
	char path[PATH_MAX];
	if (shm_path(name, path, sizeof(path)) < 0)
		return kbx_fail(-EINVAL, "open shm ring", "name %s: one path component, no '/'", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kbx_fail(-errno, "open shm ring", "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int err = -errno;
		close(fd);
		return kbx_fail(err, "open shm ring", "stat %s", path);
	}
	void *map = st.st_size > 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
	int err = map == MAP_FAILED ? (st.st_size > 0 ? -errno : -EINVAL) : 0;
	close(fd);
	if (err)
		return kbx_fail(err, "open shm ring", "map %s", path);
	if (kbx_ab_shm_check(map, (uint64_t)st.st_size) < 0) {
		munmap(map, (size_t)st.st_size);
		return kbx_fail(-EPROTO, "open shm ring", "%s is not a ring of kbx_ab_shm.h version %u", path, KBX_AB_SHM_VERSION);
	}
	struct kbx_ab_shm_reader *r = calloc(1, sizeof(*r));
	struct kbx_ab_shm_slot *scratch = r ? malloc(((const struct kbx_ab_shm_header *)map)->slot_size) : NULL;
	if (!scratch) {
		free(r);
		munmap(map, (size_t)st.st_size);
		return kbx_fail(-ENOMEM, "open shm ring", "allocate a reader");
	}
	r->map = map;
	r->size = (uint64_t)st.st_size;
	r->scratch = scratch;
	kbx_ab_shm_cursor_open(&r->cursor, map);
	*out = r;
	return 0;
}

int kbx_ab_shm_reader_read(struct kbx_ab_shm_reader *r, uint8_t *buf, uint32_t capacity, uint32_t max)
{
	uint32_t used = 0;
	int n = 0;
	uint32_t record_max = r->cursor.ring->slot_size + 8;
	while ((uint32_t)n < max && capacity - used >= record_max && kbx_ab_shm_next(&r->cursor, r->scratch)) {
		uint32_t record = (uint32_t)sizeof(*r->scratch) + ((r->scratch->len + 7) & ~7u);
		memcpy(buf + used, r->scratch, sizeof(*r->scratch) + r->scratch->len);
		used += record;
		n++;
	}
	return n;
}

void kbx_ab_shm_reader_status(const struct kbx_ab_shm_reader *r, struct kbx_ab_shm_reader_status *out)
{
	const struct kbx_ab_shm_header *h = r->cursor.ring;
	*out = (struct kbx_ab_shm_reader_status){
		.head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE),
		.next = r->cursor.next,
		.lost = r->cursor.lost,
		.state = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE),
		.slot_size = h->slot_size,
		.slot_count = h->slot_count,
		.format = h->format,
	};
}

void kbx_ab_shm_reader_close(struct kbx_ab_shm_reader *r)
{
	if (!r)
		return;
	munmap(r->map, r->size);
	free(r->scratch);
	free(r);
}
