/* Unit tests: the POP3 line parser (server/pop3/pop3-parser.h) and the
 * command table (pop3-commands.c).
 *
 * Every transcript is fed whole, one byte at a time, with CR and LF in
 * separate chunks, and in 200 seeded random splits, through a driver that
 * behaves like the connection (unconsumed bytes are presented again with
 * the next ones); each run must give the same event log, and that log must
 * be the expected one. The driver also checks that the bytes held never
 * exceed the line limit plus one chunk: a line that is too long is not
 * buffered. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pop3-commands.h"
#include "pop3-parser.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIN(s) s, sizeof(s) - 1

/* The session reads a raw line after "AUTH PLAIN" without a response. */
static void log_event(struct wd_buffer *log, struct wd_pop3_parser *parser,
		      const struct wd_pop3_event *ev)
{
	switch (ev->type) {
	case WD_POP3_EVENT_COMMAND:
		wd_buffer_printf(log, "CMD %s [%.*s]\n", ev->name, (int)ev->args_len,
				 (const char *)ev->args);
		if (strcmp(ev->name, "AUTH") == 0 && ev->args_len == 5)
			wd_pop3_parser_read_line(parser);
		break;
	case WD_POP3_EVENT_LINE:
		wd_buffer_printf(log, "LINE [%.*s]\n", (int)ev->args_len, (const char *)ev->args);
		break;
	case WD_POP3_EVENT_ERROR:
		wd_buffer_printf(log, "ERR %s\n", ev->error);
		break;
	}
}

/* Feed `input` in chunks whose sizes come from next_size(); returns the log. */
static char *run(const char *input, size_t len, size_t max_line,
		 size_t (*next_size)(void *state, size_t offset), void *state)
{
	struct wd_pop3_parser *parser = wd_pop3_parser_create(max_line);
	assert_non_null(parser);
	struct wd_buffer held = WD_BUFFER_INIT, log = WD_BUFFER_INIT;
	size_t offset = 0, biggest_chunk = 1;
	while (offset < len) {
		size_t n = next_size(state, offset);
		if (n == 0 || n > len - offset)
			n = len - offset;
		if (n > biggest_chunk)
			biggest_chunk = n;
		wd_buffer_append(&held, input + offset, n);
		offset += n;
		for (;;) {
			struct wd_pop3_event ev;
			size_t consumed = 0;
			int ret = wd_pop3_parser_feed(parser, wd_buffer_bytes(&held), held.len,
						      &consumed, &ev);
			assert_true(consumed <= held.len);
			if (ret == WD_OK)
				log_event(&log, parser, &ev);
			wd_buffer_consume(&held, consumed);
			if (ret != WD_OK)
				break;
		}
		assert_true(held.len < max_line + biggest_chunk);
	}
	if (held.len > 0)
		wd_buffer_printf(&log, "HELD %zu\n", held.len);
	wd_buffer_append(&log, "", 1);
	size_t log_len;
	char *result = (char *)wd_buffer_steal(&log, &log_len);
	wd_buffer_release(&held);
	wd_pop3_parser_destroy(&parser);
	return result;
}

static size_t whole(void *state, size_t offset)
{
	return 0;
}

static size_t one(void *state, size_t offset)
{
	return 1;
}

/* CR and LF in separate chunks: cut right after every CR. */
static size_t split_crlf(void *state, size_t offset)
{
	const char *input = state;
	const char *cr = strchr(input + offset, '\r');
	return cr != NULL ? (size_t)(cr - (input + offset)) + 1 : 0;
}

static size_t random_size(void *state, size_t offset)
{
	unsigned *seed = state;
	*seed = *seed * 1103515245u + 12345u;
	return 1 + (*seed >> 16) % 17;
}

static void check(const char *input, size_t len, size_t max_line, const char *expected)
{
	char *got = run(input, len, max_line, whole, NULL);
	assert_string_equal(got, expected);
	free(got);
	got = run(input, len, max_line, one, NULL);
	assert_string_equal(got, expected);
	free(got);
	char *copy = strndup(input, len);
	got = run(input, len, max_line, split_crlf, copy);
	free(copy);
	assert_string_equal(got, expected);
	free(got);
	for (unsigned seed = 1; seed <= 200; seed++) {
		unsigned state = seed;
		got = run(input, len, max_line, random_size, &state);
		assert_string_equal(got, expected);
		free(got);
	}
}

static void test_commands(void **state)
{
	check(BIN("USER alice\r\nPASS pass with  spaces \r\nstat\r\nList 3\r\nUIDL\r\n"
		  "TOP 1 10\r\nQUIT\r\n"),
	      WD_POP3_LINE_MAX,
	      "CMD USER [alice]\n"
	      "CMD PASS [pass with  spaces ]\n"
	      "CMD STAT []\n"
	      "CMD LIST [3]\n"
	      "CMD UIDL []\n"
	      "CMD TOP [1 10]\n"
	      "CMD QUIT []\n");
	/* bare LF ends a line too; a partial line is held */
	check(BIN("NOOP\nSTAT\r\nRET"), WD_POP3_LINE_MAX,
	      "CMD NOOP []\nCMD STAT []\nHELD 3\n");
}

