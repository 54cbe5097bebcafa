/* Mailboxes (reference §2.8, §4.1, §4.16): the documents WildDuck's
 * MailboxHandler and UserHandler.getMailboxes() write, with their BSON
 * types: uidValidity (seconds), uidNext and modifyIndex are int32, retention
 * a JavaScript number (30 days in ms does not fit int32, so Trash and Junk
 * get a double), INBOX's specialUse is null.
 *
 * Differences from WildDuck, on purpose: RENAME moves the children too
 * (reference §9.13), the mailbox limit is "at most 1500" where WildDuck's
 * `count > max` lets a 1501st through, a second mailbox with the same
 * special use is refused, and the mailbox document is updated under the
 * store's mailbox lock because FerretDB's updates are read-modify-write and
 * would otherwise lose a concurrent UID allocation.
 *
 * Journal entries (CREATE/RENAME/DELETE) are written as WildDuck's notifier
 * does so that IMAP sessions of both implementations learn about the
 * change; failing to write them is logged, not fatal: the mailbox change
 * itself has happened. */
#include "store-op.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-fdb.h"
#include "wd-store-journal.h"

#include <stdlib.h>
#include <string.h>

#define DELETED_MAILBOX_RDATE_BACK_MS (24LL * 3600 * 1000)

static const char *const special_uses[] = { "\\Sent", "\\Trash", "\\Drafts", "\\Junk" };
static const char *const english_names[] = { "Sent Mail", "Trash", "Drafts", "Junk" };

static bool special_use_valid(const char *special_use)
{
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(special_use, special_uses[i]) == 0)
			return true;
	}
	return false;
}

static void append_empty_array(bson_t *doc, const char *key)
{
	bson_t array;
	bson_append_array_begin(doc, key, -1, &array);
	bson_append_array_end(doc, &array);
}

/* Normalised and validated path into *path_r. */
static int path_prepare(const char *path, char **path_r, char **error_r)
{
	const char *error;
	*path_r = wd_mailbox_path_normalize(path);
	if (*path_r == NULL)
		return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	int ret = wd_mailbox_path_validate(*path_r, &error);
	if (ret < 0) {
		free(*path_r);
		*path_r = NULL;
		return wd__fail(error_r, ret, "%s", error);
	}
	return WD_STORE_OK;
}

int wd__mailbox_default_docs(const bson_oid_t *user, const char *const names[4],
			     int64_t retention, bson_t *docs[WD__DEFAULT_MAILBOXES],
			     bson_oid_t ids[WD__DEFAULT_MAILBOXES], char **error_r)
{
	char *paths[WD__DEFAULT_MAILBOXES] = { NULL };
	int ret = WD_STORE_OK;
	paths[0] = strdup("INBOX");
	for (size_t i = 0; i < 4 && ret == WD_STORE_OK; i++) {
		const char *name = names[i] != NULL && names[i][0] != '\0' ? names[i] :
									     english_names[i];
		ret = path_prepare(name, &paths[i + 1], error_r);
		for (size_t j = 0; ret == WD_STORE_OK && j <= i; j++) {
			if (strcmp(paths[i + 1], paths[j]) == 0)
				ret = wd__fail(error_r, WD_STORE_ERR_INVALID,
					       "duplicate mailbox name: %s", paths[j]);
		}
	}
	if (ret < 0) {
		for (size_t i = 0; i < WD__DEFAULT_MAILBOXES; i++)
			free(paths[i]);
		return ret;
	}
	/* one uidValidity for all five, as getMailboxes() computes it once */
	int32_t uid_validity = (int32_t)(wd__now_ms() / 1000);
	for (size_t i = 0; i < WD__DEFAULT_MAILBOXES; i++) {
		bson_t *doc = bson_new();
		const char *special_use = i == 0 ? NULL : special_uses[i - 1];
		bson_oid_init(&ids[i], NULL);
		BSON_APPEND_OID(doc, "_id", &ids[i]);
		BSON_APPEND_UTF8(doc, "path", paths[i]);
		wd__append_utf8_or_null(doc, "specialUse", special_use);
		BSON_APPEND_INT32(doc, "uidValidity", uid_validity);
		BSON_APPEND_INT32(doc, "uidNext", 1);
		BSON_APPEND_INT32(doc, "modifyIndex", 0);
		BSON_APPEND_BOOL(doc, "subscribed", true);
		append_empty_array(doc, "flags");
		BSON_APPEND_OID(doc, "user", user);
		int64_t mailbox_retention = retention;
		if (special_use != NULL &&
		    (strcmp(special_use, "\\Trash") == 0 || strcmp(special_use, "\\Junk") == 0))
			mailbox_retention = retention > 0 && retention < WD_JUNK_RETENTION_MS ?
						    retention :
						    WD_JUNK_RETENTION_MS;
		wd__append_js_number(doc, "retention", mailbox_retention);
		docs[i] = doc;
		free(paths[i]);
	}
	return WD_STORE_OK;
}

