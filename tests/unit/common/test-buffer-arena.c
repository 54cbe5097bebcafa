/* Unit tests: wd_buffer, wd_arena and string helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-result.h"
#include "wd-str.h"

#include <stdlib.h>
#include <string.h>

static void test_buffer_append_consume(void **state)
{
	(void)state;
	struct wd_buffer buf = WD_BUFFER_INIT;
	assert_int_equal(wd_buffer_append_str(&buf, "hello "), WD_OK);
	assert_int_equal(wd_buffer_printf(&buf, "%s %d", "world", 42), WD_OK);
	assert_int_equal(buf.len, 14);
	assert_memory_equal(wd_buffer_bytes(&buf), "hello world 42", 14);
	wd_buffer_consume(&buf, 6);
	assert_memory_equal(wd_buffer_bytes(&buf), "world 42", 8);
	/* FIFO use: the buffer holds the last 8 bytes of the stream and its
	   storage does not grow with the amount that passed through. */
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(wd_buffer_append(&buf, "0123456789", 10), WD_OK);
		wd_buffer_consume(&buf, 10);
		assert_int_equal(buf.len, 8);
	}
	assert_memory_equal(wd_buffer_bytes(&buf), "23456789", 8);
	assert_true(buf.cap < 1024);
	size_t len;
	char *str = (char *)wd_buffer_steal(&buf, &len);
	assert_int_equal(len, 8);
	assert_string_equal(str, "23456789");
	free(str);
	assert_null(buf.data);
	wd_buffer_release(&buf);
}

static void test_buffer_limit(void **state)
{
	(void)state;
	struct wd_buffer buf = WD_BUFFER_INIT;
	buf.limit = 100;
	char block[60] = { 0 };
	assert_int_equal(wd_buffer_append(&buf, block, 60), WD_OK);
	assert_int_equal(wd_buffer_append(&buf, block, 60), WD_ERROR);
	assert_int_equal(buf.len, 60);
	assert_int_equal(wd_buffer_append(&buf, block, 40), WD_OK);
	assert_int_equal(wd_buffer_append(&buf, block, 1), WD_ERROR);
	assert_null(wd_buffer_reserve(&buf, SIZE_MAX));
	char big[400];
	memset(big, 'x', sizeof(big));
	struct wd_buffer unlimited = WD_BUFFER_INIT;
	assert_int_equal(wd_buffer_printf(&unlimited, "%.*s", 399, big), WD_OK);
	assert_int_equal(unlimited.len, 399);
	wd_buffer_release(&unlimited);
	wd_buffer_release(&buf);
	assert_int_equal(buf.len, 0);
}

static int cleanup_count;
static void count_cleanup(void *context)
{
	cleanup_count += *(int *)context;
}

static void test_arena(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(256);
	assert_non_null(arena);
	char *a = wd_arena_strdup(arena, "alpha");
	char *b = wd_arena_printf(arena, "%s-%d", "beta", 7);
	void *big = wd_arena_alloc(arena, 10000);
	uint64_t *aligned = wd_arena_alloc(arena, 3);
	assert_string_equal(a, "alpha");
	assert_string_equal(b, "beta-7");
	assert_non_null(big);
	memset(big, 0xaa, 10000);
	assert_int_equal((uintptr_t)aligned % 16, 0);
	for (int i = 0; i < 1000; i++)
		assert_non_null(wd_arena_zalloc(arena, 24));
	assert_true(wd_arena_used(arena) >= 10000 + 24000);
	static int one = 1, ten = 10;
	assert_int_equal(wd_arena_add_cleanup(arena, count_cleanup, &one), WD_OK);
	assert_int_equal(wd_arena_add_cleanup(arena, count_cleanup, &ten), WD_OK);
	cleanup_count = 0;
	wd_arena_destroy(&arena);
	assert_null(arena);
	assert_int_equal(cleanup_count, 11);
}

static void test_str(void **state)
{
	(void)state;
	assert_true(wd_str_eq_nocase("LOGIN", "login"));
	assert_false(wd_str_eq_nocase("LOGIN", "logi"));
	assert_true(wd_str_has_prefix_nocase("Content-Type: x", "content-type:"));
	assert_false(wd_str_has_prefix_nocase("Con", "content"));
	uint64_t u;
	int64_t s;
	assert_int_equal(wd_str_to_uint64("18446744073709551615", 20, &u), WD_OK);
	assert_true(u == UINT64_MAX);
	assert_int_equal(wd_str_to_uint64("18446744073709551616", 20, &u), WD_ERROR);
	assert_int_equal(wd_str_to_uint64("", 0, &u), WD_ERROR);
	assert_int_equal(wd_str_to_uint64("12a", 3, &u), WD_ERROR);
	assert_int_equal(wd_str_to_int64("-9223372036854775808", 20, &s), WD_OK);
	assert_true(s == INT64_MIN);
	assert_int_equal(wd_str_to_int64("9223372036854775808", 19, &s), WD_ERROR);
	assert_int_equal(wd_str_to_int64("-", 1, &s), WD_ERROR);
	char text[] = "  \t trim me \r\n";
	assert_string_equal(wd_str_trim(text), "trim me");
	char small[4];
	assert_int_equal(wd_strlcpy(small, "abcdef", sizeof(small)), 6);
	assert_string_equal(small, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buffer_append_consume),
		cmocka_unit_test(test_buffer_limit),
		cmocka_unit_test(test_arena),
		cmocka_unit_test(test_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
