/* Unit tests: the MIME tree (storage/wd-mime-tree.h).
 *
 * The heart of these tests is the partition invariant: for every input the
 * pieces of the tree, emitted in order, give the input back byte for byte.
 * It is checked (bytes and SHA-256) on a hand-written set of edge cases, each
 * in four line-ending variants, and on messages from a random generator;
 * the tree's shape is checked too wherever the input says what it must be.
 * Then: IMAP sections with expected bytes written out by hand, header facts,
 * WildDuck's views against the table of reference §3.2 (each input was also
 * run through WildDuck's own code when the table was reproduced), limits,
 * and linear-time parsing of large messages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---- */

static struct wd_mime_tree *parse_with(struct wd_arena *arena, const void *data, size_t len,
				       const struct wd_mime_limits *limits)
{
	struct wd_mime_tree *tree = NULL;
	const char *error = NULL;
	if (wd_mime_tree_parse(arena, data, len, limits, &tree, &error) != WD_OK)
		fail_msg("parse failed: %s", error);
	assert_non_null(tree);
	return tree;
}

static void sha256(const void *data, size_t len, unsigned char md[32])
{
	unsigned int md_len = 0;
	assert_int_equal(EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL), 1);
	assert_int_equal(md_len, 32);
}

/* The invariant: the tree checks out and rebuilds to the input exactly. */
static void assert_exact(const struct wd_mime_tree *tree, const void *data, size_t len,
			 const char *name)
{
	const char *error = NULL;
	if (wd_mime_tree_check(tree, &error) != WD_OK)
		fail_msg("%s: tree check: %s", name, error);
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(wd_mime_tree_rebuild(tree, &out), WD_OK);
	if (out.len != len || (len > 0 && memcmp(wd_buffer_bytes(&out), data, len) != 0))
		fail_msg("%s: rebuild differs (%zu bytes, input %zu)", name, out.len, len);
	unsigned char a[32], b[32];
	sha256(data, len, a);
	sha256(wd_buffer_bytes(&out), out.len, b);
	assert_memory_equal(a, b, 32);
	assert_int_equal(wd_mime_tree_exact_size(tree), len);
	wd_buffer_release(&out);
}

/* Shape: L leaf, O opaque leaf, M(...) multipart, R(...) message/rfc822. */
static void shape_of(const struct wd_mime_node *node, struct wd_buffer *out)
{
	switch (node->kind) {
	case WD_MIME_KIND_LEAF:
		wd_buffer_append_str(out, node->opaque ? "O" : "L");
		return;
	case WD_MIME_KIND_MESSAGE:
		wd_buffer_append_str(out, "R(");
		shape_of(node->message, out);
		wd_buffer_append_str(out, ")");
		return;
	case WD_MIME_KIND_MULTIPART:
		wd_buffer_append_str(out, "M(");
		for (uint32_t i = 0; i < node->child_count; i++) {
			if (i > 0)
				wd_buffer_append_str(out, ",");
			shape_of(node->children[i], out);
		}
		wd_buffer_append_str(out, ")");
		return;
	}
}

static void assert_shape(const struct wd_mime_tree *tree, const char *expected, const char *name)
{
	struct wd_buffer shape = WD_BUFFER_INIT;
	shape_of(tree->root, &shape);
	wd_buffer_append(&shape, "", 1);
	if (strcmp((const char *)wd_buffer_bytes(&shape), expected) != 0)
		fail_msg("%s: shape %s, expected %s", name, (const char *)wd_buffer_bytes(&shape),
			 expected);
	wd_buffer_release(&shape);
}

static char *section_text(const struct wd_mime_tree *tree, struct wd_arena *arena,
			  const char *spec_text, int *ret_r, size_t *len_r)
{
	struct wd_mime_section_spec spec;
	struct wd_mime_section section;
	const char *error = NULL;
	assert_int_equal(wd_mime_section_spec_parse(arena, spec_text, strlen(spec_text), &spec,
						     &error),
			 WD_OK);
	*ret_r = wd_mime_section_get(tree, &spec, arena, &section, &error);
	if (*ret_r != WD_OK) {
		assert_non_null(error);
		return NULL;
	}
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(wd_mime_section_write(tree, &section, &out), WD_OK);
	assert_int_equal(out.len, section.size);
	char *text = wd_arena_strndup(arena, (const char *)wd_buffer_bytes(&out), out.len);
	*len_r = out.len;
	wd_buffer_release(&out);
	return text;
}

static void assert_section(const struct wd_mime_tree *tree, struct wd_arena *arena,
			   const char *spec_text, const char *expected)
{
	int ret;
	size_t len = 0;
	char *text = section_text(tree, arena, spec_text, &ret, &len);
	if (ret != WD_OK)
		fail_msg("BODY[%s]: unexpected error", spec_text);
	if (len != strlen(expected) || memcmp(text, expected, len) != 0)
		fail_msg("BODY[%s] = \"%s\", expected \"%s\"", spec_text, text, expected);
}

static void assert_section_error(const struct wd_mime_tree *tree, struct wd_arena *arena,
				 const char *spec_text)
{
	int ret;
	size_t len;
	(void)section_text(tree, arena, spec_text, &ret, &len);
	if (ret != WD_ERROR)
		fail_msg("BODY[%s]: expected an error", spec_text);
}

/* ---- edge cases, each in four line-ending variants ---- */

struct edge_case {
	const char *name;
	const char *text; /* "\n" marks every line break */
	size_t len;
	const char *shape;
	bool raw_only; /* holds CRs of its own: run as written only */
};

#define CASE(name, text, shape) { name, text, sizeof(text) - 1, shape, false }
#define CASE_RAW(name, text, shape) { name, text, sizeof(text) - 1, shape, true }
#define MIXED "Content-Type: multipart/mixed; boundary=\"b\"\n\n"

