/* The authentication flow (WildDuck's asyncAuthenticate) and password
 * changes.
 *
 * One attempt is a small state record (struct attempt) that the steps fill
 * in; `finish_*` helpers write the auth log entry, move the failure
 * counters and set the client message, so each step only decides. The
 * client message never tells a wrong password from an unknown user; the
 * auth log and the status do (operators need to know, attackers do not).
 *
 * Differences from WildDuck, on purpose: expired app passwords are skipped
 * (FerretDB does not enforce the TTL index); an unknown user burns the time
 * of one default-scheme hash so that timing does not reveal which names
 * exist; Redis failures never refuse a login. */
#include "wd-auth-login.h"
#include "wd-auth-address.h"
#include "wd-auth-asp.h"
#include "wd-auth-log.h"
#include "wd-auth-password.h"
#include "wd-auth-ratelimit.h"
#include "wd-auth-totp.h"
#include "auth-private.h"
#include "wd-log.h"
#include "wd-store-user.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A numeric field of a document (int32, int64 or double), 0 when absent. */
static int64_t doc_number(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (doc == NULL || !bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_NUMBER(&it))
		return 0;
	return bson_iter_as_int64(&it);
}

static const char *const scope_names[] = { "master", "imap", "pop3", "smtp" };

const char *wd_auth_scope_name(enum wd_auth_scope scope)
{
	return (unsigned)scope < 4 ? scope_names[scope] : "master";
}

int wd_auth_scope_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, scope_names[i]) == 0)
			return i;
	return -1;
}

const char *wd_auth_status_name(enum wd_auth_status status)
{
	static const char *const names[] = {
		"accepted", "wrong password or unknown user", "rate limited", "account disabled",
		"account suspended", "service disabled for this account",
		"password not valid for this service", "temporary password not yet valid",
		"internal error",
	};
	return (unsigned)status < sizeof(names) / sizeof(names[0]) ? names[status] : "unknown";
}

struct attempt {
	struct wd_auth *auth;
	const struct wd_auth_request *req;
	struct wd_auth_result *result;
	struct wd_user *user;
	char hex[25];
	char methods[64];      /* enabled 2FA methods */
	const char *aname;     /* description of the app password that matched */
	bool password_matched; /* the account (or temporary) password was right */
};

static void log_entry(struct attempt *a, const char *result, const char *source,
		      bson_oid_t *event_r)
{
	struct wd_authlog_entry entry = {
		.result = result,
		.source = source,
		.required_scope = wd_auth_scope_name(a->req->scope),
		/* as WildDuck: set once the password matched, also when the scope then fails */
		.require2fa = a->methods[0] != '\0' && a->password_matched ? a->methods : NULL,
		.asp = a->result->source == WD_AUTH_SOURCE_ASP ? &a->result->asp : NULL,
		.aname = a->result->source == WD_AUTH_SOURCE_ASP ? a->aname : NULL,
	};
	char *error = NULL;
	if (wd_auth_log_event(a->auth, &a->user->id, &entry, &a->req->meta, event_r, &error) < 0) {
		wd_warning("auth", "user %s: %s", a->hex, error);
		free(error);
	}
}

static void count_failure(struct wd_auth *auth, const char *token, const char *ip,
			  struct wd_auth_limit *limit_r)
{
	struct wd_auth_limit ip_limit;
	wd_auth_limit_ip(auth, ip, 1, &ip_limit);
	wd_auth_limit_user(auth, token, ip, 1, limit_r);
}

static enum wd_auth_status set_status(struct attempt *a, enum wd_auth_status status,
				      const char *message)
{
	a->result->status = status;
	snprintf(a->result->message, sizeof(a->result->message), "%s", message);
	return status;
}

static enum wd_auth_status rate_limited(struct attempt *a, int64_t ttl)
{
	a->result->retry_after = ttl;
	wd_auth_limit_message(ttl, a->result->message, sizeof(a->result->message));
	a->result->status = WD_AUTH_RATE_LIMITED;
	return WD_AUTH_RATE_LIMITED;
}

/* A failure after the user was found: logged, counted. */
static enum wd_auth_status fail(struct attempt *a, enum wd_auth_status status, const char *source,
				const char *message)
{
	log_entry(a, "fail", source, NULL);
	struct wd_auth_limit limit;
	count_failure(a->auth, a->hex, a->req->meta.ip, &limit);
	return set_status(a, status, message);
}

