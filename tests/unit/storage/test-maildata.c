/* Unit tests: a message's maildata (storage/message-maildata.c,
 * storage/text-html.c): text, textFooter, html, intro, attachments, ha.
 *
 * Each test parses a message with wd_mime_tree_parse(), picks the leaves
 * store-message.c externalises (not inline text, or inline text over
 * 300 KiB), calls wd__maildata_append() and compares the BSON fields. The
 * expected values are what WildDuck stores for the same message: they were
 * produced by running WildDuck's Indexer.getMaildata() and the maildata part
 * of MessageHandler.add() (html-to-text 9.0.5, he 1.2.0, libmime 5.3.5) on
 * these exact bytes, except where a comment names a knowing difference.
 * Random file names ("<8 hex>.<ext>") are checked by shape. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store-private.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GMime is initialised by store-message.c in the server. */
void g_mime_init(void);

/* ---- helpers ---- */

struct fixture {
	struct wd_arena *arena;
	struct wd_mime_tree *tree;
	const struct wd_mime_node *att[64];
	size_t att_count;
	bson_t doc;
};

/* store-message.c's choice of externalised leaves */
static bool is_inline_text(const struct wd_mime_node *node)
{
	const struct wd_mime_content *ct = &node->content_type;
	bool text = (strcmp(ct->type, "text") == 0 &&
		     (strcmp(ct->subtype, "plain") == 0 || strcmp(ct->subtype, "html") == 0 ||
		      strcmp(ct->subtype, "rfc822-headers") == 0)) ||
		    (strcmp(ct->type, "message") == 0 && strcmp(ct->subtype, "delivery-status") == 0);
	return text && (!node->disposition.present || strcmp(node->disposition.type, "inline") == 0);
}

static int piece_cb(void *context, enum wd_mime_piece piece, const struct wd_mime_node *node,
		    struct wd_mime_range range)
{
	struct fixture *f = context;
	uint32_t len = wd_mime_range_len(range);
	if (piece == WD_MIME_PIECE_BODY && len > 0 && (!is_inline_text(node) || len > 300 * 1024)) {
		assert_true(f->att_count < 64);
		f->att[f->att_count++] = node;
	}
	return WD_OK;
}

static void maildata(struct fixture *f, const char *raw, size_t len)
{
	const char *error = NULL;
	memset(f, 0, sizeof(*f));
	f->arena = wd_arena_create(0);
	assert_non_null(f->arena);
	if (wd_mime_tree_parse(f->arena, (const uint8_t *)raw, len, NULL, &f->tree, &error) != WD_OK)
		fail_msg("parse failed: %s", error);
	assert_int_equal(wd_mime_tree_walk(f->tree, piece_cb, f), WD_OK);
	bson_init(&f->doc);
	wd__maildata_append(f->tree, f->att, NULL, f->att_count, false, &f->doc);
}

static void done(struct fixture *f)
{
	bson_destroy(&f->doc);
	wd_arena_destroy(&f->arena);
}

static bool find(struct fixture *f, const char *path, bson_iter_t *found)
{
	bson_iter_t iter;
	return bson_iter_init(&iter, &f->doc) && bson_iter_find_descendant(&iter, path, found);
}

static const char *get_str(struct fixture *f, const char *path, uint32_t *len_r)
{
	bson_iter_t it;
	if (!find(f, path, &it))
		fail_msg("%s missing", path);
	if (!BSON_ITER_HOLDS_UTF8(&it))
		fail_msg("%s is not a string", path);
	return bson_iter_utf8(&it, len_r);
}

static void expect_str(struct fixture *f, const char *path, const char *expected)
{
	uint32_t len;
	const char *got = get_str(f, path, &len);
	if (len != strlen(expected) || memcmp(got, expected, len) != 0)
		fail_msg("%s\nexpected: %s\n     got: %.*s", path, expected, (int)len, got);
}

static void expect_absent(struct fixture *f, const char *path)
{
	bson_iter_t it;
	if (find(f, path, &it))
		fail_msg("%s present", path);
}

static void expect_bool(struct fixture *f, const char *path, bool expected)
{
	bson_iter_t it;
	if (!find(f, path, &it) || !BSON_ITER_HOLDS_BOOL(&it))
		fail_msg("%s missing or not a bool", path);
	assert_int_equal(bson_iter_bool(&it), expected);
}

