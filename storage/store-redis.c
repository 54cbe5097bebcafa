/* Redis for worker threads: the shared per-thread client of `dbs.redis`
 * (wd-redis-client.h: connect and command timeouts, Redis Sentinel).
 *
 * Redis holds only derived or advisory state for the store (notifications,
 * cached counters, locks), so its failure degrades instead of failing: the
 * command returns NULL and the problem is logged at most every 10 s. */
#include "store-private.h"
#include "wd-redis-client.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wd_store_redis {
	struct wd_redis_client *client;
};

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
	char *client_error = NULL;
	redis->client = wd_redis_client_create(url, "store",
					       "notifications and counters degrade until it is back",
					       &client_error);
	if (redis->client == NULL) {
		*error_r = wd__store_error("dbs.redis: %s",
					   client_error != NULL ? client_error : "out of memory");
		free(client_error);
		free(redis);
		return WD_ERROR;
	}
	*redis_r = redis;
	return WD_OK;
}

void wd__store_redis_deinit(struct wd_store_redis **_redis)
{
	struct wd_store_redis *redis = *_redis;
	if (redis == NULL)
		return;
	*_redis = NULL;
	wd_redis_client_destroy(&redis->client);
	free(redis);
}

redisReply *wd__store_redis_argv(struct wd_store *store, int argc, const char **argv,
				 const size_t *argv_len)
{
	return wd_redis_client_argv(wd__store_get_redis(store)->client, argc, argv, argv_len);
}

struct redisReply *wd_store_redis_argv(struct wd_store *store, int argc, const char **argv,
				       const size_t *argv_len)
{
	return wd__store_redis_argv(store, argc, argv, argv_len);
}

redisReply *wd__store_redis(struct wd_store *store, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *reply = wd_redis_client_vcommand(wd__store_get_redis(store)->client, fmt, ap);
	va_end(ap);
	return reply;
}
