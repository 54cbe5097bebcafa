/* The POP3 line parser (pop3-parser.h). State between calls: whether a too
 * long line is being discarded, whether the next line is raw, and how far
 * the pending line was already scanned for its end. */
#include "pop3-parser.h"

#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

struct wd_pop3_parser {
	size_t max_line;
	size_t scanned;  /* bytes of the pending line known to hold no LF */
	bool discarding; /* inside a line that was too long */
	bool raw;        /* the next line is a LINE event */
	char name[WD_POP3_KEYWORD_MAX + 1];
};

struct wd_pop3_parser *wd_pop3_parser_create(size_t max_line)
{
	struct wd_pop3_parser *parser = calloc(1, sizeof(*parser));
	if (parser != NULL)
		parser->max_line = max_line < 8 ? WD_POP3_LINE_MAX : max_line;
	return parser;
}

void wd_pop3_parser_destroy(struct wd_pop3_parser **parser)
{
	free(*parser);
	*parser = NULL;
}

void wd_pop3_parser_read_line(struct wd_pop3_parser *parser)
{
	parser->raw = true;
}

static bool is_keyword_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int error_event(struct wd_pop3_event *ev, const char *error)
{
	ev->type = WD_POP3_EVENT_ERROR;
	ev->error = error;
	return WD_OK;
}

/* One whole line (without its line end). */
static int line_event(struct wd_pop3_parser *parser, const uint8_t *line, size_t len,
		      struct wd_pop3_event *ev)
{
	if (parser->raw) {
		parser->raw = false;
		ev->type = WD_POP3_EVENT_LINE;
		ev->args = line;
		ev->args_len = len;
		return WD_OK;
	}
	if (len == 0)
		return error_event(ev, "Empty command");
	if (memchr(line, '\0', len) != NULL)
		return error_event(ev, "NUL byte in command");
	size_t n = 0;
	while (n < len && line[n] != ' ') {
		if (n >= WD_POP3_KEYWORD_MAX || !is_keyword_char(line[n]))
			return error_event(ev, "Unknown command");
		parser->name[n] = (char)(line[n] >= 'a' && line[n] <= 'z' ? line[n] - 32 : line[n]);
		n++;
	}
	if (n == 0)
		return error_event(ev, "Unknown command");
	parser->name[n] = '\0';
	ev->type = WD_POP3_EVENT_COMMAND;
	ev->name = parser->name;
	ev->args = n < len ? line + n + 1 : line + n;
	ev->args_len = n < len ? len - n - 1 : 0;
	return WD_OK;
}

int wd_pop3_parser_feed(struct wd_pop3_parser *parser, const uint8_t *data, size_t len,
			size_t *consumed_r, struct wd_pop3_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	*consumed_r = 0;
	if (parser->discarding) {
		const uint8_t *lf = memchr(data, '\n', len);
		if (lf == NULL) {
			*consumed_r = len;
			return WD_AGAIN;
		}
		parser->discarding = false;
		size_t skipped = (size_t)(lf - data) + 1;
		size_t more = 0;
		int ret = wd_pop3_parser_feed(parser, lf + 1, len - skipped, &more, ev);
		*consumed_r = skipped + more;
		return ret;
	}
	size_t window = len < parser->max_line ? len : parser->max_line;
	size_t from = parser->scanned < window ? parser->scanned : 0;
	const uint8_t *lf = memchr(data + from, '\n', window - from);
	if (lf == NULL) {
		if (len < parser->max_line) {
			parser->scanned = window;
			return WD_AGAIN;
		}
		/* no line end within the limit: answer now, discard the rest */
		parser->scanned = 0;
		parser->discarding = true;
		parser->raw = false;
		*consumed_r = parser->max_line;
		return error_event(ev, "Line too long");
	}
	parser->scanned = 0;
	size_t line_len = (size_t)(lf - data);
	*consumed_r = line_len + 1;
	if (line_len > 0 && data[line_len - 1] == '\r')
		line_len--;
	return line_event(parser, data, line_len, ev);
}

size_t wd_pop3_args_split(const uint8_t *args, size_t len, struct wd_pop3_arg *argv,
			  size_t max)
{
	size_t count = 0, i = 0;
	while (i < len) {
		while (i < len && args[i] == ' ')
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && args[i] != ' ')
			i++;
		if (count == max)
			return max + 1;
		argv[count].str = (const char *)args + start;
		argv[count].len = i - start;
		count++;
	}
	return count;
}

bool wd_pop3_arg_number(const struct wd_pop3_arg *arg, uint32_t *value_r)
{
	if (arg->len == 0)
		return false;
	uint64_t value = 0;
	for (size_t i = 0; i < arg->len; i++) {
		if (arg->str[i] < '0' || arg->str[i] > '9')
			return false;
		value = value * 10 + (uint64_t)(arg->str[i] - '0');
		if (value > UINT32_MAX)
			value = UINT32_MAX + 1ULL; /* saturate; stays above UINT32_MAX */
	}
	*value_r = value > UINT32_MAX ? UINT32_MAX : (uint32_t)value;
	return true;
}
