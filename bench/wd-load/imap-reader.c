/* imap-reader.c — a sans-I/O reader of IMAP server responses.
 *
 * The caller feeds whatever bytes it has; the reader consumes them up to the
 * end of one response and says when that response is complete. A response
 * is a line, or a line ending in a literal announcement {n} (or {n+}), n
 * bytes of literal, and a continuation line, repeated (FETCH BODY[] answers).
 *
 * Design:
 *   - Streaming, byte at a time, no look-back: literal markers are
 *     recognised by a small state machine ({ digits [+] } CR LF), literal
 *     bytes are counted and skipped in bulk. Nothing but the first line's head
 *     (WL_IMAP_HEAD_MAX bytes) is stored, so a 2 GB literal or an endless
 *     SEARCH line costs no memory; the transport's timeout ends a response
 *     that never ends.
 *   - Classification (tag, status word, "* n EXISTS") is done from the head
 *     once the first line is complete. A bare LF ends a line too (lenient).
 *   - Literal sizes that overflow 64 bits or a '{' that is not a literal
 *     marker simply reset the recogniser: the bytes stay line text. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wd-load.h"

enum { ST_LINE, ST_LITERAL };
enum { LIT_NONE, LIT_DIGITS, LIT_PLUS, LIT_CLOSE, LIT_CR };

void wl_imap_reader_init(struct wl_imap_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->state = ST_LINE;
	r->first_line = true;
}

/* next space-separated token of *p into out */
static void token(const char **p, char *out, size_t size)
{
	const char *s = *p;
	while (*s == ' ')
		s++;
	size_t n = 0;
	while (*s != '\0' && *s != ' ') {
		if (n + 1 < size)
			out[n++] = *s;
		s++;
	}
	out[n] = '\0';
	*p = s;
}

static void upcase(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)toupper((unsigned char)*s);
}

static void classify(struct wl_imap_response *resp)
{
	const char *p = resp->head;
	char first[32], second[16];
	token(&p, first, sizeof(first));
	if (strcmp(first, "+") == 0) {
		resp->kind = WL_IMAP_CONTINUATION;
		return;
	}
	token(&p, second, sizeof(second));
	if (strcmp(first, "*") == 0) {
		resp->kind = WL_IMAP_UNTAGGED;
		if (second[0] != '\0' && strspn(second, "0123456789") == strlen(second) &&
		    strlen(second) <= 10) {
			unsigned long long v = strtoull(second, NULL, 10);
			resp->has_number = v <= UINT32_MAX;
			resp->number = (uint32_t)v;
			token(&p, resp->word, sizeof(resp->word));
		} else {
			snprintf(resp->word, sizeof(resp->word), "%s", second);
		}
	} else {
		resp->kind = WL_IMAP_TAGGED;
		snprintf(resp->tag, sizeof(resp->tag), "%s", first);
		snprintf(resp->word, sizeof(resp->word), "%s", second);
	}
	upcase(resp->word);
}

static void lit_step(struct wl_imap_reader *r, uint8_t ch)
{
	switch (r->lit_state) {
	case LIT_NONE:
		break;
	case LIT_DIGITS:
		if (ch >= '0' && ch <= '9') {
			if (r->lit_n > (UINT64_MAX - 9) / 10) {
				r->lit_state = LIT_NONE;
				return;
			}
			r->lit_n = r->lit_n * 10 + (uint64_t)(ch - '0');
			r->lit_left++; /* digit count, reused until the literal starts */
			return;
		}
		if (ch == '+' && r->lit_left > 0) {
			r->lit_state = LIT_PLUS;
			return;
		}
		if (ch == '}' && r->lit_left > 0) {
			r->lit_state = LIT_CLOSE;
			return;
		}
		break;
	case LIT_PLUS:
		if (ch == '}') {
			r->lit_state = LIT_CLOSE;
			return;
		}
		break;
	case LIT_CLOSE:
		if (ch == '\r') {
			r->lit_state = LIT_CR;
			return;
		}
		break;
	default:
		break;
	}
	r->lit_state = LIT_NONE;
	if (ch == '{') {
		r->lit_state = LIT_DIGITS;
		r->lit_n = 0;
		r->lit_left = 0;
	}
}

size_t wl_imap_reader_feed(struct wl_imap_reader *r, const uint8_t *data, size_t len,
			   bool *done_r)
{
	size_t i = 0;
	*done_r = false;
	while (i < len) {
		if (r->state == ST_LITERAL) {
			uint64_t take = len - i;
			if (take > r->lit_left)
				take = r->lit_left;
			i += (size_t)take;
			r->lit_left -= take;
			r->resp.literal_bytes += take;
			if (r->lit_left == 0)
				r->state = ST_LINE;
			continue;
		}
		uint8_t ch = data[i++];
		if (ch == '\n') {
			bool literal = r->lit_state == LIT_CLOSE || r->lit_state == LIT_CR;
			if (r->first_line) {
				r->first_line = false;
				size_t n = r->head_len;
				if (n > 0 && r->resp.head[n - 1] == '\r')
					n--;
				r->resp.head[n] = '\0';
				classify(&r->resp);
			}
			r->lit_state = LIT_NONE;
			if (literal) {
				r->resp.literals++;
				r->lit_left = r->lit_n;
				r->state = r->lit_left > 0 ? ST_LITERAL : ST_LINE;
				continue;
			}
			r->resp.total_bytes += i;
			*done_r = true;
			return i;
		}
		if (r->first_line && r->head_len + 1 < WL_IMAP_HEAD_MAX)
			r->resp.head[r->head_len++] = (char)ch;
		lit_step(r, ch);
	}
	r->resp.total_bytes += i;
	return i;
}
