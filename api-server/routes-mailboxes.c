/* Routes: a user's mailboxes, as WildDuck's lib/api/mailboxes.js answers
 * them (getMailboxes, createMailbox, getMailbox, updateMailbox,
 * deleteMailbox).
 *
 * The mailbox documents are libwdstore's (wd-store-user.h): create, rename,
 * delete and the lookups go through it, so the journal, the notifications
 * and the path rules are the ones IMAP uses. Two things are done here:
 *
 *   - the listing's order and shape: INBOX first, then INBOX's children,
 *     subscribed before unsubscribed, then by path; `size` from one
 *     aggregation over the user's messages when asked, `total`/`unseen`
 *     from WildDuck's cached counters (wd_store_mailbox_counters);
 *   - the plain field changes of PUT (retention, subscribed, hidden,
 *     encryptMessages): one $set on the document under the store's update
 *     lock of that mailbox ("mb:<id>"), the lock UID and MODSEQ allocation
 *     take, so on FerretDB (no atomic updates) the $set cannot undo a
 *     concurrent uidNext/modifyIndex change. A path change is a rename
 *     (which, unlike WildDuck, also moves the mailboxes below it).
 *
 * `:mailbox` may be "resolve" on GET, with ?path= naming the mailbox, as in
 * WildDuck. Error codes are WildDuck's mailbox-handler ones: NONEXISTENT
 * (404), ALREADYEXISTS and CANNOT (400). */
#include "api.h"
#include "message-json.h"

#include "wd-store-user.h"

#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

/* libwdstore's error kind → WildDuck's mailbox error answer. */
static void mailbox_error(struct api_request *req, int ret, const char *error, const char *what)
{
	switch (ret) {
	case WD_STORE_ERR_NOT_FOUND:
		api_reply_error(req, 404, "NONEXISTENT", "Mailbox %s failed with code NoSuchMailbox",
				what);
		return;
	case WD_STORE_ERR_EXISTS:
		api_reply_error(req, 400, "ALREADYEXISTS",
				"Mailbox %s failed with code MailboxAlreadyExists", what);
		return;
	case WD_STORE_ERR_NOT_PERMITTED:
		api_reply_error(req, 400, "CANNOT",
				"Mailbox %s failed with code DisallowedMailboxMethod", what);
		return;
	case WD_STORE_ERR_LIMIT:
	case WD_STORE_ERR_INVALID:
		api_reply_error(req, 400, "CANNOT", "%s", error != NULL ? error : "Invalid mailbox");
		return;
	default:
		api_reply_store_error(req, ret, error, "NONEXISTENT");
	}
}

static const char *last_level(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash != NULL ? slash + 1 : path;
}

/* The fields getMailboxes and getMailbox share. */
static json_t *mailbox_json(const struct wd_mailbox *mb)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", api_json_oid(&mb->id));
	json_object_set_new(o, "name", json_string(last_level(mb->path)));
	json_object_set_new(o, "path", json_string(mb->path));
	json_object_set_new(o, "specialUse",
			    mb->special_use != NULL ? json_string(mb->special_use) : json_null());
	json_object_set_new(o, "modifyIndex", json_integer((json_int_t)mb->modify_index));
	json_object_set_new(o, "subscribed", json_boolean(mb->subscribed));
	json_object_set_new(o, "hidden", json_boolean(mb->hidden));
	json_object_set_new(o, "encryptMessages", json_boolean(mb->encrypt_messages));
	return o;
}

static void add_counters(struct api_request *req, const struct wd_mailbox *mb, json_t *o)
{
	int64_t total = 0, unseen = 0;
	char *error = NULL;
	if (wd_store_mailbox_counters(req->ctx->store, &mb->id, &total, &unseen, &error) < 0) {
		free(error); /* WildDuck leaves them out on a failure */
		return;
	}
	json_object_set_new(o, "total", json_integer(total));
	json_object_set_new(o, "unseen", json_integer(unseen));
}

static bool is_inbox_child(const char *path)
{
	return strncmp(path, "INBOX/", 6) == 0;
}

