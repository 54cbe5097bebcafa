/* Integration tests (suite storage): STORE, COPY, MOVE and EXPUNGE on stored
 * messages, with the counters that depend on them — MODSEQ, flag mirrors,
 * attachment references, quota, journal — checked after a mixed sequence. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-attachment.h"
#include "wd-store-journal.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct wd_store *store;
static bson_oid_t user, inbox, archive;

static const char plain[] = "Subject: plain\r\n\r\nhello\r\n";
static const char with_att[] = "Subject: att\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n"
			       "--Z\r\n\r\ntext\r\n--Z\r\nContent-Type: application/zip\r\n"
			       "Content-Transfer-Encoding: base64\r\n\r\nUEsDBBQAAAAIAA==\r\n--Z--\r\n";
static const char third[] = "Subject: third\r\n\r\nthree\r\n";
static const char att_body[] = "UEsDBBQAAAAIAA=="; /* the CRLF before "--Z--" belongs to the delimiter */

static bson_t *find_one(enum wd_store_db db, const char *collection, bson_t *query)
{
	mongoc_client_t *client = wd_store_client(store, db);
	mongoc_collection_t *coll = wd_store_collection(store, client, db, collection);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	bson_t *copy = mongoc_cursor_next(cursor, &doc) ? bson_copy(doc) : NULL;
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
	bson_destroy(query);
	return copy;
}

static bson_t *message(const bson_oid_t *mailbox, uint32_t uid)
{
	return find_one(WD_STORE_DB_MAIN, "messages",
			BCON_NEW("mailbox", BCON_OID(mailbox), "uid", BCON_INT32((int32_t)uid)));
}

static int64_t field_int(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	return bson_iter_init_find(&iter, doc, key) ? bson_iter_as_int64(&iter) : -1;
}

static int field_bool(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key))
		return -1; /* absent */
	return bson_iter_bool(&iter) ? 1 : 0;
}

static int64_t storage_used(void)
{
	bson_t *doc = find_one(WD_STORE_DB_USERS, "users", BCON_NEW("_id", BCON_OID(&user)));
	int64_t used = field_int(doc, "storageUsed");
	bson_destroy(doc);
	return used;
}

static void attachment_refs(int64_t *c, int64_t *m)
{
	uint8_t hash[32];
	SHA256((const uint8_t *)att_body, strlen(att_body), hash);
	bool found;
	char *error = NULL;
	assert_int_equal(wd_store_attachment_counters(store, hash, &found, c, m, &error), 0);
	assert_true(found);
}

static int journal_count(const bson_oid_t *mailbox, const char *command)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "journal");
	bson_t *filter = BCON_NEW("mailbox", BCON_OID(mailbox), "command", BCON_UTF8(command));
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return (int)n;
}

static struct wd_message_added add(const char *raw)
{
	struct wd_message_add req = { .raw = (const uint8_t *)raw, .len = strlen(raw),
				      .source = "IMAP", .decode_base64 = true };
	struct wd_message_added added;
	char *error = NULL;
	if (wd_store_message_add(store, &inbox, &req, &added, &error) < 0)
		fail_msg("add: %s", error);
	return added;
}

