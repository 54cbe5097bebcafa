/* Taking a message back out of the outbound queue before it is sent
 * (wd_outbound_remove, for the API's deleteOutboundMessage), as WildDuck's
 * maildropper.removeFromQueue does it: the queued file names the owner
 * (metadata.data.userId); only the entries no sender has locked are
 * deleted, so a delivery in progress finishes; the file goes with the last
 * entry (wd__queue_release_file). */
#include "outbound-private.h"

#include "wd-result.h"
#include "wd-store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The owner hex of the queued file of `queue_id`: 1 found (owner_r "" when
   it names none), 0 no such file, -1 error. */
static int queued_owner(struct wd_outbound *ob, mongoc_client_t *client, const char *queue_id,
			char owner_r[25], char **error_r)
{
	char files[256], filename[96];
	snprintf(files, sizeof(files), "%s.files", ob->set.gfs);
	snprintf(filename, sizeof(filename), "message %s", queue_id);
	mongoc_collection_t *coll = wd_store_collection(ob->store, client, WD_STORE_DB_SENDER, files);
	bson_t *filter = BCON_NEW("filename", BCON_UTF8(filename));
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	int ret = 0;
	owner_r[0] = '\0';
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter, found;
		ret = 1;
		if (bson_iter_init(&iter, doc) &&
		    bson_iter_find_descendant(&iter, "metadata.data.userId", &found) &&
		    BSON_ITER_HOLDS_UTF8(&found)) {
			uint32_t len;
			const char *hex = bson_iter_utf8(&found, &len);
			if (len == 24)
				memcpy(owner_r, hex, 25);
		}
	}
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__outbound_error("%s: %s", files, error.message);
		ret = -1;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	return ret;
}

int wd_outbound_remove(struct wd_outbound *ob, const char *queue_id, const bson_oid_t *user,
		       int64_t *deleted_r, char **error_r)
{
	*deleted_r = 0;
	if (strlen(queue_id) > 64)
		return WD_OUTBOUND_NO_SUCH_ENTRY;
	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	char owner[25];
	int found = queued_owner(ob, client, queue_id, owner, error_r);
	int ret = found < 0 ? WD_ERROR : found == 0 ? WD_OUTBOUND_NO_SUCH_ENTRY : WD_OK;
	if (ret == WD_OK && user != NULL && owner[0] != '\0') {
		char hex[25];
		bson_oid_to_string(user, hex);
		if (strcmp(hex, owner) != 0)
			ret = WD_OUTBOUND_NOT_OWNER;
	}
	if (ret == WD_OK) {
		mongoc_collection_t *coll = wd_store_collection(ob->store, client, WD_STORE_DB_SENDER,
								ob->set.collection);
		bson_t *filter = BCON_NEW("id", BCON_UTF8(queue_id), "locked", BCON_BOOL(false));
		bson_t reply;
		bson_error_t error;
		if (!mongoc_collection_delete_many(coll, filter, NULL, &reply, &error)) {
			*error_r = wd__outbound_error("%s: %s", ob->set.collection, error.message);
			ret = WD_ERROR;
		} else {
			bson_iter_t iter;
			if (bson_iter_init_find(&iter, &reply, "deletedCount"))
				*deleted_r = bson_iter_as_int64(&iter);
		}
		bson_destroy(&reply);
		bson_destroy(filter);
		mongoc_collection_destroy(coll);
	}
	if (ret == WD_OK)
		ret = wd__queue_release_file(ob, client, queue_id, error_r);
	wd_store_client_release(ob->store, WD_STORE_DB_SENDER, client);
	return ret;
}
