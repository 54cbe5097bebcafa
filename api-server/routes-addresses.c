/* Routes: addresses (WildDuck's lib/api/addresses.js): the address listing,
 * a user's addresses, the address register typeahead, forwarded addresses
 * (no owner: targets, a forward limit, an autoreply), address resolution and
 * renaming a domain.
 *
 * Normalisation and the uniqueness of addrview are libwdstore's
 * (wd_store_address_add, wd_address_addrview and the unique index); this
 * file checks WildDuck's rules on top (no '+', wildcards only when allowed
 * and never as the main address) before anything is written. */
#include "api.h"
#include "input.h"
#include "user-fields.h"

#include "wd-store-user-admin.h"
#include "wd-store-search.h"
#include "wd-store-user.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REGISTER_LIMIT_MAX 250

/* ---- shared pieces ---- */

static json_t *name_or_false(const bson_t *doc)
{
	const char *name = api_doc_str(doc, "name");
	return name != NULL && name[0] != '\0' ? json_string(name) : json_false();
}

static bool has_targets(const bson_t *doc)
{
	bson_iter_t iter;
	return bson_iter_init_find(&iter, doc, "targets") && BSON_ITER_HOLDS_ARRAY(&iter);
}

static json_t *tags_json(const bson_t *doc)
{
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, doc, "tags") && BSON_ITER_HOLDS_ARRAY(&iter))
		return api_json_from_bson_iter(&iter);
	return json_array();
}

static void add_metadata(struct api_request *req, json_t *out, const bson_t *doc, bool always)
{
	if ((always || api_bool(req, "metaData", false)) && api_doc_str(doc, "metaData") != NULL &&
	    api_doc_str(doc, "metaData")[0] != '\0')
		json_object_set_new(out, "metaData", api_metadata_json(doc, "metaData"));
	if ((always || api_bool(req, "internalData", false)) && req->role != API_ROLE_USER &&
	    api_doc_str(doc, "internalData") != NULL && api_doc_str(doc, "internalData")[0] != '\0')
		json_object_set_new(out, "internalData", api_metadata_json(doc, "internalData"));
}

/* metaData / internalData of the input into `set` (400 when malformed). */
static bool metadata_into(struct api_request *req, bson_t *set)
{
	static const char *const keys[] = { "metaData", "internalData" };
	for (int i = 0; i < 2; i++) {
		json_t *value = api_json(req, keys[i]);
		if (value == NULL || (i == 1 && req->role == API_ROLE_USER))
			continue;
		char *text = api_metadata_text(value);
		if (text == NULL) {
			api_reply_error(req, 400, "InputValidationError",
					"\"%s\" must be an object or a JSON string of an object",
					keys[i]);
			return false;
		}
		BSON_APPEND_UTF8(set, keys[i], text);
		free(text);
	}
	return true;
}

/* WildDuck's address rules: no '+'; '*' only with allowWildcard, once, as
   "*@domain", "*suffix@domain", "prefix*@domain" or "user@*". Answers 400
   and returns false otherwise. */
static bool address_rules(struct api_request *req, const char *address, bool allow_wildcard)
{
	const char *at = strrchr(address, '@');
	if (strchr(address, '+') != NULL && (at == NULL || strchr(address, '+') < at)) {
		api_reply_error(req, 400, "InputValidationError", "Address can not contain +");
		return false;
	}
	const char *star = strchr(address, '*');
	if (star == NULL)
		return true;
	if (!allow_wildcard) {
		api_reply_error(req, 400, "InputValidationError", "Address can not contain *");
		return false;
	}
	bool ok = at != NULL && strrchr(address, '*') == star &&
		  (star == address || star + 1 == at || (star == at + 1 && star[1] == '\0'));
	if (ok && star < at && (size_t)(at - address) - 1 > WD_MAX_WILDCARD_LENGTH)
		ok = false;
	if (!ok) {
		api_reply_error(req, 400, "InputValidationError",
				"Invalid wildcard address, use \"*@domain\" or \"user@*\"");
		return false;
	}
	return true;
}

/* Normalised address and addrview; a wildcard address keeps its '*'. */
static bool prepare_address(struct api_request *req, const char *input, char **address_r,
			    char **addrview_r)
{
	const char *error = NULL;
	*address_r = *addrview_r = NULL;
	if (wd_address_normalize(input, 0, address_r, &error) < 0 ||
	    wd_address_addrview(*address_r, addrview_r, &error) < 0) {
		free(*address_r);
		*address_r = NULL;
		api_reply_error(req, 400, "InputValidationError", "\"address\" must be a valid email");
		return false;
	}
	return true;
}

/* Another address document already has `addrview`? (checked before an
   update: FerretDB's unique-index failure is not reported as a duplicate
   key). Answers 400 and returns true when it has, or 500 on errors. */
static bool addrview_taken(struct api_request *req, const char *addrview, const bson_oid_t *id)
{
	bson_t *filter = BCON_NEW("addrview", BCON_UTF8(addrview), "_id", "{", "$ne", BCON_OID(id),
				  "}");
	int64_t count = 0;
	char *error = NULL;
	int ret = wd_store_doc_count(req->ctx->store, WD_STORE_DB_USERS, "addresses", filter, &count,
				     &error);
	bson_destroy(filter);
	if (ret < 0)
		api_reply_store_error(req, ret, error, "AddressNotFound");
	else if (count > 0)
		api_reply_error(req, 400, "AddressExistsError", "This email address already exists");
	free(error);
	return ret < 0 || count > 0;
}

