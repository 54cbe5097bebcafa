#ifndef WD_AUTH_LOGIN_H
#define WD_AUTH_LOGIN_H

/* Authentication as WildDuck's UserHandler.asyncAuthenticate (reference
 * §4.14), and password changes.
 *
 * Order of checks: empty password; per-IP limit; the user (login name →
 * wd_auth_login_lookup); per-user limit; disabled; suspended;
 * disabledScopes; the temporary password (< 24 h old, past validAfter;
 * master scope only); the account password (rehashed to the default scheme
 * on success when legacy); for scopes other than master, app passwords
 * (16 letters, selector narrowing, scope, not expired). A user with 2FA
 * (or logging in with a temporary password) is refused for imap/pop3/smtp
 * with the account password: those need an app password.
 *
 * Every outcome for a known user is written to the auth log with its
 * protocol, IP, scope and credential kind (`source`: master, temporary,
 * asp); every failure counts against the user's (and, when enabled, the
 * IP's) limit; success clears the user's count. Unknown users cost the same
 * hashing time as known ones and count under their unameview. */

#include "wd-auth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wd_auth_scope {
	WD_AUTH_SCOPE_MASTER, /* API / web: account password only */
	WD_AUTH_SCOPE_IMAP,
	WD_AUTH_SCOPE_POP3,
	WD_AUTH_SCOPE_SMTP,
};
/* "master", "imap", "pop3", "smtp" */
const char *wd_auth_scope_name(enum wd_auth_scope scope);
/* -1 when unknown */
int wd_auth_scope_parse(const char *name);

enum wd_auth_status {
	WD_AUTH_ACCEPTED = 0,
	WD_AUTH_REFUSED,            /* wrong password or unknown user (one answer for both) */
	WD_AUTH_RATE_LIMITED,       /* too many failures: temporary, retry_after says how long */
	WD_AUTH_DISABLED,           /* account disabled */
	WD_AUTH_SUSPENDED,          /* account suspended */
	WD_AUTH_SCOPE_DISABLED,     /* this service is in the user's disabledScopes */
	WD_AUTH_SCOPE_REFUSED,      /* right password, not for this service (2FA: use an app password) */
	WD_AUTH_TEMP_NOT_YET_VALID, /* temporary password before its validAfter */
	WD_AUTH_INTERNAL_ERROR,     /* database or hash failure (logged) */
};
const char *wd_auth_status_name(enum wd_auth_status status);

enum wd_auth_source {
	WD_AUTH_SOURCE_NONE,
	WD_AUTH_SOURCE_MASTER,
	WD_AUTH_SOURCE_TEMPORARY,
	WD_AUTH_SOURCE_ASP,
};

struct wd_auth_request {
	const char *username;  /* username or address */
	const char *password;
	size_t password_len;
	enum wd_auth_scope scope;
	struct wd_auth_meta meta;
};

struct wd_auth_result {
	enum wd_auth_status status;
	bool has_user;
	bson_oid_t user;
	char username[WD_AUTH_MAX_USERNAME + 1];
	char address[WD_AUTH_MAX_USERNAME + 1];
	enum wd_auth_source source;
	bson_oid_t asp;                /* with WD_AUTH_SOURCE_ASP */
	bool require_password_change;  /* logged in with a temporary password */
	/* the user's own limits (0 = the server's setting) */
	int64_t imap_max_connections;  /* users.imapMaxConnections */
	int64_t pop3_max_messages;     /* users.pop3MaxMessages */
	char require2fa[64];           /* master scope: 2FA methods still to pass ("" none) */
	bool rehashed;                 /* the stored hash was upgraded */
	int64_t retry_after;           /* seconds, with WD_AUTH_RATE_LIMITED */
	char message[160];             /* for the client; never says which part was wrong */
};

/* Runs the whole flow; the answer is in result->status (also returned). */
enum wd_auth_status wd_auth_authenticate(struct wd_auth *auth, const struct wd_auth_request *req,
					 struct wd_auth_result *result);

/* Sets a user's password (hashed here in the default scheme), as WildDuck's
   user update does: tempPassword cleared, passwordChange = now, the old
   hash pushed to oldPasswords, authVersion bumped, 'password change'
   logged. With `temporary` it becomes the tempPassword instead (valid for
   24 h, master scope only, forces a change; WildDuck's reset), logged as
   'reset'. `existing`, when given, must verify against the current
   password first (WD_AUTH_ERR_INVALID otherwise). */
struct wd_auth_password_change {
	const char *password;
	size_t len;
	bool temporary;
	const char *existing;
	size_t existing_len;
};
int wd_auth_password_set(struct wd_auth *auth, const bson_oid_t *user,
			 const struct wd_auth_password_change *change,
			 const struct wd_auth_meta *meta, char **error_r);

#endif
