/* Unit tests: WildDuck's `parsedHeader` object (storage/mime-parsed-header.h).
 *
 * Each test parses a hand-written message and compares the object built for
 * one node, as canonical extended JSON, with the value WildDuck stores. The
 * expected values follow WildDuck's code (imap-core/lib/indexer/
 * parse-mime-tree.js processNodeHeader / parseValueParams, nodemailer 6.9
 * addressparser) and were checked byte for byte against that code run
 * under Node (BSON-serialized the way the MongoDB driver does), including
 * its quirks: 0xA0 trimmed off "à", a trailing ';' giving the parameter ""
 * = "", name*=utf-8''x kept as text, `constructor` always an array, array
 * index keys first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mime-parsed-header.h"
#include "wd-arena.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* The parsedHeader of the node at `path` (child numbers, 0 = root; a
   message/rfc822 part descends into its message) as canonical extended
   JSON; *rc_r gets the function's result. Free with bson_free(). */
static char *parsed_json_len(const char *msg, size_t len, const uint32_t *path, size_t depth,
			     bool nul_ok, int *rc_r)
{
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree;
	const char *error;
	assert_int_equal(wd_mime_tree_parse(arena, (const uint8_t *)msg, len, NULL, &tree, &error),
			 WD_OK);
	const struct wd_mime_node *node = tree->root;
	for (size_t i = 0; i < depth; i++) {
		if (node->kind == WD_MIME_KIND_MESSAGE)
			node = node->message;
		node = wd_mime_node_child(node, path[i]);
		assert_non_null(node);
	}
	bson_t doc, parsed;
	bson_init(&doc);
	assert_true(bson_append_document_begin(&doc, "parsedHeader", -1, &parsed));
	*rc_r = wd__parsed_header_append(tree, node, nul_ok, &parsed);
	assert_true(bson_append_document_end(&doc, &parsed));

	bson_iter_t it;
	uint32_t sub_len;
	const uint8_t *data;
	bson_t sub;
	assert_true(bson_iter_init_find(&it, &doc, "parsedHeader"));
	bson_iter_document(&it, &sub_len, &data);
	assert_true(bson_init_static(&sub, data, sub_len));
	char *json = bson_as_canonical_extended_json(&sub, NULL);
	assert_non_null(json);
	bson_destroy(&doc);
	wd_arena_destroy(&arena);
	return json;
}

static void expect_node(const char *msg, size_t len, const uint32_t *path, size_t depth,
			bool nul_ok, const char *expected)
{
	int rc;
	char *json = parsed_json_len(msg, len, path, depth, nul_ok, &rc);
	assert_int_equal(rc, WD_OK);
	if (strcmp(json, expected) != 0) {
		fprintf(stderr, "expected: %s\nactual:   %s\n", expected, json);
		fail();
	}
	bson_free(json);
}

/* The root's parsedHeader. */
static void expect_root(const char *msg, const char *expected)
{
	expect_node(msg, strlen(msg), NULL, 0, true, expected);
}

#define TEXT_PLAIN                                                                          \
	"\"content-type\" : { \"value\" : \"text/plain\", \"type\" : \"text\", \"subtype\" : " \
	"\"plain\", \"params\" : {  } }"

/* ---- tests ---- */

static void test_simple_headers(void **state)
{
	(void)state;
	/* keys by last occurrence, bottom-up; addresses parsed; content-type
	   object with hasParams */
	expect_root("From: Andris <andris@example.com>\r\n"
		    "To: test@example.com\r\n"
		    "Subject: Hello\r\n"
		    "Message-ID: <abc@example.com>\r\n"
		    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "\r\n"
		    "Hello\r\n",
		    "{ \"content-type\" : { \"value\" : \"text/plain\", \"type\" : \"text\", "
		    "\"subtype\" : \"plain\", \"params\" : { \"charset\" : \"utf-8\" }, "
		    "\"hasParams\" : true }, \"mime-version\" : \"1.0\", "
		    "\"date\" : \"Mon, 1 Jan 2024 00:00:00 +0000\", "
		    "\"message-id\" : \"<abc@example.com>\", \"subject\" : \"Hello\", "
		    "\"to\" : [ { \"address\" : \"test@example.com\", \"name\" : \"\" } ], "
		    "\"from\" : [ { \"address\" : \"andris@example.com\", \"name\" : \"Andris\" } ] }");
}

