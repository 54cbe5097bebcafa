/*
 * test-outbound-queue.c — wd_outbound_queue() against the real stack (WD_MONGO_URL; exit 77
 * without): the documents ZoneMTA reads, field by field.
 *
 *   queue_documents        a CRLF message with Message-ID and Date to two recipients: the
 *                          queue id's form; the GridFS files document (filename, contentType,
 *                          length, metadata.created) and every field of metadata.data
 *                          (id, from, to, interface, transtype, time, dkim, userId, user,
 *                          parentId, reason, origin, headers as {key, line} "binary"
 *                          strings, parsedEnvelope, messageId, date, bodySize); the two
 *                          zone-queue entries; and the header lines re-joined as ZoneMTA does
 *                          followed by the GridFS file equal the input bytes.
 *   added_headers          no Message-ID, no Date, a Bcc: Date and Message-ID are added at
 *                          the top (in that order), Bcc is gone from the lines but counted in
 *                          parsedEnvelope.bcc; groups are flattened; the file is the body.
 *   forward_loop           reason "forward" with sender.loopSecret: an X-WildDuck-Seen line
 *                          at the top whose HMAC the test recomputes; the stored message
 *                          queued again for the same deliveries is WD_OUTBOUND_LOOP, for
 *                          other deliveries it is queued; 30 Received: lines are a loop;
 *                          forwarded_for puts [forwarded_for] in the envelope's `to`.
 *   eight_bit_and_edges    an 8-bit header (stored as a "binary" string), a folded line, a
 *                          message without an empty line (all header, empty body), an empty
 *                          body, bare-LF line ends (kept in the body; the header lines
 *                          re-join with CRLF).
 *   refused_input          CR/LF, space or <> in addresses, no recipients, NUL in the header
 *                          block (FerretDB), a message over 64 MiB: WD_ERROR, nothing written.
 *   concurrent_ids         8 threads × 200 queue ids: all distinct, 18 hex characters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "outbound-private.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store.h"

#include "outbound-fixture.h"

#define SECRET "loop secret for tests"

static struct wd_store *store;
static struct wd_outbound *ob;
static char sender_db[128];

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- reading what was written ---- */

static bson_t *files_doc(const char *id)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_SENDER, "mail.files");
	char filename[64];
	snprintf(filename, sizeof(filename), "message %s", id);
	bson_t *filter = BCON_NEW("filename", BCON_UTF8(filename));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	const bson_t *doc;
	bson_t *copy = NULL;
	if (mongoc_cursor_next(cursor, &doc))
		copy = bson_copy(doc);
	assert_false(mongoc_cursor_next(cursor, &doc)); /* exactly one */
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_SENDER, client);
	return copy;
}

static size_t entries(const char *id, bson_t **out, size_t max)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_SENDER, "zone-queue");
	bson_t *filter = BCON_NEW("id", BCON_UTF8(id));
	bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	size_t n = 0;
	while (mongoc_cursor_next(cursor, &doc)) {
		if (n < max)
			out[n] = bson_copy(doc);
		n++;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_SENDER, client);
	return n;
}

static size_t count_collection(const char *name)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_SENDER, name);
	bson_t filter = BSON_INITIALIZER;
	int64_t n = mongoc_collection_count_documents(coll, &filter, NULL, NULL, NULL, NULL);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_SENDER, client);
	return n < 0 ? 0 : (size_t)n;
}

/* The GridFS file's bytes, read with the bucket API. */
static uint8_t *file_bytes(const bson_t *files, size_t *len_r)
{
	bson_iter_t it;
	assert_true(bson_iter_init_find(&it, files, "_id"));
	const bson_value_t *id = bson_iter_value(&it);
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_SENDER);
	mongoc_database_t *db = mongoc_client_get_database(client, sender_db);
	bson_t *opts = BCON_NEW("bucketName", BCON_UTF8("mail"));
	bson_error_t error;
	mongoc_gridfs_bucket_t *bucket = mongoc_gridfs_bucket_new(db, opts, NULL, &error);
	assert_non_null(bucket);
	mongoc_stream_t *stream = mongoc_gridfs_bucket_open_download_stream(bucket, id, &error);
	assert_non_null(stream);
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (len == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t n = mongoc_stream_read(stream, buf + len, cap - len, 1, 10000);
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	mongoc_stream_destroy(stream);
	mongoc_gridfs_bucket_destroy(bucket);
	bson_destroy(opts);
	mongoc_database_destroy(db);
	wd_store_client_release(store, WD_STORE_DB_SENDER, client);
	*len_r = len;
	return buf;
}

