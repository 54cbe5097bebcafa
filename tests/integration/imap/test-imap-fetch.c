/* Integration tests (suite imap): FETCH responses rendered from stored
 * messages (server/imap/imap-fetch.h) against the real stack. Every item
 * is checked against the exact bytes a client receives: simple items,
 * ENVELOPE/BODY/BODYSTRUCTURE from the cache and from the fallback parse,
 * sections, partials in and past the end, BINARY on quoted-printable and
 * base64 parts (literal8 for NULs, UNKNOWN-CTE), BINARY.SIZE, \Seen set by
 * non-PEEK items, CHANGEDSINCE, batches, expunged messages, and a 5 MB body
 * pulled in small budget steps with memory bounded by a storage chunk. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-fetch.h"
#include "imap-test-stack.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-imap-structure.h"
#include "wd-mime-tree.h"
#include "wd-store-attachment.h"

#define IDATE1 1767607200000LL /* 2026-01-05T10:00:00Z */

static const char m1[] = "From: Alice <alice@example.com>\r\n"
			 "To: Bob <bob@example.org>\r\n"
			 "Subject: Hello\r\n"
			 "Date: Mon, 5 Jan 2026 10:00:00 +0000\r\n"
			 "Message-ID: <m1@example.com>\r\n"
			 "\r\n"
			 "Hello world\r\n";

static const char m2[] = "From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.com>\r\n"
			 "To: a@example.com\r\n"
			 "Subject: Parts\r\n"
			 "MIME-Version: 1.0\r\n"
			 "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
			 "\r\n"
			 "--b1\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n"
			 "Content-Transfer-Encoding: quoted-printable\r\n"
			 "\r\n"
			 "Caf=C3=A9 soft=\r\n"
			 "break  \r\n"
			 "end=3D\r\n"
			 "--b1\r\n"
			 "Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
			 "Content-Transfer-Encoding: base64\r\n"
			 "\r\n"
			 "AAECAwRoZWxsbw==\r\n"
			 "--b1\r\n"
			 "Content-Type: message/rfc822\r\n"
			 "\r\n"
			 "Subject: Inner\r\n"
			 "From: inner@example.com\r\n"
			 "\r\n"
			 "inner body\r\n"
			 "--b1\r\n"
			 "Content-Type: text/plain\r\n"
			 "Content-Transfer-Encoding: x-uuencode\r\n"
			 "\r\n"
			 "begin 644 x\r\n"
			 "--b1--\r\n";

static const char m3[] = "From: u@example.com\r\n"
			 "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n"
			 "\r\n"
			 "x\r\n";

static uint32_t uid1, uid2, uid3, uid_big;
static uint8_t *big_raw, *big_data;
static size_t big_raw_len, big_data_len;

/* Parse "t [UID ]FETCH 1 <items>" with the real parser. */
static struct wd_imap_command *parse_fetch(const char *items, bool uid,
					   struct wd_imap_fetch_args *args)
{
	char line[1024];
	snprintf(line, sizeof(line), "t %sFETCH 1 %s\r\n", uid ? "UID " : "", items);
	struct wd_imap_command *cmd = imap_parse_command(line);
	assert_non_null(cmd);
	const char *error = NULL;
	if (wd_imap_fetch_args_parse(cmd->arena, cmd->args + 1, cmd->arg_count - 1, uid, args,
				     &error) < 0)
		fail_msg("%s: %s", items, error);
	return cmd;
}

/* Run a FETCH over `spans` to completion in steps of `budget`. */
static int run_fetch(const char *items, bool uid, unsigned flags,
		     const struct wd_imap_fetch_span *spans, size_t span_count, size_t batch,
		     struct wd_buffer *out, char **error_r, uint64_t *missing_r)
{
	struct wd_imap_fetch_args args;
	struct wd_imap_command *cmd = parse_fetch(items, uid, &args);
	struct wd_imap_fetch_request req = {
		.store = store, .mailbox = mailbox, .args = &args, .flags = flags,
		.spans = spans, .span_count = span_count, .batch_size = batch,
		.session_id = "testsession",
	};
	struct wd_imap_fetch_run *run = wd_imap_fetch_run_create(&req);
	assert_non_null(run);
	int ret;
	*error_r = NULL;
	while ((ret = wd_imap_fetch_run_step(run, out, 65536, error_r)) == WD_AGAIN)
		;
	if (missing_r != NULL)
		*missing_r = wd_imap_fetch_run_missing(run);
	wd_imap_fetch_run_destroy(&run);
	wd_imap_command_destroy(&cmd);
	return ret;
}

