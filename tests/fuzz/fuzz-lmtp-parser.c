/* Fuzz target for the LMTP engine's sans-I/O pieces (server/lmtp):
 * wd_lmtp_parser_feed() (command framing, the dot-stuffed message after
 * DATA) and the command grammar (wd_lmtp_command_split, MAIL and RCPT).
 *
 * The input is a client's byte stream. A DATA command line switches the
 * parser to data mode, as the session does after its 354. Contracts
 * checked, aborting on any breach:
 *   - chunking invariance: fed whole, one byte at a time and in chunks of
 *     pseudo-random sizes (unconsumed bytes presented again, as the
 *     connection does), the event log is the same: command lines and what
 *     the grammar makes of them, errors, the message bytes (adjacent DATA
 *     events joined: runs may be cut anywhere) and DATA_END's status and
 *     size;
 *   - a command line holds no LF and fits the line limit; consumed never
 *     exceeds what was given, and bytes held between calls stay below the
 *     limit (plus one chunk);
 *   - the end of a message is seen only after CRLF "." CRLF (the first
 *     CRLF may be the DATA command's): anything else would let a client
 *     smuggle a second message past an MTA that reads the stream
 *     differently;
 *   - an accepted message (status OK) has CRLF line ends only, its size
 *     is its length, and dot-stuffing it again then parsing it gives the
 *     same bytes;
 *   - MAIL/RCPT: the address is NUL-terminated, at most WD_LMTP_PATH_MAX
 *     bytes, ASCII unless SMTPUTF8 was given, and valid UTF-8 with it;
 *     a refusal has a 5xx code and its texts.
 * The first input byte picks the limits (tiny ones reach the too-long,
 * too-big and discard paths on short inputs). */
#include "fuzz-check.h"
#include "lmtp-command.h"
#include "lmtp-parser.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	const struct wd_lmtp_parser_limits *limits;
	const uint8_t *input; /* the whole stream, to check where messages end */
	struct wd_buffer *log;
	struct wd_buffer message; /* DATA bytes of the current message */
	bool smtputf8;
};

static void check_error(const struct wd_lmtp_error *error)
{
	CHECK(error->code >= 500 && error->code <= 599);
	CHECK(error->status != NULL && error->status[0] == '5');
	CHECK(error->text != NULL && error->text[0] != '\0');
}

static void check_address(const char *address, bool utf8)
{
	size_t len = strnlen(address, WD_LMTP_PATH_MAX + 1);
	CHECK(len <= WD_LMTP_PATH_MAX);
	CHECK(wd_lmtp_utf8_valid((const uint8_t *)address, len));
	for (size_t i = 0; i < len && !utf8; i++)
		CHECK((uint8_t)address[i] < 0x80);
}

/* A command line: its verb, arguments and what MAIL/RCPT make of them. */
static bool log_command(struct run *r, const uint8_t *line, size_t len)
{
	char verb[WD_LMTP_VERB_MAX];
	const char *args;
	size_t args_len;
	struct wd_lmtp_error error;

	CHECK(len < r->limits->max_command_line);
	CHECK(memchr(line, '\n', len) == NULL);
	wd_buffer_append(r->log, "C", 1);
	wd_buffer_append(r->log, line, len);
	wd_buffer_append(r->log, "\n", 1);
	if (wd_lmtp_command_split(line, len, verb, &args, &args_len, &error) != WD_OK) {
		check_error(&error);
		wd_buffer_printf(r->log, "E%u\n", error.code);
		return false;
	}
	CHECK(strlen(verb) >= 1 && strlen(verb) < WD_LMTP_VERB_MAX);
	CHECK(args >= (const char *)line && args + args_len <= (const char *)line + len);
	if (strcmp(verb, "MAIL") == 0) {
		struct wd_lmtp_mail mail;
		if (wd_lmtp_parse_mail(args, args_len, &mail, &error) == WD_OK) {
			check_address(mail.address, mail.smtputf8);
			r->smtputf8 = mail.smtputf8;
			wd_buffer_printf(r->log, "M<%s> %d %llu %d %d\n", mail.address,
					 mail.has_size, (unsigned long long)mail.size, (int)mail.body,
					 mail.smtputf8);
		} else {
			check_error(&error);
			wd_buffer_printf(r->log, "E%u %s\n", error.code, error.status);
		}
	} else if (strcmp(verb, "RCPT") == 0) {
		struct wd_lmtp_rcpt rcpt;
		if (wd_lmtp_parse_rcpt(args, args_len, r->smtputf8, &rcpt, &error) == WD_OK) {
			check_address(rcpt.address, r->smtputf8);
			wd_buffer_printf(r->log, "R<%s>\n", rcpt.address);
		} else {
			check_error(&error);
			wd_buffer_printf(r->log, "E%u %s\n", error.code, error.status);
		}
	}
	return strcmp(verb, "DATA") == 0 && args_len == 0;
}