/* ---- reading ---- */

static void mailbox_from_bson(const bson_t *doc, struct wd_mailbox *mb)
{
	memset(mb, 0, sizeof(*mb));
	wd__doc_oid(doc, "_id", &mb->id);
	wd__doc_oid(doc, "user", &mb->user);
	mb->path = wd__doc_strdup(doc, "path");
	mb->special_use = wd__doc_strdup(doc, "specialUse");
	mb->uid_validity = (uint32_t)wd__doc_int64(doc, "uidValidity");
	mb->uid_next = (uint32_t)wd__doc_int64(doc, "uidNext");
	mb->modify_index = (uint64_t)wd__doc_int64(doc, "modifyIndex");
	mb->subscribed = wd__doc_bool(doc, "subscribed");
	mb->hidden = wd__doc_bool(doc, "hidden");
	mb->encrypt_messages = wd__doc_bool(doc, "encryptMessages");
	mb->retention = wd__doc_int64(doc, "retention");
	bson_iter_t iter, child;
	if (bson_iter_init_find(&iter, doc, "flags") && BSON_ITER_HOLDS_ARRAY(&iter) &&
	    bson_iter_recurse(&iter, &child)) {
		size_t n = 0;
		bson_iter_t count = child;
		while (bson_iter_next(&count))
			n++;
		mb->flags = calloc(n + 1, sizeof(*mb->flags));
		while (mb->flags != NULL && bson_iter_next(&child)) {
			if (BSON_ITER_HOLDS_UTF8(&child))
				mb->flags[mb->flag_count++] = strdup(bson_iter_utf8(&child, NULL));
		}
	}
}

static void mailbox_clear(struct wd_mailbox *mb)
{
	free(mb->path);
	free(mb->special_use);
	for (size_t i = 0; i < mb->flag_count; i++)
		free(mb->flags[i]);
	free(mb->flags);
	memset(mb, 0, sizeof(*mb));
}

void wd_mailbox_free(struct wd_mailbox **_mailbox)
{
	struct wd_mailbox *mailbox = *_mailbox;
	if (mailbox == NULL)
		return;
	*_mailbox = NULL;
	mailbox_clear(mailbox);
	free(mailbox);
}

