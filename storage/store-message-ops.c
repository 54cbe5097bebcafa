/* Changes to stored messages: STORE, COPY/MOVE, EXPUNGE (reference §4.8,
 * §4.10, §4.11), keeping every counter that depends on them exact: MODSEQ,
 * the boolean flag mirrors, attachment references, quota, the journal.
 *
 * Documents of one mailbox are read in one query and changed one by one
 * under the mailbox's update lock (a no-op on MongoDB; on FerretDB updates
 * are not atomic). */
#include "wd-store-message.h"
#include "wd-store-attachment.h"
#include "wd-store-fdb.h"
#include "wd-store-journal.h"
#include "store-op.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-str.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define ARCHIVE_TIME_MS (25LL * 24 * 3600 * 1000)

static void append_uid_array(bson_t *doc, const char *key, const uint32_t *uids, size_t count)
{
	bson_t array;
	char k[16];
	const char *key_str;
	bson_append_array_begin(doc, key, -1, &array);
	for (size_t i = 0; i < count; i++) {
		bson_uint32_to_string((uint32_t)i, &key_str, k, sizeof(k));
		BSON_APPEND_INT32(&array, key_str, (int32_t)uids[i]);
	}
	bson_append_array_end(doc, &array);
}

/* Loads the messages of `mailbox` (all, or those with `uids`; extra filter
   fields from `extra`), sorted by UID, as copies in a malloc'd array. */
static int load_messages(struct wd_store *store, const bson_oid_t *mailbox, const uint32_t *uids,
			 size_t uid_count, const bson_t *extra, bson_t ***docs_r, size_t *count_r,
			 char **error_r)
{
	/* FerretDB on SQLite: by _id, not by a scan of the whole collection */
	if (uids != NULL && extra == NULL) {
		int fret = wd_store_fdb_load_uids(store, mailbox, uids, uid_count, NULL, docs_r,
						  count_r, error_r);
		if (fret != WD_STORE_FDB_NONE)
			return fret == WD_OK ? WD_OK : WD_ERROR;
	}
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t query = BSON_INITIALIZER, in;
	BSON_APPEND_OID(&query, "mailbox", mailbox);
	if (uids != NULL) {
		bson_append_document_begin(&query, "uid", -1, &in);
		append_uid_array(&in, "$in", uids, uid_count);
		bson_append_document_end(&query, &in);
	}
	if (extra != NULL)
		bson_concat(&query, extra);
	bson_t *opts = BCON_NEW("sort", "{", "uid", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &query, opts, NULL);
	const bson_t *doc;
	size_t count = 0, cap = 0;
	/* bson_t copies kept by pointer: an initialised bson_t must not move
	   (an allocated one points at its own fields), and the array grows */
	bson_t **docs = NULL;
	while (mongoc_cursor_next(cursor, &doc)) {
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			bson_t **grown = realloc(docs, cap * sizeof(*docs));
			if (grown == NULL)
				break;
			docs = grown;
		}
		docs[count++] = bson_copy(doc);
	}
	bson_error_t error;
	int ret = WD_OK;
	if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__store_error("cannot read messages: %s", error.message);
		ret = WD_ERROR;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(&query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	*docs_r = docs;
	*count_r = count;
	return ret;
}

static void free_docs(bson_t **docs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		bson_destroy(docs[i]);
	free(docs);
}

/* The flags array of a document (pointers into it). */
static size_t doc_flags(const bson_t *doc, const char **flags, size_t max)
{
	bson_iter_t iter, child;
	size_t n = 0;
	if (bson_iter_init_find(&iter, doc, "flags") && BSON_ITER_HOLDS_ARRAY(&iter) &&
	    bson_iter_recurse(&iter, &child)) {
		while (bson_iter_next(&child) && n < max) {
			if (BSON_ITER_HOLDS_UTF8(&child))
				flags[n++] = bson_iter_utf8(&child, NULL);
		}
	}
	return n;
}

