#ifndef WD_AUTH_H
#define WD_AUTH_H

/* libwdauth: who is this and may they in, answered as WildDuck answers it
 * (reference §4.13, §4.14, §2.5, §2.6, §4.21).
 *
 * A wd_auth is created once per process over an open wd_store and the
 * configuration, and shared by every thread. Like libwdstore its calls are
 * blocking (worker threads only). It keeps its own per-thread Redis
 * connections to `dbs.redis` for the failure counters and the used TOTP
 * codes; when Redis is unreachable those degrade (no counting, logged) and
 * authentication itself keeps working.
 *
 * The modules, one header each:
 *   wd-auth-password.h   password hashes (PBKDF2 PHC default, crypt family, argon2)
 *   wd-auth-secret.h     secrets at rest ($wd01$ AES-256-GCM, legacy createDecipher)
 *   wd-auth-totp.h       TOTP codes and the setup/enable/disable/check operations
 *   wd-auth-asp.h        application-specific passwords
 *   wd-auth-ratelimit.h  WildDuck's ttlcounter failure limits in Redis
 *   wd-auth-log.h        the authlog collection
 *   wd-auth-address.h    address resolution with the label handed back, login lookup
 *   wd-auth-login.h      the authentication flow itself and password changes */

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

struct wd_store;
struct wd_config;
struct wd_auth;

/* Errors of libwdauth calls that may fail for more than one reason. As in
   libwdstore, 0 is success and a negative value names the kind; *error_r
   then holds a malloc'd message. */
enum wd_auth_error_kind {
	WD_AUTH_OK = 0,
	WD_AUTH_ERR_INTERNAL = -1,    /* database, Redis or crypto failure */
	WD_AUTH_ERR_NOT_FOUND = -2,   /* no such user / app password */
	WD_AUTH_ERR_INVALID = -3,     /* malformed input */
	WD_AUTH_ERR_LIMIT = -4,       /* a limit would be exceeded (app password count) */
	WD_AUTH_ERR_STATE = -5,       /* wrong state: TOTP already on / not set up */
	WD_AUTH_ERR_RATELIMITED = -6, /* too many failures, try later */
};

/* Who is asking, for the auth log and the failure counters. Every field may
   be NULL. `protocol` is written as given ("IMAP", "POP3", "SMTP", "API"). */
struct wd_auth_meta {
	const char *protocol;
	const char *ip;
	const char *sess;
};

/* Hard input limits. */
#define WD_AUTH_MAX_PASSWORD 1024   /* bytes of a password given to us */
#define WD_AUTH_MAX_HASH 1024       /* bytes of a stored hash we look at */
#define WD_AUTH_MAX_USERNAME 512    /* bytes of a login name (username or address) */
#define WD_AUTH_MAX_DESCRIPTION 1024 /* app password description */

/* WildDuck's constants (lib/consts.js, reference §5). */
#define WD_AUTH_USER_FAILURES 12
#define WD_AUTH_USER_WINDOW 120      /* seconds */
#define WD_AUTH_IP_WINDOW 300        /* seconds */
#define WD_AUTH_TOTP_WINDOW_SIZE 6   /* steps of 30 s either side */
#define WD_AUTH_TOTP_SETUP_TTL_MS (6LL * 3600 * 1000)
#define WD_AUTH_TEMP_PASS_WINDOW_MS (24LL * 3600 * 1000)
#define WD_AUTH_AUTHLOG_BUCKET_MS (6LL * 3600 * 1000)
#define WD_AUTH_AUTHLOG_TIME_MS (30LL * 24 * 3600 * 1000)
#define WD_AUTH_MAX_ASP_COUNT 50

/* Creates the context. Configuration read here:
     dbs.redis             as libwdstore (default redis://127.0.0.1:6379/3)
     totp.secret           encrypts TOTP seeds at rest (unset: stored in clear)
     totp.cipher           cipher of legacy "$<hex>" seeds (default aes192)
     auth.ipFailures       per-IP failure limit (default 0 = off, as WildDuck)
     auth.userFailures     per-user failure limit (default 12)
   The settings collection (const:authlog:time, const:asp:limit) is read on
   use and cached for a minute. */
struct wd_auth *wd_auth_create(struct wd_store *store, const struct wd_config *config,
			       char **error_r);
void wd_auth_destroy(struct wd_auth **auth);
struct wd_store *wd_auth_store(struct wd_auth *auth);

/* "internal", "not found", ... for a negative return value. */
const char *wd_auth_error_kind_name(int ret);

const char *wd_auth_version(void);

#endif
