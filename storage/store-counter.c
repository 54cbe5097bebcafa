/* WildDuck's ttlcounter on the store's Redis connection (wd-store-counter.h). */
#include "wd-store-counter.h"

#include "wd-result.h"
#include "wd-store.h"

#include <hiredis/hiredis.h>
#include <stdio.h>

const char wd_store_ttlcounter_script[] =
	"local cur = tonumber(redis.call('GET', KEYS[1])) or 0\n"
	"local inc = tonumber(ARGV[1]) or 0\n"
	"local max = tonumber(ARGV[2]) or 0\n"
	"local win = tonumber(ARGV[3]) or 0\n"
	"if cur >= max then\n"
	"  return {0, cur, tonumber(redis.call('TTL', KEYS[1])) or 0}\n"
	"end\n"
	"if inc > 0 then\n"
	"  local n = tonumber(redis.call('INCRBY', KEYS[1], inc))\n"
	"  if cur == 0 then redis.call('EXPIRE', KEYS[1], win) end\n"
	"  return {1, n, tonumber(redis.call('TTL', KEYS[1])) or 0}\n"
	"end\n"
	"return {1, cur, tonumber(redis.call('TTL', KEYS[1])) or win}\n";

int wd_store_ttlcounter(struct wd_store *store, const char *key, int64_t increment,
			int64_t limit, int64_t window, struct wd_ttlcounter *r)
{
	char inc[24], lim[24], win[24];
	*r = (struct wd_ttlcounter){ .allowed = true };
	snprintf(inc, sizeof(inc), "%lld", (long long)increment);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit);
	snprintf(win, sizeof(win), "%lld", (long long)window);
	const char *argv[] = { "EVAL", wd_store_ttlcounter_script, "1", key, inc, lim, win };
	redisReply *reply = wd_store_redis_argv(store, 7, argv, NULL);
	if (reply == NULL)
		return WD_ERROR;
	int ret = WD_ERROR;
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
	    reply->element[0]->type == REDIS_REPLY_INTEGER &&
	    reply->element[1]->type == REDIS_REPLY_INTEGER &&
	    reply->element[2]->type == REDIS_REPLY_INTEGER) {
		r->allowed = reply->element[0]->integer != 0;
		r->value = reply->element[1]->integer;
		r->ttl = reply->element[2]->integer > 0 ? reply->element[2]->integer : 0;
		ret = WD_OK;
	}
	freeReplyObject(reply);
	return ret;
}
