/* Setup shared by the libwdauth integration tests (see auth-test-stack.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth-test-stack.h"
#include "wd-log.h"
#include "wd-config.h"
#include "wd-store-user.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

struct wd_store *test_store;
struct wd_auth *test_auth;
char test_tag[32];
static char mongo_url[600];
static char db_name[80];
static redisContext *redis;

int64_t test_now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static struct wd_config *make_config(const char *extra)
{
	const char *redis_url = getenv("WD_REDIS_URL");
	char text[2000];
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s\"\n%s%s%s%s\n", mongo_url,
		 redis_url != NULL ? "redis = \"" : "", redis_url != NULL ? redis_url : "",
		 redis_url != NULL ? "\"\n" : "", extra != NULL ? extra : "");
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	if (config == NULL)
		fprintf(stderr, "config: %s\n", error);
	return config;
}

struct wd_auth *test_auth_open(const char *extra)
{
	struct wd_config *config = make_config(extra);
	char *error = NULL;
	struct wd_auth *auth = wd_auth_create(test_store, config, &error);
	if (auth == NULL)
		fprintf(stderr, "auth: %s\n", error);
	wd_config_free(&config);
	return auth;
}

int test_stack_open(const char *prefix, const char *extra)
{
	const char *url = getenv("WD_MONGO_URL");
	struct timeval tv;
	gettimeofday(&tv, NULL);
	srand((unsigned)(tv.tv_usec ^ getpid()));
	snprintf(test_tag, sizeof(test_tag), "%d%04x", (int)getpid(), rand() & 0xffff);
	snprintf(db_name, sizeof(db_name), "%s_%ld_%s", prefix, (long)tv.tv_sec, test_tag);
	const char *scheme_end = strstr(url, "://");
	const char *slash = strchr(scheme_end != NULL ? scheme_end + 3 : url, '/');
	const char *options = strchr(url, '?');
	int host_len = slash != NULL ? (int)(slash - url) :
		       options != NULL ? (int)(options - url) : (int)strlen(url);
	snprintf(mongo_url, sizeof(mongo_url), "%.*s/%s%s", host_len, url, db_name,
		 options != NULL ? options : "");
	struct wd_config *config = make_config(extra);
	if (config == NULL)
		return -1;
	char *error = NULL;
	test_store = wd_store_open(config, &error);
	wd_config_free(&config);
	if (test_store == NULL) {
		fprintf(stderr, "open: %s\n", error);
		return -1;
	}
	struct wd_store_index_report report;
	if (wd_store_ensure_indexes(test_store, &report, &error) < 0) {
		fprintf(stderr, "indexes: %s\n", error);
		return -1;
	}
	test_auth = test_auth_open(extra);
	const char *redis_url = getenv("WD_REDIS_URL");
	if (redis_url != NULL) {
		/* redis://host:port[/db] */
		char host[256] = "127.0.0.1";
		int port = 6379, db = 3;
		const char *p = strstr(redis_url, "://");
		p = p != NULL ? p + 3 : redis_url;
		const char *colon = strchr(p, ':'), *slash2 = strchr(p, '/');
		if (colon != NULL) {
			snprintf(host, sizeof(host), "%.*s", (int)(colon - p), p);
			port = atoi(colon + 1);
		}
		if (slash2 != NULL)
			db = atoi(slash2 + 1);
		else
			db = 0;
		redis = redisConnect(host, port);
		if (redis != NULL && redis->err == 0 && db != 0)
			freeReplyObject(redisCommand(redis, "SELECT %d", db));
	}
	return test_auth != NULL ? 0 : -1;
}

void test_stack_close(void)
{
	wd_auth_destroy(&test_auth);
	if (test_store != NULL) {
		mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_MAIN);
		mongoc_database_t *db = mongoc_client_get_database(client, db_name);
		bson_error_t error;
		if (!mongoc_database_drop(db, &error))
			fprintf(stderr, "drop %s: %s\n", db_name, error.message);
		mongoc_database_destroy(db);
		wd_store_client_release(test_store, WD_STORE_DB_MAIN, client);
		wd_store_close(&test_store);
	}
	if (redis != NULL)
		redisFree(redis);
}

long long test_redis_int(const char *fmt, ...)
{
	if (redis == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	redisReply *reply = redisvCommand(redis, fmt, ap);
	va_end(ap);
	long long v = -1;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
		v = reply->integer;
	else if (reply != NULL && reply->type == REDIS_REPLY_STRING)
		v = atoll(reply->str);
	if (reply != NULL)
		freeReplyObject(reply);
	return v;
}

static mongoc_collection_t *coll_get(enum wd_store_db db, const char *name,
				     mongoc_client_t **client_r)
{
	*client_r = wd_store_client(test_store, db);
	return wd_store_collection(test_store, *client_r, db, name);
}

bson_t *test_find_one(enum wd_store_db db, const char *name, const bson_t *query)
{
	mongoc_client_t *client;
	mongoc_collection_t *coll = coll_get(db, name, &client);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	bson_t *copy = NULL;
	if (mongoc_cursor_next(cursor, &doc))
		copy = bson_copy(doc);
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, db, client);
	return copy;
}

int64_t test_count(enum wd_store_db db, const char *name, const bson_t *query)
{
	mongoc_client_t *client;
	mongoc_collection_t *coll = coll_get(db, name, &client);
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(coll, query, NULL, NULL, NULL, &error);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, db, client);
	return n;
}

void test_update(enum wd_store_db db, const char *name, const bson_t *query, const bson_t *update)
{
	mongoc_client_t *client;
	mongoc_collection_t *coll = coll_get(db, name, &client);
	bson_error_t error;
	if (!mongoc_collection_update_many(coll, query, update, NULL, NULL, &error))
		fprintf(stderr, "update %s: %s\n", name, error.message);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, db, client);
}

bson_oid_t test_user(const char *name, const char *password_hash)
{
	char username[128], address[200];
	snprintf(username, sizeof(username), "%s%s", name, test_tag);
	snprintf(address, sizeof(address), "%s@example.com", username);
	struct wd_user_create req = { .username = username, .address = address,
				      .password_hash = password_hash,
				      .spam_level = WD_DEFAULT_SPAM_LEVEL };
	bson_oid_t id;
	char *error = NULL;
	if (wd_store_user_create(test_store, &req, &id, &error) < 0) {
		fprintf(stderr, "user %s: %s\n", username, error);
		abort();
	}
	return id;
}

static const char *group_prefix, *group_extra;

static int group_setup(void **state)
{
	(void)state;
	return test_stack_open(group_prefix, group_extra);
}

static int group_teardown(void **state)
{
	(void)state;
	test_stack_close();
	return 0;
}

int test_stack_run(const char *ident, const struct CMUnitTest *tests, size_t count,
		   const char *db_prefix, const char *extra_toml)
{
	if (getenv("WD_MONGO_URL") == NULL) {
		fprintf(stderr, "WD_MONGO_URL is not set: start the stack (scripts/stack.sh start)\n");
		return 77;
	}
	wd_log_init(ident, WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_log_set_handler(NULL, NULL);
	group_prefix = db_prefix;
	group_extra = extra_toml;
	return _cmocka_run_group_tests(ident, tests, count, group_setup, group_teardown);
}
