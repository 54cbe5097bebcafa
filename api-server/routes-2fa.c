/* Routes: two-factor authentication, as WildDuck's lib/api/2fa/totp.js and
 * lib/api/2fa/custom.js.
 *
 * TOTP is libwdauth's (wd-auth-totp.h: setup, enable, disable, check).
 * The "custom" marker (an application's own second factor) and "disable
 * every method" only change `users.enabled2fa` (and the seeds), so they
 * are written here: the new list is computed from the document and $set,
 * with the read value in the filter, as libwdauth writes enabled2fa (FerretDB
 * has no atomic array operators across concurrent writers). Turning on the
 * first method bumps authVersion (older access tokens end) and asks other
 * sessions to log out; every change is in the auth log.
 *
 * The setup answer's `qrcode` is the otpauth:// URL itself, not WildDuck's
 * data: URL of a QR code PNG: no QR library is built in yet (Debian's
 * libqrencode-dev would do); clients that draw their own QR code from the
 * URL work with either. */
#include "account.h"
#include "access.h"
#include "api.h"

#include "wd-auth-log.h"
#include "wd-auth-totp.h"
#include "wd-log.h"
#include "wd-store-user.h"
#include "wd-store.h"

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* ---- TOTP ---- */

static void post_totp_setup(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	const char *label = api_str(req, "label", NULL);
	if (label != NULL && label[0] == '\0')
		label = NULL;
	struct wd_auth_totp_setup setup;
	char *error = NULL;
	int ret = wd_auth_totp_setup(req->ctx->auth, &user, label, api_str(req, "issuer", NULL),
				     &setup, &error);
	if (ret < 0) {
		api_account_auth_error(req, ret, error, "UserNotFound", "TotpEnabled");
		free(error);
		return;
	}
	json_t *qrcode = json_string(setup.url);
	api_reply_ok(req, json_pack("{s:b,s:s,s:o}", "success", 1, "seed", setup.seed, "qrcode",
				    qrcode));
	OPENSSL_cleanse(setup.seed, sizeof(setup.seed));
	free(setup.url);
}

/* WildDuck names the wrong state by what the user has: TotpEnabled when
   TOTP is on, TotpDisabled otherwise. */
static const char *totp_state_code(struct api_request *req, const bson_oid_t *user)
{
	struct wd_user *u = NULL;
	char *error = NULL;
	const char *code = "TotpDisabled";
	if (wd_store_user_get(req->ctx->store, user, &u, &error) == 0) {
		char methods[128];
		wd_auth_enabled_2fa(u->doc, methods, sizeof(methods));
		char padded[132];
		snprintf(padded, sizeof(padded), ",%s,", methods);
		if (strstr(padded, ",totp,") != NULL)
			code = "TotpEnabled";
	}
	free(error);
	wd_user_free(&u);
	return code;
}

static void post_totp_enable(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	struct wd_auth_meta meta;
	api_account_meta(req, &meta);
	bool enabled = false;
	char *error = NULL;
	int ret = wd_auth_totp_enable(req->ctx->auth, &user, api_str(req, "token", ""), &meta,
				      &enabled, &error);
	if (ret < 0) {
		api_account_auth_error(req, ret, error, "UserNotFound",
				       ret == WD_AUTH_ERR_STATE ? totp_state_code(req, &user) : "");
		free(error);
		return;
	}
	if (!enabled) {
		api_reply_error(req, 400, "InvalidToken", "Invalid authentication token");
		return;
	}
	api_access_token_follow(req, &user); /* the caller's own session goes on */
	api_reply_success(req);
}

static void delete_totp(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	struct wd_auth_meta meta;
	api_account_meta(req, &meta);
	char *error = NULL;
	int ret = wd_auth_totp_disable(req->ctx->auth, &user, &meta, &error);
	if (ret < 0) {
		api_account_auth_error(req, ret, error, "UserNotFound", "TotpDisabled");
		free(error);
		return;
	}
	api_reply_success(req);
}

static void post_totp_check(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	struct wd_auth_meta meta;
	api_account_meta(req, &meta);
	bool valid = false;
	char *error = NULL;
	int ret = wd_auth_totp_check(req->ctx->auth, &user, api_str(req, "token", ""), &meta,
				     &valid, NULL, &error);
	if (ret < 0) {
		api_account_auth_error(req, ret, error, "UserNotFound", "TotpDisabled");
		free(error);
		return;
	}
	if (!valid) {
		api_reply_error(req, 403, "InvalidToken", "Failed to validate TOTP");
		return;
	}
	api_reply_success(req);
}

/* ---- enabled2fa changes written here ---- */