void wd_mailbox_list_free(struct wd_mailbox_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		mailbox_clear(&list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static int mailbox_find(struct wd_store *store, const bson_t *query, struct wd_mailbox **mailbox_r,
			char **error_r)
{
	struct wd__coll c;
	bson_t doc;
	*mailbox_r = NULL;
	/* FerretDB/SQLite: {user, path} found in SQLite's index, read by _id */
	bool found;
	bson_oid_t id;
	bson_t *by_id = NULL;
	int fret = wd_store_fdb_find_id(store, "mailboxes", query, &found, &id);
	if (fret == WD_OK && !found)
		return wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "mailbox does not exist");
	if (fret == WD_OK)
		query = by_id = BCON_NEW("_id", BCON_OID(&id));
	int ret = wd__find_one(wd__coll_open(&c, store, WD_STORE_DB_MAIN, "mailboxes"), query, NULL,
			       &doc, error_r);
	wd__coll_close(&c);
	if (by_id != NULL)
		bson_destroy(by_id);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		return wd__fail(error_r, ret, "mailbox does not exist");
	if (ret < 0)
		return ret;
	*mailbox_r = calloc(1, sizeof(**mailbox_r));
	if (*mailbox_r == NULL) {
		bson_destroy(&doc);
		return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	}
	mailbox_from_bson(&doc, *mailbox_r);
	bson_destroy(&doc);
	return WD_STORE_OK;
}

int wd_store_mailbox_get_by_path(struct wd_store *store, const bson_oid_t *user_id,
				 const char *path, struct wd_mailbox **mailbox_r, char **error_r)
{
	*mailbox_r = NULL;
	char *normalized = wd_mailbox_path_normalize(path);
	if (normalized == NULL)
		return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	bson_t *query = BCON_NEW("user", BCON_OID(user_id), "path", BCON_UTF8(normalized));
	int ret = mailbox_find(store, query, mailbox_r, error_r);
	bson_destroy(query);
	free(normalized);
	return ret;
}

int wd_store_mailbox_get_by_id(struct wd_store *store, const bson_oid_t *user_id,
			       const bson_oid_t *mailbox_id, struct wd_mailbox **mailbox_r,
			       char **error_r)
{
	bson_t *query = BCON_NEW("_id", BCON_OID(mailbox_id));
	if (user_id != NULL)
		BSON_APPEND_OID(query, "user", user_id);
	int ret = mailbox_find(store, query, mailbox_r, error_r);
	bson_destroy(query);
	return ret;
}

int wd_store_mailbox_get_by_special_use(struct wd_store *store, const bson_oid_t *user_id,
					const char *special_use, struct wd_mailbox **mailbox_r,
					char **error_r)
{
	bson_t *query = BCON_NEW("user", BCON_OID(user_id), "specialUse", BCON_UTF8(special_use));
	int ret = mailbox_find(store, query, mailbox_r, error_r);
	bson_destroy(query);
	return ret;
}

int wd_store_mailbox_list(struct wd_store *store, const bson_oid_t *user_id, unsigned flags,
			  struct wd_mailbox_list *list_r, char **error_r)
{
	memset(list_r, 0, sizeof(*list_r));
	bson_t *query = BCON_NEW("user", BCON_OID(user_id));
	if ((flags & WD_MAILBOX_LIST_SUBSCRIBED) != 0)
		BSON_APPEND_BOOL(query, "subscribed", true);
	if ((flags & WD_MAILBOX_LIST_HIDDEN) == 0)
		BCON_APPEND(query, "hidden", "{", "$ne", BCON_BOOL(true), "}");
	bson_t *opts = BCON_NEW("sort", "{", "path", BCON_INT32(1), "}");
	struct wd__coll c;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(
		wd__coll_open(&c, store, WD_STORE_DB_MAIN, "mailboxes"), query, opts, NULL);
	const bson_t *doc;
	size_t alloc = 0;
	int ret = WD_STORE_OK;
	while (mongoc_cursor_next(cursor, &doc)) {
		if (list_r->count == alloc) {
			size_t n = alloc == 0 ? 16 : alloc * 2;
			struct wd_mailbox *items = realloc(list_r->items, n * sizeof(*items));
			if (items == NULL) {
				ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
				break;
			}
			list_r->items = items;
			alloc = n;
		}
		mailbox_from_bson(doc, &list_r->items[list_r->count++]);
	}
	bson_error_t error;
	if (ret == WD_STORE_OK && mongoc_cursor_error(cursor, &error))
		ret = wd__fail_db(error_r, &error, "cannot list mailboxes");
	mongoc_cursor_destroy(cursor);
	wd__coll_close(&c);
	bson_destroy(opts);
	bson_destroy(query);
	if (ret < 0)
		wd_mailbox_list_free(list_r);
	return ret;
}

/* ---- journal ---- */

static void journal_write(struct wd_store *store, const bson_oid_t *mailbox,
			  enum wd_journal_command command, const char *path)
{
	struct wd_journal_entry entry;
	memset(&entry, 0, sizeof(entry));
	entry.command = command;
	entry.path = path;
	entry.unseen = -1;
	char *error = NULL;
	if (wd_store_journal_add(store, mailbox, &entry, 1, NULL, &error) < 0) {
		char hex[25];
		bson_oid_to_string(mailbox, hex);
		wd_warning("store", "mailbox %s: cannot write journal %s entry: %s", hex,
			   wd_journal_command_name(command), error != NULL ? error : "?");
		free(error);
	}
}

/* ---- create ---- */

int wd_store_mailbox_create(struct wd_store *store, const bson_oid_t *user_id, const char *path,
			    const struct wd_mailbox_create *opts, bson_oid_t *mailbox_id_r,
			    char **error_r)
{
	static const struct wd_mailbox_create defaults;
	if (opts == NULL)
		opts = &defaults;
	if (opts->special_use != NULL && !special_use_valid(opts->special_use))
		return wd__fail(error_r, WD_STORE_ERR_INVALID, "unknown special use \"%s\"",
				opts->special_use);
	if (opts->retention < 0)
		return wd__fail(error_r, WD_STORE_ERR_INVALID, "negative retention");
	char *norm;
	int ret = path_prepare(path, &norm, error_r);
	if (ret < 0)
		return ret;

	/* the owner, and its default retention (its value and type as stored) */
	struct wd__coll c;
	bson_t user_doc;
	bson_t *query = BCON_NEW("_id", BCON_OID(user_id));
	bson_t *projection = BCON_NEW("projection", "{", "retention", BCON_INT32(1), "}");
	ret = wd__find_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"), query, projection,
			   &user_doc, error_r);
	wd__coll_close(&c);
	bson_destroy(projection);
	bson_destroy(query);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		ret = wd__fail(error_r, ret, "user does not exist");
	if (ret < 0) {
		free(norm);
		return ret;
	}

	mongoc_collection_t *mailboxes = wd__coll_open(&c, store, WD_STORE_DB_MAIN, "mailboxes");
	bson_t found;
	query = BCON_NEW("user", BCON_OID(user_id), "path", BCON_UTF8(norm));
	ret = wd__find_one(mailboxes, query, NULL, &found, error_r);
	bson_destroy(query);
	if (ret == WD_STORE_OK) {
		bson_destroy(&found);
		ret = wd__fail(error_r, WD_STORE_ERR_EXISTS, "mailbox already exists: %s", norm);
	} else if (ret == WD_STORE_ERR_NOT_FOUND) {
		ret = WD_STORE_OK;
	}
	if (ret == WD_STORE_OK && opts->special_use != NULL) {
		query = BCON_NEW("user", BCON_OID(user_id), "specialUse",
				 BCON_UTF8(opts->special_use));
		ret = wd__find_one(mailboxes, query, NULL, &found, error_r);
		bson_destroy(query);
		if (ret == WD_STORE_OK) {
			bson_destroy(&found);
			ret = wd__fail(error_r, WD_STORE_ERR_EXISTS,
				       "the user already has a %s mailbox", opts->special_use);
		} else if (ret == WD_STORE_ERR_NOT_FOUND) {
			ret = WD_STORE_OK;
		}
	}
	if (ret == WD_STORE_OK) {
		unsigned max = opts->max_mailboxes != 0 ? opts->max_mailboxes : WD_MAX_MAILBOXES;
		bson_error_t error;
		query = BCON_NEW("user", BCON_OID(user_id));
		int64_t count = mongoc_collection_count_documents(mailboxes, query, NULL, NULL, NULL,
								  &error);
		bson_destroy(query);
		if (count < 0)
			ret = wd__fail_db(error_r, &error, "cannot count mailboxes");
		else if (count >= max)
			ret = wd__fail(error_r, WD_STORE_ERR_LIMIT,
				       "mailbox limit reached (%u mailboxes)", max);
	}
	bson_oid_t id;
	if (ret == WD_STORE_OK) {
		bson_t *doc = bson_new();
		bson_oid_init(&id, NULL);
		BSON_APPEND_OID(doc, "_id", &id);
		BSON_APPEND_OID(doc, "user", user_id);
		BSON_APPEND_UTF8(doc, "path", norm);
		if (opts->special_use != NULL)
			BSON_APPEND_UTF8(doc, "specialUse", opts->special_use);
		BSON_APPEND_INT32(doc, "uidValidity", (int32_t)(wd__now_ms() / 1000));
		BSON_APPEND_INT32(doc, "uidNext", 1);
		BSON_APPEND_INT32(doc, "modifyIndex", 0);
		BSON_APPEND_BOOL(doc, "subscribed", true);
		append_empty_array(doc, "flags");
		bson_iter_t iter;
		if (opts->retention > 0)
			wd__append_js_number(doc, "retention", opts->retention);
		else if (bson_iter_init_find(&iter, &user_doc, "retention"))
			bson_append_value(doc, "retention", -1, bson_iter_value(&iter));
		else
			bson_append_null(doc, "retention", -1);
		BSON_APPEND_BOOL(doc, "hidden", opts->hidden);
		BSON_APPEND_BOOL(doc, "encryptMessages", opts->encrypt_messages);
		bson_error_t error;
		if (!mongoc_collection_insert_one(mailboxes, doc, NULL, NULL, &error)) {
			ret = wd__fail_db(error_r, &error, "cannot create mailbox");
			if (ret == WD_STORE_ERR_EXISTS) {
				free(*error_r);
				ret = wd__fail(error_r, ret, "mailbox already exists: %s", norm);
			}
		}
		bson_destroy(doc);
	}
	wd__coll_close(&c);
	bson_destroy(&user_doc);
	if (ret == WD_STORE_OK) {
		journal_write(store, &id, WD_JOURNAL_CREATE, norm);
		wd_store_notify(store, user_id);
		if (mailbox_id_r != NULL)
			bson_oid_copy(&id, mailbox_id_r);
	}
	free(norm);
	return ret;
}

