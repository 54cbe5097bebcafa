/* Opening the store: one mongoc client pool per distinct connection URL, the
 * logical databases of WildDuck's `dbs.*` keys mapped onto them, and the
 * server's capability record (FerretDB or MongoDB) detected once.
 *
 * A `dbs.users`/`dbs.gridfs`/`dbs.sender` value containing "://" is a URL of
 * its own (its own pool unless it names the same server as the main URL);
 * anything else is a database name on the main connection.
 *
 * Every database wait is bounded by `dbs.timeout` (seconds, default 30):
 * socketTimeoutMS (each round trip), and connectTimeoutMS and
 * serverSelectionTimeoutMS (at most 10 s each) are added to every URL that
 * does not set them itself. libmongoc's own socket timeout is 5 minutes: a
 * database that accepts connections and answers nothing (frozen, a network
 * black hole) held every worker thread that long, and nothing answered. With
 * the bound such an operation fails, the caller answers a temporary error
 * (IMAP NO [UNAVAILABLE], LMTP 451), and the pool reconnects by itself when
 * the database is back (tests/faults/test_db_outage.py).
 *
 * Replica sets (a URL with replicaSet= or several hosts) get write concern
 * w=majority with journal unless the URL says otherwise: with w=1 a
 * delivery acknowledged to the MTA can be rolled back when the primary
 * fails before a secondary copied it. A read preference other than primary
 * is logged: another instance's write just announced over Redis may not be
 * on a secondary yet (docs/operations.md). */
#include "store-private.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_db {
	mongoc_client_pool_t *pool; /* borrowed from pools[] */
	char *name;
};

struct wd_store {
	mongoc_client_pool_t *pools[WD_STORE_DB_COUNT];
	unsigned pool_count;
	struct store_db dbs[WD_STORE_DB_COUNT];
	struct wd_store_caps caps;
	struct wd_store_redis *redis;
	char *ferretdb_sqlite;  /* FerretDB's SQLite directory, or NULL */
	pthread_mutex_t lock_stripes[WD_STORE_LOCK_STRIPES];
};

static pthread_once_t mongoc_once = PTHREAD_ONCE_INIT;

static void mongoc_init_once(void)
{
	mongoc_init();
}

char *wd__store_error(const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	return msg;
}

#define STORE_TIMEOUT_DEFAULT_S 30
#define STORE_CONNECT_TIMEOUT_MAX_MS 10000

/* `option` set to `ms` unless the URL sets it. */
static void uri_default_timeout(mongoc_uri_t *uri, const char *option, int32_t ms)
{
	if (!mongoc_uri_has_option(uri, option))
		mongoc_uri_set_option_as_int32(uri, option, ms);
}

void wd__store_uri_defaults(mongoc_uri_t *uri, const char *url_text)
{
	const mongoc_host_list_t *hosts = mongoc_uri_get_hosts(uri);
	bool replica_set = mongoc_uri_get_replica_set(uri) != NULL ||
			   (hosts != NULL && hosts->next != NULL);
	if (!replica_set)
		return;
	const mongoc_write_concern_t *given = mongoc_uri_get_write_concern(uri);
	if (mongoc_write_concern_get_w(given) == MONGOC_WRITE_CONCERN_W_DEFAULT &&
	    mongoc_write_concern_get_wtag(given) == NULL) {
		mongoc_write_concern_t *majority = mongoc_write_concern_new();
		mongoc_write_concern_set_w(majority, MONGOC_WRITE_CONCERN_W_MAJORITY);
		if (!mongoc_write_concern_journal_is_set(given))
			mongoc_write_concern_set_journal(majority, true);
		else
			mongoc_write_concern_set_journal(majority,
							 mongoc_write_concern_get_journal(given));
		mongoc_uri_set_write_concern(uri, majority);
		mongoc_write_concern_destroy(majority);
	}
	const mongoc_read_prefs_t *prefs = mongoc_uri_get_read_prefs_t(uri);
	if (prefs != NULL && mongoc_read_prefs_get_mode(prefs) != MONGOC_READ_PRIMARY)
		wd_warning("store", "%s: a read preference other than primary can miss what "
			   "another instance has just written (docs/operations.md)", url_text);
}

/* A pool for `url_text` whose waits are bounded by `timeout_ms`; the
   database named in the URL goes to *db_name_r (NULL when the URL names
   none). */
