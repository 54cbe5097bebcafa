/* Integration tests (suite storage): IMAP SEARCH compiled to FerretDB
 * queries. Every search runs twice — as a database query (plus the residual
 * evaluator where the compiler says so) and as the evaluator alone over all
 * messages — and both must give the hand-checked UID list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../stack-fixture.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-search.h"
#include "wd-store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DAY (24LL * 3600 * 1000)
#define D0 1767225600000LL /* 2026-01-01T00:00:00Z */

struct fixture {
	uint32_t uid;
	const char *flags[4];
	const char *subject;  /* decoded, as in headers[] (lower-cased there) */
	const char *from;
	const char *extra;    /* a non-indexed raw header line */
	const char *body;
	int64_t idate, hdate;
	int32_t size;
	int32_t modseq;
};

static const struct fixture fixtures[] = {
	{ 1, { "\\Seen", NULL }, "Hello World", "Alice <alice@example.com>", "X-Mailer: Foo 1.0",
	  "the quick brown fox", D0, D0 - DAY, 1000, 5 },
	{ 2, { "\\Flagged", "$Label1", NULL }, "Re: hello again", "Bob <bob@example.org>",
	  "X-Mailer: Bar", "lazy dog a.b", D0 + DAY, D0, 5000, 7 },
	{ 3, { "\\Seen", "\\Deleted", NULL }, "Ünïcode Straße", "Ça Va <cava@example.fr>",
	  "X-Priority: 1", "axb and (parens) [brackets]", D0 + 2 * DAY, D0 + DAY, 200, 9 },
	{ 4, { "\\Draft", "\\Answered", NULL }, "a.b*c", "alice@example.com",
	  "X-Mailer: foo 2.0", "nothing here", D0 + 2 * DAY + 3600000, D0 + 2 * DAY, 70000, 12 },
	{ 5, { NULL }, "", "nobody@example.net", "X-Empty:", "STRASSE in caps", D0 + 10 * DAY,
	  D0 + 9 * DAY, 1, 13 },
};
#define N_FIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static bson_oid_t mailbox;
static bson_t docs[N_FIXTURES];
static char *raw_lines[N_FIXTURES][4];

static void build_doc(const struct fixture *f, bson_t *doc)
{
	bson_init(doc);
	BSON_APPEND_OID(doc, "mailbox", &mailbox);
	BSON_APPEND_INT32(doc, "uid", (int32_t)f->uid);
	BSON_APPEND_INT32(doc, "modseq", f->modseq);
	BSON_APPEND_INT32(doc, "size", f->size);
	BSON_APPEND_DATE_TIME(doc, "idate", f->idate);
	BSON_APPEND_DATE_TIME(doc, "hdate", f->hdate);
	bson_t flags, headers, h;
	bson_append_array_begin(doc, "flags", -1, &flags);
	bool seen = false, deleted = false, flagged = false, draft = false;
	for (int i = 0; f->flags[i] != NULL; i++) {
		char key[4];
		snprintf(key, sizeof(key), "%d", i);
		BSON_APPEND_UTF8(&flags, key, f->flags[i]);
		seen |= strcmp(f->flags[i], "\\Seen") == 0;
		deleted |= strcmp(f->flags[i], "\\Deleted") == 0;
		flagged |= strcmp(f->flags[i], "\\Flagged") == 0;
		draft |= strcmp(f->flags[i], "\\Draft") == 0;
	}
	bson_append_array_end(doc, &flags);
	BSON_APPEND_BOOL(doc, "unseen", !seen);
	BSON_APPEND_BOOL(doc, "undeleted", !deleted);
	BSON_APPEND_BOOL(doc, "flagged", flagged);
	BSON_APPEND_BOOL(doc, "draft", draft);
	/* indexed headers are stored lower-cased, as WildDuck does */
	bson_append_array_begin(doc, "headers", -1, &headers);
	char *subject = wd_search_fold(f->subject), *from = wd_search_fold(f->from);
	bson_append_document_begin(&headers, "0", -1, &h);
	BSON_APPEND_UTF8(&h, "key", "subject");
	BSON_APPEND_UTF8(&h, "value", subject);
	bson_append_document_end(&headers, &h);
	bson_append_document_begin(&headers, "1", -1, &h);
	BSON_APPEND_UTF8(&h, "key", "from");
	BSON_APPEND_UTF8(&h, "value", from);
	bson_append_document_end(&headers, &h);
	bson_append_array_end(doc, &headers);
	free(subject);
	free(from);
}

