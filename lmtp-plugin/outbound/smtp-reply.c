/* SMTP replies (RFC 5321 §4.2), sans-I/O: bytes in, one complete reply
 * out. A reply is one or more lines "ddd-text" ending with "ddd text" (or
 * a bare "ddd"); every line must carry the same code, whose first digit is
 * 2 to 5. Limits: a line of at most WD_SMTP_LINE_MAX bytes, at most
 * WD_SMTP_REPLY_LINES_MAX lines; text past WD_SMTP_REPLY_TEXT_MAX is
 * dropped (the reply is still accepted). Control characters in the text
 * become '?' so it can go into a log line as it is. */
#include "smtp-client.h"
#include "wd-result.h"

#include <string.h>

void wd_smtp_reply_parser_init(struct wd_smtp_reply_parser *p)
{
	memset(&p->reply, 0, sizeof(p->reply));
	p->line_len = 0;
}

static void add_text(struct wd_smtp_reply *r, const char *text, size_t len)
{
	size_t room = sizeof(r->text) - 1 - r->text_len;
	if (r->lines > 1 && room > 0) {
		r->text[r->text_len++] = '\n';
		room--;
	}
	if (len > room)
		len = room;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		r->text[r->text_len++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	r->text[r->text_len] = '\0';
}

/* One complete line (without its line end): WD_OK when it was the last. */
static int take_line(struct wd_smtp_reply_parser *p, const char **error_r)
{
	const char *l = p->line;
	size_t len = p->line_len;
	if (len > 0 && l[len - 1] == '\r')
		len--;
	if (len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
	    l[2] > '9' || (len > 3 && l[3] != ' ' && l[3] != '-')) {
		*error_r = "malformed reply line";
		return WD_ERROR;
	}
	unsigned code = (unsigned)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
	struct wd_smtp_reply *r = &p->reply;
	if (r->lines > 0 && code != r->code) {
		*error_r = "reply lines with different codes";
		return WD_ERROR;
	}
	if (r->lines >= WD_SMTP_REPLY_LINES_MAX) {
		*error_r = "reply with too many lines";
		return WD_ERROR;
	}
	r->code = code;
	r->lines++;
	add_text(r, len > 4 ? l + 4 : "", len > 4 ? len - 4 : 0);
	return len > 3 && l[3] == '-' ? WD_AGAIN : WD_OK;
}

int wd_smtp_reply_feed(struct wd_smtp_reply_parser *p, const uint8_t *data, size_t len,
		       size_t *consumed_r, const char **error_r)
{
	size_t i = 0;
	*consumed_r = 0;
	while (i < len) {
		const uint8_t *nl = memchr(data + i, '\n', len - i);
		size_t take = nl != NULL ? (size_t)(nl - (data + i)) : len - i;
		if (p->line_len + take > WD_SMTP_LINE_MAX) {
			*consumed_r = i;
			*error_r = "reply line too long";
			return WD_ERROR;
		}
		memcpy(p->line + p->line_len, data + i, take);
		p->line_len += take;
		i += take;
		if (nl == NULL)
			break;
		i++; /* the LF */
		int ret = take_line(p, error_r);
		p->line_len = 0;
		if (ret != WD_AGAIN) {
			*consumed_r = i;
			return ret;
		}
	}
	*consumed_r = i;
	return WD_AGAIN;
}