static void rehash(struct attempt *a, const char *old_hash)
{
	const char *error;
	char *hash = wd_auth_password_hash(a->req->password, a->req->password_len, &error);
	if (hash == NULL) {
		wd_warning("auth", "rehash user %s: %s", a->hex, error);
		return;
	}
	/* only if nobody changed the password meanwhile */
	bson_t *filter = BCON_NEW("_id", BCON_OID(&a->user->id), "password", BCON_UTF8(old_hash));
	bson_t *update = BCON_NEW("$set", "{", "password", BCON_UTF8(hash), "}");
	struct wd__auth_coll c;
	wd__auth_coll_get(a->auth, "users", &c);
	bson_t reply;
	bson_error_t berror;
	if (!mongoc_collection_update_one(c.coll, filter, update, NULL, &reply, &berror)) {
		wd_warning("auth", "rehash user %s: %s", a->hex, berror.message);
	} else {
		bson_iter_t it;
		a->result->rehashed = bson_iter_init_find(&it, &reply, "modifiedCount") &&
				      bson_iter_as_int64(&it) > 0;
		if (a->result->rehashed)
			wd_info("auth", "rehashed user=%s algo_from=%s algo_to=pbkdf2", a->hex,
				wd_auth_password_scheme_name(wd_auth_password_scheme(old_hash)));
	}
	bson_destroy(&reply);
	wd__auth_coll_put(a->auth, &c);
	bson_destroy(filter);
	bson_destroy(update);
	free(hash);
}

/* authEvent and the IP, or false for each when unknown (WildDuck's shape) */
static void append_event_ip(bson_t *doc, const bson_oid_t *event, const char *ip_key,
			    const char *ip)
{
	if (event != NULL)
		BSON_APPEND_OID(doc, "authEvent", event);
	else
		BSON_APPEND_BOOL(doc, "authEvent", false);
	if (ip != NULL)
		BSON_APPEND_UTF8(doc, ip_key, ip);
	else
		BSON_APPEND_BOOL(doc, ip_key, false);
}

/* Success: counters cleared, logged, and the record of it stored
   (lastLogin for the user, used/authIp/expires for an app password). */
static enum wd_auth_status accept_login(struct attempt *a, const char *source, const bson_t *asp_doc)
{
	wd_auth_limit_release(a->auth, a->hex);
	bson_oid_t event;
	memset(&event, 0, sizeof(event));
	log_entry(a, "success", source, &event);
	bool have_event = !bson_oid_equal(&event, &(bson_oid_t){ { 0 } });
	int64_t now = wd__auth_now_ms();
	const char *ip = a->req->meta.ip;
	bson_t *filter, update = BSON_INITIALIZER, set, inner;
	const char *name;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	if (asp_doc == NULL) {
		name = "users";
		filter = BCON_NEW("_id", BCON_OID(&a->user->id));
		BSON_APPEND_DOCUMENT_BEGIN(&set, "lastLogin", &inner);
		BSON_APPEND_DATE_TIME(&inner, "time", now);
		append_event_ip(&inner, have_event ? &event : NULL, "ip", ip);
		bson_append_document_end(&set, &inner);
	} else {
		name = "asps";
		filter = BCON_NEW("_id", BCON_OID(&a->result->asp));
		BSON_APPEND_DATE_TIME(&set, "used", now);
		append_event_ip(&set, have_event ? &event : NULL, "authIp", ip);
		bson_iter_t it;
		if (bson_iter_init_find(&it, asp_doc, "ttl") && BSON_ITER_HOLDS_NUMBER(&it) &&
		    bson_iter_as_int64(&it) > 0)
			BSON_APPEND_DATE_TIME(&set, "expires", now + bson_iter_as_int64(&it) * 1000);
	}
	bson_append_document_end(&update, &set);
	struct wd__auth_coll c;
	wd__auth_coll_get(a->auth, name, &c);
	bson_error_t error;
	if (!mongoc_collection_update_one(c.coll, filter, &update, NULL, NULL, &error))
		wd_warning("auth", "user %s: recording the login: %s", a->hex, error.message);
	wd__auth_coll_put(a->auth, &c);
	bson_destroy(filter);
	bson_destroy(&update);
	snprintf(a->result->username, sizeof(a->result->username), "%s", a->user->username);
	snprintf(a->result->address, sizeof(a->result->address), "%s", a->user->address);
	a->result->imap_max_connections = doc_number(a->user->doc, "imapMaxConnections");
	a->result->pop3_max_messages = doc_number(a->user->doc, "pop3MaxMessages");
	return set_status(a, WD_AUTH_ACCEPTED, "Authentication successful");
}

static const char *doc_string(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
		return bson_iter_utf8(&it, NULL);
	return NULL;
}