/* FETCH of one message (UID `uid` at sequence number `seq`); returns the
   response as a NUL-terminated malloc'd string, its length in *len_r. */
static char *fetch1(uint32_t uid, uint32_t seq, const char *items, unsigned flags, size_t *len_r)
{
	struct wd_imap_fetch_span span = { uid, uid, seq };
	struct wd_buffer out = WD_BUFFER_INIT;
	char *error;
	if (run_fetch(items, false, flags, &span, 1, 0, &out, &error, NULL) != WD_OK)
		fail_msg("FETCH %s: %s", items, error);
	size_t len = 0;
	char *text = (char *)wd_buffer_steal(&out, &len);
	if (len_r != NULL)
		*len_r = len;
	return text != NULL ? text : strdup("");
}

static void expect(uint32_t uid, uint32_t seq, const char *items, unsigned flags,
		   const char *expected)
{
	char *got = fetch1(uid, seq, items, flags, NULL);
	if (strcmp(got, expected) != 0)
		fail_msg("FETCH %s\n got: [%s]\nwant: [%s]", items, got, expected);
	free(got);
}

static void expect_bytes(uint32_t uid, uint32_t seq, const char *items, const char *expected,
			 size_t expected_len)
{
	size_t len;
	char *got = fetch1(uid, seq, items, 0, &len);
	if (len != expected_len || memcmp(got, expected, len) != 0)
		fail_msg("FETCH %s: %zu bytes [%s], want %zu", items, len, got, expected_len);
	free(got);
}

/* ---- simple items ---- */

static void test_simple_items(void **state)
{
	(void)state;
	char want[512];
	snprintf(want, sizeof(want),
		 "* 1 FETCH (FLAGS () INTERNALDATE \"05-Jan-2026 10:00:00 +0000\" "
		 "RFC822.SIZE %zu)\r\n", sizeof(m1) - 1);
	expect(uid1, 1, "FAST", 0, want);
	expect(uid2, 2, "(FLAGS UID)", 0, "* 2 FETCH (UID 2 FLAGS (\\Flagged $Label1))\r\n");
	/* UID FETCH always answers UID */
	struct wd_imap_fetch_span span = { uid2, uid2, 7 };
	struct wd_buffer out = WD_BUFFER_INIT;
	char *error;
	assert_int_equal(run_fetch("FLAGS", true, 0, &span, 1, 0, &out, &error, NULL), WD_OK);
	assert_int_equal(out.len, strlen("* 7 FETCH (UID 2 FLAGS (\\Flagged $Label1))\r\n"));
	assert_memory_equal(wd_buffer_bytes(&out), "* 7 FETCH (UID 2 FLAGS (\\Flagged $Label1))\r\n",
			    out.len);
	wd_buffer_release(&out);

	/* MODSEQ: asked for, or with FLAGS once CONDSTORE is enabled */
	char *got = fetch1(uid1, 1, "(MODSEQ)", 0, NULL);
	assert_string_equal(got, "* 1 FETCH (MODSEQ (1))\r\n");
	free(got);
	got = fetch1(uid1, 1, "(FLAGS)", WD_IMAP_FETCH_F_CONDSTORE, NULL);
	assert_string_equal(got, "* 1 FETCH (FLAGS () MODSEQ (1))\r\n");
	free(got);

	/* EMAILID is the root _id (kept by COPY/MOVE), THREADID the thread */
	got = fetch1(uid1, 1, "(EMAILID THREADID)", 0, NULL);
	assert_true(strncmp(got, "* 1 FETCH (EMAILID (M", 21) == 0);
	assert_non_null(strstr(got, ") THREADID (T"));
	assert_int_equal(strlen(got), strlen("* 1 FETCH (EMAILID (M) THREADID (T))\r\n") + 48);
	free(got);
}

