/*
 * test-outbound-units.c — the sans-I/O parts of libwdoutbound, no stack needed.
 *
 *   reply_parser       single, multi-line and bare-code replies, LF-only line ends; the
 *                      same result fed whole, byte by byte and at every split point;
 *                      refusals: bad codes, mixed codes, a line over 2048 bytes, over 128
 *                      lines; text past 4096 bytes dropped; control characters as '?'.
 *   data_encoder       CRLF / bare LF / bare CR to CRLF, dot-stuffing, the final CRLF and
 *                      ".", 8-bit detection; identical output for every split of the input
 *                      and byte by byte (a CR at a chunk's end).
 *   header_split       the end of the block ("\n\n", "\n\r\n", none), folding, an mbox
 *                      "From " line, a continuation after it, keys trimmed and lower-cased as
 *                      JavaScript does on "binary" strings (Latin-1 capitals), no colon.
 *   header_fold        libmime's folding at 76 for values with and without spaces, and at
 *                      exactly 76 characters.
 *   header_build       mailsplit's normalisation: leading white space goes, a line break
 *                      that is not folding is dropped, folding becomes CRLF.
 *   header_bson        "binary" strings both ways; a line with code points above U+00FF
 *                      stays UTF-8.
 *   body_hash          relaxed canonicalization against hashes of hand-canonicalized text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound-private.h"
#include "smtp-client.h"
#include "wd-buffer.h"
#include "wd-result.h"

/* ---- replies ---- */

/* Feed `text` in pieces of `step` bytes (0 = all at once); the first
   complete reply's result. */
static int feed(const char *text, size_t step, struct wd_smtp_reply_parser *p, const char **error)
{
	wd_smtp_reply_parser_init(p);
	size_t len = strlen(text), pos = 0;
	while (pos < len) {
		size_t n = step == 0 ? len - pos : (len - pos < step ? len - pos : step);
		size_t used;
		int ret = wd_smtp_reply_feed(p, (const uint8_t *)text + pos, n, &used, error);
		assert_true(used <= n);
		pos += used;
		if (ret != WD_AGAIN)
			return ret;
		assert_int_equal(used, n);
	}
	return WD_AGAIN;
}

static void test_reply_parser(void **state)
{
	static const struct {
		const char *text;
		int ret;
		unsigned code;
		const char *reply_text;
	} cases[] = {
		{ "250 OK\r\n", WD_OK, 250, "OK" },
		{ "220 mx.example.com ESMTP\r\n", WD_OK, 220, "mx.example.com ESMTP" },
		{ "250-mx greets you\r\n250-SIZE 1000\r\n250 8BITMIME\r\n", WD_OK, 250,
		  "mx greets you\nSIZE 1000\n8BITMIME" },
		{ "354\r\n", WD_OK, 354, "" },
		{ "451 4.3.0 later\n", WD_OK, 451, "4.3.0 later" },
		{ "250-a\r\n", WD_AGAIN, 0, NULL },
		{ "250 partial", WD_AGAIN, 0, NULL },
		{ "600 no\r\n", WD_ERROR, 0, NULL },
		{ "199 no\r\n", WD_ERROR, 0, NULL },
		{ "25 short\r\n", WD_ERROR, 0, NULL },
		{ "250x\r\n", WD_ERROR, 0, NULL },
		{ "2a0 x\r\n", WD_ERROR, 0, NULL },
		{ "250-a\r\n251 b\r\n", WD_ERROR, 0, NULL },
		{ "\r\n", WD_ERROR, 0, NULL },
		{ "250 tab\there\x01\r\n", WD_OK, 250, "tab?here?" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t steps[] = { 0, 1, 2, 3, 5, 7 };
		for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
			struct wd_smtp_reply_parser p;
			const char *error = NULL;
			int ret = feed(cases[i].text, steps[s], &p, &error);
			if (ret != cases[i].ret)
				fprintf(stderr, "case %zu step %zu: %d\n", i, steps[s], ret);
			assert_int_equal(ret, cases[i].ret);
			if (ret == WD_OK) {
				assert_int_equal(p.reply.code, cases[i].code);
				assert_string_equal(p.reply.text, cases[i].reply_text);
			}
			if (ret == WD_ERROR)
				assert_non_null(error);
		}
	}
	/* a reply followed by the next one: only the first is consumed */
	struct wd_smtp_reply_parser p;
	const char *error;
	size_t used;
	wd_smtp_reply_parser_init(&p);
	const char *two = "250 a\r\n354 b\r\n";
	assert_int_equal(wd_smtp_reply_feed(&p, (const uint8_t *)two, strlen(two), &used, &error), WD_OK);
	assert_int_equal(used, 7);

	/* limits */
	char *long_line = malloc(3000);
	memset(long_line, 'x', 3000);
	memcpy(long_line, "250 ", 4);
	long_line[2999] = '\0';
	assert_int_equal(feed(long_line, 0, &p, &error), WD_ERROR);
	assert_string_equal(error, "reply line too long");
	assert_int_equal(feed(long_line, 100, &p, &error), WD_ERROR);
	free(long_line);
	struct wd_buffer many = WD_BUFFER_INIT;
	for (int i = 0; i < 129; i++)
		wd_buffer_append_str(&many, "250-line\r\n");
	wd_buffer_append_str(&many, "250 end\r\n");
	wd_buffer_append(&many, "", 1);
	assert_int_equal(feed((const char *)wd_buffer_bytes(&many), 0, &p, &error), WD_ERROR);
	assert_string_equal(error, "reply with too many lines");
	wd_buffer_release(&many);
	struct wd_buffer big = WD_BUFFER_INIT;
	for (int i = 0; i < 100; i++) {
		wd_buffer_append_str(&big, "250-");
		for (int k = 0; k < 100; k++)
			wd_buffer_append(&big, "y", 1);
		wd_buffer_append_str(&big, "\r\n");
	}
	wd_buffer_append_str(&big, "250 end\r\n");
	wd_buffer_append(&big, "", 1);
	assert_int_equal(feed((const char *)wd_buffer_bytes(&big), 0, &p, &error), WD_OK);
	assert_int_equal(p.reply.text_len, WD_SMTP_REPLY_TEXT_MAX - 1);
	assert_int_equal(strlen(p.reply.text), WD_SMTP_REPLY_TEXT_MAX - 1);
	wd_buffer_release(&big);
}

