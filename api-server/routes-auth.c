/* Routes: POST /preauth, POST/DELETE /authenticate, GET /users/:user/authlog
 * and GET /users/:user/authlog/:event, as WildDuck's lib/api/auth.js.
 *
 * Authentication itself is libwdauth's (wd_auth_authenticate: limits, the
 * auth log, app passwords); here the request becomes a wd_auth_request and
 * the result WildDuck's answer: 200 {id, username, address, scope,
 * require2fa (list or false), requirePasswordChange, token?}, or 403 with
 * AuthFailed / RateLimitedError / InvalidAuthScope / TempPasswordNotYetValid.
 * A token (token: true, master scope only) is a user-role access token
 * (access.h) bound to the user's authVersion, so a password change or a
 * first 2FA method ends it. */
#include "access.h"
#include "account.h"
#include "api.h"

#include "wd-auth-address.h"
#include "wd-auth-login.h"
#include "wd-auth-totp.h"
#include "wd-log.h"
#include "wd-store-user.h"
#include "wd-store.h"

#include <hiredis/hiredis.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static const char *const scope_choices[] = { "master", "imap", "pop3", "smtp", NULL };

/* "totp,custom" → ["totp", "custom"]; "" → false */
static json_t *methods_json(const char *list)
{
	if (list == NULL || list[0] == '\0')
		return json_false();
	json_t *array = json_array();
	for (const char *p = list; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		json_array_append_new(array, json_stringn(p, len));
		p += len + (end != NULL ? 1 : 0);
	}
	return array;
}

static bool doc_array_has(const bson_t *doc, const char *key, const char *value)
{
	bson_iter_t it, child;
	if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &child))
		return false;
	while (bson_iter_next(&child))
		if (BSON_ITER_HOLDS_UTF8(&child) && strcmp(bson_iter_utf8(&child, NULL), value) == 0)
			return true;
	return false;
}

/* ---- POST /preauth ---- */

static void post_preauth(struct api_request *req)
{
	const char *username = api_str(req, "username", "");
	const char *scope = api_str(req, "scope", "master");
	struct wd_user *user = NULL;
	char *counter = NULL, *error = NULL;
	int ret = wd_auth_login_lookup(req->ctx->store, username, &user, &counter, &error);
	free(counter);
	if (ret == WD_AUTH_ERR_INTERNAL) {
		wd_error("api", "preauth lookup: %s", error != NULL ? error : "failed");
		free(error);
		api_reply_error(req, 500, "InternalDatabaseError", "Database error, try again later");
		return;
	}
	free(error);
	if (ret < 0 || user->disabled || user->suspended) {
		wd_user_free(&user);
		api_reply_error(req, 403, "AuthFailed", "Authentication failed");
		return;
	}
	if (doc_array_has(user->doc, "disabledScopes", scope)) {
		wd_user_free(&user);
		api_reply_error(req, 403, "InvalidAuthScope", "Access to requested service disabled");
		return;
	}
	char methods[128];
	wd_auth_enabled_2fa(user->doc, methods, sizeof(methods));
	json_t *body = json_object();
	json_object_set_new(body, "success", json_true());
	json_object_set_new(body, "id", api_json_oid(&user->id));
	json_object_set_new(body, "username", json_string(user->username));
	json_object_set_new(body, "address", json_string(user->address));
	json_object_set_new(body, "scope", json_string(scope));
	json_object_set_new(body, "require2fa",
			    methods_json(strcmp(scope, "master") == 0 ? methods : NULL));
	wd_user_free(&user);
	api_reply_ok(req, body);
}

/* ---- POST /authenticate ---- */

