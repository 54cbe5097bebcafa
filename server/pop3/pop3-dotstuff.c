/* Byte-stuffing of a message for RETR and TOP (pop3-dotstuff.h). Works on
 * whole runs up to the next line feed, so the cost per byte is a memchr and
 * a copy; the state between pieces is a few flags. */
#include "pop3-dotstuff.h"

#include "wd-buffer.h"
#include "wd-result.h"

#include <string.h>

void wd_pop3_dotstuff_init(struct wd_pop3_dotstuff *ds, bool top, uint32_t lines)
{
	memset(ds, 0, sizeof(*ds));
	ds->top = top;
	ds->lines_left = lines;
	ds->line_start = true;
	ds->ended_lf = true;
}

/* A line (with its LF) went out: count it for TOP. */
static void line_done(struct wd_pop3_dotstuff *ds)
{
	ds->line_start = true;
	if (!ds->top)
		return;
	if (!ds->in_body) {
		if (ds->line_content)
			return;
		ds->in_body = true; /* the empty line that ends the header */
		if (ds->lines_left == 0)
			ds->done = true;
		return;
	}
	if (--ds->lines_left == 0)
		ds->done = true;
}

int wd_pop3_dotstuff_feed(struct wd_pop3_dotstuff *ds, const uint8_t *data, size_t len,
			  struct wd_buffer *out)
{
	size_t i = 0;
	while (i < len && !ds->done) {
		if (ds->line_start) {
			ds->line_start = false;
			ds->line_content = false;
			if (data[i] == '.' && wd_buffer_append(out, ".", 1) < 0)
				return WD_ERROR;
		}
		const uint8_t *lf = memchr(data + i, '\n', len - i);
		size_t end = lf != NULL ? (size_t)(lf - data) + 1 : len;
		size_t text_end = lf != NULL ? end - 1 : end;
		for (size_t k = i; !ds->line_content && k < text_end; k++)
			ds->line_content = data[k] != '\r';
		if (wd_buffer_append(out, data + i, end - i) < 0)
			return WD_ERROR;
		ds->ended_lf = lf != NULL;
		if (lf != NULL)
			line_done(ds);
		i = end;
	}
	return WD_OK;
}

int wd_pop3_dotstuff_finish(struct wd_pop3_dotstuff *ds, struct wd_buffer *out)
{
	if (!ds->ended_lf && wd_buffer_append(out, "\r\n", 2) < 0)
		return WD_ERROR;
	ds->ended_lf = true;
	return wd_buffer_append(out, ".\r\n", 3);
}
