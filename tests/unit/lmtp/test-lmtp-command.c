/* Unit tests: the LMTP command grammar (server/lmtp/lmtp-command.h): verb
 * split, MAIL and RCPT paths and parameters, UTF-8 checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lmtp-command.h"
#include "wd-result.h"

#include <stdio.h>
#include <string.h>

static int split(const char *line, char *verb, const char **args, size_t *args_len,
		 struct wd_lmtp_error *err)
{
	return wd_lmtp_command_split((const uint8_t *)line, strlen(line), verb, args, args_len, err);
}

static void test_split(void **state)
{
	char verb[WD_LMTP_VERB_MAX];
	const char *args;
	size_t len;
	struct wd_lmtp_error err;
	assert_int_equal(split("mail FROM:<a@b>  ", verb, &args, &len, &err), WD_OK);
	assert_string_equal(verb, "MAIL");
	assert_int_equal(len, 10);
	assert_memory_equal(args, "FROM:<a@b>", 10);
	assert_int_equal(split("QUIT", verb, &args, &len, &err), WD_OK);
	assert_string_equal(verb, "QUIT");
	assert_int_equal(len, 0);
	assert_int_equal(split("NoOp   x", verb, &args, &len, &err), WD_OK);
	assert_string_equal(verb, "NOOP");
	assert_int_equal(len, 1);

	assert_int_equal(split("", verb, &args, &len, &err), WD_ERROR);
	assert_int_equal(err.code, 500);
	assert_string_equal(err.status, "5.5.2");
	assert_int_equal(split(" NOOP", verb, &args, &len, &err), WD_ERROR);
	assert_int_equal(split("NO\rOP", verb, &args, &len, &err), WD_ERROR);
	assert_int_equal(split("N00P", verb, &args, &len, &err), WD_ERROR);
	assert_int_equal(split("ABCDEFGHIJKLMNOPQ", verb, &args, &len, &err), WD_ERROR);
	assert_int_equal(split("\xc3\xa9", verb, &args, &len, &err), WD_ERROR);
	assert_int_equal(wd_lmtp_command_split((const uint8_t *)"NO\0OP", 5, verb, &args, &len, &err),
			 WD_ERROR);
	assert_int_equal(err.code, 500);
}

static void mail_ok(const char *args, const char *address)
{
	struct wd_lmtp_mail mail;
	struct wd_lmtp_error err = { 0 };
	int ret = wd_lmtp_parse_mail(args, strlen(args), &mail, &err);
	if (ret != WD_OK)
		fprintf(stderr, "MAIL %s: %u %s %s\n", args, err.code, err.status, err.text);
	assert_int_equal(ret, WD_OK);
	assert_string_equal(mail.address, address);
}

static void mail_bad(const char *args, unsigned code, const char *status)
{
	struct wd_lmtp_mail mail;
	struct wd_lmtp_error err = { 0 };
	int ret = wd_lmtp_parse_mail(args, strlen(args), &mail, &err);
	if (ret != WD_ERROR || err.code != code || strcmp(err.status, status) != 0)
		fprintf(stderr, "MAIL %s: got %d %u %s\n", args, ret, err.code,
			err.status != NULL ? err.status : "-");
	assert_int_equal(ret, WD_ERROR);
	assert_int_equal(err.code, code);
	assert_string_equal(err.status, status);
}

static void test_mail_paths(void **state)
{
	mail_ok("FROM:<alice@example.com>", "alice@example.com");
	mail_ok("from:<alice@example.com>", "alice@example.com");
	mail_ok("FROM: <alice@example.com>", "alice@example.com");
	mail_ok("FROM:<>", "");
	mail_ok("FROM:<\"john doe\"@example.com>", "\"john doe\"@example.com");
	mail_ok("FROM:<\"a>b\"@example.com>", "\"a>b\"@example.com");
	mail_ok("FROM:<\"a\\\"b\"@example.com>", "\"a\\\"b\"@example.com");
	mail_ok("FROM:<@relay.example,@other.example:bob@example.com>", "bob@example.com");
	mail_ok("FROM:<bob@[192.0.2.1]>", "bob@[192.0.2.1]");
	mail_ok("FROM:<first..last.@example.com>", "first..last.@example.com");
	mail_ok("FROM:<a+tag@sub.example.co.uk>", "a+tag@sub.example.co.uk");

	mail_bad("FROM:alice@example.com", 501, "5.5.4");
	mail_bad("FROM:<alice@example.com", 501, "5.5.4");
	mail_bad("TO:<alice@example.com>", 501, "5.5.4");
	mail_bad("", 501, "5.5.4");
	mail_bad("FROM:<alice>", 501, "5.1.7");
	mail_bad("FROM:<postmaster>", 501, "5.1.7");
	mail_bad("FROM:<alice@>", 501, "5.1.7");
	mail_bad("FROM:<alice@exa mple.com>", 501, "5.1.7");
	mail_bad("FROM:<alice@example..com>", 501, "5.1.7");
	mail_bad("FROM:<alice@.example.com>", 501, "5.1.7");
	mail_bad("FROM:<al ice@example.com>", 501, "5.1.7");
	mail_bad("FROM:<a@b@example.com>", 501, "5.1.7");
	mail_bad("FROM:<\"unterminated@example.com>", 501, "5.5.4");
	mail_bad("FROM:<@relay.example bob@example.com>", 501, "5.1.7");
	mail_bad("FROM:<bob@[1.2.3.4>", 501, "5.1.7");

}

static void test_mail_path_limit(void **state)
{
	char args[400], want[300];
	char local[300];
	memset(local, 'x', sizeof(local));
	/* "<" + local + "@example.com" + ">" = 256 */
	int n = 256 - 2 - 12;
	snprintf(args, sizeof(args), "FROM:<%.*s@example.com>", n, local);
	snprintf(want, sizeof(want), "%.*s@example.com", n, local);
	mail_ok(args, want);
	snprintf(args, sizeof(args), "FROM:<%.*s@example.com>", n + 1, local);
	mail_bad(args, 501, "5.1.7");
}