static void log_event(struct api_request *req, const bson_oid_t *user, const char *action,
		      const char *result)
{
	struct wd_auth_meta meta;
	api_account_meta(req, &meta);
	struct wd_authlog_entry entry = { .action = action, .result = result };
	char *error = NULL;
	if (wd_auth_log_event(req->ctx->auth, user, &entry, &meta, NULL, &error) < 0) {
		wd_warning("api", "auth log: %s", error);
		free(error);
	}
}

/* Other sessions of the user are told to log out (wd_events LOGOUT). */
static void publish_logout(struct api_request *req, const bson_oid_t *user)
{
	char hex[25], payload[160];
	bson_oid_to_string(user, hex);
	snprintf(payload, sizeof(payload),
		 "{\"e\":\"%s\",\"p\":{\"command\":\"LOGOUT\",\"reason\":\"Authentication required\"}}",
		 hex);
	const char *argv[] = { "PUBLISH", "wd_events", payload };
	struct redisReply *reply = wd_store_redis_argv(req->ctx->store, 3, argv, NULL);
	if (reply != NULL)
		freeReplyObject(reply);
}

/* enabled2fa as a new array from a comma list, `add` appended, `drop` left out */
static void append_methods(bson_t *doc, const char *list, const char *add, const char *drop)
{
	bson_t array;
	BSON_APPEND_ARRAY_BEGIN(doc, "enabled2fa", &array);
	unsigned n = 0;
	char key[16];
	for (const char *p = list; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (drop == NULL || strlen(drop) != len || memcmp(p, drop, len) != 0) {
			snprintf(key, sizeof(key), "%u", n++);
			bson_append_utf8(&array, key, -1, p, (int)len);
		}
		p += len + (end != NULL ? 1 : 0);
	}
	if (add != NULL) {
		snprintf(key, sizeof(key), "%u", n++);
		BSON_APPEND_UTF8(&array, key, add);
	}
	bson_append_array_end(doc, &array);
}

/* updateOne on users; 1 updated, 0 nothing matched, -1 answered (500) */
static int update_user(struct api_request *req, const bson_t *filter, const bson_t *update)
{
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_USERS);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_USERS, "users");
	bson_t reply;
	bson_error_t error;
	int ret;
	if (!mongoc_collection_update_one(coll, filter, update, NULL, &reply, &error)) {
		wd_error("api", "users update: %s", error.message);
		api_reply_error(req, 500, "InternalDatabaseError", "Database Error, failed to update user");
		ret = -1;
	} else {
		bson_iter_t it;
		ret = bson_iter_init_find(&it, &reply, "matchedCount") && bson_iter_as_int64(&it) > 0;
	}
	bson_destroy(&reply);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_USERS, client);
	return ret;
}

/* The user's methods (comma list) and the raw enabled2fa value for the
   update filter; false when answered. */
static bool load_methods(struct api_request *req, const bson_oid_t *user, char *methods,
			 size_t size, bson_t *filter)
{
	struct wd_user *u = NULL;
	char *error = NULL;
	int ret = wd_store_user_get(req->ctx->store, user, &u, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret, ret == WD_STORE_ERR_NOT_FOUND
						     ? "This username does not exist" : error,
				      "UserNotFound");
		free(error);
		return false;
	}
	wd_auth_enabled_2fa(u->doc, methods, size);
	BSON_APPEND_OID(filter, "_id", user);
	bson_iter_t it;
	if (bson_iter_init_find(&it, u->doc, "enabled2fa"))
		BSON_APPEND_VALUE(filter, "enabled2fa", bson_iter_value(&it));
	else
		BSON_APPEND_NULL(filter, "enabled2fa");
	wd_user_free(&u);
	return true;
}

static bool has_method(const char *methods, const char *method)
{
	char padded[136], want[32];
	snprintf(padded, sizeof(padded), ",%s,", methods);
	snprintf(want, sizeof(want), ",%s,", method);
	return strstr(padded, want) != NULL;
}

static void put_custom(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	char methods[128];
	bson_t filter = BSON_INITIALIZER;
	if (!load_methods(req, &user, methods, sizeof(methods), &filter)) {
		bson_destroy(&filter);
		return;
	}
	if (has_method(methods, "custom")) {
		bson_destroy(&filter);
		api_reply_error(req, 400, "CustomEnabled", "Custom 2FA is already enabled for this user");
		return;
	}
	bool first = methods[0] == '\0';
	bson_t update = BSON_INITIALIZER, set, inc;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	append_methods(&set, methods, "custom", NULL);
	bson_append_document_end(&update, &set);
	if (first) {
		BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &inc);
		BSON_APPEND_INT32(&inc, "authVersion", 1);
		bson_append_document_end(&update, &inc);
	}
	int ret = update_user(req, &filter, &update);
	bson_destroy(&filter);
	bson_destroy(&update);
	if (ret < 0)
		return;
	if (ret == 0) {
		api_reply_error(req, 409, "UserUpdateFail",
				"The user changed meanwhile, try again");
		return;
	}
	if (first) {
		publish_logout(req, &user);
		api_access_token_follow(req, &user);
	}
	log_event(req, &user, "enable 2fa custom", "success");
	api_reply_success(req);
}