static void address_store_error(struct api_request *req, int ret, char *error,
				const char *not_found)
{
	if (ret == WD_STORE_ERR_EXISTS)
		api_reply_error(req, 400, "AddressExistsError", "This email address already exists");
	else if (ret == WD_STORE_ERR_NOT_FOUND)
		api_reply_error(req, 404, "AddressNotFound", "%s", not_found);
	else
		api_reply_store_error(req, ret, error, "AddressNotFound");
	free(error);
}

/* Forward counter of a forwarded address: limits.forwards. */
static json_t *forward_limits(struct api_request *req, const bson_t *doc, const char *hex)
{
	bson_iter_t iter;
	int64_t allowed = 0;
	if (bson_iter_init_find(&iter, doc, "forwards") && BSON_ITER_HOLDS_NUMBER(&iter))
		allowed = bson_iter_as_int64(&iter);
	if (allowed <= 0)
		allowed = wd_store_setting_int(req->ctx->store, "const:max:forwards", 2000);
	char key[64];
	snprintf(key, sizeof(key), "wdf:%s", hex);
	int64_t used = 0, ttl = -1;
	const char *get[] = { "GET", key }, *t[] = { "TTL", key };
	struct redisReply *r = wd_store_redis_argv(req->ctx->store, 2, get, NULL);
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		used = strtoll(r->str, NULL, 10);
	if (r != NULL)
		freeReplyObject(r);
	r = wd_store_redis_argv(req->ctx->store, 2, t, NULL);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		ttl = r->integer;
	if (r != NULL)
		freeReplyObject(r);
	json_t *fw = json_pack("{s:I,s:I}", "allowed", (json_int_t)allowed, "used", (json_int_t)used);
	json_object_set_new(fw, "ttl", ttl >= 0 ? json_integer(ttl) : json_false());
	return json_pack("{s:o}", "forwards", fw);
}

static json_t *forwarded_json(struct api_request *req, const bson_t *doc, bool get_form)
{
	char hex[25] = "";
	bson_oid_t id;
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter)) {
		bson_oid_copy(bson_iter_oid(&iter), &id);
		bson_oid_to_string(&id, hex);
	}
	json_t *out = json_object();
	json_object_set_new(out, "success", json_true());
	json_object_set_new(out, "id", json_string(hex));
	json_object_set_new(out, "name", get_form ? name_or_false(doc) :
			    json_string(api_doc_str(doc, "name") != NULL ? api_doc_str(doc, "name") : ""));
	json_object_set_new(out, "address", api_doc_json(doc, "address"));
	json_object_set_new(out, "targets", api_targets_json(doc));
	json_object_set_new(out, "limits", forward_limits(req, doc, hex));
	json_t *autoreply = NULL;
	if (bson_iter_init_find(&iter, doc, "autoreply") && BSON_ITER_HOLDS_DOCUMENT(&iter))
		autoreply = api_json_from_bson_iter(&iter);
	json_object_set_new(out, "autoreply", autoreply != NULL ? autoreply :
			    json_pack("{s:b}", "status", 0));
	json_object_set_new(out, "tags", tags_json(doc));
	if (get_form)
		json_object_set_new(out, "forwardedDisabled",
				    json_boolean(bson_iter_init_find(&iter, doc, "forwardedDisabled") &&
						 bson_iter_as_bool(&iter)));
	json_object_set_new(out, "created", api_doc_json(doc, "created"));
	add_metadata(req, out, doc, true);
	return out;
}

/* ---- GET /addresses ---- */

static void get_addresses(struct api_request *req)
{
	bson_t filter = BSON_INITIALIZER;
	if (req->own_only) /* a user token lists its own addresses */
		BSON_APPEND_OID(&filter, "user", &req->token_user);
	const char *query = api_str(req, "query", NULL);
	if (query != NULL && query[0] != '\0')
		api_regex_append(&filter, "address", query);
	const char *forward = api_str(req, "forward", NULL);
	if (forward != NULL && forward[0] != '\0')
		api_regex_append(&filter, "targets.value", forward);
	api_tags_filter(&filter, api_str(req, "tags", NULL), api_str(req, "requiredTags", NULL));
	struct wd_store_page_request preq = {
		.db = WD_STORE_DB_USERS, .collection = "addresses", .filter = &filter,
		.sort_key = "addrview",
	};
	struct wd_store_page page;
	if (!api_listing_find(req, "addresses", &preq, &page)) {
		bson_destroy(&filter);
		return;
	}
	json_t *results = json_array();
	for (size_t i = 0; i < page.count; i++) {
		const bson_t *doc = page.docs[i];
		bool forwarded = has_targets(doc);
		bson_iter_t iter;
		json_t *item = json_object();
		json_object_set_new(item, "id", api_doc_json(doc, "_id"));
		json_object_set_new(item, "name", name_or_false(doc));
		json_object_set_new(item, "address", api_doc_json(doc, "address"));
		if (bson_iter_init_find(&iter, doc, "user") && BSON_ITER_HOLDS_OID(&iter))
			json_object_set_new(item, "user", api_json_oid(bson_iter_oid(&iter)));
		json_object_set_new(item, "forwarded", json_boolean(forwarded));
		json_object_set_new(item, "forwardedDisabled",
				    json_boolean(forwarded &&
						 bson_iter_init_find(&iter, doc, "forwardedDisabled") &&
						 bson_iter_as_bool(&iter)));
		if (forwarded)
			json_object_set_new(item, "targets", api_targets_json(doc));
		json_object_set_new(item, "tags", tags_json(doc));
		add_metadata(req, item, doc, false);
		json_array_append_new(results, item);
	}
	api_reply_ok(req, api_listing_reply(req, "addresses", &preq, &page, results));
	wd_store_page_free(&page);
	bson_destroy(&filter);
}

