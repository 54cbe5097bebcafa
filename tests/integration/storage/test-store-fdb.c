/* Integration tests (suite storage): documents read straight from FerretDB's
 * SQLite files (wd-store-fdb.h, store-fdb-sjson.c) against the same
 * documents read through FerretDB.
 *
 * Messages stored by wd_store_message_add() (plain, multipart with an
 * attachment, keywords) and one hand-made document holding every BSON type
 * the decoder knows are read both ways — whole and with the projections
 * IMAP uses (FETCH ENVELOPE's, SEARCH's with nested mimeTree.header, _id
 * excluded) — and must be byte-identical BSON. Shapes the decoder must
 * refuse (unknown types, a projection into an array, an exclusion) must
 * make it answer "not here", never a wrong document.
 *
 * Needs WD_FERRETDB_SQLITE (scripts/stack.sh prints it) besides the stack;
 * skipped (77) without. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-fdb.h"
#include "wd-store-message.h"
#include "wd-store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct wd_store *store;
static bson_oid_t user, mailbox;
static char db_name[128];
static uint32_t uids[3];

static const char plain[] = "From: Alice <alice@example.com>\r\n"
			    "To: bob@example.org\r\n"
			    "Subject: Plain one\r\n"
			    "Date: Mon, 05 Jan 2026 10:00:00 +0000\r\n"
			    "Message-ID: <plain@example.com>\r\n"
			    "\r\n"
			    "Hello Bob,\r\nsee you.\r\n";

static const char multipart[] =
	"From: =?UTF-8?Q?Ca=C3=A7a?= <caca@example.fr>\r\n"
	"To: bob@example.org, carol@example.net\r\n"
	"Subject: =?UTF-8?B?w5xuw69jb2Rl?= report\r\n"
	"Date: Tue, 06 Jan 2026 11:00:00 +0100\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
	"\r\n"
	"--b1\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"The report is attached.\r\n"
	"--b1\r\n"
	"Content-Type: application/octet-stream; name=\"r.bin\"\r\n"
	"Content-Disposition: attachment; filename=\"r.bin\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n"
	"--b1--\r\n";

static uint32_t add(const char *raw, const char *const *flags, size_t flag_count)
{
	struct wd_message_add req = {
		.raw = (const uint8_t *)raw, .len = strlen(raw), .flags = flags, .flag_count = flag_count,
		.idate_ms = 1767607200000LL, .source = "IMAP",
	};
	struct wd_message_added added;
	char *error = NULL;
	if (wd_store_message_add(store, &mailbox, &req, &added, &error) < 0) {
		fprintf(stderr, "add: %s\n", error);
		free(error);
		return 0;
	}
	return added.uid;
}

static bool insert(const char *collection, bson_t *doc)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, collection);
	bson_error_t error;
	bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
	if (!ok)
		fprintf(stderr, "insert: %s\n", error.message);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ok;
}

static int setup(void **state)
{
	(void)state;
	const char *url = getenv("WD_MONGO_URL"), *redis = getenv("WD_REDIS_URL");
	const char *sqlite = getenv("WD_FERRETDB_SQLITE");
	if (url == NULL || redis == NULL || sqlite == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL/WD_FERRETDB_SQLITE are not set\n");
		exit(77);
	}
	char text[2048];
	snprintf(db_name, sizeof(db_name), "wdtest_fdb_%d", (int)getpid());
	snprintf(text, sizeof(text),
		 "[dbs]\nmongo = \"%.*s/%s\"\nredis = \"%s\"\nferretdbSqlite = \"%s\"\n",
		 (int)(strrchr(url, '/') - url), url, db_name, redis, sqlite);
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	wd_log_init("test-store-fdb", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_log_set_handler(NULL, NULL);
	store = wd_store_open(config, &error);
	wd_config_free(&config);
	if (store == NULL) {
		fprintf(stderr, "open: %s\n", error);
		return -1;
	}
	bson_oid_init(&user, NULL);
	bson_oid_init(&mailbox, NULL);
	bson_t *mb = BCON_NEW("_id", BCON_OID(&mailbox), "user", BCON_OID(&user), "path",
			      BCON_UTF8("INBOX"), "uidValidity", BCON_INT32(1767225600), "uidNext",
			      BCON_INT32(1), "modifyIndex", BCON_INT32(0), "retention",
			      BCON_INT32(0));
	bson_t *us = BCON_NEW("_id", BCON_OID(&user), "username", BCON_UTF8("fdb"),
			      "storageUsed", BCON_INT32(0));
	bool ok = insert("mailboxes", mb) && insert("users", us);
	bson_destroy(mb);
	bson_destroy(us);
	static const char *const keywords[] = { "\\Seen", "$Label1", "Ünï" };
	uids[0] = add(plain, NULL, 0);
	uids[1] = add(multipart, keywords, 3);
	uids[2] = add(plain, keywords, 1);
	/* no wd_store_ensure_indexes() after the tables appeared: the first
	   read adds the SQLite indexes it misses (fdb_open) */
	if (!ok || uids[0] == 0 || uids[1] == 0 || uids[2] == 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_database_t *db = mongoc_client_get_database(client, db_name);
	mongoc_database_drop(db, NULL);
	mongoc_database_destroy(db);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	wd_store_close(&store);
	return 0;
}

