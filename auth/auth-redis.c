/* Redis for libwdauth: the failure counters and used-TOTP-code keys, through
 * the shared per-thread client (wd-redis-client.h: timeouts, Sentinel).
 *
 * Everything kept here is advisory: a missing Redis means no failure
 * counting (logged at most every 10 s), never a refused or hanging login,
 * so error replies are logged and answered as NULL like a dead Redis. */
#include "auth-private.h"
#include "wd-config.h"
#include "wd-redis-client.h"
#include "wd-result.h"

#include <stdarg.h>
#include <stdlib.h>

int wd__auth_redis_init(struct wd_auth *auth, const struct wd_config *config, char **error_r)
{
	const char *url, *error;
	if (wd_config_get_string(config, "dbs.redis", "redis://127.0.0.1:6379/3", &url, &error) < 0)
		return wd__auth_fail(error_r, WD_ERROR, "%s", error);
	char *client_error = NULL;
	auth->redis = wd_redis_client_create(url, "auth", "failure counting is off meanwhile",
					     &client_error);
	if (auth->redis == NULL) {
		int ret = wd__auth_fail(error_r, WD_ERROR, "dbs.redis: %s",
					client_error != NULL ? client_error : "out of memory");
		free(client_error);
		return ret;
	}
	return WD_OK;
}

void wd__auth_redis_deinit(struct wd_auth *auth)
{
	wd_redis_client_destroy(&auth->redis);
}

static redisReply *no_error_reply(struct wd_auth *auth, redisReply *reply)
{
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
		wd_redis_client_warn(auth->redis, reply->str);
		freeReplyObject(reply);
		return NULL;
	}
	return reply;
}

redisReply *wd__auth_redis_argv(struct wd_auth *auth, int argc, const char **argv,
				const size_t *argv_len)
{
	return no_error_reply(auth, wd_redis_client_argv(auth->redis, argc, argv, argv_len));
}

redisReply *wd__auth_redis(struct wd_auth *auth, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *reply = wd_redis_client_vcommand(auth->redis, fmt, ap);
	va_end(ap);
	return no_error_reply(auth, reply);
}
