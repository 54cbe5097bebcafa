#ifndef JS_STRING_H
#define JS_STRING_H

/* JavaScript string behaviour on UTF-8 text, for code that must reproduce
 * what WildDuck (Node.js) stores: Node's UTF-8 decoder, JavaScript's
 * whitespace class (\s, String.prototype.trim) and the fold collapsing of
 * WildDuck's header parser. Private to libwdstore (js-string.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A piece of text, not necessarily NUL-terminated. */
struct wd_js_text {
	const char *s;
	size_t len;
};

/* Length of the well-formed UTF-8 sequence at s (1 for ASCII), or 0 with
   *bad_r set to the length of its maximal ill-formed prefix (at least 1),
   which Node's decoder turns into one U+FFFD. */
size_t wd__js_utf8_sequence(const uint8_t *s, size_t len, size_t *bad_r);

/* The code point at s and the length of its sequence; an ill-formed byte
   is returned as itself with length 1. */
uint32_t wd__js_utf8_decode(const uint8_t *s, size_t len, size_t *n_r);

/* Buffer.from(bytes).toString(): bytes read as UTF-8 into out, which has
   room for 3 * len + 1 bytes; each maximal ill-formed subsequence becomes
   U+FFFD, and so does NUL when nul_to_fffd. Returns the length written
   (out is NUL-terminated). */
size_t wd__js_utf8_from_bytes(char *out, const void *bytes, size_t len, bool nul_to_fffd);

/* JavaScript's WhiteSpace and LineTerminator code points (\s, trim()). */
bool wd__js_space_cp(uint32_t cp);

/* Length of the \s character at t.s[i] (0 when there is none or i is past
   the end). The text is well-formed UTF-8. */
size_t wd__js_space_at(struct wd_js_text t, size_t i);

/* String.prototype.trim(). */
struct wd_js_text wd__js_trim(struct wd_js_text t);

/* value.replace(/\s*\r?\n\s*\/g, ' ') in place: every run of \s characters
   that holds a line feed becomes one space. Returns the new length. */
size_t wd__js_collapse_folds(char *s, size_t len);

#endif