/* ---- subscribe ---- */

/* $set on one mailbox document under the mailbox lock. Matching nothing is
   WD_STORE_ERR_NOT_FOUND. */
static int mailbox_set(struct wd_store *store, const bson_t *filter, const bson_oid_t *mailbox,
		       const bson_t *set, char **error_r)
{
	struct wd_store_lock lock;
	if (wd__doc_lock(store, mailbox, &lock, error_r) < 0)
		return WD_STORE_ERR_DATABASE;
	struct wd__coll c;
	bson_t update = BSON_INITIALIZER, reply;
	BSON_APPEND_DOCUMENT(&update, "$set", set);
	bson_error_t error;
	int ret = WD_STORE_OK;
	if (!mongoc_collection_update_one(wd__coll_open(&c, store, WD_STORE_DB_MAIN, "mailboxes"),
					  filter, &update, NULL, &reply, &error))
		ret = wd__fail_db(error_r, &error, "cannot update mailbox");
	else if (wd__doc_int64(&reply, "matchedCount") == 0)
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "mailbox does not exist");
	wd__coll_close(&c);
	wd__doc_unlock(store, &lock);
	bson_destroy(&reply);
	bson_destroy(&update);
	return ret;
}

int wd_store_mailbox_subscribe(struct wd_store *store, const bson_oid_t *user_id,
			       const char *path, bool subscribed, char **error_r)
{
	struct wd_mailbox *mailbox;
	int ret = wd_store_mailbox_get_by_path(store, user_id, path, &mailbox, error_r);
	if (ret < 0)
		return ret;
	bson_t *filter = BCON_NEW("_id", BCON_OID(&mailbox->id), "user", BCON_OID(user_id));
	bson_t *set = BCON_NEW("subscribed", BCON_BOOL(subscribed));
	ret = mailbox_set(store, filter, &mailbox->id, set, error_r);
	bson_destroy(set);
	bson_destroy(filter);
	wd_mailbox_free(&mailbox);
	return ret;
}