static bool list_has(const char *const *list, size_t count, const char *flag)
{
	for (size_t i = 0; i < count; i++) {
		if (wd_str_eq_nocase(list[i], flag))
			return true;
	}
	return false;
}

/* The mirrors of a flag list, written with $set (searchable with $unset). */
static void append_flag_update(bson_t *update, const char *const *flags, size_t count,
			       uint32_t modseq, bool junk_or_trash)
{
	bson_t set, array;
	bool deleted = list_has(flags, count, "\\Deleted");
	bson_append_document_begin(update, "$set", -1, &set);
	bson_append_array_begin(&set, "flags", -1, &array);
	for (size_t i = 0; i < count; i++) {
		char k[16];
		const char *key_str;
		bson_uint32_to_string((uint32_t)i, &key_str, k, sizeof(k));
		BSON_APPEND_UTF8(&array, key_str, flags[i]);
	}
	bson_append_array_end(&set, &array);
	BSON_APPEND_BOOL(&set, "unseen", !list_has(flags, count, "\\Seen"));
	BSON_APPEND_BOOL(&set, "flagged", list_has(flags, count, "\\Flagged"));
	BSON_APPEND_BOOL(&set, "undeleted", !deleted);
	BSON_APPEND_BOOL(&set, "draft", list_has(flags, count, "\\Draft"));
	BSON_APPEND_INT32(&set, "modseq", (int32_t)modseq);
	if (!deleted && !junk_or_trash)
		BSON_APPEND_BOOL(&set, "searchable", true);
	bson_append_document_end(update, &set);
	if (deleted) {
		bson_t unset;
		bson_append_document_begin(update, "$unset", -1, &unset);
		BSON_APPEND_UTF8(&unset, "searchable", "");
		bson_append_document_end(update, &unset);
	}
}

#define MAX_FLAGS 128
/* System flags + keywords a mailbox lists at most (WildDuck's cap). */
#define MAILBOX_FLAGS_MAX 100

static const char *const system_flags[] = { "\\Answered", "\\Flagged", "\\Draft", "\\Deleted",
					    "\\Seen" };

/* Keywords set by STORE join the mailbox's `flags` list (FLAGS and
   PERMANENTFLAGS of SELECT), as WildDuck keeps it: compared without case,
   at most MAILBOX_FLAGS_MAX together with the system flags. A failure only
   leaves a keyword unlisted, so it is logged, not returned. */
static void add_mailbox_keywords(struct wd_store *store, const bson_oid_t *mailbox,
				 const char *const *flags, size_t count)
{
	struct wd__coll c;
	mongoc_collection_t *coll = wd__coll_open(&c, store, WD_STORE_DB_MAIN, "mailboxes");
	bson_t *query = BCON_NEW("_id", BCON_OID(mailbox));
	bson_t *opts = BCON_NEW("projection", "{", "flags", BCON_INT32(1), "}");
	bson_t doc;
	char *error = NULL;
	int ret = wd__find_one(coll, query, opts, &doc, &error);
	bson_destroy(query);
	bson_destroy(opts);
	wd__coll_close(&c);
	if (ret != WD_STORE_OK) {
		if (error != NULL)
			wd_warning("store", "mailbox keywords not read: %s", error);
		free(error);
		return;
	}
	const char *known[MAILBOX_FLAGS_MAX + MAX_FLAGS];
	size_t known_count = 0;
	for (size_t i = 0; i < WD_N_ELEMENTS(system_flags); i++)
		known[known_count++] = system_flags[i];
	known_count += doc_flags(&doc, known + known_count, MAILBOX_FLAGS_MAX);
	bson_t keywords = BSON_INITIALIZER;
	size_t added = 0;
	for (size_t i = 0; i < count && known_count < MAILBOX_FLAGS_MAX; i++) {
		if (list_has(known, known_count, flags[i]))
			continue;
		char key[16];
		const char *key_str;
		bson_uint32_to_string((uint32_t)added++, &key_str, key, sizeof(key));
		BSON_APPEND_UTF8(&keywords, key_str, flags[i]);
		known[known_count++] = flags[i];
	}
	if (added > 0) {
		bson_t *update = BCON_NEW("$addToSet", "{", "flags", "{", "$each", BCON_ARRAY(&keywords),
					  "}", "}");
		if (wd__store_update_by_id(store, WD_STORE_DB_MAIN, "mailboxes", mailbox, mailbox,
					   update, "list mailbox keywords", &error) < 0) {
			wd_warning("store", "%s", error);
			free(error);
		}
		bson_destroy(update);
	}
	bson_destroy(&keywords);
	bson_destroy(&doc);
}

