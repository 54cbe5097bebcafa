/* Messages of the wildduck storage: sizes, dates, UIDL and GUID from the
 * `messages` documents, bodies streamed by libwdstore's reader.
 *
 * Flags, keywords and MODSEQ come from the index, which the sync keeps
 * equal to the backend. Everything else Dovecot asks of a message (RFC822
 * size, INTERNALDATE, the Date: header's date, the save date, POP3 UIDL)
 * comes from a small projection of its document, read through the
 * per-mailbox metadata cache below: one cursor in uid order serves a
 * FETCH 1:* or a POP3 LIST of the whole mailbox, instead of one query per
 * message (FerretDB answers only _id lookups from an index). The body is
 * then opened by _id, the lookup FerretDB does answer from an index.
 *
 * Sizes never need the body: messages.size is exactly what BODY[] returns
 * (the stored bytes are CRLF as delivered, so Dovecot's virtual size, the
 * CRLF size, is the same number). */
#include "wildduck-storage.h"

#include "istream.h"

#include "wd-store.h"
#include "wd-store-message.h"

#include <stdlib.h>

/* entries kept before the cache starts over (4.8 MB at 48 bytes each) */
#define WILDDUCK_META_MAX_ENTRIES 100000
/* a cursor this far behind the wanted UID is restarted at it */
#define WILDDUCK_META_MAX_SKIP 5000

struct wildduck_meta_cache {
	struct wildduck_mailbox *mbox;
	ARRAY(struct wildduck_meta) entries; /* ascending uid */

	mongoc_client_t *client;
	mongoc_collection_t *coll;
	mongoc_cursor_t *cursor;
	uint32_t cursor_pos;   /* the cursor has returned every UID below this */
	bool cursor_done;
};

static int64_t iter_time_ms(const bson_iter_t *it)
{
	switch (bson_iter_type(it)) {
	case BSON_TYPE_DATE_TIME:
		return bson_iter_date_time(it);
	case BSON_TYPE_DOUBLE:
		return (int64_t)bson_iter_double(it);
	case BSON_TYPE_INT64:
		return bson_iter_int64(it);
	case BSON_TYPE_INT32:
		return bson_iter_int32(it);
	default:
		return 0;
	}
}

static void meta_cursor_close(struct wildduck_meta_cache *cache)
{
	if (cache->cursor != NULL)
		mongoc_cursor_destroy(cache->cursor);
	if (cache->coll != NULL)
		mongoc_collection_destroy(cache->coll);
	if (cache->client != NULL) {
		wd_store_client_release(cache->mbox->storage->wuser->store, WD_STORE_DB_MAIN,
					cache->client);
	}
	cache->cursor = NULL;
	cache->coll = NULL;
	cache->client = NULL;
	cache->cursor_done = FALSE;
	cache->cursor_pos = 0;
}

void wildduck_meta_cache_reset(struct wildduck_meta_cache *cache)
{
	meta_cursor_close(cache);
	array_clear(&cache->entries);
}

void wildduck_meta_cache_free(struct wildduck_meta_cache **_cache)
{
	struct wildduck_meta_cache *cache = *_cache;

	if (cache == NULL)
		return;
	*_cache = NULL;
	meta_cursor_close(cache);
	array_free(&cache->entries);
	i_free(cache);
}

mongoc_cursor_t *wildduck_messages_cursor(struct wildduck_mailbox *mbox, mongoc_client_t *client,
					  mongoc_collection_t **coll_r, const bson_t *extra,
					  bool with_state, int32_t batch_size)
{
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, child;

	BSON_APPEND_OID(&filter, "mailbox", &mbox->id);
	if (extra != NULL)
		bson_concat(&filter, extra);
	/* on FerretDB a few more fields of a document cost nothing next to
	   reading the document */
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &child);
	BSON_APPEND_INT32(&child, "_id", 1);
	BSON_APPEND_INT32(&child, "uid", 1);
	if (with_state) {
		BSON_APPEND_INT32(&child, "modseq", 1);
		BSON_APPEND_INT32(&child, "flags", 1);
	}
	BSON_APPEND_INT32(&child, "size", 1);
	BSON_APPEND_INT32(&child, "idate", 1);
	BSON_APPEND_INT32(&child, "hdate", 1);
	BSON_APPEND_INT32(&child, "meta.time", 1);
	bson_append_document_end(&opts, &child);
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &child);
	BSON_APPEND_INT32(&child, "uid", 1);
	bson_append_document_end(&opts, &child);
	BSON_APPEND_INT32(&opts, "batchSize", batch_size);

	*coll_r = wd_store_collection(mbox->storage->wuser->store, client, WD_STORE_DB_MAIN,
				      "messages");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(*coll_r, &filter, &opts, NULL);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return cursor;
}

