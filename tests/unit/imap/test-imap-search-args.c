/* Unit tests: SEARCH grammar and conversion to storage keys
 * (server/imap/imap-search-args.h). Trees are compared as s-expressions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-parse-log.h"
#include "imap-search-args.h"
#include "imap-view.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (86400 * (int64_t)1000)

static void print_set(struct wd_buffer *out, const struct wd_imap_seqset *set)
{
	if (set->saved) {
		wd_buffer_append_str(out, "$");
		return;
	}
	for (size_t i = 0; i < set->count; i++) {
		const struct wd_imap_seq_range *r = &set->ranges[i];
		wd_buffer_printf(out, i ? "," : "");
		if (r->first == WD_IMAP_SEQ_STAR)
			wd_buffer_append_str(out, "*");
		else
			wd_buffer_printf(out, "%u", r->first);
		if (r->last != r->first)
			wd_buffer_printf(out, r->last == WD_IMAP_SEQ_STAR ? ":*" : ":%u", r->last);
	}
}

static const char *const imap_types[] = {
	"ALL", "AND", "OR", "NOT", "SEQ", "UID", "FLAG", "RECENT", "NEW", "OLD", "HEADER",
	"BODY", "TEXT", "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE", "LARGER",
	"SMALLER", "MODSEQ",
};

static void print_key(struct wd_buffer *out, const struct wd_imap_search_key *key)
{
	const char *name = imap_types[key->type];

	switch (key->type) {
	case WD_IMAP_SEARCH_ALL:
	case WD_IMAP_SEARCH_RECENT:
	case WD_IMAP_SEARCH_NEW:
	case WD_IMAP_SEARCH_OLD:
		wd_buffer_append_str(out, name);
		return;
	default:
		break;
	}
	wd_buffer_printf(out, "(%s", name);
	switch (key->type) {
	case WD_IMAP_SEARCH_AND:
	case WD_IMAP_SEARCH_OR:
	case WD_IMAP_SEARCH_NOT:
		for (size_t i = 0; i < key->child_count; i++) {
			wd_buffer_append_str(out, " ");
			print_key(out, key->children[i]);
		}
		break;
	case WD_IMAP_SEARCH_SEQSET:
	case WD_IMAP_SEARCH_UIDSET:
		wd_buffer_append_str(out, " ");
		print_set(out, &key->set);
		break;
	case WD_IMAP_SEARCH_FLAG:
		wd_buffer_printf(out, " %s %d", key->flag, key->flag_set);
		break;
	case WD_IMAP_SEARCH_HEADER:
		wd_buffer_printf(out, " %s %s", key->name, key->value);
		break;
	case WD_IMAP_SEARCH_BODY:
	case WD_IMAP_SEARCH_TEXT:
		wd_buffer_printf(out, " %s", key->value);
		break;
	case WD_IMAP_SEARCH_LARGER:
	case WD_IMAP_SEARCH_SMALLER:
		wd_buffer_printf(out, " %llu", (unsigned long long)key->number);
		break;
	case WD_IMAP_SEARCH_MODSEQ:
		wd_buffer_printf(out, " %llu", (unsigned long long)key->number);
		if (key->modseq_entry != NULL)
			wd_buffer_printf(out, " %s %s", key->modseq_entry, key->modseq_type);
		break;
	default: /* dates */
		wd_buffer_printf(out, " %lld", (long long)(key->day_ms / DAY_MS));
		break;
	}
	wd_buffer_append_str(out, ")");
}

static const char *const store_ops[] = {
	"ALL", "AND", "OR", "NOT", "UID", "FLAG", "HEADER", "BODY", "TEXT", "BEFORE", "ON",
	"SINCE", "SENTBEFORE", "SENTON", "SENTSINCE", "LARGER", "SMALLER", "MODSEQ",
};