static const char *str_at(const bson_t *doc, const char *path)
{
	bson_iter_t it;
	if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &it) ||
	    !BSON_ITER_HOLDS_UTF8(&it))
		return NULL;
	return bson_iter_utf8(&it, NULL);
}

static bson_type_t type_at(const bson_t *doc, const char *path)
{
	bson_iter_t it;
	if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &it))
		return BSON_TYPE_EOD;
	return bson_iter_type(&it);
}

static bson_iter_t iter_at(const bson_t *doc, const char *path)
{
	bson_iter_t it;
	assert_true(bson_iter_init(&it, doc));
	assert_true(bson_iter_find_descendant(&it, path, &it));
	return it;
}

/* A JavaScript "binary" string (one code point per byte) back to bytes,
   written independently of the library's decoder. */
static size_t unbinary(const char *s, uint8_t *out)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
		if (*p < 0x80) {
			out[n++] = *p++;
		} else {
			assert_true(*p == 0xc2 || *p == 0xc3);
			out[n++] = (uint8_t)(((p[0] & 0x03) << 6) | (p[1] & 0x3f));
			p += 2;
		}
	}
	return n;
}

/* metadata.data.headers → keys[] and the re-joined block (lines + CRLF, then CRLF) */
static size_t rejoin(const bson_t *files, char keys[][64], size_t max_keys, uint8_t *block,
		     size_t *block_len)
{
	bson_iter_t it = iter_at(files, "metadata.data.headers"), arr;
	assert_true(BSON_ITER_HOLDS_ARRAY(&it));
	bson_iter_recurse(&it, &arr);
	size_t n = 0, len = 0;
	while (bson_iter_next(&arr)) {
		bson_t line_doc;
		uint32_t dlen;
		const uint8_t *data;
		bson_iter_document(&arr, &dlen, &data);
		bson_init_static(&line_doc, data, dlen);
		const char *key = str_at(&line_doc, "key"), *line = str_at(&line_doc, "line");
		assert_non_null(key);
		assert_non_null(line);
		if (n < max_keys)
			snprintf(keys[n], 64, "%s", key);
		if (n > 0) {
			memcpy(block + len, "\r\n", 2);
			len += 2;
		}
		len += unbinary(line, block + len);
		n++;
	}
	memcpy(block + len, "\r\n\r\n", 4);
	*block_len = len + 4;
	return n;
}

