/* The mail user's side of the wildduck storage: settings, the process's
 * libwdstore handle and the user's id.
 *
 * A Dovecot mail process may serve several users one after another (or at
 * once with client_limit > 1), so the wd_store (a MongoDB client pool and
 * Redis connections) is opened once per process and per distinct
 * configuration, then shared; it is closed when the plugin unloads.
 *
 * Configuration, all in plugin { }:
 *   wildduck_config          a wd-server TOML file (WildDuck's key names:
 *                            dbs.mongo, dbs.redis, dbs.users, dbs.gridfs...)
 *   wildduck_mongo           overrides dbs.mongo
 *   wildduck_redis           overrides dbs.redis
 *   wildduck_ferretdb_sqlite overrides dbs.ferretdbSqlite
 *   wildduck_user            the users._id (hex); a userdb field that
 *                            `userdb { driver = wildduck }` returns
 *   wildduck_poll_interval   fallback re-sync while IDLE (default 30s)
 *   wildduck_full_sync_interval  full re-read of a selected mailbox (1h)
 *   wildduck_max_message_size    APPEND / LMTP limit (default 64M)
 *   wildduck_search_pushdown     SEARCH through MongoDB (default yes)
 *   wildduck_pop3_trash      POP3 DELE moves to Trash as WildDuck (yes) */
#include "wildduck-storage.h"

#include "ioloop.h"
#include "mail-user.h"
#include "mail-storage-hooks.h"
#include "settings-parser.h"

#include "wd-config.h"
#include "wd-store.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

#define WILDDUCK_USER_CONTEXT(obj) MODULE_CONTEXT(obj, wildduck_user_module)
static MODULE_CONTEXT_DEFINE_INIT(wildduck_user_module, &mail_user_module_register);

/* ---- process-wide stores ---- */

struct wildduck_store_entry {
	struct wildduck_store_entry *next;
	char *signature;
	struct wd_store *store;
	char *redis_url;
};
static struct wildduck_store_entry *stores;

static const char *setting(struct mail_user *user, const char *name)
{
	const char *value = mail_user_plugin_getenv(user, name);
	return value != NULL && *value != '\0' ? value : NULL;
}

static bool setting_bool(struct mail_user *user, const char *name, bool def)
{
	const char *value = setting(user, name);
	if (value == NULL)
		return def;
	return strcasecmp(value, "yes") == 0 || strcasecmp(value, "y") == 0 ||
	       strcmp(value, "1") == 0 || strcasecmp(value, "true") == 0;
}

static unsigned int setting_secs(struct mail_user *user, const char *name, unsigned int def)
{
	const char *value = setting(user, name), *error;
	unsigned int secs;
	if (value == NULL)
		return def;
	if (settings_get_time(value, &secs, &error) < 0) {
		i_error("wildduck: plugin setting %s: %s", name, error);
		return def;
	}
	return secs;
}

static int config_set(struct wd_config *config, const char *key, const char *value,
		      const char *origin, const char **error_r)
{
	char *error = NULL;
	if (value == NULL)
		return 0;
	/* a string, so a URL is never read as another type */
	if (wd_config_set_string(config, key, value, origin, &error) < 0) {
		*error_r = t_strdup_printf("%s: %s", origin, error);
		free(error);
		return -1;
	}
	return 0;
}

static struct wildduck_store_entry *store_open(struct mail_user *user, const char **error_r)
{
	const char *file = setting(user, "wildduck_config");
	const char *mongo = setting(user, "wildduck_mongo");
	const char *redis = setting(user, "wildduck_redis");
	const char *sqlite = setting(user, "wildduck_ferretdb_sqlite");
	const char *signature = t_strdup_printf("%s\n%s\n%s\n%s", file == NULL ? "" : file,
						mongo == NULL ? "" : mongo,
						redis == NULL ? "" : redis,
						sqlite == NULL ? "" : sqlite);

	for (struct wildduck_store_entry *e = stores; e != NULL; e = e->next) {
		if (strcmp(e->signature, signature) == 0)
			return e;
	}