static const struct edge_case edge_cases[] = {
	CASE("simple", "From: a@b\nSubject: hi\n\nHello\nWorld\n", "L"),
	CASE("no-final-newline", "Subject: hi\n\nHello\nWorld", "L"),
	CASE("header-blank-no-body", "Subject: hi\n\n", "L"),
	CASE("header-no-blank", "Subject: hi\nFrom: x", "L"),
	CASE("header-no-blank-newline", "Subject: hi\n", "L"),
	CASE("no-headers", "\nbody only\n", "L"),
	CASE("empty", "", "L"),
	CASE("only-newline", "\n", "L"),
	CASE("text-without-headers", "just text\nmore text\n", "L"),
	CASE("folded", "Subject: a\n  folded\n\tagain\nFrom: x\n\nbody\n", "L"),
	CASE("leading-continuation", " starts with space: x\nSubject: y\n\nbody\n", "L"),
	CASE("no-colon-line", "Subject: a\nthis line has no colon\nFrom: b\n\nbody\n", "L"),
	CASE("8bit-headers", "Subject: \xc3\xa9t\xe9 \xff\xfe\nFrom: \x80\x81 <a@b>\n\nbody \xff\n",
	     "L"),
	CASE("nul-bytes", "Sub\0ject: a\0b\n\0\nbo\0dy\n\0\n", "L"),
	CASE("nul-in-boundary-line",
	     MIXED "--b\n\none\n--b\0\n--b\n\ntwo\0\n--b--\n\0", "M(L,L)"),
	CASE("multipart-basic",
	     "Content-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\n"
	     "one\n--XX\nContent-Type: text/html\n\n<b>two</b>\n--XX--\n",
	     "M(L,L)"),
	CASE("preamble-epilogue",
	     MIXED "This is a preamble\n\n--b\n\npart\n--b--\nepilogue line\nmore\n", "M(L)"),
	CASE("epilogue-no-newline", MIXED "--b\n\npart\n--b--\nepilogue", "M(L)"),
	CASE("missing-close", MIXED "--b\n\none\n--b\n\ntwo\n", "M(L,L)"),
	CASE("close-no-newline", MIXED "--b\n\none\n--b--", "M(L)"),
	CASE("transport-padding", MIXED "--b  \t\n\none\n--b \n\ntwo\n--b--\t \n", "M(L,L)"),
	CASE("boundary-prefix-lines",
	     MIXED "--b\n\nline\n--bx\n--b--x\n-- b\n--b-\n --b\n---b\n--b x\n--b\n\ntwo\n--b--\n",
	     "M(L,L)"),
	CASE("nested",
	     "Content-Type: multipart/mixed; boundary=\"outer\"\n\n--outer\n"
	     "Content-Type: multipart/alternative; boundary=\"inner\"\n\n--inner\n"
	     "Content-Type: text/plain\n\nplain\n--inner\nContent-Type: text/html\n\n<p>html</p>\n"
	     "--inner--\n\n--outer\nContent-Type: application/pdf\n\nPDF\n--outer--\n",
	     "M(M(L,L),L)"),
	CASE("nested-missing-inner-close",
	     "Content-Type: multipart/mixed; boundary=\"outer\"\n\n--outer\n"
	     "Content-Type: multipart/alternative; boundary=\"inner\"\n\n--inner\n\nplain\n"
	     "--inner\n\n<p>html</p>\n--outer\n\nattachment\n--outer--\n",
	     "M(M(L,L),L)"),
	CASE("boundary-reused",
	     MIXED "--b\nContent-Type: multipart/alternative; boundary=b\n\n--b\n\ninner\n--b--\n",
	     "M(M(),L)"),
	CASE("boundary-reused-deeper",
	     MIXED "--b\nContent-Type: multipart/alternative; boundary=c\n\n--c\n"
	     "Content-Type: multipart/related; boundary=b\n\nx\n--c--\n--b\n\ny\n--b--\n",
	     "M(M(M()),L)"),
	CASE("empty-parts", MIXED "--b\n--b\n\n--b\n--b--\n", "M(L,L,L)"),
	CASE("part-no-headers", MIXED "--b\n\nbody without headers\n--b--\n", "M(L)"),
	CASE("part-headers-no-blank",
	     MIXED "--b\nContent-Type: text/plain\n--b\n\nx\n--b--\n", "M(L,L)"),
	CASE("no-delimiters", MIXED "just text\n--c\n--b-\n", "M()"),
	CASE("multipart-empty-body", MIXED, "M()"),
	CASE("multipart-no-blank-line", "Content-Type: multipart/mixed; boundary=b\n--b\n\nx\n",
	     "M()"),
	CASE("close-before-open", MIXED "--b--\n--b\n\nx\n--b--\n", "M(L)"),
	CASE("boundary-specials",
	     "Content-Type: multipart/mixed;\n boundary=\"=_Part_0.1:2'()+,-./?z\"\n\n"
	     "--=_Part_0.1:2'()+,-./?z\n\na\n--=_Part_0.1:2'()+,-./?z\n\nb\n"
	     "--=_Part_0.1:2'()+,-./?z--\n",
	     "M(L,L)"),
	CASE("boundary-quoted-semicolon",
	     "Content-Type: multipart/mixed; boundary=\"a;b\"; charset=x\n\n--a;b\n\nx\n--a;b--\n",
	     "M(L)"),
	CASE("rfc822",
	     MIXED "--b\nContent-Type: text/plain\n\nsee attached\n--b\n"
	     "Content-Type: message/rfc822\n\nSubject: inner\nFrom: x@y\n\ninner body\n--b--\n",
	     "M(L,R(L))"),
	CASE("rfc822-encodings",
	     MIXED "--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 7bit\n\nS: 1\n\nx\n"
	     "--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 8BIT\n\nS: 2\n\nx\n"
	     "--b\nContent-Type: Message/RFC822\nContent-Transfer-Encoding: binary\n\nS: 3\n\nx\n"
	     "--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nUzogNA==\n"
	     "--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: quoted-printable\n\n"
	     "S: 5\n--b--\n",
	     "M(R(L),R(L),R(L),L,L)"),
	CASE("rfc822-multipart",
	     MIXED "--b\nContent-Type: message/rfc822\n\nSubject: fwd\n"
	     "Content-Type: multipart/alternative; boundary=in\n\n--in\n\nplain\n--in\n\nhtml\n"
	     "--in--\n--b--\n",
	     "M(R(M(L,L)))"),
	CASE("top-rfc822", "Content-Type: message/rfc822\n\nSubject: inner\n\nbody\n", "R(L)"),
	CASE("rfc822-no-headers", "Content-Type: message/rfc822\n\n", "R(L)"),
	CASE("digest",
	     "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\n1\n--d\n\n"
	     "Subject: two\n\n2\n--d\nContent-Type: text/plain\n\n3\n--d--\n",
	     "M(R(L),R(L),L)"),
	CASE("rfc822-reuses-outer-boundary",
	     MIXED "--b\nContent-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=b\n\n"
	     "--b\n\ninner\n--b--\n",
	     "M(R(M()),L)"),
	CASE("rfc2231-boundary",
	     "Content-Type: multipart/mixed; boundary*0=\"ab\"; boundary*1=\"cd\"\n\n--abcd\n\nx\n"
	     "--abcd--\n",
	     "M(L)"),
	CASE("no-boundary-param", "Content-Type: multipart/mixed\n\n--b\n\nx\n--b--\n", "L"),
	CASE("empty-boundary", "Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\nx\n----\n", "L"),
	CASE("delimiter-at-eof", MIXED "--b\n\nx\n--b", "M(L,L)"),
	CASE("epilogue-lookalikes", MIXED "--b\n\nx\n--b--\nepi\n--b\n\nnot a part\n--b--\n",
	     "M(L)"),
	CASE("uppercase",
	     "CONTENT-TYPE: MULTIPART/MIXED; BOUNDARY=Xy\n\n--Xy\n\na\n--xy\n--XY\n--Xy--\n",
	     "M(L)"),
	CASE("base64-irregular",
	     MIXED "--b\nContent-Type: text/plain\n\nsee\n--b\nContent-Type: application/octet-stream\n"
	     "Content-Transfer-Encoding: base64\n\nSGVsbG8g\nd29ybGQh\nIQ==\n\nSGk=\n--b--\n",
	     "M(L,L)"),
	CASE("multiple-content-type",
	     "Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n",
	     "M(L)"),
	CASE("deep-5",
	     "Content-Type: multipart/mixed; boundary=l1\n\n--l1\n"
	     "Content-Type: multipart/mixed; boundary=l2\n\n--l2\n"
	     "Content-Type: multipart/mixed; boundary=l3\n\n--l3\n"
	     "Content-Type: multipart/mixed; boundary=l4\n\n--l4\n"
	     "Content-Type: multipart/mixed; boundary=l5\n\n--l5\n\nleaf\n"
	     "--l5--\n--l4--\n--l3--\n--l2--\n--l1--\n",
	     "M(M(M(M(M(L)))))"),
	CASE("empty-preamble-line", MIXED "\n--b\n\nx\n--b--\n", "M(L)"),
	CASE("blank-lines-around-parts", MIXED "\n\n--b\n\n\nx\n\n\n--b\n\n\n--b--\n\n\n", "M(L,L)"),
	CASE("long-boundary-name",
	     "Content-Type: multipart/mixed; boundary=0123456789012345678901234567890123456789"
	     "0123456789012345678901234567890123456789\n\n"
	     "--0123456789012345678901234567890123456789012345678901234567890123456789012345678"
	     "9\n\nx\n--01234567890123456789012345678901234567890123456789012345678901234567890123"
	     "456789--\n",
	     "M(L)"),
	CASE_RAW("cr-runs", "Subject: a\r\r\n\r\r\nbody\r\r\nmore\r\r\r\n", "L"),
	CASE_RAW("cr-runs-multipart",
		 "Content-Type: multipart/mixed; boundary=b\r\r\n\r\r\npre\r\r--b\r\r\n\r\nx\r\r\r\n"
		 "--b--\r",
		 "M(L)"),
	CASE_RAW("lone-cr-before-crlf",
		 "Subject: a\r\n\r\nx\r\r--b\r\n", "L"),
};

