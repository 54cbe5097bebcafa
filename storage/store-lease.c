/* Session leases in Redis sorted sets (wd-store-lease.h). Claim and renew
 * run as Lua scripts so that "drop expired, count, add" is atomic and the
 * clock is Redis's own (TIME; Redis 5+ replicates script effects, so a
 * non-deterministic TIME before writes is allowed). */
#include "wd-store-lease.h"

#include "store-private.h"
#include "wd-result.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOLDER 128
/* renewals per script call: bounds the argv built for one user */
#define RENEW_BATCH 256

/* KEYS[1] set; ARGV holder, limit, lease ms. 1 granted, 0 refused. */
static const char claim_script[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
	"local limit = tonumber(ARGV[2])\n"
	"if limit > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) and\n"
	"   redis.call('ZCARD', KEYS[1]) >= limit then return 0 end\n"
	"local lease = tonumber(ARGV[3])\n"
	"redis.call('ZADD', KEYS[1], now + lease, ARGV[1])\n"
	"redis.call('PEXPIRE', KEYS[1], lease)\n"
	"return 1\n";

/* KEYS[1] set; ARGV lease ms, holders... */
static const char renew_script[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local lease = tonumber(ARGV[1])\n"
	"for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + lease, ARGV[i]) end\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
	"redis.call('PEXPIRE', KEYS[1], lease)\n"
	"return 1\n";

/* KEYS[1] set. Live members. */
static const char count_script[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')\n";

static void lease_key(char *buf, size_t size, const char *kind, const bson_oid_t *user)
{
	char hex[25];
	bson_oid_to_string(user, hex);
	snprintf(buf, size, "wdc:lease:%s:%s", kind, hex);
}

enum wd_lease_result wd_store_lease_claim(struct wd_store *store, const char *kind,
					  const bson_oid_t *user, const char *holder,
					  unsigned limit, unsigned lease_ms)
{
	char key[96], limit_s[16], lease_s[16];
	if (strlen(holder) > MAX_HOLDER)
		return WD_LEASE_UNAVAILABLE;
	lease_key(key, sizeof(key), kind, user);
	snprintf(limit_s, sizeof(limit_s), "%u", limit);
	snprintf(lease_s, sizeof(lease_s), "%u", lease_ms);
	const char *argv[] = { "EVAL", claim_script, "1", key, holder, limit_s, lease_s };
	redisReply *reply = wd_store_redis_argv(store, 7, argv, NULL);
	if (reply == NULL)
		return WD_LEASE_UNAVAILABLE;
	enum wd_lease_result result = WD_LEASE_UNAVAILABLE;
	if (reply->type == REDIS_REPLY_INTEGER)
		result = reply->integer == 1 ? WD_LEASE_GRANTED : WD_LEASE_REFUSED;
	freeReplyObject(reply);
	return result;
}

static enum wd_lease_result renew_batch(struct wd_store *store, const char *key,
					const char *lease_s, const char *const *holders,
					size_t count)
{
	const char *argv[5 + RENEW_BATCH];
	argv[0] = "EVAL";
	argv[1] = renew_script;
	argv[2] = "1";
	argv[3] = key;
	argv[4] = lease_s;
	for (size_t i = 0; i < count; i++)
		argv[5 + i] = holders[i];
	redisReply *reply = wd_store_redis_argv(store, (int)(5 + count), argv, NULL);
	if (reply == NULL)
		return WD_LEASE_UNAVAILABLE;
	enum wd_lease_result result = reply->type == REDIS_REPLY_INTEGER ? WD_LEASE_GRANTED :
									   WD_LEASE_UNAVAILABLE;
	freeReplyObject(reply);
	return result;
}

enum wd_lease_result wd_store_lease_renew(struct wd_store *store, const char *kind,
					  const bson_oid_t *user, const char *const *holders,
					  size_t count, unsigned lease_ms)
{
	char key[96], lease_s[16];
	lease_key(key, sizeof(key), kind, user);
	snprintf(lease_s, sizeof(lease_s), "%u", lease_ms);
	for (size_t done = 0; done < count;) {
		size_t n = count - done < RENEW_BATCH ? count - done : RENEW_BATCH;
		if (renew_batch(store, key, lease_s, holders + done, n) != WD_LEASE_GRANTED)
			return WD_LEASE_UNAVAILABLE;
		done += n;
	}
	return WD_LEASE_GRANTED;
}

void wd_store_lease_release(struct wd_store *store, const char *kind, const bson_oid_t *user,
			    const char *holder)
{
	char key[96];
	lease_key(key, sizeof(key), kind, user);
	const char *argv[] = { "ZREM", key, holder };
	redisReply *reply = wd_store_redis_argv(store, 3, argv, NULL);
	if (reply != NULL)
		freeReplyObject(reply);
}

long long wd_store_lease_count(struct wd_store *store, const char *kind, const bson_oid_t *user)
{
	char key[96];
	lease_key(key, sizeof(key), kind, user);
	const char *argv[] = { "EVAL", count_script, "1", key };
	redisReply *reply = wd_store_redis_argv(store, 4, argv, NULL);
	if (reply == NULL)
		return -1;
	long long count = reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
	freeReplyObject(reply);
	return count;
}