/* ---- a user's addresses ---- */

static void post_user_address(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	const char *input = api_str(req, "address", "");
	bool wildcard = api_bool(req, "allowWildcard", false);
	bool main = api_bool(req, "main", false);
	if (!address_rules(req, input, wildcard))
		return;
	if (main && strchr(input, '*') != NULL) {
		api_reply_error(req, 400, "InputValidationError", "Main address can not contain *");
		return;
	}
	bson_t set = BSON_INITIALIZER;
	json_t *tags = api_json(req, "tags");
	if (tags != NULL)
		api_tags_append(&set, tags);
	if (!metadata_into(req, &set)) {
		bson_destroy(&set);
		return;
	}
	struct wd_address_add opts = {
		.name = api_str(req, "name", NULL), .main = main, .allow_wildcard = wildcard,
	};
	bson_oid_t id;
	char *error = NULL;
	int ret = wd_store_address_add(req->ctx->store, &user, input, &opts, &id, &error);
	if (ret == WD_STORE_ERR_INVALID) {
		api_reply_error(req, 400, "InputValidationError", "%s", error);
		free(error);
	} else if (ret < 0) {
		address_store_error(req, ret, error, "This user does not exist");
	} else {
		if (!bson_empty(&set)) {
			bson_t update = BSON_INITIALIZER;
			BSON_APPEND_DOCUMENT(&update, "$set", &set);
			ret = wd_store_doc_update(req->ctx->store, WD_STORE_DB_USERS, "addresses", &id,
						  NULL, &update, &error);
			bson_destroy(&update);
		}
		if (ret < 0)
			api_reply_store_error(req, ret, error, "AddressNotFound");
		else
			api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id", api_json_oid(&id)));
		free(error);
	}
	bson_destroy(&set);
}

/* The user's main address ("" when none); false after answering. */
static bool user_main_address(struct api_request *req, const bson_oid_t *user, char **address_r)
{
	struct wd_user *u = NULL;
	char *error = NULL;
	int ret = wd_store_user_get(req->ctx->store, user, &u, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret, ret == WD_STORE_ERR_NOT_FOUND ?
						     "This user does not exist" : error, "UserNotFound");
		free(error);
		return false;
	}
	*address_r = strdup(u->address != NULL ? u->address : "");
	wd_user_free(&u);
	return true;
}

static json_t *user_address_json(struct api_request *req, const bson_t *doc, const char *main,
				 bool always_meta)
{
	const char *address = api_doc_str(doc, "address");
	json_t *item = json_object();
	json_object_set_new(item, "id", api_doc_json(doc, "_id"));
	json_object_set_new(item, "name", name_or_false(doc));
	json_object_set_new(item, "address", api_doc_json(doc, "address"));
	json_object_set_new(item, "main", json_boolean(address != NULL && main != NULL &&
						       strcmp(address, main) == 0));
	json_object_set_new(item, "tags", tags_json(doc));
	json_object_set_new(item, "created", api_doc_json(doc, "created"));
	add_metadata(req, item, doc, always_meta);
	return item;
}

static void get_user_addresses(struct api_request *req)
{
	bson_oid_t user;
	char *main = NULL;
	if (!api_oid(req, "user", &user) || !user_main_address(req, &user, &main))
		return;
	bson_t *filter = BCON_NEW("user", BCON_OID(&user));
	struct wd_store_page_request preq = {
		.db = WD_STORE_DB_USERS, .collection = "addresses", .filter = filter,
		.sort_key = "addrview", .limit = WD_STORE_PAGE_MAX,
	};
	json_t *results = json_array();
	struct wd_store_page page;
	char *error = NULL;
	int ret = 0;
	char *after = NULL;
	/* every address of the user, a page at a time */
	do {
		preq.after = after;
		ret = wd_store_page_find(req->ctx->store, &preq, &page, &error);
		free(after);
		after = NULL;
		if (ret < 0)
			break;
		for (size_t i = 0; i < page.count; i++)
			json_array_append_new(results, user_address_json(req, page.docs[i], main, false));
		if (page.has_next && page.count > 0)
			after = wd_store_page_key(page.docs[page.count - 1], "addrview");
		wd_store_page_free(&page);
	} while (after != NULL);
	if (ret < 0) {
		json_decref(results);
		api_reply_store_error(req, ret, error, "UserNotFound");
	} else {
		api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "results", results));
	}
	free(error);
	free(main);
	bson_destroy(filter);
}

/* The address document `field` of a user; false after answering 404. */
static bool user_address_doc(struct api_request *req, const bson_oid_t *user, const char *field,
			     bson_t *doc_r)
{
	bson_oid_t id, owner;
	api_oid(req, field, &id);
	char *error = NULL;
	int ret = wd_store_doc_get(req->ctx->store, WD_STORE_DB_USERS, "addresses", &id, doc_r,
				   &error);
	bson_iter_t iter;
	if (ret == 0 && !(bson_iter_init_find(&iter, doc_r, "user") &&
			  BSON_ITER_HOLDS_OID(&iter) &&
			  (bson_oid_copy(bson_iter_oid(&iter), &owner), bson_oid_equal(&owner, user)))) {
		bson_destroy(doc_r);
		ret = WD_STORE_ERR_NOT_FOUND;
	}
	if (ret < 0)
		address_store_error(req, ret, error, "Invalid or unknown address");
	else
		free(error);
	return ret == 0;
}

