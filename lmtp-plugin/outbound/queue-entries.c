/* The sender's side of ZoneMTA's queue (lib/mail-queue.js semantics):
 *
 *   claim    findOneAndUpdate of one entry of our zone that is due
 *            (queued <= now), assigned to nobody ("no") or to our
 *            instanceId, and unlocked, or locked longer ago than
 *            sender.lockTime (its sender crashed): set locked, lockTime
 *            (ms, our token) and assigned. Entries for WildDuck's relay
 *            targets (`mx`, `mxPort`, `mxAuth`, `mxSecure`: another MX) and
 *            HTTP targets (`http`, `targetUrl`) are not ours to send through
 *            the relay; they stay for a ZoneMTA. ZoneMTA relies on MongoDB's
 *            atomic findAndModify; FerretDB 1.x is not atomic there, so the
 *            claim runs under the store's update lock "outbound:<zone>"
 *            (wd-store-update-lock.h; a no-op on MongoDB).
 *   message  the GridFS file "message <id>" of an entry: its metadata
 *            (envelope sender, header lines), then header block + body as
 *            one stream. No file or no metadata: the message was deleted,
 *            so its entries go too (ZoneMTA does the same).
 *   done     delete the entry, then the file when no entry of its id is
 *            left (a dropped message goes the same way).
 *   defer    ZoneMTA's deferDelivery(): _deferred.{first,last,next,count,
 *            response}, queued = now + ttl, locked = false; only while our
 *            lock is still ours.
 *   unlock   give the entry back untouched (stop in the middle).
 *   garbage  ZoneMTA's clearGarbage(): files and chunks older than the
 *            oldest entry minus 10 minutes have no entry left.
 *   defer times  the setting const:sender:defer_times (main database,
 *            WildDuck's settings collection), else ZoneMTA's default list. */
#include "outbound-private.h"
#include "queue-entries.h"
#include "wd-buffer.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-update-lock.h"
#include "wd-store.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG "outbound"
#define GARBAGE_MARGIN_MS (10 * 60 * 1000)
#define READ_TIMEOUT_MS 60000

static const int64_t default_defer_minutes[] = { 5, 7, 8, 25, 75, 120, 240, 240, 240,
						 240, 240, 240, 240, 240, 240, 240, 240 };

static mongoc_collection_t *queue_collection(struct wd_outbound *ob, mongoc_client_t *client)
{
	return wd_store_collection(ob->store, client, WD_STORE_DB_SENDER, ob->set.collection);
}

static mongoc_collection_t *files_collection(struct wd_outbound *ob, mongoc_client_t *client,
					     const char *suffix)
{
	char name[256];
	snprintf(name, sizeof(name), "%s.%s", ob->set.gfs, suffix);
	return wd_store_collection(ob->store, client, WD_STORE_DB_SENDER, name);
}

void wd__queue_entry_clear(struct wd_queue_entry *e)
{
	if (e->has_oid)
		bson_value_destroy(&e->oid);
	free(e->recipient);
	memset(e, 0, sizeof(*e));
}

static bool copy_string(const bson_t *doc, const char *key, char *out, size_t size)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it))
		return false;
	uint32_t len;
	const char *s = bson_iter_utf8(&it, &len);
	if (len >= size)
		return false;
	memcpy(out, s, len + 1);
	return true;
}

static bool entry_from_doc(const bson_t *doc, struct wd_queue_entry *e)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, "_id"))
		return false;
	bson_value_copy(bson_iter_value(&it), &e->oid);
	e->has_oid = true;
	if (!copy_string(doc, "id", e->id, sizeof(e->id)))
		return false;
	if (!copy_string(doc, "seq", e->seq, sizeof(e->seq)))
		snprintf(e->seq, sizeof(e->seq), "?");
	if (bson_iter_init_find(&it, doc, "recipient") && BSON_ITER_HOLDS_UTF8(&it))
		e->recipient = strdup(bson_iter_utf8(&it, NULL));
	if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "_deferred.count", &it) &&
	    BSON_ITER_HOLDS_NUMBER(&it)) {
		e->deferred_count = bson_iter_as_int64(&it);
	}
	e->deferred_before = bson_iter_init_find(&it, doc, "_deferred") &&
			     BSON_ITER_HOLDS_DOCUMENT(&it);
	return e->recipient != NULL;
}