/* Rewrite every "\n" of a case in one line-ending style. Mixed cycles CRLF,
   LF and CR; after a CR, the line breaks of empty lines that follow are CRs
   too, since "CR" + "CRLF" would read as one CRCRLF break. */
enum ending { ENDING_CRLF, ENDING_LF, ENDING_CR, ENDING_MIXED, ENDING_COUNT };
static const char *const ending_names[ENDING_COUNT] = { "crlf", "lf", "cr", "mixed" };

static uint8_t *convert_endings(const char *text, size_t len, enum ending ending, size_t *len_r)
{
	uint8_t *out = malloc(len * 2 + 1);
	assert_non_null(out);
	size_t n = 0;
	unsigned int cycle = 0;
	bool after_cr = false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] != '\n') {
			out[n++] = (uint8_t)text[i];
			after_cr = false;
			continue;
		}
		enum ending e = ending == ENDING_MIXED ? (enum ending)(cycle++ % 3) : ending;
		if (after_cr)
			e = ENDING_CR;
		if (e == ENDING_CRLF || e == ENDING_CR)
			out[n++] = '\r';
		if (e == ENDING_CRLF || e == ENDING_LF)
			out[n++] = '\n';
		after_cr = e == ENDING_CR;
	}
	*len_r = n;
	return out;
}

static void test_edge_cases_rebuild(void **state)
{
	(void)state;
	size_t runs = 0;
	for (size_t c = 0; c < WD_N_ELEMENTS(edge_cases); c++) {
		const struct edge_case *ec = &edge_cases[c];
		for (int e = 0; e < ENDING_COUNT; e++) {
			if (ec->raw_only && e > 0)
				break;
			size_t len = ec->len;
			uint8_t *data;
			if (ec->raw_only) {
				data = malloc(len + 1);
				assert_non_null(data);
				memcpy(data, ec->text, len);
			} else {
				data = convert_endings(ec->text, ec->len, (enum ending)e, &len);
			}
			char name[128];
			snprintf(name, sizeof(name), "%s/%s", ec->name, ending_names[e]);
			struct wd_arena *arena = wd_arena_create(0);
			struct wd_mime_tree *tree = parse_with(arena, data, len, NULL);
			assert_exact(tree, data, len, name);
			assert_shape(tree, ec->shape, name);
			/* Every prefix is a message too (truncated deliveries). */
			for (size_t cut = 0; cut < len; cut += 1 + len / 16) {
				struct wd_mime_tree *t = parse_with(arena, data, cut, NULL);
				assert_exact(t, data, cut, name);
			}
			wd_arena_destroy(&arena);
			free(data);
			runs++;
		}
	}
	assert_true(WD_N_ELEMENTS(edge_cases) >= 40);
	print_message("edge cases: %zu messages in %zu variants\n", WD_N_ELEMENTS(edge_cases),
		      runs);
}

/* Structural details of a few edge cases, CRLF variant. */
static void test_edge_case_ranges(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	const char *msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b  \r\n"
			  "X: 1\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\nepi\r\n";
	struct wd_mime_tree *tree = parse_with(arena, msg, strlen(msg), NULL);
	const struct wd_mime_node *root = tree->root;
	assert_int_equal(root->kind, WD_MIME_KIND_MULTIPART);
	assert_true(root->has_blank_line);
	assert_int_equal(root->header.end, 45);
	assert_memory_equal(msg + root->preamble.start, "pre", 3);
	assert_int_equal(wd_mime_range_len(root->preamble), 3);
	assert_int_equal(root->child_count, 2);
	const struct wd_mime_node *one = root->children[0], *two = root->children[1];
	/* The delimiter takes the line break before it and its own. */
	assert_memory_equal(msg + one->delimiter.start, "\r\n--b  \r\n", 9);
	assert_int_equal(wd_mime_range_len(one->delimiter), 9);
	assert_memory_equal(msg + one->body.start, "one", 3);
	assert_int_equal(wd_mime_range_len(one->body), 3);
	assert_int_equal(wd_mime_range_len(two->delimiter), 7);
	assert_true(root->has_close);
	assert_memory_equal(msg + root->close_delimiter.start, "\r\n--b--\r\n", 9);
	assert_int_equal(wd_mime_range_len(root->close_delimiter), 9);
	assert_memory_equal(msg + root->epilogue.start, "epi\r\n", 5);
	assert_int_equal(root->epilogue.end, strlen(msg));
	assert_int_equal(one->index, 1);
	assert_int_equal(two->index, 2);
	assert_ptr_equal(one->next, two);
	assert_ptr_equal(wd_mime_node_child(root, 2), two);
	assert_null(wd_mime_node_child(root, 3));
	assert_null(wd_mime_node_child(root, 0));

	/* The first delimiter opening the body has no line break before it. */
	msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_int_equal(wd_mime_range_len(tree->root->preamble), 0);
	assert_memory_equal(msg + tree->root->children[0]->delimiter.start, "--b\n", 4);
	assert_memory_equal(msg + tree->root->close_delimiter.start, "\n--b--", 6);
	assert_int_equal(tree->root->close_delimiter.end, strlen(msg));

	/* Headers without a blank line: the header block is the whole node. */
	msg = "Subject: x\r\nFrom: y";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_false(tree->root->has_blank_line);
	assert_int_equal(tree->root->header.end, strlen(msg));
	assert_int_equal(tree->root->field_count, 2);
	assert_int_equal(wd_mime_range_len(tree->root->fields[0].range), 12);

	/* A missing close delimiter: the last part runs to the end. */
	msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b\n\ny\n";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_false(tree->root->has_close);
	assert_int_equal(tree->root->children[1]->range.end, strlen(msg));
	assert_int_equal(wd_mime_range_len(tree->root->epilogue), 0);
	wd_arena_destroy(&arena);
}

/* Long lines: a 100 KiB header value and a 1 MiB body line. */
static void test_long_lines(void **state)
{
	(void)state;
	struct wd_buffer msg = WD_BUFFER_INIT;
	wd_buffer_append_str(&msg, "Content-Type: multipart/mixed; boundary=b\r\nX-Long: ");
	for (int i = 0; i < 100 * 1024; i++)
		wd_buffer_append(&msg, "h", 1);
	wd_buffer_append_str(&msg, "\r\n\r\n--b\r\n\r\n");
	for (int i = 0; i < 1024 * 1024; i++)
		wd_buffer_append(&msg, i % 100 == 0 ? "-" : "x", 1);
	wd_buffer_append_str(&msg, "\r\n--b--\r\n");
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, NULL);
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "long-lines");
	assert_shape(tree, "M(L)", "long-lines");
	assert_int_equal(wd_mime_range_len(tree->root->children[0]->body), 1024 * 1024);
	wd_arena_destroy(&arena);
	wd_buffer_release(&msg);
}

/* ---- random messages ---- */

struct gen {
	struct wd_buffer out;
	struct wd_buffer shape;
	uint64_t rng;
	enum ending ending;
	bool after_cr;
	bool no_close_ok;
	unsigned int boundaries;
};

static uint32_t gen_rand(struct gen *g)
{
	/* xorshift64*: deterministic across platforms. */
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return (uint32_t)((g->rng * 2685821657736338717ull) >> 32);
}

static unsigned int gen_below(struct gen *g, unsigned int n)
{
	return gen_rand(g) % n;
}

static void gen_text(struct gen *g, const char *text)
{
	if (text[0] != '\0')
		g->after_cr = false;
	wd_buffer_append_str(&g->out, text);
}

static void gen_bytes(struct gen *g, const void *data, size_t len)
{
	if (len > 0)
		g->after_cr = false;
	wd_buffer_append(&g->out, data, len);
}

static void gen_newline(struct gen *g)
{
	enum ending e = g->ending == ENDING_MIXED ? (enum ending)gen_below(g, 3) : g->ending;
	if (g->after_cr)
		e = ENDING_CR;
	wd_buffer_append_str(&g->out, e == ENDING_CRLF ? "\r\n" : e == ENDING_LF ? "\n" : "\r");
	g->after_cr = e == ENDING_CR;
}

