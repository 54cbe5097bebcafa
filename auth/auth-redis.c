/* Redis for libwdauth: one synchronous hiredis connection per thread (hiredis
 * 0.14 contexts are not thread-safe), made on first use from `dbs.redis`,
 * with connect and command timeouts so a dead Redis costs a worker at most
 * a moment.
 *
 * libwdstore keeps its Redis connection private, so the failure counters
 * and used-TOTP-code keys go through this small twin. Everything kept here is
 * advisory: a missing Redis means no failure counting (logged at most every
 * 10 s), never a refused or hanging login. */
#include "wd-redis-url.h"
#include "auth-private.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define AUTH_REDIS_TIMEOUT_MS 2000

static void context_free(void *ctx)
{
	redisFree(ctx);
}

static int parse_url(struct wd_auth *auth, const char *url, char **error_r)
{
	struct wd_redis_url parsed;
	char *parse_error = NULL;
	if (wd_redis_url_parse(url, &parsed, &parse_error) < 0) {
		int ret = wd__auth_fail(error_r, WD_ERROR, "dbs.redis: %s", parse_error);
		free(parse_error);
		return ret;
	}
	snprintf(auth->redis_host, sizeof(auth->redis_host), "%s", parsed.host);
	snprintf(auth->redis_password, sizeof(auth->redis_password), "%s", parsed.password);
	auth->redis_port = parsed.port;
	auth->redis_db = parsed.db;
	return WD_OK;
}

int wd__auth_redis_init(struct wd_auth *auth, const struct wd_config *config, char **error_r)
{
	const char *url, *error;
	if (wd_config_get_string(config, "dbs.redis", "redis://127.0.0.1:6379/3", &url, &error) < 0)
		return wd__auth_fail(error_r, WD_ERROR, "%s", error);
	if (parse_url(auth, url, error_r) < 0)
		return WD_ERROR;
	if (pthread_key_create(&auth->redis_key, context_free) != 0)
		return wd__auth_fail(error_r, WD_ERROR, "pthread_key_create failed");
	return WD_OK;
}

void wd__auth_redis_deinit(struct wd_auth *auth)
{
	redisContext *ctx = pthread_getspecific(auth->redis_key);
	if (ctx != NULL) {
		redisFree(ctx);
		pthread_setspecific(auth->redis_key, NULL);
	}
	pthread_key_delete(auth->redis_key);
}

static void warn_throttled(struct wd_auth *auth, const char *what)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&auth->lock);
	bool warn = now - auth->redis_warned >= 10;
	if (warn)
		auth->redis_warned = now;
	pthread_mutex_unlock(&auth->lock);
	if (warn)
		wd_warning("auth", "redis %s:%d: %s (failure counting is off meanwhile)",
			   auth->redis_host, auth->redis_port, what);
}

static redisContext *connect_thread(struct wd_auth *auth)
{
	struct timeval tv = { AUTH_REDIS_TIMEOUT_MS / 1000, (AUTH_REDIS_TIMEOUT_MS % 1000) * 1000 };
	redisContext *ctx = redisConnectWithTimeout(auth->redis_host, auth->redis_port, tv);
	if (ctx == NULL || ctx->err != 0) {
		warn_throttled(auth, ctx != NULL ? ctx->errstr : "out of memory");
		redisFree(ctx);
		return NULL;
	}
	redisSetTimeout(ctx, tv);
	redisReply *reply = NULL;
	if (auth->redis_password[0] != '\0') {
		reply = redisCommand(ctx, "AUTH %s", auth->redis_password);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
			goto failed;
		freeReplyObject(reply);
	}
	if (auth->redis_db != 0) {
		reply = redisCommand(ctx, "SELECT %d", auth->redis_db);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
			goto failed;
		freeReplyObject(reply);
	}
	return ctx;
failed:
	warn_throttled(auth, reply != NULL ? reply->str : ctx->errstr);
	if (reply != NULL)
		freeReplyObject(reply);
	redisFree(ctx);
	return NULL;
}

redisReply *wd__auth_redis_argv(struct wd_auth *auth, int argc, const char **argv,
				const size_t *argv_len)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		redisContext *ctx = pthread_getspecific(auth->redis_key);
		if (ctx == NULL) {
			ctx = connect_thread(auth);
			if (ctx == NULL)
				return NULL;
			pthread_setspecific(auth->redis_key, ctx);
		}
		redisReply *reply = redisCommandArgv(ctx, argc, argv, argv_len);
		if (reply != NULL) {
			if (reply->type != REDIS_REPLY_ERROR)
				return reply;
			warn_throttled(auth, reply->str);
			freeReplyObject(reply);
			return NULL;
		}
		/* connection broken: drop it and try once more */
		warn_throttled(auth, ctx->errstr);
		redisFree(ctx);
		pthread_setspecific(auth->redis_key, NULL);
	}
	return NULL;
}

redisReply *wd__auth_redis(struct wd_auth *auth, const char *fmt, ...)
{
	/* formatted once, sent through the argv path for its retry */
	char *cmd = NULL;
	va_list ap;
	va_start(ap, fmt);
	int len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len < 0)
		return NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		redisContext *ctx = pthread_getspecific(auth->redis_key);
		if (ctx == NULL) {
			ctx = connect_thread(auth);
			if (ctx == NULL)
				break;
			pthread_setspecific(auth->redis_key, ctx);
		}
		void *reply = NULL;
		if (redisAppendFormattedCommand(ctx, cmd, (size_t)len) == REDIS_OK &&
		    redisGetReply(ctx, &reply) == REDIS_OK && reply != NULL) {
			redisReply *r = reply;
			free(cmd);
			if (r->type != REDIS_REPLY_ERROR)
				return r;
			warn_throttled(auth, r->str);
			freeReplyObject(r);
			return NULL;
		}
		warn_throttled(auth, ctx->errstr);
		redisFree(ctx);
		pthread_setspecific(auth->redis_key, NULL);
	}
	free(cmd);
	return NULL;
}
