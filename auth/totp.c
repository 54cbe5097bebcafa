/* TOTP: codes through liboath, enrolment and checks on the users document
 * as WildDuck's UserHandler.setupTotp/enableTotp/disableTotp/checkTotp do.
 *
 * Seeds are base32 text; liboath wants the raw secret, so each use decodes
 * (upper-cased, spaces dropped, as speakeasy tolerates). Updates that
 * depend on what was read carry what was read in their filter (the pending
 * seed, the enabled2fa value) so a concurrent change makes them miss instead
 * of overwriting. enabled2fa is written whole with $set rather than
 * $addToSet/$pull: a legacy boolean value would make those operators fail. */
#include "wd-auth-totp.h"
#include "wd-auth-log.h"
#include "wd-auth-ratelimit.h"
#include "wd-auth-secret.h"
#include "auth-private.h"
#include "wd-log.h"
#include "wd-store-user.h"

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_status;

static void oath_setup(void)
{
	oath_status = oath_init();
}

static int oath_ready(const char **error_r)
{
	pthread_once(&oath_once, oath_setup);
	if (oath_status != OATH_OK) {
		*error_r = "liboath initialisation failed";
		return -1;
	}
	return 0;
}

int wd_auth_totp_seed_new(char *seed, const char **error_r)
{
	uint8_t secret[20];
	char *text = NULL;
	size_t len = 0;
	if (oath_ready(error_r) < 0)
		return -1;
	if (RAND_bytes(secret, sizeof(secret)) != 1 ||
	    oath_base32_encode((const char *)secret, sizeof(secret), &text, &len) != OATH_OK ||
	    len != WD_AUTH_TOTP_SEED_LEN) {
		free(text);
		*error_r = "cannot make a TOTP secret";
		return -1;
	}
	memcpy(seed, text, len);
	seed[len] = '\0';
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(text, len);
	free(text);
	return 0;
}

/* base32 text → raw secret (malloc'd). Lower case and spaces tolerated. */
static int seed_decode(const char *seed, char **secret_r, size_t *len_r, const char **error_r)
{
	size_t n = strlen(seed);
	if (n == 0 || n > 256) {
		*error_r = "bad TOTP seed";
		return -1;
	}
	char clean[260];
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = seed[i];
		if (c == ' ' || c == '=')
			continue;
		clean[o++] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
	}
	/* liboath wants the padding back */
	while (o % 8 != 0)
		clean[o++] = '=';
	clean[o] = '\0';
	if (oath_ready(error_r) < 0)
		return -1;
	if (oath_base32_decode(clean, o, secret_r, len_r) != OATH_OK || *len_r == 0) {
		*error_r = "bad TOTP seed";
		return -1;
	}
	return 0;
}

int wd_auth_totp_code(const char *seed, time_t when, char code[7], const char **error_r)
{
	char *secret;
	size_t len;
	if (seed_decode(seed, &secret, &len, error_r) < 0)
		return -1;
	int ret = oath_totp_generate(secret, len, when, OATH_TOTP_DEFAULT_TIME_STEP_SIZE,
				     OATH_TOTP_DEFAULT_START_TIME, 6, code);
	OPENSSL_cleanse(secret, len);
	free(secret);
	if (ret != OATH_OK) {
		*error_r = "TOTP generation failed";
		return -1;
	}
	return 0;
}

int wd_auth_totp_verify(const char *seed, const char *code, time_t now, unsigned window,
			bool *valid_r, const char **error_r)
{
	*valid_r = false;
	char digits[7];
	size_t n = 0;
	for (const char *p = code; *p != '\0'; p++) {
		if (*p == ' ')
			continue;
		if (*p < '0' || *p > '9' || n == 6)
			return 0;
		digits[n++] = *p;
	}
	if (n != 6)
		return 0;
	digits[6] = '\0';
	char *secret;
	size_t len;
	if (seed_decode(seed, &secret, &len, error_r) < 0)
		return -1;
	int ret = oath_totp_validate(secret, len, now, OATH_TOTP_DEFAULT_TIME_STEP_SIZE,
				     OATH_TOTP_DEFAULT_START_TIME, window, digits);
	OPENSSL_cleanse(secret, len);
	free(secret);
	*valid_r = ret >= 0;
	return 0;
}

static void url_encode(FILE *out, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("-_.~", *p) != NULL)
			fputc(*p, out);
		else
			fprintf(out, "%%%02X", *p);
	}
}

char *wd_auth_totp_url(const char *seed, const char *label, const char *issuer)
{
	char *url = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&url, &size);
	if (out == NULL)
		return NULL;
	fputs("otpauth://totp/", out);
	url_encode(out, label);
	fprintf(out, "?secret=%s&issuer=", seed);
	url_encode(out, issuer != NULL ? issuer : "WildDuck");
	fclose(out);
	return url;
}

