/* Arena allocator: a singly linked list of chunks; allocation bumps a cursor in
 * the newest chunk. Oversized requests get a dedicated chunk inserted behind
 * the current one so the current chunk's free space is not wasted. */
#include "wd-arena.h"
#include "wd-result.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WD_ARENA_ALIGN 16

struct wd_arena_chunk {
	struct wd_arena_chunk *next;
	size_t size;
	size_t used;
	_Alignas(WD_ARENA_ALIGN) unsigned char data[];
};

struct wd_arena_cleanup {
	struct wd_arena_cleanup *next;
	wd_arena_cleanup_fn *fn;
	void *context;
};

struct wd_arena {
	struct wd_arena_chunk *chunks;
	struct wd_arena_cleanup *cleanups;
	size_t block_size;
	size_t used;
};

static struct wd_arena_chunk *chunk_new(size_t size)
{
	struct wd_arena_chunk *chunk = malloc(sizeof(*chunk) + size);
	if (chunk == NULL)
		return NULL;
	chunk->next = NULL;
	chunk->size = size;
	chunk->used = 0;
	return chunk;
}

struct wd_arena *wd_arena_create(size_t block_size)
{
	struct wd_arena *arena = calloc(1, sizeof(*arena));
	if (arena == NULL)
		return NULL;
	arena->block_size = block_size == 0 ? 4096 - sizeof(struct wd_arena_chunk) : block_size;
	return arena;
}

void wd_arena_destroy(struct wd_arena **_arena)
{
	struct wd_arena *arena = *_arena;
	if (arena == NULL)
		return;
	*_arena = NULL;
	for (struct wd_arena_cleanup *c = arena->cleanups; c != NULL; c = c->next)
		c->fn(c->context);
	struct wd_arena_chunk *chunk = arena->chunks;
	while (chunk != NULL) {
		struct wd_arena_chunk *next = chunk->next;
		free(chunk);
		chunk = next;
	}
	free(arena);
}

void *wd_arena_alloc(struct wd_arena *arena, size_t size)
{
	if (size == 0)
		size = 1;
	if (size > SIZE_MAX - WD_ARENA_ALIGN)
		return NULL;
	size = (size + WD_ARENA_ALIGN - 1) & ~(size_t)(WD_ARENA_ALIGN - 1);
	struct wd_arena_chunk *chunk = arena->chunks;
	if (chunk == NULL || chunk->size - chunk->used < size) {
		if (size > arena->block_size / 4 && chunk != NULL) {
			/* Big allocation: own chunk, keep the current one active. */
			struct wd_arena_chunk *big = chunk_new(size);
			if (big == NULL)
				return NULL;
			big->used = size;
			big->next = chunk->next;
			chunk->next = big;
			arena->used += size;
			return big->data;
		}
		chunk = chunk_new(size > arena->block_size ? size : arena->block_size);
		if (chunk == NULL)
			return NULL;
		chunk->next = arena->chunks;
		arena->chunks = chunk;
	}
	void *mem = chunk->data + chunk->used;
	chunk->used += size;
	arena->used += size;
	return mem;
}

void *wd_arena_zalloc(struct wd_arena *arena, size_t size)
{
	void *mem = wd_arena_alloc(arena, size);
	if (mem != NULL)
		memset(mem, 0, size);
	return mem;
}

char *wd_arena_strndup(struct wd_arena *arena, const char *str, size_t len)
{
	char *copy = wd_arena_alloc(arena, len + 1);
	if (copy == NULL)
		return NULL;
	memcpy(copy, str, len);
	copy[len] = '\0';
	return copy;
}

char *wd_arena_strdup(struct wd_arena *arena, const char *str)
{
	return wd_arena_strndup(arena, str, strlen(str));
}

char *wd_arena_vprintf(struct wd_arena *arena, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return NULL;
	char *str = wd_arena_alloc(arena, (size_t)n + 1);
	if (str != NULL)
		vsnprintf(str, (size_t)n + 1, fmt, ap);
	return str;
}

char *wd_arena_printf(struct wd_arena *arena, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *str = wd_arena_vprintf(arena, fmt, ap);
	va_end(ap);
	return str;
}

int wd_arena_add_cleanup(struct wd_arena *arena, wd_arena_cleanup_fn *fn, void *context)
{
	struct wd_arena_cleanup *c = wd_arena_alloc(arena, sizeof(*c));
	if (c == NULL)
		return WD_ERROR;
	c->fn = fn;
	c->context = context;
	c->next = arena->cleanups;
	arena->cleanups = c;
	return WD_OK;
}

size_t wd_arena_used(const struct wd_arena *arena)
{
	return arena->used;
}