static void test_mixed_sequence(void **state)
{
	(void)state;
	struct wd_message_added a = add(plain), b = add(with_att), c = add(third);
	int64_t sizes = (int64_t)(a.size + b.size + c.size);
	assert_int_equal(storage_used(), sizes);
	int64_t refs, magic_sum;
	attachment_refs(&refs, &magic_sum);
	assert_int_equal(refs, 1);

	/* STORE +FLAGS (\Seen \Flagged) on 1:2: one MODSEQ, every mirror set */
	static const char *const seen_flagged[] = { "\\Seen", "\\Flagged" };
	uint32_t uids12[] = { 1, 2 };
	struct wd_flags_change change = { .uids = uids12, .uid_count = 2, .op = WD_FLAGS_ADD,
					   .flags = seen_flagged, .flag_count = 2 };
	struct wd_flags_result result;
	char *error = NULL;
	assert_int_equal(wd_store_message_flags(store, &inbox, &change, &result, &error), 0);
	assert_int_equal(result.changed, 2);
	uint32_t store_modseq = result.modseq;
	assert_true(store_modseq > c.modseq);
	free(result.modified);
	for (uint32_t uid = 1; uid <= 2; uid++) {
		bson_t *doc = message(&inbox, uid);
		assert_int_equal(field_bool(doc, "unseen"), 0);
		assert_int_equal(field_bool(doc, "flagged"), 1);
		assert_int_equal(field_int(doc, "modseq"), store_modseq);
		bson_destroy(doc);
	}
	assert_int_equal(journal_count(&inbox, "FETCH"), 2);

	/* the same STORE again changes nothing and allocates no MODSEQ */
	assert_int_equal(wd_store_message_flags(store, &inbox, &change, &result, &error), 0);
	assert_int_equal(result.changed, 0);
	assert_int_equal(result.modseq, 0);
	free(result.modified);

	/* UNCHANGEDSINCE below the messages' MODSEQ: reported, not changed */
	static const char *const draft[] = { "\\Draft" };
	change = (struct wd_flags_change){ .uids = uids12, .uid_count = 2, .op = WD_FLAGS_ADD,
					   .flags = draft, .flag_count = 1,
					   .unchanged_since = store_modseq - 1 };
	assert_int_equal(wd_store_message_flags(store, &inbox, &change, &result, &error), 0);
	assert_int_equal(result.changed, 0);
	assert_int_equal(result.modified_count, 2);
	free(result.modified);

	/* FLAGS replace on 1 with (\Deleted $Custom): several mirrors at once */
	static const char *const replace[] = { "\\Deleted", "$Custom" };
	uint32_t uid1[] = { 1 };
	change = (struct wd_flags_change){ .uids = uid1, .uid_count = 1, .op = WD_FLAGS_REPLACE,
					   .flags = replace, .flag_count = 2 };
	assert_int_equal(wd_store_message_flags(store, &inbox, &change, &result, &error), 0);
	free(result.modified);
	bson_t *doc = message(&inbox, 1);
	assert_int_equal(field_bool(doc, "unseen"), 1);
	assert_int_equal(field_bool(doc, "flagged"), 0);
	assert_int_equal(field_bool(doc, "undeleted"), 0);
	assert_int_equal(field_bool(doc, "searchable"), -1);
	bson_destroy(doc);
	/* the keyword joined the mailbox's flags; system flags never do */
	doc = find_one(WD_STORE_DB_MAIN, "mailboxes", BCON_NEW("_id", BCON_OID(&inbox)));
	bson_iter_t flags_iter;
	assert_true(bson_iter_init_find(&flags_iter, doc, "flags") &&
		    BSON_ITER_HOLDS_ARRAY(&flags_iter));
	bson_t *expected_flags = BCON_NEW("flags", "[", BCON_UTF8("$Custom"), "]");
	bson_iter_t want_iter;
	bson_iter_init_find(&want_iter, expected_flags, "flags");
	const uint8_t *got_data, *want_data;
	uint32_t got_len, want_len;
	bson_iter_array(&flags_iter, &got_len, &got_data);
	bson_iter_array(&want_iter, &want_len, &want_data);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got_data, want_data, got_len);
	bson_destroy(expected_flags);
	bson_destroy(doc);

	/* -FLAGS with other case removes the stored spelling */
	static const char *const custom[] = { "$CUSTOM" };
	change = (struct wd_flags_change){ .uids = uid1, .uid_count = 1, .op = WD_FLAGS_REMOVE,
					   .flags = custom, .flag_count = 1 };
	assert_int_equal(wd_store_message_flags(store, &inbox, &change, &result, &error), 0);
	assert_int_equal(result.changed, 1);
	free(result.modified);

	/* COPY 2 (with attachment) to Archive: references, quota, copied flag */
	uint32_t uid2[] = { 2 };
	uint32_t *map;
	size_t mapped;
	assert_int_equal(wd_store_message_copy(store, &inbox, uid2, 1, &archive, false, NULL, &map,
					       &mapped, &error), 0);
	assert_int_equal(mapped, 1);
	assert_int_equal(map[0], 2);
	assert_int_equal(map[1], 1);
	free(map);
	attachment_refs(&refs, &magic_sum);
	assert_int_equal(refs, 2);
	assert_int_equal(storage_used(), sizes + (int64_t)b.size);
	doc = message(&inbox, 2);
	assert_int_equal(field_bool(doc, "copied"), 1);
	bson_destroy(doc);
	doc = message(&archive, 1);
	assert_non_null(doc);
	assert_int_equal(field_bool(doc, "flagged"), 1); /* flags travel with the copy */
	bson_destroy(doc);
	assert_int_equal(journal_count(&archive, "EXISTS"), 1);

	/* MOVE 3 to Archive: no quota or reference change, EXPUNGE in the source */
	uint32_t uid3[] = { 3 };
	assert_int_equal(wd_store_message_copy(store, &inbox, uid3, 1, &archive, true, NULL, &map,
					       &mapped, &error), 0);
	assert_int_equal(mapped, 1);
	assert_int_equal(map[1], 2);
	free(map);
	assert_null(message(&inbox, 3));
	assert_int_equal(storage_used(), sizes + (int64_t)b.size);
	assert_int_equal(journal_count(&inbox, "EXPUNGE"), 1);

	/* EXPUNGE the \Deleted message 1: archived copy, quota down */
	uint32_t *expunged;
	size_t expunged_count;
	assert_int_equal(wd_store_message_expunge(store, &inbox, NULL, 0, NULL, &expunged,
						  &expunged_count, &error), 0);
	assert_int_equal(expunged_count, 1);
	assert_int_equal(expunged[0], 1);
	free(expunged);
	assert_null(message(&inbox, 1));
	bson_t *archived = find_one(WD_STORE_DB_MAIN, "archived", BCON_NEW("_id", BCON_OID(&a.id)));
	assert_non_null(archived);
	assert_int_equal(field_bool(archived, "exp"), 1);
	bson_destroy(archived);
	assert_int_equal(storage_used(), (int64_t)(b.size + b.size + c.size));

	/* delete the copied message 2: copied → not archived, reference released */
	static const char *const deleted[] = { "\\Deleted" };
	change = (struct wd_flags_change){ .uids = uid2, .uid_count = 1, .op = WD_FLAGS_ADD,
					   .flags = deleted, .flag_count = 1 };
	assert_int_equal(wd_store_message_flags(store, &inbox, &change, &result, &error), 0);
	free(result.modified);
	assert_int_equal(wd_store_message_expunge(store, &inbox, uid2, 1, NULL, &expunged,
						  &expunged_count, &error), 0);
	assert_int_equal(expunged_count, 1);
	free(expunged);
	assert_null(find_one(WD_STORE_DB_MAIN, "archived", BCON_NEW("_id", BCON_OID(&b.id))));
	attachment_refs(&refs, &magic_sum);
	assert_int_equal(refs, 1); /* the Archive copy still holds it */
	assert_int_equal(storage_used(), (int64_t)(b.size + c.size));

	/* MODSEQ and UID sanity of both mailboxes against their documents */
	struct wd_mailbox *box = NULL;
	assert_int_equal(wd_store_mailbox_get_by_id(store, &user, &archive, &box, &error), 0);
	assert_int_equal(box->uid_next, 3);
	bson_t *last = message(&archive, 2);
	assert_true((uint64_t)field_int(last, "modseq") <= box->modify_index);
	bson_destroy(last);
	wd_mailbox_free(&box);
}