static void get_user_address(struct api_request *req)
{
	bson_oid_t user;
	char *main = NULL;
	bson_t doc;
	if (!api_oid(req, "user", &user) || !user_main_address(req, &user, &main))
		return;
	if (user_address_doc(req, &user, "address", &doc)) {
		json_t *out = user_address_json(req, &doc, main, true);
		json_object_set_new(out, "success", json_true());
		api_reply_ok(req, out);
		bson_destroy(&doc);
	}
	free(main);
}

static void put_user_address(struct api_request *req)
{
	bson_oid_t user, id;
	char *main_address = NULL, *address = NULL, *addrview = NULL, *error = NULL;
	bson_t doc, set = BSON_INITIALIZER;
	bool have_doc = false;
	if (!api_oid(req, "user", &user) || !user_main_address(req, &user, &main_address))
		return;
	api_oid(req, "id", &id);
	bool main = api_bool(req, "main", false);
	if (api_has(req, "main") && !main) {
		api_reply_error(req, 400, "InputValidationError", "Cannot unset main status");
		goto out;
	}
	if (!user_address_doc(req, &user, "id", &doc))
		goto out;
	have_doc = true;
	const char *current = api_doc_str(&doc, "address");
	const char *input = api_str(req, "address", NULL);
	if (input != NULL) {
		if (!address_rules(req, input, false) ||
		    !prepare_address(req, input, &address, &addrview))
			goto out;
		if (current != NULL && strchr(current, '*') != NULL && strcmp(address, current) != 0) {
			api_reply_error(req, 400, "ChangeNotAllowed", "Can not change special address");
			goto out;
		}
		if (addrview_taken(req, addrview, &id))
			goto out;
		BSON_APPEND_UTF8(&set, "address", address);
		BSON_APPEND_UTF8(&set, "addrview", addrview);
	}
	const char *effective = address != NULL ? address : current != NULL ? current : "";
	if (main && strchr(effective, '*') != NULL) {
		api_reply_error(req, 400, "WildcardNotPermitted", "Can not set wildcard address as default");
		goto out;
	}
	if (address != NULL && current != NULL && strcmp(current, main_address) == 0)
		main = true; /* the main address was renamed: users.address follows */
	const char *name = api_str(req, "name", NULL);
	if (name != NULL && name[0] != '\0')
		BSON_APPEND_UTF8(&set, "name", name);
	json_t *tags = api_json(req, "tags");
	if (tags != NULL)
		api_tags_append(&set, tags);
	if (!metadata_into(req, &set))
		goto out;
	if (!bson_empty(&set)) {
		bson_t update = BSON_INITIALIZER;
		BSON_APPEND_DOCUMENT(&update, "$set", &set);
		int ret = wd_store_doc_update(req->ctx->store, WD_STORE_DB_USERS, "addresses", &id, NULL,
					      &update, &error);
		bson_destroy(&update);
		if (ret < 0) {
			address_store_error(req, ret, error, "Invalid or unknown email address identifier");
			error = NULL;
			goto out;
		}
	}
	if (main) {
		bson_t *update = BCON_NEW("$set", "{", "address", BCON_UTF8(effective), "}");
		int ret = wd_store_doc_update(req->ctx->store, WD_STORE_DB_USERS, "users", &user, NULL,
					      update, &error);
		bson_destroy(update);
		if (ret < 0) {
			api_reply_store_error(req, ret, error, "UserNotFound");
			goto out;
		}
	}
	api_reply_success(req);
out:
	if (have_doc)
		bson_destroy(&doc);
	bson_destroy(&set);
	free(error);
	free(main_address);
	free(address);
	free(addrview);
}

static void delete_user_address(struct api_request *req)
{
	bson_oid_t user, id;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "address", &id);
	char *error = NULL;
	int ret = wd_store_address_remove(req->ctx->store, &user, &id, &error);
	if (ret == WD_STORE_ERR_NOT_PERMITTED) {
		api_reply_error(req, 400, "NotPermitted", "Can not delete main address");
		free(error);
	} else if (ret < 0) {
		address_store_error(req, ret, error, "Invalid or unknown email address identifier");
	} else {
		free(error);
		api_reply_success(req);
	}
}

/* ---- GET /users/:user/addressregister ---- */