static bool doc_true(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, doc, key) && bson_iter_as_bool(&it);
}

static bool scope_listed(const bson_t *doc, const char *key, const char *scope)
{
	bson_iter_t it, child;
	if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &child))
		return false;
	while (bson_iter_next(&child))
		if (BSON_ITER_HOLDS_UTF8(&child) &&
		    (strcmp(bson_iter_utf8(&child, NULL), scope) == 0 ||
		     (strcmp(key, "scopes") == 0 && strcmp(bson_iter_utf8(&child, NULL), "*") == 0)))
			return true;
	return false;
}

static bool verify_hash(struct attempt *a, const char *hash, bool *match_r)
{
	const char *error;
	*match_r = false;
	if (wd_auth_password_verify(a->req->password, a->req->password_len, hash, match_r,
				    &error) < 0) {
		wd_warning("auth", "user %s: stored hash unusable: %s", a->hex, error);
		return false;
	}
	return true;
}

/* Step 4: the temporary password (< 24 h old). True when it matched and is
   valid now; *not_yet_r when it matched before its validAfter. */
static bool try_temporary(struct attempt *a, bool *not_yet_r)
{
	bson_iter_t it, child;
	*not_yet_r = false;
	if (!bson_iter_init_find(&it, a->user->doc, "tempPassword") ||
	    !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &child))
		return false;
	int64_t now = wd__auth_now_ms(), created = 0, valid_after = 0;
	const char *hash = NULL;
	while (bson_iter_next(&child)) {
		const char *key = bson_iter_key(&child);
		if (strcmp(key, "created") == 0 && BSON_ITER_HOLDS_DATE_TIME(&child))
			created = bson_iter_date_time(&child);
		else if (strcmp(key, "validAfter") == 0 && BSON_ITER_HOLDS_DATE_TIME(&child))
			valid_after = bson_iter_date_time(&child);
		else if (strcmp(key, "password") == 0 && BSON_ITER_HOLDS_UTF8(&child))
			hash = bson_iter_utf8(&child, NULL);
	}
	if (hash == NULL || hash[0] == '\0' || created <= now - WD_AUTH_TEMP_PASS_WINDOW_MS)
		return false;
	bool match;
	if (!verify_hash(a, hash, &match) || !match)
		return false;
	if (valid_after > now) {
		*not_yet_r = true;
		return false;
	}
	return true;
}

/* Step 6: app passwords of the user. */
static enum wd_auth_status try_asps(struct attempt *a)
{
	char normalized[WD_AUTH_ASP_LEN + 1];
	if (!wd_auth_asp_normalize(a->req->password, a->req->password_len, normalized))
		return fail(a, WD_AUTH_REFUSED, "master", "Authentication failed");
	char selector[3];
	wd_auth_asp_selector(normalized, WD_AUTH_ASP_LEN, selector);
	struct wd__auth_coll c;
	wd__auth_coll_get(a->auth, "asps", &c);
	bson_t *query = BCON_NEW("user", BCON_OID(&a->user->id));
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1000));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c.coll, query, opts, NULL);
	const bson_t *doc;
	bson_t *found = NULL;
	int64_t now = wd__auth_now_ms();
	while (found == NULL && mongoc_cursor_next(cursor, &doc)) {
		const char *sel = doc_string(doc, "selector");
		if (sel != NULL && sel[0] != '\0' && strcmp(sel, selector) != 0)
			continue;
		bson_iter_t it;
		if (bson_iter_init_find(&it, doc, "expires") && BSON_ITER_HOLDS_DATE_TIME(&it) &&
		    bson_iter_date_time(&it) < now)
			continue;
		const char *hash = doc_string(doc, "password"), *herror;
		bool match;
		if (hash == NULL ||
		    wd_auth_password_verify(normalized, WD_AUTH_ASP_LEN, hash, &match, &herror) < 0 ||
		    !match)
			continue;
		found = bson_copy(doc);
	}
	bson_error_t error;
	bool failed = mongoc_cursor_error(cursor, &error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	wd__auth_coll_put(a->auth, &c);
	OPENSSL_cleanse(normalized, sizeof(normalized));
	if (failed) {
		wd_error("auth", "user %s: asps: %s", a->hex, error.message);
		return set_status(a, WD_AUTH_INTERNAL_ERROR, "Internal error, try again later");
	}
	if (found == NULL)
		return fail(a, WD_AUTH_REFUSED, "master", "Authentication failed");
	bson_iter_t it;
	if (bson_iter_init_find(&it, found, "_id") && BSON_ITER_HOLDS_OID(&it))
		bson_oid_copy(bson_iter_oid(&it), &a->result->asp);
	a->result->source = WD_AUTH_SOURCE_ASP;
	a->aname = doc_string(found, "description");
	a->methods[0] = '\0'; /* app passwords never require 2FA */
	enum wd_auth_status status;
	if (!scope_listed(found, "scopes", wd_auth_scope_name(a->req->scope)))
		status = fail(a, WD_AUTH_SCOPE_REFUSED, "asp",
			      "Authentication failed. Invalid scope");
	else
		status = accept_login(a, "asp", found);
	bson_destroy(found);
	return status;
}

