#ifndef WD_BUFFER_H
#define WD_BUFFER_H

/* A growable byte buffer with O(1) consumption from the front.
 *
 * Bytes live in data[start .. start+len). Consuming advances `start`; appending
 * compacts first when that avoids a reallocation. `limit` (0 = none) caps
 * len: an append that would pass it fails with WD_ERROR and leaves the buffer
 * unchanged, so every network-facing buffer has a hard bound.
 * wd_buffer_release() frees the memory of an empty buffer so that idle
 * connections hold no buffer at all (STYLE.md, example 9). */

#include <stddef.h>
#include <stdint.h>

struct wd_buffer {
	uint8_t *data;
	size_t start;
	size_t len;
	size_t cap;
	size_t limit;
};

#define WD_BUFFER_INIT { NULL, 0, 0, 0, 0 }

static inline const uint8_t *wd_buffer_bytes(const struct wd_buffer *buf)
{
	return buf->data == NULL ? (const uint8_t *)"" : buf->data + buf->start;
}

/* Make room for at least `extra` more bytes; returns a pointer to the free
   tail (write there, then wd_buffer_commit()), or NULL past the limit. */
uint8_t *wd_buffer_reserve(struct wd_buffer *buf, size_t extra);
void wd_buffer_commit(struct wd_buffer *buf, size_t n);
/* Free capacity after the data that a reserve of 0 would return. */
size_t wd_buffer_tail_room(const struct wd_buffer *buf);

int wd_buffer_append(struct wd_buffer *buf, const void *data, size_t len);
int wd_buffer_append_str(struct wd_buffer *buf, const char *str);
int wd_buffer_printf(struct wd_buffer *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void wd_buffer_consume(struct wd_buffer *buf, size_t n);
void wd_buffer_clear(struct wd_buffer *buf);
/* Free the storage; the buffer is empty afterwards (limit kept). */
void wd_buffer_release(struct wd_buffer *buf);
/* Detach the bytes as a malloc'd block of *len_r bytes (NUL-terminated, not
   counted); the buffer becomes empty. Returns NULL for an empty buffer. */
uint8_t *wd_buffer_steal(struct wd_buffer *buf, size_t *len_r);

#endif
