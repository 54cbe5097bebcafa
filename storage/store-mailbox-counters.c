/* WildDuck's cached mailbox counters (tools.getMailboxCounter, reference
 * §4.2): total:<mailbox> and unseen:<mailbox> in Redis for a day, kept up
 * to date by every journal writer; counted from `messages` when absent
 * (and then cached). Redis down: counted every time. */
#include "store-private.h"
#include "wd-store-user.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNTER_TTL "86400"

static int64_t cached(struct wd_store *store, const char *key)
{
	const char *argv[] = { "GET", key };
	redisReply *reply = wd_store_redis_argv(store, 2, argv, NULL);
	int64_t value = -1;
	if (reply != NULL && reply->type == REDIS_REPLY_STRING) {
		char *end;
		long long v = strtoll(reply->str, &end, 10);
		if (*end == '\0' && v >= 0)
			value = v;
	}
	if (reply != NULL)
		freeReplyObject(reply);
	return value;
}

static void cache(struct wd_store *store, const char *key, int64_t value)
{
	char text[24];
	snprintf(text, sizeof(text), "%lld", (long long)value);
	const char *argv[] = { "SET", key, text, "EX", COUNTER_TTL };
	redisReply *reply = wd_store_redis_argv(store, 5, argv, NULL);
	if (reply != NULL)
		freeReplyObject(reply);
}

static int count(struct wd_store *store, const bson_oid_t *mailbox, bool unseen, int64_t *n_r,
		 char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t filter = BSON_INITIALIZER;
	BSON_APPEND_OID(&filter, "mailbox", mailbox);
	if (unseen)
		BSON_APPEND_BOOL(&filter, "unseen", true);
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(coll, &filter, NULL, NULL, NULL, &error);
	bson_destroy(&filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (n < 0) {
		*error_r = strdup(error.message);
		return WD_STORE_ERR_DATABASE;
	}
	*n_r = n;
	return 0;
}

int wd_store_mailbox_counters(struct wd_store *store, const bson_oid_t *mailbox, int64_t *total_r,
			      int64_t *unseen_r, char **error_r)
{
	*error_r = NULL;
	char hex[25], key[40];
	bson_oid_to_string(mailbox, hex);
	const char *names[2] = { "total", "unseen" };
	int64_t *out[2] = { total_r, unseen_r };
	for (int i = 0; i < 2; i++) {
		snprintf(key, sizeof(key), "%s:%s", names[i], hex);
		int64_t value = cached(store, key);
		if (value < 0) {
			int ret = count(store, mailbox, i == 1, &value, error_r);
			if (ret < 0)
				return ret;
			cache(store, key, value);
		}
		*out[i] = value;
	}
	return 0;
}
