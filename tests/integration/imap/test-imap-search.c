/* Integration tests (suite imap): SEARCH execution (server/imap/imap-search.h)
 * against the real stack. Each program goes through the real parser,
 * wd_imap_search_to_store() with a session view, and one database query
 * (plus the residual evaluator where needed), and must give the
 * hand-checked UID list: every RFC 3501 key (address and subject headers
 * case-insensitive, other headers, BODY/TEXT, internal and sent dates,
 * sizes, flags, keywords, NOT/OR nesting, sequence and UID sets,
 * RECENT/NEW/OLD), CHARSET, MODSEQ with the highest MODSEQ of the matches,
 * and the SEARCH/ESEARCH responses with compact sets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-search-args.h"
#include "imap-view.h"
#include "imap-search.h"
#include "imap-test-stack.h"
#include "wd-buffer.h"

#define DAY (24LL * 3600 * 1000)
#define D0 1767225600000LL /* 2026-01-01T00:00:00Z */

struct fixture {
	const char *raw;
	const char *flags[3];
	int64_t idate;
};

static const struct fixture fixtures[] = {
	{ "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: Hello World\r\n"
	  "Date: Wed, 31 Dec 2025 12:00:00 +0000\r\nX-Mailer: Foo 1.0\r\n\r\n"
	  "the quick brown fox\r\n",
	  { "\\Seen" }, D0 },
	{ "From: Bob <bob@example.org>\r\nCc: carol@example.net\r\nSubject: Re: hello again\r\n"
	  "Date: Thu, 1 Jan 2026 12:00:00 +0000\r\nX-Priority: 1\r\n\r\nlazy dog\r\n",
	  { "\\Flagged", "$Label1" }, D0 + DAY },
	{ "From: =?UTF-8?Q?=C3=87a_Va?= <cava@example.fr>\r\nTo: alice@example.com\r\n"
	  "Bcc: secret@example.com\r\nSubject: =?UTF-8?Q?=C3=9Cn=C3=AFcode_Stra=C3=9Fe?=\r\n"
	  "Date: Fri, 2 Jan 2026 12:00:00 +0000\r\n\r\nSTRASSE in caps, axb\r\n",
	  { "\\Seen", "\\Deleted" }, D0 + 2 * DAY },
	{ "From: alice@example.com\r\nSubject: a.b*c\r\nDate: Sat, 3 Jan 2026 12:00:00 +0000\r\n"
	  "X-Long:\r\n continued header\r\n\r\n"
	  "nothing here\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
	  { "\\Draft", "\\Answered" }, D0 + 2 * DAY + 3600000 },
	{ "From: nobody@example.net\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	  "Ünïcode body text\r\n", { NULL },
	  D0 + 10 * DAY },
};
#define N_FIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static uint32_t view_uids[N_FIXTURES];

/* Run `program` (the arguments of SEARCH) and return the matching UIDs as
   a set ("1,3:4", "" for none); *modseq_r gets the highest MODSEQ. */
static char *search(const char *program, const uint32_t *recent, size_t recent_count,
		    uint64_t *modseq_r)
{
	char line[1024];
	snprintf(line, sizeof(line), "t SEARCH %s\r\n", program);
	struct wd_imap_command *cmd = imap_parse_command(line);
	if (cmd == NULL)
		fail_msg("parser rejected %s", program);
	struct wd_imap_search_program prog;
	const char *error = NULL;
	if (wd_imap_search_parse(cmd->arena, cmd->args, cmd->arg_count, NULL, &prog, &error) < 0)
		fail_msg("%s: %s", program, error);
	struct wd_imap_view *mailbox_view = wd_imap_view_create();
	for (size_t i = 0; i < N_FIXTURES; i++)
		assert_int_equal(wd_imap_view_append(mailbox_view, view_uids[i]), WD_OK);
	struct wd_imap_search_view view = {
		.view = mailbox_view, .recent = recent, .recent_count = recent_count,
	};
	struct wd_search_key *key;
	assert_int_equal(wd_imap_search_to_store(cmd->arena, prog.root, &view, &key, &error), WD_OK);
	wd_imap_view_destroy(&mailbox_view);
	struct wd_imap_search_result result;
	char *err = NULL;
	if (wd_imap_search_run(store, &mailbox, key, view_uids[N_FIXTURES - 1], prog.uses_modseq,
			       &result, &err) < 0)
		fail_msg("%s: %s", program, err);
	struct wd_buffer out = WD_BUFFER_INIT;
	wd_imap_search_format_set(&out, result.ranges, result.range_count);
	wd_buffer_append(&out, "", 1);
	size_t len;
	char *text = (char *)wd_buffer_steal(&out, &len);
	if (modseq_r != NULL)
		*modseq_r = result.highest_modseq;
	wd_imap_search_result_free(&result);
	wd_imap_command_destroy(&cmd);
	return text;
}

