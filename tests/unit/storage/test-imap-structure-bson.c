/* Unit tests: WildDuck's cached `envelope` / `bodystructure` arrays
 * (storage/wd-imap-structure-bson.h).
 *
 * Each test parses a hand-written message (written with LF, sent as CRLF)
 * and compares the BSON array with an expected value derived by hand from
 * WildDuck's code (imap-core/lib/indexer/create-envelope.js,
 * body-structure.js, parse-mime-tree.js and nodemailer's addressparser),
 * never from our output. The expected values use a compact notation in
 * which every element shows its BSON type:
 *
 *   null      null            "abc"   UTF-8 string
 *   b"abc"    Binary (subtype 0)      11      int32
 *   [a,b]     array           bytes below 0x20 as \xNN
 *
 * The §2.9.1 example of the reference is also walked with bson_iter and
 * every element's type asserted one by one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-imap-structure-bson.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static void dump_bytes(struct wd_buffer *out, const uint8_t *s, size_t len)
{
	wd_buffer_append(out, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			wd_buffer_printf(out, "\\x%02x", s[i]);
		else if (s[i] == '"' || s[i] == '\\')
			wd_buffer_printf(out, "\\%c", s[i]);
		else
			wd_buffer_append(out, s + i, 1);
	}
	wd_buffer_append(out, "\"", 1);
}

static void dump_array(bson_iter_t *array, struct wd_buffer *out);

static void dump_value(bson_iter_t *it, struct wd_buffer *out)
{
	switch (bson_iter_type(it)) {
	case BSON_TYPE_NULL:
		wd_buffer_append_str(out, "null");
		break;
	case BSON_TYPE_UTF8: {
		uint32_t len;
		const char *s = bson_iter_utf8(it, &len);
		dump_bytes(out, (const uint8_t *)s, len);
		break;
	}
	case BSON_TYPE_BINARY: {
		bson_subtype_t subtype;
		uint32_t len;
		const uint8_t *data;
		bson_iter_binary(it, &subtype, &len, &data);
		if (subtype != BSON_SUBTYPE_BINARY)
			wd_buffer_printf(out, "<subtype %d>", (int)subtype);
		wd_buffer_append_str(out, "b");
		dump_bytes(out, data, len);
		break;
	}
	case BSON_TYPE_INT32:
		wd_buffer_printf(out, "%d", bson_iter_int32(it));
		break;
	case BSON_TYPE_ARRAY: {
		bson_iter_t child;
		assert_true(bson_iter_recurse(it, &child));
		dump_array(&child, out);
		break;
	}
	default:
		wd_buffer_printf(out, "<type 0x%x>", (unsigned)bson_iter_type(it));
		break;
	}
}

static void dump_array(bson_iter_t *array, struct wd_buffer *out)
{
	wd_buffer_append_str(out, "[");
	bool first = true;
	uint32_t index = 0;
	while (bson_iter_next(array)) {
		/* keys must be "0", "1", ... */
		char key[16];
		snprintf(key, sizeof(key), "%u", index++);
		assert_string_equal(bson_iter_key(array), key);
		if (!first)
			wd_buffer_append_str(out, ",");
		first = false;
		dump_value(array, out);
	}
	wd_buffer_append_str(out, "]");
}

struct fixture {
	char *msg; /* CRLF version of the test message */
	size_t len;
	struct wd_arena *arena;
	struct wd_mime_tree *tree;
	bson_t doc;
};

/* Parse `msg`, written with LF line ends, as CRLF (a bare "\r" stays). */
static void parse(struct fixture *f, const char *msg)
{
	size_t len = strlen(msg);
	f->msg = malloc(2 * len + 1);
	assert_non_null(f->msg);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\n')
			f->msg[n++] = '\r';
		f->msg[n++] = msg[i];
	}
	f->len = n;
	const char *error = NULL;
	f->arena = wd_arena_create(0);
	assert_non_null(f->arena);
	if (wd_mime_tree_parse(f->arena, (const uint8_t *)f->msg, f->len, NULL, &f->tree,
			       &error) != WD_OK)
		fail_msg("parse failed: %s", error);
	bson_init(&f->doc);
}

static void done(struct fixture *f)
{
	bson_destroy(&f->doc);
	wd_arena_destroy(&f->arena);
	free(f->msg);
}

/* The compact form of the array stored under `key` in the fixture's doc. */
static char *dump_key(struct fixture *f, const char *key)
{
	bson_iter_t it;
	assert_true(bson_iter_init_find(&it, &f->doc, key));
	assert_int_equal(bson_iter_type(&it), BSON_TYPE_ARRAY);
	struct wd_buffer out = WD_BUFFER_INIT;
	dump_value(&it, &out);
	wd_buffer_append(&out, "", 1);
	size_t len;
	return (char *)wd_buffer_steal(&out, &len);
}

