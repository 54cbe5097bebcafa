/* Addresses of users and their resolution (reference §2.2, §2.3, §4.13).
 *
 * Stored form: `address` = normalizeAddress(input) (Unicode domain, lower
 * case), `addrview` = uview(address) (no dots before '@'), unique. Adding
 * follows WildDuck's POST /users/:user/addresses rules ('+' refused,
 * wildcards only when allowed and never as the main address).
 *
 * Resolution follows UserHandler.asyncResolveAddress(); where WildDuck's
 * ranking of wildcard matches is an accident of string sorting we state the
 * rule it intends: domain before alias target, the longest literal part
 * first, "prefix*" before "*suffix" on equal length. (WildDuck sorts the
 * alias target's candidates shortest first; we do not copy that.) Lengths
 * of wildcard parts count code points, where JavaScript counts UTF-16
 * units: they differ only for characters outside the BMP. */
#include "store-op.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-fdb.h"

#include <stdlib.h>
#include <string.h>

/* ---- preparing an address for storage ---- */

static size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	}
	return n;
}

static bool word_chars(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

/* The wildcard forms WildDuck accepts: "*@domain", "*suffix@domain",
   "prefix*@domain" (literal part ≤ 32) and "word@*" (\w+@\*). */
static bool wildcard_valid(const char *address)
{
	const char *at = strrchr(address, '@');
	const char *local = address;
	size_t local_len = (size_t)(at - address);
	const char *domain = at + 1;
	const char *star = strchr(address, '*');
	if (strchr(star + 1, '*') != NULL)
		return false; /* only one */
	if (strcmp(domain, "*") == 0)
		return word_chars(local, local_len);
	if (strchr(domain, '*') != NULL)
		return false;
	if (local_len == 1)
		return true; /* "*@domain" */
	if (local[0] == '*' || local[local_len - 1] == '*')
		return utf8_chars(local, local_len) - 1 <= WD_MAX_WILDCARD_LENGTH;
	return false;
}

int wd__address_prepare(const char *address, bool allow_wildcard, bool main, char **address_r,
			char **addrview_r, char **error_r)
{
	const char *error;
	char *normalized;
	*address_r = NULL;
	*addrview_r = NULL;
	int ret = wd_address_normalize(address, 0, &normalized, &error);
	if (ret < 0)
		return wd__fail(error_r, ret, "%s", error);
	if (strchr(normalized, '+') != NULL) {
		ret = wd__fail(error_r, WD_STORE_ERR_INVALID, "address can not contain +");
	} else if (strchr(normalized, '*') != NULL) {
		if (main)
			ret = wd__fail(error_r, WD_STORE_ERR_INVALID,
				       "main address can not contain *");
		else if (!allow_wildcard)
			ret = wd__fail(error_r, WD_STORE_ERR_INVALID, "address can not contain *");
		else if (!wildcard_valid(normalized))
			ret = wd__fail(error_r, WD_STORE_ERR_INVALID,
				       "invalid wildcard address, use \"*@domain\" or \"user@*\"");
	}
	if (ret == WD_STORE_OK) {
		*addrview_r = wd_uview(normalized);
		if (*addrview_r == NULL)
			ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	}
	if (ret < 0)
		free(normalized);
	else
		*address_r = normalized;
	return ret;
}

/* ---- reading ---- */

static void address_from_bson(const bson_t *doc, struct wd_address *addr)
{
	memset(addr, 0, sizeof(*addr));
	wd__doc_oid(doc, "_id", &addr->id);
	addr->has_user = wd__doc_oid(doc, "user", &addr->user);
	addr->address = wd__doc_strdup(doc, "address");
	addr->addrview = wd__doc_strdup(doc, "addrview");
	addr->name = wd__doc_strdup(doc, "name");
	addr->created_ms = wd__doc_date(doc, "created");
}

static void address_clear(struct wd_address *addr)
{
	free(addr->address);
	free(addr->addrview);
	free(addr->name);
	memset(addr, 0, sizeof(*addr));
}

void wd_address_free(struct wd_address **_address)
{
	struct wd_address *address = *_address;
	if (address == NULL)
		return;
	*_address = NULL;
	address_clear(address);
	free(address);
}

void wd_address_list_free(struct wd_address_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		address_clear(&list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

/* The user's current main address into *address_r ("" when none). */
static int user_main_address(struct wd_store *store, const bson_oid_t *user_id, char **address_r,
			     char **error_r)
{
	struct wd__coll c;
	bson_t doc;
	bson_t *query = BCON_NEW("_id", BCON_OID(user_id));
	bson_t *opts = BCON_NEW("projection", "{", "address", BCON_INT32(1), "}");
	int ret = wd__find_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"), query, opts,
			       &doc, error_r);
	wd__coll_close(&c);
	bson_destroy(opts);
	bson_destroy(query);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		return wd__fail(error_r, ret, "user does not exist");
	if (ret < 0)
		return ret;
	*address_r = wd__doc_strdup(&doc, "address");
	if (*address_r == NULL)
		*address_r = strdup("");
	bson_destroy(&doc);
	return WD_STORE_OK;
}

static int user_set_address(struct wd_store *store, const bson_oid_t *user_id,
			    const char *address, char **error_r)
{
	struct wd_store_lock lock;
	if (wd__doc_lock(store, user_id, &lock, error_r) < 0)
		return WD_STORE_ERR_DATABASE;
	struct wd__coll c;
	bson_t *filter = BCON_NEW("_id", BCON_OID(user_id));
	bson_t *update = BCON_NEW("$set", "{", "address", BCON_UTF8(address), "}");
	bson_t reply;
	bson_error_t error;
	int ret = WD_STORE_OK;
	if (!mongoc_collection_update_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"),
					  filter, update, NULL, &reply, &error))
		ret = wd__fail_db(error_r, &error, "cannot update user");
	else if (wd__doc_int64(&reply, "matchedCount") == 0)
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "user does not exist");
	wd__coll_close(&c);
	wd__doc_unlock(store, &lock);
	bson_destroy(&reply);
	bson_destroy(update);
	bson_destroy(filter);
	return ret;
}

