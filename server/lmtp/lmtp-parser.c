/* LMTP input framing (lmtp-parser.h): command lines and the dot-stuffed
 * message after DATA.
 *
 * The message is read by a byte-level state machine that keeps no line
 * buffer, only where it is in the current line:
 *
 *   BOL     at the start of a line (bol_crlf: the line before ended CRLF)
 *   DOT     "." at the start of a line, not yet passed on
 *   DOT_CR  "." CR at the start of a line, neither passed on
 *   TEXT    inside a line
 *   CR      inside a line, right after a CR (already passed on)
 *
 * Bytes that pass through unchanged are handed out as runs of the input
 * (one DATA event per run); only the dropped stuffing dot, the CR added
 * before a bare LF and a CR held back after a leading dot break a run. A
 * CRLF message therefore comes out in a few large events. */
#include "lmtp-parser.h"

#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

enum parser_mode {
	MODE_COMMAND,
	MODE_SKIP_LINE, /* dropping the rest of a command line that was too long */
	MODE_DATA,
	MODE_DEAD,      /* the discard limit was passed; the connection must close */
};

enum data_state {
	D_BOL,
	D_DOT,
	D_DOT_CR,
	D_TEXT,
	D_CR,
};

struct wd_lmtp_parser {
	struct wd_lmtp_parser_limits limits;
	enum parser_mode mode;
	size_t scanned; /* command mode: bytes already searched for LF */

	/* data mode */
	enum data_state state;
	bool bol_crlf;
	size_t line_len;
	uint64_t size;
	enum wd_lmtp_data_status status;
};

void wd_lmtp_parser_limits_default(struct wd_lmtp_parser_limits *limits_r)
{
	limits_r->max_command_line = 512;
	limits_r->max_data_line = 1024 * 1024;
	limits_r->max_message = 25 * 1024 * 1024;
	limits_r->max_discard = 4 * limits_r->max_message;
}

struct wd_lmtp_parser *wd_lmtp_parser_create(const struct wd_lmtp_parser_limits *limits)
{
	struct wd_lmtp_parser *parser = calloc(1, sizeof(*parser));
	if (parser == NULL)
		return NULL;
	parser->limits = *limits;
	if (parser->limits.max_command_line < 16)
		parser->limits.max_command_line = 16;
	parser->mode = MODE_COMMAND;
	return parser;
}

void wd_lmtp_parser_destroy(struct wd_lmtp_parser **parser)
{
	free(*parser);
	*parser = NULL;
}

int wd_lmtp_parser_begin_data(struct wd_lmtp_parser *parser)
{
	if (parser->mode != MODE_COMMAND || parser->scanned != 0)
		return WD_ERROR;
	parser->mode = MODE_DATA;
	parser->state = D_BOL;
	parser->bol_crlf = true; /* the CRLF of the DATA command starts the end sequence */
	parser->line_len = 0;
	parser->size = 0;
	parser->status = WD_LMTP_DATA_OK;
	return WD_OK;
}

bool wd_lmtp_parser_in_data(const struct wd_lmtp_parser *parser)
{
	return parser->mode == MODE_DATA;
}

bool wd_lmtp_parser_is_idle(const struct wd_lmtp_parser *parser)
{
	return parser->mode == MODE_COMMAND && parser->scanned == 0;
}

/* ---- command lines ---- */

static int feed_command(struct wd_lmtp_parser *parser, const uint8_t *data, size_t len,
			size_t *consumed_r, struct wd_lmtp_event *ev)
{
	size_t max = parser->limits.max_command_line;
	const uint8_t *lf = parser->scanned < len
				    ? memchr(data + parser->scanned, '\n', len - parser->scanned)
				    : NULL;
	if (lf == NULL) {
		if (len >= max) {
			/* the line cannot end within the limit any more */
			parser->scanned = 0;
			parser->mode = MODE_SKIP_LINE;
			*consumed_r = len;
			ev->type = WD_LMTP_EVENT_ERROR;
			ev->message = "Line too long";
			return WD_OK;
		}
		parser->scanned = len;
		*consumed_r = 0;
		return WD_AGAIN;
	}
	size_t end = (size_t)(lf - data);
	parser->scanned = 0;
	*consumed_r = end + 1;
	if (end + 1 > max) {
		ev->type = WD_LMTP_EVENT_ERROR;
		ev->message = "Line too long";
		return WD_OK;
	}
	if (end > 0 && data[end - 1] == '\r')
		end--;
	ev->type = WD_LMTP_EVENT_COMMAND;
	ev->data = data;
	ev->len = end;
	return WD_OK;
}

/* ---- the message ---- */

static void data_end(struct wd_lmtp_parser *parser, struct wd_lmtp_event *ev, bool aborted)
{
	ev->type = WD_LMTP_EVENT_DATA_END;
	ev->status = parser->status;
	ev->size = parser->size;
	ev->aborted = aborted;
	parser->mode = aborted ? MODE_DEAD : MODE_COMMAND;
}

/* Count `len` message bytes and produce their DATA event unless the message
   is already refused. Returns true when *ev was filled (a DATA event, or
   DATA_END with `aborted` once the discard limit is passed). */
