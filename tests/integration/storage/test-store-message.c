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

#include "wd-arena.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "../stack-fixture.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-imap-structure.h"
#include "wd-mime-tree.h"
#include "wd-result.h"
#include "wd-store-attachment.h"
#include "wd-store-message.h"
#include "wd-store-thread.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* BODY[section]<offset.length> read from storage equals the same section
   computed on the raw bytes. */
static void check_section(const struct wd_mime_tree *tree, const bson_oid_t *id,
			  const struct wd_mime_section_spec *spec, uint64_t offset, uint64_t length,
			  struct wd_arena *arena, const char *what)
{
	struct wd_buffer expected = WD_BUFFER_INIT, got = WD_BUFFER_INIT;
	struct wd_mime_section section;
	const char *section_error;
	if (wd_mime_section_get(tree, spec, arena, &section, &section_error) == WD_OK) {
		wd_mime_section_partial(&section, offset, length);
		assert_int_equal(wd_mime_section_write(tree, &section, &expected), WD_OK);
	}
	char *error = NULL;
	struct wd_message_reader *reader = wd_store_message_open_id(store, id, &error);
	if (reader == NULL)
		fail_msg("%s: open: %s", what, error);
	if (wd_message_reader_select(reader, spec, offset, length, &error) < 0)
		fail_msg("%s: select: %s", what, error);
	assert_int_equal(wd_message_reader_size(reader), expected.len);
	assert_int_equal(wd_message_reader_message_size(reader), tree->size);
	bool eof = false;
	while (!eof) {
		size_t before = got.len;
		if (wd_message_reader_read(reader, &got, &eof, &error) < 0)
			fail_msg("%s: read: %s", what, error);
		/* memory bounded by a GridFS chunk (re-encoded when stored
		   decoded: 4/3 and line breaks), not by the section */
		assert_true(got.len - before <= 2 * WD_ATTACHMENT_CHUNK_SIZE);
	}
	wd_message_reader_close(&reader);
	if (got.len != expected.len ||
	    memcmp(wd_buffer_bytes(&got), wd_buffer_bytes(&expected), got.len) != 0)
		fail_msg("%s: section type %d path length %zu <%llu.%llu>: %zu bytes, expected %zu",
			 what, (int)spec->type, spec->path_len, (unsigned long long)offset,
			 (unsigned long long)length, got.len, expected.len);
	wd_buffer_release(&expected);
	wd_buffer_release(&got);
}

/* One reader opened from a loaded document serves several sections in a
   row (a FETCH with several body items), each equal to the section
   computed on the raw bytes. */
static void check_reselect(const struct wd_mime_tree *tree, const bson_oid_t *id,
			   const struct wd_mime_section_spec *specs, size_t count,
			   struct wd_arena *arena, const char *what)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	bson_t *opts = BCON_NEW("projection", "{", "wdc", BCON_INT32(1), "mimeTree.attachmentMap",
				BCON_INT32(1), "size", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	assert_true(mongoc_cursor_next(cursor, &doc));
	char *error = NULL;
	struct wd_message_reader *reader = wd_store_message_open_doc(store, doc, &error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (reader == NULL)
		fail_msg("%s: open_doc: %s", what, error);
	assert_int_equal(wd_message_reader_size(reader), tree->size);
	for (size_t i = 0; i < count; i++) {
		struct wd_buffer expected = WD_BUFFER_INIT, got = WD_BUFFER_INIT;
		struct wd_mime_section section;
		const char *section_error;
		if (wd_mime_section_get(tree, &specs[i], arena, &section, &section_error) == WD_OK)
			assert_int_equal(wd_mime_section_write(tree, &section, &expected), WD_OK);
		if (wd_message_reader_select(reader, &specs[i], 0, UINT64_MAX, &error) < 0)
			fail_msg("%s: reselect: %s", what, error);
		/* every other one is left after its first read, before the next select */
		bool eof = false;
		do {
			if (wd_message_reader_read(reader, &got, &eof, &error) < 0)
				fail_msg("%s: read: %s", what, error);
		} while (!eof && i % 2 == 0);
		assert_true(got.len <= expected.len);
		assert_memory_equal(wd_buffer_bytes(&got), wd_buffer_bytes(&expected), got.len);
		if (i % 2 == 0)
			assert_int_equal(got.len, expected.len);
		wd_buffer_release(&expected);
		wd_buffer_release(&got);
	}
	wd_message_reader_close(&reader);
}

/* Part paths of a tree: every valid path up to 4 levels and 6 parts per
   level, plus one missing part after each, at most `max`. */
static size_t part_paths(const struct wd_mime_tree *tree, uint32_t paths[][4], size_t *lens,
			 size_t max)
{
	size_t count = 1;
	lens[0] = 0;
	for (size_t i = 0; i < count; i++) {
		if (lens[i] == 4)
			continue;
		for (uint32_t k = 1; k <= 6 && count < max; k++) {
			memcpy(paths[count], paths[i], sizeof(paths[i]));
			paths[count][lens[i]] = k;
			lens[count] = lens[i] + 1;
			const char *error;
			bool valid = wd_mime_tree_find_part(tree, paths[count], lens[count], NULL,
							    &error) != NULL;
			count++;
			if (!valid)
				break; /* keep one missing part */
		}
	}
	return count;
}

/* wdc.imap.<key> of the stored message equals `expected`. */
static void check_imap_cache(const bson_oid_t *id, const char *key,
			     const struct wd_buffer *expected)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	assert_true(mongoc_cursor_next(cursor, &doc));
	char path[32];
	snprintf(path, sizeof(path), "wdc.imap.%s", key);
	bson_iter_t iter, found;
	assert_true(bson_iter_init(&iter, doc) && bson_iter_find_descendant(&iter, path, &found));
	const uint8_t *data;
	uint32_t len;
	bson_iter_binary(&found, NULL, &len, &data);
	assert_int_equal(len, expected->len);
	assert_memory_equal(data, wd_buffer_bytes(expected), len);
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
}

