/* Growable byte buffer; see wd-buffer.h for the model. Allocation failure is
 * treated like hitting the limit: the caller gets WD_ERROR and the buffer is
 * left as it was. */
#include "wd-buffer.h"
#include "wd-result.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t wd_buffer_tail_room(const struct wd_buffer *buf)
{
	return buf->cap - buf->start - buf->len;
}

uint8_t *wd_buffer_reserve(struct wd_buffer *buf, size_t extra)
{
	if (buf->limit != 0 && (extra > buf->limit || buf->len > buf->limit - extra))
		return NULL;
	if (wd_buffer_tail_room(buf) >= extra && buf->data != NULL)
		return buf->data + buf->start + buf->len;
	if (buf->start > 0 && buf->cap - buf->len >= extra) {
		memmove(buf->data, buf->data + buf->start, buf->len);
		buf->start = 0;
		return buf->data + buf->len;
	}
	if (extra > SIZE_MAX / 2 - buf->len)
		return NULL;
	size_t need = buf->len + extra + 1; /* +1 keeps room for a NUL in steal() */
	size_t cap = buf->cap < 64 ? 64 : buf->cap;
	while (cap < need)
		cap *= 2;
	uint8_t *data = malloc(cap);
	if (data == NULL)
		return NULL;
	if (buf->len > 0)
		memcpy(data, buf->data + buf->start, buf->len);
	free(buf->data);
	buf->data = data;
	buf->start = 0;
	buf->cap = cap;
	return data + buf->len;
}

void wd_buffer_commit(struct wd_buffer *buf, size_t n)
{
	buf->len += n;
}

int wd_buffer_append(struct wd_buffer *buf, const void *data, size_t len)
{
	if (len == 0)
		return WD_OK;
	uint8_t *dst = wd_buffer_reserve(buf, len);
	if (dst == NULL)
		return WD_ERROR;
	memcpy(dst, data, len);
	buf->len += len;
	return WD_OK;
}

int wd_buffer_append_str(struct wd_buffer *buf, const char *str)
{
	return wd_buffer_append(buf, str, strlen(str));
}

int wd_buffer_printf(struct wd_buffer *buf, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return WD_ERROR;
	if ((size_t)n < sizeof(small))
		return wd_buffer_append(buf, small, (size_t)n);
	uint8_t *dst = wd_buffer_reserve(buf, (size_t)n + 1);
	if (dst == NULL)
		return WD_ERROR;
	va_start(ap, fmt);
	vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t)n;
	return WD_OK;
}

void wd_buffer_consume(struct wd_buffer *buf, size_t n)
{
	if (n >= buf->len) {
		buf->start = 0;
		buf->len = 0;
		return;
	}
	buf->start += n;
	buf->len -= n;
}

void wd_buffer_clear(struct wd_buffer *buf)
{
	buf->start = 0;
	buf->len = 0;
}

void wd_buffer_release(struct wd_buffer *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->start = buf->len = buf->cap = 0;
}

uint8_t *wd_buffer_steal(struct wd_buffer *buf, size_t *len_r)
{
	*len_r = buf->len;
	if (buf->len == 0) {
		wd_buffer_release(buf);
		return NULL;
	}
	if (buf->start > 0) {
		memmove(buf->data, buf->data + buf->start, buf->len);
		buf->start = 0;
	}
	if (buf->cap == buf->len && wd_buffer_reserve(buf, 1) == NULL)
		return NULL;
	uint8_t *data = buf->data;
	data[buf->len] = '\0';
	buf->data = NULL;
	buf->start = buf->len = buf->cap = 0;
	return data;
}