static void get_addressregister(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	const char *query = api_str(req, "query", "");
	char *escaped = wd_search_regex_escape(query);
	char *pattern = NULL;
	if (escaped == NULL || asprintf(&pattern, "^%s", escaped) < 0) {
		free(escaped);
		api_reply_error(req, 500, "InternalError", "Out of memory");
		return;
	}
	free(escaped);
	bson_t *filter = BCON_NEW("user", BCON_OID(&user), "$or", "[",
				  "{", "address", "{", "$regex", BCON_UTF8(pattern), "$options",
				  BCON_UTF8(""), "}", "}",
				  "{", "name", "{", "$regex", BCON_UTF8(pattern), "$options",
				  BCON_UTF8("i"), "}", "}", "]");
	bson_t *opts = BCON_NEW("sort", "{", "updated", BCON_INT32(-1), "}", "limit",
				BCON_INT64(api_int(req, "limit", 20)), "projection", "{", "name",
				BCON_INT32(1), "address", BCON_INT32(1), "}");
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN,
							"addressregister");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	json_t *results = json_array();
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		json_t *item = json_object();
		json_object_set_new(item, "id", api_doc_json(doc, "_id"));
		json_object_set_new(item, "name", name_or_false(doc));
		json_object_set_new(item, "address", api_doc_json(doc, "address"));
		json_array_append_new(results, item);
	}
	bson_error_t error;
	bool failed = mongoc_cursor_error(cursor, &error);
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	bson_destroy(opts);
	bson_destroy(filter);
	free(pattern);
	if (failed) {
		json_decref(results);
		api_reply_store_error(req, WD_STORE_ERR_DATABASE, error.message, "UserNotFound");
		return;
	}
	api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "results", results));
}

/* ---- forwarded addresses ---- */

/* The autoreply object as WildDuck stores it: status (default true), start
   and end as dates or false, name/subject/text/html as strings. With
   `prefix` the keys are "autoreply.<key>" for an update. */
static bool autoreply_into(struct api_request *req, bson_t *set, bool update)
{
	json_t *ar = api_json(req, "autoreply");
	if (ar == NULL) {
		if (!update) {
			bson_t child;
			BSON_APPEND_DOCUMENT_BEGIN(set, "autoreply", &child);
			BSON_APPEND_BOOL(&child, "status", false);
			bson_append_document_end(set, &child);
		}
		return true;
	}
	bson_t child, *target = set;
	if (!update) {
		BSON_APPEND_DOCUMENT_BEGIN(set, "autoreply", &child);
		target = &child;
	}
	static const char *const texts[][2] = {
		{ "name", "128" }, { "subject", "2048" }, { "text", "131072" }, { "html", "131072" },
	};
	const char *key;
	json_t *value;
	bool ok = true;
	json_object_foreach(ar, key, value) {
		bool known = strcmp(key, "status") == 0 || strcmp(key, "start") == 0 ||
			     strcmp(key, "end") == 0;
		for (int i = 0; i < 4; i++)
			known = known || strcmp(key, texts[i][0]) == 0;
		if (!known) {
			api_reply_error(req, 400, "InputValidationError", "\"autoreply.%s\" is not allowed",
					key);
			ok = false;
			break;
		}
	}
	char name[40];
#define AR_KEY(k) (snprintf(name, sizeof(name), "%s%s", update ? "autoreply." : "", (k)), name)
	json_t *status = ok ? json_object_get(ar, "status") : NULL;
	if (ok)
		BSON_APPEND_BOOL(target, AR_KEY("status"), status == NULL || json_is_true(status));
	for (int i = 0; ok && i < 2; i++) {
		const char *k = i == 0 ? "start" : "end";
		json_t *v = json_object_get(ar, k);
		if (v == NULL)
			continue;
		int64_t ms = json_is_string(v) && json_string_length(v) > 0 ?
				     api_parse_date(json_string_value(v)) : -1;
		if (json_is_false(v) || (json_is_string(v) && json_string_length(v) == 0))
			BSON_APPEND_BOOL(target, AR_KEY(k), false);
		else if (ms >= 0)
			BSON_APPEND_DATE_TIME(target, AR_KEY(k), ms);
		else {
			api_reply_error(req, 400, "InputValidationError", "\"autoreply.%s\" must be a date",
					k);
			ok = false;
		}
	}
	for (int i = 0; ok && i < 4; i++) {
		json_t *v = json_object_get(ar, texts[i][0]);
		if (v == NULL) {
			if (!update || i >= 2) /* WildDuck clears text/html together */
				BSON_APPEND_UTF8(target, AR_KEY(texts[i][0]), "");
			continue;
		}
		if (!json_is_string(v) || json_string_length(v) > (size_t)atoi(texts[i][1])) {
			api_reply_error(req, 400, "InputValidationError",
					"\"autoreply.%s\" must be a string of at most %s characters",
					texts[i][0], texts[i][1]);
			ok = false;
			break;
		}
		BSON_APPEND_UTF8(target, AR_KEY(texts[i][0]), json_string_value(v));
	}
#undef AR_KEY
	if (!update)
		bson_append_document_end(set, &child);
	return ok;
}

