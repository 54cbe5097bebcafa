/* The message log (wd-store-messagelog.h): writing one entry, and the
 * events of one message as WildDuck 1.x's API looked them up — the message
 * by {mailbox, uid} with its owner checked, then every entry pointing at it
 * (parentId) or at one of its outbound queue ids. */
#include "wd-store-messagelog.h"

#include "store-private.h"
#include "wd-result.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of `s` cut to at most WD_MESSAGELOG_MAX_STRING bytes without
   splitting a UTF-8 sequence. */
static size_t bounded_len(const char *s)
{
	size_t len = strnlen(s, WD_MESSAGELOG_MAX_STRING + 1);
	if (len <= WD_MESSAGELOG_MAX_STRING)
		return len;
	len = WD_MESSAGELOG_MAX_STRING;
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	return len;
}

static void append_bounded(bson_t *doc, const char *key, const char *value)
{
	if (value != NULL)
		wd__append_text(doc, key, value, bounded_len(value), false);
}

static void append_to(bson_t *doc, const struct wd_messagelog_entry *e)
{
	bson_t list;
	char key[16];
	const char *key_str;
	size_t n = e->to_count < WD_MESSAGELOG_MAX_ITEMS ? e->to_count : WD_MESSAGELOG_MAX_ITEMS;
	uint32_t next = 0;
	BSON_APPEND_ARRAY_BEGIN(doc, "to", &list);
	for (size_t i = 0; i < n; i++) {
		if (e->to[i] == NULL)
			continue;
		bson_uint32_to_string(next++, &key_str, key, sizeof(key));
		append_bounded(&list, key_str, e->to[i]);
	}
	bson_append_array_end(doc, &list);
}

static void append_targets(bson_t *doc, const struct wd_messagelog_entry *e)
{
	bson_t list;
	char key[16];
	const char *key_str;
	size_t n = e->target_count < WD_MESSAGELOG_MAX_ITEMS ? e->target_count :
							       WD_MESSAGELOG_MAX_ITEMS;
	uint32_t next = 0;
	BSON_APPEND_ARRAY_BEGIN(doc, "targets", &list);
	for (size_t i = 0; i < n; i++) {
		const struct wd_messagelog_target *t = &e->targets[i];
		if (t->value == NULL)
			continue;
		bson_t item;
		bson_uint32_to_string(next++, &key_str, key, sizeof(key));
		BSON_APPEND_DOCUMENT_BEGIN(&list, key_str, &item);
		append_bounded(&item, "type", t->type != NULL ? t->type : "mail");
		append_bounded(&item, "value", t->value);
		bson_append_document_end(&list, &item);
	}
	bson_append_array_end(doc, &list);
}

int wd_store_messagelog_add(struct wd_store *store, const struct wd_messagelog_entry *e,
			    char **error_r)
{
	*error_r = NULL;
	if (e->id == NULL || e->id[0] == '\0' || e->action == NULL || e->action[0] == '\0') {
		*error_r = wd__store_error("message log entry without id or action");
		return WD_STORE_ERR_INVALID;
	}
	bson_t doc = BSON_INITIALIZER;
	append_bounded(&doc, "id", e->id);
	append_bounded(&doc, "action", e->action);
	if (e->parent_id != NULL)
		BSON_APPEND_OID(&doc, "parentId", e->parent_id);
	append_bounded(&doc, "message-id", e->message_id);
	append_bounded(&doc, "source", e->source);
	append_bounded(&doc, "origin", e->origin);
	append_bounded(&doc, "from", e->from);
	if (e->to_count > 0 && e->to != NULL)
		append_to(&doc, e);
	append_bounded(&doc, "transtype", e->transtype);
	if (e->target_count > 0 && e->targets != NULL)
		append_targets(&doc, e);
	BSON_APPEND_DATE_TIME(&doc, "created", e->created_ms != 0 ? e->created_ms : wd__now_ms());

	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN,
							"messagelog");
	bson_error_t error;
	int ret = WD_STORE_OK;
	if (!mongoc_collection_insert_one(coll, &doc, NULL, NULL, &error)) {
		*error_r = wd__store_error("cannot write the message log: %s", error.message);
		ret = WD_STORE_ERR_DATABASE;
	}
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	bson_destroy(&doc);
	return ret;
}

