/* Integration tests (suite storage): UID/MODSEQ allocation under
 * concurrency, journal writing and replay, Redis counters and notifications,
 * TTL expiry, and Redis being down. Needs WD_MONGO_URL and WD_REDIS_URL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-journal.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static char mongo_url[512];
static const char *redis_url;
static struct wd_store *store;

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static struct wd_store *open_store(const char *redis)
{
	char text[1024];
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s\"\nredis = \"%s\"\n", mongo_url, redis);
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	assert_non_null(config);
	struct wd_store *s = wd_store_open(config, &error);
	if (s == NULL)
		fail_msg("open: %s", error);
	wd_config_free(&config);
	return s;
}

/* A mailbox document as WildDuck creates one (only the fields used here). */
static void create_mailbox(bson_oid_t *mailbox, bson_oid_t *user)
{
	bson_oid_init(mailbox, NULL);
	bson_oid_init(user, NULL);
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "mailboxes");
	char path[40];
	snprintf(path, sizeof(path), "box-%d", rand());
	bson_t *doc = BCON_NEW("_id", BCON_OID(mailbox), "user", BCON_OID(user), "path",
			       BCON_UTF8(path), "uidValidity", BCON_INT32(1700000000), "uidNext",
			       BCON_INT32(1), "modifyIndex", BCON_INT32(0));
	bson_error_t error;
	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &error));
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
}

struct allocation {
	bson_oid_t mailbox;
	uint32_t uid[500], modseq[500];
	int failures;
};

static void *allocate_thread(void *arg)
{
	struct allocation *a = arg;
	for (int i = 0; i < 500; i++) {
		char *error = NULL;
		if (wd_store_allocate_uid(store, &a->mailbox, true, &a->uid[i], &a->modseq[i],
					  &error) < 0) {
			a->failures++;
			free(error);
		}
	}
	return NULL;
}

static void test_concurrent_uid_allocation(void **state)
{
	(void)state;
	bson_oid_t mailbox, user;
	create_mailbox(&mailbox, &user);
	struct allocation threads[4];
	pthread_t ids[4];
	for (int t = 0; t < 4; t++) {
		memset(&threads[t], 0, sizeof(threads[t]));
		threads[t].mailbox = mailbox;
		pthread_create(&ids[t], NULL, allocate_thread, &threads[t]);
	}
	for (int t = 0; t < 4; t++)
		pthread_join(ids[t], NULL);
	/* every UID 1..2000 exactly once, and MODSEQ grows with UID */
	static uint32_t modseq_of_uid[2001];
	memset(modseq_of_uid, 0, sizeof(modseq_of_uid));
	for (int t = 0; t < 4; t++) {
		assert_int_equal(threads[t].failures, 0);
		for (int i = 0; i < 500; i++) {
			uint32_t uid = threads[t].uid[i];
			assert_true(uid >= 1 && uid <= 2000);
			assert_int_equal(modseq_of_uid[uid], 0);
			modseq_of_uid[uid] = threads[t].modseq[i];
			if (i > 0)
				assert_true(uid > threads[t].uid[i - 1]);
		}
	}
	for (uint32_t uid = 2; uid <= 2000; uid++)
		assert_true(modseq_of_uid[uid] > modseq_of_uid[uid - 1]);

	/* COPY-style allocation leaves modifyIndex alone */
	uint32_t uid, modseq;
	char *error = NULL;
	assert_int_equal(wd_store_allocate_uid(store, &mailbox, false, &uid, &modseq, &error), 0);
	assert_int_equal(uid, 2001);
	assert_int_equal(modseq, 2000);
	assert_int_equal(wd_store_allocate_modseq(store, &mailbox, &modseq, &error), 0);
	assert_int_equal(modseq, 2001);

	bson_oid_t missing;
	bson_oid_init(&missing, NULL);
	assert_int_equal(wd_store_allocate_uid(store, &missing, true, &uid, &modseq, &error), -1);
	assert_non_null(strstr(error, "does not exist"));
	free(error);
}

static char self_path[4096];