static void check_envelope(const char *msg, const char *expected)
{
	struct fixture f;
	parse(&f, msg);
	assert_int_equal(wd_imap_envelope_bson(f.tree, f.tree->root, &f.doc, "envelope"), WD_OK);
	char *got = dump_key(&f, "envelope");
	if (strcmp(got, expected) != 0)
		fail_msg("envelope\n  got:      %s\n  expected: %s", got, expected);
	free(got);
	done(&f);
}

static void check_structure(const char *msg, const char *expected)
{
	struct fixture f;
	parse(&f, msg);
	assert_int_equal(wd_imap_bodystructure_bson(f.tree, f.tree->root, &f.doc, "bodystructure"),
			 WD_OK);
	char *got = dump_key(&f, "bodystructure");
	if (strcmp(got, expected) != 0)
		fail_msg("bodystructure\n  got:      %s\n  expected: %s", got, expected);
	free(got);
	done(&f);
}

/* ---- the reference's §2.9.1 example ---- */

/* Multipart with a text part and a base64 attachment, as delivered by MX
   (Delivered-To / Return-Path prepended). The attachment body is 76 + CRLF
   + 12 = 90 bytes in two lines (lineCount 1); the text is 11 bytes. */
#define B76 "QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJD"
static const char example_msg[] =
	"Delivered-To: test@example.com\n"
	"Return-Path: <s@x>\n"
	"From: Andris <andris@example.com>\n"
	"To: test@example.com\n"
	"Subject: Hello\n"
	"Message-ID: <abc@example.com>\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\n"
	"\n"
	"--XX\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"\n"
	"Hello world\n"
	"--XX\n"
	"Content-Type: application/octet-stream; name=\"a.bin\"\n"
	"Content-Transfer-Encoding: base64\n"
	"Content-Disposition: attachment; filename=\"a.bin\"\n"
	"\n"
	B76 "\n"
	"QUJDREVGR0g=\n"
	"--XX--\n";

static void test_example_envelope(void **state)
{
	(void)state;
	check_envelope(example_msg,
		       "[null,b\"Hello\","
		       "[[b\"Andris\",null,b\"andris\",b\"example.com\"]],"
		       "[[b\"Andris\",null,b\"andris\",b\"example.com\"]],"
		       "[[b\"Andris\",null,b\"andris\",b\"example.com\"]],"
		       "[[null,null,b\"test\",b\"example.com\"]],"
		       "null,null,null,\"<abc@example.com>\"]");
}

static void test_example_bodystructure(void **state)
{
	(void)state;
	check_structure(example_msg,
			"[[\"TEXT\",\"PLAIN\",[\"CHARSET\",b\"utf-8\"],null,null,\"7BIT\",11,0,"
			"null,null,null,null],"
			"[\"APPLICATION\",\"OCTET-STREAM\",[\"NAME\",b\"a.bin\"],null,null,\"BASE64\",90,"
			"null,[\"ATTACHMENT\",[\"FILENAME\",b\"a.bin\"]],null,null],"
			"\"MIXED\",[\"BOUNDARY\",b\"XX\"],null,null,null]");
}

/* Walk an array element by element: `types` lists the expected BSON type
   of each element, in order. */
static void expect_types(bson_iter_t *array, const bson_type_t *types, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		assert_true(bson_iter_next(array));
		if (bson_iter_type(array) != types[i])
			fail_msg("element %zu: type 0x%x, expected 0x%x", i,
				 (unsigned)bson_iter_type(array), (unsigned)types[i]);
	}
	assert_false(bson_iter_next(array));
}

static void expect_binary(const bson_iter_t *it, const char *value)
{
	bson_subtype_t subtype;
	uint32_t len;
	const uint8_t *data;
	assert_true(BSON_ITER_HOLDS_BINARY(it));
	bson_iter_binary(it, &subtype, &len, &data);
	assert_int_equal(subtype, BSON_SUBTYPE_BINARY);
	assert_int_equal(len, strlen(value));
	assert_memory_equal(data, value, len);
}

