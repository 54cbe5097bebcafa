/* Unit tests: the IMAP command parser (server/imap/imap-parser.h).
 *
 * Every transcript is fed whole, one byte at a time, with CR and LF in
 * separate chunks, and in 200 seeded random splits; each run must give the
 * same event log, and that log must be the expected one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-parse-log.h"
#include "imap-parser.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BIN(s) s, sizeof(s) - 1

enum limit_preset {
	L_DEFAULT,
	L_SMALL,    /* tiny limits: line 100, literal 10, depth 3, args 5, discard 100, tree 16 */
	L_NO_NONSYNC,
	L_PLUS,     /* LITERAL+ */
	L_NO_BINARY,
	L_UTF8,
};

struct transcript {
	const char *name;
	const char *input;
	size_t len;
	const char *expected;
	enum limit_preset limits;
	bool stream; /* stream every literal */
	const char *line_after;
};

static void preset(enum limit_preset which, struct wd_imap_parser_limits *l)
{
	wd_imap_parser_limits_default(l);
	switch (which) {
	case L_DEFAULT:
		break;
	case L_SMALL:
		l->max_line = 100;
		l->max_literal = 10;
		l->max_depth = 3;
		l->max_args = 5;
		l->max_discard = 100;
		l->max_tree_literals = 16;
		break;
	case L_NO_NONSYNC:
		l->literal_minus = false;
		break;
	case L_PLUS:
		l->literal_plus = true;
		break;
	case L_NO_BINARY:
		l->binary = false;
		break;
	case L_UTF8:
		l->utf8_accept = true;
		break;
	}
}