static int setup(void **state)
{
	(void)state;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_oid_init(&mailbox, NULL);
	for (size_t i = 0; i < N_FIXTURES; i++) {
		build_doc(&fixtures[i], &docs[i]);
		bson_error_t error;
		if (!mongoc_collection_insert_one(coll, &docs[i], NULL, NULL, &error))
			return -1;
		if (asprintf(&raw_lines[i][0], "Subject: %s", fixtures[i].subject) < 0 ||
		    asprintf(&raw_lines[i][1], "From: %s", fixtures[i].from) < 0 ||
		    asprintf(&raw_lines[i][2], "%s", fixtures[i].extra) < 0)
			return -1;
	}
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return 0;
}

static struct wd_search_message message_of(size_t i)
{
	struct wd_search_message msg = { &docs[i], (const char *const *)raw_lines[i], 3,
					 fixtures[i].body };
	return msg;
}

/* Runs `key` both ways; returns the UIDs as "1,3" (database way) and checks
   the evaluator-only way gives the same. */
static const struct wd_store_caps *caps;

static void search(const struct wd_search_key *key, char *out, size_t size)
{
	bson_t query = BSON_INITIALIZER;
	BSON_APPEND_OID(&query, "mailbox", &mailbox);
	bool residual;
	wd_search_compile(key, caps, &query, &residual);
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *opts = BCON_NEW("sort", "{", "uid", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &query, opts, NULL);
	const bson_t *doc;
	out[0] = '\0';
	size_t n = 0;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter;
		assert_true(bson_iter_init_find(&iter, doc, "uid"));
		size_t i = (size_t)bson_iter_int32(&iter) - 1;
		if (residual) {
			struct wd_search_message msg = message_of(i);
			if (!wd_search_matches(key, &msg))
				continue;
		}
		n += (size_t)snprintf(out + n, size - n, "%s%zu", n > 0 ? "," : "", i + 1);
	}
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error)) {
		char *json = bson_as_relaxed_extended_json(&query, NULL);
		fail_msg("query %s failed: %s", json, error.message);
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	bson_destroy(&query);

	char brute[64] = "";
	size_t m = 0;
	for (size_t i = 0; i < N_FIXTURES; i++) {
		struct wd_search_message msg = message_of(i);
		if (wd_search_matches(key, &msg))
			m += (size_t)snprintf(brute + m, sizeof(brute) - m, "%s%zu", m > 0 ? "," : "", i + 1);
	}
	if (strcmp(brute, out) != 0)
		fail_msg("database says {%s}, evaluator says {%s}", out, brute);
}

#define EXPECT(key, uids) do { \
	char got[64]; \
	search(&(key), got, sizeof(got)); \
	if (strcmp(got, uids) != 0) \
		fail_msg("line %d: expected {%s}, got {%s}", __LINE__, uids, got); \
} while (0)

static struct wd_search_key header(const char *name, const char *value)
{
	return (struct wd_search_key){ .op = WD_SEARCH_HEADER, .name = name, .value = value };
}

static struct wd_search_key flag(const char *name, bool set)
{
	return (struct wd_search_key){ .op = WD_SEARCH_FLAG, .flag = name, .set = set };
}