static void gen_line(struct gen *g, const char *text)
{
	gen_text(g, text);
	gen_newline(g);
}

/* Random text that never starts a line with '-' and holds no CR or LF:
   8-bit bytes, NULs, tabs, spaces, ';', '=', ':'. */
static void gen_junk(struct gen *g, unsigned int max)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz ABC=;:\t\x01\xe9\xff\x80-";
	unsigned int n = gen_below(g, max + 1);
	uint8_t buf[256];
	for (unsigned int i = 0; i < n && i < sizeof(buf); i++) {
		buf[i] = (uint8_t)chars[gen_below(g, sizeof(chars))]; /* the NUL too */
		if (i == 0 && buf[i] == '-')
			buf[i] = 'x';
	}
	gen_bytes(g, buf, n < sizeof(buf) ? n : sizeof(buf));
}

static void gen_base64(struct gen *g)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned int lines = gen_below(g, 6);
	for (unsigned int l = 0; l < lines; l++) {
		char line[80];
		unsigned int n = 1 + gen_below(g, 76); /* irregular lengths */
		for (unsigned int i = 0; i < n; i++)
			line[i] = b64[gen_below(g, 64)];
		line[n] = '\0';
		gen_line(g, line);
	}
	if (gen_below(g, 2))
		gen_line(g, "QQ==");
}

static void gen_entity(struct gen *g, unsigned int depth, bool top)
{
	unsigned int kind = depth < 4 ? gen_below(g, 5) : 0; /* 0-1 leaf, 2-3 multi, 4 msg */
	char buf[160];

	for (unsigned int i = gen_below(g, 4); i > 0; i--) {
		snprintf(buf, sizeof(buf), "X-H%u: ", gen_below(g, 10));
		gen_text(g, buf);
		gen_junk(g, 20);
		gen_text(g, "v");
		gen_newline(g);
		if (gen_below(g, 5) == 0) {
			gen_text(g, gen_below(g, 2) ? " " : "\t");
			gen_junk(g, 20);
			gen_newline(g);
		}
	}
	if (gen_below(g, 4) == 0)
		gen_line(g, "Subject: \xc3\xa9t\xc3\xa9 \xff\xfe 8-bit");

	if (kind >= 2 && kind <= 3) {
		static const char *const subtypes[] = { "mixed", "alternative", "related" };
		char boundary[64];
		snprintf(boundary, sizeof(boundary), "=_b%u.%u", ++g->boundaries, gen_below(g, 1000));
		snprintf(buf, sizeof(buf), "Content-Type: multipart/%s;", subtypes[gen_below(g, 3)]);
		gen_text(g, buf);
		if (gen_below(g, 2))
			gen_newline(g);
		snprintf(buf, sizeof(buf), " boundary=\"%s\"", boundary);
		gen_line(g, buf);
		gen_newline(g);
		wd_buffer_append_str(&g->shape, "M(");

		unsigned int r = gen_below(g, 4);
		if (r == 0) {
			for (unsigned int i = 1 + gen_below(g, 3); i > 0; i--) {
				gen_text(g, "preamble ");
				gen_junk(g, 30);
				gen_newline(g);
			}
		} else if (r == 1) {
			gen_newline(g);
		}
		unsigned int parts = gen_below(g, 4);
		for (unsigned int i = 0; i < parts; i++) {
			if (i > 0)
				wd_buffer_append_str(&g->shape, ",");
			snprintf(buf, sizeof(buf), "--%s%s", boundary,
				 gen_below(g, 8) == 0 ? " \t" : "");
			gen_line(g, buf);
			gen_entity(g, depth + 1, false);
			gen_newline(g);
		}
		wd_buffer_append_str(&g->shape, ")");
		/* Without a close delimiter the shape is the same: an enclosing
		   delimiter (or the end) ends the last part. */
		if (parts > 0 && gen_below(g, 6) != 0) {
			snprintf(buf, sizeof(buf), "--%s--", boundary);
			gen_text(g, buf);
			if (top && gen_below(g, 3) == 0)
				return; /* no final newline */
			gen_newline(g);
			for (unsigned int i = gen_below(g, 3); i > 0; i--) {
				gen_text(g, "epilogue ");
				gen_junk(g, 20);
				gen_newline(g);
			}
		}
		return;
	}
	if (kind == 4) {
		static const char *const encodings[] = { NULL, "7bit", "8bit", "binary", "base64" };
		const char *cte = encodings[gen_below(g, 5)];
		gen_line(g, "Content-Type: message/rfc822");
		if (cte != NULL) {
			snprintf(buf, sizeof(buf), "Content-Transfer-Encoding: %s", cte);
			gen_line(g, buf);
		}
		gen_newline(g);
		if (cte != NULL && strcmp(cte, "base64") == 0) {
			wd_buffer_append_str(&g->shape, "L");
			gen_base64(g);
			return;
		}
		wd_buffer_append_str(&g->shape, "R(");
		gen_entity(g, depth + 1, top);
		wd_buffer_append_str(&g->shape, ")");
		return;
	}

	wd_buffer_append_str(&g->shape, "L");
	bool binary = gen_below(g, 3) == 0;
	gen_line(g, binary ? "Content-Type: application/octet-stream" :
			     "Content-Type: text/plain; charset=utf-8");
	if (binary)
		gen_line(g, "Content-Transfer-Encoding: base64");
	gen_newline(g);
	if (binary) {
		gen_base64(g);
		return;
	}
	unsigned int lines = gen_below(g, 5);
	for (unsigned int i = 0; i < lines; i++) {
		gen_junk(g, 60);
		if (i + 1 < lines || gen_below(g, 3) != 0 || !top)
			gen_newline(g);
	}
}

static void test_random_messages(void **state)
{
	(void)state;
	const unsigned int clean = 400, mutated = 400;
	struct gen g;
	memset(&g, 0, sizeof(g));
	g.rng = 0x2545f4914f6cdd1dull;
	size_t total_bytes = 0, total_parts = 0;

	for (unsigned int n = 0; n < clean + mutated; n++) {
		wd_buffer_clear(&g.out);
		wd_buffer_clear(&g.shape);
		g.after_cr = false;
		g.ending = (enum ending)gen_below(&g, ENDING_COUNT);
		gen_entity(&g, 0, true);
		wd_buffer_append(&g.shape, "", 1);

		uint8_t *data = malloc(g.out.len + 64);
		assert_non_null(data);
		size_t len = g.out.len;
		memcpy(data, wd_buffer_bytes(&g.out), len);
		if (n >= clean && len > 0) {
			/* Damage it: truncate, flip bytes, insert line breaks and
			   dashes, duplicate a slice. */
			for (unsigned int m = 1 + gen_below(&g, 4); m > 0; m--) {
				size_t at = gen_below(&g, (unsigned int)len);
				switch (gen_below(&g, 5)) {
				case 0:
					len = at;
					break;
				case 1:
					data[at] ^= (uint8_t)(1u << gen_below(&g, 8));
					break;
				case 2:
					data[at] = "\r\n-\0"[gen_below(&g, 4)];
					break;
				case 3: {
					size_t take = len - at < 32 ? len - at : 32;
					memmove(data + at + take, data + at, len - at);
					len += take;
					break;
				}
				default:
					data[at] = '\r';
					break;
				}
				if (len == 0)
					break;
			}
		}

		struct wd_arena *arena = wd_arena_create(0);
		struct wd_mime_tree *tree = parse_with(arena, data, len, NULL);
		char name[64];
		snprintf(name, sizeof(name), "random #%u", n);
		assert_exact(tree, data, len, name);
		if (n < clean)
			assert_shape(tree, (const char *)wd_buffer_bytes(&g.shape), name);
		total_bytes += len;
		total_parts += tree->part_count;
		wd_arena_destroy(&arena);
		free(data);
	}
	print_message("random: %u clean + %u damaged messages, %zu bytes, %zu parts\n", clean,
		      mutated, total_bytes, total_parts);
	wd_buffer_release(&g.out);
	wd_buffer_release(&g.shape);
}