static void expect_null(struct fixture *f, const char *path)
{
	bson_iter_t it;
	if (!find(f, path, &it) || !BSON_ITER_HOLDS_NULL(&it))
		fail_msg("%s missing or not null", path);
}

static void expect_int(struct fixture *f, const char *path, int64_t expected)
{
	bson_iter_t it;
	if (!find(f, path, &it) || !BSON_ITER_HOLDS_INT32(&it))
		fail_msg("%s missing or not an int32", path);
	assert_int_equal(bson_iter_int32(&it), expected);
}

static void expect_count(struct fixture *f, const char *path, uint32_t expected)
{
	bson_iter_t it, child;
	if (!find(f, path, &it) || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &child))
		fail_msg("%s missing or not an array", path);
	uint32_t n = 0;
	while (bson_iter_next(&child))
		n++;
	assert_int_equal(n, expected);
}

/* "<8 lower-case hex digits>.<ext>" */
static void expect_random_name(struct fixture *f, const char *path, const char *ext)
{
	uint32_t len;
	const char *got = get_str(f, path, &len);
	assert_int_equal(len, 9 + strlen(ext));
	for (int i = 0; i < 8; i++)
		assert_non_null(strchr("0123456789abcdef", got[i]));
	assert_int_equal(got[8], '.');
	assert_memory_equal(got + 9, ext, strlen(ext));
}

/* UTF-16 units of a UTF-8 string, as WildDuck's limits count */
static size_t units(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c & 0xc0) != 0x80)
			n += c >= 0xf0 ? 2 : 1;
	}
	return n;
}

/* ---- messages (expected values from WildDuck's code) ---- */

static void test_plain(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n\r\nHello world,\r\n"
		"second line.\r\n\r\nNew paragraph & <tags>.\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "Hello world,\nsecond line.\n\nNew paragraph & <tags>.");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "Hello world, second line. New paragraph & <tags>.");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>Hello world,<br/>second line.</p><p>New paragraph &amp; &lt;tags&gt;.</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_noct(void **state)
{
	(void)state;
	static const char raw[] =
		"Subject: x\r\n\r\nJust text\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "Just text");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "Just text");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>Just text</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_htmlonly(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>p{}</style></head><body><h1>Title</h1><p>Hello <b>world</b>, see <a href=\"https://example.com/x\">our site</a>.</p><ul><li>one</li><li>two</li></ul></body></html>\r\n"
		"";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "TITLE\n\nHello world, see our site [https://example.com/x].\n"
		"\n * one\n * two");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "TITLE Hello world, see our site . * one * two");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<html><head><style>p{}</style></head><body><h1>Title</h1><p>Hello <b>world</b>, see <a href=\"https://example.com/x\">our site</a>.</p><ul><li>one</li><li>two</li></ul></body></html>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_alternative(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n\r\nPlain version\r\n"
		"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML <i>version</i></p>\r\n"
		"--b1--\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "Plain version");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "HTML version");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>HTML <i>version</i></p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_attachment(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"b2\"\r\n\r\n--b2\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
		"--b2\r\nContent-Type: application/pdf; name=\"ignored.pdf\"\r\n"
		"Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
		"\r\nJVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n"
		"ZW5kc3RyZWFtCmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n--b2\r\nContent-Type: text/plain; name=\"=?UTF-8?Q?R=C3=A9sum=C3=A9?= =?ISO-8859-1?Q?_=E4.txt?=\"\r\n"
		"Content-Disposition: ATTACHMENT\r\n\r\nnot inline text\r\n--b2\r\n"
		"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=iso-8859-1''caf%E9.bin\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\nxyz\r\n--b2\r\nContent-Type: image/png\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b2--\r\n"
		"";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "See attached.");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "See attached.");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>See attached.</p>");
	expect_count(&f, "attachments", 4);
	expect_str(&f, "attachments.0.id", "ATT00001");
	expect_str(&f, "attachments.0.filename", "report.pdf");
	expect_str(&f, "attachments.0.contentType", "application/pdf");
	expect_str(&f, "attachments.0.disposition", "attachment");
	expect_str(&f, "attachments.0.transferEncoding", "base64");
	expect_null(&f, "attachments.0.cid");
	expect_bool(&f, "attachments.0.related", false);
	expect_int(&f, "attachments.0.sizeKb", 1);
	expect_int(&f, "attachments.0.size", 114);
	expect_str(&f, "attachments.1.id", "ATT00002");
	expect_str(&f, "attachments.1.filename", "R\xc3\xa9sum\xc3\xa9 \xc3\xa4.txt");
	expect_str(&f, "attachments.1.contentType", "text/plain");
	expect_str(&f, "attachments.1.disposition", "attachment");
	expect_str(&f, "attachments.1.transferEncoding", "7bit");
	expect_null(&f, "attachments.1.cid");
	expect_bool(&f, "attachments.1.related", false);
	expect_int(&f, "attachments.1.sizeKb", 1);
	expect_int(&f, "attachments.1.size", 15);
	expect_str(&f, "attachments.2.id", "ATT00003");
	/* WildDuck stores the RFC 2231 value undecoded ("iso-8859-1''caf\ufffd.bin");
	   we decode it (knowing difference) */
	expect_str(&f, "attachments.2.filename", "caf\xc3\xa9.bin");
	expect_str(&f, "attachments.2.contentType", "application/octet-stream");
	expect_str(&f, "attachments.2.disposition", "attachment");
	expect_str(&f, "attachments.2.transferEncoding", "8bit");
	expect_null(&f, "attachments.2.cid");
	expect_bool(&f, "attachments.2.related", false);
	expect_int(&f, "attachments.2.sizeKb", 1);
	expect_int(&f, "attachments.2.size", 3);
	expect_str(&f, "attachments.3.id", "ATT00004");
	expect_random_name(&f, "attachments.3.filename", "png");
	expect_str(&f, "attachments.3.contentType", "image/png");
	expect_bool(&f, "attachments.3.disposition", false);
	expect_str(&f, "attachments.3.transferEncoding", "base64");
	expect_null(&f, "attachments.3.cid");
	expect_bool(&f, "attachments.3.related", false);
	expect_int(&f, "attachments.3.sizeKb", 1);
	expect_int(&f, "attachments.3.size", 12);
	expect_bool(&f, "ha", true);
	done(&f);
}

