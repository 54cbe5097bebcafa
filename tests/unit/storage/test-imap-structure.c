/* Unit tests: IMAP ENVELOPE / BODY / BODYSTRUCTURE (storage/wd-imap-structure.h).
 *
 * Each test parses a hand-written message with wd_mime_tree_parse() and
 * compares the output with an expected string written out by hand from the
 * RFC 3501 grammar. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-imap-structure.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

struct fixture {
	struct wd_arena *arena;
	struct wd_mime_tree *tree;
	struct wd_buffer out;
};

static void parse(struct fixture *f, const char *msg)
{
	const char *error = NULL;
	f->arena = wd_arena_create(0);
	assert_non_null(f->arena);
	f->out = (struct wd_buffer)WD_BUFFER_INIT;
	if (wd_mime_tree_parse(f->arena, (const uint8_t *)msg, strlen(msg), NULL, &f->tree,
			       &error) != WD_OK)
		fail_msg("parse failed: %s", error);
}

static void done(struct fixture *f)
{
	wd_buffer_release(&f->out);
	wd_arena_destroy(&f->arena);
}

static void assert_out(struct fixture *f, const char *expected)
{
	size_t len = f->out.len;
	const char *got = (const char *)wd_buffer_bytes(&f->out);
	if (len != strlen(expected) || memcmp(got, expected, len) != 0)
		fail_msg("\nexpected: %s\n     got: %.*s", expected, (int)len, got);
	wd_buffer_clear(&f->out);
}

static void check_envelope(const char *msg, unsigned flags, const char *expected)
{
	struct fixture f;
	parse(&f, msg);
	assert_int_equal(wd_imap_envelope(f.tree, f.tree->root, flags, &f.out), WD_OK);
	assert_out(&f, expected);
	done(&f);
}

static void check_structure(const char *msg, const char *body, const char *bodystructure)
{
	struct fixture f;
	parse(&f, msg);
	assert_int_equal(wd_imap_bodystructure(f.tree, f.tree->root, false, 0, &f.out), WD_OK);
	assert_out(&f, body);
	assert_int_equal(wd_imap_bodystructure(f.tree, f.tree->root, true, 0, &f.out), WD_OK);
	assert_out(&f, bodystructure);
	done(&f);
}

/* The output is one balanced parenthesized list: quoted strings and
   literals are skipped, parentheses outside them nest correctly. */
static void assert_balanced(const struct wd_buffer *out)
{
	const char *s = (const char *)wd_buffer_bytes(out);
	size_t len = out->len;
	int depth = 0;
	assert_true(len > 0 && s[0] == '(');
	for (size_t k = 0; k < len; k++) {
		if (s[k] == '"') {
			for (k++; k < len && s[k] != '"'; k++) {
				if (s[k] == '\\')
					k++;
			}
			assert_true(k < len);
		} else if (s[k] == '{') {
			char *end = NULL;
			unsigned long n = strtoul(s + k + 1, &end, 10);
			assert_true(end[0] == '}' && end[1] == '\r' && end[2] == '\n');
			k = (size_t)(end + 2 - s) + n;
			assert_true(k < len);
		} else if (s[k] == '(') {
			depth++;
		} else if (s[k] == ')') {
			assert_true(--depth >= 0);
			if (depth == 0)
				assert_int_equal(k, len - 1);
		}
	}
	assert_int_equal(depth, 0);
}

/* ---- tests ---- */

static void test_simple_text(void **state)
{
	(void)state;
	const char *msg =
		"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
		"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
		"Subject: afternoon meeting\r\n"
		"To: mooch@owatagu.siam.edu.example\r\n"
		"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
		"\r\n"
		"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
	check_envelope(msg, 0,
		       "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" "
		       "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
		       "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
		       "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
		       "((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL "
		       "\"<B27397-0100000@Blurdybloop.example>\")");
	check_structure(msg,
			"(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1)",
			"(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1 "
			"NIL NIL NIL NIL)");
}