static void post_authenticate(struct api_request *req)
{
	const char *scope_name = api_str(req, "scope", "master");
	bool want_token = api_bool(req, "token", false);
	if (want_token && strcmp(scope_name, "master") != 0) {
		api_reply_error(req, 400, "InputValidationError", "\"scope\" must be [master]");
		return;
	}
	const char *password = api_str(req, "password", "");
	struct wd_auth_request auth_req = {
		.username = api_str(req, "username", ""),
		.password = password,
		.password_len = strlen(password),
		.scope = (enum wd_auth_scope)wd_auth_scope_parse(scope_name),
	};
	api_account_meta(req, &auth_req.meta);
	auth_req.meta.protocol = api_str(req, "protocol", "API");
	struct wd_auth_result *result = calloc(1, sizeof(*result));
	if (result == NULL) {
		api_reply_error(req, 500, "InternalError", "Out of memory");
		return;
	}
	enum wd_auth_status status = wd_auth_authenticate(req->ctx->auth, &auth_req, result);
	switch (status) {
	case WD_AUTH_ACCEPTED:
		break;
	case WD_AUTH_RATE_LIMITED:
		api_reply_error(req, 403, "RateLimitedError", "%s", result->message);
		goto out;
	case WD_AUTH_SCOPE_DISABLED:
		api_reply_error(req, 403, "InvalidAuthScope", "Access to requested service disabled");
		goto out;
	case WD_AUTH_SCOPE_REFUSED:
		api_reply_error(req, 403, "InvalidAuthScope", "%s", result->message);
		goto out;
	case WD_AUTH_TEMP_NOT_YET_VALID:
		api_reply_error(req, 403, "TempPasswordNotYetValid", "%s", result->message);
		goto out;
	case WD_AUTH_INTERNAL_ERROR:
		api_reply_error(req, 500, "InternalDatabaseError", "%s", result->message);
		goto out;
	default: /* refused, disabled, suspended: one answer */
		api_reply_error(req, 403, "AuthFailed", "Authentication failed");
		goto out;
	}
	json_t *body = json_object();
	json_object_set_new(body, "success", json_true());
	json_object_set_new(body, "id", api_json_oid(&result->user));
	json_object_set_new(body, "username", json_string(result->username));
	if (result->address[0] != '\0')
		json_object_set_new(body, "address", json_string(result->address));
	json_object_set_new(body, "scope", json_string(scope_name));
	json_object_set_new(body, "require2fa", methods_json(result->require2fa));
	json_object_set_new(body, "requirePasswordChange",
			    json_boolean(result->require_password_change));
	if (want_token) {
		struct wd_user *user = NULL;
		char *error = NULL;
		char token[41];
		int ret = wd_store_user_get(req->ctx->store, &result->user, &user, &error);
		if (ret < 0 || api_access_token_issue(req->ctx, &result->user, "user",
						      user->auth_version, token) < 0) {
			if (ret < 0)
				wd_error("api", "authenticate: %s", error);
			free(error);
			wd_user_free(&user);
			json_decref(body);
			api_reply_error(req, 500, "InternalDatabaseError",
					"Failed to generate an access token");
			goto out;
		}
		wd_user_free(&user);
		json_object_set_new(body, "token", json_string(token));
		OPENSSL_cleanse(token, sizeof(token));
	}
	api_reply_ok(req, body);
out:
	OPENSSL_cleanse(result, sizeof(*result));
	free(result);
}

/* ---- DELETE /authenticate ---- */

/* The token the request came with ends (API_R_SELF: a user token may call
   it; a root token or open access has nothing to end). */
static void delete_authenticate(struct api_request *req)
{
	api_access_token_revoke(req);
	api_reply_success(req);
}

/* ---- GET /users/:user/authlog ---- */

static json_t *event_json(const bson_t *doc)
{
	json_t *out = json_object();
	bson_iter_t it;
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
		json_object_set_new(out, "id", api_json_oid(bson_iter_oid(&it)));
	if (!bson_iter_init(&it, doc))
		return out;
	while (bson_iter_next(&it)) {
		const char *key = bson_iter_key(&it);
		if (strcmp(key, "_id") == 0 || strcmp(key, "user") == 0)
			continue;
		json_t *value = api_json_from_bson_iter(&it);
		json_object_set_new(out, key, value != NULL ? value : json_null());
	}
	return out;
}

