#ifndef AUTH_PRIVATE_H
#define AUTH_PRIVATE_H

/* Internals shared by the files of libwdauth. */

#include "wd-auth.h"
#include "wd-store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <time.h>

#define WD_AUTH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

struct wd_redis_client;

struct wd_auth {
	struct wd_store *store;
	char *totp_secret;   /* NULL: seeds are stored in clear */
	char *totp_cipher;   /* legacy cipher name, default "aes192" */
	int64_t ip_failures;
	int64_t user_failures;

	/* Redis: one connection per thread (auth-redis.c) */
	struct wd_redis_client *redis;
	pthread_mutex_t lock; /* the settings cache */

	/* settings collection cache (auth-context.c) */
	int64_t settings_loaded_ms;
	int64_t authlog_time_ms;
	int64_t asp_limit;
};

/* Formats a malloc'd message into *error_r and returns `ret`. */
int wd__auth_fail(char **error_r, int ret, const char *fmt, ...) WD_AUTH_PRINTF(3, 4);

/* A Redis command on this thread's connection (connected on first use,
   reconnected once after an error). NULL when Redis cannot be reached or
   answered with an error; free the reply with freeReplyObject(). */
redisReply *wd__auth_redis_argv(struct wd_auth *auth, int argc, const char **argv,
				const size_t *argv_len);
redisReply *wd__auth_redis(struct wd_auth *auth, const char *fmt, ...) WD_AUTH_PRINTF(2, 3);
int wd__auth_redis_init(struct wd_auth *auth, const struct wd_config *config, char **error_r);
void wd__auth_redis_deinit(struct wd_auth *auth);

/* Settings with WildDuck's defaults (settings collection, §4.20). */
int64_t wd__auth_setting_authlog_time(struct wd_auth *auth);
int64_t wd__auth_setting_asp_limit(struct wd_auth *auth);

/* Wall clock in ms (tests may not fake it: TOTP takes explicit times). */
int64_t wd__auth_now_ms(void);

/* The users DB collection `name` on a borrowed client. */
struct wd__auth_coll {
	enum wd_store_db db;
	mongoc_client_t *client;
	mongoc_collection_t *coll;
};
void wd__auth_coll_get(struct wd_auth *auth, const char *name, struct wd__auth_coll *c);
void wd__auth_coll_put(struct wd_auth *auth, struct wd__auth_coll *c);

#endif
