/* The change journal (reference §2.11, §4.2) and notifications (§4.3).
 *
 * Writing mirrors WildDuck's addEntries() so Node and C sessions replay each
 * other's changes: modseq allocation for entries that lack one, $max onto the
 * messages, insertMany unordered, then the cached Redis counters. Reading is
 * "everything after modseq M" for one mailbox, the query IMAP sessions run
 * after a wd_events notification. */
#include "wd-store-journal.h"
#include "wd-store-messagelog.h"
#include "store-private.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-fdb.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define COUNTER_TTL_SECONDS 86400 /* MAILBOX_COUNTER_TTL */
#define JOURNAL_TTL_MS (3LL * 3600 * 1000)
#define THREAD_TTL_MS (180LL * 24 * 3600 * 1000)

static const char *const command_names[] = {
	[WD_JOURNAL_EXISTS] = "EXISTS",
	[WD_JOURNAL_EXPUNGE] = "EXPUNGE",
	[WD_JOURNAL_FETCH] = "FETCH",
	[WD_JOURNAL_CREATE] = "CREATE",
	[WD_JOURNAL_RENAME] = "RENAME",
	[WD_JOURNAL_DELETE] = "DELETE",
};

const char *wd_journal_command_name(enum wd_journal_command command)
{
	return command_names[command];
}

static int command_parse(const char *name, enum wd_journal_command *command_r)
{
	for (size_t i = 0; i < WD_N_ELEMENTS(command_names); i++) {
		if (strcmp(name, command_names[i]) == 0) {
			*command_r = (enum wd_journal_command)i;
			return WD_OK;
		}
	}
	return WD_ERROR;
}

static void entry_to_bson(const struct wd_journal_entry *e, const bson_oid_t *mailbox,
			  const bson_oid_t *user, int64_t created_ms, bson_t *doc)
{
	BSON_APPEND_UTF8(doc, "command", command_names[e->command]);
	BSON_APPEND_OID(doc, "mailbox", mailbox);
	BSON_APPEND_OID(doc, "user", user);
	BSON_APPEND_INT32(doc, "modseq", (int32_t)e->modseq);
	if (e->uid != 0)
		BSON_APPEND_INT32(doc, "uid", (int32_t)e->uid);
	if (e->has_message)
		BSON_APPEND_OID(doc, "message", &e->message);
	if (e->has_thread)
		BSON_APPEND_OID(doc, "thread", &e->thread);
	if (e->ignore != NULL)
		BSON_APPEND_UTF8(doc, "ignore", e->ignore);
	if (e->has_flags) {
		bson_t flags;
		char key[16];
		const char *key_str;
		bson_append_array_begin(doc, "flags", -1, &flags);
		for (size_t i = 0; i < e->flag_count; i++) {
			bson_uint32_to_string((uint32_t)i, &key_str, key, sizeof(key));
			bson_append_utf8(&flags, key_str, -1, e->flags[i], -1);
		}
		bson_append_array_end(doc, &flags);
	}
	if (e->unseen >= 0)
		BSON_APPEND_BOOL(doc, "unseen", e->unseen != 0);
	if (e->unseen_change)
		BSON_APPEND_BOOL(doc, "unseenChange", true);
	if (e->idate_ms != 0)
		BSON_APPEND_DATE_TIME(doc, "idate", e->idate_ms);
	if (e->junk != 0)
		BSON_APPEND_INT32(doc, "junk", e->junk);
	if (e->path != NULL)
		BSON_APPEND_UTF8(doc, "path", e->path);
	BSON_APPEND_DATE_TIME(doc, "created", created_ms);
}

/* WildDuck's cachedcounter: adjust only a counter that exists, refresh its TTL. */
static const char cached_counter_lua[] =
	"if redis.call('exists', KEYS[1]) == 1 then "
	"redis.call('incrby', KEYS[1], ARGV[1]); redis.call('expire', KEYS[1], ARGV[2]) end "
	"return 1";

