#ifndef WD_IMAP_UTF7_H
#define WD_IMAP_UTF7_H

/* Modified UTF-7 mailbox names (RFC 3501 §5.1.3) and strict UTF-8.
 *
 * Both directions are strict, so that one mailbox has exactly one spelling:
 * decoding rejects bytes outside printable ASCII, an unterminated shift,
 * base64 that encodes a printable ASCII character, a null shift ("-&" right
 * after a shift), leftover bits that are not zero or not a whole UTF-16
 * unit, unpaired surrogates and U+0000. Encoding rejects invalid UTF-8
 * (overlong forms, surrogates, code points above U+10FFFF, truncated
 * sequences) and U+0000. Hence utf7_to_utf8(utf8_to_utf7(x)) == x for every
 * accepted x, and the other way round. */

#include "wd-arena.h"
#include "wd-buffer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode one UTF-8 character at s[0..len). Returns its length (1..4) and
   sets *cp_r; 0 when s ends inside a character that could still become
   valid; -1 when the bytes are invalid (overlong, surrogate, > U+10FFFF,
   stray continuation byte). */
int wd_imap_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp_r);

/* Whether s[0..len) is entirely valid UTF-8 (NUL allowed). */
bool wd_imap_utf8_is_valid(const uint8_t *s, size_t len);

/* Append the conversion of src[0..len) to `out` (not NUL-terminated).
   WD_OK, or WD_ERROR with *error_r (static text) and `out` unchanged. */
int wd_imap_utf8_to_utf7(const char *src, size_t len, struct wd_buffer *out,
			 const char **error_r);
int wd_imap_utf7_to_utf8(const char *src, size_t len, struct wd_buffer *out,
			 const char **error_r);

/* Whether src[0..len) is canonical modified UTF-7 (what utf7_to_utf8 accepts). */
bool wd_imap_utf7_is_valid(const char *src, size_t len);

/* Whether a name can be sent as is: only printable ASCII without '&'
   (then its mUTF-7 and UTF-8 forms are the same bytes). */
bool wd_imap_utf7_is_plain(const char *src, size_t len);

/* Mailbox names as the client sends them ⇄ the UTF-8 names storage keeps.
   Without UTF8=ACCEPT a name is modified UTF-7 and is decoded strictly;
   with it (RFC 6855 §3) the name is UTF-8 as sent and must be valid. The
   result is NUL-terminated in `arena` (*name_r). NUL bytes are refused. */
int wd_imap_mailbox_name_decode(struct wd_arena *arena, const char *name, size_t len,
				bool utf8_accept, const char **name_r, const char **error_r);
int wd_imap_mailbox_name_encode(struct wd_arena *arena, const char *name, size_t len,
				bool utf8_accept, const char **name_r, const char **error_r);

#endif
