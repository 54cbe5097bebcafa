/* Helpers of the account-settings route modules (account.h): log meta,
 * libwdauth errors as answers, paged listings, settings. */
#include "account.h"

#include "wd-log.h"
#include "wd-store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void api_account_meta(struct api_request *req, struct wd_auth_meta *meta_r)
{
	const char *ip = api_str(req, "ip", NULL);
	const char *sess = api_str(req, "sess", NULL);
	meta_r->protocol = "API";
	meta_r->ip = ip != NULL && ip[0] != '\0' ? ip : req->remote_ip;
	meta_r->sess = sess != NULL && sess[0] != '\0' ? sess : NULL;
}

void api_account_auth_error(struct api_request *req, int ret, const char *error,
			    const char *not_found_code, const char *state_code)
{
	const char *message = error != NULL ? error : wd_auth_error_kind_name(ret);
	switch (ret) {
	case WD_AUTH_ERR_NOT_FOUND:
		api_reply_error(req, 404, not_found_code, "%s", message);
		return;
	case WD_AUTH_ERR_STATE:
		api_reply_error(req, 400, state_code, "%s", message);
		return;
	case WD_AUTH_ERR_LIMIT:
		api_reply_error(req, 403, "TooMany", "%s", message);
		return;
	case WD_AUTH_ERR_INVALID:
		api_reply_error(req, 400, "InputValidationError", "%s", message);
		return;
	case WD_AUTH_ERR_RATELIMITED:
		api_reply_error(req, 403, "RateLimitedError", "%s", message);
		return;
	default:
		wd_error("api", "%s %s: %s", api_method_name(req->method), req->url, message);
		api_reply_error(req, 500, "InternalDatabaseError", "Database error, try again later");
	}
}

/* ---- paging ---- */

static char *cursor_of(const struct api_page *page, const bson_t *doc)
{
	bson_iter_t it;
	char hex[25] = "";
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
		bson_oid_to_string(bson_iter_oid(&it), hex);
	if (page->field == NULL)
		return api_cursor_encode(page->kind, hex);
	const char *value = "";
	if (bson_iter_init_find(&it, doc, page->field) && BSON_ITER_HOLDS_UTF8(&it))
		value = bson_iter_utf8(&it, NULL);
	char *plain = NULL;
	if (asprintf(&plain, "%s:%s", hex, value) < 0)
		return NULL;
	char *cursor = api_cursor_encode(page->kind, plain);
	free(plain);
	return cursor;
}

/* The cursor's key into *id / *value (value malloc'd, NULL for _id paging). */
static bool cursor_parse(const struct api_page *page, const char *cursor, bson_oid_t *id,
			 char **value_r)
{
	*value_r = NULL;
	char *plain = api_cursor_decode(page->kind, cursor);
	if (plain == NULL)
		return false;
	bool ok = strlen(plain) >= 24 && bson_oid_is_valid(plain, 24);
	if (ok && page->field == NULL)
		ok = plain[24] == '\0';
	if (ok && page->field != NULL)
		ok = plain[24] == ':';
	if (ok) {
		bson_oid_init_from_string(id, plain);
		if (page->field != NULL)
			*value_r = strdup(plain + 25);
	}
	free(plain);
	return ok;
}

