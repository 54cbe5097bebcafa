#ifndef WD_AUTH_SECRET_H
#define WD_AUTH_SECRET_H

/* Secrets at rest as WildDuck's lib/encrypt.js stores them (reference §4.21):
 *
 *   $wd01$aes-256-gcm$<tag hex 16 B>$<iv hex 12 B>$<salt hex 16 B>$<ciphertext hex>
 *
 * with key = scrypt(secret, salt, 32, N=16384 r=8 p=1). A value that does not
 * start with '$' is cleartext; "$<hex>" alone is the legacy format of Node's
 * crypto.createDecipher(cipher, secret) (EVP_BytesToKey with MD5, one round,
 * no salt), read but never written. Pure functions, thread-safe. */

#include <stddef.h>

#define WD_AUTH_MAX_SECRET_VALUE 65536 /* bytes of an encrypted value we read */

/* Encrypts cleartext with secret in the $wd01$ format; a NULL or empty
   secret returns a copy of the cleartext, as WildDuck does. 0 or -1 (static
   *error_r). *result_r is malloc'd. */
int wd_auth_secret_encrypt(const char *cleartext, const char *secret, char **result_r,
			   const char **error_r);

/* Decrypts a stored value: cleartext passes through; $wd01$ and legacy
   values need the secret (legacy_cipher: an OpenSSL cipher name, NULL for
   "aes192"). -1 when the value is encrypted and there is no secret, the
   secret is wrong (GCM tag), or the value is malformed. */
int wd_auth_secret_decrypt(const char *value, const char *secret, const char *legacy_cipher,
			   char **result_r, const char **error_r);

#endif