int wd__queue_claim(struct wd_outbound *ob, struct wd_queue_entry *e, bool *found_r,
		    char **error_r)
{
	memset(e, 0, sizeof(*e));
	*found_r = false;
	int64_t now = wd__outbound_now_ms();
	char lock_name[160];
	snprintf(lock_name, sizeof(lock_name), "outbound:%s", ob->set.zone);
	struct wd_store_update_lock *lock = NULL;
	if (wd_store_update_lock(ob->store, lock_name, &lock, error_r) < 0)
		return WD_ERROR;

	bson_t *query = BCON_NEW(
		"sendingZone", BCON_UTF8(ob->set.zone),
		"queued", "{", "$lte", BCON_DATE_TIME(now), "}",
		/* WildDuck's relay (mx…) and HTTP forwarding targets: ZoneMTA's */
		"http", "{", "$ne", BCON_BOOL(true), "}",
		"mx", "{", "$exists", BCON_BOOL(false), "}",
		"$and", "[",
			"{", "$or", "[",
				"{", "assigned", BCON_UTF8("no"), "}",
				"{", "assigned", BCON_UTF8(ob->set.instance_id), "}",
			"]", "}",
			"{", "$or", "[",
				"{", "locked", BCON_BOOL(false), "}",
				"{", "locked", BCON_BOOL(true),
				     "lockTime", "{", "$lt", BCON_DOUBLE((double)(now - ob->set.lock_ms)), "}",
				"}",
			"]", "}",
		"]");
	bson_t *update = BCON_NEW("$set", "{", "locked", BCON_BOOL(true), "lockTime",
				  BCON_DOUBLE((double)now), "assigned",
				  BCON_UTF8(ob->set.instance_id), "}");
	bson_t *sort = BCON_NEW("queued", BCON_INT32(1));
	mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new();
	mongoc_find_and_modify_opts_set_update(opts, update);
	mongoc_find_and_modify_opts_set_sort(opts, sort);
	mongoc_find_and_modify_opts_set_flags(opts, MONGOC_FIND_AND_MODIFY_RETURN_NEW);

	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = queue_collection(ob, client);
	bson_t reply;
	bson_error_t error;
	int ret = WD_OK;
	if (!mongoc_collection_find_and_modify_with_opts(coll, query, opts, &reply, &error)) {
		*error_r = wd__outbound_error("claim: %s", error.message);
		ret = WD_ERROR;
	} else {
		bson_iter_t it;
		if (bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
			uint32_t len;
			const uint8_t *data;
			bson_iter_document(&it, &len, &data);
			bson_t doc;
			bson_init_static(&doc, data, len);
			if (entry_from_doc(&doc, e)) {
				e->lock_time = (double)now;
				*found_r = true;
			} else {
				/* not an entry we can send: keep it locked (it comes back
				   after lockTime) and say so */
				char *json = bson_as_relaxed_extended_json(&doc, NULL);
				wd_warning(LOG, "unusable queue entry skipped: %s", json);
				bson_free(json);
				wd__queue_entry_clear(e);
			}
		}
	}
	bson_destroy(&reply);
	mongoc_collection_destroy(coll);
	wd_store_client_release(ob->store, WD_STORE_DB_SENDER, client);
	mongoc_find_and_modify_opts_destroy(opts);
	bson_destroy(sort);
	bson_destroy(update);
	bson_destroy(query);
	wd_store_update_unlock(ob->store, &lock);
	return ret;
}

/* ---- the message ---- */

void wd__queue_message_clear(struct wd_queued_message *m)
{
	free(m->from);
	free(m->message_id);
	wd_buffer_release(&m->header);
	if (m->has_file_id)
		bson_value_destroy(&m->file_id);
	memset(m, 0, sizeof(*m));
}

