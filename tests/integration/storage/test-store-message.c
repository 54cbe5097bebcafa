/* Integration tests (suite storage): messages stored and read back byte for
 * byte. A generated corpus of 320 messages (random MIME trees with LF, CRLF,
 * CR and mixed line ends, preambles, epilogues, missing final newlines, NULs,
 * 8-bit headers, irregular and regular base64, nested message/rfc822) plus
 * hand-written edge cases, a 20 MB attachment, 1000 parts and deep nesting;
 * then de-duplication of a shared attachment across 100 messages and the
 * quota total. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-message.h"
#include "wd-store-thread.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct wd_store *store;
static bson_oid_t user, mailbox;
static uint64_t stored_total;
static uint32_t next_uid = 1;

static uint32_t rng_state = 2463534242u;
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return n == 0 ? 0 : rng_state % n;
}

static const char *const line_ends[] = { "\r\n", "\n", "\r\n", "\r", "\r\n" };

static void put(struct wd_buffer *b, const char *s)
{
	wd_buffer_append(b, s, strlen(s));
}

static void line(struct wd_buffer *b, const char *eol, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	put(b, text);
	put(b, eol);
}

static void random_text(struct wd_buffer *b, const char *eol, unsigned lines)
{
	for (unsigned i = 0; i < lines; i++) {
		unsigned len = rnd(90);
		for (unsigned k = 0; k < len; k++) {
			char c = (char)(' ' + rnd(95));
			if (rnd(200) == 0)
				c = '\0';
			if (rnd(150) == 0)
				c = (char)(0x80 + rnd(128));
			wd_buffer_append(b, &c, 1);
		}
		put(b, rnd(20) == 0 ? line_ends[rnd(5)] : eol);
	}
}

static void random_base64(struct wd_buffer *b, const char *eol, size_t bytes, bool irregular)
{
	uint8_t *raw = malloc(bytes + 1);
	for (size_t i = 0; i < bytes; i++)
		raw[i] = (uint8_t)rnd(256);
	struct wd_buffer enc = WD_BUFFER_INIT;
	wd_base64_encode(raw, bytes, 0, &enc);
	const uint8_t *p = wd_buffer_bytes(&enc);
	size_t pos = 0;
	while (pos < enc.len) {
		size_t n = irregular ? 4 + rnd(90) : 76;
		if (n > enc.len - pos)
			n = enc.len - pos;
		wd_buffer_append(b, p + pos, n);
		put(b, eol);
		pos += n;
	}
	wd_buffer_release(&enc);
	free(raw);
}

static void random_entity(struct wd_buffer *b, unsigned depth, const char *eol);

static void random_multipart(struct wd_buffer *b, unsigned depth, const char *eol)
{
	static const char *const subtypes[] = { "mixed", "alternative", "related", "digest" };
	char boundary[40];
	snprintf(boundary, sizeof(boundary), "b%u_%u=_x", depth, rnd(100000));
	line(b, eol, "Content-Type: multipart/%s;", subtypes[rnd(3)]);
	line(b, eol, "\tboundary=\"%s\"", boundary);
	put(b, eol);
	if (rnd(2))
		random_text(b, eol, 1 + rnd(3)); /* preamble */
	unsigned parts = 1 + rnd(4);
	for (unsigned i = 0; i < parts; i++) {
		line(b, eol, "--%s", boundary);
		random_entity(b, depth + 1, eol);
		if (b->len > 0 && wd_buffer_bytes(b)[b->len - 1] != '\n' &&
		    wd_buffer_bytes(b)[b->len - 1] != '\r')
			put(b, eol);
	}
	if (rnd(8) != 0) {
		wd_buffer_printf(b, "--%s--", boundary);
		if (rnd(4) != 0)
			put(b, eol);
		if (rnd(3) == 0)
			random_text(b, eol, 1 + rnd(2)); /* epilogue */
	}
}

static void random_entity(struct wd_buffer *b, unsigned depth, const char *eol)
{
	unsigned kind = depth >= 4 ? rnd(3) : rnd(6);
	switch (kind) {
	case 0:
		line(b, eol, "Content-Type: text/plain; charset=utf-8");
		put(b, eol);
		random_text(b, eol, rnd(8));
		break;
	case 1:
		line(b, eol, "Content-Type: application/octet-stream; name=\"f%u.bin\"", rnd(999));
		line(b, eol, "Content-Transfer-Encoding: base64");
		line(b, eol, "Content-Disposition: attachment; filename=\"f.bin\"");
		put(b, eol);
		random_base64(b, eol, rnd(3000), rnd(3) == 0);
		break;
	case 2:
		line(b, eol, "Content-Type: text/html");
		line(b, eol, "Content-Transfer-Encoding: quoted-printable");
		put(b, eol);
		random_text(b, eol, rnd(5));
		break;
	case 3:
	case 4:
		random_multipart(b, depth, eol);
		break;
	default:
		line(b, eol, "Content-Type: message/rfc822");
		put(b, eol);
		line(b, eol, "Subject: inner %u", rnd(1000));
		line(b, eol, "From: inner@example.com");
		random_entity(b, depth + 1, eol);
		break;
	}
}

