/* The header block of a queued message as ZoneMTA keeps it: WildDuck's
 * MessageSplitter cuts the message at the first empty line, mailsplit's
 * Headers turns the block into [{key, line}] (metadata.data.headers), and
 * ZoneMTA's sender rebuilds the block from that list and sends the GridFS
 * body after it.
 *
 * Rules reproduced (mailsplit lib/headers.js, wildduck lib/message-splitter.js):
 *   - the block ends after the first "\n\n" or "\n\r\n"; without one the
 *     whole message is header (the body is then empty here, where WildDuck
 *     would store a lone CRLF);
 *   - the block loses its final line breaks, is split at "\r?\n", and a line
 *     starting with SP or TAB continues the previous one (joined by CRLF);
 *   - a first line "From " (mbox) or "POST " (HTTP) is not a header and is
 *     not kept, as ZoneMTA would drop it too;
 *   - key = the text before the first ':' (empty without one), trimmed and
 *     lower-cased as JavaScript does on a "binary" string;
 *   - rebuilt: lines joined by CRLF plus an empty line; line breaks inside
 *     a line survive only as folding (followed by SP/TAB), as CRLF.
 * So a message with CRLF line ends comes back byte for byte. */
#include "outbound-private.h"
#include "wd-buffer.h"
#include "wd-result.h"
#include "wd-str.h"

#include <stdlib.h>
#include <string.h>

#define FOLD_WIDTH 76

/* JavaScript's trim() on a "binary" string: the white space code points
   below U+0100 are TAB, LF, VT, FF, CR, SP and NBSP. */
static bool js_space(uint8_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0xa0;
}

/* toLowerCase() of U+0000..U+00FF */
static uint8_t js_lower(uint8_t c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7))
		return (uint8_t)(c + 0x20);
	return c;
}

static char *make_key(const uint8_t *line, size_t len)
{
	const uint8_t *colon = memchr(line, ':', len);
	size_t n = colon != NULL ? (size_t)(colon - line) : 0;
	size_t start = 0;
	while (start < n && js_space(line[start]))
		start++;
	while (n > start && js_space(line[n - 1]))
		n--;
	char *key = malloc(n - start + 1);
	if (key == NULL)
		return NULL;
	for (size_t i = start; i < n; i++)
		key[i - start] = (char)js_lower(line[i]);
	key[n - start] = '\0';
	return key;
}

static int push_line(struct wd_headers *h, const uint8_t *line, size_t len, bool at_top)
{
	if (h->count == h->cap) {
		size_t cap = h->cap == 0 ? 16 : h->cap * 2;
		struct wd_header_line *lines = realloc(h->lines, cap * sizeof(*lines));
		if (lines == NULL)
			return WD_ERROR;
		h->lines = lines;
		h->cap = cap;
	}
	struct wd_header_line hl = { make_key(line, len), malloc(len + 1), len };
	if (hl.key == NULL || hl.line == NULL) {
		free(hl.key);
		free(hl.line);
		return WD_ERROR;
	}
	memcpy(hl.line, line, len);
	hl.line[len] = '\0';
	if (at_top) {
		memmove(h->lines + 1, h->lines, h->count * sizeof(*h->lines));
		h->lines[0] = hl;
	} else {
		h->lines[h->count] = hl;
	}
	h->count++;
	return WD_OK;
}

/* Append a continuation to the last line: "\r\n" + text. */
static int extend_last(struct wd_headers *h, const uint8_t *text, size_t len)
{
	struct wd_header_line *last = &h->lines[h->count - 1];
	uint8_t *line = realloc(last->line, last->len + 2 + len + 1);
	if (line == NULL)
		return WD_ERROR;
	memcpy(line + last->len, "\r\n", 2);
	memcpy(line + last->len + 2, text, len);
	last->len += 2 + len;
	line[last->len] = '\0';
	last->line = line;
	return WD_OK;
}

static size_t header_end(const uint8_t *raw, size_t len, bool *found_r)
{
	for (size_t i = 1; i < len; i++) {
		if (raw[i] != '\n')
			continue;
		if (raw[i - 1] == '\n' || (i >= 2 && raw[i - 1] == '\r' && raw[i - 2] == '\n')) {
			*found_r = true;
			return i + 1;
		}
	}
	*found_r = false;
	return len;
}