/* Undo the message as a client would have sent it: stuff leading dots,
   end with CRLF "." CRLF; parsing that must give the same bytes. */
static void check_restuffed(const struct wd_lmtp_parser_limits *limits, const uint8_t *msg,
			    size_t len)
{
	struct wd_buffer wire = WD_BUFFER_INIT, back = WD_BUFFER_INIT;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '.' && (i == 0 || msg[i - 1] == '\n'))
			wd_buffer_append(&wire, ".", 1);
		wd_buffer_append(&wire, msg + i, 1);
	}
	bool crlf_end = len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n';
	if (len > 0 && !crlf_end)
		wd_buffer_append(&wire, "\r\n", 2);
	wd_buffer_append(&wire, ".\r\n", 3);
	struct wd_lmtp_parser *parser = wd_lmtp_parser_create(limits);
	CHECK(parser != NULL && wd_lmtp_parser_begin_data(parser) == WD_OK);
	const uint8_t *p = wd_buffer_bytes(&wire);
	size_t left = wire.len;
	bool ended = false;
	while (!ended) {
		struct wd_lmtp_event ev;
		size_t used;
		CHECK(wd_lmtp_parser_feed(parser, p, left, &used, &ev) == WD_OK);
		p += used;
		left -= used;
		if (ev.type == WD_LMTP_EVENT_DATA) {
			wd_buffer_append(&back, ev.data, ev.len);
		} else {
			CHECK(ev.type == WD_LMTP_EVENT_DATA_END && !ev.aborted);
			CHECK(ev.status == WD_LMTP_DATA_OK && ev.size == back.len);
			ended = true;
		}
	}
	CHECK(left == 0);
	CHECK(back.len == len + (len > 0 && !crlf_end ? 2 : 0));
	CHECK(len == 0 || memcmp(wd_buffer_bytes(&back), msg, len) == 0);
	wd_lmtp_parser_destroy(&parser);
	wd_buffer_release(&wire);
	wd_buffer_release(&back);
}

static void end_message(struct run *r, const struct wd_lmtp_event *ev, size_t stream_pos)
{
	if (!ev->aborted) {
		/* only CRLF "." CRLF ends a message (see the header comment) */
		CHECK(stream_pos >= 3 && memcmp(r->input + stream_pos - 3, ".\r\n", 3) == 0);
		/* right after the DATA command (size 0), its line end is that
		   command's and may be a bare LF like any command's */
		if (ev->size > 0)
			CHECK(stream_pos >= 5 && memcmp(r->input + stream_pos - 5, "\r\n", 2) == 0);
	}
	const uint8_t *msg = wd_buffer_bytes(&r->message);
	if (ev->status == WD_LMTP_DATA_OK && !ev->aborted) {
		CHECK(ev->size == r->message.len);
		for (size_t i = 0; i < r->message.len; i++)
			if (msg[i] == '\n')
				CHECK(i > 0 && msg[i - 1] == '\r');
		check_restuffed(r->limits, msg, r->message.len);
		wd_buffer_printf(r->log, "D%zu:", r->message.len);
		wd_buffer_append(r->log, msg, r->message.len);
		wd_buffer_append(r->log, "\n", 1);
	}
	/* Once refused, how much was passed on before the refusal and where
	   the discard limit stopped reading depend on the chunks. */
	wd_buffer_printf(r->log, "END %d %d", (int)ev->status, ev->aborted);
	if (!ev->aborted)
		wd_buffer_printf(r->log, " %llu", (unsigned long long)ev->size);
	wd_buffer_append(r->log, "\n", 1);
	wd_buffer_clear(&r->message);
}

