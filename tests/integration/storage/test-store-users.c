/* Integration tests (suite storage): users, addresses and mailboxes
 * (wd-store-user.h) against the stack's database. The documents are checked
 * field by field, with their BSON types, against WildDuck's (reference §2.1,
 * §2.2, §2.8, §0). Every run works in a fresh database with a random name
 * derived from WD_MONGO_URL and drops it at the end. Needs WD_MONGO_URL;
 * WD_REDIS_URL is used when set (journal notifications, update locks). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char mongo_url[600];
static char db_name[64];
static struct wd_store *store;

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- helpers ---- */

static mongoc_collection_t *coll_get(enum wd_store_db db, const char *name,
				     mongoc_client_t **client_r)
{
	*client_r = wd_store_client(store, db);
	return wd_store_collection(store, *client_r, db, name);
}

static void coll_put(enum wd_store_db db, mongoc_collection_t *coll, mongoc_client_t *client)
{
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
}

static int64_t count(enum wd_store_db db, const char *name, const bson_t *query)
{
	mongoc_client_t *client;
	mongoc_collection_t *coll = coll_get(db, name, &client);
	bson_error_t error;
	bson_t empty = BSON_INITIALIZER;
	int64_t n = mongoc_collection_count_documents(coll, query != NULL ? query : &empty, NULL,
						      NULL, NULL, &error);
	if (n < 0)
		fail_msg("count %s: %s", name, error.message);
	coll_put(db, coll, client);
	return n;
}

static int64_t count_user(enum wd_store_db db, const char *name, const char *field,
			  const bson_oid_t *user)
{
	bson_t *query = BCON_NEW(field, BCON_OID(user));
	int64_t n = count(db, name, query);
	bson_destroy(query);
	return n;
}

/* The one document matching query (fails when there is none). */
static bson_t *find_one(enum wd_store_db db, const char *name, const bson_t *query)
{
	mongoc_client_t *client;
	mongoc_collection_t *coll = coll_get(db, name, &client);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	bson_t *copy = NULL;
	if (mongoc_cursor_next(cursor, &doc))
		copy = bson_copy(doc);
	mongoc_cursor_destroy(cursor);
	coll_put(db, coll, client);
	if (copy == NULL)
		fail_msg("no document in %s", name);
	return copy;
}

static void insert(enum wd_store_db db, const char *name, const bson_t *doc)
{
	mongoc_client_t *client;
	mongoc_collection_t *coll = coll_get(db, name, &client);
	bson_error_t error;
	if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &error))
		fail_msg("insert into %s: %s", name, error.message);
	coll_put(db, coll, client);
}

static const char *type_name(bson_type_t type)
{
	switch (type) {
	case BSON_TYPE_DOUBLE: return "double";
	case BSON_TYPE_UTF8: return "string";
	case BSON_TYPE_DOCUMENT: return "document";
	case BSON_TYPE_ARRAY: return "array";
	case BSON_TYPE_OID: return "ObjectId";
	case BSON_TYPE_BOOL: return "bool";
	case BSON_TYPE_DATE_TIME: return "Date";
	case BSON_TYPE_NULL: return "null";
	case BSON_TYPE_INT32: return "int32";
	case BSON_TYPE_INT64: return "int64";
	default: return "other";
	}
}

/* Field `key` (dotted path allowed) has BSON type `type`. */
static bson_iter_t expect_type_at(const bson_t *doc, const char *key, bson_type_t type, int line)
{
	bson_iter_t iter, found;
	memset(&found, 0, sizeof(found));
	if (!bson_iter_init(&iter, doc) || !bson_iter_find_descendant(&iter, key, &found))
		fail_msg("line %d: field %s missing", line, key);
	if (bson_iter_type(&found) != type)
		fail_msg("line %d: field %s is %s, want %s", line, key,
			 type_name(bson_iter_type(&found)), type_name(type));
	return found;
}
#define EXPECT_TYPE(doc, key, type) expect_type_at(doc, key, type, __LINE__)

#define EXPECT_STR(doc, key, value)                                                        \
	do {                                                                               \
		bson_iter_t it_ = EXPECT_TYPE(doc, key, BSON_TYPE_UTF8);                   \
		assert_string_equal(bson_iter_utf8(&it_, NULL), value);                    \
	} while (0)
#define EXPECT_INT32(doc, key, value)                                                      \
	do {                                                                               \
		bson_iter_t it_ = EXPECT_TYPE(doc, key, BSON_TYPE_INT32);                  \
		assert_int_equal(bson_iter_int32(&it_), value);                            \
	} while (0)
#define EXPECT_DOUBLE(doc, key, value)                                                     \
	do {                                                                               \
		bson_iter_t it_ = EXPECT_TYPE(doc, key, BSON_TYPE_DOUBLE);                 \
		assert_true(bson_iter_double(&it_) == (double)(value));                    \
	} while (0)
#define EXPECT_BOOL(doc, key, value)                                                       \
	do {                                                                               \
		bson_iter_t it_ = EXPECT_TYPE(doc, key, BSON_TYPE_BOOL);                   \
		assert_int_equal(bson_iter_bool(&it_), value);                             \
	} while (0)
#define EXPECT_NULL(doc, key) EXPECT_TYPE(doc, key, BSON_TYPE_NULL)
#define EXPECT_ABSENT(doc, key)                                                            \
	do {                                                                               \
		bson_iter_t it_;                                                           \
		if (bson_iter_init_find(&it_, doc, key))                                   \
			fail_msg("line %d: field %s should be absent", __LINE__, key);     \
	} while (0)

static void expect_empty(const bson_t *doc, const char *key, bson_type_t type, int line)
{
	bson_iter_t it = expect_type_at(doc, key, type, line);
	uint32_t len;
	const uint8_t *data;
	if (type == BSON_TYPE_ARRAY)
		bson_iter_array(&it, &len, &data);
	else
		bson_iter_document(&it, &len, &data);
	if (len != 5)
		fail_msg("line %d: %s is not empty", line, key);
}
#define EXPECT_EMPTY_ARRAY(doc, key) expect_empty(doc, key, BSON_TYPE_ARRAY, __LINE__)
#define EXPECT_EMPTY_DOC(doc, key) expect_empty(doc, key, BSON_TYPE_DOCUMENT, __LINE__)

static void expect_recent_date(const bson_t *doc, const char *key, int line)
{
	bson_iter_t it = expect_type_at(doc, key, BSON_TYPE_DATE_TIME, line);
	int64_t d = bson_iter_date_time(&it);
	if (d < now_ms() - 120000 || d > now_ms() + 5000)
		fail_msg("line %d: %s is not recent", line, key);
}
#define EXPECT_RECENT(doc, key) expect_recent_date(doc, key, __LINE__)

/* call that must succeed; error is a char * in scope */
#define OK(call)                                                                          \
	do {                                                                              \
		error = NULL;                                                             \
		int ret_ = (call);                                                        \
		if (ret_ != 0)                                                            \
			fail_msg("line %d: %s failed (%d): %s", __LINE__, #call, ret_,    \
				 error != NULL ? error : "?");                            \
	} while (0)
/* call that must fail with `kind`; the message is freed */
#define FAILS(call, kind)                                                                 \
	do {                                                                              \
		error = NULL;                                                             \
		int ret_ = (call);                                                        \
		if (ret_ != (kind))                                                       \
			fail_msg("line %d: %s returned %d (%s), want %d", __LINE__, #call, \
				 ret_, error != NULL ? error : "", kind);                 \
		assert_non_null(error);                                                   \
		free(error);                                                              \
		error = NULL;                                                             \
	} while (0)

static struct wd_mailbox *mailbox_by_path(const bson_oid_t *user, const char *path)
{
	char *error = NULL;
	struct wd_mailbox *mb = NULL;
	OK(wd_store_mailbox_get_by_path(store, user, path, &mb, &error));
	return mb;
}

static bool mailbox_exists(const bson_oid_t *user, const char *path)
{
	char *error = NULL;
	struct wd_mailbox *mb = NULL;
	int ret = wd_store_mailbox_get_by_path(store, user, path, &mb, &error);
	if (ret == WD_STORE_ERR_NOT_FOUND) {
		free(error);
		return false;
	}
	if (ret != 0)
		fail_msg("get_by_path %s: %s", path, error);
	wd_mailbox_free(&mb);
	return true;
}