/* Two processes with two threads each allocate on one mailbox: the update
   lock must also order separate processes (FerretDB has no atomic $inc). */
static void test_uid_allocation_across_processes(void **state)
{
	(void)state;
	bson_oid_t mailbox, user;
	create_mailbox(&mailbox, &user);
	char hex[25], cmd[5200];
	bson_oid_to_string(&mailbox, hex);
	snprintf(cmd, sizeof(cmd), "'%s' allocate-child %s 300 '%s'", self_path, hex, mongo_url);
	FILE *children[2];
	for (int i = 0; i < 2; i++) {
		children[i] = popen(cmd, "r");
		assert_non_null(children[i]);
	}
	struct allocation threads[2];
	pthread_t ids[2];
	for (int t = 0; t < 2; t++) {
		memset(&threads[t], 0, sizeof(threads[t]));
		threads[t].mailbox = mailbox;
		pthread_create(&ids[t], NULL, allocate_thread, &threads[t]);
	}
	static int seen[2001];
	memset(seen, 0, sizeof(seen));
	int total = 0, child_status[2];
	for (int i = 0; i < 2; i++) {
		unsigned uid;
		while (fscanf(children[i], "%u", &uid) == 1 && uid <= 2000) {
			seen[uid]++;
			total++;
		}
		child_status[i] = pclose(children[i]);
	}
	for (int t = 0; t < 2; t++)
		pthread_join(ids[t], NULL);
	assert_int_equal(child_status[0], 0);
	assert_int_equal(child_status[1], 0);
	for (int t = 0; t < 2; t++) {
		assert_int_equal(threads[t].failures, 0);
		for (int i = 0; i < 500; i++) {
			assert_true(threads[t].uid[i] >= 1 && threads[t].uid[i] <= 1600);
			seen[threads[t].uid[i]]++;
			total++;
		}
	}
	assert_int_equal(total, 1600);
	for (int uid = 1; uid <= 1600; uid++)
		assert_int_equal(seen[uid], 1);
}

/* Child side of the test above: allocate `count` UIDs, print them. */
static int allocate_child(const char *mailbox_hex, int count)
{
	bson_oid_t mailbox;
	bson_oid_init_from_string(&mailbox, mailbox_hex);
	store = open_store(redis_url);
	for (int i = 0; i < count; i++) {
		uint32_t uid, modseq;
		char *error = NULL;
		if (wd_store_allocate_uid(store, &mailbox, true, &uid, &modseq, &error) < 0) {
			fprintf(stderr, "allocate: %s\n", error);
			return 1;
		}
		printf("%u\n", uid);
	}
	wd_store_close(&store);
	return 0;
}

static void insert_message(const bson_oid_t *id, const bson_oid_t *mailbox, uint32_t uid)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *doc = BCON_NEW("_id", BCON_OID(id), "mailbox", BCON_OID(mailbox), "uid",
			       BCON_INT32((int32_t)uid), "modseq", BCON_INT32(0));
	bson_error_t error;
	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &error));
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
}

static int64_t message_modseq(const bson_oid_t *id)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	int64_t modseq = -1;
	bson_iter_t iter;
	if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&iter, doc, "modseq"))
		modseq = bson_iter_as_int64(&iter);
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return modseq;
}

struct collected {
	int count;
	struct wd_journal_entry entries[16];
	char flags[16][4][32];
	char paths[16][64];
};

static bool collect(const struct wd_journal_entry *entry, void *context)
{
	struct collected *c = context;
	if (c->count >= 16)
		return false;
	struct wd_journal_entry *e = &c->entries[c->count];
	*e = *entry;
	for (size_t i = 0; i < entry->flag_count && i < 4; i++)
		snprintf(c->flags[c->count][i], 32, "%s", entry->flags[i]);
	e->flags = NULL;
	if (entry->path != NULL)
		snprintf(c->paths[c->count], 64, "%s", entry->path);
	e->path = NULL;
	e->ignore = NULL;
	c->count++;
	return true;
}

