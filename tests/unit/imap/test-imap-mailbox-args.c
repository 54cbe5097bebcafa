/* Unit tests: SELECT/EXAMINE parameters, STATUS items, LIST-EXTENDED
 * (server/imap/imap-mailbox-args.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-mailbox-args.h"
#include "imap-parse-log.h"
#include "wd-result.h"

#include <stdio.h>
#include <string.h>

static struct wd_imap_command *command(const char *line)
{
	struct wd_imap_command *cmd = imap_parse_command(line);
	if (cmd == NULL) {
		fprintf(stderr, "parser rejected %s", line);
		fail();
	}
	return cmd;
}

static int select_parse(const char *line, struct wd_imap_command **cmd_r,
			struct wd_imap_select_args *sel, const char **error_r)
{
	*cmd_r = command(line);
	return wd_imap_select_args_parse((*cmd_r)->arena, (*cmd_r)->args, (*cmd_r)->arg_count,
					 sel, error_r);
}

static int list_parse(const char *line, struct wd_imap_command **cmd_r,
		      struct wd_imap_list_args *list, const char **error_r)
{
	*cmd_r = command(line);
	return wd_imap_list_args_parse((*cmd_r)->arena, (*cmd_r)->args, (*cmd_r)->arg_count, list,
				       error_r);
}

static void test_select(void **state)
{
	(void)state;
	struct wd_imap_command *cmd;
	struct wd_imap_select_args sel;
	const char *error = NULL;

	assert_int_equal(select_parse("t SELECT INBOX\r\n", &cmd, &sel, &error), WD_OK);
	assert_string_equal(sel.mailbox, "INBOX");
	assert_false(sel.condstore || sel.qresync);
	wd_imap_command_destroy(&cmd);

	assert_int_equal(select_parse("t EXAMINE \"a b\" (condstore)\r\n", &cmd, &sel, &error), WD_OK);
	assert_string_equal(sel.mailbox, "a b");
	assert_true(sel.condstore);
	wd_imap_command_destroy(&cmd);

	/* RFC 7162 §3.2.5.2 example shape */
	assert_int_equal(select_parse("t SELECT INBOX (QRESYNC (67890007 20050715194045000 "
				      "41,43:211,214:541 (1:5,7 41:44,46)))\r\n", &cmd, &sel, &error),
			 WD_OK);
	assert_true(sel.qresync);
	assert_int_equal(sel.uidvalidity, 67890007);
	assert_int_equal(sel.modseq, 20050715194045000ULL);
	assert_int_equal(sel.known_uids.count, 3);
	assert_true(sel.has_seq_match);
	assert_int_equal(sel.known_seqs.count, 2);
	assert_int_equal(sel.known_seq_uids.count, 2);
	wd_imap_command_destroy(&cmd);

	assert_int_equal(select_parse("t SELECT INBOX (QRESYNC (1 0 (1 2)) CONDSTORE)\r\n", &cmd,
				      &sel, &error), WD_OK);
	assert_int_equal(sel.known_uids.count, 0);
	assert_true(sel.has_seq_match && sel.condstore);
	wd_imap_command_destroy(&cmd);

	static const char *const bad[] = {
		"t SELECT\r\n", "t SELECT INBOX ()\r\n", "t SELECT INBOX (FOO)\r\n",
		"t SELECT INBOX (CONDSTORE CONDSTORE)\r\n", "t SELECT INBOX (QRESYNC)\r\n",
		"t SELECT INBOX (QRESYNC (0 1))\r\n", "t SELECT INBOX (QRESYNC (1))\r\n",
		"t SELECT INBOX (QRESYNC (1 x))\r\n", "t SELECT INBOX (QRESYNC (4294967296 1))\r\n",
		"t SELECT INBOX (QRESYNC (1 2 3:x))\r\n", "t SELECT INBOX (QRESYNC (1 2 (1)))\r\n",
		"t SELECT INBOX (QRESYNC (1 2 3 (1 2) 4))\r\n", "t SELECT INBOX CONDSTORE\r\n",
		"t SELECT (a) \r\n", "t SELECT INBOX (CONDSTORE) x\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wd_imap_command *c = imap_parse_command(bad[i]);
		if (c == NULL)
			continue; /* rejected by the parser already */
		if (wd_imap_select_args_parse(c->arena, c->args, c->arg_count, &sel, &error) !=
		    WD_ERROR) {
			fprintf(stderr, "accepted %s", bad[i]);
			fail();
		}
		wd_imap_command_destroy(&c);
	}
}

