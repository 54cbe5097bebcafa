/* Application-specific passwords: generation, the selector, and the `asps`
 * documents (WildDuck's UserHandler.generateASP / deleteASP). The login
 * side (finding the matching app password) lives in authenticate.c. */
#include "wd-auth-asp.h"
#include "wd-auth-log.h"
#include "wd-auth-password.h"
#include "auth-private.h"
#include "wd-log.h"
#include "wd-store-user.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int wd_auth_asp_generate(char password[WD_AUTH_ASP_LEN + 1])
{
	size_t n = 0;
	while (n < WD_AUTH_ASP_LEN) {
		uint8_t bytes[32];
		if (RAND_bytes(bytes, sizeof(bytes)) != 1)
			return -1;
		/* 234 = 9 * 26: rejecting the rest keeps every letter equally likely */
		for (size_t i = 0; i < sizeof(bytes) && n < WD_AUTH_ASP_LEN; i++)
			if (bytes[i] < 234)
				password[n++] = (char)('a' + bytes[i] % 26);
		OPENSSL_cleanse(bytes, sizeof(bytes));
	}
	password[n] = '\0';
	return 0;
}

void wd_auth_asp_selector(const char *password, size_t len, char selector[3])
{
	uint8_t digest[SHA_DIGEST_LENGTH];
	SHA1((const uint8_t *)password, len, digest);
	unsigned sum = 0;
	for (size_t i = 0; i < sizeof(digest); i++)
		sum += digest[i];
	snprintf(selector, 3, "%x", sum % 32);
}

bool wd_auth_asp_normalize(const char *password, size_t len, char out[WD_AUTH_ASP_LEN + 1])
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = password[i];
		/* JavaScript's \s as far as ASCII goes */
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c < 'a' || c > 'z' || n == WD_AUTH_ASP_LEN)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n == WD_AUTH_ASP_LEN;
}

unsigned wd_auth_scope_bit(const char *name)
{
	while (*name == ' ')
		name++;
	size_t len = strlen(name);
	while (len > 0 && name[len - 1] == ' ')
		len--;
	static const struct {
		const char *name;
		unsigned bit;
	} scopes[] = {
		{ "imap", WD_SCOPE_IMAP }, { "pop3", WD_SCOPE_POP3 }, { "smtp", WD_SCOPE_SMTP },
		{ "*", WD_AUTH_SCOPE_ALL },
	};
	for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++)
		if (strlen(scopes[i].name) == len && strncasecmp(name, scopes[i].name, len) == 0)
			return scopes[i].bit;
	return 0;
}

static void append_scopes(bson_t *doc, unsigned scopes)
{
	bson_t array;
	BSON_APPEND_ARRAY_BEGIN(doc, "scopes", &array);
	if (scopes == 0 || (scopes & WD_AUTH_SCOPE_ALL) == WD_AUTH_SCOPE_ALL) {
		BSON_APPEND_UTF8(&array, "0", "*");
	} else {
		/* sorted as WildDuck's localeCompare sorts them: imap, pop3, smtp */
		static const char *const names[] = { "imap", "pop3", "smtp" };
		unsigned n = 0;
		char key[4];
		for (unsigned i = 0; i < 3; i++) {
			if ((scopes & (1u << i)) == 0)
				continue;
			snprintf(key, sizeof(key), "%u", n++);
			BSON_APPEND_UTF8(&array, key, names[i]);
		}
	}
	bson_append_array_end(doc, &array);
}