static redisContext *redis_connect(void)
{
	/* redis://host:port/db */
	char host[128];
	int port, db;
	if (sscanf(redis_url, "redis://%127[^:]:%d/%d", host, &port, &db) != 3)
		fail_msg("cannot parse %s", redis_url);
	redisContext *ctx = redisConnect(host, port);
	assert_non_null(ctx);
	assert_int_equal(ctx->err, 0);
	freeReplyObject(redisCommand(ctx, "SELECT %d", db));
	return ctx;
}

static void test_journal_write_and_replay(void **state)
{
	(void)state;
	bson_oid_t mailbox, user, owner, msgs[3];
	create_mailbox(&mailbox, &user);
	char *error = NULL;
	uint32_t modseq;
	assert_int_equal(wd_store_allocate_modseq(store, &mailbox, &modseq, &error), 0);
	assert_int_equal(modseq, 1);
	for (int i = 0; i < 3; i++) {
		bson_oid_init(&msgs[i], NULL);
		insert_message(&msgs[i], &mailbox, (uint32_t)i + 1);
	}
	static const char *const flags[] = { "\\Seen", "$Label1" };
	struct wd_journal_entry entries[4] = {
		{ .command = WD_JOURNAL_EXISTS, .uid = 1, .has_message = true, .message = msgs[0],
		  .unseen = 1, .idate_ms = 1700000000123LL },
		{ .command = WD_JOURNAL_EXISTS, .uid = 2, .has_message = true, .message = msgs[1],
		  .unseen = 0, .ignore = "sessionabc" },
		{ .command = WD_JOURNAL_FETCH, .uid = 3, .has_message = true, .message = msgs[2],
		  .flags = flags, .flag_count = 2, .has_flags = true, .unseen = -1,
		  .unseen_change = true },
		{ .command = WD_JOURNAL_RENAME, .path = "Archive/2026", .unseen = -1 },
	};
	assert_int_equal(wd_store_journal_add(store, &mailbox, entries, 4, &owner, &error), 0);
	assert_true(bson_oid_equal(&owner, &user));
	/* one modseq for the whole batch, applied to the messages with $max */
	for (int i = 0; i < 4; i++)
		assert_int_equal(entries[i].modseq, 2);
	for (int i = 0; i < 3; i++)
		assert_int_equal(message_modseq(&msgs[i]), 2);

	struct collected c = { 0 };
	assert_int_equal(wd_store_journal_since(store, &mailbox, 1, collect, &c, &error), 0);
	assert_int_equal(c.count, 4);
	assert_int_equal(c.entries[0].command, WD_JOURNAL_EXISTS);
	assert_int_equal(c.entries[0].uid, 1);
	assert_int_equal(c.entries[0].unseen, 1);
	assert_true(c.entries[0].idate_ms == 1700000000123LL);
	assert_true(bson_oid_equal(&c.entries[0].user, &user));
	assert_true(bson_oid_equal(&c.entries[0].mailbox, &mailbox));
	assert_int_equal(c.entries[1].unseen, 0);
	assert_int_equal(c.entries[2].command, WD_JOURNAL_FETCH);
	assert_true(c.entries[2].has_flags);
	assert_int_equal(c.entries[2].flag_count, 2);
	assert_string_equal(c.flags[2][0], "\\Seen");
	assert_string_equal(c.flags[2][1], "$Label1");
	assert_true(c.entries[2].unseen_change);
	assert_int_equal(c.entries[3].command, WD_JOURNAL_RENAME);
	assert_string_equal(c.paths[3], "Archive/2026");
	assert_true(c.entries[3].created_ms > now_ms() - 60000);

	/* nothing after the newest modseq */
	memset(&c, 0, sizeof(c));
	assert_int_equal(wd_store_journal_since(store, &mailbox, 2, collect, &c, &error), 0);
	assert_int_equal(c.count, 0);

	/* entries with a preset modseq allocate nothing */
	struct wd_journal_entry preset = { .command = WD_JOURNAL_EXPUNGE, .uid = 1, .modseq = 7,
					   .has_message = true, .message = msgs[0], .unseen = 1 };
	assert_int_equal(wd_store_journal_add(store, &mailbox, &preset, 1, NULL, &error), 0);
	uint32_t uid;
	assert_int_equal(wd_store_allocate_uid(store, &mailbox, false, &uid, &modseq, &error), 0);
	assert_int_equal(modseq, 2);
}