static void test_example_types(void **state)
{
	(void)state;
	struct fixture f;
	parse(&f, example_msg);
	assert_int_equal(wd_imap_envelope_bson(f.tree, f.tree->root, &f.doc, "envelope"), WD_OK);
	assert_int_equal(wd_imap_bodystructure_bson(f.tree, f.tree->root, &f.doc, "bodystructure"),
			 WD_OK);
	const bson_type_t N = BSON_TYPE_NULL, S = BSON_TYPE_UTF8, B = BSON_TYPE_BINARY,
			  I = BSON_TYPE_INT32, A = BSON_TYPE_ARRAY;
	bson_iter_t top, it, sub, leaf;

	/* envelope */
	assert_true(bson_iter_init_find(&top, &f.doc, "envelope"));
	assert_true(bson_iter_recurse(&top, &it));
	expect_types(&it, (bson_type_t[]){ N, B, A, A, A, A, N, N, N, S }, 10);
	assert_true(bson_iter_init_find(&top, &f.doc, "envelope"));
	assert_true(bson_iter_recurse(&top, &it));
	assert_true(bson_iter_find(&it, "1"));
	expect_binary(&it, "Hello");
	for (int list = 2; list <= 5; list++) {
		char key[4];
		snprintf(key, sizeof(key), "%d", list);
		assert_true(bson_iter_init_find(&top, &f.doc, "envelope"));
		assert_true(bson_iter_recurse(&top, &it));
		assert_true(bson_iter_find(&it, key));
		assert_true(bson_iter_recurse(&it, &sub));
		assert_true(bson_iter_next(&sub)); /* the one address */
		assert_true(bson_iter_recurse(&sub, &leaf));
		expect_types(&leaf, (bson_type_t[]){ list == 5 ? N : B, N, B, B }, 4);
		assert_false(bson_iter_next(&sub));
	}
	assert_true(bson_iter_init_find(&top, &f.doc, "envelope"));
	assert_true(bson_iter_recurse(&top, &it));
	assert_true(bson_iter_find(&it, "9"));
	assert_string_equal(bson_iter_utf8(&it, NULL), "<abc@example.com>");

	/* bodystructure: part, part, "MIXED", params, disposition, language, location */
	assert_true(bson_iter_init_find(&top, &f.doc, "bodystructure"));
	assert_true(bson_iter_recurse(&top, &it));
	expect_types(&it, (bson_type_t[]){ A, A, S, A, N, N, N }, 7);
	assert_true(bson_iter_init_find(&top, &f.doc, "bodystructure"));
	assert_true(bson_iter_recurse(&top, &it));

	/* the text part */
	assert_true(bson_iter_next(&it));
	assert_true(bson_iter_recurse(&it, &sub));
	expect_types(&sub, (bson_type_t[]){ S, S, A, N, N, S, I, I, N, N, N, N }, 12);
	assert_true(bson_iter_recurse(&it, &sub));
	assert_true(bson_iter_find(&sub, "2"));
	assert_true(bson_iter_recurse(&sub, &leaf));
	expect_types(&leaf, (bson_type_t[]){ S, B }, 2);
	assert_true(bson_iter_recurse(&it, &sub));
	assert_true(bson_iter_find(&sub, "6"));
	assert_int_equal(bson_iter_int32(&sub), 11);
	assert_true(bson_iter_next(&sub));
	assert_int_equal(bson_iter_int32(&sub), 0);

	/* the attachment */
	assert_true(bson_iter_next(&it));
	assert_true(bson_iter_recurse(&it, &sub));
	expect_types(&sub, (bson_type_t[]){ S, S, A, N, N, S, I, N, A, N, N }, 11);
	assert_true(bson_iter_recurse(&it, &sub));
	assert_true(bson_iter_find(&sub, "8"));
	assert_true(bson_iter_recurse(&sub, &leaf));
	expect_types(&leaf, (bson_type_t[]){ S, A }, 2);
	assert_true(bson_iter_recurse(&sub, &leaf));
	assert_true(bson_iter_next(&leaf));
	assert_string_equal(bson_iter_utf8(&leaf, NULL), "ATTACHMENT");
	assert_true(bson_iter_next(&leaf));
	bson_iter_t params;
	assert_true(bson_iter_recurse(&leaf, &params));
	expect_types(&params, (bson_type_t[]){ S, B }, 2);
	assert_true(bson_iter_recurse(&leaf, &params));
	assert_true(bson_iter_next(&params));
	assert_string_equal(bson_iter_utf8(&params, NULL), "FILENAME");
	assert_true(bson_iter_next(&params));
	expect_binary(&params, "a.bin");

	/* the multipart's own fields */
	assert_true(bson_iter_next(&it));
	assert_string_equal(bson_iter_utf8(&it, NULL), "MIXED");
	assert_true(bson_iter_next(&it));
	assert_true(bson_iter_recurse(&it, &sub));
	expect_types(&sub, (bson_type_t[]){ S, B }, 2);
	done(&f);
}

/* ---- single parts ---- */

/* text/plain with charset and the other basic and extension fields. Body:
   three lines each ending in CRLF = 4 pieces, lineCount 3, 21 bytes. */