static void post_forwarded(struct api_request *req)
{
	const char *input = api_str(req, "address", "");
	bool wildcard = api_bool(req, "allowWildcard", false);
	char *address = NULL, *addrview = NULL;
	if (!address_rules(req, input, wildcard) || !prepare_address(req, input, &address, &addrview))
		return;
	bson_oid_t id;
	bson_oid_init(&id, NULL);
	bson_t doc = BSON_INITIALIZER;
	char error[300] = "";
	BSON_APPEND_OID(&doc, "_id", &id);
	const char *name = api_str(req, "name", NULL);
	if (name != NULL)
		BSON_APPEND_UTF8(&doc, "name", name);
	else
		BSON_APPEND_NULL(&doc, "name");
	BSON_APPEND_UTF8(&doc, "address", address);
	BSON_APPEND_UTF8(&doc, "addrview", addrview);
	json_t *empty = json_array();
	json_t *targets = api_json(req, "targets");
	bool ok = api_targets_append(req->ctx->store, &doc, "targets",
				     targets != NULL ? targets : empty, addrview, error, sizeof(error));
	json_decref(empty);
	if (!ok) {
		api_reply_error(req, 400, "InputValidationError", "%s", error);
		goto out;
	}
	if (api_has(req, "forwards"))
		api_bson_js_number(&doc, "forwards", api_int(req, "forwards", 0));
	if (!autoreply_into(req, &doc, false))
		goto out;
	BSON_APPEND_DATE_TIME(&doc, "created", (int64_t)time(NULL) * 1000);
	json_t *tags = api_json(req, "tags");
	if (tags != NULL)
		api_tags_append(&doc, tags);
	if (!metadata_into(req, &doc))
		goto out;
	char *serror = NULL;
	int ret = wd_store_doc_insert(req->ctx->store, WD_STORE_DB_USERS, "addresses", &doc, &serror);
	if (ret < 0)
		address_store_error(req, ret, serror, "");
	else {
		free(serror);
		api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id", api_json_oid(&id)));
	}
out:
	bson_destroy(&doc);
	free(address);
	free(addrview);
}

/* The forwarded address named by `field`; false after answering 404. */
static bool forwarded_doc(struct api_request *req, const char *field, bson_oid_t *id_r,
			  bson_t *doc_r, const char *not_found)
{
	api_oid(req, field, id_r);
	char *error = NULL;
	int ret = wd_store_doc_get(req->ctx->store, WD_STORE_DB_USERS, "addresses", id_r, doc_r,
				   &error);
	bson_iter_t iter;
	if (ret == 0 && (!has_targets(doc_r) || bson_iter_init_find(&iter, doc_r, "user"))) {
		bson_destroy(doc_r);
		ret = WD_STORE_ERR_NOT_FOUND;
	}
	if (ret < 0)
		address_store_error(req, ret, error, not_found);
	else
		free(error);
	return ret == 0;
}

static void get_forwarded(struct api_request *req)
{
	bson_oid_t id;
	bson_t doc;
	if (!forwarded_doc(req, "address", &id, &doc, "Invalid or unknown address"))
		return;
	api_reply_ok(req, forwarded_json(req, &doc, true));
	bson_destroy(&doc);
}

static void put_forwarded(struct api_request *req)
{
	bson_oid_t id;
	bson_t doc, set = BSON_INITIALIZER;
	char *address = NULL, *addrview = NULL, error[300] = "";
	if (!forwarded_doc(req, "id", &id, &doc, "Invalid or unknown email address identifier")) {
		bson_destroy(&set);
		return;
	}
	const char *current = api_doc_str(&doc, "address");
	const char *view = api_doc_str(&doc, "addrview");
	const char *input = api_str(req, "address", NULL);
	if (input != NULL) {
		if (!prepare_address(req, input, &address, &addrview))
			goto out;
		if ((current != NULL && strchr(current, '*') != NULL && strcmp(current, address) != 0) ||
		    (strchr(address, '*') != NULL && (current == NULL || strcmp(current, address) != 0))) {
			api_reply_error(req, 400, "ChangeNotAllowed", "Can not change special address");
			goto out;
		}
		if (!address_rules(req, input, true) || addrview_taken(req, addrview, &id))
			goto out;
		BSON_APPEND_UTF8(&set, "address", address);
		BSON_APPEND_UTF8(&set, "addrview", addrview);
	}
	if (api_int(req, "forwards", 0) > 0)
		api_bson_js_number(&set, "forwards", api_int(req, "forwards", 0));
	const char *name = api_str(req, "name", NULL);
	if (name != NULL && name[0] != '\0')
		BSON_APPEND_UTF8(&set, "name", name);
	if (api_has(req, "forwardedDisabled"))
		BSON_APPEND_BOOL(&set, "forwardedDisabled", api_bool(req, "forwardedDisabled", false));
	if (!autoreply_into(req, &set, true))
		goto out;
	json_t *tags = api_json(req, "tags");
	if (tags != NULL)
		api_tags_append(&set, tags);
	json_t *targets = api_json(req, "targets");
	if (targets != NULL &&
	    !api_targets_append(req->ctx->store, &set, "targets", targets, view, error,
				sizeof(error))) {
		api_reply_error(req, 400, "InputValidationError", "%s", error);
		goto out;
	}
	if (!metadata_into(req, &set))
		goto out;
	if (bson_empty(&set)) {
		api_reply_success(req);
		goto out;
	}
	bson_t update = BSON_INITIALIZER;
	BSON_APPEND_DOCUMENT(&update, "$set", &set);
	char *serror = NULL;
	int ret = wd_store_doc_update(req->ctx->store, WD_STORE_DB_USERS, "addresses", &id, NULL,
				      &update, &serror);
	bson_destroy(&update);
	if (ret < 0) {
		address_store_error(req, ret, serror, "Invalid or unknown email address identifier");
	} else {
		free(serror);
		api_reply_success(req);
	}
out:
	bson_destroy(&doc);
	bson_destroy(&set);
	free(address);
	free(addrview);
}

static void delete_forwarded(struct api_request *req)
{
	bson_oid_t id;
	bson_t doc;
	if (!forwarded_doc(req, "address", &id, &doc, "Invalid or unknown email address identifier"))
		return;
	bson_destroy(&doc);
	char *error = NULL;
	int ret = wd_store_doc_delete(req->ctx->store, WD_STORE_DB_USERS, "addresses", &id, &error);
	if (ret < 0) {
		address_store_error(req, ret, error, "Invalid or unknown email address identifier");
		return;
	}
	free(error);
	api_reply_success(req);
}

