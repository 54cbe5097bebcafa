#ifndef WD_IMAP_WRITER_H
#define WD_IMAP_WRITER_H

/* Response writing (STYLE.md engine design, point 8), in two layers.
 *
 * The formatting helpers are sans-I/O: they append protocol text to a
 * struct wd_buffer and choose the wire form of a string themselves: an atom
 * is never guessed (clients differ on what they accept), a string goes out
 * quoted when that is possible ("\\" and "\"" escaped) and as a literal
 * {n} when it holds CR, LF, NUL, is long, or has 8-bit bytes in a session
 * without UTF8=ACCEPT. Mailbox names are stored in UTF-8 and written as
 * modified UTF-7 unless the session enabled UTF8=ACCEPT (RFC 6855 §3).
 *
 * The session helpers (wd_imap_session_*) in imap-session.h send such a
 * buffer through the connection, whose high/low watermarks make the command
 * park in WAIT_OUTPUT. */

#include "wd-buffer.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest string sent quoted; longer ones are literals. */
#define WD_IMAP_QUOTED_MAX 1024

/* A string (RFC 3501 "string"): quoted or literal as above. utf8: the session
   may receive 8-bit text in quoted strings (UTF8=ACCEPT). */
int wd_imap_write_string(struct wd_buffer *out, const char *str, size_t len, bool utf8);
/* nstring: NIL for NULL. */
int wd_imap_write_nstring(struct wd_buffer *out, const char *str, size_t len, bool utf8);
/* A mailbox name stored in UTF-8: "INBOX" for INBOX, else encoded for the
   session (mUTF-7 unless utf8) and written as a string. WD_ERROR when the
   name cannot be encoded (invalid UTF-8 in the database). */
int wd_imap_write_mailbox(struct wd_buffer *out, const char *utf8_name, bool utf8);
/* Whether a string would go out quoted (no literal needed). */
bool wd_imap_string_is_quotable(const char *str, size_t len, bool utf8);

/* A whole response line "<tag> <status> [<code>] <text>\r\n"; tag NULL or
   "*" for untagged; code NULL for none. Text is sanitised (CR, LF and NUL
   become spaces) because it may quote client input or storage errors. */
int wd_imap_write_status(struct wd_buffer *out, const char *tag, const char *status,
			 const char *code, const char *text);

#endif