int wildduck_message_doc_by_id(struct wildduck_mailbox *mbox, const bson_oid_t *id, bson_t **doc_r,
			       const char **error_r)
{
	struct wd_store *store = mbox->storage->wuser->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
	const bson_t *doc;
	bson_error_t error;
	bson_iter_t it;
	int ret = 0;

	/* only _id in the filter: FerretDB answers that from an index */
	BSON_APPEND_OID(&filter, "_id", id);
	BSON_APPEND_INT64(&opts, "limit", 1);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
	*doc_r = NULL;
	if (mongoc_cursor_next(cursor, &doc)) {
		if (bson_iter_init_find(&it, doc, "mailbox") && BSON_ITER_HOLDS_OID(&it) &&
		    bson_oid_equal(bson_iter_oid(&it), &mbox->id)) {
			*doc_r = bson_copy(doc);
			ret = 1;
		}
	} else if (mongoc_cursor_error(cursor, &error)) {
		*error_r = t_strdup(error.message);
		ret = -1;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(&filter);
	bson_destroy(&opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}

static void meta_cursor_open(struct wildduck_meta_cache *cache, uint32_t uid)
{
	struct wd_store *store = cache->mbox->storage->wuser->store;
	bson_t extra = BSON_INITIALIZER, child;

	meta_cursor_close(cache);
	/* entries from the old cursor would break the ascending order */
	array_clear(&cache->entries);
	BSON_APPEND_DOCUMENT_BEGIN(&extra, "uid", &child);
	BSON_APPEND_INT64(&child, "$gte", uid);
	bson_append_document_end(&extra, &child);
	cache->client = wd_store_client(store, WD_STORE_DB_MAIN);
	cache->cursor = wildduck_messages_cursor(cache->mbox, cache->client, &cache->coll, &extra,
						 FALSE, 1000);
	bson_destroy(&extra);
	cache->cursor_pos = uid;
}

static void meta_from_doc(const bson_t *doc, struct wildduck_meta *meta_r)
{
	bson_iter_t it;

	i_zero(meta_r);
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
		bson_oid_copy(bson_iter_oid(&it), &meta_r->id);
	if (bson_iter_init_find(&it, doc, "uid") && BSON_ITER_HOLDS_NUMBER(&it))
		meta_r->uid = (uint32_t)bson_iter_as_int64(&it);
	if (bson_iter_init_find(&it, doc, "size") && BSON_ITER_HOLDS_NUMBER(&it) &&
	    bson_iter_as_int64(&it) > 0)
		meta_r->size = (uint64_t)bson_iter_as_int64(&it);
	if (bson_iter_init_find(&it, doc, "idate"))
		meta_r->idate_ms = iter_time_ms(&it);
	if (bson_iter_init_find(&it, doc, "hdate"))
		meta_r->hdate_ms = iter_time_ms(&it);
	else
		meta_r->hdate_ms = meta_r->idate_ms;
	bson_iter_t time_it;
	if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "meta.time", &time_it))
		meta_r->saved_ms = iter_time_ms(&time_it);
	if (meta_r->saved_ms == 0)
		meta_r->saved_ms = meta_r->idate_ms;
}

void wildduck_index_record_from_doc(const bson_t *doc, struct wildduck_index_record *rec_r)
{
	struct wildduck_meta meta;

	meta_from_doc(doc, &meta);
	i_zero(rec_r);
	memcpy(rec_r->id, meta.id.bytes, sizeof(rec_r->id));
	rec_r->valid = 1;
	rec_r->size = meta.size;
	rec_r->idate_ms = meta.idate_ms;
	rec_r->hdate_ms = meta.hdate_ms;
	rec_r->saved_ms = meta.saved_ms;
}

