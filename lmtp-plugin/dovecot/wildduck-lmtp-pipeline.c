/* The delivery pipeline of an lmtp process, built from plugin { } settings:
 * the configuration, libwdstore, libwdauth, the outbound queue and
 * libwddeliver over them, wired exactly as wd-server's LMTP service does
 * (server/lmtp/lmtp-service.c), so both deliver alike.
 *
 * Settings (plugin { }, the lmtp service's, read from client->user_set;
 * the first four are the storage plugin's, so one block serves both):
 *   wildduck_config            a wd-server TOML file (WildDuck's key names)
 *   wildduck_mongo             overrides dbs.mongo
 *   wildduck_redis             overrides dbs.redis
 *   wildduck_ferretdb_sqlite   overrides dbs.ferretdbSqlite
 *   wildduck_lmtp_settings     more overrides, space-separated dotted
 *                              key=value pairs with TOML values as on
 *                              wd-server's command line, e.g.
 *                              "lmtp.overQuota=defer dbs.sender=zone-mta"
 *   wildduck_lmtp_db_timeout   bound of every MongoDB wait (default 30s):
 *                              connectTimeoutMS, socketTimeoutMS and
 *                              serverSelectionTimeoutMS of each URL that
 *                              does not set them itself
 *   wildduck_lmtp_outbound     queue forwards and autoreplies in the
 *                              outbound queue (default yes; "no" drops
 *                              them, and each message-log line says so)
 *
 * A pipeline is opened on first use and kept until the plugin unloads, one
 * per distinct settings (normally one per process). Opening fails while
 * MongoDB is unreachable (libwdstore reads the server's capabilities); the
 * next client or RCPT tries again, at most every 10 seconds (in between
 * they fail at once instead of waiting for the timeout again). */
#include "wildduck-lmtp.h"

#include "str.h"
#include "ioloop.h"
#include "settings-parser.h"
#include "mail-user.h"

#include "wd-auth.h"
#include "wd-config.h"
#include "wd-deliver.h"
#include "wd-outbound.h"
#include "wd-store.h"

#include <stdlib.h>

#define DEFAULT_DB_TIMEOUT_SECS 30
#define DEFAULT_MAX_RECIPIENTS 400 /* lmtp.maxRecipients, as wd-server */

struct pipeline_entry {
	struct pipeline_entry *next;
	char *signature;
	struct wildduck_lmtp_pipeline pipeline;
	struct wd_config *config;
	struct wd_store *store;
	struct wd_auth *auth;
	struct wd_outbound *outbound;
};

static struct pipeline_entry *pipelines;

/* the last failed attempt to open a pipeline */
#define RETRY_SECS 10
static struct {
	char *signature;
	char *error;
	time_t when;
} last_failure;

static const char *setting(struct client *client, const char *name)
{
	const char *value = mail_user_set_plugin_getenv(client->user_set, name);
	return value != NULL && *value != '\0' ? value : NULL;
}

static void entry_free(struct pipeline_entry *e)
{
	wd_deliver_destroy(&e->pipeline.deliver);
	wd_outbound_destroy(&e->outbound);
	wd_auth_destroy(&e->auth);
	wd_store_close(&e->store);
	wd_config_free(&e->config);
	i_free(e->signature);
	i_free(e);
}

/* ---- the configuration ---- */

/* Sets `key` to a string (so a URL is never read as another type). */
static int config_set_string(struct wd_config *config, const char *key, const char *value,
			     const char *origin, const char **error_r)
{
	char *error = NULL;

	if (wd_config_set_string(config, key, value, origin, &error) < 0) {
		*error_r = t_strdup_printf("%s: %s", origin, error);
		free(error);
		return -1;
	}
	return 0;
}

/* wildduck_lmtp_settings: "a.b=value c.d=value" */
static int config_apply_overrides(struct wd_config *config, const char *list,
				  const char **error_r)
{
	for (const char *const *arg = t_strsplit_spaces(list, " "); *arg != NULL; arg++) {
		const char *eq = strchr(*arg, '=');
		char *error = NULL;
		if (eq == NULL || eq == *arg || strchr(t_strdup_until(*arg, eq), '.') == NULL) {
			*error_r = t_strdup_printf("wildduck_lmtp_settings: '%s' is not "
						   "a dotted key=value", *arg);
			return -1;
		}
		if (wd_config_set(config, t_strdup_until(*arg, eq), eq + 1,
				  "plugin wildduck_lmtp_settings", &error) < 0) {
			*error_r = t_strdup_printf("wildduck_lmtp_settings: %s", error);
			free(error);
			return -1;
		}
	}
	return 0;
}

