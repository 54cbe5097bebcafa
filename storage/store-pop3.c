/* The POP3 maildrop and its QUIT update (wd-store-pop3.h), as WildDuck's
 * pop3.js onListMessages / onUpdate do it.
 *
 * Listing: the INBOX by path, the watermark from Redis (pxm:<user> field
 * <inbox>, else the legacy pop3uid field <inbox>), then one query
 * {mailbox, uid >= watermark} sorted by UID descending with the limit,
 * reversed so the oldest comes first. The new watermark is the oldest UID
 * listed; the legacy field is dropped.
 *
 * The download counter pdw:<user> is WildDuck's ttlcounter (its
 * lib/lua/ttlcounter.lua) as one EVAL of our own script with the same
 * arithmetic. */
#include "wd-store-pop3.h"
#include "wd-store-counter.h"

#include "store-op.h"
#include "wd-store-message.h"
#include "wd-result.h"
#include "wd-str.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HGET key field as a UID; 0 when absent, not a number or Redis is down. */
static uint32_t redis_hget_uid(struct wd_store *store, const char *key, const char *field)
{
	const char *argv[] = { "HGET", key, field };
	size_t lens[] = { 4, strlen(key), strlen(field) };
	redisReply *reply = wd_store_redis_argv(store, 3, argv, lens);
	uint32_t uid = 0;
	if (reply != NULL && reply->type == REDIS_REPLY_STRING && reply->len > 0 &&
	    reply->len <= 10) {
		uint64_t value;
		if (wd_str_to_uint64(reply->str, reply->len, &value) == 0 && value <= UINT32_MAX)
			uid = (uint32_t)value;
	}
	if (reply != NULL)
		freeReplyObject(reply);
	return uid;
}

static void redis_command(struct wd_store *store, int argc, const char **argv)
{
	size_t lens[4];
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	redisReply *reply = wd_store_redis_argv(store, argc, argv, lens);
	if (reply != NULL)
		freeReplyObject(reply);
}

static uint32_t watermark_get(struct wd_store *store, const bson_oid_t *user,
			      const bson_oid_t *mailbox)
{
	char key[32], field[25];
	memcpy(key, "pxm:", 4);
	bson_oid_to_string(user, key + 4);
	bson_oid_to_string(mailbox, field);
	uint32_t uid = redis_hget_uid(store, key, field);
	return uid != 0 ? uid : redis_hget_uid(store, "pop3uid", field);
}

static void watermark_set(struct wd_store *store, const bson_oid_t *user,
			  const bson_oid_t *mailbox, uint32_t uid)
{
	char key[32], field[25], value[16];
	memcpy(key, "pxm:", 4);
	bson_oid_to_string(user, key + 4);
	bson_oid_to_string(mailbox, field);
	snprintf(value, sizeof(value), "%u", uid);
	redis_command(store, 4, (const char *[]){ "HSET", key, field, value });
	redis_command(store, 3, (const char *[]){ "HDEL", "pop3uid", field });
}