static void random_message(struct wd_buffer *b, unsigned seed)
{
	const char *eol = line_ends[seed % 5];
	line(b, eol, "Received: from mx.example.com by mail.example.org; Sat, 1 Jan 2026 00:00:00 +0000");
	line(b, eol, "From: =?UTF-8?Q?J=C3=BCrgen?= <jurgen%u@example.com>", seed);
	line(b, eol, "To: user@example.org");
	line(b, eol, "Subject: message %u \xe2\x9c\x93 8-bit \xff", seed);
	line(b, eol, "Date: Thu, 1 Jan 2026 10:%02u:00 +0200", seed % 60);
	line(b, eol, "Message-ID: <%u@example.com>", seed);
	line(b, eol, "MIME-Version: 1.0");
	random_entity(b, 0, eol);
	if (rnd(4) == 0 && b->len > 0) {
		/* no final newline */
		while (b->len > 0 && (wd_buffer_bytes(b)[b->len - 1] == '\n' ||
				      wd_buffer_bytes(b)[b->len - 1] == '\r'))
			b->len--;
	}
}

/* Store `raw`, read it back, compare bytes and SHA-256. */
static bool by_uid; /* open by mailbox and UID instead of by id */

static void round_trip(const uint8_t *raw, size_t len, const char *what)
{
	static const char *const flags[] = { "\\Seen", "$Forwarded" };
	struct wd_message_add req = { .raw = raw, .len = len, .flags = flags, .flag_count = 2,
				      .source = "IMPORT", .decode_base64 = true };
	struct wd_message_added added;
	char *error = NULL;
	if (wd_store_message_add(store, &mailbox, &req, &added, &error) < 0)
		fail_msg("%s: add: %s", what, error);
	assert_int_equal(added.uid, next_uid);
	next_uid++;
	assert_int_equal(added.size, len);
	stored_total += len;

	struct wd_message_reader *reader =
		by_uid ? wd_store_message_open(store, &mailbox, added.uid, &error) :
			 wd_store_message_open_id(store, &added.id, &error);
	if (reader == NULL)
		fail_msg("%s: open: %s", what, error);
	assert_int_equal(wd_message_reader_size(reader), len);
	struct wd_buffer back = WD_BUFFER_INIT;
	bool eof = false;
	size_t max_step = 0;
	while (!eof) {
		size_t before = back.len;
		if (wd_message_reader_read(reader, &back, &eof, &error) < 0)
			fail_msg("%s: read: %s", what, error);
		if (back.len - before > max_step)
			max_step = back.len - before;
	}
	wd_message_reader_close(&reader);
	uint8_t a[32], b[32];
	SHA256(raw, len, a);
	SHA256(wd_buffer_bytes(&back), back.len, b);
	if (back.len != len || memcmp(a, b, 32) != 0) {
		size_t i = 0;
		while (i < len && i < back.len && raw[i] == wd_buffer_bytes(&back)[i])
			i++;
		fail_msg("%s: %zu bytes back for %zu, first difference at %zu", what, back.len, len, i);
	}
	wd_buffer_release(&back);
}

static void test_edge_cases(void **state)
{
	(void)state;
	by_uid = true; /* the IMAP path; later tests open by id (FerretDB scans otherwise) */
	static const char *const cases[] = {
		"",
		"no headers at all, just text",
		"Subject: headers only, no blank line",
		"Subject: blank line only\r\n\r\n",
		"Subject: lf\n\nbody\nmore\n",
		"Subject: cr\r\rbody\rmore\r",
		"Subject: mixed\r\n\nbody\r\nline\nline\r",
		"Subject: crcrlf\r\r\n\r\r\nbody\r\r\n",
		"Subject: nul\r\n\r\nbody with \0 nul\r\n",
		"Subject: 8bit \xe4\xf6\xfc\r\nX-Bad: \xff\xfe\r\n\r\nbody\r\n",
		"no colon line\r\nSubject: x\r\n\r\nbody",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\n\r\none\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--b--\r\nepilogue\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nno close\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b--",
		"Content-Type: multipart/mixed; boundary=b\n\n--b \t\n\npadded\n--b--\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--bb\r\nnot a boundary\r\n--b--\r\n",
		"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n",
		"Content-Type: multipart/alternative; boundary=\"x y\"\r\n\r\n--x y\r\n"
		"Content-Type: text/plain\r\n\r\nplain\r\n--x y\r\nContent-Type: text/html\r\n\r\n"
		"<p>html</p>\r\n--x y--\r\n",
		"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		"JVBERi0xLjQK\r\nJVBERi0xLjQK\r\nJVBE\r\n",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char what[32];
		snprintf(what, sizeof(what), "edge case %zu", i);
		size_t len = strlen(cases[i]);
		if (strstr(cases[i], "with ") != NULL)
			len = strlen(cases[i]) + 1 + strlen(cases[i] + strlen(cases[i]) + 1);
		round_trip((const uint8_t *)cases[i], len, what);
	}
}