static int compare_listing(const void *pa, const void *pb)
{
	const struct wd_mailbox *a = pa, *b = pb;
	bool ai = strcmp(a->path, "INBOX") == 0, bi = strcmp(b->path, "INBOX") == 0;
	if (ai != bi)
		return ai ? -1 : 1;
	if (is_inbox_child(a->path) != is_inbox_child(b->path))
		return is_inbox_child(a->path) ? -1 : 1;
	if (a->subscribed != b->subscribed)
		return a->subscribed ? -1 : 1;
	int c = strcasecmp(a->path, b->path);
	return c != 0 ? c : strcmp(a->path, b->path);
}

/* {mailbox id hex: summed size} for the user's messages; NULL on a failure
   (WildDuck then leaves `size` out). */
static json_t *mailbox_sizes(struct api_request *req, const bson_oid_t *user)
{
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *pipeline = BCON_NEW("pipeline", "[",
				    "{", "$match", "{", "user", BCON_OID(user), "}", "}",
				    "{", "$group", "{", "_id", BCON_UTF8("$mailbox"), "size", "{",
				    "$sum", BCON_UTF8("$size"), "}", "}", "}", "]");
	mongoc_cursor_t *cursor = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline,
							      NULL, NULL);
	json_t *sizes = json_object();
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t id, size;
		if (bson_iter_init_find(&id, doc, "_id") && BSON_ITER_HOLDS_OID(&id) &&
		    bson_iter_init_find(&size, doc, "size") && BSON_ITER_HOLDS_NUMBER(&size)) {
			char hex[25];
			bson_oid_to_string(bson_iter_oid(&id), hex);
			json_object_set_new(sizes, hex, json_integer(bson_iter_as_int64(&size)));
		}
	}
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error)) {
		json_decref(sizes);
		sizes = NULL;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(pipeline);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return sizes;
}

static void get_mailboxes(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	bool special_use = api_bool(req, "specialUse", false);
	bool counters = api_bool(req, "counters", false);
	struct wd_mailbox_list list;
	char *error = NULL;
	int ret = wd_store_mailbox_list(req->ctx->store, &user,
					api_bool(req, "showHidden", false) ? WD_MAILBOX_LIST_HIDDEN : 0,
					&list, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret, error, "UserNotFound");
		free(error);
		return;
	}
	json_t *sizes = api_bool(req, "sizes", false) ? mailbox_sizes(req, &user) : NULL;
	qsort(list.items, list.count, sizeof(list.items[0]), compare_listing);
	json_t *results = json_array();
	for (size_t i = 0; i < list.count; i++) {
		const struct wd_mailbox *mb = &list.items[i];
		if (special_use && mb->special_use == NULL && strcmp(mb->path, "INBOX") != 0)
			continue;
		json_t *o = mailbox_json(mb);
		if (mb->retention > 0)
			json_object_set_new(o, "retention", json_integer(mb->retention));
		if (sizes != NULL) {
			char hex[25];
			bson_oid_to_string(&mb->id, hex);
			json_t *size = json_object_get(sizes, hex);
			json_object_set_new(o, "size", size != NULL ? json_incref(size) : json_integer(0));
		}
		if (counters)
			add_counters(req, mb, o);
		json_array_append_new(results, o);
	}
	json_decref(sizes);
	wd_mailbox_list_free(&list);
	api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "results", results));
}

/* WildDuck's path rule: no "//" and no trailing "/" (the store checks the
   rest: levels, lengths, control characters). */
static bool path_shape_ok(struct api_request *req, const char *path)
{
	size_t len = strlen(path);
	if (strstr(path, "//") != NULL || (len > 0 && path[len - 1] == '/')) {
		api_reply_error(req, 400, "InputValidationError",
				"\"path\" with value \"%s\" matches the inverted pattern: /\\/{2,}|\\/$/",
				path);
		return false;
	}
	return true;
}

static void create_mailbox(struct api_request *req)
{
	bson_oid_t user, id;
	if (!api_require_user(req, &user))
		return;
	const char *path = api_str(req, "path", "");
	if (!path_shape_ok(req, path))
		return;
	struct wd_mailbox_create opts = {
		.hidden = api_bool(req, "hidden", false),
		.encrypt_messages = api_bool(req, "encryptMessages", false),
		.retention = api_int(req, "retention", 0),
	};
	char *error = NULL;
	int ret = wd_store_mailbox_create(req->ctx->store, &user, path, &opts, &id, &error);
	if (ret < 0) {
		mailbox_error(req, ret, error, "creation");
		free(error);
		return;
	}
	api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id", api_json_oid(&id)));
}