static int address_find(struct wd_store *store, const bson_t *query, struct wd_address **addr_r,
			char **error_r)
{
	struct wd__coll c;
	bson_t doc;
	*addr_r = NULL;
	/* FerretDB/SQLite: {addrview} found in SQLite's index, read by _id */
	bool found;
	bson_oid_t id;
	bson_t *by_id = NULL;
	int fret = wd_store_fdb_find_id(store, "addresses", query, &found, &id);
	if (fret == WD_OK && !found)
		return WD_STORE_ERR_NOT_FOUND;
	if (fret == WD_OK)
		query = by_id = BCON_NEW("_id", BCON_OID(&id));
	int ret = wd__find_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "addresses"), query,
			       NULL, &doc, error_r);
	wd__coll_close(&c);
	if (by_id != NULL)
		bson_destroy(by_id);
	if (ret < 0)
		return ret;
	*addr_r = calloc(1, sizeof(**addr_r));
	if (*addr_r != NULL)
		address_from_bson(&doc, *addr_r);
	bson_destroy(&doc);
	if (*addr_r == NULL)
		return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	return WD_STORE_OK;
}

static int address_find_view(struct wd_store *store, const char *addrview,
			     struct wd_address **addr_r, char **error_r)
{
	bson_t *query = BCON_NEW("addrview", BCON_UTF8(addrview));
	int ret = address_find(store, query, addr_r, error_r);
	bson_destroy(query);
	return ret;
}

/* ---- add, main, remove, list ---- */