static void test_repeated_received(void **state)
{
	(void)state;
	/* an array in header order; only the last value has its folds
	   collapsed; the key sits where its last occurrence puts it */
	expect_root("Received: from a\r\n by b;\r\n Mon, 1 Jan 2024\r\n"
		    "Subject: x\r\n"
		    "Received: from c\r\n\tby d\r\n"
		    "Received: from e\r\n by f;  \r\n  Tue\r\n"
		    "\r\n",
		    "{ \"received\" : [ \"from a\\r\\n by b;\\r\\n Mon, 1 Jan 2024\", "
		    "\"from c\\r\\n\\tby d\", \"from e by f; Tue\" ], \"subject\" : \"x\", " TEXT_PLAIN
		    " }");
}

static void test_folded_subject(void **state)
{
	(void)state;
	/* a whitespace run holding a line break becomes one space; others stay */
	expect_root("Subject: a long\r\n   subject\r\n\tline  with  spaces\r\n"
		    "X-Mailer: m\r\n"
		    "\r\n",
		    "{ \"x-mailer\" : \"m\", \"subject\" : \"a long subject line  with  spaces\", "
		    TEXT_PLAIN " }");
	/* WildDuck's \s includes NBSP and U+3000 around the fold */
	expect_root("Subject: a\xc2\xa0\r\n \xe3\x80\x80z\r\n\r\n",
		    "{ \"subject\" : \"a z\", " TEXT_PLAIN " }");
}

static void test_eight_bit(void **state)
{
	(void)state;
	static const char msg[] = "Subject: T\xc3\xb5nu\r\n"
				  "X-Bad: a\xff" "b\xe2\x82" "c\xed\xa0\x80" "d\xf0\x80" "e\r\n"
				  "X-Cut: caf\xc3\xa0\r\n"
				  "X-Nul: a\0b\r\n"
				  "X-Latin: \xa0\xa0x\xa0\r\n"
				  "\r\n";
	/* UTF-8 decoded the Node way (one U+FFFD per maximal ill-formed
	   subsequence); the value is trimmed as Latin-1 first, so the 0xA0 of
	   "à" goes and its lead byte becomes U+FFFD */
	expect_node(msg, sizeof(msg) - 1, NULL, 0, true,
		    "{ \"x-latin\" : \"x\", \"x-nul\" : \"a\\u0000b\", \"x-cut\" : \"caf\xef\xbf\xbd\", "
		    "\"x-bad\" : \"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		    "d\xef\xbf\xbd\xef\xbf\xbd" "e\", \"subject\" : \"T\xc3\xb5nu\", " TEXT_PLAIN " }");
	/* a server that refuses NUL gets U+FFFD */
	expect_node(msg, sizeof(msg) - 1, NULL, 0, false,
		    "{ \"x-latin\" : \"x\", \"x-nul\" : \"a\xef\xbf\xbd" "b\", \"x-cut\" : \"caf\xef\xbf\xbd\", "
		    "\"x-bad\" : \"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		    "d\xef\xbf\xbd\xef\xbf\xbd" "e\", \"subject\" : \"T\xc3\xb5nu\", " TEXT_PLAIN " }");
	/* "à" inside a folded value survives the collapsing */
	expect_root("Subject: \xc3\xa0\r\n \xc3\xa0 x\r\n\r\n",
		    "{ \"subject\" : \"\xc3\xa0 \xc3\xa0 x\", " TEXT_PLAIN " }");
}

