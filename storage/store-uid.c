/* UID and MODSEQ allocation (reference §4.1): atomic $inc on the mailbox
 * document, read back in the same operation. Counters are int32 in
 * WildDuck's documents; $inc keeps the stored type. */
#include "wd-store-journal.h"
#include "store-private.h"
#include "wd-result.h"

static int mailbox_inc(struct wd_store *store, const bson_oid_t *mailbox, bool uid, bool modseq,
		       bool return_after, bson_t *doc_r, char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "mailboxes");
	bson_t *query = BCON_NEW("_id", BCON_OID(mailbox));
	bson_t update = BSON_INITIALIZER, inc;
	bson_append_document_begin(&update, "$inc", -1, &inc);
	if (uid)
		BSON_APPEND_INT32(&inc, "uidNext", 1);
	if (modseq)
		BSON_APPEND_INT32(&inc, "modifyIndex", 1);
	bson_append_document_end(&update, &inc);
	mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new();
	mongoc_find_and_modify_opts_set_update(opts, &update);
	mongoc_find_and_modify_opts_set_flags(opts, return_after ? MONGOC_FIND_AND_MODIFY_RETURN_NEW :
								   MONGOC_FIND_AND_MODIFY_NONE);
	bson_t reply;
	bson_error_t error;
	bool ok = mongoc_collection_find_and_modify_with_opts(coll, query, opts, &reply, &error);
	int ret = WD_OK;
	bson_iter_t iter;
	if (!ok) {
		*error_r = wd__store_error("mailbox counter update failed: %s", error.message);
		ret = WD_ERROR;
	} else if (!bson_iter_init_find(&iter, &reply, "value") || !BSON_ITER_HOLDS_DOCUMENT(&iter)) {
		*error_r = wd__store_error("mailbox does not exist");
		ret = WD_ERROR;
	} else {
		uint32_t len;
		const uint8_t *data;
		bson_iter_document(&iter, &len, &data);
		bson_t view;
		bson_init_static(&view, data, len);
		bson_copy_to(&view, doc_r);
	}
	bson_destroy(&reply);
	mongoc_find_and_modify_opts_destroy(opts);
	bson_destroy(&update);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}

static uint32_t doc_uint32(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key))
		return 0;
	return (uint32_t)bson_iter_as_int64(&iter);
}

/* mailbox_inc under the mailbox update lock (a no-op on MongoDB). */
static int mailbox_inc_locked(struct wd_store *store, const bson_oid_t *mailbox, bool uid,
			      bool modseq, bool return_after, bson_t *doc_r, char **error_r)
{
	struct wd_store_lock lock;
	if (wd__store_mailbox_lock(store, mailbox, &lock, error_r) < 0)
		return WD_ERROR;
	int ret = mailbox_inc(store, mailbox, uid, modseq, return_after, doc_r, error_r);
	wd__store_mailbox_unlock(store, &lock);
	return ret;
}

int wd_store_allocate_uid(struct wd_store *store, const bson_oid_t *mailbox, bool with_modseq,
			  uint32_t *uid_r, uint32_t *modseq_r, char **error_r)
{
	bson_t before;
	if (mailbox_inc_locked(store, mailbox, true, with_modseq, false, &before, error_r) < 0)
		return WD_ERROR;
	*uid_r = doc_uint32(&before, "uidNext");
	*modseq_r = doc_uint32(&before, "modifyIndex") + (with_modseq ? 1 : 0);
	bson_destroy(&before);
	return WD_OK;
}

int wd_store_allocate_modseq(struct wd_store *store, const bson_oid_t *mailbox,
			     uint32_t *modseq_r, char **error_r)
{
	bson_t after;
	if (mailbox_inc_locked(store, mailbox, false, true, true, &after, error_r) < 0)
		return WD_ERROR;
	*modseq_r = doc_uint32(&after, "modifyIndex");
	bson_destroy(&after);
	return WD_OK;
}

int wd__store_allocate_modseq_owner(struct wd_store *store, const bson_oid_t *mailbox,
				    uint32_t *modseq_r, bson_oid_t *user_r, char **error_r)
{
	bson_t after;
	if (mailbox_inc(store, mailbox, false, true, true, &after, error_r) < 0)
		return WD_ERROR;
	*modseq_r = doc_uint32(&after, "modifyIndex");
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, &after, "user") && BSON_ITER_HOLDS_OID(&iter))
		bson_oid_copy(bson_iter_oid(&iter), user_r);
	bson_destroy(&after);
	return WD_OK;
}

int wd__store_mailbox_owner(struct wd_store *store, const bson_oid_t *mailbox,
			    uint32_t *modseq_r, bson_oid_t *user_r, char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "mailboxes");
	bson_t *query = BCON_NEW("_id", BCON_OID(mailbox));
	bson_t *opts = BCON_NEW("projection", "{", "user", BCON_INT32(1), "modifyIndex",
				BCON_INT32(1), "}", "limit", BCON_INT64(1));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	int ret = WD_OK;
	bson_error_t error;
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter;
		*modseq_r = doc_uint32(doc, "modifyIndex");
		if (bson_iter_init_find(&iter, doc, "user") && BSON_ITER_HOLDS_OID(&iter))
			bson_oid_copy(bson_iter_oid(&iter), user_r);
	} else if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__store_error("mailbox lookup failed: %s", error.message);
		ret = WD_ERROR;
	} else {
		*error_r = wd__store_error("mailbox does not exist");
		ret = WD_ERROR;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}
