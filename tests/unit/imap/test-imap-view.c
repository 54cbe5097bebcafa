/* Unit tests: the compact UID view (server/imap/imap-view.c) against a
 * naive array model under random appends and expunges, memory bounds on a
 * 1,000,000-message mailbox, and set translation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-view.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The model: a plain sorted array. */
struct model {
	uint32_t *uids;
	uint32_t count, cap;
};

static void model_append(struct model *m, uint32_t uid)
{
	if (m->count == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 1024;
		m->uids = realloc(m->uids, m->cap * sizeof(*m->uids));
		assert_non_null(m->uids);
	}
	m->uids[m->count++] = uid;
}

static uint32_t model_seq(const struct model *m, uint32_t uid)
{
	uint32_t lo = 0, hi = m->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->count && m->uids[lo] == uid ? lo + 1 : 0;
}

static void model_remove_seq(struct model *m, uint32_t seq)
{
	memmove(&m->uids[seq - 1], &m->uids[seq], (m->count - seq) * sizeof(*m->uids));
	m->count--;
}

static void check_equal(const struct wd_imap_view *view, const struct model *m)
{
	assert_int_equal(wd_imap_view_count(view), m->count);
	assert_int_equal(wd_imap_view_last_uid(view), m->count ? m->uids[m->count - 1] : 0);
	for (uint32_t seq = 1; seq <= m->count; seq++) {
		assert_int_equal(wd_imap_view_uid(view, seq), m->uids[seq - 1]);
		assert_int_equal(wd_imap_view_seq(view, m->uids[seq - 1]), seq);
	}
	assert_int_equal(wd_imap_view_uid(view, 0), 0);
	assert_int_equal(wd_imap_view_uid(view, m->count + 1), 0);
}

static void random_ops(unsigned seed, unsigned ops, unsigned gap_percent, unsigned expunge_percent)
{
	struct wd_imap_view *view = wd_imap_view_create();
	struct model m = { 0 };
	uint32_t next = 1;

	srand(seed);
	for (unsigned i = 0; i < ops; i++) {
		if (m.count > 0 && (unsigned)rand() % 100 < expunge_percent) {
			uint32_t seq = 1 + (uint32_t)rand() % m.count, got = 0;
			uint32_t uid = m.uids[seq - 1];
			assert_int_equal(wd_imap_view_expunge(view, uid, &got), WD_OK);
			assert_int_equal(got, seq);
			model_remove_seq(&m, seq);
			/* a second expunge of the same UID fails */
			assert_int_equal(wd_imap_view_expunge(view, uid, NULL), WD_ERROR);
		} else {
			if ((unsigned)rand() % 100 < gap_percent)
				next += 1 + (uint32_t)rand() % ((unsigned)rand() % 4 == 0 ? 100000 : 3);
			assert_int_equal(wd_imap_view_append(view, next), WD_OK);
			model_append(&m, next);
			assert_int_equal(wd_imap_view_append(view, next), WD_ERROR);
			next++;
		}
		if (i % 97 == 0) {
			/* a UID between two present ones is absent; seq_ceil agrees */
			uint32_t probe = (uint32_t)rand() % (next + 1);
			uint32_t s = model_seq(&m, probe);
			assert_int_equal(wd_imap_view_seq(view, probe), s);
			uint32_t ceil = 1;
			while (ceil <= m.count && m.uids[ceil - 1] < probe)
				ceil++;
			assert_int_equal(wd_imap_view_seq_ceil(view, probe), ceil);
		}
	}
	check_equal(view, &m);
	/* expunge everything from both ends and the middle */
	while (m.count > 0) {
		uint32_t pick = (uint32_t)rand() % 3;
		uint32_t seq = pick == 0 ? 1 : pick == 1 ? m.count : 1 + m.count / 2, got;
		assert_int_equal(wd_imap_view_expunge(view, m.uids[seq - 1], &got), WD_OK);
		assert_int_equal(got, seq);
		model_remove_seq(&m, seq);
		if (m.count % 251 == 0)
			check_equal(view, &m);
	}
	check_equal(view, &m);
	/* an emptied view takes appends again */
	assert_int_equal(wd_imap_view_append(view, next), WD_OK);
	assert_int_equal(wd_imap_view_uid(view, 1), next);
	wd_imap_view_destroy(&view);
	assert_null(view);
	free(m.uids);
}