static void test_internaldate_format(void **state)
{
	(void)state;
	char buf[40];
	wd_imap_fetch_internaldate(IDATE1, buf, sizeof(buf));
	assert_string_equal(buf, "\"05-Jan-2026 10:00:00 +0000\"");
	wd_imap_fetch_internaldate(0, buf, sizeof(buf));
	assert_string_equal(buf, "\"01-Jan-1970 00:00:00 +0000\"");
	wd_imap_fetch_internaldate(951782400000LL + 86399000LL, buf, sizeof(buf));
	assert_string_equal(buf, "\"29-Feb-2000 23:59:59 +0000\"");
}

/* ---- structure items ---- */

static const char m1_envelope[] =
	"(\"Mon, 5 Jan 2026 10:00:00 +0000\" \"Hello\" ((\"Alice\" NIL \"alice\" \"example.com\")) "
	"((\"Alice\" NIL \"alice\" \"example.com\")) ((\"Alice\" NIL \"alice\" \"example.com\")) "
	"((\"Bob\" NIL \"bob\" \"example.org\")) NIL NIL NIL \"<m1@example.com>\")";

/* What wd_imap_envelope/bodystructure give for `raw`. */
static char *computed(const char *raw, size_t len, int form, unsigned flags)
{
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree;
	const char *error;
	assert_int_equal(wd_mime_tree_parse(arena, (const uint8_t *)raw, len, NULL, &tree, &error),
			 WD_OK);
	struct wd_buffer out = WD_BUFFER_INIT;
	if (form == 0)
		wd_imap_envelope(tree, tree->root, flags, &out);
	else
		wd_imap_bodystructure(tree, tree->root, form == 1, flags, &out);
	wd_buffer_append(&out, "", 1);
	size_t n;
	char *text = (char *)wd_buffer_steal(&out, &n);
	wd_arena_destroy(&arena);
	return text;
}

static void check_structures(uint32_t uid, const char *raw, size_t len, unsigned flags)
{
	char *env = computed(raw, len, 0, flags), *bs = computed(raw, len, 1, flags),
	     *body = computed(raw, len, 2, flags);
	size_t size = strlen(env) + strlen(bs) + strlen(body) + 128;
	char *want = malloc(size);
	snprintf(want, size, "* 3 FETCH (ENVELOPE %s BODYSTRUCTURE %s BODY %s)\r\n", env, bs, body);
	expect(uid, 3, "(ENVELOPE BODYSTRUCTURE BODY)", flags, want);
	free(want);
	free(env);
	free(bs);
	free(body);
}

static void test_structure_items(void **state)
{
	(void)state;
	char want[1024];
	snprintf(want, sizeof(want), "* 1 FETCH (ENVELOPE %s)\r\n", m1_envelope);
	expect(uid1, 1, "(ENVELOPE)", 0, want);
	expect(uid1, 1, "(BODYSTRUCTURE)", 0,
	       "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL "
	       "\"7BIT\" 13 1 NIL NIL NIL NIL))\r\n");
	expect(uid1, 1, "(BODY)", 0,
	       "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 13 "
	       "1))\r\n");
	check_structures(uid2, m2, sizeof(m2) - 1, 0);
	/* UTF8=ACCEPT: the 8-bit subject is quoted instead of a literal */
	char *got = fetch1(uid3, 3, "(ENVELOPE)", 0, NULL);
	assert_non_null(strstr(got, "{7}\r\nGr\xc3\xbc\xc3\x9f" "e"));
	free(got);
	got = fetch1(uid3, 3, "(ENVELOPE)", WD_IMAP_FETCH_F_UTF8, NULL);
	assert_non_null(strstr(got, " \"Gr\xc3\xbc\xc3\x9f" "e\" "));
	free(got);
	check_structures(uid3, m3, sizeof(m3) - 1, WD_IMAP_FETCH_F_UTF8);
}