int wd_store_address_add(struct wd_store *store, const bson_oid_t *user_id, const char *address,
			 const struct wd_address_add *opts, bson_oid_t *address_id_r,
			 char **error_r)
{
	static const struct wd_address_add defaults;
	if (opts == NULL)
		opts = &defaults;
	char *normalized, *addrview, *main_address = NULL;
	int ret = wd__address_prepare(address, opts->allow_wildcard, opts->main, &normalized,
				      &addrview, error_r);
	if (ret < 0)
		return ret;
	ret = user_main_address(store, user_id, &main_address, error_r);
	struct wd_address *existing = NULL;
	if (ret == WD_STORE_OK) {
		ret = address_find_view(store, addrview, &existing, error_r);
		if (ret == WD_STORE_OK)
			ret = wd__fail(error_r, WD_STORE_ERR_EXISTS, "address already exists: %s",
				       normalized);
		else if (ret == WD_STORE_ERR_NOT_FOUND)
			ret = WD_STORE_OK;
		wd_address_free(&existing);
	}
	bson_oid_t id;
	bson_oid_init(&id, NULL);
	if (ret == WD_STORE_OK) {
		bson_t *doc = bson_new();
		BSON_APPEND_OID(doc, "_id", &id);
		BSON_APPEND_OID(doc, "user", user_id);
		wd__append_utf8_or_null(doc, "name", opts->name);
		BSON_APPEND_UTF8(doc, "address", normalized);
		BSON_APPEND_UTF8(doc, "addrview", addrview);
		BSON_APPEND_DATE_TIME(doc, "created", wd__now_ms());
		struct wd__coll c;
		bson_error_t error;
		if (!mongoc_collection_insert_one(
			    wd__coll_open(&c, store, WD_STORE_DB_USERS, "addresses"), doc, NULL,
			    NULL, &error)) {
			ret = wd__fail_db(error_r, &error, "cannot add address");
			if (ret == WD_STORE_ERR_EXISTS) {
				free(*error_r);
				ret = wd__fail(error_r, ret, "address already exists: %s",
					       normalized);
			}
		}
		wd__coll_close(&c);
		bson_destroy(doc);
	}
	if (ret == WD_STORE_OK && (opts->main || main_address[0] == '\0')) {
		ret = user_set_address(store, user_id, normalized, error_r);
		if (ret < 0) {
			/* do not leave an address the user row does not know about */
			struct wd__coll c;
			bson_t *filter = BCON_NEW("_id", BCON_OID(&id));
			mongoc_collection_delete_one(
				wd__coll_open(&c, store, WD_STORE_DB_USERS, "addresses"), filter,
				NULL, NULL, NULL);
			wd__coll_close(&c);
			bson_destroy(filter);
		}
	}
	if (ret == WD_STORE_OK && address_id_r != NULL)
		bson_oid_copy(&id, address_id_r);
	free(main_address);
	free(normalized);
	free(addrview);
	return ret;
}

/* The address `address_id` of `user_id`, or NOT_FOUND. */
static int user_address(struct wd_store *store, const bson_oid_t *user_id,
			const bson_oid_t *address_id, struct wd_address **addr_r, char **error_r)
{
	bson_t *query = BCON_NEW("_id", BCON_OID(address_id), "user", BCON_OID(user_id));
	int ret = address_find(store, query, addr_r, error_r);
	bson_destroy(query);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		return wd__fail(error_r, ret, "address does not exist");
	return ret;
}

int wd_store_address_set_main(struct wd_store *store, const bson_oid_t *user_id,
			      const bson_oid_t *address_id, char **error_r)
{
	struct wd_address *addr;
	int ret = user_address(store, user_id, address_id, &addr, error_r);
	if (ret < 0)
		return ret;
	if (addr->address == NULL || strchr(addr->address, '*') != NULL)
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_PERMITTED,
			       "a wildcard address can not be the main address");
	else
		ret = user_set_address(store, user_id, addr->address, error_r);
	wd_address_free(&addr);
	return ret;
}

int wd_store_address_remove(struct wd_store *store, const bson_oid_t *user_id,
			    const bson_oid_t *address_id, char **error_r)
{
	struct wd_address *addr;
	char *main_address = NULL;
	int ret = user_main_address(store, user_id, &main_address, error_r);
	if (ret < 0)
		return ret;
	ret = user_address(store, user_id, address_id, &addr, error_r);
	if (ret < 0) {
		free(main_address);
		return ret;
	}
	if (addr->address != NULL && strcmp(addr->address, main_address) == 0) {
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_PERMITTED,
			       "can not delete the main address");
	} else {
		struct wd__coll c;
		bson_t *filter = BCON_NEW("_id", BCON_OID(address_id), "user", BCON_OID(user_id));
		bson_t reply;
		bson_error_t error;
		if (!mongoc_collection_delete_one(
			    wd__coll_open(&c, store, WD_STORE_DB_USERS, "addresses"), filter, NULL,
			    &reply, &error))
			ret = wd__fail_db(error_r, &error, "cannot delete address");
		else if (wd__doc_int64(&reply, "deletedCount") == 0)
			ret = wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "address does not exist");
		wd__coll_close(&c);
		bson_destroy(&reply);
		bson_destroy(filter);
	}
	wd_address_free(&addr);
	free(main_address);
	return ret;
}