int wd_store_message_flags(struct wd_store *store, const bson_oid_t *mailbox,
			   const struct wd_flags_change *change, struct wd_flags_result *result_r,
			   char **error_r)
{
	memset(result_r, 0, sizeof(*result_r));
	struct wd__mailbox_info mbox;
	if (wd__store_mailbox_info(store, mailbox, &mbox, error_r) < 0)
		return WD_ERROR;
	struct wd_store_lock lock;
	if (wd__store_mailbox_lock(store, mailbox, &lock, error_r) < 0)
		return WD_ERROR;
	bson_t **docs;
	size_t count;
	int ret = load_messages(store, mailbox, change->uids, change->uid_count, NULL, &docs, &count,
				error_r);
	wd__store_mailbox_unlock(store, &lock);
	if (ret < 0)
		return WD_ERROR;

	struct wd_journal_entry *entries = calloc(count + 1, sizeof(*entries));
	const char *(*new_flags)[MAX_FLAGS] = calloc(count + 1, sizeof(*new_flags));
	size_t entry_count = 0;
	result_r->modified = calloc(count + 1, sizeof(uint32_t));
	for (size_t i = 0; i < count && ret == WD_OK; i++) {
		const char *old[MAX_FLAGS];
		size_t old_count = doc_flags(docs[i], old, MAX_FLAGS);
		const char **next = new_flags[i];
		size_t next_count = 0;
		if (change->op == WD_FLAGS_REPLACE) {
			for (size_t k = 0; k < change->flag_count && next_count < MAX_FLAGS; k++) {
				if (!list_has(next, next_count, change->flags[k]))
					next[next_count++] = change->flags[k];
			}
		} else {
			for (size_t k = 0; k < old_count; k++) {
				if (change->op == WD_FLAGS_REMOVE &&
				    list_has(change->flags, change->flag_count, old[k]))
					continue;
				next[next_count++] = old[k];
			}
			for (size_t k = 0; change->op == WD_FLAGS_ADD && k < change->flag_count &&
					   next_count < MAX_FLAGS; k++) {
				if (!list_has(next, next_count, change->flags[k]))
					next[next_count++] = change->flags[k];
			}
		}
		/* unchanged when both lists hold the same flags (without case) */
		bool same = next_count == old_count;
		for (size_t k = 0; same && k < next_count; k++)
			same = list_has(old, old_count, next[k]);
		if (same)
			continue;
		uint32_t uid = (uint32_t)wd__doc_int64(docs[i], "uid");
		if (change->unchanged_since != 0 &&
		    (uint64_t)wd__doc_int64(docs[i], "modseq") > change->unchanged_since) {
			result_r->modified[result_r->modified_count++] = uid;
			continue;
		}
		if (result_r->modseq == 0 &&
		    wd_store_allocate_modseq(store, mailbox, &result_r->modseq, error_r) < 0) {
			ret = WD_ERROR;
			break;
		}
		bson_oid_t id;
		wd__doc_oid(docs[i], "_id", &id);
		bson_t update = BSON_INITIALIZER;
		append_flag_update(&update, next, next_count, result_r->modseq, mbox.junk);
		if (wd__store_update_by_id(store, WD_STORE_DB_MAIN, "messages", mailbox, &id, &update,
					   "update flags", error_r) < 0)
			ret = WD_ERROR;
		bson_destroy(&update);
		struct wd_journal_entry *e = &entries[entry_count++];
		e->command = WD_JOURNAL_FETCH;
		e->uid = uid;
		e->modseq = result_r->modseq;
		e->has_message = true;
		e->message = id;
		e->has_thread = wd__doc_oid(docs[i], "thread", &e->thread);
		e->ignore = change->session_id;
		e->flags = next;
		e->flag_count = next_count;
		e->has_flags = true;
		e->unseen = -1;
		e->unseen_change = list_has(old, old_count, "\\Seen") != list_has(next, next_count, "\\Seen");
		result_r->changed++;
	}
	if (ret == WD_OK && change->op != WD_FLAGS_REMOVE)
		add_mailbox_keywords(store, mailbox, change->flags, change->flag_count);
	if (ret == WD_OK && entry_count > 0) {
		char *journal_error = NULL;
		if (wd__store_journal_add_for(store, mailbox, &mbox.user, entries, entry_count, NULL,
					      &journal_error) < 0) {
			wd_warning("store", "journal entries for STORE failed: %s", journal_error);
			free(journal_error);
		}
		wd_store_notify(store, &mbox.user);
	}
	free(entries);
	free(new_flags);
	free_docs(docs, count);
	return ret;
}