/* Documents WildDuck wrote have no wdc.imap: computed from the message. */
static void test_structure_fallback(void **state)
{
	(void)state;
	bson_t *filter = BCON_NEW("mailbox", BCON_OID(&mailbox), "uid", "{", "$in", "[",
				  BCON_INT32((int32_t)uid2), BCON_INT32((int32_t)uid3), "]", "}");
	bson_t *unset = BCON_NEW("$unset", "{", "wdc.imap", BCON_UTF8(""), "}");
	assert_true(test_stack_update(filter, unset));
	check_structures(uid2, m2, sizeof(m2) - 1, 0);
	check_structures(uid3, m3, sizeof(m3) - 1, 0);
	check_structures(uid3, m3, sizeof(m3) - 1, WD_IMAP_FETCH_F_UTF8);
	bson_destroy(filter);
	bson_destroy(unset);
}

/* ---- sections ---- */

static void test_sections(void **state)
{
	(void)state;
	char want[1024];
	snprintf(want, sizeof(want), "* 1 FETCH (BODY[] {%zu}\r\n%s)\r\n", sizeof(m1) - 1, m1);
	expect(uid1, 1, "BODY.PEEK[]", 0, want);
	expect(uid1, 1, "BODY.PEEK[HEADER.FIELDS (SUBJECT)]", 0,
	       "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: Hello\r\n\r\n)\r\n");
	expect(uid1, 1, "BODY.PEEK[HEADER.FIELDS.NOT (From To Date Message-ID)]", 0,
	       "* 1 FETCH (BODY[HEADER.FIELDS.NOT (From To Date Message-ID)] {18}\r\n"
	       "Subject: Hello\r\n\r\n)\r\n");
	expect(uid1, 1, "BODY.PEEK[TEXT]", 0, "* 1 FETCH (BODY[TEXT] {13}\r\nHello world\r\n)\r\n");
	expect(uid1, 1, "BODY.PEEK[1]", 0, "* 1 FETCH (BODY[1] {13}\r\nHello world\r\n)\r\n");
	/* partials: the answer names only the origin octet */
	expect(uid1, 1, "BODY.PEEK[]<0.10>", 0, "* 1 FETCH (BODY[]<0> {10}\r\nFrom: Alic)\r\n");
	expect(uid1, 1, "BODY.PEEK[TEXT]<6.100>", 0, "* 1 FETCH (BODY[TEXT]<6> {7}\r\nworld\r\n)\r\n");
	expect(uid1, 1, "BODY.PEEK[]<10000.10>", 0, "* 1 FETCH (BODY[]<10000> \"\")\r\n");
	/* a part that does not exist is empty */
	expect(uid1, 1, "BODY.PEEK[5]", 0, "* 1 FETCH (BODY[5] \"\")\r\n");
	/* RFC822 names */
	snprintf(want, sizeof(want), "* 1 FETCH (RFC822.HEADER {%zu}\r\n%.*s)\r\n",
		 sizeof(m1) - 1 - 13, (int)(sizeof(m1) - 1 - 13), m1);
	expect(uid1, 1, "RFC822.HEADER", 0, want);
	snprintf(want, sizeof(want), "* 1 FETCH (RFC822.SIZE %zu RFC822 {%zu}\r\n%s)\r\n",
		 sizeof(m1) - 1, sizeof(m1) - 1, m1);
	expect(uid1, 1, "(RFC822.SIZE RFC822)", WD_IMAP_FETCH_F_READONLY, want);

	expect(uid2, 2, "BODY.PEEK[1.MIME]", 0,
	       "* 2 FETCH (BODY[1.MIME] {88}\r\nContent-Type: text/plain; charset=utf-8\r\n"
	       "Content-Transfer-Encoding: quoted-printable\r\n\r\n)\r\n");
	expect(uid2, 2, "BODY.PEEK[2]", 0, "* 2 FETCH (BODY[2] {16}\r\nAAECAwRoZWxsbw==)\r\n");
	expect(uid2, 2, "(BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT])", 0,
	       "* 2 FETCH (BODY[3.HEADER] {43}\r\nSubject: Inner\r\nFrom: inner@example.com\r\n\r\n"
	       " BODY[3.TEXT] {10}\r\ninner body)\r\n");
	expect(uid2, 2, "(UID BODY.PEEK[3.HEADER.FIELDS (From)]<6.5>)", 0,
	       "* 2 FETCH (UID 2 BODY[3.HEADER.FIELDS (From)]<6> {5}\r\ninner)\r\n");
}

