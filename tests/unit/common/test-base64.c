/* Unit tests: base64 codec (RFC 4648 vectors, MIME folding, strictness). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

static void test_rfc4648_vectors(void **state)
{
	(void)state;
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					     "Zm9vYmFy" };
	for (size_t i = 0; i < 7; i++) {
		struct wd_buffer enc = WD_BUFFER_INIT, dec = WD_BUFFER_INIT;
		assert_int_equal(wd_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), 0, &enc),
				 WD_OK);
		assert_int_equal(enc.len, strlen(coded[i]));
		assert_memory_equal(wd_buffer_bytes(&enc), coded[i], enc.len);
		assert_int_equal(wd_base64_encoded_size(strlen(plain[i]), 0), strlen(coded[i]));
		assert_int_equal(wd_base64_decode((const uint8_t *)coded[i], strlen(coded[i]), &dec),
				 WD_OK);
		assert_int_equal(dec.len, strlen(plain[i]));
		assert_memory_equal(wd_buffer_bytes(&dec), plain[i], dec.len);
		wd_buffer_release(&enc);
		wd_buffer_release(&dec);
	}
}

static void test_folding_round_trip(void **state)
{
	(void)state;
	uint8_t data[5000];
	srand(7);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)rand();
	for (size_t len = 0; len < sizeof(data); len += 1 + len / 3) {
		for (size_t line = 4; line <= 76; line += 72) {
			struct wd_buffer enc = WD_BUFFER_INIT, dec = WD_BUFFER_INIT;
			assert_int_equal(wd_base64_encode(data, len, line, &enc), WD_OK);
			assert_int_equal(enc.len, wd_base64_encoded_size(len, line));
			/* no line longer than `line`, CRLF between lines, none at the end */
			const uint8_t *p = wd_buffer_bytes(&enc);
			size_t column = 0;
			for (size_t i = 0; i < enc.len; i++) {
				if (p[i] == '\r') {
					assert_int_equal(p[i + 1], '\n');
					assert_int_equal(column, line);
					column = 0;
					i++;
				} else {
					column++;
				}
			}
			assert_true(column <= line);
			assert_int_equal(wd_base64_decode(p, enc.len, &dec), WD_OK);
			assert_int_equal(dec.len, len);
			assert_memory_equal(wd_buffer_bytes(&dec), data, len);
			wd_buffer_release(&enc);
			wd_buffer_release(&dec);
		}
	}
}

static void test_strict_decoding(void **state)
{
	(void)state;
	static const char *const bad[] = { "Zm9v!", "Zg=", "Z===", "Zg==Zg==", "Zm9", "Z",
					   "Zm 9v", "Zm9v\rYg==", "=Zm9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wd_buffer dec = WD_BUFFER_INIT;
		if (wd_base64_decode((const uint8_t *)bad[i], strlen(bad[i]), &dec) != WD_ERROR)
			fail_msg("accepted \"%s\"", bad[i]);
		wd_buffer_release(&dec);
	}
	struct wd_buffer dec = WD_BUFFER_INIT;
	assert_int_equal(wd_base64_decode((const uint8_t *)"Zm9v\nYmFy\r\n", 11, &dec), WD_OK);
	assert_memory_equal(wd_buffer_bytes(&dec), "foobar", 6);
	wd_buffer_release(&dec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_folding_round_trip),
		cmocka_unit_test(test_strict_decoding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
