/* Password schemes (wd-auth-password.h) against hash vectors made by
 * independent tools (password-vectors.txt, written by
 * make-password-vectors.sh with mkpasswd, openssl passwd, the argon2 CLI and
 * Python's hashlib), plus WildDuck's own documented PBKDF2 vector. Each
 * vector must verify with its password and fail with near misses; malformed
 * and over-expensive hashes are errors, not crashes. No database. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-auth-password.h"
#include "wd-auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct vector {
	char scheme[16];
	char password[256];
	size_t len;
	char hash[512];
};

static struct vector *vectors;
static size_t vector_count;

static int load_vectors(void **state)
{
	(void)state;
	const char *dir = getenv("WD_SOURCE_DIR");
	char path[1024];
	snprintf(path, sizeof(path), "%s/tests/unit/auth/password-vectors.txt",
		 dir != NULL ? dir : ".");
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		return -1;
	}
	char line[1024];
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		vectors = realloc(vectors, (vector_count + 1) * sizeof(*vectors));
		struct vector *v = &vectors[vector_count];
		char hex[512];
		if (sscanf(line, "%15s %511s %511s", v->scheme, hex, v->hash) != 3)
			return -1;
		v->len = strlen(hex) / 2;
		for (size_t i = 0; i < v->len; i++) {
			unsigned byte;
			sscanf(hex + 2 * i, "%2x", &byte);
			v->password[i] = (char)byte;
		}
		v->password[v->len] = '\0';
		vector_count++;
	}
	fclose(f);
	return vector_count >= 50 ? 0 : -1;
}

static int free_vectors(void **state)
{
	(void)state;
	free(vectors);
	return 0;
}

static bool verify(const char *password, size_t len, const char *hash)
{
	bool match = true;
	const char *error = NULL;
	int ret = wd_auth_password_verify(password, len, hash, &match, &error);
	if (ret < 0)
		fail_msg("verify %s: %s", hash, error);
	return match;
}

static enum wd_password_scheme expected_scheme(const char *name)
{
	if (strcmp(name, "des") == 0)
		return WD_PASSWORD_DES;
	if (strcmp(name, "md5") == 0)
		return WD_PASSWORD_MD5_CRYPT;
	if (strncmp(name, "sha", 3) == 0)
		return WD_PASSWORD_SHA_CRYPT;
	if (strcmp(name, "bcrypt") == 0)
		return WD_PASSWORD_BCRYPT;
	if (strcmp(name, "argon2") == 0)
		return WD_PASSWORD_ARGON2;
	return WD_PASSWORD_PBKDF2;
}

static void test_vectors(void **state)
{
	(void)state;
	unsigned seen[8] = { 0 };
	for (size_t i = 0; i < vector_count; i++) {
		const struct vector *v = &vectors[i];
		enum wd_password_scheme scheme = wd_auth_password_scheme(v->hash);
		assert_int_equal(scheme, expected_scheme(v->scheme));
		seen[scheme]++;
		if (!verify(v->password, v->len, v->hash))
			fail_msg("%s does not verify its password", v->hash);
		/* near misses: one more byte, one byte changed, one byte less */
		char other[260];
		memcpy(other, v->password, v->len);
		other[v->len] = 'x';
		/* DES reads 8 bytes and bcrypt 72: a longer password is the same to them */
		if (scheme != WD_PASSWORD_DES || v->len < 8)
			assert_false(verify(other, v->len + 1, v->hash));
		other[0] ^= 0x20;
		assert_false(verify(other, v->len, v->hash));
		if (v->len > 1 && (scheme != WD_PASSWORD_DES || v->len <= 8))
			assert_false(verify(v->password, v->len - 1, v->hash));
		/* nothing is an empty password's match */
		assert_false(verify("", 0, v->hash));
	}
	/* every scheme of the issue is covered, by at least five vectors */
	for (int s = WD_PASSWORD_PBKDF2; s <= WD_PASSWORD_DES; s++)
		assert_true(seen[s] >= 5);
}

static void test_wildduck_vector(void **state)
{
	(void)state;
	/* reference §4.14, produced by WildDuck itself */
	const char *hash = "$pbkdf2-sha256$i=100000$CFj/ftI+xu6v+94o95cp+w$"
			   "K9cX4iGxvASieFFRdUNIh84lZxjPHZY29Nb1r1abaHg";
	assert_true(verify("secretpass", 10, hash));
	assert_false(verify("secretpasS", 10, hash));
	assert_false(wd_auth_password_needs_rehash(hash));
}

