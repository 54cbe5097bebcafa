/* Routes: users (WildDuck's lib/api/users.js): listing, creation, resolve,
 * full user info, settings update with password change, deletion, logout,
 * quota recount (one user or all) and the temporary password reset.
 *
 * A request that is refused changes nothing: every check (input, targets,
 * existing password, hash format) runs before the first write. Password
 * changes go through libwdauth (hash, oldPasswords, authVersion, auth log);
 * a password change or a suspension also ends the user's IMAP/POP3
 * sessions with a LOGOUT on wd_events, as WildDuck does. */
#include "access.h"
#include "api.h"
#include "user-fields.h"

#include "wd-auth-login.h"
#include "wd-auth-password.h"
#include "wd-store-user-admin.h"
#include "wd-store-user.h"

#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NUM_MAX (1LL << 53) /* JavaScript's safe integers */
#define QUOTA_BATCH 100     /* users per page of POST /quota/reset */
#define RESET_PASSWORD_LENGTH 12

static const char *const scope_names[] = { "imap", "pop3", "smtp", NULL };

/* ---- small helpers ---- */

static bool check_scopes(struct api_request *req, const json_t *scopes)
{
	size_t i;
	json_t *item;
	json_array_foreach(scopes, i, item) {
		const char *s = json_string_value(item);
		bool ok = false;
		for (size_t j = 0; s != NULL && scope_names[j] != NULL; j++)
			ok = ok || strcmp(scope_names[j], s) == 0;
		if (!ok) {
			api_reply_error(req, 400, "InputValidationError",
					"\"disabledScopes[%zu]\" must be one of [imap, pop3, smtp]", i);
			return false;
		}
	}
	return true;
}

/* disabledScopes as WildDuck stores them: unique, sorted. */
static void append_scopes(bson_t *doc, const json_t *scopes)
{
	bson_t arr;
	unsigned n = 0;
	BSON_APPEND_ARRAY_BEGIN(doc, "disabledScopes", &arr);
	for (size_t j = 0; scope_names[j] != NULL; j++) {
		size_t i;
		json_t *item;
		bool present = false;
		json_array_foreach(scopes, i, item)
			present = present || strcmp(json_string_value(item), scope_names[j]) == 0;
		if (present) {
			char key[8];
			snprintf(key, sizeof(key), "%u", n++);
			BSON_APPEND_UTF8(&arr, key, scope_names[j]);
		}
	}
	bson_append_array_end(doc, &arr);
}

static unsigned scope_bits(const json_t *scopes)
{
	unsigned bits = 0;
	size_t i;
	json_t *item;
	json_array_foreach(scopes, i, item) {
		const char *s = json_string_value(item);
		bits |= strcmp(s, "imap") == 0 ? WD_SCOPE_IMAP : strcmp(s, "pop3") == 0 ?
			WD_SCOPE_POP3 : WD_SCOPE_SMTP;
	}
	return bits;
}

static void append_whitelist(bson_t *doc, const json_t *list)
{
	bson_t arr;
	unsigned n = 0;
	size_t i;
	json_t *item;
	char *seen[1000];
	BSON_APPEND_ARRAY_BEGIN(doc, "fromWhitelist", &arr);
	json_array_foreach(list, i, item) {
		char *norm = NULL;
		const char *error = NULL;
		if (n == 1000 || wd_address_normalize(json_string_value(item), 0, &norm, &error) < 0)
			norm = strdup(json_string_value(item)); /* wildcards such as *@x stay */
		bool dup = norm == NULL;
		for (unsigned j = 0; !dup && j < n; j++)
			dup = strcmp(seen[j], norm) == 0;
		if (dup || n == 1000) {
			free(norm);
			continue;
		}
		char key[8];
		snprintf(key, sizeof(key), "%u", n);
		BSON_APPEND_UTF8(&arr, key, norm);
		seen[n++] = norm;
	}
	bson_append_array_end(doc, &arr);
	for (unsigned j = 0; j < n; j++)
		free(seen[j]);
}

/* metaData / internalData: 400 unless an object or its JSON text. */
static bool metadata_field(struct api_request *req, const char *name, char **text_r)
{
	*text_r = NULL;
	json_t *value = api_json(req, name);
	if (value == NULL || json_is_null(value))
		return true;
	if (strcmp(name, "internalData") == 0 && req->role == API_ROLE_USER)
		return true; /* filtered out for user tokens, as WildDuck's roles do */
	*text_r = api_metadata_text(value);
	if (*text_r == NULL) {
		api_reply_error(req, 400, "InputValidationError",
				"\"%s\" must be an object or a JSON string of an object", name);
		return false;
	}
	return true;
}

/* The password field: a string, "" or false. */
static bool password_field(struct api_request *req, bool *given_r, const char **password_r)
{
	json_t *value = api_json(req, "password");
	*given_r = value != NULL && !json_is_null(value);
	*password_r = NULL;
	if (!*given_r)
		return true;
	if (json_is_false(value) || (json_is_string(value) && json_string_length(value) == 0))
		return true;
	if (!json_is_string(value) || json_string_length(value) > 256) {
		api_reply_error(req, 400, "InputValidationError",
				"\"password\" must be a string of at most 256 characters or false");
		return false;
	}
	*password_r = json_string_value(value);
	if (api_bool(req, "hashedPassword", false) &&
	    wd_auth_password_scheme(*password_r) == WD_PASSWORD_UNKNOWN) {
		api_reply_error(req, 400, "InputValidationError", "Unsupported password hash");
		return false;
	}
	return true;
}

/* PUBLISH wd_events {"e": user, "p": {"command": "LOGOUT", "reason": …}}. */
static void publish_logout(struct api_request *req, const bson_oid_t *user, const char *reason)
{
	char hex[25];
	bson_oid_to_string(user, hex);
	json_t *msg = json_pack("{s:s,s:{s:s,s:s}}", "e", hex, "p", "command", "LOGOUT", "reason",
				reason);
	char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(msg);
	if (text == NULL)
		return;
	const char *argv[] = { "PUBLISH", "wd_events", text };
	struct redisReply *reply = wd_store_redis_argv(req->ctx->store, 3, argv, NULL);
	if (reply != NULL)
		freeReplyObject(reply);
	free(text);
}

