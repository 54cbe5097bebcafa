/* Backends of the Dovecot auth module (see authdb-backend.h).
 *
 * A process keeps a short list of backends, one per distinct settings
 * (Dovecot calls preinit once per passdb/userdb block, and a passdb and a
 * userdb with the same `args` should share one connection pool). The list
 * is only touched from Dovecot's single thread; libwdstore's own background
 * threads never call back into it.
 *
 * Opening (wd_store_open + wd_auth_create) asks the server's buildInfo, so a
 * database that is down fails here. After a failure the error is kept for
 * OPEN_RETRY_SECS and returned at once: an auth worker then answers "try
 * later" quickly instead of waiting for MongoDB's server selection timeout
 * on every request. */
#include "authdb-backend.h"

#include "wd-auth.h"
#include "wd-config.h"
#include "wd-store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OPEN_RETRY_SECS 5

struct wd_authdb_backend {
	struct wd_authdb_backend *next;
	int refcount;
	char *key;               /* the settings, serialised, to find a shared backend */
	struct wd_config *config;
	struct wd_store *store;
	struct wd_auth *auth;
	char *open_error;        /* last open failure, kept for OPEN_RETRY_SECS */
	time_t open_failed_at;
};

static struct wd_authdb_backend *backends;

static char *settings_key(const struct wd_authdb_backend_settings *set)
{
	size_t len = 1 + (set->config_path != NULL ? strlen(set->config_path) : 0);
	for (size_t i = 0; i < set->count; i++)
		len += strlen(set->keys[i]) + strlen(set->values[i]) + 2;
	char *key = malloc(len + 1);
	if (key == NULL)
		return NULL;
	char *p = key;
	p += sprintf(p, "%s\n", set->config_path != NULL ? set->config_path : "");
	for (size_t i = 0; i < set->count; i++)
		p += sprintf(p, "%s=%s\n", set->keys[i], set->values[i]);
	return key;
}

static char *dup_error(const char *prefix, const char *error)
{
	size_t len = strlen(prefix) + strlen(error) + 3;
	char *msg = malloc(len);
	if (msg != NULL)
		snprintf(msg, len, "%s: %s", prefix, error);
	return msg;
}

static struct wd_config *load_config(const struct wd_authdb_backend_settings *set,
				     char **error_r)
{
	struct wd_config *config = set->config_path != NULL ?
		wd_config_load(set->config_path, error_r) : wd_config_new();
	if (config == NULL)
		return NULL;
	for (size_t i = 0; i < set->count; i++) {
		char *error = NULL;
		if (wd_config_set(config, set->keys[i], set->values[i], "passdb/userdb args",
				  &error) < 0) {
			*error_r = dup_error(set->keys[i], error != NULL ? error : "invalid");
			free(error);
			wd_config_free(&config);
			return NULL;
		}
	}
	return config;
}

struct wd_authdb_backend *wd_authdb_backend_ref(const struct wd_authdb_backend_settings *set,
						char **error_r)
{
	*error_r = NULL;
	char *key = settings_key(set);
	if (key == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	for (struct wd_authdb_backend *b = backends; b != NULL; b = b->next) {
		if (strcmp(b->key, key) == 0) {
			free(key);
			b->refcount++;
			return b;
		}
	}
	struct wd_authdb_backend *backend = calloc(1, sizeof(*backend));
	if (backend == NULL) {
		free(key);
		*error_r = strdup("out of memory");
		return NULL;
	}
	backend->key = key;
	backend->config = load_config(set, error_r);
	if (backend->config == NULL) {
		free(key);
		free(backend);
		return NULL;
	}
	backend->refcount = 1;
	backend->next = backends;
	backends = backend;
	return backend;
}

void wd_authdb_backend_unref(struct wd_authdb_backend **_backend)
{
	struct wd_authdb_backend *backend = *_backend;
	*_backend = NULL;
	if (backend == NULL || --backend->refcount > 0)
		return;
	for (struct wd_authdb_backend **p = &backends; *p != NULL; p = &(*p)->next) {
		if (*p == backend) {
			*p = backend->next;
			break;
		}
	}
	wd_auth_destroy(&backend->auth);
	wd_store_close(&backend->store);
	wd_config_free(&backend->config);
	free(backend->open_error);
	free(backend->key);
	free(backend);
}

struct wd_auth *wd_authdb_backend_auth(struct wd_authdb_backend *backend, char **error_r)
{
	*error_r = NULL;
	if (backend->auth != NULL)
		return backend->auth;
	time_t now = time(NULL);
	if (backend->open_error != NULL && now - backend->open_failed_at < OPEN_RETRY_SECS) {
		*error_r = strdup(backend->open_error);
		return NULL;
	}
	char *error = NULL;
	if (backend->store == NULL)
		backend->store = wd_store_open(backend->config, &error);
	if (backend->store != NULL)
		backend->auth = wd_auth_create(backend->store, backend->config, &error);
	if (backend->auth != NULL) {
		free(backend->open_error);
		backend->open_error = NULL;
		return backend->auth;
	}
	free(backend->open_error);
	backend->open_error = dup_error(backend->store == NULL ? "database" : "auth",
					error != NULL ? error : "failed");
	backend->open_failed_at = now;
	free(error);
	*error_r = strdup(backend->open_error != NULL ? backend->open_error : "out of memory");
	return NULL;
}