static void counter_add(struct wd_store *store, const char *prefix, const char *mailbox_hex,
			int delta)
{
	redisReply *reply = wd__store_redis(store, "EVAL %s 1 %s:%s %d %d", cached_counter_lua,
					    prefix, mailbox_hex, delta, COUNTER_TTL_SECONDS);
	if (reply != NULL)
		freeReplyObject(reply);
}

static void update_counters(struct wd_store *store, const bson_oid_t *mailbox,
			    const struct wd_journal_entry *entries, size_t count)
{
	char hex[25];
	bson_oid_to_string(mailbox, hex);
	int total = 0, unseen = 0;
	bool unseen_unknown = false;
	for (size_t i = 0; i < count; i++) {
		const struct wd_journal_entry *e = &entries[i];
		int sign = e->command == WD_JOURNAL_EXISTS ? 1 :
			   e->command == WD_JOURNAL_EXPUNGE ? -1 : 0;
		total += sign;
		if (sign != 0 && e->unseen > 0)
			unseen += sign;
		if (e->command == WD_JOURNAL_FETCH && e->unseen_change)
			unseen_unknown = true;
	}
	if (total != 0)
		counter_add(store, "total", hex, total);
	if (unseen_unknown) {
		redisReply *reply = wd__store_redis(store, "DEL unseen:%s", hex);
		if (reply != NULL)
			freeReplyObject(reply);
	} else if (unseen != 0) {
		counter_add(store, "unseen", hex, unseen);
	}
}

/* $max the new modseq onto the messages whose entries had none. */
static int apply_modseq(mongoc_collection_t *messages, const bson_oid_t *mailbox,
			const struct wd_journal_entry *entries, size_t count, uint32_t modseq,
			char **error_r)
{
	bson_t filter = BSON_INITIALIZER, id, in;
	bson_append_document_begin(&filter, "_id", -1, &id);
	bson_append_array_begin(&id, "$in", -1, &in);
	uint32_t n = 0;
	for (size_t i = 0; i < count; i++) {
		if (!entries[i].has_message || entries[i].modseq != modseq)
			continue;
		char key[16];
		const char *key_str;
		bson_uint32_to_string(n++, &key_str, key, sizeof(key));
		bson_append_oid(&in, key_str, -1, &entries[i].message);
	}
	bson_append_array_end(&id, &in);
	bson_append_document_end(&filter, &id);
	BSON_APPEND_OID(&filter, "mailbox", mailbox);
	bson_t *update = BCON_NEW("$max", "{", "modseq", BCON_INT32((int32_t)modseq), "}");
	bson_error_t error;
	bool ok = n == 0 || mongoc_collection_update_many(messages, &filter, update, NULL, NULL, &error);
	bson_destroy(update);
	bson_destroy(&filter);
	if (!ok) {
		*error_r = wd__store_error("cannot set modseq on messages: %s", error.message);
		return WD_ERROR;
	}
	return WD_OK;
}

int wd_store_journal_add(struct wd_store *store, const bson_oid_t *mailbox,
			 struct wd_journal_entry *entries, size_t count, bson_oid_t *user_r,
			 char **error_r)
{
	return wd__store_journal_add_for(store, mailbox, NULL, entries, count, user_r, error_r);
}