static struct wd_auth_meta request_meta(struct api_request *req)
{
	struct wd_auth_meta meta = {
		.protocol = "API",
		.ip = api_str(req, "ip", req->remote_ip),
		.sess = api_str(req, "sess", NULL),
	};
	return meta;
}

static bool own_request(const struct api_request *req, const bson_oid_t *user)
{
	return req->has_token_user && bson_oid_equal(&req->token_user, user);
}

/* A field read from a user document as WildDuck's answer has it. */
static int64_t num(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, doc, key) && BSON_ITER_HOLDS_NUMBER(&iter))
		return bson_iter_as_int64(&iter);
	return 0;
}

static bool truthy(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key))
		return false;
	if (BSON_ITER_HOLDS_UTF8(&iter))
		return bson_iter_utf8(&iter, NULL)[0] != '\0';
	return bson_iter_as_bool(&iter);
}

/* enabled2fa as WildDuck's getEnabled2fa: arrays as they are, legacy true = totp. */
static json_t *enabled_2fa(const bson_t *doc)
{
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, doc, "enabled2fa")) {
		if (BSON_ITER_HOLDS_ARRAY(&iter))
			return api_json_from_bson_iter(&iter);
		if (BSON_ITER_HOLDS_BOOL(&iter) && bson_iter_bool(&iter))
			return json_pack("[s]", "totp");
	}
	return json_array();
}

static json_t *string_array(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, doc, key) && BSON_ITER_HOLDS_ARRAY(&iter))
		return api_json_from_bson_iter(&iter);
	return json_array();
}

static json_t *quota_json(struct api_request *req, const bson_t *doc)
{
	int64_t quota = num(doc, "quota");
	if (quota <= 0)
		quota = wd_store_setting_int(req->ctx->store, "const:max:storage",
					     WD_DEFAULT_MAX_STORAGE);
	int64_t used = num(doc, "storageUsed");
	return json_pack("{s:I,s:I}", "allowed", (json_int_t)quota, "used",
			 (json_int_t)(used > 0 ? used : 0));
}

/* ---- GET /users ---- */

static void get_users(struct api_request *req)
{
	bson_t filter = BSON_INITIALIZER;
	if (req->own_only) /* a user token lists itself */
		BSON_APPEND_OID(&filter, "_id", &req->token_user);
	const char *query = api_str(req, "query", NULL);
	if (query != NULL && query[0] != '\0') {
		char *view = wd_uview(query);
		bson_t or, a, b;
		BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &or);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &a);
		api_regex_append(&a, "address", query);
		bson_append_document_end(&or, &a);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &b);
		api_regex_append(&b, "unameview", view != NULL ? view : query);
		bson_append_document_end(&or, &b);
		bson_append_array_end(&filter, &or);
		free(view);
	}
	const char *forward = api_str(req, "forward", NULL);
	if (forward != NULL && forward[0] != '\0')
		api_regex_append(&filter, "targets.value", forward);
	api_tags_filter(&filter, api_str(req, "tags", NULL), api_str(req, "requiredTags", NULL));

	struct wd_store_page_request preq = {
		.db = WD_STORE_DB_USERS, .collection = "users", .filter = &filter,
		.sort_key = "_id",
	};
	struct wd_store_page page;
	if (!api_listing_find(req, "users", &preq, &page)) {
		bson_destroy(&filter);
		return;
	}
	bool meta = api_bool(req, "metaData", false);
	bool internal = api_bool(req, "internalData", false) && req->role != API_ROLE_USER;
	json_t *results = json_array();
	for (size_t i = 0; i < page.count; i++) {
		const bson_t *doc = page.docs[i];
		json_t *item = json_object();
		json_object_set_new(item, "id", api_doc_json(doc, "_id"));
		json_object_set_new(item, "username", api_doc_json(doc, "username"));
		json_object_set_new(item, "name", api_doc_json(doc, "name"));
		json_object_set_new(item, "address", api_doc_json(doc, "address"));
		json_object_set_new(item, "tags", string_array(doc, "tags"));
		json_object_set_new(item, "targets", api_targets_json(doc));
		json_object_set_new(item, "enabled2fa", enabled_2fa(doc));
		json_object_set_new(item, "autoreply", json_boolean(truthy(doc, "autoreply")));
		json_object_set_new(item, "encryptMessages", json_boolean(truthy(doc, "encryptMessages")));
		json_object_set_new(item, "encryptForwarded",
				    json_boolean(truthy(doc, "encryptForwarded")));
		json_object_set_new(item, "quota", quota_json(req, doc));
		json_object_set_new(item, "hasPasswordSet",
				    json_boolean(truthy(doc, "password") || truthy(doc, "tempPassword")));
		json_object_set_new(item, "activated", json_boolean(truthy(doc, "activated")));
		json_object_set_new(item, "disabled", json_boolean(truthy(doc, "disabled")));
		json_object_set_new(item, "suspended", json_boolean(truthy(doc, "suspended")));
		if (meta && truthy(doc, "metaData"))
			json_object_set_new(item, "metaData", api_metadata_json(doc, "metaData"));
		if (internal && truthy(doc, "internalData"))
			json_object_set_new(item, "internalData", api_metadata_json(doc, "internalData"));
		json_array_append_new(results, item);
	}
	api_reply_ok(req, api_listing_reply(req, "users", &preq, &page, results));
	wd_store_page_free(&page);
	bson_destroy(&filter);
}

/* ---- POST /users ---- */

/* The fields wd_user_create does not take, written right after creation. */
static bool extra_settings(struct api_request *req, bson_t *set, char *error, size_t size)
{
	json_t *v;
	if ((v = api_json(req, "tags")) != NULL && req->role != API_ROLE_USER)
		api_tags_append(set, v);
	if ((v = api_json(req, "targets")) != NULL &&
	    !api_targets_append(req->ctx->store, set, "targets", v, NULL, error, size))
		return false;
	if ((v = api_json(req, "fromWhitelist")) != NULL)
		append_whitelist(set, v);
	if ((v = api_json(req, "featureFlags")) != NULL)
		api_bson_append_json(set, "featureFlags", v);
	const char *pub = api_str(req, "pubKey", NULL);
	if (pub != NULL) {
		if (pub[0] != '\0' && strncmp(pub, "-----BEGIN PGP PUBLIC KEY BLOCK-----", 36) != 0) {
			snprintf(error, size, "\"pubKey\" does not match the PGP key format");
			return false;
		}
		BSON_APPEND_UTF8(set, "pubKey", pub);
	}
	return true;
}

