#ifndef WD_AUTH_TOTP_H
#define WD_AUTH_TOTP_H

/* TOTP second factor as WildDuck does it (reference §4.14 "2FA", §2.1):
 * a 20-byte random secret in base32, RFC 6238 with SHA-1, 6 digits, 30 s
 * steps, accepted within ±WD_AUTH_TOTP_WINDOW_SIZE steps; codes computed by
 * liboath. The seed is stored in `users.pendingSeed` during setup (valid
 * 6 h) and in `users.seed` once a code confirmed it, encrypted with
 * `totp.secret` when one is configured (wd-auth-secret.h). A code that
 * passed a check is remembered 180 s in Redis `totp:<user>:<code>`; failed
 * checks count under `auth_user:totp:<user>`.
 *
 * IMAP, POP3 and SMTP never ask for a code: a user with 2FA logs in there
 * with an application-specific password (wd-auth-login.h). */

#include "wd-auth.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define WD_AUTH_TOTP_SEED_LEN 32  /* base32 characters of a 20-byte secret */
#define WD_AUTH_TOTP_USED_TTL (WD_AUTH_TOTP_WINDOW_SIZE * 30)

/* ---- pure ---- */

/* A new random seed (base32, NUL-terminated) into seed[WD_AUTH_TOTP_SEED_LEN + 1]. */
int wd_auth_totp_seed_new(char *seed, const char **error_r);
/* The 6-digit code of a base32 seed at a time (for tests and tools). */
int wd_auth_totp_code(const char *seed, time_t when, char code[7], const char **error_r);
/* Whether `code` (6 digits, spaces ignored) is valid for the seed at `now`
   within ±window steps. -1 only for an unusable seed. */
int wd_auth_totp_verify(const char *seed, const char *code, time_t now, unsigned window,
			bool *valid_r, const char **error_r);
/* otpauth://totp/<label>?secret=<seed>&issuer=<issuer> with label and
   issuer percent-encoded; issuer NULL: "WildDuck". malloc'd. */
char *wd_auth_totp_url(const char *seed, const char *label, const char *issuer);

/* ---- on a user (blocking; 0 or a negative enum wd_auth_error_kind) ---- */

struct wd_auth_totp_setup {
	char seed[WD_AUTH_TOTP_SEED_LEN + 1]; /* show to the user once */
	char *url;                            /* otpauth URL for a QR code, malloc'd */
};
/* Starts enrolment: a new pendingSeed (encrypted when configured) and
   pendingSeedChanged = now. WD_AUTH_ERR_STATE when TOTP is already on.
   label NULL: the username. Free setup->url. */
int wd_auth_totp_setup(struct wd_auth *auth, const bson_oid_t *user, const char *label,
		       const char *issuer, struct wd_auth_totp_setup *setup, char **error_r);
/* Confirms enrolment with a code of the pending seed: seed takes the
   pending value, "totp" joins enabled2fa, authVersion is bumped when it is
   the first 2FA method (and other sessions are told to log out).
   *enabled_r false for a wrong code (logged as 'enable 2fa totp' fail).
   WD_AUTH_ERR_STATE when TOTP is on already or no enrolment is pending (or
   it is older than 6 h). */
int wd_auth_totp_enable(struct wd_auth *auth, const bson_oid_t *user, const char *code,
			const struct wd_auth_meta *meta, bool *enabled_r, char **error_r);
/* Turns TOTP off (seed and pendingSeed cleared). WD_AUTH_ERR_STATE when it
   was not on. */
int wd_auth_totp_disable(struct wd_auth *auth, const bson_oid_t *user,
			 const struct wd_auth_meta *meta, char **error_r);
/* Checks a code for a user with TOTP on ('check 2fa totp' logged).
   WD_AUTH_ERR_RATELIMITED after too many failures (*retry_r seconds, may be
   NULL) or for a code already used; WD_AUTH_ERR_STATE when TOTP is off. */
int wd_auth_totp_check(struct wd_auth *auth, const bson_oid_t *user, const char *code,
		       const struct wd_auth_meta *meta, bool *valid_r, int64_t *retry_r,
		       char **error_r);

/* The user's enabled 2FA methods as WildDuck reads `enabled2fa` (an array,
   or legacy `true` meaning ["totp"]; "u2f" dropped), comma-joined into buf
   ("" when none). Returns the number of methods. */
size_t wd_auth_enabled_2fa(const bson_t *user_doc, char *buf, size_t size);

#endif