/* ---- sections ---- */

static const char section_message[] =
	"From: Alice <a@example.com>\r\n"
	"Subject: Test\r\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--XX\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"Hello\r\n"
	"--XX\r\n"
	"Content-Type: multipart/alternative; boundary=\"YY\"\r\n"
	"\r\n"
	"--YY\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"alt plain\r\n"
	"--YY\r\n"
	"Content-Type: text/html\r\n"
	"\r\n"
	"<p>alt</p>\r\n"
	"--YY--\r\n"
	"--XX\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: Inner\r\n"
	"From: Bob <b@example.com>\r\n"
	"\r\n"
	"Inner body\r\n"
	"--XX--\r\n"
	"epilogue\r\n";

static void test_sections(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree =
		parse_with(arena, section_message, sizeof(section_message) - 1, NULL);
	assert_shape(tree, "M(L,M(L,L),R(L))", "sections");

	assert_section(tree, arena, "", section_message);
	assert_section(tree, arena, "HEADER",
		       "From: Alice <a@example.com>\r\nSubject: Test\r\n"
		       "Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n");
	assert_section(tree, arena, "TEXT", strstr(section_message, "preamble"));
	assert_section(tree, arena, "1", "Hello");
	assert_section(tree, arena, "1.MIME", "Content-Type: text/plain\r\n\r\n");
	assert_section(tree, arena, "2",
		       "--YY\r\nContent-Type: text/plain\r\n\r\nalt plain\r\n--YY\r\n"
		       "Content-Type: text/html\r\n\r\n<p>alt</p>\r\n--YY--");
	assert_section(tree, arena, "2.MIME",
		       "Content-Type: multipart/alternative; boundary=\"YY\"\r\n\r\n");
	assert_section(tree, arena, "2.1", "alt plain");
	assert_section(tree, arena, "2.2", "<p>alt</p>");
	assert_section(tree, arena, "2.2.MIME", "Content-Type: text/html\r\n\r\n");
	assert_section(tree, arena, "3",
		       "Subject: Inner\r\nFrom: Bob <b@example.com>\r\n\r\nInner body");
	assert_section(tree, arena, "3.MIME", "Content-Type: message/rfc822\r\n\r\n");
	assert_section(tree, arena, "3.HEADER",
		       "Subject: Inner\r\nFrom: Bob <b@example.com>\r\n\r\n");
	assert_section(tree, arena, "3.TEXT", "Inner body");
	assert_section(tree, arena, "3.1", "Inner body");
	assert_section(tree, arena, "3.1.MIME", "Subject: Inner\r\nFrom: Bob <b@example.com>\r\n\r\n");
	assert_section(tree, arena, "3.HEADER.FIELDS (FROM)", "From: Bob <b@example.com>\r\n\r\n");
	assert_section(tree, arena, "HEADER.FIELDS (Subject From)",
		       "From: Alice <a@example.com>\r\nSubject: Test\r\n\r\n");
	assert_section(tree, arena, "header.fields (\"subject\" x-none)", "Subject: Test\r\n\r\n");
	assert_section(tree, arena, "HEADER.FIELDS (X-None)", "\r\n");
	assert_section(tree, arena, "HEADER.FIELDS.NOT (Subject)",
		       "From: Alice <a@example.com>\r\n"
		       "Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n");

	assert_section_error(tree, arena, "4");
	assert_section_error(tree, arena, "1.1");
	assert_section_error(tree, arena, "1.HEADER");
	assert_section_error(tree, arena, "2.TEXT");
	assert_section_error(tree, arena, "2.3");
	assert_section_error(tree, arena, "3.2");
	assert_section_error(tree, arena, "2.1.1");

	/* Section texts that do not parse. */
	struct wd_mime_section_spec spec;
	const char *error;
	static const char *const bad[] = {
		"0", "1.", "MIME", "HEADER.FIELDS", "HEADER.FIELDS ()", "HEADER.FIELDS (a",
		"TEXT.1", "1..2", "1.FOO", "HEADERX", "HEADER.FIELDS (\"a)", "99999999999",
	};
	for (size_t i = 0; i < WD_N_ELEMENTS(bad); i++) {
		if (wd_mime_section_spec_parse(arena, bad[i], strlen(bad[i]), &spec, &error) !=
		    WD_ERROR)
			fail_msg("section \"%s\" should not parse", bad[i]);
	}
	assert_int_equal(wd_mime_section_spec_parse(arena, "1.22.333.TEXT", 13, &spec, &error),
			 WD_OK);
	assert_int_equal(spec.path_len, 3);
	assert_int_equal(spec.path[2], 333);
	assert_int_equal(spec.type, WD_MIME_SECTION_TEXT);
	wd_arena_destroy(&arena);
}

static void test_sections_single_part(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	const char *msg = "Subject: x\nFrom: y\n\nbody\n";
	struct wd_mime_tree *tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_section(tree, arena, "1", "body\n");
	assert_section(tree, arena, "1.MIME", "Subject: x\nFrom: y\n\n");
	assert_section(tree, arena, "TEXT", "body\n");
	assert_section(tree, arena, "HEADER", "Subject: x\nFrom: y\n\n");
	/* The subset ends with the message's own blank line. */
	assert_section(tree, arena, "HEADER.FIELDS (From)", "From: y\n\n");
	assert_section_error(tree, arena, "2");
	assert_section_error(tree, arena, "1.1");
	assert_section_error(tree, arena, "1.HEADER");

	/* No blank line: HEADER + TEXT is still the message, and the field
	   subset gets a synthesized blank line. */
	msg = "Subject: x\r\nFrom: y";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_section(tree, arena, "HEADER", msg);
	assert_section(tree, arena, "TEXT", "");
	assert_section(tree, arena, "HEADER.FIELDS (From)", "From: y\r\n\r\n");
	assert_section(tree, arena, "HEADER.FIELDS (Subject)", "Subject: x\r\n\r\n");
	assert_section(tree, arena, "HEADER.FIELDS.NOT (Subject From)", "\r\n");

	/* Folded fields are selected whole; lines without a colon never. */
	msg = "Subject: a\r\n b\r\nnocolon\r\nTo: c\r\n\r\nx";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_section(tree, arena, "HEADER.FIELDS (SUBJECT)", "Subject: a\r\n b\r\n\r\n");
	assert_section(tree, arena, "HEADER.FIELDS.NOT (to)", "Subject: a\r\n b\r\n\r\n");
	assert_section(tree, arena, "HEADER.FIELDS (nocolon)", "\r\n");

	/* A top-level message/rfc822: part 1 is the embedded message. */
	msg = "Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_section(tree, arena, "1", "Subject: in\r\n\r\ninner");
	assert_section(tree, arena, "1.HEADER", "Subject: in\r\n\r\n");
	assert_section(tree, arena, "1.TEXT", "inner");
	assert_section(tree, arena, "1.1", "inner");
	wd_arena_destroy(&arena);
}