static void test_text_plain_charset(void **state)
{
	(void)state;
	static const char msg[] =
		"From: a@b.c\n"
		"Subject: Hi\n"
		"Content-Type: text/plain; charset=\"ISO-8859-1\"; format=flowed\n"
		"Content-Transfer-Encoding: quoted-printable\n"
		"Content-ID: <x@y>\n"
		"Content-Description: A note\n"
		"Content-Language: en, de\n"
		"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
		"Content-Location: http://example.com/note\n"
		"\n"
		"line1\n"
		"line2\n"
		"line3\n";
	check_structure(msg, "[\"TEXT\",\"PLAIN\",[\"CHARSET\",b\"ISO-8859-1\",\"FORMAT\",b\"flowed\"],"
			     "\"<x@y>\",\"A note\",\"QUOTED-PRINTABLE\",21,3,"
			     "\"Q2hlY2sgSW50ZWdyaXR5IQ==\",null,[\"en\",\"de\"],"
			     "\"http://example.com/note\"]");
	check_envelope(msg, "[null,b\"Hi\",[[null,null,b\"a\",b\"b.c\"]],[[null,null,b\"a\",b\"b.c\"]],"
			    "[[null,null,b\"a\",b\"b.c\"]],null,null,null,null,null]");
}

/* No header at all: the text/plain default, no params, an empty Binary
   subject and null everywhere else. Type names keep WildDuck's upper-case
   form even when written in another case. */
static void test_defaults(void **state)
{
	(void)state;
	check_structure("\nbody",
			"[\"TEXT\",\"PLAIN\",null,null,null,\"7BIT\",4,0,null,null,null,null]");
	check_envelope("\nbody", "[null,b\"\",null,null,null,null,null,null,null,null]");
	check_structure("Content-Type: Text/HTML\nContent-Transfer-Encoding: 8Bit\n\n<p>\n",
			"[\"TEXT\",\"HTML\",null,null,null,\"8BIT\",5,1,null,null,null,null]");
	/* a type without subtype: text/ is TEXT/PLAIN (with lineCount), foo is
	   APPLICATION/OCTET-STREAM (without) */
	check_structure("Content-Type: text/\n\nx",
			"[\"TEXT\",\"PLAIN\",null,null,null,\"7BIT\",1,0,null,null,null,null]");
	check_structure("Content-Type: foo\n\nx",
			"[\"APPLICATION\",\"OCTET-STREAM\",null,null,null,\"7BIT\",1,"
			"null,null,null,null]");
	/* an empty Content-Disposition is no disposition; one without
	   parameters has null params; an empty language is null */
	check_structure("Content-Type: image/gif\nContent-Disposition:\nContent-Language: ,\n\nGIF",
			"[\"IMAGE\",\"GIF\",null,null,null,\"7BIT\",3,null,null,null,null]");
	check_structure("Content-Type: image/gif\nContent-Disposition: Inline\n\nGIF",
			"[\"IMAGE\",\"GIF\",null,null,null,\"7BIT\",3,null,[\"INLINE\",null],null,null]");
}

/* ---- multiparts ---- */

static void test_mixed_attachment(void **state)
{
	(void)state;
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=\"=_b\"; charset=x\n"
		"Content-Disposition: inline\n"
		"\n"
		"--=_b\n"
		"Content-Type: text/plain; charset=us-ascii\n"
		"\n"
		"Hi,\n"
		"see the report.\n"
		"--=_b\n"
		"Content-Type: application/pdf; name=\"report.pdf\"\n"
		"Content-Transfer-Encoding: base64\n"
		"Content-Disposition: attachment; filename=\"report.pdf\"; size=1234\n"
		"Content-Location: report.pdf\n"
		"Content-Language: fr\n"
		"\n"
		"JVBERi0=\n"
		"--=_b--\n";
	check_structure(msg,
			"[[\"TEXT\",\"PLAIN\",[\"CHARSET\",b\"us-ascii\"],null,null,\"7BIT\",20,1,"
			"null,null,null,null],"
			"[\"APPLICATION\",\"PDF\",[\"NAME\",b\"report.pdf\"],null,null,\"BASE64\",8,"
			"null,[\"ATTACHMENT\",[\"FILENAME\",b\"report.pdf\",\"SIZE\",b\"1234\"]],"
			"[\"fr\"],\"report.pdf\"],"
			"\"MIXED\",[\"BOUNDARY\",b\"=_b\",\"CHARSET\",b\"x\"],[\"INLINE\",null],null,null]");
}