int wd__store_journal_add_for(struct wd_store *store, const bson_oid_t *mailbox,
			      const bson_oid_t *known_user, struct wd_journal_entry *entries,
			      size_t count, bson_oid_t *user_r, char **error_r)
{
	bool allocate = false, need_current = false;
	for (size_t i = 0; i < count; i++) {
		allocate |= entries[i].has_message && entries[i].modseq == 0;
		need_current |= !entries[i].has_message && entries[i].modseq == 0;
	}
	uint32_t modseq = 0;
	bson_oid_t user;
	/* The lock covers the modseq allocation and its $max onto the messages,
	   both read-modify-writes on servers without atomic updates. With the
	   owner known and every modseq given, the mailbox is not read at all. */
	struct wd_store_lock lock = { 0 };
	int ret = WD_OK;
	if (!allocate && !need_current && known_user != NULL) {
		bson_oid_copy(known_user, &user);
	} else {
		if (wd__store_mailbox_lock(store, mailbox, &lock, error_r) < 0)
			return WD_ERROR;
		ret = allocate ? wd__store_allocate_modseq_owner(store, mailbox, &modseq, &user, error_r) :
				 wd__store_mailbox_owner(store, mailbox, &modseq, &user, error_r);
		if (ret < 0) {
			wd__store_mailbox_unlock(store, &lock);
			return WD_ERROR;
		}
	}
	for (size_t i = 0; i < count; i++) {
		if (entries[i].modseq == 0)
			entries[i].modseq = modseq;
	}
	if (user_r != NULL)
		bson_oid_copy(&user, user_r);
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *messages = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	mongoc_collection_t *journal = wd_store_collection(store, client, WD_STORE_DB_MAIN, "journal");
	if (allocate)
		ret = apply_modseq(messages, mailbox, entries, count, modseq, error_r);
	wd__store_mailbox_unlock(store, &lock);
	if (ret == WD_OK && count > 0) {
		int64_t created = wd__now_ms();
		bson_t **docs = calloc(count, sizeof(*docs));
		for (size_t i = 0; i < count; i++) {
			docs[i] = bson_new();
			entry_to_bson(&entries[i], mailbox, &user, created, docs[i]);
		}
		bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
		bson_error_t error;
		if (!mongoc_collection_insert_many(journal, (const bson_t **)docs, count, opts, NULL,
						   &error)) {
			*error_r = wd__store_error("cannot write journal: %s", error.message);
			ret = WD_ERROR;
		}
		bson_destroy(opts);
		for (size_t i = 0; i < count; i++)
			bson_destroy(docs[i]);
		free(docs);
	}
	mongoc_collection_destroy(journal);
	mongoc_collection_destroy(messages);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (ret == WD_OK && count > 0)
		update_counters(store, mailbox, entries, count);
	return ret;
}

static void entry_from_bson(const bson_t *doc, struct wd_journal_entry *e, const char **flags,
			    size_t max_flags)
{
	memset(e, 0, sizeof(*e));
	e->unseen = -1;
	bson_iter_t iter;
	if (!bson_iter_init(&iter, doc))
		return;
	while (bson_iter_next(&iter)) {
		const char *key = bson_iter_key(&iter);
		if (strcmp(key, "_id") == 0 && BSON_ITER_HOLDS_OID(&iter)) {
			bson_oid_copy(bson_iter_oid(&iter), &e->id);
		} else if (strcmp(key, "command") == 0 && BSON_ITER_HOLDS_UTF8(&iter)) {
			command_parse(bson_iter_utf8(&iter, NULL), &e->command);
		} else if (strcmp(key, "mailbox") == 0 && BSON_ITER_HOLDS_OID(&iter)) {
			bson_oid_copy(bson_iter_oid(&iter), &e->mailbox);
		} else if (strcmp(key, "user") == 0 && BSON_ITER_HOLDS_OID(&iter)) {
			bson_oid_copy(bson_iter_oid(&iter), &e->user);
		} else if (strcmp(key, "modseq") == 0 && BSON_ITER_HOLDS_NUMBER(&iter)) {
			e->modseq = (uint32_t)bson_iter_as_int64(&iter);
		} else if (strcmp(key, "uid") == 0 && BSON_ITER_HOLDS_NUMBER(&iter)) {
			e->uid = (uint32_t)bson_iter_as_int64(&iter);
		} else if (strcmp(key, "message") == 0 && BSON_ITER_HOLDS_OID(&iter)) {
			e->has_message = true;
			bson_oid_copy(bson_iter_oid(&iter), &e->message);
		} else if (strcmp(key, "thread") == 0 && BSON_ITER_HOLDS_OID(&iter)) {
			e->has_thread = true;
			bson_oid_copy(bson_iter_oid(&iter), &e->thread);
		} else if (strcmp(key, "ignore") == 0 && BSON_ITER_HOLDS_UTF8(&iter)) {
			e->ignore = bson_iter_utf8(&iter, NULL);
		} else if (strcmp(key, "flags") == 0 && BSON_ITER_HOLDS_ARRAY(&iter)) {
			bson_iter_t child;
			e->has_flags = true;
			e->flags = flags;
			if (bson_iter_recurse(&iter, &child)) {
				while (bson_iter_next(&child) && e->flag_count < max_flags) {
					if (BSON_ITER_HOLDS_UTF8(&child))
						flags[e->flag_count++] = bson_iter_utf8(&child, NULL);
				}
			}
		} else if (strcmp(key, "unseen") == 0 && BSON_ITER_HOLDS_BOOL(&iter)) {
			e->unseen = bson_iter_bool(&iter) ? 1 : 0;
		} else if (strcmp(key, "unseenChange") == 0 && BSON_ITER_HOLDS_BOOL(&iter)) {
			e->unseen_change = bson_iter_bool(&iter);
		} else if (strcmp(key, "idate") == 0 && BSON_ITER_HOLDS_DATE_TIME(&iter)) {
			e->idate_ms = bson_iter_date_time(&iter);
		} else if (strcmp(key, "junk") == 0 && BSON_ITER_HOLDS_NUMBER(&iter)) {
			e->junk = (int)bson_iter_as_int64(&iter);
		} else if (strcmp(key, "path") == 0 && BSON_ITER_HOLDS_UTF8(&iter)) {
			e->path = bson_iter_utf8(&iter, NULL);
		} else if (strcmp(key, "created") == 0 && BSON_ITER_HOLDS_DATE_TIME(&iter)) {
			e->created_ms = bson_iter_date_time(&iter);
		}
	}
}

