#ifndef WD_AUTH_PASSWORD_H
#define WD_AUTH_PASSWORD_H

/* Password hashes as WildDuck's lib/hashes.js accepts them (reference
 * §4.14). Pure functions, no database; thread-safe.
 *
 *   $pbkdf2-sha256$i=N$salt$hash   (also -sha512, -sha1; PHC, unpadded base64)
 *   $2a$ $2b$ $2y$                 bcrypt
 *   $5$ $6$                        sha256-crypt, sha512-crypt
 *   $1$                            md5-crypt
 *   $argon2i$ $argon2d$ $argon2id$ Argon2
 *   13 chars of [./0-9A-Za-z]      traditional DES crypt
 *
 * New hashes are WildDuck's default: PBKDF2-HMAC-SHA256, 100000 iterations,
 * 16-byte salt, 32-byte key. */

#include <stdbool.h>
#include <stddef.h>

enum wd_password_scheme {
	WD_PASSWORD_UNKNOWN = 0,
	WD_PASSWORD_PBKDF2,
	WD_PASSWORD_BCRYPT,
	WD_PASSWORD_SHA_CRYPT,  /* $5$ and $6$ */
	WD_PASSWORD_MD5_CRYPT,
	WD_PASSWORD_ARGON2,
	WD_PASSWORD_DES,
};

#define WD_PBKDF2_ITERATIONS 100000
#define WD_PBKDF2_SALT_SIZE 16
/* Stored hashes beyond these are refused rather than computed: an imported
   hash must not turn one login into minutes of CPU or gigabytes of RAM. */
#define WD_PBKDF2_MAX_ITERATIONS 10000000
#define WD_ARGON2_MAX_MEMORY_KIB (1024 * 1024)
#define WD_ARGON2_MAX_TIME 64
/* bcrypt cost 16 and 10 M sha-crypt rounds take seconds; libxcrypt itself
   goes to cost 31 (hours) and 999,999,999 rounds (minutes). */
#define WD_BCRYPT_MAX_COST 16
#define WD_SHA_CRYPT_MAX_ROUNDS 10000000

/* The scheme of a stored hash (WildDuck's checkHashSupport). */
enum wd_password_scheme wd_auth_password_scheme(const char *hash);
/* "pbkdf2", "bcrypt", "unixcrypt", "md5", "argon2", "des" (WildDuck's algo names). */
const char *wd_auth_password_scheme_name(enum wd_password_scheme scheme);

/* Hashes a password (len bytes, at most WD_AUTH_MAX_PASSWORD) in the
   default scheme. Returns a malloc'd PHC string, NULL on failure (*error_r
   static). */
char *wd_auth_password_hash(const char *password, size_t len, const char **error_r);

/* Checks a password against a stored hash. Returns 0 and sets *match_r, or
   -1 (with a static *error_r) for a hash that is not one of the schemes, is
   malformed, or asks for more than the limits above. Comparisons of the
   computed and the stored value are constant-time. An empty password never
   matches. */
int wd_auth_password_verify(const char *password, size_t len, const char *hash, bool *match_r,
			    const char **error_r);

/* WildDuck's shouldRehash(): true for everything but PBKDF2-SHA256/512 with
   at least WD_PBKDF2_ITERATIONS (and for bcrypt, as the default is PBKDF2). */
bool wd_auth_password_needs_rehash(const char *hash);

/* Does the work of one default-scheme verification and throws the result
   away: called for unknown users so that their answer takes as long as a
   wrong password for a real one. */
void wd_auth_password_burn(const char *password, size_t len);

#endif