/* ---- BINARY ---- */

static void test_binary(void **state)
{
	(void)state;
	static const char qp[] = "* 2 FETCH (BINARY[1] {21}\r\nCaf\xc3\xa9 softbreak\r\nend=)\r\n";
	expect_bytes(uid2, 2, "BINARY.PEEK[1]", qp, sizeof(qp) - 1);
	expect(uid2, 2, "(BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[3])", 0,
	       "* 2 FETCH (BINARY.SIZE[1] 21 BINARY.SIZE[2] 10 BINARY.SIZE[3] 53)\r\n");
	/* a NUL in the decoded data needs literal8 */
	static const char b64[] = "* 2 FETCH (BINARY[2] ~{10}\r\n\0\1\2\3\4hello)\r\n";
	expect_bytes(uid2, 2, "BINARY.PEEK[2]", b64, sizeof(b64) - 1);
	expect(uid2, 2, "BINARY.PEEK[2]<5.3>", 0, "* 2 FETCH (BINARY[2]<5> {3}\r\nhel)\r\n");
	expect(uid2, 2, "BINARY.PEEK[1]<19.10>", 0, "* 2 FETCH (BINARY[1]<19> {2}\r\nd=)\r\n");
	expect(uid2, 2, "BINARY.PEEK[3]<0.7>", 0, "* 2 FETCH (BINARY[3]<0> {7}\r\nSubject)\r\n");
	/* single-part message: part 1 is the body, encoded by the top header */
	expect(uid1, 1, "(BINARY.PEEK[1] BINARY.SIZE[1])", 0,
	       "* 1 FETCH (BINARY[1] {13}\r\nHello world\r\n BINARY.SIZE[1] 13)\r\n");

	/* unknown encoding: NO [UNKNOWN-CTE], nothing written for the message */
	struct wd_imap_fetch_span span = { uid2, uid2, 2 };
	struct wd_buffer out = WD_BUFFER_INIT;
	char *error;
	assert_int_equal(run_fetch("(FLAGS BINARY.PEEK[4])", false, 0, &span, 1, 0, &out, &error,
				   NULL),
			 WD_ERROR);
	assert_non_null(error);
	assert_true(strncmp(error, "[UNKNOWN-CTE] ", 14) == 0);
	assert_int_equal(out.len, 0);
	free(error);
	wd_buffer_release(&out);
}

/* ---- \Seen ---- */

static bool has_seen(uint32_t uid)
{
	char *got = fetch1(uid, 1, "(FLAGS)", WD_IMAP_FETCH_F_READONLY, NULL);
	bool seen = strstr(got, "\\Seen") != NULL;
	free(got);
	return seen;
}

static void test_seen(void **state)
{
	(void)state;
	/* read-only: nothing changes, no FLAGS */
	expect(uid3, 3, "BODY[TEXT]", WD_IMAP_FETCH_F_READONLY,
	       "* 3 FETCH (BODY[TEXT] {3}\r\nx\r\n)\r\n");
	assert_false(has_seen(uid3));
	/* read-write: \Seen is set and FLAGS sent (MODSEQ with CONDSTORE) */
	char *got = fetch1(uid3, 3, "BODY[TEXT]", WD_IMAP_FETCH_F_CONDSTORE, NULL);
	assert_true(strncmp(got, "* 3 FETCH (FLAGS (\\Seen) MODSEQ (", 33) == 0);
	assert_non_null(strstr(got, ") BODY[TEXT] {3}\r\nx\r\n)\r\n"));
	free(got);
	assert_true(has_seen(uid3));
	/* already seen: no FLAGS */
	expect(uid3, 3, "RFC822.TEXT", 0, "* 3 FETCH (RFC822.TEXT {3}\r\nx\r\n)\r\n");
}

/* ---- several messages ---- */

