/* Integration tests (suite storage): opening the store against the stack's
 * database, the capability record, WildDuck's `dbs.*` mapping and index
 * creation. Needs WD_MONGO_URL (scripts/test.sh provides it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-config.h"
#include "wd-log.h"
#include "wd-store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *mongo_url;
static char db_base[128];

/* The test database name (last path element of the URL, before options). */
static void url_database(const char *url, char *out, size_t size)
{
	const char *slash = strrchr(url, '/');
	snprintf(out, size, "%s", slash != NULL ? slash + 1 : "wildduck");
	char *q = strchr(out, '?');
	if (q != NULL)
		*q = '\0';
}

static struct wd_store *open_with(const char *extra_toml, char **error_r)
{
	char text[2048];
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s\"\n%s", mongo_url, extra_toml);
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	if (config == NULL)
		fail_msg("config: %s", error);
	struct wd_store *store = wd_store_open(config, error_r);
	wd_config_free(&config);
	return store;
}

static void test_open_and_caps(void **state)
{
	(void)state;
	char *error = NULL;
	struct wd_store *store = open_with("", &error);
	if (store == NULL)
		fail_msg("open: %s", error);
	const struct wd_store_caps *caps = wd_store_caps(store);
	/* the stack of scripts/stack.sh is FerretDB 1.24 */
	assert_true(caps->ferretdb);
	assert_string_equal(caps->ferretdb_version, "v1.24.2");
	assert_true(strlen(caps->version) > 0);
	assert_false(caps->nested_arrays);
	assert_false(caps->text_indexes);
	assert_false(caps->ttl_enforced);
	/* unset users/gridfs fall back to the main database; sender to zone-mta */
	assert_string_equal(wd_store_db_name(store, WD_STORE_DB_MAIN), db_base);
	assert_string_equal(wd_store_db_name(store, WD_STORE_DB_USERS), db_base);
	assert_string_equal(wd_store_db_name(store, WD_STORE_DB_GRIDFS), db_base);
	assert_string_equal(wd_store_db_name(store, WD_STORE_DB_SENDER), "zone-mta");
	wd_store_close(&store);
	assert_null(store);
}

static void test_db_mapping(void **state)
{
	(void)state;
	char extra[1024], users[160], gridfs_url[600], gridfs_db[160];
	snprintf(users, sizeof(users), "%s-users", db_base);
	snprintf(gridfs_db, sizeof(gridfs_db), "%s-gridfs", db_base);
	/* a full URL for gridfs: same server, its own database */
	snprintf(gridfs_url, sizeof(gridfs_url), "%.*s/%s",
		 (int)(strrchr(mongo_url, '/') - mongo_url), mongo_url, gridfs_db);
	snprintf(extra, sizeof(extra), "users = \"%s\"\ngridfs = \"%s\"\nsender = \"q\"\n", users,
		 gridfs_url);
	char *error = NULL;
	struct wd_store *store = open_with(extra, &error);
	if (store == NULL)
		fail_msg("open: %s", error);
	assert_string_equal(wd_store_db_name(store, WD_STORE_DB_USERS), users);
	assert_string_equal(wd_store_db_name(store, WD_STORE_DB_GRIDFS), gridfs_db);
	assert_string_equal(wd_store_db_name(store, WD_STORE_DB_SENDER), "q");

	struct wd_store_index_report report;
	assert_int_equal(wd_store_ensure_indexes(store, &report, &error), 0);
	assert_int_equal(report.created + report.rejected, 93); /* with messagelog's 4 */

	/* users indexes went to the users database, attachments to gridfs */
	struct {
		enum wd_store_db db;
		const char *collection, *index;
	} expect[] = {
		{ WD_STORE_DB_USERS, "users", "users_dotless" },
		{ WD_STORE_DB_USERS, "addresses", "address_dotless" },
		{ WD_STORE_DB_GRIDFS, "attachments.chunks", "files_id_1_n_1" },
		{ WD_STORE_DB_MAIN, "messages", "mailbox_uid" },
		{ WD_STORE_DB_MAIN, "journal", "mailbox_modseq" },
	};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		mongoc_client_t *client = wd_store_client(store, expect[i].db);
		mongoc_collection_t *coll =
			wd_store_collection(store, client, expect[i].db, expect[i].collection);
		mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(coll, NULL);
		const bson_t *doc;
		bool found = false;
		while (mongoc_cursor_next(cursor, &doc)) {
			bson_iter_t iter;
			if (bson_iter_init_find(&iter, doc, "name") &&
			    strcmp(bson_iter_utf8(&iter, NULL), expect[i].index) == 0)
				found = true;
		}
		mongoc_cursor_destroy(cursor);
		mongoc_collection_destroy(coll);
		wd_store_client_release(store, expect[i].db, client);
		if (!found)
			fail_msg("index %s.%s missing", expect[i].collection, expect[i].index);
	}
	wd_store_close(&store);
}