/* {$or: [{id: {$in: outbound}}, {parentId: id}]}, or {parentId: id} when
   the message has no outbound queue ids. */
static bson_t *events_query(const bson_t *message, const bson_oid_t *id)
{
	bson_iter_t iter, item;
	bson_t ids = BSON_INITIALIZER;
	uint32_t count = 0;
	if (bson_iter_init_find(&iter, message, "outbound") && BSON_ITER_HOLDS_ARRAY(&iter) &&
	    bson_iter_recurse(&iter, &item)) {
		while (bson_iter_next(&item) && count < WD_MESSAGELOG_MAX_ITEMS) {
			if (!BSON_ITER_HOLDS_UTF8(&item))
				continue;
			char key[16];
			const char *key_str;
			uint32_t len;
			const char *value = bson_iter_utf8(&item, &len);
			bson_uint32_to_string(count++, &key_str, key, sizeof(key));
			bson_append_utf8(&ids, key_str, -1, value, (int)len);
		}
	}
	bson_t *query = bson_new();
	if (count == 0) {
		BSON_APPEND_OID(query, "parentId", id);
	} else {
		bson_t or, alt, cond;
		BSON_APPEND_ARRAY_BEGIN(query, "$or", &or);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &alt);
		BSON_APPEND_DOCUMENT_BEGIN(&alt, "id", &cond);
		BSON_APPEND_ARRAY(&cond, "$in", &ids);
		bson_append_document_end(&alt, &cond);
		bson_append_document_end(&or, &alt);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &alt);
		BSON_APPEND_OID(&alt, "parentId", id);
		bson_append_document_end(&or, &alt);
		bson_append_array_end(query, &or);
	}
	bson_destroy(&ids);
	return query;
}

/* The message {mailbox, uid} when it is `user`'s: its _id and outbound. */
static int find_message(mongoc_client_t *client, struct wd_store *store, const bson_oid_t *user,
			const bson_oid_t *mailbox, uint32_t uid, bson_t *message_r,
			char **error_r)
{
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN,
							"messages");
	bson_t *query = BCON_NEW("mailbox", BCON_OID(mailbox), "uid", BCON_INT64(uid));
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1), "projection", "{", "_id", BCON_INT32(1),
				"user", BCON_INT32(1), "outbound", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	int ret = WD_STORE_ERR_NOT_FOUND;
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter;
		if (bson_iter_init_find(&iter, doc, "user") && BSON_ITER_HOLDS_OID(&iter) &&
		    bson_oid_equal(bson_iter_oid(&iter), user) &&
		    bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter)) {
			bson_copy_to(doc, message_r);
			ret = WD_STORE_OK;
		}
	}
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error)) {
		if (ret == WD_STORE_OK)
			bson_destroy(message_r);
		*error_r = wd__store_error("cannot read the message: %s", error.message);
		ret = WD_STORE_ERR_DATABASE;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	return ret;
}

int wd_store_messagelog_for_message(struct wd_store *store, const bson_oid_t *user,
				    const bson_oid_t *mailbox, uint32_t uid,
				    bson_oid_t *message_id_r, wd_messagelog_fn *fn, void *context,
				    char **error_r)
{
	*error_r = NULL;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	bson_t message;
	int ret = find_message(client, store, user, mailbox, uid, &message, error_r);
	if (ret < 0) {
		if (ret == WD_STORE_ERR_NOT_FOUND)
			*error_r = wd__store_error("This message does not exist");
		wd_store_client_release(store, WD_STORE_DB_MAIN, client);
		return ret;
	}
	bson_iter_t iter;
	bson_iter_init_find(&iter, &message, "_id");
	bson_oid_copy(bson_iter_oid(&iter), message_id_r);

	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN,
							"messagelog");
	bson_t *query = events_query(&message, message_id_r);
	bson_t *opts = BCON_NEW("sort", "{", "created", BCON_INT32(1), "_id", BCON_INT32(1), "}",
				"limit", BCON_INT64(WD_MESSAGELOG_MAX_EVENTS));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc))
		if (!fn(doc, context))
			break;
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__store_error("cannot read the message log: %s", error.message);
		ret = WD_STORE_ERR_DATABASE;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	bson_destroy(&message);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}
