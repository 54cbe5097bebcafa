#ifndef WD_MIME_TREE_PRIVATE_H
#define WD_MIME_TREE_PRIVATE_H

/* Internals shared by the mime-*.c files: the line reader and the header
 * value helpers.
 *
 * A line is [start, text_end) followed by its terminator [text_end, end):
 * a run of CRs followed by LF, else a single CR, else nothing (the last line
 * of the range). This is WildDuck's reader grammar (see wd-mime-tree.h), and
 * it splits a sub-range exactly as it splits the whole input as long as the
 * sub-range starts at a line start and ends at a terminator start, which all
 * our node ranges do.
 *
 * The reader is linear: the next CR and the next LF are found with memchr()
 * and cached until passed, and a run of CRs that is not followed by LF is
 * remembered, so a long run of lone CRs is not rescanned for every CR. The
 * range always yields at least one line: after the last terminator comes a
 * final (possibly empty) line without a terminator, as in WildDuck. */

#include "wd-mime-tree.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct wd_mime_line {
	uint32_t start;
	uint32_t text_end;
	uint32_t end;
};

struct wd_mime_line_reader {
	const uint8_t *data;
	uint32_t pos;
	uint32_t end;
	uint32_t next_lf;
	uint32_t next_cr;
	uint32_t lone_cr_end; /* CRs before this offset are known to be lone */
	bool done;
};

static inline void wd__mime_lines_init(struct wd_mime_line_reader *reader, const uint8_t *data,
				       uint32_t start, uint32_t end)
{
	reader->data = data;
	reader->pos = start;
	reader->end = end;
	/* UINT32_MAX (never a valid offset: messages are far smaller) = not
	   looked up yet. */
	reader->next_lf = UINT32_MAX;
	reader->next_cr = UINT32_MAX;
	reader->lone_cr_end = start;
	reader->done = false;
}

static inline uint32_t wd__mime_find(const uint8_t *data, uint32_t from, uint32_t end, uint8_t c)
{
	const uint8_t *p = memchr(data + from, c, end - from);
	return p == NULL ? end : (uint32_t)(p - data);
}

static inline bool wd__mime_lines_next(struct wd_mime_line_reader *reader,
				       struct wd_mime_line *line_r)
{
	if (reader->done)
		return false;
	uint32_t pos = reader->pos, end = reader->end;
	const uint8_t *data = reader->data;

	if (reader->next_lf < pos || reader->next_lf == UINT32_MAX)
		reader->next_lf = wd__mime_find(data, pos, end, '\n');
	if (reader->next_cr < pos || reader->next_cr == UINT32_MAX)
		reader->next_cr = wd__mime_find(data, pos, end, '\r');
	uint32_t brk = reader->next_lf < reader->next_cr ? reader->next_lf : reader->next_cr;

	line_r->start = pos;
	line_r->text_end = brk;
	if (brk >= end) {
		line_r->text_end = end;
		line_r->end = end;
		reader->done = true;
		return true;
	}
	if (data[brk] == '\n' || brk < reader->lone_cr_end) {
		line_r->end = brk + 1;
	} else {
		uint32_t q = brk;
		while (q < end && data[q] == '\r')
			q++;
		if (q < end && data[q] == '\n') {
			line_r->end = q + 1;
		} else {
			reader->lone_cr_end = q;
			line_r->end = brk + 1;
		}
	}
	reader->pos = line_r->end;
	return true;
}

struct wd_arena;

/* Bytes [start, end) with CR and LF removed and surrounding whitespace
   trimmed, as a NUL-terminated arena string (mime-header.c). */
char *wd__mime_unfold(struct wd_arena *arena, const uint8_t *data, uint32_t start, uint32_t end,
		      size_t *len_r);
char *wd__mime_unfold_lower(struct wd_arena *arena, const uint8_t *data, uint32_t start,
			    uint32_t end);
/* Parse an unfolded Content-Type (or, with `disposition`, Content-
   Disposition) value. WD_ERROR only when memory runs out. */
int wd__mime_parse_content(struct wd_arena *arena, const uint8_t *value, size_t len,
			   bool disposition, struct wd_mime_content *content);

/* Number of line terminators in [start, end) (mime-parse.c). */
uint32_t wd__mime_count_terminators(const uint8_t *data, uint32_t start, uint32_t end);

#endif
