/* Fuzz target: stored password hashes and encrypted secrets from the
 * database are untrusted input (WildDuck users import hashes). Input:
 * selector byte, then "<stored value>\0<password or secret>".
 *   - every input: the scheme is recognised without crashing, and the
 *     rehash decision agrees with it;
 *   - selector even: wd_auth_password_verify() (costs above the limits are
 *     refused, so a run stays bounded); an empty password never matches;
 *   - selector odd: wd_auth_secret_decrypt() of the value with the secret. */
#include "fuzz-check.h"
#include "wd-auth-password.h"
#include "wd-auth-secret.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		if (wd_auth_password_verify(second, second_len, stored, &match, &error) == 0 &&
		    second_len == 0)
			CHECK(!match);
		if (error != NULL)
			CHECK(error[0] != '\0');
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
