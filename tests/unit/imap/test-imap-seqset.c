/* Unit tests: IMAP sequence sets (server/imap/imap-seqset.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-seqset.h"
#include "wd-result.h"

#include <stdio.h>
#include <string.h>

static struct wd_imap_seqset parse_ok(struct wd_arena *arena, const char *s, unsigned flags)
{
	struct wd_imap_seqset set;
	const char *error = NULL;
	if (wd_imap_seqset_parse(arena, s, strlen(s), flags, 0, &set, &error) != WD_OK) {
		fprintf(stderr, "rejected %s: %s\n", s, error);
		fail();
	}
	return set;
}

/* The normalised set printed as "a:b,c". */
static void format(const struct wd_imap_seqset *set, char *out, size_t size)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; i < set->count && off < size; i++) {
		const struct wd_imap_seq_range *r = &set->ranges[i];
		if (r->first == r->last)
			off += (size_t)snprintf(out + off, size - off, "%s%u", i ? "," : "", r->first);
		else
			off += (size_t)snprintf(out + off, size - off, "%s%u:%u", i ? "," : "",
						r->first, r->last);
	}
}

static void test_parse_resolve(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		uint32_t star;
		const char *out;
	} cases[] = {
		{ "1", 10, "1" },
		{ "1:*", 10, "1:10" },
		{ "*:4", 10, "4:10" },
		{ "*", 10, "10" },
		{ "2,4:7,9", 10, "2,4:7,9" },
		{ "9,7:4,2,3", 10, "2:7,9" },      /* sorted, merged (adjacent 2,3,4) */
		{ "1:3,2:5,10:8", 10, "1:5,8:10" },
		{ "559:*", 3, "3:559" },          /* RFC 3501: n:* includes the last */
		{ "*", 0, "" },                   /* empty mailbox */
		{ "1:*", 0, "1" },
		{ "4294967294", 5, "4294967294" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wd_arena *arena = wd_arena_create(0);
		struct wd_imap_seqset set = parse_ok(arena, cases[i].in, 0);
		char buf[128];
		wd_imap_seqset_resolve(&set, cases[i].star);
		format(&set, buf, sizeof(buf));
		if (strcmp(buf, cases[i].out) != 0) {
			fprintf(stderr, "%s with * = %u: got %s\n", cases[i].in, cases[i].star, buf);
			fail();
		}
		wd_arena_destroy(&arena);
	}
}

static void test_parse_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "0", "1:0", "01", ",1", "1,", "1::2", "1:", "a", "1 2", "4294967296",
		"$,1", "1,$", "$", "*:*:*", "-1",
	};
	struct wd_arena *arena = wd_arena_create(0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wd_imap_seqset set;
		const char *error = NULL;
		if (wd_imap_seqset_parse(arena, bad[i], strlen(bad[i]), 0, 0, &set, &error) != WD_ERROR) {
			fprintf(stderr, "accepted \"%s\"\n", bad[i]);
			fail();
		}
		assert_non_null(error);
	}
	wd_arena_destroy(&arena);
}

static void test_saved_and_limits(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_imap_seqset set;
	const char *error;

	set = parse_ok(arena, "$", WD_IMAP_SEQSET_ALLOW_SAVED);
	assert_true(set.saved);
	assert_int_equal(set.count, 0);
	assert_int_equal(wd_imap_seqset_parse(arena, "1,2,3", 5, 0, 2, &set, &error), WD_ERROR);
	assert_string_equal(error, "Too many ranges in sequence set");
	assert_int_equal(wd_imap_seqset_parse(arena, "1,2", 3, 0, 2, &set, &error), WD_OK);
	set = parse_ok(arena, "3:*", 0);
	assert_true(set.has_star);
	assert_int_equal(set.ranges[0].last, WD_IMAP_SEQ_STAR);
	assert_true(wd_imap_seqset_looks_like("1:*,4", 5));
	assert_true(wd_imap_seqset_looks_like("$", 1));
	assert_false(wd_imap_seqset_looks_like("ALL", 3));
	assert_false(wd_imap_seqset_looks_like("", 0));
	wd_arena_destroy(&arena);
}

static void test_contains_count_iterate(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_imap_seqset set = parse_ok(arena, "20:25,1,3:5,100", 0);
	struct wd_imap_seqset_iter iter;
	uint32_t n, expect[] = { 1, 3, 4, 5, 20, 21, 22, 23, 24, 25, 100 };
	size_t k = 0;

	wd_imap_seqset_normalize(&set);
	assert_int_equal(wd_imap_seqset_count(&set), 11);
	for (uint32_t i = 0; i <= 101; i++) {
		bool in = false;
		for (size_t j = 0; j < 11; j++)
			in = in || expect[j] == i;
		assert_int_equal(wd_imap_seqset_contains(&set, i), in);
	}
	wd_imap_seqset_iter_init(&iter, &set);
	while (wd_imap_seqset_iter_next(&iter, &n)) {
		assert_true(k < 11);
		assert_int_equal(n, expect[k++]);
	}
	assert_int_equal(k, 11);
	/* a range ending at the largest number does not wrap */
	set = parse_ok(arena, "4294967293:4294967294", 0);
	wd_imap_seqset_normalize(&set);
	wd_imap_seqset_iter_init(&iter, &set);
	k = 0;
	while (wd_imap_seqset_iter_next(&iter, &n))
		k++;
	assert_int_equal(k, 2);
	wd_arena_destroy(&arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_resolve),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_saved_and_limits),
		cmocka_unit_test(test_contains_count_iterate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
