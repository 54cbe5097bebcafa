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

int wd_redis_url_parse(const char *url, struct wd_redis_url *u, char **error_r)
{
	memset(u, 0, sizeof(*u));
	if (url == NULL || strncmp(url, "redis://", 8) != 0) {
		*error_r = url_error("redis URL \"%s\" does not start with redis://",
				     url != NULL ? url : "");
		return WD_ERROR;
	}
	const char *p = url + 8;
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
		strcpy(u->host, "127.0.0.1");
	} else if (!copy_part(u->host, sizeof(u->host), host, (size_t)(host_end - host))) {
		*error_r = url_error("redis URL: host name too long");
		return WD_ERROR;
	}
	u->port = 6379;
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
		u->port = (int)value;
	}
	/* The database number (SELECT) does not matter for pub/sub; it must
	   still look like one. */
	if (*end == '/') {
		long db = 0;
		const char *c = end + 1;
		for (; *c >= '0' && *c <= '9' && db < INT_MAX / 10; c++)
			db = db * 10 + (*c - '0');
		if (*c != '\0' && *c != '?' && *c != '#') {
			*error_r = url_error("redis URL \"%s\": bad database number", url);
			return WD_ERROR;
		}
		u->db = (int)db;
	}
	return WD_OK;
}