static void test_addresses(void **state)
{
	(void)state;
	/* quoted names, comments, encoded words kept as written, groups
	   (a group without a name has name null), all occurrences joined */
	expect_root("From: \"Doe, John\" <john@example.com>\r\n"
		    "To: plain@example.com, Name Only <n@example.com>, (comment) c@example.com,\r\n"
		    " =?UTF-8?Q?J=C3=B6rg?= <jorg@example.com>\r\n"
		    "Cc: Friends: \"Bob B\" <bob@example.com>, carol@example.com;, dave@example.com\r\n"
		    "Bcc: undisclosed-recipients:;\r\n"
		    "Reply-To: : r@example.com;\r\n"
		    "Sender: s@example.com\r\n"
		    "To: second@example.com\r\n"
		    "\r\n",
		    "{ \"to\" : [ { \"address\" : \"plain@example.com\", \"name\" : \"\" }, "
		    "{ \"address\" : \"n@example.com\", \"name\" : \"Name Only\" }, "
		    "{ \"address\" : \"c@example.com\", \"name\" : \"comment\" }, "
		    "{ \"address\" : \"jorg@example.com\", \"name\" : \"=?UTF-8?Q?J=C3=B6rg?=\" }, "
		    "{ \"address\" : \"second@example.com\", \"name\" : \"\" } ], "
		    "\"sender\" : [ { \"address\" : \"s@example.com\", \"name\" : \"\" } ], "
		    "\"reply-to\" : [ { \"name\" : null, \"group\" : [ "
		    "{ \"address\" : \"r@example.com\", \"name\" : \"\" } ] } ], "
		    "\"bcc\" : [ { \"name\" : \"undisclosed-recipients\", \"group\" : [  ] } ], "
		    "\"cc\" : [ { \"name\" : \"Friends\", \"group\" : [ "
		    "{ \"address\" : \"bob@example.com\", \"name\" : \"Bob B\" }, "
		    "{ \"address\" : \"carol@example.com\", \"name\" : \"\" } ] }, "
		    "{ \"address\" : \"dave@example.com\", \"name\" : \"\" } ], "
		    "\"from\" : [ { \"address\" : \"john@example.com\", \"name\" : \"Doe, John\" } ], "
		    TEXT_PLAIN " }");
	/* a name glued to a closing quote, a word without '@', a stray '<' */
	expect_root("To: \"a\"b <ab@example.com>, NoAt, Name <x <y@example.com>\r\n\r\n",
		    "{ \"to\" : [ { \"address\" : \"ab@example.com\", \"name\" : \"ab\" }, "
		    "{ \"address\" : \"\", \"name\" : \"NoAt\" }, "
		    "{ \"address\" : \"y@example.com\", \"name\" : \"Name\" } ], " TEXT_PLAIN " }");
}

static void test_missing_content_type(void **state)
{
	(void)state;
	/* added last; a lone empty Content-Disposition stays "" */
	expect_root("Subject: no type\r\n"
		    "Content-Disposition:\r\n"
		    "Content-Transfer-Encoding: base64\r\n"
		    "\r\n",
		    "{ \"content-transfer-encoding\" : \"base64\", \"content-disposition\" : \"\", "
		    "\"subject\" : \"no type\", " TEXT_PLAIN " }");
	/* a lone empty Content-Type is text/plain, in its own place */
	expect_root("Content-Type:\r\nSubject: x\r\n\r\n",
		    "{ \"subject\" : \"x\", " TEXT_PLAIN " }");
	/* no header at all */
	expect_root("\r\nbody\r\n", "{ " TEXT_PLAIN " }");
}