static void test_section_partial(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree =
		parse_with(arena, section_message, sizeof(section_message) - 1, NULL);
	static const struct {
		const char *spec;
		uint64_t offset, length;
		const char *expected;
	} cases[] = {
		{ "", 0, 4, "From" },
		{ "", 6, 5, "Alice" },
		{ "TEXT", 3, 5, "amble" },
		{ "1", 0, 100, "Hello" },
		{ "1", 5, 10, "" },
		{ "1", 4, UINT64_MAX, "o" },
		/* Across the two ranges and the blank line. */
		{ "HEADER.FIELDS (Subject From)", 20, 20, "le.com>\r\nSubject: Te" },
		{ "HEADER.FIELDS (Subject From)", 40, 100, "st\r\n\r\n" },
		{ "3.HEADER.FIELDS (Subject)", 14, 3, "\r\n\r" },
	};
	for (size_t i = 0; i < WD_N_ELEMENTS(cases); i++) {
		struct wd_mime_section_spec spec;
		struct wd_mime_section section;
		const char *error;
		assert_int_equal(wd_mime_section_spec_parse(arena, cases[i].spec,
							    strlen(cases[i].spec), &spec, &error),
				 WD_OK);
		assert_int_equal(wd_mime_section_get(tree, &spec, arena, &section, &error), WD_OK);
		wd_mime_section_partial(&section, cases[i].offset, cases[i].length);
		struct wd_buffer out = WD_BUFFER_INIT;
		assert_int_equal(wd_mime_section_write(tree, &section, &out), WD_OK);
		assert_int_equal(out.len, section.size);
		if (out.len != strlen(cases[i].expected) ||
		    memcmp(wd_buffer_bytes(&out), cases[i].expected, out.len) != 0)
			fail_msg("BODY[%s]<%llu.%llu> wrong (%zu bytes)", cases[i].spec,
				 (unsigned long long)cases[i].offset,
				 (unsigned long long)cases[i].length, out.len);
		wd_buffer_release(&out);
	}

	/* The suffix alone, partially. */
	const char *msg = "Subject: x";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	struct wd_mime_section_spec spec;
	struct wd_mime_section section;
	const char *error;
	assert_int_equal(wd_mime_section_spec_parse(arena, "HEADER.FIELDS (subject)", 23, &spec,
						    &error),
			 WD_OK);
	assert_int_equal(wd_mime_section_get(tree, &spec, arena, &section, &error), WD_OK);
	assert_int_equal(section.size, 14);
	wd_mime_section_partial(&section, 11, 2);
	assert_int_equal(section.size, 2);
	assert_int_equal(section.range_count, 0);
	assert_memory_equal(section.suffix, "\n\r", 2);
	wd_arena_destroy(&arena);
}

/* ---- header facts ---- */

static void test_header_facts(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	const char *msg =
		"Content-Type: Text/HTML;\r\n"
		"  Charset=\"UTF-8\"; name*0*=utf-8'en'%E2%82%AC; name*1=\" rate.txt\";\r\n"
		"\tformat=flowed; format=fixed; bad/name=1; empty=\r\n"
		"Content-Disposition: ATTACHMENT; filename=\"a \\\"b\\\"; c.txt\"\r\n"
		"Content-Transfer-Encoding:  Quoted-Printable \r\n"
		"Content-ID: <id@x>\r\n"
		"Content-Description: a\r\n  folded description\r\n"
		"\r\n"
		"body";
	struct wd_mime_tree *tree = parse_with(arena, msg, strlen(msg), NULL);
	const struct wd_mime_node *n = tree->root;
	assert_true(n->content_type.present);
	assert_string_equal(n->content_type.value, "Text/HTML");
	assert_string_equal(n->content_type.type, "text");
	assert_string_equal(n->content_type.subtype, "html");
	assert_string_equal(n->charset, "UTF-8");
	assert_int_equal(n->content_type.param_count, 4);
	assert_string_equal(n->content_type.params[0].name, "charset");
	const struct wd_mime_param *name = wd_mime_content_param(&n->content_type, "name");
	assert_non_null(name);
	assert_string_equal(name->value, "\xe2\x82\xac rate.txt");
	assert_string_equal(name->charset, "utf-8");
	assert_string_equal(name->language, "en");
	assert_string_equal(wd_mime_content_param(&n->content_type, "format")->value, "fixed");
	assert_string_equal(wd_mime_content_param(&n->content_type, "empty")->value, "");
	assert_null(wd_mime_content_param(&n->content_type, "bad/name"));
	assert_true(n->disposition.present);
	assert_string_equal(n->disposition.type, "attachment");
	assert_string_equal(wd_mime_content_param(&n->disposition, "filename")->value,
			    "a \"b\"; c.txt");
	assert_string_equal(n->transfer_encoding, "quoted-printable");
	assert_string_equal(n->content_id, "<id@x>");
	assert_string_equal(n->description, "a  folded description");
	assert_int_equal(n->field_count, 5);
	assert_int_equal(n->fields[0].name_len, 12);
	assert_memory_equal(msg + n->fields[0].name_start, "Content-Type", 12);
	/* The first field runs over its two continuation lines. */
	assert_int_equal(n->fields[0].range.end, strstr(msg, "Content-Disposition") - msg);

	/* Defaults: text/plain, or message/rfc822 inside multipart/digest. */
	msg = "Subject: x\n\nbody";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_false(tree->root->content_type.present);
	assert_string_equal(tree->root->content_type.type, "text");
	assert_string_equal(tree->root->content_type.subtype, "plain");
	assert_false(tree->root->disposition.present);
	assert_null(tree->root->transfer_encoding);
	assert_null(tree->root->charset);

	/* The last Content-Type wins; RFC 2231 beats a plain duplicate. */
	msg = "Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=plain;"
	      " boundary*=''%41%42\n\n--AB\n\nx\n--AB--\n";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_int_equal(tree->root->kind, WD_MIME_KIND_MULTIPART);
	assert_int_equal(tree->root->boundary_len, 2);
	assert_memory_equal(tree->root->boundary, "AB", 2);
	assert_int_equal(tree->root->child_count, 1);

	/* Odd names and values do not break anything. */
	msg = "Content-Type: ;;;=;a=\"unterminated; b*=x; c*0*=%zz; c*2=two; c*1*=%41\n\nx";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_string_equal(tree->root->content_type.value, "");
	assert_string_equal(tree->root->content_type.type, "");
	const struct wd_mime_param *a = wd_mime_content_param(&tree->root->content_type, "a");
	assert_non_null(a);
	assert_string_equal(a->value, "unterminated; b*=x; c*0*=%zz; c*2=two; c*1*=%41");
	wd_arena_destroy(&arena);

	arena = wd_arena_create(0);
	msg = "Content-Type: text/plain; c*0*=%zz; c*2=two; c*1*=%41\n\nx";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	const struct wd_mime_param *c = wd_mime_content_param(&tree->root->content_type, "c");
	assert_non_null(c);
	assert_string_equal(c->value, "%zzAtwo");
	wd_arena_destroy(&arena);
}

/* ---- WildDuck views: reference §3.2, rows marked [verified] ---- */

struct wd_table_row {
	const char *what;
	const char *message;
	size_t raw;
	uint64_t size;
};

static const struct wd_table_row wd_table[] = {
	{ "CRLF single-part, body of 2+ lines with trailing CRLF",
	  "Subject: axx\r\n\r\nline one\r\nline two\r\nend\r\n", 41, 41 },
	{ "same with LF-only line endings", "Subject: axx\n\nline one\nline two\nend\n", 36, 41 },
	{ "single-part, no trailing newline", "Subject: axxxxx\r\n\r\nline one\r\nno newline", 39,
	  39 },
	{ "headers + blank line, no body", "From: a@b.c\r\nTo: dx@e.f\r\n\r\n", 27, 25 },
	{ "multipart, no preamble/epilogue",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
	  "\r\nhelloxxxxxxx\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--b--\r\n",
	  140, 140 },
	{ "multipart with preamble",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\npreamblexxxxxxxxx\r\n--b\r\n"
	  "Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n",
	  111, 111 },
	{ "multipart with epilogue after --b--",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
	  "\r\nhello\r\n--b--\r\nepiloguexxxxxxxxxx\r\n",
	  112, 112 },
	{ "multipart ending in --b-- without newline",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
	  "\r\nhelloxxxxx\r\n--b--",
	  95, 97 },
	{ "nested multipart + message/rfc822",
	  "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
	  "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
	  "Content-Type: text/plain\r\n\r\nplain\r\n--b--\r\n\r\n--a\r\n"
	  "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\n"
	  "bodyxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n--a--\r\n",
	  266, 266 },
	{ "multipart with an empty text leaf",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
	  "\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecondx\r\n--b--\r\n",
	  129, 127 },
};

