/* A Dovecot istream over libwdstore's message reader: the exact bytes of a
 * stored message, pulled a chunk at a time (a literal piece, or at most one
 * GridFS chunk of an attachment), so memory stays bounded by a chunk plus
 * Dovecot's own read buffer.
 *
 * The stream is seekable and knows its size (messages.size, which equals
 * what the reader returns: DESIGN.md §3), so Dovecot can split header and
 * body, serve partial FETCHes and answer RFC822.SIZE without reading.
 * Seeking only moves the position; the next read asks the reader to start
 * there (wd_message_reader_select with an offset), which for a stored
 * message is a lookup in its piece list, not a re-read from the start. */
#include "wildduck-storage.h"

#include "istream-private.h"

#include "wd-buffer.h"
#include "wd-store-message.h"

#include <errno.h>
#include <stdlib.h>

struct wildduck_istream {
	struct istream_private istream;

	struct wd_message_reader *reader;
	uint64_t size;
	/* bytes the reader returned that were not yet handed out, starting
	   at message offset `reader_offset` */
	struct wd_buffer pending;
	uint64_t reader_offset;
	bool reader_eof;
};

static void i_stream_wildduck_close(struct iostream_private *stream,
				    bool close_parent ATTR_UNUSED)
{
	struct wildduck_istream *wstream =
		container_of(stream, struct wildduck_istream, istream.iostream);

	wd_message_reader_close(&wstream->reader);
	wd_buffer_release(&wstream->pending);
}

static void i_stream_wildduck_destroy(struct iostream_private *stream)
{
	struct wildduck_istream *wstream =
		container_of(stream, struct wildduck_istream, istream.iostream);

	wd_message_reader_close(&wstream->reader);
	wd_buffer_release(&wstream->pending);
	i_stream_free_buffer(&wstream->istream);
}

static ssize_t i_stream_wildduck_fail(struct istream_private *stream, char *error)
{
	io_stream_set_error(&stream->iostream, "wildduck: %s",
			    error != NULL ? error : "reading the message failed");
	free(error);
	stream->istream.stream_errno = EIO;
	return -1;
}

static ssize_t i_stream_wildduck_read(struct istream_private *stream)
{
	struct wildduck_istream *wstream = container_of(stream, struct wildduck_istream, istream);
	uint64_t offset = stream->istream.v_offset + (stream->pos - stream->skip);
	char *error = NULL;
	size_t size;

	if (wstream->reader == NULL) {
		stream->istream.stream_errno = EBADF;
		return -1;
	}
	if (offset >= wstream->size) {
		stream->istream.eof = TRUE;
		return -1;
	}
	if (!i_stream_try_alloc(stream, 1, &size))
		return -2;

	if (offset != wstream->reader_offset) {
		/* a seek: restart the reader at the new offset */
		wd_buffer_clear(&wstream->pending);
		if (wd_message_reader_select(wstream->reader, NULL, offset, UINT64_MAX,
					     &error) < 0)
			return i_stream_wildduck_fail(stream, error);
		wstream->reader_offset = offset;
		wstream->reader_eof = FALSE;
	}
	while (wstream->pending.len == 0) {
		if (wstream->reader_eof) {
			/* the reader ended before `size`: the document
			   lies about its size, never pad silently */
			return i_stream_wildduck_fail(stream,
				strdup("message shorter than its stored size"));
		}
		if (wd_message_reader_read(wstream->reader, &wstream->pending,
					   &wstream->reader_eof, &error) < 0)
			return i_stream_wildduck_fail(stream, error);
	}

	size_t n = wstream->pending.len < size ? wstream->pending.len : size;
	if (n > wstream->size - offset)
		n = (size_t)(wstream->size - offset);
	memcpy(stream->w_buffer + stream->pos, wd_buffer_bytes(&wstream->pending), n);
	wd_buffer_consume(&wstream->pending, n);
	wstream->reader_offset += n;
	stream->pos += n;
	return (ssize_t)n;
}

static void i_stream_wildduck_seek(struct istream_private *stream, uoff_t v_offset,
				   bool mark ATTR_UNUSED)
{
	stream->istream.v_offset = v_offset;
	stream->skip = stream->pos = 0;
	stream->istream.eof = FALSE;
}

static int i_stream_wildduck_stat(struct istream_private *stream, bool exact ATTR_UNUSED)
{
	struct wildduck_istream *wstream = container_of(stream, struct wildduck_istream, istream);

	stream->statbuf.st_size = (off_t)wstream->size;
	return 0;
}

static int i_stream_wildduck_get_size(struct istream_private *stream, bool exact ATTR_UNUSED,
				      uoff_t *size_r)
{
	struct wildduck_istream *wstream = container_of(stream, struct wildduck_istream, istream);

	*size_r = wstream->size;
	return 1;
}

struct istream *i_stream_create_wildduck(struct wd_message_reader *reader, const char *name)
{
	struct wildduck_istream *wstream = i_new(struct wildduck_istream, 1);
	struct istream *input;

	wstream->reader = reader;
	wstream->size = wd_message_reader_message_size(reader);
	wstream->istream.iostream.close = i_stream_wildduck_close;
	wstream->istream.iostream.destroy = i_stream_wildduck_destroy;
	wstream->istream.max_buffer_size = IO_BLOCK_SIZE * 16;
	wstream->istream.read = i_stream_wildduck_read;
	wstream->istream.seek = i_stream_wildduck_seek;
	wstream->istream.stat = i_stream_wildduck_stat;
	wstream->istream.get_size = i_stream_wildduck_get_size;
	wstream->istream.istream.readable_fd = FALSE;
	wstream->istream.istream.blocking = TRUE;
	wstream->istream.istream.seekable = TRUE;
	wstream->istream.cached_stream_size = wstream->size;

	input = i_stream_create(&wstream->istream, NULL, -1, 0);
	i_stream_set_name(input, name);
	return input;
}
