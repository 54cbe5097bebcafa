/* The `wildduck` mail storage class and its mailboxes (design in
 * wildduck-storage.h and docs/dovecot-storage.md).
 *
 * What is ours and what is Dovecot's: every mailbox slot that touches the
 * data (open, create, delete, rename, STATUS, metadata, sync, IDLE, saving,
 * copying, search, transaction commit) is implemented here over libwdstore;
 * the rest are Dovecot's generic index_* functions, which work on the index
 * this storage keeps in line with MongoDB.
 *
 * Commit is write-through: when a transaction changed flags, keywords or
 * asked for expunges, the sync runs right after the index commit, so the
 * backend has the change (with its MODSEQ, journal entry and wd_events
 * beacon) before imap answers and before notify plugins run.
 *
 * STATUS of a mailbox that is not open is answered from the database (the
 * mailbox document, and for MESSAGES/UNSEEN WildDuck's cached counters in
 * Redis, else one projected pass over its messages) without building an
 * index. */
#include "wildduck-storage.h"

#include "ioloop.h"
#include "mail-copy.h"
#include "mail-index-modseq.h"
#include "mailbox-list-private.h"

#include "wd-store.h"
#include "wd-store-user.h"

#include <hiredis/hiredis.h>

#include <stdlib.h>

static struct event_category event_category_wildduck = {
	.name = "wildduck",
	.parent = &event_category_storage,
};

extern struct mailbox wildduck_mailbox;

enum mail_error wildduck_mail_error(int ret)
{
	switch (ret) {
	case WD_STORE_ERR_NOT_FOUND:
		return MAIL_ERROR_NOTFOUND;
	case WD_STORE_ERR_EXISTS:
		return MAIL_ERROR_EXISTS;
	case WD_STORE_ERR_LIMIT:
		return MAIL_ERROR_LIMIT;
	case WD_STORE_ERR_INVALID:
		return MAIL_ERROR_PARAMS;
	case WD_STORE_ERR_NOT_PERMITTED:
		return MAIL_ERROR_NOTPOSSIBLE;
	default:
		return MAIL_ERROR_TEMP;
	}
}

void wildduck_storage_set_error(struct mail_storage *storage, int ret, char *error)
{
	const char *text = error != NULL ? error : "unknown error";
	enum mail_error kind = wildduck_mail_error(ret);

	if (kind == MAIL_ERROR_TEMP)
		mail_storage_set_critical(storage, "wildduck: %s", text);
	else
		mail_storage_set_error(storage, kind, text);
	free(error);
}

/* ---- storage ---- */

static struct mail_storage *wildduck_storage_alloc(void)
{
	pool_t pool = pool_alloconly_create("wildduck storage", 512);
	struct wildduck_storage *storage = p_new(pool, struct wildduck_storage, 1);

	storage->storage = wildduck_storage;
	storage->storage.pool = pool;
	return &storage->storage;
}

static int wildduck_storage_create(struct mail_storage *_storage, struct mail_namespace *ns,
				   const char **error_r)
{
	struct wildduck_storage *storage = WILDDUCK_STORAGE(_storage);

	storage->wuser = wildduck_user_get(ns->user);
	if (storage->wuser == NULL) {
		*error_r = "wildduck: add the wildduck plugin to mail_plugins";
		return -1;
	}
	if (wildduck_user_connect(storage->wuser, error_r) < 0)
		return -1;
	_storage->unique_root_dir = p_strconcat(_storage->pool, "wildduck:",
						storage->wuser->user_hex, NULL);
	return 0;
}

static void wildduck_storage_get_list_settings(const struct mail_namespace *ns ATTR_UNUSED,
					       struct mailbox_list_settings *set)
{
	if (set->layout == NULL)
		set->layout = WILDDUCK_LIST_NAME;
	if (set->subscription_fname == NULL)
		set->subscription_fname = "subscriptions";
}

static struct mailbox *wildduck_mailbox_alloc(struct mail_storage *storage,
					      struct mailbox_list *list, const char *vname,
					      enum mailbox_flags flags)
{
	pool_t pool = pool_alloconly_create("wildduck mailbox", 2048);
	struct wildduck_mailbox *mbox = p_new(pool, struct wildduck_mailbox, 1);

