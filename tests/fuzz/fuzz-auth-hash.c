/* Fuzz target: stored password hashes and encrypted secrets from the
 * database are untrusted input (WildDuck users import hashes). Input:
 * selector byte, then "<stored value>\0<password or secret>".
 *   - every input: the scheme is recognised without crashing, and the
 *     rehash decision agrees with it;
 *   - selector even: wd_auth_password_verify(); an empty password never
 *     matches; a hash whose cost is above the limits (PBKDF2 iterations,
 *     Argon2 memory and passes, bcrypt cost, sha-crypt rounds) is refused
 *     without computing it (a login must not cost minutes of CPU). Costs
 *     within the limits but above small ones are not computed here: they
 *     take seconds under the sanitizers;
 *   - selector odd: wd_auth_secret_decrypt() of the value with the secret. */
#include "fuzz-check.h"
#include "wd-auth-password.h"
#include "wd-auth.h"
#include "wd-auth-secret.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The decimal value after `key` ("i=", "rounds=", "m=", "t="), or -1. */
static double number_after(const char *s, const char *key)
{
	const char *p = strstr(s, key);
	if (p == NULL)
		return -1;
	p += strlen(key);
	double v = 0;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (*p - '0');
	return v;
}

enum cost { COST_SMALL, COST_LARGE, COST_REFUSED };

static enum cost cost_of(enum wd_password_scheme scheme, const char *stored)
{
	double v;
	switch (scheme) {
	case WD_PASSWORD_PBKDF2:
		v = number_after(stored, "$i=");
		return v > WD_PBKDF2_MAX_ITERATIONS ? COST_REFUSED :
		       v > 20000		    ? COST_LARGE :
						      COST_SMALL;
	case WD_PASSWORD_BCRYPT:
		v = stored[4] >= '0' && stored[4] <= '9' && stored[5] >= '0' && stored[5] <= '9' ?
			    (stored[4] - '0') * 10 + (stored[5] - '0') :
			    -1;
		return v > WD_BCRYPT_MAX_COST ? COST_REFUSED : v > 6 ? COST_LARGE : COST_SMALL;
	case WD_PASSWORD_SHA_CRYPT:
		v = strncmp(stored + 3, "rounds=", 7) == 0 ? number_after(stored, "rounds=") : -1;
		return v > WD_SHA_CRYPT_MAX_ROUNDS ? COST_REFUSED :
		       v > 20000		   ? COST_LARGE :
						     COST_SMALL;
	case WD_PASSWORD_ARGON2:
		/* any m, t or p parameter: the largest decides */
		v = number_after(stored, "m=");
		if (v > WD_ARGON2_MAX_MEMORY_KIB || number_after(stored, "t=") > WD_ARGON2_MAX_TIME)
			return COST_LARGE; /* refused too, unless another m= or t= comes first */
		return v > 8192 || number_after(stored, "t=") > 4 || number_after(stored, "p=") > 4 ?
			       COST_LARGE :
			       COST_SMALL;
	default:
		return COST_SMALL;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	uint8_t selector = data[0];
	char *text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	const char *stored = text;
	size_t stored_len = strlen(stored);
	const char *second = stored_len + 1 < size - 1 ? text + stored_len + 1 : "";
	size_t second_len = strnlen(second, size);

	enum wd_password_scheme scheme = wd_auth_password_scheme(stored);
	CHECK(wd_auth_password_scheme_name(scheme) != NULL);
	(void)wd_auth_password_needs_rehash(stored);

	const char *error = NULL;
	if ((selector & 1) == 0) {
		bool match = true;
		enum cost cost = cost_of(scheme, stored);
		if (cost == COST_REFUSED && second_len > 0 && second_len <= WD_AUTH_MAX_PASSWORD &&
		    strlen(stored) <= WD_AUTH_MAX_HASH) {
			CHECK(wd_auth_password_verify(second, second_len, stored, &match, &error) < 0);
			CHECK(!match && error != NULL && error[0] != '\0');
		} else if (cost == COST_SMALL) {
			if (wd_auth_password_verify(second, second_len, stored, &match, &error) == 0 &&
			    second_len == 0)
				CHECK(!match);
			if (error != NULL)
				CHECK(error[0] != '\0');
		}
	} else {
		char *clear = NULL;
		if (wd_auth_secret_decrypt(stored, second_len > 0 ? second : NULL, NULL, &clear,
					   &error) == 0)
			CHECK(clear != NULL);
		free(clear);
	}
	free(text);
	return 0;
}
