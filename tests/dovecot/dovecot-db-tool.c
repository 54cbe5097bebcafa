/* What the Dovecot tests set or read in the WildDuck documents directly,
 * with the C driver (Debian's base set has no Python MongoDB driver).
 *
 *   dovecot-db-tool MONGO_URL set-user USERNAME FIELD JSON
 *       users.FIELD = the JSON value (true, ["pop3"], 5, "x") for the user
 *   dovecot-db-tool MONGO_URL authlog USERNAME
 *       the user's authlog documents, one relaxed extended JSON per line,
 *       oldest first
 *   dovecot-db-tool MONGO_URL user-id USERNAME
 *       the user's _id as 24 hex digits
 *
 * The database is the one named in the URL. Exit 0 on success, 1 otherwise. */
#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const char *detail)
{
	fprintf(stderr, "dovecot-db-tool: %s%s%s\n", what, detail != NULL ? ": " : "",
		detail != NULL ? detail : "");
	return 1;
}

static bool user_id(mongoc_database_t *db, const char *username, bson_oid_t *id_r)
{
	mongoc_collection_t *coll = mongoc_database_get_collection(db, "users");
	bson_t *query = BCON_NEW("username", BCON_UTF8(username));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	bson_iter_t iter;
	bool found = mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&iter, doc, "_id") &&
		     BSON_ITER_HOLDS_OID(&iter);
	if (found)
		bson_oid_copy(bson_iter_oid(&iter), id_r);
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	return found;
}

static int set_user(mongoc_database_t *db, const char *username, const char *field,
		    const char *json)
{
	/* the value is parsed inside a document: {"v": <json>} */
	char *wrapped = bson_strdup_printf("{\"v\": %s}", json);
	bson_error_t error;
	bson_t *holder = bson_new_from_json((const uint8_t *)wrapped, -1, &error);
	bson_free(wrapped);
	if (holder == NULL)
		return fail("value", error.message);
	bson_iter_t iter;
	bson_iter_init_find(&iter, holder, "v");
	bson_t update = BSON_INITIALIZER, set;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	bson_append_iter(&set, field, -1, &iter);
	bson_append_document_end(&update, &set);
	mongoc_collection_t *coll = mongoc_database_get_collection(db, "users");
	bson_t *query = BCON_NEW("username", BCON_UTF8(username));
	bson_t reply;
	bool ok = mongoc_collection_update_one(coll, query, &update, NULL, &reply, &error);
	int64_t matched = ok && bson_iter_init_find(&iter, &reply, "matchedCount") ?
				  bson_iter_as_int64(&iter) : 0;
	bson_destroy(&reply);
	bson_destroy(query);
	bson_destroy(&update);
	bson_destroy(holder);
	mongoc_collection_destroy(coll);
	if (!ok)
		return fail("update", error.message);
	return matched == 1 ? 0 : fail("no such user", username);
}

static int authlog(mongoc_database_t *db, const char *username)
{
	bson_oid_t id;
	if (!user_id(db, username, &id))
		return fail("no such user", username);
	mongoc_collection_t *coll = mongoc_database_get_collection(db, "authlog");
	bson_t *query = BCON_NEW("user", BCON_OID(&id));
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		char *json = bson_as_relaxed_extended_json(doc, NULL);
		printf("%s\n", json);
		bson_free(json);
	}
	bson_error_t error;
	int ret = mongoc_cursor_error(cursor, &error) ? fail("find", error.message) : 0;
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return fail("usage", "dovecot-db-tool MONGO_URL set-user|authlog|user-id USERNAME ...");
	mongoc_init();
	bson_error_t error;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &error);
	if (uri == NULL)
		return fail("url", error.message);
	mongoc_client_t *client = mongoc_client_new_from_uri(uri);
	const char *name = mongoc_uri_get_database(uri);
	mongoc_database_t *db = mongoc_client_get_database(client, name != NULL ? name : "wildduck");
	int ret;
	if (strcmp(argv[2], "set-user") == 0 && argc == 6) {
		ret = set_user(db, argv[3], argv[4], argv[5]);
	} else if (strcmp(argv[2], "authlog") == 0 && argc == 4) {
		ret = authlog(db, argv[3]);
	} else if (strcmp(argv[2], "user-id") == 0 && argc == 4) {
		bson_oid_t id;
		char hex[25];
		ret = user_id(db, argv[3], &id) ? 0 : fail("no such user", argv[3]);
		if (ret == 0) {
			bson_oid_to_string(&id, hex);
			printf("%s\n", hex);
		}
	} else {
		ret = fail("unknown command", argv[2]);
	}
	mongoc_database_destroy(db);
	mongoc_client_destroy(client);
	mongoc_uri_destroy(uri);
	mongoc_cleanup();
	return ret;
}