static void relaxed_hash_of(const char *canonical, char out[45])
{
	unsigned char md[32];
	unsigned int md_len;
	EVP_Digest(canonical, strlen(canonical), md, &md_len, EVP_sha256(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, 32);
}

static int queue(const char *raw, size_t len, const char *from, const char *const *to,
		 size_t to_count, const char *reason, char id[19], char **error)
{
	bson_oid_t user;
	bson_oid_init_from_string(&user, "0123456789abcdef01234567");
	struct wd_outbound_message msg = {
		.from = from, .to = to, .to_count = to_count, .raw = (const uint8_t *)raw,
		.len = len, .reason = reason, .interface = "autoreplies", .user = &user,
		.parent_id = "parent-1", .origin = "192.0.2.7", .user_email = "owner@example.com",
	};
	return wd_outbound_queue(ob, &msg, id, error);
}

/* ---- tests ---- */

static const char plain_message[] =
	"Message-ID: <m1@example.com>\r\n"
	"Date: Tue, 04 Feb 2025 10:00:00 +0000\r\n"
	"From: \"Sender Name\" <Sender@Example.COM>\r\n"
	"To: a@example.net, B <b@example.org>\r\n"
	"Subject: a folded\r\n"
	"  subject\r\n"
	"\r\n"
	"Hello  there \r\n"
	"\r\n"
	"World\r\n"
	"\r\n";

static void test_queue_documents(void **state)
{
	const char *to[] = { "a@example.net", "b@[192.0.2.1]" };
	char id[19], *error = NULL;
	int64_t before = now_ms();
	assert_int_equal(queue(plain_message, strlen(plain_message), "sender@example.com", to, 2,
			       "autoreply", id, &error), WD_OK);
	int64_t after = now_ms();
	/* ZoneMTA's seq-index form: 14 hex digits of time*4096+seq, 4 hex suffix */
	assert_int_equal(strlen(id), 18);
	assert_int_equal(strspn(id, "0123456789abcdef"), 18);
	char head[15];
	memcpy(head, id, 14);
	head[14] = '\0';
	unsigned long long t = strtoull(head, NULL, 16) / 4096;
	assert_true((int64_t)t >= before && (int64_t)t <= after);

	bson_t *files = files_doc(id);
	assert_non_null(files);
	char filename[64];
	snprintf(filename, sizeof(filename), "message %s", id);
	assert_string_equal(str_at(files, "filename"), filename);
	assert_string_equal(str_at(files, "contentType"), "message/rfc822");
	assert_int_equal(type_at(files, "uploadDate"), BSON_TYPE_DATE_TIME);
	assert_int_equal(type_at(files, "metadata.created"), BSON_TYPE_DATE_TIME);
	const char *body = strstr(plain_message, "\r\n\r\n") + 4;
	bson_iter_t it = iter_at(files, "length");
	assert_int_equal(bson_iter_as_int64(&it), strlen(body));

	/* metadata.data, field by field */
	assert_string_equal(str_at(files, "metadata.data.id"), id);
	assert_string_equal(str_at(files, "metadata.data.from"), "sender@example.com");
	assert_string_equal(str_at(files, "metadata.data.to.0"), "a@example.net");
	assert_string_equal(str_at(files, "metadata.data.to.1"), "b@[192.0.2.1]");
	assert_int_equal(type_at(files, "metadata.data.to.2"), BSON_TYPE_EOD);
	assert_string_equal(str_at(files, "metadata.data.interface"), "autoreplies");
	assert_string_equal(str_at(files, "metadata.data.transtype"), "API");
	assert_int_equal(type_at(files, "metadata.data.time"), BSON_TYPE_DOUBLE);
	it = iter_at(files, "metadata.data.time");
	assert_true(bson_iter_double(&it) >= (double)before && bson_iter_double(&it) <= (double)after);
	assert_string_equal(str_at(files, "metadata.data.dkim.hashAlgo"), "sha256");
	char expected_hash[45];
	relaxed_hash_of("Hello there\r\n\r\nWorld\r\n", expected_hash);
	assert_string_equal(str_at(files, "metadata.data.dkim.bodyHash"), expected_hash);
	assert_string_equal(str_at(files, "metadata.data.userId"), "0123456789abcdef01234567");
	assert_string_equal(str_at(files, "metadata.data.user"), "owner@example.com");
	assert_string_equal(str_at(files, "metadata.data.parentId"), "parent-1");
	assert_string_equal(str_at(files, "metadata.data.reason"), "autoreply");
	assert_string_equal(str_at(files, "metadata.data.origin"), "192.0.2.7");
	assert_string_equal(str_at(files, "metadata.data.parsedEnvelope.from"), "Sender@example.com");
	assert_string_equal(str_at(files, "metadata.data.parsedEnvelope.to.0"), "a@example.net");
	assert_string_equal(str_at(files, "metadata.data.parsedEnvelope.to.1"), "b@example.org");
	assert_int_equal(type_at(files, "metadata.data.parsedEnvelope.cc"), BSON_TYPE_ARRAY);
	assert_int_equal(type_at(files, "metadata.data.parsedEnvelope.cc.0"), BSON_TYPE_EOD);
	assert_int_equal(type_at(files, "metadata.data.parsedEnvelope.bcc.0"), BSON_TYPE_EOD);
	assert_int_equal(type_at(files, "metadata.data.parsedEnvelope.replyTo"), BSON_TYPE_BOOL);
	assert_int_equal(type_at(files, "metadata.data.parsedEnvelope.sender"), BSON_TYPE_BOOL);
	assert_string_equal(str_at(files, "metadata.data.messageId"), "<m1@example.com>");
	assert_string_equal(str_at(files, "metadata.data.date"), "Tue, 04 Feb 2025 10:00:00 +0000");
	assert_int_equal(type_at(files, "metadata.data.bodySize"), BSON_TYPE_INT32);
	it = iter_at(files, "metadata.data.bodySize");
	assert_int_equal(bson_iter_int32(&it), strlen(body));

	char keys[16][64];
	uint8_t block[4096];
	size_t block_len;
	assert_int_equal(rejoin(files, keys, 16, block, &block_len), 5);
	const char *expected_keys[] = { "message-id", "date", "from", "to", "subject" };
	for (int i = 0; i < 5; i++)
		assert_string_equal(keys[i], expected_keys[i]);
	assert_string_equal(str_at(files, "metadata.data.headers.4.line"), "Subject: a folded\r\n  subject");

	/* ZoneMTA's view: the re-joined header block, then the file */
	size_t file_len;
	uint8_t *file = file_bytes(files, &file_len);
	assert_int_equal(block_len + file_len, strlen(plain_message));
	assert_memory_equal(block, plain_message, block_len);
	assert_memory_equal(file, plain_message + block_len, file_len);
	free(file);

	/* one queue entry per recipient */
	bson_t *docs[4];
	assert_int_equal(entries(id, docs, 4), 2);
	const char *seqs[] = { "001", "002" }, *domains[] = { "example.net", "192.0.2.1" };
	for (int i = 0; i < 2; i++) {
		assert_string_equal(str_at(docs[i], "id"), id);
		assert_string_equal(str_at(docs[i], "seq"), seqs[i]);
		assert_string_equal(str_at(docs[i], "domain"), domains[i]);
		assert_string_equal(str_at(docs[i], "sendingZone"), "default");
		assert_string_equal(str_at(docs[i], "assigned"), "no");
		assert_string_equal(str_at(docs[i], "recipient"), to[i]);
		assert_int_equal(type_at(docs[i], "locked"), BSON_TYPE_BOOL);
		it = iter_at(docs[i], "locked");
		assert_false(bson_iter_bool(&it));
		assert_int_equal(type_at(docs[i], "lockTime"), BSON_TYPE_INT32);
		it = iter_at(docs[i], "lockTime");
		assert_int_equal(bson_iter_int32(&it), 0);
		assert_int_equal(type_at(docs[i], "queued"), BSON_TYPE_DATE_TIME);
		it = iter_at(docs[i], "queued");
		int64_t queued = bson_iter_date_time(&it);
		assert_true(queued >= before && queued <= after);
		assert_int_equal(type_at(docs[i], "created"), BSON_TYPE_DATE_TIME);
		bson_destroy(docs[i]);
	}
	bson_destroy(files);
	struct wd_outbound_stats st;
	wd_outbound_get_stats(ob, &st);
	assert_true(st.queued >= 1);
}

static void test_added_headers(void **state)
{
	static const char raw[] =
		"From: me@example.com\r\n"
		"To: Group: x@example.net, y@example.net;, z@example.net\r\n"
		"Bcc: hidden@example.org\r\n"
		"Subject: no id\r\n"
		"\r\n"
		"body\r\n";
	const char *to[] = { "x@example.net" };
	char id[19], *error = NULL;
	assert_int_equal(queue(raw, strlen(raw), "me@example.com", to, 1, "autoreply", id, &error),
			 WD_OK);
	bson_t *files = files_doc(id);
	char keys[16][64];
	uint8_t block[4096];
	size_t block_len;
	assert_int_equal(rejoin(files, keys, 16, block, &block_len), 5);
	assert_string_equal(keys[0], "date");
	assert_string_equal(keys[1], "message-id");
	assert_string_equal(keys[2], "from");
	assert_string_equal(keys[3], "to");
	assert_string_equal(keys[4], "subject");
	const char *mid = str_at(files, "metadata.data.messageId");
	assert_non_null(mid);
	/* <uuid v4@domain of the envelope sender> */
	assert_int_equal(strlen(mid), 1 + 36 + 1 + strlen("example.com") + 1);
	assert_int_equal(mid[15], '4');
	assert_non_null(strstr(mid, "@example.com>"));
	char line[128];
	snprintf(line, sizeof(line), "Message-ID: %s", mid);
	assert_string_equal(str_at(files, "metadata.data.headers.1.line"), line);
	const char *date = str_at(files, "metadata.data.date");
	assert_non_null(date);
	assert_int_equal(strlen(date), 31);
	assert_string_equal(date + 26, "+0000");
	snprintf(line, sizeof(line), "Date: %s", date);
	assert_string_equal(str_at(files, "metadata.data.headers.0.line"), line);
	assert_string_equal(str_at(files, "metadata.data.parsedEnvelope.to.0"), "x@example.net");
	assert_string_equal(str_at(files, "metadata.data.parsedEnvelope.to.1"), "y@example.net");
	assert_string_equal(str_at(files, "metadata.data.parsedEnvelope.to.2"), "z@example.net");
	assert_string_equal(str_at(files, "metadata.data.parsedEnvelope.bcc.0"), "hidden@example.org");
	size_t file_len;
	uint8_t *file = file_bytes(files, &file_len);
	assert_int_equal(file_len, 6);
	assert_memory_equal(file, "body\r\n", 6);
	free(file);
	bson_destroy(files);
}

static void seen_hmac(const char *salt, const char *json, char hex[65])
{
	char data[1024];
	snprintf(data, sizeof(data), "%s%s", salt, json);
	unsigned char md[32];
	unsigned int md_len;
	HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)data, strlen(data), md,
	     &md_len);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void test_forward_loop(void **state)
{
	static const char raw[] = "Message-ID: <fw@example.com>\r\n"
				  "Date: Tue, 04 Feb 2025 10:00:00 +0000\r\n"
				  "Subject: forward me\r\n"
				  "\r\n"
				  "text\r\n";
	const char *to[] = { "target@example.net" };
	char id[19], *error = NULL;
	struct wd_outbound_message msg = {
		.from = "orig@example.org", .to = to, .to_count = 1, .raw = (const uint8_t *)raw,
		.len = strlen(raw), .reason = "forward", .interface = "forwarder",
		.forwarded_for = "user@example.com",
	};
	assert_int_equal(wd_outbound_queue(ob, &msg, id, &error), WD_OK);
	bson_t *files = files_doc(id);
	/* WildDuck's forward: the envelope's to is the recipient that forwards */
	assert_string_equal(str_at(files, "metadata.data.to.0"), "user@example.com");
	assert_int_equal(type_at(files, "metadata.data.to.1"), BSON_TYPE_EOD);
	assert_string_equal(str_at(files, "metadata.data.reason"), "forward");
	/* "X-WildDuck-Seen:" folded before the 76-character value, as libmime folds it */
	const char *seen = str_at(files, "metadata.data.headers.0.line");
	assert_non_null(seen);
	assert_string_equal(str_at(files, "metadata.data.headers.0.key"), "x-wildduck-seen");
	assert_int_equal(strncmp(seen, "X-WildDuck-Seen:\r\n ", 19), 0);
	const char *value = seen + 19;
	assert_int_equal(strlen(value), 76);
	char salt[13], hex[65];
	memcpy(salt, value, 12);
	salt[12] = '\0';
	seen_hmac(salt, "[{\"to\":\"target@example.net\",\"forwardedFor\":\"user@example.com\"}]", hex);
	assert_string_equal(value + 12, hex);
	bson_t *docs[2];
	assert_int_equal(entries(id, docs, 2), 1);
	assert_string_equal(str_at(docs[0], "recipient"), "target@example.net");
	bson_destroy(docs[0]);

	/* the forwarded message comes back: same deliveries → loop, nothing queued */
	uint8_t block[4096];
	char keys[16][64];
	size_t block_len, file_len;
	rejoin(files, keys, 16, block, &block_len);
	uint8_t *file = file_bytes(files, &file_len);
	char again[8192];
	memcpy(again, block, block_len);
	memcpy(again + block_len, file, file_len);
	free(file);
	size_t files_before = count_collection("mail.files");
	msg.raw = (const uint8_t *)again;
	msg.len = block_len + file_len;
	char id2[19];
	assert_int_equal(wd_outbound_queue(ob, &msg, id2, &error), WD_OUTBOUND_LOOP);
	assert_string_equal(error, "Message loop detected");
	free(error);
	error = NULL;
	assert_int_equal(count_collection("mail.files"), files_before);
	/* other deliveries: not the same forward, queued (with a second Seen line) */
	const char *other[] = { "someone@example.net" };
	msg.to = other;
	assert_int_equal(wd_outbound_queue(ob, &msg, id2, &error), WD_OK);
	bson_t *files2 = files_doc(id2);
	assert_string_equal(str_at(files2, "metadata.data.headers.0.key"), "x-wildduck-seen");
	assert_string_equal(str_at(files2, "metadata.data.headers.1.key"), "x-wildduck-seen");
	bson_destroy(files2);
	bson_destroy(files);

	/* 30 Received: headers are a loop even without a matching Seen line */
	char many[8192] = "";
	for (int i = 0; i < 30; i++)
		strcat(many, "Received: from a by b; Tue, 04 Feb 2025 10:00:00 +0000\r\n");
	strcat(many, "Subject: hops\r\n\r\nx\r\n");
	msg.raw = (const uint8_t *)many;
	msg.len = strlen(many);
	assert_int_equal(wd_outbound_queue(ob, &msg, id2, &error), WD_OUTBOUND_LOOP);
	free(error);
	error = NULL;
	/* 29 are fine */
	msg.raw = (const uint8_t *)many + strlen("Received: from a by b; Tue, 04 Feb 2025 10:00:00 +0000\r\n");
	msg.len = strlen((const char *)msg.raw);
	assert_int_equal(wd_outbound_queue(ob, &msg, id2, &error), WD_OK);
	/* an autoreply is never loop-checked */
	msg.raw = (const uint8_t *)many;
	msg.len = strlen(many);
	msg.reason = "autoreply";
	assert_int_equal(wd_outbound_queue(ob, &msg, id2, &error), WD_OK);
}

