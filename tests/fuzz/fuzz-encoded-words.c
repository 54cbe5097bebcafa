/* Fuzz target for wd-api's RFC 2047 decoder (api_mime_decode_words,
 * api-server/message-json.c): display names of stored addresses are
 * decoded on the way out (B and Q words, any charset iconv knows), and the
 * result goes into JSON answers.
 *
 * Contracts checked, aborting on any breach:
 *   - text without "=?" comes back unchanged;
 *   - valid UTF-8 in gives valid UTF-8 out, whatever the words claim to
 *     hold (jansson refuses anything else, and the name would silently
 *     vanish from the answer; a NUL a word decodes to becomes U+FFFD and
 *     so cannot cut the C string, which the unit test checks);
 *   - the output stays within a fixed factor of the input (no charset
 *     turns one byte into more than a few code points);
 *   - decoding is idempotent on text that holds no encoded word after
 *     decoding (no "=?" left): decoding again changes nothing. */
#include "fuzz-check.h"
#include "message-json.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 1, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *text = malloc(size + 1);
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	size_t len = strlen(text);

	char *out = api_mime_decode_words(text);
	CHECK(out != NULL);
	size_t out_len = strlen(out);
	if (strstr(text, "=?") == NULL)
		CHECK(strcmp(out, text) == 0);
	if (utf8_valid((const uint8_t *)text, len) && !utf8_valid((const uint8_t *)out, out_len)) {
		fprintf(stderr, "valid UTF-8 in, invalid out: \"%s\"\n", out);
		abort();
	}
	CHECK(out_len <= 16 * len + 16);
	if (strstr(out, "=?") == NULL) {
		char *again = api_mime_decode_words(out);
		CHECK(again != NULL && strcmp(again, out) == 0);
		free(again);
	}
	free(out);
	free(text);
	return 0;
}