static void get_mailbox(struct api_request *req)
{
	bson_oid_t user, mailbox_id;
	if (!api_require_user(req, &user))
		return;
	const char *param = api_str(req, "mailbox", "");
	struct wd_mailbox *mb = NULL;
	char *error = NULL;
	int ret;
	if (strcmp(param, "resolve") == 0) {
		const char *path = api_str(req, "path", NULL);
		if (path == NULL || path[0] == '\0') {
			api_reply_error(req, 404, "NoSuchMailbox", "This mailbox does not exist");
			return;
		}
		if (!path_shape_ok(req, path))
			return;
		ret = wd_store_mailbox_get_by_path(req->ctx->store, &user, path, &mb, &error);
	} else if (strlen(param) == 24 && bson_oid_is_valid(param, 24)) {
		bson_oid_init_from_string(&mailbox_id, param);
		ret = wd_store_mailbox_get_by_id(req->ctx->store, &user, &mailbox_id, &mb, &error);
	} else {
		api_reply_error(req, 400, "InputValidationError",
				"\"mailbox\" must be 24 hexadecimal characters or \"resolve\"");
		return;
	}
	if (ret < 0) {
		api_reply_store_error(req, ret,
				      ret == WD_STORE_ERR_NOT_FOUND ? "This mailbox does not exist" : error,
				      "NoSuchMailbox");
		free(error);
		return;
	}
	json_t *o = mailbox_json(mb);
	add_counters(req, mb, o);
	wd_mailbox_free(&mb);
	api_reply_ok(req, o);
}

/* $set of the plain fields, under the mailbox's update lock. */
static int mailbox_set_fields(struct api_request *req, const bson_oid_t *user,
			      const bson_oid_t *mailbox, const bson_t *set, char **error_r)
{
	bson_t *filter = BCON_NEW("_id", BCON_OID(mailbox), "user", BCON_OID(user));
	bson_t update = BSON_INITIALIZER;
	BSON_APPEND_DOCUMENT(&update, "$set", set);
	int64_t matched = 0;
	int ret = api_update_locked(req, mailbox, "mailboxes", filter, &update, false, &matched,
				    error_r);
	bson_destroy(&update);
	bson_destroy(filter);
	if (ret < 0)
		return WD_STORE_ERR_DATABASE;
	return matched == 0 ? WD_STORE_ERR_NOT_FOUND : WD_STORE_OK;
}

static void update_mailbox(struct api_request *req)
{
	bson_oid_t user, mailbox;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	const char *path = api_str(req, "path", NULL);
	bson_t set = BSON_INITIALIZER;
	if (api_has(req, "retention")) {
		json_t *r = api_json(req, "retention");
		if (json_is_null(r))
			BSON_APPEND_NULL(&set, "retention");
		else
			BSON_APPEND_INT64(&set, "retention", api_int(req, "retention", 0));
	}
	static const char *const bools[] = { "subscribed", "hidden", "encryptMessages" };
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
		if (api_has(req, bools[i]))
			BSON_APPEND_BOOL(&set, bools[i], api_bool(req, bools[i], false));
	if (path == NULL && bson_empty(&set)) {
		bson_destroy(&set);
		api_reply_error(req, 400, "InputValidationError", "Nothing was changed");
		return;
	}
	if (path != NULL && !path_shape_ok(req, path)) {
		bson_destroy(&set);
		return;
	}
	struct wd_mailbox *mb = NULL;
	char *error = NULL;
	int ret = wd_store_mailbox_get_by_id(req->ctx->store, &user, &mailbox, &mb, &error);
	if (ret == 0 && path != NULL) {
		char *norm = wd_mailbox_path_normalize(path);
		if (norm != NULL && strcmp(norm, mb->path) != 0)
			ret = wd_store_mailbox_rename(req->ctx->store, &user, &mailbox, norm, NULL,
						      &error);
		free(norm);
	}
	wd_mailbox_free(&mb);
	if (ret == 0 && !bson_empty(&set))
		ret = mailbox_set_fields(req, &user, &mailbox, &set, &error);
	bson_destroy(&set);
	if (ret < 0) {
		mailbox_error(req, ret, error, "update");
		free(error);
		return;
	}
	api_reply_success(req);
}

