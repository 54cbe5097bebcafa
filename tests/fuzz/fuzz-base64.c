/* Fuzz target for the base64 and hex codecs: common/base64.c (MIME
 * bodies, SASL, stored attachments) and auth-b64.c (unpadded base64 and
 * hex of PHC hashes and secrets).
 *
 * Contracts checked on every input, aborting on any breach:
 *   - encode: the output has wd_base64_encoded_size() bytes, lines of at
 *     most line_len characters joined by CRLF (line_len from the first
 *     byte: 0 = one line), and decodes back to the input;
 *   - decode of arbitrary bytes: on success at most 3/4 of the input's
 *     alphabet characters (+2), and re-encoding gives as many characters
 *     as the input had outside its line breaks (a clean body is stored
 *     decoded only when this round trip holds); on failure the output
 *     buffer is left as it was;
 *   - auth base64: encoding is unpadded and decodes back; decoding
 *     arbitrary text never writes past out_size; hex likewise. */
#include "auth-b64.h"
#include "fuzz-check.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define B64_MAX_INPUT 8192

static void check_encode(const uint8_t *data, size_t size, size_t line_len)
{
	struct wd_buffer enc = WD_BUFFER_INIT, dec = WD_BUFFER_INIT;
	CHECK(wd_base64_encode(data, size, line_len, &enc) == WD_OK);
	CHECK(enc.len == wd_base64_encoded_size(size, line_len));
	const uint8_t *p = wd_buffer_bytes(&enc);
	size_t column = 0;
	for (size_t i = 0; i < enc.len; i++) {
		if (p[i] == '\r') {
			CHECK(line_len > 0 && column == line_len);
			CHECK(i + 2 < enc.len && p[i + 1] == '\n');
			i++;
			column = 0;
			continue;
		}
		CHECK(p[i] != '\n');
		column++;
		CHECK(line_len == 0 || column <= line_len);
	}
	CHECK(wd_base64_decode(p, enc.len, &dec) == WD_OK);
	CHECK(dec.len == size && (size == 0 || memcmp(wd_buffer_bytes(&dec), data, size) == 0));
	wd_buffer_release(&enc);
	wd_buffer_release(&dec);
}

static void check_decode(const uint8_t *data, size_t size)
{
	struct wd_buffer dec = WD_BUFFER_INIT, enc = WD_BUFFER_INIT;
	/* something already in the buffer must survive a failure untouched */
	wd_buffer_append(&dec, "kept", 4);
	size_t chars = 0, breaks = 0;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n')
			breaks += i > 0 && data[i - 1] == '\r' ? 2 : 1;
		else if (data[i] != '=' && data[i] != '\r')
			chars++;
	}
	if (wd_base64_decode(data, size, &dec) == WD_OK) {
		size_t n = dec.len - 4;
		CHECK(n <= chars / 4 * 3 + 2);
		CHECK(wd_base64_encode(wd_buffer_bytes(&dec) + 4, n, 0, &enc) == WD_OK);
		CHECK(enc.len == size - breaks);
	} else {
		CHECK(dec.len == 4 && memcmp(wd_buffer_bytes(&dec), "kept", 4) == 0);
	}
	wd_buffer_release(&dec);
	wd_buffer_release(&enc);
}

static void check_auth(const uint8_t *data, size_t size)
{
	size_t n = size > 1024 ? 1024 : size;
	char *text = malloc(4 * (n / 3 + 1) + 2 * n + 2);
	uint8_t *out = malloc(n + 3);
	CHECK(text != NULL && out != NULL);
	wd__auth_b64_encode(data, n, text);
	size_t len = strlen(text);
	CHECK(len == (n * 4 + 2) / 3 && memchr(text, '=', len) == NULL);
	CHECK(wd__auth_b64_decode(text, len, out, n) == (int)n);
	CHECK(n == 0 || memcmp(out, data, n) == 0);
	wd__auth_hex_encode(data, n, text);
	CHECK(strlen(text) == 2 * n);
	CHECK(wd__auth_hex_decode(text, 2 * n, out, n) == (int)n);
	CHECK(n == 0 || memcmp(out, data, n) == 0);
	free(text);
	free(out);

	/* arbitrary text into a buffer of exactly the size it may fill */
	size_t room = size % 64;
	uint8_t *exact = malloc(room == 0 ? 1 : room);
	CHECK(exact != NULL);
	int got = wd__auth_b64_decode((const char *)data, size, exact, room);
	CHECK(got >= -1 && got <= (int)room);
	got = wd__auth_hex_decode((const char *)data, size, exact, room);
	CHECK(got >= -1 && got <= (int)room);
	free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > B64_MAX_INPUT)
		return 0;
	static const size_t line_lens[] = { 0, 76, 4, 1, 5, 64, 3, 2 };
	size_t line_len = line_lens[data[0] & 7];
	data++;
	size--;
	check_encode(data, size, line_len);
	check_decode(data, size);
	check_auth(data, size);
	return 0;
}