static bool emit(struct wd_lmtp_parser *parser, struct wd_lmtp_event *ev, const uint8_t *data,
		 size_t len)
{
	if (len == 0)
		return false;
	parser->size += len;
	const struct wd_lmtp_parser_limits *lim = &parser->limits;
	if (parser->status == WD_LMTP_DATA_OK && parser->size > lim->max_message)
		parser->status = WD_LMTP_DATA_TOO_BIG;
	if (parser->status != WD_LMTP_DATA_OK) {
		if (parser->size > lim->max_message &&
		    parser->size - lim->max_message > lim->max_discard) {
			data_end(parser, ev, true);
			return true;
		}
		return false;
	}
	ev->type = WD_LMTP_EVENT_DATA;
	ev->data = data;
	ev->len = len;
	return true;
}

/* A limit other than the size is broken where `pending` bytes of the
   current run are not counted yet. The message may already be past
   max_message there: then that came first. Counting them here keeps the
   status independent of how the input was cut into reads (the run would
   otherwise be counted only when it is emitted). */
static void refuse(struct wd_lmtp_parser *parser, enum wd_lmtp_data_status status,
		   size_t pending)
{
	if (parser->status != WD_LMTP_DATA_OK)
		return;
	parser->status = parser->size + pending > parser->limits.max_message ?
				 WD_LMTP_DATA_TOO_BIG :
				 status;
}

static int feed_data(struct wd_lmtp_parser *parser, const uint8_t *data, size_t len,
		     size_t *consumed_r, struct wd_lmtp_event *ev)
{
	static const uint8_t crlf[] = "\r\n", dot_crlf[] = ".\r\n", cr[] = "\r";
	size_t i = 0, start = 0; /* the run passed through unchanged is [start, i) */

	while (i < len) {
		uint8_t c = data[i];
		switch (parser->state) {
		case D_BOL:
			parser->line_len = 0;
			if (c == '.') {
				if (emit(parser, ev, data + start, i - start)) {
					*consumed_r = i;
					return WD_OK;
				}
				parser->state = D_DOT;
				start = ++i;
				continue;
			}
			parser->state = D_TEXT;
			continue;
		case D_TEXT:
			if (c == '\n') {
				/* bare LF: the run ends before it, CRLF is stored instead */
				if (emit(parser, ev, data + start, i - start)) {
					*consumed_r = i;
					return WD_OK;
				}
				start = ++i;
				parser->state = D_BOL;
				parser->bol_crlf = false;
				if (emit(parser, ev, crlf, 2)) {
					*consumed_r = i;
					return WD_OK;
				}
				continue;
			}
			i++;
			if (c == '\r') {
				parser->state = D_CR; /* counted once it is known to be content */
				continue;
			}
			if (c == '\0')
				refuse(parser, WD_LMTP_DATA_NUL, i - start);
			if (++parser->line_len > parser->limits.max_data_line)
				refuse(parser, WD_LMTP_DATA_LINE_TOO_LONG, i - start);
			continue;
		case D_CR:
			if (c == '\n') {
				i++;
				parser->state = D_BOL;
				parser->bol_crlf = true;
				continue;
			}
			/* a bare CR stays as it is */
			if (++parser->line_len > parser->limits.max_data_line)
				refuse(parser, WD_LMTP_DATA_LINE_TOO_LONG, i - start);
			parser->state = D_TEXT;
			continue;
		case D_DOT:
			if (c == '\r') {
				parser->state = D_DOT_CR;
				start = ++i;
				continue;
			}
			if (c == '\n') {
				/* "." and a bare LF: not an end; the line is "." */
				start = ++i;
				parser->state = D_BOL;
				parser->bol_crlf = false;
				if (emit(parser, ev, dot_crlf, 3)) {
					*consumed_r = i;
					return WD_OK;
				}
				continue;
			}
			/* more on the line: the leading dot was stuffing (start == i) */
			parser->state = D_TEXT;
			continue;
		case D_DOT_CR:
			if (c == '\n') {
				i++;
				if (parser->bol_crlf) {
					*consumed_r = i;
					data_end(parser, ev, false);
					return WD_OK;
				}
				/* "." CRLF after a bare LF: content, never the end */
				start = i;
				parser->state = D_BOL;
				parser->bol_crlf = true;
				if (emit(parser, ev, dot_crlf, 3)) {
					*consumed_r = i;
					return WD_OK;
				}
				continue;
			}
			/* "." CR and more: the dot was stuffing, the CR is content */
			parser->state = D_CR;
			if (emit(parser, ev, cr, 1)) {
				*consumed_r = i;
				return WD_OK;
			}
			continue;
		}
	}
	*consumed_r = len;
	if (emit(parser, ev, data + start, len - start))
		return WD_OK;
	return WD_AGAIN;
}

int wd_lmtp_parser_feed(struct wd_lmtp_parser *parser, const uint8_t *data, size_t len,
			size_t *consumed_r, struct wd_lmtp_event *ev_r)
{
	size_t done = 0;
	memset(ev_r, 0, sizeof(*ev_r));
	for (;;) {
		size_t used = 0;
		int ret;
		if (done == len) {
			*consumed_r = len;
			return WD_AGAIN;
		}
		switch (parser->mode) {
		case MODE_COMMAND:
			ret = feed_command(parser, data + done, len - done, &used, ev_r);
			break;
		case MODE_DATA:
			ret = feed_data(parser, data + done, len - done, &used, ev_r);
			break;
		case MODE_SKIP_LINE: {
			const uint8_t *lf = memchr(data + done, '\n', len - done);
			if (lf == NULL) {
				*consumed_r = len;
				return WD_AGAIN;
			}
			done = (size_t)(lf - data) + 1;
			parser->mode = MODE_COMMAND;
			continue;
		}
		case MODE_DEAD:
		default:
			*consumed_r = len;
			return WD_AGAIN;
		}
		*consumed_r = done + used;
		return ret;
	}
}
