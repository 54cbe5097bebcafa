#ifndef WD_LMTP_PARSER_H
#define WD_LMTP_PARSER_H

/* Sans-I/O framing of the LMTP input stream (RFC 2033, RFC 5321 §4.1.1.4,
 * §4.5.2): command lines, and the message after DATA's 354.
 *
 * The connection feeds bytes as they arrive; the parser returns one event
 * at a time and says how many bytes it consumed. Bytes it did not consume
 * (half a command line) must be presented again, followed by new ones; it
 * remembers how far it already looked, so a line fed one byte at a time
 * costs linear time. It never copies: events point into the fed bytes (or
 * at static text) and are valid until those bytes are consumed.
 *
 * Command mode. A line ends at LF; a CR before it is dropped, so bare LF is
 * accepted as the end of a command line (as Postfix and Dovecot do). A line
 * longer than max_command_line (RFC 5321 §4.5.3.1.4: 512 octets with its
 * CRLF) produces one ERROR event as soon as the limit is passed; the parser
 * then drops bytes up to the next LF by itself and reads the next command.
 * What a line says is for lmtp-command.h.
 *
 * Data mode (wd_lmtp_parser_begin_data(), after the 354 reply). The parser
 * removes dot-stuffing and finds the end of the message:
 *   - the message ends only at CRLF "." CRLF, where the first CRLF ends the
 *     last line of the message (or the DATA command). A "." line after a
 *     bare LF, or one ended by a bare LF, is not an end: a client and a
 *     server that disagree on where a message ends is how SMTP smuggling
 *     works, so only the strict sequence counts;
 *   - a line starting with "." loses that dot when more follows on the line
 *     (RFC 5321 §4.5.2); a lone "." that is not the end is kept as ".";
 *   - a bare LF (without CR before it) is stored as CRLF: mail in the store
 *     has CRLF line ends, which is what IMAP and POP3 clients expect
 *     (Postfix 3.9's "normalize" does the same). A bare CR is kept as sent.
 *     CRLF input therefore passes through byte for byte;
 *   - DATA events carry the unstuffed bytes, in runs of the input;
 *   - limits: past max_message bytes, or once a line is longer than
 *     max_data_line, or when a NUL byte arrives (not allowed without
 *     BINARYMIME, RFC 3030), the parser stops producing DATA events but
 *     keeps reading to the end of the message, so the client gets its
 *     answer (552 / 554 per recipient) instead of a broken connection.
 *     Past max_message + max_discard bytes it stops reading: DATA_END comes
 *     with `aborted` set, the end was not seen and the connection has to
 *     be closed after the replies.
 * After DATA_END the parser is back in command mode. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_lmtp_parser_limits {
	size_t max_command_line; /* bytes of a command line with its line end (512) */
	size_t max_data_line;    /* bytes of one message line without its end (1 MiB) */
	uint64_t max_message;    /* message bytes after unstuffing (25 MiB) */
	uint64_t max_discard;    /* read and dropped past max_message (4 x max_message) */
};

void wd_lmtp_parser_limits_default(struct wd_lmtp_parser_limits *limits_r);

enum wd_lmtp_event_type {
	WD_LMTP_EVENT_COMMAND,  /* one command line: data/len without its line end */
	WD_LMTP_EVENT_DATA,     /* message bytes: data/len */
	WD_LMTP_EVENT_DATA_END, /* the message is over: status, size, aborted */
	WD_LMTP_EVENT_ERROR,    /* a command line was too long (then skipped) */
};

/* Why a message was refused while it was read (DATA_END). */
enum wd_lmtp_data_status {
	WD_LMTP_DATA_OK,
	WD_LMTP_DATA_TOO_BIG,       /* more than max_message bytes: 552 5.3.4 */
	WD_LMTP_DATA_LINE_TOO_LONG, /* a line longer than max_data_line: 554 5.6.0 */
	WD_LMTP_DATA_NUL,           /* a NUL byte: 554 5.6.0 */
};

struct wd_lmtp_event {
	enum wd_lmtp_event_type type;
	/* COMMAND, DATA */
	const uint8_t *data;
	size_t len;
	/* DATA_END */
	enum wd_lmtp_data_status status; /* the first limit the message broke */
	uint64_t size;                   /* message bytes read (counting dropped ones) */
	bool aborted;                    /* max_discard passed: end not seen, close */
	/* ERROR */
	const char *message;
};

struct wd_lmtp_parser;

struct wd_lmtp_parser *wd_lmtp_parser_create(const struct wd_lmtp_parser_limits *limits);
void wd_lmtp_parser_destroy(struct wd_lmtp_parser **parser);

/* Feed data[0..len). Returns WD_OK with *ev_r filled, or WD_AGAIN when the
   bytes are used up (or only part of a command line is left). *consumed_r
   bytes were used; data[*consumed_r..len) must be presented again. */
int wd_lmtp_parser_feed(struct wd_lmtp_parser *parser, const uint8_t *data, size_t len,
			size_t *consumed_r, struct wd_lmtp_event *ev_r);

/* Between commands: what follows is a message (DATA was answered 354).
   WD_ERROR when the parser is not between commands. */
int wd_lmtp_parser_begin_data(struct wd_lmtp_parser *parser);
bool wd_lmtp_parser_in_data(const struct wd_lmtp_parser *parser);
/* Whether nothing is half-read (between command lines, not in a message). */
bool wd_lmtp_parser_is_idle(const struct wd_lmtp_parser *parser);

#endif