static enum wd_auth_status authenticate_user(struct attempt *a)
{
	const struct wd_auth_request *req = a->req;
	const char *scope = wd_auth_scope_name(req->scope);
	struct wd_auth_limit limit;
	wd_auth_limit_user(a->auth, a->hex, req->meta.ip, 0, &limit);
	if (!limit.allowed)
		return rate_limited(a, limit.ttl);
	if (a->user->disabled || doc_true(a->user->doc, "disabled")) {
		log_entry(a, "disabled", NULL, NULL);
		return set_status(a, WD_AUTH_DISABLED, "Authentication failed");
	}
	if (a->user->suspended) {
		log_entry(a, "suspended", NULL, NULL);
		return set_status(a, WD_AUTH_SUSPENDED, "Authentication failed");
	}
	if (scope_listed(a->user->doc, "disabledScopes", scope)) {
		log_entry(a, "fail", NULL, NULL);
		return set_status(a, WD_AUTH_SCOPE_DISABLED, "Access to requested service disabled");
	}
	wd_auth_enabled_2fa(a->user->doc, a->methods, sizeof(a->methods));

	bool not_yet = false, temporary = try_temporary(a, &not_yet), match = temporary;
	if (not_yet) {
		struct wd_auth_limit l;
		count_failure(a->auth, a->hex, req->meta.ip, &l);
		return set_status(a, WD_AUTH_TEMP_NOT_YET_VALID, "Temporary password is not yet activated");
	}
	const char *hash = doc_string(a->user->doc, "password");
	if (!match && hash != NULL && hash[0] != '\0' && !verify_hash(a, hash, &match))
		return fail(a, WD_AUTH_INTERNAL_ERROR, "master", "Internal error, try again later");
	if (!match && (hash == NULL || hash[0] == '\0'))
		wd_auth_password_burn(req->password, req->password_len);
	if (match) {
		a->password_matched = true;
		const char *source = temporary ? "temporary" : "master";
		a->result->source = temporary ? WD_AUTH_SOURCE_TEMPORARY : WD_AUTH_SOURCE_MASTER;
		a->result->require_password_change = temporary;
		if (!temporary && wd_auth_password_needs_rehash(hash))
			rehash(a, hash);
		if (req->scope != WD_AUTH_SCOPE_MASTER && (a->methods[0] != '\0' || temporary))
			return fail(a, WD_AUTH_SCOPE_REFUSED, source,
				    a->methods[0] != '\0' ?
					    "Authentication failed. Two-factor authentication is on: "
					    "use an application-specific password" :
					    "Authentication failed. Invalid scope");
		if (!temporary)
			snprintf(a->result->require2fa, sizeof(a->result->require2fa), "%s",
				 a->methods);
		return accept_login(a, source, NULL);
	}
	if (req->scope == WD_AUTH_SCOPE_MASTER)
		return fail(a, WD_AUTH_REFUSED, "master", "Authentication failed");
	return try_asps(a);
}

enum wd_auth_status wd_auth_authenticate(struct wd_auth *auth, const struct wd_auth_request *req,
					 struct wd_auth_result *result)
{
	memset(result, 0, sizeof(*result));
	struct attempt a = { .auth = auth, .req = req, .result = result };
	if (req->password == NULL || req->password_len == 0 ||
	    req->password_len > WD_AUTH_MAX_PASSWORD || req->username == NULL ||
	    req->username[0] == '\0' || strlen(req->username) > WD_AUTH_MAX_USERNAME)
		return set_status(&a, WD_AUTH_REFUSED, "Authentication failed");
	struct wd_auth_limit limit;
	wd_auth_limit_ip(auth, req->meta.ip, 0, &limit);
	if (!limit.allowed)
		return rate_limited(&a, limit.ttl);