static void test_related(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/related; boundary=\"r\"\r\n\r\n--r\r\n"
		"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Logo: <img src=\"cid:logo@x\" alt=\"logo\"> and <img src='cid:other@x'> and cid:logo@x.</p>\r\n"
		"--r\r\nContent-Type: image/png; name=\"logo.png\"\r\nContent-ID: <logo@x>\r\n"
		"Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n"
		"\r\niVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\r\n"
		"--r--\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "Logo: logo [cid:logo@x] and [cid:other@x] and cid:logo@x.");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "Logo: logo and and cid:logo@x.");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>Logo: <img src=\"attachment:ATT00001\" alt=\"logo\"> and <img src='cid:other@x'> and cid:logo@x.</p>");
	expect_count(&f, "attachments", 1);
	expect_str(&f, "attachments.0.id", "ATT00001");
	expect_str(&f, "attachments.0.filename", "logo.png");
	expect_str(&f, "attachments.0.contentType", "image/png");
	expect_str(&f, "attachments.0.disposition", "inline");
	expect_str(&f, "attachments.0.transferEncoding", "base64");
	expect_str(&f, "attachments.0.cid", "<logo@x>");
	expect_bool(&f, "attachments.0.related", true);
	expect_int(&f, "attachments.0.sizeKb", 1);
	expect_int(&f, "attachments.0.size", 96);
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_flowed(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
		"This is a long \r\nflowed line that \r\nwraps.\r\n>quoted \r\n"
		">text\r\n \r\n-- \r\nsig\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "This is a long flowed line that wraps.\n>quoted >text\n-- sig");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "This is a long flowed line that wraps. -- sig");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>This is a long flowed line that wraps.<br/>&gt;quoted &gt;text<br/>-- sig</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_flowed_delsp(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8; format=Flowed; delsp=yes\r\n"
		"\r\nJapa \r\nnese text wi \r\nthout spaces.\r\n Stuffed line\r\n"
		"";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "Japanese text without spaces.\nStuffed line");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "Japanese text without spaces. Stuffed line");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>Japanese text without spaces.<br/>Stuffed line</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_qp(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
		"\r\nCaf=C3=A9 au lait =3D good, soft=\r\nbreak here.\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "Caf\xc3\xa9 au lait = good, softbreak here.");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "Caf\xc3\xa9 au lait = good, softbreak here.");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>Caf&eacute; au lait = good, softbreak here.</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_b64(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
		"\r\nPGRpdj5CYXNlNjQgPGI+SFRNTDwvYj4gYm9keTwvZGl2PjxkaXY+c2Vjb25kPC9kaXY+\r\n"
		"";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "Base64 HTML body\nsecond");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "Base64 HTML body second");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<div>Base64 <b>HTML</b> body</div><div>second</div>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_latin1(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n"
		"\r\nCaf\xe9 \xfc""ber\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "Caf\xc3\xa9 \xc3\xbc""ber");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "Caf\xc3\xa9 \xc3\xbc""ber");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>Caf&eacute; &uuml;ber</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_win1257(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n"
		"\r\n\xc0\xe0 \xd0\xf0 \xfe\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "\xc4\x84\xc4\x85 \xc5\xa0\xc5\xa1 \xc5\xbe");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "\xc4\x84\xc4\x85 \xc5\xa0\xc5\xa1 \xc5\xbe");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>&Aogon;&aogon; &Scaron;&scaron; &zcaron;</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_badcharset(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: 8bit\r\n"
		"\r\nok \xff\xfe""A\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "ok \xef\xbf\xbd\xef\xbf\xbd""A");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "ok \xef\xbf\xbd\xef\xbf\xbd""A");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>ok &#xFFFD;&#xFFFD;A</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_intro(void **state)
{
	(void)state;
	static const char raw[] =
		"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n\r\n> On Monday someone wrote:\r\n"
		"> quoted stuff\r\n\r\nHi [John](mailto:john@example.com), thanks for the [link].\r\n"
		"\r\n----------\r\n==========\r\nThe real content of this message starts here and it goes on for a while so that the intro needs to be cut at a word boundary somewhere.\r\n"
		"";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "> On Monday someone wrote:\n> quoted stuff\n\nHi [John](mailto:john@example.com), thanks for the [link].\n"
		"\n----------\n==========\nThe real content of this message starts here and it goes on for a while so that the intro needs to be cut at a word boundary somewhere.");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "Hi (mailto:john@example.com), thanks for the . The real content of this message starts here and it goes on for a while so that\xe2\x80\xa6");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>&gt; On Monday someone wrote:<br/>&gt; quoted stuff</p><p>Hi [John](mailto:john@example.com), thanks for the [link].</p><p>----------<br/>==========<br/>The real content of this message starts here and it goes on for a while so that the intro needs to be cut at a word boundary somewhere.</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