/* Through FerretDB: messages of `mailbox` sorted by uid. */
static size_t find_messages(const bson_t *projection, bson_t **docs, size_t max)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *filter = BCON_NEW("mailbox", BCON_OID(&mailbox));
	bson_t *opts = BCON_NEW("sort", "{", "uid", BCON_INT32(1), "}");
	if (projection != NULL)
		BSON_APPEND_DOCUMENT(opts, "projection", projection);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	size_t n = 0;
	while (n < max && mongoc_cursor_next(cursor, &doc))
		docs[n++] = bson_copy(doc);
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return n;
}

static void assert_same_doc(const bson_t *expected, const bson_t *actual)
{
	if (!bson_equal(expected, actual)) {
		char *a = bson_as_canonical_extended_json(expected, NULL);
		char *b = bson_as_canonical_extended_json(actual, NULL);
		fprintf(stderr, "FerretDB: %s\nSQLite:   %s\n", a, b);
		bson_free(a);
		bson_free(b);
		fail();
	}
}

static void compare(const bson_t *projection, const bson_t *ferretdb_projection)
{
	bson_t *expected[3], **docs = NULL;
	size_t n = find_messages(ferretdb_projection, expected, 3), count = 0;
	assert_int_equal(n, 3);
	char *error = NULL;
	int ret = wd_store_fdb_load_uids(store, &mailbox, uids, 3, projection, &docs, &count, &error);
	assert_int_equal(ret, WD_OK);
	assert_int_equal(count, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_same_doc(expected[i], docs[i]);
		bson_destroy(expected[i]);
		bson_destroy(docs[i]);
	}
	free(docs);
}

static void test_whole_documents(void **state)
{
	(void)state;
	compare(NULL, NULL);
}

static void test_fetch_projection(void **state)
{
	(void)state;
	/* FETCH ENVELOPE BODYSTRUCTURE INTERNALDATE RFC822.SIZE's projection;
	   load_uids adds mailbox and uid, so FerretDB's gets them too */
	bson_t *proj = BCON_NEW("_id", BCON_INT32(1), "uid", BCON_INT32(1), "idate",
				BCON_INT32(1), "size", BCON_INT32(1), "wdc.imap", BCON_INT32(1));
	bson_t *full = BCON_NEW("_id", BCON_INT32(1), "uid", BCON_INT32(1), "idate",
				BCON_INT32(1), "size", BCON_INT32(1), "wdc.imap", BCON_INT32(1),
				"mailbox", BCON_INT32(1));
	compare(proj, full);
	bson_destroy(proj);
	bson_destroy(full);
}

static void test_search_projection(void **state)
{
	(void)state;
	/* SEARCH's residual projection: _id excluded, a nested path, a field
	   no message has (textFooter) */
	bson_t *proj = BCON_NEW("_id", BCON_INT32(0), "uid", BCON_INT32(1), "modseq",
				BCON_INT32(1), "flags", BCON_INT32(1), "idate", BCON_INT32(1),
				"hdate", BCON_INT32(1), "headers", BCON_INT32(1),
				"mimeTree.header", BCON_INT32(1), "text", BCON_INT32(1),
				"textFooter", BCON_INT32(1), "html", BCON_INT32(1), "mailbox",
				BCON_INT32(1));
	compare(proj, proj);
	bson_destroy(proj);
}

static void test_narrowed_projection(void **state)
{
	(void)state;
	/* children of an absent object: nothing, as FerretDB answers */
	bson_t *proj = BCON_NEW("nosuch.x", BCON_INT32(1), "wdc.size", BCON_INT32(1),
				"wdc.v", BCON_INT32(1));
	bson_t *full = BCON_NEW("nosuch.x", BCON_INT32(1), "wdc.size", BCON_INT32(1),
				"wdc.v", BCON_INT32(1), "mailbox", BCON_INT32(1), "uid",
				BCON_INT32(1));
	compare(proj, full);
	bson_destroy(proj);
	bson_destroy(full);
	/* a child of an array: left to FerretDB */
	proj = BCON_NEW("flags.x", BCON_INT32(1));
	bson_t **docs = NULL;
	size_t count = 0;
	char *error = NULL;
	assert_int_equal(wd_store_fdb_load_uids(store, &mailbox, uids, 3, proj, &docs, &count,
						&error),
			 WD_STORE_FDB_NONE);
	bson_destroy(proj);
}

/* The raw sjson of the only document of `collection`. */
static char *sjson_of(const char *collection)
{
	char path[4096], *json = NULL;
	snprintf(path, sizeof(path), "%s/%s.sqlite", getenv("WD_FERRETDB_SQLITE"), db_name);
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	/* the table's name comes from FerretDB's catalogue */
	sqlite3_stmt *names = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT table_name FROM _ferretdb_collections "
						"WHERE name = ?1",
					    -1, &names, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(names, 1, collection, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(names), SQLITE_ROW);
	char *sql = sqlite3_mprintf("SELECT _ferretdb_sjson FROM \"%w\" LIMIT 1",
			      (const char *)sqlite3_column_text(names, 0));
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		json = strdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	sqlite3_finalize(names);
	sqlite3_free(sql);
	sqlite3_close(db);
	assert_non_null(json);
	return json;
}

