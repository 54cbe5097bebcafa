/* JavaScript string behaviour on UTF-8 text (js-string.h).
 *
 * WildDuck's stored strings are JavaScript strings built from raw bytes.
 * Reproducing them in C comes down to three rules, kept here so that every
 * file that mimics WildDuck applies them the same way:
 *
 * - Node decodes bytes as UTF-8 the WHATWG way: each maximal subpart of an
 *   ill-formed sequence (a lead byte and the continuation bytes that may
 *   follow it) is one U+FFFD, so E2 82 41 is U+FFFD 'A' while F0 80 is two
 *   U+FFFD (0x80 cannot follow F0). Surrogate encodings (ED A0..) and
 *   overlong forms are ill-formed.
 * - \s and trim() know WhiteSpace (TAB, VT, FF, SP, NBSP, ZWNBSP and the
 *   Zs category) and LineTerminator (LF, CR, LS, PS); not U+0085 nor the
 *   C0 separators 0x1C-0x1F.
 * - WildDuck collapses a header value's folds with /\s*\r?\n\s*\/g → ' ',
 *   which replaces every whitespace run that holds a line feed. */
#include "js-string.h"

#include <string.h>

size_t wd__js_utf8_sequence(const uint8_t *s, size_t len, size_t *bad_r)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		*bad_r = 1;
		return 0;
	}
	for (size_t k = 1; k < n; k++) {
		if (k >= len || s[k] < lo || s[k] > hi) {
			*bad_r = k;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

uint32_t wd__js_utf8_decode(const uint8_t *s, size_t len, size_t *n_r)
{
	size_t bad, n = wd__js_utf8_sequence(s, len, &bad);
	if (n <= 1) {
		*n_r = 1;
		return s[0];
	}
	uint32_t cp = s[0] & (0x7f >> n);
	for (size_t k = 1; k < n; k++)
		cp = (cp << 6) | (s[k] & 0x3f);
	*n_r = n;
	return cp;
}

size_t wd__js_utf8_from_bytes(char *out, const void *bytes, size_t len, bool nul_to_fffd)
{
	const uint8_t *s = bytes;
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		size_t bad = 0, seq;
		if (s[i] == '\0' && nul_to_fffd)
			seq = 0;
		else
			seq = wd__js_utf8_sequence(s + i, len - i, &bad);
		if (seq == 0) {
			memcpy(out + n, "\xef\xbf\xbd", 3);
			n += 3;
			i += bad > 0 ? bad : 1;
		} else {
			memcpy(out + n, s + i, seq);
			n += seq;
			i += seq;
		}
	}
	out[n] = '\0';
	return n;
}

bool wd__js_space_cp(uint32_t cp)
{
	return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || cp == 0xa0 || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
	       cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

size_t wd__js_space_at(struct wd_js_text t, size_t i)
{
	if (i >= t.len)
		return 0;
	uint8_t c = (uint8_t)t.s[i];
	if (c < 0x80) /* fast path */
		return c == ' ' || (c >= 0x09 && c <= 0x0d) ? 1 : 0;
	size_t n;
	uint32_t cp = wd__js_utf8_decode((const uint8_t *)t.s + i, t.len - i, &n);
	return wd__js_space_cp(cp) ? n : 0;
}

struct wd_js_text wd__js_trim(struct wd_js_text t)
{
	size_t n;
	while (t.len > 0 && (n = wd__js_space_at(t, 0)) > 0) {
		t.s += n;
		t.len -= n;
	}
	while (t.len > 0) {
		/* start of the last character */
		size_t start = t.len - 1;
		while (start > 0 && t.len - start < 4 && ((uint8_t)t.s[start] & 0xc0) == 0x80)
			start--;
		n = wd__js_space_at(t, start);
		if (n == 0 || start + n != t.len)
			break;
		t.len = start;
	}
	return t;
}

size_t wd__js_collapse_folds(char *s, size_t len)
{
	if (memchr(s, '\n', len) == NULL)
		return len;
	struct wd_js_text t = { s, len };
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		size_t run = i, sp;
		bool newline = false;
		while ((sp = wd__js_space_at(t, run)) > 0) {
			newline = newline || s[run] == '\n';
			run += sp;
		}
		if (run > i) {
			if (newline) {
				s[n++] = ' ';
			} else {
				memmove(s + n, s + i, run - i);
				n += run - i;
			}
			i = run;
		} else {
			/* the whole character: 0xA0 is also a continuation byte */
			size_t bad, seq;
			seq = wd__js_utf8_sequence((const uint8_t *)s + i, len - i, &bad);
			if (seq == 0)
				seq = 1;
			memmove(s + n, s + i, seq);
			n += seq;
			i += seq;
		}
	}
	return n;
}
