/* Setup shared by the libwddeliver integration tests (deliver-test.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "deliver-test.h"
#include "wd-buffer.h"
#include "wd-config.h"
#include "wd-outbound.h"
#include "wd-result.h"
#include "wd-store-message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct captured captured[32];
size_t captured_count;
static int capture_ret;

void capture_reset(void)
{
	for (size_t i = 0; i < captured_count; i++) {
		free(captured[i].from);
		for (size_t k = 0; k < captured[i].to_count; k++)
			free(captured[i].to[k]);
		free(captured[i].raw);
		free(captured[i].reason);
		free(captured[i].forwarded_for);
	}
	memset(captured, 0, sizeof(captured));
	captured_count = 0;
	capture_ret = 0;
}

void capture_fail_with(int ret)
{
	capture_ret = ret;
}

static int capture_queue(void *context, const struct wd_outbound_message *msg,
			 char queue_id_r[19], char **error_r)
{
	(void)context;
	*error_r = NULL;
	if (capture_ret != 0) {
		*error_r = strdup(capture_ret == WD_OUTBOUND_LOOP ? "loop" : "queue down");
		return capture_ret;
	}
	if (captured_count == 32) {
		*error_r = strdup("capture full");
		return WD_ERROR;
	}
	struct captured *c = &captured[captured_count];
	c->from = strdup(msg->from);
	for (size_t i = 0; i < msg->to_count && i < 8; i++)
		c->to[c->to_count++] = strdup(msg->to[i]);
	c->raw = strndup((const char *)msg->raw, msg->len);
	c->len = msg->len;
	c->reason = strdup(msg->reason);
	c->forwarded_for = msg->forwarded_for != NULL ? strdup(msg->forwarded_for) : NULL;
	snprintf(queue_id_r, 19, "18f0000000000%05zu", captured_count);
	captured_count++;
	return WD_OK;
}

struct wd_deliver *deliver_open(const char *toml)
{
	const char *text = toml != NULL ? toml : "";
	char *error = NULL;
	struct wd_config *config = wd_config_parse("deliver.toml", text, strlen(text), &error);
	assert_non_null(config);
	struct wd_deliver *deliver = wd_deliver_create(test_store, test_auth, config, &error);
	if (deliver == NULL)
		fprintf(stderr, "deliver: %s\n", error);
	assert_non_null(deliver);
	wd_config_free(&config);
	wd_deliver_set_queue(deliver, capture_queue, NULL);
	return deliver;
}

bson_oid_t make_user(const char *name, char *address_r)
{
	char username[128], address[200];
	snprintf(username, sizeof(username), "%s%s", name, test_tag);
	snprintf(address, sizeof(address), "%s@example.com", username);
	struct wd_user_create req = { .username = username, .address = address,
				      .spam_level = WD_DEFAULT_SPAM_LEVEL };
	bson_oid_t id;
	char *error = NULL;
	if (wd_store_user_create(test_store, &req, &id, &error) < 0) {
		fprintf(stderr, "user %s: %s\n", username, error);
		abort();
	}
	if (address_r != NULL)
		snprintf(address_r, 200, "%s", address);
	return id;
}

void user_set(const bson_oid_t *user, const bson_t *set)
{
	bson_t *query = BCON_NEW("_id", BCON_OID(user));
	bson_t update = BSON_INITIALIZER;
	BSON_APPEND_DOCUMENT(&update, "$set", set);
	test_update(WD_STORE_DB_USERS, "users", query, &update);
	bson_destroy(&update);
	bson_destroy(query);
}

bson_oid_t mailbox_of(const bson_oid_t *user, const char *which)
{
	struct wd_mailbox *mailbox = NULL;
	char *error = NULL;
	int ret = which[0] == '\\' ?
			  wd_store_mailbox_get_by_special_use(test_store, user, which, &mailbox, &error) :
			  wd_store_mailbox_get_by_path(test_store, user, which, &mailbox, &error);
	assert_int_equal(ret, 0);
	bson_oid_t id = mailbox->id;
	wd_mailbox_free(&mailbox);
	return id;
}

int64_t count_in(const bson_oid_t *user, const char *which)
{
	bson_oid_t mailbox = mailbox_of(user, which);
	bson_t *query = BCON_NEW("mailbox", BCON_OID(&mailbox));
	int64_t n = test_count(WD_STORE_DB_MAIN, "messages", query);
	bson_destroy(query);
	return n;
}

bson_t *last_in(const bson_oid_t *user, const char *which)
{
	bson_oid_t mailbox = mailbox_of(user, which);
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_MAIN,
							"messages");
	bson_t *query = BCON_NEW("mailbox", BCON_OID(&mailbox));
	bson_t *opts = BCON_NEW("sort", "{", "uid", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	bson_t *copy = NULL;
	if (mongoc_cursor_next(cursor, &doc))
		copy = bson_copy(doc);
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_MAIN, client);
	return copy;
}

bson_oid_t last_id(const bson_oid_t *user, const char *which)
{
	bson_t *doc = last_in(user, which);
	assert_non_null(doc);
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, doc, "_id"));
	bson_oid_t id = *bson_iter_oid(&iter);
	bson_destroy(doc);
	return id;
}

int64_t count_docs(struct wd_store *store, enum wd_store_db db, const char *collection,
		   const bson_t *filter)
{
	mongoc_client_t *client = wd_store_client(store, db);
	mongoc_collection_t *coll = wd_store_collection(store, client, db, collection);
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
	return n;
}

char *stored_bytes(const bson_oid_t *message_id, size_t *len_r)
{
	char *error = NULL;
	struct wd_message_reader *reader = wd_store_message_open_id(test_store, message_id, &error);
	assert_non_null(reader);
	struct wd_buffer out = WD_BUFFER_INIT;
	bool eof = false;
	while (!eof)
		assert_int_equal(wd_message_reader_read(reader, &out, &eof, &error), 0);
	wd_message_reader_close(&reader);
	*len_r = out.len;
	char *bytes = malloc(out.len + 1);
	memcpy(bytes, wd_buffer_bytes(&out), out.len);
	bytes[out.len] = '\0';
	wd_buffer_release(&out);
	return bytes;
}

void transaction(struct wd_deliver *deliver, const char *mail_from, const char *const *addresses,
		 size_t count, const char *raw, struct wd_deliver_reply *rcpt_replies,
		 struct wd_deliver_reply *data_replies)
{
	struct wd_deliver_rcpt *rcpts[32];
	size_t index[32], accepted = 0;
	assert_true(count <= 32);
	for (size_t i = 0; i < count; i++) {
		memset(&data_replies[i], 0, sizeof(data_replies[i]));
		struct wd_deliver_rcpt *rcpt = wd_deliver_check_rcpt(deliver, addresses[i],
								     &rcpt_replies[i]);
		if (rcpt == NULL) {
			assert_int_not_equal(rcpt_replies[i].code, 250);
			continue;
		}
		assert_int_equal(rcpt_replies[i].code, 250);
		index[accepted] = i;
		rcpts[accepted++] = rcpt;
	}
	struct wd_deliver_reply replies[32];
	struct wd_deliver_envelope envelope = {
		.mail_from = mail_from, .helo = "mx.test", .remote_ip = "192.0.2.7",
		.transaction_id = "65a1b2c3d4e5f60718293a4b", .protocol = "LMTP",
	};
	if (accepted > 0)
		assert_int_equal(wd_deliver_message(deliver, &envelope, rcpts, accepted,
						    (const uint8_t *)raw, strlen(raw), replies),
				 WD_OK);
	for (size_t k = 0; k < accepted; k++) {
		data_replies[index[k]] = replies[k];
		wd_deliver_rcpt_free(&rcpts[k]);
	}
}

unsigned deliver_one(struct wd_deliver *deliver, const char *mail_from, const char *address,
		     const char *raw, struct wd_deliver_reply *reply_r)
{
	struct wd_deliver_reply rcpt, data;
	transaction(deliver, mail_from, &address, 1, raw, &rcpt, &data);
	if (data.code == 0) {
		if (reply_r != NULL)
			*reply_r = rcpt;
		return rcpt.code;
	}
	if (reply_r != NULL)
		*reply_r = data;
	return data.code;
}

bson_oid_t filter_add(const bson_oid_t *user, const char *query_json, const char *action_json,
		      bool disabled)
{
	bson_error_t error;
	bson_t *query = bson_new_from_json((const uint8_t *)query_json, -1, &error);
	if (query == NULL)
		fprintf(stderr, "query json: %s\n", error.message);
	bson_t *action = bson_new_from_json((const uint8_t *)action_json, -1, &error);
	if (action == NULL)
		fprintf(stderr, "action json: %s\n", error.message);
	assert_non_null(query);
	assert_non_null(action);
	bson_oid_t id;
	bson_oid_init(&id, NULL);
	bson_t doc = BSON_INITIALIZER;
	BSON_APPEND_OID(&doc, "_id", &id);
	BSON_APPEND_OID(&doc, "user", user);
	BSON_APPEND_UTF8(&doc, "name", "test filter");
	BSON_APPEND_DOCUMENT(&doc, "query", query);
	BSON_APPEND_DOCUMENT(&doc, "action", action);
	BSON_APPEND_BOOL(&doc, "disabled", disabled);
	BSON_APPEND_DATE_TIME(&doc, "created", test_now_ms());
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_MAIN,
							"filters");
	assert_true(mongoc_collection_insert_one(coll, &doc, NULL, NULL, &error));
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_MAIN, client);
	bson_destroy(&doc);
	bson_destroy(query);
	bson_destroy(action);
	return id;
}

void filters_clear(const bson_oid_t *user)
{
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_MAIN,
							"filters");
	bson_t *query = BCON_NEW("user", BCON_OID(user));
	bson_error_t error;
	assert_true(mongoc_collection_delete_many(coll, query, NULL, NULL, &error));
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_MAIN, client);
}

bson_oid_t insert_json(const char *collection, const char *json)
{
	bson_error_t error;
	bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &error);
	if (doc == NULL)
		fprintf(stderr, "json: %s\n", error.message);
	assert_non_null(doc);
	bson_iter_t iter;
	bson_oid_t id;
	if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter)) {
		id = *bson_iter_oid(&iter);
	} else {
		bson_oid_init(&id, NULL);
		BSON_APPEND_OID(doc, "_id", &id);
	}
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_MAIN,
							collection);
	bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
	if (!ok)
		fprintf(stderr, "insert into %s: %s\n", collection, error.message);
	assert_true(ok);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_MAIN, client);
	bson_destroy(doc);
	return id;
}

char *last_flags(const bson_oid_t *user, const char *which)
{
	bson_t *doc = last_in(user, which);
	if (doc == NULL)
		return NULL;
	char *out = calloc(1, 256);
	bson_iter_t iter, list;
	if (bson_iter_init_find(&iter, doc, "flags") && bson_iter_recurse(&iter, &list)) {
		while (bson_iter_next(&list)) {
			if (out[0] != '\0')
				strcat(out, " ");
			strncat(out, bson_iter_utf8(&list, NULL), 200 - strlen(out));
		}
	}
	bson_destroy(doc);
	return out;
}

int64_t storage_used(const bson_oid_t *user)
{
	struct wd_user *u = NULL;
	char *error = NULL;
	assert_int_equal(wd_store_user_get(test_store, user, &u, &error), 0);
	int64_t used = u->storage_used;
	wd_user_free(&u);
	return used;
}

size_t delivered_size(const char *recipient, const char *sender, const char *raw)
{
	return strlen("Delivered-To: \r\nReturn-Path: <>\r\n") + strlen(recipient) +
	       strlen(sender) + strlen(raw);
}