static const char *field_str(const bson_t *doc, const char *path)
{
	bson_iter_t iter, found;
	if (!bson_iter_init(&iter, doc) || !bson_iter_find_descendant(&iter, path, &found) ||
	    !BSON_ITER_HOLDS_UTF8(&found))
		return NULL;
	return bson_iter_utf8(&found, NULL);
}

/* Field names and BSON types of a stored message as reference §2.9 lists
   them, for the shape of its example §2.9.1 (multipart with a text part and
   one base64 attachment). */
struct shape {
	const char *path;
	bson_type_t type;
};

static void expect_shape(const bson_t *doc, const struct shape *shape, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		bson_iter_t iter, found;
		if (!bson_iter_init(&iter, doc) ||
		    !bson_iter_find_descendant(&iter, shape[i].path, &found))
			fail_msg("field %s missing", shape[i].path);
		if (bson_iter_type(&found) != shape[i].type)
			fail_msg("field %s has BSON type 0x%02x, want 0x%02x", shape[i].path,
				 (unsigned)bson_iter_type(&found), (unsigned)shape[i].type);
	}
}

static void test_document_shape(void **state)
{
	(void)state;
	static const char raw[] =
		"From: Andris <andris@example.com>\r\nTo: test@example.com\r\nSubject: hello\r\n"
		"Message-ID: <abc@example.com>\r\nDate: Thu, 1 Jan 2026 10:00:00 +0200\r\n"
		"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
		"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello world\r\n"
		"--XX\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-Disposition: attachment; filename=\"a.bin\"\r\n\r\n"
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\n"
		"OTo7PD0+P0BBQkM=\r\n--XX--\r\n";
	static const struct shape shape[] = {
		{ "_id", BSON_TYPE_OID },
		{ "root", BSON_TYPE_OID },
		{ "v", BSON_TYPE_UTF8 },
		{ "user", BSON_TYPE_OID },
		{ "mailbox", BSON_TYPE_OID },
		{ "uid", BSON_TYPE_INT32 },
		{ "modseq", BSON_TYPE_INT32 },
		{ "thread", BSON_TYPE_OID },
		{ "idate", BSON_TYPE_DATE_TIME },
		{ "hdate", BSON_TYPE_DATE_TIME },
		{ "msgid", BSON_TYPE_UTF8 },
		{ "subject", BSON_TYPE_UTF8 },
		{ "flags", BSON_TYPE_ARRAY },
		{ "unseen", BSON_TYPE_BOOL },
		{ "flagged", BSON_TYPE_BOOL },
		{ "undeleted", BSON_TYPE_BOOL },
		{ "draft", BSON_TYPE_BOOL },
		{ "searchable", BSON_TYPE_BOOL },
		{ "size", BSON_TYPE_INT32 },
		{ "mimeTree", BSON_TYPE_DOCUMENT },
		{ "mimeTree.header", BSON_TYPE_ARRAY },
		{ "mimeTree.header.0", BSON_TYPE_UTF8 },
		{ "mimeTree.parsedHeader", BSON_TYPE_DOCUMENT },
		{ "mimeTree.parsedHeader.content-type.value", BSON_TYPE_UTF8 },
		{ "mimeTree.parsedHeader.content-type.params.boundary", BSON_TYPE_UTF8 },
		{ "mimeTree.parsedHeader.from", BSON_TYPE_ARRAY },
		{ "mimeTree.parsedHeader.from.0.address", BSON_TYPE_UTF8 },
		{ "mimeTree.parsedHeader.from.0.name", BSON_TYPE_UTF8 },
		{ "mimeTree.parsedHeader.subject", BSON_TYPE_UTF8 },
		{ "mimeTree.parsedHeader.message-id", BSON_TYPE_UTF8 },
		{ "mimeTree.body", BSON_TYPE_BINARY },
		{ "mimeTree.multipart", BSON_TYPE_UTF8 },
		{ "mimeTree.boundary", BSON_TYPE_UTF8 },
		{ "mimeTree.lineCount", BSON_TYPE_INT32 },
		{ "mimeTree.size", BSON_TYPE_INT32 },
		{ "mimeTree.childNodes", BSON_TYPE_ARRAY },
		{ "mimeTree.childNodes.0.body", BSON_TYPE_BINARY },
		{ "mimeTree.childNodes.0.multipart", BSON_TYPE_BOOL },
		{ "mimeTree.childNodes.0.boundary", BSON_TYPE_BOOL },
		{ "mimeTree.childNodes.0.size", BSON_TYPE_INT32 },
		{ "mimeTree.childNodes.1.body", BSON_TYPE_BOOL },
		{ "mimeTree.childNodes.1.attachmentId", BSON_TYPE_UTF8 },
		{ "mimeTree.attachmentMap.ATT00001", BSON_TYPE_BINARY },
		{ "headers", BSON_TYPE_ARRAY },
		{ "headers.0.key", BSON_TYPE_UTF8 },
		{ "headers.0.value", BSON_TYPE_UTF8 },
		{ "text", BSON_TYPE_UTF8 },
		{ "html", BSON_TYPE_ARRAY },
		{ "html.0", BSON_TYPE_UTF8 },
		{ "intro", BSON_TYPE_UTF8 },
		{ "attachments", BSON_TYPE_ARRAY },
		{ "attachments.0.id", BSON_TYPE_UTF8 },
		{ "attachments.0.filename", BSON_TYPE_UTF8 },
		{ "attachments.0.contentType", BSON_TYPE_UTF8 },
		{ "attachments.0.disposition", BSON_TYPE_UTF8 },
		{ "attachments.0.transferEncoding", BSON_TYPE_UTF8 },
		{ "attachments.0.cid", BSON_TYPE_NULL },
		{ "attachments.0.related", BSON_TYPE_BOOL },
		{ "attachments.0.sizeKb", BSON_TYPE_INT32 },
		{ "attachments.0.size", BSON_TYPE_INT32 },
		{ "attachments.0.fileContentHash", BSON_TYPE_UTF8 },
		{ "ha", BSON_TYPE_BOOL },
		{ "magic", BSON_TYPE_INT32 },
		{ "exp", BSON_TYPE_BOOL },
		{ "rdate", BSON_TYPE_DOUBLE },
		{ "userDeleted", BSON_TYPE_BOOL },
		{ "copied", BSON_TYPE_BOOL },
		{ "meta", BSON_TYPE_DOCUMENT },
		{ "meta.source", BSON_TYPE_UTF8 },
		{ "meta.time", BSON_TYPE_DATE_TIME },
	};
	struct wd_message_added added = add(raw);
	bson_t *doc = find_one(WD_STORE_DB_MAIN, "messages", BCON_NEW("_id", BCON_OID(&added.id)));
	assert_non_null(doc);
	expect_shape(doc, shape, sizeof(shape) / sizeof(shape[0]));
	/* values of the example */
	assert_string_equal(field_str(doc, "v"), "1.0");
	assert_string_equal(field_str(doc, "msgid"), "<abc@example.com>");
	assert_string_equal(field_str(doc, "subject"), "hello");
	assert_string_equal(field_str(doc, "mimeTree.multipart"), "mixed");
	assert_string_equal(field_str(doc, "mimeTree.parsedHeader.from.0.address"),
			    "andris@example.com");
	assert_string_equal(field_str(doc, "mimeTree.parsedHeader.from.0.name"), "Andris");
	assert_string_equal(field_str(doc, "mimeTree.boundary"), "XX");
	assert_string_equal(field_str(doc, "mimeTree.childNodes.1.attachmentId"), "ATT00001");
	assert_string_equal(field_str(doc, "text"), "Hello world");
	assert_string_equal(field_str(doc, "attachments.0.id"), "ATT00001");
	assert_string_equal(field_str(doc, "attachments.0.filename"), "a.bin");
	assert_int_equal(field_int(doc, "size"), (int64_t)(sizeof(raw) - 1));
	bson_iter_t iter, found;
	assert_true(bson_iter_init(&iter, doc) &&
		    bson_iter_find_descendant(&iter, "mimeTree.childNodes.0.size", &found));
	assert_int_equal(bson_iter_as_int64(&found), 11);
	assert_int_equal(field_bool(doc, "ha"), 1);
	assert_int_equal(field_bool(doc, "searchable"), 1);
	assert_true(bson_iter_init(&iter, doc) &&
		    bson_iter_find_descendant(&iter, "mimeTree.attachmentMap.ATT00001", &found));
	uint32_t hash_len;
	const uint8_t *hash;
	bson_iter_binary(&found, NULL, &hash_len, &hash);
	assert_int_equal(hash_len, 32);
	/* on FerretDB the nested-array caches are absent, on MongoDB present */
	bool nested = wd_store_caps(store)->nested_arrays;
	assert_int_equal(bson_iter_init_find(&iter, doc, "envelope"), nested);
	assert_int_equal(bson_iter_init_find(&iter, doc, "bodystructure"), nested);
	bson_destroy(doc);
}