/* Sections of the stored message `id` for a sample of its parts. */
static void check_sections(const uint8_t *raw, size_t len, const bson_oid_t *id,
			   size_t max_paths, const char *what)
{
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree;
	const char *error;
	assert_int_equal(wd_mime_tree_parse(arena, raw, len, NULL, &tree, &error), WD_OK);
	struct wd_buffer structure = WD_BUFFER_INIT;
	assert_int_equal(wd_imap_bodystructure(tree, tree->root, true, 0, &structure), WD_OK);
	check_imap_cache(id, "b", &structure);
	wd_buffer_clear(&structure);
	assert_int_equal(wd_imap_envelope(tree, tree->root, 0, &structure), WD_OK);
	check_imap_cache(id, "e", &structure);
	wd_buffer_release(&structure);
	uint32_t paths[64][4];
	size_t lens[64];
	size_t count = part_paths(tree, paths, lens, max_paths < 64 ? max_paths : 64);
	static const char *const fields[] = { "Subject", "content-type", "X-Missing" };
	struct wd_mime_section_spec specs[64 * 6];
	size_t spec_count = 0;
	for (size_t i = 0; i < count; i++) {
		for (int type = WD_MIME_SECTION_BODY; type <= WD_MIME_SECTION_MIME; type++) {
			struct wd_mime_section_spec spec = {
				.path = paths[i], .path_len = lens[i],
				.type = (enum wd_mime_section_type)type,
				.fields = fields, .field_count = 3,
			};
			specs[spec_count++] = spec;
			/* whole section, then a partial that starts inside it */
			check_section(tree, id, &spec, 0, UINT64_MAX, arena, what);
			check_section(tree, id, &spec, (i * 7 + (size_t)type) % 40, 1 + i % 30, arena,
				      what);
		}
	}
	check_reselect(tree, id, specs, spec_count, arena, what);
	wd_arena_destroy(&arena);
}

/* Store `raw`, read it back, compare bytes and SHA-256. */
static bool by_uid; /* open by mailbox and UID instead of by id */
static size_t section_paths = 3; /* part paths whose sections are checked */

static bson_oid_t round_trip(const uint8_t *raw, size_t len, const char *what)
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
	if (section_paths > 0)
		check_sections(raw, len, &added.id, section_paths, what);
	return added.id;
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
		/* sections of every fourth message (each read is a database round
		   trip; the edge cases and big shapes check all of theirs) */
		section_paths = seed % 4 == 0 ? 4 : 0;
		round_trip(wd_buffer_bytes(&msg), msg.len, what);
		wd_buffer_release(&msg);
	}
}