/* ---- the journal read straight from FerretDB's SQLite ---- */

#define SJ "_ferretdb_sjson"
/* Columns of one entry, in the order journal_row() reads them. */
#define JOURNAL_COLUMNS                                                                     \
	SJ "->>'$._id', " SJ "->>'$.command', " SJ "->>'$.mailbox', " SJ "->>'$.user', "      \
	SJ "->>'$.modseq', " SJ "->>'$.uid', " SJ "->>'$.message', " SJ "->>'$.thread', "      \
	SJ "->>'$.ignore', " SJ "->'$.flags', " SJ "->>'$.unseen', " SJ "->>'$.unseenChange', " \
	SJ "->>'$.idate', " SJ "->>'$.junk', " SJ "->>'$.path', " SJ "->>'$.created'"
/* WildDuck caps keywords so that 5 system flags + custom ≤ 100 */
#define JOURNAL_MAX_FLAGS 128

/* Column `col` as an ObjectId when it holds one (the hex text sjson keeps). */
static bool column_oid(sqlite3_stmt *stmt, int col, bson_oid_t *oid_r)
{
	const char *hex = (const char *)sqlite3_column_text(stmt, col);
	if (hex == NULL || sqlite3_column_type(stmt, col) != SQLITE_TEXT ||
	    !bson_oid_is_valid(hex, strlen(hex)) || strlen(hex) != 24)
		return false;
	bson_oid_init_from_string(oid_r, hex);
	return true;
}

static const char *column_text(sqlite3_stmt *stmt, int col)
{
	return sqlite3_column_type(stmt, col) == SQLITE_TEXT ?
		       (const char *)sqlite3_column_text(stmt, col) : NULL;
}

static bool column_number(sqlite3_stmt *stmt, int col)
{
	int type = sqlite3_column_type(stmt, col);
	return type == SQLITE_INTEGER || type == SQLITE_FLOAT;
}

/* One row as an entry, with the same field rules as entry_from_bson();
   flag texts are unescaped into `buf` (one row's flags JSON is never
   shorter than the flags it holds). False: no entry (unknown command). */
