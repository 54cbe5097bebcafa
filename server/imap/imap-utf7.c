/* Modified UTF-7 ⇄ UTF-8 (RFC 3501 §5.1.3), strict in both directions.
 *
 * Printable ASCII except '&' stands for itself; "&-" is '&'; anything else
 * is UTF-16BE in base64 (with ',' for '/', no padding) between '&' and '-'.
 * Canonical form is enforced on input (see the header) because mailbox
 * names are compared byte for byte after conversion: two spellings of one
 * name would make two mailboxes. Conversions write to a scratch area first
 * and append to the caller's buffer only on success. */
#include "imap-utf7.h"

#include "wd-result.h"

#include <string.h>

static const char utf7_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(uint8_t c)
{
	const char *pos = c == 0 ? NULL : memchr(utf7_b64, c, 64);
	return pos == NULL ? -1 : (int)(pos - utf7_b64);
}

int wd_imap_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp_r)
{
	uint32_t cp, min;
	size_t need, i;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2; cp = s[0] & 0x1f; min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3; cp = s[0] & 0x0f; min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4; cp = s[0] & 0x07; min = 0x10000;
	} else {
		return -1;
	}
	for (i = 1; i < need; i++) {
		/* Truncated: "incomplete", as what we have can still become
		   valid (the second byte, checked below, decides overlong,
		   surrogate and too-large forms). */
		if (i >= len)
			break;
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
		if (i == 1) {
			/* Checks that only need the first two bytes. */
			uint32_t top = cp << (6 * (need - 2));
			if (need == 3 && (top < 0x800 || (top >= 0xd800 && top <= 0xdfff)))
				return -1;
			if (need == 4 && (top < 0x10000 || top > 0x10ffff))
				return -1;
		}
	}
	if (i < need)
		return 0;
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*cp_r = cp;
	return (int)need;
}

bool wd_imap_utf8_is_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		int n = wd_imap_utf8_decode(s + i, len - i, &cp);
		if (n <= 0)
			return false;
		i += (size_t)n;
	}
	return true;
}

bool wd_imap_utf7_is_plain(const char *src, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)src[i];
		if (c < 0x20 || c > 0x7e || c == '&')
			return false;
	}
	return true;
}

/* Base64 writer state for one shift sequence. */
struct b64_out {
	struct wd_buffer *out;
	uint32_t bits;
	unsigned nbits;
	bool failed;
};

static void out_byte(struct b64_out *b, char c)
{
	if (wd_buffer_append(b->out, &c, 1) < 0)
		b->failed = true;
}

static void b64_put16(struct b64_out *b, uint16_t unit)
{
	b->bits = (b->bits << 16) | unit;
	b->nbits += 16;
	while (b->nbits >= 6) {
		b->nbits -= 6;
		out_byte(b, utf7_b64[(b->bits >> b->nbits) & 0x3f]);
	}
}

static void b64_close(struct b64_out *b)
{
	if (b->nbits > 0)
		out_byte(b, utf7_b64[(b->bits << (6 - b->nbits)) & 0x3f]);
	b->bits = 0;
	b->nbits = 0;
	out_byte(b, '-');
}

int wd_imap_utf8_to_utf7(const char *src, size_t len, struct wd_buffer *out,
			 const char **error_r)
{
	const uint8_t *s = (const uint8_t *)src;
	size_t orig_len = out->len, i = 0;
	struct b64_out b = { .out = out };
	bool shifted = false;

	while (i < len) {
		uint32_t cp;
		int n = wd_imap_utf8_decode(s + i, len - i, &cp);
		if (n <= 0) {
			*error_r = "Invalid UTF-8 in mailbox name";
			goto fail;
		}
		if (cp == 0) {
			*error_r = "NUL in mailbox name";
			goto fail;
		}
		i += (size_t)n;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (shifted) {
				b64_close(&b);
				shifted = false;
			}
			out_byte(&b, (char)cp);
			if (cp == '&')
				out_byte(&b, '-');
			continue;
		}
		if (!shifted) {
			out_byte(&b, '&');
			shifted = true;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			b64_put16(&b, (uint16_t)(0xd800 | (cp >> 10)));
			b64_put16(&b, (uint16_t)(0xdc00 | (cp & 0x3ff)));
		} else {
			b64_put16(&b, (uint16_t)cp);
		}
	}
	if (shifted)
		b64_close(&b);
	if (b.failed) {
		*error_r = "Mailbox name too long";
		goto fail;
	}
	return WD_OK;
fail:
	out->len = orig_len;
	return WD_ERROR;
}

