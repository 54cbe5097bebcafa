#ifndef WD_REDIS_URL_H
#define WD_REDIS_URL_H

/* Redis connection URLs as WildDuck's `dbs.redis` writes them:
 * "redis://[[user]:password@]host[:port][/db]" (a bracketed IPv6 host
 * allowed; host 127.0.0.1 and port 6379 by default). Strict: digits-only
 * port (1-65535) and database, bounded parts, no NUL. */

struct wd_redis_url {
	char host[256];
	int port;
	char user[128];     /* ACL user, "" for none */
	char password[256]; /* AUTH when not empty */
	int db;             /* SELECT */
};

/* WD_OK, or WD_ERROR with a malloc'd message in *error_r. */
int wd_redis_url_parse(const char *url, struct wd_redis_url *url_r, char **error_r);

#endif