/* filter AND (key after/before the cursor) */
static void position_filter(bson_t *out, const bson_t *filter, const struct api_page *page,
			    bool after, const bson_oid_t *id, const char *value)
{
	const char *op = after != page->descending ? "$gt" : "$lt";
	bson_t and, item, cond, or, alt;
	BSON_APPEND_ARRAY_BEGIN(out, "$and", &and);
	BSON_APPEND_DOCUMENT(&and, "0", filter);
	BSON_APPEND_DOCUMENT_BEGIN(&and, "1", &item);
	if (page->field == NULL) {
		BSON_APPEND_DOCUMENT_BEGIN(&item, "_id", &cond);
		BSON_APPEND_OID(&cond, op, id);
		bson_append_document_end(&item, &cond);
	} else {
		BSON_APPEND_ARRAY_BEGIN(&item, "$or", &or);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &alt);
		BSON_APPEND_DOCUMENT_BEGIN(&alt, page->field, &cond);
		BSON_APPEND_UTF8(&cond, op, value);
		bson_append_document_end(&alt, &cond);
		bson_append_document_end(&or, &alt);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &alt);
		BSON_APPEND_UTF8(&alt, page->field, value);
		BSON_APPEND_DOCUMENT_BEGIN(&alt, "_id", &cond);
		BSON_APPEND_OID(&cond, op, id);
		bson_append_document_end(&alt, &cond);
		bson_append_document_end(&or, &alt);
		bson_append_array_end(&item, &or);
	}
	bson_append_document_end(&and, &item);
	bson_append_array_end(out, &and);
}

int api_page_find(struct api_request *req, mongoc_collection_t *coll, const bson_t *filter,
		  const struct api_page *page, struct api_page_result *r)
{
	memset(r, 0, sizeof(*r));
	const char *cursor = page->next != NULL && page->next[0] != '\0' ? page->next : NULL;
	bool backwards = false;
	if (cursor == NULL && page->previous != NULL && page->previous[0] != '\0') {
		cursor = page->previous;
		backwards = true;
	}
	bson_oid_t id;
	char *value = NULL;
	if (cursor != NULL && !cursor_parse(page, cursor, &id, &value)) {
		api_reply_error(req, 400, "InputValidationError", "Invalid cursor value");
		return -1;
	}
	bson_error_t error;
	r->total = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
	if (r->total < 0) {
		free(value);
		wd_error("api", "%s: count: %s", req->url, error.message);
		api_reply_error(req, 500, "InternalDatabaseError", "Database error, try again later");
		return -1;
	}
	bson_t query = BSON_INITIALIZER;
	if (cursor != NULL)
		position_filter(&query, filter, page, !backwards, &id, value);
	else
		bson_copy_to(filter, &query);
	free(value);
	int dir = (page->descending != backwards) ? -1 : 1;
	bson_t opts = BSON_INITIALIZER, sort;
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
	if (page->field != NULL)
		BSON_APPEND_INT32(&sort, page->field, dir);
	BSON_APPEND_INT32(&sort, "_id", dir);
	bson_append_document_end(&opts, &sort);
	BSON_APPEND_INT64(&opts, "limit", page->limit + 1);
	mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, &query, &opts, NULL);
	size_t cap = (size_t)page->limit + 1;
	r->docs = calloc(cap, sizeof(*r->docs));
	const bson_t *doc;
	size_t got = 0;
	while (r->docs != NULL && got < cap && mongoc_cursor_next(c, &doc))
		r->docs[got++] = bson_copy(doc);
	bool failed = mongoc_cursor_error(c, &error) || r->docs == NULL;
	mongoc_cursor_destroy(c);
	bson_destroy(&query);
	bson_destroy(&opts);
	r->count = got;
	if (failed) {
		wd_error("api", "%s: find: %s", req->url, error.message);
		api_page_result_free(r);
		api_reply_error(req, 500, "InternalDatabaseError", "Database error, try again later");
		return -1;
	}
	bool more = got > (size_t)page->limit;
	if (more) {
		bson_destroy(r->docs[--r->count]);
		r->docs[r->count] = NULL;
	}
	if (backwards) {
		for (size_t i = 0; i < r->count / 2; i++) {
			bson_t *t = r->docs[i];
			r->docs[i] = r->docs[r->count - 1 - i];
			r->docs[r->count - 1 - i] = t;
		}
	}
	bool has_next = backwards ? true : more;
	bool has_previous = backwards ? more : cursor != NULL;
	if (r->count > 0) {
		if (has_next)
			r->next_cursor = cursor_of(page, r->docs[r->count - 1]);
		if (has_previous)
			r->previous_cursor = cursor_of(page, r->docs[0]);
	}
	return 0;
}

