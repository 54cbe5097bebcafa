/* WildDuck's mailbox write lock `mail:mbwr:<mailbox>` (reference §4.3), in
 * the format of the ioredfour library WildDuck uses, so that EXPUNGE and
 * MOVE from Node and C processes serialise per mailbox:
 *   acquire: index = INCR mailindex; the key is a hash {index} created only
 *            when absent, with PEXPIRE ttl;
 *   release: the key is deleted only while it still holds our index, and
 *            the key name is published on `mail-release`.
 * Waiting polls with back-off up to the wait limit (WildDuck waits ≤ 1 min).
 * When Redis is down the lock cannot be had; callers then proceed without
 * it (logged) rather than refuse every EXPUNGE. */
#include "store-private.h"
#include "wd-log.h"
#include "wd-result.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char acquire_lua[] =
	"if redis.call('exists', KEYS[1]) == 1 then return 0 end "
	"redis.call('hset', KEYS[1], 'index', ARGV[1]) "
	"redis.call('pexpire', KEYS[1], ARGV[2]) return 1";
static const char release_lua[] =
	"if redis.call('hget', KEYS[1], 'index') == ARGV[1] then "
	"redis.call('del', KEYS[1]) redis.call('publish', 'mail-release', KEYS[1]) return 1 end "
	"return 0";

int wd__store_write_lock(struct wd_store *store, const bson_oid_t *mailbox, unsigned ttl_ms,
			 unsigned wait_ms, struct wd_store_write_lock *lock, char **error_r)
{
	memset(lock, 0, sizeof(*lock));
	char hex[25];
	bson_oid_to_string(mailbox, hex);
	snprintf(lock->key, sizeof(lock->key), "mail:mbwr:%s", hex);
	redisReply *reply = wd__store_redis(store, "INCR mailindex");
	if (reply == NULL) {
		wd_warning("store", "%s: Redis unavailable, continuing without the write lock",
			   lock->key);
		return WD_OK;
	}
	lock->index = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
	freeReplyObject(reply);
	int64_t deadline = wd__monotonic_ms() + wait_ms;
	unsigned backoff_ms = 5;
	for (;;) {
		reply = wd__store_redis(store, "EVAL %s 1 %s %lld %u", acquire_lua, lock->key,
					(long long)lock->index, ttl_ms);
		bool acquired = reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
		if (reply != NULL)
			freeReplyObject(reply);
		if (acquired) {
			lock->held = true;
			return WD_OK;
		}
		if (wd__monotonic_ms() >= deadline) {
			*error_r = wd__store_error("mailbox is locked by another process (%s)", lock->key);
			return WD_ERROR;
		}
		struct timespec ts = { backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000 };
		nanosleep(&ts, NULL);
		if (backoff_ms < 200)
			backoff_ms *= 2;
	}
}

void wd__store_write_unlock(struct wd_store *store, struct wd_store_write_lock *lock)
{
	if (!lock->held)
		return;
	redisReply *reply = wd__store_redis(store, "EVAL %s 1 %s %lld", release_lua, lock->key,
					    (long long)lock->index);
	if (reply != NULL)
		freeReplyObject(reply);
	lock->held = false;
}