/* The attachment ids of a document's mimeTree.attachmentMap. */
static size_t doc_attachments(const bson_t *doc, uint8_t (**hashes_r)[WD_ATTACHMENT_HASH_LEN])
{
	bson_iter_t iter, map, entry;
	size_t count = 0;
	*hashes_r = NULL;
	if (!bson_iter_init(&iter, doc) ||
	    !bson_iter_find_descendant(&iter, "mimeTree.attachmentMap", &map) ||
	    !BSON_ITER_HOLDS_DOCUMENT(&map) || !bson_iter_recurse(&map, &entry))
		return 0;
	size_t cap = 0;
	while (bson_iter_next(&entry)) {
		const uint8_t *data;
		uint32_t len;
		bson_subtype_t subtype;
		if (!BSON_ITER_HOLDS_BINARY(&entry))
			continue;
		bson_iter_binary(&entry, &subtype, &len, &data);
		if (len != WD_ATTACHMENT_HASH_LEN)
			continue;
		if (count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			*hashes_r = realloc(*hashes_r, cap * sizeof(**hashes_r));
		}
		memcpy((*hashes_r)[count++], data, WD_ATTACHMENT_HASH_LEN);
	}
	return count;
}

/* A copy of `src` for `target`: every field kept except those set here. */
static void copy_document(const bson_t *src, const bson_oid_t *id, const bson_oid_t *target,
			  const struct wd__mailbox_info *mbox, uint32_t uid, uint32_t modseq,
			  int64_t now, bson_t *out)
{
	static const char *const replaced[] = { "_id", "mailbox", "user", "uid", "modseq", "junk",
						"exp", "rdate", "copied" };
	bson_init(out);
	BSON_APPEND_OID(out, "_id", id);
	bson_iter_t iter;
	if (bson_iter_init(&iter, src)) {
		while (bson_iter_next(&iter)) {
			bool skip = false;
			for (size_t i = 0; i < WD_N_ELEMENTS(replaced) && !skip; i++)
				skip = strcmp(bson_iter_key(&iter), replaced[i]) == 0;
			if (!skip)
				bson_append_value(out, bson_iter_key(&iter), -1, bson_iter_value(&iter));
		}
	}
	BSON_APPEND_OID(out, "mailbox", target);
	BSON_APPEND_OID(out, "user", &mbox->user);
	BSON_APPEND_INT32(out, "uid", (int32_t)uid);
	BSON_APPEND_INT32(out, "modseq", (int32_t)modseq);
	if (mbox->junk)
		BSON_APPEND_BOOL(out, "junk", true);
	BSON_APPEND_BOOL(out, "exp", mbox->retention > 0);
	BSON_APPEND_DOUBLE(out, "rdate", (double)(now + mbox->retention));
	BSON_APPEND_BOOL(out, "copied", false);
}