static const char *mailbox_name(struct api_request *req, const char *key)
{
	json_t *boxes = api_json(req, "mailboxes");
	json_t *v = boxes != NULL ? json_object_get(boxes, key) : NULL;
	const char *s = json_string_value(v);
	return s != NULL && s[0] != '\0' ? s : NULL;
}

static bool check_mailboxes(struct api_request *req)
{
	json_t *boxes = api_json(req, "mailboxes");
	if (boxes == NULL)
		return true;
	const char *key;
	json_t *v;
	json_object_foreach(boxes, key, v) {
		bool known = strcmp(key, "sent") == 0 || strcmp(key, "trash") == 0 ||
			     strcmp(key, "junk") == 0 || strcmp(key, "drafts") == 0;
		const char *s = json_string_value(v);
		if (!known || s == NULL || strlen(s) > 1024 ||
		    (s[0] != '\0' && (strstr(s, "//") != NULL || s[strlen(s) - 1] == '/'))) {
			api_reply_error(req, 400, "InputValidationError", "\"mailboxes.%s\" is not allowed",
					key);
			return false;
		}
	}
	return true;
}

static void post_users(struct api_request *req)
{
	const char *username = api_str(req, "username", "");
	const char *verror = NULL;
	if (wd_username_validate(username, &verror) < 0) {
		api_reply_error(req, 400, "InputValidationError", "\"username\" %s", verror);
		return;
	}
	bool password_given;
	const char *password;
	if (!password_field(req, &password_given, &password))
		return;
	const char *address = api_str(req, "address", NULL);
	if (address != NULL && strchr(address, '*') != NULL) {
		api_reply_error(req, 400, "InputValidationError", "Invalid character in email address: *");
		return;
	}
	json_t *scopes = api_json(req, "disabledScopes");
	if (scopes != NULL && !check_scopes(req, scopes))
		return;
	if (!check_mailboxes(req))
		return;
	char *meta = NULL, *internal = NULL;
	if (!metadata_field(req, "metaData", &meta) ||
	    !metadata_field(req, "internalData", &internal)) {
		free(meta);
		return;
	}
	char error[300] = "";
	bson_t extra = BSON_INITIALIZER;
	if (!extra_settings(req, &extra, error, sizeof(error))) {
		api_reply_error(req, 400, "InputValidationError", "%s", error);
		goto out;
	}
	char *hash = NULL;
	if (password != NULL) {
		const char *herror = NULL;
		hash = api_bool(req, "hashedPassword", false) ?
			       strdup(password) : wd_auth_password_hash(password, strlen(password), &herror);
		if (hash == NULL) {
			api_reply_error(req, 500, "HashError", "%s", herror != NULL ? herror : "hash failed");
			goto out;
		}
	}
	struct wd_user_create create = {
		.username = username,
		.name = api_str(req, "name", NULL),
		.language = api_str(req, "language", NULL),
		.password_hash = hash,
		.require_password_change = api_bool(req, "requirePasswordChange", false),
		.address = api_bool(req, "emptyAddress", false) ? NULL : address,
		.empty_address = api_bool(req, "emptyAddress", false),
		.sent_name = mailbox_name(req, "sent"),
		.trash_name = mailbox_name(req, "trash"),
		.drafts_name = mailbox_name(req, "drafts"),
		.junk_name = mailbox_name(req, "junk"),
		.quota = api_int(req, "quota", 0),
		.retention = api_int(req, "retention", 0),
		.recipients = api_int(req, "recipients", 0),
		.forwards = api_int(req, "forwards", 0),
		.filters = api_int(req, "filters", 0),
		.received_max = api_int(req, "receivedMax", 0),
		.imap_max_upload = api_int(req, "imapMaxUpload", 0),
		.imap_max_download = api_int(req, "imapMaxDownload", 0),
		.pop3_max_download = api_int(req, "pop3MaxDownload", 0),
		.pop3_max_messages = api_int(req, "pop3MaxMessages", 0),
		.imap_max_connections = api_int(req, "imapMaxConnections", 0),
		.spam_level = (int)api_int(req, "spamLevel", WD_DEFAULT_SPAM_LEVEL),
		.disabled_scopes = scopes != NULL ? scope_bits(scopes) : 0,
		.upload_sent_messages = api_bool(req, "uploadSentMessages", false),
		.encrypt_messages = api_bool(req, "encryptMessages", false),
		.encrypt_forwarded = api_bool(req, "encryptForwarded", false),
		.metadata = meta,
		.internal_data = internal,
	};
	bson_oid_t id;
	char *serror = NULL;
	int ret = wd_store_user_create(req->ctx->store, &create, &id, &serror);
	free(hash);
	if (ret == WD_STORE_ERR_EXISTS) {
		bool addr = serror != NULL && strstr(serror, "address") != NULL;
		api_reply_error(req, 400, addr ? "AddressExistsError" : "UserExistsError", "%s",
				addr ? "This address already exists" : "This username already exists");
	} else if (ret == WD_STORE_ERR_INVALID || ret == WD_STORE_ERR_LIMIT) {
		api_reply_error(req, 400, "InputValidationError", "%s", serror);
	} else if (ret < 0) {
		api_reply_store_error(req, ret, serror, "UserNotFound");
	}
	free(serror);
	if (ret < 0)
		goto out;
	if (!bson_empty(&extra)) {
		bson_t update = BSON_INITIALIZER;
		BSON_APPEND_DOCUMENT(&update, "$set", &extra);
		serror = NULL;
		if (wd_store_doc_update(req->ctx->store, WD_STORE_DB_USERS, "users", &id, NULL, &update,
					&serror) < 0) {
			api_reply_store_error(req, WD_STORE_ERR_DATABASE, serror, "UserNotFound");
			free(serror);
			bson_destroy(&update);
			goto out;
		}
		bson_destroy(&update);
	}
	api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id", api_json_oid(&id)));
out:
	bson_destroy(&extra);
	free(meta);
	free(internal);
}