static void test_no_content_type(void **state)
{
	(void)state;
	/* no Content-Type: TEXT/PLAIN, charset US-ASCII, 7BIT; LF-only lines
	   and a last line without terminator */
	const char *msg = "Subject: x\n\nline one\nline two\nlast";
	check_structure(msg,
			"(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 22 3)",
			"(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 22 3 "
			"NIL NIL NIL NIL)");
	/* and nothing at all but an empty body */
	check_structure("\r\n",
			"(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)",
			"(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 "
			"NIL NIL NIL NIL)");
	check_envelope("\r\n", 0, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

static void test_alternative(void **state)
{
	(void)state;
	const char *msg =
		"From: a@b.example\r\n"
		"Content-Type: multipart/Alternative; boundary=\"XX\"\r\n"
		"\r\n"
		"preamble\r\n"
		"--XX\r\n"
		"Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n"
		"\r\n"
		"Hi there\r\n"
		"--XX\r\n"
		"Content-Type: text/html; charset=utf-8\r\n"
		"Content-Language: en, fr\r\n"
		"\r\n"
		"<p>Hi</p>\r\n"
		"<p>there</p>\r\n"
		"--XX--\r\n";
	/* part 1 body "Hi there" (the CRLF before the delimiter belongs to
	   the delimiter): 8 octets, 1 line; part 2: 23 octets, 2 lines */
	check_structure(msg,
			"((\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" \"flowed\") NIL NIL "
			"\"QUOTED-PRINTABLE\" 8 1)"
			"(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 23 2) "
			"\"Alternative\")",
			"((\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" \"flowed\") NIL NIL "
			"\"QUOTED-PRINTABLE\" 8 1 NIL NIL NIL NIL)"
			"(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 23 2 "
			"NIL NIL (\"en\" \"fr\") NIL) "
			"\"Alternative\" (\"boundary\" \"XX\") NIL NIL NIL)");
}

static void test_mixed_attachment(void **state)
{
	(void)state;
	const char *msg =
		"Content-Type: multipart/mixed; boundary=b1\r\n"
		"\r\n"
		"--b1\r\n"
		"\r\n"
		"body text\r\n"
		"--b1\r\n"
		"Content-Type: application/pdf; name=\"doc.pdf\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-Disposition: attachment;\r\n"
		"  filename=\"my doc.pdf\"\r\n"
		"Content-ID: <id1@x>\r\n"
		"Content-Description: A \"quoted\" doc\r\n"
		"Content-Language: de\r\n"
		"Content-Location: http://x.example/doc.pdf\r\n"
		"\r\n"
		"JVBERi0xLjQK\r\n"
		"--b1--\r\n";
	check_structure(msg,
			"((\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 9 1)"
			"(\"application\" \"pdf\" (\"name\" \"doc.pdf\") \"<id1@x>\" "
			"\"A \\\"quoted\\\" doc\" \"BASE64\" 12) \"mixed\")",
			"((\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 9 1 "
			"NIL NIL NIL NIL)"
			"(\"application\" \"pdf\" (\"name\" \"doc.pdf\") \"<id1@x>\" "
			"\"A \\\"quoted\\\" doc\" \"BASE64\" 12 NIL "
			"(\"attachment\" (\"filename\" \"my doc.pdf\")) \"de\" "
			"\"http://x.example/doc.pdf\") "
			"\"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)");
}

static void test_nested_message(void **state)
{
	(void)state;
	const char *msg =
		"Subject: outer\r\n"
		"Content-Type: multipart/mixed; boundary=o\r\n"
		"\r\n"
		"--o\r\n"
		"Content-Type: text/plain\r\n"
		"\r\n"
		"see attached\r\n"
		"--o\r\n"
		"Content-Type: message/rfc822\r\n"
		"\r\n"
		"From: Inner <in@x.example>\r\n"
		"Subject: inner\r\n"
		"Date: Tue, 1 Jan 2002 00:00:00 +0000\r\n"
		"\r\n"
		"inner body\r\n"
		"two\r\n"
		"--o--\r\n";
	/* embedded message: 3 header lines (82 octets) + CRLF + 15 octets of
	   body = 99 octets, 6 lines */
	const char *inner_env =
		"(\"Tue, 1 Jan 2002 00:00:00 +0000\" \"inner\" "
		"((\"Inner\" NIL \"in\" \"x.example\")) ((\"Inner\" NIL \"in\" \"x.example\")) "
		"((\"Inner\" NIL \"in\" \"x.example\")) NIL NIL NIL NIL NIL)";
	char body[1024], bs[1024];
	snprintf(body, sizeof(body),
		 "((\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 12 1)"
		 "(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 99 %s "
		 "(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 15 2) 6) "
		 "\"mixed\")", inner_env);
	snprintf(bs, sizeof(bs),
		 "((\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 12 1 "
		 "NIL NIL NIL NIL)"
		 "(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 99 %s "
		 "(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 15 2 "
		 "NIL NIL NIL NIL) 6 NIL NIL NIL NIL) "
		 "\"mixed\" (\"boundary\" \"o\") NIL NIL NIL)", inner_env);
	check_structure(msg, body, bs);

	/* ENVELOPE of the embedded message directly */
	struct fixture f;
	parse(&f, msg);
	const struct wd_mime_node *part = wd_mime_node_child(f.tree->root, 2);
	assert_non_null(part);
	assert_int_equal(part->kind, WD_MIME_KIND_MESSAGE);
	assert_int_equal(wd_imap_envelope(f.tree, part->message, 0, &f.out), WD_OK);
	assert_out(&f, inner_env);
	done(&f);
}

static void test_addresses(void **state)
{
	(void)state;
	const char *msg =
		"From: \"Doe, John \\\"JD\\\"\" <john.doe@example.com> (work)\r\n"
		"Reply-To: (nobody) plain@example.org\r\n"
		"To: Team: alice@a.example, \"Bob B.\" <bob@b.example>;, carol@c.example\r\n"
		"Cc: undisclosed-recipients:;\r\n"
		"Bcc: John Q. Public <jqp@[192.0.2.1]>, localonly,\r\n"
		"  <@route.example:routed@r.example>\r\n"
		"Subject:    spaced   out  \r\n"
		"\r\n";
	check_envelope(msg, 0,
		       "(NIL \"spaced   out\" "
		       "((\"Doe, John \\\"JD\\\"\" NIL \"john.doe\" \"example.com\")) "
		       "((\"Doe, John \\\"JD\\\"\" NIL \"john.doe\" \"example.com\")) "
		       "((NIL NIL \"plain\" \"example.org\")) "
		       "((NIL NIL \"Team\" NIL)(NIL NIL \"alice\" \"a.example\")"
		       "(\"Bob B.\" NIL \"bob\" \"b.example\")(NIL NIL NIL NIL)"
		       "(NIL NIL \"carol\" \"c.example\")) "
		       "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
		       "((\"John Q. Public\" NIL \"jqp\" \"[192.0.2.1]\")"
		       "(NIL NIL \"localonly\" NIL)(NIL NIL \"routed\" \"r.example\")) "
		       "NIL NIL)");
}

static void test_malformed_addresses(void **state)
{
	(void)state;
	/* none of these may crash; output must stay balanced */
	const char *inputs[] = {
		"From: <\r\n\r\n",
		"From: \"unterminated\r\n\r\n",
		"From: (unterminated comment\r\n\r\n",
		"From: a@\r\n\r\n",
		"From: @@@,,,;;;:::<<>>\r\n\r\n",
		"From: x <y@z> junk <w@v>, g: h: i;\r\n\r\n",
		"From: [unterminated\r\n\r\n",
		"From: \\\r\n\r\n",
		"From:\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct fixture f;
		parse(&f, inputs[i]);
		assert_int_equal(wd_imap_envelope(f.tree, f.tree->root, 0, &f.out), WD_OK);
		assert_balanced(&f.out);
		done(&f);
	}
	check_envelope("From: a@\r\n\r\n", 0,
		       "(NIL NIL ((NIL NIL \"a\" NIL)) ((NIL NIL \"a\" NIL)) ((NIL NIL \"a\" NIL)) "
		       "NIL NIL NIL NIL NIL)");
	check_envelope("From:\r\nSender: s@x\r\nIn-Reply-To: <p@x>\r\n\r\n", 0,
		       "(NIL NIL NIL ((NIL NIL \"s\" \"x\")) NIL NIL NIL NIL \"<p@x>\" NIL)");
}

static void test_8bit_subject(void **state)
{
	(void)state;
	const char *msg = "Subject: caf\xc3\xa9\r\n\r\n";
	check_envelope(msg, 0,
		       "(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)");
	check_envelope(msg, WD_IMAP_UTF8,
		       "(NIL \"caf\xc3\xa9\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	/* invalid UTF-8 stays a literal even with UTF8=ACCEPT */
	check_envelope("Subject: caf\xe9\r\n\r\n", WD_IMAP_UTF8,
		       "(NIL {4}\r\ncaf\xe9 NIL NIL NIL NIL NIL NIL NIL NIL)");
	/* an 8-bit display name */
	check_envelope("From: J\xc3\xb6rg <j@x>\r\n\r\n", WD_IMAP_UTF8,
		       "(NIL NIL ((\"J\xc3\xb6rg\" NIL \"j\" \"x\")) ((\"J\xc3\xb6rg\" NIL \"j\" \"x\")) "
		       "((\"J\xc3\xb6rg\" NIL \"j\" \"x\")) NIL NIL NIL NIL NIL)");
}

static void test_folded_and_long(void **state)
{
	(void)state;
	/* folding is removed, encoded words are kept as they are */
	check_envelope("Subject: =?utf-8?q?a?=\r\n =?utf-8?q?b?=\r\n\r\n", 0,
		       "(NIL \"=?utf-8?q?a?= =?utf-8?q?b?=\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	/* more than 1000 octets: a literal */
	char msg[1200], expected[1300];
	memcpy(msg, "Subject: ", 9);
	memset(msg + 9, 'a', 1001);
	memcpy(msg + 1010, "\r\n\r\n", 5);
	snprintf(expected, sizeof(expected), "(NIL {1001}\r\n%.*s NIL NIL NIL NIL NIL NIL NIL NIL)",
		 1001, msg + 9);
	check_envelope(msg, 0, expected);
}

static void test_lines_cr(void **state)
{
	(void)state;
	/* CRCRLF is one terminator, a lone CR another */
	check_structure("Content-Type: text/plain; charset=x\r\n\r\na\r\r\nb\rc",
			"(\"text\" \"plain\" (\"charset\" \"x\") NIL NIL \"7BIT\" 7 3)",
			"(\"text\" \"plain\" (\"charset\" \"x\") NIL NIL \"7BIT\" 7 3 "
			"NIL NIL NIL NIL)");
	/* a non-text leaf has no line count */
	check_structure("Content-Type: image/png\r\nContent-Transfer-Encoding: Base64\r\n\r\nAAAA\r\n",
			"(\"image\" \"png\" NIL NIL NIL \"BASE64\" 6)",
			"(\"image\" \"png\" NIL NIL NIL \"BASE64\" 6 NIL NIL NIL NIL)");
}

static void test_empty_multipart(void **state)
{
	(void)state;
	check_structure("Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts here\r\n",
			"((\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) "
			"\"mixed\")",
			"((\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 "
			"NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"zz\") NIL NIL NIL)");
}

/* Random headers and bodies from a hostile alphabet: no crash (run under
   the sanitizers too) and always balanced output. */
static void test_random(void **state)
{
	(void)state;
	static const char alphabet[] = "<>@,;:.\"\\()[] \taZ=?\xc3\xa9\r\n-";
	static const char *const heads[] = {
		"From: ", "Sender: ", "Reply-To: ", "To: ", "Cc: ", "Bcc: ", "Subject: ",
		"Content-Type: multipart/mixed; boundary=-\r\n",
		"Content-Type: message/rfc822\r\n", "Content-Language: ",
		"Content-Disposition: ",
	};
	unsigned seed = 12345;
	char msg[512];
	for (int round = 0; round < 3000; round++) {
		size_t len = 0;
		int fields = 1 + rand_r(&seed) % 4;
		for (int i = 0; i < fields; i++) {
			const char *h = heads[rand_r(&seed) % (int)WD_N_ELEMENTS(heads)];
			size_t hl = strlen(h);
			memcpy(msg + len, h, hl);
			len += hl;
			int n = rand_r(&seed) % 60;
			for (int k = 0; k < n; k++)
				msg[len++] = alphabet[rand_r(&seed) % (int)(sizeof(alphabet) - 1)];
			msg[len++] = '\r';
			msg[len++] = '\n';
		}
		if (rand_r(&seed) % 2)
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, "\r\n--\r\nTo: x\r\n\r\nb\r\n");
		msg[len] = '\0';
		unsigned flags = round % 2 ? WD_IMAP_UTF8 : 0;
		struct fixture f;
		parse(&f, msg);
		assert_int_equal(wd_imap_envelope(f.tree, f.tree->root, flags, &f.out), WD_OK);
		assert_balanced(&f.out);
		wd_buffer_clear(&f.out);
		assert_int_equal(wd_imap_bodystructure(f.tree, f.tree->root, round % 3 != 0, flags,
						       &f.out), WD_OK);
		assert_balanced(&f.out);
		done(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_text),
		cmocka_unit_test(test_no_content_type),
		cmocka_unit_test(test_alternative),
		cmocka_unit_test(test_mixed_attachment),
		cmocka_unit_test(test_nested_message),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_malformed_addresses),
		cmocka_unit_test(test_8bit_subject),
		cmocka_unit_test(test_folded_and_long),
		cmocka_unit_test(test_lines_cr),
		cmocka_unit_test(test_empty_multipart),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
