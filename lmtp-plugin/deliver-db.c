/* The few documents delivery reads itself (forwarded addresses, settings,
 * autoreplies, domain access lists; users and mailboxes come through
 * libwdstore), and typed reads of their fields with JavaScript's leniency:
 * any number type is a number, bool() is truthiness. */
#include "deliver-private.h"
#include "wd-log.h"
#include "wd-store-user.h"
#include "wd-store.h"

#include <string.h>

int wd__deliver_find_one(struct wd_store *store, enum wd_store_db db, const char *collection,
			 const bson_t *query, bson_t **doc_r)
{
	mongoc_client_t *client = wd_store_client(store, db);
	mongoc_collection_t *coll = wd_store_collection(store, client, db, collection);
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	bson_error_t error;
	int ret = WD_STORE_ERR_NOT_FOUND;
	*doc_r = NULL;
	if (mongoc_cursor_next(cursor, &doc)) {
		*doc_r = bson_copy(doc);
		ret = WD_STORE_OK;
	} else if (mongoc_cursor_error(cursor, &error)) {
		wd_warning(DELIVER_LOG, "cannot read %s: %s", collection, error.message);
		ret = WD_STORE_ERR_DATABASE;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
	return ret;
}

int64_t wd__deliver_doc_int(const bson_t *doc, const char *key, int64_t def)
{
	bson_iter_t iter;
	if (doc == NULL || !bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_NUMBER(&iter))
		return def;
	return bson_iter_as_int64(&iter);
}

const char *wd__deliver_doc_str(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (doc == NULL || !bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_UTF8(&iter))
		return NULL;
	return bson_iter_utf8(&iter, NULL);
}

bool wd__deliver_doc_bool(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	return doc != NULL && bson_iter_init_find(&iter, doc, key) && bson_iter_as_bool(&iter);
}

const bson_oid_t *wd__deliver_doc_oid(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (doc == NULL || !bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_OID(&iter))
		return NULL;
	return bson_iter_oid(&iter);
}

bool wd__deliver_doc_sub(const bson_t *doc, const char *key, bool array, bson_t *sub_r)
{
	bson_iter_t iter;
	uint32_t len;
	const uint8_t *data;
	if (doc == NULL || !bson_iter_init_find(&iter, doc, key))
		return false;
	if (array && BSON_ITER_HOLDS_ARRAY(&iter))
		bson_iter_array(&iter, &len, &data);
	else if (!array && BSON_ITER_HOLDS_DOCUMENT(&iter))
		bson_iter_document(&iter, &len, &data);
	else
		return false;
	return bson_init_static(sub_r, data, len);
}