int wd__headers_split(const uint8_t *raw, size_t len, struct wd_headers *h,
		      size_t *body_offset_r)
{
	memset(h, 0, sizeof(*h));
	bool found;
	size_t end = header_end(raw, len, &found);
	*body_offset_r = end;
	size_t block = end;
	while (block > 0 && (raw[block - 1] == '\r' || raw[block - 1] == '\n'))
		block--;
	enum { NONE, HEADER, SKIPPED } prev = NONE;
	for (size_t pos = 0; pos < block;) {
		const uint8_t *nl = memchr(raw + pos, '\n', block - pos);
		size_t stop = nl != NULL ? (size_t)(nl - raw) : block;
		size_t line_len = stop - pos;
		if (nl != NULL && line_len > 0 && raw[stop - 1] == '\r')
			line_len--;
		const uint8_t *line = raw + pos;
		int ret = WD_OK;
		if (prev != NONE && line_len > 0 && (line[0] == ' ' || line[0] == '\t')) {
			if (prev == HEADER)
				ret = extend_last(h, line, line_len);
		} else if (prev == NONE && line_len >= 5 &&
			   (wd_mem_eq_nocase(line, "from ", 5) || wd_mem_eq_nocase(line, "post ", 5))) {
			prev = SKIPPED; /* mbox / HTTP request line: not a header */
		} else {
			ret = push_line(h, line, line_len, false);
			prev = HEADER;
		}
		if (ret < 0) {
			wd__headers_free(h);
			return WD_ERROR;
		}
		pos = nl != NULL ? stop + 1 : block;
	}
	return WD_OK;
}

void wd__headers_free(struct wd_headers *h)
{
	for (size_t i = 0; i < h->count; i++) {
		free(h->lines[i].key);
		free(h->lines[i].line);
	}
	free(h->lines);
	memset(h, 0, sizeof(*h));
}

size_t wd__headers_count(const struct wd_headers *h, const char *key)
{
	size_t n = 0;
	for (size_t i = 0; i < h->count; i++)
		n += strcmp(h->lines[i].key, key) == 0;
	return n;
}

const struct wd_header_line *wd__headers_find(const struct wd_headers *h, const char *key,
					      size_t n)
{
	for (size_t i = 0; i < h->count; i++) {
		if (strcmp(h->lines[i].key, key) == 0 && n-- == 0)
			return &h->lines[i];
	}
	return NULL;
}

char *wd__header_value(const struct wd_header_line *hl)
{
	const uint8_t *colon = memchr(hl->line, ':', hl->len);
	size_t start = colon != NULL ? (size_t)(colon - hl->line) + 1 : hl->len;
	char *value = malloc(hl->len - start + 1);
	if (value == NULL)
		return NULL;
	size_t n = 0;
	for (size_t i = start; i < hl->len; i++) {
		if (hl->line[i] != '\r' && hl->line[i] != '\n')
			value[n++] = (char)hl->line[i];
	}
	size_t first = 0;
	while (first < n && js_space((uint8_t)value[first]))
		first++;
	while (n > first && js_space((uint8_t)value[n - 1]))
		n--;
	memmove(value, value + first, n - first);
	value[n - first] = '\0';
	return value;
}

/* libmime's foldLines(key + ": " + value, 76, false) for a value without
   line breaks: cut before the last run of white space inside each 76
   characters, or after the next word when a word is longer than that. */