static void test_mail_params(void **state)
{
	struct wd_lmtp_mail mail;
	struct wd_lmtp_error err;
	const char *a = "FROM:<a@b.example> SIZE=12345 BODY=8BITMIME SMTPUTF8";
	assert_int_equal(wd_lmtp_parse_mail(a, strlen(a), &mail, &err), WD_OK);
	assert_true(mail.has_size);
	assert_int_equal(mail.size, 12345);
	assert_int_equal(mail.body, WD_LMTP_BODY_8BITMIME);
	assert_true(mail.smtputf8);
	a = "FROM:<> body=7bit  size=0";
	assert_int_equal(wd_lmtp_parse_mail(a, strlen(a), &mail, &err), WD_OK);
	assert_int_equal(mail.body, WD_LMTP_BODY_7BIT);
	assert_true(mail.has_size);
	assert_int_equal(mail.size, 0);
	assert_false(mail.smtputf8);

	mail_bad("FROM:<a@b.example> SIZE=", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> SIZE=12x", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> SIZE=99999999999999999999999", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> SIZE=1 SIZE=2", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> SIZE", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> BODY=BINARYMIME", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> BODY=8BITMIME BODY=7BIT", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> SMTPUTF8=yes", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> RET=FULL", 555, "5.5.4");
	mail_bad("FROM:<a@b.example> AUTH=<>", 555, "5.5.4");
	mail_bad("FROM:<a@b.example>SIZE=1", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> =1", 501, "5.5.4");
	mail_bad("FROM:<a@b.example> -X=1", 501, "5.5.4");
}

static void test_mail_utf8(void **state)
{
	struct wd_lmtp_mail mail;
	struct wd_lmtp_error err;
	const char *a = "FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example> SMTPUTF8";
	assert_int_equal(wd_lmtp_parse_mail(a, strlen(a), &mail, &err), WD_OK);
	assert_string_equal(mail.address, "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
	mail_bad("FROM:<j\xc3\xb6rg@example.com>", 553, "5.6.7");
	mail_bad("FROM:<j\xc3rg@example.com> SMTPUTF8", 501, "5.1.7");
	mail_bad("FROM:<j\xed\xa0\x80@example.com> SMTPUTF8", 501, "5.1.7");
}

static void test_rcpt(void **state)
{
	struct wd_lmtp_rcpt rcpt;
	struct wd_lmtp_error err;
	const char *a = "TO:<bob@example.com>";
	assert_int_equal(wd_lmtp_parse_rcpt(a, strlen(a), false, &rcpt, &err), WD_OK);
	assert_string_equal(rcpt.address, "bob@example.com");
	a = "to: <Postmaster>";
	assert_int_equal(wd_lmtp_parse_rcpt(a, strlen(a), false, &rcpt, &err), WD_OK);
	assert_string_equal(rcpt.address, "Postmaster");
	a = "TO:<>";
	assert_int_equal(wd_lmtp_parse_rcpt(a, strlen(a), false, &rcpt, &err), WD_ERROR);
	assert_int_equal(err.code, 501);
	assert_string_equal(err.status, "5.1.3");
	a = "TO:<bob>";
	assert_int_equal(wd_lmtp_parse_rcpt(a, strlen(a), false, &rcpt, &err), WD_ERROR);
	assert_string_equal(err.status, "5.1.3");
	a = "TO:<bob@example.com> NOTIFY=NEVER";
	assert_int_equal(wd_lmtp_parse_rcpt(a, strlen(a), false, &rcpt, &err), WD_ERROR);
	assert_int_equal(err.code, 555);
	a = "FROM:<bob@example.com>";
	assert_int_equal(wd_lmtp_parse_rcpt(a, strlen(a), false, &rcpt, &err), WD_ERROR);
	assert_int_equal(err.code, 501);
	a = "TO:<b\xc3\xb6@example.com>";
	assert_int_equal(wd_lmtp_parse_rcpt(a, strlen(a), false, &rcpt, &err), WD_ERROR);
	assert_int_equal(err.code, 553);
	assert_int_equal(wd_lmtp_parse_rcpt(a, strlen(a), true, &rcpt, &err), WD_OK);
	assert_string_equal(rcpt.address, "b\xc3\xb6@example.com");
	/* a quoted local part that needs no quotes names the unquoted mailbox
	   (tests/isolation: it went to another user's catch-all) */
	const char *same[][2] = {
		{ "TO:<\"bob\"@example.com>", "bob@example.com" },
		{ "TO:<\"b\\ob\"@example.com>", "bob@example.com" },
		{ "TO:<@relay.example:\"bob+x.\"@example.com>", "bob+x.@example.com" },
		{ "TO:<\"bob smith\"@example.com>", "\"bob smith\"@example.com" },
		{ "TO:<\"bob@x\"@example.com>", "\"bob@x\"@example.com" },
		{ "TO:<\"b\\\"ob\"@example.com>", "\"b\\\"ob\"@example.com" },
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		a = same[i][0];
		assert_int_equal(wd_lmtp_parse_rcpt(a, strlen(a), false, &rcpt, &err), WD_OK);
		assert_string_equal(rcpt.address, same[i][1]);
	}
}

static void test_utf8(void **state)
{
	assert_true(wd_lmtp_utf8_valid((const uint8_t *)"plain", 5));
	assert_true(wd_lmtp_utf8_valid((const uint8_t *)"\xe2\x82\xac\xf0\x9f\x98\x80", 7));
	assert_false(wd_lmtp_utf8_valid((const uint8_t *)"\xc0\xaf", 2));     /* overlong */
	assert_false(wd_lmtp_utf8_valid((const uint8_t *)"\xe2\x82", 2));     /* truncated */
	assert_false(wd_lmtp_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(wd_lmtp_utf8_valid((const uint8_t *)"\x80", 1));
	assert_false(wd_lmtp_utf8_valid((const uint8_t *)"\xff", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_mail_paths),
		cmocka_unit_test(test_mail_path_limit),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_mail_utf8),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
