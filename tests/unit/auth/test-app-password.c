/* App-password helpers (wd-auth-asp.h), pure: the selector against values
 * computed with Python's hashlib (sum of the SHA-1 bytes mod 32, in hex),
 * generation (16 letters, every letter reachable), login normalisation
 * (white space and case) and scope names. No database. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-auth-asp.h"
#include "wd-store-user.h"

#include <string.h>

static void test_selector(void **state)
{
	(void)state;
	static const struct {
		const char *password, *selector;
	} vectors[] = {
		{ "abcdefghijklmnop", "c" },  { "yimisecppmocwzue", "12" },
		{ "qwertyuiopasdfgh", "1d" }, { "zzzzzzzzzzzzzzzz", "1a" },
		{ "aaaaaaaaaaaaaaaa", "1b" }, { "mnbvcxzlkjhgfdsa", "9" },
		{ "thequickbrownfox", "7" },  { "wildduckmailsrv", "c" },
	};
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char selector[3];
		wd_auth_asp_selector(vectors[i].password, strlen(vectors[i].password), selector);
		assert_string_equal(selector, vectors[i].selector);
	}
}

static void test_generate(void **state)
{
	(void)state;
	unsigned seen[26] = { 0 };
	char previous[WD_AUTH_ASP_LEN + 1] = "";
	for (int round = 0; round < 200; round++) {
		char password[WD_AUTH_ASP_LEN + 1];
		assert_int_equal(wd_auth_asp_generate(password), 0);
		assert_int_equal(strlen(password), WD_AUTH_ASP_LEN);
		for (int i = 0; i < WD_AUTH_ASP_LEN; i++) {
			assert_true(password[i] >= 'a' && password[i] <= 'z');
			seen[password[i] - 'a']++;
		}
		assert_string_not_equal(password, previous);
		memcpy(previous, password, sizeof(password));
		char selector[3];
		wd_auth_asp_selector(password, WD_AUTH_ASP_LEN, selector);
		assert_true(strlen(selector) >= 1 && strlen(selector) <= 2);
	}
	/* 3200 letters: each of the 26 shows up (expected ~123 times each) */
	for (int c = 0; c < 26; c++)
		assert_true(seen[c] > 40);
}

static void test_normalize(void **state)
{
	(void)state;
	char out[WD_AUTH_ASP_LEN + 1];
	assert_true(wd_auth_asp_normalize("abcd efgh ijkl mnop", 19, out));
	assert_string_equal(out, "abcdefghijklmnop");
	assert_true(wd_auth_asp_normalize("ABCD\tEFGH\nijkl mnop ", 20, out));
	assert_string_equal(out, "abcdefghijklmnop");
	static const char *const bad[] = {
		"abcdefghijklmno", "abcdefghijklmnopq", "abcdefghijklmno1", "abcdefghijklmn-p",
		"", "                ", "\303\244bcdefghijklmnop", "abcdefgh\0ijklmnop",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(wd_auth_asp_normalize(bad[i], i == 7 ? 17 : strlen(bad[i]), out));
}

static void test_scopes(void **state)
{
	(void)state;
	assert_int_equal(wd_auth_scope_bit("imap"), WD_SCOPE_IMAP);
	assert_int_equal(wd_auth_scope_bit(" POP3 "), WD_SCOPE_POP3);
	assert_int_equal(wd_auth_scope_bit("smtp"), WD_SCOPE_SMTP);
	assert_int_equal(wd_auth_scope_bit("*"), WD_AUTH_SCOPE_ALL);
	assert_int_equal(wd_auth_scope_bit("master"), 0);
	assert_int_equal(wd_auth_scope_bit("imaps"), 0);
	assert_int_equal(wd_auth_scope_bit(""), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selector),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_scopes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
