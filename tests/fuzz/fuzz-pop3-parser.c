/* Fuzz target for the POP3 engine's sans-I/O pieces (server/pop3):
 * wd_pop3_parser_feed() and the RETR/TOP byte-stuffing.
 *
 * Contracts checked, aborting on any breach:
 *   - chunking invariance: the input fed whole, one byte at a time (when
 *     short) and in splits derived from the input give the same events,
 *     with the connection's rule that unconsumed bytes come again;
 *   - events are sane: a keyword is 1..WD_POP3_KEYWORD_MAX upper-case
 *     letters or digits, arguments hold no LF and fit the line limit, an
 *     error has its text; consumed never exceeds what was given; the bytes
 *     held between calls stay below the limit plus one chunk;
 *   - byte-stuffing: the same output for every split, and a client undoing
 *     it gets the input back (plus CRLF when it did not end with LF); TOP
 *     output is a prefix of RETR output (before its terminator).
 * The first input byte picks the line limit (small limits reach the
 * too-long paths quickly) and the TOP line count. */
#include "fuzz-check.h"
#include "pop3-dotstuff.h"
#include "pop3-parser.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void log_event(struct wd_buffer *log, struct wd_pop3_parser *parser,
		      const struct wd_pop3_event *ev, size_t max_line)
{
	switch (ev->type) {
	case WD_POP3_EVENT_COMMAND: {
		size_t n = strlen(ev->name);
		CHECK(n >= 1 && n <= WD_POP3_KEYWORD_MAX);
		for (size_t i = 0; i < n; i++)
			CHECK((ev->name[i] >= 'A' && ev->name[i] <= 'Z') ||
			      (ev->name[i] >= '0' && ev->name[i] <= '9'));
		CHECK(ev->args_len < max_line && memchr(ev->args, '\n', ev->args_len) == NULL);
		wd_buffer_printf(log, "C%s:", ev->name);
		wd_buffer_append(log, ev->args, ev->args_len);
		/* as the session does after AUTH PLAIN without a response */
		if (strcmp(ev->name, "AUTH") == 0 && ev->args_len == 5)
			wd_pop3_parser_read_line(parser);
		break;
	}
	case WD_POP3_EVENT_LINE:
		CHECK(ev->args_len < max_line && memchr(ev->args, '\n', ev->args_len) == NULL);
		wd_buffer_append(log, "L", 1);
		wd_buffer_append(log, ev->args, ev->args_len);
		break;
	case WD_POP3_EVENT_ERROR:
		CHECK(ev->error != NULL && ev->error[0] != '\0');
		wd_buffer_printf(log, "E%s", ev->error);
		break;
	}
	wd_buffer_append(log, "\n", 1);
}

/* split 0: whole; 1: bytes; else pseudo-random chunks from `split`. */
static void parse(const uint8_t *data, size_t size, size_t max_line, unsigned split,
		  struct wd_buffer *log)
{
	struct wd_pop3_parser *parser = wd_pop3_parser_create(max_line);
	CHECK(parser != NULL);
	struct wd_buffer held = WD_BUFFER_INIT;
	size_t off = 0;
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
			struct wd_pop3_event ev;
			size_t consumed = 0;
			int ret = wd_pop3_parser_feed(parser, wd_buffer_bytes(&held), held.len,
						      &consumed, &ev);
			CHECK(ret == WD_OK || ret == WD_AGAIN);
			CHECK(consumed <= held.len);
			if (ret == WD_OK)
				log_event(log, parser, &ev, max_line);
			wd_buffer_consume(&held, consumed);
			if (ret != WD_OK)
				break;
		}
		CHECK(held.len < max_line + 64 || split == 0);
	}
	wd_buffer_printf(log, "held %zu\n", held.len);
	wd_buffer_release(&held);
	wd_pop3_parser_destroy(&parser);
}

static void stuff(const uint8_t *data, size_t size, bool top, uint32_t lines, unsigned split,
		  struct wd_buffer *out)
{
	struct wd_pop3_dotstuff ds;
	wd_pop3_dotstuff_init(&ds, top, lines);
	size_t off = 0;
	unsigned state = split;
	while (off < size) {
		size_t n = size - off;
		if (split > 0) {
			state = state * 1103515245u + 12345u;
			n = 1 + (state >> 16) % 32;
			if (n > size - off)
				n = size - off;
		}
		CHECK(wd_pop3_dotstuff_feed(&ds, data + off, n, out) == WD_OK);
		off += n;
	}
	CHECK(wd_pop3_dotstuff_finish(&ds, out) == WD_OK);
}

static void check_stuffing(const uint8_t *data, size_t size, uint32_t lines)
{
	struct wd_buffer whole = WD_BUFFER_INIT, split = WD_BUFFER_INIT, top = WD_BUFFER_INIT,
			 back = WD_BUFFER_INIT;
	stuff(data, size, false, 0, 0, &whole);
	stuff(data, size, false, 0, 7, &split);
	CHECK(whole.len == split.len &&
	      memcmp(wd_buffer_bytes(&whole), wd_buffer_bytes(&split), whole.len) == 0);
	/* undo it as a client does */
	const uint8_t *p = wd_buffer_bytes(&whole);
	size_t i = 0;
	bool terminated = false;
	while (i < whole.len) {
		const uint8_t *lf = memchr(p + i, '\n', whole.len - i);
		CHECK(lf != NULL);
		size_t end = (size_t)(lf - p) + 1;
		if (end - i == 3 && memcmp(p + i, ".\r\n", 3) == 0) {
			CHECK(end == whole.len);
			terminated = true;
			break;
		}
		size_t start = i + (p[i] == '.');
		wd_buffer_append(&back, p + start, end - start);
		i = end;
	}
	CHECK(terminated);
	bool lf_end = size == 0 || data[size - 1] == '\n';
	CHECK(back.len == size + (lf_end ? 0 : 2));
	CHECK(size == 0 || memcmp(wd_buffer_bytes(&back), data, size) == 0);
	/* TOP: a prefix of RETR's body, then a terminator */
	stuff(data, size, true, lines, 3, &top);
	CHECK(top.len >= 3 && memcmp(wd_buffer_bytes(&top) + top.len - 3, ".\r\n", 3) == 0);
	size_t body = top.len - 3;
	CHECK(body <= whole.len - 3);
	CHECK(memcmp(wd_buffer_bytes(&top), wd_buffer_bytes(&whole), body) == 0);
	wd_buffer_release(&whole);
	wd_buffer_release(&split);
	wd_buffer_release(&top);
	wd_buffer_release(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	static const size_t limits[] = { 8, 16, 40, 255, WD_POP3_LINE_MAX };
	size_t max_line = limits[data[0] % 5];
	uint32_t lines = data[0] >> 3;
	data++;
	size--;
	struct wd_buffer expected = WD_BUFFER_INIT, got = WD_BUFFER_INIT;
	parse(data, size, max_line, 0, &expected);
	unsigned splits[] = { 1, 2 + (size % 251), 977 };
	for (size_t k = 0; k < 3; k++) {
		if (splits[k] == 1 && size > 4096)
			continue;
		wd_buffer_clear(&got);
		parse(data, size, max_line, splits[k], &got);
		CHECK(got.len == expected.len &&
		      memcmp(wd_buffer_bytes(&got), wd_buffer_bytes(&expected), got.len) == 0);
	}
	wd_buffer_release(&expected);
	wd_buffer_release(&got);
	check_stuffing(data, size, lines);
	return 0;
}