/* The envelope sender, Message-ID and header block of metadata.data. */
static enum wd_queue_load parse_envelope(const bson_t *envelope, struct wd_queued_message *m,
					 char **error_r)
{
	bson_iter_t it;
	m->from = strdup(bson_iter_init_find(&it, envelope, "from") && BSON_ITER_HOLDS_UTF8(&it)
				 ? bson_iter_utf8(&it, NULL) : "");
	if (bson_iter_init_find(&it, envelope, "messageId") && BSON_ITER_HOLDS_UTF8(&it))
		m->message_id = strdup(bson_iter_utf8(&it, NULL));
	if (m->from == NULL) {
		*error_r = wd__outbound_error("out of memory");
		return WD_QUEUE_TROUBLE;
	}
	if (!bson_iter_init_find(&it, envelope, "headers") || !BSON_ITER_HOLDS_ARRAY(&it)) {
		*error_r = wd__outbound_error("metadata.data.headers is not an array");
		return WD_QUEUE_MALFORMED;
	}
	uint32_t len;
	const uint8_t *bytes;
	bson_iter_array(&it, &len, &bytes);
	bson_t array;
	bson_init_static(&array, bytes, len);
	struct wd_headers h;
	if (wd__headers_from_bson(&array, &h, error_r) < 0)
		return WD_QUEUE_MALFORMED;
	int ret = wd__headers_build(&h, &m->header);
	wd__headers_free(&h);
	if (ret < 0) {
		*error_r = wd__outbound_error("out of memory");
		return WD_QUEUE_TROUBLE;
	}
	const uint8_t *hb = wd_buffer_bytes(&m->header);
	for (size_t i = 0; i < m->header.len && !m->utf8_headers; i++)
		m->utf8_headers = hb[i] >= 0x80;
	return WD_QUEUE_LOADED;
}

enum wd_queue_load wd__queue_message_load(struct wd_outbound *ob, const char *id,
					  struct wd_queued_message *m, char **error_r)
{
	memset(m, 0, sizeof(*m));
	char filename[96];
	snprintf(filename, sizeof(filename), "message %s", id);
	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = files_collection(ob, client, "files");
	bson_t *filter = BCON_NEW("filename", BCON_UTF8(filename));
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	bson_error_t error;
	enum wd_queue_load ret = WD_QUEUE_MISSING;
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, doc, "_id")) {
			bson_value_copy(bson_iter_value(&it), &m->file_id);
			m->has_file_id = true;
		}
		if (bson_iter_init_find(&it, doc, "length") && BSON_ITER_HOLDS_NUMBER(&it))
			m->body_len = (uint64_t)bson_iter_as_int64(&it);
		if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "metadata.data", &it) &&
		    BSON_ITER_HOLDS_DOCUMENT(&it) && m->has_file_id) {
			uint32_t len;
			const uint8_t *bytes;
			bson_iter_document(&it, &len, &bytes);
			bson_t envelope;
			bson_init_static(&envelope, bytes, len);
			ret = parse_envelope(&envelope, m, error_r);
		} else {
			*error_r = wd__outbound_error("the file has no metadata.data");
			ret = WD_QUEUE_MALFORMED;
		}
	} else if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__outbound_error("%s.files: %s", ob->set.gfs, error.message);
		ret = WD_QUEUE_TROUBLE;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(ob->store, WD_STORE_DB_SENDER, client);
	if (ret != WD_QUEUE_LOADED)
		wd__queue_message_clear(m);
	return ret;
}

int wd__queue_reader_open(struct wd_outbound *ob, const struct wd_queued_message *m,
			  struct wd_queue_reader *r, char **error_r)
{
	memset(r, 0, sizeof(*r));
	r->ob = ob;
	r->message = m;
	r->client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	r->bucket = wd__outbound_bucket(ob, r->client, error_r);
	if (r->bucket == NULL) {
		wd__queue_reader_close(r);
		return WD_ERROR;
	}
	bson_error_t error;
	r->stream = mongoc_gridfs_bucket_open_download_stream(r->bucket, &m->file_id, &error);
	if (r->stream == NULL) {
		*error_r = wd__outbound_error("GridFS download: %s", error.message);
		wd__queue_reader_close(r);
		return WD_ERROR;
	}
	return WD_OK;
}