static void test_batches(void **state)
{
	(void)state;
	/* a view with a gap: UIDs 1-3 are sequence 1-3, the big one 4 */
	struct wd_imap_fetch_span spans[] = { { 1, 3, 1 }, { uid_big, uid_big, 4 } };
	struct wd_buffer out = WD_BUFFER_INIT;
	char *error;
	uint64_t missing;
	for (size_t batch = 1; batch <= 3; batch++) {
		wd_buffer_clear(&out);
		assert_int_equal(run_fetch("(UID RFC822.SIZE)", false, 0, spans, 2, batch, &out,
					   &error, &missing),
				 WD_OK);
		char want[512];
		snprintf(want, sizeof(want),
			 "* 1 FETCH (UID 1 RFC822.SIZE %zu)\r\n* 2 FETCH (UID 2 RFC822.SIZE %zu)\r\n"
			 "* 3 FETCH (UID 3 RFC822.SIZE %zu)\r\n* 4 FETCH (UID %u RFC822.SIZE %zu)\r\n",
			 sizeof(m1) - 1, sizeof(m2) - 1, sizeof(m3) - 1, uid_big, big_raw_len);
		assert_int_equal(out.len, strlen(want));
		assert_memory_equal(wd_buffer_bytes(&out), want, out.len);
		assert_int_equal(missing, 0);
	}
	/* UIDs the view has but the database lost (expunged elsewhere) */
	struct wd_imap_fetch_span gone[] = { { 2, 2, 2 }, { 900, 901, 5 } };
	wd_buffer_clear(&out);
	assert_int_equal(run_fetch("UID", false, 0, gone, 2, 0, &out, &error, &missing), WD_OK);
	assert_int_equal(missing, 2);
	assert_int_equal(out.len, strlen("* 2 FETCH (UID 2)\r\n"));
	/* more ranges than the query lists: filtered after loading */
	struct wd_imap_fetch_span many[100];
	for (uint32_t i = 0; i < 100; i++)
		many[i] = (struct wd_imap_fetch_span){ 2 * i + 1, 2 * i + 1, i + 1 };
	wd_buffer_clear(&out);
	assert_int_equal(run_fetch("UID", true, 0, many, 100, 2, &out, &error, &missing), WD_OK);
	assert_int_equal(out.len, strlen("* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 3)\r\n"));
	assert_memory_equal(wd_buffer_bytes(&out), "* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 3)\r\n",
			    out.len);
	wd_buffer_release(&out);
}

static void test_changedsince(void **state)
{
	(void)state;
	struct wd_imap_fetch_span spans[] = { { 1, uid_big, 1 } };
	struct wd_buffer out = WD_BUFFER_INIT;
	char *error;
	/* modseq 1..4 from the adds; STORE gave 2 a higher one */
	assert_int_equal(run_fetch("(FLAGS) (CHANGEDSINCE 3)", true, 0, spans, 1, 0, &out, &error,
				   NULL),
			 WD_OK);
	wd_buffer_append(&out, "", 1);
	const char *text = (const char *)wd_buffer_bytes(&out);
	assert_non_null(strstr(text, "* 2 FETCH (UID 2 FLAGS (\\Flagged $Label1) MODSEQ ("));
	assert_null(strstr(text, "(UID 1 "));
	assert_non_null(strstr(text, "(UID 4 "));
	wd_buffer_release(&out);
}

/* ---- a big message in small steps ---- */

