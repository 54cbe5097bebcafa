/* Password hashes: recognising, verifying and creating them as WildDuck's
 * lib/hashes.js does (reference §4.14).
 *
 * Verification recomputes the hash from the stored parameters and compares
 * the result with CRYPTO_memcmp, so the time taken does not depend on how
 * much of the password was right. The crypt(3) family goes through
 * libxcrypt's crypt_rn (reentrant, NULL on a malformed setting), Argon2
 * through libargon2 (its own constant-time compare) and PBKDF2 through
 * OpenSSL.
 *
 * Work limits: a hash comes from the database, which operators fill by
 * importing from older systems, so its cost parameters are checked before
 * anything is computed (PBKDF2 iterations, Argon2 memory and passes,
 * bcrypt cost, sha-crypt rounds: libxcrypt's own caps allow hours). */
#include "wd-auth-password.h"
#include "wd-auth.h"
#include "auth-b64.h"

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PBKDF2_MAX_KEY 128
#define PBKDF2_MAX_SALT 256

/* "$name$" of a hash, lower-cased, into buf; "" when the hash has none. */
static void hash_id(const char *hash, char *buf, size_t size)
{
	buf[0] = '\0';
	if (hash[0] != '$')
		return;
	const char *end = strchr(hash + 1, '$');
	if (end == NULL || end == hash + 1 || (size_t)(end - hash - 1) >= size)
		return;
	size_t n = (size_t)(end - hash - 1);
	for (size_t i = 0; i < n; i++) {
		char c = hash[1 + i];
		buf[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	buf[n] = '\0';
}

static bool is_des(const char *hash)
{
	if (strlen(hash) != 13)
		return false;
	for (size_t i = 0; i < 13; i++) {
		char c = hash[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '.' || c == '/'))
			return false;
	}
	return true;
}

enum wd_password_scheme wd_auth_password_scheme(const char *hash)
{
	if (hash == NULL)
		return WD_PASSWORD_UNKNOWN;
	if (is_des(hash))
		return WD_PASSWORD_DES;
	char id[16];
	hash_id(hash, id, sizeof(id));
	if (strcmp(id, "pbkdf2-sha256") == 0 || strcmp(id, "pbkdf2-sha512") == 0 ||
	    strcmp(id, "pbkdf2-sha1") == 0)
		return WD_PASSWORD_PBKDF2;
	if (strcmp(id, "2a") == 0 || strcmp(id, "2b") == 0 || strcmp(id, "2y") == 0)
		return WD_PASSWORD_BCRYPT;
	if (strcmp(id, "5") == 0 || strcmp(id, "6") == 0)
		return WD_PASSWORD_SHA_CRYPT;
	if (strcmp(id, "1") == 0)
		return WD_PASSWORD_MD5_CRYPT;
	if (strcmp(id, "argon2i") == 0 || strcmp(id, "argon2d") == 0 ||
	    strcmp(id, "argon2id") == 0)
		return WD_PASSWORD_ARGON2;
	return WD_PASSWORD_UNKNOWN;
}

const char *wd_auth_password_scheme_name(enum wd_password_scheme scheme)
{
	switch (scheme) {
	case WD_PASSWORD_PBKDF2: return "pbkdf2";
	case WD_PASSWORD_BCRYPT: return "bcrypt";
	case WD_PASSWORD_SHA_CRYPT: return "unixcrypt";
	case WD_PASSWORD_MD5_CRYPT: return "md5";
	case WD_PASSWORD_ARGON2: return "argon2";
	case WD_PASSWORD_DES: return "des";
	default: return "unknown";
	}
}

/* ---- PBKDF2 (PHC: $pbkdf2-<digest>$i=<n>$<salt>$<key>) ---- */

struct pbkdf2_hash {
	const EVP_MD *md;
	unsigned long iterations;
	uint8_t salt[PBKDF2_MAX_SALT];
	size_t salt_len;
	uint8_t key[PBKDF2_MAX_KEY];
	size_t key_len;
};

static int pbkdf2_parse(const char *hash, struct pbkdf2_hash *h, const char **error_r)
{
	char id[16];
	hash_id(hash, id, sizeof(id));
	h->md = strcmp(id, "pbkdf2-sha256") == 0 ? EVP_sha256() :
		strcmp(id, "pbkdf2-sha512") == 0 ? EVP_sha512() : EVP_sha1();
	const char *p = hash + strlen(id) + 2;
	if (strncmp(p, "i=", 2) != 0) {
		*error_r = "pbkdf2 hash without i=";
		return -1;
	}
	char *end;
	p += 2;
	if (*p < '1' || *p > '9') {
		*error_r = "pbkdf2 hash with a bad iteration count";
		return -1;
	}
	h->iterations = strtoul(p, &end, 10);
	if (*end != '$' || h->iterations > WD_PBKDF2_MAX_ITERATIONS) {
		*error_r = "pbkdf2 hash with a bad iteration count";
		return -1;
	}
	const char *salt = end + 1;
	const char *key = strchr(salt, '$');
	if (key == NULL || strchr(key + 1, '$') != NULL) {
		*error_r = "pbkdf2 hash without salt and key";
		return -1;
	}
	int n = wd__auth_b64_decode(salt, (size_t)(key - salt), h->salt, sizeof(h->salt));
	int k = wd__auth_b64_decode(key + 1, strlen(key + 1), h->key, sizeof(h->key));
	if (n <= 0 || k <= 0) {
		*error_r = "pbkdf2 hash with bad base64";
		return -1;
	}
	h->salt_len = (size_t)n;
	h->key_len = (size_t)k;
	return 0;
}

static int pbkdf2_verify(const char *password, size_t len, const char *hash, bool *match_r,
			 const char **error_r)
{
	struct pbkdf2_hash h;
	if (pbkdf2_parse(hash, &h, error_r) < 0)
		return -1;
	uint8_t key[PBKDF2_MAX_KEY];
	if (PKCS5_PBKDF2_HMAC(password, (int)len, h.salt, (int)h.salt_len, (int)h.iterations, h.md,
			      (int)h.key_len, key) != 1) {
		*error_r = "pbkdf2 failed";
		return -1;
	}
	*match_r = CRYPTO_memcmp(key, h.key, h.key_len) == 0;
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}

char *wd_auth_password_hash(const char *password, size_t len, const char **error_r)
{
	if (len > WD_AUTH_MAX_PASSWORD) {
		*error_r = "password too long";
		return NULL;
	}
	uint8_t salt[WD_PBKDF2_SALT_SIZE], key[32];
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    PKCS5_PBKDF2_HMAC(password, (int)len, salt, sizeof(salt), WD_PBKDF2_ITERATIONS,
			      EVP_sha256(), sizeof(key), key) != 1) {
		*error_r = "pbkdf2 failed";
		return NULL;
	}
	char salt_text[32], key_text[48];
	wd__auth_b64_encode(salt, sizeof(salt), salt_text);
	wd__auth_b64_encode(key, sizeof(key), key_text);
	OPENSSL_cleanse(key, sizeof(key));
	char *result;
	if (asprintf(&result, "$pbkdf2-sha256$i=%d$%s$%s", WD_PBKDF2_ITERATIONS, salt_text,
		     key_text) < 0) {
		*error_r = "out of memory";
		return NULL;
	}
	return result;
}

