/* Integration test (suite storage): the change journal read straight from
 * FerretDB's SQLite file (wd_store_journal_since_fdb, store-journal.c), the
 * read an IMAP session runs after every wd_events notification, against the
 * same read through FerretDB.
 *
 * Entries of every kind the sessions replay (EXISTS with message, thread,
 * ignore, unseen, idate and junk; a batch of FETCH entries sharing one
 * modseq, with keywords that need JSON escapes and non-ASCII; EXPUNGE; CREATE
 * with a path) are written with wd_store_journal_add() into one mailbox, and
 * some into another. Both reads must return the same entries, field by
 * field, in the same order (modseq, then _id), from every starting modseq;
 * the callback's "stop" must stop both; the other mailbox's entries must not
 * appear. Without dbs.ferretdbSqlite the direct read must answer "not here"
 * (WD_STORE_FDB_NONE) and call nothing. After the database is dropped and
 * created again, the direct read must read the new file.
 *
 * Needs WD_MONGO_URL, WD_REDIS_URL and WD_FERRETDB_SQLITE (scripts/stack.sh
 * prints them); skipped (77) without. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-fdb.h"
#include "wd-store-journal.h"
#include "wd-store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ENTRIES 32
#define MAX_FLAGS 8

static struct wd_store *direct;  /* with ferretdbSqlite */
static struct wd_store *through; /* without: wd_store_journal_since() asks FerretDB */
static char db_name[128];
static bson_oid_t user, mailbox, other_mailbox;

/* An entry copied out of the callback (its pointers live for the call). */
struct copied {
	struct wd_journal_entry e;
	char ignore[64], path[64];
	bool has_ignore, has_path;
	char flags[MAX_FLAGS][64];
};

struct collected {
	struct copied items[MAX_ENTRIES];
	size_t count;
	size_t stop_after; /* 0: never stop */
	size_t calls;
};

static bool collect(const struct wd_journal_entry *entry, void *context)
{
	struct collected *c = context;
	c->calls++;
	assert_true(c->count < MAX_ENTRIES);
	struct copied *cp = &c->items[c->count++];
	cp->e = *entry;
	cp->has_ignore = entry->ignore != NULL;
	snprintf(cp->ignore, sizeof(cp->ignore), "%s", entry->ignore != NULL ? entry->ignore : "");
	cp->has_path = entry->path != NULL;
	snprintf(cp->path, sizeof(cp->path), "%s", entry->path != NULL ? entry->path : "");
	assert_true(entry->flag_count <= MAX_FLAGS);
	for (size_t i = 0; i < entry->flag_count; i++)
		snprintf(cp->flags[i], sizeof(cp->flags[i]), "%s", entry->flags[i]);
	cp->e.ignore = cp->e.path = NULL;
	cp->e.flags = NULL;
	return c->stop_after == 0 || c->count < c->stop_after;
}

static struct wd_store *open_store(const char *mongo, const char *redis, const char *sqlite)
{
	char text[2048];
	int n = snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s\"\nredis = \"%s\"\n", mongo,
			 redis);
	if (sqlite != NULL)
		snprintf(text + n, sizeof(text) - (size_t)n, "ferretdbSqlite = \"%s\"\n", sqlite);
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	if (config == NULL) {
		fprintf(stderr, "config: %s\n", error);
		exit(1);
	}
	struct wd_store *s = wd_store_open(config, &error);
	wd_config_free(&config);
	if (s == NULL) {
		fprintf(stderr, "open: %s\n", error);
		exit(1);
	}
	return s;
}