static void expect(const char *program, const char *uids)
{
	char *got = search(program, NULL, 0, NULL);
	if (strcmp(got, uids) != 0)
		fail_msg("SEARCH %s: got [%s], want [%s]", program, got, uids);
	free(got);
}

static void test_headers(void **state)
{
	(void)state;
	expect("ALL", "1:5");
	expect("FROM alice", "1,4");
	expect("FROM ALICE@EXAMPLE", "1,4");
	expect("FROM \"ça va\"", "3"); /* decoded and folded */
	expect("TO alice", "3");
	expect("CC carol", "2");
	expect("BCC secret", "3"); /* not indexed: decided on the raw header */
	expect("SUBJECT hello", "1:2");
	expect("SUBJECT \"a.b*\"", "4"); /* regex characters are literal */
	expect("SUBJECT nothing", "");
	expect("CHARSET UTF-8 SUBJECT {7+}\r\nStraße", "3");
	expect("CHARSET US-ASCII SUBJECT world", "1");
	expect("HEADER X-Mailer foo", "1");
	expect("HEADER x-priority \"\"", "2"); /* empty value: the field exists */
	expect("HEADER X-Long continued", "4"); /* unfolded */
	expect("HEADER Subject \"\"", "1:4");
	expect("NOT HEADER Subject \"\"", "5");
}

static void test_text(void **state)
{
	(void)state;
	expect("BODY fox", "1");
	expect("BODY FOX", "1");
	expect("BODY strasse", "3");
	expect("BODY \"ünïcode\"", "5");
	expect("BODY alice", "");
	expect("TEXT alice", "1,3:4");
	expect("TEXT fox", "1");
	expect("TEXT mailer", "1"); /* header names count for TEXT */
	expect("NOT BODY dog", "1,3:5");
}

static void test_flags(void **state)
{
	(void)state;
	expect("SEEN", "1,3");
	expect("UNSEEN", "2,4:5");
	expect("FLAGGED", "2");
	expect("UNFLAGGED", "1,3:5");
	expect("DELETED", "3");
	expect("UNDELETED", "1:2,4:5");
	expect("DRAFT", "4");
	expect("UNDRAFT", "1:3,5");
	expect("ANSWERED", "4");
	expect("UNANSWERED", "1:3,5");
	expect("KEYWORD $label1", "2");
	expect("UNKEYWORD $Label1", "1,3:5");
	expect("KEYWORD $Other", "");
	uint32_t recent[] = { 4, 5 };
	char *got = search("RECENT", recent, 2, NULL);
	assert_string_equal(got, "4:5");
	free(got);
	got = search("NEW", recent, 2, NULL);
	assert_string_equal(got, "4:5");
	free(got);
	got = search("OLD", recent, 2, NULL);
	assert_string_equal(got, "1:3");
	free(got);
}

