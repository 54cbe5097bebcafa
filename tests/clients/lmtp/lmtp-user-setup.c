/* Test helper: gives a user what wdctl cannot set yet, writing WildDuck's
 * documents directly (reference §2.1 users.targets / users.autoreply,
 * §2.14 autoreplies), for the forward and autoreply end-to-end test.
 *
 *   lmtp-user-setup MONGO_URL USERNAME forward ADDRESS
 *   lmtp-user-setup MONGO_URL USERNAME autoreply SUBJECT TEXT
 *
 * MONGO_URL names the database (users live in the main one in tests).
 * Exit 0 on success, 1 with a message otherwise. */
#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int update_user(mongoc_collection_t *users, const bson_oid_t *id, bson_t *set)
{
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	bson_t update = BSON_INITIALIZER;
	BSON_APPEND_DOCUMENT(&update, "$set", set);
	bson_error_t error;
	bool ok = mongoc_collection_update_one(users, query, &update, NULL, NULL, &error);
	if (!ok)
		fprintf(stderr, "update: %s\n", error.message);
	bson_destroy(&update);
	bson_destroy(query);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s MONGO_URL USERNAME forward ADDRESS | autoreply SUBJECT TEXT\n",
			argv[0]);
		return 1;
	}
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);
	int status = 1;
	bson_error_t error;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &error);
	mongoc_client_t *client = uri != NULL ? mongoc_client_new_from_uri(uri) : NULL;
	if (client == NULL) {
		fprintf(stderr, "bad URL %s\n", argv[1]);
		goto out;
	}
	const char *db = mongoc_uri_get_database(uri);
	mongoc_collection_t *users = mongoc_client_get_collection(client, db, "users");
	bson_t *query = BCON_NEW("username", BCON_UTF8(argv[2]));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(users, query, NULL, NULL);
	const bson_t *doc;
	bson_oid_t id;
	bool found = false;
	bson_iter_t iter;
	if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&iter, doc, "_id") &&
	    BSON_ITER_HOLDS_OID(&iter)) {
		bson_oid_copy(bson_iter_oid(&iter), &id);
		found = true;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	if (!found) {
		fprintf(stderr, "no user %s\n", argv[2]);
	} else if (strcmp(argv[3], "forward") == 0) {
		bson_oid_t target_id;
		bson_oid_init(&target_id, NULL);
		bson_t *set = BCON_NEW("targets", "[", "{", "id", BCON_OID(&target_id), "type",
				       BCON_UTF8("mail"), "value", BCON_UTF8(argv[4]), "}", "]");
		status = update_user(users, &id, set);
		bson_destroy(set);
	} else if (strcmp(argv[3], "autoreply") == 0 && argc >= 6) {
		mongoc_collection_t *autoreplies =
			mongoc_client_get_collection(client, db, "autoreplies");
		bson_t *doc_new = BCON_NEW("user", BCON_OID(&id), "status", BCON_BOOL(true),
					   "name", BCON_UTF8(""), "subject", BCON_UTF8(argv[4]),
					   "text", BCON_UTF8(argv[5]), "html", BCON_UTF8(""),
					   "start", BCON_BOOL(false), "end", BCON_BOOL(false),
					   "created", BCON_DATE_TIME((int64_t)time(NULL) * 1000));
		if (!mongoc_collection_insert_one(autoreplies, doc_new, NULL, NULL, &error)) {
			fprintf(stderr, "insert autoreply: %s\n", error.message);
		} else {
			bson_t *set = BCON_NEW("autoreply", BCON_BOOL(true));
			status = update_user(users, &id, set);
			bson_destroy(set);
		}
		bson_destroy(doc_new);
		mongoc_collection_destroy(autoreplies);
	} else {
		fprintf(stderr, "unknown operation %s\n", argv[3]);
	}
	mongoc_collection_destroy(users);
out:
	mongoc_client_destroy(client);
	mongoc_uri_destroy(uri);
	mongoc_cleanup();
	return status;
}