void wd_auth_password_burn(const char *password, size_t len)
{
	/* a fixed hash of the default cost; the answer does not matter */
	static const char decoy[] =
		"$pbkdf2-sha256$i=100000$CFj/ftI+xu6v+94o95cp+w$"
		"K9cX4iGxvASieFFRdUNIh84lZxjPHZY29Nb1r1abaHg";
	bool match;
	const char *error;
	(void)pbkdf2_verify(password, len > WD_AUTH_MAX_PASSWORD ? WD_AUTH_MAX_PASSWORD : len,
			    decoy, &match, &error);
}

/* ---- crypt(3): DES, md5-crypt, sha-crypt, bcrypt ---- */

/* The cost a crypt(3) hash asks for is within our limits ("$2b$NN$",
   "$5$rounds=N$", "$6$rounds=N$"; the others have fixed costs). */
static bool crypt_cost_ok(enum wd_password_scheme scheme, const char *hash, const char **error_r)
{
	if (scheme == WD_PASSWORD_BCRYPT) {
		const char *p = hash + 4; /* "$2b$" */
		if (p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' &&
		    (p[0] - '0') * 10 + (p[1] - '0') > WD_BCRYPT_MAX_COST) {
			*error_r = "bcrypt hash with too high a cost";
			return false;
		}
	} else if (scheme == WD_PASSWORD_SHA_CRYPT && strncmp(hash + 3, "rounds=", 7) == 0) {
		const char *p = hash + 10;
		if (*p >= '0' && *p <= '9' && strtoul(p, NULL, 10) > WD_SHA_CRYPT_MAX_ROUNDS) {
			*error_r = "sha-crypt hash with too many rounds";
			return false;
		}
	}
	return true;
}