static int delete_by_id(struct wd_store *store, const char *collection, const bson_oid_t *id,
			char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, collection);
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	bson_error_t error;
	int ret = WD_OK;
	if (!mongoc_collection_delete_one(coll, query, NULL, NULL, &error)) {
		*error_r = wd__store_error("cannot delete message: %s", error.message);
		ret = WD_ERROR;
	}
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}

static int insert_doc(struct wd_store *store, const char *collection, const bson_t *doc,
		      char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, collection);
	bson_error_t error;
	int ret = WD_OK;
	if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &error) && error.code != 11000) {
		*error_r = wd__store_error("cannot store message: %s", error.message);
		ret = WD_ERROR;
	}
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}

static void release_attachments(struct wd_store *store, const bson_t *doc)
{
	uint8_t (*hashes)[WD_ATTACHMENT_HASH_LEN];
	size_t count = doc_attachments(doc, &hashes);
	char *e = NULL;
	if (count > 0 && wd_store_attachment_release(store, (const uint8_t (*)[32])hashes, count,
						     (uint32_t)wd__doc_int64(doc, "magic"), &e) < 0) {
		wd_error("store", "attachment references not released: %s", e);
		free(e);
	}
	free(hashes);
}

static int set_copied(struct wd_store *store, const bson_oid_t *mailbox, const bson_oid_t *id,
		      char **error_r)
{
	bson_t *update = BCON_NEW("$set", "{", "copied", BCON_BOOL(true), "}");
	int ret = wd__store_update_by_id(store, WD_STORE_DB_MAIN, "messages", mailbox, id, update,
					 "mark a copied message", error_r);
	bson_destroy(update);
	return ret;
}

