/* Auth log writes in WildDuck's bucketed form (§2.6), and the expiry that
 * FerretDB's unenforced TTL indexes leave to us.
 *
 * One findOneAndUpdate with upsert: the filter {user, created >= now-6h,
 * key} finds the bucket; $setOnInsert writes the entry only when a new
 * bucket starts, $inc events and $set last always. Fields the caller did not
 * give are left out, as WildDuck's meta objects leave them out. */
#include "wd-auth-log.h"
#include "auth-private.h"
#include "wd-log.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append_opt(bson_t *doc, const char *key, const char *value)
{
	if (value != NULL)
		BSON_APPEND_UTF8(doc, key, value);
}

/* MD5 of "protocol^ip^action^result^target", missing ones as "" */
static void entry_key(const struct wd_authlog_entry *entry, const struct wd_auth_meta *meta,
		      const char *action, uint8_t key[16])
{
	const char *parts[5] = { meta->protocol, meta->ip, action, entry->result, entry->target };
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
	for (int i = 0; i < 5; i++) {
		if (i > 0)
			EVP_DigestUpdate(ctx, "^", 1);
		if (parts[i] != NULL)
			EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]));
	}
	unsigned len = 16;
	EVP_DigestFinal_ex(ctx, key, &len);
	EVP_MD_CTX_free(ctx);
}

int wd_auth_log_event(struct wd_auth *auth, const bson_oid_t *user,
		      const struct wd_authlog_entry *entry, const struct wd_auth_meta *meta,
		      bson_oid_t *event_id_r, char **error_r)
{
	static const struct wd_auth_meta no_meta;
	if (meta == NULL)
		meta = &no_meta;
	int64_t keep = wd__auth_setting_authlog_time(auth);
	if (keep <= 0)
		return 1;
	int64_t now = wd__auth_now_ms();
	const char *action = entry->action != NULL ? entry->action : "authentication";
	uint8_t key[16];
	entry_key(entry, meta, action, key);

	bson_t *query = BCON_NEW("user", BCON_OID(user), "created", "{", "$gte",
				 BCON_DATE_TIME(now - WD_AUTH_AUTHLOG_BUCKET_MS), "}", "key",
				 BCON_BIN(BSON_SUBTYPE_BINARY, key, 16));
	bson_t update = BSON_INITIALIZER, insert, inc, set;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &insert);
	append_opt(&insert, "requiredScope", entry->required_scope);
	append_opt(&insert, "protocol", meta->protocol);
	append_opt(&insert, "sess", meta->sess);
	append_opt(&insert, "ip", meta->ip);
	append_opt(&insert, "result", entry->result);
	append_opt(&insert, "source", entry->source);
	append_opt(&insert, "require2fa", entry->require2fa);
	if (entry->asp != NULL)
		BSON_APPEND_OID(&insert, "asp", entry->asp);
	append_opt(&insert, "aname", entry->aname);
	append_opt(&insert, "target", entry->target);
	if (entry->has_temporary)
		BSON_APPEND_BOOL(&insert, "temporary", entry->temporary);
	BSON_APPEND_OID(&insert, "user", user);
	BSON_APPEND_UTF8(&insert, "action", action);
	BSON_APPEND_DATE_TIME(&insert, "created", now);
	BSON_APPEND_DATE_TIME(&insert, "expires", now + keep);
	BSON_APPEND_BINARY(&insert, "key", BSON_SUBTYPE_BINARY, key, 16);
	bson_append_document_end(&update, &insert);
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &inc);
	BSON_APPEND_INT32(&inc, "events", 1);
	bson_append_document_end(&update, &inc);
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	BSON_APPEND_DATE_TIME(&set, "last", now);
	bson_append_document_end(&update, &set);

	mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new();
	mongoc_find_and_modify_opts_set_update(opts, &update);
	mongoc_find_and_modify_opts_set_flags(opts, MONGOC_FIND_AND_MODIFY_UPSERT |
							    MONGOC_FIND_AND_MODIFY_RETURN_NEW);
	/* no projection: FerretDB 1.x refuses "fields" in findAndModify */

	struct wd__auth_coll c;
	wd__auth_coll_get(auth, "authlog", &c);
	bson_t reply;
	bson_error_t error;
	int ret = WD_AUTH_OK;
	if (!mongoc_collection_find_and_modify_with_opts(c.coll, query, opts, &reply, &error)) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "authlog: %s", error.message);
	} else if (event_id_r != NULL) {
		bson_iter_t it;
		if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "value._id", &it) &&
		    BSON_ITER_HOLDS_OID(&it))
			bson_oid_copy(bson_iter_oid(&it), event_id_r);
		else
			memset(event_id_r, 0, sizeof(*event_id_r));
	}
	bson_destroy(&reply);
	wd__auth_coll_put(auth, &c);
	mongoc_find_and_modify_opts_destroy(opts);
	bson_destroy(&update);
	bson_destroy(query);
	return ret;
}

static int delete_expired(struct wd_auth *auth, const char *name, int64_t now, int64_t *count_r,
			  char **error_r)
{
	bson_t *query = BCON_NEW("expires", "{", "$lt", BCON_DATE_TIME(now), "}");
	struct wd__auth_coll c;
	wd__auth_coll_get(auth, name, &c);
	bson_t reply;
	bson_error_t error;
	int ret = WD_AUTH_OK;
	if (!mongoc_collection_delete_many(c.coll, query, NULL, &reply, &error)) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "%s expiry: %s", name,
				    error.message);
	} else if (count_r != NULL) {
		bson_iter_t it;
		*count_r = bson_iter_init_find(&it, &reply, "deletedCount") ? bson_iter_as_int64(&it) : 0;
	}
	bson_destroy(&reply);
	wd__auth_coll_put(auth, &c);
	bson_destroy(query);
	return ret;
}

int wd_auth_log_expire(struct wd_auth *auth, int64_t *authlog_r, int64_t *asps_r, char **error_r)
{
	int64_t now = wd__auth_now_ms();
	if (delete_expired(auth, "authlog", now, authlog_r, error_r) < 0)
		return WD_AUTH_ERR_INTERNAL;
	return delete_expired(auth, "asps", now, asps_r, error_r);
}
