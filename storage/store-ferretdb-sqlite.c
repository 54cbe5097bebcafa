/* FerretDB 1.24 on SQLite: make lookups by _id use an index.
 *
 * FerretDB's SQLite backend pushes a filter {_id: <string|ObjectId>} down as
 * `WHERE _ferretdb_sjson->'$._id' = ?`, but builds its unique _id index on
 * the expression `_ferretdb_sjson->"_id"`. SQLite matches index expressions
 * textually, so the index is never used and every lookup by _id scans the
 * whole collection (measured: 47 ms per find in a 346-message collection,
 * 3.5 ms with the index below). Every other filter is evaluated in FerretDB
 * after a full scan anyway, so _id is the one lookup that can be fast, and
 * the storage code reaches documents by _id wherever it can.
 *
 * When the store knows FerretDB's SQLite directory (`dbs.ferretdbSqlite`, or
 * WD_FERRETDB_SQLITE as scripts/stack.sh prints it), it adds to every
 * collection table of its databases an index on the expression FerretDB
 * queries with. SQLite maintains it on every write; dropping a collection
 * drops its table and the index with it; FerretDB's own metadata never sees
 * it. Failure only costs speed, so it is logged, never fatal.
 *
 * On `messages` it also adds a covering index of the metadata IMAP reads
 * for whole mailboxes (mailbox, uid, modseq, unseen, undeleted, size,
 * flags, _id), which wd_store_fdb_messages() (wd-store-fdb.h) reads directly,
 * read-only, instead of asking FerretDB to decode every document. The
 * index's expressions and the query's must match textually (FDB_COLUMNS).
 * The same reader decodes whole documents or projections of them
 * (store-fdb-sjson.c) for the messages a command names or a SEARCH must
 * look into, and answers the equality lookups delivery and IMAP make on
 * other collections (threads, mailboxes by path, addresses, the address
 * register) from indexes of their own, so the caller reads or writes the
 * document by _id. A table made after startup gets its indexes from the
 * first reader that misses them (fdb_open). */
#include "store-private.h"
#include "wd-store-fdb.h"
#include "wd-store-user.h"

#include "wd-log.h"
#include "wd-result.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FDB_J "_ferretdb_sjson"
#define FDB_COLUMNS                                                                          \
	FDB_J "->>'$.uid', " FDB_J "->>'$.modseq', " FDB_J "->>'$.unseen', " FDB_J            \
	"->>'$.undeleted', " FDB_J "->>'$.size', " FDB_J "->'$.flags', " FDB_J "->>'$._id'"
#define FDB_MAILBOX FDB_J "->>'$.mailbox'"
#define FDB_UID FDB_J "->>'$.uid'"
#define FDB_MODSEQ FDB_J "->>'$.modseq'"
/* the index's name after the table's; a new definition needs a new name */
#define FDB_INDEX "_wdc_meta1"
/* threads by user and subject: WildDuck's thread lookup without a scan */
#define FDB_THREAD_INDEX "_wdc_thread1"

/* The covering metadata index of a messages table. */
static int index_messages(sqlite3 *db, const char *path, const char *table)
{
	char *sql = sqlite3_mprintf("CREATE INDEX IF NOT EXISTS \"%s" FDB_INDEX "\" ON \"%s\" "
				    "(" FDB_MAILBOX ", " FDB_COLUMNS ")",
				    table, table);
	char *error = NULL;
	int ret = WD_OK;
	if (sql == NULL || sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
		wd_warning("store", "FerretDB SQLite %s: no metadata index on %s: %s", path, table,
			   error != NULL ? error : "out of memory");
		ret = WD_ERROR;
	}
	sqlite3_free(error);
	sqlite3_free(sql);
	return ret;
}

/* Equality lookups answered from SQLite (wd_store_fdb_find_id), each by an
   index on its fields' ->> expressions; the threads one also serves
   wd_store_fdb_thread_find. A new definition needs a new name. */
struct fdb_lookup {
	enum wd_store_db db;
	const char *collection, *index;
	const char *fields[2]; /* one or two */
};
static const struct fdb_lookup fdb_lookups[] = {
	{ WD_STORE_DB_MAIN, "threads", FDB_THREAD_INDEX, { "user", "subject" } },
	{ WD_STORE_DB_MAIN, "mailboxes", "_wdc_user_path1", { "user", "path" } },
	{ WD_STORE_DB_MAIN, "addressregister", "_wdc_user_addrview1", { "user", "addrview" } },
	{ WD_STORE_DB_USERS, "addresses", "_wdc_addrview1", { "addrview", NULL } },
};

static size_t lookup_fields(const struct fdb_lookup *lookup)
{
	return lookup->fields[1] != NULL ? 2 : 1;
}