static void get_authlog(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	const char *action = api_str(req, "action", NULL);
	const char *ip = api_str(req, "filterip", NULL);
	bson_t filter = BSON_INITIALIZER;
	BSON_APPEND_OID(&filter, "user", &user);
	if (action != NULL && action[0] != '\0')
		BSON_APPEND_UTF8(&filter, "action", action);
	if (ip != NULL && ip[0] != '\0')
		BSON_APPEND_UTF8(&filter, "ip", ip);
	struct api_page page = {
		.kind = "authlog",
		.descending = true,
		.limit = api_int(req, "limit", 20),
		.next = api_str(req, "next", NULL),
		.previous = api_str(req, "previous", NULL),
	};
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_USERS);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_USERS, "authlog");
	struct api_page_result result;
	int ret = api_page_find(req, coll, &filter, &page, &result);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_USERS, client);
	bson_destroy(&filter);
	if (ret < 0)
		return;
	json_t *results = json_array();
	for (size_t i = 0; i < result.count; i++)
		json_array_append_new(results, event_json(result.docs[i]));
	json_t *body = json_object();
	json_object_set_new(body, "success", json_true());
	json_object_set_new(body, "action", action != NULL && action[0] != '\0'
						    ? json_string(action) : json_null());
	api_page_reply_fields(req, body, &result, results);
	api_page_result_free(&result);
	api_reply_ok(req, body);
}

static void get_authlog_event(struct api_request *req)
{
	bson_oid_t user, event;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "event", &event);
	bson_t *filter = BCON_NEW("_id", BCON_OID(&event), "user", BCON_OID(&user));
	bool failed;
	bson_t *doc = api_find_one(req, WD_STORE_DB_USERS, "authlog", filter, &failed);
	bson_destroy(filter);
	if (failed)
		return;
	json_t *body = doc != NULL ? event_json(doc) : NULL;
	if (doc != NULL)
		bson_destroy(doc);
	if (body == NULL) {
		api_reply_error(req, 404, "EventNotFound", "Event was not found");
		return;
	}
	json_object_set_new(body, "success", json_true());
	api_reply_ok(req, body);
}

/* ---- routes ---- */

static const struct api_field preauth_fields[] = {
	{ "username", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 1, 256, NULL,
	  "Username or E-mail address" },
	{ "scope", API_T_STRING, 0, 0, 16, scope_choices,
	  "Required scope. One of master, imap, smtp, pop3 (master)" },
	API_FIELDS_END
};

static const struct api_field authenticate_fields[] = {
	{ "username", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 1, 256, NULL,
	  "Username or E-mail address" },
	{ "password", API_T_STRING, API_F_REQUIRED, 1, 256, NULL, "Password" },
	{ "protocol", API_T_STRING, 0, 1, 64, NULL,
	  "Application identifier for security logs (API)" },
	{ "scope", API_T_STRING, 0, 0, 16, scope_choices,
	  "Required scope. One of master, imap, smtp, pop3 (master)" },
	{ "appId", API_T_STRING, API_F_EMPTY_OK, 0, 1024, NULL,
	  "Optional appId which is the URL of the app" },
	{ "token", API_T_BOOL, 0, 0, 0, NULL,
	  "If true then a temporary access token for this user is generated (master scope "
	  "only); with it \"me\" may replace the user ID in URLs" },
	API_FIELDS_END
};

static const struct api_field authlog_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "action", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK | API_F_TRIM | API_F_LOWERCASE, 0,
	  100, NULL, "Limit listing only to values with specific action value" },
	{ "filterip", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK | API_F_TRIM, 0, 64, NULL,
	  "Limit listing only to values with specific IP address" },
	API_PAGE_FIELDS,
	API_FIELDS_END
};

static const struct api_field authlog_event_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "event", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the Event" },
	API_FIELDS_END
};

const struct api_route api_routes_auth[] = {
	{ API_POST, "/preauth", post_preauth, "authentication", API_CREATE, 0, preauth_fields,
	  "Authentication", "Pre-auth check: the user exists and may log in", "preauth" },
	{ API_POST, "/authenticate", post_authenticate, "authentication", API_CREATE, 0,
	  authenticate_fields, "Authentication", "Authenticate a User", "authenticate" },
	{ API_DELETE, "/authenticate", delete_authenticate, NULL, API_DELETE_ACTION, API_R_SELF, NULL, "Authentication", "Invalidate authentication token",
	  "invalidateAccessToken" },
	{ API_GET, "/users/:user/authlog", get_authlog, "authentication", API_READ, 0,
	  authlog_fields, "Authentication", "List authentication Events", "getAuthlog" },
	{ API_GET, "/users/:user/authlog/:event", get_authlog_event, "authentication", API_READ, 0,
	  authlog_event_fields, "Authentication", "Request Event information", "getAuthlogEvent" },
	API_ROUTES_END
};
