/* Redis URL parsing (wd-redis-url.h), shared by every Redis client of the
 * code base: storage, auth, the wd_events subscriber. */
#include "wd-redis-url.h"

#include "wd-result.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *url_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *url_error(const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	return msg != NULL ? msg : strdup("out of memory");
}

static bool copy_part(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size || memchr(src, '\0', len) != NULL)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

/* "host[:port]" or "[v6]:port" between p and end; an empty host is
   127.0.0.1. */
static int parse_host_port(const char *url, const char *p, const char *end, char *host_r,
			   size_t host_size, int default_port, int *port_r, char **error_r)
{
	const char *host = p, *host_end, *port = NULL;
	if (*p == '[') {
		host = p + 1;
		host_end = memchr(host, ']', (size_t)(end - host));
		if (host_end == NULL) {
			*error_r = url_error("redis URL \"%s\": unterminated [address]", url);
			return WD_ERROR;
		}
		if (host_end + 1 < end) {
			if (host_end[1] != ':') {
				*error_r = url_error("redis URL \"%s\": junk after ]", url);
				return WD_ERROR;
			}
			port = host_end + 2;
		}
	} else {
		host_end = memchr(p, ':', (size_t)(end - p));
		if (host_end != NULL)
			port = host_end + 1;
		else
			host_end = end;
	}
	if (host_end == host) {
		snprintf(host_r, host_size, "127.0.0.1");
	} else if (!copy_part(host_r, host_size, host, (size_t)(host_end - host))) {
		*error_r = url_error("redis URL: host name too long");
		return WD_ERROR;
	}
	*port_r = default_port;
	if (port != NULL) {
		long value = 0;
		if (port == end || end - port > 5) {
			*error_r = url_error("redis URL \"%s\": bad port", url);
			return WD_ERROR;
		}
		for (const char *c = port; c < end; c++) {
			if (*c < '0' || *c > '9') {
				*error_r = url_error("redis URL \"%s\": bad port", url);
				return WD_ERROR;
			}
			value = value * 10 + (*c - '0');
		}
		if (value < 1 || value > 65535) {
			*error_r = url_error("redis URL \"%s\": port out of range", url);
			return WD_ERROR;
		}
		*port_r = (int)value;
	}
	return WD_OK;
}

/* "/db" (or nothing) at p; the number does not matter for pub/sub but must
   look like one. */
static int parse_db(const char *url, const char *p, int *db_r, char **error_r)
{
	*db_r = 0;
	if (*p != '/')
		return WD_OK;
	long db = 0;
	const char *c = p + 1;
	for (; *c >= '0' && *c <= '9' && db < INT_MAX / 10; c++)
		db = db * 10 + (*c - '0');
	if (*c != '\0' && *c != '?' && *c != '#') {
		*error_r = url_error("redis URL \"%s\": bad database number", url);
		return WD_ERROR;
	}
	*db_r = (int)db;
	return WD_OK;
}

static int parse_sentinels(const char *url, const char *p, const char *end,
			   struct wd_redis_url *u, char **error_r)
{
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *item_end = comma != NULL ? comma : end;
		if (u->sentinel_count == WD_REDIS_MAX_SENTINELS) {
			*error_r = url_error("redis URL: more than %d sentinels", WD_REDIS_MAX_SENTINELS);
			return WD_ERROR;
		}
		if (item_end == p) {
			*error_r = url_error("redis URL \"%s\": empty sentinel address", url);
			return WD_ERROR;
		}
		unsigned i = u->sentinel_count++;
		if (parse_host_port(url, p, item_end, u->sentinels[i].host,
				    sizeof(u->sentinels[i].host), 26379, &u->sentinels[i].port,
				    error_r) < 0)
			return WD_ERROR;
		p = comma != NULL ? comma + 1 : end;
	}
	return WD_OK;
}

int wd_redis_url_parse(const char *url, struct wd_redis_url *u, char **error_r)
{
	memset(u, 0, sizeof(*u));
	bool sentinel = url != NULL && strncmp(url, "redis-sentinel://", 17) == 0;
	if (url == NULL || (!sentinel && strncmp(url, "redis://", 8) != 0)) {
		*error_r = url_error("redis URL \"%s\" does not start with redis:// or "
				     "redis-sentinel://", url != NULL ? url : "");
		return WD_ERROR;
	}
	const char *p = url + (sentinel ? 17 : 8);
	const char *end = p + strcspn(p, "/?#");
	const char *at = memchr(p, '@', (size_t)(end - p));
	if (at != NULL) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		const char *pw = colon != NULL ? colon + 1 : p;
		size_t user_len = colon != NULL ? (size_t)(colon - p) : 0;
		if (!copy_part(u->user, sizeof(u->user), p, user_len) ||
		    !copy_part(u->password, sizeof(u->password), pw, (size_t)(at - pw))) {
			*error_r = url_error("redis URL: credentials too long");
			return WD_ERROR;
		}
		p = at + 1;
	}
	if (!sentinel) {
		if (parse_host_port(url, p, end, u->host, sizeof(u->host), 6379, &u->port,
				    error_r) < 0)
			return WD_ERROR;
		return parse_db(url, end, &u->db, error_r);
	}
	if (p == end) {
		*error_r = url_error("redis URL \"%s\": no sentinel address", url);
		return WD_ERROR;
	}
	if (parse_sentinels(url, p, end, u, error_r) < 0)
		return WD_ERROR;
	if (*end != '/' || end[1] == '\0' || end[1] == '/' || end[1] == '?' || end[1] == '#') {
		*error_r = url_error("redis URL \"%s\": the master name is missing "
				     "(redis-sentinel://host:port,.../name[/db])", url);
		return WD_ERROR;
	}
	const char *name = end + 1;
	const char *name_end = name + strcspn(name, "/?#");
	if (!copy_part(u->master_name, sizeof(u->master_name), name, (size_t)(name_end - name))) {
		*error_r = url_error("redis URL: master name too long");
		return WD_ERROR;
	}
	return parse_db(url, name_end, &u->db, error_r);
}