static void delete_custom(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	char methods[128];
	bson_t filter = BSON_INITIALIZER;
	if (!load_methods(req, &user, methods, sizeof(methods), &filter)) {
		bson_destroy(&filter);
		return;
	}
	if (!has_method(methods, "custom")) {
		bson_destroy(&filter);
		api_reply_error(req, 400, "CustomDisabled",
				"Could not update user, check if custom 2FA is not already disabled");
		return;
	}
	bson_t update = BSON_INITIALIZER, set;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	append_methods(&set, methods, NULL, "custom");
	bson_append_document_end(&update, &set);
	int ret = update_user(req, &filter, &update);
	bson_destroy(&filter);
	bson_destroy(&update);
	if (ret < 0)
		return;
	if (ret == 0) {
		api_reply_error(req, 409, "UserUpdateFail", "The user changed meanwhile, try again");
		return;
	}
	log_event(req, &user, "disable 2fa custom", NULL);
	api_reply_success(req);
}

static void delete_2fa(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	bson_t *filter = BCON_NEW("_id", BCON_OID(&user));
	bson_t *update = BCON_NEW("$set", "{", "enabled2fa", "[", "]", "seed", BCON_UTF8(""),
				  "pendingSeed", BCON_UTF8(""), "pendingSeedChanged", BCON_BOOL(false),
				  "webauthn", "{", "credentials", "[", "]", "}", "}");
	int ret = update_user(req, filter, update);
	bson_destroy(filter);
	bson_destroy(update);
	if (ret < 0)
		return;
	if (ret == 0) {
		api_reply_error(req, 404, "UserNotFound", "Could not find user data");
		return;
	}
	log_event(req, &user, "disable 2fa", NULL);
	api_reply_success(req);
}

/* ---- routes ---- */

static const struct api_field user_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	API_FIELDS_END
};

static const struct api_field setup_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "label", API_T_STRING, API_F_EMPTY_OK | API_F_TRIM, 0, 255, NULL,
	  "Label text for QR code (defaults to username)" },
	{ "issuer", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 1, 255, NULL,
	  "Description text for QR code (defaults to \"WildDuck\")" },
	API_FIELDS_END
};

static const struct api_field token_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "token", API_T_STRING, API_F_REQUIRED, 6, 6, NULL,
	  "6-digit number that matches the seed value from 2fa/totp/setup" },
	API_FIELDS_END
};

const struct api_route api_routes_2fa[] = {
	{ API_POST, "/users/:user/2fa/totp/setup", post_totp_setup, "users", API_UPDATE, 0,
	  setup_fields, "TwoFactorAuth", "Generate TOTP seed (and its QR code)", "generateTOTPSeed" },
	{ API_POST, "/users/:user/2fa/totp/enable", post_totp_enable, "users", API_UPDATE, 0,
	  token_fields, "TwoFactorAuth", "Enable TOTP seed", "enableTOTPSeed" },
	{ API_DELETE, "/users/:user/2fa/totp", delete_totp, "users", API_UPDATE, 0, user_fields,
	  "TwoFactorAuth", "Disable TOTP auth", "disableTOTPAuth" },
	{ API_POST, "/users/:user/2fa/totp/check", post_totp_check, "users", API_READ, 0,
	  token_fields, "TwoFactorAuth", "Validate TOTP Token", "validateTOTPToken" },
	{ API_DELETE, "/users/:user/2fa", delete_2fa, "users", API_UPDATE, 0, user_fields,
	  "TwoFactorAuth", "Disable 2FA", "disable2FA" },
	{ API_PUT, "/users/:user/2fa/custom", put_custom, "users", API_UPDATE, 0, user_fields,
	  "TwoFactorAuth", "Enable custom 2FA for a user", "enableCustom2FA" },
	{ API_DELETE, "/users/:user/2fa/custom", delete_custom, "users", API_UPDATE, 0, user_fields,
	  "TwoFactorAuth", "Disable custom 2FA for a user", "disableCustom2FA" },
	API_ROUTES_END
};