/* text, html, intro and the attachment list, as webmail reads them */
static void test_maildata(void **state)
{
	(void)state;
	static const char raw[] =
		"Subject: maildata\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n"
		"--M\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
		"--A\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"Caf=E9 au lait,\r\nsecond line\r\n"
		"--A\r\nContent-Type: multipart/related; boundary=R\r\n\r\n"
		"--R\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Caf\xc3\xa9</p>\r\n"
		"--R\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--R--\r\n--A--\r\n"
		"--M\r\nContent-Type: application/pdf; name=\"=?UTF-8?Q?R=C3=A9sum=C3=A9.pdf?=\"\r\n"
		"Content-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		"JVBERi0xLjQK\r\n--M--\r\n";
	struct wd_message_added added = add(raw);
	bson_t *doc = find_one(WD_STORE_DB_MAIN, "messages", BCON_NEW("_id", BCON_OID(&added.id)));
	assert_non_null(doc);
	assert_string_equal(field_str(doc, "text"), "Caf\xc3\xa9 au lait,\nsecond line");
	/* from the HTML part when there is one, as WildDuck builds it */
	assert_string_equal(field_str(doc, "intro"), "Caf\xc3\xa9");
	assert_string_equal(field_str(doc, "html.0"), "<p>Caf\xc3\xa9</p>");
	assert_string_equal(field_str(doc, "attachments.0.id"), "ATT00001");
	assert_string_equal(field_str(doc, "attachments.0.contentType"), "image/png");
	assert_string_equal(field_str(doc, "attachments.0.cid"), "<logo@x>");
	assert_string_equal(field_str(doc, "attachments.1.filename"), "R\xc3\xa9sum\xc3\xa9.pdf");
	assert_string_equal(field_str(doc, "attachments.1.disposition"), "attachment");
	bson_iter_t iter, found;
	assert_true(bson_iter_init(&iter, doc) &&
		    bson_iter_find_descendant(&iter, "attachments.0.related", &found));
	assert_true(bson_iter_bool(&found));
	assert_int_equal(field_bool(doc, "ha"), 1); /* the PDF is not related */
	bson_destroy(doc);
}

