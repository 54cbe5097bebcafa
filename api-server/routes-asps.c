/* Routes: application-specific passwords, as WildDuck's lib/api/asps.js.
 *
 * Creation and deletion are libwdauth's (wd-auth-asp.h: the password is
 * generated, hashed, given a selector and logged there; it is in the answer
 * once and never again). Listing reads the asps collection directly because
 * the answer carries what the library's list leaves out (the auth event of
 * the last use); entries past `expires` are left out, as FerretDB does not
 * enforce the TTL index. `scopes` ["*"] is shown as every scope, as
 * WildDuck shows it.
 *
 * Not done: a pregenerated `password` (libwdauth has no way to take one)
 * and `generateMobileconfig` (a signed Apple profile) answer 400. */
#include "account.h"
#include "api.h"

#include "wd-auth-asp.h"
#include "wd-log.h"
#include "wd-store-user.h"
#include "wd-store.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const all_scopes[] = { "imap", "pop3", "smtp", NULL };

static json_t *asp_json(const bson_t *doc)
{
	json_t *out = json_object();
	bson_iter_t it, child;
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
		json_object_set_new(out, "id", api_json_oid(bson_iter_oid(&it)));
	json_object_set_new(out, "description",
			    bson_iter_init_find(&it, doc, "description") && BSON_ITER_HOLDS_UTF8(&it)
				    ? json_string(bson_iter_utf8(&it, NULL)) : json_string(""));
	json_t *scopes = json_array();
	bool all = false;
	if (bson_iter_init_find(&it, doc, "scopes") && BSON_ITER_HOLDS_ARRAY(&it) &&
	    bson_iter_recurse(&it, &child)) {
		while (bson_iter_next(&child)) {
			if (!BSON_ITER_HOLDS_UTF8(&child))
				continue;
			const char *s = bson_iter_utf8(&child, NULL);
			if (strcmp(s, "*") == 0)
				all = true;
			else
				json_array_append_new(scopes, json_string(s));
		}
	}
	if (all) {
		json_array_clear(scopes);
		for (size_t i = 0; all_scopes[i] != NULL; i++)
			json_array_append_new(scopes, json_string(all_scopes[i]));
	}
	json_object_set_new(out, "scopes", scopes);
	json_t *time = NULL, *event = NULL;
	if (bson_iter_init_find(&it, doc, "used") && BSON_ITER_HOLDS_DATE_TIME(&it))
		time = api_json_from_bson_iter(&it);
	if (bson_iter_init_find(&it, doc, "authEvent") && BSON_ITER_HOLDS_OID(&it))
		event = api_json_oid(bson_iter_oid(&it));
	json_object_set_new(out, "lastUse", json_pack("{s:o,s:o}", "time",
						      time != NULL ? time : json_false(), "event",
						      event != NULL ? event : json_false()));
	if (bson_iter_init_find(&it, doc, "expires") && BSON_ITER_HOLDS_DATE_TIME(&it))
		json_object_set_new(out, "expires", api_json_from_bson_iter(&it));
	if (bson_iter_init_find(&it, doc, "created") && BSON_ITER_HOLDS_DATE_TIME(&it))
		json_object_set_new(out, "created", api_json_from_bson_iter(&it));
	return out;
}

static bool expired(const bson_t *doc, int64_t now)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, doc, "expires") && BSON_ITER_HOLDS_DATE_TIME(&it) &&
	       bson_iter_date_time(&it) <= now;
}

static bool has_ttl(const bson_t *doc)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, doc, "ttl") && BSON_ITER_HOLDS_NUMBER(&it) &&
	       bson_iter_as_int64(&it) > 0;
}

/* The documents of `filter` in _id order as answers into `results`; false
   when answered (500). */
static bool asps_find(struct api_request *req, const bson_t *filter, json_t *results,
		      bool show_all)
{
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_USERS);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_USERS, "asps");
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit",
				BCON_INT64(10000));
	mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	int64_t now = api_now_ms();
	while (mongoc_cursor_next(c, &doc)) {
		if (expired(doc, now) || (!show_all && has_ttl(doc)))
			continue;
		json_array_append_new(results, asp_json(doc));
	}
	bson_error_t error;
	bool failed = mongoc_cursor_error(c, &error);
	mongoc_cursor_destroy(c);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_USERS, client);
	if (failed) {
		wd_error("api", "asps: %s", error.message);
		api_reply_error(req, 500, "InternalDatabaseError", "Database error, try again later");
	}
	return !failed;
}

static void get_asps(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	bson_t *filter = BCON_NEW("user", BCON_OID(&user));
	json_t *results = json_array();
	bool ok = asps_find(req, filter, results, api_bool(req, "showAll", false));
	bson_destroy(filter);
	if (!ok) {
		json_decref(results);
		return;
	}
	api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "results", results));
}

static void get_asp(struct api_request *req)
{
	bson_oid_t user, asp;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "asp", &asp);
	bson_t *filter = BCON_NEW("_id", BCON_OID(&asp), "user", BCON_OID(&user));
	json_t *results = json_array();
	bool ok = asps_find(req, filter, results, true);
	bson_destroy(filter);
	if (!ok) {
		json_decref(results);
		return;
	}
	if (json_array_size(results) == 0) {
		json_decref(results);
		api_reply_error(req, 404, "AspNotFound", "Invalid or unknown ASP key");
		return;
	}
	json_t *body = json_incref(json_array_get(results, 0));
	json_decref(results);
	json_object_set_new(body, "success", json_true());
	api_reply_ok(req, body);
}