static void test_rfc2231(void **state)
{
	(void)state;
	/* continuations with a charset become a Q encoded word; the
	   single-segment name*= form keeps its "charset''" (WildDuck's result);
	   parameter names lower-cased, quotes stripped, a trailing ';' gives
	   the parameter "" */
	expect_root("Content-Type: application/octet-stream;\r\n"
		    " name*=utf-8''a%20b.txt; X-Opt=\"1\"\r\n"
		    "Content-Disposition: Attachment;\r\n"
		    " filename*0*=UTF-8'en'%E2%82%AC%20;\r\n"
		    " filename*1=rates.txt; size=12;\r\n"
		    "\r\n",
		    "{ \"content-disposition\" : { \"value\" : \"Attachment\", \"type\" : \"attachment\", "
		    "\"subtype\" : \"\", \"params\" : { \"size\" : \"12\", \"\" : \"\", "
		    "\"filename\" : \"=?UTF-8?Q?=E2=82=AC=20rates.txt?=\" }, \"hasParams\" : true }, "
		    "\"content-type\" : { \"value\" : \"application/octet-stream\", "
		    "\"type\" : \"application\", \"subtype\" : \"octet-stream\", "
		    "\"params\" : { \"x-opt\" : \"1\", \"name\" : \"=?UTF-8?Q?utf-8''a=20b.txt?=\" }, "
		    "\"hasParams\" : true } }");
	/* the first segment seen decides whether a charset is read from slot 0
	   (here "a", without quotes: an empty value); the encoded word replaces
	   a plain parameter of the same name in place; no slot 0: ISO-8859-1 */
	expect_root("Content-Type: text/plain; Charset=\"ISO-8859-1\"; format=flowed; ;\r\n"
		    "Content-Disposition: inline; filename*1*=b; filename*0=a; FileName=\"plain\";"
		    " title*2*=x; x=' q '\r\n"
		    "\r\n",
		    "{ \"content-disposition\" : { \"value\" : \"inline\", \"type\" : \"inline\", "
		    "\"subtype\" : \"\", \"params\" : { \"filename\" : \"=?A?Q?b?=\", \"x\" : \"q\", "
		    "\"title\" : \"=?ISO-8859-1?Q?x?=\" }, \"hasParams\" : true }, "
		    "\"content-type\" : { \"value\" : \"text/plain\", \"type\" : \"text\", "
		    "\"subtype\" : \"plain\", \"params\" : { \"charset\" : \"ISO-8859-1\", "
		    "\"format\" : \"flowed\", \"\" : \"\" }, \"hasParams\" : true } }");
	/* two-digit sections are plain parameters; `constructor*` is lost but
	   sets hasParams; array-index names come first */
	expect_root("Content-Type: Text/X; name*12=z; constructor*=c; 7=seven\r\n\r\n",
		    "{ \"content-type\" : { \"value\" : \"Text/X\", \"type\" : \"text\", "
		    "\"subtype\" : \"X\", \"params\" : { \"7\" : \"seven\", \"name*12\" : \"z\" }, "
		    "\"hasParams\" : true } }");
	/* only invalid parameter names: no hasParams */
	expect_root("Content-Type: text/plain; a_b=1; c d=2\r\n\r\n", "{ " TEXT_PLAIN " }");
}

static void test_invalid_keys(void **state)
{
	(void)state;
	/* '_', ' ', Latin-1 letters and 100+ characters skip the field; a line
	   without a colon is a key without value (skipped here for its spaces);
	   the empty key is kept */
	char msg[1024];
	snprintf(msg, sizeof(msg),
		 "X_Y: underscore\r\nX Y: space\r\n\xdcn\xef: latin\r\nno colon here\r\n"
		 "%0100d: too long\r\n%099d: ok\r\nX*Star: star\r\n: empty key\r\nNoColon\r\n\r\n",
		 0, 0);
	char expected[1024];
	snprintf(expected, sizeof(expected),
		 "{ \"nocolon\" : \"\", \"\" : \"empty key\", \"x*star\" : \"star\", "
		 "\"%099d\" : \"ok\", " TEXT_PLAIN " }", 0);
	expect_root(msg, expected);
}

static void test_empty_values(void **state)
{
	(void)state;
	/* a lone empty address field stays ""; repeated ones parse to [] */
	expect_root("X-Empty:\r\nTo:\r\nCc:\r\nCc:   \r\nX-Two:\r\nX-Two: b\r\nIn-Reply-To:\r\n\r\n",
		    "{ \"in-reply-to\" : \"\", \"x-two\" : [ \"\", \"b\" ], \"cc\" : [  ], "
		    "\"to\" : \"\", \"x-empty\" : \"\", " TEXT_PLAIN " }");
}

static void test_key_order(void **state)
{
	(void)state;
	/* array-index keys first in numeric order ("017" is not one);
	   `constructor` is always an array */
	expect_root("Subject: s\r\n42: forty-two\r\n017: leading zero\r\n0: zero\r\n"
		    "Constructor: c1\r\nA: 1\r\nSubject: t\r\n\r\n",
		    "{ \"0\" : \"zero\", \"42\" : \"forty-two\", \"subject\" : [ \"s\", \"t\" ], "
		    "\"a\" : \"1\", \"constructor\" : [ \"c1\" ], \"017\" : \"leading zero\", "
		    TEXT_PLAIN " }");
}

static void test_single_valued(void **state)
{
	(void)state;
	/* the last occurrence wins, folds collapsed */
	expect_root("Message-ID: <a@x>\r\nMessage-ID: <b@x>\r\nContent-ID: <1>\r\n"
		    "Content-ID:\r\n <2>\r\nContent-Type: text/html\r\n"
		    "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
		    "Content-Language: en\r\nContent-Language: de\r\n\r\n",
		    "{ \"content-language\" : \"de\", \"content-type\" : { \"value\" : \"text/plain\", "
		    "\"type\" : \"text\", \"subtype\" : \"plain\", "
		    "\"params\" : { \"charset\" : \"us-ascii\" }, \"hasParams\" : true }, "
		    "\"content-id\" : \"<2>\", \"message-id\" : \"<b@x>\" }");
}

