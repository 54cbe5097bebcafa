/* Fuzz target for the streamed FETCH BINARY decoders (server/imap/
 * imap-cte.h): base64, quoted-printable, identity.
 *
 * The first byte picks the encoding and how the input is cut. Contracts
 * checked, aborting on any breach:
 *   - the output does not depend on the cuts: whole, one byte at a time,
 *     and chunks of pseudo-random sizes give the same bytes (storage hands
 *     the part over a chunk at a time, and BINARY.SIZE comes from a first
 *     pass cut differently from the second);
 *   - bounds: base64 gives at most 3 bytes per 4 alphabet characters, QP
 *     never more bytes than it read, identity the input itself;
 *   - QP agrees with a plain reference decoder of RFC 2045 §6.7 written
 *     here over the whole input (the streamed one holds state between
 *     chunks; this one looks ahead): "=XX" a byte, "=" + blanks before a
 *     line break or the end a soft break, blanks before a line break or
 *     the end dropped, anything else kept as it is;
 *   - round trips: the input encoded as base64 (folded at 76) or as QP
 *     (by an encoder written here: every byte that needs it escaped, soft
 *     breaks at places taken from the input) decodes to the input. */
#include "fuzz-check.h"
#include "imap-cte.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* split 0: whole; 1: one byte at a time; else chunks of 1..40 from `split`. */
static void decode(enum wd_imap_cte cte, const uint8_t *in, size_t len, unsigned split,
		   struct wd_buffer *out)
{
	struct wd_imap_cte_decoder d = { .cte = cte };
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
		CHECK(wd_imap_cte_decoder_feed(&d, in + off, n, out) == WD_OK);
		off += n;
	}
	CHECK(wd_imap_cte_decoder_finish(&d, out) == WD_OK);
}

static bool same(const struct wd_buffer *a, const struct wd_buffer *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(wd_buffer_bytes(a), wd_buffer_bytes(b),
							   a->len) == 0);
}

static void dump(const char *what, const struct wd_buffer *b)
{
	fprintf(stderr, "%s: \"", what);
	for (size_t i = 0; i < b->len; i++) {
		uint8_t c = wd_buffer_bytes(b)[i];
		fprintf(stderr, c >= 32 && c < 127 && c != '\\' ? "%c" : "\\x%02x", c);
	}
	fprintf(stderr, "\"\n");
}

static bool is_hex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static int hex(uint8_t c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static bool is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* The reference: RFC 2045 §6.7 over the whole input. */
static void qp_reference(const uint8_t *in, size_t n, struct wd_buffer *out)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = in[i];
		if (is_blank(c)) {
			size_t j = i;
			while (j < n && is_blank(in[j]))
				j++;
			if (j < n && in[j] != '\r' && in[j] != '\n')
				wd_buffer_append(out, in + i, j - i);
			i = j;
			continue;
		}
		if (c == '=') {
			if (i + 2 < n + 0 && is_hex(in[i + 1]) && is_hex(in[i + 2])) {
				uint8_t byte = (uint8_t)(hex(in[i + 1]) << 4 | hex(in[i + 2]));
				wd_buffer_append(out, &byte, 1);
				i += 3;
				continue;
			}
			size_t j = i + 1;
			while (j < n && is_blank(in[j]))
				j++;
			if (j == n) {
				i = j;
			} else if (in[j] == '\n') {
				i = j + 1;
			} else if (in[j] == '\r') {
				i = j + 1 + (j + 1 < n && in[j + 1] == '\n');
			} else {
				wd_buffer_append(out, "=", 1);
				i++;
			}
			continue;
		}
		wd_buffer_append(out, &c, 1);
		i++;
	}
}

/* A QP encoder: printable ASCII but '=' as is, blanks as is unless a line
   break or the end follows, everything else "=XX"; a soft break wherever
   `cuts` says (and where a line would pass 76). */
