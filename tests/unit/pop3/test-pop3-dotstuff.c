/* Unit tests: byte-stuffing of RETR and TOP responses
 * (server/pop3/pop3-dotstuff.h).
 *
 * Each message is stuffed whole, a byte at a time and in 200 seeded random
 * splits; the outputs must be identical and equal to the expected bytes.
 * For RETR an oracle also undoes the stuffing the way a client does (drop
 * the first '.' of a line that starts with one, stop at the "." line) and
 * must get the message back exactly, plus CRLF only when the message did
 * not end with a line feed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pop3-dotstuff.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

#define BIN(s) (const uint8_t *)s, sizeof(s) - 1

static struct wd_buffer stuff(const uint8_t *msg, size_t len, bool top, uint32_t lines,
			      unsigned seed)
{
	struct wd_pop3_dotstuff ds;
	wd_pop3_dotstuff_init(&ds, top, lines);
	struct wd_buffer out = WD_BUFFER_INIT;
	size_t off = 0;
	while (off < len) {
		size_t n = len - off;
		if (seed == 1) {
			n = 1;
		} else if (seed > 1) {
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 13;
			if (n > len - off)
				n = len - off;
		}
		assert_int_equal(wd_pop3_dotstuff_feed(&ds, msg + off, n, &out), WD_OK);
		off += n;
	}
	assert_int_equal(wd_pop3_dotstuff_finish(&ds, &out), WD_OK);
	return out;
}

/* The client's side of RFC 1939 §3. */
static struct wd_buffer unstuff(const uint8_t *data, size_t len)
{
	struct wd_buffer msg = WD_BUFFER_INIT;
	size_t i = 0;
	bool terminated = false;
	while (i < len) {
		const uint8_t *lf = memchr(data + i, '\n', len - i);
		assert_non_null(lf);
		size_t end = (size_t)(lf - data) + 1;
		if (end - i == 3 && memcmp(data + i, ".\r\n", 3) == 0) {
			terminated = true;
			assert_int_equal(end, len);
			break;
		}
		size_t start = i + (data[i] == '.' ? 1 : 0);
		wd_buffer_append(&msg, data + start, end - start);
		i = end;
	}
	assert_true(terminated);
	return msg;
}

static void check(const uint8_t *msg, size_t len, bool top, uint32_t lines,
		  const char *expected, size_t expected_len)
{
	for (unsigned seed = 0; seed < 202; seed++) {
		struct wd_buffer out = stuff(msg, len, top, lines, seed);
		assert_int_equal(out.len, expected_len);
		assert_memory_equal(wd_buffer_bytes(&out), expected, expected_len);
		if (!top && seed == 0) {
			struct wd_buffer back = unstuff(wd_buffer_bytes(&out), out.len);
			bool lf_end = len == 0 || msg[len - 1] == '\n';
			assert_int_equal(back.len, len + (lf_end ? 0 : 2));
			if (len > 0)
				assert_memory_equal(wd_buffer_bytes(&back), msg, len);
			wd_buffer_release(&back);
		}
		wd_buffer_release(&out);
	}
}

#define CHECK(msg, top, lines, expected) \
	check(BIN(msg), top, lines, expected, sizeof(expected) - 1)

static void test_retr(void **state)
{
	CHECK("Subject: x\r\n\r\nbody\r\n", false, 0, "Subject: x\r\n\r\nbody\r\n.\r\n");
	/* dots at line starts, also the first byte and after bare LF */
	CHECK(".a\r\n..b\r\n.\r\nc.\r\n.", false, 0, "..a\r\n...b\r\n..\r\nc.\r\n..\r\n.\r\n");
	CHECK("x\n.y\n", false, 0, "x\n..y\n.\r\n");
	/* no final line feed: CRLF added before the terminator */
	CHECK("a\r\nb", false, 0, "a\r\nb\r\n.\r\n");
	CHECK("a\r\nb\r", false, 0, "a\r\nb\r\r\n.\r\n");
	/* empty message: only the terminator */
	check((const uint8_t *)"", 0, false, 0, ".\r\n", 3);
	/* binary bytes pass untouched */
	CHECK("\x00\xff\r\n\x80.\r\n", false, 0, "\x00\xff\r\n\x80.\r\n.\r\n");
}

static void test_top(void **state)
{
	const char *msg = "A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n";
	check((const uint8_t *)msg, strlen(msg), true, 0, "A: 1\r\nB: 2\r\n\r\n.\r\n", 17);
	check((const uint8_t *)msg, strlen(msg), true, 2,
	      "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n", 27);
	/* more lines than there are */
	check((const uint8_t *)msg, strlen(msg), true, 100,
	      "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n", 31);
	/* LF-only header end; a last line without LF */
	CHECK("A: 1\n\nx\ny", true, 5, "A: 1\n\nx\ny\r\n.\r\n");
	/* no empty line: everything is header */
	CHECK("A: 1\r\nB: 2\r\n", true, 0, "A: 1\r\nB: 2\r\n.\r\n");
	/* a line with only CR counts as empty (header end) */
	CHECK("A: 1\r\n\r\r\nbody\r\n", true, 0, "A: 1\r\n\r\r\n.\r\n");
}

static void test_large(void **state)
{
	/* 1 MiB of lines that all start with '.': output grows by one byte a line */
	size_t lines = 100000, len = lines * 10;
	uint8_t *msg = malloc(len);
	for (size_t i = 0; i < lines; i++)
		memcpy(msg + i * 10, ".23456789\n", 10);
	struct wd_buffer out = stuff(msg, len, false, 0, 99);
	assert_int_equal(out.len, len + lines + 3);
	struct wd_buffer back = unstuff(wd_buffer_bytes(&out), out.len);
	assert_int_equal(back.len, len);
	assert_memory_equal(wd_buffer_bytes(&back), msg, len);
	wd_buffer_release(&back);
	wd_buffer_release(&out);
	free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retr),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