static int list_messages(struct wd_store *store, const bson_oid_t *mailbox, uint32_t watermark,
			 size_t limit, struct wd_pop3_maildrop *m, char **error_r)
{
	struct wd__coll c;
	wd__coll_open(&c, store, WD_STORE_DB_MAIN, "messages");
	bson_t *query = BCON_NEW("mailbox", BCON_OID(mailbox));
	if (watermark > 0)
		BCON_APPEND(query, "uid", "{", "$gte", BCON_INT64(watermark), "}");
	bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "uid", BCON_INT32(1),
				"size", BCON_INT32(1), "unseen", BCON_INT32(1), "}",
				"sort", "{", "uid", BCON_INT32(-1), "}",
				"limit", BCON_INT64((int64_t)limit));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c.coll, query, opts, NULL);
	m->messages = calloc(limit > 0 ? limit : 1, sizeof(*m->messages));
	int ret = WD_STORE_OK;
	const bson_t *doc;
	while (m->messages != NULL && m->count < limit && mongoc_cursor_next(cursor, &doc)) {
		struct wd_pop3_message *msg = &m->messages[m->count];
		int64_t uid = wd__doc_int64(doc, "uid"), size = wd__doc_int64(doc, "size");
		if (!wd__doc_oid(doc, "_id", &msg->id) || uid <= 0 || uid > UINT32_MAX || size < 0)
			continue; /* not a message document we can serve */
		msg->uid = (uint32_t)uid;
		msg->size = (uint64_t)size;
		msg->seen = !wd__doc_bool(doc, "unseen");
		m->size += msg->size;
		m->count++;
	}
	bson_error_t error;
	if (m->messages == NULL)
		ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	else if (mongoc_cursor_error(cursor, &error))
		ret = wd__fail_db(error_r, &error, "cannot list messages");
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	bson_destroy(opts);
	wd__coll_close(&c);
	/* newest first from the query; the maildrop is oldest first */
	for (size_t i = 0, j = m->count; ret == WD_STORE_OK && i + 1 < j; i++, j--) {
		struct wd_pop3_message tmp = m->messages[i];
		m->messages[i] = m->messages[j - 1];
		m->messages[j - 1] = tmp;
	}
	return ret;
}

int wd_store_pop3_list(struct wd_store *store, const bson_oid_t *user, unsigned max,
		       struct wd_pop3_maildrop *maildrop_r, char **error_r)
{
	memset(maildrop_r, 0, sizeof(*maildrop_r));
	*error_r = NULL;
	struct wd_mailbox *inbox = NULL;
	int ret = wd_store_mailbox_get_by_path(store, user, "INBOX", &inbox, error_r);
	if (ret < 0)
		return ret;
	maildrop_r->mailbox = inbox->id;
	wd_mailbox_free(&inbox);

	if (max == 0)
		max = WD_POP3_DEFAULT_MAX_MESSAGES;
	if (max > WD_POP3_MAILDROP_MAX)
		max = WD_POP3_MAILDROP_MAX;

	maildrop_r->watermark = watermark_get(store, user, &maildrop_r->mailbox);
	ret = list_messages(store, &maildrop_r->mailbox, maildrop_r->watermark, (size_t)max,
			    maildrop_r, error_r);
	if (ret < 0) {
		wd_pop3_maildrop_free(maildrop_r);
		return ret;
	}
	if (maildrop_r->count > 0)
		watermark_set(store, user, &maildrop_r->mailbox, maildrop_r->messages[0].uid);
	return WD_STORE_OK;
}

void wd_pop3_maildrop_free(struct wd_pop3_maildrop *maildrop)
{
	free(maildrop->messages);
	maildrop->messages = NULL;
	maildrop->count = 0;
	maildrop->size = 0;
}

int wd_store_pop3_update(struct wd_store *store, const bson_oid_t *user,
			 const bson_oid_t *mailbox, const struct wd_pop3_update *update,
			 struct wd_pop3_update_result *result_r, char **error_r)
{
	memset(result_r, 0, sizeof(*result_r));
	*error_r = NULL;
	size_t flag_count = update->seen_count + update->deleted_count;
	if (flag_count == 0)
		return WD_STORE_OK;

	/* \Seen first, on the retrieved and the deleted messages alike, so that
	   the copies MOVE makes in Trash carry it (WildDuck's markAsSeen) */
	uint32_t *uids = malloc(flag_count * sizeof(*uids));
	if (uids == NULL)
		return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	memcpy(uids, update->seen_uids, update->seen_count * sizeof(*uids));
	memcpy(uids + update->seen_count, update->deleted_uids,
	       update->deleted_count * sizeof(*uids));
	static const char *const seen_flag[] = { "\\Seen" };
	struct wd_flags_change change = {
		.uids = uids, .uid_count = flag_count, .op = WD_FLAGS_ADD,
		.flags = seen_flag, .flag_count = 1, .session_id = update->session_id,
	};
	struct wd_flags_result flags;
	int ret = wd_store_message_flags(store, mailbox, &change, &flags, error_r);
	free(flags.modified);
	free(uids);
	if (ret < 0)
		return WD_STORE_ERR_DATABASE;
	result_r->seen = flags.changed;
	if (update->deleted_count == 0)
		return WD_STORE_OK;