static void test_status_items(void **state)
{
	(void)state;
	struct wd_imap_command *cmd = command("t STATUS x (messages UIDNEXT UIDVALIDITY UNSEEN "
					      "HIGHESTMODSEQ SIZE RECENT APPENDLIMIT MAILBOXID "
					      "DELETED)\r\n");
	unsigned items;
	const char *error;

	assert_int_equal(wd_imap_status_items_parse(&cmd->args[1], &items, &error), WD_OK);
	assert_int_equal(items, (1u << 10) - 1);
	assert_int_equal(wd_imap_status_items_parse(&cmd->args[0], &items, &error), WD_ERROR);
	wd_imap_command_destroy(&cmd);
	cmd = command("t STATUS x (MESSAGES MESSAGES)\r\n");
	assert_int_equal(wd_imap_status_items_parse(&cmd->args[1], &items, &error), WD_ERROR);
	wd_imap_command_destroy(&cmd);
	cmd = command("t STATUS x ()\r\n");
	assert_int_equal(wd_imap_status_items_parse(&cmd->args[1], &items, &error), WD_ERROR);
	wd_imap_command_destroy(&cmd);
}

static void test_list(void **state)
{
	(void)state;
	struct wd_imap_command *cmd;
	struct wd_imap_list_args l;
	const char *error = NULL;

	assert_int_equal(list_parse("t LIST \"\" *\r\n", &cmd, &l, &error), WD_OK);
	assert_false(l.extended);
	assert_string_equal(l.reference, "");
	assert_int_equal(l.pattern_count, 1);
	assert_string_equal(l.patterns[0], "*");
	wd_imap_command_destroy(&cmd);

	assert_int_equal(list_parse("t LIST \"\" \"\"\r\n", &cmd, &l, &error), WD_OK);
	assert_string_equal(l.patterns[0], "");
	wd_imap_command_destroy(&cmd);

	assert_int_equal(list_parse("t LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX Drafts/% "
				    "\"Sent Items\") RETURN (CHILDREN special-use STATUS "
				    "(MESSAGES UNSEEN))\r\n", &cmd, &l, &error), WD_OK);
	assert_true(l.extended);
	assert_int_equal(l.select, WD_IMAP_LIST_SELECT_SUBSCRIBED |
				   WD_IMAP_LIST_SELECT_RECURSIVEMATCH);
	assert_int_equal(l.pattern_count, 3);
	assert_string_equal(l.patterns[2], "Sent Items");
	assert_int_equal(l.return_opts, WD_IMAP_LIST_RETURN_CHILDREN |
					WD_IMAP_LIST_RETURN_SPECIAL_USE |
					WD_IMAP_LIST_RETURN_STATUS);
	assert_int_equal(l.status_items, WD_IMAP_STATUS_MESSAGES | WD_IMAP_STATUS_UNSEEN);
	wd_imap_command_destroy(&cmd);

	assert_int_equal(list_parse("t LIST () \"\" % RETURN ()\r\n", &cmd, &l, &error), WD_OK);
	assert_true(l.extended);
	assert_int_equal(l.select, 0);
	assert_int_equal(l.return_opts, 0);
	wd_imap_command_destroy(&cmd);

	static const char *const bad[] = {
		"t LIST\r\n", "t LIST \"\"\r\n", "t LIST (RECURSIVEMATCH) \"\" *\r\n",
		"t LIST (FOO) \"\" *\r\n", "t LIST (REMOTE REMOTE) \"\" *\r\n",
		"t LIST \"\" ()\r\n", "t LIST \"\" * RETURN\r\n", "t LIST \"\" * RETURN (FOO)\r\n",
		"t LIST \"\" * RETURN (STATUS)\r\n", "t LIST \"\" * RETURN (STATUS (FOO))\r\n",
		"t LIST \"\" * RETURN (CHILDREN CHILDREN)\r\n", "t LIST \"\" * FOO ()\r\n",
		"t LIST \"\" * RETURN () x\r\n", "t LIST (a) b\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wd_imap_command *c = imap_parse_command(bad[i]);
		if (c == NULL)
			continue;
		if (wd_imap_list_args_parse(c->arena, c->args, c->arg_count, &l, &error) != WD_ERROR) {
			fprintf(stderr, "accepted %s", bad[i]);
			fail();
		}
		wd_imap_command_destroy(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_status_items),
		cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