int wd_store_address_list(struct wd_store *store, const bson_oid_t *user_id,
			  struct wd_address_list *list_r, char **error_r)
{
	memset(list_r, 0, sizeof(*list_r));
	char *main_address = NULL;
	int ret = user_main_address(store, user_id, &main_address, error_r);
	if (ret < 0)
		return ret;
	bson_t *query = BCON_NEW("user", BCON_OID(user_id));
	bson_t *opts = BCON_NEW("sort", "{", "addrview", BCON_INT32(1), "_id", BCON_INT32(1), "}");
	struct wd__coll c;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(
		wd__coll_open(&c, store, WD_STORE_DB_USERS, "addresses"), query, opts, NULL);
	const bson_t *doc;
	size_t alloc = 0;
	while (mongoc_cursor_next(cursor, &doc)) {
		if (list_r->count == alloc) {
			size_t n = alloc == 0 ? 8 : alloc * 2;
			struct wd_address *items = realloc(list_r->items, n * sizeof(*items));
			if (items == NULL) {
				ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
				break;
			}
			list_r->items = items;
			alloc = n;
		}
		struct wd_address *addr = &list_r->items[list_r->count++];
		address_from_bson(doc, addr);
		addr->main = addr->address != NULL && strcmp(addr->address, main_address) == 0;
	}
	bson_error_t error;
	if (ret == WD_STORE_OK && mongoc_cursor_error(cursor, &error))
		ret = wd__fail_db(error_r, &error, "cannot list addresses");
	mongoc_cursor_destroy(cursor);
	wd__coll_close(&c);
	bson_destroy(opts);
	bson_destroy(query);
	free(main_address);
	if (ret < 0)
		wd_address_list_free(list_r);
	return ret;
}

/* ---- resolution ---- */

/* Byte offset of the first n UTF-8 characters of s (clamped to len). */
static size_t utf8_offset(const char *s, size_t len, size_t n)
{
	size_t i = 0;
	while (i < len && n > 0) {
		i++;
		while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
		n--;
	}
	return i;
}

/* WildDuck's getWildcardAddresses(): "*@domain" and, for i = 1 .. min(len,
   32) characters, "<first i>*@domain" and "*<last i>@domain". */
static void append_wildcards(bson_t *in, uint32_t *n, const char *local, const char *domain)
{
	size_t len = strlen(local);
	size_t chars = utf8_chars(local, len);
	size_t max = chars < WD_MAX_WILDCARD_LENGTH ? chars : WD_MAX_WILDCARD_LENGTH;
	char key[16], *value;
	const char *key_str;
	for (size_t i = 1; i <= max; i++) {
		size_t prefix = utf8_offset(local, len, i);
		size_t suffix = utf8_offset(local, len, chars - i);
		if (asprintf(&value, "%.*s*@%s", (int)prefix, local, domain) >= 0) {
			bson_uint32_to_string((*n)++, &key_str, key, sizeof(key));
			bson_append_utf8(in, key_str, -1, value, -1);
			free(value);
		}
		if (asprintf(&value, "*%s@%s", local + suffix, domain) >= 0) {
			bson_uint32_to_string((*n)++, &key_str, key, sizeof(key));
			bson_append_utf8(in, key_str, -1, value, -1);
			free(value);
		}
	}
	if (asprintf(&value, "*@%s", domain) >= 0) {
		bson_uint32_to_string((*n)++, &key_str, key, sizeof(key));
		bson_append_utf8(in, key_str, -1, value, -1);
		free(value);
	}
}

/* Rank of a wildcard match, lower is better: domain before alias target,
   longer literal part first, prefix form before suffix form. */
static int64_t wildcard_rank(const char *addrview, const char *domain)
{
	const char *at = strrchr(addrview, '@');
	if (at == NULL)
		return INT64_MAX;
	size_t local_len = (size_t)(at - addrview);
	bool in_domain = strcmp(at + 1, domain) == 0;
	size_t literal = local_len > 0 ? utf8_chars(addrview, local_len) - 1 : 0;
	bool prefix_form = local_len > 1 && addrview[local_len - 1] == '*';
	return (in_domain ? 0 : 1000000) + (int64_t)(WD_MAX_WILDCARD_LENGTH + 1 - literal) * 2 +
	       (prefix_form ? 0 : 1);
}