static void test_alternative_in_mixed(void **state)
{
	(void)state;
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=outer\n"
		"\n"
		"--outer\n"
		"Content-Type: multipart/alternative; boundary=\"inner\"\n"
		"\n"
		"--inner\n"
		"Content-Type: text/plain\n"
		"\n"
		"plain\n"
		"--inner\n"
		"Content-Type: text/html; charset=utf-8\n"
		"\n"
		"<p>html</p>\n"
		"--inner--\n"
		"--outer\n"
		"Content-Type: image/png; name=x.png\n"
		"Content-Transfer-Encoding: base64\n"
		"Content-Disposition: inline; filename=x.png\n"
		"Content-ID: <img1>\n"
		"\n"
		"iVBORw0K\n"
		"--outer--\n";
	check_structure(msg,
			"[[[\"TEXT\",\"PLAIN\",null,null,null,\"7BIT\",5,0,null,null,null,null],"
			"[\"TEXT\",\"HTML\",[\"CHARSET\",b\"utf-8\"],null,null,\"7BIT\",11,0,"
			"null,null,null,null],"
			"\"ALTERNATIVE\",[\"BOUNDARY\",b\"inner\"],null,null,null],"
			"[\"IMAGE\",\"PNG\",[\"NAME\",b\"x.png\"],\"<img1>\",null,\"BASE64\",8,null,"
			"[\"INLINE\",[\"FILENAME\",b\"x.png\"]],null,null],"
			"\"MIXED\",[\"BOUNDARY\",b\"outer\"],null,null,null]");
}

/* A multipart without parts is one empty array; without a boundary its
   subtype is null. */
static void test_multipart_without_parts(void **state)
{
	(void)state;
	check_structure("Content-Type: multipart/mixed; boundary=q\n\nno delimiter here\n",
			"[[],\"MIXED\",[\"BOUNDARY\",b\"q\"],null,null,null]");
	check_structure("Content-Type: multipart/related\n\n--q\n\nx\n--q--\n",
			"[[],null,null,null,null,null]");
}

/* A sub part without Content-Type is text/plain; one with a type but no
   subtype is APPLICATION/OCTET-STREAM. */
static void test_missing_content_type_in_part(void **state)
{
	(void)state;
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=zz\n"
		"\n"
		"--zz\n"
		"\n"
		"no header here\n"
		"--zz\n"
		"Content-Disposition: attachment\n"
		"\n"
		"still text\n"
		"--zz\n"
		"Content-Type: application/pdf\n"
		"\n"
		"%PDF\n"
		"--zz--\n";
	check_structure(msg,
			"[[\"TEXT\",\"PLAIN\",null,null,null,\"7BIT\",14,0,null,null,null,null],"
			"[\"TEXT\",\"PLAIN\",null,null,null,\"7BIT\",10,0,null,"
			"[\"ATTACHMENT\",null],null,null],"
			"[\"APPLICATION\",\"PDF\",null,null,null,\"7BIT\",4,null,null,null,null],"
			"\"MIXED\",[\"BOUNDARY\",b\"zz\"],null,null,null]");
}

/* ---- message/rfc822 ---- */

/* The rfc822 part's body: 7 lines, 159 bytes with CRLF, lineCount 6. */
static void test_message_rfc822(void **state)
{
	(void)state;
	static const char msg[] =
		"From: Outer <outer@example.com>\n"
		"Subject: Fwd\n"
		"Content-Type: multipart/mixed; boundary=\"b1\"\n"
		"\n"
		"--b1\n"
		"Content-Type: text/plain\n"
		"\n"
		"see attached\n"
		"--b1\n"
		"Content-Type: message/rfc822\n"
		"Content-Disposition: attachment; filename=inner.eml\n"
		"\n"
		"From: Inner <inner@example.org>\n"
		"To: x@example.org\n"
		"Subject: Inner subject\n"
		"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
		"Message-ID: <inner@example.org>\n"
		"\n"
		"Inner body\n"
		"--b1--\n";
	check_structure(msg,
			"[[\"TEXT\",\"PLAIN\",null,null,null,\"7BIT\",12,0,null,null,null,null],"
			"[\"MESSAGE\",\"RFC822\",null,null,null,\"7BIT\",159,"
			"[\"Mon, 1 Jan 2024 00:00:00 +0000\",b\"Inner subject\","
			"[[b\"Inner\",null,b\"inner\",b\"example.org\"]],"
			"[[b\"Inner\",null,b\"inner\",b\"example.org\"]],"
			"[[b\"Inner\",null,b\"inner\",b\"example.org\"]],"
			"[[null,null,b\"x\",b\"example.org\"]],null,null,null,\"<inner@example.org>\"],"
			"[\"TEXT\",\"PLAIN\",null,null,null,\"7BIT\",10,0,null,null,null,null],"
			"6,null,[\"ATTACHMENT\",[\"FILENAME\",b\"inner.eml\"]],null,null],"
			"\"MIXED\",[\"BOUNDARY\",b\"b1\"],null,null,null]");
	check_envelope(msg, "[null,b\"Fwd\","
			    "[[b\"Outer\",null,b\"outer\",b\"example.com\"]],"
			    "[[b\"Outer\",null,b\"outer\",b\"example.com\"]],"
			    "[[b\"Outer\",null,b\"outer\",b\"example.com\"]],"
			    "null,null,null,null,null]");
}