static void test_big_shapes(void **state)
{
	(void)state;
	section_paths = 3;
	/* a 20 MB attachment */
	struct wd_buffer msg = WD_BUFFER_INIT;
	put(&msg, "Subject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nsee "
		  "attached\r\n--B\r\nContent-Type: video/mp4\r\nContent-Transfer-Encoding: base64\r\n\r\n");
	random_base64(&msg, "\r\n", 15 * 1024 * 1024, false);
	put(&msg, "--B--\r\n");
	assert_true(msg.len > 20 * 1000 * 1000);
	bson_oid_t big = round_trip(wd_buffer_bytes(&msg), msg.len, "20 MB attachment");
	/* partial reads inside the attachment as Apple Mail makes them (393216
	   bytes), the last one overrunning the part */
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree;
	const char *parse_error;
	assert_int_equal(wd_mime_tree_parse(arena, wd_buffer_bytes(&msg), msg.len, NULL, &tree,
					    &parse_error), WD_OK);
	uint32_t part = 2;
	struct wd_mime_section_spec body = { .path = &part, .path_len = 1,
					     .type = WD_MIME_SECTION_BODY };
	check_section(tree, &big, &body, 393216 * 7, 393216, arena, "20 MB partial");
	check_section(tree, &big, &body, msg.len - 393216, 393216, arena, "20 MB partial end");
	wd_arena_destroy(&arena);
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

static int64_t count_gridfs(const char *collection, bson_t *filter)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_GRIDFS);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_GRIDFS, collection);
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_GRIDFS, client);
	return n;
}