static mongoc_client_pool_t *pool_create(const char *url_text, int32_t timeout_ms,
					 char **db_name_r, char **error_r)
{
	bson_error_t error;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(url_text, &error);
	if (uri == NULL) {
		*error_r = wd__store_error("invalid MongoDB URL \"%s\": %s", url_text, error.message);
		return NULL;
	}
	/* Fail within the bound when the server is down or stuck instead of
	   mongoc's defaults (30 s selection, 5 min socket). */
	int32_t connect_ms = timeout_ms < STORE_CONNECT_TIMEOUT_MAX_MS ? timeout_ms
								       : STORE_CONNECT_TIMEOUT_MAX_MS;
	uri_default_timeout(uri, MONGOC_URI_SOCKETTIMEOUTMS, timeout_ms);
	uri_default_timeout(uri, MONGOC_URI_CONNECTTIMEOUTMS, connect_ms);
	uri_default_timeout(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, connect_ms);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
		mongoc_uri_set_appname(uri, "wildduck-c");
	wd__store_uri_defaults(uri, url_text);
	const char *db = mongoc_uri_get_database(uri);
	*db_name_r = db != NULL && db[0] != '\0' ? strdup(db) : NULL;
	mongoc_client_pool_t *pool = mongoc_client_pool_new(uri);
	mongoc_uri_destroy(uri);
	if (pool == NULL) {
		free(*db_name_r);
		*error_r = wd__store_error("cannot create a client pool for \"%s\"", url_text);
		return NULL;
	}
	mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
	return pool;
}

static int detect_caps(struct wd_store *store, char **error_r)
{
	struct wd_store_caps *caps = &store->caps;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	bson_t cmd = BSON_INITIALIZER, reply;
	bson_error_t error;
	BSON_APPEND_INT32(&cmd, "buildInfo", 1);
	bool ok = mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply, &error);
	bson_destroy(&cmd);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (!ok) {
		bson_destroy(&reply);
		*error_r = wd__store_error("cannot reach the database: %s", error.message);
		return WD_ERROR;
	}
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, &reply, "version") && BSON_ITER_HOLDS_UTF8(&iter))
		snprintf(caps->version, sizeof(caps->version), "%s", bson_iter_utf8(&iter, NULL));
	/* FerretDB 1.x answers "ferretdbVersion" and "ferretdbFeatures" (older
	   releases a "ferretdb" document): any such key means FerretDB. */
	if (bson_iter_init(&iter, &reply)) {
		while (bson_iter_next(&iter)) {
			if (strncmp(bson_iter_key(&iter), "ferretdb", 8) != 0)
				continue;
			caps->ferretdb = true;
			if (strcmp(bson_iter_key(&iter), "ferretdbVersion") == 0 &&
			    BSON_ITER_HOLDS_UTF8(&iter))
				snprintf(caps->ferretdb_version, sizeof(caps->ferretdb_version), "%s",
					 bson_iter_utf8(&iter, NULL));
		}
	}
	bson_destroy(&reply);
	/* FerretDB 1.x limits (reference §8); MongoDB has them all. */
	bool mongodb = !caps->ferretdb;
	caps->nested_arrays = mongodb;
	caps->text_indexes = mongodb;
	caps->partial_indexes = mongodb;
	caps->hashed_indexes = mongodb;
	caps->ttl_enforced = mongodb;
	caps->nul_in_strings = mongodb;
	caps->atomic_updates = mongodb;
	caps->elem_match_fields = mongodb;
	if (caps->ferretdb)
		wd_info("store", "database server: FerretDB %s (MongoDB %s wire compatibility)",
			caps->ferretdb_version, caps->version);
	else
		wd_info("store", "database server: MongoDB %s", caps->version);
	return WD_OK;
}

static int config_string(const struct wd_config *config, const char *key, const char *def,
			 const char **value_r, char **error_r)
{
	const char *error;
	if (wd_config_get_string(config, key, def, value_r, &error) < 0) {
		*error_r = strdup(error);
		return WD_ERROR;
	}
	return WD_OK;
}