/* A Node process holding WildDuck's write lock makes EXPUNGE wait for it. */
static void test_write_lock_is_shared(void **state)
{
	(void)state;
	const char *redis_url = getenv("WD_REDIS_URL");
	char host[128];
	int port, db;
	assert_int_equal(sscanf(redis_url, "redis://%127[^:]:%d/%d", host, &port, &db), 3);
	redisContext *ctx = redisConnect(host, port);
	assert_non_null(ctx);
	freeReplyObject(redisCommand(ctx, "SELECT %d", db));
	char hex[25];
	bson_oid_to_string(&inbox, hex);
	/* as ioredfour writes it: a hash {index} with a TTL */
	freeReplyObject(redisCommand(ctx, "HSET mail:mbwr:%s index 424242", hex));
	freeReplyObject(redisCommand(ctx, "PEXPIRE mail:mbwr:%s 1500", hex));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint32_t *expunged;
	size_t count;
	char *error = NULL;
	assert_int_equal(wd_store_message_expunge(store, &inbox, NULL, 0, NULL, &expunged, &count,
						  &error), 0);
	free(expunged);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(waited >= 1.0);
	/* and our lock is gone afterwards */
	redisReply *reply = redisCommand(ctx, "EXISTS mail:mbwr:%s", hex);
	assert_int_equal(reply->integer, 0);
	freeReplyObject(reply);
	redisFree(ctx);
}