static void create_simple_user(const char *username, const char *address, bson_oid_t *id)
{
	char *error = NULL;
	struct wd_user_create req = { .username = username, .address = address,
				      .spam_level = WD_DEFAULT_SPAM_LEVEL };
	OK(wd_store_user_create(store, &req, id, &error));
}

/* ---- users ---- */

static const struct {
	const char *path;
	const char *special_use;
} default_mailboxes[] = {
	{ "INBOX", NULL },      { "Sent Mail", "\\Sent" }, { "Trash", "\\Trash" },
	{ "Drafts", "\\Drafts" }, { "Junk", "\\Junk" },
};

static void test_create_user_documents(void **state)
{
	(void)state;
	char *error = NULL;
	bson_oid_t id;
	struct wd_user_create req = {
		.username = "John.Doe",
		.password_hash = "$pbkdf2-sha256$100000$c2FsdA$aGFzaA",
		.address = "John.Doe+signup@Example.COM",
		.spam_level = WD_DEFAULT_SPAM_LEVEL,
	};
	int64_t before = now_ms();
	OK(wd_store_user_create(store, &req, &id, &error));

	bson_t *query = BCON_NEW("_id", BCON_OID(&id));
	bson_t *u = find_one(WD_STORE_DB_USERS, "users", query);
	bson_destroy(query);
	EXPECT_TYPE(u, "_id", BSON_TYPE_OID);
	EXPECT_STR(u, "username", "john.doe");
	EXPECT_STR(u, "unameview", "johndoe");
	EXPECT_NULL(u, "name");
	EXPECT_STR(u, "password", "$pbkdf2-sha256$100000$c2FsdA$aGFzaA");
	EXPECT_ABSENT(u, "tempPassword");
	EXPECT_EMPTY_ARRAY(u, "enabled2fa");
	EXPECT_STR(u, "seed", "");
	EXPECT_STR(u, "pendingSeed", "");
	EXPECT_BOOL(u, "pendingSeedChanged", false);
	EXPECT_TYPE(u, "webauthn", BSON_TYPE_DOCUMENT);
	EXPECT_EMPTY_ARRAY(u, "webauthn.credentials");
	EXPECT_INT32(u, "authVersion", 1);
	/* the label is dropped from the main address, the case normalised */
	EXPECT_STR(u, "address", "john.doe@example.com");
	EXPECT_NULL(u, "language");
	EXPECT_INT32(u, "storageUsed", 0);
	EXPECT_INT32(u, "quota", 0);
	static const char *const zero_numbers[] = {
		"recipients", "forwards", "filters", "imapMaxUpload", "imapMaxDownload",
		"pop3MaxDownload", "pop3MaxMessages", "imapMaxConnections", "receivedMax",
		"retention",
	};
	for (size_t i = 0; i < sizeof(zero_numbers) / sizeof(zero_numbers[0]); i++)
		EXPECT_INT32(u, zero_numbers[i], 0);
	EXPECT_EMPTY_ARRAY(u, "targets");
	EXPECT_BOOL(u, "autoreply", false);
	EXPECT_BOOL(u, "uploadSentMessages", false);
	EXPECT_STR(u, "pubKey", "");
	EXPECT_BOOL(u, "encryptMessages", false);
	EXPECT_BOOL(u, "encryptForwarded", false);
	EXPECT_INT32(u, "spamLevel", 50);
	EXPECT_EMPTY_ARRAY(u, "disabledScopes");
	EXPECT_BOOL(u, "lastLogin.time", false);
	EXPECT_BOOL(u, "lastLogin.authEvent", false);
	EXPECT_BOOL(u, "lastLogin.ip", false);
	EXPECT_STR(u, "metaData", "");
	EXPECT_STR(u, "internalData", "");
	EXPECT_BOOL(u, "activated", true);
	EXPECT_BOOL(u, "disabled", false);
	EXPECT_BOOL(u, "suspended", false);
	EXPECT_EMPTY_DOC(u, "featureFlags");
	EXPECT_RECENT(u, "created");
	EXPECT_ABSENT(u, "tags");
	bson_destroy(u);

	/* the five default mailboxes */
	int32_t uid_validity = 0;
	for (size_t i = 0; i < 5; i++) {
		query = BCON_NEW("user", BCON_OID(&id), "path",
				 BCON_UTF8(default_mailboxes[i].path));
		bson_t *mb = find_one(WD_STORE_DB_MAIN, "mailboxes", query);
		bson_destroy(query);
		EXPECT_TYPE(mb, "_id", BSON_TYPE_OID);
		EXPECT_TYPE(mb, "user", BSON_TYPE_OID);
		EXPECT_STR(mb, "path", default_mailboxes[i].path);
		if (default_mailboxes[i].special_use == NULL)
			EXPECT_NULL(mb, "specialUse");
		else
			EXPECT_STR(mb, "specialUse", default_mailboxes[i].special_use);
		bson_iter_t it = EXPECT_TYPE(mb, "uidValidity", BSON_TYPE_INT32);
		if (i == 0)
			uid_validity = bson_iter_int32(&it);
		/* one value for all five, seconds of the creation */
		assert_int_equal(bson_iter_int32(&it), uid_validity);
		assert_true(uid_validity >= before / 1000 - 1 && uid_validity <= now_ms() / 1000);
		EXPECT_INT32(mb, "uidNext", 1);
		EXPECT_INT32(mb, "modifyIndex", 0);
		EXPECT_BOOL(mb, "subscribed", true);
		EXPECT_EMPTY_ARRAY(mb, "flags");
		if (i == 2 || i == 4) /* Trash, Junk: 30 days in ms is beyond int32 */
			EXPECT_DOUBLE(mb, "retention", 2592000000.0);
		else
			EXPECT_INT32(mb, "retention", 0);
		EXPECT_ABSENT(mb, "hidden");
		EXPECT_ABSENT(mb, "encryptMessages");
		bson_destroy(mb);
	}
	assert_int_equal(count_user(WD_STORE_DB_MAIN, "mailboxes", "user", &id), 5);

	/* the address */
	query = BCON_NEW("user", BCON_OID(&id));
	bson_t *a = find_one(WD_STORE_DB_USERS, "addresses", query);
	bson_destroy(query);
	EXPECT_TYPE(a, "_id", BSON_TYPE_OID);
	EXPECT_TYPE(a, "user", BSON_TYPE_OID);
	EXPECT_STR(a, "address", "john.doe@example.com");
	EXPECT_STR(a, "addrview", "johndoe@example.com");
	EXPECT_RECENT(a, "created");
	EXPECT_ABSENT(a, "name");
	bson_destroy(a);
	assert_int_equal(count_user(WD_STORE_DB_USERS, "addresses", "user", &id), 1);

	/* read back through the API */
	struct wd_user *user;
	OK(wd_store_user_get(store, &id, &user, &error));
	assert_string_equal(user->username, "john.doe");
	assert_string_equal(user->address, "john.doe@example.com");
	assert_null(user->name);
	assert_int_equal(user->spam_level, 50);
	assert_int_equal(user->auth_version, 1);
	assert_true(user->activated);
	assert_false(user->disabled);
	assert_non_null(user->doc);
	wd_user_free(&user);
	assert_null(user);
	OK(wd_store_user_get_by_username(store, "J.O.H.N.DOE", &user, &error));
	assert_true(bson_oid_equal(&user->id, &id));
	wd_user_free(&user);
	FAILS(wd_store_user_get_by_username(store, "nobody", &user, &error),
	      WD_STORE_ERR_NOT_FOUND);
}