/* ---- GET /users/resolve/:username ---- */

static void resolve_user(struct api_request *req)
{
	const char *username = api_str(req, "username", "");
	struct wd_user *user = NULL;
	char *error = NULL;
	int ret;
	if (strchr(username, '@') != NULL) {
		char *norm = NULL;
		const char *nerror = NULL;
		ret = wd_address_normalize(username, WD_ADDRESS_REMOVE_LABEL | WD_ADDRESS_REMOVE_DOTS,
					   &norm, &nerror);
		ret = ret < 0 ? WD_STORE_ERR_NOT_FOUND :
				wd_store_user_get_by_username(req->ctx->store, norm, &user, &error);
		free(norm);
	} else {
		ret = wd_store_user_get_by_username(req->ctx->store, username, &user, &error);
	}
	if (ret < 0)
		api_reply_store_error(req, ret, ret == WD_STORE_ERR_NOT_FOUND ?
						     "This user does not exist" : error, "UserNotFound");
	else
		api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id", api_json_oid(&user->id)));
	free(error);
	wd_user_free(&user);
}

/* ---- GET /users/:user ---- */

/* A Redis counter and its TTL: {allowed, used, ttl}. */
static json_t *counter_json(struct api_request *req, const char *prefix, const char *hex,
			    int64_t allowed)
{
	char key[96];
	snprintf(key, sizeof(key), "%s:%s", prefix, hex);
	int64_t used = 0, ttl = -1;
	const char *get[] = { "GET", key };
	struct redisReply *r = wd_store_redis_argv(req->ctx->store, 2, get, NULL);
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		used = strtoll(r->str, NULL, 10);
	if (r != NULL)
		freeReplyObject(r);
	const char *t[] = { "TTL", key };
	r = wd_store_redis_argv(req->ctx->store, 2, t, NULL);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		ttl = r->integer;
	if (r != NULL)
		freeReplyObject(r);
	json_t *out = json_pack("{s:I,s:I}", "allowed", (json_int_t)allowed, "used", (json_int_t)used);
	json_object_set_new(out, "ttl", ttl >= 0 ? json_integer(ttl) : json_false());
	return out;
}

static int64_t or_setting(struct api_request *req, const bson_t *doc, const char *field,
			  const char *setting, int64_t def)
{
	int64_t v = num(doc, field);
	return v > 0 ? v : wd_store_setting_int(req->ctx->store, setting, def);
}

static void get_user(struct api_request *req)
{
	bson_oid_t id;
	if (!api_oid(req, "user", &id)) {
		api_reply_error(req, 400, "InputValidationError", "\"user\" is required");
		return;
	}
	bson_t doc;
	char *error = NULL;
	int ret = wd_store_doc_get(req->ctx->store, WD_STORE_DB_USERS, "users", &id, &doc, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret, ret == WD_STORE_ERR_NOT_FOUND ?
						     "This user does not exist" : error, "UserNotFound");
		free(error);
		return;
	}
	char hex[25];
	bson_oid_to_string(&id, hex);
	const int64_t gib10 = 10240LL * 1024 * 1024;
	bson_t *fq = BCON_NEW("user", BCON_OID(&id));
	int64_t filters_used = 0;
	if (wd_store_doc_count(req->ctx->store, WD_STORE_DB_MAIN, "filters", fq, &filters_used,
			       &error) < 0) {
		free(error);
		error = NULL;
	}
	bson_destroy(fq);
	int64_t imap_conns = 0;
	const char *hget[] = { "HGET", "lim:imap", hex };
	struct redisReply *r = wd_store_redis_argv(req->ctx->store, 3, hget, NULL);
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		imap_conns = strtoll(r->str, NULL, 10);
	if (r != NULL)
		freeReplyObject(r);

	json_t *limits = json_object();
	json_object_set_new(limits, "quota", quota_json(req, &doc));
	json_object_set_new(limits, "recipients",
			    counter_json(req, "wdr", hex, or_setting(req, &doc, "recipients",
								     "const:max:recipients", 2000)));
	json_object_set_new(limits, "forwards",
			    counter_json(req, "wdf", hex, or_setting(req, &doc, "forwards",
								     "const:max:forwards", 2000)));
	int64_t received = num(&doc, "receivedMax");
	json_object_set_new(limits, "received",
			    counter_json(req, "rl:rcpt", hex, received > 0 ? received : 60));
	json_object_set_new(limits, "filters",
			    json_pack("{s:I,s:I}", "allowed",
				      (json_int_t)or_setting(req, &doc, "filters", "const:max:filters", 400),
				      "used", (json_int_t)filters_used));
	json_object_set_new(limits, "imapUpload",
			    counter_json(req, "iup", hex, or_setting(req, &doc, "imapMaxUpload",
								     "const:max:imap:upload", gib10)));
	json_object_set_new(limits, "imapDownload",
			    counter_json(req, "idw", hex, or_setting(req, &doc, "imapMaxDownload",
								     "const:max:imap:download", gib10)));
	json_object_set_new(limits, "pop3Download",
			    counter_json(req, "pdw", hex, or_setting(req, &doc, "pop3MaxDownload",
								     "const:max:pop3:download", gib10)));
	int64_t pop3_max = num(&doc, "pop3MaxMessages"), imap_max = num(&doc, "imapMaxConnections");
	json_object_set_new(limits, "pop3MaxMessages",
			    json_pack("{s:I}", "allowed", (json_int_t)(pop3_max > 0 ? pop3_max : 250)));
	json_object_set_new(limits, "imapMaxConnections",
			    json_pack("{s:I,s:I}", "allowed", (json_int_t)(imap_max > 0 ? imap_max : 15),
				      "used", (json_int_t)imap_conns));

	bool user_role = req->role == API_ROLE_USER;
	json_t *out = json_object();
	json_object_set_new(out, "success", json_true());
	json_object_set_new(out, "id", json_string(hex));
	json_object_set_new(out, "username", api_doc_json(&doc, "username"));
	json_object_set_new(out, "name", api_doc_json(&doc, "name"));
	json_object_set_new(out, "address", api_doc_json(&doc, "address"));
	json_object_set_new(out, "language", api_doc_json(&doc, "language"));
	int64_t retention = num(&doc, "retention");
	json_object_set_new(out, "retention", retention > 0 ? json_integer(retention) : json_false());
	json_object_set_new(out, "enabled2fa", enabled_2fa(&doc));
	json_object_set_new(out, "autoreply", json_boolean(truthy(&doc, "autoreply")));
	json_object_set_new(out, "encryptMessages", json_boolean(truthy(&doc, "encryptMessages")));
	json_object_set_new(out, "encryptForwarded", json_boolean(truthy(&doc, "encryptForwarded")));
	json_object_set_new(out, "pubKey", api_doc_json(&doc, "pubKey"));
	json_object_set_new(out, "spamLevel", api_doc_json(&doc, "spamLevel"));
	json_object_set_new(out, "metaData", api_metadata_json(&doc, "metaData"));
	if (!user_role)
		json_object_set_new(out, "internalData", api_metadata_json(&doc, "internalData"));
	json_object_set_new(out, "targets", api_targets_json(&doc));
	json_object_set_new(out, "limits", limits);
	if (!user_role)
		json_object_set_new(out, "tags", string_array(&doc, "tags"));
	json_object_set_new(out, "fromWhitelist", string_array(&doc, "fromWhitelist"));
	bson_iter_t iter;
	json_object_set_new(out, "featureFlags",
			    bson_iter_init_find(&iter, &doc, "featureFlags") &&
					    BSON_ITER_HOLDS_DOCUMENT(&iter) ?
				    api_json_from_bson_iter(&iter) : json_object());
	if (!user_role)
		json_object_set_new(out, "disabledScopes", string_array(&doc, "disabledScopes"));
	json_object_set_new(out, "hasPasswordSet",
			    json_boolean(truthy(&doc, "password") || truthy(&doc, "tempPassword")));
	json_object_set_new(out, "activated", json_boolean(truthy(&doc, "activated")));
	json_object_set_new(out, "disabled", json_boolean(truthy(&doc, "disabled")));
	json_object_set_new(out, "suspended", json_boolean(truthy(&doc, "suspended")));
	bson_destroy(&doc);
	api_reply_ok(req, out);
}