	mbox->box = wildduck_mailbox;
	mbox->box.pool = pool;
	mbox->box.storage = storage;
	mbox->box.list = list;
	mbox->box.mail_vfuncs = &wildduck_mail_vfuncs;
	index_storage_mailbox_alloc(&mbox->box, vname, flags, MAIL_INDEX_PREFIX);
	mbox->storage = WILDDUCK_STORAGE(storage);
	return &mbox->box;
}

/* ---- mailbox ---- */

/* The mailbox document of box->name: 1 (*doc_r to wd_mailbox_free), 0 not
   found or hidden (WildDuck: hidden mailboxes cannot be selected), -1 error
   set on the storage. */
static int mailbox_doc(struct wildduck_mailbox *mbox, struct wd_mailbox **doc_r)
{
	struct wildduck_user *wuser = mbox->storage->wuser;
	char *error = NULL;
	int ret = wd_store_mailbox_get_by_path(wuser->store, &wuser->user_id, mbox->box.name,
					       doc_r, &error);

	if (ret == WD_STORE_ERR_NOT_FOUND) {
		free(error);
		return 0;
	}
	if (ret < 0) {
		wildduck_storage_set_error(mbox->box.storage, ret, error);
		return -1;
	}
	free(error);
	if ((*doc_r)->hidden) {
		wd_mailbox_free(doc_r);
		return 0;
	}
	return 1;
}

int wildduck_mailbox_lookup(struct wildduck_mailbox *mbox)
{
	struct wd_mailbox *doc = NULL;
	int ret = mailbox_doc(mbox, &doc);

	if (ret <= 0)
		return ret;
	bson_oid_copy(&doc->id, &mbox->id);
	mbox->have_id = TRUE;
	mbox->uid_validity = doc->uid_validity;
	mbox->uid_next = doc->uid_next;
	wd_mailbox_free(&doc);
	return 1;
}

static int wildduck_mailbox_exists(struct mailbox *box, bool auto_boxes ATTR_UNUSED,
				   enum mailbox_existence *existence_r)
{
	int ret = wildduck_mailbox_lookup(WILDDUCK_MAILBOX(box));

	if (ret < 0)
		return -1;
	*existence_r = ret > 0 ? MAILBOX_EXISTENCE_SELECT : MAILBOX_EXISTENCE_NONE;
	return 0;
}

static int wildduck_mailbox_open(struct mailbox *box)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(box);
	int ret = wildduck_mailbox_lookup(mbox);

	if (ret < 0)
		return -1;
	if (ret == 0) {
		mail_storage_set_error(box->storage, MAIL_ERROR_NOTFOUND,
				       T_MAIL_ERR_MAILBOX_NOT_FOUND(box->vname));
		return -1;
	}
	if (index_storage_mailbox_open(box, FALSE) < 0)
		return -1;
	/* the backend's MODSEQs are permanent: track them in every index */
	mail_index_modseq_enable(box->index);
	wildduck_sync_register_ext(mbox);
	return 0;
}

static void wildduck_mailbox_close(struct mailbox *box)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(box);

	timeout_remove(&mbox->to_poll);
	wildduck_meta_cache_free(&mbox->meta);
	index_storage_mailbox_close(box);
}

static int wildduck_mailbox_create(struct mailbox *box, const struct mailbox_update *update,
				   bool directory ATTR_UNUSED)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(box);
	struct wildduck_user *wuser = mbox->storage->wuser;
	struct wd_mailbox_create opts;
	bson_oid_t id;
	char *error = NULL;
	int ret;

	/* WildDuck has no directories: "CREATE a/" makes the mailbox "a",
	   as WildDuck's own server does */
	i_zero(&opts);
	if (box->set != NULL && box->set->special_use != NULL && *box->set->special_use != '\0') {
		/* mailbox { special_use } for an autocreated mailbox */
		const char *first = t_strcut(box->set->special_use, ' ');
		if (strcasecmp(first, "\\Sent") == 0 || strcasecmp(first, "\\Trash") == 0 ||
		    strcasecmp(first, "\\Drafts") == 0 || strcasecmp(first, "\\Junk") == 0)
			opts.special_use = first;
	}
	ret = wd_store_mailbox_create(wuser->store, &wuser->user_id, box->name, &opts, &id, &error);
	if (ret == WD_STORE_ERR_EXISTS && opts.special_use != NULL) {
		/* the user has that special use elsewhere already */
		free(error);
		error = NULL;
		opts.special_use = NULL;
		ret = wd_store_mailbox_create(wuser->store, &wuser->user_id, box->name, &opts,
					      &id, &error);
	}
	if (ret == WD_STORE_ERR_EXISTS) {
		free(error);
		mail_storage_set_error(box->storage, MAIL_ERROR_EXISTS, "Mailbox already exists");
		return -1;
	}
	if (ret < 0) {
		wildduck_storage_set_error(box->storage, ret, error);
		return -1;
	}
	free(error);
	if (update != NULL && update->uid_validity != 0) {
		/* dsync asks for its own UIDVALIDITY: the backend's stays */
		i_debug("wildduck: %s: UIDVALIDITY %u requested, the mailbox keeps its own",
			box->vname, update->uid_validity);
	}
	return 0;
}