static bool url_has_option(const char *url, const char *name)
{
	const char *query = strchr(url, '?');
	size_t len = strlen(name);

	if (query == NULL)
		return FALSE;
	for (const char *p = query + 1; *p != '\0';) {
		if (strncasecmp(p, name, len) == 0 && p[len] == '=')
			return TRUE;
		p += strcspn(p, "&;");
		if (*p != '\0')
			p++;
	}
	return FALSE;
}

/* `url` with the three timeouts it does not set itself. */
static const char *url_with_timeouts(const char *url, unsigned int msecs)
{
	static const char *const options[] = {
		"connectTimeoutMS", "socketTimeoutMS", "serverSelectionTimeoutMS",
	};
	const char *hosts = strstr(url, "://");
	string_t *str = t_str_new(strlen(url) + 100);
	bool has_query = strchr(url, '?') != NULL;

	str_append(str, url);
	/* "mongodb://host" has no path: options need "/?" */
	if (!has_query && strchr(hosts + 3, '/') == NULL)
		str_append_c(str, '/');
	for (unsigned int i = 0; i < N_ELEMENTS(options); i++) {
		if (url_has_option(url, options[i]))
			continue;
		str_append_c(str, has_query ? '&' : '?');
		has_query = TRUE;
		str_printfa(str, "%s=%u", options[i], msecs);
	}
	return str_c(str);
}

static int config_apply_timeouts(struct wd_config *config, unsigned int msecs,
				 const char **error_r)
{
	/* libwdstore's URL keys; a value without "://" is a database name on
	   the main connection */
	static const char *const keys[] = { "dbs.mongo", "dbs.users", "dbs.gridfs", "dbs.sender" };

	for (unsigned int i = 0; i < N_ELEMENTS(keys); i++) {
		const char *value, *error;
		const char *def = i == 0 ? "mongodb://127.0.0.1:27017/wildduck" : NULL;
		if (wd_config_get_string(config, keys[i], def, &value, &error) < 0) {
			*error_r = error;
			return -1;
		}
		if (value == NULL || strstr(value, "://") == NULL)
			continue;
		if (config_set_string(config, keys[i], url_with_timeouts(value, msecs),
				      "plugin wildduck_lmtp_db_timeout", error_r) < 0)
			return -1;
	}
	return 0;
}

static struct wd_config *config_build(struct client *client, const char **error_r)
{
	static const struct {
		const char *setting, *key;
	} overrides[] = {
		{ .setting = "wildduck_mongo", .key = "dbs.mongo" },
		{ .setting = "wildduck_redis", .key = "dbs.redis" },
		{ .setting = "wildduck_ferretdb_sqlite", .key = "dbs.ferretdbSqlite" },
	};
	const char *file = setting(client, "wildduck_config");
	const char *list = setting(client, "wildduck_lmtp_settings");
	const char *timeout = setting(client, "wildduck_lmtp_db_timeout");
	unsigned int secs = DEFAULT_DB_TIMEOUT_SECS;
	struct wd_config *config;
	char *error = NULL;

	if (timeout != NULL) {
		const char *terror;
		if (settings_get_time(timeout, &secs, &terror) < 0 || secs == 0 || secs > 3600) {
			*error_r = t_strdup_printf("wildduck_lmtp_db_timeout: %s",
						   secs == 0 || secs > 3600 ?
						   "1s..1h" : terror);
			return NULL;
		}
	}
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
	for (unsigned int i = 0; i < N_ELEMENTS(overrides); i++) {
		const char *value = setting(client, overrides[i].setting);
		if (value != NULL &&
		    config_set_string(config, overrides[i].key, value,
				      t_strconcat("plugin ", overrides[i].setting, NULL),
				      error_r) < 0) {
			wd_config_free(&config);
			return NULL;
		}
	}
	if ((list != NULL && config_apply_overrides(config, list, error_r) < 0) ||
	    config_apply_timeouts(config, secs * 1000, error_r) < 0) {
		wd_config_free(&config);
		return NULL;
	}
	return config;
}

/* ---- opening ---- */

