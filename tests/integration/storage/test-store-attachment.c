/* Integration tests (suite storage): GridFS attachment storage —
 * de-duplication, reference counts under concurrency, exact read-back
 * (decoded and raw), partial reads, garbage collection and crash repair. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../stack-fixture.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-attachment.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>


static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A base64 body of `raw_len` pseudo-random bytes, folded at `line` with CRLF. */
static void make_base64(struct wd_buffer *out, size_t raw_len, size_t line, unsigned seed)
{
	uint8_t *raw = malloc(raw_len);
	srand(seed);
	for (size_t i = 0; i < raw_len; i++)
		raw[i] = (uint8_t)rand();
	assert_int_equal(wd_base64_encode(raw, raw_len, line, out), 0);
	free(raw);
}

static void read_all(const uint8_t hash[WD_ATTACHMENT_HASH_LEN], struct wd_buffer *out)
{
	char *error = NULL;
	struct wd_attachment_reader *reader = wd_store_attachment_open(store, hash, &error);
	if (reader == NULL)
		fail_msg("open: %s", error);
	bool eof = false;
	int reads = 0;
	while (!eof) {
		size_t before = out->len;
		assert_int_equal(wd_attachment_reader_read(reader, out, &eof, &error), 0);
		/* pull-style: one read returns about one chunk */
		assert_true(out->len - before <= WD_ATTACHMENT_CHUNK_SIZE * 4 / 3 + 16384);
		reads++;
	}
	assert_int_equal(out->len, wd_attachment_reader_size(reader));
	wd_attachment_reader_close(&reader);
}

static void assert_counters(const uint8_t hash[WD_ATTACHMENT_HASH_LEN], bool exists, int64_t c,
			    int64_t m)
{
	bool found;
	int64_t fc = -1, fm = -1;
	char *error = NULL;
	assert_int_equal(wd_store_attachment_counters(store, hash, &found, &fc, &fm, &error), 0);
	assert_int_equal(found, exists);
	if (exists) {
		assert_int_equal(fc, c);
		assert_int_equal(fm, m);
	}
}

static int64_t count_chunks(const uint8_t hash[WD_ATTACHMENT_HASH_LEN])
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_GRIDFS);
	mongoc_collection_t *coll =
		wd_store_collection(store, client, WD_STORE_DB_GRIDFS, "attachments.chunks");
	bson_t *filter = BCON_NEW("files_id", BCON_BIN(BSON_SUBTYPE_BINARY, hash, 32));
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_GRIDFS, client);
	return n;
}

static void test_dedup_refcount_gc(void **state)
{
	(void)state;
	struct wd_buffer body = WD_BUFFER_INIT;
	make_base64(&body, 1024 * 1024, 76, 1);
	struct wd_attachment_put put = { .body = wd_buffer_bytes(&body), .len = body.len,
					 .content_type = "application/pdf",
					 .transfer_encoding = "base64", .decode_base64 = true };
	struct wd_attachment_ref first, ref;
	char *error = NULL;
	int64_t magic_sum = 0;
	for (int i = 0; i < 100; i++) {
		put.magic = (uint32_t)(1000 + i);
		magic_sum += put.magic;
		if (wd_store_attachment_put(store, &put, i == 0 ? &first : &ref, &error) < 0)
			fail_msg("put %d: %s", i, error);
		if (i > 0) {
			assert_false(ref.created);
			assert_memory_equal(ref.hash, first.hash, 32);
		}
	}
	assert_true(first.created);
	assert_true(first.decoded);
	uint8_t expect[32];
	SHA256(wd_buffer_bytes(&body), body.len, expect);
	assert_memory_equal(first.hash, expect, 32);
	assert_counters(first.hash, true, 100, magic_sum);
	/* one file: 1 MiB decoded in 255 KiB chunks */
	assert_int_equal(count_chunks(first.hash), 5);

	struct wd_buffer back = WD_BUFFER_INIT;
	read_all(first.hash, &back);
	assert_int_equal(back.len, body.len);
	assert_memory_equal(wd_buffer_bytes(&back), wd_buffer_bytes(&body), body.len);
	wd_buffer_release(&back);

	/* GC keeps referenced files */
	struct wd_attachment_gc_report report;
	assert_int_equal(wd_store_attachment_gc(store, now_ms() + 1000, 0, &report, &error), 0);
	assert_counters(first.hash, true, 100, magic_sum);

	const uint8_t (*hashes)[32] = (const uint8_t (*)[32])first.hash;
	for (int i = 0; i < 100; i++)
		assert_int_equal(wd_store_attachment_release(store, hashes, 1, (uint32_t)(1000 + i),
							     &error), 0);
	assert_counters(first.hash, true, 0, 0);
	/* within the grace period the file stays */
	assert_int_equal(wd_store_attachment_gc(store, now_ms(), 3600 * 1000, &report, &error), 0);
	assert_counters(first.hash, true, 0, 0);
	assert_int_equal(wd_store_attachment_gc(store, now_ms() + 1000, 0, &report, &error), 0);
	assert_true(report.files >= 1);
	assert_counters(first.hash, false, 0, 0);
	assert_int_equal(count_chunks(first.hash), 0);
	wd_buffer_release(&body);
}