static void test_new_hash(void **state)
{
	(void)state;
	const char *error;
	char *hash = wd_auth_password_hash("new password", 12, &error);
	assert_non_null(hash);
	assert_int_equal(strncmp(hash, "$pbkdf2-sha256$i=100000$", 24), 0);
	/* 16-byte salt = 22 chars, 32-byte key = 43 chars, unpadded */
	assert_int_equal(strlen(hash), 24 + 22 + 1 + 43);
	assert_null(strchr(hash + 24, '='));
	assert_true(verify("new password", 12, hash));
	assert_false(verify("new passwore", 12, hash));
	assert_false(wd_auth_password_needs_rehash(hash));
	char *again = wd_auth_password_hash("new password", 12, &error);
	assert_string_not_equal(hash, again); /* fresh salt */
	free(again);
	free(hash);
	/* passwords with NUL bytes are fine for PBKDF2 */
	hash = wd_auth_password_hash("a\0b", 3, &error);
	assert_true(verify("a\0b", 3, hash));
	assert_false(verify("a", 1, hash));
	free(hash);
	/* too long */
	char big[WD_AUTH_MAX_PASSWORD + 2];
	memset(big, 'a', sizeof(big));
	assert_null(wd_auth_password_hash(big, sizeof(big), &error));
}

static void test_rehash_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < vector_count; i++) {
		const struct vector *v = &vectors[i];
		bool expected = true;
		if (strncmp(v->hash, "$pbkdf2-sha256$i=100000$", 24) == 0 ||
		    strncmp(v->hash, "$pbkdf2-sha512$i=100000$", 24) == 0)
			expected = false;
		assert_int_equal(wd_auth_password_needs_rehash(v->hash), expected);
	}
	assert_false(wd_auth_password_needs_rehash("$pbkdf2-sha256$i=200000$AAAA$AAAA"));
	assert_false(wd_auth_password_needs_rehash(""));
	assert_false(wd_auth_password_needs_rehash("$unknown$x"));
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"plaintext-password",
		"$unknown$abc",
		"$pbkdf2-sha256$",
		"$pbkdf2-sha256$i=$abc$def",
		"$pbkdf2-sha256$i=0$abc$def",
		"$pbkdf2-sha256$i=-5$abc$def",
		"$pbkdf2-sha256$i=1000$abc",
		"$pbkdf2-sha256$i=1000$ab!c$def",
		"$pbkdf2-sha256$i=1000$abcd$de$f",
		"$pbkdf2-sha256$i=99999999999$CFj/ftI+xu6v+94o95cp+w$K9cX4iGxvASieFFRdUNIh8",
		"$2b$99$ZmA5wYx254PYdEySpBOOxedo4rnqErjl/kS8xLoVNnSm2W/g2w8re",
		"$2b$05$short",
		"$1$",
		"$argon2id$v=19$m=99999999,t=3,p=4$Y0VJYUhSRjk0RkZRQXZ5WQ$T7phZUGncbe8DCoy6unKHJ",
		"$argon2id$v=19$m=4096,t=1000,p=4$Y0VJYUhSRjk0RkZRQXZ5WQ$T7phZUGncbe8DCoy6unKHJ",
		"$argon2id$v=19$garbage",
		"$argon2i$",
		"abc!defghijkl", /* 13 chars, not DES alphabet */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool match = true;
		const char *error = NULL;
		int ret = wd_auth_password_verify("password", 8, bad[i], &match, &error);
		if (ret == 0 && match)
			fail_msg("%s matched", bad[i]);
		if (ret < 0)
			assert_non_null(error);
	}
	/* an overlong hash is refused before anything is parsed */
	char *huge = malloc(WD_AUTH_MAX_HASH + 100);
	memset(huge, 'a', WD_AUTH_MAX_HASH + 99);
	memcpy(huge, "$1$", 3);
	huge[WD_AUTH_MAX_HASH + 99] = '\0';
	bool match;
	const char *error;
	assert_int_equal(wd_auth_password_verify("x", 1, huge, &match, &error), -1);
	free(huge);
	/* NULL hash */
	assert_int_equal(wd_auth_password_verify("x", 1, NULL, &match, &error), -1);
	/* crypt(3) costs past our limits are refused, not computed: libxcrypt
	   would spend hours on cost 31 (found by fuzz-auth-hash) */
	assert_int_equal(wd_auth_password_verify("x", 1,
						 "$2b$31$abcdefghijklmnopqrstuu1234567890123456789012345678901",
						 &match, &error), -1);
	assert_non_null(strstr(error, "cost"));
	assert_int_equal(wd_auth_password_verify("x", 1, "$6$rounds=999999999$salt$hash", &match,
						 &error), -1);
	assert_non_null(strstr(error, "rounds"));
	/* a crypt hash never matches a password with a NUL inside */
	const char *md5 = NULL;
	for (size_t i = 0; i < vector_count && md5 == NULL; i++)
		if (strcmp(vectors[i].scheme, "md5") == 0)
			md5 = vectors[i].hash;
	assert_false(verify("secretpass\0x", 12, md5));
}