static const struct transcript transcripts[] = {
	{ "noop", BIN("a1 NOOP\r\n"), "CMD a1 NOOP\n", L_DEFAULT, false, NULL },
	{ "login-literal", BIN("a2 LOGIN \"us\\\"e\\\\r\" {5}\r\npa ss\r\n"),
	  "LIT a2 LOGIN 5 d0 i1\n+ a2\nCMD a2 LOGIN q:us\"e\\x5cr L:5:pa ss\n", L_DEFAULT, false, NULL },
	{ "fetch-section",
	  BIN("a3 uid fetch 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From \"T)o\")]<0.100> BINARY[1]<5.6>)\r\n"),
	  "CMD a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From \"T)o\")]<0.100> BINARY[1]<5.6>)\n",
	  L_DEFAULT, false, NULL },
	{ "append-nonsync-streamed", BIN("a4 APPEND INBOX (\\Seen) {3+}\r\nabc\r\n"),
	  "LIT a4 APPEND 3+ d0 i2\nDATA 3:abc\nCMD a4 APPEND INBOX (\\x5cSeen) L:3:<streamed>\n",
	  L_DEFAULT, true, NULL },
	{ "literal8", BIN("a5 APPEND INBOX ~{4}\r\na\0bc\r\n"),
	  "LIT a5 APPEND 4 lit8 d0 i1\n+ a5\nCMD a5 APPEND INBOX L8:4:a\\x00bc\n", L_DEFAULT, false, NULL },
	{ "nil-lists", BIN("a6 X NIL nil (a (b ()) c) ~x\r\n"),
	  "CMD a6 X NIL NIL (a (b ()) c) ~x\n", L_DEFAULT, false, NULL },
	{ "empty-lines-bare-lf", BIN("\r\n\r\na7 NOOP\n\na8 CHECK\r\n"),
	  "CMD a7 NOOP\nCMD a8 CHECK\n", L_DEFAULT, false, NULL },
	{ "double-space", BIN("a8 NOOP  x\r\na9 NOOP\r\n"),
	  "ERR a8 syntax skip: Unexpected space\nCMD a9 NOOP\n", L_DEFAULT, false, NULL },
	{ "missing-paren", BIN("a10 X (a b\r\na10b NOOP\r\n"),
	  "ERR a10 syntax skip: Missing ')'\nCMD a10b NOOP\n", L_DEFAULT, false, NULL },
	{ "extra-paren", BIN("a11 X a)\r\n"), "ERR a11 syntax skip: Unexpected ')'\n", L_DEFAULT, false, NULL },
	{ "bad-tag", BIN("* NOOP\r\n+ x\r\na NOOP\r\n"),
	  "ERR * syntax skip: Invalid tag\nERR * syntax skip: Invalid tag\nCMD a NOOP\n",
	  L_DEFAULT, false, NULL },
	{ "missing-command", BIN("a12\r\na12 UID\r\n"),
	  "ERR a12 syntax skip: Missing command\nERR a12 syntax skip: Missing command after UID\n",
	  L_DEFAULT, false, NULL },
	{ "unterminated-quote", BIN("a13 X \"abc\r\na13b NOOP\r\n"),
	  "ERR a13 syntax skip: Unterminated quoted string\nCMD a13b NOOP\n", L_DEFAULT, false, NULL },
	{ "idle-done", BIN("a14 IDLE\r\nDONE\r\na15 NOOP\r\n"),
	  "CMD a14 IDLE\nLINE DONE\nCMD a15 NOOP\n", L_DEFAULT, false, "IDLE" },
	{ "skip-nonsync-literal", BIN("a16 X ) {5+}\r\nb1 NO\r\na17 NOOP\r\n"),
	  "ERR a16 syntax skip: Unexpected ')'\nCMD a17 NOOP\n", L_DEFAULT, false, NULL },
	{ "skip-sync-literal", BIN("a16 X ) {5}\r\na17 NOOP\r\n"),
	  "ERR a16 syntax skip: Unexpected ')'\nCMD a17 NOOP\n", L_DEFAULT, false, NULL },
	{ "sync-literal-too-big", BIN("a18 APPEND INBOX {20}\r\na19 NOOP\r\n"),
	  "ERR a18 toobig next NO TOOBIG: Literal too large\nCMD a19 NOOP\n", L_SMALL, false, NULL },
	{ "nonsync-too-big-discarded", BIN("a20 X {50+}\r\nz1 LOGOUT\r\nz2 LOGOUT\r\nz3 LOGOUT\r\nz4 LOGOUT\r\nz5 LOG"
	  " a\r\na21 NOOP\r\n"),
	  "ERR a20 toobig skip TOOBIG: Literal too large\nCMD a21 NOOP\n", L_SMALL, false, NULL },
	{ "nonsync-too-big-close", BIN("a20 X {500+}\r\nz1 LOGOUT\r\n"),
	  "ERR a20 toobig close TOOBIG: Literal too large\n", L_SMALL, false, NULL },
	{ "line-too-long", BIN("a22 X aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\na23 NOOP\r\n"),
	  "ERR a22 toobig skip TOOBIG: Command line too long\nCMD a23 NOOP\n", L_SMALL, false, NULL },
	/* the rest of a too long line is dropped up to max_discard + max_line
	   (200 here): a line that goes on closes, whatever the split */
	{ "line-without-end", BIN("a22 X aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	  "a23 NOOP\r\n"),
	  "ERR a22 toobig skip TOOBIG: Command line too long\n"
	  "ERR * toobig close TOOBIG: Line too long, closing the connection\n", L_SMALL, false, NULL },
	{ "too-deep", BIN("a24 X ((((a))))\r\na24b X ((()))\r\n"),
	  "ERR a24 limit skip: Lists nested too deeply\nCMD a24b X ((()))\n", L_SMALL, false, NULL },
	{ "too-many-args", BIN("a25 X 1 2 3 4 5 6\r\na25b X 1 (2 3) 4\r\n"),
	  "ERR a25 limit skip: Too many arguments\nCMD a25b X 1 (2 3) 4\n", L_SMALL, false, NULL },
	{ "cr-without-lf", BIN("a26 NOOP\rX\r\na27 NOOP\r\n"),
	  "ERR a26 syntax skip: CR without LF\nCMD a27 NOOP\n", L_DEFAULT, false, NULL },
	{ "utf8-quoted", BIN("a29 SELECT \"\xc4\x88u \xf0\x9f\x98\x80\"\r\na30 SELECT \"\xc0\xaf\"\r\n"),
	  "CMD a29 SELECT q:\\xc4\\x88u \\xf0\\x9f\\x98\\x80\n"
	  "ERR a30 syntax skip: Invalid UTF-8 in quoted string\n", L_DEFAULT, false, NULL },
	{ "utf8-atom", BIN("a31 SELECT \xc4\x88u\r\n"),
	  "ERR a31 syntax skip: Invalid character in atom\n", L_DEFAULT, false, NULL },
	{ "utf8-atom-accepted", BIN("a31 SELECT \xc4\x88u\r\n"),
	  "CMD a31 SELECT \\xc4\\x88u\n", L_UTF8, false, NULL },
	{ "nonsync-unsupported", BIN("a32 X {3+}\r\nabc\r\na33 NOOP\r\n"),
	  "ERR a32 syntax skip: Non-synchronizing literals are not supported\nCMD a33 NOOP\n",
	  L_NO_NONSYNC, false, NULL },
	{ "literal-minus-limit", BIN("a34 X {4097+}\r\n"),
	  "ERR a34 toobig skip TOOBIG: Non-synchronizing literal larger than 4096 bytes\n"
	  "PENDING 0\n", L_DEFAULT, false, NULL },
	{ "literal-plus-big", BIN("a35 X {5+}\r\nhello (x)\r\n"),
	  "LIT a35 X 5+ d0 i0\nCMD a35 X L:5:hello (x)\n", L_PLUS, false, NULL },
	{ "tree-budget", BIN("a36 X {9}\r\n123456789 {9}\r\na37 NOOP\r\n"),
	  "LIT a36 X 9 d0 i0\n+ a36\nLIT a36 X 9 d0 i1\n"
	  "ERR a36 toobig next NO TOOBIG: Literal too large\nCMD a37 NOOP\n", L_SMALL, false, NULL },
	{ "nul-in-literal", BIN("a38 X {3}\r\na\0b\r\na39 NOOP\r\n"),
	  "LIT a38 X 3 d0 i0\n+ a38\nERR a38 syntax skip: NUL in literal (use literal8)\nCMD a39 NOOP\n",
	  L_DEFAULT, false, NULL },
	{ "zero-literal-streamed", BIN("a40 APPEND INBOX {0}\r\n\r\n"),
	  "LIT a40 APPEND 0 d0 i1\n+ a40\nDATA 0:\nCMD a40 APPEND INBOX L:0:<streamed>\n",
	  L_DEFAULT, true, NULL },
	{ "literal8-without-binary", BIN("a41 X ~{2+}\r\nab\r\na42 NOOP\r\n"),
	  "ERR a41 syntax skip: literal8 needs BINARY\nCMD a42 NOOP\n", L_NO_BINARY, false, NULL },
	{ "pending-atom", BIN("a43 NOO"), "PENDING 3\n", L_DEFAULT, false, NULL },
	{ "gmail-brackets", BIN("a44 SELECT [Gmail]/Sent\r\n"), "CMD a44 SELECT [Gmail]/Sent\n",
	  L_DEFAULT, false, NULL },
	{ "nested-literal", BIN("a45 X (a {2}\r\nbc (d {1+}\r\ne))\r\n"),
	  "LIT a45 X 2 d1 i1\n+ a45\nLIT a45 X 1+ d2 i1\nCMD a45 X (a L:2:bc (d L:1:e))\n",
	  L_DEFAULT, false, NULL },
	{ "bad-literal-header", BIN("a46 X {12a}\r\na47 X {1}x\r\na48 NOOP\r\n"),
	  "ERR a46 syntax skip: Invalid literal header\n"
	  "ERR a47 syntax skip: Literal header must end the line\nCMD a48 NOOP\n",
	  L_DEFAULT, false, NULL },
	{ "bad-escape", BIN("a49 X \"a\\nb\"\r\n"),
	  "ERR a49 syntax skip: Invalid escape in quoted string\n", L_DEFAULT, false, NULL },
	{ "atom-specials", BIN("a50 X a{b\r\na51 X a\"b\r\na52 X a(b)\r\n"),
	  "ERR a50 syntax skip: Invalid character in atom\n"
	  "ERR a51 syntax skip: Invalid character in atom\n"
	  "ERR a52 syntax skip: Expected space, ')' or end of line after argument\n",
	  L_DEFAULT, false, NULL },
	{ "trailing-space", BIN("a53 NOOP \r\n"), "ERR a53 syntax skip: Missing argument\n",
	  L_DEFAULT, false, NULL },
	{ "bad-byte-past-line-limit", BIN("a57 X ((aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xf8\r\na58 NOOP\r\n"),
	  "ERR a57 toobig skip TOOBIG: Command line too long\nCMD a58 NOOP\n", L_SMALL, false, NULL },
	{ "bad-byte-at-line-limit", BIN("a59 X aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xf8\r\na60 NOOP\r\n"),
	  "ERR a59 syntax skip: Invalid character in atom\nCMD a60 NOOP\n", L_SMALL, false, NULL },
	{ "long-raw-line", BIN("a61 IDLE\r\nDONExxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
	  "a62 NOOP\r\n"),
	  "CMD a61 IDLE\nERR * toobig skip TOOBIG: Line too long\nCMD a62 NOOP\n", L_SMALL, false,
	  "IDLE" },
	{ "pipelined", BIN("a54 NOOP\r\na55 LOGIN {1+}\r\nx y\r\na56 LOGOUT\r\n"),
	  "CMD a54 NOOP\nLIT a55 LOGIN 1+ d0 i0\nCMD a55 LOGIN L:1:x y\nCMD a56 LOGOUT\n",
	  L_DEFAULT, false, NULL },
};

/* Chunks end right after each CR, so CR and LF always arrive apart. */
struct cr_split {
	const char *input;
	size_t len, pos;
};

static size_t split_at_cr(void *context, size_t left)
{
	struct cr_split *s = context;
	size_t n = 1;

	while (n < left && s->input[s->pos + n - 1] != '\r')
		n++;
	s->pos += n;
	return n;
}

static char *run(const struct transcript *t, imap_split_fn *split, void *context)
{
	struct wd_imap_parser_limits limits;
	struct imap_parse_log_options options = {
		.limits = &limits,
		.stream_min = t->stream ? 0 : UINT64_MAX,
		.line_after = t->line_after,
	};
	struct wd_buffer out = WD_BUFFER_INIT;
	size_t len = t->len;

	preset(t->limits, &limits);
	imap_parse_log((const uint8_t *)t->input, len, split, context, &options, &out);
	wd_buffer_append(&out, "", 1);
	size_t n;
	return (char *)wd_buffer_steal(&out, &n);
}

static void test_transcripts(void **state)
{
	(void)state;
	for (size_t i = 0; i < WD_N_ELEMENTS(transcripts); i++) {
		const struct transcript *t = &transcripts[i];
		char *whole = run(t, imap_split_whole, NULL);
		if (strcmp(whole, t->expected) != 0) {
			fprintf(stderr, "transcript %s:\n--- expected\n%s--- got\n%s", t->name,
				t->expected, whole);
			fail();
		}
		char *one = run(t, imap_split_one, NULL);
		if (strcmp(whole, one) != 0) {
			fprintf(stderr, "transcript %s byte by byte:\n%s", t->name, one);
			fail();
		}
		free(one);
		struct cr_split cr = { t->input, t->len, 0 };
		char *crs = run(t, split_at_cr, &cr);
		assert_string_equal(whole, crs);
		free(crs);
		for (uint32_t seed = 1; seed <= 200; seed++) {
			/* small chunks half of the time, larger ones otherwise */
			struct imap_split_random rng = { seed * 2654435761u, seed % 2 ? 4 : 40 };
			char *r = run(t, imap_split_random, &rng);
			if (strcmp(whole, r) != 0) {
				fprintf(stderr, "transcript %s seed %u:\n%s", t->name, seed, r);
				fail();
			}
			free(r);
		}
		free(whole);
	}
}

/* With ptr/len feeding, a half token stays unconsumed and is re-read. */
static void test_feed_partial_token(void **state)
{
	(void)state;
	struct wd_imap_parser *p = wd_imap_parser_create(NULL);
	struct wd_imap_event ev;
	size_t used;
	const uint8_t *in = (const uint8_t *)"t1 SELECT \"Inbo";

	assert_int_equal(wd_imap_parser_feed(p, in, 15, &used, &ev), WD_AGAIN);
	assert_int_equal(used, 10); /* "t1 SELECT " */
	in = (const uint8_t *)"\"Inbox\"\r\n";
	assert_int_equal(wd_imap_parser_feed(p, in, 9, &used, &ev), WD_OK);
	assert_int_equal(used, 9);
	assert_int_equal(ev.type, WD_IMAP_EVENT_COMMAND);
	assert_string_equal(ev.command->name, "SELECT");
	const char *s;
	size_t len;
	assert_true(wd_imap_arg_get_astring(&ev.command->args[0], &s, &len));
	assert_string_equal(s, "Inbox");
	assert_false(wd_imap_arg_get_atom(&ev.command->args[0], &s));
	wd_imap_command_destroy(&ev.command);
	assert_null(ev.command);
	assert_true(wd_imap_parser_is_idle(p));
	wd_imap_parser_destroy(&p);
	assert_null(p);
}

/* A 60 KiB atom fed one byte at a time stays linear (scan is resumed). */
static void test_long_token_linear(void **state)
{
	(void)state;
	struct wd_imap_parser *p = wd_imap_parser_create(NULL);
	struct wd_buffer buf = WD_BUFFER_INIT;
	struct wd_imap_event ev;
	const size_t n = 60 * 1024;
	clock_t start = clock();

	wd_buffer_append_str(&buf, "t X ");
	assert_int_equal(wd_imap_parser_feed_buffer(p, &buf, &ev), WD_AGAIN);
	for (size_t i = 0; i < n; i++) {
		wd_buffer_append(&buf, "a", 1);
		assert_int_equal(wd_imap_parser_feed_buffer(p, &buf, &ev), WD_AGAIN);
	}
	wd_buffer_append_str(&buf, "\r\n");
	assert_int_equal(wd_imap_parser_feed_buffer(p, &buf, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_COMMAND);
	assert_int_equal(ev.command->args[0].len, n);
	wd_imap_command_destroy(&ev.command);
	/* quadratic rescanning would take seconds */
	assert_true((double)(clock() - start) / CLOCKS_PER_SEC < 1.0);
	wd_buffer_release(&buf);
	wd_imap_parser_destroy(&p);
}

/* A streamed APPEND literal of 1 MiB arrives in pieces and never in the tree. */
static void test_stream_large_literal(void **state)
{
	(void)state;
	struct wd_imap_parser *p = wd_imap_parser_create(NULL);
	struct wd_imap_event ev;
	const size_t n = 1024 * 1024;
	uint8_t *msg = malloc(n);
	size_t used, got = 0, off;
	const char *hdr = "A APPEND INBOX {1048576}\r\n";

	memset(msg, 'm', n);
	assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)hdr, strlen(hdr), &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_LITERAL);
	assert_int_equal(ev.literal_size, n);
	assert_int_equal(ev.literal_index, 1);
	assert_int_equal(wd_imap_parser_literal_stream(p), WD_OK);
	assert_int_equal(wd_imap_parser_feed(p, NULL, 0, &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_CONTINUE);
	assert_int_equal(wd_imap_parser_literal_stream(p), WD_ERROR);
	for (off = 0; off < n; off += used) {
		size_t chunk = n - off < 65536 ? n - off : 65536;
		assert_int_equal(wd_imap_parser_feed(p, msg + off, chunk, &used, &ev), WD_OK);
		assert_int_equal(ev.type, WD_IMAP_EVENT_LITERAL_DATA);
		assert_ptr_equal(ev.data, msg + off);
		got += ev.len;
		assert_int_equal(ev.last, got == n);
	}
	assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)"\r\n", 2, &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_COMMAND);
	assert_true(ev.command->args[1].streamed);
	assert_null(ev.command->args[1].str);
	assert_true(wd_arena_used(ev.command->arena) < 8192);
	wd_imap_command_destroy(&ev.command);
	free(msg);
	wd_imap_parser_destroy(&p);
}