/* ---- GET /addresses/resolve/:address ---- */

static void resolve_address(struct api_request *req)
{
	const char *input = api_str(req, "address", "");
	bson_oid_t id;
	char *error = NULL;
	int ret;
	if (strchr(input, '@') != NULL) {
		struct wd_address *found = NULL;
		ret = wd_store_address_resolve(req->ctx->store, input,
					       api_bool(req, "allowWildcard", false) ?
						       WD_RESOLVE_WILDCARD : 0, &found, &error);
		if (ret == 0)
			id = found->id;
		wd_address_free(&found);
	} else if (strlen(input) == 24 && bson_oid_is_valid(input, 24)) {
		bson_oid_init_from_string(&id, input);
		ret = 0;
	} else {
		ret = WD_STORE_ERR_NOT_FOUND;
	}
	bson_t doc;
	if (ret == 0)
		ret = wd_store_doc_get(req->ctx->store, WD_STORE_DB_USERS, "addresses", &id, &doc,
				       &error);
	if (ret < 0) {
		address_store_error(req, ret, error, "Invalid or unknown address");
		return;
	}
	free(error);
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, &doc, "user") && BSON_ITER_HOLDS_OID(&iter)) {
		json_t *out = json_object();
		json_object_set_new(out, "success", json_true());
		json_object_set_new(out, "id", api_json_oid(&id));
		json_object_set_new(out, "address", api_doc_json(&doc, "address"));
		json_object_set_new(out, "user", api_json_oid(bson_iter_oid(&iter)));
		json_object_set_new(out, "tags", tags_json(&doc));
		json_object_set_new(out, "created", api_doc_json(&doc, "created"));
		add_metadata(req, out, &doc, true);
		api_reply_ok(req, out);
	} else {
		api_reply_ok(req, forwarded_json(req, &doc, false));
	}
	bson_destroy(&doc);
}

/* ---- PUT /addresses/renameDomain ---- */

static void rename_domain(struct api_request *req)
{
	struct wd_rename_domain_report report;
	char *error = NULL;
	int ret = wd_store_address_rename_domain(req->ctx->store, api_str(req, "oldDomain", ""),
						 api_str(req, "newDomain", ""), &report, &error);
	if (ret == WD_STORE_ERR_INVALID) {
		api_reply_error(req, 400, "InputValidationError", "%s", error);
		free(error);
		return;
	}
	if (ret < 0) {
		address_store_error(req, ret, error, "");
		return;
	}
	api_reply_ok(req, json_pack("{s:b,s:I,s:I,s:i,s:I}", "success", 1, "modifiedAddresses",
				    (json_int_t)report.addresses, "modifiedUsers",
				    (json_int_t)report.users, "modifiedDkim", 0, "modifiedAliases",
				    (json_int_t)report.aliases));
}

/* ---- the table ---- */

#define USER_PATH { "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" }
#define META_FIELDS \
	{ "metaData", API_T_ANY, 0, 0, 1048576, NULL, "Metadata: an object or its JSON text" }, \
	{ "internalData", API_T_ANY, 0, 0, 1048576, NULL, \
	  "Internal metadata (not for user tokens): an object or its JSON text" }
#define TAGS_FIELD { "tags", API_T_STRINGS, 0, 0, 0, NULL, "Tags of this address" }
#define META_QUERY \
	{ "metaData", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Include metaData" }, \
	{ "internalData", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Include internalData" }

static const struct api_field list_fields[] = {
	{ "query", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK, 0, 255, NULL,
	  "Partial match of an address" },
	{ "forward", API_T_STRING, API_F_QUERY | API_F_LOWERCASE | API_F_EMPTY_OK, 0, 255, NULL,
	  "Partial match of a forward email address or URL" },
	{ "tags", API_T_STRING, API_F_QUERY | API_F_TRIM | API_F_EMPTY_OK, 0, 1024, NULL,
	  "Comma separated tags, the address must have at least one" },
	{ "requiredTags", API_T_STRING, API_F_QUERY | API_F_TRIM | API_F_EMPTY_OK, 0, 1024, NULL,
	  "Comma separated tags, the address must have all of them" },
	META_QUERY,
	API_PAGE_FIELDS,
	API_FIELDS_END
};

static const struct api_field create_fields[] = {
	USER_PATH,
	{ "address", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 3, 512, NULL,
	  "Address (\"*@domain\" and \"user@*\" forms need allowWildcard)" },
	{ "name", API_T_STRING, 0, 0, 256, NULL, "Identity name" },
	{ "main", API_T_BOOL, 0, 0, 0, NULL, "Make this the user's main address" },
	{ "allowWildcard", API_T_BOOL, 0, 0, 0, NULL, "Allow a wildcard address" },
	TAGS_FIELD,
	META_FIELDS,
	API_FIELDS_END
};

static const struct api_field user_list_fields[] = { USER_PATH, META_QUERY, API_FIELDS_END };

