/* Redis for worker threads: one synchronous hiredis connection per thread
 * and store (hiredis 0.14 contexts are not thread-safe), created on first use
 * from `dbs.redis` ("redis://[:password@]host[:port][/db]"), with connect and
 * command timeouts so a dead Redis never blocks a worker for long.
 *
 * Redis holds only derived or advisory state for the store (notifications,
 * cached counters, locks), so its failure degrades instead of failing: the
 * command returns NULL and the problem is logged at most every 10 s. */
#include "store-private.h"
#include "wd-redis-url.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REDIS_TIMEOUT_MS 2000

struct wd_store_redis {
	char host[256];
	int port;
	int db;
	char password[256];
	pthread_key_t key;
	time_t last_warning;
	pthread_mutex_t warn_lock;
};

static void context_free(void *ctx)
{
	redisFree(ctx);
}

int wd__store_redis_init(struct wd_store_redis **redis_r, const struct wd_config *config,
			 char **error_r)
{
	const char *url, *error;
	if (wd_config_get_string(config, "dbs.redis", "redis://127.0.0.1:6379/3", &url, &error) < 0) {
		*error_r = strdup(error);
		return WD_ERROR;
	}
	struct wd_store_redis *redis = calloc(1, sizeof(*redis));
	if (redis == NULL) {
		*error_r = strdup("out of memory");
		return WD_ERROR;
	}
	struct wd_redis_url parsed;
	char *parse_error = NULL;
	if (wd_redis_url_parse(url, &parsed, &parse_error) < 0) {
		*error_r = wd__store_error("dbs.redis: %s", parse_error);
		free(parse_error);
		free(redis);
		return WD_ERROR;
	}
	snprintf(redis->host, sizeof(redis->host), "%s", parsed.host);
	snprintf(redis->password, sizeof(redis->password), "%s", parsed.password);
	redis->port = parsed.port;
	redis->db = parsed.db;
	pthread_key_create(&redis->key, context_free);
	pthread_mutex_init(&redis->warn_lock, NULL);
	*redis_r = redis;
	return WD_OK;
}

void wd__store_redis_deinit(struct wd_store_redis **_redis)
{
	struct wd_store_redis *redis = *_redis;
	if (redis == NULL)
		return;
	*_redis = NULL;
	redisContext *ctx = pthread_getspecific(redis->key);
	if (ctx != NULL)
		redisFree(ctx);
	pthread_key_delete(redis->key);
	pthread_mutex_destroy(&redis->warn_lock);
	free(redis);
}

static void warn_rate_limited(struct wd_store_redis *redis, const char *what)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&redis->warn_lock);
	bool warn = now - redis->last_warning >= 10;
	if (warn)
		redis->last_warning = now;
	pthread_mutex_unlock(&redis->warn_lock);
	if (warn)
		wd_warning("store", "Redis %s:%d unavailable (%s): notifications and counters "
			   "degrade until it is back", redis->host, redis->port, what);
}

static redisContext *connection(struct wd_store_redis *redis)
{
	redisContext *ctx = pthread_getspecific(redis->key);
	if (ctx != NULL)
		return ctx;
	struct timeval tv = { REDIS_TIMEOUT_MS / 1000, (REDIS_TIMEOUT_MS % 1000) * 1000 };
	ctx = redisConnectWithTimeout(redis->host, redis->port, tv);
	if (ctx == NULL || ctx->err) {
		warn_rate_limited(redis, ctx != NULL ? ctx->errstr : "out of memory");
		redisFree(ctx);
		return NULL;
	}
	redisSetTimeout(ctx, tv);
	redisReply *reply = NULL;
	if (redis->password[0] != '\0') {
		reply = redisCommand(ctx, "AUTH %s", redis->password);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(reply);
	}
	if (redis->db != 0) {
		reply = redisCommand(ctx, "SELECT %d", redis->db);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(reply);
	}
	pthread_setspecific(redis->key, ctx);
	return ctx;
fail:
	warn_rate_limited(redis, reply != NULL ? reply->str : ctx->errstr);
	if (reply != NULL)
		freeReplyObject(reply);
	redisFree(ctx);
	return NULL;
}

static void drop_connection(struct wd_store_redis *redis, redisContext *ctx)
{
	warn_rate_limited(redis, ctx->errstr);
	redisFree(ctx);
	pthread_setspecific(redis->key, NULL);
}

redisReply *wd__store_redis_argv(struct wd_store *store, int argc, const char **argv,
				 const size_t *argv_len)
{
	struct wd_store_redis *redis = wd__store_get_redis(store);
	for (int attempt = 0; attempt < 2; attempt++) {
		redisContext *ctx = connection(redis);
		if (ctx == NULL)
			return NULL;
		redisReply *reply = redisCommandArgv(ctx, argc, argv, argv_len);
		if (reply != NULL)
			return reply;
		drop_connection(redis, ctx);
	}
	return NULL;
}

struct redisReply *wd_store_redis_argv(struct wd_store *store, int argc, const char **argv,
				       const size_t *argv_len)
{
	return wd__store_redis_argv(store, argc, argv, argv_len);
}

redisReply *wd__store_redis(struct wd_store *store, const char *fmt, ...)
{
	struct wd_store_redis *redis = wd__store_get_redis(store);
	for (int attempt = 0; attempt < 2; attempt++) {
		redisContext *ctx = connection(redis);
		if (ctx == NULL)
			return NULL;
		va_list ap;
		va_start(ap, fmt);
		redisReply *reply = redisvCommand(ctx, fmt, ap);
		va_end(ap);
		if (reply != NULL)
			return reply;
		drop_connection(redis, ctx);
	}
	return NULL;
}