static void test_every_type(void **state)
{
	(void)state;
	bson_oid_t id;
	bson_oid_init(&id, NULL);
	static const uint8_t bytes[] = { 0, 1, 2, 0xfe, 0xff };
	bson_t *doc = BCON_NEW(
		"_id", BCON_OID(&id), "s", BCON_UTF8("tëxt \"quoted\" \\ $x"), "i", BCON_INT32(-7),
		"l", BCON_INT64(5000000000LL), "d", BCON_DOUBLE(2.5), "whole", BCON_DOUBLE(3.0),
		"t", BCON_BOOL(true), "f", BCON_BOOL(false), "n", BCON_NULL, "date",
		BCON_DATE_TIME(1767607200123LL), "bin", BCON_BIN(BSON_SUBTYPE_UUID, bytes, 5),
		"empty", "{", "}", "nested", "{", "a", "{", "b", BCON_INT32(1), "}", "c", "[",
		BCON_UTF8("x"), BCON_INT64(2), "{", "k", BCON_UTF8("v"), "}", "]", "}", "arr",
		"[", "]");
	assert_true(insert("fdbtypes", doc));
	char *json = sjson_of("fdbtypes");
	bson_t out = BSON_INITIALIZER;
	assert_int_equal(wd_store_fdb_sjson_to_bson(json, strlen(json), NULL, &out), WD_OK);
	assert_same_doc(doc, &out);
	bson_destroy(&out);

	/* nested projections */
	bson_t *proj = BCON_NEW("nested.a.b", BCON_INT32(1), "l", BCON_INT32(1));
	bson_t *expected = BCON_NEW("_id", BCON_OID(&id), "l", BCON_INT64(5000000000LL),
				    "nested", "{", "a", "{", "b", BCON_INT32(1), "}", "}");
	bson_init(&out);
	assert_int_equal(wd_store_fdb_sjson_to_bson(json, strlen(json), proj, &out), WD_OK);
	assert_same_doc(expected, &out);
	bson_destroy(&out);
	bson_destroy(expected);
	bson_destroy(proj);

	/* refused: a sub-field of an array, an exclusion, broken input */
	proj = BCON_NEW("nested.c.k", BCON_INT32(1));
	bson_init(&out);
	assert_int_equal(wd_store_fdb_sjson_to_bson(json, strlen(json), proj, &out), WD_ERROR);
	bson_destroy(&out);
	bson_destroy(proj);
	proj = BCON_NEW("s", BCON_INT32(0));
	bson_init(&out);
	assert_int_equal(wd_store_fdb_sjson_to_bson(json, strlen(json), proj, &out), WD_ERROR);
	bson_destroy(&out);
	bson_destroy(proj);
	bson_init(&out);
	assert_int_equal(wd_store_fdb_sjson_to_bson(json, strlen(json) / 2, NULL, &out), WD_ERROR);
	bson_destroy(&out);
	free(json);
	bson_destroy(doc);
}

static void test_refuses_what_it_does_not_know(void **state)
{
	(void)state;
	/* a timestamp: a type this decoder leaves to FerretDB */
	static const char ts[] = "{\"$s\":{\"p\":{\"_id\":{\"t\":\"string\"},\"ts\":{\"t\":"
				 "\"timestamp\"}},\"$k\":[\"_id\",\"ts\"]},\"_id\":\"a\",\"ts\":1}";
	/* a value that does not fit its schema: an int beyond int32 */
	static const char big[] = "{\"$s\":{\"p\":{\"i\":{\"t\":\"int\"}},\"$k\":[\"i\"]},"
				  "\"i\":3000000000}";
	/* an ObjectId that is not 24 hex digits */
	static const char oid[] = "{\"$s\":{\"p\":{\"o\":{\"t\":\"objectId\"}},\"$k\":[\"o\"]},"
				  "\"o\":\"xyz\"}";
	/* an extended-JSON wrapper where the schema says object */
	static const char wrapped[] = "{\"$s\":{\"p\":{\"o\":{\"t\":\"object\",\"$s\":{\"p\":{"
				      "\"$date\":{\"t\":\"int\"}},\"$k\":[\"$date\"]}}},\"$k\":["
				      "\"o\"]},\"o\":{\"$date\":1}}";
	const char *const cases[] = { ts, big, oid, wrapped };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bson_t out = BSON_INITIALIZER;
		assert_int_equal(wd_store_fdb_sjson_to_bson(cases[i], strlen(cases[i]), NULL, &out),
				 WD_ERROR);
		bson_destroy(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_documents),
		cmocka_unit_test(test_fetch_projection),
		cmocka_unit_test(test_search_projection),
		cmocka_unit_test(test_narrowed_projection),
		cmocka_unit_test(test_every_type),
		cmocka_unit_test(test_refuses_what_it_does_not_know),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