static void test_create_user_options(void **state)
{
	(void)state;
	char *error = NULL;
	bson_oid_t id;
	const char *extras[] = { "Jane.Alias@Example.org", "jane@other.test" };
	struct wd_user_create req = {
		.username = "jane@example.org",
		.name = "Jane Q",
		.language = "et",
		.password_hash = "$2b$11$abcdefghijklmnopqrstuv",
		.require_password_change = true,
		.extra_addresses = extras,
		.extra_address_count = 2,
		.sent_name = "Saadetud",
		.trash_name = "/Pr\u00fc\u00fcgikast/",
		.quota = 5LL * 1024 * 1024 * 1024,
		.retention = 10LL * 24 * 3600 * 1000,
		.recipients = 100,
		.spam_level = 150,
		.disabled_scopes = WD_SCOPE_SMTP | WD_SCOPE_IMAP,
		.upload_sent_messages = true,
		.metadata = "{\"a\":1}",
	};
	OK(wd_store_user_create(store, &req, &id, &error));
	bson_t *query = BCON_NEW("_id", BCON_OID(&id));
	bson_t *u = find_one(WD_STORE_DB_USERS, "users", query);
	bson_destroy(query);
	/* a username that is an address becomes the main address */
	EXPECT_STR(u, "address", "jane@example.org");
	EXPECT_STR(u, "unameview", "jane@example.org");
	EXPECT_STR(u, "name", "Jane Q");
	EXPECT_STR(u, "language", "et");
	/* the hash waits in tempPassword, the password stays empty */
	EXPECT_STR(u, "password", "");
	EXPECT_STR(u, "tempPassword.password", "$2b$11$abcdefghijklmnopqrstuv");
	EXPECT_RECENT(u, "tempPassword.validAfter");
	EXPECT_RECENT(u, "tempPassword.created");
	/* 5 GiB is no int32: a double, as JavaScript numbers are written */
	EXPECT_DOUBLE(u, "quota", 5368709120.0);
	EXPECT_INT32(u, "retention", 864000000);
	EXPECT_INT32(u, "recipients", 100);
	EXPECT_INT32(u, "spamLevel", 100);
	EXPECT_STR(u, "disabledScopes.0", "imap");
	EXPECT_STR(u, "disabledScopes.1", "smtp");
	EXPECT_BOOL(u, "uploadSentMessages", true);
	EXPECT_STR(u, "metaData", "{\"a\":1}");
	bson_destroy(u);
	/* custom names (normalised), retention min(user's, 30 d) */
	struct wd_mailbox *mb = mailbox_by_path(&id, "Saadetud");
	assert_string_equal(mb->special_use, "\\Sent");
	assert_int_equal(mb->retention, 864000000);
	wd_mailbox_free(&mb);
	mb = mailbox_by_path(&id, "Pr\u00fc\u00fcgikast");
	assert_string_equal(mb->special_use, "\\Trash");
	assert_int_equal(mb->retention, 864000000);
	wd_mailbox_free(&mb);
	mb = mailbox_by_path(&id, "Drafts");
	wd_mailbox_free(&mb);
	assert_int_equal(count_user(WD_STORE_DB_USERS, "addresses", "user", &id), 3);
	struct wd_address_list list;
	OK(wd_store_address_list(store, &id, &list, &error));
	assert_int_equal(list.count, 3);
	/* addrview order */
	assert_string_equal(list.items[0].address, "jane@example.org");
	assert_true(list.items[0].main);
	assert_string_equal(list.items[1].address, "jane@other.test");
	assert_false(list.items[1].main);
	assert_string_equal(list.items[2].address, "jane.alias@example.org");
	assert_false(list.items[2].main);
	wd_address_list_free(&list);

	/* no address at all */
	struct wd_user_create bare = { .username = "bare-user", .empty_address = true };
	OK(wd_store_user_create(store, &bare, &id, &error));
	query = BCON_NEW("_id", BCON_OID(&id));
	u = find_one(WD_STORE_DB_USERS, "users", query);
	bson_destroy(query);
	EXPECT_STR(u, "address", "");
	EXPECT_STR(u, "password", "");
	EXPECT_INT32(u, "spamLevel", 0);
	bson_destroy(u);
	assert_int_equal(count_user(WD_STORE_DB_USERS, "addresses", "user", &id), 0);

	/* an address derived from username and email domain */
	struct wd_user_create derived = { .username = "derived.user",
					  .email_domain = "Mail.Example.NET" };
	OK(wd_store_user_create(store, &derived, &id, &error));
	struct wd_user *user;
	OK(wd_store_user_get(store, &id, &user, &error));
	assert_string_equal(user->address, "derived.user@mail.example.net");
	wd_user_free(&user);

	/* invalid requests write nothing */
	int64_t users_before = count(WD_STORE_DB_USERS, "users", NULL);
	struct wd_user_create bad = { .username = "bad user" };
	FAILS(wd_store_user_create(store, &bad, &id, &error), WD_STORE_ERR_INVALID);
	bad.username = "wild";
	bad.address = "*@example.com";
	FAILS(wd_store_user_create(store, &bad, &id, &error), WD_STORE_ERR_INVALID);
	bad.address = NULL;
	bad.sent_name = "INBOX";
	FAILS(wd_store_user_create(store, &bad, &id, &error), WD_STORE_ERR_INVALID);
	bad.sent_name = "a//b";
	FAILS(wd_store_user_create(store, &bad, &id, &error), WD_STORE_ERR_INVALID);
	bad.sent_name = NULL;
	const char *plus[] = { "x+y@example.com" };
	bad.extra_addresses = plus;
	bad.extra_address_count = 1;
	FAILS(wd_store_user_create(store, &bad, &id, &error), WD_STORE_ERR_INVALID);
	assert_int_equal(count(WD_STORE_DB_USERS, "users", NULL), users_before);
}

static void test_duplicates(void **state)
{
	(void)state;
	char *error = NULL;
	bson_oid_t id, other;
	create_simple_user("dup.user", "dup@example.com", &id);
	int64_t users = count(WD_STORE_DB_USERS, "users", NULL);
	int64_t mailboxes = count(WD_STORE_DB_MAIN, "mailboxes", NULL);
	int64_t addresses = count(WD_STORE_DB_USERS, "addresses", NULL);

	/* same unameview */
	struct wd_user_create req = { .username = "DupUser", .address = "fresh@example.com" };
	error = NULL;
	assert_int_equal(wd_store_user_create(store, &req, &other, &error), WD_STORE_ERR_EXISTS);
	assert_string_equal(error, "username already exists");
	free(error);
	/* same addrview (dots and case differ) */
	req.username = "another";
	req.address = "D.U.P@EXAMPLE.com";
	error = NULL;
	assert_int_equal(wd_store_user_create(store, &req, &other, &error), WD_STORE_ERR_EXISTS);
	assert_non_null(strstr(error, "address already exists"));
	free(error);
	assert_int_equal(count(WD_STORE_DB_USERS, "users", NULL), users);
	assert_int_equal(count(WD_STORE_DB_MAIN, "mailboxes", NULL), mailboxes);
	assert_int_equal(count(WD_STORE_DB_USERS, "addresses", NULL), addresses);
}

static void expect_nothing_of(const bson_oid_t *id)
{
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	assert_int_equal(count(WD_STORE_DB_USERS, "users", query), 0);
	bson_destroy(query);
	assert_int_equal(count_user(WD_STORE_DB_USERS, "addresses", "user", id), 0);
}