size_t wd_auth_enabled_2fa(const bson_t *doc, char *buf, size_t size)
{
	buf[0] = '\0';
	bson_iter_t it, child;
	if (!bson_iter_init_find(&it, doc, "enabled2fa"))
		return 0;
	if (BSON_ITER_HOLDS_BOOL(&it)) {
		if (!bson_iter_bool(&it))
			return 0;
		snprintf(buf, size, "totp");
		return 1;
	}
	if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &child))
		return 0;
	size_t count = 0, used = 0;
	while (bson_iter_next(&child)) {
		if (!BSON_ITER_HOLDS_UTF8(&child))
			continue;
		const char *method = bson_iter_utf8(&child, NULL);
		if (strcmp(method, "u2f") == 0 || method[0] == '\0')
			continue;
		int n = snprintf(buf + used, size - used, "%s%s", count > 0 ? "," : "", method);
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
		count++;
	}
	return count;
}

static bool has_method(const char *list, const char *method)
{
	size_t n = strlen(method);
	for (const char *p = list; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, method, n) == 0)
			return true;
		p += len + (end != NULL ? 1 : 0);
	}
	return false;
}

/* enabled2fa as an array from a comma list, with `add` appended / `drop` left out */
static void append_methods(bson_t *doc, const char *list, const char *add, const char *drop)
{
	bson_t array;
	BSON_APPEND_ARRAY_BEGIN(doc, "enabled2fa", &array);
	unsigned i = 0;
	char key[16];
	for (const char *p = list; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (drop == NULL || strlen(drop) != len || memcmp(p, drop, len) != 0) {
			snprintf(key, sizeof(key), "%u", i++);
			bson_append_utf8(&array, key, -1, p, (int)len);
		}
		p += len + (end != NULL ? 1 : 0);
	}
	if (add != NULL) {
		snprintf(key, sizeof(key), "%u", i++);
		BSON_APPEND_UTF8(&array, key, add);
	}
	bson_append_array_end(doc, &array);
}

#define METHODS_SIZE 128

/* The user document and its enabled 2FA methods (comma list into methods). */
static int load_user(struct wd_auth *auth, const bson_oid_t *id, struct wd_user **user_r,
		     char *methods, size_t *count_r, char **error_r)
{
	int ret = wd_store_user_get(auth->store, id, user_r, error_r);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		return WD_AUTH_ERR_NOT_FOUND;
	if (ret < 0)
		return WD_AUTH_ERR_INTERNAL;
	size_t count = wd_auth_enabled_2fa((*user_r)->doc, methods, METHODS_SIZE);
	if (count_r != NULL)
		*count_r = count;
	return 0;
}

static const char *doc_string(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
		return bson_iter_utf8(&it, NULL);
	return NULL;
}

/* updateOne(filter, update) on users, then both are destroyed. When
   nothing matched: `missed` with `missed_message`. */
static int update_user(struct wd_auth *auth, bson_t *filter, bson_t *update, int missed,
		       const char *missed_message, char **error_r)
{
	struct wd__auth_coll c;
	wd__auth_coll_get(auth, "users", &c);
	bson_t reply;
	bson_error_t error;
	int ret = 0;
	if (!mongoc_collection_update_one(c.coll, filter, update, NULL, &reply, &error)) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "users update: %s", error.message);
	} else {
		bson_iter_t it;
		if (!bson_iter_init_find(&it, &reply, "matchedCount") || bson_iter_as_int64(&it) == 0)
			ret = wd__auth_fail(error_r, missed, "%s", missed_message);
	}
	bson_destroy(&reply);
	wd__auth_coll_put(auth, &c);
	bson_destroy(filter);
	bson_destroy(update);
	return ret;
}

static void log_event(struct wd_auth *auth, const bson_oid_t *user, const char *action,
		      const char *result, const struct wd_auth_meta *meta)
{
	struct wd_authlog_entry entry = { .action = action, .result = result };
	char *error = NULL;
	if (wd_auth_log_event(auth, user, &entry, meta, NULL, &error) < 0) {
		wd_warning("auth", "%s", error);
		free(error);
	}
}

