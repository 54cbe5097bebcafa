#ifndef WD_REDIS_URL_H
#define WD_REDIS_URL_H

/* Redis connection URLs as WildDuck's `dbs.redis` writes them:
 * "redis://[[user]:password@]host[:port][/db]" (a bracketed IPv6 host
 * allowed; host 127.0.0.1 and port 6379 by default). Strict: digits-only
 * port (1-65535) and database, bounded parts, no NUL.
 *
 * Redis Sentinel (docs/operations.md):
 * "redis-sentinel://[[user]:password@]host[:port][,host[:port]]...
 *  /master-name[/db]" lists the sentinels (port 26379 by default, at most
 * WD_REDIS_MAX_SENTINELS) and the name of the monitored master; the
 * credentials and database are the master's. host/port are then empty/0
 * until a client asks the sentinels (wd-redis-client.h). */

#define WD_REDIS_MAX_SENTINELS 8

struct wd_redis_url {
	char host[256];
	int port;
	/* sentinel mode when sentinel_count > 0 */
	unsigned sentinel_count;
	struct {
		char host[256];
		int port;
	} sentinels[WD_REDIS_MAX_SENTINELS];
	char master_name[128];
	char user[128];     /* ACL user, "" for none */
	char password[256]; /* AUTH when not empty */
	int db;             /* SELECT */
};

/* WD_OK, or WD_ERROR with a malloc'd message in *error_r. */
int wd_redis_url_parse(const char *url, struct wd_redis_url *url_r, char **error_r);

#endif