static void test_create_rollback(void **state)
{
	(void)state;
	char *error = NULL;
	int64_t users = count(WD_STORE_DB_USERS, "users", NULL);
	int64_t addresses = count(WD_STORE_DB_USERS, "addresses", NULL);
	int64_t mailboxes = count(WD_STORE_DB_MAIN, "mailboxes", NULL);

	/* Two extra addresses with one addrview: the lookups before writing
	   pass (neither exists yet), the second insert fails on the unique
	   index after the user, its mailboxes, its main address and the first
	   extra were written. All of them must go again. */
	bson_oid_t id, got;
	bson_oid_init(&id, NULL);
	const char *extras[] = { "roll.back@example.com", "rollback@example.com" };
	struct wd_user_create req = { .username = "rollback", .address = "rb-main@example.com",
				      .extra_addresses = extras, .extra_address_count = 2,
				      .user_id = &id };
	FAILS(wd_store_user_create(store, &req, &got, &error), WD_STORE_ERR_EXISTS);
	expect_nothing_of(&id);
	assert_int_equal(count_user(WD_STORE_DB_MAIN, "mailboxes", "user", &id), 0);
	assert_int_equal(count(WD_STORE_DB_USERS, "users", NULL), users);
	assert_int_equal(count(WD_STORE_DB_USERS, "addresses", NULL), addresses);
	assert_int_equal(count(WD_STORE_DB_MAIN, "mailboxes", NULL), mailboxes);
	/* the name is free again */
	req.extra_address_count = 1;
	OK(wd_store_user_create(store, &req, &got, &error));
	assert_true(bson_oid_equal(&got, &id));
	OK(wd_store_user_delete(store, &id, NULL, &error));

	/* A mailbox of the (given) user id already exists: the mailbox step
	   fails; the user goes again, and the foreign mailbox stays. */
	bson_oid_init(&id, NULL);
	bson_t *doc = BCON_NEW("user", BCON_OID(&id), "path", BCON_UTF8("Trash"));
	insert(WD_STORE_DB_MAIN, "mailboxes", doc);
	bson_destroy(doc);
	struct wd_user_create req2 = { .username = "rollback2", .address = "rb2@example.com",
				       .user_id = &id };
	error = NULL;
	int ret = wd_store_user_create(store, &req2, &got, &error);
	assert_true(ret < 0);
	free(error);
	expect_nothing_of(&id);
	assert_int_equal(count_user(WD_STORE_DB_MAIN, "mailboxes", "user", &id), 1);
	struct wd_user *user;
	FAILS(wd_store_user_get_by_username(store, "rollback2", &user, &error),
	      WD_STORE_ERR_NOT_FOUND);
}

static void test_user_list_and_delete(void **state)
{
	(void)state;
	char *error = NULL;
	bson_oid_t id;
	create_simple_user("delete-me", "delete.me@example.com", &id);
	bson_oid_t extra;
	OK(wd_store_address_add(store, &id, "second@example.com", NULL, &extra, &error));
	bson_oid_t box;
	OK(wd_store_mailbox_create(store, &id, "Folder", NULL, &box, &error));

	/* paging by _id covers every user exactly once */
	int64_t total = count(WD_STORE_DB_USERS, "users", NULL);
	int64_t seen = 0;
	bool found = false;
	bson_oid_t last;
	bool have_last = false;
	for (;;) {
		struct wd_user_list list;
		OK(wd_store_user_list(store, have_last ? &last : NULL, 2, &list, &error));
		if (list.count == 0)
			break;
		assert_true(list.count <= 2);
		for (size_t i = 0; i < list.count; i++) {
			if (have_last)
				assert_true(bson_oid_compare(&list.items[i].id, &last) > 0);
			found |= bson_oid_equal(&list.items[i].id, &id);
			last = list.items[i].id;
			have_last = true;
			seen++;
		}
		wd_user_list_free(&list);
	}
	assert_int_equal(seen, total);
	assert_true(found);

	/* two messages in INBOX: marked for the garbage collector */
	struct wd_mailbox *inbox;
	OK(wd_store_mailbox_get_by_path(store, &id, "INBOX", &inbox, &error));
	for (int i = 0; i < 2; i++) {
		static const char raw[] = "Subject: bye\r\n\r\nbody\r\n";
		struct wd_message_add add = { .raw = (const uint8_t *)raw, .len = sizeof(raw) - 1 };
		struct wd_message_added added;
		OK(wd_store_message_add(store, &inbox->id, &add, &added, &error));
	}
	wd_mailbox_free(&inbox);

	struct wd_user_delete_report report;
	int64_t before_ms = (int64_t)time(NULL) * 1000;
	OK(wd_store_user_delete(store, &id, &report, &error));
	assert_int_equal(report.addresses, 2);
	assert_int_equal(report.mailboxes, 6);
	assert_int_equal(report.messages, 2);
	assert_int_equal(count_user(WD_STORE_DB_MAIN, "messages", "user", &id), 2);
	bson_t *by_user = BCON_NEW("user", BCON_OID(&id));
	bson_t *m = find_one(WD_STORE_DB_MAIN, "messages", by_user);
	bson_destroy(by_user);
	bson_iter_t it;
	assert_true(bson_iter_init_find(&it, m, "exp") && bson_iter_as_bool(&it));
	assert_true(bson_iter_init_find(&it, m, "userDeleted") && bson_iter_as_bool(&it));
	assert_true(bson_iter_init_find(&it, m, "rdate") && BSON_ITER_HOLDS_DOUBLE(&it));
	double rdate = bson_iter_double(&it);
	assert_true(rdate >= (double)(before_ms + 14LL * 24 * 3600 * 1000 - 5000));
	bson_destroy(m);
	expect_nothing_of(&id);
	assert_int_equal(count_user(WD_STORE_DB_MAIN, "mailboxes", "user", &id), 0);
	/* the deletedusers copy */
	bson_t *query = BCON_NEW("_id", BCON_OID(&id));
	bson_t *d = find_one(WD_STORE_DB_USERS, "deletedusers", query);
	bson_destroy(query);
	EXPECT_STR(d, "username", "delete-me");
	EXPECT_INT32(d, "storageUsed", 44); /* the two messages; int32 as WildDuck's $inc */
	EXPECT_RECENT(d, "deleteInfo.deletedAt");
	EXPECT_STR(d, "deleteInfo.mainAddress", "delete.me@example.com");
	EXPECT_TYPE(d, "deleteInfo.addresses", BSON_TYPE_ARRAY);
	EXPECT_STR(d, "deleteInfo.addresses.0.addrview", "deleteme@example.com");
	EXPECT_TYPE(d, "deleteInfo.addresses.1.user", BSON_TYPE_OID);
	bson_destroy(d);
	/* addresses are free again; a second delete finds nothing */
	struct wd_address *addr;
	FAILS(wd_store_address_resolve(store, "delete.me@example.com", 0, &addr, &error),
	      WD_STORE_ERR_NOT_FOUND);
	FAILS(wd_store_user_delete(store, &id, NULL, &error), WD_STORE_ERR_NOT_FOUND);
	struct wd_user *user;
	FAILS(wd_store_user_get(store, &id, &user, &error), WD_STORE_ERR_NOT_FOUND);
}

/* Racing creations: the unique indexes decide, the losers roll back. */
#define RACERS 8

struct racer {
	char username[32];
	const char *address;
	bson_oid_t id;
	int ret;
};

static void *race_create(void *arg)
{
	struct racer *r = arg;
	char *error = NULL;
	struct wd_user_create req = { .username = r->username, .address = r->address,
				      .user_id = &r->id };
	r->ret = wd_store_user_create(store, &req, NULL, &error);
	free(error);
	return NULL;
}

static void run_race(struct racer *racers)
{
	pthread_t threads[RACERS];
	for (int i = 0; i < RACERS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, race_create, &racers[i]), 0);
	for (int i = 0; i < RACERS; i++)
		pthread_join(threads[i], NULL);
}

static void test_concurrent_creation(void **state)
{
	(void)state;
	struct racer racers[RACERS];
	/* one username, distinct addresses */
	char addresses[RACERS][40];
	for (int i = 0; i < RACERS; i++) {
		snprintf(racers[i].username, sizeof(racers[i].username), "Racer");
		snprintf(addresses[i], sizeof(addresses[i]), "racer%d@race.test", i);
		racers[i].address = addresses[i];
		bson_oid_init(&racers[i].id, NULL);
	}
	run_race(racers);
	int winners = 0;
	for (int i = 0; i < RACERS; i++) {
		if (racers[i].ret == 0) {
			winners++;
			assert_int_equal(count_user(WD_STORE_DB_MAIN, "mailboxes", "user",
						    &racers[i].id), 5);
		} else {
			assert_int_equal(racers[i].ret, WD_STORE_ERR_EXISTS);
			expect_nothing_of(&racers[i].id);
			assert_int_equal(count_user(WD_STORE_DB_MAIN, "mailboxes", "user",
						    &racers[i].id), 0);
		}
	}
	assert_int_equal(winners, 1);

	/* distinct usernames, one address: the losers have written their user
	   and mailboxes before the address insert fails, and must undo them */
	for (int i = 0; i < RACERS; i++) {
		snprintf(racers[i].username, sizeof(racers[i].username), "racer-%d", i);
		racers[i].address = "same@race.test";
		bson_oid_init(&racers[i].id, NULL);
	}
	run_race(racers);
	winners = 0;
	for (int i = 0; i < RACERS; i++) {
		if (racers[i].ret == 0) {
			winners++;
			continue;
		}
		assert_int_equal(racers[i].ret, WD_STORE_ERR_EXISTS);
		expect_nothing_of(&racers[i].id);
		assert_int_equal(count_user(WD_STORE_DB_MAIN, "mailboxes", "user", &racers[i].id),
				 0);
	}
	assert_int_equal(winners, 1);
	bson_t *query = BCON_NEW("addrview", BCON_UTF8("same@race.test"));
	assert_int_equal(count(WD_STORE_DB_USERS, "addresses", query), 1);
	bson_destroy(query);
}