static int resolve_wildcard(struct wd_store *store, const char *local, const char *domain,
			    const char *alias_domain, struct wd_address **addr_r, char **error_r)
{
	bson_t query = BSON_INITIALIZER, view, in;
	uint32_t n = 0;
	bson_append_document_begin(&query, "addrview", -1, &view);
	bson_append_array_begin(&view, "$in", -1, &in);
	append_wildcards(&in, &n, local, domain);
	if (alias_domain != NULL)
		append_wildcards(&in, &n, local, alias_domain);
	bson_append_array_end(&view, &in);
	bson_append_document_end(&query, &view);

	struct wd__coll c;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(
		wd__coll_open(&c, store, WD_STORE_DB_USERS, "addresses"), &query, NULL, NULL);
	const bson_t *doc;
	bson_t best = BSON_INITIALIZER;
	int64_t best_rank = INT64_MAX;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter;
		if (!bson_iter_init_find(&iter, doc, "addrview") || !BSON_ITER_HOLDS_UTF8(&iter))
			continue;
		int64_t rank = wildcard_rank(bson_iter_utf8(&iter, NULL), domain);
		if (rank < best_rank) {
			best_rank = rank;
			bson_reinit(&best);
			bson_concat(&best, doc);
		}
	}
	bson_error_t error;
	int ret = WD_STORE_ERR_NOT_FOUND;
	if (mongoc_cursor_error(cursor, &error)) {
		ret = wd__fail_db(error_r, &error, "cannot resolve address");
	} else if (best_rank != INT64_MAX) {
		*addr_r = calloc(1, sizeof(**addr_r));
		if (*addr_r == NULL) {
			ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
		} else {
			address_from_bson(&best, *addr_r);
			ret = WD_STORE_OK;
		}
	}
	mongoc_cursor_destroy(cursor);
	wd__coll_close(&c);
	bson_destroy(&best);
	bson_destroy(&query);
	return ret;
}

/* The target domain of a domain alias, or NULL. */
static int alias_target(struct wd_store *store, const char *domain, char **target_r,
			char **error_r)
{
	struct wd__coll c;
	bson_t doc;
	*target_r = NULL;
	bson_t *query = BCON_NEW("alias", BCON_UTF8(domain));
	int ret = wd__find_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "domainaliases"), query,
			       NULL, &doc, error_r);
	wd__coll_close(&c);
	bson_destroy(query);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		return WD_STORE_OK;
	if (ret < 0)
		return ret;
	*target_r = wd__doc_strdup(&doc, "domain");
	bson_destroy(&doc);
	return WD_STORE_OK;
}

/* A found address, not found (continue), or an error. */
static int try_view(struct wd_store *store, const char *addrview, struct wd_address **addr_r,
		    char **error_r)
{
	return address_find_view(store, addrview, addr_r, error_r);
}