/* Messages past their retention are archived, then purged with their
   attachment references, and the quota follows. */
static void test_retention(void **state)
{
	(void)state;
	bson_oid_t short_box;
	struct wd_mailbox_create opts = { .retention = 1 }; /* 1 ms */
	char *error = NULL;
	assert_int_equal(wd_store_mailbox_create(store, &user, "Short", &opts, &short_box, &error), 0);
	struct wd_message_add req = { .raw = (const uint8_t *)with_att, .len = strlen(with_att),
				      .source = "IMAP", .decode_base64 = true };
	struct wd_message_added added;
	int64_t refs_before, magic;
	attachment_refs(&refs_before, &magic);
	int64_t used_before = storage_used();
	assert_int_equal(wd_store_message_add(store, &short_box, &req, &added, &error), 0);
	assert_int_equal(storage_used(), used_before + (int64_t)added.size);
	int64_t refs;
	attachment_refs(&refs, &magic);
	assert_int_equal(refs, refs_before + 1);
	usleep(20000);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	struct wd_retention_report report;
	assert_int_equal(wd_store_retention_gc(store, now, 1000, &report, &error), 0);
	assert_int_equal(report.expired, 1);
	assert_int_equal(report.archived, 1);
	assert_null(message(&short_box, 1));
	assert_int_equal(storage_used(), used_before);
	attachment_refs(&refs, &magic);
	assert_int_equal(refs, refs_before + 1); /* the archived copy holds it */

	/* 26 days later the archived copy is purged, its reference released
	   (other archived messages of this test go too) */
	assert_int_equal(wd_store_retention_gc(store, now + 26LL * 24 * 3600 * 1000, 1000, &report,
					       &error), 0);
	assert_true(report.purged >= 1);
	assert_null(find_one(WD_STORE_DB_MAIN, "archived", BCON_NEW("_id", BCON_OID(&added.id))));
	attachment_refs(&refs, &magic);
	assert_int_equal(refs, refs_before);
}

