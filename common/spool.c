/* Message spool: memory, then an unlinked temporary file (wd-spool.h). */
#include "wd-spool.h"

#include "wd-buffer.h"
#include "wd-result.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct wd_spool {
	struct wd_buffer mem;
	size_t memory_limit;
	int fd;           /* -1 while in memory */
	uint64_t size;
	void *map;
	size_t map_len;
};

struct wd_spool *wd_spool_create(size_t memory_limit)
{
	struct wd_spool *spool = calloc(1, sizeof(*spool));
	if (spool == NULL)
		return NULL;
	spool->memory_limit = memory_limit;
	spool->fd = -1;
	return spool;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return WD_ERROR;
		data += n;
		len -= (size_t)n;
	}
	return WD_OK;
}

static int to_file(struct wd_spool *spool)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/wd-append-XXXXXX", dir != NULL && *dir != '\0' ? dir : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0)
		return WD_ERROR;
	unlink(path);
	if (write_all(fd, wd_buffer_bytes(&spool->mem), spool->mem.len) < 0) {
		close(fd);
		return WD_ERROR;
	}
	wd_buffer_release(&spool->mem);
	spool->fd = fd;
	return WD_OK;
}

int wd_spool_write(struct wd_spool *spool, const uint8_t *data, size_t len)
{
	if (len == 0)
		return WD_OK;
	if (spool->fd < 0 && spool->mem.len + len > spool->memory_limit && to_file(spool) < 0)
		return WD_ERROR;
	int ret = spool->fd >= 0 ? write_all(spool->fd, data, len) :
				   wd_buffer_append(&spool->mem, data, len);
	if (ret < 0)
		return WD_ERROR;
	spool->size += len;
	return WD_OK;
}

uint64_t wd_spool_size(const struct wd_spool *spool)
{
	return spool->size;
}

int wd_spool_map(struct wd_spool *spool, const uint8_t **data_r, size_t *len_r)
{
	if (spool->fd < 0) {
		*data_r = wd_buffer_bytes(&spool->mem);
		*len_r = spool->mem.len;
		return WD_OK;
	}
	if (spool->map == NULL && spool->size > 0) {
		void *map = mmap(NULL, spool->size, PROT_READ, MAP_PRIVATE, spool->fd, 0);
		if (map == MAP_FAILED)
			return WD_ERROR;
		spool->map = map;
		spool->map_len = spool->size;
	}
	*data_r = spool->map != NULL ? spool->map : (const uint8_t *)"";
	*len_r = spool->map_len;
	return WD_OK;
}

void wd_spool_destroy(struct wd_spool **_spool)
{
	struct wd_spool *spool = *_spool;
	*_spool = NULL;
	if (spool == NULL)
		return;
	if (spool->map != NULL)
		munmap(spool->map, spool->map_len);
	if (spool->fd >= 0)
		close(spool->fd);
	wd_buffer_release(&spool->mem);
	free(spool);
}