/* ---- rename ---- */

struct rename_item {
	bson_oid_t id;
	char *old_path;
	char *new_path;
	bool done;
};

static int compare_by_old_length(const void *a, const void *b)
{
	size_t la = strlen(((const struct rename_item *)a)->old_path);
	size_t lb = strlen(((const struct rename_item *)b)->old_path);
	return la < lb ? -1 : la > lb;
}

static int rename_one(struct wd_store *store, const bson_oid_t *user_id, const bson_oid_t *id,
		      const char *from, const char *to, char **error_r)
{
	bson_t *filter = BCON_NEW("_id", BCON_OID(id), "user", BCON_OID(user_id), "path",
				  BCON_UTF8(from));
	bson_t *set = BCON_NEW("path", BCON_UTF8(to));
	int ret = mailbox_set(store, filter, id, set, error_r);
	bson_destroy(set);
	bson_destroy(filter);
	return ret;
}

/* All mailboxes of the user as (id, path), for conflict checks. */
static int user_paths(struct wd_store *store, const bson_oid_t *user_id,
		      struct rename_item **items_r, size_t *count_r, char **error_r)
{
	bson_t *query = BCON_NEW("user", BCON_OID(user_id));
	bson_t *opts = BCON_NEW("projection", "{", "path", BCON_INT32(1), "}");
	struct wd__coll c;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(
		wd__coll_open(&c, store, WD_STORE_DB_MAIN, "mailboxes"), query, opts, NULL);
	const bson_t *doc;
	size_t count = 0, alloc = 0;
	struct rename_item *items = NULL;
	int ret = WD_STORE_OK;
	while (mongoc_cursor_next(cursor, &doc)) {
		if (count == alloc) {
			alloc = alloc == 0 ? 32 : alloc * 2;
			struct rename_item *n = realloc(items, alloc * sizeof(*n));
			if (n == NULL) {
				ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
				break;
			}
			items = n;
		}
		struct rename_item *item = &items[count];
		memset(item, 0, sizeof(*item));
		wd__doc_oid(doc, "_id", &item->id);
		item->old_path = wd__doc_strdup(doc, "path");
		if (item->old_path == NULL)
			item->old_path = strdup("");
		count++;
	}
	bson_error_t error;
	if (ret == WD_STORE_OK && mongoc_cursor_error(cursor, &error))
		ret = wd__fail_db(error_r, &error, "cannot list mailboxes");
	mongoc_cursor_destroy(cursor);
	wd__coll_close(&c);
	bson_destroy(opts);
	bson_destroy(query);
	*items_r = items;
	*count_r = count;
	return ret;
}