/* An encoded message/rfc822 is not parsed: an ordinary leaf. */
static void test_message_rfc822_encoded(void **state)
{
	(void)state;
	check_structure("Content-Type: multipart/mixed; boundary=b\n\n--b\n"
			"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
			"U3ViamVjdDogeA0KDQp4\n--b--\n",
			"[[\"MESSAGE\",\"RFC822\",null,null,null,\"BASE64\",20,null,null,null,null],"
			"\"MIXED\",[\"BOUNDARY\",b\"b\"],null,null,null]");
}

/* ---- addresses ---- */

static void test_groups(void **state)
{
	(void)state;
	static const char msg[] =
		"From: a@example.com\n"
		"Reply-To: : r@example.com;\n"
		"To: undisclosed-recipients:;\n"
		"Cc: Friends: \"Bob B\" <bob@example.com>, carol@example.com;, dave@example.com\n"
		"Bcc: =?utf-8?q?Gr=C3=BCppe?=: e@example.com;\n"
		"\n";
	check_envelope(msg, "[null,b\"\","
			    "[[null,null,b\"a\",b\"example.com\"]],"
			    "[[null,null,b\"a\",b\"example.com\"]],"
			    /* a group without a name: its name is the string "" */
			    "[[null,null,\"\",null],[null,null,b\"r\",b\"example.com\"],"
			    "[null,null,null,null]],"
			    "[[null,null,b\"undisclosed-recipients\",null],[null,null,null,null]],"
			    "[[null,null,b\"Friends\",null],[b\"Bob B\",null,b\"bob\",b\"example.com\"],"
			    "[null,null,b\"carol\",b\"example.com\"],[null,null,null,null],"
			    "[null,null,b\"dave\",b\"example.com\"]],"
			    "[[null,null,b\"Gr\xc3\xbcppe\",null],[null,null,b\"e\",b\"example.com\"],"
			    "[null,null,null,null]],"
			    "null,null]");
}

/* No From: from is null and so are sender/reply-to unless given; an empty
   Sender falls back to From. */
static void test_missing_from(void **state)
{
	(void)state;
	check_envelope("To: someone@example.com\nSubject: no from\n\nbody\n",
		       "[null,b\"no from\",null,null,null,"
		       "[[null,null,b\"someone\",b\"example.com\"]],null,null,null,null]");
	check_envelope("Sender: s@example.com\n\n",
		       "[null,b\"\",null,[[null,null,b\"s\",b\"example.com\"]],null,"
		       "null,null,null,null,null]");
	check_envelope("From: f@example.com\nSender:\nReply-To: ,\n\n",
		       "[null,b\"\",[[null,null,b\"f\",b\"example.com\"]],"
		       "[[null,null,b\"f\",b\"example.com\"]],[[null,null,b\"f\",b\"example.com\"]],"
		       "null,null,null,null,null]");
}

/* addressparser's ways with odd input. */
static void test_address_forms(void **state)
{
	(void)state;
	check_envelope(
		"To: \"Last, First\" <lf@example.com>, (Comment Only) c@example.com,\n"
		" Plain Name pn@example.com, <angle@example.com>, NoAt, Name <local>,\n"
		" \"a\"b <ab@example.com>, x@y@example.com\n"
		"\n",
		"[null,b\"\",null,null,null,"
		"[[b\"Last, First\",null,b\"lf\",b\"example.com\"],"
		/* a comment is the name when there is no other text */
		"[b\"Comment Only\",null,b\"c\",b\"example.com\"],"
		/* the address is found inside the text */
		"[b\"Plain Name\",null,b\"pn\",b\"example.com\"],"
		"[null,null,b\"angle\",b\"example.com\"],"
		/* no '@': a name only */
		"[b\"NoAt\",null,null,null],"
		/* an address without '@' gives its text as user and domain */
		"[b\"Name\",null,b\"local\",b\"local\"],"
		/* a word glued to a closing quote joins the quoted text */
		"[b\"ab\",null,b\"ab\",b\"example.com\"],"
		/* user before the first '@', domain after the last one */
		"[null,null,b\"x\",b\"example.com\"]],"
		"null,null,null,null]");
	/* all occurrences of a field are concatenated */
	check_envelope("Cc: one@example.com\nCc: two@example.com\n\n",
		       "[null,b\"\",null,null,null,null,"
		       "[[null,null,b\"one\",b\"example.com\"],[null,null,b\"two\",b\"example.com\"]],"
		       "null,null,null]");
}