static void test_big_streamed(void **state)
{
	(void)state;
	struct wd_imap_fetch_args args;
	struct wd_imap_command *cmd = parse_fetch("(BODY.PEEK[] BINARY.PEEK[2])", false, &args);
	struct wd_imap_fetch_span span = { uid_big, uid_big, 4 };
	struct wd_imap_fetch_request req = {
		.store = store, .mailbox = mailbox, .args = &args, .spans = &span, .span_count = 1,
	};
	struct wd_imap_fetch_run *run = wd_imap_fetch_run_create(&req);
	struct wd_buffer out = WD_BUFFER_INIT, all = WD_BUFFER_INIT;
	char *error = NULL;
	int ret;
	size_t steps = 0, peak = 0;
	do {
		ret = wd_imap_fetch_run_step(run, &out, 8192, &error);
		assert_int_not_equal(ret, WD_ERROR);
		if (out.len > peak)
			peak = out.len;
		wd_buffer_append(&all, wd_buffer_bytes(&out), out.len);
		wd_buffer_clear(&out); /* the connection drained */
		steps++;
	} while (ret == WD_AGAIN);
	wd_imap_fetch_run_destroy(&run);
	wd_imap_command_destroy(&cmd);
	/* output per step: the budget plus at most one chunk */
	assert_true(peak <= 8192 + WD_ATTACHMENT_CHUNK_SIZE);
	assert_true(steps > 20);

	char head[64];
	int n = snprintf(head, sizeof(head), "* 4 FETCH (BODY[] {%zu}\r\n", big_raw_len);
	const uint8_t *p = wd_buffer_bytes(&all);
	assert_memory_equal(p, head, (size_t)n);
	p += n;
	assert_true(memcmp(p, big_raw, big_raw_len) == 0);
	p += big_raw_len;
	n = snprintf(head, sizeof(head), " BINARY[2] ~{%zu}\r\n", big_data_len);
	assert_memory_equal(p, head, (size_t)n);
	p += n;
	assert_true(memcmp(p, big_data, big_data_len) == 0);
	p += big_data_len;
	assert_memory_equal(p, ")\r\n", 3);
	assert_int_equal((size_t)(p + 3 - wd_buffer_bytes(&all)), all.len);
	wd_buffer_release(&all);
	wd_buffer_release(&out);
}

/* ---- a big mailbox: one query, streamed in batches ---- */

static void test_many_messages(void **state)
{
	(void)state;
	/* 3000 minimal documents inserted directly (adding them one by one
	   through the store would take most of the time budget) */
	enum { N = 3000 };
	bson_oid_t box;
	bson_oid_init(&box, NULL);
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *docs[N];
	for (uint32_t i = 0; i < N; i++) {
		bson_oid_t id;
		bson_oid_init(&id, NULL);
		docs[i] = BCON_NEW("_id", BCON_OID(&id), "mailbox", BCON_OID(&box), "uid",
				   BCON_INT32((int32_t)(N - i)), "modseq", BCON_INT32((int32_t)(N - i)),
				   "flags", "[", BCON_UTF8((N - i) % 2 == 0 ? "\\Seen" : "x"), "]");
	}
	bson_error_t error;
	assert_true(mongoc_collection_insert_many(coll, (const bson_t **)docs, N, NULL, NULL,
						  &error));
	for (uint32_t i = 0; i < N; i++)
		bson_destroy(docs[i]);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);

	struct wd_imap_fetch_args args;
	struct wd_imap_command *cmd = parse_fetch("(FLAGS)", true, &args);
	/* the view lacks UIDs 1001..1010 (expunged here, not yet there) */
	struct wd_imap_fetch_span spans[] = { { 1, 1000, 1 }, { 1011, N, 1001 } };
	struct wd_imap_fetch_request req = {
		.store = store, .mailbox = box, .args = &args, .flags = WD_IMAP_FETCH_F_CONDSTORE,
		.spans = spans, .span_count = 2, .batch_size = 256,
	};
	struct wd_imap_fetch_run *run = wd_imap_fetch_run_create(&req);
	struct wd_buffer out = WD_BUFFER_INIT;
	char *err = NULL;
	int ret;
	uint32_t lines = 0, next_seq = 1;
	do {
		ret = wd_imap_fetch_run_step(run, &out, 4096, &err);
		assert_int_not_equal(ret, WD_ERROR);
		assert_true(out.len < 4096 + 128);
		/* check and drain whole lines */
		const char *p = (const char *)wd_buffer_bytes(&out);
		const char *end;
		while ((end = memchr(p, '\n', out.len - (size_t)(p - (const char *)wd_buffer_bytes(&out)))) != NULL) {
			uint32_t seq = next_seq++;
			uint32_t uid = seq <= 1000 ? seq : seq + 10;
			char want[128];
			snprintf(want, sizeof(want), "* %u FETCH (UID %u FLAGS (%s) MODSEQ (%u))\r\n", seq,
				 uid, uid % 2 == 0 ? "\\Seen" : "x", uid);
			assert_int_equal((size_t)(end + 1 - p), strlen(want));
			assert_memory_equal(p, want, strlen(want));
			p = end + 1;
			lines++;
		}
		wd_buffer_consume(&out, (size_t)(p - (const char *)wd_buffer_bytes(&out)));
	} while (ret == WD_AGAIN);
	assert_int_equal(lines, N - 10);
	assert_int_equal(out.len, 0);
	assert_int_equal(wd_imap_fetch_run_missing(run), 0);
	wd_imap_fetch_run_destroy(&run);
	wd_imap_command_destroy(&cmd);
	wd_buffer_release(&out);
}