static int index_lookup(sqlite3 *db, const char *path, const char *table,
			const struct fdb_lookup *lookup)
{
	char *sql = lookup_fields(lookup) == 2 ?
		sqlite3_mprintf("CREATE INDEX IF NOT EXISTS \"%s%s\" ON \"%s\" (" FDB_J
				"->>'$.%s', " FDB_J "->>'$.%s')",
				table, lookup->index, table, lookup->fields[0], lookup->fields[1]) :
		sqlite3_mprintf("CREATE INDEX IF NOT EXISTS \"%s%s\" ON \"%s\" (" FDB_J
				"->>'$.%s')",
				table, lookup->index, table, lookup->fields[0]);
	char *error = NULL;
	int ret = WD_OK;
	if (sql == NULL || sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
		wd_warning("store", "FerretDB SQLite %s: no lookup index on %s: %s", path, table,
			   error != NULL ? error : "out of memory");
		ret = WD_ERROR;
	}
	sqlite3_free(error);
	sqlite3_free(sql);
	return ret;
}

/* Index the _id expression of every collection table in one database file. */
static int index_database(const char *path, unsigned *tables_r)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		wd_warning("store", "FerretDB SQLite %s: %s", path, db != NULL ? sqlite3_errmsg(db) :
									       "cannot open");
		sqlite3_close(db);
		return WD_ERROR;
	}
	sqlite3_busy_timeout(db, 10000);
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT table_name, name FROM _ferretdb_collections", -1,
				    &stmt, NULL);
	int ret = WD_OK;
	while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *table = (const char *)sqlite3_column_text(stmt, 0);
		if (table == NULL || strchr(table, '"') != NULL)
			continue;
		char *sql = sqlite3_mprintf("CREATE INDEX IF NOT EXISTS \"%s_wdc_id\" ON \"%s\" "
					    "(_ferretdb_sjson->'$._id')",
					    table, table);
		char *error = NULL;
		if (sql == NULL || sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
			wd_warning("store", "FerretDB SQLite %s: no _id index on %s: %s", path, table,
				   error != NULL ? error : "out of memory");
			ret = WD_ERROR;
		} else {
			(*tables_r)++;
		}
		const char *name = (const char *)sqlite3_column_text(stmt, 1);
		if (name != NULL && strcmp(name, "messages") == 0 &&
		    index_messages(db, path, table) < 0)
			ret = WD_ERROR;
		for (size_t i = 0; name != NULL && i < WD_N_ELEMENTS(fdb_lookups); i++) {
			if (strcmp(name, fdb_lookups[i].collection) == 0 &&
			    index_lookup(db, path, table, &fdb_lookups[i]) < 0)
				ret = WD_ERROR;
		}
		sqlite3_free(error);
		sqlite3_free(sql);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		wd_warning("store", "FerretDB SQLite %s: %s", path, sqlite3_errmsg(db));
		ret = WD_ERROR;
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return ret;
}

int wd__store_ferretdb_id_indexes(struct wd_store *store, const char *dir)
{
	unsigned tables = 0;
	int ret = WD_OK;
	for (int db = 0; db < WD_STORE_DB_COUNT; db++) {
		const char *name = wd_store_db_name(store, (enum wd_store_db)db);
		bool seen = false;
		for (int prev = 0; prev < db; prev++)
			seen = seen || strcmp(wd_store_db_name(store, (enum wd_store_db)prev), name) == 0;
		if (seen || strchr(name, '/') != NULL)
			continue;
		char path[4096];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s.sqlite", dir, name) >= sizeof(path))
			continue;
		if (access(path, F_OK) != 0)
			continue; /* no collection yet */
		if (index_database(path, &tables) < 0)
			ret = WD_ERROR;
	}
	wd_info("store", "FerretDB: _id lookup index present on %u collection tables", tables);
	return ret;
}

/* ---- the read-only metadata path ---- */

/* Database `which` opened read-only and the table's name of `collection`,
   or WD_STORE_FDB_NONE. */
/* Whether `db` has the index named `table``suffix`. */
static bool has_index(sqlite3 *db, const char *table, const char *suffix)
{
	sqlite3_stmt *stmt = NULL;
	char *name = sqlite3_mprintf("%s%s", table, suffix);
	bool found = name != NULL &&
		     sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'index' AND "
					    "name = ?1",
					-1, &stmt, NULL) == SQLITE_OK &&
		     sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC) == SQLITE_OK &&
		     sqlite3_step(stmt) == SQLITE_ROW;
	sqlite3_finalize(stmt);
	sqlite3_free(name);
	return found;
}

/* Adding the indexes to a database file that lacks them (one made after
   startup) is tried at most this often per process. */
#define FDB_INDEX_RETRY_MS 10000

static bool index_attempt_due(void)
{
	static int64_t last_ms;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	int64_t last = __atomic_load_n(&last_ms, __ATOMIC_RELAXED);
	if (last != 0 && now - last < FDB_INDEX_RETRY_MS)
		return false;
	return __atomic_compare_exchange_n(&last_ms, &last, now, false, __ATOMIC_RELAXED,
					   __ATOMIC_RELAXED);
}

/* Database `which` opened read-only, the table's name of `collection` and
   the index `table``index` present, or WD_STORE_FDB_NONE. A table made
   after startup (a new database, a first message) gets its indexes here,
   the first time a reader misses them. */