static int fold(const char *text, struct wd_buffer *out)
{
	size_t len = strlen(text), pos = 0;
	while (pos < len) {
		size_t take = len - pos;
		if (take >= FOLD_WIDTH) {
			take = FOLD_WIDTH;
			const char *w = text + pos;
			/* the last white-space run followed only by non-space */
			size_t tail = take;
			while (tail > 0 && w[tail - 1] != ' ' && w[tail - 1] != '\t')
				tail--;
			size_t run = tail;
			while (run > 0 && (w[run - 1] == ' ' || w[run - 1] == '\t'))
				run--;
			if (tail > 0 && run > 0) {
				take = run;
			} else {
				/* no usable break: extend to the end of the current word */
				size_t more = pos + take;
				while (more < len && text[more] != ' ' && text[more] != '\t')
					more++;
				take = more - pos;
			}
		}
		if (wd_buffer_append(out, text + pos, take) < 0)
			return WD_ERROR;
		pos += take;
		if (pos < len && wd_buffer_append(out, "\r\n", 2) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

int wd__headers_prepend(struct wd_headers *h, const char *key, const char *value)
{
	struct wd_buffer text = WD_BUFFER_INIT, folded = WD_BUFFER_INIT;
	int ret = WD_ERROR;
	if (wd_buffer_append_str(&text, key) < 0 || wd_buffer_append(&text, ": ", 2) < 0)
		goto out;
	for (const char *p = value; *p != '\0'; p++) {
		if (*p != '\r' && *p != '\n' && wd_buffer_append(&text, p, 1) < 0)
			goto out;
	}
	if (wd_buffer_append(&text, "", 1) < 0 || fold((const char *)wd_buffer_bytes(&text), &folded) < 0)
		goto out;
	ret = push_line(h, wd_buffer_bytes(&folded), folded.len, true);
out:
	wd_buffer_release(&text);
	wd_buffer_release(&folded);
	return ret;
}

void wd__headers_remove(struct wd_headers *h, const char *key)
{
	size_t kept = 0;
	for (size_t i = 0; i < h->count; i++) {
		if (strcmp(h->lines[i].key, key) == 0) {
			free(h->lines[i].key);
			free(h->lines[i].line);
		} else {
			h->lines[kept++] = h->lines[i];
		}
	}
	h->count = kept;
}

/* mailsplit's _normalizeLineBreaks(line, "\r\n") */
static int append_normalized(struct wd_buffer *out, const uint8_t *line, size_t len)
{
	size_t i = 0;
	while (i < len && (line[i] == '\r' || line[i] == '\n' || line[i] == ' ' || line[i] == '\t'))
		i++;
	while (i < len) {
		size_t brk = 0;
		if (line[i] == '\r' && i + 1 < len && line[i + 1] == '\n')
			brk = 2;
		else if (line[i] == '\r' || line[i] == '\n')
			brk = 1;
		if (brk == 0) {
			size_t run = i;
			while (run < len && line[run] != '\r' && line[run] != '\n')
				run++;
			if (wd_buffer_append(out, line + i, run - i) < 0)
				return WD_ERROR;
			i = run;
			continue;
		}
		bool bare_cr = brk == 1 && line[i] == '\r';
		bool folding = i + brk < len && (line[i + brk] == ' ' || line[i + brk] == '\t');
		if (!bare_cr && folding && wd_buffer_append(out, "\r\n", 2) < 0)
			return WD_ERROR;
		i += brk;
	}
	return WD_OK;
}

int wd__headers_build(const struct wd_headers *h, struct wd_buffer *out)
{
	for (size_t i = 0; i < h->count; i++) {
		if ((i > 0 && wd_buffer_append(out, "\r\n", 2) < 0) ||
		    append_normalized(out, h->lines[i].line, h->lines[i].len) < 0)
			return WD_ERROR;
	}
	return wd_buffer_append(out, "\r\n\r\n", 4);
}

/* every byte as one code point, UTF-8 encoded (at most 2 bytes each) */
static char *binary_string(const uint8_t *bytes, size_t len)
{
	char *s = malloc(2 * len + 1), *p = s;
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (bytes[i] < 0x80) {
			*p++ = (char)bytes[i];
		} else {
			*p++ = (char)(0xc0 | bytes[i] >> 6);
			*p++ = (char)(0x80 | (bytes[i] & 0x3f));
		}
	}
	*p = '\0';
	return s;
}

void wd__headers_append_bson(const struct wd_headers *h, bson_t *parent, const char *name)
{
	bson_t array, doc;
	bson_append_array_begin(parent, name, -1, &array);
	for (size_t i = 0; i < h->count; i++) {
		char index[16];
		const char *key;
		bson_uint32_to_string((uint32_t)i, &key, index, sizeof(index));
		char *k = binary_string((const uint8_t *)h->lines[i].key, strlen(h->lines[i].key));
		char *l = binary_string(h->lines[i].line, h->lines[i].len);
		bson_append_document_begin(&array, key, -1, &doc);
		BSON_APPEND_UTF8(&doc, "key", k != NULL ? k : "");
		BSON_APPEND_UTF8(&doc, "line", l != NULL ? l : "");
		bson_append_document_end(&array, &doc);
		free(k);
		free(l);
	}
	bson_append_array_end(parent, &array);
}

/* A Node "binary" string back to bytes: every code point ≤ U+00FF is one
   byte; a string with larger code points is kept as its UTF-8. */
static uint8_t *from_binary_string(const char *s, size_t len, size_t *len_r)
{
	uint8_t *out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		uint8_t c = (uint8_t)s[i];
		if (c < 0x80) {
			out[n++] = c;
			i++;
		} else if ((c == 0xc2 || c == 0xc3) && i + 1 < len && ((uint8_t)s[i + 1] & 0xc0) == 0x80) {
			out[n++] = (uint8_t)((c & 0x03) << 6 | ((uint8_t)s[i + 1] & 0x3f));
			i += 2;
		} else {
			memcpy(out, s, len); /* not a binary string: keep the UTF-8 */
			n = len;
			break;
		}
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

int wd__headers_from_bson(const bson_t *array, struct wd_headers *h, char **error_r)
{
	memset(h, 0, sizeof(*h));
	bson_iter_t it;
	if (!bson_iter_init(&it, array)) {
		*error_r = wd__outbound_error("headers: not an array");
		return WD_ERROR;
	}
	while (bson_iter_next(&it)) {
		bson_iter_t line_it;
		uint32_t line_len = 0;
		const char *line = NULL;
		if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &line_it) &&
		    bson_iter_find(&line_it, "line") && BSON_ITER_HOLDS_UTF8(&line_it))
			line = bson_iter_utf8(&line_it, &line_len);
		if (line == NULL) {
			wd__headers_free(h);
			*error_r = wd__outbound_error("headers: an element without a line");
			return WD_ERROR;
		}
		size_t n;
		uint8_t *bytes = from_binary_string(line, line_len, &n);
		int ret = bytes != NULL ? push_line(h, bytes, n, false) : WD_ERROR;
		free(bytes);
		if (ret < 0) {
			wd__headers_free(h);
			*error_r = wd__outbound_error("out of memory");
			return WD_ERROR;
		}
	}
	return WD_OK;
}