/* ---- encoded words, raw 8-bit text ---- */

static void test_encoded_words(void **state)
{
	(void)state;
	check_envelope("From: =?ISO-8859-1?Q?J=F6rg?= <jorg@example.com>\n"
		       "Subject: =?UTF-8?B?SMOkbGxv?=\n =?UTF-8?Q?_W=C3=B6rld?=  \n"
		       "Date: Tue, 2 Jan 2024\n 10:00:00 +0200\n"
		       "In-Reply-To: <p@example.com>\n"
		       "\n",
		       "[\"Tue, 2 Jan 2024 10:00:00 +0200\",b\"H\xc3\xa4llo W\xc3\xb6rld\","
		       "[[b\"J\xc3\xb6rg\",null,b\"jorg\",b\"example.com\"]],"
		       "[[b\"J\xc3\xb6rg\",null,b\"jorg\",b\"example.com\"]],"
		       "[[b\"J\xc3\xb6rg\",null,b\"jorg\",b\"example.com\"]],"
		       "null,null,null,\"<p@example.com>\",null]");
	/* raw UTF-8 is kept (a deliberate difference: WildDuck garbles it);
	   invalid bytes become U+FFFD */
	check_envelope("Subject: T\xc3\xb5nu\n\n",
		       "[null,b\"T\xc3\xb5nu\",null,null,null,null,null,null,null,null]");
	check_envelope("Subject: T\xf5nu\n\n",
		       "[null,b\"T\xef\xbf\xbdnu\",null,null,null,null,null,null,null,null]");
	/* a repeated Subject: the last non-blank one (deliberate difference) */
	check_envelope("Subject: first\nSubject: second\nSubject:  \n\n",
		       "[null,b\"second\",null,null,null,null,null,null,null,null]");
}

/* Punycode domains become Unicode (only the lower-case "xn--" prefix, as
   punycode.js); a label that does not decode keeps the whole domain as
   written; ideographic full stops become dots. */
static void test_idn_domain(void **state)
{
	(void)state;
	check_envelope("From: Test <user@xn--mnchen-3ya.de>\n"
		       "To: a@XN--MNCHEN-3YA.de, b@xn--zz.xn--mnchen-3ya.de, c@example\xe3\x80\x82org,\n"
		       " d@sub.xn--bcher-kva.example\n"
		       "\n",
		       "[null,b\"\","
		       "[[b\"Test\",null,b\"user\",b\"m\xc3\xbcnchen.de\"]],"
		       "[[b\"Test\",null,b\"user\",b\"m\xc3\xbcnchen.de\"]],"
		       "[[b\"Test\",null,b\"user\",b\"m\xc3\xbcnchen.de\"]],"
		       "[[null,null,b\"a\",b\"XN--MNCHEN-3YA.de\"],"
		       "[null,null,b\"b\",b\"xn--zz.xn--mnchen-3ya.de\"],"
		       "[null,null,b\"c\",b\"example.org\"],"
		       "[null,null,b\"d\",b\"sub.b\xc3\xbc\x63her.example\"]],"
		       "null,null,null,null]");
}

/* ---- parameters ---- */

static void test_rfc2231_filename(void **state)
{
	(void)state;
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\n"
		"\n"
		"--b\n"
		"Content-Type: text/plain; name=\"=?UTF-8?Q?r=C3=A9sum=C3=A9.txt?=\"\n"
		"Content-Disposition: attachment;\n"
		" filename*0*=UTF-8''%E2%82%AC%20;\n"
		" filename*1=rates.txt\n"
		"\n"
		"x\n"
		"--b\n"
		"Content-Type: application/octet-stream;\n"
		" name*0*=iso-8859-1'fr'%E9t%E9.txt\n"
		"Content-Disposition: attachment; filename=\" spaced \"\n"
		"\n"
		"y\n"
		"--b--\n";
	check_structure(msg,
			"[[\"TEXT\",\"PLAIN\",[\"NAME\",b\"r\xc3\xa9sum\xc3\xa9.txt\"],null,null,"
			"\"7BIT\",1,0,null,"
			"[\"ATTACHMENT\",[\"FILENAME\",b\"\xe2\x82\xac rates.txt\"]],null,null],"
			"[\"APPLICATION\",\"OCTET-STREAM\",[\"NAME\",b\"\xc3\xa9t\xc3\xa9.txt\"],"
			"null,null,\"7BIT\",1,null,[\"ATTACHMENT\",[\"FILENAME\",b\"spaced\"]],"
			"null,null],"
			"\"MIXED\",[\"BOUNDARY\",b\"b\"],null,null,null]");
	/* name*=charset''value: WildDuck (parse-mime-tree.js) does not see the
	   charset of this form and would store "UTF-8''a.txt"; we store the
	   decoded value (a deliberate difference). Parameter names WildDuck
	   skips (here "x_y") are left out. */
	check_structure("Content-Type: image/png; name*=UTF-8''a%20b.png; x_y=1\n\nz",
			"[\"IMAGE\",\"PNG\",[\"NAME\",b\"a b.png\"],null,null,\"7BIT\",1,"
			"null,null,null,null]");
}