	struct wd_config *config;
	char *error = NULL;
	if (file != NULL) {
		config = wd_config_load(file, &error);
		if (config == NULL) {
			*error_r = t_strdup_printf("wildduck_config: %s", error);
			free(error);
			return NULL;
		}
	} else {
		config = wd_config_new();
		if (config == NULL) {
			*error_r = "out of memory";
			return NULL;
		}
	}
	if (config_set(config, "dbs.mongo", mongo, "plugin wildduck_mongo", error_r) < 0 ||
	    config_set(config, "dbs.redis", redis, "plugin wildduck_redis", error_r) < 0 ||
	    config_set(config, "dbs.ferretdbSqlite", sqlite, "plugin wildduck_ferretdb_sqlite",
		       error_r) < 0) {
		wd_config_free(&config);
		return NULL;
	}
	const char *redis_url, *config_error;
	if (wd_config_get_string(config, "dbs.redis", "redis://127.0.0.1:6379/3", &redis_url,
				 &config_error) < 0) {
		*error_r = t_strdup(config_error);
		wd_config_free(&config);
		return NULL;
	}
	redis_url = t_strdup(redis_url);
	struct wd_store *store = wd_store_open(config, &error);
	/* the store copies what it needs from the configuration */
	wd_config_free(&config);
	if (store == NULL) {
		*error_r = t_strdup_printf("opening the WildDuck database failed: %s",
					   error != NULL ? error : "unknown error");
		free(error);
		return NULL;
	}
	struct wildduck_store_entry *e = i_new(struct wildduck_store_entry, 1);
	e->signature = i_strdup(signature);
	e->store = store;
	e->redis_url = i_strdup(redis_url);
	e->next = stores;
	stores = e;
	return e;
}

static void stores_close(void)
{
	while (stores != NULL) {
		struct wildduck_store_entry *e = stores;
		stores = e->next;
		wd_store_close(&e->store);
		i_free(e->signature);
		i_free(e->redis_url);
		i_free(e);
	}
}

/* ---- the user ---- */

static int resolve_user_id(struct wildduck_user *wuser, const char **error_r)
{
	struct mail_user *user = wuser->user;
	const char *hex = setting(user, "wildduck_user");
	char *error = NULL;

	if (hex != NULL) {
		if (!bson_oid_is_valid(hex, strlen(hex)) || strlen(hex) != 24) {
			*error_r = t_strdup_printf("wildduck_user is not an ObjectId: %s", hex);
			return -1;
		}
		bson_oid_init_from_string(&wuser->user_id, hex);
		return 0;
	}

	/* no userdb field: the username, then an address */
	struct wd_user *wd_user = NULL;
	int ret = wd_store_user_get_by_username(wuser->store, user->username, &wd_user, &error);
	if (ret == 0) {
		bson_oid_copy(&wd_user->id, &wuser->user_id);
		wd_user_free(&wd_user);
		return 0;
	}
	if (ret != WD_STORE_ERR_NOT_FOUND && ret != WD_STORE_ERR_INVALID) {
		*error_r = t_strdup_printf("looking up user %s: %s", user->username,
					   error != NULL ? error : "database error");
		free(error);
		return -1;
	}
	free(error);
	error = NULL;
	if (strchr(user->username, '@') != NULL) {
		struct wd_address *address = NULL;
		ret = wd_store_address_resolve(wuser->store, user->username, 0, &address, &error);
		if (ret == 0 && address->has_user) {
			bson_oid_copy(&address->user, &wuser->user_id);
			wd_address_free(&address);
			return 0;
		}
		if (ret == 0)
			wd_address_free(&address);
		if (ret < 0 && ret != WD_STORE_ERR_NOT_FOUND) {
			*error_r = t_strdup_printf("resolving address %s: %s", user->username,
						   error != NULL ? error : "database error");
			free(error);
			return -1;
		}
		free(error);
	}
	*error_r = t_strdup_printf("no WildDuck user %s", user->username);
	return -1;
}

