/* Mailbox path normalisation and limits (wd-store-user.h): imap-core's
 * normalizeMailbox() and WildDuck's MAX_SUB_MAILBOXES / MAX_MAILBOX_NAME_LENGTH
 * checks, lengths counted in UTF-16 units like JavaScript. No database. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_normalize(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "INBOX", "INBOX" },
		{ "inbox", "INBOX" },
		{ "InBoX/Sub", "INBOX/Sub" },
		{ "/INBOX/", "INBOX" },
		{ "/Work/Projects/", "Work/Projects" },
		{ "//a//", "/a/" },   /* only one slash each side, as the regex does */
		{ "/", "" },
		{ "", "" },
		{ "Inboxes", "Inboxes" },
		{ "inbox2/x", "inbox2/x" },
		{ "Sub/inbox", "Sub/inbox" },
		/* JavaScript upper-cases DOTLESS I to I */
		{ "\xc4\xb1nbox", "INBOX" },
		{ "\xc4\xb1nbox/x", "INBOX/x" },
		{ "\xc3\x95ie", "\xc3\x95ie" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = wd_mailbox_path_normalize(cases[i][0]);
		assert_non_null(out);
		if (strcmp(out, cases[i][1]) != 0)
			fail_msg("normalize(%s) = %s, want %s", cases[i][0], out, cases[i][1]);
		free(out);
	}
}

static char *repeat(const char *unit, size_t count, const char *sep)
{
	size_t len = (strlen(unit) + strlen(sep)) * count + 1;
	char *s = calloc(1, len);
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			strcat(s, sep);
		strcat(s, unit);
	}
	return s;
}

static void test_validate(void **state)
{
	(void)state;
	const char *error;
	static const char *const good[] = {
		"INBOX", "Sent Mail", "a/b/c", "\xc3\x95ie/\xe2\x82\xac", "with space", "%*?",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (wd_mailbox_path_validate(good[i], &error) != 0)
			fail_msg("refused \"%s\": %s", good[i], error);
	}
	static const char *const bad[] = {
		"", "a//b", "/a", "a/", "a\nb", "a\rb", "tab\there", "\x7f", "bad\xff",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (wd_mailbox_path_validate(bad[i], &error) != WD_STORE_ERR_INVALID)
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

static void test_limits(void **state)
{
	(void)state;
	const char *error;
	/* 128 levels fine, 129 too deep */
	char *path = repeat("x", 128, "/");
	assert_int_equal(wd_mailbox_path_validate(path, &error), 0);
	free(path);
	path = repeat("x", 129, "/");
	assert_int_equal(wd_mailbox_path_validate(path, &error), WD_STORE_ERR_LIMIT);
	assert_non_null(strstr(error, "128"));
	free(path);
	/* 512 characters per level fine, 513 too long */
	path = repeat("a", 512, "");
	assert_int_equal(wd_mailbox_path_validate(path, &error), 0);
	free(path);
	path = repeat("a", 513, "");
	assert_int_equal(wd_mailbox_path_validate(path, &error), WD_STORE_ERR_LIMIT);
	assert_non_null(strstr(error, "512"));
	free(path);
	/* it is per level: 3 x 512 is fine */
	char *level = repeat("b", 512, "");
	path = repeat(level, 3, "/");
	assert_int_equal(wd_mailbox_path_validate(path, &error), 0);
	free(path);
	free(level);
	/* "õ" is one UTF-16 unit, an emoji two */
	path = repeat("\xc3\xb5", 512, "");
	assert_int_equal(wd_mailbox_path_validate(path, &error), 0);
	free(path);
	path = repeat("\xf0\x9f\x93\x81", 256, "");
	assert_int_equal(wd_mailbox_path_validate(path, &error), 0);
	free(path);
	path = repeat("\xf0\x9f\x93\x81", 257, "");
	assert_int_equal(wd_mailbox_path_validate(path, &error), WD_STORE_ERR_LIMIT);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