static bool journal_row(sqlite3_stmt *stmt, struct wd_journal_entry *e, const char **flags,
			char **buf, size_t *buf_size)
{
	memset(e, 0, sizeof(*e));
	e->unseen = -1;
	const char *command = column_text(stmt, 1);
	if (command == NULL || command_parse(command, &e->command) < 0)
		return false;
	column_oid(stmt, 0, &e->id);
	column_oid(stmt, 2, &e->mailbox);
	column_oid(stmt, 3, &e->user);
	if (column_number(stmt, 4))
		e->modseq = (uint32_t)sqlite3_column_int64(stmt, 4);
	if (column_number(stmt, 5))
		e->uid = (uint32_t)sqlite3_column_int64(stmt, 5);
	e->has_message = column_oid(stmt, 6, &e->message);
	e->has_thread = column_oid(stmt, 7, &e->thread);
	e->ignore = column_text(stmt, 8);
	const char *flags_json = (const char *)sqlite3_column_text(stmt, 9);
	size_t flags_len = (size_t)sqlite3_column_bytes(stmt, 9);
	if (flags_json != NULL && flags_len > 0 && flags_json[0] == '[') {
		e->has_flags = true;
		e->flags = flags;
		if (*buf_size < flags_len + 1) {
			char *grown = realloc(*buf, flags_len + 1);
			if (grown != NULL) {
				*buf = grown;
				*buf_size = flags_len + 1;
			}
		}
		size_t pos = 0, used = 0;
		while (e->flag_count < JOURNAL_MAX_FLAGS && used < *buf_size &&
		       wd_store_fdb_next_flag(flags_json, flags_len, &pos, *buf + used,
					      *buf_size - used)) {
			flags[e->flag_count++] = *buf + used;
			used += strlen(*buf + used) + 1;
		}
	}
	if (sqlite3_column_type(stmt, 10) == SQLITE_INTEGER)
		e->unseen = sqlite3_column_int(stmt, 10) != 0 ? 1 : 0;
	if (sqlite3_column_type(stmt, 11) == SQLITE_INTEGER)
		e->unseen_change = sqlite3_column_int(stmt, 11) != 0;
	if (column_number(stmt, 12))
		e->idate_ms = sqlite3_column_int64(stmt, 12);
	if (column_number(stmt, 13))
		e->junk = (int)sqlite3_column_int64(stmt, 13);
	e->path = column_text(stmt, 14);
	if (column_number(stmt, 15))
		e->created_ms = sqlite3_column_int64(stmt, 15);
	return true;
}