/* ---- DATA ---- */

static void encode(const char *in, size_t len, const size_t *cuts, size_t ncuts,
		   struct wd_buffer *out, struct wd_smtp_data *d)
{
	wd_smtp_data_init(d);
	size_t pos = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		assert_int_equal(wd_smtp_data_encode(d, (const uint8_t *)in + pos, end - pos, out), WD_OK);
		pos = end;
	}
	assert_int_equal(wd_smtp_data_finish(d, out), WD_OK);
}

static void test_data_encoder(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", ".\r\n" },
		{ "a", "a\r\n.\r\n" },
		{ "a\r\nb\r\n", "a\r\nb\r\n.\r\n" },
		{ "a\nb\n", "a\r\nb\r\n.\r\n" },
		{ "a\rb\r", "a\r\nb\r\n.\r\n" },
		{ "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n" },
		{ ".x\r\n..y\r\n.\r\n", "..x\r\n...y\r\n..\r\n.\r\n" },
		{ "a\n.\nQUIT\r\n", "a\r\n..\r\nQUIT\r\n.\r\n" },
		{ "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n" },
		{ "x.y\r\n", "x.y\r\n.\r\n" },
		{ "\r\n", "\r\n.\r\n" },
		{ "\n\n", "\r\n\r\n.\r\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in;
		size_t len = strlen(in);
		struct wd_buffer out = WD_BUFFER_INIT;
		struct wd_smtp_data d;
		encode(in, len, NULL, 0, &out, &d);
		assert_int_equal(out.len, strlen(cases[i].out));
		assert_memory_equal(wd_buffer_bytes(&out), cases[i].out, out.len);
		assert_int_equal(d.bytes, out.len);
		/* every single cut, and byte by byte */
		for (size_t cut = 0; cut <= len; cut++) {
			struct wd_buffer o2 = WD_BUFFER_INIT;
			encode(in, len, &cut, 1, &o2, &d);
			assert_int_equal(o2.len, out.len);
			assert_memory_equal(wd_buffer_bytes(&o2), wd_buffer_bytes(&out), out.len);
			wd_buffer_release(&o2);
		}
		size_t cuts[64];
		for (size_t k = 0; k < len && k < 64; k++)
			cuts[k] = k;
		struct wd_buffer o3 = WD_BUFFER_INIT;
		encode(in, len, cuts, len < 64 ? len : 64, &o3, &d);
		assert_int_equal(o3.len, out.len);
		assert_memory_equal(wd_buffer_bytes(&o3), wd_buffer_bytes(&out), out.len);
		wd_buffer_release(&o3);
		wd_buffer_release(&out);
	}
	struct wd_buffer out = WD_BUFFER_INIT;
	struct wd_smtp_data d;
	encode("plain", 5, NULL, 0, &out, &d);
	assert_false(d.eight_bit);
	wd_buffer_clear(&out);
	encode("T\xc3\xb5nu", 5, NULL, 0, &out, &d);
	assert_true(d.eight_bit);
	wd_buffer_release(&out);
}