/* ---- addresses ---- */

static void expect_resolves(const char *address, unsigned flags, const bson_oid_t *user,
			    const char *stored, int line)
{
	char *error = NULL;
	struct wd_address *addr = NULL;
	int ret = wd_store_address_resolve(store, address, flags, &addr, &error);
	if (ret != 0)
		fail_msg("line %d: resolve %s: %d %s", line, address, ret, error);
	assert_true(addr->has_user);
	if (!bson_oid_equal(&addr->user, user) || strcmp(addr->address, stored) != 0)
		fail_msg("line %d: %s resolved to %s", line, address, addr->address);
	wd_address_free(&addr);
}
#define EXPECT_RESOLVES(address, flags, user, stored) \
	expect_resolves(address, flags, user, stored, __LINE__)

static void expect_unknown(const char *address, unsigned flags, int line)
{
	char *error = NULL;
	struct wd_address *addr = NULL;
	int ret = wd_store_address_resolve(store, address, flags, &addr, &error);
	if (ret != WD_STORE_ERR_NOT_FOUND)
		fail_msg("line %d: %s resolved (%d) to %s", line, address, ret,
			 addr != NULL ? addr->address : error);
	assert_null(addr);
	assert_non_null(error);
	free(error);
}
#define EXPECT_UNKNOWN(address, flags) expect_unknown(address, flags, __LINE__)

static void test_addresses(void **state)
{
	(void)state;
	char *error = NULL;
	bson_oid_t alice, bob, carol, dave;
	create_simple_user("alice", "alice@res.test", &alice);
	create_simple_user("bob", "bob@res.test", &bob);
	create_simple_user("carol", "carol@res.test", &carol);
	create_simple_user("dave", "dave@other.test", &dave);

	bson_oid_t smith;
	struct wd_address_add named = { .name = "Alice Smith" };
	OK(wd_store_address_add(store, &alice, "Alice.Smith@RES.test", &named, &smith, &error));
	bson_t *query = BCON_NEW("_id", BCON_OID(&smith));
	bson_t *a = find_one(WD_STORE_DB_USERS, "addresses", query);
	bson_destroy(query);
	EXPECT_STR(a, "address", "alice.smith@res.test");
	EXPECT_STR(a, "addrview", "alicesmith@res.test");
	EXPECT_STR(a, "name", "Alice Smith");
	EXPECT_TYPE(a, "user", BSON_TYPE_OID);
	EXPECT_RECENT(a, "created");
	bson_destroy(a);
	/* without a name the API writes null */
	bson_oid_t plain;
	OK(wd_store_address_add(store, &alice, "al@res.test", NULL, &plain, &error));
	query = BCON_NEW("_id", BCON_OID(&plain));
	a = find_one(WD_STORE_DB_USERS, "addresses", query);
	bson_destroy(query);
	EXPECT_NULL(a, "name");
	bson_destroy(a);

	/* exact, case, dots, +label */
	EXPECT_RESOLVES("alice@res.test", 0, &alice, "alice@res.test");
	EXPECT_RESOLVES("ALICE@Res.Test", 0, &alice, "alice@res.test");
	EXPECT_RESOLVES("a.l.i.c.e@res.test", 0, &alice, "alice@res.test");
	EXPECT_RESOLVES("alicesmith+news@RES.TEST", 0, &alice, "alice.smith@res.test");
	EXPECT_RESOLVES("Alice.Smith+a+b@res.test", 0, &alice, "alice.smith@res.test");
	EXPECT_UNKNOWN("alice@other.test", 0);
	EXPECT_UNKNOWN("not an address", 0);
	EXPECT_UNKNOWN("+label@res.test", 0);

	/* refusals */
	FAILS(wd_store_address_add(store, &bob, "ALICESMITH@res.test", NULL, NULL, &error),
	      WD_STORE_ERR_EXISTS);
	FAILS(wd_store_address_add(store, &bob, "bob+x@res.test", NULL, NULL, &error),
	      WD_STORE_ERR_INVALID);
	FAILS(wd_store_address_add(store, &bob, "*@res.test", NULL, NULL, &error),
	      WD_STORE_ERR_INVALID);
	struct wd_address_add wild = { .allow_wildcard = true };
	struct wd_address_add wild_main = { .allow_wildcard = true, .main = true };
	FAILS(wd_store_address_add(store, &bob, "*@res.test", &wild_main, NULL, &error),
	      WD_STORE_ERR_INVALID);
	FAILS(wd_store_address_add(store, &bob, "a*b@res.test", &wild, NULL, &error),
	      WD_STORE_ERR_INVALID);
	FAILS(wd_store_address_add(store, &bob, "**@res.test", &wild, NULL, &error),
	      WD_STORE_ERR_INVALID);
	FAILS(wd_store_address_add(store, &bob, "x@*.test", &wild, NULL, &error),
	      WD_STORE_ERR_INVALID);
	FAILS(wd_store_address_add(store, &bob, "no-at", NULL, NULL, &error),
	      WD_STORE_ERR_INVALID);
	bson_oid_t ghost;
	bson_oid_init(&ghost, NULL);
	FAILS(wd_store_address_add(store, &ghost, "ghost@res.test", NULL, NULL, &error),
	      WD_STORE_ERR_NOT_FOUND);

	/* domain alias */
	OK(wd_store_domainalias_add(store, "Alias.TEST", "res.test", NULL, &error));
	FAILS(wd_store_domainalias_add(store, "alias.test", "x.test", NULL, &error),
	      WD_STORE_ERR_EXISTS);
	EXPECT_RESOLVES("alice@alias.test", 0, &alice, "alice@res.test");
	EXPECT_RESOLVES("Alice.Smith+tag@ALIAS.test", 0, &alice, "alice.smith@res.test");
	EXPECT_UNKNOWN("nobody@alias.test", 0);

	/* wildcards: catch-all, prefix, suffix, user@* */
	OK(wd_store_address_add(store, &bob, "*@res.test", &wild, NULL, &error));
	EXPECT_UNKNOWN("nobody@res.test", 0);
	EXPECT_RESOLVES("nobody@res.test", WD_RESOLVE_WILDCARD, &bob, "*@res.test");
	OK(wd_store_address_add(store, &carol, "nob*@res.test", &wild, NULL, &error));
	EXPECT_RESOLVES("nobody@res.test", WD_RESOLVE_WILDCARD, &carol, "nob*@res.test");
	OK(wd_store_address_add(store, &dave, "*body@res.test", &wild, NULL, &error));
	EXPECT_RESOLVES("no.body@res.test", WD_RESOLVE_WILDCARD, &dave, "*body@res.test");
	EXPECT_RESOLVES("somebody@res.test", WD_RESOLVE_WILDCARD, &dave, "*body@res.test");
	EXPECT_RESOLVES("nobo@res.test", WD_RESOLVE_WILDCARD, &carol, "nob*@res.test");
	/* equal literal length: prefix form first */
	OK(wd_store_address_add(store, &bob, "*ody@res.test", &wild, NULL, &error));
	OK(wd_store_address_add(store, &carol, "nobo*@res.test", &wild, NULL, &error));
	EXPECT_RESOLVES("nobodx@res.test", WD_RESOLVE_WILDCARD, &carol, "nobo*@res.test");
	/* an exact address always wins */
	EXPECT_RESOLVES("alice@res.test", WD_RESOLVE_WILDCARD, &alice, "alice@res.test");
	/* through the alias: the target's wildcards (nobo* and *body tie on
	   length, the prefix form wins) */
	EXPECT_RESOLVES("nobody@alias.test", WD_RESOLVE_WILDCARD, &carol, "nobo*@res.test");
	EXPECT_RESOLVES("xbody@alias.test", WD_RESOLVE_WILDCARD, &dave, "*body@res.test");
	EXPECT_RESOLVES("xyz@alias.test", WD_RESOLVE_WILDCARD, &bob, "*@res.test");
	/* a catch-all of the domain itself beats the alias target's */
	OK(wd_store_address_add(store, &dave, "*@alias.test", &wild, NULL, &error));
	EXPECT_RESOLVES("nobody@alias.test", WD_RESOLVE_WILDCARD, &dave, "*@alias.test");
	/* user@* */
	EXPECT_UNKNOWN("postmaster@unknown.test", WD_RESOLVE_WILDCARD);
	OK(wd_store_address_add(store, &carol, "Postmaster@*", &wild, NULL, &error));
	EXPECT_RESOLVES("postmaster@unknown.test", WD_RESOLVE_WILDCARD, &carol, "postmaster@*");
	EXPECT_UNKNOWN("postmaster@unknown.test", 0);
	OK(wd_store_domainalias_remove(store, "alias.test", &error));
	FAILS(wd_store_domainalias_remove(store, "alias.test", &error), WD_STORE_ERR_NOT_FOUND);
	EXPECT_UNKNOWN("alice@alias.test", 0);

	/* a forwarded address (no user) resolves with has_user false */
	bson_t *fwd = BCON_NEW("address", BCON_UTF8("fwd@res.test"), "addrview",
			       BCON_UTF8("fwd@res.test"), "targets", "[", "]");
	insert(WD_STORE_DB_USERS, "addresses", fwd);
	bson_destroy(fwd);
	struct wd_address *addr;
	OK(wd_store_address_resolve(store, "FWD@res.test", 0, &addr, &error));
	assert_false(addr->has_user);
	wd_address_free(&addr);

	/* main address moves */
	struct wd_user *user;
	OK(wd_store_address_set_main(store, &alice, &smith, &error));
	OK(wd_store_user_get(store, &alice, &user, &error));
	assert_string_equal(user->address, "alice.smith@res.test");
	wd_user_free(&user);
	struct wd_address_add make_main = { .main = true };
	bson_oid_t newest;
	OK(wd_store_address_add(store, &alice, "alice.new@res.test", &make_main, &newest, &error));
	struct wd_address_list list;
	OK(wd_store_address_list(store, &alice, &list, &error));
	assert_int_equal(list.count, 4);
	size_t mains = 0;
	for (size_t i = 0; i < list.count; i++) {
		if (list.items[i].main) {
			mains++;
			assert_string_equal(list.items[i].address, "alice.new@res.test");
		}
	}
	assert_int_equal(mains, 1);
	wd_address_list_free(&list);
	/* the main one cannot go, the others can */
	FAILS(wd_store_address_remove(store, &alice, &newest, &error),
	      WD_STORE_ERR_NOT_PERMITTED);
	OK(wd_store_address_remove(store, &alice, &smith, &error));
	EXPECT_UNKNOWN("alice.smith@res.test", 0);
	FAILS(wd_store_address_remove(store, &alice, &smith, &error), WD_STORE_ERR_NOT_FOUND);
	/* somebody else's address is not found for this user */
	bson_oid_t bob_address;
	OK(wd_store_address_add(store, &bob, "bob2@res.test", NULL, &bob_address, &error));
	FAILS(wd_store_address_remove(store, &alice, &bob_address, &error),
	      WD_STORE_ERR_NOT_FOUND);
	FAILS(wd_store_address_set_main(store, &alice, &bob_address, &error),
	      WD_STORE_ERR_NOT_FOUND);
	/* a wildcard cannot become the main address */
	OK(wd_store_address_resolve(store, "x@res.test", WD_RESOLVE_WILDCARD, &addr, &error));
	FAILS(wd_store_address_set_main(store, &bob, &addr->id, &error),
	      WD_STORE_ERR_NOT_PERMITTED);
	wd_address_free(&addr);
}