ssize_t wd__queue_reader_read(void *context, uint8_t *buf, size_t len, const char **error_r)
{
	struct wd_queue_reader *r = context;
	const struct wd_queued_message *m = r->message;
	if (r->header_pos < m->header.len) {
		size_t n = m->header.len - r->header_pos;
		if (n > len)
			n = len;
		memcpy(buf, wd_buffer_bytes(&m->header) + r->header_pos, n);
		r->header_pos += n;
		return (ssize_t)n;
	}
	ssize_t n = mongoc_stream_read(r->stream, buf, len, 1, READ_TIMEOUT_MS);
	if (n < 0) {
		bson_error_t error;
		if (mongoc_gridfs_bucket_stream_error(r->stream, &error))
			snprintf(r->error, sizeof(r->error), "%s", error.message);
		else
			snprintf(r->error, sizeof(r->error), "GridFS read failed");
		*error_r = r->error;
		return -1;
	}
	if (n > 0) {
		r->body_read += (uint64_t)n;
		return n;
	}
	if (r->body_read != m->body_len) {
		snprintf(r->error, sizeof(r->error), "GridFS file ended after %llu of %llu bytes",
			 (unsigned long long)r->body_read, (unsigned long long)m->body_len);
		*error_r = r->error;
		return -1;
	}
	return 0;
}

void wd__queue_reader_close(struct wd_queue_reader *r)
{
	if (r->stream != NULL)
		mongoc_stream_destroy(r->stream);
	if (r->bucket != NULL)
		mongoc_gridfs_bucket_destroy(r->bucket);
	if (r->client != NULL)
		wd_store_client_release(r->ob->store, WD_STORE_DB_SENDER, r->client);
	memset(r, 0, sizeof(*r));
}

/* ---- after an attempt ---- */

int wd__queue_release_file(struct wd_outbound *ob, mongoc_client_t *client, const char *id,
			   char **error_r)
{
	mongoc_collection_t *coll = queue_collection(ob, client);
	bson_t *filter = BCON_NEW("id", BCON_UTF8(id));
	bson_error_t error;
	int64_t left = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	if (left < 0) {
		*error_r = wd__outbound_error("%s: %s", ob->set.collection, error.message);
		return WD_ERROR;
	}
	if (left > 0)
		return WD_OK;
	char filename[96];
	snprintf(filename, sizeof(filename), "message %s", id);
	coll = files_collection(ob, client, "files");
	filter = BCON_NEW("filename", BCON_UTF8(filename));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	const bson_t *doc;
	int ret = WD_OK;
	while (ret == WD_OK && mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it;
		if (!bson_iter_init_find(&it, doc, "_id"))
			continue;
		bson_value_t file_id;
		bson_value_copy(bson_iter_value(&it), &file_id);
		char *ignored = NULL;
		/* a concurrent release may have deleted it first: not an error */
		if (wd__outbound_remove_file(ob, client, &file_id, &ignored) < 0)
			wd_debug(LOG, "%s: file removal: %s", id, ignored);
		free(ignored);
		bson_value_destroy(&file_id);
	}
	if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__outbound_error("%s.files: %s", ob->set.gfs, error.message);
		ret = WD_ERROR;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	return ret;
}

int wd__queue_done(struct wd_outbound *ob, const struct wd_queue_entry *e, char **error_r)
{
	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = queue_collection(ob, client);
	bson_t filter = BSON_INITIALIZER;
	BSON_APPEND_VALUE(&filter, "_id", &e->oid);
	bson_error_t error;
	int ret = WD_OK;
	if (!mongoc_collection_delete_one(coll, &filter, NULL, NULL, &error)) {
		*error_r = wd__outbound_error("%s: %s", ob->set.collection, error.message);
		ret = WD_ERROR;
	}
	bson_destroy(&filter);
	mongoc_collection_destroy(coll);
	if (ret == WD_OK)
		ret = wd__queue_release_file(ob, client, e->id, error_r);
	wd_store_client_release(ob->store, WD_STORE_DB_SENDER, client);
	return ret;
}

