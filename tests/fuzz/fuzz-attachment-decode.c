/* Fuzz target for wd-api's attachment download decoder
 * (api-server/attachment-decode.h): base64 (lenient, as libbase64),
 * quoted-printable, pass-through.
 *
 * The first byte picks the encoding and how the input is cut. Contracts
 * checked, aborting on any breach:
 *   - the output does not depend on the cuts (GridFS chunks): whole, one
 *     byte at a time and chunks of pseudo-random sizes give the same bytes;
 *   - bounds: base64 at most 3 bytes per 4 alphabet characters, QP never
 *     more bytes than it read, pass-through the input itself;
 *   - base64 that the strict decoder (common/base64.c) accepts decodes to
 *     the same bytes here;
 *   - QP: text without "=" passes unchanged; every byte escaped as "=XX",
 *     with soft breaks (CRLF or LF) where the input says, decodes back. */
#include "attachment-decode.h"
#include "fuzz-check.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* split 0: whole; 1: one byte at a time; else chunks of 1..40 from `split`. */
static void decode(enum api_decode_kind kind, const uint8_t *in, size_t len, unsigned split,
		   struct wd_buffer *out)
{
	struct api_decoder d = { .kind = kind };
	size_t off = 0;
	unsigned state = split;
	while (off < len) {
		size_t n = len - off;
		if (split == 1) {
			n = 1;
		} else if (split > 1) {
			state = state * 1103515245u + 12345u;
			n = 1 + (state >> 16) % 40;
			if (n > len - off)
				n = len - off;
		}
		wd_buffer_append(&d.raw, in + off, n);
		off += n;
		api_decoder_run(&d, false, out);
	}
	api_decoder_run(&d, true, out);
	CHECK(d.raw.len == 0);
	api_decoder_release(&d);
}

static bool same(const struct wd_buffer *a, const uint8_t *b, size_t len)
{
	return a->len == len && (len == 0 || memcmp(wd_buffer_bytes(a), b, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 16384)
		return 0;
	enum api_decode_kind kind = (enum api_decode_kind)(data[0] % 3);
	unsigned seed = 2u + data[0] / 3u;
	data++;
	size--;
	struct wd_buffer whole = WD_BUFFER_INIT, other = WD_BUFFER_INIT;
	decode(kind, data, size, 0, &whole);
	unsigned splits[] = { 1, seed, seed * 7919u };
	for (size_t k = 0; k < 3; k++) {
		if (splits[k] == 1 && size > 4096)
			continue;
		wd_buffer_clear(&other);
		decode(kind, data, size, splits[k], &other);
		CHECK(same(&other, wd_buffer_bytes(&whole), whole.len));
	}
	switch (kind) {
	case API_DECODE_NONE:
		CHECK(same(&whole, data, size));
		break;
	case API_DECODE_BASE64: {
		size_t alphabet = 0;
		for (size_t i = 0; i < size; i++)
			alphabet += (data[i] >= 'A' && data[i] <= 'Z') ||
				    (data[i] >= 'a' && data[i] <= 'z') ||
				    (data[i] >= '0' && data[i] <= '9') || data[i] == '+' ||
				    data[i] == '/';
		CHECK(whole.len <= alphabet * 3 / 4);
		wd_buffer_clear(&other);
		if (wd_base64_decode(data, size, &other) == WD_OK)
			CHECK(same(&whole, wd_buffer_bytes(&other), other.len));
		break;
	}
	case API_DECODE_QP: {
		CHECK(whole.len <= size);
		if (memchr(data, '=', size) == NULL)
			CHECK(same(&whole, data, size));
		static const char digits[] = "0123456789ABCDEF";
		struct wd_buffer enc = WD_BUFFER_INIT;
		for (size_t i = 0; i < size; i++) {
			if (data[i] % 5 == 0)
				wd_buffer_append(&enc, data[i] & 1 ? "=\r\n" : "=\n", data[i] & 1 ? 3 : 2);
			char e[3] = { '=', digits[data[i] >> 4], digits[data[i] & 15] };
			wd_buffer_append(&enc, e, 3);
		}
		wd_buffer_clear(&other);
		decode(kind, wd_buffer_bytes(&enc), enc.len, seed, &other);
		CHECK(same(&other, data, size));
		wd_buffer_release(&enc);
		break;
	}
	}
	wd_buffer_release(&whole);
	wd_buffer_release(&other);
	return 0;
}