static void test_exact_bytes_raw_and_decoded(void **state)
{
	(void)state;
	char *error = NULL;
	/* irregular line lengths, LF-only folding, a trailing CRLF, a QP body:
	   none re-encodes exactly, so each is stored as it is */
	const char *bodies[] = {
		"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\nQUJD\r\nREVG\r\n",
		"QUJDREVGR0hJSktM\nTU5PUFFSU1RVVldY\nWVo=",
		"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n",
		"caf=C3=A9 au lait=\r\n na=C3=AFve\r\n",
		"",
	};
	const char *encodings[] = { "base64", "base64", "base64", "quoted-printable", "7bit" };
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct wd_attachment_put put = { .body = (const uint8_t *)bodies[i],
						 .len = strlen(bodies[i]),
						 .transfer_encoding = encodings[i],
						 .decode_base64 = true, .magic = 7 };
		struct wd_attachment_ref ref;
		if (wd_store_attachment_put(store, &put, &ref, &error) < 0)
			fail_msg("put: %s", error);
		assert_false(ref.decoded);
		struct wd_buffer back = WD_BUFFER_INIT;
		read_all(ref.hash, &back);
		assert_int_equal(back.len, put.len);
		assert_memory_equal(wd_buffer_bytes(&back), bodies[i], put.len);
		wd_buffer_release(&back);
	}
	/* a clean single-line body and a 64-column body are stored decoded */
	for (size_t line = 64; line <= 76; line += 12) {
		struct wd_buffer body = WD_BUFFER_INIT;
		make_base64(&body, 600001, line, 3);
		struct wd_attachment_put put = { .body = wd_buffer_bytes(&body), .len = body.len,
						 .transfer_encoding = "base64", .decode_base64 = true,
						 .magic = 9 };
		struct wd_attachment_ref ref;
		assert_int_equal(wd_store_attachment_put(store, &put, &ref, &error), 0);
		assert_true(ref.decoded);
		struct wd_buffer back = WD_BUFFER_INIT;
		read_all(ref.hash, &back);
		assert_int_equal(back.len, body.len);
		assert_memory_equal(wd_buffer_bytes(&back), wd_buffer_bytes(&body), body.len);
		wd_buffer_release(&back);

		/* partial reads from any offset, including inside a CRLF */
		struct wd_attachment_reader *reader = wd_store_attachment_open(store, ref.hash, &error);
		assert_non_null(reader);
		srand(11);
		for (int k = 0; k < 60; k++) {
			uint64_t offset = (uint64_t)rand() % body.len;
			if (k == 0)
				offset = line; /* the CR of the first line break */
			if (k == 1)
				offset = body.len - 1;
			assert_int_equal(wd_attachment_reader_seek(reader, offset, &error), 0);
			struct wd_buffer part = WD_BUFFER_INIT;
			bool eof = false;
			assert_int_equal(wd_attachment_reader_read(reader, &part, &eof, &error), 0);
			size_t n = part.len < 5000 ? part.len : 5000;
			assert_true(n > 0);
			assert_true(offset + n <= body.len);
			assert_memory_equal(wd_buffer_bytes(&part), wd_buffer_bytes(&body) + offset, n);
			wd_buffer_release(&part);
		}
		wd_attachment_reader_close(&reader);
		wd_buffer_release(&body);
	}
}

struct put_thread {
	const struct wd_attachment_put *put;
	int failures;
	int created;
};

static void *put_thread_main(void *arg)
{
	struct put_thread *t = arg;
	for (int i = 0; i < 25; i++) {
		struct wd_attachment_ref ref;
		char *error = NULL;
		if (wd_store_attachment_put(store, t->put, &ref, &error) < 0) {
			t->failures++;
			free(error);
		} else if (ref.created) {
			t->created++;
		}
	}
	return NULL;
}