int wd_store_message_copy(struct wd_store *store, const bson_oid_t *source, const uint32_t *uids,
			  size_t uid_count, const bson_oid_t *target, bool move,
			  const char *session_id, uint32_t **uid_map_r, size_t *count_r,
			  char **error_r)
{
	*uid_map_r = NULL;
	*count_r = 0;
	struct wd__mailbox_info src_box, dst_box;
	if (wd__store_mailbox_info(store, source, &src_box, error_r) < 0 ||
	    wd__store_mailbox_info(store, target, &dst_box, error_r) < 0)
		return WD_ERROR;
	struct wd_store_write_lock write_lock = { 0 };
	if (move && wd__store_write_lock(store, source, 5 * 60 * 1000, 60 * 1000, &write_lock,
					 error_r) < 0)
		return WD_ERROR;
	bson_t **docs;
	size_t count;
	if (load_messages(store, source, uids, uid_count, NULL, &docs, &count, error_r) < 0) {
		wd__store_write_unlock(store, &write_lock);
		return WD_ERROR;
	}
	uint32_t *map = calloc(2 * count + 1, sizeof(*map));
	struct wd_journal_entry *exists = calloc(count + 1, sizeof(*exists));
	struct wd_journal_entry *expunges = calloc(count + 1, sizeof(*expunges));
	size_t done = 0;
	int64_t quota = 0, now = wd__now_ms();
	uint32_t source_modseq = 0;
	int ret = WD_OK;
	if (move && count > 0)
		ret = wd_store_allocate_modseq(store, source, &source_modseq, error_r);
	for (size_t i = 0; i < count && ret == WD_OK; i++) {
		uint32_t uid, modseq;
		if (wd_store_allocate_uid(store, target, false, &uid, &modseq, error_r) < 0) {
			ret = WD_ERROR;
			break;
		}
		bson_oid_t id, old_id, thread;
		bson_oid_init(&id, NULL);
		wd__doc_oid(docs[i], "_id", &old_id);
		bson_t copy;
		copy_document(docs[i], &id, target, &dst_box, uid, modseq, now, &copy);
		uint8_t (*hashes)[WD_ATTACHMENT_HASH_LEN];
		size_t hash_count = doc_attachments(docs[i], &hashes);
		uint32_t magic = (uint32_t)wd__doc_int64(docs[i], "magic");
		if (!move && hash_count > 0)
			ret = wd_store_attachment_addref(store, (const uint8_t (*)[32])hashes, hash_count,
							 magic, error_r);
		if (ret == WD_OK)
			ret = insert_doc(store, "messages", &copy, error_r);
		if (ret < 0 && !move && hash_count > 0) {
			char *e = NULL;
			wd_store_attachment_release(store, (const uint8_t (*)[32])hashes, hash_count,
						    magic, &e);
			free(e);
		}
		bson_destroy(&copy);
		free(hashes);
		if (ret < 0)
			break;
		uint32_t src_uid = (uint32_t)wd__doc_int64(docs[i], "uid");
		bool has_thread = wd__doc_oid(docs[i], "thread", &thread);
		exists[done] = (struct wd_journal_entry){
			.command = WD_JOURNAL_EXISTS, .uid = uid, .has_message = true, .message = id,
			.has_thread = has_thread, .thread = thread, .ignore = session_id,
			.unseen = wd__doc_bool(docs[i], "unseen") ? 1 : 0,
			.junk = dst_box.junk == src_box.junk ? 0 : dst_box.junk ? 1 : -1,
		};
		if (move) {
			ret = delete_by_id(store, "messages", &old_id, error_r);
			expunges[done] = (struct wd_journal_entry){
				.command = WD_JOURNAL_EXPUNGE, .uid = src_uid, .modseq = source_modseq,
				.has_message = true, .message = old_id, .has_thread = has_thread,
				.thread = thread, .ignore = session_id,
				.unseen = wd__doc_bool(docs[i], "unseen") ? 1 : 0,
			};
		} else {
			quota += wd__doc_int64(docs[i], "size");
			ret = set_copied(store, source, &old_id, error_r);
		}
		map[2 * done] = src_uid;
		map[2 * done + 1] = uid;
		done++;
	}
	if (quota != 0) {
		char *e = NULL;
		if (wd__store_change_quota(store, &dst_box.user, quota, &e) < 0) {
			wd_error("store", "quota not updated after COPY: %s", e);
			free(e);
		}
	}
	char *journal_error = NULL;
	if (done > 0 &&
	    wd_store_journal_add(store, target, exists, done, NULL, &journal_error) < 0) {
		wd_warning("store", "journal entries for COPY failed: %s", journal_error);
		free(journal_error);
		journal_error = NULL;
	}
	if (move && done > 0 &&
	    wd__store_journal_add_for(store, source, &src_box.user, expunges, done, NULL,
				      &journal_error) < 0) {
		wd_warning("store", "journal entries for MOVE failed: %s", journal_error);
		free(journal_error);
	}
	if (done > 0) {
		wd_store_notify(store, &dst_box.user);
		if (!bson_oid_equal(&dst_box.user, &src_box.user))
			wd_store_notify(store, &src_box.user);
	}
	wd__store_write_unlock(store, &write_lock);
	free(exists);
	free(expunges);
	free_docs(docs, count);
	*uid_map_r = map;
	*count_r = done;
	return ret;
}

/* Deletes one message document: first a copy into `archived` (exp, rdate in
   25 days) when `archive`, which keeps its attachment references; otherwise
   the references are released. Quota and journal are the caller's. */
