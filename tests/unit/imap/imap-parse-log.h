#ifndef IMAP_PARSE_LOG_H
#define IMAP_PARSE_LOG_H

/* Test driver for the IMAP parser, shared by the unit tests and the fuzz
 * target: feeds a transcript in chunks chosen by a split function and
 * writes every event as one text line, so that two runs with different
 * chunking can be compared with strcmp. Policy: literals larger than
 * stream_min bytes are streamed (their bytes are logged once complete). */

#include "imap-parser.h"
#include "wd-buffer.h"

#include <stddef.h>
#include <stdint.h>

/* Returns the size of the next chunk (≥ 1) given how much is left. */
typedef size_t imap_split_fn(void *context, size_t left);

struct imap_parse_log_options {
	const struct wd_imap_parser_limits *limits; /* NULL = defaults */
	uint64_t stream_min;
	/* Call read_line() after a command with this name (e.g. "IDLE"). */
	const char *line_after;
};

/* Ready-made splits: everything at once; one byte at a time; random sizes
   from 1 to `max` drawn from the xorshift state at *context (non-zero). */
size_t imap_split_whole(void *context, size_t left);
size_t imap_split_one(void *context, size_t left);
struct imap_split_random {
	uint32_t state;
	size_t max;
};
size_t imap_split_random(void *context, size_t left);

/* Appends the event log to `out`. Aborts on a broken parser contract
   (no progress, events out of order). */
void imap_parse_log(const uint8_t *input, size_t len, imap_split_fn *split, void *context,
		    const struct imap_parse_log_options *options, struct wd_buffer *out);

/* Serialises an argument list: atoms as is, "q:" strings, "L8:"/"L:"
   literals, NIL, (lists). */
void imap_parse_log_args(struct wd_buffer *out, const struct wd_imap_arg *args, size_t count);

/* Parses one whole command line (literals allowed, LITERAL+ on, nothing
   streamed); NULL when the parser reports an error. */
struct wd_imap_command *imap_parse_command(const char *line);

#endif