static void test_random_against_model(void **state)
{
	(void)state;
	random_ops(1, 20000, 5, 10);    /* few gaps */
	random_ops(2, 20000, 60, 20);   /* many gaps */
	random_ops(3, 20000, 100, 30);  /* no two consecutive UIDs */
	random_ops(4, 5000, 0, 45);     /* one run shredded by expunges */
}

/* Bytes per message in the best and worst case, bounded (documented in
   imap-view.h). */
static void test_memory_million(void **state)
{
	(void)state;
	struct wd_imap_view *view = wd_imap_view_create();
	uint32_t uid = 0;

	/* few gaps: 1,000,000 messages, one gap every 10,000 */
	for (uint32_t i = 0; i < 1000000; i++) {
		uid += i % 10000 == 0 ? 2 : 1;
		assert_int_equal(wd_imap_view_append(view, uid), WD_OK);
	}
	size_t few = wd_imap_view_memory(view);
	print_message("1M messages, 100 gaps: %zu bytes\n", few);
	assert_true(few < 8 * 1024);
	assert_int_equal(wd_imap_view_uid(view, 1000000), uid);
	wd_imap_view_destroy(&view);

	/* worst case, dense: every other UID */
	view = wd_imap_view_create();
	for (uint32_t i = 1; i <= 1000000; i++)
		assert_int_equal(wd_imap_view_append(view, 2 * i), WD_OK);
	size_t odd = wd_imap_view_memory(view);
	print_message("1M messages, every other UID: %zu bytes (%.2f per message)\n", odd,
		      odd / 1e6);
	assert_true(odd < 3 * 1000000);
	assert_int_equal(wd_imap_view_seq(view, 2 * 777777), 777777);
	assert_int_equal(wd_imap_view_seq(view, 2 * 777777 + 1), 0);
	wd_imap_view_destroy(&view);

	/* worst case, sparse: gaps wider than 16 bits */
	view = wd_imap_view_create();
	for (uint32_t i = 1; i <= 50000; i++)
		assert_int_equal(wd_imap_view_append(view, i * 70000u), WD_OK);
	size_t sparse = wd_imap_view_memory(view);
	print_message("50k messages 70000 UIDs apart: %.2f bytes per message\n", sparse / 5e4);
	assert_true(sparse < 5 * 50000);
	assert_int_equal(wd_imap_view_uid(view, 50000), 50000u * 70000u);
	wd_imap_view_destroy(&view);

	/* shredding one run by expunging every other message stays bounded */
	view = wd_imap_view_create();
	for (uint32_t i = 1; i <= 100000; i++)
		assert_int_equal(wd_imap_view_append(view, i), WD_OK);
	for (uint32_t i = 2; i <= 100000; i += 2)
		assert_int_equal(wd_imap_view_expunge(view, i, NULL), WD_OK);
	size_t shred = wd_imap_view_memory(view);
	print_message("100k run, every other expunged: %.2f bytes per message\n", shred / 5e4);
	assert_true(shred < 4 * 50000);
	assert_int_equal(wd_imap_view_seq(view, 99999), 50000);
	wd_imap_view_destroy(&view);
}

static struct wd_imap_seqset parse(struct wd_arena *arena, const char *text)
{
	struct wd_imap_seqset set;
	const char *error = NULL;
	assert_int_equal(wd_imap_seqset_parse(arena, text, strlen(text), 0, 0, &set, &error),
			 WD_OK);
	return set;
}

static void assert_set(const struct wd_imap_seqset *set, const char *expected)
{
	char text[512] = "";
	size_t len = 0;
	for (size_t i = 0; i < set->count; i++) {
		const struct wd_imap_seq_range *r = &set->ranges[i];
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%u", i ? "," : "",
					r->first);
		if (r->last != r->first)
			len += (size_t)snprintf(text + len, sizeof(text) - len, ":%u", r->last);
	}
	assert_string_equal(text, expected);
}

/* in -> translated set, as text */
static void translate_is(const struct wd_imap_view *view, struct wd_arena *arena, bool uid,
			 const char *in, const char *expected)
{
	struct wd_imap_seqset set = parse(arena, in), out;
	if (uid)
		assert_int_equal(wd_imap_view_uids_to_seqs(view, arena, &set, &out), WD_OK);
	else
		assert_int_equal(wd_imap_view_seqs_to_uids(view, arena, &set, &out), WD_OK);
	assert_set(&out, expected);
}

