/* Unit tests: change sync rules (server/imap/imap-sync.c) on hand-made
 * change sets: EXISTS counts, expunges deferred while a command uses
 * sequence numbers, FETCH dropped for expunged messages, latest FETCH per
 * message, VANISHED, full re-sync diff, VANISHED (EARLIER), \Recent and the
 * read policy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-sync.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct wd_imap_view *view_of(uint32_t first, uint32_t last)
{
	struct wd_imap_view *view = wd_imap_view_create();
	for (uint32_t uid = first; uid <= last; uid++)
		assert_int_equal(wd_imap_view_append(view, uid), WD_OK);
	return view;
}

static void add(struct wd_imap_changes *c, enum wd_journal_command command, uint32_t uid,
		uint32_t modseq, const char *flag)
{
	const char *flags[1] = { flag };
	assert_int_equal(wd_imap_changes_add(c, command, uid, modseq, flags, flag ? 1 : 0), WD_OK);
}

/* Emit with `flags` and compare the output text. */
static void emit_is(struct wd_imap_sync *sync, struct wd_imap_view *view, unsigned flags,
		    const char *expected)
{
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(wd_imap_sync_emit(sync, view, flags, &out), WD_OK);
	assert_int_equal(wd_buffer_append(&out, "", 1), WD_OK);
	assert_string_equal((const char *)wd_buffer_bytes(&out), expected);
	wd_buffer_release(&out);
}

static void test_exists_and_deferred_expunge(void **state)
{
	(void)state;
	struct wd_imap_view *view = view_of(1, 5);
	struct wd_imap_sync *sync = wd_imap_sync_create(10);
	struct wd_imap_changes *c = wd_imap_changes_create();

	add(c, WD_JOURNAL_EXISTS, 6, 11, NULL);
	add(c, WD_JOURNAL_EXISTS, 5, 11, NULL);      /* already in the view: ignored */
	add(c, WD_JOURNAL_EXPUNGE, 3, 12, NULL);
	add(c, WD_JOURNAL_FETCH, 3, 12, "\\Seen");   /* for an expunged message: dropped */
	add(c, WD_JOURNAL_FETCH, 2, 13, "\\Seen");
	add(c, WD_JOURNAL_FETCH, 2, 14, "\\Flagged"); /* the latest wins */
	add(c, WD_JOURNAL_EXISTS, 7, 15, NULL);
	add(c, WD_JOURNAL_EXPUNGE, 7, 16, NULL);     /* new and gone: never announced */
	add(c, WD_JOURNAL_EXPUNGE, 99, 16, NULL);    /* unknown */
	assert_int_equal(wd_imap_sync_add(sync, view, c), WD_OK);
	assert_int_equal(wd_imap_sync_modseq(sync), 16);
	assert_true(wd_imap_sync_pending(sync, 0));

	/* a FETCH by sequence number runs: no EXPUNGE, the view keeps UID 3 */
	emit_is(sync, view, WD_IMAP_SYNC_CONDSTORE,
		"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (14))\r\n* 6 EXISTS\r\n"
		"* 0 RECENT\r\n");
	assert_int_equal(wd_imap_view_count(view), 6);
	assert_int_equal(wd_imap_view_seq(view, 3), 3);
	assert_true(wd_imap_sync_is_expunged(sync, 3));
	assert_false(wd_imap_sync_pending(sync, 0));
	assert_true(wd_imap_sync_pending(sync, WD_IMAP_SYNC_EXPUNGE_OK));
	emit_is(sync, view, 0, "");

	/* then a safe point */
	emit_is(sync, view, WD_IMAP_SYNC_EXPUNGE_OK, "* 3 EXPUNGE\r\n");
	assert_int_equal(wd_imap_view_count(view), 5);
	assert_false(wd_imap_sync_is_expunged(sync, 3));
	assert_false(wd_imap_sync_pending(sync, WD_IMAP_SYNC_EXPUNGE_OK));
	wd_imap_sync_destroy(&sync);
	assert_null(sync);
	wd_imap_view_destroy(&view);
}