static void test_eight_bit_and_edges(void **state)
{
	const char *to[] = { "r@example.net" };
	char id[19], *error = NULL;
	char keys[16][64];
	uint8_t block[4096];
	size_t block_len, file_len;

	/* "Subject: Tõnu" (UTF-8 bytes) is stored as the binary string "TÃµnu" */
	static const char eight[] = "Message-ID: <e@x>\r\nDate: Tue, 04 Feb 2025 10:00:00 +0000\r\n"
				    "Subject: T\xc3\xb5nu\r\n\r\nb\xe9ody\r\n";
	assert_int_equal(queue(eight, strlen(eight), "", to, 1, "autoreply", id, &error), WD_OK);
	bson_t *files = files_doc(id);
	assert_string_equal(str_at(files, "metadata.data.headers.2.line"),
			    "Subject: T\xc3\x83\xc2\xb5nu");
	assert_string_equal(str_at(files, "metadata.data.from"), "");
	rejoin(files, keys, 16, block, &block_len);
	uint8_t *file = file_bytes(files, &file_len);
	assert_int_equal(block_len + file_len, strlen(eight));
	assert_memory_equal(block, eight, block_len);
	assert_memory_equal(file, eight + block_len, file_len);
	free(file);
	bson_destroy(files);

	/* no empty line: everything is header, the body is empty */
	static const char headers_only[] = "Message-ID: <h@x>\r\nDate: Tue, 04 Feb 2025 10:00:00 +0000\r\n"
					   "Subject: only\r\n";
	assert_int_equal(queue(headers_only, strlen(headers_only), "a@b", to, 1, "autoreply", id,
			       &error), WD_OK);
	files = files_doc(id);
	assert_int_equal(rejoin(files, keys, 16, block, &block_len), 3);
	file = file_bytes(files, &file_len);
	assert_int_equal(file_len, 0);
	assert_int_equal(block_len, strlen(headers_only) + 2);
	free(file);
	char hash[45];
	relaxed_hash_of("", hash);
	assert_string_equal(str_at(files, "metadata.data.dkim.bodyHash"), hash);
	bson_destroy(files);

	/* empty body after the empty line */
	static const char empty_body[] = "Message-ID: <eb@x>\r\nDate: Tue, 04 Feb 2025 10:00:00 +0000\r\n\r\n";
	assert_int_equal(queue(empty_body, strlen(empty_body), "a@b", to, 1, "autoreply", id,
			       &error), WD_OK);
	files = files_doc(id);
	rejoin(files, keys, 16, block, &block_len);
	file = file_bytes(files, &file_len);
	assert_int_equal(file_len, 0);
	assert_int_equal(block_len, strlen(empty_body));
	assert_memory_equal(block, empty_body, block_len);
	free(file);
	bson_destroy(files);

	/* bare LF: the header lines come back with CRLF, the body as it was */
	static const char lf[] = "Message-ID: <lf@x>\nDate: Tue, 04 Feb 2025 10:00:00 +0000\nSubject: a\n b\n\n"
				 "line one  \nline two\n";
	assert_int_equal(queue(lf, strlen(lf), "a@b", to, 1, "autoreply", id, &error), WD_OK);
	files = files_doc(id);
	assert_int_equal(rejoin(files, keys, 16, block, &block_len), 3);
	assert_string_equal(str_at(files, "metadata.data.headers.2.line"), "Subject: a\r\n b");
	static const char crlf_block[] = "Message-ID: <lf@x>\r\nDate: Tue, 04 Feb 2025 10:00:00 +0000\r\n"
					 "Subject: a\r\n b\r\n\r\n";
	assert_int_equal(block_len, strlen(crlf_block));
	assert_memory_equal(block, crlf_block, block_len);
	file = file_bytes(files, &file_len);
	assert_int_equal(file_len, strlen("line one  \nline two\n"));
	assert_memory_equal(file, "line one  \nline two\n", file_len);
	free(file);
	relaxed_hash_of("line one\r\nline two\r\n", hash);
	assert_string_equal(str_at(files, "metadata.data.dkim.bodyHash"), hash);
	bson_destroy(files);
}

