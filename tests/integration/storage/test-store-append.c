/* Integration test (suite storage): concurrent appends to one mailbox.
 *
 * 4 threads × 500 wd_store_message_add() on one mailbox must give UIDs
 * 1..2000 exactly once, each thread's UIDs rising, MODSEQ strictly rising
 * with UID, uidNext 2001, one journal EXISTS per message, and a quota equal to
 * the stored bytes: the whole append path (quota, UID/MODSEQ allocation,
 * document, journal) under contention, on a server whose updates are not
 * atomic (FerretDB) as well as on one whose are. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../stack-fixture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define PER_THREAD 500

struct appender {
	int index;
	uint32_t uid[PER_THREAD], modseq[PER_THREAD];
	uint64_t bytes;
	int failures;
	char *first_error;
};

static void *append_thread(void *arg)
{
	struct appender *a = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		char raw[160];
		int len = snprintf(raw, sizeof(raw),
				   "From: t%d@example.com\r\nSubject: append %d/%d\r\n\r\nbody %d\r\n",
				   a->index, a->index, i, i);
		struct wd_message_add req = { .raw = (const uint8_t *)raw, .len = (size_t)len,
					      .source = "IMAP" };
		struct wd_message_added added;
		char *error = NULL;
		if (wd_store_message_add(store, &mailbox, &req, &added, &error) < 0) {
			if (a->first_error == NULL)
				a->first_error = error;
			else
				free(error);
			a->failures++;
			continue;
		}
		a->uid[i] = added.uid;
		a->modseq[i] = added.modseq;
		a->bytes += added.size;
	}
	return NULL;
}

static int64_t count(const char *collection, const bson_t *query)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, collection);
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(coll, query, NULL, NULL, NULL, &error);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return n;
}

static int64_t field_of(enum wd_store_db db, const char *collection, const bson_oid_t *id,
			const char *field)
{
	mongoc_client_t *client = wd_store_client(store, db);
	mongoc_collection_t *coll = wd_store_collection(store, client, db, collection);
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	int64_t value = -1;
	bson_iter_t iter;
	if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&iter, doc, field))
		value = bson_iter_as_int64(&iter);
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
	return value;
}

static void test_concurrent_appends(void **state)
{
	(void)state;
	static struct appender threads[THREADS];
	pthread_t ids[THREADS];
	for (int t = 0; t < THREADS; t++) {
		memset(&threads[t], 0, sizeof(threads[t]));
		threads[t].index = t;
		pthread_create(&ids[t], NULL, append_thread, &threads[t]);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(ids[t], NULL);

	static uint32_t modseq_of_uid[THREADS * PER_THREAD + 1];
	uint64_t bytes = 0;
	for (int t = 0; t < THREADS; t++) {
		if (threads[t].failures > 0)
			fail_msg("thread %d: %d appends failed, first: %s", t, threads[t].failures,
				 threads[t].first_error);
		bytes += threads[t].bytes;
		for (int i = 0; i < PER_THREAD; i++) {
			uint32_t uid = threads[t].uid[i];
			assert_true(uid >= 1 && uid <= THREADS * PER_THREAD);
			assert_int_equal(modseq_of_uid[uid], 0); /* each UID once */
			modseq_of_uid[uid] = threads[t].modseq[i];
			if (i > 0)
				assert_true(uid > threads[t].uid[i - 1]);
		}
	}
	for (uint32_t uid = 2; uid <= THREADS * PER_THREAD; uid++)
		assert_true(modseq_of_uid[uid] > modseq_of_uid[uid - 1]);

	/* what the database holds agrees */
	bson_t *in_mailbox = BCON_NEW("mailbox", BCON_OID(&mailbox));
	assert_int_equal(count("messages", in_mailbox), THREADS * PER_THREAD);
	bson_t *exists = BCON_NEW("mailbox", BCON_OID(&mailbox), "command", BCON_UTF8("EXISTS"));
	assert_int_equal(count("journal", exists), THREADS * PER_THREAD);
	bson_destroy(exists);
	bson_destroy(in_mailbox);
	assert_int_equal(field_of(WD_STORE_DB_MAIN, "mailboxes", &mailbox, "uidNext"),
			 THREADS * PER_THREAD + 1);
	assert_int_equal(field_of(WD_STORE_DB_MAIN, "mailboxes", &mailbox, "modifyIndex"),
			 modseq_of_uid[THREADS * PER_THREAD]);
	assert_int_equal(field_of(WD_STORE_DB_USERS, "users", &user, "storageUsed"), (int64_t)bytes);
}

int main(void)
{
	int ret = test_stack_open("test-store-append");
	if (ret != 0)
		return ret;
	if (test_stack_mailbox() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_appends),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	test_stack_drop();
	return failed;
}