static void test_expunge_sequence_numbers(void **state)
{
	(void)state;
	struct wd_imap_view *view = view_of(1, 10);
	struct wd_imap_sync *sync = wd_imap_sync_create(1);
	struct wd_imap_changes *c = wd_imap_changes_create();

	add(c, WD_JOURNAL_EXPUNGE, 8, 2, NULL);
	add(c, WD_JOURNAL_EXPUNGE, 3, 2, NULL);
	add(c, WD_JOURNAL_EXPUNGE, 4, 2, NULL);
	add(c, WD_JOURNAL_FETCH, 9, 3, "\\Seen");
	add(c, WD_JOURNAL_FETCH, 9, 3, NULL);
	assert_int_equal(wd_imap_sync_add(sync, view, c), WD_OK);
	/* each EXPUNGE renumbers the ones after it; the FETCH uses the new
	   number; no MODSEQ without CONDSTORE */
	emit_is(sync, view, WD_IMAP_SYNC_EXPUNGE_OK,
		"* 3 EXPUNGE\r\n* 3 EXPUNGE\r\n* 6 EXPUNGE\r\n* 6 FETCH (UID 9 FLAGS ())\r\n");
	wd_imap_sync_destroy(&sync);
	wd_imap_view_destroy(&view);

	/* QRESYNC: one VANISHED line instead */
	view = view_of(1, 10);
	sync = wd_imap_sync_create(1);
	c = wd_imap_changes_create();
	for (uint32_t uid = 4; uid <= 8; uid++)
		add(c, WD_JOURNAL_EXPUNGE, uid, 2, NULL);
	add(c, WD_JOURNAL_EXPUNGE, 10, 2, NULL);
	add(c, WD_JOURNAL_FETCH, 1, 3, "\\Answered");
	assert_int_equal(wd_imap_sync_add(sync, view, c), WD_OK);
	emit_is(sync, view, WD_IMAP_SYNC_EXPUNGE_OK | WD_IMAP_SYNC_QRESYNC,
		"* VANISHED 4:8,10\r\n* 1 FETCH (UID 1 FLAGS (\\Answered) MODSEQ (3))\r\n");
	assert_int_equal(wd_imap_view_count(view), 4);
	wd_imap_sync_destroy(&sync);
	wd_imap_view_destroy(&view);
}

/* A session's own expunge went out already: the journal's entry for it is
   not announced twice. */
static void test_own_expunge(void **state)
{
	(void)state;
	struct wd_imap_view *view = view_of(1, 4);
	struct wd_imap_sync *sync = wd_imap_sync_create(1);
	struct wd_imap_changes *c = wd_imap_changes_create();

	assert_int_equal(wd_imap_view_expunge(view, 2, NULL), WD_OK);
	add(c, WD_JOURNAL_EXPUNGE, 2, 2, NULL);
	assert_int_equal(wd_imap_sync_add(sync, view, c), WD_OK);
	assert_false(wd_imap_sync_pending(sync, WD_IMAP_SYNC_EXPUNGE_OK));
	emit_is(sync, view, WD_IMAP_SYNC_EXPUNGE_OK, "");
	wd_imap_sync_destroy(&sync);
	wd_imap_view_destroy(&view);
}