/* After a "close" error every feed repeats it. */
static void test_dead_parser(void **state)
{
	(void)state;
	struct wd_imap_parser_limits l;
	struct wd_imap_event ev;
	size_t used;
	const char *in = "a X {99999999+}\r\n";

	wd_imap_parser_limits_default(&l);
	l.literal_plus = true;
	l.max_literal = 10;
	struct wd_imap_parser *p = wd_imap_parser_create(&l);
	assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)in, strlen(in), &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_ERROR);
	assert_int_equal(ev.recovery, WD_IMAP_RECOVER_CLOSE);
	assert_string_equal(ev.tag, "a");
	assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)"b NOOP\r\n", 8, &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_ERROR);
	assert_int_equal(ev.recovery, WD_IMAP_RECOVER_CLOSE);
	assert_int_equal(used, 0);
	assert_int_equal(wd_imap_parser_read_line(p), WD_ERROR);
	wd_imap_parser_destroy(&p);
}

/* The caller refuses literals after LITERAL (APPEND to a missing mailbox). */
static void test_literal_refuse(void **state)
{
	(void)state;
	struct wd_imap_parser_limits l;
	struct wd_imap_event ev;
	enum wd_imap_recovery recovery;
	size_t used;
	const char *in = "a APPEND nobox {5}\r\nb APPEND nobox {5+}\r\nc N\r\n (x)\r\nd NOOP\r\n"
			 "e APPEND nobox {20+}\r\n";

	wd_imap_parser_limits_default(&l);
	l.max_discard = 10;
	struct wd_imap_parser *p = wd_imap_parser_create(&l);
	assert_int_equal(wd_imap_parser_literal_refuse(p, &recovery), WD_ERROR);
	/* sync: nothing was sent, the next line is a command */
	assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)in, strlen(in), &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_LITERAL);
	assert_int_equal(wd_imap_parser_literal_refuse(p, &recovery), WD_OK);
	assert_int_equal(recovery, WD_IMAP_RECOVER_NEXT);
	assert_int_equal(wd_imap_parser_literal_refuse(p, &recovery), WD_ERROR);
	in += used;
	/* non-sync: its 5 bytes (a command line) and the line are dropped */
	assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)in, strlen(in), &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_LITERAL);
	assert_string_equal(ev.tag, "b");
	assert_int_equal(wd_imap_parser_literal_refuse(p, &recovery), WD_OK);
	assert_int_equal(recovery, WD_IMAP_RECOVER_SKIP);
	in += used;
	assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)in, strlen(in), &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_COMMAND);
	assert_string_equal(ev.command->tag, "d");
	wd_imap_command_destroy(&ev.command);
	in += used;
	/* non-sync past max_discard: close */
	assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)in, strlen(in), &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_LITERAL);
	assert_int_equal(wd_imap_parser_literal_refuse(p, &recovery), WD_OK);
	assert_int_equal(recovery, WD_IMAP_RECOVER_CLOSE);
	wd_imap_parser_destroy(&p);
}

