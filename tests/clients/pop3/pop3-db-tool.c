/* A small database tool for the POP3 client tests: what they check or set
 * in the documents directly, with the C driver (no Python MongoDB driver
 * in Debian's base set).
 *
 *   pop3-db-tool MONGO_URL set-user USERNAME FIELD INT
 *       users.FIELD = INT (int32) for the user, e.g. pop3MaxMessages
 *   pop3-db-tool MONGO_URL messages USERNAME PATH
 *       one line per message of the mailbox, by UID: "<uid> <_id hex> <flags,...>"
 *
 * The database is the one named in the URL (users and messages both, as
 * the tests configure wd-server). Exit 0 on success, 1 otherwise. */
#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const bson_error_t *error)
{
	fprintf(stderr, "pop3-db-tool: %s%s%s\n", what, error != NULL ? ": " : "",
		error != NULL ? error->message : "");
	return 1;
}

static bool find_id(mongoc_database_t *db, const char *collection, const bson_t *query,
		    bson_oid_t *id_r)
{
	mongoc_collection_t *coll = mongoc_database_get_collection(db, collection);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	bson_iter_t iter;
	bool found = mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&iter, doc, "_id") &&
		     BSON_ITER_HOLDS_OID(&iter);
	if (found)
		bson_oid_copy(bson_iter_oid(&iter), id_r);
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	return found;
}

static int set_user(mongoc_database_t *db, const char *username, const char *field,
		    const char *value)
{
	mongoc_collection_t *coll = mongoc_database_get_collection(db, "users");
	bson_t *query = BCON_NEW("username", BCON_UTF8(username));
	bson_t *update = BCON_NEW("$set", "{", field, BCON_INT32((int32_t)atoi(value)), "}");
	bson_t reply;
	bson_error_t error;
	bool ok = mongoc_collection_update_one(coll, query, update, NULL, &reply, &error);
	bson_iter_t iter;
	int matched = ok && bson_iter_init_find(&iter, &reply, "matchedCount") ?
			      bson_iter_as_int64(&iter) : 0;
	bson_destroy(&reply);
	bson_destroy(query);
	bson_destroy(update);
	mongoc_collection_destroy(coll);
	if (!ok)
		return fail("update", &error);
	return matched == 1 ? 0 : fail("no such user", NULL);
}

static int list_messages(mongoc_database_t *db, const char *username, const char *path)
{
	bson_oid_t user, mailbox;
	bson_t *query = BCON_NEW("username", BCON_UTF8(username));
	bool found = find_id(db, "users", query, &user);
	bson_destroy(query);
	if (!found)
		return fail("no such user", NULL);
	query = BCON_NEW("user", BCON_OID(&user), "path", BCON_UTF8(path));
	found = find_id(db, "mailboxes", query, &mailbox);
	bson_destroy(query);
	if (!found)
		return fail("no such mailbox", NULL);
	mongoc_collection_t *coll = mongoc_database_get_collection(db, "messages");
	query = BCON_NEW("mailbox", BCON_OID(&mailbox));
	bson_t *opts = BCON_NEW("sort", "{", "uid", BCON_INT32(1), "}", "projection", "{", "uid",
				BCON_INT32(1), "flags", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter, flags;
		char hex[25] = "";
		long long uid = 0;
		if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter))
			bson_oid_to_string(bson_iter_oid(&iter), hex);
		if (bson_iter_init_find(&iter, doc, "uid"))
			uid = (long long)bson_iter_as_int64(&iter);
		printf("%lld %s ", uid, hex);
		if (bson_iter_init_find(&iter, doc, "flags") && BSON_ITER_HOLDS_ARRAY(&iter) &&
		    bson_iter_recurse(&iter, &flags)) {
			bool first = true;
			while (bson_iter_next(&flags)) {
				if (BSON_ITER_HOLDS_UTF8(&flags)) {
					printf("%s%s", first ? "" : ",", bson_iter_utf8(&flags, NULL));
					first = false;
				}
			}
		}
		printf("\n");
	}
	bson_error_t error;
	int ret = mongoc_cursor_error(cursor, &error) ? fail("find", &error) : 0;
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: pop3-db-tool MONGO_URL set-user USER FIELD INT | "
				"messages USER PATH\n");
		return 2;
	}
	mongoc_init();
	bson_error_t error;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &error);
	if (uri == NULL)
		return fail("url", &error);
	mongoc_client_t *client = mongoc_client_new_from_uri(uri);
	const char *name = mongoc_uri_get_database(uri);
	mongoc_database_t *db = mongoc_client_get_database(client, name != NULL ? name : "wildduck");
	int ret = 2;
	if (strcmp(argv[2], "set-user") == 0 && argc == 6)
		ret = set_user(db, argv[3], argv[4], argv[5]);
	else if (strcmp(argv[2], "messages") == 0 && argc == 5)
		ret = list_messages(db, argv[3], argv[4]);
	else
		fprintf(stderr, "pop3-db-tool: bad arguments\n");
	mongoc_database_destroy(db);
	mongoc_client_destroy(client);
	mongoc_uri_destroy(uri);
	mongoc_cleanup();
	return ret;
}