int wd_store_address_resolve(struct wd_store *store, const char *address, unsigned flags,
			     struct wd_address **address_r, char **error_r)
{
	*address_r = NULL;
	*error_r = NULL;
	const char *error;
	char *plain = NULL, *alias_domain = NULL, *view = NULL;
	int ret = wd_address_normalize(address, WD_ADDRESS_REMOVE_LABEL | WD_ADDRESS_REMOVE_DOTS,
				       &plain, &error);
	if (ret < 0)
		return wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "unknown address: %s", error);
	char *at = strrchr(plain, '@');
	*at = '\0';
	const char *local = plain, *domain = at + 1;

	/* 1. the address with its label, should anyone have stored one */
	const char *input_at = strrchr(address, '@');
	if (memchr(address, '+', (size_t)(input_at - address)) != NULL &&
	    wd_address_addrview(address, &view, &error) == WD_STORE_OK) {
		ret = try_view(store, view, address_r, error_r);
		free(view);
		view = NULL;
		if (ret != WD_STORE_ERR_NOT_FOUND)
			goto out;
	}
	/* 2. without label and dots */
	if (asprintf(&view, "%s@%s", local, domain) < 0) {
		view = NULL;
		ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
		goto out;
	}
	ret = try_view(store, view, address_r, error_r);
	free(view);
	view = NULL;
	if (ret != WD_STORE_ERR_NOT_FOUND)
		goto out;
	/* 3. the same local part on the target of a domain alias */
	ret = alias_target(store, domain, &alias_domain, error_r);
	if (ret < 0)
		goto out;
	if (alias_domain != NULL) {
		if (asprintf(&view, "%s@%s", local, alias_domain) < 0) {
			view = NULL;
			ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
			goto out;
		}
		ret = try_view(store, view, address_r, error_r);
		free(view);
		view = NULL;
		if (ret != WD_STORE_ERR_NOT_FOUND)
			goto out;
	}
	ret = WD_STORE_ERR_NOT_FOUND;
	if ((flags & WD_RESOLVE_WILDCARD) != 0) {
		/* 4. wildcard addresses of the domain and the alias target */
		ret = resolve_wildcard(store, local, domain, alias_domain, address_r, error_r);
		if (ret != WD_STORE_ERR_NOT_FOUND)
			goto out;
		/* 5. "local@*" */
		if (asprintf(&view, "%s@*", local) < 0) {
			view = NULL;
			ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
			goto out;
		}
		ret = try_view(store, view, address_r, error_r);
		free(view);
		view = NULL;
	}
out:
	if (ret == WD_STORE_ERR_NOT_FOUND) {
		free(*error_r);
		*error_r = NULL;
		*at = '@';
		ret = wd__fail(error_r, ret, "unknown address: %s", plain);
	}
	free(alias_domain);
	free(plain);
	return ret;
}

/* ---- domain aliases ---- */

int wd_store_domainalias_add(struct wd_store *store, const char *alias, const char *domain,
			     bson_oid_t *id_r, char **error_r)
{
	char *a = wd_domain_normalize(alias), *d = wd_domain_normalize(domain);
	int ret = WD_STORE_OK;
	if (a == NULL || d == NULL || a[0] == '\0' || d[0] == '\0' || strchr(a, '@') != NULL ||
	    strchr(d, '@') != NULL) {
		ret = wd__fail(error_r, WD_STORE_ERR_INVALID, "invalid domain");
	} else {
		bson_oid_t id;
		bson_oid_init(&id, NULL);
		bson_t *doc = BCON_NEW("_id", BCON_OID(&id), "alias", BCON_UTF8(a), "domain",
				       BCON_UTF8(d), "created", BCON_DATE_TIME(wd__now_ms()));
		struct wd__coll c;
		bson_error_t error;
		if (!mongoc_collection_insert_one(
			    wd__coll_open(&c, store, WD_STORE_DB_USERS, "domainaliases"), doc, NULL,
			    NULL, &error)) {
			ret = wd__fail_db(error_r, &error, "cannot add domain alias");
			if (ret == WD_STORE_ERR_EXISTS) {
				free(*error_r);
				ret = wd__fail(error_r, ret, "domain alias already exists: %s", a);
			}
		} else if (id_r != NULL) {
			bson_oid_copy(&id, id_r);
		}
		wd__coll_close(&c);
		bson_destroy(doc);
	}
	free(a);
	free(d);
	return ret;
}

int wd_store_domainalias_remove(struct wd_store *store, const char *alias, char **error_r)
{
	char *a = wd_domain_normalize(alias);
	if (a == NULL)
		return wd__fail(error_r, WD_STORE_ERR_INVALID, "invalid domain");
	struct wd__coll c;
	bson_t *filter = BCON_NEW("alias", BCON_UTF8(a));
	bson_t reply;
	bson_error_t error;
	int ret = WD_STORE_OK;
	if (!mongoc_collection_delete_one(wd__coll_open(&c, store, WD_STORE_DB_USERS,
							"domainaliases"),
					  filter, NULL, &reply, &error))
		ret = wd__fail_db(error_r, &error, "cannot remove domain alias");
	else if (wd__doc_int64(&reply, "deletedCount") == 0)
		ret = wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "no such domain alias: %s", a);
	wd__coll_close(&c);
	bson_destroy(&reply);
	bson_destroy(filter);
	free(a);
	return ret;
}