static void test_wildduck_size_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < WD_N_ELEMENTS(wd_table); i++) {
		const struct wd_table_row *row = &wd_table[i];
		size_t len = strlen(row->message);
		if (len != row->raw)
			fail_msg("%s: input is %zu bytes, the table says %zu", row->what, len, row->raw);
		struct wd_arena *arena = wd_arena_create(0);
		struct wd_mime_tree *tree = parse_with(arena, row->message, len, NULL);
		assert_exact(tree, row->message, len, row->what);
		uint64_t size = wd_mime_wd_get_size(tree, tree->root);
		if (size != row->size)
			fail_msg("%s: size %llu, expected %llu", row->what, (unsigned long long)size,
				 (unsigned long long)row->size);
		/* Our RFC822.SIZE is always the input length. */
		assert_int_equal(wd_mime_tree_exact_size(tree), row->raw);
		wd_arena_destroy(&arena);
	}
}

static void assert_wd_node(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			   const char *body, uint32_t line_count)
{
	struct wd_mime_wd_info info;
	wd_mime_wd_info(tree, node, &info);
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(wd_mime_wd_body(tree, node, &out), WD_OK);
	if (out.len != strlen(body) || memcmp(wd_buffer_bytes(&out), body, out.len) != 0)
		fail_msg("WildDuck body differs: %zu bytes, expected \"%s\"", out.len, body);
	assert_int_equal(info.size, strlen(body));
	assert_int_equal(info.line_count, line_count);
	wd_buffer_release(&out);
}

/* Bodies and line counts; every expected value below was also produced by
   running WildDuck's parse-mime-tree.js on the same bytes. */
static void test_wildduck_views(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);

	/* LF-only: every LF becomes CRLF; 4 pieces → lineCount 3. */
	struct wd_mime_tree *tree = parse_with(arena, wd_table[1].message,
					       strlen(wd_table[1].message), NULL);
	assert_wd_node(tree, tree->root, "line one\r\nline two\r\nend\r\n", 3);

	/* Lone CRs stay, CRCRLF keeps one CR before the CRLF. */
	const char *msg = "S: x\n\na\rb\r\r\nc\n";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_wd_node(tree, tree->root, "a\rb\r\r\nc\r\n", 3);

	/* Header only: empty body. */
	tree = parse_with(arena, wd_table[3].message, strlen(wd_table[3].message), NULL);
	assert_wd_node(tree, tree->root, "", 0);

	/* Multipart: the preamble gets an LF; the epilogue joins it with the
	   close line's line break; leaves keep their text. */
	msg = "Content-Type: multipart/mixed; boundary=b\n\npre\n--b\n\nx\n--b--\nepi";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_wd_node(tree, tree->root, "pre\r\nepi\r\n", 1);
	assert_wd_node(tree, tree->root->children[0], "x", 0);
	msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\nepi\nlogue\n";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_wd_node(tree, tree->root, "epi\r\nlogue\r\n", 2);
	msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_wd_node(tree, tree->root, "\r\n", 1);
	msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	assert_wd_node(tree, tree->root, "", 0);

	/* header[]: folds joined with CRLF whatever the original breaks were;
	   WildDuck's \s includes VT, FF and NBSP (0xA0). */
	msg = "Subject: a\n b\r\n\tc\nX: \xa0y\n\xa0z\nNo colon\n\nbody";
	tree = parse_with(arena, msg, strlen(msg), NULL);
	struct wd_mime_wd_field *fields;
	size_t count;
	assert_int_equal(wd_mime_wd_header(tree, tree->root, arena, &fields, &count), WD_OK);
	assert_int_equal(count, 3);
	assert_int_equal(fields[0].len, 18);
	assert_memory_equal(fields[0].data, "Subject: a\r\n b\r\n\tc", 18);
	assert_int_equal(fields[1].len, 9);
	assert_memory_equal(fields[1].data, "X: \xa0y\r\n\xa0z", 9);
	assert_int_equal(fields[2].len, 8);
	assert_memory_equal(fields[2].data, "No colon", 8);

	/* A message/rfc822 part keeps its body and has a message view too. */
	tree = parse_with(arena, section_message, sizeof(section_message) - 1, NULL);
	const struct wd_mime_node *rfc822 = tree->root->children[2];
	assert_wd_node(tree, rfc822, "Subject: Inner\r\nFrom: Bob <b@example.com>\r\n\r\nInner body",
		       3);
	assert_wd_node(tree, rfc822->message, "Inner body", 0);
	assert_int_equal(wd_mime_wd_get_size(tree, rfc822->message),
			 strlen("Subject: Inner\r\nFrom: Bob <b@example.com>\r\n\r\nInner body"));
	/* Preamble + epilogue glued: "preamble" CRLF "epilogue" CRLF "". */
	assert_wd_node(tree, tree->root, "preamble\r\nepilogue\r\n", 2);
	/* getSize counts the CRLF after "--YY--" twice: once ending the close
	   delimiter, once before "--XX". */
	assert_int_equal(wd_mime_wd_get_size(tree, tree->root), sizeof(section_message) - 1 + 2);
	wd_arena_destroy(&arena);
}

/* ---- limits ---- */

static void test_limit_depth(void **state)
{
	(void)state;
	const int levels = 10000;
	struct wd_buffer msg = WD_BUFFER_INIT;
	for (int i = 0; i < levels; i++)
		wd_buffer_printf(&msg, "Content-Type: multipart/mixed; boundary=\"d%d\"\r\n\r\n--d%d\r\n",
				 i, i);
	wd_buffer_append_str(&msg, "\r\nleaf\r\n");
	for (int i = levels - 1; i >= 0; i--)
		wd_buffer_printf(&msg, "--d%d--\r\n", i);

	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, NULL);
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "depth 10000");
	assert_true(tree->depth_capped);
	assert_int_equal(tree->part_count, 65);
	const struct wd_mime_node *node = tree->root;
	while (node->child_count > 0)
		node = node->children[0];
	assert_int_equal(node->depth, 64);
	assert_true(node->opaque);
	assert_int_equal(node->kind, WD_MIME_KIND_LEAF);
	/* A deep tree still answers sections and WildDuck views. */
	assert_section(tree, arena, "1.1.1.MIME",
		       "Content-Type: multipart/mixed; boundary=\"d3\"\r\n\r\n");
	(void)wd_mime_wd_get_size(tree, tree->root);

	/* An absurd depth limit is clamped, so recursion stays bounded. */
	struct wd_mime_limits limits;
	wd_mime_limits_init(&limits);
	limits.max_depth = 1000000;
	tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, &limits);
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "depth clamped");
	assert_int_equal(tree->limits.max_depth, WD_MIME_MAX_DEPTH_CAP);
	assert_int_equal(tree->part_count, WD_MIME_MAX_DEPTH_CAP + 1);

	/* Depth 0: the root itself is opaque. */
	limits.max_depth = 0;
	tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, &limits);
	assert_shape(tree, "O", "depth 0");
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "depth 0");

	/* Nested message/rfc822 counts as depth too. */
	wd_buffer_clear(&msg);
	for (int i = 0; i < 200; i++)
		wd_buffer_append_str(&msg, "Content-Type: message/rfc822\r\n\r\n");
	wd_buffer_append_str(&msg, "Subject: bottom\r\n\r\nx");
	tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, NULL);
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "rfc822 depth");
	assert_int_equal(tree->part_count, 65);
	assert_true(tree->depth_capped);
	wd_arena_destroy(&arena);
	wd_buffer_release(&msg);
}

static void test_limit_parts(void **state)
{
	(void)state;
	struct wd_buffer msg = WD_BUFFER_INIT;
	wd_buffer_append_str(&msg, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < 100000; i++)
		wd_buffer_printf(&msg, "--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n", i);
	wd_buffer_append_str(&msg, "--p--\r\n");

	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, NULL);
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "100000 parts");
	assert_true(tree->parts_capped);
	assert_int_equal(tree->part_count, 10000);
	assert_int_equal(tree->root->child_count, 9999);
	/* The rest stays in the last part's body, close delimiter included. */
	const struct wd_mime_node *last = tree->root->children[9998];
	assert_int_equal(last->body.end, msg.len);
	assert_false(tree->root->has_close);
	assert_section(tree, arena, "9999.MIME", "Content-Type: text/plain\r\n\r\n");
	assert_section_error(tree, arena, "10000");

	/* A multipart that gets no part at all stays whole (opaque). */
	struct wd_mime_limits limits;
	wd_mime_limits_init(&limits);
	limits.max_parts = 1;
	tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, &limits);
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "1 part");
	assert_shape(tree, "O", "1 part");
	limits.max_parts = 0;
	tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, &limits);
	assert_int_equal(tree->part_count, 1);
	wd_arena_destroy(&arena);
	wd_buffer_release(&msg);
}