static void print_store(struct wd_buffer *out, const struct wd_search_key *key)
{
	if (key->op == WD_SEARCH_ALL) {
		wd_buffer_append_str(out, "ALL");
		return;
	}
	wd_buffer_printf(out, "(%s", store_ops[key->op]);
	for (size_t i = 0; i < key->child_count; i++) {
		wd_buffer_append_str(out, " ");
		print_store(out, key->children[i]);
	}
	for (size_t i = 0; i < key->range_count; i++)
		wd_buffer_printf(out, "%s%u:%u", i ? "," : " ", key->ranges[i].first,
				 key->ranges[i].last);
	if (key->op == WD_SEARCH_FLAG)
		wd_buffer_printf(out, " %s %d", key->flag, key->set);
	if (key->op == WD_SEARCH_HEADER)
		wd_buffer_printf(out, " %s %s", key->name, key->value);
	if (key->op == WD_SEARCH_LARGER || key->op == WD_SEARCH_MODSEQ)
		wd_buffer_printf(out, " %llu", (unsigned long long)key->number);
	if (key->op == WD_SEARCH_SINCE)
		wd_buffer_printf(out, " %lld", (long long)(key->day_ms / DAY_MS));
	wd_buffer_append_str(out, ")");
}

static int parse(const char *rest, const struct wd_imap_search_limits *limits,
		 struct wd_imap_command **cmd_r, struct wd_imap_search_program *prog,
		 const char **error_r)
{
	size_t len = strlen(rest) + 16;
	char *line = malloc(len);
	snprintf(line, len, "t SEARCH %s\r\n", rest);
	*cmd_r = imap_parse_command(line);
	free(line);
	if (*cmd_r == NULL) {
		*error_r = "rejected by the parser";
		return WD_ERROR;
	}
	return wd_imap_search_parse((*cmd_r)->arena, (*cmd_r)->args, (*cmd_r)->arg_count, limits,
				    prog, error_r);
}

static char *tree_text(const struct wd_imap_search_key *key)
{
	struct wd_buffer out = WD_BUFFER_INIT;
	size_t n;
	print_key(&out, key);
	wd_buffer_append(&out, "", 1);
	return (char *)wd_buffer_steal(&out, &n);
}

static void test_grammar(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "ALL", "(AND ALL)" },
		{ "unseen FROM \"bob\" SINCE 1-Feb-2024 before \"01-feb-2024\"",
		  "(AND (FLAG \\Seen 0) (HEADER from bob) (SINCE 19754) (BEFORE 19754))" },
		{ "OR (SEEN FLAGGED) NOT 1:3,5",
		  "(AND (OR (AND (FLAG \\Seen 1) (FLAG \\Flagged 1)) (NOT (SEQ 1:3,5))))" },
		{ "UID 1:* $ *:4", "(AND (UID 1:*) (SEQ $) (SEQ *:4))" },
		{ "HEADER X-Spam yes LARGER 100 SMALLER 200",
		  "(AND (HEADER X-Spam yes) (LARGER 100) (SMALLER 200))" },
		{ "KEYWORD $Forwarded UNKEYWORD Junk ANSWERED UNDRAFT DELETED",
		  "(AND (FLAG $Forwarded 1) (FLAG Junk 0) (FLAG \\Answered 1) (FLAG \\Draft 0) "
		  "(FLAG \\Deleted 1))" },
		{ "MODSEQ \"/flags/\\\\draft\" ALL 620162338 MODSEQ 0",
		  "(AND (MODSEQ 620162338 /flags/\\draft all) (MODSEQ 0))" },
		{ "NEW OLD RECENT", "(AND NEW OLD RECENT)" },
		{ "SUBJECT {3+}\r\nabc BODY NIL TEXT \"\xc3\xa4\"",
		  "(AND (HEADER subject abc) (BODY NIL) (TEXT \xc3\xa4))" },
		{ "SENTON 1-Jan-1970 SENTSINCE 29-Feb-2000 SENTBEFORE 1-Mar-1600 ON 31-Dec-2023",
		  "(AND (SENTON 0) (SENTSINCE 11016) (SENTBEFORE -135080) (ON 19722))" },
		{ "CC a BCC b TO c", "(AND (HEADER cc a) (HEADER bcc b) (HEADER to c))" },
		{ "OR OR 1 2 3", "(AND (OR (OR (SEQ 1) (SEQ 2)) (SEQ 3)))" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wd_imap_command *cmd;
		struct wd_imap_search_program prog;
		const char *error = NULL;
		if (parse(cases[i].in, NULL, &cmd, &prog, &error) != WD_OK) {
			fprintf(stderr, "rejected %s: %s\n", cases[i].in, error);
			fail();
		}
		char *text = tree_text(prog.root);
		if (strcmp(text, cases[i].out) != 0) {
			fprintf(stderr, "%s\n  expected %s\n  got      %s\n", cases[i].in,
				cases[i].out, text);
			fail();
		}
		free(text);
		wd_imap_command_destroy(&cmd);
	}
}

