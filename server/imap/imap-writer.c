/* Formatting of responses (imap-writer.h). Everything here only appends to a
 * struct wd_buffer, so it is unit-tested without a connection. */
#include "imap-writer.h"

#include "imap-utf7.h"
#include "wd-arena.h"
#include "wd-result.h"
#include "wd-str.h"

#include <string.h>

bool wd_imap_string_is_quotable(const char *str, size_t len, bool utf8)
{
	if (len > WD_IMAP_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c == '\0' || c == '\r' || c == '\n')
			return false;
		if (c >= 0x80 && !utf8)
			return false;
	}
	/* 8-bit text in a quoted string must be valid UTF-8 (RFC 6855 §3). */
	return !utf8 || wd_imap_utf8_is_valid((const uint8_t *)str, len);
}

int wd_imap_write_string(struct wd_buffer *out, const char *str, size_t len, bool utf8)
{
	if (!wd_imap_string_is_quotable(str, len, utf8)) {
		if (wd_buffer_printf(out, "{%zu}\r\n", len) < 0)
			return WD_ERROR;
		return wd_buffer_append(out, str, len);
	}
	uint8_t *p = wd_buffer_reserve(out, len * 2 + 2);
	if (p == NULL)
		return WD_ERROR;
	size_t n = 0;
	p[n++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			p[n++] = '\\';
		p[n++] = (uint8_t)str[i];
	}
	p[n++] = '"';
	wd_buffer_commit(out, n);
	return WD_OK;
}

int wd_imap_write_nstring(struct wd_buffer *out, const char *str, size_t len, bool utf8)
{
	if (str == NULL)
		return wd_buffer_append_str(out, "NIL");
	return wd_imap_write_string(out, str, len, utf8);
}

int wd_imap_write_mailbox(struct wd_buffer *out, const char *utf8_name, bool utf8)
{
	size_t len = strlen(utf8_name);
	if (wd_imap_utf7_is_plain(utf8_name, len))
		return wd_imap_write_string(out, utf8_name, len, utf8);
	struct wd_arena *arena = wd_arena_create(0);
	if (arena == NULL)
		return WD_ERROR;
	const char *name, *error;
	int ret = wd_imap_mailbox_name_encode(arena, utf8_name, len, utf8, &name, &error);
	if (ret == WD_OK)
		ret = wd_imap_write_string(out, name, strlen(name), utf8);
	wd_arena_destroy(&arena);
	return ret;
}

static int append_sanitised(struct wd_buffer *out, const char *text)
{
	size_t len = strlen(text);
	uint8_t *p = wd_buffer_reserve(out, len);
	if (p == NULL)
		return WD_ERROR;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		p[i] = (uint8_t)((c == '\r' || c == '\n') ? ' ' : c);
	}
	wd_buffer_commit(out, len);
	return WD_OK;
}

int wd_imap_write_status(struct wd_buffer *out, const char *tag, const char *status,
			 const char *code, const char *text)
{
	if (wd_buffer_printf(out, "%s %s ", tag != NULL ? tag : "*", status) < 0)
		return WD_ERROR;
	if (code != NULL && wd_buffer_printf(out, "[%s] ", code) < 0)
		return WD_ERROR;
	if (append_sanitised(out, text) < 0)
		return WD_ERROR;
	return wd_buffer_append(out, "\r\n", 2);
}