static int fdb_open(struct wd_store *store, enum wd_store_db which, const char *collection,
		    const char *index, sqlite3 **db_r, char *table, size_t table_size)
{
	const char *dir = wd__store_ferretdb_sqlite(store);
	*db_r = NULL;
	if (dir == NULL || !wd_store_caps(store)->ferretdb)
		return WD_STORE_FDB_NONE;
	const char *name = wd_store_db_name(store, which);
	char path[4096];
	if (strchr(name, '/') != NULL ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s.sqlite", dir, name) >= sizeof(path))
		return WD_STORE_FDB_NONE;
	for (int attempt = 0; attempt < 2; attempt++) {
		sqlite3 *db = NULL;
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
		    SQLITE_OK) {
			sqlite3_close(db);
			return WD_STORE_FDB_NONE;
		}
		sqlite3_busy_timeout(db, 10000);
		sqlite3_stmt *stmt = NULL;
		int ret = WD_STORE_FDB_NONE;
		if (sqlite3_prepare_v2(db, "SELECT table_name FROM _ferretdb_collections WHERE "
					   "name = ?1",
				       -1, &stmt, NULL) == SQLITE_OK &&
		    sqlite3_bind_text(stmt, 1, collection, -1, SQLITE_STATIC) == SQLITE_OK &&
		    sqlite3_step(stmt) == SQLITE_ROW) {
			const char *t = (const char *)sqlite3_column_text(stmt, 0);
			if (t != NULL && strchr(t, '"') == NULL &&
			    (size_t)snprintf(table, table_size, "%s", t) < table_size)
				ret = WD_OK;
		}
		sqlite3_finalize(stmt);
		if (ret == WD_OK && has_index(db, table, index)) {
			*db_r = db;
			return WD_OK;
		}
		sqlite3_close(db);
		unsigned tables = 0;
		if (ret != WD_OK || attempt > 0 || !index_attempt_due() ||
		    index_database(path, &tables) < 0)
			return WD_STORE_FDB_NONE;
		wd_info("store", "FerretDB: indexes added to %s (%u tables)", path, tables);
	}
	return WD_STORE_FDB_NONE;
}

int wd__store_fdb_open(struct wd_store *store, enum wd_store_db which, const char *collection,
		       const char *index, struct sqlite3 **db_r, char *table, size_t table_size)
{
	return fdb_open(store, which, collection, index, db_r, table, table_size);
}

struct wd_store_fdb_cursor {
	sqlite3 *db;
	sqlite3_stmt *stmt;
	bson_t *projection; /* for the document column, NULL: whole documents */
	bool end, docs;
};