/* ENABLE UTF8=ACCEPT changes the parser's rules from the next command on. */
static void test_set_limits(void **state)
{
	(void)state;
	struct wd_imap_parser_limits l;
	struct wd_imap_event ev;
	size_t used;
	const uint8_t *in = (const uint8_t *)"a SELECT \xc3\xa4\r\n";
	struct wd_imap_parser *p = wd_imap_parser_create(NULL);

	assert_int_equal(wd_imap_parser_feed(p, in, 13, &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_ERROR);
	assert_int_equal(wd_imap_parser_feed(p, in + used, 13 - used, &used, &ev), WD_AGAIN);
	wd_imap_parser_limits_default(&l);
	l.utf8_accept = true;
	l.max_depth = 64;
	wd_imap_parser_set_limits(p, &l);
	assert_int_equal(wd_imap_parser_feed(p, in, 13, &used, &ev), WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_COMMAND);
	assert_string_equal(ev.command->args[0].str, "\xc3\xa4");
	wd_imap_command_destroy(&ev.command);
	/* the deeper nesting allowed now works */
	char deep[200] = "b X ";
	for (int i = 0; i < 40; i++)
		strcat(deep, "(");
	for (int i = 0; i < 40; i++)
		strcat(deep, ")");
	strcat(deep, "\r\n");
	assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)deep, strlen(deep), &used, &ev),
			 WD_OK);
	assert_int_equal(ev.type, WD_IMAP_EVENT_COMMAND);
	wd_imap_command_destroy(&ev.command);
	wd_imap_parser_destroy(&p);
}

