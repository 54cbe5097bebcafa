/* Routes: the user's autoreply, as WildDuck's lib/api/autoreply.js.
 *
 * One `autoreplies` document per user (reference §2.14), upserted with the
 * fields given: {user, status, name, subject, text, html, start: Date|false,
 * end: Date|false, created: ISO string with whole seconds}. `status` also
 * goes to users.autoreply, which the delivery pipeline reads before it
 * looks at the document (lmtp-plugin/deliver-autoreply.c). Unlike WildDuck,
 * the request's sess/ip are not stored in the document, and an unknown user
 * is 404 on every method. */
#include "account.h"
#include "api.h"

#include "wd-log.h"
#include "wd-store-user.h"
#include "wd-store.h"
#include "input.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>


/* users.autoreply = status; 1 matched, 0 no such user, -1 answered */
static int set_user_flag(struct api_request *req, const bson_oid_t *user, bool status)
{
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_USERS, "users", &c);
	bson_t *filter = BCON_NEW("_id", BCON_OID(user));
	bson_t *update = BCON_NEW("$set", "{", "autoreply", BCON_BOOL(status), "}");
	bson_t reply;
	bson_error_t error;
	bool ok = mongoc_collection_update_one(c.coll, filter, update, NULL, &reply, &error);
	bson_iter_t it;
	int ret = ok && bson_iter_init_find(&it, &reply, "matchedCount") &&
		  bson_iter_as_int64(&it) > 0;
	bson_destroy(&reply);
	bson_destroy(filter);
	bson_destroy(update);
	api_coll_put(&c);
	if (!ok) {
		api_db_failed(req, "users", &error);
		return -1;
	}
	return ret;
}

/* start/end: a date (ms), false, or "" (not given). 1 date, 0 false, 2 not
   given, -1 invalid. */
static int parse_when(const json_t *v, int64_t *ms_r)
{
	if (v == NULL)
		return 2;
	if (json_is_false(v))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*ms_r = json_integer_value(v);
		return 1;
	}
	const char *s = json_string_value(v);
	if (s == NULL)
		return -1;
	if (s[0] == '\0')
		return 2;
	*ms_r = api_parse_date(s);
	return *ms_r >= 0 ? 1 : -1;
}

static void put_autoreply(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	int64_t start = 0, end = 0;
	int has_start = parse_when(api_json(req, "start"), &start);
	int has_end = parse_when(api_json(req, "end"), &end);
	if (has_start < 0 || has_end < 0) {
		api_reply_error(req, 400, "InputValidationError", "\"%s\" must be a valid date",
				has_start < 0 ? "start" : "end");
		return;
	}
	if (api_has(req, "status")) {
		int ret = set_user_flag(req, &user, api_bool(req, "status", false));
		if (ret < 0)
			return;
		if (ret == 0) {
			api_reply_error(req, 404, "UserNotFound", "Unknown user");
			return;
		}
	}
	bson_t update = BSON_INITIALIZER, set;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	BSON_APPEND_OID(&set, "user", &user);
	if (api_has(req, "status"))
		BSON_APPEND_BOOL(&set, "status", api_bool(req, "status", false));
	static const char *const texts[] = { "name", "subject", "text", "html", NULL };
	for (size_t i = 0; texts[i] != NULL; i++)
		if (api_has(req, texts[i]))
			BSON_APPEND_UTF8(&set, texts[i], api_str(req, texts[i], ""));
	if (has_start == 1)
		BSON_APPEND_DATE_TIME(&set, "start", start);
	else if (has_start == 0)
		BSON_APPEND_BOOL(&set, "start", false);
	if (has_end == 1)
		BSON_APPEND_DATE_TIME(&set, "end", end);
	else if (has_end == 0)
		BSON_APPEND_BOOL(&set, "end", false);
	/* ISO string with whole seconds, as WildDuck writes it */
	char created[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	BSON_APPEND_UTF8(&set, "created", created);
	bson_append_document_end(&update, &set);

	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_MAIN, "autoreplies", &c);
	bson_t *filter = BCON_NEW("user", BCON_OID(&user));
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
	bson_error_t error;
	bool ok = mongoc_collection_update_one(c.coll, filter, &update, opts, NULL, &error);
	bson_oid_t id;
	bool found = false;
	if (ok) {
		mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c.coll, filter, NULL, NULL);
		const bson_t *doc;
		bson_iter_t it;
		if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&it, doc, "_id") &&
		    BSON_ITER_HOLDS_OID(&it)) {
			bson_oid_copy(bson_iter_oid(&it), &id);
			found = true;
		}
		ok = !mongoc_cursor_error(cursor, &error);
		mongoc_cursor_destroy(cursor);
	}
	bson_destroy(filter);
	bson_destroy(opts);
	bson_destroy(&update);
	api_coll_put(&c);
	if (!ok || !found) {
		if (!ok)
			api_db_failed(req, "upsert", &error);
		else
			api_reply_error(req, 500, "InternalDatabaseError", "Autoreply was not stored");
		return;
	}
	api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id", api_json_oid(&id)));
}

