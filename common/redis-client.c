/* wd_redis_client (wd-redis-client.h): per-thread synchronous hiredis
 * connections, with Sentinel discovery and failover following. */
#include "wd-redis-client.h"

#include "wd-log.h"
#include "wd-result.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REDIS_TIMEOUT_MS 2000
#define SENTINEL_TIMEOUT_MS 1000

struct wd_redis_client {
	struct wd_redis_url url;
	char component[32];
	char consequence[128];
	pthread_key_t key;
	pthread_mutex_t warn_lock;
	time_t last_warning;
};

/* What a thread keeps: its connection. */
struct thread_conn {
	redisContext *ctx;
};

static void thread_conn_free(void *data)
{
	struct thread_conn *conn = data;
	redisFree(conn->ctx);
	free(conn);
}

struct wd_redis_client *wd_redis_client_create(const char *url, const char *component,
					       const char *consequence, char **error_r)
{
	struct wd_redis_client *client = calloc(1, sizeof(*client));
	if (client == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	if (wd_redis_url_parse(url, &client->url, error_r) < 0) {
		free(client);
		return NULL;
	}
	snprintf(client->component, sizeof(client->component), "%s", component);
	snprintf(client->consequence, sizeof(client->consequence), "%s", consequence);
	if (pthread_key_create(&client->key, thread_conn_free) != 0) {
		*error_r = strdup("pthread_key_create failed");
		free(client);
		return NULL;
	}
	pthread_mutex_init(&client->warn_lock, NULL);
	return client;
}

void wd_redis_client_destroy(struct wd_redis_client **_client)
{
	struct wd_redis_client *client = *_client;
	if (client == NULL)
		return;
	*_client = NULL;
	struct thread_conn *conn = pthread_getspecific(client->key);
	if (conn != NULL) {
		pthread_setspecific(client->key, NULL);
		thread_conn_free(conn);
	}
	pthread_key_delete(client->key);
	pthread_mutex_destroy(&client->warn_lock);
	free(client);
}

void wd_redis_client_warn(struct wd_redis_client *client, const char *what)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&client->warn_lock);
	bool warn = now - client->last_warning >= 10;
	if (warn)
		client->last_warning = now;
	pthread_mutex_unlock(&client->warn_lock);
	if (!warn)
		return;
	if (client->url.sentinel_count > 0)
		wd_warning(client->component, "Redis master \"%s\" (via %u sentinels) unavailable "
			   "(%s): %s", client->url.master_name, client->url.sentinel_count, what,
			   client->consequence);
	else
		wd_warning(client->component, "Redis %s:%d unavailable (%s): %s", client->url.host,
			   client->url.port, what, client->consequence);
}