int wildduck_user_connect(struct wildduck_user *wuser, const char **error_r)
{
	if (wuser->connected)
		return 0;
	if (wuser->store == NULL) {
		struct wildduck_store_entry *e = store_open(wuser->user, error_r);
		if (e == NULL)
			return -1;
		wuser->store = e->store;
		wuser->redis_url = e->redis_url;
	}
	if (resolve_user_id(wuser, error_r) < 0)
		return -1;
	bson_oid_to_string(&wuser->user_id, wuser->user_hex);
	wuser->connected = TRUE;
	return 0;
}

struct wildduck_user *wildduck_user_get(struct mail_user *user)
{
	return WILDDUCK_USER_CONTEXT(user);
}

/* For the quota backend plugin (lib11_wildduck_quota_plugin.so), exported
   through the version script: users.storageUsed and the effective quota
   (users.quota, 0 meaning WildDuck's default of 1 GiB). Read once per
   ioloop run: the quota plugin asks several times per command. */
int wildduck_quota_usage(struct mail_user *user, uint64_t *used_r, uint64_t *limit_r,
			 const char **error_r)
{
	struct wildduck_user *wuser = WILDDUCK_USER_CONTEXT(user);
	struct wd_user *wd_user = NULL;
	char *error = NULL;

	if (wuser == NULL) {
		*error_r = "the wildduck plugin is not in mail_plugins";
		return -1;
	}
	if (wuser->quota_read.tv_sec == ioloop_timeval.tv_sec &&
	    wuser->quota_read.tv_usec == ioloop_timeval.tv_usec) {
		*used_r = wuser->quota_used;
		*limit_r = wuser->quota_limit;
		return 0;
	}
	if (wildduck_user_connect(wuser, error_r) < 0)
		return -1;
	int ret = wd_store_user_get(wuser->store, &wuser->user_id, &wd_user, &error);
	if (ret < 0) {
		*error_r = t_strdup_printf("reading the user: %s",
					   error != NULL ? error : "database error");
		free(error);
		return -1;
	}
	free(error);
	wuser->quota_used = wd_user->storage_used < 0 ? 0 : (uint64_t)wd_user->storage_used;
	wuser->quota_limit = wd_user->quota > 0 ? (uint64_t)wd_user->quota :
						  (uint64_t)WD_DEFAULT_MAX_STORAGE;
	wd_user_free(&wd_user);
	wuser->quota_read = ioloop_timeval;
	*used_r = wuser->quota_used;
	*limit_r = wuser->quota_limit;
	return 0;
}

static void wildduck_user_deinit(struct mail_user *user)
{
	struct wildduck_user *wuser = WILDDUCK_USER_CONTEXT(user);

	wildduck_notify_user_deinit(wuser);
	i_free(wuser->connect_error);
	wuser->module_ctx.super.deinit(user);
}

static void wildduck_user_created(struct mail_user *user)
{
	struct mail_user_vfuncs *v = user->vlast;
	struct wildduck_user *wuser;
	const char *value;

	wuser = p_new(user->pool, struct wildduck_user, 1);
	wuser->user = user;
	wuser->module_ctx.super = *v;
	user->vlast = &wuser->module_ctx.super;
	v->deinit = wildduck_user_deinit;

	wuser->poll_secs = setting_secs(user, "wildduck_poll_interval", 30);
	wuser->full_sync_secs = setting_secs(user, "wildduck_full_sync_interval", 3600);
	wuser->max_message_size = 64 * 1024 * 1024;
	value = setting(user, "wildduck_max_message_size");
	if (value != NULL) {
		const char *error;
		if (settings_get_size(value, &wuser->max_message_size, &error) < 0)
			i_error("wildduck: plugin setting wildduck_max_message_size: %s", error);
	}
	wuser->search_pushdown = setting_bool(user, "wildduck_search_pushdown", TRUE);
	wuser->pop3_trash = setting_bool(user, "wildduck_pop3_trash", TRUE);

	MODULE_CONTEXT_SET(user, wildduck_user_module, wuser);
}

static const struct mail_storage_hooks wildduck_user_hooks = {
	.mail_user_created = wildduck_user_created,
};

void wildduck_user_hooks_init(struct module *module)
{
	mail_storage_hooks_add(module, &wildduck_user_hooks);
}

void wildduck_user_hooks_deinit(void)
{
	mail_storage_hooks_remove(&wildduck_user_hooks);
	stores_close();
}
