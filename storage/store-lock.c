/* Update locks for servers without atomic document updates (FerretDB 1.x;
 * see wd_store_caps.atomic_updates), keyed by name ("mb:<mailbox>",
 * "att:<hash>").
 *
 * Inside one process a striped mutex orders the threads; across processes a
 * Redis lock `wdc:lock:<name>` (SET NX PX with a random token, released
 * by a compare-and-delete script) orders the holders of the mutex. The Redis
 * key expires after 10 s so a crashed holder cannot wedge a mailbox. When
 * Redis is unreachable the mutex alone still protects a single process; the
 * degradation is logged by the Redis layer. */
#include "store-private.h"
#include "wd-log.h"
#include "wd-result.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LOCK_TTL_MS 10000
#define LOCK_WAIT_MS 15000

static const char release_lua[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
	"return 0";

int64_t wd__monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wd__store_mailbox_lock(struct wd_store *store, const bson_oid_t *mailbox,
			   struct wd_store_lock *lock, char **error_r)
{
	char name[32];
	memcpy(name, "mb:", 3);
	bson_oid_to_string(mailbox, name + 3);
	return wd__store_lock(store, name, lock, error_r);
}

int wd__store_lock(struct wd_store *store, const char *name, struct wd_store_lock *lock,
		   char **error_r)
{
	memset(lock, 0, sizeof(*lock));
	if (wd_store_caps(store)->atomic_updates)
		return WD_OK;
	lock->local = wd__store_lock_stripe(store, name);
	pthread_mutex_lock(lock->local);
	snprintf(lock->key, sizeof(lock->key), "wdc:lock:%s", name);
	unsigned char random[16];
	RAND_bytes(random, sizeof(random));
	for (size_t i = 0; i < sizeof(random); i++)
		snprintf(lock->token + 2 * i, 3, "%02x", random[i]);

	int64_t deadline = wd__monotonic_ms() + LOCK_WAIT_MS;
	unsigned backoff_us = 200;
	for (;;) {
		redisReply *reply = wd__store_redis(store, "SET %s %s NX PX %d", lock->key,
						    lock->token, LOCK_TTL_MS);
		if (reply == NULL)
			return WD_OK; /* Redis down: the local mutex is all we have */
		bool acquired = reply->type == REDIS_REPLY_STATUS;
		freeReplyObject(reply);
		if (acquired) {
			lock->redis_held = true;
			return WD_OK;
		}
		if (wd__monotonic_ms() >= deadline) {
			pthread_mutex_unlock(lock->local);
			lock->local = NULL;
			*error_r = wd__store_error("%s is busy (update lock held for %d s)", name,
						   LOCK_WAIT_MS / 1000);
			return WD_ERROR;
		}
		struct timespec ts = { 0, (long)backoff_us * 1000 };
		nanosleep(&ts, NULL);
		if (backoff_us < 5000)
			backoff_us *= 2;
	}
}

void wd__store_unlock(struct wd_store *store, struct wd_store_lock *lock)
{
	if (lock->redis_held) {
		redisReply *reply = wd__store_redis(store, "EVAL %s 1 %s %s", release_lua, lock->key,
						    lock->token);
		if (reply != NULL)
			freeReplyObject(reply);
		lock->redis_held = false;
	}
	if (lock->local != NULL) {
		pthread_mutex_unlock(lock->local);
		lock->local = NULL;
	}
}