/* A field name that can go into a JSON path literal as it is. */
static bool plain_name(const char *name, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Appends to *values (", 'name', value") and *schemas (", 'name', schema
   entry") one top-level field of the projection: the field whole, or when
   the projection names only children "name.child", an object of just
   those, narrowed in SQL (the parent's own type kept, so a projection into
   a non-object fails in the decoder as it must; an absent parent gives
   NULL for both, which the decoder skips). sqlite3_mprintf'd strings;
   false when out of memory. */
static bool field_sql(const bson_t *projection, const char *name, char **values, char **schemas)
{
	bson_iter_t it;
	size_t len = strlen(name);
	bool whole = false;
	char *kids_v = sqlite3_mprintf(""), *kids_s = sqlite3_mprintf("");
	size_t kids = 0;
	if (bson_iter_init(&it, projection)) {
		while (bson_iter_next(&it) && kids_v != NULL && kids_s != NULL) {
			const char *key = bson_iter_key(&it);
			if (strncmp(key, name, len) != 0 || (key[len] != '\0' && key[len] != '.'))
				continue;
			const char *child = key[len] == '.' ? key + len + 1 : NULL;
			if (child == NULL || strchr(child, '.') != NULL ||
			    !plain_name(child, strlen(child))) {
				whole = true;
				continue;
			}
			char *v = sqlite3_mprintf("%s%s'%s', " FDB_J "->'$.\"%s\".\"%s\"'", kids_v,
						  kids > 0 ? ", " : "", child, name, child);
			char *sc = sqlite3_mprintf("%s%s'%s', " FDB_J
						   "->'$.\"$s\".p.\"%s\".\"$s\".p.\"%s\"'",
						   kids_s, kids > 0 ? ", " : "", child, name, child);
			sqlite3_free(kids_v);
			sqlite3_free(kids_s);
			kids_v = v;
			kids_s = sc;
			kids++;
		}
	}
	char *v = NULL, *sc = NULL;
	if (kids_v != NULL && kids_s != NULL && (whole || kids == 0)) {
		v = sqlite3_mprintf("%s, '%s', " FDB_J "->'$.\"%s\"'", *values, name, name);
		sc = sqlite3_mprintf("%s, '%s', " FDB_J "->'$.\"$s\".p.\"%s\"'", *schemas, name,
				     name);
	} else if (kids_v != NULL && kids_s != NULL) {
		v = sqlite3_mprintf("%s, '%s', CASE WHEN " FDB_J "->'$.\"%s\"' IS NULL THEN NULL "
				    "ELSE json_object(%s) END",
				    *values, name, name, kids_v);
		sc = sqlite3_mprintf("%s, '%s', CASE WHEN " FDB_J "->'$.\"%s\"' IS NULL THEN NULL "
				     "ELSE json_object('t', " FDB_J "->>'$.\"$s\".p.\"%s\".t', '$s', "
				     "json_object('p', json_object(%s), '$k', " FDB_J
				     "->'$.\"$s\".p.\"%s\".\"$s\".\"$k\"')) END",
				     *schemas, name, name, name, kids_s, name);
	}
	sqlite3_free(kids_v);
	sqlite3_free(kids_s);
	sqlite3_free(*values);
	sqlite3_free(*schemas);
	*values = v;
	*schemas = sc;
	return v != NULL && sc != NULL;
}

/* The SQL expression of the document column: the whole sjson text, or for
   an inclusion projection an sjson object of just the fields it reads
   (their values and schema entries; _id too unless excluded) with the
   document's own field order; NULL when a name cannot go into a path. */
static char *doc_column(const bson_t *projection)
{
	if (projection == NULL)
		return sqlite3_mprintf(", " FDB_J);
	bson_iter_t it;
	size_t cap = bson_count_keys(projection) + 1, n = 0;
	char **done = calloc(cap, sizeof(*done));
	char *values = sqlite3_mprintf("'_k', 0"), *schemas = sqlite3_mprintf("'_k', 0");
	bool ok = done != NULL && values != NULL && schemas != NULL &&
		  bson_iter_init(&it, projection);
	bool id_named = false;
	while (ok && bson_iter_next(&it)) {
		const char *key = bson_iter_key(&it);
		size_t len = strcspn(key, ".");
		if (len == 3 && strncmp(key, "_id", 3) == 0) {
			id_named = true;
			if (!bson_iter_as_bool(&it))
				continue;
		}
		bool seen = false;
		for (size_t i = 0; i < n && !seen; i++)
			seen = strlen(done[i]) == len && strncmp(done[i], key, len) == 0;
		if (seen)
			continue;
		ok = plain_name(key, len) && (done[n] = strndup(key, len)) != NULL &&
		     field_sql(projection, done[n++], &values, &schemas);
	}
	if (ok && !id_named)
		ok = field_sql(projection, "_id", &values, &schemas);
	for (size_t i = 0; done != NULL && i < n; i++)
		free(done[i]);
	free(done);
	char *sql = NULL;
	/* '_k' is a placeholder for the leading comma; not in "$k", never read */
	if (ok)
		sql = sqlite3_mprintf(", json_object('$s', json_object('p', json_object(%s), '$k', "
				      FDB_J "->'$.\"$s\".\"$k\"'), %s)",
				      schemas, values);
	sqlite3_free(values);
	sqlite3_free(schemas);
	return sql;
}

/* The uids as a JSON array text for json_each(). */
static char *uid_list_json(const uint32_t *uids, size_t count)
{
	char *text = malloc(count * 11 + 3);
	if (text == NULL)
		return NULL;
	size_t n = 0;
	text[n++] = '[';
	for (size_t i = 0; i < count; i++)
		n += (size_t)sprintf(text + n, "%s%u", i > 0 ? "," : "", uids[i]);
	text[n++] = ']';
	text[n] = '\0';
	return text;
}

int wd_store_fdb_cursor_select(struct wd_store *store, const bson_oid_t *mailbox,
			       uint32_t uid_first, uint32_t uid_last, uint64_t modseq_above,
			       const struct wd_store_fdb_select *select,
			       struct wd_store_fdb_cursor **cursor_r)
{
	char table[256];
	sqlite3 *db;
	*cursor_r = NULL;
	if (fdb_open(store, WD_STORE_DB_MAIN, "messages", FDB_INDEX, &db, table, sizeof(table)) !=
	    WD_OK)
		return WD_STORE_FDB_NONE;
	bool docs = select != NULL && select->docs;
	char *doc_sql = docs ? doc_column(select->projection) : sqlite3_mprintf("");
	bool uids = select != NULL && select->uids != NULL;
	char *uid_json = uids ? uid_list_json(select->uids, select->uid_count) : NULL;
	/* INDEXED BY: the planner would otherwise pick any index starting with
	   the mailbox; a missing index makes prepare fail (no fast path) */
	char *sql = doc_sql == NULL ? NULL :
		sqlite3_mprintf("SELECT " FDB_COLUMNS "%s FROM \"%s\" INDEXED BY \"%s" FDB_INDEX
				"\" WHERE " FDB_MAILBOX " = ?1 AND " FDB_UID " BETWEEN ?2 "
				"AND ?3%s%s ORDER BY " FDB_UID,
				doc_sql, table, table,
				modseq_above > 0 ? " AND " FDB_MODSEQ " > ?4" : "",
				uids ? " AND " FDB_UID " IN (SELECT value FROM json_each(?5))" : "");
	sqlite3_free(doc_sql);
	struct wd_store_fdb_cursor *cursor = calloc(1, sizeof(*cursor));
	sqlite3_stmt *stmt = NULL;
	if (sql == NULL || cursor == NULL || (uids && uid_json == NULL) ||
	    (docs && select->projection != NULL &&
	     (cursor->projection = bson_copy(select->projection)) == NULL) ||
	    sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		wd_debug("store", "FerretDB SQLite: no metadata path: %s", sqlite3_errmsg(db));
		sqlite3_free(sql);
		free(uid_json);
		if (cursor != NULL && cursor->projection != NULL)
			bson_destroy(cursor->projection);
		free(cursor);
		sqlite3_close(db);
		return WD_STORE_FDB_NONE;
	}
	sqlite3_free(sql);
	char hex[25];
	bson_oid_to_string(mailbox, hex);
	sqlite3_bind_text(stmt, 1, hex, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 2, uid_first);
	sqlite3_bind_int64(stmt, 3, uid_last);
	if (modseq_above > 0)
		sqlite3_bind_int64(stmt, 4, modseq_above > INT64_MAX ? INT64_MAX :
									(sqlite3_int64)modseq_above);
	if (uids)
		sqlite3_bind_text(stmt, 5, uid_json, -1, free);
	cursor->db = db;
	cursor->stmt = stmt;
	cursor->docs = docs;
	*cursor_r = cursor;
	return WD_OK;
}

int wd_store_fdb_cursor_open(struct wd_store *store, const bson_oid_t *mailbox,
			     uint32_t uid_first, uint32_t uid_last, uint64_t modseq_above,
			     struct wd_store_fdb_cursor **cursor_r)
{
	return wd_store_fdb_cursor_select(store, mailbox, uid_first, uid_last, modseq_above, NULL,
					  cursor_r);
}

int wd_store_fdb_cursor_doc(struct wd_store_fdb_cursor *cursor, bson_t *doc)
{
	if (!cursor->docs)
		return WD_STORE_FDB_NONE;
	const char *json = (const char *)sqlite3_column_text(cursor->stmt, 7);
	if (json == NULL)
		return WD_STORE_FDB_NONE;
	size_t len = (size_t)sqlite3_column_bytes(cursor->stmt, 7);
	if (wd_store_fdb_sjson_to_bson(json, len, cursor->projection, doc) < 0) {
		wd_debug("store", "FerretDB SQLite: a document this reader cannot decode");
		return WD_STORE_FDB_NONE;
	}
	return WD_OK;
}

int wd_store_fdb_cursor_next(struct wd_store_fdb_cursor *cursor, struct wd_store_fdb_msg *msg,
			     char **error_r)
{
	sqlite3_stmt *stmt = cursor->stmt;
	int rc;
	*error_r = NULL;
	while (!cursor->end && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		sqlite3_int64 uid = sqlite3_column_int64(stmt, 0);
		sqlite3_int64 modseq = sqlite3_column_int64(stmt, 1);
		const char *id = (const char *)sqlite3_column_text(stmt, 6);
		if (uid <= 0 || uid > UINT32_MAX || id == NULL || !bson_oid_is_valid(id, strlen(id)))
			continue; /* never stored by a writer */
		bson_oid_init_from_string(&msg->id, id);
		msg->uid = (uint32_t)uid;
		msg->modseq = modseq > 0 ? (uint64_t)modseq : 0;
		/* absent booleans read as NULL: WildDuck's defaults */
		msg->unseen = sqlite3_column_type(stmt, 2) != SQLITE_NULL &&
			      sqlite3_column_int(stmt, 2) != 0;
		msg->undeleted = sqlite3_column_type(stmt, 3) == SQLITE_NULL ||
				 sqlite3_column_int(stmt, 3) != 0;
		msg->size = sqlite3_column_int64(stmt, 4);
		msg->flags_json = (const char *)sqlite3_column_text(stmt, 5);
		msg->flags_len = (size_t)sqlite3_column_bytes(stmt, 5);
		if (msg->flags_json == NULL) {
			msg->flags_json = "";
			msg->flags_len = 0;
		}
		return 1;
	}
	if (cursor->end)
		return 0;
	cursor->end = true;
	if (rc != SQLITE_DONE) {
		*error_r = wd__store_error("FerretDB SQLite: %s", sqlite3_errmsg(cursor->db));
		return WD_STORE_ERR_DATABASE;
	}
	return 0;
}

void wd_store_fdb_cursor_close(struct wd_store_fdb_cursor **_cursor)
{
	struct wd_store_fdb_cursor *cursor = *_cursor;
	if (cursor == NULL)
		return;
	*_cursor = NULL;
	sqlite3_finalize(cursor->stmt);
	sqlite3_close(cursor->db);
	if (cursor->projection != NULL)
		bson_destroy(cursor->projection);
	free(cursor);
}

int wd_store_fdb_messages(struct wd_store *store, const bson_oid_t *mailbox, uint32_t uid_first,
			  uint32_t uid_last, wd_store_fdb_msg_fn *fn, void *ctx, char **error_r)
{
	struct wd_store_fdb_cursor *cursor;
	struct wd_store_fdb_msg msg;
	int ret;
	*error_r = NULL;
	if (wd_store_fdb_cursor_open(store, mailbox, uid_first, uid_last, 0, &cursor) != WD_OK)
		return WD_STORE_FDB_NONE;
	while ((ret = wd_store_fdb_cursor_next(cursor, &msg, error_r)) == 1) {
		ret = fn(ctx, &msg);
		if (ret != 0)
			break;
	}
	wd_store_fdb_cursor_close(&cursor);
	return ret;
}

void wd_store_fdb_msg_bson(const struct wd_store_fdb_msg *msg, bson_t *doc)
{
	bson_t flags;
	char flag[1024], key[16];
	const char *key_str;
	size_t pos = 0;
	uint32_t i = 0;
	BSON_APPEND_OID(doc, "_id", &msg->id);
	BSON_APPEND_INT64(doc, "uid", msg->uid);
	BSON_APPEND_INT64(doc, "modseq", (int64_t)msg->modseq);
	BSON_APPEND_INT64(doc, "size", msg->size);
	BSON_APPEND_BOOL(doc, "unseen", msg->unseen);
	BSON_APPEND_BOOL(doc, "undeleted", msg->undeleted);
	BSON_APPEND_ARRAY_BEGIN(doc, "flags", &flags);
	while (wd_store_fdb_next_flag(msg->flags_json, msg->flags_len, &pos, flag, sizeof(flag))) {
		bson_uint32_to_string(i++, &key_str, key, sizeof(key));
		bson_append_utf8(&flags, key_str, -1, flag, -1);
	}
	bson_append_array_end(doc, &flags);
}

int wd_store_fdb_load_uids(struct wd_store *store, const bson_oid_t *mailbox,
			   const uint32_t *uids, size_t count, const bson_t *projection,
			   bson_t ***docs_r, size_t *count_r, char **error_r)
{
	*docs_r = NULL;
	*count_r = 0;
	*error_r = NULL;
	if (count == 0)
		return WD_STORE_FDB_NONE;
	uint32_t first = UINT32_MAX, last = 0;
	for (size_t i = 0; i < count; i++) {
		first = uids[i] < first ? uids[i] : first;
		last = uids[i] > last ? uids[i] : last;
	}
	bson_t *proj = NULL;
	if (projection != NULL) {
		/* mailbox and uid, as the documents read by _id used to carry */
		proj = bson_copy(projection);
		if (proj == NULL)
			return WD_STORE_FDB_NONE;
		if (!bson_has_field(projection, "mailbox"))
			BSON_APPEND_INT32(proj, "mailbox", 1);
		if (!bson_has_field(projection, "uid"))
			BSON_APPEND_INT32(proj, "uid", 1);
	}
	struct wd_store_fdb_select select = {
		.uids = uids, .uid_count = count, .docs = true, .projection = proj
	};
	struct wd_store_fdb_cursor *cursor;
	int ret = wd_store_fdb_cursor_select(store, mailbox, first, last, 0, &select, &cursor);
	if (proj != NULL)
		bson_destroy(proj);
	if (ret != WD_OK)
		return WD_STORE_FDB_NONE;
	bson_t **docs = calloc(count, sizeof(*docs));
	size_t n = 0;
	struct wd_store_fdb_msg msg;
	ret = docs == NULL ? WD_STORE_FDB_NONE : WD_OK;
	while (ret == WD_OK && n < count &&
	       (ret = wd_store_fdb_cursor_next(cursor, &msg, error_r)) == 1) {
		if ((docs[n] = bson_new()) == NULL) {
			ret = WD_STORE_FDB_NONE;
			break;
		}
		/* a document this reader cannot decode: the caller's query reads all */
		ret = wd_store_fdb_cursor_doc(cursor, docs[n]);
		n++;
	}
	wd_store_fdb_cursor_close(&cursor);
	if (ret != WD_OK) {
		for (size_t i = 0; i < n; i++)
			bson_destroy(docs[i]);
		free(docs);
		if (ret == WD_STORE_FDB_NONE) {
			free(*error_r);
			*error_r = NULL;
		}
		return ret;
	}
	*docs_r = docs;
	*count_r = n;
	return WD_OK;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool read_u16(const char *json, size_t len, size_t *i, uint32_t *cp_r)
{
	uint32_t cp = 0;
	if (*i + 4 > len)
		return false;
	for (int k = 0; k < 4; k++) {
		int d = hex_digit(json[*i + (size_t)k]);
		if (d < 0)
			return false;
		cp = cp << 4 | (uint32_t)d;
	}
	*i += 4;
	*cp_r = cp;
	return true;
}

static void put_byte(char *buf, size_t size, size_t *n, unsigned char c)
{
	if (*n + 1 < size)
		buf[(*n)++] = (char)c;
}

static void put_utf8(char *buf, size_t size, size_t *n, uint32_t cp)
{
	if (cp < 0x80) {
		put_byte(buf, size, n, (unsigned char)cp);
	} else if (cp < 0x800) {
		put_byte(buf, size, n, (unsigned char)(0xC0 | cp >> 6));
		put_byte(buf, size, n, (unsigned char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		put_byte(buf, size, n, (unsigned char)(0xE0 | cp >> 12));
		put_byte(buf, size, n, (unsigned char)(0x80 | (cp >> 6 & 0x3F)));
		put_byte(buf, size, n, (unsigned char)(0x80 | (cp & 0x3F)));
	} else {
		put_byte(buf, size, n, (unsigned char)(0xF0 | cp >> 18));
		put_byte(buf, size, n, (unsigned char)(0x80 | (cp >> 12 & 0x3F)));
		put_byte(buf, size, n, (unsigned char)(0x80 | (cp >> 6 & 0x3F)));
		put_byte(buf, size, n, (unsigned char)(0x80 | (cp & 0x3F)));
	}
}

bool wd_store_fdb_next_flag(const char *json, size_t len, size_t *pos, char *buf, size_t size)
{
	size_t i = *pos, n = 0;
	if (size == 0)
		return false;
	/* skip '[' (first call), ',' and blanks up to the next string */
	while (i < len && json[i] != '"') {
		if (json[i] == ']')
			return false;
		i++;
	}
	if (i >= len)
		return false;
	for (i++; i < len && json[i] != '"'; i++) {
		unsigned char c = (unsigned char)json[i];
		if (c != '\\') {
			put_byte(buf, size, &n, c);
			continue;
		}
		if (++i >= len)
			return false;
		uint32_t cp, lo;
		switch (json[i]) {
		case 'b': put_byte(buf, size, &n, '\b'); break;
		case 'f': put_byte(buf, size, &n, '\f'); break;
		case 'n': put_byte(buf, size, &n, '\n'); break;
		case 'r': put_byte(buf, size, &n, '\r'); break;
		case 't': put_byte(buf, size, &n, '\t'); break;
		case 'u':
			i++;
			if (!read_u16(json, len, &i, &cp))
				return false;
			if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < len && json[i] == '\\' &&
			    json[i + 1] == 'u') {
				size_t j = i + 2;
				if (read_u16(json, len, &j, &lo) && lo >= 0xDC00 && lo < 0xE000) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					i = j;
				}
			}
			put_utf8(buf, size, &n, cp);
			i--; /* the loop steps past the last digit */
			break;
		default: put_byte(buf, size, &n, (unsigned char)json[i]); break;
		}
	}
	if (i >= len)
		return false;
	buf[n] = '\0';
	*pos = i + 1;
	return true;
}

int wd_store_fdb_thread_find(struct wd_store *store, const bson_oid_t *user, const char *subject,
			     const char ids[][32], size_t id_count, bool *found_r,
			     bson_oid_t *thread_r)
{
	char table[256];
	sqlite3 *db;
	*found_r = false;
	if (id_count == 0 || fdb_open(store, WD_STORE_DB_MAIN, "threads", FDB_THREAD_INDEX, &db,
				      table, sizeof(table)) != WD_OK)
		return WD_STORE_FDB_NONE;
	/* the filter {user: ObjectId, ids: {$in: [...]}, subject: string} with
	   the types checked against the document's schema, as FerretDB would
	   compare them; the first match in table order, as its scan finds it */
	char *sql = sqlite3_mprintf(
		"SELECT " FDB_J "->>'$._id', " FDB_J "->>'$.\"$s\".p._id.t' FROM \"%s\" "
		"INDEXED BY \"%s" FDB_THREAD_INDEX "\" WHERE " FDB_J "->>'$.user' = ?1 AND " FDB_J
		"->>'$.subject' = ?2 AND " FDB_J "->>'$.\"$s\".p.user.t' = 'objectId' AND " FDB_J
		"->>'$.\"$s\".p.subject.t' = 'string' AND EXISTS (SELECT 1 FROM json_each(" FDB_J
		", '$.ids') AS e WHERE e.type = 'text' AND e.value IN (SELECT value FROM "
		"json_each(?3))) ORDER BY rowid LIMIT 1",
		table, table);
	sqlite3_stmt *stmt = NULL;
	char *list = NULL;
	size_t len = 2;
	for (size_t i = 0; i < id_count; i++)
		len += strlen(ids[i]) * 6 + 3;
	list = malloc(len + 1);
	int ret = WD_STORE_FDB_NONE;
	if (sql != NULL && list != NULL &&
	    sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK) {
		/* the ids are base64 and hex: no character JSON must escape */
		size_t n = 0;
		bool plain = true;
		list[n++] = '[';
		for (size_t i = 0; i < id_count; i++) {
			plain = plain && strpbrk(ids[i], "\"\\") == NULL;
			n += (size_t)sprintf(list + n, "%s\"%s\"", i > 0 ? "," : "", ids[i]);
		}
		list[n++] = ']';
		list[n] = '\0';
		char hex[25];
		bson_oid_to_string(user, hex);
		sqlite3_bind_text(stmt, 1, hex, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(stmt, 2, subject, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, list, -1, SQLITE_STATIC);
		int rc = plain ? sqlite3_step(stmt) : SQLITE_ERROR;
		if (rc == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(stmt, 0);
			const char *type = (const char *)sqlite3_column_text(stmt, 1);
			if (id != NULL && type != NULL && strcmp(type, "objectId") == 0 &&
			    bson_oid_is_valid(id, strlen(id))) {
				bson_oid_init_from_string(thread_r, id);
				*found_r = true;
				ret = WD_OK;
			}
		} else if (rc == SQLITE_DONE) {
			ret = WD_OK;
		}
	} else {
		wd_debug("store", "FerretDB SQLite: no thread path: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(stmt);
	sqlite3_free(sql);
	free(list);
	sqlite3_close(db);
	return ret;
}

int wd_store_fdb_find_id(struct wd_store *store, const char *collection, const bson_t *filter,
			 bool *found_r, bson_oid_t *id_r)
{
	*found_r = false;
	bson_iter_t it;
	const struct fdb_lookup *lookup = NULL;
	for (size_t i = 0; i < WD_N_ELEMENTS(fdb_lookups) && lookup == NULL; i++) {
		size_t fields = lookup_fields(&fdb_lookups[i]);
		if (strcmp(fdb_lookups[i].collection, collection) != 0 ||
		    bson_count_keys(filter) != fields || !bson_iter_init(&it, filter))
			continue;
		bool same = true;
		for (size_t f = 0; f < fields && same; f++)
			same = bson_iter_next(&it) &&
			       strcmp(bson_iter_key(&it), fdb_lookups[i].fields[f]) == 0 &&
			       (BSON_ITER_HOLDS_UTF8(&it) || BSON_ITER_HOLDS_OID(&it));
		if (same)
			lookup = &fdb_lookups[i];
	}
	char table[256];
	sqlite3 *db;
	if (lookup == NULL ||
	    fdb_open(store, lookup->db, collection, lookup->index, &db, table, sizeof(table)) != WD_OK)
		return WD_STORE_FDB_NONE;
	/* each value compared with its type from the document's schema, as
	   FerretDB compares; the first match in table order, as its scan */
	const char *second = lookup->fields[lookup_fields(lookup) - 1];
	char *sql = sqlite3_mprintf(
		"SELECT " FDB_J "->>'$._id', " FDB_J "->>'$.\"$s\".p._id.t' FROM \"%s\" "
		"INDEXED BY \"%s%s\" WHERE " FDB_J "->>'$.%s' = ?1 AND " FDB_J "->>'$.%s' = ?2 "
		"AND " FDB_J "->>'$.\"$s\".p.%s.t' = ?3 AND " FDB_J "->>'$.\"$s\".p.%s.t' = ?4 "
		"ORDER BY rowid LIMIT 1",
		table, table, lookup->index, lookup->fields[0], second, lookup->fields[0], second);
	sqlite3_stmt *stmt = NULL;
	int ret = WD_STORE_FDB_NONE;
	if (sql != NULL && sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
	    bson_iter_init(&it, filter)) {
		/* a one-field lookup binds its field for both conditions */
		bson_iter_t v0, v1;
		size_t n = 0;
		if (bson_iter_next(&it)) {
			v0 = it;
			n++;
		}
		if (n == 1 && bson_iter_next(&it)) {
			v1 = it;
			n++;
		}
		for (int f = 0; f < 2 && n > 0; f++) {
			const bson_iter_t *v = f == 1 && n == 2 ? &v1 : &v0;
			if (BSON_ITER_HOLDS_OID(v)) {
				char hex[25];
				bson_oid_to_string(bson_iter_oid(v), hex);
				sqlite3_bind_text(stmt, 1 + f, hex, -1, SQLITE_TRANSIENT);
				sqlite3_bind_text(stmt, 3 + f, "objectId", -1, SQLITE_STATIC);
			} else {
				uint32_t len;
				const char *value = bson_iter_utf8(v, &len);
				sqlite3_bind_text(stmt, 1 + f, value, (int)len, SQLITE_TRANSIENT);
				sqlite3_bind_text(stmt, 3 + f, "string", -1, SQLITE_STATIC);
			}
		}
		int rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(stmt, 0);
			const char *type = (const char *)sqlite3_column_text(stmt, 1);
			if (id != NULL && type != NULL && strcmp(type, "objectId") == 0 &&
			    bson_oid_is_valid(id, strlen(id))) {
				bson_oid_init_from_string(id_r, id);
				*found_r = true;
				ret = WD_OK;
			}
		} else if (rc == SQLITE_DONE) {
			ret = WD_OK;
		}
	} else {
		wd_debug("store", "FerretDB SQLite: no lookup path: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(stmt);
	sqlite3_free(sql);
	sqlite3_close(db);
	return ret;
}