static void test_full_resync_diff(void **state)
{
	(void)state;
	struct wd_imap_view *view = view_of(1, 10);
	struct wd_imap_sync *sync = wd_imap_sync_create(5);
	struct wd_imap_changes *c = wd_imap_changes_create();

	/* queued from the journal first: 11 and 12 new, 2 expunged */
	add(c, WD_JOURNAL_EXISTS, 11, 6, NULL);
	add(c, WD_JOURNAL_EXISTS, 12, 6, NULL);
	add(c, WD_JOURNAL_EXPUNGE, 2, 7, NULL);
	assert_int_equal(wd_imap_sync_add(sync, view, c), WD_OK);
	/* the mailbox now: 1, 3:4, 6:10, 12, 14:15 (5 and 11 went, 14:15 are
	   new) */
	c = wd_imap_changes_create();
	c->current = wd_imap_view_create();
	static const uint32_t now[] = { 1, 3, 4, 6, 7, 8, 9, 10, 12, 14, 15 };
	for (size_t i = 0; i < WD_N_ELEMENTS(now); i++)
		assert_int_equal(wd_imap_view_append(c->current, now[i]), WD_OK);
	c->modseq = 20;
	add(c, WD_JOURNAL_FETCH, 4, 19, "\\Deleted");
	assert_int_equal(wd_imap_sync_add(sync, view, c), WD_OK);
	assert_int_equal(wd_imap_sync_modseq(sync), 20);
	emit_is(sync, view, WD_IMAP_SYNC_EXPUNGE_OK,
		"* 2 EXPUNGE\r\n* 4 EXPUNGE\r\n* 3 FETCH (UID 4 FLAGS (\\Deleted))\r\n"
		"* 11 EXISTS\r\n* 0 RECENT\r\n");
	/* the view now equals the mailbox (13 was never seen: not shown) */
	assert_int_equal(wd_imap_view_count(view), 11);
	for (size_t i = 0; i < WD_N_ELEMENTS(now); i++)
		assert_int_equal(wd_imap_view_uid(view, (uint32_t)i + 1), now[i]);
	/* a second full re-sync with no changes says nothing */
	c = wd_imap_changes_create();
	c->current = view_of(1, 1);
	for (size_t i = 1; i < WD_N_ELEMENTS(now); i++)
		assert_int_equal(wd_imap_view_append(c->current, now[i]), WD_OK);
	assert_int_equal(wd_imap_sync_add(sync, view, c), WD_OK);
	assert_false(wd_imap_sync_pending(sync, WD_IMAP_SYNC_EXPUNGE_OK));
	wd_imap_sync_destroy(&sync);
	wd_imap_view_destroy(&view);
}

static void vanished_is(const struct wd_imap_view *view, const char *known, uint32_t uid_next,
			const char *expected)
{
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_imap_seqset set = { 0 };
	struct wd_buffer out = WD_BUFFER_INIT;
	const char *error;
	if (known != NULL)
		assert_int_equal(wd_imap_seqset_parse(arena, known, strlen(known), 0, 0, &set,
						      &error),
				 WD_OK);
	assert_int_equal(wd_imap_sync_vanished_earlier(view, arena, known ? &set : NULL, uid_next,
						       &out),
			 WD_OK);
	assert_int_equal(wd_buffer_append(&out, "", 1), WD_OK);
	assert_string_equal((const char *)wd_buffer_bytes(&out), expected);
	wd_buffer_release(&out);
	wd_arena_destroy(&arena);
}

static void test_vanished_earlier(void **state)
{
	(void)state;
	struct wd_imap_view *view = wd_imap_view_create();
	static const uint32_t uids[] = { 1, 2, 4, 7 };
	for (size_t i = 0; i < WD_N_ELEMENTS(uids); i++)
		assert_int_equal(wd_imap_view_append(view, uids[i]), WD_OK);

	vanished_is(view, NULL, 10, "* VANISHED (EARLIER) 3,5:6,8:9\r\n");
	vanished_is(view, "1:9", 10, "* VANISHED (EARLIER) 3,5:6,8:9\r\n");
	/* UIDs never given out (>= UIDNEXT) are not reported */
	vanished_is(view, "2:4,20:30", 10, "* VANISHED (EARLIER) 3\r\n");
	vanished_is(view, "1:2,4,7", 10, "");
	vanished_is(view, "5:*", 10, "* VANISHED (EARLIER) 5:6,8:9\r\n");
	wd_imap_view_destroy(&view);
	view = wd_imap_view_create();
	vanished_is(view, NULL, 1, "");
	vanished_is(view, "1:5", 4, "* VANISHED (EARLIER) 1:3\r\n");
	wd_imap_view_destroy(&view);
}