static void test_refused_input(void **state)
{
	static const char raw[] = "Subject: x\r\n\r\ny\r\n";
	char id[19], *error = NULL;
	size_t files_before = count_collection("mail.files");
	size_t entries_before = count_collection("zone-queue");
	const char *bad_to[][1] = { { "a@b\r\nRSET" }, { "a b@c" }, { "<a@b>" }, { "" }, { "a@b\n" } };
	for (size_t i = 0; i < sizeof(bad_to) / sizeof(bad_to[0]); i++) {
		assert_int_equal(queue(raw, strlen(raw), "s@x", bad_to[i], 1, "autoreply", id, &error),
				 WD_ERROR);
		assert_non_null(error);
		free(error);
		error = NULL;
		assert_int_equal(id[0], '\0');
	}
	const char *to[] = { "ok@example.net" };
	assert_int_equal(queue(raw, strlen(raw), "s@x\r\nDATA", to, 1, "autoreply", id, &error), WD_ERROR);
	free(error);
	error = NULL;
	assert_int_equal(queue(raw, strlen(raw), "s@x", to, 0, "autoreply", id, &error), WD_ERROR);
	assert_string_equal(error, "No valid recipients");
	free(error);
	error = NULL;
	static const char nul[] = "Subject: a\0b\r\n\r\nbody\r\n";
	if (!wd_store_caps(store)->nul_in_strings) {
		assert_int_equal(queue(nul, sizeof(nul) - 1, "s@x", to, 1, "autoreply", id, &error),
				 WD_ERROR);
		free(error);
		error = NULL;
	}
	/* a NUL in the body is fine: the body is bytes in GridFS */
	static const char nul_body[] = "Subject: a\r\n\r\nbo\0dy\r\n";
	assert_int_equal(queue(nul_body, sizeof(nul_body) - 1, "s@x", to, 1, "autoreply", id, &error),
			 WD_OK);
	size_t big_len = 64 * 1024 * 1024 + 1;
	char *big = malloc(big_len);
	memset(big, 'a', big_len);
	assert_int_equal(queue(big, big_len, "s@x", to, 1, "autoreply", id, &error), WD_ERROR);
	free(big);
	free(error);
	assert_int_equal(count_collection("mail.files"), files_before + 1);
	assert_int_equal(count_collection("zone-queue"), entries_before + 1);
}