/* split 0: whole; 1: one byte at a time; else chunks of 1..64 from `split`. */
static void parse(const uint8_t *data, size_t size, const struct wd_lmtp_parser_limits *limits,
		  unsigned split, struct wd_buffer *log)
{
	struct run r = { .limits = limits, .input = data, .log = log,
			 .message = WD_BUFFER_INIT };
	struct wd_lmtp_parser *parser = wd_lmtp_parser_create(limits);
	CHECK(parser != NULL);
	struct wd_buffer held = WD_BUFFER_INIT;
	size_t off = 0, held_from = 0; /* stream offset of held's first byte */
	unsigned state = split;
	while (off < size) {
		size_t n = size - off;
		if (split == 1) {
			n = 1;
		} else if (split > 1) {
			state = state * 1103515245u + 12345u;
			n = 1 + (state >> 16) % 64;
			if (n > size - off)
				n = size - off;
		}
		wd_buffer_append(&held, data + off, n);
		off += n;
		for (;;) {
			struct wd_lmtp_event ev;
			size_t consumed = 0;
			int ret = wd_lmtp_parser_feed(parser, wd_buffer_bytes(&held), held.len,
						      &consumed, &ev);
			CHECK(ret == WD_OK || ret == WD_AGAIN);
			CHECK(consumed <= held.len);
			if (ret == WD_OK) {
				switch (ev.type) {
				case WD_LMTP_EVENT_COMMAND:
					CHECK(!wd_lmtp_parser_in_data(parser));
					if (log_command(&r, ev.data, ev.len))
						CHECK(wd_lmtp_parser_begin_data(parser) == WD_OK);
					break;
				case WD_LMTP_EVENT_DATA:
					CHECK(ev.len > 0);
					wd_buffer_append(&r.message, ev.data, ev.len);
					break;
				case WD_LMTP_EVENT_DATA_END:
					end_message(&r, &ev, held_from + consumed);
					break;
				case WD_LMTP_EVENT_ERROR:
					CHECK(ev.message != NULL && ev.message[0] != '\0');
					wd_buffer_printf(log, "ERR %s\n", ev.message);
					break;
				default:
					CHECK(0);
				}
			}
			wd_buffer_consume(&held, consumed);
			held_from += consumed;
			if (ret != WD_OK)
				break;
		}
		CHECK(held.len < limits->max_command_line + 64 || split == 0);
	}
	wd_buffer_printf(log, "held %zu data %d\n", held.len, wd_lmtp_parser_in_data(parser));
	wd_buffer_release(&held);
	wd_buffer_release(&r.message);
	wd_lmtp_parser_destroy(&parser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 65536)
		return 0;
	struct wd_lmtp_parser_limits limits;
	wd_lmtp_parser_limits_default(&limits);
	if (data[0] & 1) {
		limits.max_command_line = 16 + (data[0] >> 4);
		limits.max_data_line = 1 + ((data[0] >> 1) & 7) * 4;
		limits.max_message = 40 + (data[0] >> 4) * 8;
		limits.max_discard = 16;
	}
	data++;
	size--;
	struct wd_buffer expected = WD_BUFFER_INIT, got = WD_BUFFER_INIT;
	parse(data, size, &limits, 0, &expected);
	unsigned splits[] = { 1, 2 + (size % 251), 977 };
	for (size_t k = 0; k < 3; k++) {
		if (splits[k] == 1 && size > 4096)
			continue;
		wd_buffer_clear(&got);
		parse(data, size, &limits, splits[k], &got);
		if (got.len != expected.len ||
		    memcmp(wd_buffer_bytes(&got), wd_buffer_bytes(&expected), got.len) != 0) {
			fprintf(stderr, "event logs differ\n--- whole\n%.*s--- split %u\n%.*s",
				(int)expected.len, (const char *)wd_buffer_bytes(&expected),
				splits[k], (int)got.len, (const char *)wd_buffer_bytes(&got));
			abort();
		}
	}
	wd_buffer_release(&expected);
	wd_buffer_release(&got);
	return 0;
}