static void test_indexes_idempotent_and_unique(void **state)
{
	(void)state;
	char *error = NULL;
	struct wd_store *store = open_with("", &error);
	assert_non_null(store);
	struct wd_store_index_report first, second;
	assert_int_equal(wd_store_ensure_indexes(store, &first, &error), 0);
	assert_int_equal(wd_store_ensure_indexes(store, &second, &error), 0);
	assert_int_equal(first.created, second.created);
	assert_int_equal(first.rejected, second.rejected);
	/* FerretDB 1.24 has no text index: at least messages.fulltext is refused */
	assert_true(first.rejected >= 1);
	assert_true(first.created >= 70);

	/* mailboxes.user_path is unique: a second INBOX for one user fails */
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "mailboxes");
	bson_oid_t user;
	bson_oid_init(&user, NULL);
	bson_t *doc = BCON_NEW("user", BCON_OID(&user), "path", BCON_UTF8("INBOX"));
	bson_error_t berror;
	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &berror));
	bson_destroy(doc);
	doc = BCON_NEW("user", BCON_OID(&user), "path", BCON_UTF8("INBOX"));
	assert_false(mongoc_collection_insert_one(coll, doc, NULL, NULL, &berror));
	assert_int_equal(berror.code, 11000);
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	wd_store_close(&store);
}

static void test_open_errors(void **state)
{
	(void)state;
	char *error = NULL;
	const char *text = "[dbs]\nmongo = \"not-a-url\"\n";
	struct wd_config *config = wd_config_parse("bad.toml", text, strlen(text), &error);
	assert_null(wd_store_open(config, &error));
	assert_non_null(strstr(error, "invalid MongoDB URL"));
	free(error);
	wd_config_free(&config);

	/* nothing listens on port 1: a clear error, quickly */
	text = "[dbs]\nmongo = \"mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=300\"\n";
	config = wd_config_parse("down.toml", text, strlen(text), &error);
	assert_null(wd_store_open(config, &error));
	assert_non_null(strstr(error, "cannot reach the database"));
	free(error);
	wd_config_free(&config);

	text = "[dbs]\nmongo = 42\n";
	config = wd_config_parse("type.toml", text, strlen(text), &error);
	assert_null(wd_store_open(config, &error));
	assert_non_null(strstr(error, "dbs.mongo"));
	free(error);
	wd_config_free(&config);
}

int main(void)
{
	mongo_url = getenv("WD_MONGO_URL");
	if (mongo_url == NULL) {
		fprintf(stderr, "WD_MONGO_URL is not set: start the stack (scripts/stack.sh start)\n");
		return 77;
	}
	url_database(mongo_url, db_base, sizeof(db_base));
	wd_log_init("test-store-open", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_log_set_handler(NULL, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_and_caps),
		cmocka_unit_test(test_db_mapping),
		cmocka_unit_test(test_indexes_idempotent_and_unique),
		cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