int wd_auth_totp_setup(struct wd_auth *auth, const bson_oid_t *user_id, const char *label,
		       const char *issuer, struct wd_auth_totp_setup *setup, char **error_r)
{
	memset(setup, 0, sizeof(*setup));
	struct wd_user *user = NULL;
	char methods[METHODS_SIZE];
	int ret = load_user(auth, user_id, &user, methods, NULL, error_r);
	if (ret < 0)
		return ret;
	char *stored = NULL;
	const char *error = NULL;
	if (has_method(methods, "totp")) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_STATE, "TOTP 2FA is already enabled for this user");
		goto out;
	}
	if (wd_auth_totp_seed_new(setup->seed, &error) < 0 ||
	    wd_auth_secret_encrypt(setup->seed, auth->totp_secret, &stored, &error) < 0) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "%s", error);
		goto out;
	}
	/* the filter repeats what was read: TOTP still off */
	bson_t *filter = BCON_NEW("_id", BCON_OID(user_id), "enabled2fa", "{", "$ne",
				  BCON_UTF8("totp"), "}");
	bson_t *update = BCON_NEW("$set", "{", "pendingSeed", BCON_UTF8(stored),
				  "pendingSeedChanged", BCON_DATE_TIME(wd__auth_now_ms()), "}");
	ret = update_user(auth, filter, update, WD_AUTH_ERR_STATE,
			  "Could not update user, check if 2FA is not already enabled", error_r);
	if (ret == 0) {
		setup->url = wd_auth_totp_url(setup->seed, label != NULL ? label : user->username,
					      issuer);
		if (setup->url == NULL)
			ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "out of memory");
	}
out:
	if (ret < 0)
		OPENSSL_cleanse(setup->seed, sizeof(setup->seed));
	free(stored);
	wd_user_free(&user);
	return ret;
}

/* Decrypts a stored seed and checks a code against it now. */
static int stored_seed_verify(struct wd_auth *auth, const char *stored, const char *code,
			      bool *valid_r, char **error_r)
{
	char *seed = NULL;
	const char *error = NULL;
	int ret = 0;
	if (wd_auth_secret_decrypt(stored, auth->totp_secret, auth->totp_cipher, &seed, &error) < 0 ||
	    wd_auth_totp_verify(seed, code, time(NULL), WD_AUTH_TOTP_WINDOW_SIZE, valid_r, &error) < 0)
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_INTERNAL, "Can not use decrypted secret: %s",
				    error);
	if (seed != NULL) {
		OPENSSL_cleanse(seed, strlen(seed));
		free(seed);
	}
	return ret;
}

static void publish_logout(struct wd_auth *auth, const bson_oid_t *user)
{
	char hex[25], payload[160];
	bson_oid_to_string(user, hex);
	snprintf(payload, sizeof(payload),
		 "{\"e\":\"%s\",\"p\":{\"command\":\"LOGOUT\",\"reason\":\"Authentication required\"}}",
		 hex);
	redisReply *reply = wd__auth_redis(auth, "PUBLISH wd_events %s", payload);
	if (reply != NULL)
		freeReplyObject(reply);
}

int wd_auth_totp_enable(struct wd_auth *auth, const bson_oid_t *user_id, const char *code,
			const struct wd_auth_meta *meta, bool *enabled_r, char **error_r)
{
	*enabled_r = false;
	struct wd_user *user = NULL;
	char methods[METHODS_SIZE];
	size_t count = 0;
	int ret = load_user(auth, user_id, &user, methods, &count, error_r);
	if (ret < 0)
		return ret;
	const char *pending = doc_string(user->doc, "pendingSeed");
	bson_iter_t it;
	int64_t changed = 0;
	if (bson_iter_init_find(&it, user->doc, "pendingSeedChanged") &&
	    BSON_ITER_HOLDS_DATE_TIME(&it))
		changed = bson_iter_date_time(&it);
	if (has_method(methods, "totp")) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_STATE, "TOTP 2FA is already enabled for this user");
		goto out;
	}
	if (pending == NULL || pending[0] == '\0' ||
	    (changed != 0 && changed < wd__auth_now_ms() - WD_AUTH_TOTP_SETUP_TTL_MS)) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_STATE, "TOTP 2FA is not initialized for this user");
		goto out;
	}
	bool valid = false;
	ret = stored_seed_verify(auth, pending, code, &valid, error_r);
	if (ret < 0)
		goto out;
	if (!valid) {
		log_event(auth, user_id, "enable 2fa totp", "fail", meta);
		goto out;
	}
	bson_t *filter = BCON_NEW("_id", BCON_OID(user_id), "pendingSeed", BCON_UTF8(pending));
	bson_t update = BSON_INITIALIZER, set, inc;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	BSON_APPEND_UTF8(&set, "seed", pending);
	BSON_APPEND_UTF8(&set, "pendingSeed", "");
	BSON_APPEND_BOOL(&set, "pendingSeedChanged", false);
	append_methods(&set, methods, "totp", NULL);
	bson_append_document_end(&update, &set);
	if (count == 0) {
		BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &inc);
		BSON_APPEND_INT32(&inc, "authVersion", 1);
		bson_append_document_end(&update, &inc);
	}
	ret = update_user(auth, filter, &update, WD_AUTH_ERR_STATE,
			  "Failed to set up 2FA. Check if it is not already enabled", error_r);
	if (ret == 0) {
		if (count == 0)
			publish_logout(auth, user_id);
		log_event(auth, user_id, "enable 2fa totp", "success", meta);
		*enabled_r = true;
	}