static void test_dates_sizes(void **state)
{
	(void)state;
	expect("BEFORE 1-Jan-2026", "");
	expect("BEFORE 2-Jan-2026", "1");
	expect("ON 2-Jan-2026", "2");
	expect("ON 3-Jan-2026", "3:4");
	expect("SINCE 3-Jan-2026", "3:5");
	expect("SENTBEFORE 1-Jan-2026", "1");
	expect("SENTON 3-Jan-2026", "4");
	expect("SENTSINCE 2-Jan-2026", "3:5"); /* 5 has no Date: its hdate is the idate */
	char program[64];
	size_t s4 = strlen(fixtures[3].raw), s5 = strlen(fixtures[4].raw);
	snprintf(program, sizeof(program), "LARGER %zu", s4 - 1);
	expect(program, "4");
	snprintf(program, sizeof(program), "LARGER %zu", s4);
	expect(program, "");
	snprintf(program, sizeof(program), "SMALLER %zu", s5 + 1);
	expect(program, "5");
	snprintf(program, sizeof(program), "SMALLER %zu", s5);
	expect(program, "");
}

static void test_sets_and_logic(void **state)
{
	(void)state;
	expect("1,3", "1,3");
	expect("2:*", "2:5");
	expect("*", "5");
	expect("7", "");
	expect("UID 2:4", "2:4");
	expect("UID 4:*", "4:5");
	expect("UID 9:*", "5"); /* "*" is the last UID: 9:* is 5:9 */
	expect("NOT 1:2", "3:5");
	expect("NOT SEEN", "2,4:5");
	expect("OR SEEN FLAGGED", "1:3");
	expect("OR (BODY fox) (HEADER X-Priority 1)", "1:2");
	expect("NOT (OR FROM alice BODY dog)", "3,5");
	expect("OR OR DRAFT DELETED NOT OR SEEN UNSEEN", "3:4");
	expect("SEEN UNDELETED FROM alice", "1");
	expect("(UID 1:4 (NOT SEEN)) OR KEYWORD $label1 ANSWERED", "2,4");
	expect("NOT ALL", "");
}

static void test_modseq(void **state)
{
	(void)state;
	uint64_t modseq = 0;
	char *got = search("MODSEQ 3", NULL, 0, &modseq);
	assert_string_equal(got, "3:5");
	assert_int_equal(modseq, 5);
	free(got);
	got = search("MODSEQ \"/flags/\\\\draft\" all 2 UNSEEN", NULL, 0, &modseq);
	assert_string_equal(got, "2,4:5");
	assert_int_equal(modseq, 5);
	free(got);
	got = search("MODSEQ 1 1:2", NULL, 0, &modseq);
	assert_string_equal(got, "1:2");
	assert_int_equal(modseq, 2);
	free(got);
}

/* ---- responses ---- */

static uint32_t seq_of(void *context, uint32_t uid)
{
	(void)context;
	return uid == 5 ? 0 : uid * 10; /* 5 is gone from the view; the rest spread */
}

static uint32_t seq_dense(void *context, uint32_t uid)
{
	(void)context;
	return uid - 1;
}

static void check_out(struct wd_buffer *out, const char *want)
{
	wd_buffer_append(out, "", 1);
	assert_string_equal((const char *)wd_buffer_bytes(out), want);
	wd_buffer_clear(out);
}