static void test_generated_corpus(void **state)
{
	(void)state;
	by_uid = false;
	for (unsigned seed = 0; seed < 320; seed++) {
		struct wd_buffer msg = WD_BUFFER_INIT;
		rng_state = 2463534242u + seed * 7919u;
		random_message(&msg, seed);
		char what[32];
		snprintf(what, sizeof(what), "generated %u", seed);
		round_trip(wd_buffer_bytes(&msg), msg.len, what);
		wd_buffer_release(&msg);
	}
}

static void test_big_shapes(void **state)
{
	(void)state;
	/* a 20 MB attachment */
	struct wd_buffer msg = WD_BUFFER_INIT;
	put(&msg, "Subject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nsee "
		  "attached\r\n--B\r\nContent-Type: video/mp4\r\nContent-Transfer-Encoding: base64\r\n\r\n");
	random_base64(&msg, "\r\n", 15 * 1024 * 1024, false);
	put(&msg, "--B--\r\n");
	assert_true(msg.len > 20 * 1000 * 1000);
	round_trip(wd_buffer_bytes(&msg), msg.len, "20 MB attachment");
	wd_buffer_release(&msg);

	/* 1000 parts, every 25th an attachment (each attachment costs a full
	   scan of attachments.files on FerretDB: see docs/ARCHITECTURE.md) */
	put(&msg, "Subject: parts\r\nContent-Type: multipart/mixed; boundary=P\r\n\r\n");
	for (int i = 0; i < 1000; i++)
		wd_buffer_printf(&msg, "--P\r\nContent-Type: %s\r\n\r\npart %d\r\n",
				 i % 25 ? "text/plain" : "application/x-thing", i);
	put(&msg, "--P--\r\n");
	round_trip(wd_buffer_bytes(&msg), msg.len, "1000 parts");
	wd_buffer_release(&msg);

	/* nesting deeper than the parser's limit */
	put(&msg, "Subject: deep\r\n");
	for (int i = 0; i < 100; i++)
		wd_buffer_printf(&msg, "Content-Type: multipart/mixed; boundary=d%d\r\n\r\n--d%d\r\n", i, i);
	put(&msg, "\r\ninnermost\r\n");
	for (int i = 99; i >= 0; i--)
		wd_buffer_printf(&msg, "--d%d--\r\n", i);
	round_trip(wd_buffer_bytes(&msg), msg.len, "deep nesting");
	wd_buffer_release(&msg);
}

static void test_shared_attachment_dedup(void **state)
{
	(void)state;
	struct wd_buffer attachment = WD_BUFFER_INIT;
	random_base64(&attachment, "\r\n", 1024 * 1024, false);
	for (int i = 0; i < 100; i++) {
		struct wd_buffer msg = WD_BUFFER_INIT;
		wd_buffer_printf(&msg, "Subject: shared %d\r\nContent-Type: multipart/mixed; "
			       "boundary=S\r\n\r\n--S\r\n\r\nhello %d\r\n--S\r\nContent-Type: "
			       "application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n", i, i);
		wd_buffer_append(&msg, wd_buffer_bytes(&attachment), attachment.len);
		put(&msg, "--S--\r\n");
		round_trip(wd_buffer_bytes(&msg), msg.len, "shared attachment");
		wd_buffer_release(&msg);
	}
	wd_buffer_release(&attachment);
	/* one GridFS file holds it, referenced 100 times */
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_GRIDFS);
	mongoc_collection_t *files =
		wd_store_collection(store, client, WD_STORE_DB_GRIDFS, "attachments.files");
	bson_t *filter = BCON_NEW("metadata.c", BCON_INT32(100));
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(files, filter, NULL, NULL, NULL, &error);
	assert_int_equal(n, 1);
	bson_destroy(filter);
	mongoc_collection_destroy(files);
	wd_store_client_release(store, WD_STORE_DB_GRIDFS, client);
}