#define ID_THREADS 8
#define IDS_PER_THREAD 200

static char ids[ID_THREADS * IDS_PER_THREAD][WD_QUEUE_ID_SIZE];

static void *id_thread(void *arg)
{
	size_t base = (size_t)(uintptr_t)arg * IDS_PER_THREAD;
	for (size_t i = 0; i < IDS_PER_THREAD; i++)
		wd__queue_id_next(ob, ids[base + i]);
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_concurrent_ids(void **state)
{
	pthread_t threads[ID_THREADS];
	for (uintptr_t i = 0; i < ID_THREADS; i++)
		pthread_create(&threads[i], NULL, id_thread, (void *)i);
	for (int i = 0; i < ID_THREADS; i++)
		pthread_join(threads[i], NULL);
	qsort(ids, ID_THREADS * IDS_PER_THREAD, WD_QUEUE_ID_SIZE, cmp_id);
	for (size_t i = 0; i < ID_THREADS * IDS_PER_THREAD; i++) {
		assert_int_equal(strlen(ids[i]), 18);
		if (i > 0)
			assert_true(strcmp(ids[i - 1], ids[i]) < 0);
	}
}

int main(void)
{
	const char *url = getenv("WD_MONGO_URL"), *redis = getenv("WD_REDIS_URL");
	if (url == NULL || redis == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL are not set: start the stack\n");
		return 77;
	}
	wd_log_init("test-outbound-queue", WD_LOG_SINK_STDERR, WD_LOG_WARNING);
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);
	snprintf(sender_db, sizeof(sender_db), "wdtest_zmta_q_%d", (int)getpid());
	char main_url[512];
	snprintf(main_url, sizeof(main_url), "%s-outq-%d", url, (int)getpid());
	struct wd_config *config = NULL;
	store = outbound_fixture_open(main_url, redis, sender_db,
				      "[sender]\nloopSecret = \"" SECRET "\"\n", &config);
	char *error = NULL;
	ob = store != NULL ? wd_outbound_create(store, config, &error) : NULL;
	if (ob == NULL) {
		fprintf(stderr, "setup: %s\n", error != NULL ? error : "no store");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_documents),
		cmocka_unit_test(test_added_headers),
		cmocka_unit_test(test_forward_loop),
		cmocka_unit_test(test_eight_bit_and_edges),
		cmocka_unit_test(test_refused_input),
		cmocka_unit_test(test_concurrent_ids),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	wd_outbound_destroy(&ob);
	outbound_fixture_drop(&store);
	wd_config_free(&config);
	mongoc_cleanup();
	return failed;
}