static int remove_message(struct wd_store *store, const bson_t *doc, bool archive, int64_t now,
			  char **error_r)
{
	bson_oid_t id;
	wd__doc_oid(doc, "_id", &id);
	if (archive) {
		bson_t archived;
		bson_init(&archived);
		bson_iter_t iter;
		bson_iter_init(&iter, doc);
		while (bson_iter_next(&iter)) {
			const char *key = bson_iter_key(&iter);
			if (strcmp(key, "exp") != 0 && strcmp(key, "rdate") != 0)
				bson_append_value(&archived, key, -1, bson_iter_value(&iter));
		}
		BSON_APPEND_DATE_TIME(&archived, "archived", now);
		BSON_APPEND_BOOL(&archived, "exp", true);
		BSON_APPEND_DOUBLE(&archived, "rdate", (double)(now + ARCHIVE_TIME_MS));
		int ret = insert_doc(store, "archived", &archived, error_r);
		bson_destroy(&archived);
		if (ret < 0)
			return WD_ERROR;
	}
	if (delete_by_id(store, "messages", &id, error_r) < 0)
		return WD_ERROR;
	if (!archive)
		release_attachments(store, doc);
	return WD_OK;
}

int wd_store_message_expunge(struct wd_store *store, const bson_oid_t *mailbox,
			     const uint32_t *uids, size_t uid_count, const char *session_id,
			     uint32_t **expunged_r, size_t *count_r, char **error_r)
{
	*expunged_r = NULL;
	*count_r = 0;
	struct wd__mailbox_info mbox;
	if (wd__store_mailbox_info(store, mailbox, &mbox, error_r) < 0)
		return WD_ERROR;
	struct wd_store_write_lock write_lock;
	if (wd__store_write_lock(store, mailbox, 2 * 60 * 1000, 60 * 1000, &write_lock, error_r) < 0)
		return WD_ERROR;
	bson_t *extra = BCON_NEW("undeleted", BCON_BOOL(false));
	bson_t **docs;
	size_t count;
	int ret = load_messages(store, mailbox, uids, uids != NULL ? uid_count : 0, extra, &docs,
				&count, error_r);
	bson_destroy(extra);
	if (ret < 0) {
		wd__store_write_unlock(store, &write_lock);
		return WD_ERROR;
	}
	uint32_t *expunged = calloc(count + 1, sizeof(*expunged));
	struct wd_journal_entry *entries = calloc(count + 1, sizeof(*entries));
	size_t done = 0;
	int64_t freed = 0, now = wd__now_ms();
	for (size_t i = 0; i < count && ret == WD_OK; i++) {
		bson_oid_t id, thread;
		wd__doc_oid(docs[i], "_id", &id);
		const char *flags[MAX_FLAGS];
		size_t flag_count = doc_flags(docs[i], flags, MAX_FLAGS);
		bool archive = !list_has(flags, flag_count, "\\Draft") && !wd__doc_bool(docs[i], "copied");
		if (remove_message(store, docs[i], archive, now, error_r) < 0) {
			ret = WD_ERROR;
			break;
		}
		freed += wd__doc_int64(docs[i], "size");
		uint32_t uid = (uint32_t)wd__doc_int64(docs[i], "uid");
		entries[done] = (struct wd_journal_entry){
			.command = WD_JOURNAL_EXPUNGE, .uid = uid, .has_message = true, .message = id,
			.has_thread = wd__doc_oid(docs[i], "thread", &thread), .thread = thread,
			.ignore = session_id, .unseen = wd__doc_bool(docs[i], "unseen") ? 1 : 0,
		};
		expunged[done++] = uid;
	}
	if (freed != 0) {
		char *e = NULL;
		if (wd__store_change_quota(store, &mbox.user, -freed, &e) < 0) {
			wd_error("store", "quota not updated after EXPUNGE: %s", e);
			free(e);
		}
	}
	if (done > 0) {
		char *journal_error = NULL;
		if (wd_store_journal_add(store, mailbox, entries, done, NULL, &journal_error) < 0) {
			wd_warning("store", "journal entries for EXPUNGE failed: %s", journal_error);
			free(journal_error);
		}
		wd_store_notify(store, &mbox.user);
	}
	wd__store_write_unlock(store, &write_lock);
	free(entries);
	free_docs(docs, count);
	*expunged_r = expunged;
	*count_r = done;
	return ret;
}