/* ---- mailboxes ---- */

static void test_mailbox_create(void **state)
{
	(void)state;
	char *error = NULL;
	bson_oid_t user, id;
	create_simple_user("boxes", "boxes@example.com", &user);

	OK(wd_store_mailbox_create(store, &user, "/Work/", NULL, &id, &error));
	bson_t *query = BCON_NEW("_id", BCON_OID(&id));
	bson_t *mb = find_one(WD_STORE_DB_MAIN, "mailboxes", query);
	bson_destroy(query);
	EXPECT_TYPE(mb, "user", BSON_TYPE_OID);
	EXPECT_STR(mb, "path", "Work");
	EXPECT_ABSENT(mb, "specialUse");
	bson_iter_t it = EXPECT_TYPE(mb, "uidValidity", BSON_TYPE_INT32);
	assert_true(llabs((long long)bson_iter_int32(&it) - now_ms() / 1000) < 60);
	EXPECT_INT32(mb, "uidNext", 1);
	EXPECT_INT32(mb, "modifyIndex", 0);
	EXPECT_BOOL(mb, "subscribed", true);
	EXPECT_EMPTY_ARRAY(mb, "flags");
	EXPECT_INT32(mb, "retention", 0); /* the user's, with its type */
	EXPECT_BOOL(mb, "hidden", false);
	EXPECT_BOOL(mb, "encryptMessages", false);
	bson_destroy(mb);

	/* a journal CREATE entry for IMAP sessions */
	query = BCON_NEW("mailbox", BCON_OID(&id), "command", BCON_UTF8("CREATE"));
	assert_int_equal(count(WD_STORE_DB_MAIN, "journal", query), 1);
	bson_destroy(query);

	/* INBOX in any case exists already; so does Work */
	FAILS(wd_store_mailbox_create(store, &user, "inbox", NULL, NULL, &error),
	      WD_STORE_ERR_EXISTS);
	FAILS(wd_store_mailbox_create(store, &user, "Work", NULL, NULL, &error),
	      WD_STORE_ERR_EXISTS);
	/* special use, retention, hidden, encryption */
	struct wd_mailbox_create opts = { .special_use = "\\Junk" };
	FAILS(wd_store_mailbox_create(store, &user, "Spam", &opts, NULL, &error),
	      WD_STORE_ERR_EXISTS);
	opts.special_use = "\\Flagged";
	FAILS(wd_store_mailbox_create(store, &user, "Spam", &opts, NULL, &error),
	      WD_STORE_ERR_INVALID);
	struct wd_mailbox_create custom = { .retention = 40LL * 24 * 3600 * 1000, .hidden = true,
					    .encrypt_messages = true };
	OK(wd_store_mailbox_create(store, &user, "Secret", &custom, &id, &error));
	query = BCON_NEW("_id", BCON_OID(&id));
	mb = find_one(WD_STORE_DB_MAIN, "mailboxes", query);
	bson_destroy(query);
	EXPECT_DOUBLE(mb, "retention", 3456000000.0); /* beyond int32 */
	EXPECT_BOOL(mb, "hidden", true);
	EXPECT_BOOL(mb, "encryptMessages", true);
	bson_destroy(mb);
	/* the user's own retention is copied with its type */
	bson_oid_t keeper;
	struct wd_user_create req = { .username = "keeper", .retention = 1000 };
	OK(wd_store_user_create(store, &req, &keeper, &error));
	OK(wd_store_mailbox_create(store, &keeper, "Kept", NULL, &id, &error));
	struct wd_mailbox *m;
	OK(wd_store_mailbox_get_by_id(store, &keeper, &id, &m, &error));
	assert_int_equal(m->retention, 1000);
	assert_true(m->subscribed);
	assert_int_equal(m->uid_next, 1);
	wd_mailbox_free(&m);
	/* unknown user */
	bson_oid_t ghost;
	bson_oid_init(&ghost, NULL);
	FAILS(wd_store_mailbox_create(store, &ghost, "X", NULL, NULL, &error),
	      WD_STORE_ERR_NOT_FOUND);

	/* lookups */
	m = mailbox_by_path(&user, "iNbOx");
	assert_string_equal(m->path, "INBOX");
	assert_null(m->special_use);
	wd_mailbox_free(&m);
	OK(wd_store_mailbox_get_by_special_use(store, &user, "\\Trash", &m, &error));
	assert_string_equal(m->path, "Trash");
	assert_int_equal(m->retention, 2592000000LL);
	bson_oid_t trash = m->id;
	wd_mailbox_free(&m);
	OK(wd_store_mailbox_get_by_id(store, NULL, &trash, &m, &error));
	wd_mailbox_free(&m);
	FAILS(wd_store_mailbox_get_by_id(store, &keeper, &trash, &m, &error),
	      WD_STORE_ERR_NOT_FOUND);
	FAILS(wd_store_mailbox_get_by_path(store, &user, "Nope", &m, &error),
	      WD_STORE_ERR_NOT_FOUND);

	/* listing: hidden ones only on request, sorted by path */
	struct wd_mailbox_list list;
	OK(wd_store_mailbox_list(store, &user, 0, &list, &error));
	static const char *const visible[] = { "Drafts", "INBOX", "Junk", "Sent Mail", "Trash",
					       "Work" };
	assert_int_equal(list.count, 6);
	for (size_t i = 0; i < list.count; i++)
		assert_string_equal(list.items[i].path, visible[i]);
	wd_mailbox_list_free(&list);
	OK(wd_store_mailbox_list(store, &user, WD_MAILBOX_LIST_HIDDEN, &list, &error));
	assert_int_equal(list.count, 7);
	wd_mailbox_list_free(&list);

	/* subscriptions */
	OK(wd_store_mailbox_subscribe(store, &user, "Sent Mail", false, &error));
	OK(wd_store_mailbox_subscribe(store, &user, "Work", false, &error));
	OK(wd_store_mailbox_list(store, &user, WD_MAILBOX_LIST_SUBSCRIBED, &list, &error));
	assert_int_equal(list.count, 4);
	for (size_t i = 0; i < list.count; i++) {
		assert_true(list.items[i].subscribed);
		assert_string_not_equal(list.items[i].path, "Work");
	}
	wd_mailbox_list_free(&list);
	OK(wd_store_mailbox_subscribe(store, &user, "Work", true, &error));
	m = mailbox_by_path(&user, "Work");
	assert_true(m->subscribed);
	wd_mailbox_free(&m);
	FAILS(wd_store_mailbox_subscribe(store, &user, "Nope", true, &error),
	      WD_STORE_ERR_NOT_FOUND);
}