int wd_store_journal_since_fdb(struct wd_store *store, const bson_oid_t *mailbox, uint32_t modseq,
			     wd_journal_fn *fn, void *context, char **error_r)
{
	char table[256], hex[25], quoted[27];
	sqlite3 *db;
	if (wd__store_fdb_open(store, WD_STORE_DB_MAIN, "journal", "_mailbox_modseq", &db, table,
			       sizeof(table)) != WD_OK)
		return WD_STORE_FDB_NONE;
	/* `->"mailbox"` exactly as FerretDB's index on {mailbox, modseq} has it */
	char *sql = sqlite3_mprintf("SELECT " JOURNAL_COLUMNS " FROM \"%s\" WHERE " SJ
				    "->\"mailbox\" = ?1 AND " SJ "->>'$.modseq' > ?2 ORDER BY " SJ
				    "->>'$.modseq', " SJ "->>'$._id'", table);
	sqlite3_stmt *stmt = NULL;
	if (sql == NULL || sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		wd_debug("store", "FerretDB SQLite: no journal path: %s", sqlite3_errmsg(db));
		sqlite3_free(sql);
		sqlite3_close(db);
		return WD_STORE_FDB_NONE;
	}
	sqlite3_free(sql);
	bson_oid_to_string(mailbox, hex);
	snprintf(quoted, sizeof(quoted), "\"%s\"", hex);
	sqlite3_bind_text(stmt, 1, quoted, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, modseq);
	const char *flags[JOURNAL_MAX_FLAGS];
	char *buf = NULL;
	size_t buf_size = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct wd_journal_entry entry;
		if (journal_row(stmt, &entry, flags, &buf, &buf_size) && !fn(&entry, context)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	int ret = WD_OK;
	if (rc != SQLITE_DONE) {
		*error_r = wd__store_error("cannot read journal from FerretDB's SQLite: %s",
					   sqlite3_errmsg(db));
		ret = WD_ERROR;
	}
	free(buf);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return ret;
}

int wd_store_journal_since(struct wd_store *store, const bson_oid_t *mailbox, uint32_t modseq,
			   wd_journal_fn *fn, void *context, char **error_r)
{
	int fdb = wd_store_journal_since_fdb(store, mailbox, modseq, fn, context, error_r);
	if (fdb != WD_STORE_FDB_NONE)
		return fdb;

	/* WildDuck caps keywords so that 5 system flags + custom ≤ 100 */
	enum { MAX_FLAGS = 128 };
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *journal = wd_store_collection(store, client, WD_STORE_DB_MAIN, "journal");
	bson_t *query = BCON_NEW("mailbox", BCON_OID(mailbox), "modseq", "{", "$gt",
				 BCON_INT32((int32_t)modseq), "}");
	bson_t *opts = BCON_NEW("sort", "{", "modseq", BCON_INT32(1), "_id", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(journal, query, opts, NULL);
	const bson_t *doc;
	const char *flags[MAX_FLAGS];
	while (mongoc_cursor_next(cursor, &doc)) {
		struct wd_journal_entry entry;
		entry_from_bson(doc, &entry, flags, MAX_FLAGS);
		if (!fn(&entry, context))
			break;
	}
	bson_error_t error;
	int ret = WD_OK;
	if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__store_error("cannot read journal: %s", error.message);
		ret = WD_ERROR;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(journal);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}

int wd_store_notify(struct wd_store *store, const bson_oid_t *user)
{
	char hex[25], payload[64];
	bson_oid_to_string(user, hex);
	snprintf(payload, sizeof(payload), "{\"e\":\"%s\"}", hex);
	redisReply *reply = wd__store_redis(store, "PUBLISH wd_events %s", payload);
	if (reply != NULL)
		freeReplyObject(reply);
	return WD_OK;
}

static int delete_older(struct wd_store *store, enum wd_store_db db, const char *collection,
			const char *field, int64_t before_ms, int64_t *deleted_r, char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, db);
	mongoc_collection_t *coll = wd_store_collection(store, client, db, collection);
	bson_t *filter = BCON_NEW(field, "{", "$lt", BCON_DATE_TIME(before_ms), "}");
	bson_t reply;
	bson_error_t error;
	int ret = WD_OK;
	if (mongoc_collection_delete_many(coll, filter, NULL, &reply, &error)) {
		bson_iter_t iter;
		if (bson_iter_init_find(&iter, &reply, "deletedCount"))
			*deleted_r = bson_iter_as_int64(&iter);
	} else {
		*error_r = wd__store_error("cannot expire %s: %s", collection, error.message);
		ret = WD_ERROR;
	}
	bson_destroy(&reply);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
	return ret;
}

int wd_store_expire_ttl(struct wd_store *store, int64_t now,
			struct wd_store_expiry_report *report, char **error_r)
{
	memset(report, 0, sizeof(*report));
	if (wd_store_caps(store)->ttl_enforced)
		return WD_OK;
	if (delete_older(store, WD_STORE_DB_MAIN, "journal", "created", now - JOURNAL_TTL_MS,
			 &report->journal, error_r) < 0 ||
	    delete_older(store, WD_STORE_DB_MAIN, "threads", "updated", now - THREAD_TTL_MS,
			 &report->threads, error_r) < 0 ||
	    delete_older(store, WD_STORE_DB_USERS, "authlog", "expires", now, &report->authlog,
			 error_r) < 0 ||
	    delete_older(store, WD_STORE_DB_USERS, "asps", "expires", now, &report->asps,
			 error_r) < 0 ||
	    delete_older(store, WD_STORE_DB_MAIN, "messagelog", "created",
			 now - WD_MESSAGELOG_TTL_MS, &report->messagelog, error_r) < 0)
		return WD_ERROR;
	if (report->journal + report->threads + report->authlog + report->asps +
	    report->messagelog > 0)
		wd_info("store", "expired %lld journal, %lld thread, %lld authlog, %lld app password, "
			"%lld message log documents", (long long)report->journal,
			(long long)report->threads, (long long)report->authlog,
			(long long)report->asps, (long long)report->messagelog);
	return WD_OK;
}