out:
	wd_user_free(&user);
	return ret;
}

int wd_auth_totp_disable(struct wd_auth *auth, const bson_oid_t *user_id,
			 const struct wd_auth_meta *meta, char **error_r)
{
	struct wd_user *user = NULL;
	char methods[METHODS_SIZE];
	int ret = load_user(auth, user_id, &user, methods, NULL, error_r);
	if (ret < 0)
		return ret;
	wd_user_free(&user);
	if (!has_method(methods, "totp"))
		return wd__auth_fail(error_r, WD_AUTH_ERR_STATE,
				     "Could not update user, check if 2FA TOTP is not already disabled");
	bson_t *filter = BCON_NEW("_id", BCON_OID(user_id));
	bson_t update = BSON_INITIALIZER, set;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	BSON_APPEND_UTF8(&set, "seed", "");
	BSON_APPEND_UTF8(&set, "pendingSeed", "");
	BSON_APPEND_BOOL(&set, "pendingSeedChanged", false);
	append_methods(&set, methods, NULL, "totp");
	bson_append_document_end(&update, &set);
	ret = update_user(auth, filter, &update, WD_AUTH_ERR_NOT_FOUND,
			  "This username does not exist", error_r);
	if (ret == 0)
		log_event(auth, user_id, "disable 2fa totp", NULL, meta);
	return ret;
}

int wd_auth_totp_check(struct wd_auth *auth, const bson_oid_t *user_id, const char *code,
		       const struct wd_auth_meta *meta, bool *valid_r, int64_t *retry_r,
		       char **error_r)
{
	*valid_r = false;
	if (retry_r != NULL)
		*retry_r = 0;
	char hex[25], token[40], used_key[64];
	bson_oid_to_string(user_id, hex);
	snprintf(token, sizeof(token), "totp:%s", hex);
	const char *ip = meta != NULL ? meta->ip : NULL;
	struct wd_auth_limit limit;
	wd_auth_limit_user(auth, token, ip, 0, &limit);
	if (!limit.allowed) {
		if (retry_r != NULL)
			*retry_r = limit.ttl;
		char message[128];
		wd_auth_limit_message(limit.ttl, message, sizeof(message));
		return wd__auth_fail(error_r, WD_AUTH_ERR_RATELIMITED, "%s", message);
	}
	/* the code as it will be remembered: digits only, at most 6 */
	char digits[8];
	size_t n = 0;
	for (const char *p = code; *p != '\0' && n < 7; p++)
		if (*p != ' ')
			digits[n++] = *p;
	digits[n] = '\0';
	snprintf(used_key, sizeof(used_key), "totp:%s:%s", hex, digits);
	redisReply *reply = wd__auth_redis(auth, "EXISTS %s", used_key);
	bool used = reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0;
	if (reply != NULL)
		freeReplyObject(reply);
	if (used)
		return wd__auth_fail(error_r, WD_AUTH_ERR_RATELIMITED,
				     "This code has already been used, please try again with a new code");

	struct wd_user *user = NULL;
	char methods[METHODS_SIZE];
	int ret = load_user(auth, user_id, &user, methods, NULL, error_r);
	if (ret < 0)
		return ret;
	const char *stored = doc_string(user->doc, "seed");
	bool valid = false;
	if (stored == NULL || stored[0] == '\0' || !has_method(methods, "totp")) {
		ret = wd__auth_fail(error_r, WD_AUTH_ERR_STATE, "2FA TOTP is not enabled for this user");
		goto out;
	}
	ret = stored_seed_verify(auth, stored, code, &valid, error_r);
	if (ret < 0)
		goto out;
	log_event(auth, user_id, "check 2fa totp", valid ? "success" : "fail", meta);
	if (valid) {
		wd_auth_limit_release(auth, token);
		reply = wd__auth_redis(auth, "SET %s %lld EX %d", used_key,
				       (long long)wd__auth_now_ms(), WD_AUTH_TOTP_USED_TTL);
		if (reply != NULL)
			freeReplyObject(reply);
	} else {
		wd_auth_limit_user(auth, token, ip, 1, &limit);
	}
	*valid_r = valid;
out:
	wd_user_free(&user);
	return ret;
}