static void test_recent(void **state)
{
	(void)state;
	struct wd_imap_view *view = view_of(1, 10);
	struct wd_imap_sync *sync = wd_imap_sync_create(1);

	wd_imap_sync_recent_add(sync, 8, 10); /* SELECT reported 3 RECENT */
	assert_int_equal(wd_imap_sync_recent_count(sync, view), 3);
	assert_true(wd_imap_sync_is_recent(sync, 9));
	assert_false(wd_imap_sync_is_recent(sync, 7));
	struct wd_imap_changes *c = wd_imap_changes_create();
	add(c, WD_JOURNAL_EXISTS, 11, 2, NULL);
	add(c, WD_JOURNAL_EXISTS, 12, 2, NULL);
	add(c, WD_JOURNAL_EXPUNGE, 9, 3, NULL);
	c->recent_first = 12; /* another session claimed 11 first */
	c->recent_last = 12;
	assert_int_equal(wd_imap_sync_add(sync, view, c), WD_OK);
	emit_is(sync, view, WD_IMAP_SYNC_EXPUNGE_OK, "* 9 EXPUNGE\r\n* 11 EXISTS\r\n* 3 RECENT\r\n");
	assert_false(wd_imap_sync_is_recent(sync, 11));
	assert_true(wd_imap_sync_is_recent(sync, 12));
	wd_imap_sync_destroy(&sync);
	wd_imap_view_destroy(&view);
}

static void test_policy(void **state)
{
	(void)state;
	struct wd_imap_sync *sync = wd_imap_sync_create(1);
	struct wd_imap_sync_policy policy;
	wd_imap_sync_policy_default(&policy);
	int64_t t = 1000000;

	assert_int_equal(wd_imap_sync_due(sync, &policy, t, false, true), WD_IMAP_SYNC_NONE);
	assert_int_equal(wd_imap_sync_due(sync, &policy, t + 10, true, true),
			 WD_IMAP_SYNC_JOURNAL);
	wd_imap_sync_read_done(sync, WD_IMAP_SYNC_JOURNAL, t + 20);
	/* Redis down: poll the journal */
	assert_int_equal(wd_imap_sync_due(sync, &policy, t + 30, false, false), WD_IMAP_SYNC_NONE);
	assert_int_equal(wd_imap_sync_due(sync, &policy, t + 20 + policy.poll_ms, false, false),
			 WD_IMAP_SYNC_JOURNAL);
	wd_imap_sync_read_done(sync, WD_IMAP_SYNC_JOURNAL, t + 20 + policy.poll_ms);
	/* Redis back: one full re-sync */
	int64_t back = t + 40 + policy.poll_ms;
	assert_int_equal(wd_imap_sync_due(sync, &policy, back, false, true), WD_IMAP_SYNC_FULL);
	wd_imap_sync_read_done(sync, WD_IMAP_SYNC_FULL, back);
	assert_int_equal(wd_imap_sync_due(sync, &policy, back + 1, false, true), WD_IMAP_SYNC_NONE);
	/* periodic */
	assert_int_equal(wd_imap_sync_due(sync, &policy, back + policy.full_ms, false, true),
			 WD_IMAP_SYNC_FULL);
	wd_imap_sync_destroy(&sync);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exists_and_deferred_expunge),
		cmocka_unit_test(test_expunge_sequence_numbers),
		cmocka_unit_test(test_own_expunge),
		cmocka_unit_test(test_full_resync_diff),
		cmocka_unit_test(test_vanished_earlier),
		cmocka_unit_test(test_recent),
		cmocka_unit_test(test_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