int main(void)
{
	const char *url = getenv("WD_MONGO_URL");
	const char *redis = getenv("WD_REDIS_URL");
	if (url == NULL || redis == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL are not set: start the stack\n");
		return 77;
	}
	char text[1024], *error = NULL;
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s-ops-%d\"\nredis = \"%s\"\n", url,
		 (int)getpid(), redis);
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	wd_log_init("test-store-message-ops", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_log_set_handler(NULL, NULL);
	store = wd_store_open(config, &error);
	wd_config_free(&config);
	struct wd_store_index_report report;
	if (store == NULL || wd_store_ensure_indexes(store, &report, &error) < 0) {
		fprintf(stderr, "store: %s\n", error);
		return 1;
	}
	struct wd_user_create req = { .username = "ops", .address = "ops@example.com" };
	struct wd_mailbox *box = NULL;
	if (wd_store_user_create(store, &req, &user, &error) < 0 ||
	    wd_store_mailbox_get_by_path(store, &user, "INBOX", &box, &error) < 0) {
		fprintf(stderr, "setup: %s\n", error);
		return 1;
	}
	inbox = box->id;
	wd_mailbox_free(&box);
	struct wd_mailbox_create opts = { 0 };
	if (wd_store_mailbox_create(store, &user, "Archive", &opts, &archive, &error) < 0) {
		fprintf(stderr, "setup: %s\n", error);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mixed_sequence),
		cmocka_unit_test(test_write_lock_is_shared),
		cmocka_unit_test(test_maildata),
		cmocka_unit_test(test_document_shape),
		cmocka_unit_test(test_retention),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	wd_store_close(&store);
	return failed;
}