/* ---- fixtures ---- */

static void make_big(void)
{
	big_data_len = 5u * 1024 * 1024;
	big_data = malloc(big_data_len);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < big_data_len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		big_data[i] = (uint8_t)x;
	}
	big_data[100] = 0;
	struct wd_buffer raw = WD_BUFFER_INIT;
	wd_buffer_append_str(&raw, "From: big@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
				   "Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
				   "--zz\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
				   "--zz\r\nContent-Type: application/octet-stream\r\n"
				   "Content-Transfer-Encoding: base64\r\n\r\n");
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < big_data_len; i += 57) {
		size_t n = big_data_len - i < 57 ? big_data_len - i : 57;
		char line[80];
		size_t k = 0;
		for (size_t j = 0; j < n; j += 3) {
			uint32_t v = (uint32_t)big_data[i + j] << 16;
			if (j + 1 < n)
				v |= (uint32_t)big_data[i + j + 1] << 8;
			if (j + 2 < n)
				v |= big_data[i + j + 2];
			line[k++] = alphabet[v >> 18 & 63];
			line[k++] = alphabet[v >> 12 & 63];
			line[k++] = j + 1 < n ? alphabet[v >> 6 & 63] : '=';
			line[k++] = j + 2 < n ? alphabet[v & 63] : '=';
		}
		line[k++] = '\r';
		line[k++] = '\n';
		wd_buffer_append(&raw, line, k);
	}
	wd_buffer_append_str(&raw, "--zz--\r\n");
	big_raw = wd_buffer_steal(&raw, &big_raw_len);
}

static int setup(void **state)
{
	(void)state;
	if (test_stack_mailbox() < 0)
		return -1;
	static const char *const flags2[] = { "\\Flagged", "$Label1" };
	uid1 = test_stack_add(m1, sizeof(m1) - 1, NULL, 0, IDATE1);
	uid2 = test_stack_add(m2, sizeof(m2) - 1, flags2, 2, IDATE1);
	uid3 = test_stack_add(m3, sizeof(m3) - 1, NULL, 0, IDATE1);
	make_big();
	uid_big = test_stack_add(big_raw, big_raw_len, NULL, 0, IDATE1);
	if (uid1 != 1 || uid2 != 2 || uid3 != 3 || uid_big != 4)
		return -1;
	/* give message 2 a later MODSEQ, as a STORE would */
	bson_t *filter = BCON_NEW("mailbox", BCON_OID(&mailbox), "uid", BCON_INT32(2));
	bson_t *update = BCON_NEW("$set", "{", "modseq", BCON_INT32(10), "}");
	bool ok = test_stack_update(filter, update);
	bson_destroy(filter);
	bson_destroy(update);
	return ok ? 0 : -1;
}

int main(void)
{
	int ret = test_stack_open("imapfetch");
	if (ret != 0)
		return ret;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_internaldate_format),
		cmocka_unit_test(test_simple_items),
		cmocka_unit_test(test_structure_items),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_changedsince),
		cmocka_unit_test(test_big_streamed),
		cmocka_unit_test(test_many_messages),
		cmocka_unit_test(test_seen),
		cmocka_unit_test(test_structure_fallback),
	};
	if (getenv("WD_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("WD_TEST_FILTER"));
	int failed = cmocka_run_group_tests(tests, setup, NULL);
	test_stack_drop();
	free(big_raw);
	free(big_data);
	return failed;
}