static void test_limit_fields(void **state)
{
	(void)state;
	struct wd_buffer msg = WD_BUFFER_INIT;
	for (int i = 0; i < 30000; i++)
		wd_buffer_printf(&msg, "X-F%d: %d\r\n", i, i);
	wd_buffer_append_str(&msg, "Content-Type: multipart/mixed; boundary=f\r\n"
				   "Subject: late\r\n\r\n--f\r\nA: 1\r\nB: 2\r\n\r\nx\r\n--f--\r\n");
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, NULL);
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "fields");
	assert_int_equal(tree->root->field_count, 10000);
	assert_true(tree->root->fields_truncated);
	assert_false(tree->fields_capped);
	/* The header still ends at its blank line and Content-Type is read. */
	assert_shape(tree, "M(L)", "fields");
	assert_section(tree, arena, "HEADER.FIELDS (X-F9999 Subject)", "X-F9999: 9999\r\n\r\n");

	/* The per-tree limit. */
	struct wd_mime_limits limits;
	wd_mime_limits_init(&limits);
	limits.max_total_fields = 10001;
	tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, &limits);
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "total fields");
	assert_int_equal(tree->field_count, 10001);
	assert_int_equal(tree->root->children[0]->field_count, 1);
	assert_true(tree->fields_capped);
	wd_arena_destroy(&arena);
	wd_buffer_release(&msg);
}

/* Many parameters: memory and time stay linear in the field's size. */
static void test_many_params(void **state)
{
	(void)state;
	struct wd_buffer msg = WD_BUFFER_INIT;
	wd_buffer_append_str(&msg, "Content-Type: multipart/mixed");
	for (int i = 0; i < 100000; i++)
		wd_buffer_printf(&msg, ";\r\n p%d*%d*=\"v\\\"%d\"", i % 7, i % 1000, i);
	wd_buffer_append_str(&msg, "; boundary=\"q\"\r\n\r\n--q\r\n\r\nx\r\n--q--\r\n");
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, NULL);
	assert_exact(tree, wd_buffer_bytes(&msg), msg.len, "many params");
	assert_shape(tree, "M(L)", "many params");
	assert_int_equal(tree->root->content_type.param_count, 8);
	print_message("many params: %zu bytes of header, %zu bytes of arena\n", msg.len,
		      wd_arena_used(arena));
	assert_true(wd_arena_used(arena) < 8 * msg.len);
	wd_arena_destroy(&arena);
	wd_buffer_release(&msg);
}

static void test_too_large(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree = NULL;
	const char *error = NULL;
	/* Never read: the size is refused first. */
	assert_int_equal(wd_mime_tree_parse(arena, (const uint8_t *)"", WD_MIME_MAX_MESSAGE_SIZE + 1,
					    NULL, &tree, &error),
			 WD_ERROR);
	assert_null(tree);
	assert_non_null(error);
	tree = parse_with(arena, NULL, 0, NULL);
	assert_exact(tree, "", 0, "NULL input");
	wd_arena_destroy(&arena);
}

/* ---- performance: linear, measured, not asserted ---- */

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double time_parses(const struct wd_buffer *msg, int rounds, const char *name,
			  const char *shape)
{
	double start = now_seconds();
	for (int i = 0; i < rounds; i++) {
		struct wd_arena *arena = wd_arena_create(0);
		struct wd_mime_tree *tree = parse_with(arena, wd_buffer_bytes(msg), msg->len, NULL);
		if (i == 0) {
			assert_shape(tree, shape, name);
			assert_exact(tree, wd_buffer_bytes(msg), msg->len, name);
		}
		wd_arena_destroy(&arena);
	}
	double per_parse = (now_seconds() - start) / rounds;
	print_message("%s: %zu bytes, %.2f ms per parse (%d rounds, first also checked)\n", name,
		      msg->len, per_parse * 1e3, rounds);
	return per_parse;
}

static void test_performance(void **state)
{
	(void)state;
	/* 20 MB base64 attachment in a multipart. */
	struct wd_buffer msg = WD_BUFFER_INIT;
	wd_buffer_append_str(&msg, "Subject: big\r\nContent-Type: multipart/mixed; boundary=big\r\n\r\n"
				   "--big\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--big\r\n"
				   "Content-Type: application/octet-stream\r\n"
				   "Content-Transfer-Encoding: base64\r\n\r\n");
	char line[79];
	for (int i = 0; i < 76; i++)
		line[i] = (char)('A' + i % 26);
	memcpy(line + 76, "\r\n", 3);
	while (msg.len < 20 * 1000 * 1000)
		wd_buffer_append(&msg, line, 78);
	wd_buffer_append_str(&msg, "--big--\r\n");
	double big = time_parses(&msg, 20, "20 MB attachment", "M(L,L)");

	/* Half the size: the time must halve too (linear). */
	msg.len = msg.len / 2;
	wd_buffer_append_str(&msg, "\r\n--big--\r\n");
	double half = time_parses(&msg, 20, "10 MB attachment", "M(L,L)");
	print_message("20 MB / 10 MB parse time ratio: %.2f\n", half > 0 ? big / half : 0.0);

	/* Adversarial line shapes: only lone CRs, and near-miss delimiter lines. */
	wd_buffer_clear(&msg);
	wd_buffer_append_str(&msg, "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n");
	while (msg.len < 20 * 1000 * 1000)
		wd_buffer_append(&msg, "\r\r\r\r\r\r\r\rx", 9);
	time_parses(&msg, 3, "20 MB of lone CRs", "M(L)");
	wd_buffer_clear(&msg);
	wd_buffer_append_str(&msg, "Content-Type: multipart/mixed; boundary=abcdefgh\r\n\r\n--abcdefgh\r\n\r\n");
	while (msg.len < 20 * 1000 * 1000)
		wd_buffer_append_str(&msg, "--abcdefgh-\r\n--abcdefgX\r\n");
	time_parses(&msg, 3, "20 MB of near-miss delimiters", "M(L)");

	/* 1000 parts. */
	wd_buffer_clear(&msg);
	wd_buffer_append_str(&msg, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < 1000; i++)
		wd_buffer_printf(&msg, "--p\r\nContent-Type: text/plain; charset=utf-8\r\n"
				       "Content-Transfer-Encoding: 7bit\r\n\r\nThis is part %d.\r\n", i);
	wd_buffer_append_str(&msg, "--p--\r\n");
	double start = now_seconds();
	for (int i = 0; i < 100; i++) {
		struct wd_arena *arena = wd_arena_create(0);
		struct wd_mime_tree *tree = parse_with(arena, wd_buffer_bytes(&msg), msg.len, NULL);
		assert_int_equal(tree->root->child_count, 1000);
		wd_arena_destroy(&arena);
	}
	print_message("1000 parts: %zu bytes, %.3f ms per parse\n", msg.len,
		      (now_seconds() - start) / 100 * 1e3);
	wd_buffer_release(&msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_cases_rebuild),
		cmocka_unit_test(test_edge_case_ranges),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_random_messages),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_sections_single_part),
		cmocka_unit_test(test_section_partial),
		cmocka_unit_test(test_header_facts),
		cmocka_unit_test(test_wildduck_size_table),
		cmocka_unit_test(test_wildduck_views),
		cmocka_unit_test(test_limit_depth),
		cmocka_unit_test(test_limit_parts),
		cmocka_unit_test(test_limit_fields),
		cmocka_unit_test(test_many_params),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_performance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