static void test_parts(void **state)
{
	(void)state;
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=\"XX\"\r\nSubject: parts\r\n\r\n"
		"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello world\r\n"
		"--XX\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-Disposition: attachment; filename=\"a.bin\"\r\n\r\nQUJD\r\n--XX--\r\n";
	static const uint32_t second[] = { 2 };
	expect_node(msg, sizeof(msg) - 1, NULL, 0, true,
		    "{ \"subject\" : \"parts\", \"content-type\" : { \"value\" : \"multipart/mixed\", "
		    "\"type\" : \"multipart\", \"subtype\" : \"mixed\", "
		    "\"params\" : { \"boundary\" : \"XX\" }, \"hasParams\" : true } }");
	expect_node(msg, sizeof(msg) - 1, second, 1, true,
		    "{ \"content-disposition\" : { \"value\" : \"attachment\", "
		    "\"type\" : \"attachment\", \"subtype\" : \"\", "
		    "\"params\" : { \"filename\" : \"a.bin\" }, \"hasParams\" : true }, "
		    "\"content-transfer-encoding\" : \"base64\", "
		    "\"content-type\" : { \"value\" : \"application/octet-stream\", "
		    "\"type\" : \"application\", \"subtype\" : \"octet-stream\", "
		    "\"params\" : { \"name\" : \"a.bin\" }, \"hasParams\" : true } }");
}

static void test_nested_groups(void **state)
{
	(void)state;
	/* addressparser parses a group's text again; past WD_ADDRESS_DEPTH_MAX
	   levels the members are dropped (WildDuck has no limit) */
	expect_root("To: a:b: x@y;, z@w\r\n\r\n",
		    "{ \"to\" : [ { \"name\" : \"a\", \"group\" : [ { \"name\" : \"b\", \"group\" : [ "
		    "{ \"address\" : \"x@y\", \"name\" : \"\" } ] } ] }, "
		    "{ \"address\" : \"z@w\", \"name\" : \"\" } ], " TEXT_PLAIN " }");
	expect_root("To: a:b:c:d:e:f:g:h:i:j: x@y;\r\n\r\n",
		    "{ \"to\" : [ { \"name\" : \"a\", \"group\" : [ { \"name\" : \"b\", \"group\" : [ "
		    "{ \"name\" : \"c\", \"group\" : [ { \"name\" : \"d\", \"group\" : [ "
		    "{ \"name\" : \"e\", \"group\" : [ { \"name\" : \"f\", \"group\" : [ "
		    "{ \"name\" : \"g\", \"group\" : [ { \"name\" : \"h\", \"group\" : [ "
		    "{ \"name\" : \"i\", \"group\" : [  ] } ] } ] } ] } ] } ] } ] } ] } ] } ], "
		    TEXT_PLAIN " }");
}

/* ---- hostile input ---- */

static char *repeat(const char *head, const char *unit, size_t count, const char *tail,
		    size_t *len_r)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * count + tl + 1);
	assert_non_null(s);
	memcpy(s, head, hl);
	for (size_t i = 0; i < count; i++)
		memcpy(s + hl + i * ul, unit, ul);
	memcpy(s + hl + ul * count, tail, tl + 1);
	*len_r = hl + ul * count + tl;
	return s;
}

/* Builds the object for msg and returns it parsed back, or NULL with
   *rc_r set when the function failed. */
static bson_t *build(const char *msg, size_t len, int *rc_r)
{
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree;
	const char *error;
	assert_int_equal(wd_mime_tree_parse(arena, (const uint8_t *)msg, len, NULL, &tree, &error),
			 WD_OK);
	bson_t doc, parsed;
	bson_init(&doc);
	assert_true(bson_append_document_begin(&doc, "p", -1, &parsed));
	*rc_r = wd__parsed_header_append(tree, tree->root, true, &parsed);
	assert_true(bson_append_document_end(&doc, &parsed));
	wd_arena_destroy(&arena);
	bson_iter_t it;
	uint32_t sub_len;
	const uint8_t *data;
	assert_true(bson_iter_init_find(&it, &doc, "p"));
	bson_iter_document(&it, &sub_len, &data);
	bson_t *out = bson_new_from_data(data, sub_len);
	bson_destroy(&doc);
	return out;
}