static void test_responses(void **state)
{
	(void)state;
	struct wd_search_uid_range ranges[] = { { 2, 4 }, { 5, 5 }, { 9, 9 }, { 11, 12 } };
	struct wd_imap_search_result r = { .ranges = ranges, .range_count = 4, .count = 7,
					   .highest_modseq = 917162500 };
	struct wd_imap_search_result none = { 0 };
	struct wd_buffer out = WD_BUFFER_INIT;

	wd_imap_search_format(&out, &r, NULL, NULL, false);
	check_out(&out, "* SEARCH 2 3 4 5 9 11 12\r\n");
	wd_imap_search_format(&out, &r, seq_of, NULL, true);
	check_out(&out, "* SEARCH 20 30 40 90 110 120 (MODSEQ 917162500)\r\n");
	wd_imap_search_format(&out, &none, NULL, NULL, true);
	check_out(&out, "* SEARCH\r\n");

	wd_imap_esearch_format(&out, "A282", true,
			       WD_IMAP_SEARCH_RETURN_MIN | WD_IMAP_SEARCH_RETURN_MAX |
				       WD_IMAP_SEARCH_RETURN_COUNT | WD_IMAP_SEARCH_RETURN_ALL,
			       &r, NULL, NULL, false);
	check_out(&out, "* ESEARCH (TAG \"A282\") UID MIN 2 MAX 12 COUNT 7 ALL 2:5,9,11:12\r\n");
	wd_imap_esearch_format(&out, "x", false, 0, &r, seq_dense, NULL, true);
	check_out(&out, "* ESEARCH (TAG \"x\") ALL 1:4,8,10:11 MODSEQ 917162500\r\n");
	wd_imap_esearch_format(&out, "x", false,
			       WD_IMAP_SEARCH_RETURN_ALL | WD_IMAP_SEARCH_RETURN_COUNT, &r, seq_of,
			       NULL, false);
	check_out(&out, "* ESEARCH (TAG \"x\") COUNT 6 ALL 20,30,40,90,110,120\r\n");
	wd_imap_esearch_format(&out, "a\"b", true,
			       WD_IMAP_SEARCH_RETURN_MIN | WD_IMAP_SEARCH_RETURN_COUNT, &none, NULL,
			       NULL, true);
	check_out(&out, "* ESEARCH (TAG \"a\\\"b\") UID COUNT 0\r\n");
	wd_imap_esearch_format(&out, "y", true, WD_IMAP_SEARCH_RETURN_MAX, &none, NULL, NULL,
			       false);
	check_out(&out, "* ESEARCH (TAG \"y\") UID\r\n");
	wd_buffer_release(&out);
}

/* A search over stored messages, answered as ESEARCH. */
static void test_esearch_end_to_end(void **state)
{
	(void)state;
	struct wd_search_key all = { .op = WD_SEARCH_FLAG, .flag = "\\Seen", .set = false };
	struct wd_imap_search_result r;
	char *error = NULL;
	assert_int_equal(wd_imap_search_run(store, &mailbox, &all, 4, true, &r, &error), WD_OK);
	assert_int_equal(r.count, 2); /* 5 is past the view's last UID */
	struct wd_buffer out = WD_BUFFER_INIT;
	wd_imap_esearch_format(&out, "t1", true,
			       WD_IMAP_SEARCH_RETURN_MIN | WD_IMAP_SEARCH_RETURN_MAX |
				       WD_IMAP_SEARCH_RETURN_COUNT | WD_IMAP_SEARCH_RETURN_ALL,
			       &r, NULL, NULL, true);
	check_out(&out, "* ESEARCH (TAG \"t1\") UID MIN 2 MAX 4 COUNT 2 ALL 2,4 MODSEQ 4\r\n");
	wd_imap_search_result_free(&r);
	wd_buffer_release(&out);
}

static int setup(void **state)
{
	(void)state;
	if (test_stack_mailbox() < 0)
		return -1;
	for (size_t i = 0; i < N_FIXTURES; i++) {
		const struct fixture *f = &fixtures[i];
		size_t flag_count = 0;
		while (flag_count < 3 && f->flags[flag_count] != NULL)
			flag_count++;
		view_uids[i] = test_stack_add(f->raw, strlen(f->raw), f->flags, flag_count, f->idate);
		if (view_uids[i] != i + 1)
			return -1;
	}
	return 0;
}

int main(void)
{
	int ret = test_stack_open("imapsearch");
	if (ret != 0)
		return ret;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_dates_sizes),
		cmocka_unit_test(test_sets_and_logic),
		cmocka_unit_test(test_modseq),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_esearch_end_to_end),
	};
	if (getenv("WD_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("WD_TEST_FILTER"));
	int failed = cmocka_run_group_tests(tests, setup, NULL);
	test_stack_drop();
	return failed;
}
