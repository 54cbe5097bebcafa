#ifndef WD_POP3_DOTSTUFF_H
#define WD_POP3_DOTSTUFF_H

/* A message as a POP3 multi-line response (RFC 1939 §3), sans-I/O: the
 * stored bytes go in piece by piece, in any split; what comes out is the
 * same bytes with a '.' added in front of every line that starts with '.'
 * ("byte-stuffing"), then the terminator.
 *
 * Line ends are kept exactly as stored (CRLF, or a bare LF where a message
 * has one); a line starts after every LF. The response must end with
 * CRLF "." CRLF, so when the message does not end with a line feed, CRLF is
 * added before the terminator; nothing else is ever added or changed, so a
 * client that undoes the stuffing gets the stored bytes back (the same
 * number of bytes as the LIST size) plus, only for such a message, that
 * CRLF.
 *
 * TOP (RFC 1939 §7): with `top` set, the header (up to and including the
 * empty line that ends it) and then `lines` lines of the body go out and the
 * rest is dropped: feed reports `done` so the caller can stop reading. A
 * message without an empty line is all header. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_buffer;

struct wd_pop3_dotstuff {
	bool top;           /* TOP: stop after the header and `lines_left` body lines */
	uint32_t lines_left;
	bool in_body;       /* the empty line after the header was passed */
	bool line_start;    /* the next byte starts a line */
	bool line_content;  /* the current line has a byte other than CR */
	bool done;          /* TOP: everything wanted went out */
	bool ended_lf;      /* the last byte that went out was LF (or nothing went out) */
};

void wd_pop3_dotstuff_init(struct wd_pop3_dotstuff *ds, bool top, uint32_t lines);
/* Append the stuffed form of `data` to `out` (WD_ERROR only when `out` is
   at its limit). After `done` the input is ignored. */
int wd_pop3_dotstuff_feed(struct wd_pop3_dotstuff *ds, const uint8_t *data, size_t len,
			  struct wd_buffer *out);
/* Append the end of the response: CRLF if needed, then ".\r\n". */
int wd_pop3_dotstuff_finish(struct wd_pop3_dotstuff *ds, struct wd_buffer *out);

#endif