	struct wd_mailbox *trash = NULL;
	ret = wd_store_mailbox_get_by_special_use(store, user, "\\Trash", &trash, error_r);
	if (ret < 0)
		return ret;
	uint32_t *map = NULL;
	size_t moved = 0;
	ret = wd_store_message_copy(store, mailbox, update->deleted_uids, update->deleted_count,
				    &trash->id, true, update->session_id, &map, &moved, error_r);
	wd_mailbox_free(&trash);
	free(map);
	result_r->moved = moved;
	return ret < 0 ? WD_STORE_ERR_DATABASE : WD_STORE_OK;
}

/* ---- the daily download limit ---- */

/* pdw:<user>, WildDuck's ttlcounter (wd-store-counter.h); Redis down:
   allowed. */
static bool download_counter(struct wd_store *store, const bson_oid_t *user, int64_t inc,
			     int64_t limit, int64_t *ttl_r)
{
	char key[32];
	memcpy(key, "pdw:", 4);
	bson_oid_to_string(user, key + 4);
	struct wd_ttlcounter counter;
	wd_store_ttlcounter(store, key, inc, limit, WD_POP3_DOWNLOAD_WINDOW, &counter);
	*ttl_r = counter.ttl;
	return counter.allowed;
}

/* The setting's value is JSON text: a number. */
static int64_t setting_number(struct wd_store *store, const char *key, int64_t def)
{
	struct wd__coll c;
	wd__coll_open(&c, store, WD_STORE_DB_MAIN, "settings");
	bson_t *query = BCON_NEW("key", BCON_UTF8(key));
	bson_t doc;
	char *error = NULL;
	int64_t value = def;
	if (wd__find_one(c.coll, query, NULL, &doc, &error) == WD_STORE_OK) {
		bson_iter_t iter;
		int64_t n;
		if (bson_iter_init_find(&iter, &doc, "value") && BSON_ITER_HOLDS_UTF8(&iter)) {
			uint32_t len;
			const char *text = bson_iter_utf8(&iter, &len);
			if (wd_str_to_int64(text, len, &n) == WD_OK && n >= 0)
				value = n;
		} else if (bson_iter_init_find(&iter, &doc, "value") && BSON_ITER_HOLDS_NUMBER(&iter)) {
			value = bson_iter_as_int64(&iter);
		}
		bson_destroy(&doc);
	}
	free(error);
	bson_destroy(query);
	wd__coll_close(&c);
	return value;
}

int64_t wd_store_pop3_download_limit(struct wd_store *store, const bson_oid_t *user,
				     int64_t default_bytes)
{
	struct wd__coll c;
	wd__coll_open(&c, store, WD_STORE_DB_USERS, "users");
	bson_t *query = BCON_NEW("_id", BCON_OID(user));
	bson_t *opts = BCON_NEW("projection", "{", "pop3MaxDownload", BCON_INT32(1), "}");
	bson_t doc;
	char *error = NULL;
	int64_t limit = 0;
	if (wd__find_one(c.coll, query, opts, &doc, &error) == WD_STORE_OK) {
		limit = wd__doc_int64(&doc, "pop3MaxDownload");
		bson_destroy(&doc);
	}
	free(error);
	bson_destroy(query);
	bson_destroy(opts);
	wd__coll_close(&c);
	if (limit > 0)
		return limit;
	return setting_number(store, "const:max:pop3:download", default_bytes);
}

bool wd_store_pop3_download_allowed(struct wd_store *store, const bson_oid_t *user,
				    int64_t limit, int64_t *retry_after_r)
{
	*retry_after_r = 0;
	if (limit <= 0)
		return true;
	return download_counter(store, user, 0, limit, retry_after_r);
}

void wd_store_pop3_download_add(struct wd_store *store, const bson_oid_t *user, int64_t limit,
				uint64_t bytes)
{
	int64_t ttl;
	if (limit > 0 && bytes > 0)
		download_counter(store, user, (int64_t)bytes, limit, &ttl);
}