/* Documents of `collection` with exp = true and rdate <= now, at most
   `limit` (all documents of every user: this is the GC's query). */
static int load_expired(struct wd_store *store, const char *collection, int64_t now,
			unsigned limit, bson_t ***docs_r, size_t *count_r, char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, collection);
	bson_t *query = BCON_NEW("exp", BCON_BOOL(true), "rdate", "{", "$lte",
				 BCON_DOUBLE((double)now), "}");
	bson_t *opts = BCON_NEW("limit", BCON_INT64(limit));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	size_t count = 0;
	bson_t **docs = calloc(limit + 1, sizeof(*docs));
	while (docs != NULL && count < limit && mongoc_cursor_next(cursor, &doc))
		docs[count++] = bson_copy(doc);
	bson_error_t error;
	int ret = WD_OK;
	if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__store_error("cannot list expired %s: %s", collection, error.message);
		ret = WD_ERROR;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	*docs_r = docs;
	*count_r = count;
	return ret;
}

int wd_store_retention_gc(struct wd_store *store, int64_t now, unsigned limit,
			  struct wd_retention_report *report, char **error_r)
{
	memset(report, 0, sizeof(*report));
	bson_t **docs;
	size_t count;
	if (load_expired(store, "messages", now, limit, &docs, &count, error_r) < 0)
		return WD_ERROR;
	int ret = WD_OK;
	for (size_t i = 0; i < count && ret == WD_OK; i++) {
		bson_oid_t mailbox, user, id, thread;
		if (!wd__doc_oid(docs[i], "mailbox", &mailbox) || !wd__doc_oid(docs[i], "user", &user))
			continue;
		wd__doc_oid(docs[i], "_id", &id);
		struct wd_store_write_lock write_lock;
		if (wd__store_write_lock(store, &mailbox, 2 * 60 * 1000, 60 * 1000, &write_lock,
					 error_r) < 0) {
			ret = WD_ERROR;
			break;
		}
		/* WildDuck's rule: messages of deleted users and copied ones are
		   not archived */
		bool archive = !wd__doc_bool(docs[i], "userDeleted") && !wd__doc_bool(docs[i], "copied");
		ret = remove_message(store, docs[i], archive, now, error_r);
		wd__store_write_unlock(store, &write_lock);
		if (ret < 0)
			break;
		char *e = NULL;
		if (wd__store_change_quota(store, &user, -wd__doc_int64(docs[i], "size"), &e) < 0) {
			wd_error("store", "quota not updated by retention GC: %s", e);
			free(e);
		}
		struct wd_journal_entry entry = {
			.command = WD_JOURNAL_EXPUNGE, .uid = (uint32_t)wd__doc_int64(docs[i], "uid"),
			.has_message = true, .message = id,
			.has_thread = wd__doc_oid(docs[i], "thread", &thread), .thread = thread,
			.unseen = wd__doc_bool(docs[i], "unseen") ? 1 : 0,
		};
		if (wd_store_journal_add(store, &mailbox, &entry, 1, NULL, &e) < 0) {
			wd_warning("store", "journal entry for an expired message failed: %s", e);
			free(e);
		}
		wd_store_notify(store, &user);
		report->expired++;
		if (archive)
			report->archived++;
	}
	free_docs(docs, count);
	if (ret < 0)
		return ret;

	if (load_expired(store, "archived", now, limit, &docs, &count, error_r) < 0)
		return WD_ERROR;
	for (size_t i = 0; i < count && ret == WD_OK; i++) {
		bson_oid_t id;
		wd__doc_oid(docs[i], "_id", &id);
		if (delete_by_id(store, "archived", &id, error_r) < 0) {
			ret = WD_ERROR;
			break;
		}
		release_attachments(store, docs[i]);
		report->purged++;
	}
	free_docs(docs, count);
	if (report->expired + report->purged > 0)
		wd_info("store", "retention: %u messages expired (%u archived), %u archived purged",
			report->expired, report->archived, report->purged);
	return ret;
}