/* Hostile stored values: random tails after every scheme prefix (cheap
   cost parameters so that well-formed accidents stay fast) never crash and
   never match. */
static void test_garbage(void **state)
{
	(void)state;
	static const char *const prefixes[] = {
		"$pbkdf2-sha256$i=1$", "$pbkdf2-sha512$i=2$", "$pbkdf2-sha1$i=1$", "$2b$04$",
		"$2a$04$", "$2y$04$", "$5$rounds=1000$", "$6$rounds=1000$", "$1$",
		"$argon2id$v=19$m=8,t=1,p=1$", "$argon2i$", "$argon2d$v=19$", "", "$",
	};
	static const char alphabet[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz$=,+\xff";
	unsigned seed = 12345;
	for (int i = 0; i < 3000; i++) {
		char hash[128];
		const char *prefix = prefixes[(unsigned)i % (sizeof(prefixes) / sizeof(prefixes[0]))];
		size_t n = strlen(prefix);
		memcpy(hash, prefix, n);
		seed = seed * 1103515245 + 12345;
		size_t tail = (seed >> 16) % 60;
		for (size_t k = 0; k < tail; k++) {
			seed = seed * 1103515245 + 12345;
			hash[n++] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		hash[n] = '\0';
		bool match = false;
		const char *error;
		(void)wd_auth_password_verify("password", 8, hash, &match, &error);
		assert_false(match);
		(void)wd_auth_password_needs_rehash(hash);
	}
}

static double seconds(void (*fn)(void))
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	fn();
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static const char *timing_hash;
static void verify_right(void) { verify("secretpass", 10, timing_hash); }
static void verify_wrong_first(void) { verify("Xecretpass", 10, timing_hash); }
static void verify_wrong_last(void) { verify("secretpasX", 10, timing_hash); }
static void burn(void) { wd_auth_password_burn("secretpass", 10); }

/* The work does not depend on how much of the password is right, and an
   unknown user costs as much as a wrong password. Loose bounds, minimum of
   interleaved runs, and a few attempts: shared CI machines are noisy, while
   a path that skips the hashing would be orders of magnitude apart every
   time, not a factor of three once. */
static bool timing_within_bounds(void)
{
	void (*const fns[4])(void) = { verify_right, verify_wrong_first, verify_wrong_last, burn };
	double best[4] = { 1e9, 1e9, 1e9, 1e9 };
	for (int round = 0; round < 3; round++)
		for (int f = 0; f < 4; f++) {
			double s = seconds(fns[f]);
			if (s < best[f])
				best[f] = s;
		}
	for (int f = 1; f < 4; f++)
		if (!(best[f] / best[0] > 0.33 && best[f] / best[0] < 3.0))
			return false;
	return true;
}

static void test_timing(void **state)
{
	(void)state;
	timing_hash = "$pbkdf2-sha256$i=100000$CFj/ftI+xu6v+94o95cp+w$"
		      "K9cX4iGxvASieFFRdUNIh84lZxjPHZY29Nb1r1abaHg";
	bool ok = false;
	for (int attempt = 0; attempt < 5 && !ok; attempt++)
		ok = timing_within_bounds();
	assert_true(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_wildduck_vector),
		cmocka_unit_test(test_new_hash),
		cmocka_unit_test(test_rehash_rules),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_timing),
	};
	return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