static int parse_bool(const char *value, bool *result_r)
{
	if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0 ||
	    strcmp(value, "1") == 0)
		*result_r = TRUE;
	else if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0 ||
		 strcmp(value, "0") == 0)
		*result_r = FALSE;
	else
		return -1;
	return 0;
}

static int entry_open(struct pipeline_entry *e, struct client *client, const char **error_r)
{
	const char *cerror;
	char *error = NULL;
	int64_t max_rcpt;
	bool outbound = TRUE;
	const char *value = setting(client, "wildduck_lmtp_outbound");

	if (value != NULL && parse_bool(value, &outbound) < 0) {
		*error_r = t_strdup_printf("wildduck_lmtp_outbound: yes or no, not '%s'", value);
		return -1;
	}
	e->config = config_build(client, error_r);
	if (e->config == NULL)
		return -1;
	if (wd_config_get_int(e->config, "lmtp.maxRecipients", DEFAULT_MAX_RECIPIENTS,
			      &max_rcpt, &cerror) < 0) {
		*error_r = cerror;
		return -1;
	}
	if (max_rcpt < 1 || max_rcpt > 100000) {
		*error_r = "lmtp.maxRecipients: 1..100000";
		return -1;
	}
	e->pipeline.max_recipients = (unsigned int)max_rcpt;

	e->store = wd_store_open(e->config, &error);
	if (e->store != NULL)
		e->auth = wd_auth_create(e->store, e->config, &error);
	if (e->auth != NULL && outbound)
		e->outbound = wd_outbound_create(e->store, e->config, &error);
	if (e->auth != NULL && (e->outbound != NULL || !outbound))
		e->pipeline.deliver = wd_deliver_create(e->store, e->auth, e->config, &error);
	if (e->pipeline.deliver == NULL) {
		*error_r = t_strdup(error != NULL ? error : "cannot open the pipeline");
		free(error);
		return -1;
	}
	/* forwards and autoreplies to the outbound queue (ZoneMTA's format),
	   which wd-server's sender or a ZoneMTA delivers */
	if (e->outbound != NULL)
		wd_deliver_set_outbound(e->pipeline.deliver, e->outbound);
	e->pipeline.max_size = wd_deliver_max_size(e->pipeline.deliver);
	return 0;
}

static const char *settings_signature(struct client *client)
{
	static const char *const names[] = {
		"wildduck_config", "wildduck_mongo", "wildduck_redis",
		"wildduck_ferretdb_sqlite", "wildduck_lmtp_settings",
		"wildduck_lmtp_db_timeout", "wildduck_lmtp_outbound",
	};
	string_t *str = t_str_new(256);

	for (unsigned int i = 0; i < N_ELEMENTS(names); i++) {
		const char *value = setting(client, names[i]);
		str_printfa(str, "%s\n", value == NULL ? "" : value);
	}
	return str_c(str);
}

struct wildduck_lmtp_pipeline *
wildduck_lmtp_pipeline_get(struct client *client, const char **error_r)
{
	const char *signature = settings_signature(client);

	for (struct pipeline_entry *e = pipelines; e != NULL; e = e->next) {
		if (strcmp(e->signature, signature) == 0)
			return &e->pipeline;
	}
	/* while the database is down each attempt waits for the timeout:
	   not more often than every RETRY_SECS (the RCPTs of one transaction
	   get their 451 at once) */
	if (last_failure.error != NULL && strcmp(last_failure.signature, signature) == 0 &&
	    ioloop_time - last_failure.when < RETRY_SECS) {
		*error_r = t_strdup_printf("%s (tried %ld s ago)", last_failure.error,
					   (long)(ioloop_time - last_failure.when));
		return NULL;
	}

	struct pipeline_entry *e = i_new(struct pipeline_entry, 1);
	if (entry_open(e, client, error_r) < 0) {
		entry_free(e);
		i_free(last_failure.error);
		i_free(last_failure.signature);
		last_failure.error = i_strdup(*error_r);
		last_failure.signature = i_strdup(signature);
		last_failure.when = ioloop_time;
		return NULL;
	}
	e->signature = i_strdup(signature);
	e->next = pipelines;
	pipelines = e;
	return &e->pipeline;
}

void wildduck_lmtp_pipelines_close(void)
{
	i_free(last_failure.error);
	i_free(last_failure.signature);
	while (pipelines != NULL) {
		struct pipeline_entry *e = pipelines;
		pipelines = e->next;
		entry_free(e);
	}
}