/* ---- PUT /users/:user ---- */

static const char *const put_numbers[] = {
	"retention", "quota", "recipients", "forwards", "filters", "imapMaxUpload",
	"imapMaxDownload", "pop3MaxDownload", "pop3MaxMessages", "imapMaxConnections",
	"receivedMax", "spamLevel", NULL,
};
static const char *const put_bools[] = {
	"uploadSentMessages", "encryptMessages", "encryptForwarded", "disabled", "suspended", NULL,
};
/* Redis counters WildDuck resets when their limit changes. */
static const char *const reset_keys[][2] = {
	{ "recipients", "wdr" }, { "forwards", "wdf" }, { "imapMaxUpload", "iup" },
	{ "imapMaxDownload", "idw" }, { "pop3MaxDownload", "pdw" }, { "pop3MaxMessages", "pxm" },
	{ "receivedMax", "rl:rcpt" },
};

static void put_user(struct api_request *req)
{
	bson_oid_t id;
	if (!api_require_user(req, &id))
		return;
	bool password_given;
	const char *password;
	if (!password_field(req, &password_given, &password))
		return;
	json_t *scopes = api_json(req, "disabledScopes");
	bool user_role = req->role == API_ROLE_USER;
	if (scopes != NULL && !user_role && !check_scopes(req, scopes))
		return;
	char *meta = NULL, *internal = NULL;
	if (!metadata_field(req, "metaData", &meta) ||
	    !metadata_field(req, "internalData", &internal)) {
		free(meta);
		return;
	}
	bson_t set = BSON_INITIALIZER, update = BSON_INITIALIZER;
	char error[300] = "";
	bson_t doc;
	bool have_doc = false;
	char *serror = NULL;
	struct wd_auth_meta ameta = request_meta(req);

	if (!extra_settings(req, &set, error, sizeof(error))) {
		api_reply_error(req, 400, "InputValidationError", "%s", error);
		goto out;
	}
	for (size_t i = 0; put_numbers[i] != NULL; i++)
		if (api_has(req, put_numbers[i]))
			api_bson_js_number(&set, put_numbers[i], api_int(req, put_numbers[i], 0));
	for (size_t i = 0; put_bools[i] != NULL; i++)
		if (api_has(req, put_bools[i]))
			BSON_APPEND_BOOL(&set, put_bools[i], api_bool(req, put_bools[i], false));
	if (api_has(req, "name"))
		BSON_APPEND_UTF8(&set, "name", api_str(req, "name", ""));
	if (api_has(req, "language"))
		BSON_APPEND_UTF8(&set, "language", api_str(req, "language", ""));
	if (scopes != NULL && !user_role)
		append_scopes(&set, scopes);
	if (meta != NULL)
		BSON_APPEND_UTF8(&set, "metaData", meta);
	if (internal != NULL)
		BSON_APPEND_UTF8(&set, "internalData", internal);
	if (api_bool(req, "disable2fa", false)) {
		bson_t arr, webauthn, creds;
		BSON_APPEND_ARRAY_BEGIN(&set, "enabled2fa", &arr);
		bson_append_array_end(&set, &arr);
		BSON_APPEND_UTF8(&set, "seed", "");
		BSON_APPEND_UTF8(&set, "pendingSeed", "");
		BSON_APPEND_BOOL(&set, "pendingSeedChanged", false);
		BSON_APPEND_DOCUMENT_BEGIN(&set, "webauthn", &webauthn);
		BSON_APPEND_ARRAY_BEGIN(&webauthn, "credentials", &creds);
		bson_append_array_end(&webauthn, &creds);
		bson_append_document_end(&set, &webauthn);
	}
	bool plain_password = password != NULL && !api_bool(req, "hashedPassword", false);
	if (bson_empty(&set) && !password_given && !api_has(req, "disable2fa")) {
		api_reply_error(req, 400, "NoUpdates", "Nothing was updated");
		goto out;
	}

	/* the current document: existing password check and state changes */
	if (wd_store_doc_get(req->ctx->store, WD_STORE_DB_USERS, "users", &id, &doc, &serror) < 0) {
		api_reply_store_error(req, WD_STORE_ERR_NOT_FOUND, "This user does not exist",
				      "UserNotFound");
		goto out;
	}
	have_doc = true;
	const char *existing = api_str(req, "existingPassword", NULL);
	if (password_given && own_request(req, &id) && user_role &&
	    (existing == NULL || existing[0] == '\0')) {
		api_reply_error(req, 400, "InputValidationError",
				"\"existingPassword\" is required to change the password");
		goto out;
	}
	const char *current = api_doc_str(&doc, "password");
	if (existing != NULL && existing[0] != '\0' && current != NULL && current[0] != '\0') {
		bool match = false;
		const char *herror;
		if (wd_auth_password_verify(existing, strlen(existing), current, &match, &herror) < 0 ||
		    !match) {
			api_reply_error(req, 403, "AuthFail", "Password verification failed");
			goto out;
		}
	}
	bool suspending = api_bool(req, "suspended", false) && !truthy(&doc, "suspended");
	bool disabling = api_bool(req, "disabled", false) && !truthy(&doc, "disabled");

	/* password without libwdauth's hashing: hashed already, or removed */
	if (password_given && !plain_password) {
		BSON_APPEND_UTF8(&set, "password", password != NULL ? password : "");
		BSON_APPEND_BOOL(&set, "tempPassword", false);
		BSON_APPEND_DATE_TIME(&set, "passwordChange", (int64_t)time(NULL) * 1000);
	}
	if (!bson_empty(&set)) {
		BSON_APPEND_DOCUMENT(&update, "$set", &set);
		if (suspending || disabling || (password_given && !plain_password)) {
			bson_t inc;
			BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &inc);
			BSON_APPEND_INT32(&inc, "authVersion", 1);
			bson_append_document_end(&update, &inc);
		}
		if (password_given && !plain_password && current != NULL && current[0] != '\0') {
			bson_t push, old;
			BSON_APPEND_DOCUMENT_BEGIN(&update, "$push", &push);
			BSON_APPEND_DOCUMENT_BEGIN(&push, "oldPasswords", &old);
			BSON_APPEND_DATE_TIME(&old, "date", (int64_t)time(NULL) * 1000);
			BSON_APPEND_UTF8(&old, "hash", current);
			bson_append_document_end(&push, &old);
			bson_append_document_end(&update, &push);
		}
		int ret = wd_store_doc_update(req->ctx->store, WD_STORE_DB_USERS, "users", &id, NULL,
					      &update, &serror);
		if (ret < 0) {
			api_reply_store_error(req, ret, serror, "UserNotFound");
			goto out;
		}
	}
	if (plain_password) {
		struct wd_auth_password_change change = {
			.password = password, .len = strlen(password),
		};
		int ret = wd_auth_password_set(req->ctx->auth, &id, &change, &ameta, &serror);
		if (ret < 0) {
			api_reply_error(req, ret == WD_AUTH_ERR_NOT_FOUND ? 404 : 500,
					ret == WD_AUTH_ERR_NOT_FOUND ? "UserNotFound" : "HashError", "%s",
					serror != NULL ? serror : "password change failed");
			goto out;
		}
	}
	if (password_given)
		api_access_token_follow(req, &id); /* the caller's own session goes on */
	/* limits that changed start counting afresh */
	char hex[25];
	bson_oid_to_string(&id, hex);
	for (size_t i = 0; i < sizeof(reset_keys) / sizeof(reset_keys[0]); i++) {
		if (!api_has(req, reset_keys[i][0]))
			continue;
		char key[96];
		snprintf(key, sizeof(key), "%s:%s", reset_keys[i][1], hex);
		const char *argv[] = { "DEL", key };
		struct redisReply *r = wd_store_redis_argv(req->ctx->store, 2, argv, NULL);
		if (r != NULL)
			freeReplyObject(r);
	}
	if (api_has(req, "imapMaxConnections")) {
		const char *argv[] = { "HDEL", "lim:imap", hex };
		struct redisReply *r = wd_store_redis_argv(req->ctx->store, 3, argv, NULL);
		if (r != NULL)
			freeReplyObject(r);
	}
	if (password_given || suspending || disabling)
		publish_logout(req, &id, "Authentication required");
	api_reply_success(req);