static void test_sasl_line(void **state)
{
	check(BIN("AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nAUTH PLAIN AGE=\r\nSTAT\r\n"),
	      WD_POP3_LINE_MAX,
	      "CMD AUTH [PLAIN]\n"
	      "LINE [AGFsaWNlAHNlY3JldA==]\n"
	      "CMD AUTH [PLAIN AGE=]\n"
	      "CMD STAT []\n");
	/* an empty response is an empty line, not an error */
	check(BIN("AUTH PLAIN\r\n\r\nNOOP\r\n"), WD_POP3_LINE_MAX,
	      "CMD AUTH [PLAIN]\nLINE []\nCMD NOOP []\n");
}

static void test_bad_lines(void **state)
{
	check(BIN("\r\n RETR 1\r\nRE-TR 1\r\nVERYVERYLONGKEYWORD1\r\n\xff\xfe\r\nST\0AT\r\nNOOP\r\n"),
	      WD_POP3_LINE_MAX,
	      "ERR Empty command\n"
	      "ERR Unknown command\n"
	      "ERR Unknown command\n"
	      "ERR Unknown command\n"
	      "ERR Unknown command\n"
	      "ERR NUL byte in command\n"
	      "CMD NOOP []\n");
}

static void test_line_limit(void **state)
{
	/* 20-byte limit: a line of 20 bytes with its CRLF passes, 21 does not;
	   the rest of a long line is dropped and the next line parses */
	check(BIN("PASS 1234567890123\r\n"
		  "PASS 12345678901234\r\n"
		  "PASS aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
		  "NOOP\r\n"),
	      20,
	      "CMD PASS [1234567890123]\n"
	      "ERR Line too long\n"
	      "ERR Line too long\n"
	      "CMD NOOP []\n");
	/* a raw line over the limit is an error too, and the next line is a
	   command again */
	check(BIN("AUTH PLAIN\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\nNOOP\r\n"), 20,
	      "CMD AUTH [PLAIN]\nERR Line too long\nCMD NOOP []\n");
}

static void test_endless_junk(void **state)
{
	/* 1 MiB without a line feed: one error, nothing held */
	size_t len = 1024 * 1024;
	char *junk = malloc(len + 7);
	memset(junk, 'x', len);
	memcpy(junk + len, "\nNOOP\n", 7);
	unsigned seed = 7;
	char *got = run(junk, len + 6, WD_POP3_LINE_MAX, random_size, &seed);
	assert_string_equal(got, "ERR Line too long\nCMD NOOP []\n");
	free(got);
	free(junk);
}

static void test_args(void **state)
{
	struct wd_pop3_arg argv[2];
	assert_int_equal(wd_pop3_args_split((const uint8_t *)"", 0, argv, 2), 0);
	assert_int_equal(wd_pop3_args_split((const uint8_t *)"  1   20 ", 9, argv, 2), 2);
	assert_int_equal(argv[0].len, 1);
	assert_memory_equal(argv[1].str, "20", 2);
	assert_int_equal(wd_pop3_args_split((const uint8_t *)"1 2 3", 5, argv, 2), 3);
	uint32_t n;
	struct wd_pop3_arg a = { "123456789", 9 };
	assert_true(wd_pop3_arg_number(&a, &n));
	assert_int_equal(n, 123456789);
	a = (struct wd_pop3_arg){ "4294967295", 10 };
	assert_true(wd_pop3_arg_number(&a, &n));
	assert_int_equal(n, UINT32_MAX);
	a = (struct wd_pop3_arg){ "99999999999999999999999999", 26 };
	assert_true(wd_pop3_arg_number(&a, &n));
	assert_int_equal(n, UINT32_MAX);
	a = (struct wd_pop3_arg){ "-1", 2 };
	assert_false(wd_pop3_arg_number(&a, &n));
	a = (struct wd_pop3_arg){ "1x", 2 };
	assert_false(wd_pop3_arg_number(&a, &n));
}

static void test_command_table(void **state)
{
	size_t count;
	const struct wd_pop3_command_def *table = wd_pop3_command_table(&count);
	for (size_t i = 1; i < count; i++)
		assert_true(strcmp(table[i - 1].name, table[i].name) < 0);
	for (size_t i = 0; i < count; i++)
		assert_ptr_equal(wd_pop3_command_find(table[i].name), &table[i]);
	assert_null(wd_pop3_command_find("APOP"));
	assert_null(wd_pop3_command_find("XTND"));
	/* the commands that change how input is read stop pipelined parsing */
	assert_true(wd_pop3_command_find("STLS")->flags & WD_POP3_CMD_BARRIER);
	assert_true(wd_pop3_command_find("AUTH")->flags & WD_POP3_CMD_BARRIER);
	assert_true(wd_pop3_command_find("QUIT")->flags & WD_POP3_CMD_BARRIER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_sasl_line),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_endless_junk),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_command_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
