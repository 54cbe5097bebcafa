/* The API's administrative operations over users, addresses and domain
 * aliases (wd-store-user-admin.h): cursor paging, documents by _id, the
 * quota recount and the domain rename.
 *
 * Paging follows a unique key so a page boundary is exact even while
 * documents come and go: the next page is {key > last}, the previous one
 * {key < first} read backwards. One more document than asked for tells
 * whether there is a page beyond. */
#include "wd-store-user-admin.h"
#include "store-op.h"
#include "wd-store-search.h"

#include <stdlib.h>
#include <string.h>

void wd_store_page_free(struct wd_store_page *page)
{
	for (size_t i = 0; i < page->count; i++)
		bson_destroy(page->docs[i]);
	free(page->docs);
	memset(page, 0, sizeof(*page));
}

char *wd_store_page_key(const bson_t *doc, const char *sort_key)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, sort_key))
		return strdup("");
	if (BSON_ITER_HOLDS_OID(&iter)) {
		char hex[25];
		bson_oid_to_string(bson_iter_oid(&iter), hex);
		return strdup(hex);
	}
	if (BSON_ITER_HOLDS_UTF8(&iter))
		return strdup(bson_iter_utf8(&iter, NULL));
	return strdup("");
}

static bool append_key(bson_t *doc, const char *op, const char *sort_key, const char *value)
{
	bson_t child;
	BSON_APPEND_DOCUMENT_BEGIN(doc, sort_key, &child);
	if (strcmp(sort_key, "_id") == 0) {
		if (strlen(value) != 24 || !bson_oid_is_valid(value, 24))
			return false;
		bson_oid_t oid;
		bson_oid_init_from_string(&oid, value);
		BSON_APPEND_OID(&child, op, &oid);
	} else {
		BSON_APPEND_UTF8(&child, op, value);
	}
	bson_append_document_end(doc, &child);
	return true;
}

int wd_store_page_find(struct wd_store *store, const struct wd_store_page_request *req,
		       struct wd_store_page *page_r, char **error_r)
{
	memset(page_r, 0, sizeof(*page_r));
	unsigned limit = req->limit == 0 ? 20 : req->limit > WD_STORE_PAGE_MAX ?
					      WD_STORE_PAGE_MAX : req->limit;
	bool backwards = req->after == NULL && req->before != NULL;
	const char *bound = req->after != NULL ? req->after : req->before;

	bson_t empty = BSON_INITIALIZER;
	const bson_t *filter = req->filter != NULL ? req->filter : &empty;
	bson_t query = BSON_INITIALIZER, and;
	if (bound != NULL) {
		BSON_APPEND_ARRAY_BEGIN(&query, "$and", &and);
		BSON_APPEND_DOCUMENT(&and, "0", filter);
		bson_t cond = BSON_INITIALIZER;
		bool ok = append_key(&cond, backwards ? "$lt" : "$gt", req->sort_key, bound);
		BSON_APPEND_DOCUMENT(&and, "1", &cond);
		bson_destroy(&cond);
		bson_append_array_end(&query, &and);
		if (!ok) {
			bson_destroy(&query);
			return wd__fail(error_r, WD_STORE_ERR_INVALID, "invalid paging cursor");
		}
	} else {
		bson_concat(&query, filter);
	}
	bson_t opts = BSON_INITIALIZER, sort;
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
	BSON_APPEND_INT32(&sort, req->sort_key, backwards ? -1 : 1);
	bson_append_document_end(&opts, &sort);
	BSON_APPEND_INT64(&opts, "limit", (int64_t)limit + 1);
	if (req->projection != NULL)
		BSON_APPEND_DOCUMENT(&opts, "projection", req->projection);

	int ret = WD_STORE_OK;
	page_r->docs = calloc(limit + 1, sizeof(*page_r->docs));
	struct wd__coll c;
	mongoc_collection_t *coll = wd__coll_open(&c, store, req->db, req->collection);
	bson_error_t error;
	int64_t total = page_r->docs != NULL ?
		mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error) : -1;
	if (page_r->docs == NULL) {
		ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	} else if (total < 0) {
		ret = wd__fail_db(error_r, &error, "cannot count documents");
	} else {
		page_r->total = total;
		mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &query, &opts, NULL);
		const bson_t *doc;
		size_t got = 0;
		while (got < limit + 1 && mongoc_cursor_next(cursor, &doc))
			page_r->docs[got++] = bson_copy(doc);
		if (mongoc_cursor_error(cursor, &error))
			ret = wd__fail_db(error_r, &error, "cannot list documents");
		mongoc_cursor_destroy(cursor);
		bool more = got > limit;
		if (more)
			bson_destroy(page_r->docs[--got]);
		page_r->count = got;
		if (backwards) {
			for (size_t i = 0; i < got / 2; i++) {
				bson_t *t = page_r->docs[i];
				page_r->docs[i] = page_r->docs[got - 1 - i];
				page_r->docs[got - 1 - i] = t;
			}
			page_r->has_previous = more;
			page_r->has_next = true;
		} else {
			page_r->has_next = more;
			page_r->has_previous = bound != NULL;
		}
	}
	wd__coll_close(&c);
	bson_destroy(&opts);
	bson_destroy(&query);
	if (ret < 0)
		wd_store_page_free(page_r);
	return ret;
}