static void insert_mailbox(const bson_oid_t *id, const char *path)
{
	mongoc_client_t *client = wd_store_client(through, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(through, client, WD_STORE_DB_MAIN,
							"mailboxes");
	bson_t *doc = BCON_NEW("_id", BCON_OID(id), "user", BCON_OID(&user), "path",
			       BCON_UTF8(path), "uidValidity", BCON_INT32(1767225600), "uidNext",
			       BCON_INT32(1), "modifyIndex", BCON_INT32(0));
	bson_error_t error;
	bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	wd_store_client_release(through, WD_STORE_DB_MAIN, client);
	if (!ok)
		fail_msg("insert mailbox: %s", error.message);
}

static void add(const bson_oid_t *box, struct wd_journal_entry *entries, size_t count)
{
	char *error = NULL;
	bson_oid_t owner;
	if (wd_store_journal_add(through, box, entries, count, &owner, &error) < 0)
		fail_msg("journal add: %s", error);
	assert_true(bson_oid_equal(&owner, &user));
}

static int setup(void **state)
{
	(void)state;
	const char *url = getenv("WD_MONGO_URL"), *redis = getenv("WD_REDIS_URL");
	const char *sqlite = getenv("WD_FERRETDB_SQLITE");
	if (url == NULL || redis == NULL || sqlite == NULL || strrchr(url, '/') == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL/WD_FERRETDB_SQLITE are not set\n");
		exit(77);
	}
	wd_log_init("test-journal-sqlite", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_log_set_handler(NULL, NULL);
	char mongo[1024];
	snprintf(db_name, sizeof(db_name), "wdtest_journal_%d", (int)getpid());
	snprintf(mongo, sizeof(mongo), "%.*s/%s", (int)(strrchr(url, '/') - url), url, db_name);
	/* the store falls back to the variable: without it, FerretDB only */
	char *sqlite_dir = strdup(sqlite);
	unsetenv("WD_FERRETDB_SQLITE");
	through = open_store(mongo, redis, NULL);
	bson_oid_init(&user, NULL);
	bson_oid_init(&mailbox, NULL);
	bson_oid_init(&other_mailbox, NULL);
	insert_mailbox(&mailbox, "INBOX");
	insert_mailbox(&other_mailbox, "Other");

	/* the journal's {mailbox, modseq} index, as at every server start */
	struct wd_store_index_report report;
	char *error = NULL;
	if (wd_store_ensure_indexes(through, &report, &error) < 0)
		fail_msg("indexes: %s", error);

	bson_oid_t msg[4], thread;
	for (int i = 0; i < 4; i++)
		bson_oid_init(&msg[i], NULL);
	bson_oid_init(&thread, NULL);
	static const char *const flags[] = { "\\Seen", "$Label1", "Ünïcödé", "quo\"te\\back" };

	struct wd_journal_entry exists = {
		.command = WD_JOURNAL_EXISTS, .uid = 1, .has_message = true, .message = msg[0],
		.has_thread = true, .thread = thread, .ignore = "session-a", .unseen = 1,
		.idate_ms = 1767225600123, .junk = 1,
	};
	add(&mailbox, &exists, 1);
	struct wd_journal_entry other = {
		.command = WD_JOURNAL_EXISTS, .uid = 1, .has_message = true, .message = msg[3],
		.unseen = 1,
	};
	add(&other_mailbox, &other, 1);
	/* one modseq for the batch: ties are read in _id order */
	struct wd_journal_entry fetches[3];
	for (int i = 0; i < 3; i++) {
		fetches[i] = (struct wd_journal_entry){
			.command = WD_JOURNAL_FETCH, .uid = (uint32_t)(i + 1), .has_message = true,
			.message = msg[i], .ignore = i == 1 ? NULL : "session-b",
			.flags = flags, .flag_count = (size_t)(i + 2), .has_flags = true,
			.unseen = i == 0 ? 0 : -1, .unseen_change = i == 0,
		};
	}
	fetches[2].flag_count = 0; /* an empty flag list is a list */
	add(&mailbox, fetches, 3);
	struct wd_journal_entry expunge = {
		.command = WD_JOURNAL_EXPUNGE, .uid = 1, .has_message = true, .message = msg[0],
		.unseen = 0,
	};
	add(&mailbox, &expunge, 1);
	struct wd_journal_entry create = { .command = WD_JOURNAL_CREATE, .modseq = 99,
					   .path = "Folder/Sub", .unseen = -1 };
	add(&mailbox, &create, 1);

	direct = open_store(mongo, redis, sqlite_dir);
	free(sqlite_dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mongoc_client_t *client = wd_store_client(through, WD_STORE_DB_MAIN);
	mongoc_database_t *db = mongoc_client_get_database(client, db_name);
	mongoc_database_drop(db, NULL);
	mongoc_database_destroy(db);
	wd_store_client_release(through, WD_STORE_DB_MAIN, client);
	wd_store_close(&direct);
	wd_store_close(&through);
	return 0;
}

static void assert_same(const struct copied *a, const struct copied *b)
{
	assert_int_equal(a->e.command, b->e.command);
	assert_int_equal(a->e.uid, b->e.uid);
	assert_int_equal(a->e.modseq, b->e.modseq);
	assert_true(bson_oid_equal(&a->e.id, &b->e.id));
	assert_true(bson_oid_equal(&a->e.mailbox, &b->e.mailbox));
	assert_true(bson_oid_equal(&a->e.user, &b->e.user));
	assert_int_equal(a->e.has_message, b->e.has_message);
	if (a->e.has_message)
		assert_true(bson_oid_equal(&a->e.message, &b->e.message));
	assert_int_equal(a->e.has_thread, b->e.has_thread);
	if (a->e.has_thread)
		assert_true(bson_oid_equal(&a->e.thread, &b->e.thread));
	assert_int_equal(a->has_ignore, b->has_ignore);
	assert_string_equal(a->ignore, b->ignore);
	assert_int_equal(a->e.has_flags, b->e.has_flags);
	assert_int_equal(a->e.flag_count, b->e.flag_count);
	for (size_t i = 0; i < a->e.flag_count; i++)
		assert_string_equal(a->flags[i], b->flags[i]);
	assert_int_equal(a->e.unseen, b->e.unseen);
	assert_int_equal(a->e.unseen_change, b->e.unseen_change);
	assert_int_equal(a->e.idate_ms, b->e.idate_ms);
	assert_int_equal(a->e.junk, b->e.junk);
	assert_int_equal(a->has_path, b->has_path);
	assert_string_equal(a->path, b->path);
	assert_int_equal(a->e.created_ms, b->e.created_ms);
}

/* Both reads of `box` after `modseq`; returns how many entries they gave. */
static size_t compare_reads(const bson_oid_t *box, uint32_t modseq, size_t stop_after,
			    struct collected *d)
{
	static struct collected t;
	char *error = NULL;
	memset(d, 0, sizeof(*d));
	memset(&t, 0, sizeof(t));
	d->stop_after = t.stop_after = stop_after;
	int ret = wd_store_journal_since_fdb(direct, box, modseq, collect, d, &error);
	if (ret != WD_OK)
		fail_msg("direct read: %d %s", ret, error != NULL ? error : "(not taken)");
	if (wd_store_journal_since(through, box, modseq, collect, &t, &error) != WD_OK)
		fail_msg("read through FerretDB: %s", error);
	assert_int_equal(d->count, t.count);
	for (size_t i = 0; i < d->count; i++)
		assert_same(&d->items[i], &t.items[i]);
	return d->count;
}

static void test_same_entries_as_ferretdb(void **state)
{
	(void)state;
	static struct collected d;
	/* EXISTS, 3 FETCH, EXPUNGE, CREATE */
	assert_int_equal(compare_reads(&mailbox, 0, 0, &d), 6);
	assert_int_equal(d.items[0].e.command, WD_JOURNAL_EXISTS);
	assert_string_equal(d.items[0].ignore, "session-a");
	assert_int_equal(d.items[0].e.junk, 1);
	assert_int_equal(d.items[0].e.idate_ms, 1767225600123);
	assert_int_equal(d.items[0].e.unseen, 1);
	/* the FETCH batch: one modseq, _id order = insertion order */
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(d.items[i].e.command, WD_JOURNAL_FETCH);
		assert_int_equal(d.items[i].e.uid, (uint32_t)i);
		assert_int_equal(d.items[i].e.modseq, d.items[1].e.modseq);
		assert_true(d.items[i].e.has_flags);
	}
	assert_true(d.items[1].e.modseq > d.items[0].e.modseq);
	assert_int_equal(d.items[1].e.flag_count, 2);
	assert_int_equal(d.items[2].e.flag_count, 3);
	assert_string_equal(d.items[2].flags[2], "Ünïcödé");
	assert_int_equal(d.items[3].e.flag_count, 0);
	assert_true(d.items[1].e.unseen_change);
	assert_false(d.items[2].has_ignore);
	assert_int_equal(d.items[4].e.command, WD_JOURNAL_EXPUNGE);
	assert_int_equal(d.items[5].e.command, WD_JOURNAL_CREATE);
	assert_string_equal(d.items[5].path, "Folder/Sub");
	assert_int_equal(d.items[5].e.modseq, 99);
	assert_false(d.items[5].e.has_message);
}

static void test_escaped_keyword(void **state)
{
	(void)state;
	/* a FETCH entry with all four flags, one needing JSON escapes */
	static const char *const flags[] = { "\\Seen", "$Label1", "Ünïcödé", "quo\"te\\back" };
	struct wd_journal_entry fetch = { .command = WD_JOURNAL_FETCH, .uid = 2, .modseq = 120,
					  .flags = flags, .flag_count = 4, .has_flags = true,
					  .unseen = -1 };
	add(&mailbox, &fetch, 1);
	static struct collected d;
	assert_int_equal(compare_reads(&mailbox, 99, 0, &d), 1);
	assert_int_equal(d.items[0].e.flag_count, 4);
	assert_string_equal(d.items[0].flags[3], "quo\"te\\back");
}

static void test_from_each_modseq(void **state)
{
	(void)state;
	static struct collected all, d;
	size_t total = compare_reads(&mailbox, 0, 0, &all);
	for (size_t i = 0; i < total; i++) {
		uint32_t modseq = all.items[i].e.modseq;
		size_t later = 0;
		for (size_t j = 0; j < total; j++)
			later += all.items[j].e.modseq > modseq;
		assert_int_equal(compare_reads(&mailbox, modseq, 0, &d), later);
	}
	/* nothing after the last one */
	assert_int_equal(compare_reads(&mailbox, all.items[total - 1].e.modseq, 0, &d), 0);
}

static void test_stop_and_other_mailbox(void **state)
{
	(void)state;
	static struct collected d;
	assert_int_equal(compare_reads(&mailbox, 0, 2, &d), 2);
	assert_int_equal(d.calls, 2);
	assert_int_equal(compare_reads(&other_mailbox, 0, 0, &d), 1);
	assert_true(bson_oid_equal(&d.items[0].e.mailbox, &other_mailbox));
	bson_oid_t none;
	bson_oid_init(&none, NULL);
	assert_int_equal(compare_reads(&none, 0, 0, &d), 0);
}

/* A database dropped and created again (a new file under the same path)
   must be read anew, never the old file's entries. A reader that kept its
   SQLite connection open across the drop would also leave the old -shm
   behind (FerretDB cannot remove what another process holds), and FerretDB
   then fails to create the database again ("disk I/O error"): the direct
   read must hold nothing between reads. */
static void test_database_created_again(void **state)
{
	(void)state;
	static struct collected d;
	assert_true(compare_reads(&mailbox, 0, 0, &d) > 0); /* the connection is open */
	mongoc_client_t *client = wd_store_client(through, WD_STORE_DB_MAIN);
	mongoc_database_t *db = mongoc_client_get_database(client, db_name);
	bson_error_t error;
	assert_true(mongoc_database_drop(db, &error));
	mongoc_database_destroy(db);
	wd_store_client_release(through, WD_STORE_DB_MAIN, client);
	insert_mailbox(&mailbox, "INBOX");
	struct wd_store_index_report report;
	char *err = NULL;
	if (wd_store_ensure_indexes(through, &report, &err) < 0)
		fail_msg("indexes: %s", err);
	struct wd_journal_entry exists = { .command = WD_JOURNAL_EXISTS, .uid = 7, .modseq = 5,
					   .ignore = "after-drop", .unseen = 1 };
	add(&mailbox, &exists, 1);
	assert_int_equal(compare_reads(&mailbox, 0, 0, &d), 1);
	assert_int_equal(d.items[0].e.uid, 7);
	assert_string_equal(d.items[0].ignore, "after-drop");
}

static void test_not_taken_without_directory(void **state)
{
	(void)state;
	static struct collected d;
	char *error = NULL;
	assert_int_equal(wd_store_journal_since_fdb(through, &mailbox, 0, collect, &d, &error),
			 WD_STORE_FDB_NONE);
	assert_int_equal(d.calls, 0);
	assert_null(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_entries_as_ferretdb),
		cmocka_unit_test(test_escaped_keyword),
		cmocka_unit_test(test_from_each_modseq),
		cmocka_unit_test(test_stop_and_other_mailbox),
		cmocka_unit_test(test_not_taken_without_directory),
		cmocka_unit_test(test_database_created_again),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