/* ---- robustness ---- */

static void build_both(const uint8_t *data, size_t len)
{
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree;
	const char *error;
	assert_non_null(arena);
	assert_int_equal(wd_mime_tree_parse(arena, data, len, NULL, &tree, &error), WD_OK);
	bson_t doc = BSON_INITIALIZER;
	assert_int_equal(wd_imap_envelope_bson(tree, tree->root, &doc, "e"), WD_OK);
	assert_int_equal(wd_imap_bodystructure_bson(tree, tree->root, &doc, "b"), WD_OK);
	assert_true(bson_validate(&doc, BSON_VALIDATE_UTF8, NULL));
	bson_destroy(&doc);
	wd_arena_destroy(&arena);
}

/* Nested groups, stray operators, NULs, huge and broken punycode labels,
   deep multiparts: no crash, valid BSON. */
static void test_hostile_headers(void **state)
{
	(void)state;
	static const char tail[] =
		".com, b@xn--99999999999999999999.com, c@xn--\xff.com, d@xn--ls8h, e@xn--a-\r\n"
		"Subject: =?utf-8?q?\0?= \x01\x7f\xc0\xaf\0\r\n"
		"Content-Type: multipart/mixed; boundary=a; name*=''%ff; q*=\xff''x\r\n"
		"Content-Language: \xff, ,,\r\n\r\n";
	struct wd_buffer m = WD_BUFFER_INIT;
	wd_buffer_append_str(&m, "From: ");
	for (int i = 0; i < 5000; i++)
		wd_buffer_append_str(&m, "g:");
	wd_buffer_append_str(&m, "x@y;\r\nTo: ");
	for (int i = 0; i < 3000; i++)
		wd_buffer_append_str(&m, "\"a\"b<c>(d)\\,;:<>@");
	wd_buffer_append_str(&m, "\r\nCc: a@xn--");
	for (int i = 0; i < 5000; i++)
		wd_buffer_append_str(&m, "zz");
	wd_buffer_append(&m, tail, sizeof(tail) - 1);
	/* multiparts nested past the tree's depth limit */
	char prev[16] = "a";
	for (int i = 0; i < 300; i++) {
		wd_buffer_printf(&m, "--%s\r\nContent-Type: multipart/mixed; boundary=a%d\r\n\r\n",
				 prev, i);
		snprintf(prev, sizeof(prev), "a%d", i);
	}
	wd_buffer_printf(&m, "--%s\r\nContent-Type: message/rfc822\r\n\r\nFrom: <<<\r\n\r\nx\r\n",
			 prev);
	build_both(wd_buffer_bytes(&m), m.len);
	wd_buffer_release(&m);
}

/* Every prefix of a message, and single-byte mutations of it. */
static void test_prefixes_and_mutations(void **state)
{
	(void)state;
	size_t len = strlen(example_msg);
	for (size_t n = 0; n <= len; n++)
		build_both((const uint8_t *)example_msg, n);
	uint8_t *copy = malloc(len);
	assert_non_null(copy);
	static const uint8_t bytes[] = { '\0', '\r', '\n', ':', ';', '"', '<', '@', '-', '=', '?',
					 0xff, 0xc3 };
	unsigned seed = 12345;
	for (int round = 0; round < 3000; round++) {
		memcpy(copy, example_msg, len);
		for (int k = 0; k < 4; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t pos = (seed >> 8) % len;
			seed = seed * 1103515245u + 12345u;
			copy[pos] = bytes[(seed >> 8) % sizeof(bytes)];
		}
		build_both(copy, len);
	}
	free(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_envelope),
		cmocka_unit_test(test_example_bodystructure),
		cmocka_unit_test(test_example_types),
		cmocka_unit_test(test_text_plain_charset),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_mixed_attachment),
		cmocka_unit_test(test_alternative_in_mixed),
		cmocka_unit_test(test_multipart_without_parts),
		cmocka_unit_test(test_missing_content_type_in_part),
		cmocka_unit_test(test_message_rfc822),
		cmocka_unit_test(test_message_rfc822_encoded),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_missing_from),
		cmocka_unit_test(test_address_forms),
		cmocka_unit_test(test_encoded_words),
		cmocka_unit_test(test_idn_domain),
		cmocka_unit_test(test_rfc2231_filename),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_prefixes_and_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