static void qp_encode(const uint8_t *in, size_t n, const uint8_t *cuts, size_t cuts_len,
		      struct wd_buffer *out)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t column = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];
		bool last = i + 1 == n;
		char enc[3];
		size_t len = 1;
		enc[0] = (char)c;
		if ((c < 33 || c > 126 || c == '=') && !(is_blank(c) && !last)) {
			enc[0] = '=';
			enc[1] = digits[c >> 4];
			enc[2] = digits[c & 15];
			len = 3;
		}
		bool cut = cuts_len > 0 && (cuts[i % cuts_len] & 7) == 0;
		if (column + len > 75 || cut) {
			/* a blank must not end the line before the soft break */
			wd_buffer_append(out, "=\r\n", 3);
			column = 0;
		}
		wd_buffer_append(out, enc, len);
		column += len;
	}
	/* a blank that ended up last on a line before a soft break is safe:
	   the "=" follows it; one ending the input was escaped above */
}

static void check_bounds(enum wd_imap_cte cte, const uint8_t *in, size_t n,
			 const struct wd_buffer *out)
{
	if (cte == WD_IMAP_CTE_IDENTITY) {
		CHECK(out->len == n && (n == 0 || memcmp(wd_buffer_bytes(out), in, n) == 0));
	} else if (cte == WD_IMAP_CTE_QP) {
		CHECK(out->len <= n);
	} else {
		size_t alphabet = 0;
		for (size_t i = 0; i < n; i++)
			alphabet += (in[i] >= 'A' && in[i] <= 'Z') || (in[i] >= 'a' && in[i] <= 'z') ||
				    (in[i] >= '0' && in[i] <= '9') || in[i] == '+' || in[i] == '/';
		CHECK(out->len <= alphabet * 3 / 4);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 16384)
		return 0;
	enum wd_imap_cte cte = (enum wd_imap_cte)(data[0] % 3);
	unsigned seed = 2u + data[0] / 3u;
	data++;
	size--;
	struct wd_buffer whole = WD_BUFFER_INIT, other = WD_BUFFER_INIT;
	decode(cte, data, size, 0, &whole);
	check_bounds(cte, data, size, &whole);
	unsigned splits[] = { 1, seed, seed * 7919u };
	for (size_t k = 0; k < 3; k++) {
		if (splits[k] == 1 && size > 4096)
			continue;
		wd_buffer_clear(&other);
		decode(cte, data, size, splits[k], &other);
		CHECK(same(&whole, &other));
	}
	if (cte == WD_IMAP_CTE_QP) {
		/* blank runs longer than the decoder holds are cut into the output */
		size_t run = 0, longest = 0;
		for (size_t i = 0; i < size; i++) {
			run = is_blank(data[i]) ? run + 1 : 0;
			longest = run > longest ? run : longest;
		}
		if (longest < 64) {
			wd_buffer_clear(&other);
			qp_reference(data, size, &other);
			if (!same(&whole, &other)) {
				dump("streamed", &whole);
				dump("reference", &other);
				abort();
			}
		}
	}

	/* round trips */
	struct wd_buffer enc = WD_BUFFER_INIT;
	if (cte == WD_IMAP_CTE_BASE64)
		CHECK(wd_base64_encode(data, size, 76, &enc) == WD_OK);
	else if (cte == WD_IMAP_CTE_QP)
		qp_encode(data, size, data, size > 16 ? 16 : size, &enc);
	else
		wd_buffer_append(&enc, data, size);
	wd_buffer_clear(&other);
	decode(cte, wd_buffer_bytes(&enc), enc.len, seed, &other);
	if (other.len != size || (size > 0 && memcmp(wd_buffer_bytes(&other), data, size) != 0)) {
		fprintf(stderr, "round trip: %zu bytes in, %zu out\n", size, other.len);
		abort();
	}
	wd_buffer_release(&enc);
	wd_buffer_release(&whole);
	wd_buffer_release(&other);
	return 0;
}