/* the (seq, uid) pairs an iteration yields, as text */
static void iter_is(const struct wd_imap_view *view, struct wd_arena *arena, bool uid_set,
		    const char *in, const char *expected)
{
	struct wd_imap_seqset set = parse(arena, in);
	struct wd_imap_view_iter iter;
	uint32_t seq, uid;
	char text[256] = "";
	size_t len = 0;
	assert_int_equal(wd_imap_view_iter_init(&iter, view, arena, &set, uid_set), WD_OK);
	while (wd_imap_view_iter_next(&iter, &seq, &uid))
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%u=%u ", seq, uid);
	assert_string_equal(text, expected);
}

static void test_sets(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_imap_view *view = wd_imap_view_create();
	struct wd_imap_seqset set, out;
	/* UIDs: 3 4 5 6 10 20 21 22 100 → seqs 1..9 */
	static const uint32_t uids[] = { 3, 4, 5, 6, 10, 20, 21, 22, 100 };
	for (size_t i = 0; i < WD_N_ELEMENTS(uids); i++)
		assert_int_equal(wd_imap_view_append(view, uids[i]), WD_OK);

	translate_is(view, arena, false, "1:*", "3:6,10,20:22,100");
	translate_is(view, arena, false, "*:3,5", "5:6,10,20:22,100");
	translate_is(view, arena, false, "8:20", "22,100");
	translate_is(view, arena, false, "10:20", "");

	translate_is(view, arena, true, "1:4,6,9:21,50:*", "1:2,4:7,9");
	translate_is(view, arena, true, "*", "9");
	translate_is(view, arena, true, "101:200", "");

	assert_int_equal(wd_imap_view_to_uidset(view, arena, &out), WD_OK);
	assert_set(&out, "3:6,10,20:22,100");

	/* iteration: UID set and sequence set give (seq, uid) pairs */
	iter_is(view, arena, true, "5:21,99:*", "3=5 4=6 5=10 6=20 7=21 9=100 ");
	iter_is(view, arena, false, "2,4:5,8:*,12", "2=4 4=6 5=10 8=22 9=100 ");

	/* "$" is the session's: refused here */
	set = (struct wd_imap_seqset){ .saved = true };
	assert_int_equal(wd_imap_view_seqs_to_uids(view, arena, &set, &out), WD_ERROR);

	/* an empty view: "*" matches nothing */
	struct wd_imap_view *empty = wd_imap_view_create();
	translate_is(empty, arena, false, "1:*", "");
	translate_is(empty, arena, true, "1:*", "");
	iter_is(empty, arena, false, "1:*", "");
	wd_imap_view_destroy(&empty);
	wd_imap_view_destroy(&view);
	wd_arena_destroy(&arena);
}

/* 1:* over a million messages: ranges, not per-message arrays; the
   iterator walks all of them in order. */
static void test_large_sets(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_imap_view *view = wd_imap_view_create();
	for (uint32_t i = 1; i <= 1000000; i++)
		assert_int_equal(wd_imap_view_append(view, i + (i > 500000 ? 7 : 0)), WD_OK);
	struct wd_imap_seqset set = parse(arena, "1:*"), out;
	size_t before = wd_arena_used(arena);
	assert_int_equal(wd_imap_view_seqs_to_uids(view, arena, &set, &out), WD_OK);
	assert_set(&out, "1:500000,500008:1000007");
	assert_true(wd_arena_used(arena) - before < 1024);
	struct wd_imap_view_iter iter;
	uint32_t seq, uid, n = 0;
	assert_int_equal(wd_imap_view_iter_init(&iter, view, arena, &set, false), WD_OK);
	while (wd_imap_view_iter_next(&iter, &seq, &uid)) {
		n++;
		assert_int_equal(seq, n);
		assert_int_equal(uid, n + (n > 500000 ? 7 : 0));
	}
	assert_int_equal(n, 1000000);
	wd_imap_view_destroy(&view);
	wd_arena_destroy(&arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_memory_million),
		cmocka_unit_test(test_sets),
		cmocka_unit_test(test_large_sets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