out:
	if (have_doc)
		bson_destroy(&doc);
	free(serror);
	bson_destroy(&set);
	bson_destroy(&update);
	free(meta);
	free(internal);
}

/* ---- DELETE /users/:user ---- */

static void delete_user(struct api_request *req)
{
	bson_oid_t id;
	if (!api_require_user(req, &id))
		return;
	struct wd_user_delete_report report;
	char *error = NULL;
	int ret = wd_store_user_delete(req->ctx->store, &id, &report, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret, ret == WD_STORE_ERR_NOT_FOUND ?
						     "This user does not exist" : error, "UserNotFound");
		free(error);
		return;
	}
	publish_logout(req, &id, "Account was deleted");
	json_t *out = json_pack("{s:b,s:s,s:o,s:{s:I}}", "success", 1, "code", "TaskScheduled",
				"user", api_json_oid(&id), "addresses", "deleted",
				(json_int_t)report.addresses);
	json_object_set_new(out, "deleteAfter", api_json_date((int64_t)time(NULL) * 1000));
	api_reply_ok(req, out);
}

/* ---- PUT /users/:user/logout ---- */

static void logout_user(struct api_request *req)
{
	bson_oid_t id;
	if (!api_require_user(req, &id))
		return;
	publish_logout(req, &id, api_str(req, "reason", "Logout requested from API"));
	api_reply_success(req);
}

/* ---- quota ---- */

static void reset_quota(struct api_request *req)
{
	bson_oid_t id;
	if (!api_oid(req, "user", &id)) {
		api_reply_error(req, 400, "InputValidationError", "\"user\" is required");
		return;
	}
	int64_t used, previous;
	char *error = NULL;
	int ret = wd_store_user_quota_recount(req->ctx->store, &id, &used, &previous, &error);
	if (ret < 0)
		api_reply_store_error(req, ret, ret == WD_STORE_ERR_NOT_FOUND ?
						     "This user does not exist" : error, "UserNotFound");
	else
		api_reply_ok(req, json_pack("{s:b,s:I,s:I}", "success", 1, "storageUsed",
					    (json_int_t)used, "previousStorageUsed",
					    (json_int_t)previous));
	free(error);
}