static int wildduck_mailbox_update(struct mailbox *box, const struct mailbox_update *update)
{
	if (update->uid_validity != 0 || !guid_128_is_empty(update->mailbox_guid)) {
		mail_storage_set_error(box->storage, MAIL_ERROR_NOTPOSSIBLE,
				       "UIDVALIDITY and mailbox GUID belong to the WildDuck database");
		return -1;
	}
	/* cache decisions and minimums only concern the index */
	return index_storage_mailbox_update(box, update);
}

static int wildduck_mailbox_delete(struct mailbox *box)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(box);
	struct wildduck_user *wuser = mbox->storage->wuser;
	char *error = NULL;
	int ret = mbox->have_id ? 1 : wildduck_mailbox_lookup(mbox);

	if (ret < 0)
		return -1;
	if (ret == 0) {
		mail_storage_set_error(box->storage, MAIL_ERROR_NOTFOUND,
				       T_MAIL_ERR_MAILBOX_NOT_FOUND(box->vname));
		return -1;
	}
	ret = wd_store_mailbox_delete(wuser->store, &wuser->user_id, &mbox->id, &error);
	if (ret < 0) {
		wildduck_storage_set_error(box->storage, ret, error);
		return -1;
	}
	free(error);
	mbox->have_id = FALSE;
	return 0;
}

static int wildduck_mailbox_rename(struct mailbox *src, struct mailbox *dest)
{
	if (src->list->v.rename_mailbox(src->list, src->name, dest->list, dest->name) < 0) {
		mail_storage_copy_list_error(src->storage, src->list);
		return -1;
	}
	return 0;
}

/* STATUS of a mailbox that is not open, from MongoDB. */
#define WILDDUCK_BACKEND_STATUS_ITEMS                                              \
	(STATUS_MESSAGES | STATUS_RECENT | STATUS_UIDNEXT | STATUS_UIDVALIDITY |   \
	 STATUS_UNSEEN | STATUS_HIGHESTMODSEQ)

/* A counter of WildDuck's (total:<id>, unseen:<id>); -1 when absent or
   Redis is down. */
static int64_t counter_get(struct wd_store *store, const char *name, const char *hex)
{
	const char *key = t_strdup_printf("%s:%s", name, hex);
	const char *argv[] = { "GET", key };
	struct redisReply *reply = wd_store_redis_argv(store, 2, argv, NULL);
	int64_t value = -1;

	if (reply != NULL && reply->type == REDIS_REPLY_STRING &&
	    str_to_int64(reply->str, &value) < 0)
		value = -1;
	if (reply != NULL)
		freeReplyObject(reply);
	return value < 0 ? -1 : value;
}

static void counter_set(struct wd_store *store, const char *name, const char *hex, uint32_t value)
{
	const char *argv[] = { "SET", t_strdup_printf("%s:%s", name, hex),
			       t_strdup_printf("%u", value), "EX", "86400" };
	struct redisReply *reply = wd_store_redis_argv(store, 5, argv, NULL);

	if (reply != NULL)
		freeReplyObject(reply);
}

/* MESSAGES and UNSEEN of a mailbox that is not open: WildDuck's cached
   counters in Redis (kept by every writer's journal entries, libwdstore's
   too), else one projected pass over its messages, whose result fills the
   counters for a day, as WildDuck's API does. On FerretDB the pass reads
   the whole collection; the counters make a repeated STATUS free. */
static int backend_counts(struct wildduck_mailbox *mbox, const bson_oid_t *id,
			  struct mailbox_status *status_r)
{
	struct wd_store *store = mbox->storage->wuser->store;
	char hex[25];