static const struct wildduck_meta *meta_find(struct wildduck_meta_cache *cache, uint32_t uid)
{
	unsigned int count;
	const struct wildduck_meta *entries = array_get(&cache->entries, &count);
	unsigned int lo = 0, hi = count;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		if (entries[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < count && entries[lo].uid == uid ? &entries[lo] : NULL;
}

int wildduck_meta_lookup(struct wildduck_mailbox *mbox, uint32_t uid,
			 const struct wildduck_meta **meta_r, const char **error_r)
{
	struct wildduck_meta_cache *cache = mbox->meta;
	const struct wildduck_meta *found;
	const bson_t *doc;
	bson_error_t error;
	unsigned int skipped = 0;
	bool retried = FALSE;

	if (cache == NULL) {
		cache = mbox->meta = i_new(struct wildduck_meta_cache, 1);
		cache->mbox = mbox;
		i_array_init(&cache->entries, 256);
	}
	if ((found = meta_find(cache, uid)) != NULL) {
		*meta_r = found;
		return 1;
	}
	if (cache->cursor == NULL || uid < cache->cursor_pos ||
	    (cache->cursor_done && uid >= cache->cursor_pos))
		meta_cursor_open(cache, uid);

	for (;;) {
		if (!mongoc_cursor_next(cache->cursor, &doc)) {
			if (mongoc_cursor_error(cache->cursor, &error)) {
				if (!retried) {
					/* an expired server cursor: once more */
					retried = TRUE;
					meta_cursor_open(cache, uid);
					continue;
				}
				*error_r = t_strdup_printf("reading message data: %s",
							   error.message);
				meta_cursor_close(cache);
				return -1;
			}
			cache->cursor_done = TRUE;
			cache->cursor_pos = UINT32_MAX;
			return 0;
		}
		struct wildduck_meta meta;
		meta_from_doc(doc, &meta);
		if (meta.uid == 0 || meta.uid < cache->cursor_pos)
			continue;
		cache->cursor_pos = meta.uid + 1;
		if (array_count(&cache->entries) >= WILDDUCK_META_MAX_ENTRIES)
			array_clear(&cache->entries);
		array_push_back(&cache->entries, &meta);
		if (meta.uid == uid) {
			*meta_r = array_back(&cache->entries);
			return 1;
		}
		if (meta.uid > uid)
			return 0; /* expunged */
		if (++skipped > WILDDUCK_META_MAX_SKIP) {
			/* far ahead: a new cursor from there is cheaper */
			meta_cursor_open(cache, uid);
			skipped = 0;
		}
	}
}

/* The metadata of this mail, or -1 with the error set on the mail (an
   expunged message is marked expunged). The index record imported by the
   sync first; the cursor only for records without it. */
static int mail_meta(struct mail *mail, const struct wildduck_meta **meta_r)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(mail->box);
	const struct wildduck_index_record *rec;
	const void *data;
	const char *error;
	bool expunged;
	int ret;

	if (mail->seq != 0 && mbox->exts_registered) {
		mail_index_lookup_ext(mail->transaction->view, mail->seq, mbox->rec_ext_id, &data,
				      &expunged);
		rec = data;
		if (rec != NULL && rec->valid == 1) {
			struct wildduck_meta *meta = &mbox->meta_from_index;
			meta->uid = mail->uid;
			memcpy(meta->id.bytes, rec->id, sizeof(rec->id));
			meta->size = rec->size;
			meta->idate_ms = rec->idate_ms;
			meta->hdate_ms = rec->hdate_ms;
			meta->saved_ms = rec->saved_ms;
			*meta_r = meta;
			return 0;
		}
	}
	if (mail->uid == 0) {
		mail_set_expunged(mail);
		return -1;
	}
	ret = wildduck_meta_lookup(mbox, mail->uid, meta_r, &error);
	if (ret < 0) {
		mail_set_critical(mail, "wildduck: %s", error);
		return -1;
	}
	if (ret == 0) {
		mail_set_expunged(mail);
		return -1;
	}
	return 0;
}

struct mail *wildduck_mail_alloc(struct mailbox_transaction_context *t,
				 enum mail_fetch_field wanted_fields,
				 struct mailbox_header_lookup_ctx *wanted_headers)
{
	pool_t pool = pool_alloconly_create("mail", 2048);
	struct index_mail *mail = p_new(pool, struct index_mail, 1);

	index_mail_init(mail, t, wanted_fields, wanted_headers, pool, NULL);
	return &mail->mail.mail;
}

static int wildduck_mail_get_received_date(struct mail *_mail, time_t *date_r)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	const struct wildduck_meta *meta;

	if (mail_meta(_mail, &meta) < 0)
		return -1;
	*date_r = mail->data.received_date = (time_t)(meta->idate_ms / 1000);
	return 0;
}

static int wildduck_mail_get_save_date(struct mail *_mail, time_t *date_r)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	const struct wildduck_meta *meta;

	if (mail_meta(_mail, &meta) < 0)
		return -1;
	*date_r = mail->data.save_date = (time_t)(meta->saved_ms / 1000);
	return 1;
}