static void rename_items_free(struct rename_item *items, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(items[i].old_path);
		free(items[i].new_path);
	}
	free(items);
}

int wd_store_mailbox_rename(struct wd_store *store, const bson_oid_t *user_id,
			    const bson_oid_t *mailbox_id, const char *new_path, unsigned *renamed_r,
			    char **error_r)
{
	if (renamed_r != NULL)
		*renamed_r = 0;
	char *target;
	int ret = path_prepare(new_path, &target, error_r);
	if (ret < 0)
		return ret;
	struct wd_mailbox *mailbox;
	ret = wd_store_mailbox_get_by_id(store, user_id, mailbox_id, &mailbox, error_r);
	if (ret < 0) {
		free(target);
		return ret;
	}
	struct rename_item *all = NULL, *movers = NULL;
	size_t all_count = 0, mover_count = 0;
	size_t old_len = strlen(mailbox->path);
	if (strcmp(mailbox->path, "INBOX") == 0 || mailbox->hidden) {
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_PERMITTED, "cannot rename %s",
			       mailbox->hidden ? "a hidden mailbox" : "INBOX");
		goto out;
	}
	if (strncmp(target, mailbox->path, old_len) == 0 && target[old_len] == '/') {
		ret = wd__fail(error_r, WD_STORE_ERR_INVALID,
			       "cannot move a mailbox into itself");
		goto out;
	}
	ret = user_paths(store, user_id, &all, &all_count, error_r);
	if (ret < 0)
		goto out;

	/* the movers: the mailbox itself and everything below it */
	movers = calloc(all_count + 1, sizeof(*movers));
	if (movers == NULL) {
		ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < all_count; i++) {
		const char *path = all[i].old_path;
		bool self = bson_oid_equal(&all[i].id, &mailbox->id);
		if (!self && !(strncmp(path, mailbox->path, old_len) == 0 && path[old_len] == '/'))
			continue;
		struct rename_item *m = &movers[mover_count++];
		m->id = all[i].id;
		m->old_path = strdup(path);
		if (asprintf(&m->new_path, "%s%s", target, self ? "" : path + old_len) < 0)
			m->new_path = NULL;
		if (m->old_path == NULL || m->new_path == NULL) {
			ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
			goto out;
		}
		all[i].done = true; /* marks "moves" */
		const char *error;
		int vret = wd_mailbox_path_validate(m->new_path, &error);
		if (vret < 0) {
			ret = wd__fail(error_r, vret, "%s: %s", m->new_path, error);
			goto out;
		}
	}
	/* a target held by a mailbox that stays is a conflict; one held by a
	   mover is freed before it is needed (shorter paths move first) */
	for (size_t i = 0; i < mover_count; i++) {
		for (size_t j = 0; j < all_count; j++) {
			if (!all[j].done && strcmp(all[j].old_path, movers[i].new_path) == 0) {
				ret = wd__fail(error_r, WD_STORE_ERR_EXISTS,
					       "mailbox already exists: %s", movers[i].new_path);
				goto out;
			}
		}
		if (strcmp(movers[i].new_path, movers[i].old_path) == 0) {
			ret = wd__fail(error_r, WD_STORE_ERR_EXISTS, "mailbox already exists: %s",
				       movers[i].new_path);
			goto out;
		}
	}
	qsort(movers, mover_count, sizeof(*movers), compare_by_old_length);
	for (size_t i = 0; i < mover_count; i++) {
		struct rename_item *m = &movers[i];
		int r = rename_one(store, user_id, &m->id, m->old_path, m->new_path, error_r);
		if (r == WD_STORE_ERR_NOT_FOUND && !bson_oid_equal(&m->id, &mailbox->id)) {
			free(*error_r); /* a child deleted or moved meanwhile: skip it */
			*error_r = NULL;
			continue;
		}
		if (r < 0) {
			/* undo in reverse order; the paths we free are ours again */
			for (size_t j = i; j-- > 0;) {
				char *undo_error = NULL;
				if (movers[j].done &&
				    rename_one(store, user_id, &movers[j].id, movers[j].new_path,
					       movers[j].old_path, &undo_error) < 0) {
					wd_error("store", "rename rollback %s -> %s failed: %s",
						 movers[j].new_path, movers[j].old_path,
						 undo_error != NULL ? undo_error : "?");
				}
				free(undo_error);
			}
			if (r == WD_STORE_ERR_EXISTS) {
				free(*error_r);
				r = wd__fail(error_r, r, "mailbox already exists: %s", m->new_path);
			}
			ret = r;
			goto out;
		}
		m->done = true;
	}
	unsigned renamed = 0;
	for (size_t i = 0; i < mover_count; i++) {
		if (!movers[i].done)
			continue;
		renamed++;
		journal_write(store, &movers[i].id, WD_JOURNAL_RENAME, movers[i].new_path);
	}
	wd_store_notify(store, user_id);
	if (renamed_r != NULL)
		*renamed_r = renamed;
	ret = WD_STORE_OK;