static int crypt_verify(const char *password, size_t len, const char *hash, bool *match_r,
			const char **error_r)
{
	if (memchr(password, '\0', len) != NULL) {
		/* crypt(3) stops at a NUL: such a password cannot be what was hashed */
		*match_r = false;
		return 0;
	}
	char *phrase = strndup(password, len);
	struct crypt_data *data = calloc(1, sizeof(*data));
	if (phrase == NULL || data == NULL) {
		free(phrase);
		free(data);
		*error_r = "out of memory";
		return -1;
	}
	const char *out = crypt_rn(phrase, hash, data, sizeof(*data));
	int ret = 0;
	if (out == NULL || out[0] == '*') {
		*error_r = "malformed crypt hash";
		ret = -1;
	} else {
		size_t out_len = strlen(out), hash_len = strlen(hash);
		*match_r = out_len == hash_len && CRYPTO_memcmp(out, hash, hash_len) == 0;
	}
	explicit_bzero(phrase, len);
	explicit_bzero(data, sizeof(*data));
	free(phrase);
	free(data);
	return ret;
}

/* ---- Argon2 ---- */

/* The value of "<name>=<digits>" among the comma-separated parameters that
   follow "$v=..$" (or the type), or -1. */
static long argon2_param(const char *hash, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = hash; (p = strstr(p, name)) != NULL; p++) {
		if (p > hash && (p[-1] == '$' || p[-1] == ',') && p[n] == '=')
			return strtol(p + n + 1, NULL, 10);
	}
	return -1;
}

static int argon2_check(const char *password, size_t len, const char *hash, bool *match_r,
			const char **error_r)
{
	char id[16];
	hash_id(hash, id, sizeof(id));
	argon2_type type = strcmp(id, "argon2i") == 0 ? Argon2_i :
			   strcmp(id, "argon2d") == 0 ? Argon2_d : Argon2_id;
	long m = argon2_param(hash, "m"), t = argon2_param(hash, "t"), p = argon2_param(hash, "p");
	if (m <= 0 || t <= 0 || p <= 0 || m > WD_ARGON2_MAX_MEMORY_KIB || t > WD_ARGON2_MAX_TIME ||
	    p > 64) {
		*error_r = "argon2 hash with missing or excessive parameters";
		return -1;
	}
	int ret = argon2_verify(hash, password, len, type);
	if (ret == ARGON2_OK) {
		*match_r = true;
		return 0;
	}
	if (ret == ARGON2_VERIFY_MISMATCH) {
		*match_r = false;
		return 0;
	}
	*error_r = "malformed argon2 hash";
	return -1;
}

int wd_auth_password_verify(const char *password, size_t len, const char *hash, bool *match_r,
			    const char **error_r)
{
	*match_r = false;
	if (hash == NULL || strlen(hash) > WD_AUTH_MAX_HASH) {
		*error_r = "unsupported password hash";
		return -1;
	}
	enum wd_password_scheme scheme = wd_auth_password_scheme(hash);
	if (scheme == WD_PASSWORD_UNKNOWN) {
		*error_r = "unsupported password hash";
		return -1;
	}
	if (len == 0 || len > WD_AUTH_MAX_PASSWORD)
		return 0;
	switch (scheme) {
	case WD_PASSWORD_PBKDF2:
		return pbkdf2_verify(password, len, hash, match_r, error_r);
	case WD_PASSWORD_ARGON2:
		return argon2_check(password, len, hash, match_r, error_r);
	default:
		if (!crypt_cost_ok(scheme, hash, error_r))
			return -1;
		return crypt_verify(password, len, hash, match_r, error_r);
	}
}

bool wd_auth_password_needs_rehash(const char *hash)
{
	enum wd_password_scheme scheme = wd_auth_password_scheme(hash);
	if (scheme == WD_PASSWORD_UNKNOWN)
		return false;
	if (scheme != WD_PASSWORD_PBKDF2)
		return true;
	char id[16];
	hash_id(hash, id, sizeof(id));
	if (strcmp(id, "pbkdf2-sha1") == 0)
		return true;
	const char *p = hash + strlen(id) + 2;
	if (strncmp(p, "i=", 2) != 0)
		return false;
	unsigned long iterations = strtoul(p + 2, NULL, 10);
	return iterations != 0 && iterations < WD_PBKDF2_ITERATIONS;
}
