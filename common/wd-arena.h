#ifndef WD_ARENA_H
#define WD_ARENA_H

/* Arena allocator for one unit of work (a connection, a command, an HTTP
 * request): many small allocations, freed together by wd_arena_destroy().
 * Cleanup hooks registered with wd_arena_add_cleanup() run in reverse order
 * at destroy, for resources that are not arena memory (files, handles).
 * Not thread-safe: an arena belongs to one thread at a time. */

#include <stdarg.h>
#include <stddef.h>

struct wd_arena;

typedef void wd_arena_cleanup_fn(void *context);

/* block_size is the size of each chunk requested from malloc (0 = 4 KiB);
   larger allocations get their own chunk. */
struct wd_arena *wd_arena_create(size_t block_size);
void wd_arena_destroy(struct wd_arena **arena);

/* Memory aligned for any type; NULL only when malloc fails. */
void *wd_arena_alloc(struct wd_arena *arena, size_t size);
void *wd_arena_zalloc(struct wd_arena *arena, size_t size);
char *wd_arena_strdup(struct wd_arena *arena, const char *str);
char *wd_arena_strndup(struct wd_arena *arena, const char *str, size_t len);
char *wd_arena_printf(struct wd_arena *arena, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *wd_arena_vprintf(struct wd_arena *arena, const char *fmt, va_list ap);

int wd_arena_add_cleanup(struct wd_arena *arena, wd_arena_cleanup_fn *fn, void *context);

/* Bytes handed out so far (for accounting and tests). */
size_t wd_arena_used(const struct wd_arena *arena);

#endif