int wd_store_doc_get(struct wd_store *store, enum wd_store_db db, const char *collection,
		     const bson_oid_t *id, bson_t *doc_r, char **error_r)
{
	struct wd__coll c;
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	int ret = wd__find_one(wd__coll_open(&c, store, db, collection), query, NULL, doc_r,
			       error_r);
	wd__coll_close(&c);
	bson_destroy(query);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		return wd__fail(error_r, ret, "%s document not found", collection);
	return ret;
}

int wd_store_doc_insert(struct wd_store *store, enum wd_store_db db, const char *collection,
			const bson_t *doc, char **error_r)
{
	struct wd__coll c;
	bson_error_t error;
	int ret = WD_STORE_OK;
	if (!mongoc_collection_insert_one(wd__coll_open(&c, store, db, collection), doc, NULL, NULL,
					  &error))
		ret = wd__fail_db(error_r, &error, "cannot insert");
	wd__coll_close(&c);
	return ret;
}

int wd_store_doc_update(struct wd_store *store, enum wd_store_db db, const char *collection,
			const bson_oid_t *id, const bson_t *extra, const bson_t *update,
			char **error_r)
{
	bool user_doc = strcmp(collection, "users") == 0;
	struct wd_store_lock lock;
	if (user_doc && wd__doc_lock(store, id, &lock, error_r) < 0)
		return WD_STORE_ERR_DATABASE;
	bson_t query = BSON_INITIALIZER;
	BSON_APPEND_OID(&query, "_id", id);
	if (extra != NULL)
		bson_concat(&query, extra);
	bson_t reply;
	bson_error_t error;
	int ret = WD_STORE_OK;
	struct wd__coll c;
	if (!mongoc_collection_update_one(wd__coll_open(&c, store, db, collection), &query, update,
					  NULL, &reply, &error))
		ret = wd__fail_db(error_r, &error, "cannot update");
	else if (wd__doc_int64(&reply, "matchedCount") == 0)
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "%s document not found", collection);
	bson_destroy(&reply);
	wd__coll_close(&c);
	bson_destroy(&query);
	if (user_doc)
		wd__doc_unlock(store, &lock);
	return ret;
}

int wd_store_doc_delete(struct wd_store *store, enum wd_store_db db, const char *collection,
			const bson_oid_t *id, char **error_r)
{
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	bson_t reply;
	bson_error_t error;
	int ret = WD_STORE_OK;
	struct wd__coll c;
	if (!mongoc_collection_delete_one(wd__coll_open(&c, store, db, collection), query, NULL,
					  &reply, &error))
		ret = wd__fail_db(error_r, &error, "cannot delete");
	else if (wd__doc_int64(&reply, "deletedCount") == 0)
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "%s document not found", collection);
	bson_destroy(&reply);
	wd__coll_close(&c);
	bson_destroy(query);
	return ret;
}

int wd_store_doc_count(struct wd_store *store, enum wd_store_db db, const char *collection,
		       const bson_t *filter, int64_t *count_r, char **error_r)
{
	struct wd__coll c;
	bson_error_t error;
	bson_t empty = BSON_INITIALIZER;
	int64_t n = mongoc_collection_count_documents(wd__coll_open(&c, store, db, collection),
						      filter != NULL ? filter : &empty, NULL, NULL,
						      NULL, &error);
	wd__coll_close(&c);
	*count_r = n < 0 ? 0 : n;
	return n < 0 ? wd__fail_db(error_r, &error, "cannot count") : WD_STORE_OK;
}

/* ---- quota ---- */