static const struct api_field user_address_fields[] = {
	USER_PATH,
	{ "address", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the address" },
	API_FIELDS_END
};

static const struct api_field update_fields[] = {
	USER_PATH,
	{ "id", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the address" },
	{ "name", API_T_STRING, 0, 0, 256, NULL, "Identity name" },
	{ "address", API_T_EMAIL, 0, 0, 512, NULL, "New address (not for wildcard addresses)" },
	{ "main", API_T_BOOL, 0, 0, 0, NULL, "Make this the user's main address (true only)" },
	TAGS_FIELD,
	META_FIELDS,
	API_FIELDS_END
};

static const struct api_field register_fields[] = {
	USER_PATH,
	{ "query", API_T_STRING, API_F_REQUIRED | API_F_QUERY, 1, 255, NULL,
	  "Prefix of an address or a name" },
	{ "limit", API_T_INT, API_F_QUERY, 1, REGISTER_LIMIT_MAX, NULL,
	  "How many records to return (20)" },
	API_FIELDS_END
};

#define FORWARDED_FIELDS \
	{ "name", API_T_STRING, 0, 0, 256, NULL, "Identity name" }, \
	{ "targets", API_T_STRINGS, 0, 0, 0, NULL, \
	  "Forwarding targets: addresses, smtp(s):// relays or http(s):// URLs" }, \
	{ "forwards", API_T_INT, 0, 0, 1LL << 53, NULL, "Messages per 24 h that may be forwarded" }, \
	{ "autoreply", API_T_OBJECT, 0, 0, 300000, NULL, \
	  "Autoreply: {status, start, end, name, subject, text, html}" }, \
	TAGS_FIELD, \
	META_FIELDS

static const struct api_field forwarded_create_fields[] = {
	{ "address", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 3, 512, NULL,
	  "Address (\"*@domain\" and \"user@*\" forms need allowWildcard)" },
	{ "allowWildcard", API_T_BOOL, 0, 0, 0, NULL, "Allow a wildcard address" },
	FORWARDED_FIELDS,
	API_FIELDS_END
};

static const struct api_field forwarded_update_fields[] = {
	{ "id", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the address" },
	{ "address", API_T_EMAIL, 0, 0, 512, NULL, "New address (not for wildcard addresses)" },
	{ "forwardedDisabled", API_T_BOOL, 0, 0, 0, NULL, "Stop forwarding" },
	FORWARDED_FIELDS,
	API_FIELDS_END
};

static const struct api_field forwarded_id_fields[] = {
	{ "address", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the address" },
	API_FIELDS_END
};

static const struct api_field resolve_fields[] = {
	{ "address", API_T_STRING, API_F_REQUIRED | API_F_PATH, 1, 512, NULL,
	  "An address or the ID of one" },
	{ "allowWildcard", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Also match wildcard addresses" },
	API_FIELDS_END
};

static const struct api_field rename_fields[] = {
	{ "oldDomain", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 1, 255, NULL, "Domain to rename" },
	{ "newDomain", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 1, 255, NULL, "The new domain" },
	API_FIELDS_END
};

const struct api_route api_routes_addresses[] = {
	{ API_GET, "/addresses", get_addresses, "addresslisting", API_READ, API_R_SELF, list_fields,
	  "Addresses", "List registered addresses", "getAddresses" },
	{ API_POST, "/users/:user/addresses", post_user_address, "addresses", API_CREATE, 0,
	  create_fields, "Addresses", "Add an address to a user", "createUserAddress" },
	{ API_GET, "/users/:user/addresses", get_user_addresses, "addresses", API_READ, 0,
	  user_list_fields, "Addresses", "List the addresses of a user", "getUserAddresses" },
	{ API_GET, "/users/:user/addresses/:address", get_user_address, "addresses", API_READ, 0,
	  user_address_fields, "Addresses", "Request address information", "getUserAddress" },
	{ API_PUT, "/users/:user/addresses/:id", put_user_address, "addresses", API_UPDATE, 0,
	  update_fields, "Addresses", "Update address information", "updateUserAddress" },
	{ API_DELETE, "/users/:user/addresses/:address", delete_user_address, "addresses",
	  API_DELETE_ACTION, 0, user_address_fields, "Addresses", "Delete an address",
	  "deleteUserAddress" },
	{ API_GET, "/users/:user/addressregister", get_addressregister, "addresses", API_READ, 0,
	  register_fields, "Addresses", "Search the address register", "getUserAddressregister" },
	{ API_POST, "/addresses/forwarded", post_forwarded, "addresses", API_CREATE, 0,
	  forwarded_create_fields, "Addresses", "Create a forwarded address",
	  "createForwardedAddress" },
	{ API_PUT, "/addresses/forwarded/:id", put_forwarded, "addresses", API_UPDATE, 0,
	  forwarded_update_fields, "Addresses", "Update a forwarded address",
	  "updateForwardedAddress" },
	{ API_DELETE, "/addresses/forwarded/:address", delete_forwarded, "addresses",
	  API_DELETE_ACTION, 0, forwarded_id_fields, "Addresses", "Delete a forwarded address",
	  "deleteForwardedAddress" },
	{ API_GET, "/addresses/forwarded/:address", get_forwarded, "addresses", API_READ, 0,
	  forwarded_id_fields, "Addresses", "Request forwarded address information",
	  "getForwardedAddress" },
	{ API_GET, "/addresses/resolve/:address", resolve_address, "addresses", API_READ, 0,
	  resolve_fields, "Addresses", "Resolve an address", "resolveAddress" },
	{ API_PUT, "/addresses/renameDomain", rename_domain, "addresses", API_UPDATE, 0,
	  rename_fields, "Addresses", "Rename the domain of addresses", "renameDomain" },
	API_ROUTES_END
};