static int wildduck_mail_get_date(struct mail *_mail, time_t *date_r, int *timezone_r)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	const struct wildduck_meta *meta;

	if (mail_meta(_mail, &meta) < 0)
		return -1;
	/* WildDuck keeps the Date: header as UTC (hdate) */
	*date_r = mail->data.sent_date.time = (time_t)(meta->hdate_ms / 1000);
	*timezone_r = mail->data.sent_date.timezone = 0;
	return 0;
}

static int wildduck_mail_get_physical_size(struct mail *_mail, uoff_t *size_r)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	const struct wildduck_meta *meta;

	if (mail_meta(_mail, &meta) < 0)
		return -1;
	*size_r = mail->data.physical_size = meta->size;
	return 0;
}

static int wildduck_mail_get_virtual_size(struct mail *_mail, uoff_t *size_r)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	const struct wildduck_meta *meta;

	if (mail_meta(_mail, &meta) < 0)
		return -1;
	*size_r = mail->data.virtual_size = meta->size;
	return 0;
}

static int wildduck_mail_get_stream(struct mail *_mail, bool get_body ATTR_UNUSED,
				    struct message_size *hdr_size,
				    struct message_size *body_size, struct istream **stream_r)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(_mail->box);

	if (mail->data.stream == NULL) {
		const struct wildduck_meta *meta;
		struct wd_message_reader *reader;
		struct istream *input;
		char *error = NULL, hex[25];

		if (!mail_stream_access_start(_mail))
			return -1;
		if (mail_meta(_mail, &meta) < 0)
			return -1;
		reader = wd_store_message_open_id(mbox->storage->wuser->store, &meta->id, &error);
		if (reader == NULL) {
			/* gone between the lookup and now: expunged */
			free(error);
			mail_set_expunged(_mail);
			return -1;
		}
		bson_oid_to_string(&meta->id, hex);
		input = i_stream_create_wildduck(reader, t_strdup_printf("wildduck:%s", hex));
		mail->data.stream = input;
		if (mail->mail.v.istream_opened != NULL &&
		    mail->mail.v.istream_opened(_mail, &mail->data.stream) < 0)
			return -1;
	}
	return index_mail_init_stream(mail, hdr_size, body_size, stream_r);
}

static int wildduck_mail_get_special(struct mail *_mail, enum mail_fetch_field field,
				     const char **value_r)
{
	const struct wildduck_meta *meta;
	char hex[25];

	switch (field) {
	case MAIL_FETCH_UIDL_BACKEND:
	case MAIL_FETCH_GUID:
		/* WildDuck's (and wd-server's) POP3 UIDL is the message id */
		if (mail_meta(_mail, &meta) < 0)
			return -1;
		bson_oid_to_string(&meta->id, hex);
		*value_r = p_strdup((INDEX_MAIL(_mail))->mail.data_pool, hex);
		return 0;
	default:
		return index_mail_get_special(_mail, field, value_r);
	}
}

struct mail_vfuncs wildduck_mail_vfuncs = {
	.close = index_mail_close,
	.free = index_mail_free,
	.set_seq = index_mail_set_seq,
	.set_uid = index_mail_set_uid,
	.set_uid_cache_updates = index_mail_set_uid_cache_updates,
	.prefetch = index_mail_prefetch,
	.precache = index_mail_precache,
	.add_temp_wanted_fields = index_mail_add_temp_wanted_fields,

	.get_flags = index_mail_get_flags,
	.get_keywords = index_mail_get_keywords,
	.get_keyword_indexes = index_mail_get_keyword_indexes,
	.get_modseq = index_mail_get_modseq,
	.get_pvt_modseq = index_mail_get_pvt_modseq,
	.get_parts = index_mail_get_parts,
	.get_date = wildduck_mail_get_date,
	.get_received_date = wildduck_mail_get_received_date,
	.get_save_date = wildduck_mail_get_save_date,
	.get_virtual_size = wildduck_mail_get_virtual_size,
	.get_physical_size = wildduck_mail_get_physical_size,
	.get_first_header = index_mail_get_first_header,
	.get_headers = index_mail_get_headers,
	.get_header_stream = index_mail_get_header_stream,
	.get_stream = wildduck_mail_get_stream,
	.get_binary_stream = index_mail_get_binary_stream,
	.get_special = wildduck_mail_get_special,
	.get_backend_mail = index_mail_get_backend_mail,
	.update_flags = index_mail_update_flags,
	.update_keywords = index_mail_update_keywords,
	.update_modseq = index_mail_update_modseq,
	.update_pvt_modseq = index_mail_update_pvt_modseq,
	.update_pop3_uidl = NULL,
	.expunge = index_mail_expunge,
	.set_cache_corrupted = index_mail_set_cache_corrupted,
	.istream_opened = index_mail_opened,
};