static void test_counters_and_notify(void **state)
{
	(void)state;
	bson_oid_t mailbox, user, msg;
	create_mailbox(&mailbox, &user);
	char hex[25];
	bson_oid_to_string(&mailbox, hex);
	redisContext *ctx = redis_connect();
	freeReplyObject(redisCommand(ctx, "SET total:%s 5", hex));
	freeReplyObject(redisCommand(ctx, "SET unseen:%s 2", hex));

	redisContext *sub = redis_connect();
	redisReply *reply = redisCommand(sub, "SUBSCRIBE wd_events");
	freeReplyObject(reply);

	bson_oid_init(&msg, NULL);
	insert_message(&msg, &mailbox, 1);
	struct wd_journal_entry exists = { .command = WD_JOURNAL_EXISTS, .uid = 1,
					   .has_message = true, .message = msg, .unseen = 1 };
	char *error = NULL;
	bson_oid_t owner;
	assert_int_equal(wd_store_journal_add(store, &mailbox, &exists, 1, &owner, &error), 0);
	assert_int_equal(wd_store_notify(store, &owner), 0);

	reply = redisCommand(ctx, "GET total:%s", hex);
	assert_string_equal(reply->str, "6");
	freeReplyObject(reply);
	reply = redisCommand(ctx, "GET unseen:%s", hex);
	assert_string_equal(reply->str, "3");
	freeReplyObject(reply);
	reply = redisCommand(ctx, "TTL total:%s", hex);
	assert_true(reply->integer > 86000 && reply->integer <= 86400);
	freeReplyObject(reply);

	/* the notification, as WildDuck's processes expect it; other tests
	   running in parallel publish on the same channel, so look for ours */
	char expected[64], user_hex[25];
	bson_oid_to_string(&user, user_hex);
	snprintf(expected, sizeof(expected), "{\"e\":\"%s\"}", user_hex);
	struct timeval timeout = { 5, 0 };
	redisSetTimeout(sub, timeout);
	bool seen = false;
	for (int i = 0; i < 10000 && !seen; i++) {
		if (redisGetReply(sub, (void **)&reply) != REDIS_OK)
			break;
		assert_int_equal(reply->elements, 3);
		assert_string_equal(reply->element[1]->str, "wd_events");
		seen = strcmp(reply->element[2]->str, expected) == 0;
		freeReplyObject(reply);
	}
	assert_true(seen);

	/* a flag change that may touch \Seen drops the cached unseen count */
	struct wd_journal_entry fetch = { .command = WD_JOURNAL_FETCH, .uid = 1, .has_message = true,
					  .message = msg, .unseen = -1, .unseen_change = true };
	assert_int_equal(wd_store_journal_add(store, &mailbox, &fetch, 1, NULL, &error), 0);
	reply = redisCommand(ctx, "EXISTS unseen:%s", hex);
	assert_int_equal(reply->integer, 0);
	freeReplyObject(reply);

	/* counters that are not cached stay absent (recomputed on demand) */
	freeReplyObject(redisCommand(ctx, "DEL total:%s", hex));
	struct wd_journal_entry expunge = { .command = WD_JOURNAL_EXPUNGE, .uid = 1,
					    .has_message = true, .message = msg, .unseen = 1 };
	assert_int_equal(wd_store_journal_add(store, &mailbox, &expunge, 1, NULL, &error), 0);
	reply = redisCommand(ctx, "EXISTS total:%s", hex);
	assert_int_equal(reply->integer, 0);
	freeReplyObject(reply);
	redisFree(sub);
	redisFree(ctx);
}