static void delete_mailbox(struct api_request *req)
{
	bson_oid_t user, mailbox;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	char *error = NULL;
	int ret = wd_store_mailbox_delete(req->ctx->store, &user, &mailbox, &error);
	if (ret < 0) {
		mailbox_error(req, ret, error, "deletion");
		free(error);
		return;
	}
	api_reply_success(req);
}

/* WildDuck's MAX_MAILBOX_NAME_LENGTH * MAX_SUB_MAILBOXES + 127 */
#define PATH_MAX_CHARS (WD_MAX_MAILBOX_NAME_LENGTH * WD_MAX_SUB_MAILBOXES + 127)

static const struct api_field list_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the User" },
	{ "specialUse", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "Only INBOX and the folders with a specialUse flag" },
	{ "showHidden", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Include hidden folders" },
	{ "counters", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "Include the total and unseen counters of each mailbox" },
	{ "sizes", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "Include the size in bytes of each mailbox (an aggregation over the messages)" },
	API_FIELDS_END
};

static const struct api_field create_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the User" },
	{ "path", API_T_STRING, API_F_REQUIRED, 1, PATH_MAX_CHARS, NULL,
	  "Full path of the mailbox, folders separated by slashes, ending with its name" },
	{ "hidden", API_T_BOOL, 0, 0, 0, NULL, "Hidden folders are not listed and cannot be opened in IMAP" },
	{ "retention", API_T_INT, 0, 0, INT64_MAX, NULL,
	  "Milliseconds after which a message added to the mailbox expires; 0 = the user's default" },
	{ "encryptMessages", API_T_BOOL, 0, 0, 0, NULL, "Encrypt the messages stored in this mailbox" },
	API_FIELDS_END
};

static const struct api_field get_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the User" },
	{ "mailbox", API_T_STRING, API_F_REQUIRED | API_F_PATH | API_F_LOWERCASE, 7, 24, NULL,
	  "ID of the Mailbox, or \"resolve\" to look it up by the path argument" },
	{ "path", API_T_STRING, API_F_QUERY, 1, PATH_MAX_CHARS, NULL,
	  "With mailbox \"resolve\": the path of the mailbox" },
	API_FIELDS_END
};

static const struct api_field update_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the User" },
	{ "mailbox", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the Mailbox" },
	{ "path", API_T_STRING, 0, 1, PATH_MAX_CHARS, NULL,
	  "New full path of the mailbox (a rename; the mailboxes below it move along)" },
	{ "retention", API_T_INT, API_F_NULLABLE, 0, INT64_MAX, NULL,
	  "Retention in ms for messages added from now on; 0 = none" },
	{ "subscribed", API_T_BOOL, 0, 0, 0, NULL, "Subscription state" },
	{ "hidden", API_T_BOOL, 0, 0, 0, NULL, "Hidden folders are not listed and cannot be opened in IMAP" },
	{ "encryptMessages", API_T_BOOL, 0, 0, 0, NULL, "Encrypt the messages stored in this mailbox" },
	API_FIELDS_END
};

static const struct api_field delete_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the User" },
	{ "mailbox", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the Mailbox" },
	API_FIELDS_END
};

const struct api_route api_routes_mailboxes[] = {
	{ API_GET, "/users/:user/mailboxes", get_mailboxes, "mailboxes", API_READ, 0, list_fields,
	  "Mailboxes", "List Mailboxes for a User", "getMailboxes" },
	{ API_POST, "/users/:user/mailboxes", create_mailbox, "mailboxes", API_CREATE, 0,
	  create_fields, "Mailboxes", "Create new Mailbox", "createMailbox" },
	{ API_GET, "/users/:user/mailboxes/:mailbox", get_mailbox, "mailboxes", API_READ, 0,
	  get_fields, "Mailboxes", "Request Mailbox information", "getMailbox" },
	{ API_PUT, "/users/:user/mailboxes/:mailbox", update_mailbox, "mailboxes", API_UPDATE, 0,
	  update_fields, "Mailboxes", "Update Mailbox information", "updateMailbox" },
	{ API_DELETE, "/users/:user/mailboxes/:mailbox", delete_mailbox, "mailboxes",
	  API_DELETE_ACTION, 0, delete_fields, "Mailboxes", "Delete a Mailbox", "deleteMailbox" },
	API_ROUTES_END
};