static json_t *text_of(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (doc != NULL && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
		return json_string(bson_iter_utf8(&it, NULL));
	return json_string("");
}

static json_t *date_of(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (doc != NULL && bson_iter_init_find(&it, doc, key) &&
	    (BSON_ITER_HOLDS_DATE_TIME(&it) || BSON_ITER_HOLDS_UTF8(&it)))
		return api_json_from_bson_iter(&it);
	return json_false();
}

static void get_autoreply(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	bson_t *filter = BCON_NEW("user", BCON_OID(&user));
	bool failed;
	bson_t *doc = api_find_one(req, WD_STORE_DB_MAIN, "autoreplies", filter, &failed);
	bson_destroy(filter);
	if (failed)
		return;
	bson_iter_t it;
	json_t *body = json_object();
	json_object_set_new(body, "success", json_true());
	json_object_set_new(body, "status", json_boolean(doc != NULL &&
							 bson_iter_init_find(&it, doc, "status") &&
							 bson_iter_as_bool(&it)));
	json_object_set_new(body, "name", text_of(doc, "name"));
	json_object_set_new(body, "subject", text_of(doc, "subject"));
	json_object_set_new(body, "text", text_of(doc, "text"));
	json_object_set_new(body, "html", text_of(doc, "html"));
	json_object_set_new(body, "start", date_of(doc, "start"));
	json_object_set_new(body, "end", date_of(doc, "end"));
	json_t *created = date_of(doc, "created");
	if (json_is_false(created) && doc != NULL && bson_iter_init_find(&it, doc, "_id") &&
	    BSON_ITER_HOLDS_OID(&it)) {
		json_decref(created);
		created = api_json_date((int64_t)bson_oid_get_time_t(bson_iter_oid(&it)) * 1000);
	}
	json_object_set_new(body, "created", created);
	if (doc != NULL)
		bson_destroy(doc);
	api_reply_ok(req, body);
}

static void delete_autoreply(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	if (set_user_flag(req, &user, false) < 0)
		return;
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_MAIN, "autoreplies", &c);
	bson_t *filter = BCON_NEW("user", BCON_OID(&user));
	bson_error_t error;
	bool ok = mongoc_collection_delete_many(c.coll, filter, NULL, NULL, &error);
	bson_destroy(filter);
	api_coll_put(&c);
	if (!ok) {
		api_db_failed(req, "delete", &error);
		return;
	}
	api_reply_success(req);
}

/* ---- routes ---- */

static const struct api_field user_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	API_FIELDS_END
};

static const struct api_field update_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "status", API_T_BOOL, 0, 0, 0, NULL, "Is the autoreply enabled (true) or not (false)" },
	{ "name", API_T_STRING, API_F_EMPTY_OK | API_F_TRIM, 0, 128, NULL,
	  "Name that is used for the From: header in autoreply message" },
	{ "subject", API_T_STRING, API_F_EMPTY_OK | API_F_TRIM, 0, 2 * 1024, NULL,
	  "Subject line for the autoreply. If empty then uses subject of the original message" },
	{ "text", API_T_STRING, API_F_EMPTY_OK | API_F_TRIM, 0, 128 * 1024, NULL,
	  "Plaintext formatted content of the autoreply message" },
	{ "html", API_T_STRING, API_F_EMPTY_OK | API_F_TRIM, 0, 128 * 1024, NULL,
	  "HTML formatted content of the autoreply message" },
	{ "start", API_T_ANY, 0, 0, 64, NULL,
	  "Datestring of the start of the autoreply or boolean false to disable start checks" },
	{ "end", API_T_ANY, 0, 0, 64, NULL,
	  "Datestring of the end of the autoreply or boolean false to disable end checks" },
	API_FIELDS_END
};

const struct api_route api_routes_autoreply[] = {
	{ API_PUT, "/users/:user/autoreply", put_autoreply, "autoreplies", API_UPDATE, 0,
	  update_fields, "Autoreplies", "Update Autoreply information", "updateAutoreply" },
	{ API_GET, "/users/:user/autoreply", get_autoreply, "autoreplies", API_READ, 0, user_fields,
	  "Autoreplies", "Request Autoreply information", "getAutoreply" },
	{ API_DELETE, "/users/:user/autoreply", delete_autoreply, "autoreplies", API_DELETE_ACTION, 0,
	  user_fields, "Autoreplies", "Delete Autoreply information", "deleteAutoreply" },
	API_ROUTES_END
};