	bson_oid_to_string(id, hex);
	int64_t total = counter_get(store, "total", hex);
	int64_t unseen = counter_get(store, "unseen", hex);
	if (total >= 0 && unseen >= 0 && unseen <= total && total <= UINT32_MAX) {
		status_r->messages = (uint32_t)total;
		status_r->unseen = (uint32_t)unseen;
		return 0;
	}

	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
	bson_error_t berror;
	const bson_t *msg;
	bson_iter_t it;
	int ret;

	BSON_APPEND_OID(&filter, "mailbox", id);
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
	BSON_APPEND_INT32(&proj, "_id", 0);
	BSON_APPEND_INT32(&proj, "unseen", 1);
	bson_append_document_end(&opts, &proj);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
	status_r->messages = 0;
	status_r->unseen = 0;
	while (mongoc_cursor_next(cursor, &msg)) {
		status_r->messages++;
		if (bson_iter_init_find(&it, msg, "unseen") && bson_iter_as_bool(&it))
			status_r->unseen++;
	}
	ret = mongoc_cursor_error(cursor, &berror) ? -1 : 0;
	mongoc_cursor_destroy(cursor);
	bson_destroy(&filter);
	bson_destroy(&opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (ret < 0) {
		mail_storage_set_critical(mbox->box.storage, "wildduck: STATUS of %s: %s",
					  mbox->box.vname, berror.message);
		return -1;
	}
	counter_set(store, "total", hex, status_r->messages);
	counter_set(store, "unseen", hex, status_r->unseen);
	return 0;
}

static int backend_status(struct wildduck_mailbox *mbox, enum mailbox_status_items items,
			  struct mailbox_status *status_r)
{
	struct wd_mailbox *doc = NULL;
	int ret = mailbox_doc(mbox, &doc);

	if (ret < 0)
		return -1;
	if (ret == 0) {
		mail_storage_set_error(mbox->box.storage, MAIL_ERROR_NOTFOUND,
				       T_MAIL_ERR_MAILBOX_NOT_FOUND(mbox->box.vname));
		return -1;
	}
	ret = 0;
	status_r->uidvalidity = doc->uid_validity;
	status_r->uidnext = doc->uid_next;
	status_r->highest_modseq = doc->modify_index;
	if (doc->modify_index == 0)
		status_r->nonpermanent_modseqs = TRUE;
	status_r->recent = 0;

	if ((items & (STATUS_MESSAGES | STATUS_UNSEEN)) != 0)
		ret = backend_counts(mbox, &doc->id, status_r);
	wd_mailbox_free(&doc);
	return ret;
}

static int wildduck_mailbox_get_status(struct mailbox *box, enum mailbox_status_items items,
				       struct mailbox_status *status_r)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(box);

	if (items == 0)
		return 0;
	if (!box->opened && (items & ENUM_NEGATE(WILDDUCK_BACKEND_STATUS_ITEMS)) == 0)
		return backend_status(mbox, items, status_r);

	if (index_storage_get_status(box, items, status_r) < 0)
		return -1;
	if ((items & STATUS_HIGHESTMODSEQ) != 0) {
		/* the index is in memory, but the MODSEQs are the backend's
		   and permanent; HIGHESTMODSEQ is the mailbox's modifyIndex */
		status_r->highest_modseq = wildduck_sync_highest_modseq(mbox);
		status_r->nonpermanent_modseqs = status_r->highest_modseq == 0;
		status_r->no_modseq_tracking = FALSE;
	}
	if ((items & STATUS_UIDNEXT) != 0 && mbox->uid_next > status_r->uidnext &&
	    mail_index_view_get_messages_count(box->view) == 0)
		status_r->uidnext = mbox->uid_next;
	return 0;
}

static int wildduck_mailbox_get_metadata(struct mailbox *box, enum mailbox_metadata_items items,
					 struct mailbox_metadata *metadata_r)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(box);

	if ((items & MAILBOX_METADATA_GUID) != 0) {
		if (!mbox->have_id) {
			int ret = wildduck_mailbox_lookup(mbox);
			if (ret <= 0) {
				if (ret == 0)
					mail_storage_set_error(box->storage, MAIL_ERROR_NOTFOUND,
						T_MAIL_ERR_MAILBOX_NOT_FOUND(box->vname));
				return -1;
			}
		}
		/* the 12-byte ObjectId, zero padded */
		memset(metadata_r->guid, 0, sizeof(metadata_r->guid));
		memcpy(metadata_r->guid, mbox->id.bytes, sizeof(mbox->id.bytes));
		items &= ENUM_NEGATE(MAILBOX_METADATA_GUID);
	}
	if (items == 0)
		return 0;
	return index_mailbox_get_metadata(box, items, metadata_r);
}