	char *counter = NULL, *error = NULL;
	int ret = wd_auth_login_lookup(auth->store, req->username, &a.user, &counter, &error);
	if (ret == WD_AUTH_ERR_INTERNAL) {
		wd_error("auth", "login lookup: %s", error != NULL ? error : "failed");
		free(error);
		return set_status(&a, WD_AUTH_INTERNAL_ERROR, "Internal error, try again later");
	}
	free(error);
	if (ret < 0) {
		/* unknown: as slow as a wrong password, counted under the name */
		wd_auth_password_burn(req->password, req->password_len);
		enum wd_auth_status status = set_status(&a, WD_AUTH_REFUSED, "Authentication failed");
		if (counter != NULL) {
			count_failure(auth, counter, req->meta.ip, &limit);
			if (!limit.allowed)
				status = rate_limited(&a, limit.ttl);
		}
		free(counter);
		return status;
	}
	result->has_user = true;
	result->user = a.user->id;
	bson_oid_to_string(&a.user->id, a.hex);
	enum wd_auth_status status = authenticate_user(&a);
	wd_user_free(&a.user);
	return status;
}

int wd_auth_password_set(struct wd_auth *auth, const bson_oid_t *user_id,
			 const struct wd_auth_password_change *change,
			 const struct wd_auth_meta *meta, char **error_r)
{
	if (change->password == NULL || change->len == 0 || change->len > WD_AUTH_MAX_PASSWORD)
		return wd__auth_fail(error_r, WD_AUTH_ERR_INVALID, "password must be 1..%d bytes",
				     WD_AUTH_MAX_PASSWORD);
	struct wd_user *user = NULL;
	int ret = wd_store_user_get(auth->store, user_id, &user, error_r);
	if (ret < 0)
		return ret == WD_STORE_ERR_NOT_FOUND ? WD_AUTH_ERR_NOT_FOUND : WD_AUTH_ERR_INTERNAL;
	const char *old = doc_string(user->doc, "password");
	const char *herror;
	char *hash = NULL;
	bson_t update = BSON_INITIALIZER, set, inner;
	if (change->existing != NULL) {
		bool match = false;
		if (old == NULL || old[0] == '\0' ||
		    wd_auth_password_verify(change->existing, change->existing_len, old, &match,
					    &herror) < 0 || !match) {
			ret = wd__auth_fail(error_r, WD_AUTH_ERR_INVALID, "Password verification failed");
			goto out;
		}
	}
	hash = wd_auth_password_hash(change->password, change->len, &herror);
	if (hash == NULL) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "%s", herror);
		goto out;
	}
	int64_t now = wd__auth_now_ms();
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	if (change->temporary) {
		BSON_APPEND_DOCUMENT_BEGIN(&set, "tempPassword", &inner);
		BSON_APPEND_DATE_TIME(&inner, "validAfter", now);
		BSON_APPEND_UTF8(&inner, "password", hash);
		BSON_APPEND_DATE_TIME(&inner, "created", now);
		bson_append_document_end(&set, &inner);
		bson_append_document_end(&update, &set);
	} else {
		BSON_APPEND_UTF8(&set, "password", hash);
		BSON_APPEND_BOOL(&set, "tempPassword", false);
		BSON_APPEND_DATE_TIME(&set, "passwordChange", now);
		bson_append_document_end(&update, &set);
		if (old != NULL && old[0] != '\0') {
			BSON_APPEND_DOCUMENT_BEGIN(&update, "$push", &set);
			BSON_APPEND_DOCUMENT_BEGIN(&set, "oldPasswords", &inner);
			BSON_APPEND_DATE_TIME(&inner, "date", now);
			BSON_APPEND_UTF8(&inner, "hash", old);
			bson_append_document_end(&set, &inner);
			bson_append_document_end(&update, &set);
		}
		BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &set);
		BSON_APPEND_INT32(&set, "authVersion", 1);
		bson_append_document_end(&update, &set);
	}
	bson_t *filter = BCON_NEW("_id", BCON_OID(user_id));
	struct wd__auth_coll c;
	wd__auth_coll_get(auth, "users", &c);
	bson_error_t error;
	if (!mongoc_collection_update_one(c.coll, filter, &update, NULL, NULL, &error))
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "users update: %s", error.message);
	wd__auth_coll_put(auth, &c);
	bson_destroy(filter);
	if (ret == 0) {
		struct wd_authlog_entry entry = {
			.action = change->temporary ? "reset" : "password change",
			.result = "success",
		};
		char *log_error = NULL;
		if (wd_auth_log_event(auth, user_id, &entry, meta, NULL, &log_error) < 0) {
			wd_warning("auth", "%s", log_error);
			free(log_error);
		}
	}
out:
	bson_destroy(&update);
	free(hash);
	wd_user_free(&user);
	return ret;
}