static void test_flags_and_uids(void **state)
{
	(void)state;
	struct wd_search_key all = { .op = WD_SEARCH_ALL };
	EXPECT(all, "1,2,3,4,5");
	struct wd_search_key k;
	k = flag("\\Seen", true);
	EXPECT(k, "1,3");
	k = flag("\\seen", false);
	EXPECT(k, "2,4,5");
	k = flag("\\Deleted", true);
	EXPECT(k, "3");
	k = flag("\\Flagged", true);
	EXPECT(k, "2");
	k = flag("\\Draft", false);
	EXPECT(k, "1,2,3,5");
	k = flag("\\Answered", true);
	EXPECT(k, "4");
	k = flag("$label1", true); /* keywords are case-insensitive */
	EXPECT(k, "2");
	k = flag("$Label1", false);
	EXPECT(k, "1,3,4,5");
	k = flag("$Label", true); /* no prefix matches */
	EXPECT(k, "");
	struct wd_search_uid_range ranges[] = { { 2, 3 }, { 5, 5 } };
	k = (struct wd_search_key){ .op = WD_SEARCH_UID, .ranges = ranges, .range_count = 2 };
	EXPECT(k, "2,3,5");
	struct wd_search_uid_range star[] = { { 4, UINT32_MAX } };
	k = (struct wd_search_key){ .op = WD_SEARCH_UID, .ranges = star, .range_count = 1 };
	EXPECT(k, "4,5");
	struct wd_search_uid_range reversed[] = { { 3, 1 } };
	k = (struct wd_search_key){ .op = WD_SEARCH_UID, .ranges = reversed, .range_count = 1 };
	EXPECT(k, "1,2,3");
}

static void test_headers_substring(void **state)
{
	(void)state;
	struct wd_search_key k;
	k = header("SUBJECT", "hello");
	EXPECT(k, "1,2");
	k = header("Subject", "WORLD");
	EXPECT(k, "1");
	k = header("subject", "a.b"); /* '.' is not a wildcard */
	EXPECT(k, "4");
	k = header("subject", "b*c");
	EXPECT(k, "4");
	k = header("subject", "straße"); /* non-ASCII, case-folded */
	EXPECT(k, "3");
	k = header("subject", "ÜNÏ");
	EXPECT(k, "3");
	k = header("from", "alice");
	EXPECT(k, "1,4");
	k = header("from", "ça va");
	EXPECT(k, "3");
	k = header("subject", ""); /* has the field */
	EXPECT(k, "1,2,3,4,5");
	/* a header WildDuck does not index: decided by the evaluator */
	k = header("X-Mailer", "foo");
	EXPECT(k, "1,4");
	k = header("x-priority", "");
	EXPECT(k, "3");
	k = header("X-Nothing", "");
	EXPECT(k, "");
}

static void test_body_text_dates_sizes(void **state)
{
	(void)state;
	struct wd_search_key k;
	k = (struct wd_search_key){ .op = WD_SEARCH_BODY, .value = "A.B" };
	EXPECT(k, "2");
	k = (struct wd_search_key){ .op = WD_SEARCH_BODY, .value = "(parens) [brack" };
	EXPECT(k, "3");
	k = (struct wd_search_key){ .op = WD_SEARCH_TEXT, .value = "strasse" };
	EXPECT(k, "5");
	k = (struct wd_search_key){ .op = WD_SEARCH_TEXT, .value = "example.org" };
	EXPECT(k, "2");
	k = (struct wd_search_key){ .op = WD_SEARCH_BEFORE, .day_ms = D0 + DAY };
	EXPECT(k, "1");
	k = (struct wd_search_key){ .op = WD_SEARCH_ON, .day_ms = D0 + 2 * DAY };
	EXPECT(k, "3,4");
	k = (struct wd_search_key){ .op = WD_SEARCH_SINCE, .day_ms = D0 + 2 * DAY };
	EXPECT(k, "3,4,5");
	k = (struct wd_search_key){ .op = WD_SEARCH_SENTON, .day_ms = D0 };
	EXPECT(k, "2");
	k = (struct wd_search_key){ .op = WD_SEARCH_SENTBEFORE, .day_ms = D0 };
	EXPECT(k, "1");
	k = (struct wd_search_key){ .op = WD_SEARCH_SENTSINCE, .day_ms = D0 + 2 * DAY };
	EXPECT(k, "4,5");
	k = (struct wd_search_key){ .op = WD_SEARCH_LARGER, .number = 1000 };
	EXPECT(k, "2,4");
	k = (struct wd_search_key){ .op = WD_SEARCH_SMALLER, .number = 1000 };
	EXPECT(k, "3,5");
	k = (struct wd_search_key){ .op = WD_SEARCH_MODSEQ, .number = 9 };
	EXPECT(k, "3,4,5");
}

