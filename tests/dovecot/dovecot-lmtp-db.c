/* The LMTP plugin test's window on the database (Debian's base set has no
 * Python MongoDB driver): documents the test sets up (filters, autoreplies,
 * account states) and reads back (messages, the outbound queue), as
 * extended JSON.
 *
 *   dovecot-lmtp-db URL find COLLECTION FILTER [SORT]
 *       matching documents, one relaxed extended JSON document per line
 *   dovecot-lmtp-db URL insert COLLECTION DOCUMENT
 *       inserts; prints the _id (24 hex digits; one is made when missing)
 *   dovecot-lmtp-db URL update COLLECTION FILTER UPDATE
 *       update_many; prints the number of matched documents
 *
 * FILTER, SORT, DOCUMENT and UPDATE are canonical or relaxed extended JSON
 * ({"$oid": "..."}, {"$date": ...}). The database is the one named in URL.
 * Exit 0 on success, 1 with a message otherwise. */
#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what, const char *detail)
{
	fprintf(stderr, "dovecot-lmtp-db: %s%s%s\n", what, detail != NULL ? ": " : "",
		detail != NULL ? detail : "");
	return 1;
}

static bson_t *json(const char *text, const char *what)
{
	bson_error_t error;
	bson_t *doc = bson_new_from_json((const uint8_t *)text, -1, &error);
	if (doc == NULL)
		fail(what, error.message);
	return doc;
}

static int cmd_find(mongoc_collection_t *coll, int argc, char **argv)
{
	bson_t *filter = json(argv[0], "filter");
	bson_t *opts = NULL;
	if (filter == NULL)
		return 1;
	if (argc > 1) {
		bson_t *sort = json(argv[1], "sort");
		if (sort == NULL) {
			bson_destroy(filter);
			return 1;
		}
		opts = bson_new();
		BSON_APPEND_DOCUMENT(opts, "sort", sort);
		bson_destroy(sort);
	}
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		char *text = bson_as_relaxed_extended_json(doc, NULL);
		printf("%s\n", text);
		bson_free(text);
	}
	bson_error_t error;
	int status = mongoc_cursor_error(cursor, &error) ? fail("find", error.message) : 0;
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	if (opts != NULL)
		bson_destroy(opts);
	return status;
}

static int cmd_insert(mongoc_collection_t *coll, char **argv)
{
	bson_t *doc = json(argv[0], "document");
	if (doc == NULL)
		return 1;
	bson_iter_t iter;
	bson_oid_t id;
	bson_t with_id = BSON_INITIALIZER;
	if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter)) {
		bson_oid_copy(bson_iter_oid(&iter), &id);
		bson_copy_to(doc, &with_id);
	} else {
		bson_oid_init(&id, NULL);
		BSON_APPEND_OID(&with_id, "_id", &id);
		bson_concat(&with_id, doc);
	}
	bson_error_t error;
	int status = 0;
	if (!mongoc_collection_insert_one(coll, &with_id, NULL, NULL, &error)) {
		status = fail("insert", error.message);
	} else {
		char hex[25];
		bson_oid_to_string(&id, hex);
		printf("%s\n", hex);
	}
	bson_destroy(&with_id);
	bson_destroy(doc);
	return status;
}

static int cmd_update(mongoc_collection_t *coll, char **argv)
{
	bson_t *filter = json(argv[0], "filter");
	bson_t *update = json(argv[1], "update");
	bson_t reply;
	bson_error_t error;
	int status = 1;
	if (filter != NULL && update != NULL) {
		if (!mongoc_collection_update_many(coll, filter, update, NULL, &reply, &error)) {
			status = fail("update", error.message);
		} else {
			bson_iter_t iter;
			printf("%d\n", bson_iter_init_find(&iter, &reply, "matchedCount") ?
				       bson_iter_as_int64(&iter) > 0x7fffffff ? -1 :
				       (int)bson_iter_as_int64(&iter) : -1);
			status = 0;
		}
		bson_destroy(&reply);
	}
	if (filter != NULL)
		bson_destroy(filter);
	if (update != NULL)
		bson_destroy(update);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 5 || (strcmp(argv[2], "update") == 0 && argc < 6)) {
		fprintf(stderr, "usage: %s URL find COLLECTION FILTER [SORT]\n"
			"       %s URL insert COLLECTION DOCUMENT\n"
			"       %s URL update COLLECTION FILTER UPDATE\n", argv[0], argv[0], argv[0]);
		return 1;
	}
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);
	bson_error_t error;
	int status = 1;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &error);
	if (uri == NULL) {
		status = fail("URL", error.message);
		goto out;
	}
	const char *db = mongoc_uri_get_database(uri);
	mongoc_client_t *client = mongoc_client_new_from_uri(uri);
	if (client == NULL || db == NULL) {
		status = fail("URL", "no client, or no database in the URL");
		goto out_uri;
	}
	mongoc_collection_t *coll = mongoc_client_get_collection(client, db, argv[3]);
	if (strcmp(argv[2], "find") == 0)
		status = cmd_find(coll, argc - 4, argv + 4);
	else if (strcmp(argv[2], "insert") == 0)
		status = cmd_insert(coll, argv + 4);
	else if (strcmp(argv[2], "update") == 0)
		status = cmd_update(coll, argv + 4);
	else
		status = fail("unknown command", argv[2]);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);
out_uri:
	mongoc_uri_destroy(uri);
out:
	mongoc_cleanup();
	return status;
}