static void insert_dated(enum wd_store_db db, const char *collection, const char *field,
			 int64_t when)
{
	mongoc_client_t *client = wd_store_client(store, db);
	mongoc_collection_t *coll = wd_store_collection(store, client, db, collection);
	bson_t *doc = BCON_NEW(field, BCON_DATE_TIME(when), "marker", BCON_UTF8("ttl-test"));
	bson_error_t error;
	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &error));
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
}

static void test_ttl_expiry(void **state)
{
	(void)state;
	int64_t now = now_ms();
	char *error = NULL;
	struct wd_store_expiry_report report;
	/* clear what other tests left, then count exactly */
	assert_int_equal(wd_store_expire_ttl(store, now + 4LL * 3600 * 1000, &report, &error), 0);
	insert_dated(WD_STORE_DB_MAIN, "journal", "created", now - 4LL * 3600 * 1000);
	insert_dated(WD_STORE_DB_MAIN, "journal", "created", now - 3600 * 1000);
	insert_dated(WD_STORE_DB_MAIN, "threads", "updated", now - 181LL * 24 * 3600 * 1000);
	insert_dated(WD_STORE_DB_MAIN, "threads", "updated", now);
	insert_dated(WD_STORE_DB_USERS, "authlog", "expires", now - 1000);
	insert_dated(WD_STORE_DB_USERS, "authlog", "expires", now + 100000);
	insert_dated(WD_STORE_DB_USERS, "asps", "expires", now - 1000);
	assert_int_equal(wd_store_expire_ttl(store, now, &report, &error), 0);
	assert_int_equal(report.journal, 1);
	assert_int_equal(report.threads, 1);
	assert_int_equal(report.authlog, 1);
	assert_int_equal(report.asps, 1);
	assert_int_equal(wd_store_expire_ttl(store, now, &report, &error), 0);
	assert_int_equal(report.journal + report.threads + report.authlog + report.asps, 0);
}

static void test_redis_down_degrades(void **state)
{
	(void)state;
	/* nothing listens on port 1: writes succeed, notifications are skipped */
	struct wd_store *saved = store;
	store = open_store("redis://127.0.0.1:1/3");
	bson_oid_t mailbox, user, msg;
	create_mailbox(&mailbox, &user);
	bson_oid_init(&msg, NULL);
	insert_message(&msg, &mailbox, 1);
	struct wd_journal_entry exists = { .command = WD_JOURNAL_EXISTS, .uid = 1,
					   .has_message = true, .message = msg, .unseen = 1 };
	char *error = NULL;
	assert_int_equal(wd_store_journal_add(store, &mailbox, &exists, 1, NULL, &error), 0);
	assert_int_equal(wd_store_notify(store, &user), 0);
	struct collected c = { 0 };
	assert_int_equal(wd_store_journal_since(store, &mailbox, 0, collect, &c, &error), 0);
	assert_int_equal(c.count, 1);
	wd_store_close(&store);
	store = saved;
}

int main(int argc, char **argv)
{
	const char *url = getenv("WD_MONGO_URL");
	redis_url = getenv("WD_REDIS_URL");
	if (url == NULL || redis_url == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL are not set: start the stack\n");
		return 77;
	}
	snprintf(mongo_url, sizeof(mongo_url), "%s-journal-%d", url, (int)getpid());
	srand((unsigned)getpid());
	wd_log_init("test-store-journal", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_log_set_handler(NULL, NULL);
	if (argc == 5 && strcmp(argv[1], "allocate-child") == 0) {
		snprintf(mongo_url, sizeof(mongo_url), "%s", argv[4]);
		return allocate_child(argv[2], atoi(argv[3]));
	}
	if (realpath("/proc/self/exe", self_path) == NULL)
		return 1;
	store = open_store(redis_url);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_uid_allocation),
		cmocka_unit_test(test_uid_allocation_across_processes),
		cmocka_unit_test(test_journal_write_and_replay),
		cmocka_unit_test(test_counters_and_notify),
		cmocka_unit_test(test_ttl_expiry),
		cmocka_unit_test(test_redis_down_degrades),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	wd_store_close(&store);
	return failed;
}