static uint32_t count_keys(const bson_t *doc, const char *dotted)
{
	bson_iter_t it, child;
	uint32_t n = 0;
	if (dotted == NULL) {
		assert_true(bson_iter_init(&it, doc));
	} else {
		assert_true(bson_iter_init(&child, doc));
		assert_true(bson_iter_find_descendant(&child, dotted, &it));
		assert_true(bson_iter_recurse(&it, &child));
		it = child;
	}
	while (bson_iter_next(&it))
		n++;
	return n;
}

static void test_hostile(void **state)
{
	(void)state;
	int rc;
	size_t len;

	/* 10,000 folded Received fields and 10,000 distinct keys */
	size_t cap = 10000 * 64, used = 0;
	char *msg = malloc(cap);
	assert_non_null(msg);
	for (int i = 0; i < 10000; i++)
		used += (size_t)snprintf(msg + used, cap - used, "Received: from h%d\r\n by x\r\n", i);
	for (int i = 0; i < 10000; i++)
		used += (size_t)snprintf(msg + used, cap - used, "X-%d: v\r\n", i);
	used += (size_t)snprintf(msg + used, cap - used, "\r\n");
	bson_t *doc = build(msg, used, &rc);
	assert_int_equal(rc, WD_OK);
	assert_int_equal(count_keys(doc, NULL), 10000 + 2);
	assert_int_equal(count_keys(doc, "received"), 10000);
	bson_destroy(doc);
	free(msg);

	/* a 4 MB folded Subject collapses to one string */
	msg = repeat("Subject: ", "x \r\n ", 800000, "\r\n\r\n", &len);
	doc = build(msg, len, &rc);
	assert_int_equal(rc, WD_OK);
	bson_iter_t it;
	uint32_t slen;
	assert_true(bson_iter_init_find(&it, doc, "subject"));
	assert_int_equal(strlen(bson_iter_utf8(&it, &slen)), 800000 * 2 - 1);
	bson_destroy(doc);
	free(msg);

	/* 200,000 parameters plus RFC 2231 segments for one name */
	cap = 200000 * 24 + 64;
	msg = malloc(cap);
	assert_non_null(msg);
	used = (size_t)snprintf(msg, cap, "Content-Type: text/plain");
	for (int i = 0; i < 200000; i++)
		used += (size_t)snprintf(msg + used, cap - used, "; p%d=v; q*%d*=x", i, i % 10);
	used += (size_t)snprintf(msg + used, cap - used, "\r\n\r\n");
	doc = build(msg, used, &rc);
	assert_int_equal(rc, WD_OK);
	assert_int_equal(count_keys(doc, "content-type.params"), 200001);
	bson_destroy(doc);
	free(msg);

	/* three million semicolons: one parameter "" */
	msg = repeat("Content-Type: text/plain", ";", 3000000, "\r\n\r\n", &len);
	doc = build(msg, len, &rc);
	assert_int_equal(rc, WD_OK);
	assert_int_equal(count_keys(doc, "content-type.params"), 1);
	bson_destroy(doc);
	free(msg);

	/* groups nested 200,000 deep stop at the depth limit */
	msg = repeat("To: ", "g:", 200000, "x@y;\r\n\r\n", &len);
	doc = build(msg, len, &rc);
	assert_int_equal(rc, WD_OK);
	assert_int_equal(count_keys(doc, "to"), 1);
	bson_destroy(doc);
	free(msg);

	/* 500,000 addresses make an object past 16 MiB: an error */
	msg = repeat("To: ", "a@b,", 500000, "\r\n\r\n", &len);
	doc = build(msg, len, &rc);
	assert_int_equal(rc, WD_ERROR);
	bson_destroy(doc);
	free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_headers),
		cmocka_unit_test(test_repeated_received),
		cmocka_unit_test(test_folded_subject),
		cmocka_unit_test(test_eight_bit),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_missing_content_type),
		cmocka_unit_test(test_rfc2231),
		cmocka_unit_test(test_invalid_keys),
		cmocka_unit_test(test_empty_values),
		cmocka_unit_test(test_key_order),
		cmocka_unit_test(test_single_valued),
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_nested_groups),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
