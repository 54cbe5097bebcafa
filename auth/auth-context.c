/* The libwdauth context: configuration, Redis settings, and WildDuck's
 * settings collection (`const:authlog:time`, `const:asp:limit`, §4.20) read
 * on use and cached for a minute, since every login would otherwise pay a
 * database round trip for two values that practically never change. */
#include "auth-private.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define SETTINGS_CACHE_MS 60000

int wd__auth_fail(char **error_r, int ret, const char *fmt, ...)
{
	if (error_r == NULL)
		return ret;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(error_r, fmt, ap) < 0)
		*error_r = NULL;
	va_end(ap);
	return ret;
}

int64_t wd__auth_now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

const char *wd_auth_error_kind_name(int ret)
{
	switch (ret) {
	case WD_AUTH_OK: return "ok";
	case WD_AUTH_ERR_NOT_FOUND: return "not found";
	case WD_AUTH_ERR_INVALID: return "invalid";
	case WD_AUTH_ERR_LIMIT: return "limit";
	case WD_AUTH_ERR_STATE: return "state";
	case WD_AUTH_ERR_RATELIMITED: return "rate limited";
	default: return "internal";
	}
}

const char *wd_auth_version(void)
{
	return wd_store_version();
}

static char *config_string(const struct wd_config *config, const char *key, const char *def)
{
	const char *value, *error;
	if (wd_config_get_string(config, key, def, &value, &error) < 0 || value == NULL ||
	    value[0] == '\0')
		return NULL;
	return strdup(value);
}

struct wd_auth *wd_auth_create(struct wd_store *store, const struct wd_config *config,
			       char **error_r)
{
	*error_r = NULL;
	struct wd_auth *auth = calloc(1, sizeof(*auth));
	if (auth == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	auth->store = store;
	pthread_mutex_init(&auth->lock, NULL);
	auth->totp_secret = config_string(config, "totp.secret", NULL);
	auth->totp_cipher = config_string(config, "totp.cipher", "aes192");
	const char *error;
	if (wd_config_get_int(config, "auth.ipFailures", 0, &auth->ip_failures, &error) < 0 ||
	    wd_config_get_int(config, "auth.userFailures", WD_AUTH_USER_FAILURES,
			      &auth->user_failures, &error) < 0) {
		wd__auth_fail(error_r, WD_ERROR, "%s", error);
		goto failed;
	}
	if (wd__auth_redis_init(auth, config, error_r) < 0)
		goto failed;
	return auth;
failed:
	pthread_mutex_destroy(&auth->lock);
	free(auth->totp_secret);
	free(auth->totp_cipher);
	free(auth);
	return NULL;
}

void wd_auth_destroy(struct wd_auth **authp)
{
	struct wd_auth *auth = *authp;
	if (auth == NULL)
		return;
	*authp = NULL;
	wd__auth_redis_deinit(auth);
	pthread_mutex_destroy(&auth->lock);
	if (auth->totp_secret != NULL)
		explicit_bzero(auth->totp_secret, strlen(auth->totp_secret));
	free(auth->totp_secret);
	free(auth->totp_cipher);
	free(auth);
}

struct wd_store *wd_auth_store(struct wd_auth *auth)
{
	return auth->store;
}

void wd__auth_coll_get(struct wd_auth *auth, const char *name, struct wd__auth_coll *c)
{
	/* settings live in the main DB, everything else of ours in the users DB */
	c->db = strcmp(name, "settings") == 0 ? WD_STORE_DB_MAIN : WD_STORE_DB_USERS;
	c->client = wd_store_client(auth->store, c->db);
	c->coll = wd_store_collection(auth->store, c->client, c->db, name);
}

void wd__auth_coll_put(struct wd_auth *auth, struct wd__auth_coll *c)
{
	mongoc_collection_destroy(c->coll);
	wd_store_client_release(auth->store, c->db, c->client);
	c->coll = NULL;
	c->client = NULL;
}

/* A setting's value: the JSON text in `value` (WildDuck stores
   JSON.stringify(value)); numbers only. Returns false when there is no
   document or it holds no number. */
static bool read_setting(struct wd_auth *auth, const char *key, int64_t *value_r)
{
	struct wd__auth_coll c;
	wd__auth_coll_get(auth, "settings", &c);
	bson_t *query = BCON_NEW("key", BCON_UTF8(key));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c.coll, query, NULL, NULL);
	const bson_t *doc;
	bool found = false;
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, doc, "value")) {
			if (BSON_ITER_HOLDS_UTF8(&it)) {
				const char *text = bson_iter_utf8(&it, NULL);
				char *end;
				double v = strtod(text, &end);
				if (end != text) {
					*value_r = (int64_t)v;
					found = true;
				} else if (strcmp(text, "false") == 0 || strcmp(text, "null") == 0) {
					*value_r = 0;
					found = true;
				}
			} else if (BSON_ITER_HOLDS_NUMBER(&it)) {
				*value_r = bson_iter_as_int64(&it);
				found = true;
			} else if (BSON_ITER_HOLDS_BOOL(&it) && !bson_iter_bool(&it)) {
				*value_r = 0;
				found = true;
			}
		}
	}
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error))
		wd_warning("auth", "settings %s: %s", key, error.message);
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	wd__auth_coll_put(auth, &c);
	return found;
}

static void load_settings(struct wd_auth *auth)
{
	int64_t now = wd__auth_now_ms();
	pthread_mutex_lock(&auth->lock);
	bool fresh = auth->settings_loaded_ms != 0 &&
		     now - auth->settings_loaded_ms < SETTINGS_CACHE_MS;
	pthread_mutex_unlock(&auth->lock);
	if (fresh)
		return;
	int64_t authlog = WD_AUTH_AUTHLOG_TIME_MS, asp = WD_AUTH_MAX_ASP_COUNT, v;
	if (read_setting(auth, "const:authlog:time", &v))
		authlog = v;
	if (read_setting(auth, "const:asp:limit", &v) && v > 0)
		asp = v;
	pthread_mutex_lock(&auth->lock);
	auth->authlog_time_ms = authlog;
	auth->asp_limit = asp;
	auth->settings_loaded_ms = now;
	pthread_mutex_unlock(&auth->lock);
}

int64_t wd__auth_setting_authlog_time(struct wd_auth *auth)
{
	load_settings(auth);
	pthread_mutex_lock(&auth->lock);
	int64_t v = auth->authlog_time_ms;
	pthread_mutex_unlock(&auth->lock);
	return v;
}

int64_t wd__auth_setting_asp_limit(struct wd_auth *auth)
{
	load_settings(auth);
	pthread_mutex_lock(&auth->lock);
	int64_t v = auth->asp_limit;
	pthread_mutex_unlock(&auth->lock);
	return v;
}