/* ---- headers ---- */

static void split(const char *raw, struct wd_headers *h, size_t *body)
{
	assert_int_equal(wd__headers_split((const uint8_t *)raw, strlen(raw), h, body), WD_OK);
}

static void test_header_split(void **state)
{
	struct wd_headers h;
	size_t body;
	split("A: 1\r\nB: 2\r\n\r\nbody", &h, &body);
	assert_int_equal(h.count, 2);
	assert_int_equal(body, 14);
	assert_string_equal(h.lines[0].key, "a");
	assert_string_equal((char *)h.lines[1].line, "B: 2");
	wd__headers_free(&h);

	split("A: 1\nB: 2\n\nbody", &h, &body);
	assert_int_equal(h.count, 2);
	assert_int_equal(body, 11);
	wd__headers_free(&h);

	split("A: 1\n\r\nbody", &h, &body); /* "\n\r\n" ends the block too */
	assert_int_equal(h.count, 1);
	assert_int_equal(body, 7);
	wd__headers_free(&h);

	split("A: 1\r\nB: 2", &h, &body); /* no empty line: all header */
	assert_int_equal(h.count, 2);
	assert_int_equal(body, 10);
	wd__headers_free(&h);

	split("Subject: a\r\n b\r\n\tc\r\nX: y\r\n\r\n", &h, &body);
	assert_int_equal(h.count, 2);
	assert_string_equal((char *)h.lines[0].line, "Subject: a\r\n b\r\n\tc");
	assert_int_equal(h.lines[0].len, strlen("Subject: a\r\n b\r\n\tc"));
	wd__headers_free(&h);

	split("From sender@x Tue Feb  4 10:00:00 2025\r\n continued\r\nTo: a\r\n\r\n", &h, &body);
	assert_int_equal(h.count, 1);
	assert_string_equal(h.lines[0].key, "to");
	wd__headers_free(&h);

	split(" leading: space\r\nno colon\r\n  folded: into it\r\nKey\t : v\r\n\xc0\xc9X: latin\r\n\r\n",
	      &h, &body);
	assert_int_equal(h.count, 4);
	assert_string_equal(h.lines[0].key, "leading"); /* the first line is never a fold */
	assert_string_equal((char *)h.lines[0].line, " leading: space");
	assert_string_equal(h.lines[1].key, "");
	assert_string_equal((char *)h.lines[1].line, "no colon\r\n  folded: into it");
	assert_string_equal(h.lines[2].key, "key");
	assert_string_equal(h.lines[3].key, "\xe0\xe9x");
	char *v = wd__header_value(&h.lines[2]);
	assert_string_equal(v, "v");
	free(v);
	assert_int_equal(wd__headers_count(&h, "key"), 1);
	assert_null(wd__headers_find(&h, "key", 1));
	wd__headers_free(&h);
}

static void test_header_fold(void **state)
{
	struct wd_headers h = { 0 };
	assert_int_equal(wd__headers_prepend(&h, "Short", "value"), WD_OK);
	assert_string_equal((char *)h.lines[0].line, "Short: value");
	/* 76 characters exactly: folded before the last word */
	char value[128];
	memset(value, 'a', 67);
	value[67] = '\0';
	assert_int_equal(strlen("Subject: ") + strlen(value), 76);
	assert_int_equal(wd__headers_prepend(&h, "Subject", value), WD_OK);
	char expected[160];
	snprintf(expected, sizeof(expected), "Subject:\r\n %s", value);
	assert_string_equal((char *)h.lines[0].line, expected);
	/* 75: one line */
	value[66] = '\0';
	assert_int_equal(wd__headers_prepend(&h, "Subject", value), WD_OK);
	snprintf(expected, sizeof(expected), "Subject: %s", value);
	assert_string_equal((char *)h.lines[0].line, expected);
	/* words: cut at the last space inside 76 characters */
	assert_int_equal(wd__headers_prepend(&h, "X", "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii "
						     "jjjj kkkk llll mmmm nnnn oooo pppp"),
			 WD_OK);
	assert_string_equal((char *)h.lines[0].line,
			    "X: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn"
			    "\r\n oooo pppp");
	/* CR/LF in a value are removed, never a new header */
	assert_int_equal(wd__headers_prepend(&h, "Y", "a\r\nBcc: x"), WD_OK);
	assert_string_equal((char *)h.lines[0].line, "Y: aBcc: x");
	assert_string_equal(h.lines[0].key, "y");
	wd__headers_remove(&h, "subject");
	assert_int_equal(wd__headers_count(&h, "subject"), 0);
	assert_int_equal(h.count, 3);
	wd__headers_free(&h);
}

