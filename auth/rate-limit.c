/* Failure counting in Redis with WildDuck's ttlcounter semantics: read the
 * counter; at or over the limit answer "blocked" with the key's TTL;
 * otherwise add the increment, and start the window (EXPIRE) when the
 * counter was zero before. Done in one EVAL so that concurrent logins of
 * several processes (C or Node) cannot interleave between read and write:
 * storage's script (wd-store-counter.h), run on libwdauth's own Redis
 * connection. */
#include "wd-auth-ratelimit.h"
#include "auth-private.h"
#include "wd-store-counter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool whitelisted(struct wd_auth *auth, const char *ip)
{
	if (ip == NULL || ip[0] == '\0')
		return false;
	redisReply *reply = wd__auth_redis(auth, "SISMEMBER rl-wl %s", ip);
	bool member = reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
	if (reply != NULL)
		freeReplyObject(reply);
	return member;
}

static void ttlcounter(struct wd_auth *auth, const char *key, int count, int64_t max,
		       int window, struct wd_auth_limit *limit_r)
{
	*limit_r = (struct wd_auth_limit){ .allowed = true };
	if (max <= 0)
		return;
	redisReply *reply = wd__auth_redis(auth, "EVAL %s 1 %s %d %lld %d", wd_store_ttlcounter_script, key,
					   count, (long long)max, window);
	if (reply == NULL)
		return;
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
		limit_r->allowed = reply->element[0]->integer != 0;
		limit_r->value = reply->element[1]->integer;
		limit_r->ttl = reply->element[2]->integer;
	}
	freeReplyObject(reply);
}

void wd_auth_limit_user(struct wd_auth *auth, const char *token, const char *ip, int count,
			struct wd_auth_limit *limit_r)
{
	*limit_r = (struct wd_auth_limit){ .allowed = true };
	if (whitelisted(auth, ip))
		return;
	char key[600];
	snprintf(key, sizeof(key), "auth_user:%s", token);
	ttlcounter(auth, key, count, auth->user_failures, WD_AUTH_USER_WINDOW, limit_r);
}

void wd_auth_limit_ip(struct wd_auth *auth, const char *ip, int count,
		      struct wd_auth_limit *limit_r)
{
	*limit_r = (struct wd_auth_limit){ .allowed = true };
	if (auth->ip_failures <= 0 || ip == NULL || ip[0] == '\0' || whitelisted(auth, ip))
		return;
	char key[300];
	snprintf(key, sizeof(key), "auth_ip:%s", ip);
	ttlcounter(auth, key, count, auth->ip_failures, WD_AUTH_IP_WINDOW, limit_r);
}

void wd_auth_limit_release(struct wd_auth *auth, const char *token)
{
	char key[600];
	snprintf(key, sizeof(key), "auth_user:%s", token);
	redisReply *reply = wd__auth_redis(auth, "DEL %s", key);
	if (reply != NULL)
		freeReplyObject(reply);
}

void wd_auth_limit_message(int64_t ttl, char *buf, size_t size)
{
	static const struct {
		int64_t seconds;
		const char *one, *many;
	} units[] = {
		{ 86400, "day", "days" },
		{ 3600, "hour", "hours" },
		{ 60, "minute", "minutes" },
		{ 1, "second", "seconds" },
	};
	if (ttl < 1)
		ttl = 1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		int64_t n = ttl / units[i].seconds;
		if (n > 0) {
			snprintf(buf, size, "Authentication was rate limited. Try again in %lld %s.",
				 (long long)n, n == 1 ? units[i].one : units[i].many);
			return;
		}
	}
}