static struct timeval timeval_ms(unsigned ms)
{
	return (struct timeval){ .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
}

int wd_redis_sentinel_master(const struct wd_redis_url *url, unsigned timeout_ms, char *host_r,
			     size_t host_size, int *port_r, char **error_r)
{
	char last[256] = "no sentinel configured";
	for (unsigned i = 0; i < url->sentinel_count; i++) {
		redisContext *ctx = redisConnectWithTimeout(url->sentinels[i].host,
							    url->sentinels[i].port,
							    timeval_ms(timeout_ms));
		if (ctx == NULL || ctx->err != 0) {
			snprintf(last, sizeof(last), "sentinel %s:%d: %s", url->sentinels[i].host,
				 url->sentinels[i].port, ctx != NULL ? ctx->errstr : "out of memory");
			redisFree(ctx);
			continue;
		}
		redisSetTimeout(ctx, timeval_ms(timeout_ms));
		redisReply *reply = redisCommand(ctx, "SENTINEL get-master-addr-by-name %s",
						 url->master_name);
		bool ok = reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
			  reply->element[0]->type == REDIS_REPLY_STRING &&
			  reply->element[1]->type == REDIS_REPLY_STRING;
		if (ok) {
			int port = atoi(reply->element[1]->str);
			ok = port > 0 && port <= 65535 && reply->element[0]->len < host_size;
			if (ok) {
				snprintf(host_r, host_size, "%s", reply->element[0]->str);
				*port_r = port;
			}
		}
		if (!ok)
			snprintf(last, sizeof(last), "sentinel %s:%d: %s", url->sentinels[i].host,
				 url->sentinels[i].port,
				 reply == NULL ? ctx->errstr :
				 reply->type == REDIS_REPLY_ERROR ? reply->str :
				 reply->type == REDIS_REPLY_NIL ? "unknown master name" :
								  "unexpected reply");
		if (reply != NULL)
			freeReplyObject(reply);
		redisFree(ctx);
		if (ok)
			return WD_OK;
	}
	if (asprintf(error_r, "master \"%s\": %s", url->master_name, last) < 0)
		*error_r = NULL;
	return WD_ERROR;
}

/* True for a ROLE reply whose first element is "master". */
static bool role_is_master(const redisReply *reply)
{
	return reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
	       reply->element[0]->type == REDIS_REPLY_STRING &&
	       strcmp(reply->element[0]->str, "master") == 0;
}

/* role_is_master of a ROLE sent now; why_r says why not. */
static bool is_master(redisContext *ctx, char *why, size_t why_size)
{
	redisReply *reply = redisCommand(ctx, "ROLE");
	bool master = role_is_master(reply);
	if (!master)
		snprintf(why, why_size, "%s",
			 reply == NULL ? ctx->errstr :
			 reply->type == REDIS_REPLY_ERROR ? reply->str : "not the master (ROLE)");
	if (reply != NULL)
		freeReplyObject(reply);
	return master;
}

static redisContext *connect_master(struct wd_redis_client *client)
{
	const struct wd_redis_url *url = &client->url;
	char host[256];
	int port = url->port;
	char *error = NULL;
	snprintf(host, sizeof(host), "%s", url->host);
	if (url->sentinel_count > 0 &&
	    wd_redis_sentinel_master(url, SENTINEL_TIMEOUT_MS, host, sizeof(host), &port,
				     &error) < 0) {
		wd_redis_client_warn(client, error != NULL ? error : "out of memory");
		free(error);
		return NULL;
	}
	struct timeval tv = timeval_ms(REDIS_TIMEOUT_MS);
	redisContext *ctx = redisConnectWithTimeout(host, port, tv);
	if (ctx == NULL || ctx->err != 0) {
		wd_redis_client_warn(client, ctx != NULL ? ctx->errstr : "out of memory");
		redisFree(ctx);
		return NULL;
	}
	redisSetTimeout(ctx, tv);
	redisReply *reply = NULL;
	char why[256];
	if (url->password[0] != '\0') {
		reply = url->user[0] != '\0' ?
				redisCommand(ctx, "AUTH %s %s", url->user, url->password) :
				redisCommand(ctx, "AUTH %s", url->password);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(reply);
	}
	if (url->db != 0) {
		reply = redisCommand(ctx, "SELECT %d", url->db);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(reply);
	}
	if (url->sentinel_count > 0 && !is_master(ctx, why, sizeof(why))) {
		wd_redis_client_warn(client, why);
		redisFree(ctx);
		return NULL;
	}
	return ctx;
fail:
	snprintf(why, sizeof(why), "%s", reply != NULL ? reply->str : ctx->errstr);
	wd_redis_client_warn(client, why);
	if (reply != NULL)
		freeReplyObject(reply);
	redisFree(ctx);
	return NULL;
}

static void drop(struct wd_redis_client *client, struct thread_conn *conn, const char *why)
{
	wd_redis_client_warn(client, why);
	redisFree(conn->ctx);
	conn->ctx = NULL;
}

/* This thread's usable connection, or NULL (logged). */
static struct thread_conn *connection(struct wd_redis_client *client)
{
	struct thread_conn *conn = pthread_getspecific(client->key);
	if (conn == NULL) {
		conn = calloc(1, sizeof(*conn));
		if (conn == NULL)
			return NULL;
		pthread_setspecific(client->key, conn);
	}
	if (conn->ctx == NULL)
		conn->ctx = connect_master(client);
	return conn->ctx != NULL ? conn : NULL;
}

/* Error replies that mean "not the master (any more)": the connection is
   dropped and the command retried on a new one. */
static bool wrong_server(const redisReply *reply)
{
	if (reply->type != REDIS_REPLY_ERROR || reply->str == NULL)
		return false;
	return strncmp(reply->str, "READONLY", 8) == 0 || strncmp(reply->str, "MASTERDOWN", 10) == 0 ||
	       strncmp(reply->str, "LOADING", 7) == 0;
}

/* Appends one command to the connection's output: argv form, or fmt with
   *ap (va_copy'd, so it can be appended again on a retry). */
static int append(redisContext *ctx, int argc, const char **argv, const size_t *argv_len,
		  const char *fmt, va_list *ap)
{
	if (fmt == NULL)
		return redisAppendCommandArgv(ctx, argc, argv, argv_len);
	va_list copy;
	va_copy(copy, *ap);
	int ret = redisvAppendCommand(ctx, fmt, copy);
	va_end(copy);
	return ret;
}

/* In sentinel mode ROLE goes in the same round trip, ahead of the command:
   when the server is no longer the master, the command's reply (READONLY,
   or a PUBLISH that only a replica's subscribers saw) is thrown away and
   the command runs again on the master the sentinels name now. */
static redisReply *run(struct wd_redis_client *client, int argc, const char **argv,
		       const size_t *argv_len, const char *fmt, va_list *ap)
{
	bool check_role = client->url.sentinel_count > 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct thread_conn *conn = connection(client);
		if (conn == NULL)
			return NULL;
		redisContext *ctx = conn->ctx;
		char why[256] = "";
		void *role = NULL, *reply = NULL;
		if ((check_role && redisAppendCommand(ctx, "ROLE") != REDIS_OK) ||
		    append(ctx, argc, argv, argv_len, fmt, ap) != REDIS_OK ||
		    (check_role && redisGetReply(ctx, &role) != REDIS_OK) ||
		    redisGetReply(ctx, &reply) != REDIS_OK || reply == NULL) {
			snprintf(why, sizeof(why), "%s", ctx->errstr);
		} else if (check_role && !role_is_master(role)) {
			snprintf(why, sizeof(why), "not the master any more (ROLE)");
		} else if (wrong_server(reply)) {
			snprintf(why, sizeof(why), "%s", ((redisReply *)reply)->str);
		}
		if (role != NULL)
			freeReplyObject(role);
		if (why[0] == '\0')
			return reply;
		if (reply != NULL)
			freeReplyObject(reply);
		drop(client, conn, why);
	}
	return NULL;
}

redisReply *wd_redis_client_argv(struct wd_redis_client *client, int argc, const char **argv,
				 const size_t *argv_len)
{
	return run(client, argc, argv, argv_len, NULL, NULL);
}

redisReply *wd_redis_client_vcommand(struct wd_redis_client *client, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	redisReply *reply = run(client, 0, NULL, NULL, fmt, &copy);
	va_end(copy);
	return reply;
}