out:
	if (movers != NULL)
		rename_items_free(movers, mover_count);
	if (all != NULL)
		rename_items_free(all, all_count);
	wd_mailbox_free(&mailbox);
	free(target);
	return ret;
}

/* ---- delete ---- */

int wd_store_mailbox_delete(struct wd_store *store, const bson_oid_t *user_id,
			    const bson_oid_t *mailbox_id, char **error_r)
{
	struct wd_mailbox *mailbox;
	int ret = wd_store_mailbox_get_by_id(store, user_id, mailbox_id, &mailbox, error_r);
	if (ret < 0)
		return ret;
	if (mailbox->special_use != NULL || strcmp(mailbox->path, "INBOX") == 0 ||
	    mailbox->hidden) {
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_PERMITTED, "cannot delete %s",
			       mailbox->hidden		      ? "a hidden mailbox" :
			       mailbox->special_use != NULL ? "a special-use mailbox" :
							      "INBOX");
		wd_mailbox_free(&mailbox);
		return ret;
	}
	wd_mailbox_free(&mailbox);

	/* our journal writer reads the owner from the mailbox document, so the
	   DELETE entry goes in while the document still exists */
	journal_write(store, mailbox_id, WD_JOURNAL_DELETE, NULL);

	struct wd_store_lock lock;
	if (wd__doc_lock(store, mailbox_id, &lock, error_r) < 0)
		return WD_STORE_ERR_DATABASE;
	struct wd__coll c;
	bson_error_t error;
	bson_t reply;
	bson_t *filter = BCON_NEW("_id", BCON_OID(mailbox_id), "user", BCON_OID(user_id));
	mongoc_collection_t *coll = wd__coll_open(&c, store, WD_STORE_DB_MAIN, "mailboxes");
	if (!mongoc_collection_delete_one(coll, filter, NULL, &reply, &error))
		ret = wd__fail_db(error_r, &error, "cannot delete mailbox");
	else if (wd__doc_int64(&reply, "deletedCount") == 0)
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "mailbox does not exist");
	bson_destroy(&reply);
	bson_destroy(filter);
	wd__coll_close(&c);
	if (ret == WD_STORE_OK) {
		/* the garbage collector takes these first (WildDuck: now - 24 h,
		   a JavaScript ms number, i.e. a double) */
		filter = BCON_NEW("mailbox", BCON_OID(mailbox_id));
		bson_t *update = BCON_NEW("$set", "{", "exp", BCON_BOOL(true), "rdate",
					  BCON_DOUBLE((double)(wd__now_ms() -
							       DELETED_MAILBOX_RDATE_BACK_MS)),
					  "}");
		coll = wd__coll_open(&c, store, WD_STORE_DB_MAIN, "messages");
		if (!mongoc_collection_update_many(coll, filter, update, NULL, NULL, &error)) {
			char hex[25];
			bson_oid_to_string(mailbox_id, hex);
			wd_error("store", "mailbox %s deleted, but its messages were not marked "
				 "for expiry: %s", hex, error.message);
		}
		wd__coll_close(&c);
		bson_destroy(update);
		bson_destroy(filter);
	}
	wd__doc_unlock(store, &lock);
	if (ret < 0)
		return ret;

	/* filters that file into the mailbox go with it */
	filter = BCON_NEW("user", BCON_OID(user_id), "action.mailbox", BCON_OID(mailbox_id));
	coll = wd__coll_open(&c, store, WD_STORE_DB_MAIN, "filters");
	if (!mongoc_collection_delete_many(coll, filter, NULL, NULL, &error))
		wd_warning("store", "cannot delete the filters of a deleted mailbox: %s",
			   error.message);
	wd__coll_close(&c);
	bson_destroy(filter);
	wd_store_notify(store, user_id);
	return WD_STORE_OK;
}