static void test_bare_lf(void **state)
{
	(void)state;
	static const char raw[] =
		"Subject: x\nContent-Type: text/html\n\n<p>a</p>\n<p>b</p>\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "a\n\nb");
	expect_absent(&f, "textFooter");
	expect_str(&f, "intro", "a b");
	expect_count(&f, "html", 1);
	expect_str(&f, "html.0", "<p>a</p>\r\n<p>b</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
}

/* message/rfc822: the inner parts are walked (text joined, attachments
   listed). WildDuck also stores and lists the rfc822 part itself as
   ATT00001 "<hex>.eml" (size 250) and numbers in.zip ATT00002;
   store-message.c does not externalise it (knowing difference). */
static void test_rfc822(void **state)
{
	(void)state;
	static const char raw[] =
		"Subject: t\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n"
		"--o\r\nContent-Type: text/plain\r\n\r\nOuter text\r\n"
		"--o\r\nContent-Type: message/rfc822\r\n\r\n"
		"Subject: inner\r\nContent-Type: multipart/mixed; boundary=\"i\"\r\n\r\n"
		"--i\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nInner text\r\n"
		"--i\r\nContent-Type: application/zip; name=\"in.zip\"\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\r\n"
		"--i--\r\n--o--\r\n";
	struct fixture f;
	maildata(&f, raw, sizeof(raw) - 1);
	expect_str(&f, "text", "Outer text\nInner text");
	expect_str(&f, "intro", "Outer text Inner text");
	expect_count(&f, "html", 2);
	expect_str(&f, "html.0", "<p>Outer text</p>");
	expect_str(&f, "html.1", "<p>Inner text</p>");
	expect_count(&f, "attachments", 1);
	expect_str(&f, "attachments.0.id", "ATT00001");
	expect_str(&f, "attachments.0.filename", "in.zip");
	expect_str(&f, "attachments.0.contentType", "application/zip");
	expect_bool(&f, "attachments.0.disposition", false);
	expect_str(&f, "attachments.0.transferEncoding", "base64");
	expect_int(&f, "attachments.0.sizeKb", 1);
	expect_int(&f, "attachments.0.size", 32);
	expect_bool(&f, "ha", true);
	done(&f);
}

/* The 1024-unit cut of `text` splits a surrogate pair: WildDuck's substr()
   leaves half a pair at each side, which its BSON encoder writes as U+FFFD. */
static void test_text_split_pair(void **state)
{
	(void)state;
	struct wd_buffer raw = WD_BUFFER_INIT;
	wd_buffer_append_str(&raw, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 1023; i++)
		wd_buffer_append_str(&raw, "a");
	wd_buffer_append_str(&raw, "\xf0\x9f\x98\x80tail tail tail tail tail \r\n");
	struct fixture f;
	maildata(&f, (const char *)wd_buffer_bytes(&raw), raw.len);
	uint32_t len;
	const char *text = get_str(&f, "text", &len);
	assert_int_equal(len, 1023 + 3);
	assert_memory_equal(text + 1023, "\xef\xbf\xbd", 3);
	expect_str(&f, "textFooter", "\xef\xbf\xbdtail tail tail tail tail");
	/* intro from the HTML: 128 'a' (no space to cut at) + "…" */
	const char *intro = get_str(&f, "intro", &len);
	assert_int_equal(len, 128 + 3);
	assert_memory_equal(intro + 128, "\xe2\x80\xa6", 3);
	uint32_t hlen;
	const char *html = get_str(&f, "html.0", &hlen);
	assert_non_null(strstr(html, "a&#x1F600;tail tail"));
	done(&f);
	wd_buffer_release(&raw);
}

/* Text over 1024 units: text is the first 1024 units (UTF-16, so "äö"
   count one each), textFooter the rest; intro is cut at a word. */
static void test_long_text(void **state)
{
	(void)state;
	struct wd_buffer raw = WD_BUFFER_INIT;
	wd_buffer_append_str(&raw, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 60; i++)
		wd_buffer_printf(&raw, "%sLine %d with some words in it \xc3\xa4\xc3\xb6.", i ? "\r\n" : "",
				 i);
	wd_buffer_append_str(&raw, "\r\n");
	struct fixture f;
	maildata(&f, (const char *)wd_buffer_bytes(&raw), raw.len);
	uint32_t len;
	const char *text = get_str(&f, "text", &len);
	assert_int_equal(units(text, len), 1024);
	assert_int_equal(len, 1084);
	const char *footer = get_str(&f, "textFooter", &len);
	assert_int_equal(units(footer, len), 1005);
	assert_int_equal(len, 1065);
	assert_memory_equal(footer, "ome words in it", 15);
	expect_str(&f, "intro",
		   "Line 0 with some words in it \xc3\xa4\xc3\xb6. Line 1 with some words in it "
		   "\xc3\xa4\xc3\xb6. Line 2 with some words in it \xc3\xa4\xc3\xb6. Line 3 with some "
		   "words in it\xe2\x80\xa6");
	const char *html = get_str(&f, "html.0", &len);
	assert_int_equal(len, 2872);
	assert_memory_equal(html + len - 20, "it &auml;&ouml;.</p>", 20);
	done(&f);
	wd_buffer_release(&raw);
}

/* Text collected over 100 Ki units: textFooter stops at 99 Ki units; a
   300 KiB+ inline text part is stored in GridFS but still extracted and not
   listed as an attachment. */
static void test_text_cap(void **state)
{
	(void)state;
	struct wd_buffer raw = WD_BUFFER_INIT;
	wd_buffer_append_str(&raw, "Content-Type: multipart/mixed; boundary=\"g\"\r\n\r\n"
				   "--g\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 5000; i++)
		wd_buffer_append_str(&raw, "word word word word word word word word word word word "
					   "word word word word \r\n");
	wd_buffer_append_str(&raw, "\r\n--g\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
				   "second part\r\n--g--\r\n");
	struct fixture f;
	maildata(&f, (const char *)wd_buffer_bytes(&raw), raw.len);
	assert_int_equal(f.att_count, 1); /* the big text went to GridFS */
	uint32_t len;
	get_str(&f, "text", &len);
	assert_int_equal(len, 1024);
	const char *footer = get_str(&f, "textFooter", &len);
	assert_int_equal(len, 101376);
	assert_memory_equal(footer, "ord word", 8);
	expect_str(&f, "intro",
		   "word word word word word word word word word word word word word word word "
		   "word word word word word word word word word word\xe2\x80\xa6");
	expect_count(&f, "html", 2);
	get_str(&f, "html.0", &len);
	assert_int_equal(len, 395002);
	expect_str(&f, "html.1", "<p>second part</p>");
	expect_absent(&f, "attachments");
	expect_bool(&f, "ha", false);
	done(&f);
	wd_buffer_release(&raw);
}

/* HTML kept while the byte total stays under 640 KiB; the string crossing
   it is cut to 640 Ki *units* (so a 409,607-byte string of 204,807 units
   survives whole), later ones are dropped. The text is one 400 Ki-char word,
   a "line of one repeated character" for the intro, which is empty. */
static void test_html_cap(void **state)
{
	(void)state;
	struct wd_buffer raw = WD_BUFFER_INIT;
	wd_buffer_append_str(&raw, "Content-Type: multipart/mixed; boundary=\"c\"\r\n\r\n"
				   "--c\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>");
	for (int i = 0; i < 400 * 1024; i++)
		wd_buffer_append(&raw, "x", 1);
	wd_buffer_append_str(&raw, "</p>\r\n--c\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>");
	for (int i = 0; i < 200 * 1024; i++)
		wd_buffer_append(&raw, "\xc3\xa9", 2);
	wd_buffer_append_str(&raw, "</p>\r\n--c\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
				   "<p>dropped</p>\r\n--c--\r\n");
	struct fixture f;
	maildata(&f, (const char *)wd_buffer_bytes(&raw), raw.len);
	expect_count(&f, "html", 2);
	uint32_t len;
	get_str(&f, "html.0", &len);
	assert_int_equal(len, 409607);
	const char *h1 = get_str(&f, "html.1", &len);
	assert_int_equal(len, 409607);
	assert_memory_equal(h1 + len - 4, "</p>", 4);
	get_str(&f, "text", &len);
	assert_int_equal(len, 1024);
	get_str(&f, "textFooter", &len);
	assert_int_equal(len, 101376);
	expect_str(&f, "intro", "");
	done(&f);
	wd_buffer_release(&raw);
}

/* Hostile input: binary garbage as text in an invalid charset, deeply
   nested HTML, unterminated markup, a NUL. Nothing crashes, output is UTF-8
   and bounded. */
static void test_hostile(void **state)
{
	(void)state;
	struct wd_buffer raw = WD_BUFFER_INIT;
	wd_buffer_append_str(&raw, "Content-Type: multipart/mixed; boundary=\"h\"\r\n\r\n"
				   "--h\r\nContent-Type: text/plain; charset=\"\xff\xfe\"\r\n\r\n");
	for (int i = 0; i < 4096; i++) {
		uint8_t c = (uint8_t)(i * 131 + 7);
		wd_buffer_append(&raw, &c, 1);
	}
	wd_buffer_append_str(&raw, "\r\n--h\r\nContent-Type: text/html; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 5000; i++)
		wd_buffer_append_str(&raw, "<div><ul><li><blockquote>");
	wd_buffer_append_str(&raw, "deep &#0; &#xD800; &bogus; <a href=\"x\n<img src=");
	wd_buffer_append_str(&raw, "\r\n--h--\r\n");
	struct fixture f;
	maildata(&f, (const char *)wd_buffer_bytes(&raw), raw.len);
	uint32_t len;
	const char *text = get_str(&f, "text", &len);
	assert_true(len > 0);
	(void)text;
	expect_count(&f, "html", 2);
	expect_bool(&f, "ha", false);
	done(&f);
	wd_buffer_release(&raw);
}

int main(void)
{
	g_mime_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_noct),
		cmocka_unit_test(test_htmlonly),
		cmocka_unit_test(test_alternative),
		cmocka_unit_test(test_attachment),
		cmocka_unit_test(test_related),
		cmocka_unit_test(test_flowed),
		cmocka_unit_test(test_flowed_delsp),
		cmocka_unit_test(test_qp),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_latin1),
		cmocka_unit_test(test_win1257),
		cmocka_unit_test(test_badcharset),
		cmocka_unit_test(test_intro),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_rfc822),
		cmocka_unit_test(test_text_split_pair),
		cmocka_unit_test(test_long_text),
		cmocka_unit_test(test_text_cap),
		cmocka_unit_test(test_html_cap),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
