/* Unit tests: FETCH attribute grammar (server/imap/imap-fetch-args.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-fetch-args.h"
#include "imap-parse-log.h"
#include "wd-result.h"

#include <stdio.h>
#include <string.h>

/* Parses "t [UID ]FETCH 1 <rest>". */
static int parse(const char *rest, bool uid, struct wd_imap_command **cmd_r,
		 struct wd_imap_fetch_args *fetch, const char **error_r)
{
	char line[1024];
	snprintf(line, sizeof(line), "t %sFETCH 1 %s\r\n", uid ? "UID " : "", rest);
	*cmd_r = imap_parse_command(line);
	if (*cmd_r == NULL) {
		*error_r = "rejected by the parser";
		return WD_ERROR;
	}
	return wd_imap_fetch_args_parse((*cmd_r)->arena, (*cmd_r)->args + 1,
					(*cmd_r)->arg_count - 1, uid, fetch, error_r);
}

static void test_macros_and_items(void **state)
{
	(void)state;
	struct wd_imap_command *cmd;
	struct wd_imap_fetch_args f;
	const char *error = NULL;

	assert_int_equal(parse("ALL", false, &cmd, &f, &error), WD_OK);
	assert_int_equal(f.items, WD_IMAP_FETCH_FLAGS | WD_IMAP_FETCH_INTERNALDATE |
				  WD_IMAP_FETCH_RFC822_SIZE | WD_IMAP_FETCH_ENVELOPE);
	assert_int_equal(f.body_count, 0);
	wd_imap_command_destroy(&cmd);
	assert_int_equal(parse("fast", false, &cmd, &f, &error), WD_OK);
	assert_int_equal(f.items, WD_IMAP_FETCH_FLAGS | WD_IMAP_FETCH_INTERNALDATE |
				  WD_IMAP_FETCH_RFC822_SIZE);
	wd_imap_command_destroy(&cmd);
	assert_int_equal(parse("FULL", true, &cmd, &f, &error), WD_OK);
	assert_true(f.items & WD_IMAP_FETCH_BODY);
	assert_true(f.items & WD_IMAP_FETCH_UID); /* implied by UID FETCH */
	wd_imap_command_destroy(&cmd);
	assert_int_equal(parse("(FLAGS uid BODYSTRUCTURE MODSEQ EMAILID THREADID BODY)", false,
			       &cmd, &f, &error), WD_OK);
	assert_int_equal(f.items, WD_IMAP_FETCH_FLAGS | WD_IMAP_FETCH_UID |
				  WD_IMAP_FETCH_BODYSTRUCTURE | WD_IMAP_FETCH_MODSEQ |
				  WD_IMAP_FETCH_EMAILID | WD_IMAP_FETCH_THREADID | WD_IMAP_FETCH_BODY);
	assert_false(f.sets_seen);
	wd_imap_command_destroy(&cmd);
}

static void test_bodies(void **state)
{
	(void)state;
	struct wd_imap_command *cmd;
	struct wd_imap_fetch_args f;
	const char *error = NULL;

	assert_int_equal(parse("(BODY.PEEK[HEADER.FIELDS (From \"Sub]ject\")]<0.100> BODY[] "
			       "body[1.2.MIME] BINARY.PEEK[1]<5.10> BINARY.SIZE[2] BINARY[] "
			       "RFC822.HEADER RFC822 RFC822.TEXT)", false, &cmd, &f, &error), WD_OK);
	assert_int_equal(f.body_count, 9);
	assert_true(f.sets_seen);

	const struct wd_imap_fetch_body *b = f.bodies;
	assert_int_equal(b[0].kind, WD_IMAP_FETCH_SECTION);
	assert_true(b[0].peek);
	assert_true(b[0].partial);
	assert_int_equal(b[0].offset, 0);
	assert_int_equal(b[0].length, 100);
	assert_int_equal(b[0].spec.type, WD_MIME_SECTION_HEADER_FIELDS);
	assert_int_equal(b[0].spec.field_count, 2);
	assert_string_equal(b[0].spec.fields[1], "Sub]ject");
	assert_string_equal(b[0].response_name, "BODY[HEADER.FIELDS (From \"Sub]ject\")]<0>");

	assert_false(b[1].peek);
	assert_string_equal(b[1].response_name, "BODY[]");
	assert_int_equal(b[1].spec.path_len, 0);

	assert_int_equal(b[2].spec.type, WD_MIME_SECTION_MIME);
	assert_int_equal(b[2].spec.path_len, 2);
	assert_string_equal(b[2].response_name, "BODY[1.2.MIME]");

	assert_int_equal(b[3].kind, WD_IMAP_FETCH_BINARY);
	assert_true(b[3].peek);
	assert_string_equal(b[3].response_name, "BINARY[1]<5>");
	assert_int_equal(b[4].kind, WD_IMAP_FETCH_BINARY_SIZE);
	assert_string_equal(b[4].response_name, "BINARY.SIZE[2]");
	assert_false(b[5].peek);

	assert_int_equal(b[6].kind, WD_IMAP_FETCH_RFC822);
	assert_true(b[6].peek);
	assert_int_equal(b[6].spec.type, WD_MIME_SECTION_HEADER);
	assert_string_equal(b[6].response_name, "RFC822.HEADER");
	assert_false(b[7].peek);
	assert_int_equal(b[7].spec.type, WD_MIME_SECTION_BODY);
	assert_int_equal(b[8].spec.type, WD_MIME_SECTION_TEXT);
	wd_imap_command_destroy(&cmd);

	/* a single attribute without a list */
	assert_int_equal(parse("BODY.PEEK[TEXT]", false, &cmd, &f, &error), WD_OK);
	assert_int_equal(f.body_count, 1);
	assert_false(f.sets_seen);
	wd_imap_command_destroy(&cmd);
}