static char *repeat(const char *unit, size_t count, const char *sep)
{
	char *s = calloc(1, (strlen(unit) + strlen(sep)) * count + 1);
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			strcat(s, sep);
		strcat(s, unit);
	}
	return s;
}

static void test_mailbox_limits(void **state)
{
	(void)state;
	char *error = NULL;
	bson_oid_t user;
	create_simple_user("limits", "limits@example.com", &user);
	char *path = repeat("n", 513, "");
	FAILS(wd_store_mailbox_create(store, &user, path, NULL, NULL, &error), WD_STORE_ERR_LIMIT);
	free(path);
	path = repeat("n", 512, "");
	OK(wd_store_mailbox_create(store, &user, path, NULL, NULL, &error));
	free(path);
	path = repeat("d", 129, "/");
	FAILS(wd_store_mailbox_create(store, &user, path, NULL, NULL, &error), WD_STORE_ERR_LIMIT);
	free(path);
	path = repeat("d", 128, "/");
	OK(wd_store_mailbox_create(store, &user, path, NULL, NULL, &error));
	free(path);
	FAILS(wd_store_mailbox_create(store, &user, "a//b", NULL, NULL, &error),
	      WD_STORE_ERR_INVALID);
	FAILS(wd_store_mailbox_create(store, &user, "", NULL, NULL, &error), WD_STORE_ERR_INVALID);
	FAILS(wd_store_mailbox_create(store, &user, "bad\nname", NULL, NULL, &error),
	      WD_STORE_ERR_INVALID);
	/* the per-user mailbox limit: 7 exist now */
	struct wd_mailbox_create opts = { .max_mailboxes = 8 };
	OK(wd_store_mailbox_create(store, &user, "Eighth", &opts, NULL, &error));
	FAILS(wd_store_mailbox_create(store, &user, "Ninth", &opts, NULL, &error),
	      WD_STORE_ERR_LIMIT);
	assert_int_equal(count_user(WD_STORE_DB_MAIN, "mailboxes", "user", &user), 8);
	/* renaming may not push a child past the depth limit */
	bson_oid_t top;
	OK(wd_store_mailbox_create(store, &user, "top/child", NULL, &top, &error));
	struct wd_mailbox *m = mailbox_by_path(&user, "top/child");
	top = m->id;
	wd_mailbox_free(&m);
	OK(wd_store_mailbox_create(store, &user, "top", NULL, &top, &error));
	path = repeat("z", 128, "/");
	FAILS(wd_store_mailbox_rename(store, &user, &top, path, NULL, &error),
	      WD_STORE_ERR_LIMIT);
	free(path);
	assert_true(mailbox_exists(&user, "top/child"));
}

static void test_mailbox_rename(void **state)
{
	(void)state;
	char *error = NULL;
	bson_oid_t user, work, other;
	create_simple_user("renamer", "renamer@example.com", &user);
	OK(wd_store_mailbox_create(store, &user, "Work", NULL, &work, &error));
	OK(wd_store_mailbox_create(store, &user, "Work/Projects", NULL, NULL, &error));
	OK(wd_store_mailbox_create(store, &user, "Work/Projects/2024", NULL, NULL, &error));
	OK(wd_store_mailbox_create(store, &user, "Workshop", NULL, NULL, &error));
	OK(wd_store_mailbox_create(store, &user, "Other/Projects", NULL, &other, &error));
	struct wd_mailbox *before = mailbox_by_path(&user, "Work/Projects/2024");

	unsigned renamed = 0;
	OK(wd_store_mailbox_rename(store, &user, &work, "Archive/Work", &renamed, &error));
	assert_int_equal(renamed, 3);
	assert_false(mailbox_exists(&user, "Work"));
	assert_false(mailbox_exists(&user, "Work/Projects"));
	assert_true(mailbox_exists(&user, "Archive/Work"));
	assert_true(mailbox_exists(&user, "Archive/Work/Projects"));
	assert_true(mailbox_exists(&user, "Workshop")); /* not a child */
	struct wd_mailbox *after = mailbox_by_path(&user, "Archive/Work/Projects/2024");
	/* the same mailbox: id and UIDVALIDITY kept */
	assert_true(bson_oid_equal(&before->id, &after->id));
	assert_int_equal(before->uid_validity, after->uid_validity);
	wd_mailbox_free(&before);
	wd_mailbox_free(&after);
	bson_t *query = BCON_NEW("user", BCON_OID(&user), "command", BCON_UTF8("RENAME"));
	assert_int_equal(count(WD_STORE_DB_MAIN, "journal", query), 3);
	bson_destroy(query);

	/* conflicts change nothing */
	FAILS(wd_store_mailbox_rename(store, &user, &work, "Workshop", NULL, &error),
	      WD_STORE_ERR_EXISTS);
	/* the child Archive/Work/Projects would land on Other/Projects */
	FAILS(wd_store_mailbox_rename(store, &user, &work, "Other", NULL, &error),
	      WD_STORE_ERR_EXISTS);
	FAILS(wd_store_mailbox_rename(store, &user, &work, "Archive/Work", NULL, &error),
	      WD_STORE_ERR_EXISTS);
	FAILS(wd_store_mailbox_rename(store, &user, &work, "INBOX", NULL, &error),
	      WD_STORE_ERR_EXISTS);
	FAILS(wd_store_mailbox_rename(store, &user, &work, "Archive/Work/Deeper", NULL, &error),
	      WD_STORE_ERR_INVALID);
	FAILS(wd_store_mailbox_rename(store, &user, &work, "", NULL, &error),
	      WD_STORE_ERR_INVALID);
	assert_true(mailbox_exists(&user, "Archive/Work/Projects/2024"));
	assert_true(mailbox_exists(&user, "Other/Projects"));
	struct wd_mailbox *inbox = mailbox_by_path(&user, "INBOX");
	FAILS(wd_store_mailbox_rename(store, &user, &inbox->id, "Old Inbox", NULL, &error),
	      WD_STORE_ERR_NOT_PERMITTED);
	wd_mailbox_free(&inbox);
	bson_oid_t ghost;
	bson_oid_init(&ghost, NULL);
	FAILS(wd_store_mailbox_rename(store, &user, &ghost, "X", NULL, &error),
	      WD_STORE_ERR_NOT_FOUND);

	/* moving up: "a/b" (child "a/b/b") becomes "a"; the child takes the
	   path its parent just left */
	bson_oid_t ab;
	OK(wd_store_mailbox_create(store, &user, "a/b", NULL, &ab, &error));
	OK(wd_store_mailbox_create(store, &user, "a/b/b", NULL, NULL, &error));
	OK(wd_store_mailbox_rename(store, &user, &ab, "a", &renamed, &error));
	assert_int_equal(renamed, 2);
	struct wd_mailbox *m = mailbox_by_path(&user, "a");
	assert_true(bson_oid_equal(&m->id, &ab));
	wd_mailbox_free(&m);
	assert_true(mailbox_exists(&user, "a/b"));
	assert_false(mailbox_exists(&user, "a/b/b"));

	/* special-use mailboxes can be renamed (WildDuck allows it) */
	OK(wd_store_mailbox_get_by_special_use(store, &user, "\\Sent", &m, &error));
	OK(wd_store_mailbox_rename(store, &user, &m->id, "Sent Items", NULL, &error));
	wd_mailbox_free(&m);
	OK(wd_store_mailbox_get_by_special_use(store, &user, "\\Sent", &m, &error));
	assert_string_equal(m->path, "Sent Items");
	wd_mailbox_free(&m);
	/* hidden ones cannot */
	bson_oid_t hidden;
	struct wd_mailbox_create opts = { .hidden = true };
	OK(wd_store_mailbox_create(store, &user, "Hidden", &opts, &hidden, &error));
	FAILS(wd_store_mailbox_rename(store, &user, &hidden, "Seen", NULL, &error),
	      WD_STORE_ERR_NOT_PERMITTED);
	(void)other;
}