static void test_shared_attachment_dedup(void **state)
{
	(void)state;
	uint32_t uids[100];
	uint64_t sizes = 0;
	struct wd_buffer attachment = WD_BUFFER_INIT;
	random_base64(&attachment, "\r\n", 1024 * 1024, false);
	for (int i = 0; i < 100; i++) {
		struct wd_buffer msg = WD_BUFFER_INIT;
		wd_buffer_printf(&msg, "Subject: shared %d\r\nContent-Type: multipart/mixed; "
			       "boundary=S\r\n\r\n--S\r\n\r\nhello %d\r\n--S\r\nContent-Type: "
			       "application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n", i, i);
		wd_buffer_append(&msg, wd_buffer_bytes(&attachment), attachment.len);
		put(&msg, "--S--\r\n");
		section_paths = i == 0 ? 3 : 0; /* the other 99 are the same shape */
		round_trip(wd_buffer_bytes(&msg), msg.len, "shared attachment");
		uids[i] = next_uid - 1;
		sizes += msg.len;
		wd_buffer_release(&msg);
	}
	wd_buffer_release(&attachment);
	/* one GridFS file holds it, referenced 100 times */
	assert_int_equal(count_gridfs("attachments.files", BCON_NEW("metadata.c", BCON_INT32(100))),
			 1);
	int64_t files_before = count_gridfs("attachments.files", bson_new());

	/* delete all 100 (EXPUNGE archives them), purge the archive as the
	   retention GC does 25 days later, then the attachment GC: nothing left */
	static const char *const deleted[] = { "\\Deleted" };
	struct wd_flags_change change = { .uids = uids, .uid_count = 100, .op = WD_FLAGS_ADD,
					   .flags = deleted, .flag_count = 1 };
	struct wd_flags_result result;
	char *error = NULL;
	if (wd_store_message_flags(store, &mailbox, &change, &result, &error) < 0)
		fail_msg("flags: %s", error);
	free(result.modified);
	uint32_t *expunged;
	size_t expunged_count;
	if (wd_store_message_expunge(store, &mailbox, uids, 100, NULL, &expunged, &expunged_count,
				     &error) < 0)
		fail_msg("expunge: %s", error);
	assert_int_equal(expunged_count, 100);
	free(expunged);
	stored_total -= sizes;
	assert_int_equal(count_gridfs("attachments.files", BCON_NEW("metadata.c", BCON_INT32(100))),
			 1); /* the archive still references it */
	int64_t later = (int64_t)time(NULL) * 1000 + 30LL * 24 * 3600 * 1000;
	struct wd_retention_report retention;
	if (wd_store_retention_gc(store, later, 1000, &retention, &error) < 0)
		fail_msg("retention: %s", error);
	assert_int_equal(retention.purged, 100);
	struct wd_attachment_gc_report gc;
	if (wd_store_attachment_gc(store, later, 24LL * 3600 * 1000, &gc, &error) < 0)
		fail_msg("gc: %s", error);
	assert_int_equal(gc.files, 1);
	assert_int_equal(count_gridfs("attachments.files", bson_new()), files_before - 1);
	assert_int_equal(count_gridfs("attachments.files", BCON_NEW("metadata.c", BCON_INT32(100))),
			 0);
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

/* A document as WildDuck writes it (no wdc): served as WildDuck's rebuild
   (reference §3.2), cut or padded to `size`; sections from that stream. */
static void read_all(struct wd_message_reader *reader, struct wd_buffer *out)
{
	char *error = NULL;
	bool eof = false;
	while (!eof) {
		if (wd_message_reader_read(reader, out, &eof, &error) < 0)
			fail_msg("read: %s", error);
	}
}

static void insert_wildduck_message(uint32_t uid, int32_t size, const uint8_t *hash)
{
	bson_t doc = BSON_INITIALIZER, tree, header, children, child, map;
	bson_oid_t id;
	bson_oid_init(&id, NULL);
	BSON_APPEND_OID(&doc, "_id", &id);
	BSON_APPEND_OID(&doc, "mailbox", &mailbox);
	BSON_APPEND_OID(&doc, "user", &user);
	BSON_APPEND_INT32(&doc, "uid", (int32_t)uid);
	BSON_APPEND_INT32(&doc, "size", size);
	BSON_APPEND_DOCUMENT_BEGIN(&doc, "mimeTree", &tree);
	BSON_APPEND_ARRAY_BEGIN(&tree, "header", &header);
	BSON_APPEND_UTF8(&header, "0", "From: a@example.com");
	BSON_APPEND_UTF8(&header, "1", "Subject: \xc3\xa4 binary string");
	BSON_APPEND_UTF8(&header, "2", "Content-Type: multipart/mixed; boundary=\"XX\"");
	bson_append_array_end(&tree, &header);
	BSON_APPEND_BINARY(&tree, "body", BSON_SUBTYPE_BINARY, (const uint8_t *)"", 0);
	BSON_APPEND_UTF8(&tree, "multipart", "mixed");
	BSON_APPEND_UTF8(&tree, "boundary", "XX");
	BSON_APPEND_INT32(&tree, "lineCount", 0);
	BSON_APPEND_INT32(&tree, "size", 0);
	BSON_APPEND_ARRAY_BEGIN(&tree, "childNodes", &children);
	BSON_APPEND_DOCUMENT_BEGIN(&children, "0", &child);
	BSON_APPEND_ARRAY_BEGIN(&child, "header", &header);
	BSON_APPEND_UTF8(&header, "0", "Content-Type: text/plain");
	bson_append_array_end(&child, &header);
	BSON_APPEND_BINARY(&child, "body", BSON_SUBTYPE_BINARY, (const uint8_t *)"Hello world", 11);
	BSON_APPEND_BOOL(&child, "multipart", false);
	BSON_APPEND_BOOL(&child, "boundary", false);
	BSON_APPEND_INT32(&child, "lineCount", 0);
	BSON_APPEND_INT32(&child, "size", 11);
	bson_append_document_end(&children, &child);
	BSON_APPEND_DOCUMENT_BEGIN(&children, "1", &child);
	BSON_APPEND_ARRAY_BEGIN(&child, "header", &header);
	BSON_APPEND_UTF8(&header, "0", "Content-Type: application/octet-stream");
	BSON_APPEND_UTF8(&header, "1", "Content-Transfer-Encoding: base64");
	bson_append_array_end(&child, &header);
	BSON_APPEND_BOOL(&child, "body", false);
	BSON_APPEND_BOOL(&child, "multipart", false);
	BSON_APPEND_BOOL(&child, "boundary", false);
	BSON_APPEND_INT32(&child, "lineCount", 0);
	BSON_APPEND_INT32(&child, "size", 8);
	BSON_APPEND_UTF8(&child, "attachmentId", "ATT00001");
	bson_append_document_end(&children, &child);
	bson_append_array_end(&tree, &children);
	BSON_APPEND_DOCUMENT_BEGIN(&tree, "attachmentMap", &map);
	BSON_APPEND_BINARY(&map, "ATT00001", BSON_SUBTYPE_BINARY, hash, WD_ATTACHMENT_HASH_LEN);
	bson_append_document_end(&tree, &map);
	bson_append_document_end(&doc, &tree);
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_error_t error;
	if (!mongoc_collection_insert_one(coll, &doc, NULL, NULL, &error))
		fail_msg("insert: %s", error.message);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	bson_destroy(&doc);
}

static void test_wildduck_written(void **state)
{
	(void)state;
	static const char expected[] =
		"From: a@example.com\r\nSubject: \xe4 binary string\r\n"
		"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\n"
		"Content-Type: text/plain\r\n\r\nHello world\r\n--XX\r\n"
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
		"\r\nSGVsbG8=\r\n--XX--\r\n";
	size_t len = sizeof(expected) - 1;
	struct wd_attachment_put put = { .body = (const uint8_t *)"SGVsbG8=", .len = 8,
					 .transfer_encoding = "base64", .magic = 1 };
	struct wd_attachment_ref ref;
	char *error = NULL;
	if (wd_store_attachment_put(store, &put, &ref, &error) < 0)
		fail_msg("put: %s", error);
	/* size as WildDuck computed it, then cut short and padded */
	const int32_t sizes[] = { (int32_t)len, (int32_t)len - 10, (int32_t)len + 5 };
	for (size_t i = 0; i < 3; i++) {
		uint32_t uid = 900000 + (uint32_t)i;
		insert_wildduck_message(uid, sizes[i], ref.hash);
		struct wd_message_reader *reader = wd_store_message_open(store, &mailbox, uid, &error);
		if (reader == NULL)
			fail_msg("open: %s", error);
		assert_int_equal(wd_message_reader_size(reader), (uint64_t)sizes[i]);
		struct wd_buffer got = WD_BUFFER_INIT;
		read_all(reader, &got);
		wd_message_reader_close(&reader);
		assert_int_equal(got.len, (size_t)sizes[i]);
		size_t same = (size_t)sizes[i] < len ? (size_t)sizes[i] : len;
		assert_memory_equal(wd_buffer_bytes(&got), expected, same);
		for (size_t k = same; k < got.len; k++)
			assert_int_equal(wd_buffer_bytes(&got)[k], ' ');
		wd_buffer_release(&got);
	}
	/* sections come from parsing that stream: BODY[2], BODY[1.MIME], HEADER.FIELDS */
	uint32_t two = 2, one = 1;
	static const char *const subject[] = { "subject" };
	struct {
		struct wd_mime_section_spec spec;
		const char *bytes;
	} sections[] = {
		{ { .path = &two, .path_len = 1, .type = WD_MIME_SECTION_BODY }, "SGVsbG8=" },
		{ { .path = &one, .path_len = 1, .type = WD_MIME_SECTION_MIME },
		  "Content-Type: text/plain\r\n\r\n" },
		{ { .type = WD_MIME_SECTION_HEADER_FIELDS, .fields = subject, .field_count = 1 },
		  "Subject: \xe4 binary string\r\n\r\n" },
	};
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		struct wd_message_reader *reader =
			wd_store_message_open(store, &mailbox, 900000, &error);
		if (reader == NULL ||
		    wd_message_reader_select(reader, &sections[i].spec, 0, UINT64_MAX, &error) < 0)
			fail_msg("section: %s", error);
		struct wd_buffer got = WD_BUFFER_INIT;
		read_all(reader, &got);
		wd_message_reader_close(&reader);
		assert_int_equal(got.len, strlen(sections[i].bytes));
		assert_memory_equal(wd_buffer_bytes(&got), sections[i].bytes, got.len);
		wd_buffer_release(&got);
	}
}

int main(void)
{
	int ret = test_stack_open("test-store-message");
	if (ret != 0)
		return ret;
	if (test_stack_mailbox() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_cases),
		cmocka_unit_test(test_generated_corpus),
		cmocka_unit_test(test_big_shapes),
		cmocka_unit_test(test_shared_attachment_dedup),
		cmocka_unit_test(test_threading),
		cmocka_unit_test(test_quota_total),
		cmocka_unit_test(test_wildduck_written),
	};
	if (getenv("WD_TEST_FILTER") != NULL) /* e.g. "test_shared*" while debugging */
		cmocka_set_test_filter(getenv("WD_TEST_FILTER"));
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	test_stack_drop();
	return failed;
}
