#ifndef WD_POP3_PARSER_H
#define WD_POP3_PARSER_H

/* The POP3 command line parser (RFC 1939 §3, RFC 2449 §4), sans-I/O.
 *
 * POP3 input is a sequence of lines: commands ("KEYWORD[ args]") and, while
 * a SASL exchange runs (RFC 5034), raw client responses. The parser takes
 * the bytes the connection has buffered and returns one event per line, or
 * WD_AGAIN when no whole line is there yet. It never copies a line: the
 * event points into the data it was given, so the caller handles (or
 * copies) the event before it consumes those bytes. Bytes not consumed must
 * be presented again, in front of newer ones; the parser remembers how far
 * it already looked for the line end, so input arriving a byte at a time
 * costs linear time.
 *
 * Lines end with CRLF; a bare LF is accepted too (the CR before it is not
 * part of the line). Hard limit: a line, with its line end, may be at most
 * `max_line` bytes. RFC 2449 allows 255 for commands, which is too little
 * for an AUTH PLAIN initial response with long credentials, so the default
 * is 4096 (credentials are at most 2 KiB, 2.7 KiB in base64). A longer line
 * gives one ERROR event as soon as the limit is passed; the rest of that
 * line is then discarded silently up to its end, and parsing goes on with
 * the next line. Memory use does not depend on the input.
 *
 * A command keyword is 1..WD_POP3_KEYWORD_MAX letters or digits (RFC 1939
 * says 3 or 4 letters; the command table decides which exist); it is
 * returned upper-cased. Whatever follows the first space is the argument
 * text, untouched: PASS takes it whole (passwords may contain spaces),
 * other commands split it with wd_pop3_args_split(). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WD_POP3_LINE_MAX 4096
#define WD_POP3_KEYWORD_MAX 16

struct wd_pop3_parser;

enum wd_pop3_event_type {
	WD_POP3_EVENT_COMMAND, /* name and args */
	WD_POP3_EVENT_LINE,    /* a raw line (after wd_pop3_parser_read_line) */
	WD_POP3_EVENT_ERROR,   /* a line that is no command: answer -ERR `error` */
};

struct wd_pop3_event {
	enum wd_pop3_event_type type;
	/* COMMAND: the keyword, upper case (kept by the parser until the next
	   feed) */
	const char *name;
	/* COMMAND: the text after the keyword and its space; LINE: the whole
	   line. Without the line end; points into the data given to feed. */
	const uint8_t *args;
	size_t args_len;
	/* ERROR: static text for the -ERR response */
	const char *error;
};

struct wd_pop3_parser *wd_pop3_parser_create(size_t max_line);
void wd_pop3_parser_destroy(struct wd_pop3_parser **parser);

/* Parse from `data` (the unconsumed input). WD_OK: *ev is set and
   *consumed_r bytes belong to it (consume them after handling it).
   WD_AGAIN: no whole line; *consumed_r bytes (of a line being discarded)
   may be consumed, the rest must be given again with more input. */
int wd_pop3_parser_feed(struct wd_pop3_parser *parser, const uint8_t *data, size_t len,
			size_t *consumed_r, struct wd_pop3_event *ev);
/* The next line is returned as a LINE event (a SASL response), not parsed
   as a command. */
void wd_pop3_parser_read_line(struct wd_pop3_parser *parser);

/* One space-separated argument. */
struct wd_pop3_arg {
	const char *str;
	size_t len;
};

/* Split argument text at runs of spaces into at most `max` arguments.
   Returns how many there are; max + 1 when there are more. */
size_t wd_pop3_args_split(const uint8_t *args, size_t len, struct wd_pop3_arg *argv,
			  size_t max);
/* A message number or line count: decimal digits only; values past
   UINT32_MAX read as UINT32_MAX (fetchmail asks for "TOP n 99999999" and
   others for more; no maildrop has that many messages). */
bool wd_pop3_arg_number(const struct wd_pop3_arg *arg, uint32_t *value_r);

#endif