static int wildduck_transaction_commit(struct mailbox_transaction_context *t,
				       struct mail_transaction_commit_changes *changes_r)
{
	struct mailbox *box = t->box;
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(box);
	int ret = index_transaction_commit(t, changes_r);

	/* write-through: flags, keywords and expunges reach MongoDB now */
	if (ret == 0 && box->opened && !mbox->syncing &&
	    (box->flags & MAILBOX_FLAG_SAVEONLY) == 0 &&
	    mail_index_sync_have_any(box->index, 0)) {
		if (wildduck_sync(mbox, FALSE) < 0)
			ret = -1;
	}
	return ret;
}

static bool wildduck_is_inconsistent(struct mailbox *box)
{
	return index_storage_is_inconsistent(box);
}

struct mail_storage wildduck_storage = {
	.name = WILDDUCK_STORAGE_NAME,
	.class_flags = MAIL_STORAGE_CLASS_FLAG_NO_ROOT | MAIL_STORAGE_CLASS_FLAG_UNIQUE_ROOT |
		       MAIL_STORAGE_CLASS_FLAG_SECONDARY_INDEX |
		       MAIL_STORAGE_CLASS_FLAG_NO_LIST_DELETES,
	.event_category = &event_category_wildduck,
	.v = {
		.alloc = wildduck_storage_alloc,
		.create = wildduck_storage_create,
		.destroy = index_storage_destroy,
		.get_list_settings = wildduck_storage_get_list_settings,
		.mailbox_alloc = wildduck_mailbox_alloc,
	},
};

struct mailbox wildduck_mailbox = {
	.v = {
		.is_readonly = index_storage_is_readonly,
		.enable = index_storage_mailbox_enable,
		.exists = wildduck_mailbox_exists,
		.open = wildduck_mailbox_open,
		.close = wildduck_mailbox_close,
		.free = index_storage_mailbox_free,
		.create_box = wildduck_mailbox_create,
		.update_box = wildduck_mailbox_update,
		.delete_box = wildduck_mailbox_delete,
		.rename_box = wildduck_mailbox_rename,
		.get_status = wildduck_mailbox_get_status,
		.get_metadata = wildduck_mailbox_get_metadata,
		.set_subscribed = index_storage_set_subscribed,
		.attribute_set = index_storage_attribute_set,
		.attribute_get = index_storage_attribute_get,
		.attribute_iter_init = index_storage_attribute_iter_init,
		.attribute_iter_next = index_storage_attribute_iter_next,
		.attribute_iter_deinit = index_storage_attribute_iter_deinit,
		.sync_init = wildduck_mailbox_sync_init,
		.sync_next = index_mailbox_sync_next,
		.sync_deinit = index_mailbox_sync_deinit,
		.notify_changes = wildduck_notify_changes,
		.transaction_begin = index_transaction_begin,
		.transaction_commit = wildduck_transaction_commit,
		.transaction_rollback = index_transaction_rollback,
		.mail_alloc = wildduck_mail_alloc,
		.search_init = wildduck_search_init,
		.search_deinit = wildduck_search_deinit,
		.search_next_nonblock = index_storage_search_next_nonblock,
		.search_next_update_seq = wildduck_search_next_update_seq,
		.search_next_match_mail = index_storage_search_next_match_mail,
		.save_alloc = wildduck_save_alloc,
		.save_begin = wildduck_save_begin,
		.save_continue = wildduck_save_continue,
		.save_finish = wildduck_save_finish,
		.save_cancel = wildduck_save_cancel,
		.copy = wildduck_copy,
		.transaction_save_commit_pre = wildduck_transaction_save_commit_pre,
		.transaction_save_commit_post = wildduck_transaction_save_commit_post,
		.transaction_save_rollback = wildduck_transaction_save_rollback,
		.is_inconsistent = wildduck_is_inconsistent,
	},
};