static int sum_message_sizes(struct wd_store *store, const bson_oid_t *user, int64_t *sum_r,
			     char **error_r)
{
	/* the sizes one by one (projection) rather than $group: the same on
	   every server, and one user's messages stream through without being
	   held */
	bson_t *query = BCON_NEW("user", BCON_OID(user));
	bson_t *opts = BCON_NEW("projection", "{", "size", BCON_INT32(1), "_id", BCON_INT32(0), "}");
	struct wd__coll c;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(
		wd__coll_open(&c, store, WD_STORE_DB_MAIN, "messages"), query, opts, NULL);
	const bson_t *doc;
	int64_t sum = 0;
	while (mongoc_cursor_next(cursor, &doc)) {
		int64_t size = wd__doc_int64(doc, "size");
		if (size > 0)
			sum += size;
	}
	bson_error_t error;
	int ret = WD_STORE_OK;
	if (mongoc_cursor_error(cursor, &error))
		ret = wd__fail_db(error_r, &error, "cannot read message sizes");
	mongoc_cursor_destroy(cursor);
	wd__coll_close(&c);
	bson_destroy(opts);
	bson_destroy(query);
	*sum_r = sum;
	return ret;
}

int wd_store_user_quota_recount(struct wd_store *store, const bson_oid_t *user,
				int64_t *used_r, int64_t *previous_r, char **error_r)
{
	*used_r = *previous_r = 0;
	/* the user's lock across read, sum and write: a delivery's $inc waits
	   instead of being overwritten by a sum that did not see it */
	struct wd_store_lock lock;
	if (wd__doc_lock(store, user, &lock, error_r) < 0)
		return WD_STORE_ERR_DATABASE;
	bson_t doc;
	int ret = WD_STORE_OK;
	struct wd__coll c;
	bson_t *query = BCON_NEW("_id", BCON_OID(user));
	ret = wd__find_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"), query, NULL, &doc,
			   error_r);
	wd__coll_close(&c);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		ret = wd__fail(error_r, ret, "user does not exist");
	if (ret == WD_STORE_OK) {
		*previous_r = wd__doc_int64(&doc, "storageUsed");
		bson_destroy(&doc);
		ret = sum_message_sizes(store, user, used_r, error_r);
	}
	if (ret == WD_STORE_OK) {
		bson_t update = BSON_INITIALIZER, set;
		BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
		wd__append_js_number(&set, "storageUsed", *used_r);
		bson_append_document_end(&update, &set);
		bson_error_t error;
		if (!mongoc_collection_update_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"),
						  query, &update, NULL, NULL, &error))
			ret = wd__fail_db(error_r, &error, "cannot update storageUsed");
		wd__coll_close(&c);
		bson_destroy(&update);
	}
	bson_destroy(query);
	wd__doc_unlock(store, &lock);
	return ret;
}

/* ---- renaming a domain ---- */

/* `value` with everything after its last '@' replaced by `domain`. */
static char *with_domain(const char *value, const char *domain)
{
	const char *at = strrchr(value, '@');
	if (at == NULL)
		return NULL;
	char *out = NULL;
	if (asprintf(&out, "%.*s@%s", (int)(at - value), value, domain) < 0)
		return NULL;
	return out;
}

static int rename_one(struct wd_store *store, const bson_t *doc, const char *domain,
		      struct wd_rename_domain_report *report, char **error_r)
{
	bson_oid_t id, user;
	char *address = wd__doc_strdup(doc, "address");
	char *addrview = wd__doc_strdup(doc, "addrview");
	char *new_address = address != NULL ? with_domain(address, domain) : NULL;
	char *new_addrview = addrview != NULL ? with_domain(addrview, domain) : NULL;
	int ret = WD_STORE_OK;
	if (!wd__doc_oid(doc, "_id", &id) || new_address == NULL || new_addrview == NULL)
		goto out;
	bson_t *update = BCON_NEW("$set", "{", "address", BCON_UTF8(new_address), "addrview",
				  BCON_UTF8(new_addrview), "}");
	ret = wd_store_doc_update(store, WD_STORE_DB_USERS, "addresses", &id, NULL, update, error_r);
	bson_destroy(update);
	if (ret == WD_STORE_ERR_NOT_FOUND) {
		free(*error_r);
		*error_r = NULL;
		ret = WD_STORE_OK; /* deleted meanwhile */
		goto out;
	}
	if (ret < 0)
		goto out;
	report->addresses++;
	if (wd__doc_oid(doc, "user", &user)) {
		bson_t *extra = BCON_NEW("address", BCON_UTF8(address));
		update = BCON_NEW("$set", "{", "address", BCON_UTF8(new_address), "}");
		ret = wd_store_doc_update(store, WD_STORE_DB_USERS, "users", &user, extra, update,
					  error_r);
		bson_destroy(update);
		bson_destroy(extra);
		if (ret == WD_STORE_OK)
			report->users++;
		else if (ret == WD_STORE_ERR_NOT_FOUND) {
			free(*error_r);
			*error_r = NULL;
			ret = WD_STORE_OK; /* not the main address */
		}
	}
out:
	free(address);
	free(addrview);
	free(new_address);
	free(new_addrview);
	return ret;
}