int wd_auth_asp_create(struct wd_auth *auth, const bson_oid_t *user,
		       const struct wd_asp_create *req, const struct wd_auth_meta *meta,
		       bson_oid_t *id_r, char password_r[WD_AUTH_ASP_LEN + 1], char **error_r)
{
	password_r[0] = '\0';
	if (req->description == NULL || req->description[0] == '\0' ||
	    strlen(req->description) > WD_AUTH_MAX_DESCRIPTION || req->ttl < 0 ||
	    req->ttl > 100LL * 365 * 24 * 3600 || (req->scopes & ~(unsigned)WD_AUTH_SCOPE_ALL) != 0)
		return wd__auth_fail(error_r, WD_AUTH_ERR_INVALID,
				     "an app password needs a description (at most %d bytes), "
				     "known scopes and a ttl of 0..100 years",
				     WD_AUTH_MAX_DESCRIPTION);
	struct wd_user *owner = NULL;
	int ret = wd_store_user_get(auth->store, user, &owner, error_r);
	wd_user_free(&owner);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		return WD_AUTH_ERR_NOT_FOUND;
	if (ret < 0)
		return WD_AUTH_ERR_INTERNAL;

	struct wd__auth_coll c;
	wd__auth_coll_get(auth, "asps", &c);
	bson_t *query = BCON_NEW("user", BCON_OID(user));
	bson_error_t error;
	int64_t existing = mongoc_collection_count_documents(c.coll, query, NULL, NULL, NULL, &error);
	bson_destroy(query);
	int64_t limit = wd__auth_setting_asp_limit(auth);
	char *hash = NULL;
	const char *herror = NULL;
	bson_t *doc = NULL;
	if (existing < 0) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "asps: %s", error.message);
		goto out;
	}
	if (existing >= limit) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_LIMIT,
				    "Maximum application password limit reached (%lld)",
				    (long long)limit);
		goto out;
	}
	if (wd_auth_asp_generate(password_r) < 0 ||
	    (hash = wd_auth_password_hash(password_r, WD_AUTH_ASP_LEN, &herror)) == NULL) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "cannot make an app password: %s",
				    herror != NULL ? herror : "no randomness");
		goto out;
	}
	char selector[3];
	wd_auth_asp_selector(password_r, WD_AUTH_ASP_LEN, selector);
	int64_t now = wd__auth_now_ms();
	bson_oid_t id;
	bson_oid_init(&id, NULL);
	doc = bson_new();
	BSON_APPEND_OID(doc, "_id", &id);
	BSON_APPEND_OID(doc, "user", user);
	BSON_APPEND_UTF8(doc, "description", req->description);
	append_scopes(doc, req->scopes);
	BSON_APPEND_UTF8(doc, "password", hash);
	BSON_APPEND_UTF8(doc, "selector", selector);
	BSON_APPEND_BOOL(doc, "used", false);
	BSON_APPEND_BOOL(doc, "authEvent", false);
	BSON_APPEND_BOOL(doc, "authIp", false);
	BSON_APPEND_DATE_TIME(doc, "created", now);
	if (req->ttl > 0) {
		/* a JavaScript number: int32 when it fits */
		if (req->ttl <= INT32_MAX)
			BSON_APPEND_INT32(doc, "ttl", (int32_t)req->ttl);
		else
			BSON_APPEND_DOUBLE(doc, "ttl", (double)req->ttl);
		BSON_APPEND_DATE_TIME(doc, "expires", now + req->ttl * 1000);
	}
	if (!mongoc_collection_insert_one(c.coll, doc, NULL, NULL, &error)) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "asps insert: %s", error.message);
		goto out;
	}
	if (id_r != NULL)
		*id_r = id;
	struct wd_authlog_entry entry = { .action = "create asp", .result = "success",
					  .asp = &id, .aname = req->description,
					  .has_temporary = true, .temporary = req->ttl > 0 };
	char *log_error = NULL;
	if (wd_auth_log_event(auth, user, &entry, meta, NULL, &log_error) < 0) {
		wd_warning("auth", "%s", log_error);
		free(log_error);
	}
out:
	if (ret < 0)
		OPENSSL_cleanse(password_r, WD_AUTH_ASP_LEN + 1);
	bson_destroy(doc);
	free(hash);
	wd__auth_coll_put(auth, &c);
	return ret;
}

static int64_t date_or_zero(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&it))
		return bson_iter_date_time(&it);
	return 0;
}

