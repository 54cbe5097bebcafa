#ifndef WD_LMTP_COMMAND_H
#define WD_LMTP_COMMAND_H

/* What an LMTP command line says (RFC 5321 §4.1, RFC 2033, RFC 1870,
 * RFC 6152, RFC 6531): the verb, and the paths and parameters of MAIL and
 * RCPT. Pure functions over one line (lmtp-parser.h frames the lines), so
 * the grammar is tested without a connection.
 *
 * Paths follow RFC 5321 §4.1.2 with the usual tolerance of MTAs: spaces
 * between "FROM:" and "<", and dots anywhere in a local part (real
 * addresses have "a..b" and trailing dots; resolution drops dots anyway)
 * are accepted; a source route "@a,@b:" is read and dropped (§C). A path
 * is at most 256 octets with its brackets (§4.5.3.1.3). Non-ASCII
 * addresses need the SMTPUTF8 parameter on MAIL (RFC 6531 §3.4) and must
 * be valid UTF-8. RCPT accepts "<postmaster>" without a domain (§4.5.1).
 *
 * Errors come back as the reply to send (code, enhanced status, text),
 * always with static text. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WD_LMTP_VERB_MAX 16
#define WD_LMTP_PATH_MAX 256

/* A reply for a command that is refused as written. */
struct wd_lmtp_error {
	unsigned code;
	const char *status; /* enhanced status code (RFC 3463) */
	const char *text;
};

/* Split a command line into its verb (upper-cased into verb_r, at most
   WD_LMTP_VERB_MAX - 1 letters) and arguments (the rest after the spaces
   that follow the verb, trailing spaces removed). WD_ERROR (500 5.5.2) for
   an empty line, control characters (NUL, a CR inside the line) or a verb
   that is not a word. */
int wd_lmtp_command_split(const uint8_t *line, size_t len, char verb_r[WD_LMTP_VERB_MAX],
			  const char **args_r, size_t *args_len_r, struct wd_lmtp_error *error_r);

enum wd_lmtp_body {
	WD_LMTP_BODY_UNSET,
	WD_LMTP_BODY_7BIT,
	WD_LMTP_BODY_8BITMIME,
};

/* MAIL FROM:<reverse-path> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8] */
struct wd_lmtp_mail {
	char address[WD_LMTP_PATH_MAX + 1]; /* without <> and source route; "" for <> */
	bool has_size;
	uint64_t size;
	enum wd_lmtp_body body;
	bool smtputf8;
};

/* RCPT TO:<forward-path> (no parameters are supported) */
struct wd_lmtp_rcpt {
	char address[WD_LMTP_PATH_MAX + 1];
};

/* `args` is what follows the verb. WD_OK, or WD_ERROR with the reply:
   501 5.5.4 / 501 5.1.7 / 501 5.1.3 syntax, 555 5.5.4 unknown parameter,
   553 5.6.7 non-ASCII without SMTPUTF8. */
int wd_lmtp_parse_mail(const char *args, size_t len, struct wd_lmtp_mail *mail_r,
		       struct wd_lmtp_error *error_r);
/* `smtputf8`: the transaction's MAIL had SMTPUTF8. */
int wd_lmtp_parse_rcpt(const char *args, size_t len, bool smtputf8, struct wd_lmtp_rcpt *rcpt_r,
		       struct wd_lmtp_error *error_r);

/* Whether s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or
   code points past U+10FFFF). */
bool wd_lmtp_utf8_valid(const uint8_t *s, size_t len);

#endif