int wd_store_address_rename_domain(struct wd_store *store, const char *old_domain,
				   const char *new_domain, struct wd_rename_domain_report *report_r,
				   char **error_r)
{
	memset(report_r, 0, sizeof(*report_r));
	*error_r = NULL;
	char *old_d = wd_domain_normalize(old_domain);
	char *new_d = wd_domain_normalize(new_domain);
	char *escaped = old_d != NULL ? wd_search_regex_escape(old_d) : NULL;
	char *pattern = NULL;
	int ret = WD_STORE_OK;
	if (old_d == NULL || new_d == NULL || old_d[0] == '\0' || new_d[0] == '\0' ||
	    escaped == NULL || asprintf(&pattern, "@%s$", escaped) < 0) {
		pattern = NULL;
		ret = wd__fail(error_r, WD_STORE_ERR_INVALID, "invalid domain");
		goto out;
	}
	/* the matching documents first (bounded batches of ids would change
	   nothing here: every update is by _id), then one update each */
	bson_t *query = BCON_NEW("addrview", "{", "$regex", BCON_UTF8(pattern), "$options",
				 BCON_UTF8(""), "}");
	bson_t *opts = BCON_NEW("projection", "{", "address", BCON_INT32(1), "addrview",
				BCON_INT32(1), "user", BCON_INT32(1), "}");
	struct wd__coll c;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(
		wd__coll_open(&c, store, WD_STORE_DB_USERS, "addresses"), query, opts, NULL);
	bson_t **docs = NULL;
	size_t count = 0, cap = 0;
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		if (count == cap) {
			size_t ncap = cap == 0 ? 64 : cap * 2;
			bson_t **n = realloc(docs, ncap * sizeof(*n));
			if (n == NULL)
				break;
			docs = n;
			cap = ncap;
		}
		docs[count++] = bson_copy(doc);
	}
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error))
		ret = wd__fail_db(error_r, &error, "cannot list addresses");
	mongoc_cursor_destroy(cursor);
	wd__coll_close(&c);
	bson_destroy(opts);
	bson_destroy(query);
	for (size_t i = 0; i < count; i++) {
		if (ret == WD_STORE_OK)
			ret = rename_one(store, docs[i], new_d, report_r, error_r);
		bson_destroy(docs[i]);
	}
	free(docs);
	if (ret == WD_STORE_OK) {
		bson_t *filter = BCON_NEW("domain", BCON_UTF8(old_d));
		bson_t *update = BCON_NEW("$set", "{", "domain", BCON_UTF8(new_d), "}");
		bson_t reply;
		if (!mongoc_collection_update_many(
			    wd__coll_open(&c, store, WD_STORE_DB_USERS, "domainaliases"), filter,
			    update, NULL, &reply, &error))
			ret = wd__fail_db(error_r, &error, "cannot update domain aliases");
		else
			report_r->aliases = wd__doc_int64(&reply, "modifiedCount");
		bson_destroy(&reply);
		wd__coll_close(&c);
		bson_destroy(update);
		bson_destroy(filter);
	}
out:
	free(pattern);
	free(escaped);
	free(old_d);
	free(new_d);
	return ret;
}

int64_t wd_store_setting_int(struct wd_store *store, const char *key, int64_t def)
{
	bson_t *query = BCON_NEW("key", BCON_UTF8(key));
	bson_t doc;
	struct wd__coll c;
	char *error = NULL;
	int64_t value = def;
	if (wd__find_one(wd__coll_open(&c, store, WD_STORE_DB_MAIN, "settings"), query, NULL, &doc,
			 &error) == WD_STORE_OK) {
		bson_iter_t iter;
		int64_t v = 0;
		if (bson_iter_init_find(&iter, &doc, "value")) {
			if (BSON_ITER_HOLDS_UTF8(&iter))
				v = strtoll(bson_iter_utf8(&iter, NULL), NULL, 10);
			else if (BSON_ITER_HOLDS_NUMBER(&iter))
				v = bson_iter_as_int64(&iter);
		}
		if (v > 0)
			value = v;
		bson_destroy(&doc);
	}
	free(error);
	wd__coll_close(&c);
	bson_destroy(query);
	return value;
}
