/* See imap-parse-log.h. */
#include "imap-parse-log.h"

#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                                   \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "imap-parse-log: %s failed at line %d\n", #cond, \
				__LINE__);                                              \
			abort();                                                        \
		}                                                                       \
	} while (0)

static void log_bytes(struct wd_buffer *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '\\')
			wd_buffer_printf(out, "\\x%02x", c);
		else
			wd_buffer_append(out, &s[i], 1);
	}
}

void imap_parse_log_args(struct wd_buffer *out, const struct wd_imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct wd_imap_arg *a = &args[i];
		if (i > 0)
			wd_buffer_append_str(out, " ");
		switch (a->type) {
		case WD_IMAP_ARG_ATOM:
			log_bytes(out, a->str, a->len);
			break;
		case WD_IMAP_ARG_NIL:
			wd_buffer_append_str(out, "NIL");
			break;
		case WD_IMAP_ARG_STRING:
			wd_buffer_append_str(out, "q:");
			log_bytes(out, a->str, a->len);
			break;
		case WD_IMAP_ARG_LITERAL:
			wd_buffer_printf(out, "%s%zu:", a->literal8 ? "L8:" : "L:", a->len);
			if (a->streamed)
				wd_buffer_append_str(out, "<streamed>");
			else
				log_bytes(out, a->str, a->len);
			break;
		case WD_IMAP_ARG_LIST:
			wd_buffer_append_str(out, "(");
			imap_parse_log_args(out, a->list, a->count);
			wd_buffer_append_str(out, ")");
			break;
		}
	}
}

size_t imap_split_whole(void *context, size_t left)
{
	(void)context;
	return left;
}

size_t imap_split_one(void *context, size_t left)
{
	(void)context;
	(void)left;
	return 1;
}

size_t imap_split_random(void *context, size_t left)
{
	struct imap_split_random *r = context;
	r->state ^= r->state << 13;
	r->state ^= r->state >> 17;
	r->state ^= r->state << 5;
	size_t n = 1 + (r->state >> 4) % (r->max > 0 ? r->max : 1);
	return n < left ? n : left;
}

static const char *const recoveries[] = { "next", "skip", "close" };
static const char *const codes[] = { "syntax", "toobig", "limit" };

void imap_parse_log(const uint8_t *input, size_t len, imap_split_fn *split, void *context,
		    const struct imap_parse_log_options *options, struct wd_buffer *out)
{
	struct wd_imap_parser *p = wd_imap_parser_create(options->limits);
	struct wd_buffer in = WD_BUFFER_INIT, stream = WD_BUFFER_INIT;
	size_t pos = 0;
	bool streaming = false, closed = false;
	uint64_t events = 0;

	REQUIRE(p != NULL);
	while (!closed) {
		if (pos < len) {
			size_t n = split(context, len - pos);
			REQUIRE(n >= 1);
			if (n > len - pos)
				n = len - pos;
			REQUIRE(wd_buffer_append(&in, input + pos, n) == WD_OK);
			pos += n;
		}
		for (;;) {
			struct wd_imap_event ev;
			size_t before = in.len;
			int ret = wd_imap_parser_feed_buffer(p, &in, &ev);
			if (ret == WD_AGAIN)
				break;
			REQUIRE(ret == WD_OK);
			switch (ev.type) {
			case WD_IMAP_EVENT_COMMAND:
				REQUIRE(!streaming);
				wd_buffer_printf(out, "CMD %s %s%s", ev.command->tag,
						 ev.command->uid ? "UID " : "", ev.command->name);
				if (ev.command->arg_count > 0)
					wd_buffer_append_str(out, " ");
				imap_parse_log_args(out, ev.command->args, ev.command->arg_count);
				wd_buffer_append_str(out, "\n");
				if (options->line_after != NULL &&
				    strcmp(ev.command->name, options->line_after) == 0)
					REQUIRE(wd_imap_parser_read_line(p) == WD_OK);
				wd_imap_command_destroy(&ev.command);
				break;
			case WD_IMAP_EVENT_LITERAL:
				wd_buffer_printf(out, "LIT %s %s %llu%s%s d%u i%zu\n",
						 ev.tag, ev.name, (unsigned long long)ev.literal_size,
						 ev.literal_sync ? "" : "+", ev.literal8 ? " lit8" : "",
						 ev.literal_depth, ev.literal_index);
				if (ev.literal_size >= options->stream_min) {
					REQUIRE(wd_imap_parser_literal_stream(p) == WD_OK);
					streaming = true;
				}
				break;
			case WD_IMAP_EVENT_CONTINUE:
				wd_buffer_printf(out, "+ %s\n", ev.tag);
				break;
			case WD_IMAP_EVENT_LITERAL_DATA:
				REQUIRE(streaming);
				wd_buffer_append(&stream, ev.data, ev.len);
				if (ev.last) {
					wd_buffer_printf(out, "DATA %zu:", stream.len);
					log_bytes(out, (const char *)wd_buffer_bytes(&stream), stream.len);
					wd_buffer_append_str(out, "\n");
					wd_buffer_clear(&stream);
					streaming = false;
				}
				break;
			case WD_IMAP_EVENT_LINE:
				wd_buffer_append_str(out, "LINE ");
				log_bytes(out, (const char *)ev.data, ev.len);
				wd_buffer_append_str(out, "\n");
				break;
			case WD_IMAP_EVENT_ERROR:
				wd_buffer_printf(out, "ERR %s %s %s%s%s: %s\n",
						 ev.tag != NULL ? ev.tag : "*", codes[ev.error],
						 recoveries[ev.recovery], ev.respond_no ? " NO" : "",
						 ev.resp_code != NULL ? " TOOBIG" : "", ev.message);
				if (ev.recovery == WD_IMAP_RECOVER_CLOSE)
					closed = true;
				break;
			}
			if (closed)
				break;
			/* Each event consumes bytes or is one of a bounded few per
			   token: a parser that stops making progress trips this. */
			REQUIRE(++events <= 4 * (uint64_t)len + 16);
			(void)before;
		}
		if (pos == len)
			break;
	}
	if (!closed && !wd_imap_parser_is_idle(p))
		wd_buffer_printf(out, "PENDING %zu\n", in.len);
	wd_buffer_release(&in);
	wd_buffer_release(&stream);
	wd_imap_parser_destroy(&p);
}

struct wd_imap_command *imap_parse_command(const char *line)
{
	struct wd_imap_parser_limits limits;
	struct wd_imap_parser *p;
	struct wd_imap_command *cmd = NULL;
	size_t len = strlen(line), used;

	wd_imap_parser_limits_default(&limits);
	limits.literal_plus = true;
	p = wd_imap_parser_create(&limits);
	REQUIRE(p != NULL);
	for (;;) {
		struct wd_imap_event ev;
		if (wd_imap_parser_feed(p, (const uint8_t *)line, len, &used, &ev) != WD_OK)
			break;
		line += used;
		len -= used;
		if (ev.type == WD_IMAP_EVENT_ERROR)
			break;
		if (ev.type == WD_IMAP_EVENT_COMMAND) {
			cmd = ev.command;
			break;
		}
	}
	wd_imap_parser_destroy(&p);
	return cmd;
}
