#ifndef STACK_FIXTURE_H
#define STACK_FIXTURE_H

/* What most integration tests need of the real stack: a store on a database
 * of its own (named after the test and the process, so parallel tests and
 * runs never meet), one user with one mailbox, messages added through
 * wd_store_message_add(), and direct updates for fixtures. Static inline,
 * so each test stays one translation unit. 77 means "skipped" to meson. */

#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-message.h"
#include "wd-store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct wd_store *store;
static bson_oid_t user, mailbox;

/* 77 (skip) without the stack, 1 on failure, 0 with `store` open. */
static inline int test_stack_open(const char *name)
{
	const char *url = getenv("WD_MONGO_URL");
	const char *redis = getenv("WD_REDIS_URL");
	if (url == NULL || redis == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL are not set: start the stack\n");
		return 77;
	}
	char text[1024];
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s-%s-%d\"\nredis = \"%s\"\n", url, name,
		 (int)getpid(), redis);
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	wd_log_init(name, WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_log_set_handler(NULL, NULL);
	store = wd_store_open(config, &error);
	wd_config_free(&config);
	if (store == NULL) {
		fprintf(stderr, "open: %s\n", error);
		return 1;
	}
	struct wd_store_index_report report;
	if (wd_store_ensure_indexes(store, &report, &error) < 0)
		return 1;
	return 0;
}

static inline void test_stack_drop(void)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_database_t *db =
		mongoc_client_get_database(client, wd_store_db_name(store, WD_STORE_DB_MAIN));
	mongoc_database_drop(db, NULL);
	mongoc_database_destroy(db);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	wd_store_close(&store);
}

/* A user document and its INBOX (uidNext 1, modifyIndex 0, no retention). */
static inline int test_stack_mailbox(void)
{
	bson_oid_init(&user, NULL);
	bson_oid_init(&mailbox, NULL);
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "mailboxes");
	bson_t *doc = BCON_NEW("_id", BCON_OID(&mailbox), "user", BCON_OID(&user), "path",
			       BCON_UTF8("INBOX"), "uidValidity", BCON_INT32(1767225600), "uidNext",
			       BCON_INT32(1), "modifyIndex", BCON_INT32(0), "specialUse", BCON_NULL,
			       "retention", BCON_INT32(0));
	bson_error_t error;
	bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "users");
	doc = BCON_NEW("_id", BCON_OID(&user), "username", BCON_UTF8("fixture"), "storageUsed",
		       BCON_INT32(0));
	ok = ok && mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ok ? 0 : -1;
}

/* Add a message; returns its UID (0 on failure). */
static inline uint32_t test_stack_add(const void *raw, size_t len, const char *const *flags,
				      size_t flag_count, int64_t idate_ms)
{
	struct wd_message_add req = {
		.raw = raw, .len = len, .flags = flags, .flag_count = flag_count,
		.idate_ms = idate_ms, .source = "IMAP",
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

/* Run an update on the messages collection (test fixtures only). */
static inline bool test_stack_update(const bson_t *filter, const bson_t *update)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_error_t error;
	bool ok = mongoc_collection_update_many(coll, filter, update, NULL, NULL, &error);
	if (!ok)
		fprintf(stderr, "update: %s\n", error.message);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ok;
}

#endif