static void test_boolean_structure(void **state)
{
	(void)state;
	struct wd_search_key seen = flag("\\Seen", true);
	struct wd_search_key hello = header("subject", "hello");
	struct wd_search_key mailer = header("x-mailer", "foo");
	struct wd_search_key body = { .op = WD_SEARCH_BODY, .value = "dog" };
	struct wd_search_key *and_children[] = { &seen, &hello };
	struct wd_search_key and = { .op = WD_SEARCH_AND, .children = and_children, .child_count = 2 };
	EXPECT(and, "1");
	struct wd_search_key *or_children[] = { &seen, &body };
	struct wd_search_key or = { .op = WD_SEARCH_OR, .children = or_children, .child_count = 2 };
	EXPECT(or, "1,2,3");
	struct wd_search_key *not_children[] = { &mailer };
	struct wd_search_key not = { .op = WD_SEARCH_NOT, .children = not_children, .child_count = 1 };
	EXPECT(not, "2,3,5");
	struct wd_search_key *not_seen_children[] = { &seen };
	struct wd_search_key not_seen = { .op = WD_SEARCH_NOT, .children = not_seen_children,
					  .child_count = 1 };
	EXPECT(not_seen, "2,4,5");
	/* NOT (OR inexact exact) AND something */
	struct wd_search_key *nested_or[] = { &mailer, &seen };
	struct wd_search_key or2 = { .op = WD_SEARCH_OR, .children = nested_or, .child_count = 2 };
	struct wd_search_key *not_or_children[] = { &or2 };
	struct wd_search_key not_or = { .op = WD_SEARCH_NOT, .children = not_or_children,
					.child_count = 1 };
	struct wd_search_key larger = { .op = WD_SEARCH_LARGER, .number = 100 };
	struct wd_search_key *top_children[] = { &not_or, &larger };
	struct wd_search_key top = { .op = WD_SEARCH_AND, .children = top_children, .child_count = 2 };
	EXPECT(top, "2");
	struct wd_search_uid_range none[] = { { 0, 0 } };
	struct wd_search_key empty = { .op = WD_SEARCH_UID, .ranges = none, .range_count = 0 };
	EXPECT(empty, "");
}

/* The filter shape for a MongoDB server, which no test stack here runs. */
static void test_mongodb_filter_shape(void **state)
{
	(void)state;
	struct wd_store_caps mongodb = { .elem_match_fields = true };
	struct wd_search_key subject = header("Subject", "A.b");
	struct wd_search_key seen = flag("\\Seen", false);
	struct wd_search_key *children[] = { &subject, &seen };
	struct wd_search_key not_child = { .op = WD_SEARCH_AND, .children = children,
					   .child_count = 2 };
	struct wd_search_key *not_children[] = { &not_child };
	struct wd_search_key not = { .op = WD_SEARCH_NOT, .children = not_children, .child_count = 1 };
	bson_t query = BSON_INITIALIZER;
	bool residual;
	wd_search_compile(&not, &mongodb, &query, &residual);
	assert_false(residual);
	char *json = bson_as_relaxed_extended_json(&query, NULL);
	assert_string_equal(json,
		"{ \"$and\" : [ { \"$nor\" : [ { \"$and\" : [ { \"headers\" : { \"$elemMatch\" : "
		"{ \"key\" : \"subject\", \"value\" : { \"$regex\" : \"a\\\\.b\", \"$options\" : \"i\" } } } }, "
		"{ \"unseen\" : true } ] } ] } ] }");
	bson_free(json);
	bson_destroy(&query);
}

int main(void)
{
	int ret = test_stack_open("test-store-search");
	if (ret != 0)
		return ret;
	/* Queries use what the server supports (detected at open). */
	caps = wd_store_caps(store);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags_and_uids),
		cmocka_unit_test(test_headers_substring),
		cmocka_unit_test(test_body_text_dates_sizes),
		cmocka_unit_test(test_boolean_structure),
		cmocka_unit_test(test_mongodb_filter_shape),
	};
	int failed = cmocka_run_group_tests(tests, setup, NULL);
	test_stack_drop();
	return failed;
}