static void test_arg_helpers(void **state)
{
	(void)state;
	struct wd_imap_parser *p = wd_imap_parser_create(NULL);
	struct wd_imap_event ev;
	size_t used, len;
	const char *in = "t X NIL \"q\" {1+}\r\nl atom (a) ~{1+}\r\nz\r\n";
	const char *s;
	const struct wd_imap_arg *list;

	for (;;) {
		assert_int_equal(wd_imap_parser_feed(p, (const uint8_t *)in, strlen(in), &used, &ev),
				 WD_OK);
		in += used;
		if (ev.type == WD_IMAP_EVENT_COMMAND)
			break;
	}
	const struct wd_imap_arg *a = ev.command->args;
	assert_int_equal(ev.command->arg_count, 6);
	assert_true(wd_imap_arg_get_nstring(&a[0], &s, &len));
	assert_null(s);
	assert_true(wd_imap_arg_get_astring(&a[0], &s, &len));
	assert_string_equal(s, "NIL");
	assert_false(wd_imap_arg_get_string(&a[0], &s, &len));
	assert_true(wd_imap_arg_get_string(&a[1], &s, &len));
	assert_true(wd_imap_arg_get_string(&a[2], &s, &len));
	assert_string_equal(s, "l");
	assert_true(wd_imap_arg_atom_equals(&a[3], "ATOM"));
	assert_false(wd_imap_arg_get_string(&a[3], &s, &len));
	assert_true(wd_imap_arg_get_list(&a[4], &list, &len));
	assert_int_equal(len, 1);
	assert_false(wd_imap_arg_get_astring(&a[5], &s, &len)); /* literal8 */
	wd_imap_command_destroy(&ev.command);
	wd_imap_parser_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcripts),
		cmocka_unit_test(test_feed_partial_token),
		cmocka_unit_test(test_long_token_linear),
		cmocka_unit_test(test_stream_large_literal),
		cmocka_unit_test(test_dead_parser),
		cmocka_unit_test(test_literal_refuse),
		cmocka_unit_test(test_set_limits),
		cmocka_unit_test(test_arg_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