static void test_modifiers(void **state)
{
	(void)state;
	struct wd_imap_command *cmd;
	struct wd_imap_fetch_args f;
	const char *error = NULL;

	assert_int_equal(parse("(FLAGS) (CHANGEDSINCE 12345 VANISHED)", true, &cmd, &f, &error),
			 WD_OK);
	assert_true(f.changedsince_set);
	assert_int_equal(f.changedsince, 12345);
	assert_true(f.vanished);
	assert_true(f.items & WD_IMAP_FETCH_MODSEQ);
	wd_imap_command_destroy(&cmd);
	assert_int_equal(parse("FLAGS (CHANGEDSINCE 1)", false, &cmd, &f, &error), WD_OK);
	assert_false(f.vanished);
	wd_imap_command_destroy(&cmd);
}

static void test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *rest;
		bool uid;
	} bad[] = {
		{ "()", false },
		{ "(ALL)", false },                 /* macros only alone */
		{ "(FLAGS FOO)", false },
		{ "\"FLAGS\"", false },
		{ "BODY.PEEK", false },
		{ "BODY[HEADER", false },
		{ "BODY[FOO]", false },
		{ "BODY[0]", false },
		{ "BODY[1.]", false },
		{ "BODY[MIME]", false },            /* MIME needs a part */
		{ "BODY[]<0>", false },
		{ "BODY[]<1.0>", false },
		{ "BODY[]<a.1>", false },
		{ "BODY[]<1.2>x", false },
		{ "BINARY[HEADER]", false },
		{ "BINARY.SIZE[1]<0.5>", false },
		{ "BODYX[1]", false },
		{ "FLAGS (VANISHED)", true },        /* without CHANGEDSINCE */
		{ "FLAGS (CHANGEDSINCE 5 VANISHED)", false }, /* not UID FETCH */
		{ "FLAGS (CHANGEDSINCE)", false },
		{ "FLAGS (CHANGEDSINCE x)", false },
		{ "FLAGS (CHANGEDSINCE 9223372036854775808)", false },
		{ "FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", false },
		{ "FLAGS ()", false },
		{ "FLAGS (FOO)", false },
		{ "FLAGS FLAGS", false },
		{ "FLAGS (CHANGEDSINCE 1) X", false },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wd_imap_command *cmd;
		struct wd_imap_fetch_args f;
		const char *error = NULL;
		if (parse(bad[i].rest, bad[i].uid, &cmd, &f, &error) != WD_ERROR) {
			fprintf(stderr, "accepted %s\n", bad[i].rest);
			fail();
		}
		assert_non_null(error);
		wd_imap_command_destroy(&cmd);
	}
}

static void test_body_limit(void **state)
{
	(void)state;
	char rest[2048] = "(";
	struct wd_imap_command *cmd;
	struct wd_imap_fetch_args f;
	const char *error = NULL;

	for (int i = 0; i <= WD_IMAP_FETCH_MAX_BODIES; i++)
		strcat(rest, "BODY[] ");
	strcat(rest, "FLAGS)");
	assert_int_equal(parse(rest, false, &cmd, &f, &error), WD_ERROR);
	assert_string_equal(error, "Too many FETCH body attributes");
	wd_imap_command_destroy(&cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_macros_and_items),
		cmocka_unit_test(test_bodies),
		cmocka_unit_test(test_modifiers),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_body_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