int wd__queue_forget_message(struct wd_outbound *ob, const char *id, char **error_r)
{
	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = queue_collection(ob, client);
	bson_t *filter = BCON_NEW("id", BCON_UTF8(id));
	bson_error_t error;
	int ret = WD_OK;
	if (!mongoc_collection_delete_many(coll, filter, NULL, NULL, &error)) {
		*error_r = wd__outbound_error("%s: %s", ob->set.collection, error.message);
		ret = WD_ERROR;
	}
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(ob->store, WD_STORE_DB_SENDER, client);
	return ret;
}

/* An update of our entry while our lock holds; *matched_r false when the
   lock was lost (expired and taken by another sender). */
static int update_locked(struct wd_outbound *ob, const struct wd_queue_entry *e,
			 const bson_t *update, bool *matched_r, char **error_r)
{
	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = queue_collection(ob, client);
	bson_t filter = BSON_INITIALIZER;
	BSON_APPEND_VALUE(&filter, "_id", &e->oid);
	BSON_APPEND_BOOL(&filter, "locked", true);
	BSON_APPEND_DOUBLE(&filter, "lockTime", e->lock_time);
	bson_t reply;
	bson_error_t error;
	int ret = WD_OK;
	*matched_r = false;
	if (!mongoc_collection_update_one(coll, &filter, update, NULL, &reply, &error)) {
		*error_r = wd__outbound_error("%s: %s", ob->set.collection, error.message);
		ret = WD_ERROR;
	} else {
		bson_iter_t it;
		*matched_r = bson_iter_init_find(&it, &reply, "matchedCount") &&
			     bson_iter_as_int64(&it) > 0;
	}
	bson_destroy(&reply);
	bson_destroy(&filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(ob->store, WD_STORE_DB_SENDER, client);
	return ret;
}

int wd__queue_defer(struct wd_outbound *ob, const struct wd_queue_entry *e, int64_t ttl_ms,
		    const char *response, bool *matched_r, char **error_r)
{
	int64_t now = wd__outbound_now_ms();
	bson_t update = BSON_INITIALIZER, set, inc;
	bson_append_document_begin(&update, "$set", -1, &set);
	BSON_APPEND_DOUBLE(&set, "_deferred.last", (double)now);
	BSON_APPEND_DOUBLE(&set, "_deferred.next", (double)(now + ttl_ms));
	BSON_APPEND_DATE_TIME(&set, "queued", now + ttl_ms);
	BSON_APPEND_BOOL(&set, "locked", false);
	if (!e->deferred_before)
		BSON_APPEND_DOUBLE(&set, "_deferred.first", (double)now);
	if (response != NULL && response[0] != '\0')
		BSON_APPEND_UTF8(&set, "_deferred.response", response);
	bson_append_document_end(&update, &set);
	bson_append_document_begin(&update, "$inc", -1, &inc);
	BSON_APPEND_INT32(&inc, "_deferred.count", 1);
	bson_append_document_end(&update, &inc);
	int ret = update_locked(ob, e, &update, matched_r, error_r);
	bson_destroy(&update);
	return ret;
}

int wd__queue_unlock(struct wd_outbound *ob, const struct wd_queue_entry *e, char **error_r)
{
	bson_t *update = BCON_NEW("$set", "{", "locked", BCON_BOOL(false), "lockTime",
				  BCON_INT32(0), "}");
	bool matched;
	int ret = update_locked(ob, e, update, &matched, error_r);
	bson_destroy(update);
	return ret;
}

int wd__queue_collect_garbage(struct wd_outbound *ob, char **error_r)
{
	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = queue_collection(ob, client);
	bson_t filter = BSON_INITIALIZER;
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(1),
				"projection", "{", "_id", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
	const bson_t *doc;
	bson_error_t error;
	int64_t until = wd__outbound_now_ms();
	int ret = WD_OK;
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
			until = (int64_t)bson_oid_get_time_t(bson_iter_oid(&it)) * 1000;
		else
			ret = WD_AGAIN; /* not ObjectIds: the ages are unknown, leave everything */
	} else if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__outbound_error("%s: %s", ob->set.collection, error.message);
		ret = WD_ERROR;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	if (ret == WD_OK) {
		until -= GARBAGE_MARGIN_MS;
		bson_oid_t limit;
		bson_oid_init_from_data(&limit, (const uint8_t[12]){ 0 });
		uint32_t secs = BSON_UINT32_TO_BE((uint32_t)(until / 1000));
		memcpy(&limit.bytes[0], &secs, 4);
		const char *parts[] = { "files", "chunks" };
		for (size_t i = 0; i < 2 && ret == WD_OK; i++) {
			coll = files_collection(ob, client, parts[i]);
			bson_t *old = BCON_NEW("_id", "{", "$lte", BCON_OID(&limit), "}");
			bson_t reply;
			if (!mongoc_collection_delete_many(coll, old, NULL, &reply, &error)) {
				*error_r = wd__outbound_error("%s.%s: %s", ob->set.gfs, parts[i],
							      error.message);
				ret = WD_ERROR;
			} else {
				bson_iter_t it;
				if (bson_iter_init_find(&it, &reply, "deletedCount") &&
				    bson_iter_as_int64(&it) > 0)
					wd_info(LOG, "garbage: %lld unreferenced %s.%s documents removed",
						(long long)bson_iter_as_int64(&it), ob->set.gfs, parts[i]);
			}
			bson_destroy(&reply);
			bson_destroy(old);
			mongoc_collection_destroy(coll);
		}
	}
	wd_store_client_release(ob->store, WD_STORE_DB_SENDER, client);
	return ret == WD_AGAIN ? WD_OK : ret;
}