struct wd_store *wd_store_open(const struct wd_config *config, char **error_r)
{
	static const char *const keys[WD_STORE_DB_COUNT] = {
		[WD_STORE_DB_MAIN] = "dbs.mongo",
		[WD_STORE_DB_USERS] = "dbs.users",
		[WD_STORE_DB_GRIDFS] = "dbs.gridfs",
		[WD_STORE_DB_SENDER] = "dbs.sender",
	};
	pthread_once(&mongoc_once, mongoc_init_once);
	*error_r = NULL;
	struct wd_store *store = calloc(1, sizeof(*store));
	if (store == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	for (int i = 0; i < WD_STORE_LOCK_STRIPES; i++)
		pthread_mutex_init(&store->lock_stripes[i], NULL);
	const char *main_url;
	if (config_string(config, keys[WD_STORE_DB_MAIN], "mongodb://127.0.0.1:27017/wildduck",
			  &main_url, error_r) < 0)
		goto fail;
	int64_t timeout_s;
	const char *timeout_error;
	if (wd_config_get_int(config, "dbs.timeout", STORE_TIMEOUT_DEFAULT_S, &timeout_s,
			      &timeout_error) < 0 || timeout_s < 1 || timeout_s > 3600) {
		*error_r = strdup("dbs.timeout: expected 1..3600 seconds");
		goto fail;
	}
	int32_t timeout_ms = (int32_t)timeout_s * 1000;
	char *main_db = NULL;
	mongoc_client_pool_t *main_pool = pool_create(main_url, timeout_ms, &main_db, error_r);
	if (main_pool == NULL)
		goto fail;
	store->pools[store->pool_count++] = main_pool;
	store->dbs[WD_STORE_DB_MAIN].pool = main_pool;
	store->dbs[WD_STORE_DB_MAIN].name = main_db != NULL ? main_db : strdup("wildduck");

	for (int db = WD_STORE_DB_USERS; db < WD_STORE_DB_COUNT; db++) {
		const char *value;
		const char *def = db == WD_STORE_DB_SENDER ? "zone-mta" : NULL;
		if (config_string(config, keys[db], def, &value, error_r) < 0)
			goto fail;
		struct store_db *sdb = &store->dbs[db];
		if (value == NULL || value[0] == '\0') {
			sdb->pool = main_pool;
			sdb->name = strdup(store->dbs[WD_STORE_DB_MAIN].name);
		} else if (strstr(value, "://") != NULL) {
			char *name = NULL;
			mongoc_client_pool_t *pool = pool_create(value, timeout_ms, &name, error_r);
			if (pool == NULL)
				goto fail;
			store->pools[store->pool_count++] = pool;
			sdb->pool = pool;
			sdb->name = name != NULL ? name : strdup(store->dbs[WD_STORE_DB_MAIN].name);
		} else {
			sdb->pool = main_pool;
			sdb->name = strdup(value);
		}
		if (sdb->name == NULL) {
			*error_r = strdup("out of memory");
			goto fail;
		}
	}
	if (wd__store_redis_init(&store->redis, config, error_r) < 0)
		goto fail;
	/* FerretDB's SQLite directory (store-ferretdb-sqlite.c); the environment
	   variable is what scripts/stack.sh prints, for tools and tests. */
	const char *sqlite_dir;
	if (config_string(config, "dbs.ferretdbSqlite", NULL, &sqlite_dir, error_r) < 0)
		goto fail;
	if (sqlite_dir == NULL || sqlite_dir[0] == '\0')
		sqlite_dir = getenv("WD_FERRETDB_SQLITE");
	if (sqlite_dir != NULL && sqlite_dir[0] != '\0')
		store->ferretdb_sqlite = strdup(sqlite_dir);
	if (detect_caps(store, error_r) < 0)
		goto fail;
	return store;
fail:
	wd_store_close(&store);
	return NULL;
}

void wd_store_close(struct wd_store **_store)
{
	struct wd_store *store = *_store;
	if (store == NULL)
		return;
	*_store = NULL;
	for (int db = 0; db < WD_STORE_DB_COUNT; db++)
		free(store->dbs[db].name);
	for (unsigned i = 0; i < store->pool_count; i++)
		mongoc_client_pool_destroy(store->pools[i]);
	wd__store_redis_deinit(&store->redis);
	for (int i = 0; i < WD_STORE_LOCK_STRIPES; i++)
		pthread_mutex_destroy(&store->lock_stripes[i]);
	free(store->ferretdb_sqlite);
	free(store);
}

pthread_mutex_t *wd__store_lock_stripe(struct wd_store *store, const char *name)
{
	uint32_t hash = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		hash = (hash ^ *p) * 16777619u;
	return &store->lock_stripes[hash % WD_STORE_LOCK_STRIPES];
}

struct wd_store_redis *wd__store_get_redis(struct wd_store *store)
{
	return store->redis;
}

const struct wd_store_caps *wd_store_caps(const struct wd_store *store)
{
	return &store->caps;
}

const char *wd__store_ferretdb_sqlite(const struct wd_store *store)
{
	return store->ferretdb_sqlite;
}

const char *wd_store_db_name(const struct wd_store *store, enum wd_store_db db)
{
	return store->dbs[db].name;
}

mongoc_client_t *wd_store_client(struct wd_store *store, enum wd_store_db db)
{
	return mongoc_client_pool_pop(store->dbs[db].pool);
}

void wd_store_client_release(struct wd_store *store, enum wd_store_db db, mongoc_client_t *client)
{
	mongoc_client_pool_push(store->dbs[db].pool, client);
}

mongoc_collection_t *wd_store_collection(struct wd_store *store, mongoc_client_t *client,
					 enum wd_store_db db, const char *name)
{
	return mongoc_client_get_collection(client, store->dbs[db].name, name);
}
