/* Small shared pieces of the user, address and mailbox code: borrowing a
 * collection for one step, turning driver errors into error kinds, and
 * reading/writing fields with the BSON types WildDuck's Node driver uses
 * (reference §0: integers in int32 range are int32, other numbers double,
 * undefined is null). */
#include "store-op.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define DUPLICATE_KEY 11000

static const char *const kind_names[] = {
	"ok", "database", "not found", "exists", "limit", "invalid", "not permitted",
};

const char *wd_store_error_kind_name(int ret)
{
	if (ret >= 0)
		return kind_names[0];
	if ((size_t)-ret >= WD_N_ELEMENTS(kind_names))
		return kind_names[1];
	return kind_names[-ret];
}

mongoc_collection_t *wd__coll_open(struct wd__coll *c, struct wd_store *store,
				   enum wd_store_db db, const char *name)
{
	c->store = store;
	c->db = db;
	c->client = wd_store_client(store, db);
	c->coll = wd_store_collection(store, c->client, db, name);
	return c->coll;
}

void wd__coll_close(struct wd__coll *c)
{
	if (c->coll != NULL)
		mongoc_collection_destroy(c->coll);
	if (c->client != NULL)
		wd_store_client_release(c->store, c->db, c->client);
	c->coll = NULL;
	c->client = NULL;
}

int wd__fail(char **error_r, int kind, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	*error_r = msg;
	return kind;
}

bool wd__is_duplicate(const bson_error_t *error)
{
	return error->code == DUPLICATE_KEY;
}

int wd__fail_db(char **error_r, const bson_error_t *error, const char *what)
{
	return wd__fail(error_r, wd__is_duplicate(error) ? WD_STORE_ERR_EXISTS :
							   WD_STORE_ERR_DATABASE,
			"%s: %s", what, error->message);
}

int wd__doc_lock(struct wd_store *store, const bson_oid_t *id, struct wd_store_lock *lock,
		 char **error_r)
{
	char *error = NULL;
	if (wd__store_mailbox_lock(store, id, lock, &error) < 0) {
		int ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "%s",
				   error != NULL ? error : "update lock failed");
		free(error);
		return ret;
	}
	return WD_STORE_OK;
}

void wd__doc_unlock(struct wd_store *store, struct wd_store_lock *lock)
{
	wd__store_mailbox_unlock(store, lock);
}

int64_t wd__now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void wd__append_js_number(bson_t *doc, const char *key, int64_t value)
{
	if (value >= INT32_MIN && value <= INT32_MAX)
		bson_append_int32(doc, key, -1, (int32_t)value);
	else
		bson_append_double(doc, key, -1, (double)value);
}

void wd__append_utf8_or_null(bson_t *doc, const char *key, const char *value)
{
	if (value != NULL)
		bson_append_utf8(doc, key, -1, value, -1);
	else
		bson_append_null(doc, key, -1);
}

int wd__find_one(mongoc_collection_t *coll, const bson_t *query, const bson_t *opts,
		 bson_t *doc_r, char **error_r)
{
	bson_t find_opts = BSON_INITIALIZER;
	if (opts != NULL)
		bson_concat(&find_opts, opts);
	BSON_APPEND_INT64(&find_opts, "limit", 1);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, &find_opts, NULL);
	const bson_t *doc;
	bson_error_t error;
	int ret = WD_STORE_ERR_NOT_FOUND;
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_copy_to(doc, doc_r);
		ret = WD_STORE_OK;
	} else if (mongoc_cursor_error(cursor, &error)) {
		ret = wd__fail_db(error_r, &error, "database query failed");
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(&find_opts);
	return ret;
}

int64_t wd__doc_int64(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_NUMBER(&iter))
		return 0;
	return bson_iter_as_int64(&iter);
}

bool wd__doc_bool(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key))
		return false;
	return bson_iter_as_bool(&iter);
}

char *wd__doc_strdup(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_UTF8(&iter))
		return NULL;
	return strdup(bson_iter_utf8(&iter, NULL));
}

bool wd__doc_oid(const bson_t *doc, const char *key, bson_oid_t *oid_r)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_OID(&iter))
		return false;
	bson_oid_copy(bson_iter_oid(&iter), oid_r);
	return true;
}

int64_t wd__doc_date(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_DATE_TIME(&iter))
		return 0;
	return bson_iter_date_time(&iter);
}