/* "5m, 7m, 2h": numbers with an optional unit (ms, s, m, h, d; none = ms) */
static size_t parse_defer_times(const char *text, int64_t *times, size_t max)
{
	size_t n = 0;
	const char *p = text;
	while (*p != '\0') {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (!isdigit((unsigned char)*p) || n == max)
			return 0;
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		char unit[8] = "";
		size_t ul = 0;
		while (isalpha((unsigned char)*p) && ul < sizeof(unit) - 1)
			unit[ul++] = (char)tolower((unsigned char)*p++);
		unit[ul] = '\0';
		int64_t mult;
		if (ul == 0 || strcmp(unit, "ms") == 0)
			mult = 1;
		else if (strcmp(unit, "s") == 0)
			mult = 1000;
		else if (strcmp(unit, "m") == 0)
			mult = 60 * 1000;
		else if (strcmp(unit, "h") == 0)
			mult = 3600 * 1000;
		else if (strcmp(unit, "d") == 0)
			mult = 86400 * 1000;
		else
			return 0;
		if (v > (unsigned long long)(INT64_MAX / mult) / 2)
			return 0;
		times[n++] = (int64_t)v * mult;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ',' && *p != '\0')
			return 0;
	}
	return n;
}

size_t wd__queue_defer_times(struct wd_outbound *ob, int64_t *times, size_t max)
{
	size_t n = 0;
	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(ob->store, client, WD_STORE_DB_MAIN, "settings");
	bson_t *filter = BCON_NEW("key", BCON_UTF8("const:sender:defer_times"));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	const bson_t *doc;
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, doc, "value") && BSON_ITER_HOLDS_UTF8(&it)) {
			/* WildDuck stores JSON.stringify(value): a quoted string */
			char text[1024];
			snprintf(text, sizeof(text), "%s", bson_iter_utf8(&it, NULL));
			char *t = text;
			size_t len = strlen(t);
			if (len >= 2 && t[0] == '"' && t[len - 1] == '"') {
				t[len - 1] = '\0';
				t++;
			}
			n = parse_defer_times(t, times, max);
			if (n == 0 && t[0] != '\0')
				wd_warning(LOG, "setting const:sender:defer_times \"%s\" is not a list "
					   "of times: using the default", t);
		}
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(ob->store, WD_STORE_DB_MAIN, client);
	if (n == 0) {
		for (n = 0; n < WD_N_ELEMENTS(default_defer_minutes) && n < max; n++)
			times[n] = default_defer_minutes[n] * 60 * 1000;
	}
	return n;
}
