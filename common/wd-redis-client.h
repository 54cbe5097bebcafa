#ifndef WD_REDIS_CLIENT_H
#define WD_REDIS_CLIENT_H

/* Synchronous Redis for worker threads, shared by libwdstore and libwdauth:
 * one hiredis connection per thread and client (hiredis 0.14 contexts are
 * not thread-safe), made on first use from a `dbs.redis` URL
 * (wd-redis-url.h), with AUTH and SELECT, and connect and command timeouts
 * so that a dead Redis never blocks a worker for long.
 *
 * Redis Sentinel: with a redis-sentinel:// URL the master's address is asked
 * of the sentinels, in order, at each connect, and the answer is checked
 * with ROLE. Every command is then sent behind a ROLE in the same round
 * trip, so that after a failover nothing keeps going to the demoted master
 * (which would accept a PUBLISH silently, for its own subscribers only):
 * the connection is dropped and the command sent to the new master.
 * Replies READONLY, MASTERDOWN and LOADING end the connection like a
 * network error, in any mode.
 *
 * A command whose connection fails is retried once on a new connection;
 * a problem is logged as a warning at most every 10 s, with `consequence`
 * ("notifications and counters degrade") saying what it costs. */

#include "wd-redis-url.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stddef.h>

struct wd_redis_client;

/* NULL with a malloc'd *error_r when the URL does not parse. component and
   consequence are copied (log tag and the warning's tail). */
struct wd_redis_client *wd_redis_client_create(const char *url, const char *component,
					       const char *consequence, char **error_r);
/* Frees this thread's connection; other threads' go when they exit. */
void wd_redis_client_destroy(struct wd_redis_client **client);

/* The reply (free with freeReplyObject), error replies included, or NULL
   when Redis cannot be reached (logged). */
redisReply *wd_redis_client_argv(struct wd_redis_client *client, int argc, const char **argv,
				 const size_t *argv_len);
redisReply *wd_redis_client_vcommand(struct wd_redis_client *client, const char *fmt, va_list ap);

/* Logs `what` as a Redis problem (rate-limited as above). */
void wd_redis_client_warn(struct wd_redis_client *client, const char *what);

/* The master's address from the sentinels of `url` (sentinel mode only):
   WD_OK with host_r/port_r, or WD_ERROR with a malloc'd *error_r. Blocks up
   to timeout_ms per sentinel. Also used by the asynchronous subscribers. */
int wd_redis_sentinel_master(const struct wd_redis_url *url, unsigned timeout_ms, char *host_r,
			     size_t host_size, int *port_r, char **error_r);

#endif