static void read_asp(const bson_t *doc, struct wd_asp *asp)
{
	bson_iter_t it, child;
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
		bson_oid_copy(bson_iter_oid(&it), &asp->id);
	asp->description = strdup(bson_iter_init_find(&it, doc, "description") &&
					  BSON_ITER_HOLDS_UTF8(&it) ?
				  bson_iter_utf8(&it, NULL) : "");
	size_t used = 0;
	if (bson_iter_init_find(&it, doc, "scopes") && BSON_ITER_HOLDS_ARRAY(&it) &&
	    bson_iter_recurse(&it, &child)) {
		while (bson_iter_next(&child)) {
			if (!BSON_ITER_HOLDS_UTF8(&child))
				continue;
			int n = snprintf(asp->scopes + used, sizeof(asp->scopes) - used, "%s%s",
					 used > 0 ? "," : "", bson_iter_utf8(&child, NULL));
			if (n < 0 || (size_t)n >= sizeof(asp->scopes) - used)
				break;
			used += (size_t)n;
		}
	}
	asp->created_ms = date_or_zero(doc, "created");
	asp->used_ms = date_or_zero(doc, "used");
	asp->expires_ms = date_or_zero(doc, "expires");
	if (bson_iter_init_find(&it, doc, "authIp") && BSON_ITER_HOLDS_UTF8(&it))
		asp->used_ip = strdup(bson_iter_utf8(&it, NULL));
	if (bson_iter_init_find(&it, doc, "ttl") && BSON_ITER_HOLDS_NUMBER(&it))
		asp->ttl = bson_iter_as_int64(&it);
}

int wd_auth_asp_list(struct wd_auth *auth, const bson_oid_t *user, struct wd_asp_list *list_r,
		     char **error_r)
{
	memset(list_r, 0, sizeof(*list_r));
	struct wd__auth_coll c;
	wd__auth_coll_get(auth, "asps", &c);
	bson_t *query = BCON_NEW("user", BCON_OID(user));
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit",
				BCON_INT64(10000));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c.coll, query, opts, NULL);
	const bson_t *doc;
	int64_t now = wd__auth_now_ms();
	while (mongoc_cursor_next(cursor, &doc)) {
		struct wd_asp asp = { 0 };
		read_asp(doc, &asp);
		if (asp.expires_ms != 0 && asp.expires_ms < now) {
			free(asp.description);
			free(asp.used_ip);
			continue;
		}
		struct wd_asp *items = realloc(list_r->items, (list_r->count + 1) * sizeof(*items));
		if (items == NULL) {
			free(asp.description);
			free(asp.used_ip);
			break;
		}
		list_r->items = items;
		items[list_r->count++] = asp;
	}
	bson_error_t error;
	int ret = 0;
	if (mongoc_cursor_error(cursor, &error)) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "asps: %s", error.message);
		wd_asp_list_free(list_r);
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	wd__auth_coll_put(auth, &c);
	return ret;
}

void wd_asp_list_free(struct wd_asp_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].description);
		free(list->items[i].used_ip);
	}
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

int wd_auth_asp_delete(struct wd_auth *auth, const bson_oid_t *user, const bson_oid_t *asp,
		       const struct wd_auth_meta *meta, char **error_r)
{
	struct wd__auth_coll c;
	wd__auth_coll_get(auth, "asps", &c);
	bson_t *query = BCON_NEW("_id", BCON_OID(asp), "user", BCON_OID(user));
	bson_t reply;
	bson_error_t error;
	int ret = 0;
	if (!mongoc_collection_delete_one(c.coll, query, NULL, &reply, &error)) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "asps delete: %s", error.message);
	} else {
		bson_iter_t it;
		if (!bson_iter_init_find(&it, &reply, "deletedCount") || bson_iter_as_int64(&it) == 0)
			ret = wd__auth_fail(error_r, WD_AUTH_ERR_NOT_FOUND,
					    "Application Specific Password was not found");
	}
	bson_destroy(&reply);
	bson_destroy(query);
	wd__auth_coll_put(auth, &c);
	if (ret == 0) {
		struct wd_authlog_entry entry = { .action = "delete asp", .result = "success",
						  .asp = asp };
		char *log_error = NULL;
		if (wd_auth_log_event(auth, user, &entry, meta, NULL, &log_error) < 0) {
			wd_warning("auth", "%s", log_error);
			free(log_error);
		}
	}
	return ret;
}
