/* log.format = "json": every stderr line is one JSON object with the
 * session id split out, strings escaped and invalid UTF-8 replaced, also
 * when the text is cut at the line's size. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Logs one message with stderr on a pipe and returns the line written. */
static char *capture(const char *component, const char *text)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	int saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	wd_log(WD_LOG_WARNING, component, "%s", text);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	static char buf[16384];
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	return buf;
}

static void test_fields_and_escapes(void **state)
{
	(void)state;
	char *line = capture("imap", "0123456789abcdef: a \"q\" \\ \t \xc3\xa9 \xff \xed\xa0\x80 end");
	assert_true(strncmp(line, "{\"time\":\"", 9) == 0);
	assert_non_null(strstr(line, "\"program\":\"test-log\",\"pid\":"));
	assert_non_null(strstr(line, "\"level\":\"warning\",\"component\":\"imap\","
				      "\"session\":\"0123456789abcdef\","
				      "\"msg\":\"a \\\"q\\\" \\\\ \\u0009 \xc3\xa9 \\ufffd "
				      "\\ufffd\\ufffd\\ufffd end\"}\n"));
	assert_int_equal(strchr(line, '\n') - line + 1, (long)strlen(line)); /* one line */

	line = capture("store", "no session here: 0123");
	assert_null(strstr(line, "\"session\""));
	assert_non_null(strstr(line, "\"msg\":\"no session here: 0123\"}\n"));
}

static void test_long_text_stays_json(void **state)
{
	(void)state;
	char text[2000];
	memset(text, 1, sizeof(text) - 1); /* each escapes to six bytes: over the line's size */
	text[sizeof(text) - 1] = '\0';
	char *line = capture("api", text);
	size_t len = strlen(line);
	assert_true(len > 100);
	assert_string_equal(line + len - 3, "\"}\n");
	/* no escape cut in half before the closing quote */
	size_t quotes = 0;
	for (const char *p = strstr(line, "\"msg\":\"") + 7; p < line + len - 3; p += 6) {
		assert_true(strncmp(p, "\\u0001", 6) == 0);
		quotes++;
	}
	assert_true(quotes > 1000 && quotes < 1999); /* cut, at an escape's end */
}

int main(void)
{
	wd_log_init("test-log", WD_LOG_SINK_STDERR, WD_LOG_DEBUG);
	wd_log_set_json(true);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_and_escapes),
		cmocka_unit_test(test_long_text_stays_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