static void test_concurrent_puts(void **state)
{
	(void)state;
	struct wd_buffer body = WD_BUFFER_INIT;
	make_base64(&body, 300000, 76, (unsigned)getpid());
	struct wd_attachment_put put = { .body = wd_buffer_bytes(&body), .len = body.len,
					 .transfer_encoding = "base64", .decode_base64 = true,
					 .magic = 5 };
	struct put_thread threads[4] = { { &put, 0, 0 }, { &put, 0, 0 }, { &put, 0, 0 },
					 { &put, 0, 0 } };
	pthread_t ids[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&ids[i], NULL, put_thread_main, &threads[i]);
	int created = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(ids[i], NULL);
		assert_int_equal(threads[i].failures, 0);
		created += threads[i].created;
	}
	assert_int_equal(created, 1);
	uint8_t hash[32];
	SHA256(wd_buffer_bytes(&body), body.len, hash);
	assert_counters(hash, true, 100, 500);
	assert_int_equal(count_chunks(hash), 2);
	wd_buffer_release(&body);
}

static void test_crash_leftovers_repaired(void **state)
{
	(void)state;
	/* a crash after the chunks and before the files document: chunks from
	   10 minutes ago without a file */
	const char *text = "left behind by a crash\r\n";
	uint8_t hash[32];
	SHA256((const uint8_t *)text, strlen(text), hash);
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_GRIDFS);
	mongoc_collection_t *coll =
		wd_store_collection(store, client, WD_STORE_DB_GRIDFS, "attachments.chunks");
	/* chunk 0 as our uploader writes it: id = "<hash hex>:0" */
	char id[80];
	for (int i = 0; i < 32; i++)
		snprintf(id + 2 * i, 3, "%02x", hash[i]);
	strcat(id, ":0");
	bson_t *chunk = BCON_NEW("_id", BCON_UTF8(id), "files_id",
				 BCON_BIN(BSON_SUBTYPE_BINARY, hash, 32), "n", BCON_INT32(0), "data",
				 BCON_BIN(BSON_SUBTYPE_BINARY, (const uint8_t *)"garbage", 7), "t",
				 BCON_DATE_TIME(now_ms() - 600000));
	bson_error_t berror;
	assert_true(mongoc_collection_insert_one(coll, chunk, NULL, NULL, &berror));
	bson_destroy(chunk);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_GRIDFS, client);
	assert_int_equal(count_chunks(hash), 1);

	/* a new upload of the same body is not blocked by the leftovers */
	char *error = NULL;
	struct wd_attachment_put put = { .body = (const uint8_t *)text, .len = strlen(text),
					 .magic = 3 };
	struct wd_attachment_ref ref;
	assert_int_equal(wd_store_attachment_put(store, &put, &ref, &error), 0);
	assert_true(ref.created);
	assert_int_equal(count_chunks(hash), 1);
	struct wd_buffer back = WD_BUFFER_INIT;
	read_all(hash, &back);
	assert_memory_equal(wd_buffer_bytes(&back), text, strlen(text));
	wd_buffer_release(&back);

	/* and the GC removes leftovers of a body that is never uploaded again */
	const char *other = "another orphan\r\n";
	uint8_t other_hash[32];
	SHA256((const uint8_t *)other, strlen(other), other_hash);
	client = wd_store_client(store, WD_STORE_DB_GRIDFS);
	coll = wd_store_collection(store, client, WD_STORE_DB_GRIDFS, "attachments.chunks");
	chunk = BCON_NEW("files_id", BCON_BIN(BSON_SUBTYPE_BINARY, other_hash, 32), "n",
			 BCON_INT32(0), "data", BCON_BIN(BSON_SUBTYPE_BINARY, (const uint8_t *)other,
							 (uint32_t)strlen(other)),
			 "t", BCON_DATE_TIME(now_ms()));
	assert_true(mongoc_collection_insert_one(coll, chunk, NULL, NULL, &berror));
	bson_destroy(chunk);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_GRIDFS, client);
	struct wd_attachment_gc_report report;
	/* young leftovers may belong to an upload in progress: kept */
	assert_int_equal(wd_store_attachment_gc(store, now_ms(), 3600 * 1000, &report, &error), 0);
	assert_int_equal(count_chunks(other_hash), 1);
	assert_int_equal(wd_store_attachment_gc(store, now_ms() + 2000, 0, &report, &error), 0);
	assert_true(report.orphan_chunk_sets >= 1);
	assert_int_equal(count_chunks(other_hash), 0);
	/* the referenced file is untouched */
	assert_counters(hash, true, 1, 3);
}

int main(void)
{
	int ret = test_stack_open("test-store-attachment");
	if (ret != 0)
		return ret;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dedup_refcount_gc),
		cmocka_unit_test(test_exact_bytes_raw_and_decoded),
		cmocka_unit_test(test_concurrent_puts),
		cmocka_unit_test(test_crash_leftovers_repaired),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	test_stack_drop();
	return failed;
}