static void test_program_options(void **state)
{
	(void)state;
	struct wd_imap_command *cmd;
	struct wd_imap_search_program prog;
	const char *error = NULL;

	assert_int_equal(parse("RETURN (MIN COUNT save) CHARSET utf-8 MODSEQ 5 $", NULL, &cmd,
			       &prog, &error), WD_OK);
	assert_true(prog.esearch);
	assert_int_equal(prog.return_options, WD_IMAP_SEARCH_RETURN_MIN |
					      WD_IMAP_SEARCH_RETURN_COUNT |
					      WD_IMAP_SEARCH_RETURN_SAVE);
	assert_string_equal(prog.charset, "utf-8");
	assert_true(prog.uses_modseq);
	assert_true(prog.uses_saved);
	wd_imap_command_destroy(&cmd);

	assert_int_equal(parse("RETURN () ALL", NULL, &cmd, &prog, &error), WD_OK);
	assert_int_equal(prog.return_options, WD_IMAP_SEARCH_RETURN_ALL);
	assert_false(prog.uses_modseq);
	assert_null(prog.charset);
	wd_imap_command_destroy(&cmd);

	assert_int_equal(parse("CHARSET KOI8-R ALL", NULL, &cmd, &prog, &error), WD_ERROR);
	assert_true(prog.bad_charset);
	wd_imap_command_destroy(&cmd);
}

static void test_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "FOO", "NOT", "OR SEEN", "()", "UID", "UID abc", "UID 1:0", "0",
		"SINCE 32-Jan-2024", "SINCE 29-Feb-2023", "SINCE 1-Foo-2024", "SINCE 1-Jan-24",
		"SINCE 001-Jan-2024", "SINCE {10+}\r\n1-Jan-2024", "SINCE", "LARGER x", "LARGER -1",
		"LARGER 18446744073709551616", "KEYWORD \\Seen", "KEYWORD (a)", "HEADER", "HEADER a",
		"HEADER \"a:b\" c", "MODSEQ", "MODSEQ \"/flags/x\" bogus 5", "MODSEQ \"/x\" all 5",
		"MODSEQ 9223372036854775808", "RETURN (FOO) ALL", "RETURN ALL", "CHARSET",
		"SUBJECT {1+}\r\n\xff", "SUBJECT (a)", "CHARSET UTF-8", "RETURN (MIN)", "$,1",
		"1:3 (SEEN ())",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wd_imap_command *cmd;
		struct wd_imap_search_program prog;
		const char *error = NULL;
		if (parse(bad[i], NULL, &cmd, &prog, &error) != WD_ERROR) {
			fprintf(stderr, "accepted \"%s\"\n", bad[i]);
			fail();
		}
		assert_non_null(error);
		wd_imap_command_destroy(&cmd);
	}
}

static void test_limits(void **state)
{
	(void)state;
	struct wd_imap_search_limits limits = { .max_depth = 8, .max_keys = 100, .max_ranges = 3 };
	struct wd_imap_command *cmd;
	struct wd_imap_search_program prog;
	const char *error = NULL;
	char deep[512] = "";

	for (int i = 0; i < 20; i++)
		strcat(deep, "NOT ");
	strcat(deep, "ALL");
	assert_int_equal(parse(deep, &limits, &cmd, &prog, &error), WD_ERROR);
	assert_string_equal(error, "Search program nested too deeply");
	wd_imap_command_destroy(&cmd);
	/* deep NOT chains are bounded with the default limits too */
	char *chain = malloc(5 * 3000 + 8);
	chain[0] = '\0';
	for (int i = 0; i < 3000; i++)
		strcat(chain, "NOT ");
	strcat(chain, "ALL");
	assert_int_equal(parse(chain, NULL, &cmd, &prog, &error), WD_ERROR);
	free(chain);
	wd_imap_command_destroy(&cmd);
	assert_int_equal(parse("(((((((((ALL)))))))))", &limits, &cmd, &prog, &error), WD_ERROR);
	wd_imap_command_destroy(&cmd);
	limits.max_keys = 6;
	assert_int_equal(parse("SEEN SEEN SEEN SEEN SEEN", &limits, &cmd, &prog, &error), WD_OK);
	wd_imap_command_destroy(&cmd);
	assert_int_equal(parse("SEEN SEEN SEEN SEEN SEEN SEEN", &limits, &cmd, &prog, &error),
			 WD_ERROR);
	assert_string_equal(error, "Too many search keys");
	wd_imap_command_destroy(&cmd);
	assert_int_equal(parse("1,2,3,4", &limits, &cmd, &prog, &error), WD_ERROR);
	wd_imap_command_destroy(&cmd);
}