static bson_oid_t thread_of(const char *raw)
{
	struct wd_message_add req = { .raw = (const uint8_t *)raw, .len = strlen(raw),
				      .source = "IMPORT" };
	struct wd_message_added added;
	char *error = NULL;
	if (wd_store_message_add(store, &mailbox, &req, &added, &error) < 0)
		fail_msg("add: %s", error);
	next_uid++;
	stored_total += req.len;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *query = BCON_NEW("_id", BCON_OID(&added.id));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	bson_oid_t thread;
	assert_true(mongoc_cursor_next(cursor, &doc));
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, doc, "thread") && BSON_ITER_HOLDS_OID(&iter));
	bson_oid_copy(bson_iter_oid(&iter), &thread);
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return thread;
}

static void test_threading(void **state)
{
	(void)state;
	char *subject = wd_thread_subject("  Re: FWD :  [list-x]   Topic   of\tthe day (fwd)");
	assert_string_equal(subject, "Topic of the day");
	free(subject);
	subject = wd_thread_subject("[only a tag]");
	assert_string_equal(subject, "[only a tag]");
	free(subject);
	char ids[10][32];
	assert_int_equal(wd_thread_ids("<a@x>", "<a@x>", NULL, "<b@x> <c@x>\t<a@x>", ids), 3);

	bson_oid_t a = thread_of("Message-ID: <t1@x>\r\nSubject: Topic\r\n\r\nA\r\n");
	bson_oid_t b = thread_of("Message-ID: <t2@x>\r\nIn-Reply-To: <t1@x>\r\n"
				 "Subject: Re: Topic\r\n\r\nB\r\n");
	bson_oid_t c = thread_of("Message-ID: <t3@x>\r\nSubject: Topic\r\n\r\nC\r\n");
	bson_oid_t d = thread_of("Message-ID: <t4@x>\r\nReferences: <t1@x> <t2@x>\r\n"
				 "Subject: Another topic\r\n\r\nD\r\n");
	bson_oid_t e = thread_of("Message-ID: <t5@x>\r\nReferences: <t2@x>\r\n"
				 "Subject: Fwd: Re: topic\r\n\r\nE\r\n");
	assert_true(bson_oid_equal(&a, &b));  /* shared id, same subject */
	assert_false(bson_oid_equal(&a, &c)); /* same subject, nothing shared */
	assert_false(bson_oid_equal(&a, &d)); /* shared ids, other subject */
	assert_false(bson_oid_equal(&a, &e)); /* subjects compare with case, as WildDuck */
}

static void test_quota_total(void **state)
{
	(void)state;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_USERS);
	mongoc_collection_t *users = wd_store_collection(store, client, WD_STORE_DB_USERS, "users");
	bson_t *query = BCON_NEW("_id", BCON_OID(&user));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(users, query, NULL, NULL);
	const bson_t *doc;
	assert_true(mongoc_cursor_next(cursor, &doc));
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, doc, "storageUsed"));
	assert_true((uint64_t)bson_iter_as_int64(&iter) == stored_total);
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	mongoc_collection_destroy(users);
	wd_store_client_release(store, WD_STORE_DB_USERS, client);
}

static int setup(void **state)
{
	(void)state;
	bson_oid_init(&user, NULL);
	bson_oid_init(&mailbox, NULL);
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "mailboxes");
	bson_t *doc = BCON_NEW("_id", BCON_OID(&mailbox), "user", BCON_OID(&user), "path",
			       BCON_UTF8("INBOX"), "uidValidity", BCON_INT32(1767225600), "uidNext",
			       BCON_INT32(1), "modifyIndex", BCON_INT32(0), "specialUse", BCON_NULL,
			       "retention", BCON_INT32(0));
	bson_error_t error;
	bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "users");
	doc = BCON_NEW("_id", BCON_OID(&user), "username", BCON_UTF8("corpus"), "storageUsed",
		       BCON_INT32(0));
	ok = ok && mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ok ? 0 : -1;
}

int main(void)
{
	const char *url = getenv("WD_MONGO_URL");
	const char *redis = getenv("WD_REDIS_URL");
	if (url == NULL || redis == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL are not set: start the stack\n");
		return 77;
	}
	char text[1024];
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s-msg-%d\"\nredis = \"%s\"\n", url,
		 (int)getpid(), redis);
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	wd_log_init("test-store-message", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_log_set_handler(NULL, NULL);
	store = wd_store_open(config, &error);
	wd_config_free(&config);
	if (store == NULL) {
		fprintf(stderr, "open: %s\n", error);
		return 1;
	}
	struct wd_store_index_report report;
	if (wd_store_ensure_indexes(store, &report, &error) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_cases),
		cmocka_unit_test(test_generated_corpus),
		cmocka_unit_test(test_big_shapes),
		cmocka_unit_test(test_shared_attachment_dedup),
		cmocka_unit_test(test_threading),
		cmocka_unit_test(test_quota_total),
	};
	int failed = cmocka_run_group_tests(tests, setup, NULL);
	wd_store_close(&store);
	return failed;
}