static void put_utf8(struct wd_buffer *out, uint32_t cp, bool *failed)
{
	uint8_t tmp[4];
	size_t n;

	if (cp < 0x80) {
		tmp[0] = (uint8_t)cp; n = 1;
	} else if (cp < 0x800) {
		tmp[0] = (uint8_t)(0xc0 | (cp >> 6));
		tmp[1] = (uint8_t)(0x80 | (cp & 0x3f)); n = 2;
	} else if (cp < 0x10000) {
		tmp[0] = (uint8_t)(0xe0 | (cp >> 12));
		tmp[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		tmp[2] = (uint8_t)(0x80 | (cp & 0x3f)); n = 3;
	} else {
		tmp[0] = (uint8_t)(0xf0 | (cp >> 18));
		tmp[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		tmp[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		tmp[3] = (uint8_t)(0x80 | (cp & 0x3f)); n = 4;
	}
	if (out != NULL && wd_buffer_append(out, tmp, n) < 0)
		*failed = true;
}

/* Decode one shift sequence starting after '&' at s[*pos]; *pos ends after
   the closing '-'. `out` may be NULL (validation only). */
static int decode_shift(const uint8_t *s, size_t len, size_t *pos, struct wd_buffer *out,
			bool *failed, const char **error_r)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	size_t i = *pos;

	for (;; i++) {
		if (i == len) {
			*error_r = "Unterminated modified UTF-7 shift";
			return WD_ERROR;
		}
		if (s[i] == '-')
			break;
		int v = b64_value(s[i]);
		if (v < 0) {
			*error_r = "Invalid character in modified UTF-7 shift";
			return WD_ERROR;
		}
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff) {
				*error_r = "Unpaired UTF-16 surrogate";
				return WD_ERROR;
			}
			put_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00), failed);
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			*error_r = "Unpaired UTF-16 surrogate";
			return WD_ERROR;
		} else if (unit == 0 || (unit >= 0x20 && unit <= 0x7e)) {
			*error_r = "Non-canonical modified UTF-7 (encoded ASCII)";
			return WD_ERROR;
		} else {
			put_utf8(out, unit, failed);
		}
	}
	if (high != 0) {
		*error_r = "Unpaired UTF-16 surrogate";
		return WD_ERROR;
	}
	if (nbits >= 6 || bits != 0) {
		*error_r = "Non-canonical modified UTF-7 (leftover bits)";
		return WD_ERROR;
	}
	*pos = i + 1;
	return WD_OK;
}

static int utf7_decode(const char *src, size_t len, struct wd_buffer *out, const char **error_r)
{
	const uint8_t *s = (const uint8_t *)src;
	size_t orig_len = out != NULL ? out->len : 0, i = 0, shift_end = SIZE_MAX;
	bool failed = false;

	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x20 || c > 0x7e) {
			*error_r = "Mailbox name is not 7-bit modified UTF-7";
			goto fail;
		}
		if (c != '&') {
			if (out != NULL && wd_buffer_append(out, &c, 1) < 0)
				failed = true;
			i++;
			continue;
		}
		if (i + 1 < len && s[i + 1] == '-') {
			if (out != NULL && wd_buffer_append(out, "&", 1) < 0)
				failed = true;
			i += 2;
			continue;
		}
		if (shift_end == i) {
			*error_r = "Non-canonical modified UTF-7 (null shift)";
			goto fail;
		}
		i++;
		if (decode_shift(s, len, &i, out, &failed, error_r) < 0)
			goto fail;
		shift_end = i;
	}
	if (failed) {
		*error_r = "Mailbox name too long";
		goto fail;
	}
	return WD_OK;
fail:
	if (out != NULL)
		out->len = orig_len;
	return WD_ERROR;
}

int wd_imap_utf7_to_utf8(const char *src, size_t len, struct wd_buffer *out,
			 const char **error_r)
{
	return utf7_decode(src, len, out, error_r);
}

bool wd_imap_utf7_is_valid(const char *src, size_t len)
{
	const char *error;
	return utf7_decode(src, len, NULL, &error) == WD_OK;
}

typedef int convert_fn(const char *src, size_t len, struct wd_buffer *out, const char **error_r);

/* Run `convert` (or copy after validating UTF-8 when it is NULL) into a
   NUL-terminated arena string. */
static int mailbox_convert(struct wd_arena *arena, const char *name, size_t len,
			   convert_fn *convert, const char **name_r, const char **error_r)
{
	struct wd_buffer buf = WD_BUFFER_INIT;
	char *copy;

	if (convert == NULL) {
		if (!wd_imap_utf8_is_valid((const uint8_t *)name, len) ||
		    memchr(name, 0, len) != NULL) {
			*error_r = "Mailbox name is not valid UTF-8";
			return WD_ERROR;
		}
		copy = wd_arena_strndup(arena, name, len);
	} else {
		if (convert(name, len, &buf, error_r) < 0) {
			wd_buffer_release(&buf);
			return WD_ERROR;
		}
		copy = wd_arena_strndup(arena, (const char *)wd_buffer_bytes(&buf), buf.len);
		wd_buffer_release(&buf);
	}
	if (copy == NULL) {
		*error_r = "Out of memory";
		return WD_ERROR;
	}
	*name_r = copy;
	return WD_OK;
}

int wd_imap_mailbox_name_decode(struct wd_arena *arena, const char *name, size_t len,
				bool utf8_accept, const char **name_r, const char **error_r)
{
	return mailbox_convert(arena, name, len, utf8_accept ? NULL : wd_imap_utf7_to_utf8,
			       name_r, error_r);
}

int wd_imap_mailbox_name_encode(struct wd_arena *arena, const char *name, size_t len,
				bool utf8_accept, const char **name_r, const char **error_r)
{
	return mailbox_convert(arena, name, len, utf8_accept ? NULL : wd_imap_utf8_to_utf7,
			       name_r, error_r);
}