static char *convert(const char *rest, const struct wd_imap_search_view *view)
{
	struct wd_imap_command *cmd;
	struct wd_imap_search_program prog;
	struct wd_search_key *key;
	const char *error = NULL;
	struct wd_buffer out = WD_BUFFER_INIT;
	size_t n;

	assert_int_equal(parse(rest, NULL, &cmd, &prog, &error), WD_OK);
	assert_int_equal(wd_imap_search_to_store(cmd->arena, prog.root, view, &key, &error), WD_OK);
	print_store(&out, key);
	wd_buffer_append(&out, "", 1);
	wd_imap_command_destroy(&cmd);
	return (char *)wd_buffer_steal(&out, &n);
}

static void test_to_store(void **state)
{
	(void)state;
	static const uint32_t uids[] = { 3, 5, 6, 7, 10 };
	static const uint32_t recent[] = { 7, 10, 11 };
	struct wd_imap_seq_range saved_ranges[] = { { 5, 5 }, { 7, 7 } };
	struct wd_imap_seqset saved = { .ranges = saved_ranges, .count = 2 };
	struct wd_imap_view *mailbox_view = wd_imap_view_create();
	for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++)
		assert_int_equal(wd_imap_view_append(mailbox_view, uids[i]), WD_OK);
	struct wd_imap_search_view view = {
		.view = mailbox_view, .saved = &saved, .recent = recent, .recent_count = 3,
	};
	struct wd_imap_search_view empty = { 0 };
	static const struct {
		const char *in, *out;
		bool empty;
	} cases[] = {
		{ "2:4", "(AND (UID 5:7))", false },
		{ "*", "(AND (UID 10:10))", false },
		{ "4:100,1", "(AND (UID 3:3,7:10))", false },
		{ "6:*", "(AND (UID 10:10))", false },
		{ "7", "(AND (NOT ALL))", false },
		{ "$", "(AND (UID 5:5,7:7))", false },
		{ "UID $", "(AND (UID 5:5,7:7))", false },
		{ "UID 4:*", "(AND (UID 4:10))", false },
		{ "UID 20:*", "(AND (UID 10:20))", false },
		{ "RECENT", "(AND (UID 7:7,10:11))", false },
		{ "NEW", "(AND (AND (UID 7:7,10:11) (FLAG \\Seen 0)))", false },
		{ "OLD", "(AND (NOT (UID 7:7,10:11)))", false },
		{ "OR SEEN NOT FROM x", "(AND (OR (FLAG \\Seen 1) (NOT (HEADER from x))))", false },
		{ "LARGER 5 MODSEQ 7 SINCE 2-Jan-1970",
		  "(AND (LARGER 5) (MODSEQ 7) (SINCE 1))", false },
		{ "1:*", "(AND (NOT ALL))", true },
		{ "$", "(AND (NOT ALL))", true },
		{ "RECENT", "(AND (NOT ALL))", true },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = convert(cases[i].in, cases[i].empty ? &empty : &view);
		if (strcmp(text, cases[i].out) != 0) {
			fprintf(stderr, "%s\n  expected %s\n  got      %s\n", cases[i].in,
				cases[i].out, text);
			fail();
		}
		free(text);
	}
	wd_imap_view_destroy(&mailbox_view);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_program_options),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_to_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