void api_page_result_free(struct api_page_result *r)
{
	for (size_t i = 0; i < r->count; i++)
		bson_destroy(r->docs[i]);
	free(r->docs);
	free(r->next_cursor);
	free(r->previous_cursor);
	memset(r, 0, sizeof(*r));
}

void api_page_reply_fields(struct api_request *req, json_t *body,
			   const struct api_page_result *r, json_t *results)
{
	int64_t page = api_int(req, "page", 1);
	if (r->previous_cursor == NULL)
		page = 1;
	json_object_set_new(body, "total", json_integer(r->total));
	json_object_set_new(body, "page", json_integer(page));
	json_object_set_new(body, "previousCursor", r->previous_cursor != NULL
							    ? json_string(r->previous_cursor)
							    : json_false());
	json_object_set_new(body, "nextCursor",
			    r->next_cursor != NULL ? json_string(r->next_cursor) : json_false());
	json_object_set_new(body, "results", results);
}

/* ---- collections ---- */

void api_coll_get(struct api_request *req, int db, const char *name, struct api_coll *c)
{
	c->store = req->ctx->store;
	c->db = db;
	c->client = wd_store_client(c->store, (enum wd_store_db)db);
	c->coll = wd_store_collection(c->store, c->client, (enum wd_store_db)db, name);
}

void api_coll_put(struct api_coll *c)
{
	mongoc_collection_destroy(c->coll);
	wd_store_client_release(c->store, (enum wd_store_db)c->db, c->client);
}

void api_db_failed(struct api_request *req, const char *what, const bson_error_t *error)
{
	wd_error("api", "%s %s: %s: %s", api_method_name(req->method), req->url, what,
		 error->message);
	api_reply_error(req, 500, "InternalDatabaseError", "Database error, try again later");
}

bson_t *api_find_one(struct api_request *req, int db, const char *collection,
		     const bson_t *filter, bool *failed_r)
{
	*failed_r = false;
	struct api_coll c;
	api_coll_get(req, db, collection, &c);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c.coll, filter, NULL, NULL);
	const bson_t *doc;
	bson_t *out = NULL;
	if (mongoc_cursor_next(cursor, &doc))
		out = bson_copy(doc);
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error)) {
		if (out != NULL)
			bson_destroy(out);
		out = NULL;
		api_db_failed(req, collection, &error);
		*failed_r = true;
	}
	mongoc_cursor_destroy(cursor);
	api_coll_put(&c);
	return out;
}

int64_t api_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *api_regex_escape(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(2 * len + 1), *w = out;
	if (out == NULL)
		return NULL;
	for (const char *p = text; *p != '\0'; p++) {
		if (strchr("\\^$.|?*+()[]{}-/", *p) != NULL)
			*w++ = '\\';
		*w++ = *p;
	}
	*w = '\0';
	return out;
}

/* ---- settings ---- */

int64_t api_account_setting(struct api_request *req, const char *key, int64_t def)
{
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "settings");
	bson_t *filter = BCON_NEW("key", BCON_UTF8(key));
	mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	const bson_t *doc;
	int64_t value = def;
	if (mongoc_cursor_next(c, &doc)) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, doc, "value")) {
			if (BSON_ITER_HOLDS_UTF8(&it)) {
				char *end = NULL;
				double v = strtod(bson_iter_utf8(&it, NULL), &end);
				if (end != NULL && *end == '\0' && v > 0)
					value = (int64_t)v;
			} else if (BSON_ITER_HOLDS_NUMBER(&it) && bson_iter_as_int64(&it) > 0) {
				value = bson_iter_as_int64(&it);
			}
		}
	}
	mongoc_cursor_destroy(c);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return value;
}