static void post_asp(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	const char *password = api_str(req, "password", "");
	if (password[0] != '\0') {
		api_reply_error(req, 400, "InputValidationError",
				"\"password\": pregenerated passwords are not supported");
		return;
	}
	if (api_bool(req, "generateMobileconfig", false)) {
		api_reply_error(req, 400, "InputValidationError",
				"\"generateMobileconfig\": profile files are not supported");
		return;
	}
	unsigned scopes = 0;
	json_t *list = api_json(req, "scopes");
	size_t i;
	json_t *item;
	json_array_foreach(list, i, item) {
		const char *name = json_string_value(item);
		bool known = strcmp(name, "*") == 0;
		for (size_t k = 0; all_scopes[k] != NULL; k++)
			known = known || strcmp(name, all_scopes[k]) == 0;
		unsigned bit = known ? wd_auth_scope_bit(name) : 0;
		if (bit == 0) {
			api_reply_error(req, 400, "InputValidationError",
					"\"scopes[%zu]\" must be one of [imap, pop3, smtp, *]", i);
			return;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(json_string_value(json_array_get(list, j)), name) == 0) {
				api_reply_error(req, 400, "InputValidationError",
						"\"scopes[%zu]\" contains a duplicate value", i);
				return;
			}
		}
		scopes |= bit;
	}
	struct wd_asp_create create = {
		.description = api_str(req, "description", ""),
		.scopes = scopes == 0 ? WD_AUTH_SCOPE_ALL : scopes,
		.ttl = api_int(req, "ttl", 0),
	};
	struct wd_auth_meta meta;
	api_account_meta(req, &meta);
	bson_oid_t id;
	char generated[WD_AUTH_ASP_LEN + 1];
	char *error = NULL;
	int ret = wd_auth_asp_create(req->ctx->auth, &user, &create, &meta, &id, generated, &error);
	if (ret < 0) {
		api_account_auth_error(req, ret, error, "UserNotFound", "InputValidationError");
		free(error);
		return;
	}
	api_reply_ok(req, json_pack("{s:b,s:o,s:s}", "success", 1, "id", api_json_oid(&id),
				    "password", generated));
	OPENSSL_cleanse(generated, sizeof(generated));
}

static void delete_asp(struct api_request *req)
{
	bson_oid_t user, asp;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "asp", &asp);
	struct wd_auth_meta meta;
	api_account_meta(req, &meta);
	char *error = NULL;
	int ret = wd_auth_asp_delete(req->ctx->auth, &user, &asp, &meta, &error);
	if (ret < 0) {
		api_account_auth_error(req, ret, ret == WD_AUTH_ERR_NOT_FOUND
						     ? "Application Specific Password was not found"
						     : error,
				       "AspNotFound", "InputValidationError");
		free(error);
		return;
	}
	api_reply_success(req);
}

/* ---- routes ---- */

static const struct api_field list_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "showAll", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "If not true then skips entries with a TTL set" },
	API_FIELDS_END
};

static const struct api_field one_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "asp", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL,
	  "ID of the Application Password" },
	API_FIELDS_END
};

static const struct api_field create_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "description", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 1, 255, NULL,
	  "Description for the Application Password entry" },
	{ "scopes", API_T_STRINGS, 0, 0, 4, NULL,
	  "List of scopes this Password applies to (imap, pop3, smtp); \"*\" is every scope "
	  "except \"master\" (the default)" },
	{ "address", API_T_EMAIL, API_F_EMPTY_OK, 0, 512, NULL,
	  "E-mail address for the account in a mobileconfig file" },
	{ "password", API_T_STRING, API_F_EMPTY_OK, 0, 16, NULL,
	  "Pregenerated password (not supported: leave it out)" },
	{ "generateMobileconfig", API_T_BOOL, 0, 0, 0, NULL,
	  "If true then the result contains a mobileconfig file (not supported)" },
	{ "ttl", API_T_INT, 0, 0, 100LL * 365 * 24 * 3600, NULL,
	  "TTL in seconds for this password; every use resets it. 0: no TTL" },
	API_FIELDS_END
};

const struct api_route api_routes_asps[] = {
	{ API_GET, "/users/:user/asps", get_asps, "asps", API_READ, 0, list_fields,
	  "ApplicationPasswords", "List Application Passwords", "getASPs" },
	{ API_GET, "/users/:user/asps/:asp", get_asp, "asps", API_READ, 0, one_fields,
	  "ApplicationPasswords", "Request ASP information", "getASP" },
	{ API_POST, "/users/:user/asps", post_asp, "asps", API_CREATE, 0, create_fields,
	  "ApplicationPasswords", "Create new Application Password (shown once)", "createASP" },
	{ API_DELETE, "/users/:user/asps/:asp", delete_asp, "asps", API_DELETE_ACTION, 0,
	  one_fields, "ApplicationPasswords", "Delete an Application Password", "deleteASP" },
	API_ROUTES_END
};