static void test_mailbox_delete(void **state)
{
	(void)state;
	char *error = NULL;
	bson_oid_t user, box, child;
	create_simple_user("deleter", "deleter@example.com", &user);
	OK(wd_store_mailbox_create(store, &user, "Old", NULL, &box, &error));
	OK(wd_store_mailbox_create(store, &user, "Old/Child", NULL, &child, &error));
	/* a message and a filter that belong to the mailbox */
	bson_oid_t message;
	bson_oid_init(&message, NULL);
	bson_t *doc = BCON_NEW("_id", BCON_OID(&message), "mailbox", BCON_OID(&box), "user",
			       BCON_OID(&user), "uid", BCON_INT32(1), "exp", BCON_BOOL(false),
			       "rdate", BCON_DOUBLE(0));
	insert(WD_STORE_DB_MAIN, "messages", doc);
	bson_destroy(doc);
	doc = BCON_NEW("user", BCON_OID(&user), "action", "{", "mailbox", BCON_OID(&box), "}");
	insert(WD_STORE_DB_MAIN, "filters", doc);
	bson_destroy(doc);

	OK(wd_store_mailbox_delete(store, &user, &box, &error));
	assert_false(mailbox_exists(&user, "Old"));
	assert_true(mailbox_exists(&user, "Old/Child")); /* flat storage */
	bson_t *query = BCON_NEW("_id", BCON_OID(&message));
	bson_t *msg = find_one(WD_STORE_DB_MAIN, "messages", query);
	bson_destroy(query);
	EXPECT_BOOL(msg, "exp", true);
	bson_iter_t it = EXPECT_TYPE(msg, "rdate", BSON_TYPE_DOUBLE);
	assert_true(bson_iter_double(&it) < (double)(now_ms() - 23LL * 3600 * 1000));
	bson_destroy(msg);
	assert_int_equal(count_user(WD_STORE_DB_MAIN, "filters", "user", &user), 0);
	query = BCON_NEW("mailbox", BCON_OID(&box), "command", BCON_UTF8("DELETE"));
	assert_int_equal(count(WD_STORE_DB_MAIN, "journal", query), 1);
	bson_destroy(query);

	FAILS(wd_store_mailbox_delete(store, &user, &box, &error), WD_STORE_ERR_NOT_FOUND);
	struct wd_mailbox *m = mailbox_by_path(&user, "INBOX");
	FAILS(wd_store_mailbox_delete(store, &user, &m->id, &error), WD_STORE_ERR_NOT_PERMITTED);
	wd_mailbox_free(&m);
	m = mailbox_by_path(&user, "Trash");
	FAILS(wd_store_mailbox_delete(store, &user, &m->id, &error), WD_STORE_ERR_NOT_PERMITTED);
	wd_mailbox_free(&m);
	/* somebody else's mailbox is not found */
	bson_oid_t other;
	create_simple_user("deleter2", "deleter2@example.com", &other);
	FAILS(wd_store_mailbox_delete(store, &other, &child, &error), WD_STORE_ERR_NOT_FOUND);
	assert_true(mailbox_exists(&user, "Old/Child"));
}

/* ---- setup ---- */

static int group_setup(void **state)
{
	(void)state;
	const char *url = getenv("WD_MONGO_URL");
	const char *redis = getenv("WD_REDIS_URL");
	/* a fresh database per run: the URL's path replaced by a random name */
	struct timeval tv;
	gettimeofday(&tv, NULL);
	srand((unsigned)(tv.tv_usec ^ getpid()));
	snprintf(db_name, sizeof(db_name), "wdtest_users_%ld_%d_%04x", (long)tv.tv_sec,
		 (int)getpid(), rand() & 0xffff);
	const char *scheme_end = strstr(url, "://");
	const char *slash = strchr(scheme_end != NULL ? scheme_end + 3 : url, '/');
	const char *options = strchr(url, '?');
	int host_len = slash != NULL ? (int)(slash - url) :
		       options != NULL ? (int)(options - url) : (int)strlen(url);
	snprintf(mongo_url, sizeof(mongo_url), "%.*s/%s%s", host_len, url, db_name,
		 options != NULL ? options : "");
	char text[1400];
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s\"\n%s%s%s", mongo_url,
		 redis != NULL ? "redis = \"" : "", redis != NULL ? redis : "",
		 redis != NULL ? "\"\n" : "");
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	if (config == NULL) {
		fprintf(stderr, "config: %s\n", error);
		return -1;
	}
	store = wd_store_open(config, &error);
	wd_config_free(&config);
	if (store == NULL) {
		fprintf(stderr, "open: %s\n", error);
		return -1;
	}
	struct wd_store_index_report report;
	if (wd_store_ensure_indexes(store, &report, &error) < 0) {
		fprintf(stderr, "indexes: %s\n", error);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (store == NULL)
		return 0;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_database_t *db = mongoc_client_get_database(client, db_name);
	bson_error_t error;
	if (!mongoc_database_drop(db, &error))
		fprintf(stderr, "drop %s: %s\n", db_name, error.message);
	mongoc_database_destroy(db);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	wd_store_close(&store);
	return 0;
}

int main(void)
{
	if (getenv("WD_MONGO_URL") == NULL) {
		fprintf(stderr, "WD_MONGO_URL is not set: start the stack (scripts/stack.sh start)\n");
		return 77;
	}
	wd_log_init("test-store-users", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_log_set_handler(NULL, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_user_documents),
		cmocka_unit_test(test_create_user_options),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_create_rollback),
		cmocka_unit_test(test_user_list_and_delete),
		cmocka_unit_test(test_concurrent_creation),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_mailbox_create),
		cmocka_unit_test(test_mailbox_limits),
		cmocka_unit_test(test_mailbox_rename),
		cmocka_unit_test(test_mailbox_delete),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