static void test_header_build(void **state)
{
	struct wd_headers h = { 0 };
	bson_t array = BSON_INITIALIZER, doc;
	const char *lines[] = { "A: 1", "\r\n B: 2", "C: x\r\nD: injected", "E: f\r\n fold", "G: cr\ronly" };
	for (size_t i = 0; i < 5; i++) {
		char key[8];
		snprintf(key, sizeof(key), "%zu", i);
		bson_append_document_begin(&array, key, -1, &doc);
		BSON_APPEND_UTF8(&doc, "key", "k");
		BSON_APPEND_UTF8(&doc, "line", lines[i]);
		bson_append_document_end(&array, &doc);
	}
	char *error = NULL;
	assert_int_equal(wd__headers_from_bson(&array, &h, &error), WD_OK);
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(wd__headers_build(&h, &out), WD_OK);
	const char *expected = "A: 1\r\nB: 2\r\nC: xD: injected\r\nE: f\r\n fold\r\nG: cronly\r\n\r\n";
	assert_int_equal(out.len, strlen(expected));
	assert_memory_equal(wd_buffer_bytes(&out), expected, out.len);
	wd_buffer_release(&out);
	wd__headers_free(&h);
	bson_destroy(&array);
}

static void test_header_bson(void **state)
{
	struct wd_headers h;
	size_t body;
	split("Subject: T\xc3\xb5nu \xff\r\n\r\n", &h, &body);
	bson_t parent = BSON_INITIALIZER;
	wd__headers_append_bson(&h, &parent, "headers");
	bson_iter_t it;
	assert_true(bson_iter_init(&it, &parent));
	assert_true(bson_iter_find_descendant(&it, "headers.0.line", &it));
	assert_string_equal(bson_iter_utf8(&it, NULL), "Subject: T\xc3\x83\xc2\xb5nu \xc3\xbf");
	assert_true(bson_iter_init(&it, &parent));
	assert_true(bson_iter_find_descendant(&it, "headers", &it));
	uint32_t len;
	const uint8_t *data;
	bson_iter_array(&it, &len, &data);
	bson_t array;
	bson_init_static(&array, data, len);
	struct wd_headers back;
	char *error = NULL;
	assert_int_equal(wd__headers_from_bson(&array, &back, &error), WD_OK);
	assert_int_equal(back.lines[0].len, h.lines[0].len);
	assert_memory_equal(back.lines[0].line, h.lines[0].line, h.lines[0].len);
	wd__headers_free(&back);
	wd__headers_free(&h);
	bson_destroy(&parent);

	/* a real Unicode string (another writer): kept as UTF-8 */
	bson_t arr2 = BSON_INITIALIZER, doc;
	bson_append_document_begin(&arr2, "0", -1, &doc);
	BSON_APPEND_UTF8(&doc, "key", "subject");
	BSON_APPEND_UTF8(&doc, "line", "Subject: \xe2\x82\xac");
	bson_append_document_end(&arr2, &doc);
	assert_int_equal(wd__headers_from_bson(&arr2, &back, &error), WD_OK);
	assert_string_equal((char *)back.lines[0].line, "Subject: \xe2\x82\xac");
	wd__headers_free(&back);
	bson_destroy(&arr2);
}

static void hash_of(const char *canonical, char out[45])
{
	unsigned char md[32];
	unsigned int md_len;
	EVP_Digest(canonical, strlen(canonical), md, &md_len, EVP_sha256(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, 32);
}

static void test_body_hash(void **state)
{
	static const struct {
		const char *body, *canonical;
	} cases[] = {
		{ "", "" },
		{ "\r\n", "" },
		{ "\r\n\r\n\r\n", "" },
		{ " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n" }, /* RFC 6376 §3.4.6 */
		{ "abc", "abc\r\n" },
		{ "abc  ", "abc\r\n" },
		{ "a\nb\n\n", "a\r\nb\r\n" },
		{ "a\r\n  \r\n\tb\r\n", "a\r\n\r\n b\r\n" },
		{ "x\ry\r\n", "x\ry\r\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[45], want[45];
		assert_int_equal(wd__body_hash_relaxed((const uint8_t *)cases[i].body,
						       strlen(cases[i].body), got), WD_OK);
		hash_of(cases[i].canonical, want);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "case %zu\n", i);
		assert_string_equal(got, want);
	}
	/* the well-known hash of the empty body */
	char empty[45];
	wd__body_hash_relaxed((const uint8_t *)"", 0, empty);
	assert_string_equal(empty, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_parser),  cmocka_unit_test(test_data_encoder),
		cmocka_unit_test(test_header_split),  cmocka_unit_test(test_header_fold),
		cmocka_unit_test(test_header_build),  cmocka_unit_test(test_header_bson),
		cmocka_unit_test(test_body_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