/* Every user, QUOTA_BATCH at a time in _id order (WildDuck queues a task;
   here the request does the work itself and answers when it is done). */
static void reset_quota_all(struct api_request *req)
{
	bson_oid_t after;
	bool has_after = false;
	int64_t users = 0;
	for (;;) {
		struct wd_user_list list;
		char *error = NULL;
		int ret = wd_store_user_list(req->ctx->store, has_after ? &after : NULL, QUOTA_BATCH,
					     &list, &error);
		if (ret < 0) {
			api_reply_store_error(req, ret, error, "UserNotFound");
			free(error);
			return;
		}
		for (size_t i = 0; i < list.count; i++) {
			int64_t used, previous;
			if (wd_store_user_quota_recount(req->ctx->store, &list.items[i].id, &used,
							&previous, &error) == 0)
				users++;
			free(error);
			error = NULL;
		}
		size_t count = list.count;
		if (count > 0) {
			after = list.items[count - 1].id;
			has_after = true;
		}
		wd_user_list_free(&list);
		if (count < QUOTA_BATCH)
			break;
	}
	api_reply_ok(req, json_pack("{s:b,s:I}", "success", 1, "users", (json_int_t)users));
}

/* ---- POST /users/:user/password/reset ---- */

static bool random_password(char out[RESET_PASSWORD_LENGTH + 1])
{
	static const char alphabet[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char bytes[RESET_PASSWORD_LENGTH];
	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return false;
	for (size_t i = 0; i < RESET_PASSWORD_LENGTH; i++)
		out[i] = alphabet[bytes[i] % (sizeof(alphabet) - 1)];
	out[RESET_PASSWORD_LENGTH] = '\0';
	return true;
}

static void reset_password(struct api_request *req)
{
	bson_oid_t id;
	if (req->role == API_ROLE_USER) { /* updateAny in WildDuck: not for user tokens */
		api_reply_error(req, 403, "MissingPrivileges", "Not enough privileges");
		return;
	}
	if (!api_require_user(req, &id))
		return;
	int64_t valid_after = api_int(req, "validAfter", 0);
	char password[RESET_PASSWORD_LENGTH + 1];
	if (!random_password(password)) {
		api_reply_error(req, 500, "HashError", "No randomness");
		return;
	}
	struct wd_auth_password_change change = {
		.password = password, .len = strlen(password), .temporary = true,
	};
	struct wd_auth_meta meta = request_meta(req);
	char *error = NULL;
	int ret = wd_auth_password_set(req->ctx->auth, &id, &change, &meta, &error);
	if (ret == 0 && valid_after > 0) {
		bson_t *update = BCON_NEW("$set", "{", "tempPassword.validAfter",
					  BCON_DATE_TIME(valid_after), "}");
		ret = wd_store_doc_update(req->ctx->store, WD_STORE_DB_USERS, "users", &id, NULL,
					  update, &error);
		bson_destroy(update);
	}
	if (ret < 0) {
		api_reply_error(req, 500, "UserUpdateFail", "%s",
				error != NULL ? error : "Could not update user");
		free(error);
		return;
	}
	int64_t when = valid_after > 0 ? valid_after : (int64_t)time(NULL) * 1000;
	api_reply_ok(req, json_pack("{s:b,s:s,s:o}", "success", 1, "password", password,
				    "validAfter", api_json_date(when)));
}

/* ---- the table ---- */

#define USER_PATH { "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" }
#define NUMBER_FIELD(name, text) { name, API_T_INT, 0, 0, NUM_MAX, NULL, text }

static const struct api_field list_fields[] = {
	{ "query", API_T_STRING, API_F_QUERY | API_F_LOWERCASE | API_F_EMPTY_OK, 0, 255, NULL,
	  "Partial match of username or default email address" },
	{ "forward", API_T_STRING, API_F_QUERY | API_F_LOWERCASE | API_F_EMPTY_OK, 0, 255, NULL,
	  "Partial match of a forward email address or URL" },
	{ "tags", API_T_STRING, API_F_QUERY | API_F_TRIM | API_F_EMPTY_OK, 0, 1024, NULL,
	  "Comma separated tags, the user must have at least one" },
	{ "requiredTags", API_T_STRING, API_F_QUERY | API_F_TRIM | API_F_EMPTY_OK, 0, 1024, NULL,
	  "Comma separated tags, the user must have all of them" },
	{ "metaData", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Include metaData in the results" },
	{ "internalData", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "Include internalData in the results (not for user tokens)" },
	API_PAGE_FIELDS,
	API_FIELDS_END
};

#define USER_SETTINGS_FIELDS \
	{ "language", API_T_STRING, API_F_EMPTY_OK, 0, 20, NULL, "Language code for the user" }, \
	{ "name", API_T_STRING, 0, 0, 256, NULL, "Name of the user" }, \
	{ "targets", API_T_STRINGS, 0, 0, 0, NULL, \
	  "Forwarding targets: addresses, smtp(s):// relays or http(s):// URLs" }, \
	{ "spamLevel", API_T_INT, 0, 0, 100, NULL, \
	  "0 = everything is spam, 100 = nothing is spam (default 50)" }, \
	NUMBER_FIELD("retention", "Default retention time in ms for new mailboxes, 0 = none"), \
	NUMBER_FIELD("quota", "Allowed storage in bytes, 0 = the default"), \
	NUMBER_FIELD("recipients", "Messages per 24 h that can be sent, 0 = the default"), \
	NUMBER_FIELD("forwards", "Messages per 24 h that can be forwarded, 0 = the default"), \
	NUMBER_FIELD("filters", "How many filters are allowed, 0 = the default"), \
	NUMBER_FIELD("imapMaxUpload", "Bytes per 24 h uploaded over IMAP, 0 = the default"), \
	NUMBER_FIELD("imapMaxDownload", "Bytes per 24 h downloaded over IMAP, 0 = the default"), \
	NUMBER_FIELD("pop3MaxDownload", "Bytes per 24 h downloaded over POP3, 0 = the default"), \
	NUMBER_FIELD("pop3MaxMessages", "Latest messages listed in a POP3 session, 0 = the default"), \
	NUMBER_FIELD("imapMaxConnections", "Parallel IMAP connections, 0 = the default"), \
	NUMBER_FIELD("receivedMax", "Messages received from MX per 60 s, 0 = the default"), \
	{ "fromWhitelist", API_T_STRINGS, 0, 0, 0, NULL, \
	  "Additional addresses this user may send from (wildcards allowed)" }, \
	{ "tags", API_T_STRINGS, 0, 0, 0, NULL, "Tags of this user" }, \
	{ "uploadSentMessages", API_T_BOOL, 0, 0, 0, NULL, \
	  "Copy messages sent through MSA to the Sent Mail folder" }, \
	{ "disabledScopes", API_T_STRINGS, 0, 0, 3, NULL, \
	  "Scopes this user may not log in to (imap, pop3, smtp)" }, \
	{ "metaData", API_T_ANY, 0, 0, 1048576, NULL, "Metadata: an object or its JSON text" }, \
	{ "internalData", API_T_ANY, 0, 0, 1048576, NULL, \
	  "Internal metadata (not for user tokens): an object or its JSON text" }, \
	{ "pubKey", API_T_STRING, API_F_TRIM | API_F_EMPTY_OK, 0, 65536, NULL, \
	  "Public PGP key for encryption, \"\" removes it" }, \
	{ "encryptMessages", API_T_BOOL, 0, 0, 0, NULL, "Encrypt received messages" }, \
	{ "encryptForwarded", API_T_BOOL, 0, 0, 0, NULL, "Encrypt forwarded messages" }, \
	{ "featureFlags", API_T_OBJECT, 0, 0, 4096, NULL, "Feature flags ({indexing: true})" }, \
	{ "password", API_T_ANY, 0, 0, 1024, NULL, \
	  "Password, or false / \"\" for none (application passwords still work)" }, \
	{ "hashedPassword", API_T_BOOL, 0, 0, 0, NULL, "The password is a hash already" }, \
	{ "allowUnsafe", API_T_BOOL, 0, 0, 0, NULL, "Accepted for compatibility (no breach check)" }

static const struct api_field create_fields[] = {
	{ "username", API_T_STRING, API_F_REQUIRED | API_F_LOWERCASE, 1, 128, NULL,
	  "Username (dots are informational: \"user.name\" is \"username\")" },
	{ "address", API_T_EMAIL, 0, 0, 512, NULL, "Main address (derived when not given)" },
	{ "emptyAddress", API_T_BOOL, 0, 0, 0, NULL, "Create the user without any address" },
	{ "requirePasswordChange", API_T_BOOL, 0, 0, 0, NULL,
	  "The password is temporary: the user must change it" },
	{ "addTagsToAddress", API_T_BOOL, 0, 0, 0, NULL, "Accepted for compatibility" },
	{ "mailboxes", API_T_OBJECT, 0, 0, 8192, NULL,
	  "Names of the special mailboxes: {sent, trash, junk, drafts}" },
	USER_SETTINGS_FIELDS,
	API_FIELDS_END
};

static const struct api_field update_fields[] = {
	USER_PATH,
	{ "existingPassword", API_T_STRING, API_F_EMPTY_OK, 1, 256, NULL,
	  "The current password (required when a user token changes its password)" },
	{ "disable2fa", API_T_BOOL, 0, 0, 0, NULL, "Turn off every 2FA method" },
	{ "disabled", API_T_BOOL, 0, 0, 0, NULL, "Disable the account (no login, no mail)" },
	{ "suspended", API_T_BOOL, 0, 0, 0, NULL, "Suspend the account (no login)" },
	USER_SETTINGS_FIELDS,
	API_FIELDS_END
};

static const struct api_field user_only_fields[] = { USER_PATH, API_FIELDS_END };

static const struct api_field logout_fields[] = {
	USER_PATH,
	{ "reason", API_T_STRING, 0, 0, 128, NULL, "Message sent to the closed sessions" },
	API_FIELDS_END
};

static const struct api_field resolve_fields[] = {
	{ "username", API_T_STRING, API_F_REQUIRED | API_F_PATH | API_F_LOWERCASE, 1, 128, NULL,
	  "Username or address of the user" },
	API_FIELDS_END
};

static const struct api_field reset_fields[] = {
	USER_PATH,
	{ "validAfter", API_T_DATE, API_F_NULLABLE, 0, 0, NULL,
	  "The temporary password is not valid before this time" },
	API_FIELDS_END
};

const struct api_route api_routes_users[] = {
	{ API_GET, "/users", get_users, "userlisting", API_READ, API_R_SELF, list_fields, "Users",
	  "List registered users", "getUsers" },
	{ API_POST, "/users", post_users, "users", API_CREATE, 0, create_fields, "Users",
	  "Create a new user", "createUser" },
	{ API_GET, "/users/resolve/:username", resolve_user, "users", API_READ, 0, resolve_fields,
	  "Users", "Resolve the ID of a username", "resolveUser" },
	{ API_GET, "/users/:user", get_user, "users", API_READ, 0, user_only_fields, "Users",
	  "Request user information", "getUser" },
	{ API_PUT, "/users/:user", put_user, "users", API_UPDATE, 0, update_fields, "Users",
	  "Update user information", "updateUser" },
	{ API_DELETE, "/users/:user", delete_user, "users", API_DELETE_ACTION, 0, user_only_fields,
	  "Users", "Delete a user", "deleteUser" },
	{ API_PUT, "/users/:user/logout", logout_user, "users", API_READ, 0, logout_fields, "Users",
	  "Log out every session of the user", "logoutUser" },
	{ API_POST, "/users/:user/quota/reset", reset_quota, "users", API_UPDATE, 0,
	  user_only_fields, "Users", "Recalculate the user's storage use", "recalculateQuota" },
	{ API_POST, "/quota/reset", reset_quota_all, "users", API_UPDATE, 0, NULL, "Users",
	  "Recalculate the storage use of every user", "recalculateQuotaAllUsers" },
	{ API_POST, "/users/:user/password/reset", reset_password, "users", API_UPDATE, 0,
	  reset_fields, "Users", "Set a temporary password for the user", "resetUserPassword" },
	API_ROUTES_END
};
