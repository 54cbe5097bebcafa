/* DEFLATE transport layer for IMAP COMPRESS (RFC 4978): raw deflate (no zlib
 * header) in both directions.
 *
 * Our compressor's window and memory level are configurable because they
 * decide the memory of every compressed session (261 KiB at zlib's 15/8,
 * 37 KiB at 12/5). The decompressor must accept the client's window (15).
 * Output is compressed with Z_NO_FLUSH inside a batch and ends with
 * Z_SYNC_FLUSH, so the client can decode each batch as soon as it arrives.
 *
 * Compression bombs: inflation stops as soon as `up` reaches its limit; the
 * rest of the compressed input stays here (and the connection stops reading)
 * until the engine consumes, so a tiny input never becomes unbounded memory. */
#include "wd-conn-private.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHUNK 16384

struct deflate_layer {
	struct wd_conn_layer layer;
	z_stream inflater;
	z_stream deflater;
	struct wd_buffer in_pending; /* compressed input not inflated yet */
	bool input_ended;
};

static int deflate_decode(struct wd_conn_layer *layer, const uint8_t *in, size_t in_len,
			  struct wd_buffer *up, size_t up_limit, struct wd_buffer *down,
			  bool *pending_r, bool *eof_r, const char **error_r)
{
	struct deflate_layer *d = (struct deflate_layer *)layer;
	(void)down;
	*pending_r = false;
	*eof_r = false;
	if (in_len > 0) {
		if (d->input_ended) {
			*error_r = "data after the end of the compressed stream";
			return WD_ERROR;
		}
		if (wd_buffer_append(&d->in_pending, in, in_len) < 0) {
			*error_r = "out of memory";
			return WD_ERROR;
		}
	}
	/* zlib may hold decoded output even with no input left, so keep calling
	   inflate while there is room, until it makes no progress. */
	while (up->len < up_limit && !d->input_ended) {
		size_t room = up_limit - up->len;
		if (room > CHUNK)
			room = CHUNK;
		uint8_t *dst = wd_buffer_reserve(up, room);
		if (dst == NULL) {
			*error_r = "out of memory";
			return WD_ERROR;
		}
		d->inflater.next_in = (Bytef *)wd_buffer_bytes(&d->in_pending);
		d->inflater.avail_in = (uInt)d->in_pending.len;
		d->inflater.next_out = dst;
		d->inflater.avail_out = (uInt)room;
		int zr = inflate(&d->inflater, Z_SYNC_FLUSH);
		size_t used = d->in_pending.len - d->inflater.avail_in;
		size_t produced = room - d->inflater.avail_out;
		wd_buffer_consume(&d->in_pending, used);
		wd_buffer_commit(up, produced);
		if (zr == Z_STREAM_END) {
			d->input_ended = true;
			*eof_r = true;
			break;
		}
		if (zr == Z_BUF_ERROR || (zr == Z_OK && used == 0 && produced == 0))
			break; /* needs more input */
		if (zr != Z_OK) {
			*error_r = d->inflater.msg != NULL ? d->inflater.msg : "invalid compressed data";
			return WD_ERROR;
		}
	}
	if (up->len >= up_limit)
		*pending_r = true;
	if (d->in_pending.len == 0)
		wd_buffer_release(&d->in_pending);
	return WD_OK;
}

static int deflate_encode(struct wd_conn_layer *layer, const uint8_t *in, size_t in_len,
			  bool flush, struct wd_buffer *down, const char **error_r)
{
	struct deflate_layer *d = (struct deflate_layer *)layer;
	d->deflater.next_in = (Bytef *)in;
	d->deflater.avail_in = (uInt)in_len;
	int mode = flush ? Z_SYNC_FLUSH : Z_NO_FLUSH;
	do {
		uint8_t *dst = wd_buffer_reserve(down, CHUNK);
		if (dst == NULL) {
			*error_r = "out of memory";
			return WD_ERROR;
		}
		d->deflater.next_out = dst;
		d->deflater.avail_out = CHUNK;
		int zr = deflate(&d->deflater, mode);
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			*error_r = "compression failed";
			return WD_ERROR;
		}
		wd_buffer_commit(down, CHUNK - d->deflater.avail_out);
	} while (d->deflater.avail_in > 0 || d->deflater.avail_out == 0);
	return WD_OK;
}

static size_t deflate_buffer_memory(const struct wd_conn_layer *layer)
{
	const struct deflate_layer *d = (const struct deflate_layer *)layer;
	return d->in_pending.cap;
}

static void deflate_destroy(struct wd_conn_layer *layer)
{
	struct deflate_layer *d = (struct deflate_layer *)layer;
	inflateEnd(&d->inflater);
	deflateEnd(&d->deflater);
	wd_buffer_release(&d->in_pending);
	free(d);
}

static const struct wd_conn_layer_vfuncs deflate_vfuncs = {
	.name = "DEFLATE",
	.decode = deflate_decode,
	.encode = deflate_encode,
	.buffer_memory = deflate_buffer_memory,
	.destroy = deflate_destroy,
};

struct wd_conn_layer *wd__conn_deflate_layer_create(int window_bits, int mem_level,
						     const char **error_r)
{
	if (window_bits < 9 || window_bits > 15) {
		*error_r = "compression windowBits must be between 9 and 15";
		return NULL;
	}
	if (mem_level < 1 || mem_level > 9) {
		*error_r = "compression memLevel must be between 1 and 9";
		return NULL;
	}
	struct deflate_layer *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	d->layer.v = &deflate_vfuncs;
	if (inflateInit2(&d->inflater, -15) != Z_OK) {
		free(d);
		*error_r = "cannot initialise the decompressor";
		return NULL;
	}
	if (deflateInit2(&d->deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits, mem_level,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(&d->inflater);
		free(d);
		*error_r = "cannot initialise the compressor";
		return NULL;
	}
	return &d->layer;
}
